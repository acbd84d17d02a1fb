"""Combining curves into transitions: Cauchy combination, Holm, grouping, the table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ndt.jumps.transitions import (
    MAX_COMBINED_P,
    TRANSITION_COLUMNS,
    cauchy_combination,
    group_intervals,
    holm,
    transitions_frame,
)


def test_cauchy_combination_matches_the_formula() -> None:
    p = np.array([[0.01, 0.2], [0.5, 0.9], [0.03, 0.6]])
    # Liu & Xie (2020): T = mean tan((0.5 - p) pi); p = P(standard Cauchy > T).
    expected = stats.cauchy.sf(np.tan((0.5 - np.minimum(p, MAX_COMBINED_P)) * np.pi).mean(axis=0))
    np.testing.assert_allclose(cauchy_combination(p, axis=0), expected, rtol=1e-12)


def test_cauchy_combination_of_one_p_value_is_itself_and_tiny_ones_keep_their_size() -> None:
    p = np.array([[0.3], [1e-40]])
    np.testing.assert_allclose(cauchy_combination(p, axis=1), [0.3, 1e-40], rtol=1e-9)
    # Two curves with the same tiny p: the combination is that p (a mean of equal terms).
    assert cauchy_combination(np.array([1e-30, 1e-30])) == pytest.approx(1e-30, rel=1e-9)


def test_cauchy_combination_skips_nan_and_survives_p_of_one() -> None:
    combined = cauchy_combination(np.array([1e-8, 1.0, np.nan]))
    assert 1e-8 < combined < 1e-6
    assert cauchy_combination(np.array([np.nan, np.nan])) == 1.0


def test_cauchy_combination_is_valid_for_dependent_uniform_p_values() -> None:
    """Ten curves sharing one Gaussian factor (correlation 0.9): the level holds."""
    rng = np.random.default_rng(0)
    shared = rng.standard_normal((20000, 1))
    z = np.sqrt(0.9) * shared + np.sqrt(0.1) * rng.standard_normal((20000, 10))
    combined = cauchy_combination(2 * stats.norm.sf(np.abs(z)), axis=1)
    assert np.mean(combined < 0.01) < 0.013


def test_holm_matches_the_step_down_definition() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.005, 0.2])
    m = p.size
    order = np.argsort(p)
    running, expected = 0.0, np.empty(m)
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        expected[index] = running
    np.testing.assert_allclose(holm(p), expected)
    assert holm(np.array([])).size == 0


def test_groups_chain_within_tolerance() -> None:
    flags = np.zeros(20, dtype=bool)
    flags[[2, 3, 5, 10, 11, 16]] = True
    assert group_intervals(flags, 1) == [[2, 3], [5], [10, 11], [16]]
    assert group_intervals(flags, 2) == [[2, 3, 5], [10, 11], [16]]


def test_transitions_frame_ranks_by_p_then_breadth() -> None:
    steps = np.array([0, 10, 20, 30, 40, 50, 60])
    interval_p = np.array([1e-3, 0.5, 0.5, 1e-20, 1e-30, 0.5])
    moved = pd.DataFrame(
        {
            "layer": ["a", "a", "b", "c", "a"],
            "metric": ["m"] * 5,
            "prev_step": [0, 30, 30, 30, 40],
            "step": [10, 40, 40, 40, 50],
            "value_before": [1.0] * 5,
            "value_after": [2.0] * 5,
            "score": [5.0, 9.0, 8.0, 7.0, 30.0],
        }
    )
    frame = transitions_frame(steps, interval_p, interval_p * 6, [[0], [3, 4]], moved)
    assert list(frame.columns) == list(TRANSITION_COLUMNS)
    assert frame["rank"].tolist() == [1, 2]
    top = frame.iloc[0]
    # Both p-values of the second group lie below RANK_P_FLOOR; its peak is interval 4.
    assert (top.prev_step, top.step, top.peak_prev_step, top.peak_step) == (30, 50, 40, 50)
    assert top.n_curves == 4 and top.layers == "a,b,c"
    assert top.strongest.startswith("a m 1→2")
    assert frame.iloc[1].p_value == pytest.approx(1e-3)
