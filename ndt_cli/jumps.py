"""`ndt jumps` and `ndt validate-detector`: find transitions and say how far to trust them."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.table import Table

from ndt.jumps.jump_defaults import (
    ALL_METRICS,
    COSTS,
    DEFAULT_METHOD,
    DEFAULT_TOLERANCE,
    HALF_WINDOW,
    LOCAL_METHOD,
    METHODS,
)
from ndt_cli._options import real
from ndt_cli._output import err, fmt, out, print_json

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from ndt.jumps.table import JumpReport

Method = Enum("Method", {name: name for name in METHODS}, type=str)  # type: ignore[misc]
_JSON_KEYS = ("layer", "metric", "step", "prev_step", "value_before", "value_after", "delta",
              "score", "p_value", "q_value", "methods")  # fmt: skip
_DEFAULT_METHOD = Method(DEFAULT_METHOD)
_Opt = typer.Option
_FDR = real(0, 1, low_open=True, high_open=True)
_POSITIVE = real(0, low_open=True)


def jumps(
    results_path: Annotated[
        Path, typer.Argument(help="Results file written by `ndt track`.", dir_okay=False)
    ],
    metric: Annotated[
        list[str] | None, _Opt(help="Metric to test, repeatable. (default: every metric)")
    ] = None,
    layer: Annotated[list[str] | None, _Opt(help="Layer name or glob, repeatable.")] = None,
    method: Annotated[
        Method, _Opt(help="'local' lists every interval; a detector lists those it flags.")
    ] = _DEFAULT_METHOD,
    fdr: Annotated[
        float, _Opt(help="Level of BH over curve jumps and Holm over intervals.", callback=_FDR)
    ] = 0.05,
    tolerance: Annotated[
        int, _Opt(help="Checkpoints within which jumps are one transition.", min=0, max=1000)
    ] = DEFAULT_TOLERANCE,
    half_window: Annotated[
        int, _Opt(help="Reference intervals on each side of a candidate.", min=2, max=1000)
    ] = HALF_WINDOW,
    window_size: Annotated[
        int | None, _Opt(help="zscore: trailing window. (default 10)", min=1)
    ] = None,
    z_threshold: Annotated[
        float | None, _Opt(help="zscore: |z| threshold. (default 3)", callback=_POSITIVE)
    ] = None,
    min_samples: Annotated[
        int | None, _Opt(help="zscore: points before the first test. (default 5)", min=1)
    ] = None,
    gradient_threshold: Annotated[
        float | None,
        _Opt(help="gradient: multiple of the gradient SD. (default 2.5)", callback=_POSITIVE),
    ] = None,
    cost: Annotated[
        str | None, _Opt(help=f"pelt: cost, one of {', '.join(COSTS)}. (default l2)")
    ] = None,
    penalty: Annotated[
        float | None, _Opt(help="pelt: penalty. (default noise-scaled)", callback=real(0))
    ] = None,
    as_json: Annotated[
        bool, _Opt("--json", help="Print transitions and curve jumps as JSON.")
    ] = False,
    csv: Annotated[
        Path | None, _Opt("--csv", help="Also write the shown curve jumps to this CSV file.")
    ] = None,
    curves: Annotated[bool, _Opt("--curves", help="Also show the jump of each curve.")] = False,
    show_all: Annotated[
        bool, _Opt("--all", help="Show curve jumps that are not significant too.")
    ] = False,
    no_write: Annotated[bool, _Opt("--no-write", help="Do not store /jumps in the file.")] = False,
    wait: Annotated[
        float, _Opt(min=0, help="Seconds to wait for another ndt process writing the file.")
    ] = 0.0,
) -> None:
    """Find the transitions of a run: where its curves changed, and how far to trust it.

    Every interval between checkpoints of every layer and metric is tested against the
    curve's own variability near it; significant intervals close together form one
    transition, printed one per line, strongest first.

    Examples:

        ndt jumps results.h5

        ndt jumps results.h5 --curves --metric stable_rank --layer 'relu*'

        ndt jumps results.h5 --json > jumps.json

    See docs/commands/jumps.md.
    """
    # numpy, scipy and pandas load here, not at import: `ndt jumps --help` stays fast.
    from ndt.io.export import write_csv
    from ndt.io.store import read_results, write_jumps
    from ndt.jumps.detectors import make_detector
    from ndt.jumps.table import detect_jumps_in_results

    detector = (
        method.value if method.value == LOCAL_METHOD else make_detector(
            method.value, window_size=window_size, z_threshold=z_threshold,
            min_samples=min_samples, gradient_threshold=gradient_threshold, cost=cost,
            penalty=penalty, tolerance=tolerance,
        )
    )  # fmt: skip
    results = read_results(results_path)
    report = detect_jumps_in_results(
        results, metric or ALL_METRICS, layer, detector, fdr, tolerance=tolerance,
        half_window=half_window,
    )  # fmt: skip
    for name, kind, count in report.nan_points:
        err.print(f"Note: skipped {count} NaN points in {name} {kind}.", soft_wrap=True)
    for name, kind, count in report.short_curves:
        err.print(f"Warning: {name} {kind} has {count} finite points, too few to test; skipped.")
    shown = report.table if show_all else report.table[report.table["significant"]]
    if csv is not None:  # before the results file, so that a bad --csv leaves that untouched
        write_csv(shown[list(_JSON_KEYS)], csv)
    if not no_write:
        write_jumps(results_path, report.table, report.settings(), report.transitions, wait=wait)
    if as_json:
        print_json(_json_document(report, shown))
        return
    if len(report.transitions):
        out.print(_transitions_table(report.transitions))
    if curves or show_all:
        out.print(_jumps_table(shown, report.method, wide=out.width >= 120))
    out.print(_summary_line(report), soft_wrap=True)


def _json_document(report: JumpReport, shown: pd.DataFrame) -> dict[str, object]:
    largest = report.largest_change
    return {
        "transitions": report.transitions.to_dict(orient="records"),
        "jumps": shown[list(_JSON_KEYS)].to_dict(orient="records"),
        "largest_change": None if largest is None else dict(
            zip(("prev_step", "step", "p_value"), largest, strict=True)
        ),
        "settings": report.settings(),
        "run_time_s": report.run_time_s,
    }  # fmt: skip


def _summary_line(report: JumpReport) -> str:
    head = f"{report.n_transitions} transition{'s' if report.n_transitions != 1 else ''}"
    if not report.n_transitions and report.largest_change is not None:
        prev_step, step, p_value = report.largest_change
        head = (
            f"No significant transition; the largest change is {prev_step}→{step} "
            f"(combined p = {p_value:.2g})"
        )
    return (
        f"{head}. {report.n_tests} tests on {report.n_curves} curves x {report.n_intervals} "
        f"intervals; {report.n_significant} significant curve jumps at level {report.fdr:g} "
        f"(about {report.expected_false_discoveries:.2f} expected false); "
        f"{report.run_time_s:.2f} s."
    )


def _transitions_table(transitions: pd.DataFrame) -> Table:
    """One line per transition: where, how sure, its significant curve jumps (a curve that
    moved in two of its intervals counts twice), the strongest."""
    table = Table(title="transitions", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for column in ("#", "steps", "peak", "p", "p adj", "jumps", "strongest"):
        text = column in ("steps", "peak", "strongest")
        table.add_column(
            column, justify="left" if text else "right", no_wrap=column != "strongest",
            overflow="fold",
        )  # fmt: skip
    for row in transitions.itertuples():
        table.add_row(
            str(row.rank), f"{row.prev_step}→{row.step}", f"{row.peak_prev_step}→{row.peak_step}",
            f"{row.p_value:.2g}", f"{row.p_adjusted:.2g}", str(row.n_curves),
            row.strongest.split("; ")[0],
        )  # fmt: skip
    return table


def _jumps_table(shown: pd.DataFrame, method: str, wide: bool) -> Table:
    """The jumps, most significant first; Δ, relative Δ and score only on wide terminals."""
    columns = ["layer", "metric", "step", "before→after"]
    columns += ["Δ", "rel Δ", "score"] if wide else []
    columns += ["p", "q", "methods"]
    table = Table(
        title=f"jumps ({method})", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True
    )
    longest_layer = max((len(name) for name in shown["layer"]), default=5)
    for column in columns:
        text = column in ("layer", "metric", "methods")
        # Metric names stay whole; long layer names fold rather than push q off screen.
        table.add_column(
            column, justify="left" if text else "right", no_wrap=column != "layer",
            overflow="fold", min_width=min(longest_layer, 16) if column == "layer" else None,
        )  # fmt: skip
    for row in shown.itertuples():
        rel = row.delta / abs(row.value_before) if row.value_before else float("nan")
        cells = [row.layer, row.metric, f"{row.prev_step}→{row.step}",
                 f"{fmt(row.value_before)}→{fmt(row.value_after)}"]  # fmt: skip
        if wide:
            cells += [f"{row.delta:+.3g}", f"{rel:+.1%}", fmt(row.score, 3)]
        cells += [f"{row.p_value:.2g}", f"{row.q_value:.2g}", row.methods]
        # With --all, jumps that do not survive the FDR are dimmed.
        table.add_row(*cells, style=None if row.significant else "dim")
    return table


def validate_detector_command(
    method: Annotated[Method, _Opt(help="How candidates are listed.")] = _DEFAULT_METHOD,
    fdr: Annotated[
        float, _Opt(help="Level of the test, as ndt jumps --fdr.", callback=_FDR)
    ] = 0.05,
    tolerance: Annotated[int, _Opt(help="Checkpoints a hit may miss by.", min=0, max=100)] = 1,
    n_runs: Annotated[int, _Opt(help="Synthetic runs per scenario.", min=1, max=100_000)] = 200,
    seed: Annotated[int, _Opt(help="Seed of the scenarios.", min=0, max=2**32 - 1)] = 0,
    as_json: Annotated[bool, _Opt("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Measure ndt jumps on synthetic runs saved like real ones, whose answer is known.

    Exits 1 when a scenario misses its pass rule: recall >= 0.9 at >= 6 local SDs, and
    >= 95 % of null runs with no false transition after the early collapse.

    Examples:

        ndt validate-detector

        ndt validate-detector --n-runs 500 --seed 1 --json

    See docs/commands/validate-detector.md.
    """
    from ndt.jumps.validation import validate_detector

    err.print(f"Validating ndt jumps ({method.value}) on {n_runs} runs per scenario…")
    report = validate_detector(method.value, fdr=fdr, tolerance=tolerance, n_runs=n_runs, seed=seed)
    verdict = "PASS" if report.passed else "FAIL"
    if as_json:
        print_json({"method": report.method, "verdict": verdict, "fdr": fdr,
                    "tolerance": tolerance, "seed": seed,
                    "scenarios": [vars(s) for s in report.scenarios]})  # fmt: skip
    else:
        table = Table(title=f"validate-detector ({report.method}, level {fdr:g}, ±{tolerance})")
        for column in ("scenario", "measure", "value", "false/run", "pass rule", "verdict"):
            table.add_column(
                column, justify="left" if column in ("scenario", "measure") else "right"
            )
        for s in report.scenarios:
            rule = "-" if s.threshold is None else f">= {s.threshold:.2g}"
            table.add_row(s.name, s.measure, f"{s.value:.3f}", f"{s.false_per_run:.3f}", rule,
                          "PASS" if s.passed else ("FAIL" if s.threshold else "-"))  # fmt: skip
        out.print(table)
        first = report.scenarios[0]
        out.print(
            f"{first.n_runs} runs per scenario, {first.n_points} checkpoints each (0, 1, 2, "
            "4, ..., 128, then every 50); sizes in SDs of the noise's change between "
            "neighbouring checkpoints.", soft_wrap=True,
        )  # fmt: skip
        for s in report.scenarios:
            out.print(f"{s.name}: {s.description}", soft_wrap=True)
        out.print(f"{verdict}: {report.method}")
    if not report.passed:
        raise typer.Exit(1)
