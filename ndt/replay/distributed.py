"""`ndt track --scheduler`: a run's checkpoints as `dask.distributed` tasks.

Each worker thread builds the model once and keeps it (`_worker_model`, keyed by the job),
the probe reaches every worker once (scattered), and a task returns only its checkpoint's
per-layer metrics, shape (n_metrics, n_layers); the driver alone writes the results file, as
results arrive. The task runs the same replay pieces as the sequential loop with the same
number of torch threads, so its numbers are those of a sequential run, to the last bit.
Faults are Dask's: the task of a worker that dies is run again elsewhere.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch import nn

from ndt.errors import CheckpointError, NdtError, describe
from ndt.io.checkpoints import Checkpoint, checkpoint_sha256, read_state_dict
from ndt.io.manifest import ModelSpec
from ndt.io.probe import Probe
from ndt.models.loading import apply_weights, resolve_dtype
from ndt.models.spec import build_model
from ndt.replay.allocator import return_large_blocks_to_os
from ndt.replay.engine import RunSetup, fold_probe, resolve_device
from ndt.replay.solve import solve_metrics

INSTALL = "pip install 'ndt-replay[distributed]'"
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@dataclass(frozen=True)
class ReplayJob:
    """What a worker needs to replay any checkpoint of a run (the probe travels apart).

    Attributes:
        ckpt_dir: The checkpoint folder, as the workers see it (a shared filesystem).
        spec: The model.
        layers: Qualified names of the layers, in model order.
        threads: torch and BLAS threads of a task (None: the worker's default).
        definitions: The metric definitions ("ndt" or "ndtracker", docs/metrics.md).
    """

    ckpt_dir: str
    spec: ModelSpec
    layers: tuple[str, ...]
    metrics: tuple[str, ...]
    center: bool = True
    dormant_tau: float = 0.0
    batch_size: int | None = None
    device: str = "auto"
    dtype: str = "float32"
    tokens: str = "all"
    threads: int | None = None
    definitions: str = "ndt"

    def model_key(self) -> str:
        """What decides the model a worker builds."""
        spec = {"target": self.spec.target, "kwargs": dict(self.spec.kwargs)}
        return json.dumps([self.ckpt_dir, spec, self.device, self.dtype], sort_keys=True)


@dataclass(frozen=True)
class Outcome:
    """A task's result: the metrics of one checkpoint, or why it could not be read.

    Attributes:
        values: Shape (n_metrics, n_layers), or None when `error` is set.
        broken: Layers whose activations were not finite.
        digest: The checkpoint's sha256 ("" over the size limit).
        error: Why the checkpoint could not be read ("" if it was).
        timings: Seconds of load, forward and metrics on the worker.
    """

    values: np.ndarray | None
    broken: list[str] = field(default_factory=list)
    digest: str = ""
    error: str = ""
    timings: dict[str, float] = field(default_factory=dict)


_MODELS: dict[tuple[str, int], tuple[nn.Module, torch.device]] = {}
_MODELS_LOCK = threading.Lock()
_PROCESS_READY = False


def _prepare_process() -> None:
    """Once per worker process: the memory settings of the `ndt` command
    (ndt/replay/allocator.py) and a single inter-op thread (a task's parallelism is its
    intra-op threads, `ReplayJob.threads`)."""
    global _PROCESS_READY
    if _PROCESS_READY:
        return
    return_large_blocks_to_os()
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # inter-op work already ran in this process: it keeps its pool
        pass
    _PROCESS_READY = True


def _worker_model(job: ReplayJob) -> tuple[nn.Module, torch.device]:
    """The model of `job` on this worker thread, built on first use and then kept."""
    key = (job.model_key(), threading.get_ident())
    with _MODELS_LOCK:
        if key not in _MODELS:
            device = resolve_device(job.device)
            model = build_model(job.spec, job.ckpt_dir).to(device, resolve_dtype(job.dtype))
            _MODELS[key] = (model.eval(), device)
        return _MODELS[key]


def replay_checkpoint(job: ReplayJob, probe: Probe, checkpoint: Checkpoint) -> Outcome:
    """Run on a worker: the metrics of one checkpoint (see `ndt.replay.track.track`).

    Raises:
        NdtError: if the checkpoint's tensors do not fit the model, or the probe does not
            fit it (the run stops, as a sequential one does).
    """
    with _MODELS_LOCK:
        _prepare_process()
    if job.threads is not None:
        torch.set_num_threads(job.threads)
    model, device = _worker_model(job)
    started = time.perf_counter()
    try:
        state, digest = read_state_dict(checkpoint, device), checkpoint_sha256(checkpoint)
    except CheckpointError as exc:
        return Outcome(None, error=str(exc))
    name = checkpoint.path.relative_to(job.ckpt_dir).as_posix()
    with threadpool_limits(torch.get_num_threads(), user_api="blas"):
        apply_weights(model, state, name)
        del state
        loaded = time.perf_counter()
        folded = fold_probe(
            model, probe, job.layers, center=job.center, batch_size=job.batch_size,
            device=device, tokens=job.tokens,
        )  # fmt: skip
        forward = time.perf_counter()
        values, broken, _ = solve_metrics(folded, job.metrics, job.dormant_tau, job.definitions)
    timings = {
        "load": loaded - started,
        "forward": forward - loaded,
        "metrics": time.perf_counter() - forward,
    }
    return Outcome(values, broken, digest, "", timings)


def replay_run(
    scheduler: str,
    setup: RunSetup,
    checkpoints: Sequence[Checkpoint],
    *,
    ckpt_dir: str | Path,
    threads: int | None,
    metrics: tuple[str, ...],
    center: bool,
    dormant_tau: float,
    batch_size: int | None,
    device: str,
    dtype: str,
    tokens: str,
    definitions: str = "ndt",
) -> Iterator[tuple[Checkpoint, Outcome]]:
    """`ndt track`'s replay of `checkpoints` on a cluster: `replay_on_cluster` with the job
    of `setup` (the driver's model gives the layers) and `track`'s options."""
    job = ReplayJob(
        ckpt_dir=str(Path(ckpt_dir)), spec=setup.spec, layers=tuple(setup.layers),
        metrics=tuple(metrics), center=center, dormant_tau=dormant_tau, batch_size=batch_size,
        device=device, dtype=dtype, tokens=tokens, threads=task_threads(scheduler, threads),
        definitions=definitions,
    )  # fmt: skip
    yield from replay_on_cluster(scheduler, job, setup.probe, checkpoints)


def replay_on_cluster(
    scheduler: str,
    job: ReplayJob,
    probe: Probe,
    checkpoints: Sequence[Checkpoint],
) -> Iterator[tuple[Checkpoint, Outcome]]:
    """Replay `checkpoints` on a Dask cluster, yielding each result as it arrives.

    Args:
        scheduler: ``local:N`` (a `LocalCluster` of N worker processes, stopped at the end),
            a scheduler address such as ``tcp://HOST:PORT``, or a scheduler file
            (``FILE.json``, as ``dask scheduler --scheduler-file`` writes).
        job: The run's settings.
        probe: Sent once to every worker.
        checkpoints: What to replay.

    Raises:
        NdtError: if dask.distributed is not installed, `scheduler` is not of those forms or
            cannot be reached, or a task fails (the others are cancelled).
    """
    client, cluster = connect(scheduler, job.threads or 1)
    futures = []
    try:
        if not checkpoints:
            return
        from dask.distributed import as_completed

        shared = client.scatter(probe, broadcast=True)
        by_key = {}
        for checkpoint in checkpoints:
            future = client.submit(
                replay_checkpoint, job, shared, checkpoint, pure=False,
                key=f"ndt-replay-{checkpoint.step}-{os.urandom(4).hex()}",
            )  # fmt: skip
            by_key[future.key] = checkpoint
            futures.append(future)
        for future in as_completed(futures):
            yield by_key[future.key], future.result()
    finally:
        for future in futures:
            future.cancel()
        client.close()
        if cluster is not None:
            cluster.close()


def task_threads(scheduler: str, threads: int | None) -> int | None:
    """Threads of a task: `threads`, else for ``local:N`` the cores shared among N workers,
    else the workers' own default (None)."""
    if threads is not None or not scheduler.startswith("local:"):
        return threads
    count = scheduler.removeprefix("local:")
    return max(1, (os.cpu_count() or 1) // int(count)) if count.isdigit() and int(count) else 1


def connect(scheduler: str, threads: int = 1) -> tuple[object, object | None]:
    """A `dask.distributed.Client` for `scheduler`, and the `LocalCluster` it started if any.

    Raises:
        NdtError: as `replay_on_cluster`.
    """
    try:
        import dask
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise NdtError(f"--scheduler needs dask.distributed; install it: {INSTALL}") from None
    if scheduler.startswith("local:"):
        count = scheduler.removeprefix("local:")
        if not count.isdigit() or int(count) < 1:
            raise NdtError(f"--scheduler {scheduler}: N of local:N must be a whole number >= 1")
        # One task at a time per worker process, each with `threads` torch and BLAS threads.
        # Dask's nanny applies its `env` only once the worker process has imported numpy,
        # too late for OpenBLAS; the pre-spawn environment is set before the process starts
        # (and, as Dask does with its own defaults, in this process's os.environ too).
        spawn_env = {
            **dask.config.get("distributed.nanny.pre-spawn-environ", default={}),
            **dict.fromkeys(_THREAD_VARIABLES, str(threads)),
            "THP_MEM_ALLOC_ENABLE": os.environ.get("THP_MEM_ALLOC_ENABLE", "1"),
        }
        with dask.config.set({"distributed.nanny.pre-spawn-environ": spawn_env}):
            cluster = LocalCluster(
                n_workers=int(count), threads_per_worker=1, processes=True,
                dashboard_address=":0", silence_logs=logging.ERROR,
            )  # fmt: skip
        return Client(cluster), cluster
    if "://" in scheduler:
        options: dict[str, object] = {"address": scheduler}
    elif scheduler.endswith(".json"):
        if not Path(scheduler).is_file():
            raise NdtError(f"--scheduler {scheduler}: no such scheduler file")
        options = {"scheduler_file": scheduler}
    else:
        raise NdtError(
            f"--scheduler '{scheduler}' is not local:N, a scheduler address "
            "(tcp://HOST:PORT) or a scheduler file (FILE.json)"
        )
    try:
        return Client(**options, timeout="20s"), None
    except (OSError, TimeoutError, ValueError) as exc:
        raise NdtError(f"cannot reach the Dask scheduler {scheduler}: {describe(exc)}") from None
