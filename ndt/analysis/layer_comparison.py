"""One before/after comparison record per layer, the analyses that fill it, and the ranking.

Layers are ranked by the change score 1 - linear CKA between the before and after
activations of the same probe rows: 0 when the representation is unchanged up to rotation
and scale, larger the more it changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from ndt.analysis.clusters import ClusterComparison, StepClusters, compare_clusters
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


def _floats(values: np.ndarray) -> list[float | None]:
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(values, dtype=float)]


def _num(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def _clusters_to_dict(c: ClusterComparison) -> dict[str, object]:
    def step(s: StepClusters) -> dict[str, object]:
        return {
            "sizes": s.sizes.tolist(),
            "purity": _num(s.purity),
            "ari_vs_labels": _num(s.ari_vs_labels),
        }

    return {
        "n_clusters": c.n_clusters,
        "seed": c.seed,
        "before": step(c.before),
        "after": step(c.after),
        "ari_before_vs_after": _num(c.ari_before_vs_after),
        "joint": {
            "contingency": c.joint_contingency.tolist(),
            "phase_occupancy": _num(c.phase_occupancy),
            "occupancy_min_share": c.occupancy_min_share,
        },
    }


def layer_to_dict(c: LayerComparison) -> dict[str, object]:
    """The JSON form of one layer's record (schema in docs/commands/compare.md)."""
    n, p = c.neurons, c.pca
    probe = None
    if c.probe_before is not None and c.probe_after is not None:
        probe = {
            "before": {k: _num(v) for k, v in asdict(c.probe_before).items()},
            "after": {k: _num(v) for k, v in asdict(c.probe_after).items()},
        }
    return {
        "layer": c.layer,
        "shape": list(c.shape),
        "n_rows": c.n_rows,
        "n_features": c.n_features,
        "subsample": None if c.subsample is None else asdict(c.subsample),
        "change_score": _num(c.change_score),
        "cka": _num(c.cka),
        "metrics": {
            name: {"before": _num(c.metrics_before[name]), "after": _num(c.metrics_after[name])}
            for name in c.metrics_before
        },
        "neurons": {
            "dead_threshold": n.dead_threshold,
            **n.counts(),
            "mean_abs_delta_mean": _num(float(n.mean_change.mean())),
            "max_abs_delta_mean": _num(float(n.mean_change.max())),
            "top_changes": [asdict(t) for t in n.top_changes],
        },
        "pca": {
            "n_components": p.n_components,
            "explained_variance_ratio_before": _floats(p.explained_variance_ratio_before),
            "explained_variance_ratio_after": _floats(p.explained_variance_ratio_after),
            "joint_explained_variance_ratio": _floats(p.joint_explained_variance_ratio),
            "centroid_shift": _floats(p.centroid_shift),
            "centroid_distance": _num(p.centroid_distance),
            "principal_angles_deg": _floats(p.principal_angles),
            "subspace_overlap": _num(p.subspace_overlap),
        },
        "clusters": _clusters_to_dict(c.clusters),
        "linear_probe": probe,
    }
