"""Start-up time of `ndt --help`, `ndt --version` and every `ndt <command> --help` (issue 15).

Each is run in a fresh process REPEATS times; the median wall-clock time is printed with the
machine's load average, which these figures depend on (docs/performance.md, "Start-up").

    python benchmarks/bench_startup.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ndt_cli.main import COMMANDS  # noqa: E402

MAIN = "import sys; from ndt_cli.main import main; sys.argv[0] = 'ndt'; main()"
TARGET_S = 0.3


def seconds(args: list[str], repeats: int) -> float:
    """Median wall-clock seconds of `ndt ARGS` in a fresh interpreter."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", MAIN, *args], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    repeats = parser.parse_args().repeats
    cases = [["--version"], ["--help"], *[[name, "--help"] for name in COMMANDS]]
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for args in cases:
        median = seconds(args, repeats)
        flag = "" if median < TARGET_S else f"  (over {TARGET_S} s)"
        print(f"ndt {' '.join(args):<28} {median:.3f} s{flag}")
    print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
