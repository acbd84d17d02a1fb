"""`ndt merge`: join the results files of a run tracked in shards into one file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ndt_cli._output import err


def merge(
    results: Annotated[
        list[Path],
        typer.Argument(help="Results files of one run (e.g. from `ndt track --shard I/N`)."),
    ],
    out_path: Annotated[Path, typer.Option("--out", "-o", help="The merged results file.")],
    overwrite: Annotated[
        bool, typer.Option(help="Replace --out if it exists and is not one of the inputs.")
    ] = False,
    wait: Annotated[
        float,
        typer.Option(min=0, help="Seconds to wait for another ndt process writing --out."),
    ] = 0.0,
) -> None:
    """Merge results files made with the same options into one, steps in order.

    Files whose provenance differs (model, probe, metrics, centring, layers, ...) or that
    hold one step with different values are refused.

    Example:

        ndt merge shard-0.h5 shard-1.h5 shard-2.h5 -o results.h5

    See docs/commands/merge.md.
    """
    # pandas and h5py load here, not at import: `ndt merge --help` stays fast.
    from ndt.io.merge import merge_results

    merged = merge_results(results, out_path, overwrite=overwrite, wait=wait)
    err.print(
        f"Merged {len(results)} files into {out_path}: {len(merged.steps)} checkpoints x "
        f"{len(merged.layers)} layers.",
        soft_wrap=True,
        markup=False,
    )
