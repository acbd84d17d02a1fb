"""`kill -9` in the middle of `ndt track` leaves a valid results file, and the next run
completes it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

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
