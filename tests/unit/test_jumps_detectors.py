"""The detectors: planted jumps found at the right checkpoint, rules matching a numpy reference."""

from __future__ import annotations

import numpy as np
import pytest

from ndt.errors import DetectorError
from ndt.jumps import (
    LOCAL_METHOD,
    METHODS,
    AgreementDetector,
    GradientDetector,
    PeltDetector,
    ZScoreDetector,
    make_detector,
)
from ndt.jumps.detection import noise_scale, runs


def test_local_is_no_detector() -> None:
    with pytest.raises(DetectorError, match="unknown detector 'local'"):
        make_detector(LOCAL_METHOD)


STEPS = np.array([0, 1, 2, 3, 5, 8, 13, 21, 34, 55] + list(range(100, 1600, 50)), dtype=np.int64)


def _curve(jumps: dict[int, float], seed: int = 0, drift: float = 3.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = STEPS.size
    values = drift * (1 - np.exp(-np.arange(n) / 8.0)) + rng.standard_normal(n)
    for index, size in jumps.items():
        values[index:] += size
    return values


@pytest.mark.parametrize("method", [m for m in METHODS if m != LOCAL_METHOD])
@pytest.mark.parametrize("seed", range(5))
def test_planted_step_is_found_at_its_checkpoint(method: str, seed: int) -> None:
    values = _curve({22: 10.0}, seed)
    found = make_detector(method).detect(STEPS, values)
    near = [d for d in found if abs(d.index - 22) <= 1]
    assert near, f"{method} missed the step at index 22: {[d.index for d in found]}"
    best = near[0]
    assert best.step == STEPS[best.index] and best.prev_step == STEPS[best.index - 1]
    assert best.value_before == values[best.index - 1]
    assert best.value_after == values[best.index]


@pytest.mark.parametrize("method", ["pelt", "all"])
def test_two_planted_steps_are_both_found(method: str) -> None:
    values = _curve({12: 9.0, 28: -9.0}, seed=3)
    indices = [d.index for d in make_detector(method).detect(STEPS, values)]
    for planted in (12, 28):
        assert any(abs(i - planted) <= 1 for i in indices), (planted, indices)


def test_zscore_matches_a_direct_numpy_computation() -> None:
    values = _curve({}, seed=1)
    detector = ZScoreDetector(window_size=6, z_threshold=3.0, min_samples=4)
    z = detector.z_scores(values)
    for i in range(4, values.size):
        window = values[max(0, i - 6) : i]
        assert z[i] == pytest.approx((values[i] - window.mean()) / window.std(ddof=1))
    assert np.isnan(z[:4]).all()


def test_zscore_reports_a_step_once_at_its_onset() -> None:
    values = np.r_[np.tile([1.0, 1.2, 0.9, 1.1], 5), np.full(6, 9.0)]
    found = ZScoreDetector(window_size=10).detect(np.arange(values.size), values)
    assert [d.index for d in found] == [20]


def test_gradient_flags_what_the_reference_formula_flags() -> None:
    values = _curve({15: 6.0}, seed=2)
    gradient = np.gradient(values)
    flagged = np.flatnonzero(np.abs(gradient) > 2.5 * np.std(gradient))
    found = GradientDetector(threshold=2.5).detect(STEPS, values)
    assert len(found) == len(runs(np.isin(np.arange(values.size), flagged)))
    for detection in found:
        assert detection.index in flagged or detection.index - 1 in flagged


def test_pelt_default_penalty_scales_with_noise() -> None:
    values = _curve({}, seed=4)
    diffs = np.diff(values)
    sigma = 1.4826 * np.median(np.abs(diffs - np.median(diffs))) / np.sqrt(2)
    expected = 2 * sigma**2 * np.log(values.size)
    assert PeltDetector().resolved_penalty(values) == pytest.approx(expected)
    assert PeltDetector().resolved_penalty(10 * values) == pytest.approx(100 * expected)
    assert PeltDetector(penalty=3.5).resolved_penalty(values) == 3.5


def test_noise_scale_recovers_the_noise_sd_despite_trend_and_a_jump() -> None:
    rng = np.random.default_rng(0)
    values = np.linspace(0, 5, 2000) + 0.5 * rng.standard_normal(2000)
    values[1000:] += 50
    assert noise_scale(values) == pytest.approx(0.5, rel=0.05)


def test_all_names_every_detector_that_agrees() -> None:
    values = _curve({22: 10.0}, seed=0)
    found = AgreementDetector(
        [ZScoreDetector(), GradientDetector(), PeltDetector()], tolerance=1
    ).detect(STEPS, values)
    jump = next(d for d in found if abs(d.index - 22) <= 1)
    assert jump.methods == ("zscore", "gradient", "pelt")
    assert all(set(d.methods) <= {"zscore", "gradient", "pelt"} for d in found)


def test_agreement_tolerance_zero_keeps_neighbours_apart() -> None:
    class Fixed(ZScoreDetector):
        def __init__(self, name: str, index: int) -> None:
            super().__init__()
            self.name, self.index = name, index  # type: ignore[misc]

        def locate(self, values: np.ndarray) -> list[tuple[int, float]]:
            return [(self.index, 1.0)]

    values = np.arange(12.0)
    a, b = Fixed("a", 5), Fixed("b", 6)
    assert len(AgreementDetector([a, b], tolerance=1).detect(np.arange(12), values)) == 1
    assert len(AgreementDetector([a, b], tolerance=0).detect(np.arange(12), values)) == 2


@pytest.mark.parametrize(
    ("detector", "match"),
    [
        (ZScoreDetector(window_size=1), "window_size"),
        (ZScoreDetector(z_threshold=0), "z_threshold"),
        (GradientDetector(threshold=-1), "threshold"),
        (PeltDetector(cost="ar"), "cost"),
        (PeltDetector(penalty=-1.0), "penalty"),
    ],
)
def test_invalid_parameters_raise(detector: object, match: str) -> None:
    with pytest.raises(DetectorError, match=match):
        detector.detect(STEPS, _curve({}))  # type: ignore[attr-defined]


def test_unknown_method_lists_the_choices() -> None:
    with pytest.raises(DetectorError, match="zscore, gradient, pelt, all"):
        make_detector("cusum")


def test_nan_input_is_refused_by_a_detector() -> None:
    values = _curve({})
    values[3] = np.nan
    with pytest.raises(DetectorError, match="NaN"):
        PeltDetector().detect(STEPS, values)
