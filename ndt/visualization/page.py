"""One self-contained HTML page to explore the curves: no network, no plotting library.

The data travel as JSON inside the page and a short inline script draws them as SVG, so
the file opens from disk in any current browser, years later, offline.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ndt.core.layer_globs import match_layers
from ndt.errors import NdtError
from ndt.io.store import JUMP_COLUMNS
from ndt.visualization._data import (
    CurveData,
    check_metrics,
    jumps_frame,
    layer_order,
    tidy_frame,
    use_log_x,
)
from ndt.visualization._page_template import PAGE
from ndt.visualization._style import layer_hex_colors, metric_label

# The page shows every column of the table except the detector's own score.
_JUMP_FIELDS = tuple(c for c in JUMP_COLUMNS if c != "score")


def _number(value: object) -> object:
    """A JSON-safe scalar: NaN and None become None, numpy scalars become Python ones."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(f"{float(value):.7g}") if math.isfinite(value) else None
    return str(value)


def page_data(
    df: CurveData,
    *,
    jumps: object = None,
    transitions: pd.DataFrame | None = None,
    metrics: Sequence[str] | None = None,
    layers: Sequence[str] | str | None = None,
    logx: bool | None = None,
    run_name: str | None = None,
) -> dict[str, object]:
    """The JSON the page embeds: steps, layers, colours, curves, jump rows, transitions."""
    frame = tidy_frame(df)
    metrics = check_metrics(frame, metrics)
    chosen = match_layers(layer_order(frame), layers)
    steps = np.sort(frame["step"].unique())
    curves = {}
    for metric in metrics:
        grid = frame.pivot_table(index="layer", columns="step", values=metric, dropna=False)
        grid = grid.reindex(index=chosen, columns=steps)
        curves[metric] = {
            "label": metric_label(metric),
            "values": [[_number(v) for v in row] for row in grid.to_numpy(dtype=np.float64)],
        }
    table = jumps_frame(jumps)
    rows = []
    if table is not None:
        table = table[table["layer"].isin(chosen)].sort_values(["step", "layer"], kind="stable")
        fields = [f for f in _JUMP_FIELDS if f in table.columns]
        rows = [
            {f: _number(v) for f, v in zip(fields, rec, strict=True)}
            for rec in table[fields].itertuples(index=False)
        ]
    name = run_name or "ndt run"
    return {
        "title": f"{name}: dimensionality per layer",
        "subtitle": (
            f"{len(chosen)} layers, {len(steps)} checkpoints (steps {int(steps[0])} to "
            f"{int(steps[-1])}), {len(rows)} jump rows. Hover a curve for its values, a "
            "triangle for its jump's p and q."
        ),
        "steps": [int(s) for s in steps],
        "layers": chosen,
        "colors": layer_hex_colors(chosen),
        "metric": metrics[0],
        "metrics": curves,
        "logx": use_log_x(steps) if logx is None else bool(logx),
        "jumps": rows,
        "transitions": _transition_rows(transitions),
    }


def _transition_rows(transitions: pd.DataFrame | None) -> list[dict[str, object]]:
    if transitions is None or len(transitions) == 0:
        return []
    fields = ("rank", "prev_step", "step", "p_value", "n_curves", "layers", "strongest")
    return [
        {f: _number(v) for f, v in zip(fields, rec, strict=True)}
        for rec in transitions[list(fields)].itertuples(index=False)
    ]


def render_page(data: dict[str, object]) -> str:
    """The HTML text of the page for `page_data`'s output."""
    # "<" escaped so that no value can close the <script> element the JSON sits in.
    payload = json.dumps(data, allow_nan=False, separators=(",", ":")).replace("<", "\\u003c")
    return PAGE.replace("__TITLE__", html.escape(str(data["title"]))).replace("__DATA__", payload)


def write_html_report(
    df: CurveData,
    path: str | Path,
    *,
    jumps: object = None,
    transitions: pd.DataFrame | None = None,
    metrics: Sequence[str] | None = None,
    layers: Sequence[str] | str | None = None,
    logx: bool | None = None,
    run_name: str | None = None,
) -> Path:
    """Write the interactive page: metric picker, layer filter, hover values, jumps table.

    Args:
        df: Tidy curves (columns step, layer, metrics), or layer -> DataFrame.
        path: The .html file to write (its folder is created).
        jumps: The `/jumps` table or Jump records, shown as markers and as a table.
        transitions: The transitions of `ndt jumps`, shaded as numbered bands.
        metrics: Metrics offered by the picker (default all).
        layers: Layer names or globs to include (default all).
        logx: Start with log-scaled steps; None decides from their spacing.
        run_name: Shown in the title.

    Returns:
        The path written.

    Raises:
        NdtError: for an unknown metric or layer, or a path that cannot be written.
    """
    path = Path(path)
    text = render_page(
        page_data(
            df,
            jumps=jumps,
            transitions=transitions,
            metrics=metrics,
            layers=layers,
            logx=logx,
            run_name=run_name,
        )  # fmt: skip
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise NdtError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
