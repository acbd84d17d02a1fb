"""The reference API's matplotlib figures of tracker results (one layer's DataFrame, or
layer -> DataFrame), with ndtracker's titles and layout.

``ndt plot`` and the results-file figures (several layers, significant jumps, phases,
transitions) are `ndt.visualization.curves` and `ndt.visualization.heatmaps`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ndt.errors import NdtError
from ndt.visualization._style import new_figure

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: The four reference metrics; ``cumulative_90`` is ndtracker's column name for ndt's
#: ``cumulative_energy_90``.
REFERENCE_METRICS = ("stable_rank", "participation_ratio", "cumulative_90", "nuclear_norm_ratio")
STEP_LABEL = "Training Step"


def title_of(name: str) -> str:
    """``stable_rank`` -> ``Stable Rank``."""
    return name.replace("_", " ").title()


def default_metrics(df: pd.DataFrame) -> list[str]:
    """The reference metrics present in `df` (``cumulative_energy_90`` standing in for
    ``cumulative_90`` in ndt's tables)."""
    names = []
    for name in REFERENCE_METRICS:
        if name == "cumulative_90" and name not in df.columns:
            name = "cumulative_energy_90"
        if name in df.columns:
            names.append(name)
    return names


def _loss_axis(ax: Axes, df: pd.DataFrame) -> None:
    twin = ax.twinx()
    twin.plot(df["step"].to_numpy(), df["loss"].to_numpy(), color="coral", alpha=0.7)
    twin.set_ylabel("Loss", color="coral")


def plot_single_metric(
    df: pd.DataFrame, metric: str = "stable_rank", layer_name: str = "Layer",
    show_loss: bool = True, ax: Axes | None = None, figsize: tuple[float, float] = (10, 6),
) -> Figure:  # fmt: skip
    """One layer's `metric` over training steps, with the loss on a right-hand axis.

    Args:
        df: One layer's results (columns step, the metric, optionally loss).
        metric: The column to draw.
        layer_name: Shown in the title.
        show_loss: Add the loss axis when `df` has a loss column.
        ax: Draw into these axes instead of a new figure.
        figsize: Size of a new figure in inches.
    """
    fig, ax = new_figure(figsize) if ax is None else (ax.figure, ax)
    ax.plot(df["step"].to_numpy(), df[metric].to_numpy(), linewidth=1.8, label=metric)
    ax.set_xlabel(STEP_LABEL)
    ax.set_ylabel(title_of(metric))
    ax.set_title(f"{title_of(metric)} - {layer_name}")
    ax.grid(alpha=0.3)
    if show_loss and "loss" in df.columns:
        _loss_axis(ax, df)
    return fig


def plot_metrics_comparison(
    df: pd.DataFrame, metrics: Sequence[str] | None = None, layer_name: str = "Layer",
    show_loss: bool = True, figsize: tuple[float, float] | None = None,
) -> Figure:  # fmt: skip
    """One subplot per metric (default the four reference metrics), stacked, the loss on
    the last one; metrics missing from `df` are left out."""
    names = default_metrics(df) if metrics is None else [m for m in metrics if m in df.columns]
    if not names:
        raise NdtError("none of the metrics to compare is a column of the results")
    fig, axes = new_figure(figsize or (10, 3 * len(names)), nrows=len(names), sharex=True)
    axes = list(np.asarray(axes).ravel())
    for ax, metric in zip(axes, names, strict=True):
        ax.plot(df["step"].to_numpy(), df[metric].to_numpy(), linewidth=1.6)
        ax.set_ylabel(title_of(metric))
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel(STEP_LABEL)
    if show_loss and "loss" in df.columns:
        _loss_axis(axes[-1], df)
    fig.suptitle(f"Dimensionality Metrics - {layer_name}")
    return fig


def plot_phases(
    results: Mapping[str, pd.DataFrame], metric: str = "stable_rank",
    figsize: tuple[float, float] = (12, 6),
) -> Figure:  # fmt: skip
    """`metric` of every layer that has it, one line each, on one axis."""
    fig, ax = new_figure(figsize)
    for layer, df in results.items():
        if metric in df.columns:
            ax.plot(df["step"].to_numpy(), df[metric].to_numpy(), label=str(layer), alpha=0.8)
    ax.set_xlabel(STEP_LABEL)
    ax.set_ylabel(title_of(metric))
    ax.set_title(f"{title_of(metric)} Across Layers")
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


def plot_jumps(
    df: pd.DataFrame, jumps: Sequence[object], metric: str = "stable_rank",
    layer_name: str = "Layer", figsize: tuple[float, float] = (12, 6),
) -> Figure:  # fmt: skip
    """One layer's `metric` with every given jump marked (a point and a vertical line).

    A jump is drawn at the curve's value at its step, or at its ``value_after`` when the
    step is not in `df`. All jumps given are drawn, whatever their ``metric_name``.
    """
    fig, ax = new_figure(figsize)
    ax.plot(df["step"].to_numpy(), df[metric].to_numpy(), linewidth=1.8, label=metric)
    if jumps:
        values = dict(zip(df["step"].to_numpy().tolist(), df[metric].to_numpy(), strict=True))
        xs = [j.step for j in jumps]
        ys = [values.get(j.step, j.value_after) for j in jumps]
        ax.scatter(xs, ys, color="red", s=80, zorder=5, label=f"Jumps (n={len(jumps)})")
        for step in xs:
            ax.axvline(step, color="red", alpha=0.3, linestyle="--")
    ax.set_xlabel(STEP_LABEL)
    ax.set_ylabel(title_of(metric))
    ax.set_title(f"Dimensionality Jumps - {layer_name}")
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


def plot_correlation_heatmap(
    df: pd.DataFrame, metrics: Sequence[str] | None = None,
    figsize: tuple[float, float] = (10, 8),
) -> Figure:  # fmt: skip
    """Pearson correlations between the columns of one layer's results (default every
    numeric column but ``step``), each written in its cell to two decimals."""
    if metrics is None:
        metrics = [
            c for c in df.columns
            if c not in ("step", "layer") and pd.api.types.is_numeric_dtype(df[c])
        ]  # fmt: skip
    corr = df[list(metrics)].astype(np.float64).corr().to_numpy()
    fig, ax = new_figure(figsize)
    image = ax.imshow(corr, cmap="coolwarm", vmin=-1.0, vmax=1.0)
    for (i, j), value in np.ndenumerate(corr):
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize="small")
    ax.set_xticks(range(len(metrics)), labels=list(metrics), rotation=45, ha="right")
    ax.set_yticks(range(len(metrics)), labels=list(metrics))
    ax.set_title("Metric Correlations")
    fig.colorbar(image, ax=ax)
    return fig
