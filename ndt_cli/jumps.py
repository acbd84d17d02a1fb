"""`ndt jumps` and `ndt validate-detector`: find transitions and say how far to trust them."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich import box
from rich.table import Table

from ndt.export import write_csv
from ndt.jumps import DEFAULT_METHOD, METHODS, detect_jumps_in_results, make_detector
from ndt.jumps.pelt import COSTS
from ndt.jumps.validation import curve_from_results, validate_detector
from ndt.store import read_results, write_jumps
from ndt_cli._options import N_SURROGATES_MAX, N_SURROGATES_MIN, SEED_MAX, real
from ndt_cli._output import err, fmt, out, print_json

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
        list[str] | None, _Opt(help="Metric to test, repeatable, or 'all'. (default stable_rank)")
    ] = None,
    layer: Annotated[list[str] | None, _Opt(help="Layer name or glob, repeatable.")] = None,
    method: Annotated[
        Method, _Opt(help="Detector, or 'all' for their agreement.")
    ] = _DEFAULT_METHOD,
    fdr: Annotated[
        float, _Opt(help="False discovery rate for Benjamini-Hochberg.", callback=_FDR)
    ] = 0.05,
    seed: Annotated[int, _Opt(help="Seed of the surrogate null.", min=0, max=SEED_MAX)] = 0,
    n_surrogates: Annotated[
        int | None,
        _Opt(
            help="Surrogates per curve. (default max(999, 2 tests / fdr))",
            min=N_SURROGATES_MIN,
            max=N_SURROGATES_MAX,
        ),
    ] = None,
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
    tolerance: Annotated[
        int | None, _Opt(help="all: checkpoints that still agree. (default 1)", min=0)
    ] = None,
    as_json: Annotated[bool, _Opt("--json", help="Print the jumps as JSON.")] = False,
    csv: Annotated[
        Path | None, _Opt("--csv", help="Also write the jumps to this CSV file.")
    ] = None,
    show_all: Annotated[bool, _Opt("--all", help="Show non-significant jumps too.")] = False,
    no_write: Annotated[bool, _Opt("--no-write", help="Do not store /jumps in the file.")] = False,
) -> None:
    """Find jumps in the metric curves, each with a surrogate p-value and a BH q-value.

    Examples:

        ndt jumps results.h5

        ndt jumps results.h5 --metric participation_ratio --method all --layer 'relu*' --json

    See docs/commands/jumps.md.
    """
    detector = make_detector(
        method.value, window_size=window_size, z_threshold=z_threshold, min_samples=min_samples,
        gradient_threshold=gradient_threshold, cost=cost, penalty=penalty, tolerance=tolerance,
    )  # fmt: skip
    results = read_results(results_path)
    report = detect_jumps_in_results(
        results, metric or ["stable_rank"], layer, detector, fdr, seed=seed,
        n_surrogates=n_surrogates,
    )  # fmt: skip
    for name, kind, count in report.nan_points:
        err.print(f"Note: skipped {count} NaN points in {name} {kind}.", soft_wrap=True)
    for name, kind, count in report.short_curves:
        err.print(f"Warning: {name} {kind} has {count} finite points, too few to test; skipped.")
    shown = report.table if show_all else report.table[report.table["significant"]]
    if csv is not None:  # before the results file, so that a bad --csv leaves that untouched
        write_csv(shown[list(_JSON_KEYS)], csv)
    if not no_write:
        write_jumps(results_path, report.table, report.settings())
    if as_json:
        print_json(shown[list(_JSON_KEYS)].to_dict(orient="records"))
        return
    out.print(_jumps_table(shown, report.method, wide=out.width >= 120))
    out.print(
        f"{report.n_tests} tests on {report.n_curves} curves; {report.n_significant} significant "
        f"at FDR {report.fdr:g}, of which about {report.expected_false_discoveries:.2f} "
        f"expected false ({report.n_surrogates} surrogates, seed {report.seed}).",
        soft_wrap=True,
    )


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
    method: Annotated[Method, _Opt(help="Detector to validate.")] = _DEFAULT_METHOD,
    from_path: Annotated[
        Path | None, _Opt("--from", help="Results file giving a real curve for the null.")
    ] = None,
    layer: Annotated[str | None, _Opt(help="With --from: the layer (name or glob).")] = None,
    metric: Annotated[str, _Opt(help="With --from: the metric.")] = "stable_rank",
    fdr: Annotated[
        float, _Opt(help="False discovery rate of the significance test.", callback=_FDR)
    ] = 0.05,
    tolerance: Annotated[int, _Opt(help="Checkpoints a hit may miss by.", min=0)] = 1,
    n_curves: Annotated[int, _Opt(help="Curves per scenario.", min=1, max=100_000)] = 100,
    seed: Annotated[int, _Opt(help="Seed of the scenarios.", min=0, max=SEED_MAX)] = 0,
    as_json: Annotated[bool, _Opt("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Measure a detector's recall and false positives on curves with known answers.

    Exits 1 when a scenario fails its threshold.

    Examples:

        ndt validate-detector --method zscore

        ndt validate-detector --from results.h5 --layer relu2 --metric stable_rank --json

    See docs/commands/validate-detector.md.
    """
    if (from_path is None) != (layer is None):
        raise typer.BadParameter("--from and --layer go together")
    curve = curve_from_results(read_results(from_path), layer, metric) if from_path else None
    err.print(f"Validating {method.value} on {n_curves} curves per scenario…")
    report = validate_detector(
        method.value, fdr=fdr, tolerance=tolerance, n_curves=n_curves, seed=seed, real_curve=curve
    )
    verdict = "PASS" if report.passed else "FAIL"
    if as_json:
        print_json({"method": report.method, "verdict": verdict, "fdr": fdr,
                    "tolerance": tolerance, "seed": seed, "detector": report.detector_params,
                    "scenarios": [vars(s) for s in report.scenarios]})  # fmt: skip
    else:
        table = Table(title=f"validate-detector ({report.method}, FDR {fdr:g}, ±{tolerance})")
        for column in ("scenario", "measure", "significant", "raw", "threshold", "verdict"):
            table.add_column(
                column, justify="left" if column in ("scenario", "measure") else "right"
            )
        for s in report.scenarios:
            bound = (">= " if s.measure == "recall" else "<= ") + f"{s.threshold:.3g}"
            table.add_row(s.name, s.measure, f"{s.value:.3g}", f"{s.raw_value:.3g}", bound,
                          "PASS" if s.passed else "FAIL")  # fmt: skip
        out.print(table)
        for s in report.scenarios:
            out.print(f"{s.name}: {s.n_curves} curves x {s.n_points} points, {s.description}")
        out.print(f"{verdict}: {report.method}")
    if not report.passed:
        raise typer.Exit(1)
