"""`ndt layers`: list a model's modules and which of them `ndt track` would analyse."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ndt_cli._options import TrustCode
from ndt_cli._output import err, out, print_json


def layers(
    ckpt_dir: Annotated[
        Path | None,
        typer.Argument(help="Checkpoint folder whose ndt.toml (or config.json) names the model."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="Zoo name, hf, pkg.module:factory or file.py:factory. Default: the "
            "folder's ndt.toml, else hf when it holds a transformers config.json."
        ),
    ] = None,
    model_kwargs: Annotated[
        str | None, typer.Option(help="JSON keyword arguments for the model factory.")
    ] = None,
    ckpt: Annotated[
        Path | None, typer.Option(help="A checkpoint to load strictly, to check that it fits.")
    ] = None,
    layer_patterns: Annotated[
        list[str] | None, typer.Option("--layers", help="Glob over qualified names. Repeatable.")
    ] = None,
    show_all: Annotated[
        bool, typer.Option("--all", help="List every module, not only tracked ones.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the listing as JSON.")] = False,
    trust_code: TrustCode = False,
) -> None:
    """List the layers `ndt track` would analyse, and check that a checkpoint loads.

    Examples:

        ndt layers fixtures/digits-mlp/ckpts

        ndt layers --model mlp --ckpt fixtures/digits-mlp/ckpts/step_00000000.safetensors --all

    See docs/commands/layers.md.
    """
    # torch load here, not at import: `ndt layers --help` stays fast.
    from ndt.models.inspection import list_layers
    from ndt.models.spec import model_spec

    spec = model_spec(model, model_kwargs)
    listing = list_layers(
        spec, ckpt_dir=ckpt_dir, checkpoint=ckpt, patterns=layer_patterns, trust_code=trust_code
    )
    shown = [info for info in listing.layers if show_all or info.tracked]
    if as_json:
        print_json(
            {
                "model": listing.spec.describe(),
                "architecture": listing.architecture,
                "checkpoint": listing.checkpoint,
                "layers": [asdict(info) for info in shown],
                "notes": list(listing.notices),
            }
        )
        return
    loaded = f", {listing.checkpoint} loads" if listing.checkpoint else ""
    out.print(
        f"model {listing.spec.describe()}: architecture {listing.architecture}{loaded}",
        soft_wrap=True,
    )
    table = Table()
    for column in ("layer", "module", "parameters", "tracked"):
        table.add_column(column, justify="right" if column == "parameters" else "left")
    for info in shown:
        table.add_row(info.name, info.kind, str(info.n_parameters), "yes" if info.tracked else "")
    out.print(table)
    for notice in listing.notices:
        err.print(f"Note: {notice}", soft_wrap=True, markup=False)
