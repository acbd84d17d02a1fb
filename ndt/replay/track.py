"""`ndt track`'s loop: replay every checkpoint of a run and keep the results file current.

Each checkpoint's rows are committed to the file as soon as they are computed (appended in
place, `ndt.replay.run_table`), so an interrupted run loses at most the checkpoint in flight, and a
later run computes only the steps not in the file yet.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

import torch
from threadpoolctl import threadpool_limits

from ndt.architectures import select_layers
from ndt.core.estimators import DEFAULT_METRICS, Definitions, check_definitions, validate_metrics
from ndt.core.metrics import DEFINITIONS
from ndt.core.rows import parse_tokens
from ndt.errors import CheckpointError, NdtError, ResultsFormatError
from ndt.io.checkpoints import Checkpoint, checkpoint_sha256, read_state_dict
from ndt.io.manifest import ModelSpec, read_manifest
from ndt.io.store import Provenance, Results, read_provenance
from ndt.models.loading import apply_weights
from ndt.models.precision import DTYPE_NAMES
from ndt.replay.distributed import Outcome, replay_run
from ndt.replay.engine import Folder, RunSetup, fold_probe, prepare_run
from ndt.replay.plan import CheckpointPlan, plan_checkpoints
from ndt.replay.run_table import RunTable
from ndt.replay.solve import solve_metrics

# The planning and the last stage have modules of their own; their names stay importable here.
__all__ = [
    "CheckpointPlan",
    "ProgressCallback",
    "TrackReport",
    "plan_checkpoints",
    "solve_metrics",
    "track",
]


@dataclass
class TrackReport:
    """What one `track` call did.

    Attributes:
        path: The results file.
        results: Its contents after the run.
        computed: Steps computed in this call.
        skipped: Steps already in the file, not recomputed.
        failures: (checkpoint file, reason) for checkpoints that could not be read.
        non_finite: (step, layer) pairs whose activations were not finite (NaN metrics).
        changed: (step, checkpoint file) of checkpoints that changed on disk since they were
            tracked (size, mtime and, when recorded, sha256), recomputed in this call.
        timings: Seconds spent in load, forward, metrics and write, summed over checkpoints
            ("metrics" includes decompositions that overlapped the next forward pass), and
            the run's "wall" time.
        notes: Files skipped while discovering checkpoints, and warnings about their steps.
        notices: What the run chose on its own, for the user to know (not a problem): the
            metrics it took from the results file when none were asked.
    """

    path: Path
    results: Results
    computed: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    non_finite: list[tuple[int, str]] = field(default_factory=list)
    changed: list[tuple[int, str]] = field(default_factory=list)
    timings: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(("load", "forward", "metrics", "write", "wall"), 0.0)
    )
    notes: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


ProgressCallback = Callable[[int, int, int], None]
"""Called as ``progress(done, total, step)`` after each checkpoint."""


def track(
    ckpt_dir: str | Path,
    *,
    out: str | Path = "results.h5",
    model: ModelSpec | None = None,
    probe: str | Path | None = None,
    layers: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    center: bool | None = None,
    dormant_tau: float | None = None,
    definitions: Definitions | None = None,
    batch_size: int | None = None,
    device: str = "auto",
    dtype: str | None = None,
    tokens: str | None = None,
    steps: tuple[int | None, int | None] | None = None,
    every: int = 1,
    shard: tuple[int, int] | None = None,
    step_scale: int | None = None,
    overwrite: bool = False,
    command: str = "",
    progress: ProgressCallback | None = None,
    trust_code: bool = False,
    wait: float = 0.0,
    scheduler: str | None = None,
    threads: int | None = None,
) -> TrackReport:
    """Replay every checkpoint in `ckpt_dir` on the probe and write the curves to `out`.

    Checkpoints already in `out` are skipped unless `overwrite` or they changed on disk
    since (then they are recomputed and listed in `TrackReport.changed`); each checkpoint's
    rows are committed to the file as soon as they are computed, so an interrupted run loses
    at most the one in flight. Each write holds the file's lock (`ndt.io.results_lock`) and
    keeps what other writers added meanwhile (their rows, a new ``/jumps``), so concurrent
    runs on one file lose nothing. The forward passes run in `dtype` (float32 by default,
    whatever the checkpoints' dtype); `tokens` chooses the rows of sequence outputs (see
    `ndt.core.rows`). A checkpoint that cannot be read is reported in
    `TrackReport.failures` and retried by the next run; one whose tensors do not fit the
    model stops the run.

    Args:
        metrics: Names from the registry (`ndt.core.metrics`). None: the metrics `out`
            records when the run extends it (a file written before a metric was added stays
            valid: its curves go on without the new metric, and `TrackReport.notices` says
            so), else every metric (`DEFAULT_METRICS`). Metrics other than those recorded
            are refused, like any option that differs.
        layers: ``--layers`` globs or presets. None: the layers `out` records when the run
            extends it and the folder's ndt.toml names none (a notice when they differ from
            the default), else the ndt.toml's, else the architecture's default
            (`ndt.architectures.select_layers`; a head it leaves out is a notice).
        probe: The probe file. None: the ndt.toml's, else the one `out` records when the
            run extends it and that file is still there.
        step_scale: Steps per accelerate save index (``checkpoint_<i>``). None: the scale
            `out` records when the run extends it, else none; recorded in the provenance, and
            another scale than the recorded one is refused like any option that differs.
        shard: ``(I, N)``: only the checkpoints whose position in step order (after `steps`
            and `every`) is I modulo N (`ndt.replay.shards`); `ndt merge` joins the shards' files.
        trust_code: Consent to run the model factory that ``ckpt_dir/ndt.toml`` names.
        wait: Seconds to wait for another writer of `out` before giving up.
        scheduler: Replay on a Dask cluster (`ndt.replay.distributed`): ``local:N``,
            ``tcp://HOST:PORT`` or a scheduler file; this process writes `out`.
        threads: torch threads of each task on the cluster (default: for ``local:N`` the
            cores shared among the N workers; on another cluster the workers' own, one
            under a Dask nanny, which sets ``OMP_NUM_THREADS=1``). Without `scheduler`,
            unused: the caller sets ``torch.set_num_threads``.

    `definitions` picks the metric definitions (docs/metrics.md): "ndt" (centred over
    samples) or "ndtracker" (uncentred, participation ratio on the singular values, as the
    ndtracker package); `center` overrides the centring (None: the definitions' choice).
    Both are recorded in the provenance.

    Every option left as None takes, when the run extends `out`, the value `out` records
    (its provenance: definitions, center, dormant_tau, dtype, tokens, step_scale, metrics,
    layers, probe), so that extending a file needs no option again; on a new file (or with
    `overwrite`) the defaults: ndt's definitions, dormant_tau 0, float32, every token a
    row. An option given with another value than the recorded one is refused.

    Raises:
        NdtError: for a bad folder, model, probe or layer selection, a checkpoint that does
            not fit the model, or options that differ from those recorded in `out`.
        ResultsLockedError: if another process holds `out`'s lock for longer than `wait`.
    """
    notices: list[str] = []
    recorded = _recorded_choices(Path(out), ckpt_dir, overwrite)
    if metrics is None:
        metrics = _default_metrics(recorded.provenance, Path(out), notices)
    metrics = _checked_metrics(metrics)
    made_with = recorded.provenance or Provenance()  # a new file: the defaults
    definitions = definitions or made_with.definitions
    check_definitions(definitions)
    if center is None:
        same = recorded.provenance is not None and definitions == made_with.definitions
        center = made_with.center if same else definitions == "ndt"
    dormant_tau = made_with.dormant_tau if dormant_tau is None else dormant_tau
    dtype = dtype or made_with.dtype
    tokens = parse_tokens(tokens or made_with.tokens).describe()
    step_scale = step_scale or (made_with.step_scale if made_with.step_scale != 1 else None)
    recorded_layers = None if layers else recorded.layers
    setup = prepare_run(
        ckpt_dir,
        model=model,
        probe=probe or recorded.probe,
        layers=layers or recorded_layers,
        device=device,
        trust_code=trust_code,
        dtype=dtype,
    )
    notices.extend(setup.notices)
    if recorded_layers and list(recorded_layers) != select_layers(setup.model):
        notices.append(
            f"{out} records the layers {', '.join(recorded_layers)}; tracking those, not "
            "this version's default (pass --overwrite for the default, or --out another file)"
        )
    plan = plan_checkpoints(
        ckpt_dir,
        probe=setup.probe.path,
        steps=steps,
        every=every,
        step_scale=step_scale,
        shard=shard,
    )
    checkpoints = plan.checkpoints
    provenance = _provenance(ckpt_dir, setup, metrics, center, dormant_tau, command, tokens)
    provenance = replace(provenance, definitions=definitions, step_scale=step_scale or 1)
    out = Path(out)
    table = RunTable.start(out, provenance, overwrite, wait)
    report = TrackReport(path=out, results=table.results(), notes=plan.notes, notices=notices)
    report.changed = table.forget_changed(checkpoints, Path(ckpt_dir))
    todo = [c for c in checkpoints if c.step not in table.rows]
    report.skipped = [c.step for c in checkpoints if c.step in table.rows]
    loop = _Loop(table, report, out, progress, len(todo))
    if scheduler is not None:
        for checkpoint, outcome in replay_run(
            scheduler, setup, todo, ckpt_dir=ckpt_dir, threads=threads, metrics=metrics,
            center=center, dormant_tau=dormant_tau, batch_size=batch_size, device=device,
            dtype=dtype, tokens=tokens, definitions=definitions,
        ):  # fmt: skip
            loop.commit(checkpoint, _relative_name(checkpoint, ckpt_dir), outcome)
        return _finished(table, report, loop)
    with (
        # numpy's BLAS (the Gram updates) gets the threads torch was given, no more.
        threadpool_limits(torch.get_num_threads(), user_api="blas"),
        ThreadPoolExecutor(max_workers=1) as reader,
        Folder() as folder,
        ThreadPoolExecutor(max_workers=1) as solver,
    ):
        # Three stages overlap the forward pass: the next checkpoint is read, each layer's
        # output is folded into its Gram matrix while the model computes the next layer,
        # and the previous checkpoint's Gram matrices are decomposed.
        reading = reader.submit(_read, todo[0], setup.device) if todo else None
        try:
            for index, checkpoint in enumerate(todo):
                started = time.perf_counter()
                name = _relative_name(checkpoint, ckpt_dir)
                try:
                    state, digest = reading.result()
                except CheckpointError as exc:
                    state = None
                    report.failures.append((name, str(exc)))
                # Dropping the finished future lets `del state` below free the weights.
                reading = (
                    reader.submit(_read, todo[index + 1], setup.device)
                    if index + 1 < len(todo)
                    else None
                )
                if state is None:
                    loop.settle()
                    loop.record(checkpoint)
                    continue
                apply_weights(setup.model, state, name)
                del state
                report.timings["load"] += time.perf_counter() - started
                started = time.perf_counter()
                spent: dict[str, float] = {}
                folded = fold_probe(
                    setup.model, setup.probe, setup.layers, center=center,
                    batch_size=batch_size, device=setup.device, timings=spent, folder=folder,
                    tokens=tokens,
                )  # fmt: skip
                report.timings["forward"] += time.perf_counter() - started - spent["gram"]
                report.timings["metrics"] += spent["gram"]
                loop.settle()
                # The last layers may still be folding: the solver waits for them, so the
                # next checkpoint's forward pass starts now.
                solving = solver.submit(solve_metrics, folded, metrics, dormant_tau, definitions)
                loop.pending = (checkpoint, name, digest, solving)
        finally:
            # Keep the checkpoint whose decomposition is in flight, even when stopping early.
            loop.settle(quietly=True)
    return _finished(table, report, loop)


def _finished(table: RunTable, report: TrackReport, loop: _Loop) -> TrackReport:
    table.finish()
    report.results = table.results()
    report.computed.sort()
    report.timings["wall"] = time.perf_counter() - loop.started
    return report


def _read(checkpoint: Checkpoint, device: torch.device) -> tuple[dict, str]:
    """A checkpoint's tensors and, when it is small enough, its sha256 (read from the page
    cache, which loading it just filled)."""
    return read_state_dict(checkpoint, device), checkpoint_sha256(checkpoint)


def _provenance(
    ckpt_dir: str | Path,
    setup: RunSetup,
    metrics: tuple[str, ...],
    center: bool,
    dormant_tau: float,
    command: str,
    tokens: str,
) -> Provenance:
    return Provenance(
        checkpoint_dir=str(Path(ckpt_dir).resolve()),
        model=setup.spec.target,
        model_kwargs=json.dumps(dict(setup.spec.kwargs), sort_keys=True),
        probe_path=str(setup.probe.path.resolve()) if setup.probe.path else "",
        probe_sha256=setup.probe.sha256,
        center=center,
        dormant_tau=dormant_tau,
        metrics=tuple(metrics),
        layers=tuple(setup.layers),
        torch_version=str(torch.__version__),
        device=str(setup.device),
        dtype=setup.dtype,
        tokens=tokens,
        command=command,
    )


class _Loop:
    """Book-keeping of the track loop: settles decompositions in order and writes the file."""

    def __init__(
        self,
        table: RunTable,
        report: TrackReport,
        out: Path,
        progress: ProgressCallback | None,
        total: int,
    ) -> None:
        self.table, self.report, self.out = table, report, out
        self.progress, self.total, self.done = progress, total, 0
        self.pending: tuple[Checkpoint, str, str, Future] | None = None
        self.started = time.perf_counter()

    def settle(self, quietly: bool = False) -> None:
        """Wait for the decomposition in flight, if any, and record its checkpoint."""
        if self.pending is None:
            return
        checkpoint, name, digest, future = self.pending
        self.pending = None
        try:
            values, broken, seconds = future.result()
        except Exception:
            if quietly:
                return
            raise
        self.report.timings["metrics"] += seconds
        self.report.non_finite += [(checkpoint.step, layer) for layer in broken]
        self.table.add(checkpoint, name, values, digest)
        self.report.computed.append(checkpoint.step)
        self.record(checkpoint)

    def commit(self, checkpoint: Checkpoint, name: str, outcome: Outcome) -> None:
        """Record a task's result from the cluster (`ndt.replay.distributed`) and write the file."""
        if outcome.error:
            self.report.failures.append((name, outcome.error))
        else:
            for key, seconds in outcome.timings.items():
                self.report.timings[key] += seconds
            self.report.non_finite += [(checkpoint.step, layer) for layer in outcome.broken]
            self.table.add(checkpoint, name, outcome.values, outcome.digest)
            self.report.computed.append(checkpoint.step)
        self.record(checkpoint)

    def record(self, checkpoint: Checkpoint) -> None:
        """Write the file as it stands and report progress."""
        started = time.perf_counter()
        self.table.failures = self.report.failures
        self.table.write()
        self.report.timings["write"] += time.perf_counter() - started
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total, checkpoint.step)


def _default_metrics(recorded: Provenance | None, out: Path, notices: list[str]) -> tuple[str, ...]:
    """The metrics of a run that named none: those `out` records (`recorded`) when the run
    extends it (with a notice when they are not every metric), else every metric."""
    if recorded is None or not recorded.metrics:
        return DEFAULT_METRICS
    metrics = tuple(recorded.metrics)
    unknown = [m for m in metrics if m not in DEFAULT_METRICS]
    if unknown:
        raise NdtError(
            f"{out} records the metric {', '.join(unknown)}, which this version of ndt does "
            "not know; pass --overwrite to recompute, or --out another file"
        )
    missing = [m for m in DEFAULT_METRICS if m not in metrics]
    if missing:
        notices.append(
            f"{out} records the metrics {', '.join(metrics)}; computing those, not "
            f"{', '.join(missing)} (pass --overwrite for every metric, or --out another file)"
        )
    return metrics


class _Recorded(NamedTuple):
    """What a results file being extended records of the choices a run may leave unnamed."""

    provenance: Provenance | None = None
    layers: tuple[str, ...] | None = None
    probe: Path | None = None


def _recorded_choices(out: Path, ckpt_dir: str | Path, overwrite: bool) -> _Recorded:
    """What a run extending `out` takes from it for the options it leaves out: the file's
    provenance (dtype, tokens, definitions, centring, τ, step scale), and its layers and
    probe unless the folder's ndt.toml names them. So extending a file needs no options
    again, and a default changed since (a vocabulary head left out) does not refuse it. The
    probe only while it is still a file; its checksum is checked as for any run."""
    if overwrite or not out.exists():
        return _Recorded()
    try:
        recorded = read_provenance(out)
    except NdtError:  # not a readable results file: RunTable.start says why
        return _Recorded()
    if recorded is None:
        return _Recorded()
    _check_recorded(recorded, out)
    manifest = read_manifest(ckpt_dir)
    layers = tuple(recorded.layers) or None
    probe = Path(recorded.probe_path) if recorded.probe_path else None
    if manifest is not None and manifest.layers:
        layers = None
    if manifest is not None and manifest.probe or probe is not None and not probe.is_file():
        probe = None
    return _Recorded(recorded, layers, probe)


def _check_recorded(recorded: Provenance, out: Path) -> None:
    """The values a run extending `out` may take from it must be ones the options accept:
    a damaged or hand-edited file is named, not an option the user did not give.

    Raises:
        ResultsFormatError: naming the attribute and the option that overrides it.
    """
    usable = {
        "definitions": recorded.definitions in DEFINITIONS,
        "dtype": recorded.dtype in DTYPE_NAMES,
        "tokens": _parses(recorded.tokens),
        "dormant_tau": math.isfinite(recorded.dormant_tau) and recorded.dormant_tau >= 0,
        "step_scale": recorded.step_scale >= 1,
    }
    for name, ok in usable.items():
        if not ok:
            option = name.replace("_", "-")
            raise ResultsFormatError(
                f"{out}: provenance/{name} is {getattr(recorded, name)!r}, which no run can "
                f"use; pass --{option} to choose, or --overwrite to recompute the file"
            )


def _parses(tokens: str) -> bool:
    try:
        parse_tokens(tokens)
    except NdtError:
        return False
    return True


def _checked_metrics(metrics: Sequence[str]) -> tuple[str, ...]:
    try:
        return validate_metrics(metrics)
    except ValueError as exc:
        raise NdtError(f"--metric: {exc}") from None


def _relative_name(checkpoint: Checkpoint, ckpt_dir: str | Path) -> str:
    return checkpoint.path.relative_to(Path(ckpt_dir)).as_posix()
