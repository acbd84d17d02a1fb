"""Interactive plotly figures (optional extra: ``pip install 'ndt-replay[interactive]'``).

``ndt plot --html`` does not need plotly: it writes a self-contained page (`page.py`).
This module serves notebook users: the reference API's `create_interactive_plot`,
`create_multi_layer_plot` and `create_dashboard` (tracker results, ndtracker's layout), and
`create_results_plot` for a results file (every layer, significant jumps with p and q).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ndt.core.layer_globs import match_layers
from ndt.errors import NdtError
from ndt.visualization._data import (
    CurveData,
    check_metrics,
    jumps_frame,
    layer_order,
    marked_jumps,
    tidy_frame,
    use_log_x,
)
from ndt.visualization._style import layer_hex_colors, metric_label, metric_title
from ndt.visualization.plots import STEP_LABEL, default_metrics, title_of

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go

INSTALL_HINT = "pip install 'ndt-replay[interactive]'"


def _plotly() -> tuple[object, object]:
    try:
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots
    except ImportError:
        raise NdtError(f"interactive plots need plotly; install it with {INSTALL_HINT}") from None
    return go, make_subplots


def create_results_plot(
    df: CurveData,
    metrics: Sequence[str] | None = None,
    layer_name: str | None = None,
    show_loss: bool = True,
    *,
    layers: Sequence[str] | str | None = None,
    jumps: object = None,
    logx: bool | None = None,
    run_name: str | None = None,
) -> go.Figure:
    """A plotly figure: one row per metric, one trace per layer, jumps with their p and q.

    Clicking a layer in the legend hides it in every row (traces share a legend group).

    Args:
        df: Tidy curves (columns step, layer, metrics), layer -> DataFrame, or one layer's
            DataFrame (then `layer_name` names it).
        metrics: Metrics to draw, one row each (default all).
        layer_name: Name of the layer when `df` has no layer column.
        show_loss: Add a row for the ``loss`` column when there is one.
        layers: Layer names or globs to keep (default all).
        jumps: The `/jumps` table or Jump records; significant ones are marked.
        logx: Log-scale the steps; None decides from their spacing.
        run_name: Shown in the title.

    Returns:
        The plotly Figure (``fig.show()``, ``fig.write_html(path)``).

    Raises:
        NdtError: if plotly is missing (with the install command), or for an unknown
            metric or layer.
    """
    go, make_subplots = _plotly()
    frame = tidy_frame(df, layer_name=layer_name)
    metrics = check_metrics(frame, metrics)
    chosen = match_layers(layer_order(frame), layers)
    table = jumps_frame(jumps, layer_name=layer_name)
    loss = show_loss and "loss" in frame.columns
    rows = [*metrics, "loss"] if loss else list(metrics)
    fig = make_subplots(
        rows=len(rows),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.06 if len(rows) <= 4 else 0.03,
        subplot_titles=[metric_label(m) for m in rows],
    )
    colors = dict(zip(chosen, layer_hex_colors(chosen), strict=True))
    for row, metric in enumerate(metrics, start=1):
        for layer in chosen:
            part = frame[frame["layer"] == layer]
            fig.add_trace(
                go.Scatter(
                    x=part["step"],
                    y=part[metric],
                    mode="lines",
                    name=layer,
                    legendgroup=layer,
                    showlegend=row == 1,
                    line={"color": colors[layer], "width": 1.8},
                    hovertemplate=f"{layer}<br>step %{{x}}<br>{metric} %{{y:.4g}}<extra></extra>",
                ),
                row=row,
                col=1,
            )
        _add_jumps(fig, go, frame, metric, marked_jumps(table, metric, chosen), colors, row)
    if loss:
        first = frame.drop_duplicates("step")
        fig.add_trace(
            go.Scatter(x=first["step"], y=first["loss"], mode="lines", name="loss",
                       line={"color": "#555555", "dash": "dash"}),
            row=len(rows), col=1,
        )  # fmt: skip
    log = use_log_x(frame["step"].unique()) if logx is None else logx
    fig.update_xaxes(type="log" if log and (frame["step"] > 0).all() else "linear")
    fig.update_xaxes(title_text="training step", row=len(rows), col=1)
    title = "Dimensionality per layer" + (f" · {run_name}" if run_name else "")
    fig.update_layout(
        title=title, height=260 * len(rows) + 120, hovermode="closest", template="plotly_white"
    )
    return fig


def _add_jumps(
    fig: go.Figure,
    go: object,
    frame: pd.DataFrame,
    metric: str,
    marks: pd.DataFrame,
    colors: dict[str, str],
    row: int,
) -> None:
    if marks.empty:
        return
    values = frame.set_index(["layer", "step"])[metric]
    ys = [values.get((r.layer, int(r.step)), r.value_after) for r in marks.itertuples()]
    text = [
        f"{r.layer}<br>jump at step {int(r.step)}<br>{metric} "
        f"{_fmt(r.value_before)} → {_fmt(r.value_after)}<br>"
        f"p = {_fmt(getattr(r, 'p_value', None))}, q = {_fmt(getattr(r, 'q_value', None))}"
        for r in marks.itertuples()
    ]
    up = marks["delta"].astype(float).fillna(0.0).to_numpy() >= 0
    fig.add_trace(
        go.Scatter(
            x=marks["step"],
            y=ys,
            mode="markers",
            name=f"jumps ({metric_title(metric)})",
            showlegend=False,
            marker={
                "symbol": np.where(up, "triangle-up", "triangle-down"),
                "size": 11,
                "color": [colors[layer] for layer in marks["layer"]],
                "line": {"color": "black", "width": 1},
            },
            text=text,
            hovertemplate="%{text}<extra></extra>",
        ),
        row=row,
        col=1,
    )


def _fmt(value: object) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "–"
    return "–" if np.isnan(number) else f"{number:.3g}"


def create_interactive_plot(
    df: pd.DataFrame,
    metrics: Sequence[str] | None = None,
    layer_name: str = "Layer",
    show_loss: bool = True,
) -> go.Figure:
    """One layer's metrics, one row each (default the four reference metrics), and the
    loss in a last row; metrics missing from `df` are left out.

    Raises:
        NdtError: if plotly is missing.
    """
    go, make_subplots = _plotly()
    names = default_metrics(df) if metrics is None else [m for m in metrics if m in df.columns]
    loss = show_loss and "loss" in df.columns
    titles = [title_of(m) for m in names] + (["Loss"] if loss else [])
    fig = make_subplots(rows=len(titles), cols=1, shared_xaxes=True, subplot_titles=titles)
    for row, metric in enumerate(names, start=1):
        fig.add_trace(
            go.Scatter(x=df["step"], y=df[metric], mode="lines", name=title_of(metric)),
            row=row, col=1,
        )  # fmt: skip
    if loss:
        fig.add_trace(
            go.Scatter(x=df["step"], y=df["loss"], mode="lines", name="Loss",
                       line={"color": "coral"}),
            row=len(titles), col=1,
        )  # fmt: skip
    fig.update_xaxes(title_text=STEP_LABEL, row=len(titles), col=1)
    fig.update_layout(
        title=f"Dimensionality Metrics - {layer_name}", height=300 * len(titles),
        hovermode="x unified",
    )  # fmt: skip
    return fig


def create_multi_layer_plot(
    results: Mapping[str, pd.DataFrame], metric: str = "stable_rank"
) -> go.Figure:
    """`metric` of every layer that has it, one trace each."""
    go, _ = _plotly()
    fig = go.Figure()
    for layer, df in results.items():
        if metric in df.columns:
            fig.add_trace(go.Scatter(x=df["step"], y=df[metric], mode="lines", name=str(layer)))
    fig.update_layout(
        title=f"{title_of(metric)} Across Layers", xaxis_title=STEP_LABEL,
        yaxis_title=title_of(metric), hovermode="x unified",
    )  # fmt: skip
    return fig


def create_dashboard(
    results: Mapping[str, pd.DataFrame], layer_name: str | None = None
) -> go.Figure:
    """A grid of panels: for one layer (`layer_name`), its four metrics, loss and gradient
    norm (those present); for all layers, each reference metric with one trace per layer.

    Raises:
        KeyError: if `layer_name` is not in `results`.
    """
    go, make_subplots = _plotly()
    if layer_name is not None:
        df = results[layer_name]
        names = default_metrics(df) + [c for c in ("loss", "grad_norm") if c in df.columns]
        fig = make_subplots(rows=3, cols=2, subplot_titles=[title_of(n) for n in names])
        for index, name in enumerate(names):
            fig.add_trace(
                go.Scatter(x=df["step"], y=df[name], mode="lines", name=title_of(name),
                           showlegend=False),
                row=index // 2 + 1, col=index % 2 + 1,
            )  # fmt: skip
        fig.update_layout(title=f"Comprehensive Dashboard - {layer_name}", height=900)
        return fig
    first = next(iter(results.values()))
    names = default_metrics(first)
    fig = make_subplots(rows=2, cols=2, subplot_titles=[title_of(n) for n in names])
    for index, name in enumerate(names):
        for layer, df in results.items():
            if name in df.columns:
                fig.add_trace(
                    go.Scatter(x=df["step"], y=df[name], mode="lines", name=str(layer),
                               legendgroup=str(layer), showlegend=index == 0),
                    row=index // 2 + 1, col=index % 2 + 1,
                )  # fmt: skip
    fig.update_layout(title="Multi-Layer Comparison Dashboard", height=800)
    return fig
