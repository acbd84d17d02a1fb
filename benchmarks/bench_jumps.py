"""How long `ndt jumps` takes on a large results file: 100 layers x 6 metrics x 300 checkpoints.

    python benchmarks/bench_jumps.py [--layers 100] [--checkpoints 300] [--repeats 3]

Writes a synthetic results file (log-spaced saves to step 128, then every 50 steps; an early
collapse, slow drift, noise and one switch at two thirds of the run in every layer) to a
temporary folder, then times the library call and the whole command (`ndt jumps FILE`,
reading and writing the file, in a fresh process). The aim (issue 11): under 60 s on two
cores. Figures go to docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ndt.core.estimators import METRICS
from ndt.io.store import Results, read_results, write_results
from ndt.jumps import detect_jumps_in_results


def synthetic_results(n_layers: int, n_checkpoints: int, seed: int = 0) -> Results:
    """A run saved like a real one, every curve with a collapse, drift, noise and a switch."""
    rng = np.random.default_rng(seed)
    early = np.array([0, 1, 2, 4, 8, 16, 32, 64, 128])
    steps = np.concatenate([early, 150 + 50 * np.arange(n_checkpoints - early.size)])
    switch = int(0.66 * steps.size)
    metrics = {}
    for name in METRICS:
        collapse = rng.uniform(2, 6, n_layers) * np.exp(-steps[:, None] / rng.uniform(8, 24))
        drift = rng.uniform(-1, 1, n_layers) * (steps[:, None] / steps[-1])
        noise = 0.02 * np.cumsum(rng.standard_normal((steps.size, n_layers)), axis=0)
        values = 3 + collapse + drift + noise
        values[switch:] += rng.uniform(0.5, 1.0, n_layers)
        metrics[name] = values
    layers = [f"model.layers.{i}.mlp" for i in range(n_layers)]
    return Results(steps=steps.astype(np.int64), layers=layers, metrics=metrics)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=100)
    parser.add_argument("--checkpoints", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    results = synthetic_results(args.layers, args.checkpoints)
    n_curves = args.layers * len(results.metrics)
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"python {platform.python_version()}, numpy {np.__version__}"
    )
    print(f"{args.layers} layers x {len(results.metrics)} metrics x {args.checkpoints} checkpoints")
    library = []
    for _ in range(args.repeats):
        began = time.perf_counter()
        report = detect_jumps_in_results(results)
        library.append(time.perf_counter() - began)
    print(
        f"detect_jumps_in_results: best {min(library):.2f} s of {args.repeats} "
        f"({report.n_tests} interval tests on {n_curves} curves, "
        f"{report.n_transitions} transitions)"
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big.h5"
        write_results(path, results)
        command = [str(Path(sys.executable).with_name("ndt")), "jumps", str(path)]
        began = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        whole = time.perf_counter() - began
        assert read_results(path).transitions is not None
    print(f"ndt jumps FILE (fresh process, read + test + write): {whole:.2f} s")
    print(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
