"""`ndt plot`: figures of a results file's curves, or one interactive HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ndt.visualization.plot_defaults import DEFAULT_OUT_DIR
from ndt_cli._output import out, print_json


def plot(
    results: Annotated[
        Path, typer.Argument(help="Results file written by `ndt track` (and `ndt jumps`).")
    ],
    metric: Annotated[
        list[str] | None,
        typer.Option("--metric", "-m", help="Metric to draw; repeat for several (default all)."),
    ] = None,
    layer: Annotated[
        list[str] | None,
        typer.Option(
            "--layer", "-l", help="Layer name or glob such as 'blocks.*'; repeatable (default all)."
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write one figure here instead; .png, .svg or .pdf by extension."
        ),
    ] = None,
    out_dir: Annotated[
        Path, typer.Option("--out-dir", help="Folder for the default set of figures.")
    ] = Path(DEFAULT_OUT_DIR),
    heatmap: Annotated[
        bool, typer.Option("--heatmap", help="Draw layers x steps heatmaps coloured by the metric.")
    ] = False,
    logx: Annotated[
        bool | None,
        typer.Option(
            "--logx/--no-logx",
            help="Log-scale the steps (default: automatic when they are clearly log-spaced).",
        ),
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option("--html", help="Write one self-contained interactive HTML page here."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the list of files written as JSON.")
    ] = False,
) -> None:
    """Plot the per-layer curves of a results file, with significant jumps marked.

    Example:

        ndt plot results.h5                  # ndt-plots/<metric>.png, all-metrics.png, ...

        ndt plot results.h5 -m stable_rank -l 'blocks.*' -o stable_rank.pdf

        ndt plot results.h5 --html report.html

    See docs/commands/plot.md.
    """
    # pandas and the figures load here, not at import: `ndt plot --help` stays fast.
    from ndt.visualization.results_figures import plot_results

    written = plot_results(
        results,
        out_dir=out_dir,
        output=output,
        html=html,
        metrics=metric or None,
        layers=layer or None,
        heatmap=heatmap,
        logx=logx,
    )
    if as_json:
        print_json({"files": [str(path) for path in written]})
        return
    for path in written:
        out.print(f"wrote {path}", soft_wrap=True, markup=False)
