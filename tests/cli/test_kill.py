"""`kill -9` in the middle of `ndt track` leaves a valid results file, and the next run
completes it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

import numpy as np
import pytest

from ndt.io.store import read_results

NDT = shutil.which("ndt")


@pytest.mark.skipif(
    NDT is None or os.name != "posix", reason="needs the ndt script and POSIX signals"
)
def test_kill_minus_nine_leaves_a_readable_file(fixtures_dir, tmp_path):
    out = tmp_path / "r.h5"
    run = subprocess.Popen(
        [NDT, "track", str(fixtures_dir / "digits-transition" / "ckpts"), "--out", str(out), "-q"]
    )
    deadline = time.monotonic() + 120
    while not out.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    run.send_signal(signal.SIGKILL)
    run.wait()
    first = read_results(out)  # whatever moment the kill came, the file is complete
    assert 1 <= len(first.steps) <= 37
    rerun = subprocess.run(
        [
            NDT,
            "track",
            str(fixtures_dir / "digits-transition" / "ckpts"),
            "--out",
            str(out),
            "--json",
        ],
        capture_output=True,
        text=True,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert len(read_results(out).steps) == 37


@pytest.mark.skipif(
    NDT is None or os.name != "posix", reason="needs the ndt script and POSIX signals"
)
def test_kill_minus_nine_at_random_moments_then_rerun_equals_one_run(fixtures_dir, tmp_path):
    """The appending store (format 2): killed at three random moments after its first
    commits, `ndt track` leaves a readable file, and the rerun equals an uninterrupted run."""
    ckpts = fixtures_dir / "digits-mlp" / "ckpts"
    whole, out = tmp_path / "whole.h5", tmp_path / "r.h5"
    base = [NDT, "track", str(ckpts), "-q", "--threads", "1", "--out"]
    subprocess.run([*base, str(whole)], check=True)
    rng = np.random.default_rng(1)
    counts = []
    for _trial in range(3):
        run = subprocess.Popen([*base, str(out)])
        deadline = time.monotonic() + 120
        while not out.exists() and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 1.0))
        run.send_signal(signal.SIGKILL)
        run.wait()
        counts.append(len(read_results(out).steps))  # readable
    assert counts == sorted(counts)  # no committed row lost
    subprocess.run([*base, str(out)], check=True)
    reference, resumed = read_results(whole), read_results(out)
    np.testing.assert_array_equal(resumed.steps, reference.steps)
    for name, values in reference.metrics.items():
        np.testing.assert_array_equal(resumed.metrics[name], values, err_msg=name)
    columns = ["step", "file", "size", "sha256"]
    assert resumed.checkpoints[columns].equals(reference.checkpoints[columns])
