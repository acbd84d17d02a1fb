"""Crash trials: `kill -9` at random moments of `ndt track` and of `ndt jumps`' write, each
followed by a rerun whose results equal those of an uninterrupted run (20 trials).

Half of the kills land at a uniformly random time of the whole command (start-up
included); the other half shortly after a temporary results file appears, i.e. inside a
write, the moment that could tear the file. The trials are seeded (TRIALS_SEED), so a
failure names its trial and moment and can be replayed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ndt.io.store import read_results
from tests.fuzz.conftest import build_tiny_run, record

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.name != "posix", reason="needs POSIX signals"),
]

TRIALS_SEED = 13
N_TRACK, N_JUMPS = 12, 8
ENTRY = "from ndt_cli.main import main; main()"


def _command(*args: object) -> list[str]:
    return [sys.executable, "-c", ENTRY, *map(str, args)]


def _env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else "")}


def _run(*args: object) -> subprocess.CompletedProcess:
    done = subprocess.run(_command(*args), capture_output=True, text=True, env=_env())
    assert done.returncode == 0, done.stderr
    return done


def _kill(args: list, out: Path, at: float, in_write: bool) -> tuple[float, int]:
    """Start the command, SIGKILL it `at` seconds in (or `at` seconds after a temporary
    file of `out` appears); return when it died (seconds since the start) and its exit
    status (-9 when the kill ended it, 0 when it had finished first)."""
    started = time.monotonic()
    process = subprocess.Popen(
        _command(*args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env()
    )
    if in_write:
        prefix = f".{out.name}."
        while process.poll() is None and not any(
            name.startswith(prefix) for name in os.listdir(out.parent)
        ):
            time.sleep(0.0005)
    time.sleep(at)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return time.monotonic() - started, process.returncode


def _same(a, b, where: str) -> None:
    np.testing.assert_array_equal(a.steps, b.steps, err_msg=where)
    assert a.layers == b.layers, where
    assert sorted(a.metrics) == sorted(b.metrics), where
    for name in a.metrics:
        np.testing.assert_array_equal(a.metrics[name], b.metrics[name], err_msg=where)


def _same_jumps(a, b, where: str) -> None:
    columns = ["layer", "metric", "step", "prev_step", "p_value", "q_value", "significant"]
    assert a.jumps is not None and b.jumps is not None, where
    assert a.jumps[columns].equals(b.jumps[columns]), where


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return build_tiny_run(tmp_path_factory.mktemp("crash"), n_checkpoints=16)


def test_kill_9_during_track_then_rerun_equals_an_uninterrupted_run(run_dir, tmp_path):
    rng = np.random.default_rng(TRIALS_SEED)
    reference = tmp_path / "reference.h5"
    started = time.monotonic()
    _run("track", run_dir / "ckpts", "--out", reference, "-q")
    duration = time.monotonic() - started
    expected = read_results(reference)
    for trial in range(N_TRACK):
        out = tmp_path / f"trial{trial}" / "r.h5"
        out.parent.mkdir()
        in_write = trial % 2 == 1
        at = rng.uniform(0, 0.02) if in_write else rng.uniform(0, duration)
        args = ["track", run_dir / "ckpts", "--out", out, "-q"]
        died, status = _kill(args, out, at, in_write)
        where = (
            f"trial {trial}: killed {'in a write' if in_write else 'at'} +{at:.4f}s ({died:.2f}s)"
        )
        if out.exists():  # whatever the moment, what is there is a complete file
            partial = read_results(out)
            assert set(partial.steps) <= set(expected.steps), where
        _run("track", run_dir / "ckpts", "--out", out, "-q")
        _same(read_results(out), expected, where)
        record(status)


def test_kill_9_during_jumps_write_then_rerun_equals_an_uninterrupted_run(run_dir, tmp_path):
    rng = np.random.default_rng(TRIALS_SEED + 1)
    tracked = tmp_path / "tracked.h5"
    _run("track", run_dir / "ckpts", "--out", tracked, "-q")
    reference = tmp_path / "reference.h5"
    reference.write_bytes(tracked.read_bytes())
    started = time.monotonic()
    _run("jumps", reference, "--all")
    duration = time.monotonic() - started
    expected = read_results(reference)
    for trial in range(N_JUMPS):
        out = tmp_path / f"trial{trial}" / "r.h5"
        out.parent.mkdir()
        out.write_bytes(tracked.read_bytes())
        in_write = trial % 2 == 1
        at = rng.uniform(0, 0.01) if in_write else rng.uniform(0, duration)
        died, status = _kill(["jumps", out, "--all"], out, at, in_write)
        where = (
            f"trial {trial}: killed {'in a write' if in_write else 'at'} +{at:.4f}s ({died:.2f}s)"
        )
        after = read_results(out)  # the old file or the new one, never a torn one
        if out.read_bytes() != tracked.read_bytes():
            _same_jumps(after, expected, where)
        _same(after, expected, where)
        _run("jumps", out, "--all")
        again = read_results(out)
        _same(again, expected, where)
        _same_jumps(again, expected, where)
        record(status)


N_INTERRUPTS = 8


def test_ctrl_c_at_random_moments_is_one_line_and_exit_130(run_dir, tmp_path):
    """SIGINT from 0.05 s in (imports included) to the end of `ndt track`: `Interrupted.`
    and exit code 130 (or a normal exit when the run was already done), never a traceback,
    a complete file, and a rerun equal to an uninterrupted run."""
    rng = np.random.default_rng(TRIALS_SEED + 2)
    started = time.monotonic()
    _run("track", run_dir / "ckpts", "--out", tmp_path / "reference.h5", "-q")
    duration = time.monotonic() - started
    expected = read_results(tmp_path / "reference.h5")
    for trial in range(N_INTERRUPTS):
        out = tmp_path / f"trial{trial}.h5"
        at = rng.uniform(0.05, 0.5) if trial < 3 else rng.uniform(0.05, duration)
        process = subprocess.Popen(
            _command("track", run_dir / "ckpts", "--out", out, "-q"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
        )  # fmt: skip
        time.sleep(at)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate()
        where = f"trial {trial}: SIGINT at +{at:.3f}s: {stderr}"
        assert "Traceback" not in stderr, where
        assert process.returncode in (0, 130, -signal.SIGINT), where
        said = stderr.strip().splitlines()[-1:] == ["Interrupted."]
        if process.returncode == -signal.SIGINT:
            # Python's own exit: once the command has returned, finalisation restores the
            # default handler and the signal ends the process (a shell shows exit 130).
            # Only a finished run gets there: its results are complete.
            assert stderr == "", where
            _same(read_results(out), expected, where)
        if process.returncode == 130:
            assert said, where
        record(process.returncode)
        if out.exists():
            assert set(read_results(out).steps) <= set(expected.steps), where
        _run("track", run_dir / "ckpts", "--out", out, "-q")
        _same(read_results(out), expected, where)
