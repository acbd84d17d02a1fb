"""Benchmarks of issue 14: replay on a Dask cluster, and the appending results store.

(a) speed-up: ``ndt track --threads 1 --scheduler local:2`` against the sequential
    ``ndt track --threads 1`` (same torch threads per process), and against the sequential
    run on every core, on a workload where the forward pass dominates: the transformer of
    benchmarks/workloads.py (25 M parameters), 32 checkpoints, probe 32 x 128 tokens, with
    ``--tokens last`` so that each of the 9 tracked layers gives 32 rows (the Gram updates
    and decompositions are then about 1 % of a checkpoint). Each run is its own ``ndt``
    process, side by side in one process tree; wall time of the whole command (Python start,
    model build, and the cluster's start and stop included), CPU time of its process tree
    and their ratio (the cores the run got: on a shared machine, less than it could use),
    and whether the results files are equal to the last bit.
(b) scheduling overhead: 1,000 tiny checkpoints (a 4-4-2 MLP, 8 probe samples) through a
    LocalCluster of 2 processes started beforehand: per task, the loop's wall time minus
    the workers' compute time shared among the workers (the driver's commits included),
    next to the sequential loop's time per checkpoint on the same files.
(c) the store: 2,000 checkpoints x 100 layers x 6 metrics committed one by one through
    `ndt.replay.run_table.RunTable` (appends), commit times of the first 100 and the last 100;
    and the same commits done as before format 2, one atomic whole-file rewrite each.

Usage:
    python benchmarks/bench_scale.py --speedup-only      # (a) alone, ~2 minutes on 2 quiet cores
    python benchmarks/bench_scale.py                    # all three (minutes)
    python benchmarks/bench_scale.py --parts store --checkpoints 2000
    python benchmarks/bench_scale.py --parts speedup --repeat 3 --speedup-checkpoints 48

See docs/performance.md ("Beyond one machine").
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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
from ndt.io.store import Provenance, read_results, write_results  # noqa: E402
from ndt.models.spec import build_model  # noqa: E402
from ndt.replay.run_table import RunTable  # noqa: E402


def _ndt(*args: object) -> dict:
    """One `ndt` command in its own process (a child of this one): wall and CPU seconds (its
    whole process tree: the driver, and the Dask nannies and workers it starts), and the
    report that ``--json`` prints."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-c", "from ndt_cli.main import main; main()", *map(str, args)]
    cpu = _children_cpu()
    started = time.perf_counter()
    done = subprocess.run(command, check=True, env=env, stdout=subprocess.PIPE, text=True)
    wall = time.perf_counter() - started
    return {"wall": wall, "cpu": _children_cpu() - cpu, "report": json.loads(done.stdout)}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _same_results(a: Path, b: Path) -> bool:
    """Same steps, layers and metric values to the last bit (NaN where NaN)."""
    first, second = read_results(a), read_results(b)
    return (
        np.array_equal(first.steps, second.steps)
        and first.layers == second.layers
        and list(first.metrics) == list(second.metrics)
        and all(
            np.array_equal(first.metrics[m], second.metrics[m], equal_nan=True)
            for m in first.metrics
        )
    )


def speedup(root: Path, n_checkpoints: int, n_samples: int, repeat: int, all_cores: bool) -> dict:
    """(a): sequential `ndt track --threads 1` against ``--threads 1 --scheduler local:2``
    (and, with `all_cores`, the sequential run on every core), each its own process."""
    workload = WORKLOADS["transformer"]
    built = build_workload(
        workload, root, n_checkpoints=n_checkpoints, n_samples=n_samples, pt_copies=False
    )
    cores = os.cpu_count() or 1
    common = ("track", built.ckpt_dir, "--json", "--overwrite", "--tokens", "last")
    runs = {
        "sequential, --threads 1": ("--threads", 1),
        "--threads 1 --scheduler local:2": ("--threads", 1, "--scheduler", "local:2"),
    }
    if all_cores:
        runs[f"sequential, --threads {cores}"] = ("--threads", cores)
    measured: dict[str, list[dict]] = {label: [] for label in runs}
    load_before = os.getloadavg()
    for index in range(repeat):
        # Interleaved, the order flipped each round: the machine's load drifts.
        for label in list(runs) if index % 2 == 0 else list(runs)[::-1]:
            out = root / f"{len(measured[label])}-{label.replace(' ', '_')}.h5"
            measured[label].append(_ndt(*common, "-o", out, *runs[label]))
            measured[label][-1]["out"] = out
    load_after = os.getloadavg()
    best = {label: min(found, key=lambda r: r["wall"]) for label, found in measured.items()}
    sequential, cluster = best["sequential, --threads 1"], best["--threads 1 --scheduler local:2"]
    timings = sequential["report"]["timings"]
    compute = sum(timings[k] for k in ("load", "forward", "metrics"))
    rows = {
        label: {
            "wall_s": run["wall"],
            "cpu_s": run["cpu"],
            "loop_s": run["report"]["timings"]["wall"],
            "all_wall_s": [r["wall"] for r in measured[label]],
            "timings_s": run["report"]["timings"],
        }
        for label, run in best.items()
    }
    return {
        "workload": f"{workload.description.split(', probe')[0]}, --tokens last",
        "n_checkpoints": n_checkpoints,
        "probe": f"{n_samples} x {workload.probe_shape[1]} tokens",
        "cores": cores,
        "forward_share": timings["forward"] / compute,
        "runs": rows,
        "speedup": sequential["wall"] / cluster["wall"],
        "speedup_vs_all_cores": (
            best[f"sequential, --threads {cores}"]["wall"] / cluster["wall"] if all_cores else None
        ),
        "bitwise_equal": _same_results(sequential["out"], cluster["out"]),
        "load_1min_before_after": [load_before[0], load_after[0]],
    }


def print_speedup(found: dict) -> None:
    """The runs side by side, then the ratio."""
    print(
        f"(a) speed-up: {found['workload']}, {found['n_checkpoints']} checkpoints, probe "
        f"{found['probe']}; the forward pass is {100 * found['forward_share']:.0f} % of a "
        "checkpoint's compute (sequential run's --json timings)"
    )
    header = f"{'ndt track ...':<36} {'wall s':>8} {'cpu s':>8} {'cores':>6} {'loop s':>8}"
    print(f"    {header}   every run's wall s")
    for label, row in found["runs"].items():
        walls = ", ".join(f"{w:.1f}" for w in row["all_wall_s"])
        cores = row["cpu_s"] / row["wall_s"]  # what the run got of the machine
        print(
            f"    {label:<36} {row['wall_s']:8.1f} {row['cpu_s']:8.1f} {cores:6.2f}"
            f" {row['loop_s']:8.1f}   {walls}"
        )
    extra = found["speedup_vs_all_cores"]
    print(
        f"    speed-up, local:2 over the sequential run with the same --threads 1: "
        f"{found['speedup']:.2f}x"
        + (
            f" (over the sequential run on all {found['cores']} cores: {extra:.2f}x)"
            if extra
            else ""
        )
    )
    before, after = found["load_1min_before_after"]
    print(
        f"    results bit for bit equal: {'yes' if found['bitwise_equal'] else 'NO'}; "
        f"load average (1 min) {before:.2f} before, {after:.2f} after, on {found['cores']} cores"
    )


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
    parser.add_argument(
        "--speedup-only",
        action="store_true",
        help="Part (a) alone, one round (about 2 minutes on a quiet 2-core machine).",
    )
    parser.add_argument("--speedup-checkpoints", type=int, default=32)
    parser.add_argument("--speedup-samples", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=1, help="Rounds of part (a).")
    parser.add_argument(
        "--all-cores",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="Also run the sequential command on every core (default: yes, not with "
        "--speedup-only).",
    )
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--checkpoints", type=int, default=2000)
    parser.add_argument("--layers", type=int, default=100)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    parts = ["speedup"] if args.speedup_only else args.parts.split(",")
    all_cores = not args.speedup_only if args.all_cores is None else args.all_cores
    root = Path(tempfile.mkdtemp(prefix="ndt-bench-scale-"))
    results: dict[str, dict] = {}
    try:
        if "speedup" in parts:
            results["speedup"] = speedup(
                root, args.speedup_checkpoints, args.speedup_samples, args.repeat, all_cores
            )
            print_speedup(results["speedup"])
        if "overhead" in parts:
            results["overhead"] = overhead(root, args.tasks)
            print("overhead", json.dumps(results["overhead"], indent=1), flush=True)
        if "store" in parts:
            results["store"] = store(root, args.checkpoints, args.layers, args.window)
            print("store", json.dumps(results["store"], indent=1), flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
