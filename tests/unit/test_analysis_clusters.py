from collections import Counter

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler

from ndt.analysis.clusters import (
    cluster_activations_by_phase,
    cluster_purity,
    compare_clusters,
    phase_occupancy,
)


def _blobs(rng, labels, centers, noise=0.3):
    return centers[labels] + noise * rng.normal(size=(len(labels), centers.shape[1]))


def _sklearn_kmeans(x, k, seed):
    return KMeans(k, random_state=seed, n_init=4).fit_predict(StandardScaler().fit_transform(x))


def _count_purity(clusters, labels):
    """Rows whose label is the most common one of their cluster, counted one cluster at a time."""
    members = {}
    for cluster, label in zip(clusters.tolist(), labels.tolist(), strict=True):
        members.setdefault(cluster, []).append(label)
    return sum(Counter(m).most_common(1)[0][1] for m in members.values()) / len(labels)


def _count_occupancy(joint_before, joint_after, min_share):
    shared = 0
    for cluster in set(joint_after.tolist()):
        n_b, n_a = int((joint_before == cluster).sum()), int((joint_after == cluster).sum())
        if n_b >= min_share * (n_b + n_a):
            shared += n_a
    return shared / len(joint_after)


def test_each_step_clustered_alone_equals_sklearn():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 40)
    before = _blobs(rng, labels, rng.normal(size=(3, 6)) * 5)
    after = _blobs(rng, rng.permutation(labels), rng.normal(size=(3, 6)) * 5)
    result = compare_clusters(before, after, labels=labels, n_clusters=4, seed=1)
    ref_b, ref_a = _sklearn_kmeans(before, 4, 1), _sklearn_kmeans(after, 4, 1)
    np.testing.assert_array_equal(result.before.assignment, ref_b)
    np.testing.assert_array_equal(result.after.assignment, ref_a)
    assert result.before.sizes.tolist() == np.bincount(ref_b, minlength=4).tolist()
    assert result.ari_before_vs_after == pytest.approx(adjusted_rand_score(ref_b, ref_a))
    assert result.before.purity == pytest.approx(_count_purity(ref_b, labels))
    assert result.after.purity == pytest.approx(_count_purity(ref_a, labels))
    assert result.before.ari_vs_labels == pytest.approx(adjusted_rand_score(labels, ref_b))
    assert result.after.ari_vs_labels == pytest.approx(adjusted_rand_score(labels, ref_a))
    # The after rows were given shuffled classes: structure before, none after.
    assert result.before.purity > 0.95 and result.after.purity < 0.7
    joint = _sklearn_kmeans(np.vstack([before, after]), 4, 1)
    table = np.stack([np.bincount(joint[:120], minlength=4), np.bincount(joint[120:], minlength=4)])
    assert result.joint_contingency.tolist() == table.T.tolist()
    expected = _count_occupancy(joint[:120], joint[120:], result.occupancy_min_share)
    assert result.phase_occupancy == pytest.approx(expected)


def test_translation_leaves_purity_and_ari_unchanged():
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(4), 30)
    before = _blobs(rng, labels, rng.normal(size=(4, 8)) * 4, noise=1.0)
    after = before + 1000.0 * rng.normal(size=8)
    result = compare_clusters(before, after, labels=labels, n_clusters=5, seed=0)
    ref = _sklearn_kmeans(before, 5, 0)
    assert result.ari_before_vs_after == pytest.approx(1.0)
    assert adjusted_rand_score(result.before.assignment, ref) == pytest.approx(1.0)
    assert adjusted_rand_score(result.after.assignment, ref) == pytest.approx(1.0)
    purity = _count_purity(ref, labels)
    assert result.before.purity == pytest.approx(purity)
    assert result.after.purity == pytest.approx(purity)
    assert result.after.ari_vs_labels == pytest.approx(adjusted_rand_score(labels, ref))
    assert result.before.ari_vs_labels == pytest.approx(result.after.ari_vs_labels)
    # The clouds no longer overlap: no joint cluster holds rows of both steps.
    assert result.phase_occupancy == 0.0
    assert (result.joint_contingency.min(1) == 0).all()


def test_unchanged_step_occupies_every_cluster():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(60, 5))
    result = compare_clusters(x, x.copy(), n_clusters=3, seed=0)
    assert result.phase_occupancy == 1.0
    assert result.ari_before_vs_after == pytest.approx(1.0)
    assert (result.joint_contingency[:, 0] == result.joint_contingency[:, 1]).all()
    assert np.isnan(result.before.purity) and np.isnan(result.after.ari_vs_labels)


def test_phase_occupancy_known_answer():
    # Cluster 0 is half before-rows, cluster 1 one row in 31 (< 10 %), cluster 2 none.
    table = [[10, 10], [1, 30], [0, 20]]
    assert phase_occupancy(table, 0.1) == pytest.approx(10 / 60)
    assert phase_occupancy(table, 0.03) == pytest.approx(40 / 60)
    with pytest.raises(ValueError, match="min_share"):
        phase_occupancy(table, 0.0)


def test_bad_input():
    x = np.zeros((10, 2))
    with pytest.raises(ValueError, match="9 labels for 10 rows"):
        compare_clusters(x, x, labels=np.arange(9))
    with pytest.raises(ValueError, match="shape"):
        compare_clusters(x, np.zeros((10, 3)))


def test_purity_known_answer():
    assert cluster_purity([0, 0, 0, 1, 1], [1, 1, 2, 3, 3]) == pytest.approx(4 / 5)


def test_phases_distribution():
    rng = np.random.default_rng(2)
    acts = {1: {"l": rng.normal(size=(20, 3))}, 2: {"l": rng.normal(size=(20, 3)) + 50}}
    out = cluster_activations_by_phase(acts, n_clusters=2, seed=0)["l"]
    assert sorted(out.distribution[1].tolist()) == [0, 20]
    assert sorted(out.distribution[2].tolist()) == [0, 20]
