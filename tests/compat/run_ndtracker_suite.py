"""Run ndtracker 2.0.0's own test suite against the installed `ndt` and print the counts.

ndtracker (PyPI ``ndtracker``, import name ``ndt``) ships 230 tests in its source
distribution. This script downloads that sdist with pip into a temporary folder (nothing of
it is kept), extracts only its ``tests/`` and ``examples/`` folders (the examples are test
data of ``tests/test_examples.py``; ndtracker's own ``src/`` is never extracted, so every
``import ndt`` resolves to this project's package), runs them with pytest in a subprocess and
prints passed / failed / skipped, per module and in total.

ndt logs the confirmation lines that ndtracker's export functions printed; the
``ndtracker_notices`` plugin next to this file shows them on stdout, where seven of its tests
read them (see docs/python-api.md).

The suite runs in three pytest processes, as many at a time as there are CPUs: its
example tests (which train for seconds), the other tests, and the second pass below. A
verified copy of the sdist is cached outside the repository (see `cached_sdist`), since
pip download builds its metadata each time.

A second pass runs the tests that depend on the definitions (centring, the sigma-based
participation ratio) with ``definitions="ndtracker"`` as the default, through the
``ndtracker_definitions`` pytest plugin next to this file.

Usage:
    python tests/compat/run_ndtracker_suite.py [--sdist PATH] [--json OUT]

Exit status: 0 when the suite ran (whatever its counts), 3 when PyPI cannot be reached,
1 on any other failure to download or run it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import urlparse

PACKAGE = "ndtracker==2.0.0"
SDIST_NAME = "ndtracker-2.0.0.tar.gz"
# PyPI's sha256 of that file (https://pypi.org/project/ndtracker/2.0.0/#files).
SDIST_SHA256 = "61f2b144c180a97deca3449ad079d7421ab2f37c47fbefbe7d3f6f36c8ad1d94"
UNREACHABLE = 3
HERE = Path(__file__).resolve().parent
EXAMPLES = "tests/test_examples.py"

# Tests whose expectations are the uncentred, sigma-based definitions: they are run again
# with definitions="ndtracker" as the default (see docs/python-api.md).
DEFINITION_TESTS = (
    "tests/test_estimators.py::TestStableRank::test_identity_matrix",
    "tests/test_estimators.py::TestParticipationRatio::test_identity_matrix",
    "tests/test_estimators.py::TestNuclearNormRatio::test_identity_matrix",
)


def index_host() -> str:
    """The host pip downloads from (PIP_INDEX_URL or PyPI)."""
    url = os.environ.get("PIP_INDEX_URL") or "https://pypi.org/simple"
    return urlparse(url).hostname or "pypi.org"


def reachable(host: str, port: int = 443, timeout: float = 5.0) -> bool:
    """True if a TCP connection to `host` succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def cached_sdist() -> Path:
    """Where a verified copy of the sdist is kept between runs (outside the repository):
    ``$NDT_COMPAT_CACHE``, else ``$XDG_CACHE_HOME/ndt-compat`` (``~/.cache/ndt-compat``)."""
    folder = os.environ.get("NDT_COMPAT_CACHE") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "ndt-compat"
    )
    return Path(folder) / SDIST_NAME


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch_sdist(dest: Path) -> Path:
    """The sdist: the cached copy if its sha256 is PyPI's, else a fresh pip download
    (checked against the same sha256, then cached; a cache that cannot be written is
    skipped). pip download builds the package's metadata, which takes seconds."""
    cache = cached_sdist()
    if cache.is_file() and sha256_of(cache) == SDIST_SHA256:
        return cache
    archive = download_sdist(dest)
    if sha256_of(archive) != SDIST_SHA256:
        raise RuntimeError(f"{archive.name} has sha256 {sha256_of(archive)}, not PyPI's")
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(archive, cache)
    except OSError:
        pass
    return archive


def download_sdist(dest: Path) -> Path:
    """pip-download ndtracker's sdist into `dest`; return the archive's path."""
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
        "--disable-pip-version-check", "-d", str(dest), PACKAGE,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    archives = sorted(dest.glob(SDIST_NAME))
    if done.returncode != 0 or not archives:
        if not reachable(index_host()):
            print(f"PyPI ({index_host()}) cannot be reached; not run", file=sys.stderr)
            sys.exit(UNREACHABLE)
        raise RuntimeError(f"pip download failed:\n{done.stdout}\n{done.stderr}")
    return archives[0]


def extract_tests(archive: Path, dest: Path) -> Path:
    """Extract only tests/ and examples/ of the sdist into dest; return the suite root."""
    with tarfile.open(archive) as tar:
        members = []
        for member in tar.getmembers():
            parts = Path(member.name).parts
            if len(parts) > 1 and parts[1] in ("tests", "examples") and member.isfile():
                members.append(member)
        kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(dest, members=members, **kwargs)  # noqa: S202 (filtered above)
    roots = [p for p in dest.iterdir() if p.is_dir()]
    if len(roots) != 1 or not (roots[0] / "tests").is_dir():
        raise RuntimeError(f"{archive.name} has no tests/ folder")
    # An empty ini file stops pytest from reading this project's configuration.
    (roots[0] / "pytest.ini").write_text("[pytest]\n")
    return roots[0]


def start_pytest(
    root: Path, report: Path, targets: list[str], plugin: bool, threads: int
) -> subprocess.Popen:
    """Start pytest on `targets` (relative to `root`) writing a JUnit XML `report`, with
    `threads` OpenMP/BLAS threads; its output goes to `report` with the suffix ``.log``."""
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1")
    # Processes side by side must not each start a thread per CPU: OpenMP's waiting
    # threads spin, and oversubscribed they cost more than the parallelism saves.
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = str(threads)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    command = [
        sys.executable, "-m", "pytest", *targets, "-q", "-p", "no:cacheprovider",
        "--continue-on-collection-errors",
        "--rootdir", str(root), "-c", str(root / "pytest.ini"), f"--junitxml={report}",
        "-p", "ndtracker_notices",
    ]  # fmt: skip
    if plugin:
        command += ["-p", "ndtracker_definitions"]
    with open(report.with_suffix(".log"), "w") as log:
        return subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)


def run_pytest_runs(root: Path, runs: list[tuple[Path, list[str], bool]]) -> None:
    """Run the pytest `runs` ``(report, targets, plugin)``, as many at once as there are
    CPUs, in the order given (each is its own process: ndt's estimator defaults differ
    between them).

    Raises:
        RuntimeError: if a run wrote no report (its output's end is in the message).
    """
    cpus = os.cpu_count() or 1
    width = max(1, min(len(runs), cpus))
    threads = max(1, cpus // width)
    pending, running = list(runs), []
    deadline = time.monotonic() + 1800
    while pending or running:
        while pending and len(running) < width:
            report, targets, plugin = pending.pop(0)
            running.append((start_pytest(root, report, targets, plugin, threads), report))
        time.sleep(0.2)
        for process, report in [r for r in running if r[0].poll() is not None]:
            running.remove((process, report))
            if not report.exists():
                log = report.with_suffix(".log").read_text()[-6000:]
                raise RuntimeError(f"pytest wrote no report {report.name}:\n{log}")
        if time.monotonic() > deadline:
            for process, _ in running:
                process.kill()
            raise RuntimeError("ndtracker's suite ran for more than 30 minutes")


def outcomes(report: Path) -> dict[str, str]:
    """Test id -> passed/failed/skipped/xfailed from a JUnit XML report."""
    found = {}
    for case in ET.parse(report).iter("testcase"):
        name = case.get("name", "")
        if not case.get("classname"):  # a module that failed to import: one error
            found[name.replace(".", "/") + ".py"] = "failed"
            continue
        module = case.get("classname", "").split(".")
        path = "/".join(module[: next((i for i, p in enumerate(module) if p.startswith("test_")),
                                       len(module) - 1) + 1])  # fmt: skip
        klass = ".".join(module[len(path.split("/")) :])
        test_id = f"{path}.py::" + (f"{klass}::" if klass else "") + name
        tags = {child.tag: child for child in case}
        if "failure" in tags or "error" in tags:
            found[test_id] = "failed"
        elif "skipped" in tags:
            kind = tags["skipped"].get("type", "")
            found[test_id] = "xfailed" if "xfail" in kind else "skipped"
        else:
            found[test_id] = "passed"
    return found


def summarise(results: dict[str, str]) -> dict:
    """Totals and per-module counts; an xfailed test behaves as its suite expects: passed."""
    per_module: dict[str, Counter] = defaultdict(Counter)
    for test_id, outcome in results.items():
        counted = "passed" if outcome == "xfailed" else outcome
        per_module[test_id.split("::")[0]][counted] += 1
    total = Counter()
    for counts in per_module.values():
        total.update(counts)
    return {
        "total": sum(total.values()),
        "passed": total["passed"],
        "failed": total["failed"],
        "skipped": total["skipped"],
        "modules": {m: dict(c) for m, c in sorted(per_module.items())},
        "failed_tests": sorted(t for t, o in results.items() if o == "failed"),
        "skipped_tests": sorted(t for t, o in results.items() if o == "skipped"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sdist", type=Path, help="use this sdist instead of downloading it")
    parser.add_argument("--json", type=Path, help="write the counts here as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ndtracker-suite-") as tmp:
        tmp = Path(tmp)
        archive = args.sdist or fetch_sdist(tmp / "dl")
        root = extract_tests(archive, tmp / "src")
        # ndtracker's example tests train for seconds: they run beside the rest.
        runs = [
            (tmp / "plain.xml", ["tests", f"--ignore={EXAMPLES}"], False),
            (tmp / "examples.xml", [EXAMPLES], False),
            (tmp / "defs.xml", list(DEFINITION_TESTS), True),
        ]
        run_pytest_runs(root, runs)
        results = {**outcomes(tmp / "examples.xml"), **outcomes(tmp / "plain.xml")}
        with_definitions = outcomes(tmp / "defs.xml")
    summary = summarise(results)
    summary["definitions_ndtracker"] = with_definitions
    print(f"ndtracker 2.0.0 suite against ndt: {summary['total']} tests")
    for module, counts in summary["modules"].items():
        cells = ", ".join(f"{counts.get(k, 0)} {k}" for k in ("passed", "failed", "skipped"))
        print(f"  {module}: {cells}")
    print(
        f"total: {summary['passed']} passed, {summary['failed']} failed, "
        f"{summary['skipped']} skipped"
    )
    for test_id in summary["failed_tests"]:
        print(f"  FAILED {test_id}")
    for test_id in summary["skipped_tests"]:
        print(f"  SKIPPED {test_id}")
    passed_defs = sum(o == "passed" for o in with_definitions.values())
    print(f'with definitions="ndtracker": {passed_defs} of {len(DEFINITION_TESTS)} passed')
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
