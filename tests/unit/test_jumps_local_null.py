"""The local null: the statistic against a plain per-interval loop, calibration, floors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from ndt.errors import DetectorError
from ndt.jumps.local_null import (
    HALF_WINDOW,
    MIN_POINTS,
    TRIM_SDS,
    quantum,
    reference_positions,
    score_intervals,
)


def _loop_reference(values: np.ndarray, k: int, half_window: int) -> tuple[float, int]:
    """t and dof of interval k of an evenly spaced curve, one interval at a time.

    Written from the definition in docs/jumps.md: the 2h nearest intervals j with
    |j - k| >= 2, those within TRIM_SDS robust SDs of their median kept, a straight line
    fitted by numpy.polyfit, and the textbook prediction interval at j = k.
    """
    d = np.diff(values)
    n = d.size
    others = sorted((j for j in range(n) if abs(j - k) >= 2), key=lambda j: (abs(j - k), j > k))
    chosen = np.array(others[: 2 * half_window])
    r = d[chosen]
    spread = 1.4826 * np.median(np.abs(r - np.median(r)))
    keep = np.abs(r - np.median(r)) <= TRIM_SDS * spread
    x, y = (chosen[keep] - k).astype(float), r[keep]
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (intercept + slope * x)
    dof = y.size - 2
    s = np.sqrt(residual @ residual / dof)
    se = s * np.sqrt(1 + 1 / y.size + x.mean() ** 2 / np.sum((x - x.mean()) ** 2))
    return (d[k] - intercept) / se, dof


def test_statistic_matches_a_plain_loop_on_even_spacing() -> None:
    rng = np.random.default_rng(0)
    values = np.cumsum(rng.standard_normal(60)) + np.linspace(0, 5, 60) ** 2
    values[30:] += 8.0
    test = score_intervals(np.arange(60) * 50, values)
    for k in (0, 1, 5, 28, 29, 30, 45, 58):
        t, dof = _loop_reference(values, k, HALF_WINDOW)
        assert test.statistic[k] == pytest.approx(t, rel=1e-9)
        assert test.dof[k] == dof
        assert test.p_value[k] == pytest.approx(2 * stats.t.sf(abs(t), dof), rel=1e-9)
    # values[30:] += 8 puts the step between points 29 and 30: interval index 29.
    assert int(np.argmin(test.p_value)) == 29


def test_planted_step_is_the_smallest_p_value() -> None:
    rng = np.random.default_rng(1)
    values = np.cumsum(rng.standard_normal(60))
    values[30:] += 10.0
    test = score_intervals(np.arange(60) * 50, values)
    assert int(np.argmin(test.p_value)) == 29
    assert test.p_value[29] < 1e-6


@pytest.mark.parametrize("spacing", ["uniform", "log-then-uniform"])
def test_p_values_are_calibrated_on_a_diffusion(spacing: str) -> None:
    """A random walk in training steps (the model's null): P(p < a) close to a."""
    steps = np.arange(60) * 50
    if spacing == "log-then-uniform":
        steps = np.concatenate([[0, 1, 2, 4, 8, 16, 32, 64, 128], 150 + 50 * np.arange(51)])
    rng = np.random.default_rng(2)
    p_values = []
    for _ in range(300):
        walk = np.concatenate([[0.0], np.cumsum(rng.standard_normal(59) * np.sqrt(np.diff(steps)))])
        p_values.append(score_intervals(steps, walk).p_value)
    p = np.concatenate(p_values)
    for level in (0.05, 0.01):
        # 17,700 tests: three binomial SDs around the nominal rate, and a little slack for
        # the trimming, which drops a neighbour now and then.
        sd = np.sqrt(level * (1 - level) / p.size)
        assert abs(np.mean(p < level) - level) < 3 * sd + 0.15 * level


def test_a_staircase_of_unit_steps_is_not_a_jump() -> None:
    """An integer count that rises by one now and then: each unit step is rounding."""
    values = np.floor(np.linspace(2, 9, 50))
    test = score_intervals(np.arange(50) * 50, values)
    assert quantum(values) == 1.0
    assert test.p_value.min() > 1e-3
    jumped = values.copy()
    jumped[30:] += 5
    assert score_intervals(np.arange(50) * 50, jumped).p_value[29] < 1e-6


def test_flat_curve_gives_no_signal() -> None:
    test = score_intervals(np.arange(20), np.zeros(20))
    assert np.all(test.statistic == 0) and np.all(test.p_value == 1)


def test_reference_prefers_comparable_spacing_and_skips_neighbours() -> None:
    steps = (0, 1, 2, 4, 8, 16, 32, 64, 128, 150, 200, 250, 300, 350, 400, 450, 500)
    chosen = reference_positions(steps, 2)
    # Interval 12 (300->350, a gap of 50): the nearest gap-50 intervals two or more away.
    assert set(chosen[12]) == {9, 10, 14, 15}
    # Interval 3 (4->8) has no interval of a comparable gap two or more away, so it takes
    # the nearest ones, whatever their spacing.
    assert set(chosen[3]) == {0, 1, 5, 6}


def test_bad_curves_are_refused() -> None:
    with pytest.raises(DetectorError, match=f"at least {MIN_POINTS}"):
        score_intervals(np.arange(5), np.zeros(5))
    with pytest.raises(DetectorError, match="increase strictly"):
        score_intervals(np.array([0, 1, 1, 2, 3, 4, 5, 6, 7, 8]), np.zeros(10))


def test_declared_resolution_floors_an_integer_curve_that_looks_continuous() -> None:
    """A count rising by exactly one per checkpoint has every value distinct, so `quantum`
    sees no grid and the noise floor is float resolution: one extra unit is then an
    enormous statistic. Declared integer-valued (resolution 1, from the registry), the
    floor is the rounding's SD 1/sqrt(6) per change, and one extra unit is about 2.4 SDs."""
    values = np.arange(40, dtype=float)
    values[20:] += 1.0  # the change from 19 to 20 is 2, the others 1
    steps = np.arange(40) * 10
    assert quantum(values) == 0.0
    inferred = score_intervals(steps, values)
    declared = score_intervals(steps, values, resolution=1.0)
    assert inferred.p_value[19] < 1e-9
    # The reference changes are all exactly 1: the fit leaves no residual, so the
    # denominator is the floor times the prediction-interval factor, at least the floor.
    assert abs(declared.statistic[19]) <= 1.0 / (1.0 / np.sqrt(6.0)) + 1e-9
    assert declared.p_value[19] > 0.01
