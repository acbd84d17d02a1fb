"""The record of one `ndt compare`: a tree of frozen dataclasses holding every reported number.

`ndt.replay.compare.compare_run` builds it once, and each output is a function of it alone:
`record_to_dict` here (the JSON document: the tree's fields, in order, as keys; schema in
docs/commands/compare.md), `ndt.visualization.compare_report` (Markdown and HTML with
figures) and `ndt_cli/_compare_terminal.py` (the terminal's tables). The two human formats lay
the numbers out through `ndt.visualization.compare_layout`, so a number added here reaches
JSON at once and the tables through one function there (a test checks that every number of
the JSON is shown).

Fields marked ``metadata={"json": False}`` hold the per-row and per-neuron arrays behind the
report's figures; they are not numbers to report and the JSON leaves them out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path, PurePath

import numpy as np
from numpy.typing import NDArray

from ndt.analysis.clusters import StepClusters
from ndt.analysis.compare_settings import CompareSettings
from ndt.analysis.layer_comparison import LayerComparison
from ndt.analysis.matrices import Subsample
from ndt.analysis.neurons import NeuronChange
from ndt.analysis.separability import ProbeAccuracy

#: Field metadata of values that the JSON (and the tables) leave out.
NOT_IN_JSON = {"json": False}


@dataclass(frozen=True)
class BeforeAfter:
    """One metric at the earlier and at the later checkpoint."""

    before: float
    after: float


@dataclass(frozen=True)
class NeuronRecord:
    """Neuron counts and the largest changes of mean activation (over all rows).

    Attributes:
        dead_threshold: Sparsity above which a neuron counts as dead.
        n_neurons: Columns of the activation matrix.
        n_dead_before: Dead neurons at the earlier checkpoint.
        n_dead_after: Dead neurons at the later one.
        n_became_dead: Alive before, dead after.
        n_became_alive: Dead before, alive after.
        mean_abs_delta_mean: Mean over neurons of |mean after - mean before|.
        max_abs_delta_mean: Its maximum.
        top_changes: The `top_k` neurons with the largest |delta mean|, largest first.
    """

    dead_threshold: float
    n_neurons: int
    n_dead_before: int
    n_dead_after: int
    n_became_dead: int
    n_became_alive: int
    mean_abs_delta_mean: float
    max_abs_delta_mean: float
    top_changes: tuple[NeuronChange, ...]


@dataclass(frozen=True)
class PCARecord:
    """The principal-component comparison (see `ndt.analysis.pca.PCAComparison`), each
    sequence of length at most `n_components`."""

    n_components: int
    explained_variance_ratio_before: tuple[float, ...]
    explained_variance_ratio_after: tuple[float, ...]
    joint_explained_variance_ratio: tuple[float, ...]
    centroid_shift: tuple[float, ...]
    centroid_distance: float
    principal_angles_deg: tuple[float, ...]
    subspace_overlap: float


@dataclass(frozen=True)
class StepClusterRecord:
    """KMeans of one step's rows alone: rows per cluster, purity and ARI against the labels
    (NaN without labels)."""

    sizes: tuple[int, ...]
    purity: float
    ari_vs_labels: float


@dataclass(frozen=True)
class JointClusterRecord:
    """KMeans of both steps' rows together.

    Attributes:
        contingency: Per joint cluster, its (before, after) row counts.
        phase_occupancy: Share of after-rows in clusters at least `occupancy_min_share`
            before-rows.
        occupancy_min_share: That threshold.
    """

    contingency: tuple[tuple[int, int], ...]
    phase_occupancy: float
    occupancy_min_share: float


@dataclass(frozen=True)
class ClusterRecord:
    """The cluster comparison (see `ndt.analysis.clusters.ClusterComparison`)."""

    n_clusters: int
    seed: int
    before: StepClusterRecord
    after: StepClusterRecord
    ari_before_vs_after: float
    joint: JointClusterRecord


@dataclass(frozen=True)
class LinearProbeRecord:
    """Cross-validated linear-probe accuracy at both checkpoints."""

    before: ProbeAccuracy
    after: ProbeAccuracy


@dataclass(frozen=True)
class LayerFigureData:
    """The arrays behind a layer's figures.

    Attributes:
        joint_projection: Every analysed row of both steps on the first two joint principal
            components, before rows first, (2 * n_rows_used, 2).
        delta_mean: Mean after - mean before of each neuron, (n_features,).
        row_labels: Class of each analysed row, (n_rows_used,), or None.
    """

    joint_projection: NDArray[np.float64]
    delta_mean: NDArray[np.float64]
    row_labels: NDArray | None


@dataclass(frozen=True)
class LayerRecord:
    """Everything reported for one layer.

    Attributes:
        layer: Qualified module name.
        shape: Shape of the layer output on the probe, (B, ...).
        n_rows: Rows of its activation matrix (B, or B*T for token rows).
        n_features: Its columns (neurons).
        subsample: The rows PCA, clusters, probe and CKA used, when not all.
        change_score: 1 - `cka`, by which layers are ranked.
        cka: Linear CKA between before and after.
        metrics: Every dimensionality metric (as `ndt track`), before and after.
        neurons: Neuron counts and largest changes.
        pca: Principal components.
        clusters: KMeans of each step, their agreement, the joint phase occupancy.
        linear_probe: Linear-probe accuracy, or None when the probe has no labels.
        figures: The arrays behind the figures (not in the JSON).
    """

    layer: str
    shape: tuple[int, ...]
    n_rows: int
    n_features: int
    subsample: Subsample | None
    change_score: float
    cka: float
    metrics: Mapping[str, BeforeAfter]
    neurons: NeuronRecord
    pca: PCARecord
    clusters: ClusterRecord
    linear_probe: LinearProbeRecord | None
    figures: LayerFigureData | None = field(
        default=None, repr=False, compare=False, metadata=NOT_IN_JSON
    )


@dataclass(frozen=True)
class CheckpointRecord:
    """A compared checkpoint: its step and file."""

    step: int
    file: Path


@dataclass(frozen=True)
class ProbeFileRecord:
    """The probe replayed: its file, sha256 (equal to the recorded one), size and labels."""

    path: Path
    sha256: str
    n_samples: int
    has_labels: bool


@dataclass(frozen=True)
class CompareRecord:
    """What one `ndt compare` compared and found.

    Attributes:
        results: The results file the run was read from.
        before: The earlier checkpoint.
        after: The later checkpoint.
        chosen_by: Which rule chose the two steps.
        note: A remark on that choice (no significant transition, ...), or None.
        model: The model, as recorded (or as given).
        probe: The probe replayed.
        settings: The analysis parameters.
        ranked_by: How layers are ranked (`ndt.analysis.layer_comparison.CHANGE_SCORE`).
        tokens: The rows of sequence layers (``--tokens`` of `ndt track`, as recorded).
        labels_per_token: Layers whose rows are tokens, so that each sample's label is
            repeated over its tokens in the linear probe and cluster purity.
        activations: Where the activations were saved, if asked.
        layers: One record per layer, largest change first.
    """

    results: Path
    before: CheckpointRecord
    after: CheckpointRecord
    chosen_by: str
    note: str | None
    model: str
    probe: ProbeFileRecord
    settings: CompareSettings
    ranked_by: str
    tokens: str
    labels_per_token: tuple[str, ...]
    activations: Path | None
    layers: tuple[LayerRecord, ...]


def _floats(values: np.ndarray) -> tuple[float, ...]:
    return tuple(float(v) for v in np.asarray(values, dtype=np.float64).reshape(-1))


def layer_record(c: LayerComparison) -> LayerRecord:
    """The reported numbers of one layer's comparison, and its figures' arrays."""
    n, p, k = c.neurons, c.pca, c.clusters
    probe = None
    if c.probe_before is not None and c.probe_after is not None:
        probe = LinearProbeRecord(c.probe_before, c.probe_after)
    counts = n.counts()
    return LayerRecord(
        layer=c.layer,
        shape=tuple(int(s) for s in c.shape),
        n_rows=int(c.n_rows),
        n_features=int(c.n_features),
        subsample=c.subsample,
        change_score=float(c.change_score),
        cka=float(c.cka),
        metrics={
            name: BeforeAfter(float(c.metrics_before[name]), float(c.metrics_after[name]))
            for name in c.metrics_before
        },
        neurons=NeuronRecord(
            dead_threshold=float(n.dead_threshold),
            **counts,
            mean_abs_delta_mean=float(n.mean_change.mean()) if counts["n_neurons"] else math.nan,
            max_abs_delta_mean=float(n.mean_change.max()) if counts["n_neurons"] else math.nan,
            top_changes=tuple(n.top_changes),
        ),
        pca=PCARecord(
            n_components=int(p.n_components),
            explained_variance_ratio_before=_floats(p.explained_variance_ratio_before),
            explained_variance_ratio_after=_floats(p.explained_variance_ratio_after),
            joint_explained_variance_ratio=_floats(p.joint_explained_variance_ratio),
            centroid_shift=_floats(p.centroid_shift),
            centroid_distance=float(p.centroid_distance),
            principal_angles_deg=_floats(p.principal_angles),
            subspace_overlap=float(p.subspace_overlap),
        ),
        clusters=ClusterRecord(
            n_clusters=int(k.n_clusters),
            seed=int(k.seed),
            before=_step_clusters(k.before),
            after=_step_clusters(k.after),
            ari_before_vs_after=float(k.ari_before_vs_after),
            joint=JointClusterRecord(
                contingency=tuple((int(b), int(a)) for b, a in k.joint_contingency),
                phase_occupancy=float(k.phase_occupancy),
                occupancy_min_share=float(k.occupancy_min_share),
            ),
        ),
        linear_probe=probe,
        figures=LayerFigureData(p.joint_projection, n.mean_after - n.mean_before, c.row_labels),
    )


def _step_clusters(s: StepClusters) -> StepClusterRecord:
    return StepClusterRecord(
        sizes=tuple(int(v) for v in s.sizes),
        purity=float(s.purity),
        ari_vs_labels=float(s.ari_vs_labels),
    )


def record_to_dict(record: object) -> object:
    """The JSON form of a record (or of any node of it): a dataclass becomes a dict of its
    fields in order (less those marked `NOT_IN_JSON`), tuples become lists, paths strings,
    and NaN or an infinity None."""
    if is_dataclass(record) and not isinstance(record, type):
        return {
            f.name: record_to_dict(getattr(record, f.name))
            for f in fields(record)
            if f.metadata.get("json", True)
        }
    if isinstance(record, Mapping):
        return {str(k): record_to_dict(v) for k, v in record.items()}
    if isinstance(record, (list, tuple)):
        return [record_to_dict(v) for v in record]
    if isinstance(record, PurePath):
        return str(record)
    if isinstance(record, np.generic):
        record = record.item()
    if isinstance(record, float) and not math.isfinite(record):
        return None
    return record
