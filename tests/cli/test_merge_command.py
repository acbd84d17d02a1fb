"""`ndt track --shard I/N` on each shard, then `ndt merge`, equals one sequential run."""

from __future__ import annotations

import json

import numpy as np
from conftest import assert_one_error

from ndt.io.store import read_results


def test_shards_merged_equal_a_sequential_run(ndt, tiny_run, tmp_path):
    ckpts = tiny_run / "ckpts"
    assert ndt("track", ckpts, "-o", tmp_path / "seq.h5", "-q").exit_code == 0
    for index in (0, 1):
        result = ndt("track", ckpts, "-o", tmp_path / f"s{index}.h5", "-q", "--shard", f"{index}/2")
        assert result.exit_code == 0, result.output
    assert read_results(tmp_path / "s0.h5").steps.tolist() == [0, 20, 40]
    assert read_results(tmp_path / "s1.h5").steps.tolist() == [10, 30]
    result = ndt("merge", tmp_path / "s1.h5", tmp_path / "s0.h5", "-o", tmp_path / "all.h5")
    assert result.exit_code == 0, result.output
    assert "Merged 2 files" in result.stderr and result.stdout == ""
    seq, merged = read_results(tmp_path / "seq.h5"), read_results(tmp_path / "all.h5")
    np.testing.assert_array_equal(merged.steps, seq.steps)
    assert merged.layers == seq.layers and list(merged.metrics) == list(seq.metrics)
    for name in seq.metrics:
        np.testing.assert_array_equal(merged.metrics[name], seq.metrics[name])  # bit for bit
    columns = ["step", "file", "size", "sha256"]
    assert merged.checkpoints[columns].equals(seq.checkpoints[columns])
    assert merged.provenance.comparable() == seq.provenance.comparable()


def test_merge_refusal_is_one_error_line(ndt, tiny_run, tmp_path):
    ckpts = tiny_run / "ckpts"
    ndt("track", ckpts, "-o", tmp_path / "a.h5", "-q", "--shard", "0/2")
    ndt("track", ckpts, "-o", tmp_path / "b.h5", "-q", "--shard", "1/2", "--no-center")
    result = ndt("merge", tmp_path / "a.h5", tmp_path / "b.h5", "-o", tmp_path / "all.h5")
    assert_one_error(result, "center differs (False in")
    assert str(tmp_path / "b.h5") in result.stderr and str(tmp_path / "a.h5") in result.stderr


def test_bad_shard_is_one_error_line(ndt, tiny_run, tmp_path):
    result = ndt("track", tiny_run / "ckpts", "-o", tmp_path / "r.h5", "--shard", "2/2")
    assert_one_error(result, "--shard 2/2")


def test_dry_run_lists_the_shard(ndt, tiny_run, tmp_path):
    result = ndt("track", tiny_run / "ckpts", "--dry-run", "--json", "--shard", "1/2")
    assert result.exit_code == 0, result.output
    assert [row["step"] for row in json.loads(result.stdout)["checkpoints"]] == [10, 30]
