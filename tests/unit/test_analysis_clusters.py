import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler

from ndt.analysis.clusters import cluster_activations_by_phase, cluster_purity, compare_clusters


def _blobs(rng, labels, centers, noise=0.3):
    return centers[labels] + noise * rng.normal(size=(len(labels), centers.shape[1]))


def test_ari_equals_sklearn_and_contingency_sums():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 40)
    before = _blobs(rng, labels, rng.normal(size=(3, 6)) * 5)
    after = _blobs(rng, rng.permutation(labels), rng.normal(size=(3, 6)) * 5)
    result = compare_clusters(before, after, labels=labels, n_clusters=4, seed=1)
    joint = StandardScaler().fit_transform(np.vstack([before, after]))
    ref = KMeans(4, random_state=1, n_init=4).fit_predict(joint)
    np.testing.assert_array_equal(np.concatenate([result.labels_before, result.labels_after]), ref)
    assert result.adjusted_rand_index == pytest.approx(adjusted_rand_score(ref[:120], ref[120:]))
    assert result.contingency.sum(0).tolist() == [120, 120]
    assert result.purity_before > 0.95 and result.purity_after < 0.7


def test_same_partition_gives_ari_one():
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(3), 30)
    x = _blobs(rng, labels, np.eye(3) * 20)
    result = compare_clusters(x, x + 100, n_clusters=6, seed=0)
    assert result.adjusted_rand_index == pytest.approx(1.0)
    assert np.isnan(result.purity_before)


def test_purity_known_answer():
    assert cluster_purity([0, 0, 0, 1, 1], [1, 1, 2, 3, 3]) == pytest.approx(4 / 5)


def test_phases_distribution():
    rng = np.random.default_rng(2)
    acts = {1: {"l": rng.normal(size=(20, 3))}, 2: {"l": rng.normal(size=(20, 3)) + 50}}
    out = cluster_activations_by_phase(acts, n_clusters=2, seed=0)["l"]
    assert sorted(out.distribution[1].tolist()) == [0, 20]
    assert sorted(out.distribution[2].tolist()) == [0, 20]
