"""The reference API: JumpDetector(window_size, z_threshold, min_samples).detect_jumps."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import ndt
from ndt.core.jump_detector import Jump, JumpDetector


def test_reference_call_finds_the_jump_with_its_fields() -> None:
    wiggle = 0.05 * np.tile([1.0, -1.0, 0.5, -0.5, 0.0], 8)
    values = np.r_[np.ones(30), np.full(10, 3.0)] + wiggle
    detector = JumpDetector(window_size=20, z_threshold=3.0, min_samples=10)
    jumps = detector.detect_jumps(values, metric_name="stable_rank", step_offset=1000)
    assert [j.step for j in jumps] == [1030]
    jump = jumps[0]
    window = values[10:30]
    assert jump.value_before == pytest.approx(window.mean())
    assert jump.value_after == values[30]
    assert jump.z_score == pytest.approx((values[30] - window.mean()) / window.std(ddof=1))
    assert jump.metric_name == "stable_rank"


def test_jump_is_frozen_and_exported_from_ndt() -> None:
    assert ndt.Jump is Jump and ndt.JumpDetector is JumpDetector
    jump = Jump(step=1, z_score=4.0, value_before=1.0, value_after=2.0, metric_name="m")
    with pytest.raises(dataclasses.FrozenInstanceError):
        jump.step = 2  # type: ignore[misc]


def test_nan_points_are_skipped_and_steps_keep_their_positions() -> None:
    values = np.r_[np.tile([1.0, 1.1, 0.9], 4), np.nan, np.full(5, 6.0)]
    jumps = JumpDetector(window_size=10, z_threshold=3.0, min_samples=5).detect_jumps(values)
    assert [j.step for j in jumps] == [13]


def test_short_series_gives_no_jump() -> None:
    assert JumpDetector(min_samples=20).detect_jumps(np.arange(10.0)) == []


def test_direction_keeps_rises_or_falls():
    rng = np.random.default_rng(0)
    values = np.r_[np.full(30, 10.0), np.full(30, 20.0), np.full(30, 5.0)]
    values += 0.05 * rng.standard_normal(values.size)
    detector = JumpDetector(window_size=10, z_threshold=3.0, min_samples=5)
    up = detector.detect_jumps_with_direction(values, direction="up")
    down = detector.detect_jumps_with_direction(values, direction="down")
    assert 30 in [j.step for j in up] and 60 in [j.step for j in down]
    assert all(j.value_after > j.value_before for j in up)
    assert all(j.value_after < j.value_before for j in down)
    both = detector.detect_jumps(values)
    assert sorted(j.step for j in up + down) == [j.step for j in both]
    with pytest.raises(ValueError, match="direction must be"):
        detector.detect_jumps_with_direction(values, direction="sideways")


def test_rolling_statistics_match_numpy_windows():
    values = np.arange(20.0) ** 1.5
    detector = JumpDetector(window_size=4, z_threshold=3.0, min_samples=3)
    means, stds, z = detector.compute_rolling_statistics(values)
    assert (means[:3] == 0).all() and (stds[:3] == 0).all() and (z[:3] == 0).all()
    for i in range(3, 20):
        window = values[max(0, i - 4) : i]
        assert means[i] == pytest.approx(window.mean())
        assert stds[i] == pytest.approx(window.std(ddof=1))
        assert z[i] == pytest.approx((values[i] - window.mean()) / window.std(ddof=1))
    with pytest.raises(ValueError, match="cannot be empty"):
        detector.compute_rolling_statistics([])
    assert detector.detect_jumps([]) == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"window_size": 0}, "window_size"), ({"z_threshold": -1}, "z_threshold"),
     ({"min_samples": 0}, "min_samples must be >= 1")],
)  # fmt: skip
def test_constructor_checks(kwargs, match):
    with pytest.raises(ValueError, match=match):
        JumpDetector(**kwargs)
