"""`ndt compare`: what changed inside each layer between two checkpoints of a tracked run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ndt.analysis.compare_settings import CompareSettings
from ndt_cli._options import SEED_MAX, real
from ndt_cli._output import err, out

_D = CompareSettings()


def compare(
    step: Annotated[
        int | None,
        typer.Option(help="Compare the last checkpoint before S with the one at (or after) S."),
    ] = None,
    window: Annotated[
        int, typer.Option(min=0, help="Move each side K checkpoints further from --step.")
    ] = 0,
    before: Annotated[int | None, typer.Option(help="Earlier step, with --after.")] = None,
    after: Annotated[int | None, typer.Option(help="Later step, with --before.")] = None,
    results: Annotated[Path, typer.Option(help="Results file written by `ndt track`.")] = Path(
        "results.h5"
    ),
    layers: Annotated[
        list[str] | None,
        typer.Option(
            "--layers", help="Glob over module names (repeatable). Default: the tracked layers."
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(help="Model to build instead of the recorded one (same forms as track)."),
    ] = None,
    model_kwargs: Annotated[
        str | None, typer.Option(help="JSON keyword arguments for --model.")
    ] = None,
    probe: Annotated[
        Path | None,
        typer.Option(help="Probe file, if it moved since `ndt track` (same sha256 required)."),
    ] = None,
    ckpts: Annotated[
        Path | None, typer.Option(help="Checkpoint folder, if it moved since `ndt track`.")
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Write report.md, report.html and figures into DIR.")
    ] = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write every number to FILE as JSON.")
    ] = None,
    save_activations: Annotated[
        Path | None, typer.Option(help="Save both steps' activations to FILE (HDF5, gzip).")
    ] = None,
    dead_threshold: Annotated[
        float,
        typer.Option(help="Sparsity above which a neuron is dead, in [0, 1].", callback=real(0, 1)),
    ] = _D.dead_threshold,
    clusters: Annotated[int, typer.Option(min=2, help="KMeans clusters.")] = _D.n_clusters,
    components: Annotated[
        int, typer.Option(min=1, help="Principal components compared.")
    ] = _D.n_components,
    top_k: Annotated[
        int, typer.Option(min=0, help="Neurons listed by largest |delta mean|.")
    ] = _D.top_k,
    seed: Annotated[
        int, typer.Option(min=0, max=SEED_MAX, help="Seed of KMeans, CV folds and subsampling.")
    ] = _D.seed,
    max_rows: Annotated[
        int, typer.Option(min=1, help="Subsample layers with more rows (stated).")
    ] = _D.max_rows,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    batch_size: Annotated[
        int | None, typer.Option(min=1, help="Probe samples per forward pass.")
    ] = None,
    trust_code: Annotated[
        bool,
        typer.Option(
            "--trust-code",
            help="Build the model whose factory the results file names even if you never "
            "trusted it (see `ndt trust`).",
        ),
    ] = False,
) -> None:
    """Compare every layer before and after a transition: metrics, neurons, PCA, clusters, CKA.

    Examples:

        ndt compare --step 1200

        ndt compare --results results.h5 --before 1000 --after 1400 --layers 'fc*' --report report/

    Without --step or --before/--after it takes the most significant jump of `ndt jumps`.
    See docs/commands/compare.md.
    """
    # torch and the analyses load here, not at import: `ndt compare --help` stays fast.
    from ndt.models.spec import model_spec
    from ndt.replay.compare import compare_run, write_json
    from ndt.visualization.compare_layout import compare_layout
    from ndt.visualization.compare_report import write_report
    from ndt_cli._compare_terminal import compare_terminal

    record = compare_run(
        results,
        step=step,
        window=window,
        before=before,
        after=after,
        layers=layers,
        ckpts=ckpts,
        model=model_spec(model, model_kwargs),
        probe=probe,
        device=device,
        batch_size=batch_size,
        dead_threshold=dead_threshold,
        top_k=top_k,
        n_components=components,
        n_clusters=clusters,
        seed=seed,
        max_rows=max_rows,
        save_activations=save_activations,
        trust_code=trust_code,
    )
    # Files first: a closed stdout (`| head`) must not cost the report.
    for label, written in (
        ("JSON", json_path and write_json(record, json_path)),
        ("report", report and write_report(record, report)),
        ("activations", record.activations),
    ):
        if written:
            err.print(f"Wrote {label}: {written}", soft_wrap=True)
    layout = compare_layout(record)
    for note in layout.notes:
        err.print(f"Note: {note}.", soft_wrap=True, markup=False)
    out.print(compare_terminal(layout), soft_wrap=True)
