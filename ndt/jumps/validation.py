"""The validity harness behind `ndt validate-detector`: runs saved the way real runs are.

Every synthetic run is one curve on a Pythia-like schedule (log-spaced to step 128, then
every 50 steps), put through `detect_jumps_in_results` exactly as `ndt jumps` would test a
one-curve results file. Sizes are in local noise SDs: the standard deviation of the noise's
change between neighbouring late checkpoints, the unit the local null estimates (for white
noise of SD sigma it is sigma * sqrt(2)). Recall: share of planted changes that lie within
`tolerance` checkpoints of a significant transition. Null runs: share of runs with no
transition after the collapse (step 128, where the early collapse has decayed to nothing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ndt.errors import DetectorError
from ndt.io.store import Results
from ndt.jumps.detection import Detector
from ndt.jumps.jump_defaults import DEFAULT_METHOD
from ndt.jumps.local_null import MIN_POINTS
from ndt.jumps.table import detect_jumps_in_results, select_curves

#: Log-spaced saves up to here, then every UNIFORM_EVERY steps.
COLLAPSE_END = 128
UNIFORM_EVERY = 50
#: Planted step sizes for the recall-by-size table, in local noise SDs.
STEP_SIZES = (3.0, 6.0, 10.0)
#: Pass rules (issue 11): recall at or above RECALL_SIZE SDs, and clean null runs.
MIN_RECALL = 0.9
RECALL_SIZE = 6.0
MIN_CLEAN_NULL = 0.95


@dataclass(frozen=True)
class ScenarioResult:
    """One scenario's measurement and verdict.

    Attributes:
        name: Scenario name, e.g. "a:step-6" or "c:ar1-0.8".
        measure: "recall" or "clean null runs".
        value: The measurement (share of planted changes found, or of clean null runs).
        threshold: The bound `value` must reach; None when the scenario only informs.
        passed: Whether it does (True when there is no threshold).
        n_runs: Runs drawn.
        n_points: Checkpoints per run.
        false_per_run: Mean number of false transitions per run (after the collapse).
        description: What the runs are.
    """

    name: str
    measure: str
    value: float
    threshold: float | None
    passed: bool
    n_runs: int
    n_points: int
    false_per_run: float
    description: str


@dataclass(frozen=True)
class ValidationReport:
    """All scenarios for one method."""

    method: str
    fdr: float
    tolerance: int
    seed: int
    scenarios: tuple[ScenarioResult, ...]

    @property
    def passed(self) -> bool:
        """True when every scenario with a threshold passes."""
        return all(s.passed for s in self.scenarios)


def pythia_steps(n_uniform: int = 40) -> NDArray[np.int64]:
    """0, 1, 2, 4, ..., 128, then `n_uniform` saves every 50 steps from 150."""
    early = [0, *(2**i for i in range(8))]
    late = COLLAPSE_END + 22 + UNIFORM_EVERY * np.arange(n_uniform)
    return np.concatenate([early, late]).astype(np.int64)


def ar1(rng: np.random.Generator, n_points: int, phi: float) -> NDArray[np.float64]:
    """Stationary AR(1) noise in checkpoint index, scaled so that a change has SD 1."""
    shocks = rng.standard_normal(n_points)
    noise = np.empty(n_points)
    noise[0] = shocks[0]
    for i in range(1, n_points):
        noise[i] = phi * noise[i - 1] + np.sqrt(1.0 - phi * phi) * shocks[i]
    # A change of stationary AR(1) noise of unit SD has variance 2 (1 - phi).
    return noise / np.sqrt(2.0 * (1.0 - phi))


def _collapse(rng: np.random.Generator, steps: NDArray[np.int64]) -> NDArray[np.float64]:
    """An early exponential collapse of 20-60 SDs with a time constant of 8-24 steps."""
    size = rng.uniform(20.0, 60.0) * rng.choice([-1.0, 1.0])
    return size * np.exp(-steps / rng.uniform(8.0, 24.0))


def _drift(rng: np.random.Generator, steps: NDArray[np.int64]) -> NDArray[np.float64]:
    """Slow drift over the whole run: saturating, linear or a wide sigmoid of 2-10 SDs."""
    t = steps / steps[-1]
    amplitude = rng.uniform(2.0, 10.0) * rng.choice([-1.0, 1.0])
    shape = rng.integers(3)
    if shape == 0:
        return amplitude * (1.0 - np.exp(-t / rng.uniform(0.15, 0.5)))
    if shape == 1:
        return amplitude * t
    return amplitude / (1.0 + np.exp(-(t - rng.uniform(0.3, 0.7)) / rng.uniform(0.12, 0.25)))


def _planted_index(rng: np.random.Generator, steps: NDArray[np.int64], margin: int = 5) -> int:
    """An interval k (between points k-1 and k) well inside the uniform part."""
    first = int(np.searchsorted(steps, COLLAPSE_END)) + margin
    return int(rng.integers(first, steps.size - margin))


@dataclass(frozen=True)
class _Plan:
    name: str
    description: str
    make: Callable[[np.random.Generator, NDArray[np.int64]], tuple[NDArray, list[int]]]
    measure: str
    threshold: float | None


def _plans() -> list[_Plan]:
    def run(
        *, sizes: tuple[float, ...] = (), phi: float = 0.0, collapse: bool = True,
        integer: bool = False, gap: int = 0,
    ) -> Callable[[np.random.Generator, NDArray[np.int64]], tuple[NDArray, list[int]]]:  # fmt: skip
        def make(rng: np.random.Generator, steps: NDArray[np.int64]) -> tuple[NDArray, list[int]]:
            curve = _drift(rng, steps) + ar1(rng, steps.size, phi)
            if collapse:
                curve += _collapse(rng, steps)
            planted: list[int] = []
            for i, size in enumerate(sizes):
                k = _planted_index(rng, steps[: steps.size - gap]) if i == 0 else planted[0] + gap
                curve[k:] += size * rng.choice([-1.0, 1.0])
                planted.append(k)
            if integer:
                # cumulative_energy_90-like: whole counts, one level = 2 local noise SDs.
                curve = np.round(curve / 2.0)
            return curve, planted

        return make

    plans = [
        _Plan(f"a:step-{s:g}", f"collapse + drift + white noise + one step of {s:g} SDs",
              run(sizes=(s,)), "recall", MIN_RECALL if s >= RECALL_SIZE else None)
        for s in STEP_SIZES
    ]  # fmt: skip
    plans.append(
        _Plan("b:null", "collapse + drift + white noise, no step", run(), "clean", MIN_CLEAN_NULL)
    )
    plans += [
        _Plan(f"c:ar1-{phi:g}", f"drift + AR(1) noise, phi = {phi:g}, no collapse, no step",
              run(phi=phi, collapse=False), "clean", MIN_CLEAN_NULL)
        for phi in (0.0, 0.5, 0.8)
    ]  # fmt: skip
    plans += [
        _Plan("d:integer-null", "integer-valued (1 level = 2 SDs): collapse + drift + noise",
              run(integer=True), "clean", MIN_CLEAN_NULL),
        _Plan("d:integer-step", "integer-valued, one step of 10 SDs (5 levels)",
              run(integer=True, sizes=(10.0,)), "recall", MIN_RECALL),
        _Plan("e:two-steps", "collapse + drift + noise + two steps of 10 SDs, 4 checkpoints "
              "apart", run(sizes=(10.0, 10.0), gap=4), "recall", MIN_RECALL),
    ]  # fmt: skip
    return plans


def _transitions_of(
    curve: NDArray[np.float64], steps: NDArray[np.int64], method: str | Detector, fdr: float,
    tolerance: int,
) -> list[tuple[int, int]]:  # fmt: skip
    """Checkpoint index spans (first interval, last interval) of the significant transitions."""
    results = Results(steps=steps, layers=["curve"], metrics={"curve": curve[:, None]})
    report = detect_jumps_in_results(results, ["curve"], None, method, fdr, tolerance=tolerance)
    return [
        (int(np.searchsorted(steps, row.prev_step)) + 1, int(np.searchsorted(steps, row.step)))
        for row in report.transitions.itertuples()
    ]


def _scenario(
    plan: _Plan, method: str | Detector, *, n_runs: int, n_uniform: int, fdr: float,
    tolerance: int, seed: int,
) -> ScenarioResult:  # fmt: skip
    steps = pythia_steps(n_uniform)
    after = int(np.searchsorted(steps, COLLAPSE_END)) + 1
    found = planted_total = clean = false_total = 0
    for trial in range(n_runs):
        rng = np.random.default_rng(np.random.SeedSequence([seed, _stable_hash(plan.name), trial]))
        curve, planted = plan.make(rng, steps)
        spans = _transitions_of(curve, steps, method, fdr, tolerance)
        hit = [any(a - tolerance <= k <= b + tolerance for a, b in spans) for k in planted]
        found += sum(hit)
        planted_total += len(planted)
        false = [
            (a, b) for a, b in spans
            if a >= after and not any(a - tolerance <= k <= b + tolerance for k in planted)
        ]  # fmt: skip
        false_total += len(false)
        clean += not false
    if plan.measure == "recall":
        value, measure = found / max(planted_total, 1), "recall"
    else:
        value, measure = clean / n_runs, "clean null runs"
    passed = plan.threshold is None or value >= plan.threshold
    return ScenarioResult(
        plan.name, measure, value, plan.threshold, passed, n_runs, steps.size,
        false_total / n_runs, plan.description,
    )  # fmt: skip


def _stable_hash(name: str) -> int:
    return sum((i + 1) * ord(c) for i, c in enumerate(name))


def validate_detector(
    method: str | Detector = DEFAULT_METHOD,
    *,
    fdr: float = 0.05,
    tolerance: int = 1,
    n_runs: int = 100,
    n_uniform: int = 40,
    seed: int = 0,
) -> ValidationReport:
    """Measure `ndt jumps` on synthetic runs saved like real ones, with known answers.

    Args:
        method: "local", a name from `ndt.jumps.METHODS`, or a configured Detector.
        fdr: Level of the test, as `ndt jumps --fdr`.
        tolerance: Checkpoints by which a transition may miss a planted change.
        n_runs: Runs per scenario.
        n_uniform: Uniformly spaced checkpoints after the log-spaced start.
        seed: Seed of the scenarios; the same seed gives the same report.

    Returns:
        The report, scenario by scenario.

    Raises:
        DetectorError: on too few runs or checkpoints.
    """
    if n_runs < 1:
        raise DetectorError(f"n_runs must be at least 1, got {n_runs}")
    if n_uniform < 2 * MIN_POINTS:
        raise DetectorError(f"n_uniform must be at least {2 * MIN_POINTS}, got {n_uniform}")
    scenarios = tuple(
        _scenario(plan, method, n_runs=n_runs, n_uniform=n_uniform, fdr=fdr,
                  tolerance=tolerance, seed=seed)
        for plan in _plans()
    )  # fmt: skip
    name = method if isinstance(method, str) else method.name
    return ValidationReport(name, fdr, tolerance, seed, scenarios)


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
