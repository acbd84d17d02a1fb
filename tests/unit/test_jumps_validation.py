"""The validity harness: its checkpoint schedule, its null fit, and its counting."""

from __future__ import annotations

import numpy as np
import pytest

from ndt.jumps.significance import ar1_noise
from ndt.jumps.validation import checkpoint_steps, fit_null, validate_detector


def test_checkpoint_steps_are_log_then_linear() -> None:
    steps = checkpoint_steps(40)
    assert steps.size == 40 and steps[0] == 0 and np.all(np.diff(steps) > 0)
    assert np.all(np.diff(steps[-20:]) == 50)
    assert np.diff(steps[:8]).max() < 50


def test_fit_null_recovers_noise_level_and_autocorrelation() -> None:
    rng = np.random.default_rng(0)
    x = np.linspace(-1, 1, 400)
    curve = 3 + x - x**3 + 0.2 * ar1_noise(rng, 1, 400, 0.5)[0]
    trend, sigma, phi = fit_null(curve)
    assert sigma == pytest.approx(0.2, rel=0.15)
    assert phi == pytest.approx(0.5, abs=0.1)
    np.testing.assert_allclose(trend, 3 + x - x**3, atol=0.1)


def test_counts_follow_the_thresholds_and_repeat() -> None:
    report = validate_detector("gradient", n_curves=4, seed=1)
    assert report == validate_detector("gradient", n_curves=4, seed=1)
    for s in report.scenarios:
        assert s.n_curves == 4 and s.n_points == 40
        ok = s.value >= s.threshold if s.measure == "recall" else s.value <= s.threshold
        assert s.passed == ok
        if s.measure == "recall":
            assert s.value <= s.raw_value <= 1
    assert report.passed == all(s.passed for s in report.scenarios)
