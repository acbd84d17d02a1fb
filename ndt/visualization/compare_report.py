"""Write a comparison as a folder: report.md, a self-contained report.html (figures inlined
as base64 PNG) and the PNG figures themselves under figures/."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ndt.visualization._style import new_figure

if TYPE_CHECKING:  # pragma: no cover
    from ndt.analysis.layer_comparison import LayerComparison
    from ndt.replay.compare import CompareReport

_MAX_POINTS = 4000


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "layer"


def _cka_figure(report: CompareReport, path: Path) -> None:
    names = [c.layer for c in report.layers]
    # The Agg canvas of new_figure: the caller's matplotlib backend is left alone.
    fig, ax = new_figure((7, 0.4 * len(names) + 1.5))
    ax.barh(names[::-1], [c.cka for c in report.layers][::-1], color="tab:blue")
    ax.set_xlim(0, 1.05)
    ax.set_xlabel(f"linear CKA, step {report.before.step} vs {report.after.step}")
    ax.set_title("Similarity per layer (lower = more change)")
    fig.savefig(path, dpi=110)


def _layer_figure(c: LayerComparison, before: int, after: int, path: Path) -> str:
    """Explained variance, joint-PCA scatter by phase and by label, Δ mean histogram."""
    fig, axes = new_figure((17, 3.8), 1, 4)
    axes = axes.ravel()
    k = c.pca.n_components
    idx = np.arange(1, k + 1)
    axes[0].bar(idx - 0.2, c.pca.explained_variance_ratio_before, 0.4, label=f"step {before}")
    axes[0].bar(idx + 0.2, c.pca.explained_variance_ratio_after, 0.4, label=f"step {after}")
    axes[0].set(xlabel="principal component", ylabel="explained variance ratio")
    axes[0].legend()
    points = c.pca.joint_projection
    n = len(points) // 2
    show = np.arange(len(points))
    note = ""
    if len(points) > _MAX_POINTS:
        show = np.sort(np.random.default_rng(0).choice(len(points), _MAX_POINTS, replace=False))
        note = f" ({_MAX_POINTS} of {len(points)} points, seed 0)"
    phase = (show >= n).astype(int)
    for value, label in ((0, f"step {before}"), (1, f"step {after}")):
        sel = show[phase == value]
        axes[1].scatter(points[sel, 0], points[sel, 1], s=6, alpha=0.6, label=label)
    axes[1].set(title="joint PCA by phase" + note, xlabel="PC1", ylabel="PC2")
    axes[1].legend(markerscale=3)
    if c.row_labels is not None:
        labels = np.concatenate([c.row_labels, c.row_labels])[show]
        scatter = axes[2].scatter(points[show, 0], points[show, 1], s=6, c=labels, cmap="tab10")
        fig.colorbar(scatter, ax=axes[2], label="label")
        axes[2].set(title="joint PCA by label", xlabel="PC1", ylabel="PC2")
    else:
        axes[2].text(0.5, 0.5, "probe has no labels", ha="center", va="center")
        axes[2].set_axis_off()
    axes[3].hist(c.neurons.mean_after - c.neurons.mean_before, bins=40, color="tab:gray")
    axes[3].set(title="per-neuron Δ mean", xlabel="mean after - mean before", ylabel="neurons")
    fig.suptitle(c.layer)
    fig.savefig(path, dpi=100)
    return note


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"{value:.{digits}g}"


def _layer_rows(c: LayerComparison) -> list[tuple[str, str, str]]:
    counts = c.neurons.counts()
    rows = [(m, _fmt(c.metrics_before[m]), _fmt(c.metrics_after[m])) for m in c.metrics_before]
    rows += [
        ("dead neurons", str(counts["n_dead_before"]), str(counts["n_dead_after"])),
        (
            "explained variance PC1",
            _fmt(c.pca.explained_variance_ratio_before[0]),
            _fmt(c.pca.explained_variance_ratio_after[0]),
        ),
        *_cluster_rows(c),
    ]
    if c.probe_before is not None and c.probe_after is not None:
        rows.append(("linear-probe accuracy", _fmt(c.probe_before.mean), _fmt(c.probe_after.mean)))
    return rows


def _cluster_rows(c: LayerComparison) -> list[tuple[str, str, str]]:
    before, after = c.clusters.before, c.clusters.after
    return [
        ("cluster purity (own-step KMeans)", _fmt(before.purity), _fmt(after.purity)),
        ("cluster ARI vs labels", _fmt(before.ari_vs_labels), _fmt(after.ari_vs_labels)),
    ]


def _cluster_summary(c: LayerComparison) -> list[str]:
    k = c.clusters
    return [
        f"KMeans k={k.n_clusters} (seed {k.seed}) fitted to each step alone: ARI between the "
        f"two steps' partitions of the same rows {_fmt(k.ari_before_vs_after)}",
        f"phase occupancy {_fmt(k.phase_occupancy)}: share of after-rows in clusters of a "
        f"joint KMeans of both steps that are at least {k.occupancy_min_share:.0%} before-rows "
        "(low when the cloud moved, whatever its class structure)",
    ]


def _layer_summary(c: LayerComparison) -> list[str]:
    counts = c.neurons.counts()
    lines = [
        f"change score (1 - CKA) {_fmt(c.change_score)}; linear CKA {_fmt(c.cka)}",
        f"activation matrix {c.n_rows} rows x {c.n_features} features (output shape "
        f"{tuple(c.shape)})",
        f"{counts['n_became_dead']} neurons became dead and {counts['n_became_alive']} became "
        f"alive (sparsity > {c.neurons.dead_threshold})",
        f"principal angles (deg) {', '.join(_fmt(a, 3) for a in c.pca.principal_angles)}; "
        f"subspace overlap {_fmt(c.pca.subspace_overlap)}",
        f"centroid distance {_fmt(c.pca.centroid_distance)} (in units of the within-step spread)",
        *_cluster_summary(c),
    ]
    if c.subsample is not None:
        lines.append(
            f"subsampled: {c.subsample.n_rows_used} of {c.subsample.n_rows_total} rows (seed "
            f"{c.subsample.seed}) for PCA, clusters, probe and CKA"
        )
    return lines


def write_report(report: CompareReport, directory: str | Path) -> Path:
    """Write report.md, report.html and figures/*.png into `directory`; return the HTML path."""
    out = Path(directory)
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    b, a = report.before.step, report.after.step
    header = [
        f"Results: {report.results_path}; chosen by {report.steps.reason}",
        f"Before: step {b} ({report.before.path}); after: step {a} ({report.after.path})",
        f"Model {report.model}; probe {report.probe_path} ({report.n_samples} samples, "
        f"sha256 {report.probe_sha256[:12]}...)",
        f"Layers ranked by {report.change_score} (largest change first).",
    ]
    images = {"cka": figures / "cka.png"}
    _cka_figure(report, images["cka"])
    notes = {}
    for c in report.layers:
        images[c.layer] = figures / f"layer_{_slug(c.layer)}.png"
        notes[c.layer] = _layer_figure(c, b, a, images[c.layer])
    md = [f"# ndt compare: step {b} vs step {a}", "", *[f"- {line}" for line in header], ""]
    md += [f"![CKA per layer]({images['cka'].relative_to(out).as_posix()})", ""]
    page = [f"<h1>ndt compare: step {b} vs step {a}</h1><ul>"]
    page += [f"<li>{html.escape(line)}</li>" for line in header] + ["</ul>"]
    page.append(_img(images["cka"], "CKA per layer"))
    for rank, c in enumerate(report.layers, 1):
        rows = _layer_rows(c)
        md += [f"## {rank}. {c.layer}", "", *[f"- {s}" for s in _layer_summary(c)], ""]
        md += [f"| quantity | step {b} | step {a} |", "|---|---|---|"]
        md += [f"| {q} | {x} | {y} |" for q, x, y in rows] + [""]
        md += [f"![{c.layer}]({images[c.layer].relative_to(out).as_posix()})", ""]
        page.append(f"<h2>{rank}. {html.escape(c.layer)}</h2><ul>")
        page += [f"<li>{html.escape(s)}</li>" for s in _layer_summary(c)] + ["</ul>"]
        page.append(f"<table><tr><th>quantity</th><th>step {b}</th><th>step {a}</th></tr>")
        page += [f"<tr><td>{html.escape(q)}</td><td>{x}</td><td>{y}</td></tr>" for q, x, y in rows]
        page += ["</table>", _img(images[c.layer], c.layer)]
    (out / "report.md").write_text("\n".join(md) + "\n")
    style = (
        "body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px}"
        "img{max-width:100%}"
    )
    document = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>ndt compare {b} vs {a}"
        f"</title><style>{style}</style></head><body>{''.join(page)}</body></html>\n"
    )
    path = out / "report.html"
    path.write_text(document)
    return path


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"<p><img alt='{html.escape(alt)}' src='data:image/png;base64,{data}'></p>"
