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
