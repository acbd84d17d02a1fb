"""`ndt plot`'s engine: from a results file to the figure files it asks for."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ndt.core.layer_globs import match_layers
from ndt.errors import NdtError, ResultsFormatError
from ndt.io.store import read_results
from ndt.visualization._data import check_metrics, layer_order, run_name
from ndt.visualization._style import SAVE_FORMATS
from ndt.visualization.curves import plot_metric_curves, plot_metric_grid
from ndt.visualization.heatmaps import plot_layer_heatmap, plot_metric_correlations
from ndt.visualization.page import write_html_report
from ndt.visualization.plot_defaults import DEFAULT_OUT_DIR


def _one_figure(
    frame: pd.DataFrame,
    output: Path,
    metrics: list[str],
    heatmap: bool,
    jumps: pd.DataFrame | None,
    transitions: pd.DataFrame | None,
    logx: bool | None,
    common: dict[str, object],
) -> Path:
    """The one figure `-o` asks for: a heatmap, one metric's curves, or the grid."""
    if output.suffix.lower() not in SAVE_FORMATS:
        raise NdtError(f"cannot save a figure as {output.name!r}; use .png, .svg or .pdf")
    if heatmap and len(metrics) != 1:
        raise NdtError(
            f"--heatmap with -o draws one metric; choose it with --metric "
            f"(one of {', '.join(metrics)})"
        )
    if heatmap:
        plot_layer_heatmap(frame, metrics[0], jumps=jumps, save=output, **common)
    elif len(metrics) == 1:
        plot_metric_curves(
            frame, metrics[0], jumps=jumps, transitions=transitions, logx=logx, save=output,
            **common,
        )  # fmt: skip
    else:
        plot_metric_grid(
            frame, metrics, jumps=jumps, transitions=transitions, logx=logx, save=output,
            **common,
        )  # fmt: skip
    return output


def _ready_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NdtError(
            f"cannot create output folder {folder}: {exc.strerror or exc}; choose another "
            "with --out-dir"
        ) from None
    if not folder.is_dir():
        raise NdtError(f"output folder {folder} is not a folder; choose another with --out-dir")


def plot_results(
    path: str | Path,
    *,
    out_dir: str | Path = DEFAULT_OUT_DIR,
    output: str | Path | None = None,
    html: str | Path | None = None,
    metrics: Sequence[str] | None = None,
    layers: Sequence[str] | None = None,
    heatmap: bool = False,
    logx: bool | None = None,
) -> list[Path]:
    """Draw a results file's curves into figure files.

    Without `output` or `html`, writes into `out_dir`: ``<metric>.png`` for each metric
    (all chosen layers, significant jumps marked), ``all-metrics.png`` (one panel per
    metric), ``correlation.png`` (with two metrics or more) and, with `heatmap`,
    ``<metric>-heatmap.png``.

    Args:
        path: The results file (`ndt track`'s output; `ndt jumps` adds the jumps).
        out_dir: Folder for the default set of figures.
        output: Write one figure here instead (.png, .svg or .pdf): the curves of the one
            metric chosen, else the grid of the chosen metrics; with `heatmap`, the
            layers x steps heatmap of the one metric chosen.
        html: Write the interactive page here instead (with `output`, both).
        metrics: Metrics to draw (default all in the file).
        layers: Layer names or shell globs (default all).
        heatmap: Draw layers x steps heatmaps.
        logx: Log-scale the steps; None decides from their spacing.

    Returns:
        The files written, in order.

    Raises:
        ResultsFormatError: if the file is unreadable or holds no curves.
        NdtError: for an unknown metric or layer pattern, a bad extension, or an output
            that cannot be written.
    """
    path = Path(path)
    results = read_results(path)
    values = [np.asarray(v, dtype=np.float64) for v in results.metrics.values()]
    if len(results.steps) == 0 or not any(np.isfinite(v).any() for v in values):
        raise ResultsFormatError(f"{path} holds no metric curves; run `ndt track` first")
    frame = results.to_frame()
    metrics = check_metrics(frame, metrics)
    layers = match_layers(layer_order(frame), layers)
    run = run_name(path, results.provenance.checkpoint_dir if results.provenance else "")
    common = {"layers": layers, "run_name": run}
    jumps, transitions = results.jumps, results.transitions
    curves = {"jumps": jumps, "transitions": transitions, "logx": logx}
    written: list[Path] = []
    if output is not None:
        written.append(
            _one_figure(frame, Path(output), metrics, heatmap, jumps, transitions, logx, common)
        )
    if html is not None:
        page = write_html_report(frame, html, metrics=metrics, **curves, **common)
        written.append(page)
    if written:
        return written
    folder = Path(out_dir)
    _ready_folder(folder)
    for metric in metrics:
        target = folder / f"{metric}.png"
        plot_metric_curves(frame, metric, save=target, **curves, **common)
        written.append(target)
        if heatmap:
            target = folder / f"{metric}-heatmap.png"
            plot_layer_heatmap(frame, metric, jumps=jumps, save=target, **common)
            written.append(target)
    target = folder / "all-metrics.png"
    plot_metric_grid(frame, metrics, save=target, **curves, **common)
    written.append(target)
    if len(metrics) >= 2:
        target = folder / "correlation.png"
        plot_metric_correlations(frame, metrics, run_name=run, save=target)
        written.append(target)
    return written
