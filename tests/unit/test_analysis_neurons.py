import numpy as np
import pytest
import torch

from ndt.analysis.neurons import compute_neuron_statistics, neuron_statistics


def test_dead_counts_equal_direct_count():
    rng = np.random.default_rng(0)
    before = np.maximum(rng.normal(size=(100, 30)) + rng.normal(size=30) * 2, 0)
    after = np.maximum(rng.normal(size=(100, 30)) + rng.normal(size=30) * 2 - 1, 0)
    stats = neuron_statistics(before, after, dead_threshold=0.8)
    dead_b = (before == 0).mean(0) > 0.8
    dead_a = (after == 0).mean(0) > 0.8
    counts = stats.counts()
    assert counts["n_dead_before"] == dead_b.sum()
    assert counts["n_dead_after"] == dead_a.sum()
    assert counts["n_became_dead"] == (~dead_b & dead_a).sum()
    assert counts["n_became_alive"] == (dead_b & ~dead_a).sum()
    assert counts["n_dead_after"] > counts["n_dead_before"]


def test_top_changes_and_token_rows():
    before = torch.zeros(4, 3, 5)
    after = torch.zeros(4, 3, 5)
    after[..., 2] = 3.0
    after[..., 4] = -1.0
    stats = neuron_statistics(before, after, top_k=2)
    assert [c.index for c in stats.top_changes] == [2, 4]
    assert stats.top_changes[1].delta_mean == pytest.approx(-1.0)
    assert stats.counts()["n_neurons"] == 5
    assert stats.counts()["n_became_alive"] == 2  # all-zero before: dead; nonzero after


def test_reference_name_on_dicts():
    x = {"a": np.eye(4), "b": np.ones((4, 2, 2, 2))}
    out = compute_neuron_statistics(x, x)
    assert out["b"].mean_before.shape == (8,)
    np.testing.assert_array_equal(out["a"].mean_change, 0)
    with pytest.raises(ValueError, match="dead_threshold"):
        neuron_statistics(np.eye(2), np.eye(2), dead_threshold=2)
