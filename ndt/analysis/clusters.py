"""KMeans views of two checkpoints of one layer (reference §3.2).

Each checkpoint's rows are clustered on their own (standardized, same k and seed), so a
step's purity against the probe labels and its ARI against the labels say how much class
structure that step has, whatever happened to the other step. The adjusted Rand index
between the two partitions of the same probe rows (Hubert & Arabie 1985) says whether
samples keep their cluster-mates. Translating a step's cloud, or rescaling its features,
changes none of these. Only the *phase occupancy* clusters both steps together: the share
of after-rows that land in joint clusters the before-rows also occupy; it is low when the
cloud moved, whether or not its class structure survived.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ndt.analysis.matrices import ActivationLike, few_threads, stack_steps, to_matrix

OCCUPANCY_MIN_SHARE = 0.1


@dataclass(frozen=True)
class StepClusters:
    """KMeans fitted to one checkpoint's rows alone.

    Attributes:
        assignment: Cluster of each row, shape (n_rows,).
        sizes: Rows per cluster, shape (k,).
        purity: Share of rows whose cluster's most frequent label is their own, or NaN
            without labels.
        ari_vs_labels: Adjusted Rand index between the clusters and the labels (about 0 for
            clusters unrelated to the classes, 1 when they are the classes), or NaN.
    """

    assignment: NDArray[np.int64]
    sizes: NDArray[np.int64]
    purity: float
    ari_vs_labels: float


@dataclass(frozen=True)
class ClusterComparison:
    """Per-step KMeans of the before and after rows, and the joint phase occupancy.

    Attributes:
        n_clusters: k, the same for every clustering.
        seed: random_state of KMeans.
        before: Clusters of the before rows, fitted to them alone.
        after: Clusters of the after rows, fitted to them alone.
        ari_before_vs_after: ARI between `before.assignment` and `after.assignment`, the two
            partitions of the same probe rows (1: every row keeps its cluster-mates; about 0:
            unrelated partitions).
        joint_contingency: Rows per cluster of the joint KMeans (both steps stacked) and
            step, shape (k, 2): column 0 before, column 1 after.
        phase_occupancy: Share of after-rows in joint clusters of which before-rows make up
            at least `occupancy_min_share` (1: the after cloud lies where the before cloud
            was; 0: it moved away). Says nothing about class structure.
        occupancy_min_share: That threshold.
    """

    n_clusters: int
    seed: int
    before: StepClusters
    after: StepClusters
    ari_before_vs_after: float
    joint_contingency: NDArray[np.int64]
    phase_occupancy: float
    occupancy_min_share: float


def cluster_purity(clusters: np.ndarray, labels: np.ndarray) -> float:
    """Sum over clusters of the count of their most frequent label, over all rows."""
    clusters, labels = np.asarray(clusters).reshape(-1), np.asarray(labels).reshape(-1)
    if clusters.size == 0:
        return float("nan")
    total = 0
    for cluster in np.unique(clusters):
        _, counts = np.unique(labels[clusters == cluster], return_counts=True)
        total += int(counts.max())
    return total / clusters.size


def phase_occupancy(contingency: np.ndarray, min_share: float = OCCUPANCY_MIN_SHARE) -> float:
    """Share of after-rows in clusters whose rows are at least `min_share` before-rows.

    Args:
        contingency: Rows per cluster and step, shape (k, 2): column 0 before, 1 after.
        min_share: Smallest share of a cluster's rows that must be before-rows for the
            cluster to count as occupied by the before step, in (0, 1].
    """
    if not 0 < min_share <= 1:
        raise ValueError(f"min_share must lie in (0, 1], got {min_share}")
    table = np.asarray(contingency, dtype=np.float64).reshape(-1, 2)
    n_after = table[:, 1].sum()
    if n_after == 0:
        return float("nan")
    totals = table.sum(1)
    shared = (totals > 0) & (table[:, 0] >= min_share * totals)
    return float(table[shared, 1].sum() / n_after)


def _kmeans(matrix: NDArray[np.float64], n_clusters: int, seed: int) -> NDArray[np.int64]:
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import StandardScaler

    scaled = StandardScaler().fit_transform(matrix)
    model = KMeans(n_clusters=n_clusters, random_state=seed, n_init=4)
    with few_threads(scaled.size):
        return model.fit_predict(scaled).astype(np.int64)


def _step_clusters(
    matrix: NDArray[np.float64], labels: np.ndarray | None, k: int, seed: int
) -> StepClusters:
    from sklearn.metrics import adjusted_rand_score

    assignment = _kmeans(matrix, k, seed)
    purity = ari = float("nan")
    if labels is not None:
        purity = cluster_purity(assignment, labels)
        ari = float(adjusted_rand_score(labels, assignment))
    sizes = np.bincount(assignment, minlength=k).astype(np.int64)
    return StepClusters(assignment, sizes, purity, ari)


def compare_clusters(
    before: ActivationLike,
    after: ActivationLike,
    *,
    labels: np.ndarray | None = None,
    n_clusters: int = 5,
    seed: int = 42,
    occupancy_min_share: float = OCCUPANCY_MIN_SHARE,
) -> ClusterComparison:
    """Cluster each step's rows alone and both together, and compare.

    Args:
        before: (n_rows, n_features) matrix or (B, ...) activation at the earlier checkpoint.
        after: The same rows at the later checkpoint.
        labels: Optional class of each row, shape (n_rows,), for purity and ARI vs labels.
        n_clusters: k of every KMeans; capped at the number of rows.
        seed: KMeans' random_state.
        occupancy_min_share: See `phase_occupancy`.
    """
    from sklearn.metrics import adjusted_rand_score

    a, b = to_matrix(before), to_matrix(after)
    if a.shape != b.shape:
        raise ValueError(f"before has shape {a.shape} but after has {b.shape}")
    if n_clusters < 1:
        raise ValueError(f"n_clusters must be at least 1, got {n_clusters}")
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)
        if len(labels) != len(a):
            raise ValueError(f"{len(labels)} labels for {len(a)} rows")
    k = min(n_clusters, len(a))
    first, second = (_step_clusters(m, labels, k, seed) for m in (a, b))
    joint = _kmeans(np.vstack([a, b]), k, seed)
    table = np.stack(
        [np.bincount(joint[: len(a)], minlength=k), np.bincount(joint[len(a) :], minlength=k)], 1
    ).astype(np.int64)
    return ClusterComparison(
        n_clusters=k,
        seed=seed,
        before=first,
        after=second,
        ari_before_vs_after=float(adjusted_rand_score(first.assignment, second.assignment)),
        joint_contingency=table,
        phase_occupancy=phase_occupancy(table, occupancy_min_share),
        occupancy_min_share=occupancy_min_share,
    )


@dataclass(frozen=True)
class PhaseClusters:
    """KMeans over several checkpoints of one layer (reference `cluster_activations_by_phase`).

    Attributes:
        cluster_labels: Cluster of every row, all steps stacked, (n_steps * n_rows,).
        step_labels: The step each row came from.
        distribution: step -> rows per cluster, shape (k,).
    """

    cluster_labels: NDArray[np.int64]
    step_labels: NDArray[np.int64]
    distribution: dict[int, NDArray[np.int64]]


def cluster_activations_by_phase(
    activations_by_step: Mapping[int, Mapping[str, ActivationLike]],
    n_clusters: int = 5,
    seed: int = 42,
) -> dict[str, PhaseClusters]:
    """Standardize and cluster each layer's rows over all steps (step -> layer -> activation)."""
    steps = sorted(activations_by_step)
    if not steps:
        return {}
    results = {}
    for layer in activations_by_step[steps[0]]:
        rows, step_labels = stack_steps(activations_by_step, layer)
        assigned = _kmeans(rows, min(n_clusters, len(rows)), seed)
        k = int(assigned.max()) + 1
        distribution = {s: np.bincount(assigned[step_labels == s], minlength=k) for s in steps}
        results[layer] = PhaseClusters(assigned, step_labels, distribution)
    return results
