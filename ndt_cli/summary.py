"""`ndt summary`: one row per results file with its significant jumps and their steps."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from ndt_cli._output import out, print_json

if TYPE_CHECKING:  # pragma: no cover
    from ndt.jumps.summary import RunSummary

NOT_ANALYSED = "not analysed — run ndt jumps"


def summary(
    paths: Annotated[list[Path], typer.Argument(help="Results files, or folders of *.h5 files.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON list, one object per run, on stdout.")
    ] = False,
) -> None:
    """Summarise many runs: how many significant jumps each has, and at which steps.

    The jumps are those `ndt jumps` wrote into each file; a file it has not analysed is
    listed as such.

    Examples:

        ndt summary runs/*/results.h5

        ndt summary results/ --json

    See docs/commands/summary.md.
    """
    # pandas and scipy load here, not at import: `ndt summary --help` stays fast.
    from ndt.jumps.summary import summarize_runs

    runs = summarize_runs(paths)
    if as_json:
        print_json([_as_dict(run) for run in runs])
        return
    table = Table(title="Runs")
    for column in ("run", "steps", "layers", "jumps", "at steps", "where"):
        numeric = column in ("steps", "layers", "jumps")
        table.add_column(column, justify="right" if numeric else "left")
    for run in runs:
        steps = f"{run.n_steps} ({run.first_step}–{run.last_step})" if run.n_steps else "0"
        if not run.analysed:
            table.add_row(str(run.path), steps, str(run.n_layers), "–", NOT_ANALYSED, "")
            continue
        where = _where(run)
        table.add_row(
            str(run.path), steps, str(run.n_layers), str(run.n_jumps),
            ", ".join(map(str, run.jump_steps)) or "none", where,
        )  # fmt: skip
    out.print(table)


def _where(run: RunSummary) -> str:
    """``layer@step`` per jump, with the metric named when the run tested several."""
    several = len({jump.metric for jump in run.jumps}) > 1
    return ", ".join(f"{j.layer}{f' {j.metric}' if several else ''}@{j.step}" for j in run.jumps)


def _as_dict(run: RunSummary) -> dict[str, object]:
    return {
        "path": str(run.path),
        "name": run.name,
        "n_steps": run.n_steps,
        "n_layers": run.n_layers,
        "first_step": run.first_step,
        "last_step": run.last_step,
        "analysed": run.analysed,
        "n_jumps": run.n_jumps,
        "jump_steps": run.jump_steps,
        "jumps": [asdict(jump) for jump in run.jumps],
        "note": None if run.analysed else NOT_ANALYSED,
    }
