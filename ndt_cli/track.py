"""`ndt track`: replay checkpoints on the probe and write per-layer dimensionality curves."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ndt.core.metrics import DEFAULT_METRICS, DEFINITIONS
from ndt.models.precision import DTYPE_NAMES
from ndt.replay.allocator import return_large_blocks_to_os
from ndt_cli._options import THREADS_MAX, TrustCode, real
from ndt_cli._output import count, err, fmt, out, print_json

if TYPE_CHECKING:  # pragma: no cover
    from ndt.replay.track import CheckpointPlan, TrackReport

DType = Enum("DType", {name: name for name in DTYPE_NAMES}, type=str)
Definitions = Enum("Definitions", {name: name for name in DEFINITIONS}, type=str)  # type: ignore[misc]


def track(
    ckpt_dir: Annotated[
        Path, typer.Argument(help="Folder of *.safetensors checkpoints (searched recursively).")
    ],
    model: Annotated[
        str | None,
        typer.Option(
            help="Zoo name (mlp, cnn, transformer, vit), hf, pkg.module:factory or "
            "file.py:factory. Default: from ndt.toml, else hf when the folder holds a "
            "transformers config.json."
        ),
    ] = None,
    model_kwargs: Annotated[
        str | None, typer.Option(help="JSON keyword arguments for the model factory.")
    ] = None,
    probe: Annotated[
        Path | None,
        typer.Option(help="Probe batch (.safetensors, see `ndt probe`). Default: ndt.toml."),
    ] = None,
    out_path: Annotated[
        Path, typer.Option("--out", "-o", help="Results file to write or extend.")
    ] = Path("results.h5"),
    layers: Annotated[
        list[str] | None,
        typer.Option(
            "--layers", help="Glob over qualified module names, e.g. 'blocks.*'. Repeatable."
        ),
    ] = None,
    metric: Annotated[
        list[str] | None,
        typer.Option(
            "--metric",
            help=f"Metric to compute (repeatable), one of {', '.join(DEFAULT_METRICS)}. "
            "Default: all of them, or those the --out file records when extending it.",
        ),
    ] = None,
    center: Annotated[
        bool | None,
        typer.Option(
            "--center/--no-center",
            help="Centre activations over samples (default: yes for ndt's definitions, no "
            "for ndtracker's).",
        ),
    ] = None,
    definitions: Annotated[
        Definitions | None,
        typer.Option(
            help="Metric definitions: ndt's, or ndtracker's (uncentred, participation ratio "
            "on singular values) to reproduce numbers published with ndtracker. "
            "[default: ndt]",
            show_default=False,
        ),
    ] = None,
    dormant_tau: Annotated[
        float | None,
        typer.Option(
            help="Dormancy threshold tau for dormant_fraction (>= 0). [default: 0]",
            callback=real(0),
            show_default=False,
        ),
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(min=1, help="Probe samples per forward pass (default: all).")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    dtype: Annotated[
        DType | None,
        typer.Option(
            help="Precision of the forward passes, whatever the checkpoints' dtype. "
            "[default: float32]",
            show_default=False,
        ),
    ] = None,
    tokens: Annotated[
        str | None,
        typer.Option(
            help="Rows of (B, T, D) outputs: all (every unpadded position), last, first, "
            "mean (over unpadded positions) or pos:K (one row per sample). [default: all]",
            show_default=False,
        ),
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=THREADS_MAX,
            help="CPU threads for the forward passes and the Gram updates (default: torch's, "
            "usually one per core); with --scheduler, per task (default for local:N: the "
            "cores shared among the N workers).",
        ),
    ] = None,
    steps: Annotated[
        str | None,
        typer.Option(help="Only steps in START:STOP (inclusive; either side may be empty)."),
    ] = None,
    every: Annotated[int, typer.Option(min=1, help="Keep every K-th checkpoint.")] = 1,
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="Replay on a Dask cluster: local:N (N worker processes here), "
            "tcp://HOST:PORT or a scheduler FILE.json. Needs ndt-replay[distributed]."
        ),
    ] = None,
    shard: Annotated[
        str | None,
        typer.Option(
            help="I/N: only checkpoints whose position in step order is I mod N (one SLURM "
            "array task each; join the files with `ndt merge`)."
        ),
    ] = None,
    step_scale: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Steps between two saves: maps accelerate's checkpoint_<i> save indices to "
            "steps (i * K).",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            help="List the checkpoints found, their steps and where each step came from; "
            "compute nothing."
        ),
    ] = False,
    overwrite: Annotated[
        bool, typer.Option(help="Recompute every checkpoint, replacing the file.")
    ] = False,
    profile: Annotated[
        bool, typer.Option(help="Print where the time went: load, forward, metrics, write.")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar or summary table.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a machine-readable summary on stdout.")
    ] = False,
    wait: Annotated[
        float,
        typer.Option(
            min=0, help="Seconds to wait for another ndt process writing the results file."
        ),
    ] = 0.0,
    trust_code: TrustCode = False,
) -> None:
    """Replay checkpoints on a fixed probe and record each layer's dimensionality per step.

    Examples:

        ndt track fixtures/digits-mlp/ckpts

        ndt track runs/exp7/ckpts --model mypkg.models:build_mlp --probe probe.safetensors

    Running it again on the same folder computes only the new checkpoints.

    Options left out take the values the results file records (probe, layers, metrics, ...).

    See docs/commands/track.md.
    """
    # torch and the engine load here, not at import: `ndt track --help` stays fast.
    import torch

    from ndt.io.checkpoints import parse_step_range
    from ndt.models.spec import model_spec
    from ndt.models.trust import remember_model
    from ndt.replay.shards import parse_shard
    from ndt.replay.track import plan_checkpoints
    from ndt.replay.track import track as run_track

    spec = model_spec(model, model_kwargs)
    step_range = parse_step_range(steps) if steps else None
    shard_index = parse_shard(shard) if shard else None
    if dry_run:
        plan = plan_checkpoints(
            ckpt_dir,
            probe=probe,
            steps=step_range,
            every=every,
            step_scale=step_scale,
            shard=shard_index,
        )
        _render_plan(plan, ckpt_dir, as_json)
        _warn_notes(plan.notes)
        return
    if spec is not None:
        remember_model(spec)  # typed: the user's consent, which `ndt compare` may need later
    return_large_blocks_to_os()  # flat peak memory over many checkpoints (ndt/replay/allocator.py)
    if threads is not None:
        torch.set_num_threads(threads)
    show_progress = not quiet and not as_json and err.is_terminal
    with Progress(
        TextColumn("[bold]track[/]"), BarColumn(), MofNCompleteColumn(),
        TextColumn("step {task.fields[step]}"), TimeRemainingColumn(),
        console=err, disable=not show_progress, transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task("track", total=None, step="-")

        def advance(done: int, total: int, step: int) -> None:
            bar.update(task, completed=done, total=total, step=step)

        report = run_track(
            ckpt_dir, out=out_path, model=spec, probe=probe, layers=layers,
            metrics=metric or None, center=center, dormant_tau=dormant_tau,
            definitions=definitions.value if definitions else None,
            batch_size=batch_size, device=device, dtype=dtype.value if dtype else None,
            tokens=tokens,
            steps=step_range, every=every, step_scale=step_scale, shard=shard_index,
            overwrite=overwrite,
            command=" ".join(["ndt", *sys.argv[1:]]), progress=advance,
            trust_code=trust_code, wait=wait, scheduler=scheduler, threads=threads,
        )  # fmt: skip
    if as_json:
        print_json(_summary(report))
    elif not quiet:
        _render(report, profile)
    _warn(report)
    if report.failures:
        raise typer.Exit(1)


def _summary(report: TrackReport) -> dict:
    frame = report.results.to_frame()
    rows = []
    if len(frame):
        first, last = frame["step"].min(), frame["step"].max()
        for layer in report.results.layers:
            at = frame[frame["layer"] == layer].set_index("step")
            metrics = [c for c in frame.columns if c not in ("step", "layer")]
            rows.append(
                {
                    "layer": layer,
                    "first": {m: float(at.at[first, m]) for m in metrics},
                    "last": {m: float(at.at[last, m]) for m in metrics},
                }
            )
    return {
        "results": str(report.path),
        "n_checkpoints": len(report.results.steps),
        "computed": report.computed,
        "skipped": report.skipped,
        "failures": [{"file": f, "error": e} for f, e in report.failures],
        "non_finite": [{"step": s, "layer": layer} for s, layer in report.non_finite],
        "timings": report.timings,
        "layers": rows,
    }


def _render(report: TrackReport, profile: bool) -> None:
    results = report.results
    summary = _summary(report)
    out.print(
        f"{report.path}: {count(len(results.steps), 'checkpoint')} x "
        f"{count(len(results.layers), 'layer')} "
        f"({len(report.computed)} computed, {len(report.skipped)} already there)",
        soft_wrap=True,
    )
    if summary["layers"]:
        first, last = int(results.steps.min()), int(results.steps.max())
        table = Table(show_edge=False)
        for column in ("layer", "metric", f"step {first}", f"step {last}", "change"):
            table.add_column(column, justify="left" if column in ("layer", "metric") else "right")
        for row in summary["layers"]:
            for index, metric in enumerate(results.metrics):
                before, after = row["first"][metric], row["last"][metric]
                table.add_row(
                    row["layer"] if index == 0 else "", metric, fmt(before), fmt(after),
                    fmt(after - before), end_section=index == len(results.metrics) - 1,
                )  # fmt: skip
        out.print(table)
    if profile:
        n = max(1, len(report.computed))
        parts = ", ".join(
            f"{key} {seconds:.2f}s ({1000 * seconds / n:.1f} ms/ckpt)"
            for key, seconds in report.timings.items()
        )
        out.print(f"profile over {n} checkpoints: {parts}", soft_wrap=True)
        out.print(
            "(metrics = Gram accumulation in the forward hooks + eigendecompositions, which "
            "run on a worker thread while the next checkpoint goes forward)",
            soft_wrap=True,
        )


def _render_plan(plan: CheckpointPlan, ckpt_dir: Path, as_json: bool) -> None:
    rows = [
        {
            "step": c.step,
            "file": c.path.relative_to(ckpt_dir).as_posix(),
            "files": len(c.files),
            "from": c.step_source,
        }
        for c in plan.checkpoints
    ]
    if as_json:
        print_json({"checkpoints": rows, "notes": plan.notes})
        return
    out.print(f"{ckpt_dir}: {len(rows)} checkpoints (dry run: nothing computed)", soft_wrap=True)
    table = Table(show_edge=False)
    for column in ("step", "file", "step from"):
        table.add_column(column, justify="right" if column == "step" else "left")
    for row in rows:
        shards = f" (+{row['files'] - 1} shards)" if row["files"] > 1 else ""
        table.add_row(str(row["step"]), row["file"] + shards, row["from"])
    out.print(table)


def _warn_notes(notes: list[str]) -> None:
    for note in notes:
        err.print(f"Warning: {note}", soft_wrap=True, markup=False)


def _warn(report: TrackReport) -> None:
    for notice in report.notices:
        err.print(f"Note: {notice}", soft_wrap=True, markup=False)
    for step, file in report.changed:
        err.print(
            f"Note: {file} changed since it was tracked; step {step} was computed again.",
            soft_wrap=True,
            markup=False,
        )
    _warn_notes(report.notes)
    for file, error in report.failures:
        err.print(
            f"Error: skipped {file}: {error} (the next run retries it)",
            soft_wrap=True,
            markup=False,
        )
    if report.non_finite:
        steps = sorted({s for s, _ in report.non_finite})
        shown = ", ".join(str(s) for s in steps[:5]) + (" ..." if len(steps) > 5 else "")
        err.print(
            f"Warning: non-finite activations (NaN metrics) in {len(report.non_finite)} "
            f"layer-steps, at steps {shown}", soft_wrap=True, markup=False,
        )  # fmt: skip
