"""Real `ndt` processes writing one results file at once: two `ndt track` with disjoint
--steps lose no row, and `ndt jumps` during `ndt track` keeps both outcomes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ndt.io.store import read_results
from ndt.replay.track import track

ROOT = Path(__file__).resolve().parents[2]


def ndt_process(*args: object) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-c", "from ndt_cli.main import main; main()", *map(str, args)]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def test_two_tracks_with_disjoint_steps_lose_no_row(fixtures_dir, tmp_path):
    ckpts = fixtures_dir / "digits-transition" / "ckpts"
    out = tmp_path / "results.h5"
    first = ndt_process("track", ckpts, "--out", out, "--steps", ":480", "-q", "--threads", 1)
    second = ndt_process("track", ckpts, "--out", out, "--steps", "500:", "-q", "--threads", 1)
    for process in (first, second):
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
        assert "Traceback" not in stderr
    merged = read_results(out)
    reference = track(ckpts, out=tmp_path / "reference.h5").results
    assert list(merged.steps) == list(reference.steps)  # all 37
    for name, values in merged.metrics.items():
        np.testing.assert_allclose(values, reference.metrics[name], rtol=1e-12, err_msg=name)
    assert list(merged.checkpoints["step"]) == list(reference.steps)
    assert not list(tmp_path.glob(".results.h5.*.tmp"))


def test_jumps_during_track_keeps_both_outcomes(fixtures_dir, tmp_path):
    ckpts = fixtures_dir / "digits-transition" / "ckpts"
    out = tmp_path / "results.h5"
    track(ckpts, out=out, steps=(None, 400))
    n_before = len(read_results(out).steps)
    # One sample per forward pass: a slow track, so that jumps runs in its middle.
    tracking = ndt_process("track", ckpts, "--out", out, "-q", "--batch-size", 1)
    deadline = time.monotonic() + 120
    while len(read_results(out).steps) <= n_before and time.monotonic() < deadline:
        assert tracking.poll() is None, tracking.communicate()
        time.sleep(0.05)
    jumps = ndt_process("jumps", out, "--metric", "stable_rank", "--json")
    _, stderr = jumps.communicate(timeout=300)
    assert jumps.returncode == 0, stderr
    written = read_results(out)
    assert written.jumps is not None and written.jump_settings["method"]
    still_tracking = tracking.poll() is None
    _, stderr = tracking.communicate(timeout=300)
    assert tracking.returncode == 0, stderr
    final = read_results(out)
    assert len(final.steps) == 37
    pd.testing.assert_frame_equal(final.jumps, written.jumps)
    pd.testing.assert_frame_equal(final.transitions, written.transitions)
    assert final.jump_settings == written.jump_settings
    assert still_tracking, "track ended before jumps wrote; the test did not overlap them"
