"""Heatmaps: a metric over layers x steps, and the correlation between metrics."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from ndt.core.layer_globs import match_layers
from ndt.visualization._data import (
    SCALAR_COLUMNS,
    CurveData,
    check_metrics,
    jumps_frame,
    layer_order,
    marked_jumps,
    tidy_frame,
)
from ndt.visualization._style import metric_label, metric_title, new_figure, save_figure
from ndt.visualization.curves import JumpData

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

# Label every layer up to this many rows; beyond, every k-th so labels do not overlap.
_MAX_ROW_LABELS = 40


def _title(text: str, run_name: str | None) -> str:
    return f"{text} · {run_name}" if run_name else text


def plot_layer_heatmap(
    df: CurveData,
    metric: str = "stable_rank",
    layers: Sequence[str] | str | None = None,
    *,
    jumps: JumpData = None,
    run_name: str | None = None,
    cmap: str = "viridis",
    save: str | Path | None = None,
) -> Figure:
    """Plot a metric as a layers x steps heatmap (first layer on top), jumps as white dots.

    Columns are checkpoints in step order, equally wide whatever the spacing of the steps,
    so log-spaced schedules stay readable; tick labels give the steps.

    Args:
        df: Tidy curves, or layer -> DataFrame.
        metric: The metric column to colour by.
        layers: Layer names or globs to keep (default all).
        jumps: The `/jumps` table or Jump records; significant ones are marked.
        run_name: Shown in the title.
        cmap: A matplotlib colormap name (viridis is perceptually uniform and
            colour-blind-safe).
        save: Also write the figure here (.png, .svg or .pdf).

    Returns:
        The matplotlib Figure; its image has shape (n_layers, n_steps).
    """
    frame = tidy_frame(df)
    check_metrics(frame, [metric])
    chosen = match_layers(layer_order(frame), layers)
    grid = frame.pivot_table(index="layer", columns="step", values=metric, dropna=False)
    grid = grid.reindex(chosen)
    steps = grid.columns.to_numpy()
    fig, ax = new_figure((9.0, max(2.8, 0.24 * len(chosen) + 1.6)))
    from matplotlib import colormaps

    colormap = colormaps[cmap].with_extremes(bad="0.85")
    image = ax.imshow(
        np.ma.masked_invalid(grid.to_numpy(dtype=np.float64)),
        aspect="auto",
        cmap=colormap,
        interpolation="nearest",
    )
    marks = marked_jumps(jumps_frame(jumps), metric, chosen)
    column = {int(step): i for i, step in enumerate(steps)}
    marks = marks[marks["step"].astype(int).isin(list(column))]
    if not marks.empty:
        ax.scatter(
            [column[int(s)] for s in marks["step"]],
            [chosen.index(layer) for layer in marks["layer"]],
            s=28,
            facecolors="white",
            edgecolors="black",
            linewidths=0.8,
            gid="ndt-jumps",
            label="significant jump",
        )
    ticks = np.unique(np.linspace(0, len(steps) - 1, min(len(steps), 8)).round().astype(int))
    ax.set_xticks(ticks, labels=[str(int(steps[i])) for i in ticks])
    stride = max(1, int(np.ceil(len(chosen) / _MAX_ROW_LABELS)))
    rows = np.arange(0, len(chosen), stride)
    ax.set_yticks(rows, labels=[chosen[i] for i in rows], fontsize="small")
    ax.set_xlabel("training step (one column per checkpoint)")
    ax.set_ylabel("layer (model order)")
    fig.colorbar(image, ax=ax, pad=0.02).set_label(metric_label(metric))
    ax.set_title(_title(f"{metric_title(metric)} by layer and step", run_name))
    return _finish(fig, save)


def plot_metric_correlations(
    df: CurveData,
    metrics: Sequence[str] | None = None,
    *,
    method: Literal["pearson", "spearman"] = "pearson",
    run_name: str | None = None,
    figsize: tuple[float, float] | None = None,
    save: str | Path | None = None,
) -> Figure:
    """Plot the correlation between metrics over all (step, layer) rows, values written in.

    Args:
        df: Tidy curves, or layer -> DataFrame.
        metrics: Columns to correlate (default every metric, then loss and grad_norm
            when present).
        method: ``pearson`` (linear) or ``spearman`` (rank) correlation, as pandas computes.
        run_name: Shown in the title.
        figsize: Figure size in inches (default grows with the number of metrics).
        save: Also write the figure here.

    Returns:
        The matplotlib Figure; its image is the (n_metrics, n_metrics) correlation matrix.
        A constant metric has no correlation: its cells are grey and read "n/a".
    """
    frame = tidy_frame(df)
    if metrics is None:
        metrics = check_metrics(frame, None)
        metrics += [c for c in SCALAR_COLUMNS if c in frame.columns]
    else:
        metrics = check_metrics(frame, metrics)
    corr = frame[list(metrics)].astype(np.float64).corr(method=method).to_numpy()
    size = 1.0 + 0.9 * len(metrics)
    fig, ax = new_figure(figsize or (size + 1.6, size))
    from matplotlib import colormaps

    image = ax.imshow(
        np.ma.masked_invalid(corr),
        cmap=colormaps["RdBu_r"].with_extremes(bad="0.85"),
        vmin=-1.0,
        vmax=1.0,
    )
    for (i, j), value in np.ndenumerate(corr):
        text = "n/a" if np.isnan(value) else f"{value:.2f}"
        dark = not np.isnan(value) and abs(value) > 0.6
        ax.text(j, i, text, ha="center", va="center", fontsize="small",
                color="white" if dark else "black")  # fmt: skip
    names = [metric_title(m) for m in metrics]
    ax.set_xticks(range(len(metrics)), labels=names, rotation=35, ha="right")
    ax.set_yticks(range(len(metrics)), labels=names)
    fig.colorbar(image, ax=ax, pad=0.02, shrink=0.85).set_label(f"{method.capitalize()} r")
    n_rows = int(frame[list(metrics)].notna().all(axis=1).sum())
    ax.set_title(_title(f"Correlation between metrics (n = {n_rows})", run_name))
    return _finish(fig, save)


def _finish(fig: Figure, save: str | Path | None) -> Figure:
    if save is not None:
        save_figure(fig, save)
    return fig
