"""The validity harness: its schedule, its noise unit, and its counting."""

from __future__ import annotations

import numpy as np

from ndt.jumps.validation import ar1, pythia_steps, validate_detector


def test_schedule_is_log_spaced_to_128_then_every_50() -> None:
    steps = pythia_steps(40)
    assert steps[:9].tolist() == [0, 1, 2, 4, 8, 16, 32, 64, 128]
    assert steps[9] == 150 and np.all(np.diff(steps[9:]) == 50) and steps.size == 49


def test_noise_unit_is_the_sd_of_a_change() -> None:
    for phi in (0.0, 0.5, 0.8):
        rng = np.random.default_rng(0)
        changes = np.concatenate([np.diff(ar1(rng, 400, phi)) for _ in range(50)])
        assert abs(changes.std() - 1.0) < 0.05


def test_counts_repeat_and_follow_the_thresholds() -> None:
    report = validate_detector(n_runs=5, seed=1)
    assert report == validate_detector(n_runs=5, seed=1)
    for s in report.scenarios:
        assert 0.0 <= s.value <= 1.0
        assert s.passed == (s.threshold is None or s.value >= s.threshold)
    assert report.passed == all(s.passed for s in report.scenarios)


def test_large_steps_are_found_and_null_runs_stay_clean() -> None:
    """30 runs per scenario (the CLI's default is 200; docs/jumps.md has the figures)."""
    report = validate_detector(n_runs=30, seed=0)
    by_name = {s.name: s for s in report.scenarios}
    assert by_name["a:step-10"].value >= 0.9
    assert by_name["e:two-steps"].value >= 0.9
    assert by_name["b:null"].value >= 0.9 and by_name["c:ar1-0.8"].value >= 0.9
