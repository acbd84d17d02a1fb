"""`ndt track`'s loop: replay every checkpoint of a run and keep the results file current.

The file is rewritten atomically after each checkpoint, so an interrupted run loses at most
the checkpoint in flight, and a later run computes only the steps not in the file yet.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from threadpoolctl import threadpool_limits

from ndt.checkpoints import Checkpoint, discover_checkpoints, load_weights, read_state_dict
from ndt.core.estimators import (
    DEFAULT_METRICS,
    Definitions,
    check_definitions,
    compute_metrics,
    validate_metrics,
)
from ndt.errors import CheckpointError, ConfigMismatchError, NdtError
from ndt.modelspec import ModelSpec
from ndt.replay import FoldedSpectra, Folder, RunSetup, fold_probe, prepare_run
from ndt.store import Provenance, Results, read_results, write_results


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
        timings: Seconds spent in load, forward, metrics and write, summed over checkpoints
            ("metrics" includes decompositions that overlapped the next forward pass), and
            the run's "wall" time.
    """

    path: Path
    results: Results
    computed: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    non_finite: list[tuple[int, str]] = field(default_factory=list)
    timings: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(("load", "forward", "metrics", "write", "wall"), 0.0)
    )


ProgressCallback = Callable[[int, int, int], None]
"""Called as ``progress(done, total, step)`` after each checkpoint."""


def track(
    ckpt_dir: str | Path,
    *,
    out: str | Path = "results.h5",
    model: ModelSpec | None = None,
    probe: str | Path | None = None,
    layers: Sequence[str] | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
    center: bool | None = None,
    dormant_tau: float = 0.0,
    definitions: Definitions = "ndt",
    batch_size: int | None = None,
    device: str = "auto",
    steps: tuple[int | None, int | None] | None = None,
    every: int = 1,
    overwrite: bool = False,
    command: str = "",
    progress: ProgressCallback | None = None,
) -> TrackReport:
    """Replay every checkpoint in `ckpt_dir` on the probe and write the curves to `out`.

    Checkpoints already in `out` are skipped unless `overwrite`; the file is rewritten
    atomically after each checkpoint, so an interrupted run loses at most the one in flight.
    A checkpoint that cannot be read is reported in `TrackReport.failures` and retried by
    the next run; one whose tensors do not fit the model stops the run.

    `definitions` picks the metric definitions (docs/metrics.md): "ndt" (centred over
    samples) or "ndtracker" (uncentred, participation ratio on the singular values, as the
    ndtracker package); `center` overrides the centring (None: the definitions' choice).
    Both are recorded in the provenance.

    Raises:
        NdtError: for a bad folder, model, probe or layer selection, a checkpoint that does
            not fit the model, or options that differ from those recorded in `out`.
    """
    metrics = _checked_metrics(metrics)
    check_definitions(definitions)
    center = (definitions == "ndt") if center is None else center
    setup = prepare_run(ckpt_dir, model=model, probe=probe, layers=layers, device=device)
    checkpoints = discover_checkpoints(
        ckpt_dir, steps=steps, every=every, exclude=[setup.probe.path] if setup.probe.path else []
    )
    provenance = _provenance(ckpt_dir, setup, metrics, center, dormant_tau, command)
    provenance = replace(provenance, definitions=definitions)
    out = Path(out)
    table = _RunTable.start(out, provenance, overwrite)
    report = TrackReport(path=out, results=table.results())
    todo = [c for c in checkpoints if c.step not in table.rows]
    report.skipped = [c.step for c in checkpoints if c.step in table.rows]
    loop = _Loop(table, report, out, progress, len(todo))
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
        reading = reader.submit(read_state_dict, todo[0], setup.device) if todo else None
        try:
            for index, checkpoint in enumerate(todo):
                started = time.perf_counter()
                name = _relative_name(checkpoint, ckpt_dir)
                try:
                    state = reading.result()
                except CheckpointError as exc:
                    state = None
                    report.failures.append((name, str(exc)))
                # Dropping the finished future lets `del state` below free the weights.
                reading = (
                    reader.submit(read_state_dict, todo[index + 1], setup.device)
                    if index + 1 < len(todo)
                    else None
                )
                if state is None:
                    loop.settle()
                    loop.record(checkpoint)
                    continue
                load_weights(setup.model, state, name)
                del state
                report.timings["load"] += time.perf_counter() - started
                started = time.perf_counter()
                spent: dict[str, float] = {}
                folded = fold_probe(
                    setup.model, setup.probe, setup.layers, center=center,
                    batch_size=batch_size, device=setup.device, timings=spent, folder=folder,
                )  # fmt: skip
                report.timings["forward"] += time.perf_counter() - started - spent["gram"]
                report.timings["metrics"] += spent["gram"]
                loop.settle()
                # The last layers may still be folding: the solver waits for them, so the
                # next checkpoint's forward pass starts now.
                solving = solver.submit(_solve, folded, metrics, dormant_tau, definitions)
                loop.pending = (checkpoint, name, solving)
        finally:
            # Keep the checkpoint whose decomposition is in flight, even when stopping early.
            loop.settle(quietly=True)
    report.results = table.results()
    report.timings["wall"] = time.perf_counter() - loop.started
    return report


def _provenance(
    ckpt_dir: str | Path,
    setup: RunSetup,
    metrics: tuple[str, ...],
    center: bool,
    dormant_tau: float,
    command: str,
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
        command=command,
    )


def _solve(
    folded: FoldedSpectra, metrics: Sequence[str], dormant_tau: float, definitions: Definitions
) -> tuple[np.ndarray, list[str], float]:
    """Metrics of one checkpoint, shape (n_metrics, n_layers); the layers whose activations
    were not finite; and the seconds spent on them (folding included, waiting not)."""
    folded.settle()
    started = time.perf_counter()
    spectra = folded.spectra()
    rows = [
        compute_metrics(s, metrics, dormant_tau=dormant_tau, definitions=definitions)
        for s in spectra.values()
    ]
    values = np.array([[row[m] for row in rows] for m in metrics], dtype=np.float64)
    broken = [name for name, spectrum in spectra.items() if not spectrum.is_finite]
    return values, broken, time.perf_counter() - started + folded.fold_seconds


class _Loop:
    """Book-keeping of the track loop: settles decompositions in order and writes the file."""

    def __init__(
        self,
        table: _RunTable,
        report: TrackReport,
        out: Path,
        progress: ProgressCallback | None,
        total: int,
    ) -> None:
        self.table, self.report, self.out = table, report, out
        self.progress, self.total, self.done = progress, total, 0
        self.pending: tuple[Checkpoint, str, Future] | None = None
        self.started = time.perf_counter()

    def settle(self, quietly: bool = False) -> None:
        """Wait for the decomposition in flight, if any, and record its checkpoint."""
        if self.pending is None:
            return
        checkpoint, name, future = self.pending
        self.pending = None
        try:
            values, broken, seconds = future.result()
        except Exception:
            if quietly:
                return
            raise
        self.report.timings["metrics"] += seconds
        self.report.non_finite += [(checkpoint.step, layer) for layer in broken]
        self.table.add(checkpoint, name, values)
        self.report.computed.append(checkpoint.step)
        self.record(checkpoint)

    def record(self, checkpoint: Checkpoint) -> None:
        """Write the file as it stands and report progress."""
        started = time.perf_counter()
        self.table.failures = self.report.failures
        write_results(self.out, self.table.results())
        self.report.timings["write"] += time.perf_counter() - started
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total, checkpoint.step)


def _checked_metrics(metrics: Sequence[str]) -> tuple[str, ...]:
    try:
        return validate_metrics(metrics)
    except ValueError as exc:
        raise NdtError(f"--metric: {exc}") from None


def _relative_name(checkpoint: Checkpoint, ckpt_dir: str | Path) -> str:
    return checkpoint.path.relative_to(Path(ckpt_dir)).as_posix()


class _RunTable:
    """The rows of a results file under construction: existing steps plus new ones."""

    def __init__(self, provenance: Provenance, base: Results | None) -> None:
        self.provenance = provenance
        self.rows: dict[int, np.ndarray] = {}
        self.files: dict[int, tuple[str, int, float]] = {}
        self.failures: list[tuple[str, str]] = []
        self.base = base
        if base is not None:
            stacked = np.stack([base.metrics[m] for m in provenance.metrics])
            for index, step in enumerate(base.steps):
                self.rows[int(step)] = stacked[:, index, :]
            if base.checkpoints is not None:
                for row in base.checkpoints.itertuples(index=False):
                    self.files[int(row.step)] = (str(row.file), int(row.size), float(row.mtime))

    @classmethod
    def start(cls, out: Path, provenance: Provenance, overwrite: bool) -> _RunTable:
        if overwrite or not out.exists():
            return cls(provenance, None)
        existing = read_results(out)
        if existing.provenance is None:
            raise ConfigMismatchError(
                f"{out} holds results without provenance; use --overwrite or another --out"
            )
        recorded, wanted = existing.provenance.comparable(), provenance.comparable()
        differing = [key for key in wanted if recorded.get(key) != wanted[key]]
        if differing:
            key = differing[0]
            raise ConfigMismatchError(
                f"{out} was made with {key}={recorded.get(key)!r}, not {wanted[key]!r}; "
                "pass --overwrite to recompute, or --out another file"
            )
        return cls(provenance, existing)

    def add(self, checkpoint: Checkpoint, name: str, values: np.ndarray) -> None:
        self.rows[checkpoint.step] = values
        self.files[checkpoint.step] = (name, checkpoint.size, checkpoint.mtime)

    def results(self) -> Results:
        steps = sorted(self.rows)
        names = self.provenance.metrics
        stacked = (
            np.stack([self.rows[s] for s in steps], axis=1)
            if steps
            else np.empty((len(names), 0, len(self.provenance.layers)))
        )
        checkpoints = pd.DataFrame(
            {
                "step": np.asarray(steps, dtype=np.int64),
                "file": [self.files[s][0] for s in steps],
                "size": np.asarray([self.files[s][1] for s in steps], dtype=np.int64),
                "mtime": np.asarray([self.files[s][2] for s in steps], dtype=np.float64),
            }
        )
        failures = pd.DataFrame(self.failures, columns=["file", "error"]) if self.failures else None
        base = self.base
        return Results(
            steps=np.asarray(steps, dtype=np.int64),
            layers=list(self.provenance.layers),
            metrics={m: stacked[i] for i, m in enumerate(names)},
            checkpoints=checkpoints,
            failures=failures,
            provenance=self.provenance,
            # Jumps found on earlier curves stay until `ndt jumps` runs again.
            jumps=base.jumps if base is not None else None,
            jump_settings=base.jump_settings if base is not None else {},
            metadata=base.metadata if base is not None else {},
        )
