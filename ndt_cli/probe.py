"""`ndt probe`: write a fixed probe batch (safetensors) from data or a seeded generator."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ndt_cli._options import SEED_MAX
from ndt_cli._output import out, print_json


def probe(
    path: Annotated[Path, typer.Argument(help="The probe file to write (.safetensors).")],
    digits: Annotated[
        int | None,
        typer.Option(
            min=1, help="N class-balanced samples of scikit-learn's 8x8 digits, with labels."
        ),
    ] = None,
    gaussian: Annotated[
        str | None, typer.Option(help="Standard normal float32 inputs of this shape, e.g. 256x64.")
    ] = None,
    tokens: Annotated[
        str | None, typer.Option(help="Random int64 token ids of this shape, e.g. 64x16.")
    ] = None,
    vocab: Annotated[
        int | None,
        typer.Option(min=1, help="Vocabulary size for --tokens (ids 0 to vocab-1)."),
    ] = None,
    source: Annotated[
        Path | None,
        typer.Option(
            "--from",
            help="An array file: .npy, .pt/.pth (tensor or dict with 'inputs') or numeric .csv.",
        ),
    ] = None,
    labels: Annotated[
        Path | None, typer.Option(help="A file with the labels for --from, shape (n,).")
    ] = None,
    label_column: Annotated[
        str | None,
        typer.Option(help="The column of --from (CSV) or --text (table) that holds the labels."),
    ] = None,
    text: Annotated[
        Path | None,
        typer.Option(
            help="A text file to tokenize: .txt (a sample per line), .tsv/.csv (header row) "
            "or .jsonl; labels from its 'label' column when it has one."
        ),
    ] = None,
    tokenizer: Annotated[
        Path | None,
        typer.Option(help="With --text: a folder holding a saved Hugging Face tokenizer."),
    ] = None,
    max_length: Annotated[
        int | None, typer.Option(help="With --text: truncate samples to N tokens.")
    ] = None,
    text_column: Annotated[
        str | None, typer.Option(help="With --text: the text column (default 'text').")
    ] = None,
    image: Annotated[
        bool, typer.Option(help="With --digits: inputs as (n, 1, 8, 8) images, not (n, 64).")
    ] = False,
    image_size: Annotated[
        str | None,
        typer.Option(
            help="With --digits --image: resize the 8x8 images to H or HxW (e.g. 28, 32x24) "
            "by antialiased bilinear interpolation (torch interpolate, align_corners=False)."
        ),
    ] = None,
    seed: Annotated[
        int,
        typer.Option(min=0, max=SEED_MAX, help="Seed of the digits subset or the random values."),
    ] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace PATH if it exists.")] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print a JSON summary on stdout.")
    ] = False,
) -> None:
    """Write a probe batch: the fixed inputs every checkpoint is replayed on.

    Give exactly one source: --digits, --gaussian, --tokens (with --vocab), --from, or
    --text (with --tokenizer).

    Example: ndt probe probe.safetensors --digits 512 --seed 0

    Example: ndt probe probe.safetensors --text probe.tsv --tokenizer run/checkpoint-500

    See docs/commands/probe.md.
    """
    # numpy and torch load here, not at import: `ndt probe --help` stays fast.
    from ndt.io.probe_sources import make_probe

    written = make_probe(
        path,
        digits=digits,
        gaussian=gaussian,
        tokens=tokens,
        vocab=vocab,
        source=source,
        labels=labels,
        label_column=label_column,
        image=image,
        image_size=image_size,
        seed=seed,
        overwrite=overwrite,
        text=text,
        tokenizer=tokenizer,
        max_length=max_length,
        text_column=text_column,
    )
    tensors = {"inputs": written.inputs}
    if written.labels is not None:
        tensors["labels"] = written.labels
    tensors.update(written.extras)
    shapes = {
        name: {"shape": list(t.shape), "dtype": str(t.dtype).removeprefix("torch.")}
        for name, t in tensors.items()
    }
    if json_output:
        print_json(
            {
                "path": str(path),
                "n_samples": written.n_samples,
                "sha256": written.sha256,
                "tensors": shapes,
            }
        )
        return
    out.print(f"Wrote {path} ({written.n_samples} samples)", soft_wrap=True, markup=False)
    width = max(8, *(len(name) for name in shapes))
    for name, info in shapes.items():
        shape = "x".join(str(side) for side in info["shape"])
        out.print(f"  {name:<{width}} {shape:<12} {info['dtype']}", soft_wrap=True, markup=False)
    out.print(f"sha256 {written.sha256}", soft_wrap=True, markup=False)
