"""`detect_jumps_in_results`: every interval of every selected curve, tested; transitions."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import false_discovery_control

from ndt.core.layer_globs import match_layers
from ndt.core.metrics import REGISTRY
from ndt.errors import DetectorError
from ndt.io.store import JUMP_COLUMNS, Results
from ndt.jumps.detection import Detector
from ndt.jumps.detectors import make_detector
from ndt.jumps.jump_defaults import ALL_METRICS, DEFAULT_METHOD, DEFAULT_TOLERANCE, LOCAL_METHOD
from ndt.jumps.local_null import HALF_WINDOW, MIN_POINTS, score_intervals
from ndt.jumps.transitions import (
    cauchy_combination,
    group_intervals,
    holm,
    transitions_frame,
)


@dataclass(frozen=True)
class Curve:
    """One metric of one layer, NaN points dropped."""

    layer: str
    metric: str
    steps: np.ndarray
    values: np.ndarray
    n_nan: int


@dataclass(frozen=True)
class JumpReport:
    """The outcome of `detect_jumps_in_results`.

    Attributes:
        table: Per-curve rows, columns JUMP_COLUMNS, most significant first: every
            interval whose q-value is at most `fdr`, each curve's strongest interval, and
            the intervals a detector flagged (when one was chosen).
        transitions: One row per transition, columns TRANSITION_COLUMNS, ranked.
        largest_change: (prev_step, step, combined p-value) of the interval with the
            smallest combined p-value, significant or not; None without intervals.
        method: How candidates were listed: "local" (every interval) or a detector.
        detector_params: The detector's parameters ({} for "local").
        fdr: Level of Benjamini-Hochberg over the curve tests and of Holm over intervals.
        tolerance: Checkpoints within which significant intervals form one transition.
        half_window: Reference intervals on each side of a candidate.
        n_curves: Curves tested.
        n_tests: Curve intervals tested (the Benjamini-Hochberg family).
        n_intervals: Intervals of the run's step grid (the Holm family).
        run_time_s: Wall time of the detection, in seconds.
        nan_points: (layer, metric, count) of the NaN points skipped.
        short_curves: (layer, metric, finite points) of curves too short to test.
    """

    table: pd.DataFrame
    transitions: pd.DataFrame
    largest_change: tuple[int, int, float] | None
    method: str
    detector_params: dict[str, object]
    fdr: float
    tolerance: int
    half_window: int
    n_curves: int
    n_tests: int
    n_intervals: int
    run_time_s: float
    nan_points: tuple[tuple[str, str, int], ...] = ()
    short_curves: tuple[tuple[str, str, int], ...] = field(default=())

    @property
    def n_significant(self) -> int:
        """Curve rows marked significant (inside a transition, q-value at most `fdr`)."""
        return int(self.table["significant"].sum())

    @property
    def n_transitions(self) -> int:
        """Transitions found."""
        return len(self.transitions)

    @property
    def expected_false_discoveries(self) -> float:
        """Benjamini-Hochberg's bound on the expected number of false curve rows."""
        return self.fdr * self.n_significant

    def settings(self) -> dict[str, object]:
        """The run settings stored beside the table in the results file."""
        return {
            "method": self.method,
            "fdr": self.fdr,
            "tolerance": self.tolerance,
            "half_window": self.half_window,
            "n_tests": self.n_tests,
            "n_intervals": self.n_intervals,
            "n_significant": self.n_significant,
            "n_transitions": self.n_transitions,
            "expected_false_discoveries": self.expected_false_discoveries,
            "n_curves": self.n_curves,
            "largest_change": list(self.largest_change or ()),
            "null_model": "local: scaled changes vs a line through their trimmed neighbours, "
            "Student t; Cauchy combination over curves, Holm over intervals",
            "detector": dict(self.detector_params),
        }


def select_curves(
    results: Results, metrics: Sequence[str], layers: Sequence[str] | None
) -> list[Curve]:
    """The curves of `results` named by `metrics` ("all" for every one) and layer globs.

    Raises:
        DetectorError: if the file has no curves, or a metric or pattern matches nothing.
    """
    if not results.metrics or len(results.steps) == 0 or not results.layers:
        raise DetectorError("the results file has no curves; run `ndt track` to fill it")
    available = list(results.metrics)
    names = available if "all" in metrics else list(dict.fromkeys(metrics))
    unknown = [name for name in names if name not in results.metrics]
    if unknown:
        raise DetectorError(
            f"no metric {', '.join(unknown)} in the results file; it has {', '.join(available)}"
        )
    chosen = match_layers(results.layers, layers) if layers else list(results.layers)
    steps = np.asarray(results.steps, dtype=np.int64)
    curves = []
    for metric in names:
        matrix = np.asarray(results.metrics[metric], dtype=np.float64)
        for layer in chosen:
            column = matrix[:, results.layers.index(layer)]
            finite = np.isfinite(column)
            curves.append(Curve(layer, metric, steps[finite], column[finite], int((~finite).sum())))
    return curves


def detect_jumps_in_results(
    results: Results,
    metrics: Sequence[str] = ALL_METRICS,
    layers: Sequence[str] | None = None,
    method: str | Detector = DEFAULT_METHOD,
    fdr: float = 0.05,
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    half_window: int = HALF_WINDOW,
    progress: Callable[[int, int], None] | None = None,
) -> JumpReport:
    """Test every interval of the selected curves against the local null; find transitions.

    Args:
        results: The results file's contents (`ndt.io.store.read_results`).
        metrics: Metric names, or ("all",) for every metric in the file.
        layers: Glob patterns over layer names; None for every layer.
        method: "local" to list every interval, a name from `ndt.jumps.METHODS` or a
            configured Detector to list the intervals it flags.
        fdr: Level of Benjamini-Hochberg over curve tests and of Holm over intervals.
        tolerance: Checkpoints within which significant intervals form one transition.
        half_window: Reference intervals on each side of a candidate (docs/jumps.md).
        progress: Called with (curves done, curves in all) after each curve.

    Returns:
        The report: per-curve rows and the ranked transitions.

    Raises:
        DetectorError: on an empty selection, when no curve is long enough to test, or
            on invalid parameters.
    """
    began = time.perf_counter()
    if not 0 < fdr < 1:
        raise DetectorError(f"fdr must lie strictly between 0 and 1, got {fdr}")
    if tolerance < 0:
        raise DetectorError(f"tolerance must be at least 0, got {tolerance}")
    detector = None
    if not (isinstance(method, str) and method == LOCAL_METHOD):
        detector = make_detector(method) if isinstance(method, str) else method
    curves = select_curves(results, metrics, layers)
    short = [c for c in curves if c.values.size < MIN_POINTS]
    testable = [c for c in curves if c.values.size >= MIN_POINTS]
    if not testable:
        worst = max(curves, key=lambda c: c.values.size)
        raise DetectorError(
            f"every selected curve is too short to test (longest: {worst.values.size} finite "
            f"points, {worst.layer} {worst.metric}); at least {MIN_POINTS} are needed"
        )
    grid = np.asarray(results.steps, dtype=np.int64)
    tests, on_grid = [], np.full((len(testable), max(grid.size - 1, 0)), np.nan)
    for number, curve in enumerate(testable):
        metric = REGISTRY.get(curve.metric)
        resolution = 1.0 if metric is not None and metric.integer else None
        test = score_intervals(curve.steps, curve.values, half_window, resolution)
        tests.append(test)
        # A curve interval that spans dropped points covers several grid intervals.
        ends = np.searchsorted(grid, curve.steps)
        for k in np.flatnonzero(test.dof > 0):
            on_grid[number, ends[k] : ends[k + 1]] = test.p_value[k]
        if progress is not None:
            progress(number + 1, len(testable))
    interval_p = cauchy_combination(on_grid, axis=0)
    adjusted = holm(interval_p)
    groups = group_intervals(adjusted <= fdr, tolerance)
    spans = [(int(grid[g[0]]), int(grid[g[-1] + 1])) for g in groups]
    q_values = false_discovery_control(np.concatenate([t.p_value for t in tests]))
    rows = _curve_rows(testable, tests, q_values, fdr, spans, detector)
    moved = rows[rows["significant"]]
    transitions = transitions_frame(grid, interval_p, adjusted, groups, moved)
    largest = None
    if interval_p.size:
        peak = int(np.argmin(interval_p))
        largest = (int(grid[peak]), int(grid[peak + 1]), float(interval_p[peak]))
    return JumpReport(
        table=_sorted(rows),
        transitions=transitions,
        largest_change=largest,
        method=detector.name if detector is not None else LOCAL_METHOD,
        detector_params=detector.params() if detector is not None else {},
        fdr=fdr,
        tolerance=tolerance,
        half_window=half_window,
        n_curves=len(testable),
        n_tests=int(q_values.size),
        n_intervals=int(interval_p.size),
        run_time_s=time.perf_counter() - began,
        nan_points=tuple((c.layer, c.metric, c.n_nan) for c in curves if c.n_nan),
        short_curves=tuple((c.layer, c.metric, c.values.size) for c in short),
    )


def _curve_rows(
    curves: Sequence[Curve],
    tests: Sequence[object],
    q_values: np.ndarray,
    fdr: float,
    spans: Sequence[tuple[int, int]],
    detector: Detector | None,
) -> pd.DataFrame:
    """The listed intervals of every curve, with p, q and whether they are significant."""
    rows, offset = [], 0
    for curve, test in zip(curves, tests, strict=True):
        q = q_values[offset : offset + test.p_value.size]
        offset += test.p_value.size
        flagged: dict[int, list[str]] = {}
        if detector is not None:
            for found in detector.detect(curve.steps, curve.values):
                flagged.setdefault(found.index - 1, []).extend(found.methods)
        listed = set(flagged) if detector is not None else set(np.flatnonzero(q <= fdr))
        listed.add(int(np.argmax(np.abs(test.statistic))))
        for k in sorted(listed):
            prev_step, step = int(curve.steps[k]), int(curve.steps[k + 1])
            inside = any(start <= prev_step and step <= end for start, end in spans)
            before, after = float(curve.values[k]), float(curve.values[k + 1])
            rows.append(
                {
                    "layer": curve.layer,
                    "metric": curve.metric,
                    "step": step,
                    "prev_step": prev_step,
                    "value_before": before,
                    "value_after": after,
                    "delta": after - before,
                    "score": float(abs(test.statistic[k])),
                    "p_value": float(test.p_value[k]),
                    "q_value": float(q[k]),
                    "methods": ",".join(flagged.get(k, [LOCAL_METHOD])),
                    "significant": bool(inside and q[k] <= fdr),
                }
            )
    frame = pd.DataFrame(rows, columns=list(JUMP_COLUMNS))
    return frame.astype(
        {"step": np.int64, "prev_step": np.int64, "p_value": np.float64, "score": np.float64,
         "q_value": np.float64, "significant": bool}
    )  # fmt: skip


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.sort_values(
        ["significant", "q_value", "p_value", "score"],
        ascending=[False, True, True, False],
        kind="stable",
    )
    return frame[list(JUMP_COLUMNS)].reset_index(drop=True)
