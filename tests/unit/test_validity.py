"""ndt.validity: a detector function scored on fixtures with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from ndt.core.jump_detector import JumpDetector
from ndt.jumps import validation
from ndt.validity import (
    Fixture,
    jump_detector_as_callable,
    planted_multi,
    scenario_fixture,
    standard_battery,
    validate_detector,
)


def truth_teller(battery):
    """A detector that returns each fixture's ground truth (looked up by its values)."""
    answers = {fixture.values.tobytes(): list(fixture.ground_truth) for fixture in battery}
    return lambda values: answers[np.asarray(values).tobytes()]


def test_ground_truth_is_scored_exactly():
    battery = standard_battery()
    report = validate_detector(truth_teller(battery), name="truth")
    assert report.valid and report.mean_recall == 1.0 and report.false_positives_on_null == 0
    assert "VERDICT: VALID" in report.render()
    nulls = [r for r in report.results if r.is_null]
    assert nulls and all(r.recall is None for r in nulls)


def test_counts_misses_and_false_positives_by_hand():
    battery = [
        Fixture("two plants", np.zeros(50), ground_truth=(10, 30)),
        Fixture("null", np.zeros(50)),
        Fixture("null, early part not scored", np.zeros(50), score_from=20),
    ]
    report = validate_detector(lambda v: [12, 45], battery=battery, tolerance=2)
    assert [r.recall for r in report.results] == [0.5, None, None]
    # 45 matches no plant: false on the plants fixture too, but only nulls count.
    assert [r.false_positives for r in report.results] == [1, 2, 1]
    assert report.false_positives_on_null == 3 and report.mean_recall == 0.5
    assert "reflect the method" in report.message and not report.valid


def test_scenario_fixture_is_a_validate_detector_run():
    fixture = scenario_fixture("a:step-10", seed=0)
    steps = validation.pythia_steps()
    assert fixture.values.shape == steps.shape
    (k,) = fixture.ground_truth
    assert steps[k] > validation.COLLAPSE_END  # planted in the uniform part
    assert fixture.score_from == np.searchsorted(steps, validation.COLLAPSE_END) + 1
    with pytest.raises(ValueError, match="unknown scenario"):
        scenario_fixture("z:nothing")


def test_jump_detector_wrapper_and_level_checks():
    detector = JumpDetector(window_size=10, z_threshold=3.0)
    wrapped = jump_detector_as_callable(detector)
    values = np.r_[np.zeros(30), np.ones(30) * 5] + np.random.default_rng(0).normal(0, 0.1, 60)
    assert wrapped(values) == [j.step for j in detector.detect_jumps(values)]
    assert 30 in wrapped(values)
    with pytest.raises(ValueError, match="2 changes need 3 levels"):
        planted_multi(changes=(100, 200), levels=(1.0, 2.0))
