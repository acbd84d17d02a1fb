"""`detect_jumps_in_results`: every selected curve of a results file, detected and tested."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ndt.errors import DetectorError
from ndt.jumps.base import Detection, Detector
from ndt.jumps.registry import DEFAULT_METHOD, make_detector
from ndt.jumps.significance import (
    MIN_POINTS,
    TREND_DEGREE,
    benjamini_hochberg,
    default_n_surrogates,
    step_p_values,
    strongest_step,
)
from ndt.store import JUMP_COLUMNS, Results

#: The most surrogates per curve `detect_jumps_in_results` chooses by itself.
MAX_DEFAULT_SURROGATES = 10**6

DEFAULT_METRICS: tuple[str, ...] = ("stable_rank",)


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
        table: Every detected jump with its p- and q-value, columns JUMP_COLUMNS, most
            significant first.
        method: Detection method.
        detector_params: The detector's parameters.
        fdr: False discovery rate the `significant` column controls.
        seed: Seed of the surrogates.
        n_surrogates: Surrogate curves per tested curve.
        n_curves: Curves tested.
        n_tests: P-values entered into Benjamini-Hochberg: one per detected jump, plus one
            per curve where nothing was detected (its strongest checkpoint).
        nan_points: (layer, metric, count) of the NaN points skipped.
        short_curves: (layer, metric, finite points) of curves too short to test.
    """

    table: pd.DataFrame
    method: str
    detector_params: dict[str, object]
    fdr: float
    seed: int
    n_surrogates: int
    n_curves: int
    n_tests: int
    nan_points: tuple[tuple[str, str, int], ...] = ()
    short_curves: tuple[tuple[str, str, int], ...] = field(default=())

    @property
    def n_significant(self) -> int:
        """Jumps whose q-value is at most `fdr`."""
        return int(self.table["significant"].sum())

    @property
    def expected_false_discoveries(self) -> float:
        """Benjamini-Hochberg's bound on the expected number of false ones among them."""
        return self.fdr * self.n_significant

    def settings(self) -> dict[str, object]:
        """The run settings stored beside the table in the results file."""
        return {
            "method": self.method,
            "fdr": self.fdr,
            "n_tests": self.n_tests,
            "n_significant": self.n_significant,
            "expected_false_discoveries": self.expected_false_discoveries,
            "seed": self.seed,
            "n_surrogates": self.n_surrogates,
            "n_curves": self.n_curves,
            "null_model": f"degree-{TREND_DEGREE} polynomial in checkpoint index + AR(1) noise",
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
    chosen = list(results.layers)
    if layers:
        for pattern in layers:
            if not fnmatch.filter(results.layers, pattern):
                raise DetectorError(
                    f"layer pattern {pattern!r} matches no layer; the layers are "
                    f"{', '.join(results.layers)}"
                )
        chosen = [n for n in results.layers if any(fnmatch.fnmatchcase(n, p) for p in layers)]
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
    metrics: Sequence[str] = DEFAULT_METRICS,
    layers: Sequence[str] | None = None,
    method: str | Detector = DEFAULT_METHOD,
    fdr: float = 0.05,
    *,
    seed: int = 0,
    n_surrogates: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> JumpReport:
    """Detect jumps in the selected curves and test each against a surrogate null.

    Args:
        results: The results file's contents (`ndt.store.read_results`).
        metrics: Metric names, or ("all",) for every metric in the file.
        layers: Glob patterns over layer names; None for every layer.
        method: A name from `ndt.jumps.METHODS`, or a configured Detector.
        fdr: False discovery rate at which Benjamini-Hochberg marks jumps significant.
        seed: Seed of the surrogate curves; the same seed gives the same p-values.
        n_surrogates: Surrogates per curve; None for `default_n_surrogates`.
        progress: Called with (curves done, curves in all) after each curve.

    Returns:
        The report, whose table lists every detected jump, most significant first.

    Raises:
        DetectorError: on an empty selection, a curve too short to test when no curve is
            long enough, or invalid parameters.
    """
    if not 0 < fdr < 1:
        raise DetectorError(f"fdr must lie strictly between 0 and 1, got {fdr}")
    if n_surrogates is not None and n_surrogates < 19:
        raise DetectorError(f"n_surrogates must be at least 19, got {n_surrogates}")
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
    found = [detector.detect(c.steps, c.values) for c in testable]
    n_tests = sum(max(1, len(d)) for d in found)
    if n_surrogates is None:
        n_surrogates = default_n_surrogates(n_tests, fdr)
        if n_surrogates > MAX_DEFAULT_SURROGATES:
            raise DetectorError(
                f"fdr {fdr:g} over {n_tests} tests would need {n_surrogates} surrogates per "
                f"curve (more than {MAX_DEFAULT_SURROGATES}); raise --fdr or give "
                "--n-surrogates"
            )
    rows, p_values = [], []
    for number, (curve, detections) in enumerate(zip(testable, found, strict=True)):
        rng = np.random.default_rng(np.random.SeedSequence([seed, number]))
        indices = [d.index for d in detections] or [strongest_step(curve.values)]
        test = step_p_values(curve.values, indices, rng, n_surrogates)
        p_values.extend(test.p_values)
        rows.extend(
            _row(curve, d, float(p))
            for d, p in zip(detections, test.p_values[: len(detections)], strict=True)
        )
        if progress is not None:
            progress(number + 1, len(testable))
    q_all = benjamini_hochberg(np.asarray(p_values))
    # Rows are the detected jumps; the q-values of curves without one are not rows.
    detected_q = [q for q, is_row in zip(q_all, _row_mask(found), strict=True) if is_row]
    table = _frame(rows, detected_q, fdr)
    return JumpReport(
        table=table,
        method=detector.name,
        detector_params=detector.params(),
        fdr=fdr,
        seed=seed,
        n_surrogates=n_surrogates,
        n_curves=len(testable),
        n_tests=n_tests,
        nan_points=tuple((c.layer, c.metric, c.n_nan) for c in curves if c.n_nan),
        short_curves=tuple((c.layer, c.metric, c.values.size) for c in short),
    )


def _row_mask(found: list[list[Detection]]) -> list[bool]:
    return [bool(d) for detections in found for d in (detections or [None])]


def _row(curve: Curve, detection: Detection, p_value: float) -> dict[str, object]:
    return {
        "layer": curve.layer,
        "metric": curve.metric,
        "step": detection.step,
        "prev_step": detection.prev_step,
        "value_before": detection.value_before,
        "value_after": detection.value_after,
        "delta": detection.value_after - detection.value_before,
        "score": detection.score,
        "p_value": p_value,
        "methods": ",".join(detection.methods),
    }


def _frame(rows: list[dict[str, object]], q_values: list[float], fdr: float) -> pd.DataFrame:
    frame = pd.DataFrame(
        rows, columns=[c for c in JUMP_COLUMNS if c not in ("q_value", "significant")]
    )
    frame["q_value"] = np.asarray(q_values, dtype=np.float64)
    frame["significant"] = frame["q_value"] <= fdr
    frame = frame.astype(
        {"step": np.int64, "prev_step": np.int64, "p_value": np.float64, "score": np.float64}
    )
    frame = frame.sort_values(
        ["q_value", "p_value", "score"], ascending=[True, True, False], kind="stable"
    )
    return frame[list(JUMP_COLUMNS)].reset_index(drop=True)
