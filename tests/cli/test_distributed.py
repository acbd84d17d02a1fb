"""`ndt track --scheduler`: checkpoints as Dask tasks, results equal to a sequential run to
the last bit, through a worker killed mid-run and a driver killed mid-run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import assert_one_error

from ndt.io.store import Results, read_results
from ndt.replay.track import track

distributed = pytest.importorskip("dask.distributed")
ROOT = Path(__file__).resolve().parents[2]


_CLUSTER = """
import json, os, sys
from dask.distributed import Client, LocalCluster
with LocalCluster(
    n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
) as cluster, Client(cluster) as client:
    pids = sorted(client.run(os.getpid).values())
    print(json.dumps({"address": cluster.scheduler_address, "pids": pids}), flush=True)
    sys.stdin.read()  # until the tests close stdin
"""


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster of 2 worker processes (one thread each), in a process of its own as a
    cluster would be: yields its address and its workers' pids."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p
    )}  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-c", _CLUSTER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True, env=env,
    )  # fmt: skip
    started = json.loads(process.stdout.readline())
    yield started["address"], started["pids"]
    process.stdin.close()
    process.wait(timeout=60)


@pytest.fixture
def one_thread():
    """Sequential references with one torch thread, as each task has."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def assert_same(a: Results, b: Results) -> None:
    np.testing.assert_array_equal(a.steps, b.steps)
    assert a.layers == b.layers and list(a.metrics) == list(b.metrics)
    for name in a.metrics:  # to the last bit, NaN where NaN
        assert np.array_equal(a.metrics[name], b.metrics[name], equal_nan=True), name
    columns = ["step", "file", "size", "sha256"]
    assert a.checkpoints[columns].equals(b.checkpoints[columns])


def test_distributed_equals_sequential_to_the_last_bit(fixtures_dir, tmp_path, cluster, one_thread):
    ckpts = fixtures_dir / "digits-mlp" / "ckpts"
    address, _ = cluster
    done = []
    report = track(
        ckpts, out=tmp_path / "d.h5", scheduler=address, threads=1,
        progress=lambda n, total, step: done.append((n, total)),
    )  # fmt: skip
    sequential = track(ckpts, out=tmp_path / "s.h5")
    assert_same(read_results(tmp_path / "d.h5"), read_results(tmp_path / "s.h5"))
    assert report.computed == sequential.computed == sorted(report.computed)
    assert done == [(n, 33) for n in range(1, 34)]  # one tick per finished task
    again = track(ckpts, out=tmp_path / "d.h5", scheduler=address, threads=1)
    assert again.computed == [] and len(again.skipped) == 33  # stored steps not submitted


def test_a_worker_killed_mid_run_has_its_tasks_run_elsewhere(
    fixtures_dir, tmp_path, cluster, one_thread
):
    ckpts = fixtures_dir / "digits-transition" / "ckpts"
    address, pids = cluster
    victim = pids[0]
    killed = []

    def kill_a_worker(done: int, total: int, step: int) -> None:
        # With 34 of 37 tasks left, each of the two workers is running or holding one.
        if done == 3:
            os.kill(victim, signal.SIGKILL)
            killed.append(done)

    report = track(
        ckpts, out=tmp_path / "d.h5", scheduler=address, threads=1,
        batch_size=4, progress=kill_a_worker,
    )  # fmt: skip
    assert killed == [3] and len(report.computed) == 37
    with pytest.raises(ProcessLookupError):
        os.kill(victim, 0)  # it did die
    track(ckpts, out=tmp_path / "s.h5", batch_size=4)
    assert_same(read_results(tmp_path / "d.h5"), read_results(tmp_path / "s.h5"))
    with distributed.Client(address) as client:
        client.wait_for_workers(2, timeout=60)  # the nanny restarted it
        assert victim not in client.run(os.getpid).values()


@pytest.mark.skipif(shutil.which("ndt") is None, reason="needs the ndt script")
def test_resume_after_the_driver_is_killed(fixtures_dir, tmp_path, cluster, one_thread):
    ckpts = fixtures_dir / "digits-transition" / "ckpts"
    address, _ = cluster
    out = tmp_path / "d.h5"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    driver = subprocess.Popen(
        [shutil.which("ndt"), "track", str(ckpts), "-o", str(out), "-q", "--threads", "1",
         "--batch-size", "4", "--scheduler", address],
        env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not out.exists() and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    first = read_results(out)
    assert 1 <= len(first.steps) < 37
    resumed = track(ckpts, out=out, scheduler=address, threads=1, batch_size=4)
    assert sorted(resumed.skipped) == first.steps.tolist()  # not submitted again
    track(ckpts, out=tmp_path / "s.h5", batch_size=4)
    assert_same(read_results(out), read_results(tmp_path / "s.h5"))


def test_a_scheduler_file_names_the_cluster(ndt, tiny_run, tmp_path, cluster, one_thread):
    address, _ = cluster
    scheduler_file = tmp_path / "scheduler.json"  # as `dask scheduler --scheduler-file` writes
    scheduler_file.write_text(json.dumps({"address": address}))
    out = tmp_path / "d.h5"
    result = ndt(
        "track", tiny_run / "ckpts", "-o", out, "--scheduler", scheduler_file, "--threads", "1",
        "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["computed"] == [0, 10, 20, 30, 40]
    track(tiny_run / "ckpts", out=tmp_path / "s.h5")
    assert_same(read_results(out), read_results(tmp_path / "s.h5"))


def test_each_worker_builds_the_model_once_and_runs_its_tasks_on_one_thread(
    tiny_run, tmp_path, cluster, one_thread
):
    ckpts = tiny_run / "ckpts"
    address, pids = cluster
    report = track(ckpts, out=tmp_path / "d.h5", scheduler=address, threads=1)
    assert len(report.computed) == len(list(ckpts.glob("*.safetensors"))) == 5

    def state(ckpt_dir: str) -> dict:  # nested: cloudpickle sends it by value
        from ndt.replay import distributed as replay

        models = [key for key in replay._MODELS if ckpt_dir in key[0]]
        return {
            "models": len(models),
            "threads": len({thread for _, thread in models}),
            "torch": torch.get_num_threads(),
            "interop": torch.get_num_interop_threads(),
            # The driver writes the file: a task needs no results store (h5py, pandas).
            "store": sorted(m for m in ("h5py", "pandas", "ndt.io.store") if m in sys.modules),
        }

    with distributed.Client(address) as client:
        states = list(client.run(state, str(ckpts)).values())
    assert len(states) == len(pids) == 2
    # One model per worker thread (one thread per worker here) serves all of its tasks.
    assert all(s["models"] == s["threads"] <= 1 for s in states), states
    assert 1 <= sum(s["models"] for s in states) <= 2 < len(report.computed)
    assert all(s["torch"] == 1 and s["interop"] == 1 for s in states), states
    assert all(s["store"] == [] for s in states), states


def test_local_workers_get_the_thread_count_before_they_import_torch():
    from threadpoolctl import threadpool_info

    from ndt.replay.distributed import connect

    def settings() -> dict:
        import os

        import numpy  # noqa: F401  (loads the BLAS threadpoolctl reports)

        names = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
        blas = {i["internal_api"]: i["num_threads"] for i in threadpool_info()}
        return {"env": [os.environ.get(n) for n in names], "blas": blas}

    client, cluster = connect("local:1", 2)
    try:
        (found,) = client.run(settings).values()
    finally:
        client.close()
        cluster.close()
    assert found["env"] == ["2", "2", "2"]
    assert found["blas"] and set(found["blas"].values()) == {2}, found


def test_local_cluster_from_the_command_line(ndt, tiny_run, tmp_path, one_thread):
    out = tmp_path / "d.h5"
    result = ndt(
        "track", tiny_run / "ckpts", "-o", out, "--scheduler", "local:2", "--threads", "1", "-q"
    )
    assert result.exit_code == 0, result.output
    track(tiny_run / "ckpts", out=tmp_path / "s.h5")
    assert_same(read_results(out), read_results(tmp_path / "s.h5"))


@pytest.mark.parametrize(
    ("scheduler", "fragment"),
    [
        ("local:0", "--scheduler local:0: N of local:N"),
        ("somewhere", "--scheduler 'somewhere' is not local:N"),
        ("missing.json", "--scheduler missing.json: no such scheduler file"),
    ],
)
def test_bad_scheduler_is_one_error_line(ndt, tiny_run, tmp_path, scheduler, fragment):
    result = ndt("track", tiny_run / "ckpts", "-o", tmp_path / "r.h5", "--scheduler", scheduler)
    assert_one_error(result, fragment)


def test_without_dask_one_line_says_how_to_install_it(ndt, tiny_run, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    result = ndt("track", tiny_run / "ckpts", "-o", tmp_path / "r.h5", "--scheduler", "local:2")
    assert_one_error(result, "pip install 'ndt-replay[distributed]'")


def test_ndtracker_definitions_reach_the_workers(ndt, tiny_run, tmp_path, one_thread):
    out = tmp_path / "d.h5"
    result = ndt(
        "track", tiny_run / "ckpts", "-o", out, "--scheduler", "local:2", "--threads", "1",
        "--definitions", "ndtracker", "-q",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    track(tiny_run / "ckpts", out=tmp_path / "s.h5", definitions="ndtracker")
    track(tiny_run / "ckpts", out=tmp_path / "ndt.h5")
    distributed, sequential = read_results(out), read_results(tmp_path / "s.h5")
    assert_same(distributed, sequential)
    assert distributed.provenance.definitions == "ndtracker"
    assert not distributed.provenance.center
    # Not ndt's definitions: the uncentred, sigma-based participation ratio differs.
    ndt_pr = read_results(tmp_path / "ndt.h5").metrics["participation_ratio"]
    assert not np.allclose(distributed.metrics["participation_ratio"], ndt_pr)
