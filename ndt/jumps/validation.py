"""The validity harness behind `ndt validate-detector`: planted jumps, noise and drift.

Every scenario draws curves from a fixed seed, runs one detector with the default
significance test (each curve on its own, as `ndt jumps` would test a one-curve file), and
counts. Recall: share of planted steps with a significant jump within `tolerance`
checkpoints. False positives: significant jumps per 1000 checkpoints on curves without a
step. Raw counts (every detection, significant or not) are reported beside them, to show
what a bare threshold detector would claim.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ndt.errors import DetectorError
from ndt.jumps.base import Detector
from ndt.jumps.registry import DEFAULT_METHOD, make_detector
from ndt.jumps.significance import MIN_POINTS, TREND_DEGREE, ar1_noise, estimate_phi, trend_basis
from ndt.jumps.table import detect_jumps_in_results, select_curves
from ndt.store import Results

#: Planted step size, in noise standard deviations.
STEP_SIZE = 8.0
#: Smallest recall that passes, for one planted step and for several.
MIN_RECALL_SINGLE = 0.8
MIN_RECALL_MULTIPLE = 0.7


@dataclass(frozen=True)
class ScenarioResult:
    """One scenario's measurement and verdict.

    Attributes:
        name: single, multiple, noise, drift, real-null or real-planted.
        measure: "recall" or "false positives per 1000 steps".
        value: The measurement with the significance test (what passes or fails).
        raw_value: The same count over every detection, significant or not.
        threshold: The bound `value` must meet (recall >=, false positives <=).
        passed: Whether it meets it.
        n_curves: Curves drawn.
        n_points: Checkpoints per curve.
        description: What the curves are.
    """

    name: str
    measure: str
    value: float
    raw_value: float
    threshold: float
    passed: bool
    n_curves: int
    n_points: int
    description: str


@dataclass(frozen=True)
class ValidationReport:
    """All scenarios for one method."""

    method: str
    detector_params: dict[str, object]
    fdr: float
    tolerance: int
    seed: int
    scenarios: tuple[ScenarioResult, ...]

    @property
    def passed(self) -> bool:
        """True when every scenario passes."""
        return all(s.passed for s in self.scenarios)


def checkpoint_steps(n_points: int) -> NDArray[np.int64]:
    """Irregular steps like a real run: log-spaced for the first quarter, then linear."""
    n_log = max(2, n_points // 4)
    early = np.unique(np.round(np.geomspace(1, 100, n_log)).astype(np.int64))
    late = early[-1] + 50 * np.arange(1, n_points - early.size + 1)
    return np.concatenate([[0], early, late])[:n_points]


def _drift(rng: np.random.Generator, n_points: int) -> NDArray[np.float64]:
    """A smooth training-like curve: saturating, linear or a wide sigmoid, 2-10 noise SDs.

    Half the curves are smooth in checkpoint index, half in log(1 + step), so the null's
    choice of axis is not assumed by the test that checks it.
    """
    if rng.random() < 0.5:
        t = np.linspace(0.0, 1.0, n_points)
    else:
        t = np.log1p(checkpoint_steps(n_points).astype(np.float64))
        t = (t - t[0]) / (t[-1] - t[0])
    amplitude = rng.uniform(2.0, 10.0) * rng.choice([-1.0, 1.0])
    shape = rng.integers(3)
    if shape == 0:
        return amplitude * (1.0 - np.exp(-t / rng.uniform(0.15, 0.5)))
    if shape == 1:
        return amplitude * t
    return amplitude / (1.0 + np.exp(-(t - rng.uniform(0.3, 0.7)) / rng.uniform(0.12, 0.25)))


def _plant(rng: np.random.Generator, n_points: int, n_steps: int, min_gap: int = 10) -> list[int]:
    margin = MIN_POINTS // 2
    while True:
        spots = sorted(rng.choice(np.arange(margin, n_points - margin), n_steps, replace=False))
        if all(b - a >= min_gap for a, b in zip(spots, spots[1:], strict=False)):
            return [int(k) for k in spots]


def _run(
    detector: Detector, curve: NDArray[np.float64], fdr: float, seed: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Checkpoint indices of all detections and of the significant ones."""
    steps = checkpoint_steps(curve.size)
    results = Results(steps=steps, layers=["curve"], metrics={"curve": curve[:, None]})
    report = detect_jumps_in_results(results, ["curve"], None, detector, fdr, seed=seed)
    found = np.searchsorted(steps, report.table["step"].to_numpy())
    return found, found[report.table["significant"].to_numpy()]


def _recall(found: NDArray[np.int64], planted: list[int], tolerance: int) -> int:
    return sum(bool(np.any(np.abs(found - k) <= tolerance)) for k in planted)


def _false(found: NDArray[np.int64], planted: list[int], tolerance: int) -> int:
    return sum(not any(abs(int(f) - k) <= tolerance for k in planted) for f in found)


def _scenario(
    name: str,
    description: str,
    make: object,
    detector: Detector,
    *,
    n_curves: int,
    n_points: int,
    n_steps: int,
    fdr: float,
    tolerance: int,
    seed: int,
) -> ScenarioResult:
    hits = raw_hits = false = raw_false = planted_total = 0
    for trial in range(n_curves):
        rng = np.random.default_rng(np.random.SeedSequence([seed, len(name), trial]))
        planted = _plant(rng, n_points, n_steps) if n_steps else []
        curve = make(rng, n_points)  # type: ignore[operator]
        for k in planted:
            curve[k:] += STEP_SIZE * rng.choice([-1.0, 1.0])
        found, significant = _run(detector, curve, fdr, seed + trial)
        hits += _recall(significant, planted, tolerance)
        raw_hits += _recall(found, planted, tolerance)
        false += _false(significant, planted, tolerance)
        raw_false += _false(found, planted, tolerance)
        planted_total += len(planted)
    if n_steps:
        value, raw = hits / planted_total, raw_hits / planted_total
        threshold = MIN_RECALL_SINGLE if n_steps == 1 else MIN_RECALL_MULTIPLE
        return ScenarioResult(
            name,
            "recall",
            value,
            raw,
            threshold,
            value >= threshold,
            n_curves,
            n_points,
            description,
        )
    per_1000 = 1000.0 / (n_curves * n_points)
    # BH at level fdr, with every hypothesis null, keeps the chance of any false discovery
    # in a curve at or below fdr: on average at most fdr false jumps per curve.
    threshold = 1000.0 * fdr / n_points
    value = false * per_1000
    return ScenarioResult(
        name,
        "false positives per 1000 steps",
        value,
        raw_false * per_1000,
        threshold,
        value <= threshold,
        n_curves,
        n_points,
        description,
    )


def fit_null(values: NDArray[np.float64]) -> tuple[NDArray[np.float64], float, float]:
    """Trend, residual SD and AR(1) coefficient of a real curve, as the null model sees it."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size < MIN_POINTS:
        raise DetectorError(
            f"the curve has {values.size} finite points; at least {MIN_POINTS} are needed"
        )
    basis = trend_basis(values.size, TREND_DEGREE)
    trend = basis @ (basis.T @ values)
    residuals = values - trend
    sigma = float(np.sqrt(residuals @ residuals / (values.size - basis.shape[1])))
    return trend, sigma, estimate_phi(values)


def validate_detector(
    method: str | Detector = DEFAULT_METHOD,
    *,
    fdr: float = 0.05,
    tolerance: int = 1,
    n_curves: int = 100,
    n_points: int = 40,
    seed: int = 0,
    real_curve: NDArray[np.float64] | None = None,
) -> ValidationReport:
    """Measure a detector's recall and false positives on curves with known answers.

    Args:
        method: A name from `ndt.jumps.METHODS`, or a configured Detector.
        fdr: False discovery rate of the significance test.
        tolerance: Checkpoints by which a detection may miss a planted step.
        n_curves: Curves per scenario.
        n_points: Checkpoints per synthetic curve.
        seed: Seed of the scenarios; the same seed gives the same report.
        real_curve: A real metric curve, shape (n_points,); adds a null built from its
            fitted trend and AR(1) noise, and the same with planted steps.

    Returns:
        The report, scenario by scenario.
    """
    if n_points < MIN_POINTS * 2:
        raise DetectorError(f"n_points must be at least {2 * MIN_POINTS}, got {n_points}")
    if n_curves < 1:
        raise DetectorError(f"n_curves must be at least 1, got {n_curves}")
    detector = make_detector(method) if isinstance(method, str) else method

    def noisy(shape: object) -> object:
        return lambda rng, n: shape(rng, n) + rng.standard_normal(n)  # type: ignore[operator]

    flat = noisy(lambda rng, n: np.zeros(n))
    drift = noisy(_drift)
    plans = [
        ("single", "one step of 8 noise SDs on smooth drift + white noise", drift, 1),
        ("multiple", "two steps of 8 SDs, 10+ checkpoints apart, on drift + noise", drift, 2),
        ("noise", "white noise, no step", flat, 0),
        ("drift", "smooth drift (saturating, linear, wide sigmoid) + white noise", drift, 0),
    ]
    size = n_points
    if real_curve is not None:
        trend, sigma, phi = fit_null(real_curve)
        size = trend.size

        def real(rng: np.random.Generator, n: int) -> NDArray[np.float64]:
            return (trend + sigma * ar1_noise(rng, 1, n, phi)[0]) / max(sigma, 1e-300)

        desc = f"the curve's polynomial trend + AR(1) noise (phi={phi:.2f}, sigma={sigma:.3g})"
        plans += [("real-null", desc, real, 0), ("real-planted", f"{desc} + one step", real, 1)]
    scenarios = []
    for name, description, make, n_steps in plans:
        points = size if name.startswith("real") else n_points
        scenarios.append(
            _scenario(
                name,
                description,
                make,
                detector,
                n_curves=n_curves,
                n_points=points,
                n_steps=n_steps,
                fdr=fdr,
                tolerance=tolerance,
                seed=seed,
            )
        )
    return ValidationReport(
        detector.name, detector.params(), fdr, tolerance, seed, tuple(scenarios)
    )


def curve_from_results(results: Results, layer: str, metric: str = "stable_rank") -> np.ndarray:
    """The one curve of `results` that `layer` (a name or glob) and `metric` select.

    Raises:
        DetectorError: if they select no curve or more than one.
    """
    curves = select_curves(results, [metric], [layer])
    if len(curves) != 1:
        names = ", ".join(c.layer for c in curves)
        raise DetectorError(f"layer {layer!r} matches {len(curves)} layers ({names}); name one")
    return curves[0].values
