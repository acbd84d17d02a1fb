"""Benchmarks of issue 14: replay on a Dask cluster, and the appending results store.

(a) speed-up: ``ndt track --scheduler local:2 --threads 1`` against the sequential
    ``ndt track`` (all cores to torch, and one thread), on the transformer workload of
    benchmarks/workloads.py, where the forward pass dominates; each run is its own ``ndt``
    process, side by side in one process tree, wall time of the whole command (cluster
    start included) and, for the cluster run, its replay loop alone.
(b) scheduling overhead: 1,000 tiny checkpoints (a 4-4-2 MLP, 8 probe samples) through a
    LocalCluster of 2 processes started beforehand: per task, the loop's wall time minus
    the workers' compute time shared among the workers (the driver's commits included),
    next to the sequential loop's time per checkpoint on the same files.
(c) the store: 2,000 checkpoints x 100 layers x 6 metrics committed one by one through
    `ndt.replay.run_table.RunTable` (appends), commit times of the first 100 and the last 100;
    and the same commits done as before format 2, one atomic whole-file rewrite each.

Usage:
    python benchmarks/bench_scale.py                    # all three (minutes)
    python benchmarks/bench_scale.py --parts store --checkpoints 2000
    python benchmarks/bench_scale.py --parts speedup --speedup-checkpoints 8

See docs/performance.md ("Beyond one machine").
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from workloads import WORKLOADS, build_workload  # noqa: E402

from ndt.core.estimators import DEFAULT_METRICS  # noqa: E402
from ndt.io.checkpoints import Checkpoint, save_checkpoint  # noqa: E402
from ndt.io.manifest import ModelSpec, write_manifest  # noqa: E402
from ndt.io.probe import save_probe  # noqa: E402
from ndt.io.store import Provenance, write_results  # noqa: E402
from ndt.models.spec import build_model  # noqa: E402
from ndt.replay.run_table import RunTable  # noqa: E402


def _ndt(*args: object) -> float:
    """Wall seconds of one `ndt` command in its own process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-c", "from ndt_cli.main import main; main()", *map(str, args)]
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def speedup(root: Path, n_checkpoints: int, probe_scale: float, repeat: int) -> dict:
    workload = WORKLOADS["transformer"]
    built = build_workload(
        workload, root, n_checkpoints=n_checkpoints,
        n_samples=max(2, int(workload.probe_shape[0] * probe_scale)),
    )  # fmt: skip
    ckpts, out = built.ckpt_dir, root / "speedup"
    cores = os.cpu_count() or 1
    from dask.distributed import LocalCluster

    runs: dict[str, list[float]] = {"seq_all": [], "seq_one": [], "local2": [], "warm": []}
    # Interleaved and repeated: the best of each, on a machine whose load changes by the
    # minute. "warm" runs on a cluster started beforehand: the loop without the start.
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as running:
        for index in range(repeat):
            common = ("track", ckpts, "-q", "--overwrite", "-o")
            runs["seq_all"].append(_ndt(*common, out / f"a{index}.h5", "--threads", cores))
            runs["seq_one"].append(_ndt(*common, out / f"o{index}.h5", "--threads", 1))
            runs["local2"].append(
                _ndt(*common, out / f"l{index}.h5", "--threads", 1, "--scheduler", "local:2")
            )
            runs["warm"].append(
                _ndt(*common, out / f"w{index}.h5", "--threads", 1,
                     "--scheduler", running.scheduler_address)
            )  # fmt: skip
    seq_all, seq_one = min(runs["seq_all"]), min(runs["seq_one"])
    cluster, warm = min(runs["local2"]), min(runs["warm"])
    return {
        "workload": workload.description,
        "n_checkpoints": n_checkpoints,
        "n_samples": built.n_samples,
        "cores": cores,
        f"sequential_threads_{cores}_s": seq_all,
        "sequential_threads_1_s": seq_one,
        "local2_threads_1_s": cluster,
        "started_cluster_threads_1_s": warm,
        "speedup_vs_all_cores": seq_all / cluster,
        "speedup_vs_one_thread": seq_one / cluster,
        "speedup_started_cluster_vs_all_cores": seq_all / warm,
        "load_average_1min_after": os.getloadavg()[0],
        "runs_s": runs,
    }


def _tiny_run(root: Path, n_checkpoints: int) -> Path:
    torch.manual_seed(0)
    spec = ModelSpec("mlp", {"in_features": 4, "hidden": [4], "n_classes": 2})
    model = build_model(spec)
    save_probe(root / "probe.safetensors", torch.randn(8, 4))
    for step in range(n_checkpoints):
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.add_(0.01 * torch.randn_like(parameter))
        save_checkpoint(model, root / "ckpts", step)
    write_manifest(root / "ckpts", spec, probe=root / "probe.safetensors")
    return root / "ckpts"


def overhead(root: Path, n_checkpoints: int) -> dict:
    from dask.distributed import LocalCluster

    from ndt.replay.track import track

    ckpts = _tiny_run(root / "tiny", n_checkpoints)
    torch.set_num_threads(1)
    sequential = track(ckpts, out=root / "tiny-seq.h5")
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        report = track(ckpts, out=root / "tiny-dask.h5", scheduler=cluster.scheduler_address)
    n = len(report.computed)
    wall = report.timings["wall"]
    compute = sum(report.timings[k] for k in ("load", "forward", "metrics"))
    return {
        "n_tasks": n,
        "workers": 2,
        "cluster_loop_wall_s": wall,
        "cluster_ms_per_task": 1000 * wall / n,
        "worker_compute_ms_per_task": 1000 * compute / n,
        "driver_write_ms_per_task": 1000 * report.timings["write"] / n,
        "overhead_ms_per_task": 1000 * (wall - compute / 2) / n,
        "sequential_ms_per_checkpoint": 1000 * sequential.timings["wall"] / n,
    }


def store(root: Path, n_checkpoints: int, n_layers: int, window: int) -> dict:
    layers = tuple(f"blocks.{i}" for i in range(n_layers))
    provenance = Provenance(model="mlp", metrics=DEFAULT_METRICS, layers=layers)
    dummy = root / "step.safetensors"
    dummy.write_bytes(b"x" * 100)
    rng = np.random.default_rng(0)
    values = rng.random((len(DEFAULT_METRICS), n_layers))
    table = RunTable.start(root / "append.h5", provenance, overwrite=False, wait=0)
    seconds = []
    for step in range(n_checkpoints):
        table.add(Checkpoint(step, dummy, (dummy,)), f"step_{step:08d}.safetensors", values, "")
        started = time.perf_counter()
        table.write()
        seconds.append(time.perf_counter() - started)
    started = time.perf_counter()
    table.finish()
    finish = time.perf_counter() - started
    # Before format 2: the whole file rewritten atomically for every checkpoint.
    full = table.results()
    rewrite: dict[str, list[float]] = {"first": [], "last": []}
    for label, steps in (
        ("first", range(window)),
        ("last", range(n_checkpoints - window, n_checkpoints)),
    ):
        for step in steps:
            part = type(full)(
                steps=full.steps[: step + 1], layers=full.layers,
                metrics={m: v[: step + 1] for m, v in full.metrics.items()},
                checkpoints=full.checkpoints.iloc[: step + 1], provenance=provenance,
            )  # fmt: skip
            started = time.perf_counter()
            write_results(root / "rewrite.h5", part)
            rewrite[label].append(time.perf_counter() - started)
    ms = lambda xs: 1000 * float(np.mean(xs))  # noqa: E731
    return {
        "n_checkpoints": n_checkpoints,
        "n_layers": n_layers,
        "n_metrics": len(DEFAULT_METRICS),
        "append_first_ms": ms(seconds[:window]),
        "append_last_ms": ms(seconds[-window:]),
        "append_median_ms": 1000 * float(np.median(seconds)),
        "append_max_ms": 1000 * max(seconds),
        "append_total_s": float(sum(seconds)),
        "finish_rewrite_s": finish,
        "rewrite_first_ms": ms(rewrite["first"]),
        "rewrite_last_ms": ms(rewrite["last"]),
        "file_mb": (root / "append.h5").stat().st_size / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="speedup,overhead,store")
    parser.add_argument("--speedup-checkpoints", type=int, default=8)
    parser.add_argument("--probe-scale", type=float, default=0.5)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--checkpoints", type=int, default=2000)
    parser.add_argument("--layers", type=int, default=100)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    parts = args.parts.split(",")
    root = Path(tempfile.mkdtemp(prefix="ndt-bench-scale-"))
    results: dict[str, dict] = {}
    try:
        if "speedup" in parts:
            results["speedup"] = speedup(
                root, args.speedup_checkpoints, args.probe_scale, args.repeat
            )
            print("speedup", json.dumps(results["speedup"], indent=1), flush=True)
        if "overhead" in parts:
            results["overhead"] = overhead(root, args.tasks)
            print("overhead", json.dumps(results["overhead"], indent=1), flush=True)
        if "store" in parts:
            results["store"] = store(root, args.checkpoints, args.layers, args.window)
            print("store", json.dumps(results["store"], indent=1), flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
