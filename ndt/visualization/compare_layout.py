"""How a compare record reads as text: its lines and tables, with every number formatted once.

The terminal (`ndt_cli/_compare_terminal.py`) and the report (`compare_report`) both render
`compare_layout(record)`, each in its own markup, so they show the same numbers written the
same way: `number` gives four significant digits, integers in full, ``n/a`` for NaN.
Every number of the JSON document (`ndt.analysis.compare_record.record_to_dict`) appears here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import zip_longest
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from ndt.analysis.compare_record import CompareRecord, LayerRecord

#: How a missing or undefined number (NaN, no labels) is written.
MISSING = "n/a"


def number(value: float | int | None, digits: int = 4) -> str:
    """`value` for a reader: integers in full, floats to `digits` significant digits."""
    if value is None or isinstance(value, float) and not math.isfinite(value):
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    return f"{float(value):.{digits}g}"


@dataclass(frozen=True)
class TextTable:
    """A table of formatted cells: a title (may be empty), column headers and rows."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class LayerSection:
    """One layer: a heading (its rank and name), summary lines and tables."""

    heading: str
    lines: tuple[str, ...]
    tables: tuple[TextTable, ...]


@dataclass(frozen=True)
class CompareLayout:
    """A whole comparison as text.

    Attributes:
        title: One line naming the two steps.
        header: What was compared and how (steps, files, model, probe, settings).
        notes: Remarks the reader must not miss (the step choice, labels repeated over
            tokens); the terminal prints them on stderr.
        ranking: One row per layer, largest change first.
        layers: One section per layer, in the ranking's order.
    """

    title: str
    header: tuple[str, ...]
    notes: tuple[str, ...]
    ranking: TextTable
    layers: tuple[LayerSection, ...]


def compare_layout(record: CompareRecord) -> CompareLayout:
    """Lay out `record` as lines and tables (see the module docstring)."""
    b, a = record.before.step, record.after.step
    return CompareLayout(
        title=f"ndt compare: step {b} vs step {a}",
        header=_header(record),
        notes=compare_notes(record),
        ranking=_ranking(record),
        layers=tuple(_layer_section(rank, c, b, a) for rank, c in enumerate(record.layers, 1)),
    )


def compare_notes(record: CompareRecord) -> tuple[str, ...]:
    """The remarks of `record`, each one sentence without its final period."""
    notes = [record.note] if record.note else []
    if record.labels_per_token:
        notes.append(
            f"rows of {', '.join(record.labels_per_token)} are tokens (--tokens "
            f"{record.tokens}), so each sample's label is repeated over its tokens in the "
            "linear probe and cluster purity; `ndt track --tokens last|first|mean|pos:K` "
            "gives one row per sample"
        )
    return tuple(notes)


def _header(record: CompareRecord) -> tuple[str, ...]:
    s, p = record.settings, record.probe
    lines = [
        f"Before: step {record.before.step}  {record.before.file}",
        f"After:  step {record.after.step}  {record.after.file}",
        f"Chosen by {record.chosen_by}; layers ranked by {record.ranked_by}.",
        f"Results: {record.results}; model {record.model}",
        f"Probe: {p.path} ({number(p.n_samples)} samples, labels: {number(p.has_labels)}, "
        f"sha256 {p.sha256[:12]}...); rows of sequence layers: --tokens {record.tokens}",
        f"Metrics: {', '.join(s.metrics)} (definitions {s.definitions}, centred: "
        f"{number(s.center)}, dormant tau {number(s.dormant_tau)})",
        f"Settings: dead threshold {number(s.dead_threshold)}, top-k {number(s.top_k)}, "
        f"components {number(s.n_components)}, clusters {number(s.n_clusters)}, seed "
        f"{number(s.seed)}, max rows {number(s.max_rows)}, max cells {number(s.max_cells)}",
    ]
    if record.activations is not None:
        lines.append(f"Activations saved to {record.activations}")
    return tuple(lines)


def _spans_whole_width(c: LayerRecord) -> bool:
    """True when the compared principal subspaces are the layer's whole feature space (a
    2-wide classifier with 10 components): their angles are 0 by construction."""
    return c.pca.n_components >= c.n_features


def _ranking(record: CompareRecord) -> TextTable:
    rows = []
    for rank, c in enumerate(record.layers, 1):
        angles = c.pca.principal_angles_deg
        telling = angles and not _spans_whole_width(c)
        rows.append(
            (
                str(rank),
                c.layer,
                number(c.change_score),
                number(angles[-1] if telling else None),
                number(c.clusters.ari_before_vs_after),
                f"{number(c.neurons.n_dead_before)} → {number(c.neurons.n_dead_after)}",
            )
        )
    columns = ("rank", "layer", "1 - CKA", "max principal angle (deg)",
               "cluster ARI before↔after", "dead before → after")  # fmt: skip
    return TextTable("", columns, tuple(rows))


def _layer_section(rank: int, c: LayerRecord, before: int, after: int) -> LayerSection:
    return LayerSection(
        heading=f"{rank}. {c.layer}",
        lines=_layer_lines(c),
        tables=tuple(
            t
            for t in (
                _quantities(c, before, after),
                _pca_table(c),
                _cluster_table(c),
                _neuron_table(c),
            )
            if t.rows
        ),
    )


def _layer_lines(c: LayerRecord) -> tuple[str, ...]:
    n, p, k = c.neurons, c.pca, c.clusters
    shape = ", ".join(number(s) for s in c.shape)
    lines = [
        f"change score (1 - CKA) {number(c.change_score)}; linear CKA {number(c.cka)}",
        f"activation matrix {number(c.n_rows)} rows x {number(c.n_features)} features "
        f"(output shape ({shape}))",
    ]
    if c.subsample is not None:
        u = c.subsample
        lines.append(
            f"subsampled: {number(u.n_rows_used)} of {number(u.n_rows_total)} rows (seed "
            f"{number(u.seed)}) for PCA, clusters, probe and CKA"
        )
    lines += [
        f"{number(n.n_neurons)} neurons, dead when sparsity > {number(n.dead_threshold)}: "
        f"{number(n.n_became_dead)} became dead, {number(n.n_became_alive)} became alive; "
        f"|Δ mean| {number(n.mean_abs_delta_mean)} on average, {number(n.max_abs_delta_mean)} "
        "at most",
        (
            f"PCA of {number(p.n_components)} components, the layer's whole width: the "
            f"principal angles are 0 (up to rounding) and the subspace overlap "
            f"{number(p.subspace_overlap)} by construction, so they say nothing here; "
            if _spans_whole_width(c)
            else f"PCA of {number(p.n_components)} components: subspace overlap "
            f"{number(p.subspace_overlap)} (mean squared cosine of the principal angles); "
        )
        + f"centroid distance {number(p.centroid_distance)} (in units of the within-step spread)",
        f"KMeans k={number(k.n_clusters)} (seed {number(k.seed)}) fitted to each step alone: "
        f"ARI between the two steps' partitions of the same rows "
        f"{number(k.ari_before_vs_after)}",
        f"phase occupancy {number(k.joint.phase_occupancy)}: share of after-rows in clusters "
        "of a joint KMeans of both steps whose rows are at least "
        f"{number(k.joint.occupancy_min_share)} before-rows (low when the cloud moved, "
        "whatever its class structure)",
    ]
    return tuple(lines)


def _quantities(c: LayerRecord, before: int, after: int) -> TextTable:
    n, k = c.neurons, c.clusters
    rows = [(name, number(v.before), number(v.after)) for name, v in c.metrics.items()]
    rows += [
        ("dead neurons", number(n.n_dead_before), number(n.n_dead_after)),
        ("cluster purity (own-step KMeans)", number(k.before.purity), number(k.after.purity)),
        ("cluster ARI vs labels", number(k.before.ari_vs_labels), number(k.after.ari_vs_labels)),
    ]
    if c.linear_probe is not None:
        x, y = c.linear_probe.before, c.linear_probe.after
        rows += [
            ("linear-probe accuracy", number(x.mean), number(y.mean)),
            ("linear-probe accuracy std over folds", number(x.std), number(y.std)),
            ("linear-probe folds", number(x.n_splits), number(y.n_splits)),
            ("linear-probe chance (majority class)", number(x.chance), number(y.chance)),
        ]
    columns = ("quantity", f"step {before}", f"step {after}")
    return TextTable("", columns, tuple(rows))


def _pca_table(c: LayerRecord) -> TextTable:
    p = c.pca
    columns = (
        "PC", "var. ratio before", "var. ratio after", "joint var. ratio",
        "centroid shift (σ)", "principal angle (deg)",
    )  # fmt: skip
    series = (
        p.explained_variance_ratio_before,
        p.explained_variance_ratio_after,
        p.joint_explained_variance_ratio,
        p.centroid_shift,
        p.principal_angles_deg,
    )
    rows = tuple(
        (str(i), *("" if v is None else number(v) for v in values))
        for i, values in enumerate(zip_longest(*series), 1)
    )
    return TextTable("Principal components (angles ascending)", columns, rows)


def _cluster_table(c: LayerRecord) -> TextTable:
    k = c.clusters
    columns = ("cluster", "rows before (own KMeans)", "rows after (own KMeans)",
               "joint: before-rows", "joint: after-rows")  # fmt: skip
    joint = [(b, a) for b, a in k.joint.contingency]
    rows = tuple(
        (str(i), *("" if v is None else number(v) for v in (x, y)),
         *(("", "") if j is None else (number(j[0]), number(j[1]))))
        for i, (x, y, j) in enumerate(zip_longest(k.before.sizes, k.after.sizes, joint))
    )  # fmt: skip
    return TextTable("Clusters (numbered per clustering)", columns, rows)


def _neuron_table(c: LayerRecord) -> TextTable:
    columns = ("neuron", "mean before", "mean after", "Δ mean", "sparsity before",
               "sparsity after")  # fmt: skip
    rows = tuple(
        (number(t.index), number(t.mean_before), number(t.mean_after), number(t.delta_mean),
         number(t.sparsity_before), number(t.sparsity_after))
        for t in c.neurons.top_changes
    )  # fmt: skip
    return TextTable("Largest changes of mean activation", columns, rows)
