"""KMeans on the standardized joint activations of two checkpoints (reference §3.2): which
clusters each phase occupies, whether samples keep their cluster-mates (adjusted Rand index,
Hubert & Arabie 1985), and how pure the clusters are against the probe's labels."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ndt.analysis.rows import ActivationLike, few_threads, stack_steps, to_matrix


@dataclass(frozen=True)
class ClusterComparison:
    """KMeans over the rows of both checkpoints together.

    Attributes:
        n_clusters: k.
        seed: random_state of KMeans.
        contingency: Rows per cluster and phase, shape (k, 2): column 0 before, 1 after.
        adjusted_rand_index: ARI between the clusters of each row before and of the same
            row after (1: the same partition of the probe; about 0: unrelated).
        purity_before: Share of before rows whose cluster's majority label is their own,
            or NaN without labels.
        purity_after: The same after.
        labels_before: Cluster of each before row, shape (n_rows,).
        labels_after: Cluster of each after row, shape (n_rows,).
    """

    n_clusters: int
    seed: int
    contingency: NDArray[np.int64]
    adjusted_rand_index: float
    purity_before: float
    purity_after: float
    labels_before: NDArray[np.int64]
    labels_after: NDArray[np.int64]


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


def _kmeans(matrix: NDArray[np.float64], n_clusters: int, seed: int) -> NDArray[np.int64]:
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import StandardScaler

    scaled = StandardScaler().fit_transform(matrix)
    model = KMeans(n_clusters=n_clusters, random_state=seed, n_init=4)
    with few_threads(scaled.size):
        return model.fit_predict(scaled).astype(np.int64)


def compare_clusters(
    before: ActivationLike,
    after: ActivationLike,
    *,
    labels: np.ndarray | None = None,
    n_clusters: int = 5,
    seed: int = 42,
) -> ClusterComparison:
    """Cluster the stacked before and after rows and compare the two phases.

    Args:
        before: (n_rows, n_features) matrix or (B, ...) activation at the earlier checkpoint.
        after: The same rows at the later checkpoint.
        labels: Optional class of each row, shape (n_rows,), for purity.
        n_clusters: k of KMeans; capped at the number of rows.
        seed: KMeans' random_state.
    """
    from sklearn.metrics import adjusted_rand_score

    a, b = to_matrix(before), to_matrix(after)
    if a.shape != b.shape:
        raise ValueError(f"before has shape {a.shape} but after has {b.shape}")
    if n_clusters < 1:
        raise ValueError(f"n_clusters must be at least 1, got {n_clusters}")
    k = min(n_clusters, 2 * len(a))
    assigned = _kmeans(np.vstack([a, b]), k, seed)
    first, second = assigned[: len(a)], assigned[len(a) :]
    table = np.stack([np.bincount(first, minlength=k), np.bincount(second, minlength=k)], 1)
    purity = (float("nan"), float("nan"))
    if labels is not None:
        purity = (cluster_purity(first, labels), cluster_purity(second, labels))
    return ClusterComparison(
        n_clusters=k,
        seed=seed,
        contingency=table.astype(np.int64),
        adjusted_rand_index=float(adjusted_rand_score(first, second)),
        purity_before=purity[0],
        purity_after=purity[1],
        labels_before=first,
        labels_after=second,
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
