"""`ndt export`: write a results file's tidy table (step, layer, metrics) as CSV or JSON."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from ndt_cli._output import err


class Format(str, Enum):
    csv = "csv"
    json = "json"


def export(
    results: Annotated[
        Path, typer.Argument(help="A results file written by `ndt track` or export_to_hdf5.")
    ],
    fmt: Annotated[
        Format | None,
        typer.Option(
            "--format", "-f", help="csv or json. Default: from the suffix of -o, else csv."
        ),
    ] = None,
    out_path: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="File to write. Default: print the table on stdout."),
    ] = None,
) -> None:
    """Export the curves as a tidy table: one row per step and layer, one column per metric.

    Columns: step, layer, the metrics, then loss and grad_norm if recorded; NaN is empty/null.

    Examples:

        ndt export results.h5 --format csv -o curves.csv

        ndt export results.h5 --format json | jq '.[0]'

    See docs/commands/export.md.
    """
    # pandas and h5py load here, not at import: `ndt export --help` stays fast.
    from ndt.io.export import export_results, render_results

    fmt_name = fmt.value if fmt is not None else None
    if out_path is None:
        print(render_results(results, fmt_name or "csv"), end="")
        return
    report = export_results(results, fmt_name, out_path)
    err.print(
        f"Wrote {report.n_rows} rows ({len(report.columns)} columns) to {report.path} "
        f"as {report.fmt}.",
        soft_wrap=True,
        markup=False,
    )
