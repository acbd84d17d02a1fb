"""docs/scale.md's examples as a user runs them: the SLURM array script and the merge job
(run as SLURM would, without SLURM), and the dask-jobqueue cluster (its job script, without
submitting it). The page shows each file as it is."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ndt.io.store import read_results

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"
SCALE_PAGE = ROOT / "docs" / "scale.md"


@pytest.fixture
def shell_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a batch job: `ndt` on PATH (this checkout's code), nothing of
    SLURM's yet."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "ndt"
    shim.write_text(
        f'#!/bin/sh\nexec "{sys.executable}" -c "from ndt_cli.main import main; main()" "$@"\n'
    )
    shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {**env, "PATH": f"{bin_dir}{os.pathsep}{env['PATH']}", "PYTHONPATH": path}


def _array_size(script: Path) -> int:
    """N of the script's ``#SBATCH --array=0-(N-1)``."""
    match = re.search(r"^#SBATCH --array=0-(\d+)$", script.read_text(), re.MULTILINE)
    assert match is not None, "slurm_array.sh has no #SBATCH --array=0-M line"
    return int(match.group(1)) + 1


def _run(command: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done


def test_the_page_shows_each_example_file_as_it_is():
    page = SCALE_PAGE.read_text()
    for name in ("slurm_array.sh", "slurm_merge.sh", "slurm_dask.py"):
        assert (EXAMPLES / name).read_text().strip() in page, name


def test_slurm_array_then_merge_equals_a_sequential_run(fixtures_dir, tmp_path, shell_env):
    ckpts = fixtures_dir / "digits-mlp" / "ckpts"
    script = EXAMPLES / "slurm_array.sh"
    size = _array_size(script)
    env = {
        **shell_env,
        "CKPTS": str(ckpts),
        "PROBE": str(fixtures_dir / "digits-mlp" / "probe.safetensors"),
        "RESULTS": "results/digits",
        "SLURM_ARRAY_JOB_ID": "4242",
        "SLURM_ARRAY_TASK_COUNT": str(size),
        "SLURM_ARRAY_TASK_MIN": "0",
        "SLURM_ARRAY_TASK_MAX": str(size - 1),
        "SLURM_CPUS_PER_TASK": "1",
    }
    # As SLURM runs an array: every task at once, in the folder it was submitted from, each
    # with its own SLURM_ARRAY_TASK_ID.
    tasks = [
        subprocess.Popen(
            ["bash", str(script)],
            env={**env, "SLURM_ARRAY_TASK_ID": str(index)},
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for index in range(size)
    ]
    for task in tasks:
        _, stderr = task.communicate(timeout=300)
        assert task.returncode == 0, stderr
    steps = sorted(int(p.stem.removeprefix("step_")) for p in ckpts.glob("step_*.safetensors"))
    assert len(steps) == 33
    for index in range(size):  # shard I holds the positions I, I+N, ... of the step order
        shard = read_results(tmp_path / "results" / f"digits.shard-{index}.h5")
        assert shard.steps.tolist() == steps[index::size]
    # `sbatch --array=3 slurm_array.sh` again: SLURM then says the array has one task.
    again = {**env, "SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "1"}
    again.update(SLURM_ARRAY_TASK_MIN="3", SLURM_ARRAY_TASK_MAX="3")
    _run(["bash", str(script)], again, tmp_path)
    assert read_results(tmp_path / "results" / "digits.shard-3.h5").steps.tolist() == steps[3::size]

    merge = _run(["bash", str(EXAMPLES / "slurm_merge.sh")], env, tmp_path)
    assert f"Merged {size} files" in merge.stderr
    _run(
        ["ndt", "track", str(ckpts), "--threads", "1", "-o", str(tmp_path / "seq.h5"), "-q"],
        shell_env, tmp_path,
    )  # fmt: skip
    merged = read_results(tmp_path / "results" / "digits.h5")
    sequential = read_results(tmp_path / "seq.h5")
    assert merged.steps.tolist() == steps == sequential.steps.tolist()
    assert merged.layers == sequential.layers and list(merged.metrics) == list(sequential.metrics)
    for name in sequential.metrics:  # to the last bit, NaN where NaN
        assert np.array_equal(merged.metrics[name], sequential.metrics[name], equal_nan=True)
    columns = ["step", "file", "size", "sha256"]
    assert merged.checkpoints[columns].equals(sequential.checkpoints[columns])
    assert merged.provenance.comparable() == sequential.provenance.comparable()


def test_the_dask_jobqueue_example_asks_slurm_for_what_the_page_says(tmp_path, monkeypatch):
    pytest.importorskip("dask_jobqueue")
    spec = importlib.util.spec_from_file_location("slurm_dask", EXAMPLES / "slurm_dask.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    monkeypatch.chdir(tmp_path)
    cluster = example.slurm_cluster()  # a scheduler here; no job is submitted
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    directives = re.findall(r"^#SBATCH (.+)$", script, re.MULTILINE)
    assert f"--cpus-per-task={example.CPUS}" in directives and example.CPUS == 8
    assert "-t 04:00:00" in directives
    assert "--output=logs/dask-worker-%j.out" in directives
    (memory,) = [d for d in directives if d.startswith("--mem=")]
    gib = int(memory.removeprefix("--mem=").removesuffix("G"))
    assert abs(gib * 2**30 - 16e9) < 2**30  # 16 GB, in whole GiB
    (command,) = [line for line in script.splitlines() if "distributed.cli.dask_worker" in line]
    assert command.startswith(f"{sys.executable} -m distributed.cli.dask_worker tcp://")
    # One worker process per job, running one task (one checkpoint) at a time.
    assert re.search(r"--nthreads 1(\s|$)", command) and "--nworkers" not in command
