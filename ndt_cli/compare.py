"""`ndt compare`: what changed inside each layer between two checkpoints of a tracked run."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from ndt.analysis.compare_settings import CompareSettings
from ndt_cli._options import SEED_MAX, real
from ndt_cli._output import err, fmt, out

if TYPE_CHECKING:  # pragma: no cover
    from ndt.analysis.layer_comparison import LayerComparison
    from ndt.replay.compare import CompareReport

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
    from ndt.visualization.compare_report import write_report

    result = compare_run(
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
        ("JSON", json_path and write_json(result, json_path)),
        ("report", report and write_report(result, report)),
        ("activations", result.activations_path),
    ):
        if written:
            err.print(f"Wrote {label}: {written}", soft_wrap=True)
    if result.steps.note:
        err.print(f"Note: {result.steps.note}.", soft_wrap=True)
    if result.labels_per_token:
        err.print(
            f"Note: rows of {', '.join(result.labels_per_token)} are tokens (--tokens "
            f"{result.tokens}), so each sample's label is repeated over its tokens in the "
            "linear probe and cluster purity; `ndt track --tokens last|first|mean|pos:K` "
            "gives one row per sample",
            soft_wrap=True,
            markup=False,
        )
    _render(result)


def _render(result: CompareReport) -> None:
    b, a = result.before.step, result.after.step
    out.print(f"Before: step {b}  {result.before.path}", soft_wrap=True)
    out.print(f"After:  step {a}  {result.after.path}", soft_wrap=True)
    out.print(f"Chosen by {result.steps.reason}; layers ranked by {result.change_score}.")
    ranking = Table(
        "rank",
        "layer",
        "1 - CKA",
        "max principal angle (deg)",
        "cluster ARI before↔after",
        "dead before → after",
    )
    for rank, c in enumerate(result.layers, 1):
        counts = c.neurons.counts()
        ranking.add_row(
            str(rank),
            c.layer,
            fmt(c.change_score),
            fmt(float(c.pca.principal_angles[-1]), 3),
            fmt(c.clusters.ari_before_vs_after),
            f"{counts['n_dead_before']} → {counts['n_dead_after']}",
        )
    out.print(ranking)
    for c in result.layers:
        out.print(_layer_table(c, b, a))


def _layer_table(c: LayerComparison, b: int, a: int) -> Table:
    table = Table(
        "quantity", f"step {b}", f"step {a}", title=f"{c.layer}  (1 - CKA {fmt(c.change_score)})"
    )
    for name in c.metrics_before:
        table.add_row(name, fmt(c.metrics_before[name]), fmt(c.metrics_after[name]))
    counts = c.neurons.counts()
    table.add_row("dead neurons", str(counts["n_dead_before"]), str(counts["n_dead_after"]))
    table.add_row(
        "became dead / alive", "", f"{counts['n_became_dead']} / {counts['n_became_alive']}"
    )
    pca = c.pca
    table.add_row(
        "explained var. PC1..3",
        _first(pca.explained_variance_ratio_before),
        _first(pca.explained_variance_ratio_after),
    )
    table.add_row(
        "subspace overlap / centroid dist.",
        "",
        f"{fmt(pca.subspace_overlap)} / {fmt(pca.centroid_distance)}",
    )
    _cluster_rows(table, c)
    if c.probe_before is not None and c.probe_after is not None:
        table.add_row("linear-probe accuracy", fmt(c.probe_before.mean), fmt(c.probe_after.mean))
    top = ", ".join(f"#{n.index} {n.delta_mean:+.3g}" for n in c.neurons.top_changes[:5])
    table.add_row("largest Δ mean", "", top)
    if c.subsample is not None:
        s = c.subsample
        table.add_row("subsampled rows", "", f"{s.n_rows_used} of {s.n_rows_total} (seed {s.seed})")
    return table


def _cluster_rows(table: Table, c: LayerComparison) -> None:
    k = c.clusters
    table.add_row("cluster purity (own-step KMeans)", fmt(k.before.purity), fmt(k.after.purity))
    table.add_row("cluster ARI vs labels", fmt(k.before.ari_vs_labels), fmt(k.after.ari_vs_labels))
    table.add_row("cluster ARI before↔after", "", fmt(k.ari_before_vs_after))
    table.add_row("phase occupancy (joint KMeans)", "", fmt(k.phase_occupancy))


def _first(values: object) -> str:
    return ", ".join(fmt(float(v), 3) for v in list(values)[:3])
