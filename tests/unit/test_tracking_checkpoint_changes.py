"""Each checkpoint's size, mtime and sha256 are recorded; a checkpoint replaced under the
same step is computed again on the next run; old files without sha256 still work."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest
import torch

from ndt.errors import CheckpointError
from ndt.io.checkpoints import save_checkpoint
from ndt.io.manifest import read_manifest
from ndt.io.store import read_results, write_results
from ndt.models.spec import build_model
from ndt.replay.track import track


def test_size_mtime_and_sha256_are_recorded(tiny_run, tmp_path):
    track(tiny_run / "ckpts", out=tmp_path / "r.h5")
    table = read_results(tmp_path / "r.h5").checkpoints
    for row in table.itertuples(index=False):
        path = tiny_run / "ckpts" / row.file
        assert row.size == path.stat().st_size
        assert row.mtime == path.stat().st_mtime
        assert row.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def _replace_step(ckpts, step):
    torch.manual_seed(123)
    model = build_model(read_manifest(ckpts).model)
    save_checkpoint(model, ckpts, step)


def test_a_replaced_checkpoint_is_computed_again(tiny_run, tmp_path):
    ckpts = tiny_run / "ckpts"
    out = tmp_path / "r.h5"
    track(ckpts, out=out)
    old = read_results(out)
    _replace_step(ckpts, 20)
    report = track(ckpts, out=out)
    assert report.changed == [(20, "step_00000020.safetensors")]
    assert report.computed == [20] and report.skipped == [0, 10, 30, 40]
    new = read_results(out)
    fresh = track(ckpts, out=tmp_path / "fresh.h5").results
    row = list(new.steps).index(20)
    for name, values in new.metrics.items():
        np.testing.assert_array_equal(values, fresh.metrics[name], err_msg=name)
    assert not np.allclose(new.metrics["stable_rank"][row], old.metrics["stable_rank"][row])
    again = track(ckpts, out=out)
    assert again.changed == [] and again.computed == []


def test_a_touched_checkpoint_with_the_same_bytes_is_not_recomputed(tiny_run, tmp_path):
    ckpts = tiny_run / "ckpts"
    track(ckpts, out=tmp_path / "r.h5")
    path = ckpts / "step_00000010.safetensors"
    os.utime(path, (path.stat().st_atime + 100, path.stat().st_mtime + 100))
    report = track(ckpts, out=tmp_path / "r.h5")
    assert report.changed == [] and report.computed == []


def test_a_file_without_sha256_reads_and_reruns(tiny_run, tmp_path):
    ckpts = tiny_run / "ckpts"
    out = tmp_path / "r.h5"
    track(ckpts, out=out)
    legacy = read_results(out)
    legacy.checkpoints = legacy.checkpoints.drop(columns=["sha256"])
    write_results(out, legacy)
    assert "sha256" not in read_results(out).checkpoints.columns
    assert track(ckpts, out=out).computed == []
    _replace_step(ckpts, 30)
    assert track(ckpts, out=out).computed == [30]  # size or mtime tell without a hash


def test_steps_that_select_nothing_are_an_error_and_write_nothing(tiny_run, tmp_path):
    with pytest.raises(CheckpointError, match=r"--steps 50:60 selects no checkpoint; .* has "
                       r"steps 0\.\.40 \(5 checkpoints\)"):  # fmt: skip
        track(tiny_run / "ckpts", out=tmp_path / "r.h5", steps=(50, 60))
    assert not (tmp_path / "r.h5").exists() and not (tmp_path / "r.h5.lock").exists()
