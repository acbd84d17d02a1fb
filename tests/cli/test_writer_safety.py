"""The command-line side of safe writing: a held lock is one `Error:` line with the pid, a
changed checkpoint is a note, `--steps` that selects nothing is an error, a symlinked --out
stays a symlink."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from conftest import assert_one_error

from ndt.io.checkpoints import save_checkpoint
from ndt.io.manifest import read_manifest
from ndt.io.store import Results, read_results, write_results
from ndt.models.spec import build_model


def _curves(path: Path) -> None:
    """A results file with 20 steps of a curve that jumps at step 10."""
    rng = np.random.default_rng(0)
    values = np.r_[np.full(10, 5.0), np.full(10, 2.0)] + 0.01 * rng.standard_normal(20)
    write_results(path, Results(np.arange(20), ["fc1"], {"stable_rank": values[:, None]}))


def test_a_held_lock_refuses_jumps_and_track_with_the_pid(ndt, tiny_run, tmp_path, hold_lock):
    out = tmp_path / "results.h5"
    _curves(out)
    before = out.read_bytes()
    holder = hold_lock(out)
    try:
        expected = (
            f"Error: {out} is being written by another ndt process (pid {holder.pid}); "
            "wait for it or pass --wait SECONDS"
        )
        result = ndt("jumps", out)
        assert_one_error(result, "is being written by another ndt process")
        assert result.stderr.strip().splitlines()[-1] == expected
        track = ndt("track", tiny_run / "ckpts", "-o", out, "--overwrite")
        assert_one_error(track, expected[len("Error: ") :])
        assert ndt("jumps", out, "--no-write").exit_code == 0  # reading needs no lock
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert out.read_bytes() == before
    assert ndt("jumps", out, "--wait", "5").exit_code == 0
    assert read_results(out).jumps is not None


def test_a_negative_wait_is_a_usage_error(ndt, tmp_path):
    result = ndt("jumps", tmp_path / "r.h5", "--wait", "-1")
    assert result.exit_code == 2


def test_a_changed_checkpoint_is_noted_and_recomputed(ndt, tiny_run, tmp_path):
    ckpts = tiny_run / "ckpts"
    out = tmp_path / "r.h5"
    assert ndt("track", ckpts, "-o", out, "-q").exit_code == 0
    torch.manual_seed(5)
    save_checkpoint(build_model(read_manifest(ckpts).model), ckpts, 30)
    result = ndt("track", ckpts, "-o", out, "--json")
    assert result.exit_code == 0, result.stderr
    assert (
        "Note: step_00000030.safetensors changed since it was tracked; step 30 was computed "
        "again." in result.stderr
    )
    assert '"computed": [\n    30\n  ]' in result.stdout


def test_steps_selecting_nothing_is_one_error_and_no_file(ndt, tiny_run, tmp_path):
    out = tmp_path / "r.h5"
    assert_one_error(ndt("track", tiny_run / "ckpts", "-o", out, "--steps", "5:1"),
                     "--steps 5:1 is empty: START 5 is after STOP 1")  # fmt: skip
    assert_one_error(ndt("track", tiny_run / "ckpts", "-o", out, "--steps", "100:"),
                     "--steps 100: selects no checkpoint")  # fmt: skip
    assert not out.exists() and not list(tmp_path.glob("r.h5*"))


def test_a_symlinked_out_stays_a_symlink(ndt, tiny_run, tmp_path):
    (tmp_path / "data").mkdir()
    link = tmp_path / "results.h5"
    link.symlink_to(tmp_path / "data" / "real.h5")  # dangling until the first write
    assert ndt("track", tiny_run / "ckpts", "-o", link, "-q", "--steps", ":10").exit_code == 0
    assert ndt("track", tiny_run / "ckpts", "-o", link, "-q").exit_code == 0
    assert link.is_symlink() and os.readlink(link) == str(tmp_path / "data" / "real.h5")
    assert list(read_results(tmp_path / "data" / "real.h5").steps) == [0, 10, 20, 30, 40]
