"""One before/after comparison record per layer, the analyses that fill it, and the ranking.

Layers are ranked by the change score 1 - linear CKA between the before and after
activations of the same probe rows: 0 when the representation is unchanged up to rotation
and scale, larger the more it changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ndt.analysis.clusters import ClusterComparison, compare_clusters
from ndt.analysis.compare_settings import CompareSettings
from ndt.analysis.matrices import (
    ActivationLike,
    Subsample,
    repeat_labels,
    subsample_rows,
    to_matrix,
)
from ndt.analysis.neurons import NeuronStatistics, neuron_statistics
from ndt.analysis.pca import PCAComparison, compare_pca
from ndt.analysis.separability import ProbeAccuracy, probe_accuracy
from ndt.analysis.similarity import linear_cka
from ndt.core.estimators import compute_metrics
from ndt.core.spectrum import compute_spectrum

CHANGE_SCORE = "1 - linear CKA"


@dataclass(frozen=True)
class LayerComparison:
    """Everything `ndt compare` measures for one layer.

    Attributes:
        layer: Qualified module name.
        shape: Shape of the layer output on the probe, (B, ...).
        n_rows: Rows of its activation matrix (B, or B*T for token outputs).
        n_features: Columns (neurons) of that matrix.
        subsample: The rows PCA, clusters, probe and CKA used, when not all; None if all.
        metrics_before: Every dimensionality metric at the earlier checkpoint (as `track`).
        metrics_after: The same at the later checkpoint.
        neurons: Per-neuron statistics (always over all rows).
        pca: Principal-component comparison.
        clusters: KMeans of each step alone, and the joint phase occupancy.
        probe_before: Linear-probe accuracy before, or None when the probe has no labels.
        probe_after: The same after.
        cka: Linear CKA between before and after.
        row_labels: Class of each analysed row, or None; for figures.
    """

    layer: str
    shape: tuple[int, ...]
    n_rows: int
    n_features: int
    subsample: Subsample | None
    metrics_before: dict[str, float]
    metrics_after: dict[str, float]
    neurons: NeuronStatistics
    pca: PCAComparison
    clusters: ClusterComparison
    probe_before: ProbeAccuracy | None
    probe_after: ProbeAccuracy | None
    cka: float
    row_labels: np.ndarray | None = None

    @property
    def change_score(self) -> float:
        """1 - linear CKA (see the module docstring)."""
        return 1.0 - self.cka


def compare_layer(
    layer: str,
    before: ActivationLike,
    after: ActivationLike,
    *,
    labels: ActivationLike | None = None,
    settings: CompareSettings = CompareSettings(),
    token_axis: bool = True,
) -> LayerComparison:
    """Run every analysis on one layer's outputs at two checkpoints on the same probe.

    Args:
        layer: The layer's name, for the record.
        before: Its output (B, ...) at the earlier checkpoint.
        after: Its output at the later checkpoint, same shape.
        labels: Per-sample class labels (B,), repeated per row for token outputs.
        settings: Analysis parameters.
        token_axis: See `ndt.core.spectrum.as_matrix`.
    """
    shape = tuple(int(s) for s in np.shape(before))
    if shape != tuple(int(s) for s in np.shape(after)):
        raise ValueError(f"layer {layer}: before has shape {shape}, after {tuple(np.shape(after))}")
    spectra = [
        compute_spectrum(x, center=settings.center, token_axis=token_axis) for x in (before, after)
    ]
    metrics = [
        compute_metrics(
            s,
            settings.metrics,
            dormant_tau=settings.dormant_tau,
            definitions=settings.definitions,
        )  # fmt: skip
        for s in spectra
    ]
    neurons = neuron_statistics(
        before,
        after,
        dead_threshold=settings.dead_threshold,
        top_k=settings.top_k,
        token_axis=token_axis,
    )
    a, b = to_matrix(before, token_axis=token_axis), to_matrix(after, token_axis=token_axis)
    n_rows = len(a)
    rows = repeat_labels(labels, n_rows)
    keep, subsample = subsample_rows(
        a.shape[0],
        a.shape[1],
        max_rows=settings.max_rows,
        max_cells=settings.max_cells,
        seed=settings.seed,
    )
    if keep is not None:
        a, b = a[keep], b[keep]
        rows = None if rows is None else rows[keep]
    probes = (None, None)
    if rows is not None:
        probes = tuple(probe_accuracy(m, rows, seed=settings.seed) for m in (a, b))
    return LayerComparison(
        layer=layer,
        shape=shape,
        n_rows=n_rows,
        n_features=int(a.shape[1]),
        subsample=subsample,
        metrics_before=metrics[0],
        metrics_after=metrics[1],
        neurons=neurons,
        pca=compare_pca(a, b, n_components=settings.n_components),
        clusters=compare_clusters(
            a, b, labels=rows, n_clusters=settings.n_clusters, seed=settings.seed
        ),
        probe_before=probes[0],
        probe_after=probes[1],
        cka=linear_cka(a, b),
        row_labels=rows,
    )


def rank_layers(comparisons: Sequence[LayerComparison]) -> list[LayerComparison]:
    """Sort by decreasing change score (1 - CKA), NaN last, ties in the given order."""

    def key(item: tuple[int, LayerComparison]) -> tuple[bool, float, int]:
        score = item[1].change_score
        return (bool(np.isnan(score)), -score if not np.isnan(score) else 0.0, item[0])

    return [c for _, c in sorted(enumerate(comparisons), key=key)]


def compare_activations(
    activations_before: Mapping[str, ActivationLike],
    activations_after: Mapping[str, ActivationLike],
    *,
    labels: ActivationLike | None = None,
    settings: CompareSettings = CompareSettings(),
) -> list[LayerComparison]:
    """`compare_layer` for every layer of `activations_before`, ranked by change score."""
    return rank_layers(
        [
            compare_layer(
                name,
                activations_before[name],
                activations_after[name],
                labels=labels,
                settings=settings,
            )
            for name in activations_before
        ]
    )
