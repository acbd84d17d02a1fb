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
from ndt.visualization.compare_layout import TextTable, compare_layout

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Mapping

    from ndt.analysis.compare_record import CompareRecord, LayerRecord

#: The key of the CKA figure among a report's figures (the others are keyed by layer).
CKA_FIGURE = ""
_MAX_POINTS = 4000


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "layer"


def _cka_figure(record: CompareRecord, path: Path) -> None:
    names = [c.layer for c in record.layers]
    # The Agg canvas of new_figure: the caller's matplotlib backend is left alone.
    fig, ax = new_figure((7, 0.4 * len(names) + 1.5))
    ax.barh(names[::-1], [c.cka for c in record.layers][::-1], color="tab:blue")
    ax.set_xlim(0, 1.05)
    ax.set_xlabel(f"linear CKA, step {record.before.step} vs {record.after.step}")
    ax.set_title("Similarity per layer (lower = more change)")
    fig.savefig(path, dpi=110)


def _layer_figure(c: LayerRecord, before: int, after: int, path: Path) -> None:
    """Explained variance, joint-PCA scatter by phase and by label, Δ mean histogram."""
    fig, axes = new_figure((17, 3.8), 1, 4)
    axes = axes.ravel()
    ratios = (c.pca.explained_variance_ratio_before, c.pca.explained_variance_ratio_after)
    for shift, values, step in ((-0.2, ratios[0], before), (0.2, ratios[1], after)):
        axes[0].bar(np.arange(1, len(values) + 1) + shift, values, 0.4, label=f"step {step}")
    axes[0].set(xlabel="principal component", ylabel="explained variance ratio")
    axes[0].legend()
    data = c.figures
    if data is None:
        raise ValueError(f"layer {c.layer}: the record holds no figure data")
    points = data.joint_projection
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
    if data.row_labels is not None:
        labels = np.concatenate([data.row_labels, data.row_labels])[show]
        scatter = axes[2].scatter(points[show, 0], points[show, 1], s=6, c=labels, cmap="tab10")
        fig.colorbar(scatter, ax=axes[2], label="label")
        axes[2].set(title="joint PCA by label", xlabel="PC1", ylabel="PC2")
    else:
        axes[2].text(0.5, 0.5, "probe has no labels", ha="center", va="center")
        axes[2].set_axis_off()
    axes[3].hist(data.delta_mean, bins=40, color="tab:gray")
    axes[3].set(title="per-neuron Δ mean", xlabel="mean after - mean before", ylabel="neurons")
    fig.suptitle(c.layer)
    fig.savefig(path, dpi=100)


def write_report(record: CompareRecord, directory: str | Path) -> Path:
    """Write report.md, report.html and figures/*.png into `directory`; return the HTML path."""
    out = Path(directory)
    folder = out / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    figures = {CKA_FIGURE: folder / "cka.png"}
    _cka_figure(record, figures[CKA_FIGURE])
    for c in record.layers:
        figures[c.layer] = folder / f"layer_{_slug(c.layer)}.png"
        _layer_figure(c, record.before.step, record.after.step, figures[c.layer])
    links = {name: path.relative_to(out).as_posix() for name, path in figures.items()}
    (out / "report.md").write_text(report_markdown(record, links))
    path = out / "report.html"
    path.write_text(report_html(record, figures))
    return path


def _md_row(cells: tuple[str, ...]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def _md_table(table: TextTable) -> list[str]:
    lines = [f"**{table.title}**", ""] if table.title else []
    lines += [_md_row(table.columns), "|" + "---|" * len(table.columns)]
    lines += [_md_row(row) for row in table.rows]
    return [*lines, ""]


def report_markdown(record: CompareRecord, figures: Mapping[str, str]) -> str:
    """The Markdown report: `compare_layout(record)`, with the figure links `figures` (the
    CKA figure under `CKA_FIGURE`, one per layer under its name) where they belong."""
    layout = compare_layout(record)
    md = [f"# {layout.title}", "", *[f"- {line}" for line in layout.header], ""]
    if layout.notes:
        md += ["**Notes**", "", *[f"- {note}." for note in layout.notes], ""]
    md += ["## Ranking", "", *_md_table(layout.ranking)]
    md += [f"![CKA per layer]({figures[CKA_FIGURE]})", ""]
    for c, section in zip(record.layers, layout.layers, strict=True):
        md += [f"## {section.heading}", "", *[f"- {line}" for line in section.lines], ""]
        for table in section.tables:
            md += _md_table(table)
        md += [f"![{c.layer}]({figures[c.layer]})", ""]
    return "\n".join(md)


def _html_table(table: TextTable) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>" for row in table.rows
    )
    title = f"<h3>{html.escape(table.title)}</h3>" if table.title else ""
    return f"{title}<table><tr>{head}</tr>{body}</table>"


def _html_list(lines: tuple[str, ...], end: str = "") -> str:
    return "<ul>" + "".join(f"<li>{html.escape(x)}{end}</li>" for x in lines) + "</ul>"


def report_html(record: CompareRecord, figures: Mapping[str, Path]) -> str:
    """The self-contained HTML report: the Markdown report's content, the PNG `figures`
    inlined (keyed as in `report_markdown`)."""
    layout = compare_layout(record)
    page = [f"<h1>{html.escape(layout.title)}</h1>", _html_list(layout.header)]
    if layout.notes:
        page += ["<p><b>Notes</b></p>", _html_list(layout.notes, ".")]
    page += ["<h2>Ranking</h2>", _html_table(layout.ranking)]
    page.append(_img(figures[CKA_FIGURE], "CKA per layer"))
    for c, section in zip(record.layers, layout.layers, strict=True):
        page += [f"<h2>{html.escape(section.heading)}</h2>", _html_list(section.lines)]
        page += [_html_table(t) for t in section.tables] + [_img(figures[c.layer], c.layer)]
    style = (
        "body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px}"
        "img{max-width:100%}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(layout.title)}"
        f"</title><style>{style}</style></head><body>{''.join(page)}</body></html>\n"
    )


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"<p><img alt='{html.escape(alt)}' src='data:image/png;base64,{data}'></p>"
