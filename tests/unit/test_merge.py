"""Merging results files: steps joined in order, and every refusal."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from ndt.errors import ConfigMismatchError, NdtError
from ndt.io.merge import merge_results
from ndt.io.store import Provenance, Results, read_results, write_results
from ndt.replay.shards import parse_shard, select_shard

LAYERS = ("fc1", "fc2", "head")
METRICS = ("stable_rank", "participation_ratio")
PROVENANCE = Provenance(
    model="mlp", model_kwargs='{"hidden": [16]}', probe_sha256="ab" * 32, metrics=METRICS,
    layers=LAYERS,
)  # fmt: skip


def values(step: int) -> np.ndarray:
    """Per-step values, shape (n_metrics, n_layers), different for every step."""
    rng = np.random.default_rng(step)
    return rng.normal(size=(len(METRICS), len(LAYERS)))


def shard_file(path, steps, provenance=PROVENANCE, value=values) -> None:
    rows = np.stack([value(s) for s in steps], axis=1) if steps else np.empty((2, 0, 3))
    write_results(
        path,
        Results(
            steps=np.asarray(steps, dtype=np.int64),
            layers=list(provenance.layers if provenance is not None else LAYERS),
            metrics={m: rows[i] for i, m in enumerate(METRICS)},
            checkpoints=pd.DataFrame(
                {
                    "step": np.asarray(steps, dtype=np.int64),
                    "file": [f"step_{s}.safetensors" for s in steps],
                    "size": np.full(len(steps), 10, dtype=np.int64),
                    "mtime": np.full(len(steps), 1.5),
                    "sha256": ["cd" * 32] * len(steps),
                }
            ),
            provenance=provenance,
        ),
    )


def test_merge_interleaves_steps_in_order(tmp_path):
    shard_file(tmp_path / "a.h5", [0, 20, 40])
    shard_file(tmp_path / "b.h5", [10, 30])
    merge_results([tmp_path / "b.h5", tmp_path / "a.h5"], tmp_path / "all.h5")
    merged = read_results(tmp_path / "all.h5")
    assert merged.steps.tolist() == [0, 10, 20, 30, 40]
    for index, step in enumerate(merged.steps):
        for m, name in enumerate(METRICS):
            np.testing.assert_array_equal(merged.metrics[name][index], values(int(step))[m])
    assert merged.checkpoints["file"].tolist() == [
        f"step_{s}.safetensors" for s in (0, 10, 20, 30, 40)
    ]
    assert merged.provenance == PROVENANCE


def test_merge_accepts_a_step_present_twice_with_equal_values_nan_included(tmp_path):
    def with_nan(step):
        v = values(step)
        v[0, 1] = np.nan
        return v

    shard_file(tmp_path / "a.h5", [0, 10], value=with_nan)
    shard_file(tmp_path / "b.h5", [10, 20], value=with_nan)
    merge_results([tmp_path / "a.h5", tmp_path / "b.h5"], tmp_path / "a.h5")  # into an input
    assert read_results(tmp_path / "a.h5").steps.tolist() == [0, 10, 20]


@pytest.mark.parametrize(
    "change",
    [
        {"model": "cnn"},
        {"model_kwargs": '{"hidden": [32]}'},
        {"probe_sha256": "ef" * 32},
        {"center": False},
        {"dormant_tau": 0.1},
        {"metrics": ("participation_ratio", "stable_rank")},
        {"layers": ("fc1", "fc2", "out")},
        {"dtype": "bfloat16"},
        {"tokens": "last"},
    ],
    ids=lambda change: next(iter(change)),
)
def test_merge_refuses_another_provenance(tmp_path, change):
    shard_file(tmp_path / "a.h5", [0])
    shard_file(tmp_path / "b.h5", [10], provenance=dataclasses.replace(PROVENANCE, **change))
    key = next(iter(change))
    with pytest.raises(ConfigMismatchError, match=rf"b\.h5 with .*a\.h5: {key} differs"):
        merge_results([tmp_path / "a.h5", tmp_path / "b.h5"], tmp_path / "all.h5")
    assert not (tmp_path / "all.h5").exists()


def test_merge_ignores_where_the_shards_ran(tmp_path):
    shard_file(tmp_path / "a.h5", [0])
    elsewhere = dataclasses.replace(PROVENANCE, checkpoint_dir="/scratch/x", device="cuda:1")
    shard_file(tmp_path / "b.h5", [10], provenance=elsewhere)
    merge_results([tmp_path / "a.h5", tmp_path / "b.h5"], tmp_path / "all.h5")
    assert read_results(tmp_path / "all.h5").steps.tolist() == [0, 10]


def test_merge_refuses_a_step_with_different_values(tmp_path):
    shard_file(tmp_path / "a.h5", [0, 10])
    shard_file(
        tmp_path / "b.h5",
        [10, 20],
        value=lambda s: values(s) + (s == 10) * np.array([[0], [1e-12]]),
    )
    with pytest.raises(
        ConfigMismatchError, match="step 10 is in both with different participation_ratio"
    ):
        merge_results([tmp_path / "a.h5", tmp_path / "b.h5"], tmp_path / "all.h5")


def test_merge_refuses_a_file_without_provenance(tmp_path):
    shard_file(tmp_path / "a.h5", [0])
    shard_file(tmp_path / "b.h5", [10], provenance=None)
    with pytest.raises(ConfigMismatchError, match="b.h5 has no provenance"):
        merge_results([tmp_path / "a.h5", tmp_path / "b.h5"], tmp_path / "all.h5")


def test_merge_does_not_replace_an_unrelated_file(tmp_path):
    shard_file(tmp_path / "a.h5", [0])
    (tmp_path / "all.h5").write_text("precious")
    with pytest.raises(NdtError, match="all.h5 exists; pass --overwrite"):
        merge_results([tmp_path / "a.h5"], tmp_path / "all.h5")
    merge_results([tmp_path / "a.h5"], tmp_path / "all.h5", overwrite=True)
    assert read_results(tmp_path / "all.h5").steps.tolist() == [0]


def test_shards_partition_the_positions():
    items = list(range(100, 111))
    shards = [select_shard(items, (i, 3)) for i in range(3)]
    assert shards[0] == [100, 103, 106, 109] and shards[2] == [102, 105, 108]
    assert sorted(x for s in shards for x in s) == items
    assert select_shard(items, None) == items


@pytest.mark.parametrize("text", ["2/2", "1", "a/b", "-1/2", "0/0", "1/2/3"])
def test_parse_shard_refuses(text):
    with pytest.raises(NdtError, match="--shard"):
        parse_shard(text)


def test_parse_shard():
    assert parse_shard("3/8") == (3, 8) and parse_shard("0/1") == (0, 1)
