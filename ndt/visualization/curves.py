"""Metric curves over training steps: one line per layer, significant jumps marked.

Every function takes the tidy table (`ndt.io.store.load_results`), or a tracker's
``get_results()``, and returns a matplotlib Figure; with ``save=`` it also writes it (PNG,
SVG or PDF by extension). Artists carry ``gid`` tags so that tests and users can find them:
``curve:<layer>`` for lines, ``ndt-jumps`` for jump markers, ``ndt-phase`` for phase bands.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ndt.core.layer_globs import match_layers
from ndt.visualization._data import (
    CurveData,
    check_metrics,
    jumps_frame,
    layer_order,
    marked_jumps,
    tidy_frame,
    use_log_x,
)
from ndt.visualization._style import (
    add_layer_legend,
    label_metric_axis,
    layer_colors,
    metric_label,
    metric_title,
    new_figure,
    save_figure,
    set_metric_ticks,
    set_step_axis,
)

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

JumpData = pd.DataFrame | Sequence | dict | None


def _prepare(
    data: CurveData,
    metric: str,
    layers: Sequence[str] | str | None,
    jumps: JumpData,
    layer_name: str | None,
) -> tuple[pd.DataFrame, list[str], pd.DataFrame | None]:
    frame = tidy_frame(data, layer_name=layer_name)
    check_metrics(frame, [metric])
    chosen = match_layers(layer_order(frame), layers)
    return frame, chosen, jumps_frame(jumps, layer_name=layer_name)


def _title(text: str, run_name: str | None) -> str:
    return f"{text} · {run_name}" if run_name else text


def draw_curves(
    ax: Axes, frame: pd.DataFrame, metric: str, layers: Sequence[str], colors: dict
) -> None:
    """One line per layer of `metric` against step, in model order."""
    dots = frame["step"].nunique() <= 40
    for layer in layers:
        part = frame[frame["layer"] == layer]
        ax.plot(
            part["step"].to_numpy(),
            part[metric].to_numpy(dtype=np.float64),
            color=colors[layer],
            linewidth=1.6,
            marker="o" if dots else None,
            markersize=2.5,
            label=layer,
            gid=f"curve:{layer}",
        )


def draw_jumps(
    ax: Axes, frame: pd.DataFrame, metric: str, marks: pd.DataFrame, colors: dict
) -> list:
    """Triangles (up or down) on the curves at each jump's step; returns legend handles."""
    if marks.empty:
        return []
    from matplotlib.lines import Line2D

    values = frame.set_index(["layer", "step"])[metric]
    ys = [
        values.get((row.layer, int(row.step)), row.value_after)
        for row in marks.itertuples(index=False)
    ]
    up = marks["delta"].astype(float).fillna(0.0).to_numpy() >= 0
    for mask, marker in ((up, "^"), (~up, "v")):
        if mask.any():
            ax.scatter(
                marks["step"].to_numpy()[mask],
                np.asarray(ys, dtype=np.float64)[mask],
                marker=marker,
                s=70,
                c=[colors[layer] for layer in marks["layer"][mask]],
                edgecolors="black",
                linewidths=0.9,
                zorder=5,
                gid="ndt-jumps",
            )
    proxy = Line2D(
        [], [], marker="^", linestyle="none", color="white", markeredgecolor="black", markersize=8
    )
    proxy.set_label("significant jump (▲ up / ▼ down)")
    return [proxy]


def draw_transitions(ax: Axes, transitions: pd.DataFrame | None) -> list:
    """Shade each transition of `ndt jumps` over (prev_step, step] and number it by rank."""
    if transitions is None or len(transitions) == 0:
        return []
    from matplotlib.patches import Patch

    for row in transitions.itertuples():
        ax.axvspan(row.prev_step, row.step, color="0.82", alpha=0.55, lw=0, zorder=0,
                   gid="ndt-transitions")  # fmt: skip
        ax.annotate(f"#{row.rank}", (row.step, 1.0), xycoords=("data", "axes fraction"),
                    xytext=(-2, -2), textcoords="offset points", ha="right", va="top",
                    fontsize="x-small", color="0.3")  # fmt: skip
    proxy = Patch(facecolor="0.82", alpha=0.55, label="transition (ndt jumps), by rank")
    return [proxy]


def _finish(fig: Figure, save: str | Path | None) -> Figure:
    if save is not None:
        save_figure(fig, save)
    return fig


def plot_metric_curves(
    df: CurveData,
    metric: str = "stable_rank",
    layers: Sequence[str] | str | None = None,
    *,
    jumps: JumpData = None,
    transitions: pd.DataFrame | None = None,
    logx: bool | None = None,
    run_name: str | None = None,
    layer_name: str | None = None,
    show_loss: bool = False,
    ax: Axes | None = None,
    figsize: tuple[float, float] = (8.0, 4.5),
    save: str | Path | None = None,
) -> Figure:
    """Plot one metric over training steps, one line per layer, significant jumps marked.

    Args:
        df: Tidy curves (columns step, layer, metrics), or layer -> DataFrame.
        metric: The metric column to draw.
        layers: Layer names or shell globs to keep (default all), drawn in model order.
        jumps: The `/jumps` table or tracker Jump records; significant ones are marked.
        transitions: The transitions of `ndt jumps` (`read_results(path).transitions`),
            drawn as shaded bands.
        logx: Log-scale the steps; None decides from their spacing (see `use_log_x`).
        run_name: Shown in the title.
        layer_name: Name of the layer when `df` is one layer's table without a layer column.
        show_loss: Also draw the ``loss`` column, if any, on a right-hand axis.
        ax: Draw into these axes instead of a new figure.
        figsize: Size of a new figure in inches.
        save: Also write the figure here (.png, .svg or .pdf).

    Returns:
        The matplotlib Figure.

    Raises:
        NdtError: for an unknown metric or layer pattern, or missing matplotlib.
    """
    frame, chosen, table = _prepare(df, metric, layers, jumps, layer_name)
    fig, ax = new_figure(figsize) if ax is None else (ax.figure, ax)
    colors = layer_colors(chosen)
    draw_curves(ax, frame, metric, chosen, colors)
    extra = draw_jumps(ax, frame, metric, marked_jumps(table, metric, chosen), colors)
    extra += draw_transitions(ax, transitions)
    set_step_axis(ax, frame["step"].unique(), logx)
    label_metric_axis(ax, metric)
    ax.set_title(_title(f"{metric_title(metric)} per layer", run_name))
    if show_loss and "loss" in frame.columns:
        loss = frame.drop_duplicates("step")
        twin = ax.twinx()
        twin.plot(loss["step"], loss["loss"], color="0.45", linestyle="--", linewidth=1.0)
        twin.set_ylabel("training loss (dashed)", color="0.35")
    add_layer_legend(fig, ax, chosen, colors, extra)
    return _finish(fig, save)


def plot_jump_curves(
    df: CurveData,
    jumps: JumpData,
    metric: str = "stable_rank",
    layers: Sequence[str] | str | None = None,
    *,
    significant_only: bool = True,
    logx: bool | None = None,
    run_name: str | None = None,
    layer_name: str | None = None,
    figsize: tuple[float, float] = (8.0, 4.5),
    save: str | Path | None = None,
) -> Figure:
    """Plot a metric's curves with each jump's interval shaded and its q-value written.

    Each jump is a marker at its step, a band over (prev_step, step] where the change
    happened, and, for up to 12 jumps, a label with its q-value (else its p-value).

    Args:
        df: Tidy curves, or layer -> DataFrame.
        jumps: The `/jumps` table, a list of Jump records, or layer -> list of Jump.
        metric: The metric column to draw.
        layers: Layer names or globs to keep (default all).
        significant_only: Mark only the rows flagged significant.
        logx: Log-scale the steps; None decides from their spacing.
        run_name: Shown in the title.
        layer_name: Name of the layer when `df` has no layer column.
        figsize: Figure size in inches.
        save: Also write the figure here.

    Returns:
        The matplotlib Figure.
    """
    frame, chosen, table = _prepare(df, metric, layers, jumps, layer_name)
    marks = marked_jumps(table, metric, chosen, significant_only=significant_only)
    fig, ax = new_figure(figsize)
    colors = layer_colors(chosen)
    draw_curves(ax, frame, metric, chosen, colors)
    for row in marks.itertuples(index=False):
        start = row.prev_step if _finite(row.prev_step) else row.step
        ax.axvspan(start, row.step, color=colors[row.layer], alpha=0.15, gid="ndt-jump-interval")
    extra = draw_jumps(ax, frame, metric, marks, colors)
    if len(marks) <= 12:
        _annotate(ax, frame, metric, marks)
    set_step_axis(ax, frame["step"].unique(), logx)
    label_metric_axis(ax, metric)
    ax.set_title(_title(f"{metric_title(metric)}: {len(marks)} jumps", run_name))
    add_layer_legend(fig, ax, chosen, colors, extra)
    return _finish(fig, save)


def _finite(value: object) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _annotate(ax: Axes, frame: pd.DataFrame, metric: str, marks: pd.DataFrame) -> None:
    values = frame.set_index(["layer", "step"])[metric]
    for row in marks.itertuples(index=False):
        y = values.get((row.layer, int(row.step)), row.value_after)
        q, p = getattr(row, "q_value", None), getattr(row, "p_value", None)
        text = f"q={float(q):.2g}" if _finite(q) else (f"p={float(p):.2g}" if _finite(p) else "")
        if text:
            ax.annotate(
                text, (row.step, y), xytext=(6, 6), textcoords="offset points", fontsize="x-small"
            )


def plot_phase_curves(
    df: CurveData,
    metric: str = "stable_rank",
    jumps: JumpData = None,
    layers: Sequence[str] | str | None = None,
    *,
    logx: bool | None = None,
    run_name: str | None = None,
    layer_name: str | None = None,
    figsize: tuple[float, float] = (8.0, 4.5),
    save: str | Path | None = None,
) -> Figure:
    """Plot a metric across layers with the phases between significant jumps shaded.

    The phase boundaries are the distinct steps of the significant jumps of `metric` in the
    drawn layers; k boundaries make k + 1 phases, shaded alternately and numbered on top.

    Args:
        df: Tidy curves, or layer -> DataFrame (as ``tracker.get_results()``).
        metric: The metric column to draw.
        jumps: The `/jumps` table or Jump records; without jumps there is one phase.
        layers: Layer names or globs to keep (default all).
        logx: Log-scale the steps; None decides from their spacing.
        run_name: Shown in the title.
        layer_name: Name of the layer when `df` has no layer column.
        figsize: Figure size in inches.
        save: Also write the figure here.

    Returns:
        The matplotlib Figure.
    """
    frame, chosen, table = _prepare(df, metric, layers, jumps, layer_name)
    marks = marked_jumps(table, metric, chosen)
    fig, ax = new_figure(figsize)
    colors = layer_colors(chosen)
    steps = np.unique(frame["step"].to_numpy())
    log = use_log_x(steps) if logx is None else logx
    bounds = sorted({int(s) for s in marks["step"]})
    edges = [int(steps.min()), *bounds, int(steps.max())]
    for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        ax.axvspan(lo, hi, color="0.88" if i % 2 else "0.95", zorder=0, gid="ndt-phase")
        ax.text(
            np.sqrt(max(lo, 1) * hi) if log else (lo + hi) / 2,
            1.0,
            f"P{i + 1}",
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="bottom",
            fontsize="small",
            color="0.3",
        )
    for bound in bounds:
        ax.axvline(bound, color="0.4", linestyle=":", linewidth=1.0)
    draw_curves(ax, frame, metric, chosen, colors)
    extra = draw_jumps(ax, frame, metric, marks, colors)
    set_step_axis(ax, steps, log)
    label_metric_axis(ax, metric)
    n_phases = len(edges) - 1
    ax.set_title(_title(f"{metric_title(metric)}: {n_phases} phases", run_name), pad=14)
    add_layer_legend(fig, ax, chosen, colors, extra)
    return _finish(fig, save)


def plot_metric_grid(
    df: CurveData,
    metrics: Sequence[str] | None = None,
    layers: Sequence[str] | str | None = None,
    *,
    jumps: JumpData = None,
    transitions: pd.DataFrame | None = None,
    logx: bool | None = None,
    run_name: str | None = None,
    ncols: int | None = None,
    save: str | Path | None = None,
) -> Figure:
    """Small multiples: one panel per metric, one line per layer, one shared legend.

    Args:
        df: Tidy curves, or layer -> DataFrame.
        metrics: Metrics to draw (default all in the table).
        layers: Layer names or globs to keep (default all).
        jumps: The `/jumps` table or Jump records; significant ones are marked.
        transitions: The transitions of `ndt jumps`, drawn as bands on every panel.
        logx: Log-scale the steps; None decides from their spacing.
        run_name: Shown in the title.
        ncols: Panels per row (default 2, or 3 beyond 4 metrics).
        save: Also write the figure here.

    Returns:
        The matplotlib Figure, with ``len(metrics)`` panels.
    """
    frame = tidy_frame(df)
    metrics = check_metrics(frame, metrics)
    chosen = match_layers(layer_order(frame), layers)
    table = jumps_frame(jumps)
    ncols = ncols or (1 if len(metrics) == 1 else 2 if len(metrics) <= 4 else 3)
    nrows = math.ceil(len(metrics) / ncols)
    fig, axes = new_figure((4.2 * ncols + 1.8, 3.0 * nrows + 0.4), nrows, ncols, sharex=True)
    axes = np.atleast_1d(axes).ravel()
    colors = layer_colors(chosen)
    marks: list = []
    bands: list = []
    for ax, metric in zip(axes, metrics, strict=False):
        draw_curves(ax, frame, metric, chosen, colors)
        marks = draw_jumps(ax, frame, metric, marked_jumps(table, metric, chosen), colors) or marks
        bands = draw_transitions(ax, transitions) or bands
        set_step_axis(ax, frame["step"].unique(), logx)
        ax.set_title(metric_label(metric), fontsize="medium")
        set_metric_ticks(ax, metric)
        if not ax.get_subplotspec().is_last_row():
            ax.set_xlabel("")
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    fig.suptitle(_title("Dimensionality per layer", run_name))
    add_layer_legend(fig, list(axes[: len(metrics)]), chosen, colors, marks + bands)
    return _finish(fig, save)
