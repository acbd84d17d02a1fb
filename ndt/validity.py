"""Score any jump detector function on runs with known answers (the reference API's harness).

A detector here is any callable ``values -> indices of detected changes``. The standard
battery holds two kinds of fixture: plain series (a planted level change, several changes,
pure noise, drift) and one run of each of ``ndt validate-detector``'s scenarios
(`ndt.jumps.validation`): curves saved on a log-then-uniform schedule with an early
collapse, slow drift, white or AR(1) noise, integer values, and planted steps. A detection
within `tolerance` points of a planted change finds it; on a fixture without planted
changes every detection at or after its ``score_from`` index is a false positive (the early
collapse of the validate-detector runs is a real change, so it is not scored).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ndt.errors import NdtError
from ndt.jumps import validation

DetectorFn = Callable[[NDArray[np.float64]], Iterable[int]]
#: Pass rule: mean recall at least this, and no false positive on a null fixture.
MIN_MEAN_RECALL = 0.9
_BATTERY_SCENARIOS = ("a:step-10", "e:two-steps", "b:null", "c:ar1-0.5", "d:integer-null")


@dataclass(frozen=True)
class Fixture:
    """One series and its ground truth.

    Attributes:
        name: What it is.
        values: The series, shape (n_points,).
        ground_truth: Indices k of the planted changes (between points k-1 and k).
        score_from: First index where a detection on a null fixture counts as false.
    """

    name: str
    values: NDArray[np.float64]
    ground_truth: tuple[int, ...] = ()
    score_from: int = 0


def planted_transition(
    n_steps: int = 400, change_at: int = 200, size: float = 10.0, noise: float = 0.5,
    seed: int = 0,
) -> Fixture:  # fmt: skip
    """White noise of SD `noise` whose level rises by `size` at index `change_at`."""
    rng = np.random.default_rng(seed)
    values = 10.0 + noise * rng.standard_normal(n_steps)
    values[change_at:] += size
    return Fixture(f"planted step at {change_at}", values, (int(change_at),))


def planted_multi(
    changes: Sequence[int] = (150, 350, 450),
    levels: Sequence[float] = (10.0, 16.0, 13.0, 22.0),
    n_steps: int = 500, noise: float = 0.25, seed: int = 1,
) -> Fixture:  # fmt: skip
    """Piecewise-constant levels (one more level than changes) plus white noise.

    Raises:
        NdtError (a ValueError): unless ``len(levels) == len(changes) + 1``.
    """
    if len(levels) != len(changes) + 1:
        raise NdtError(f"{len(changes)} changes need {len(changes) + 1} levels, got {len(levels)}")
    rng = np.random.default_rng(seed)
    edges = [0, *changes, n_steps]
    values = np.concatenate(
        [
            np.full(b - a, float(level))
            for a, b, level in zip(edges[:-1], edges[1:], levels, strict=True)
        ]
    )
    values += noise * rng.standard_normal(n_steps)
    return Fixture(f"planted steps at {', '.join(map(str, changes))}", values, tuple(changes))


def pure_noise(n_steps: int = 400, noise: float = 1.0, seed: int = 2) -> Fixture:
    """White noise around a constant level: nothing to find."""
    rng = np.random.default_rng(seed)
    return Fixture("pure noise", 10.0 + noise * rng.standard_normal(n_steps))


def drift_no_jump(
    n_steps: int = 400, total_drift: float = 10.0, noise: float = 1.0, seed: int = 3
) -> Fixture:
    """A linear drift of `total_drift` over the series plus white noise: no jump."""
    rng = np.random.default_rng(seed)
    values = np.linspace(0.0, total_drift, n_steps) + noise * rng.standard_normal(n_steps)
    return Fixture("drift, no jump", values)


def scenario_fixture(name: str, seed: int = 0, n_uniform: int = 40) -> Fixture:
    """One run of a ``ndt validate-detector`` scenario (e.g. "a:step-10", "b:null")."""
    plans = {plan.name: plan for plan in validation._plans()}
    if name not in plans:
        raise NdtError(f"unknown scenario {name!r}; choose from {', '.join(plans)}")
    steps = validation.pythia_steps(n_uniform)
    rng = np.random.default_rng(np.random.SeedSequence([seed, validation._stable_hash(name)]))
    curve, planted = plans[name].make(rng, steps)
    after = int(np.searchsorted(steps, validation.COLLAPSE_END)) + 1
    return Fixture(f"validate-detector {name}", curve, tuple(planted), score_from=after)


def standard_battery(seed: int = 0) -> list[Fixture]:
    """The plain fixtures, then one run of five validate-detector scenarios."""
    plain = [planted_transition(), planted_multi(), pure_noise(), drift_no_jump()]
    return plain + [scenario_fixture(name, seed) for name in _BATTERY_SCENARIOS]


def jump_detector_as_callable(detector: object) -> DetectorFn:
    """Wrap a `JumpDetector` (or anything with ``detect_jumps(values)`` returning records
    with a ``step``) as a detector function returning indices."""
    return lambda values: [int(jump.step) for jump in detector.detect_jumps(values)]


@dataclass(frozen=True)
class FixtureResult:
    """A detector on one fixture.

    Attributes:
        name: The fixture's name.
        is_null: True when it has no planted change.
        recall: Share of planted changes found; None on a null fixture.
        n_detections: Indices the detector returned.
        false_positives: Detections matching no planted change (scored from `score_from`).
    """

    name: str
    is_null: bool
    recall: float | None
    n_detections: int
    false_positives: int


@dataclass(frozen=True)
class ValidityReport:
    """A detector's scores over a battery, and the verdict."""

    name: str
    results: tuple[FixtureResult, ...]
    tolerance: int

    @property
    def mean_recall(self) -> float:
        recalls = [r.recall for r in self.results if r.recall is not None]
        return float(np.mean(recalls)) if recalls else 0.0

    @property
    def false_positives_on_null(self) -> int:
        return sum(r.false_positives for r in self.results if r.is_null)

    @property
    def valid(self) -> bool:
        return self.mean_recall >= MIN_MEAN_RECALL and self.false_positives_on_null == 0

    @property
    def message(self) -> str:
        misses = self.mean_recall < MIN_MEAN_RECALL
        fires = self.false_positives_on_null > 0
        recall = f"mean recall {self.mean_recall:.2f} < {MIN_MEAN_RECALL}"
        noise = f"{self.false_positives_on_null} detections on null fixtures"
        if misses and fires:
            return (
                f"NOT VALID: misses planted transitions ({recall}) and fires where there is "
                f"nothing ({noise}): its detections reflect the method, not the data"
            )
        if fires:
            return (
                f"NOT VALID: fires where there is nothing ({noise}); detections reflect the method"
            )
        if misses:
            return f"NOT VALID: misses planted transitions ({recall})"
        return "VALID: finds the planted transitions and stays quiet on the null fixtures"

    def render(self) -> str:
        """A plain-text table of the fixtures and the verdict."""
        lines = [f"Detector: {self.name} (tolerance {self.tolerance} points)"]
        lines.append(f"{'fixture':<40} {'recall':>7} {'detections':>10} {'false':>6}")
        for r in self.results:
            recall = "-" if r.recall is None else f"{r.recall:.2f}"
            lines.append(f"{r.name:<40} {recall:>7} {r.n_detections:>10} {r.false_positives:>6}")
        lines.append(f"VERDICT: {self.message}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


def validate_detector(
    detector: DetectorFn,
    name: str = "detector",
    battery: Sequence[Fixture] | None = None,
    tolerance: int = 5,
) -> ValidityReport:
    """Run `detector` on every fixture of `battery` (default `standard_battery()`).

    Args:
        detector: ``values -> indices`` of detected changes.
        name: Shown in the report.
        battery: The fixtures.
        tolerance: Points by which a detection may miss a planted change.
    """
    fixtures = standard_battery() if battery is None else list(battery)
    results = []
    for fixture in fixtures:
        found = sorted({int(i) for i in detector(np.array(fixture.values, copy=True))})
        truth = fixture.ground_truth
        near = [any(abs(i - k) <= tolerance for k in truth) for i in found]
        false = [i for i, ok in zip(found, near, strict=True) if not ok and i >= fixture.score_from]
        recall = (
            None
            if not truth
            else float(np.mean([any(abs(i - k) <= tolerance for i in found) for k in truth]))
        )
        results.append(FixtureResult(fixture.name, not truth, recall, len(found), len(false)))
    return ValidityReport(name, tuple(results), tolerance)
