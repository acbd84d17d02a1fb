"""Format version 2: rows appended in place, committed by a count written last; version-1
files read and upgraded; `kill -9` at any moment of a stream of commits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from ndt.errors import ResultsFormatError
from ndt.io.checkpoints import Checkpoint
from ndt.io.store import (
    FORMAT_VERSION,
    Provenance,
    Results,
    append_rows,
    read_results,
    write_results,
)
from ndt.replay.run_table import RunTable

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ["a", "b", "c"]
PROVENANCE = Provenance(
    model="mlp", probe_sha256="ab" * 32, metrics=("m1", "m2"), layers=("a", "b", "c")
)


def row(step: int) -> np.ndarray:
    """The values of a step, shape (n_metrics, n_layers): a function of the step alone."""
    return np.array([[step + 0.25 * j for j in range(3)], [-step - 0.5 * j for j in range(3)]])


def table(steps) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "step": np.asarray(steps, dtype=np.int64),
            "file": [f"ckpt/step_{s}.safetensors" for s in steps],
            "size": np.asarray(steps, dtype=np.int64) * 10,
            "mtime": np.asarray(steps, dtype=np.float64) / 2,
            "sha256": ["ef" * 32 for _ in steps],
        }
    )


def results(steps) -> Results:
    rows = np.stack([row(s) for s in steps], axis=1) if len(steps) else np.empty((2, 0, 3))
    return Results(
        steps=np.asarray(steps, dtype=np.int64), layers=LAYERS,
        metrics={"m1": rows[0], "m2": rows[1]}, checkpoints=table(steps), provenance=PROVENANCE,
    )  # fmt: skip


def append(path, steps) -> bool:
    stacked = np.stack([row(s) for s in steps], axis=1)
    return append_rows(path, steps, {"m1": stacked[0], "m2": stacked[1]}, table(steps))


def assert_rows_of(read: Results, steps) -> None:
    assert read.steps.tolist() == sorted(steps)
    for index, step in enumerate(read.steps):
        np.testing.assert_array_equal(read.metrics["m1"][index], row(int(step))[0])
        np.testing.assert_array_equal(read.metrics["m2"][index], row(int(step))[1])
    assert read.checkpoints["step"].tolist() == sorted(steps)
    assert read.checkpoints["file"].tolist() == [
        f"ckpt/step_{s}.safetensors" for s in sorted(steps)
    ]
    assert read.checkpoints["size"].tolist() == [10 * s for s in sorted(steps)]


def test_append_fills_spare_rows_in_place_and_commits_them(tmp_path):
    path = tmp_path / "r.h5"
    write_results(path, results([0, 10]), spare_rows=3)
    inode = path.stat().st_ino
    assert append(path, [30]) and append(path, [20, 40])
    assert path.stat().st_ino == inode  # appended, not replaced
    assert_rows_of(read_results(path), [0, 10, 20, 30, 40])
    assert not append(path, [50])  # no room: the caller rewrites
    assert_rows_of(read_results(path), [0, 10, 20, 30, 40])
    with h5py.File(path, "r") as f:
        assert f.attrs["format_version"] == FORMAT_VERSION == 2
        assert f.attrs["n_rows"] == 5 and f["steps"].shape == (5,)
        assert f["metrics/m1"].maxshape == (None, 3) and f["metrics/m1"].chunks is not None


def test_rows_past_the_count_are_ignored_and_a_step_twice_keeps_its_last_row(tmp_path):
    path = tmp_path / "r.h5"
    write_results(path, results([0, 10]), spare_rows=4)
    with h5py.File(path, "r+") as f:  # an append killed before its count was written
        f["steps"][2] = 99
        f["metrics/m1"][2] = 7.0
    assert_rows_of(read_results(path), [0, 10])
    stacked = np.stack([row(10) + 1], axis=1)
    assert append_rows(path, [10], {"m1": stacked[0], "m2": stacked[1]}, table([10]))
    read = read_results(path)
    assert read.steps.tolist() == [0, 10]
    np.testing.assert_array_equal(read.metrics["m1"][1], row(10)[0] + 1)


def test_append_refuses_what_does_not_fit(tmp_path):
    path = tmp_path / "r.h5"
    write_results(path, results([0]), spare_rows=4)
    stacked = np.stack([row(5)], axis=1)
    assert not append_rows(path, [5], {"m1": stacked[0]}, table([5]))  # a metric missing
    long_name = table([5]).assign(file="x" * 300)
    assert not append_rows(path, [5], {"m1": stacked[0], "m2": stacked[1]}, long_name)
    assert not append_rows(tmp_path / "none.h5", [5], {"m1": stacked[0]}, table([5]))
    assert_rows_of(read_results(path), [0])


def test_a_count_beyond_the_rows_is_an_error(tmp_path):
    path = tmp_path / "r.h5"
    write_results(path, results([0]))
    with h5py.File(path, "r+") as f:
        f.attrs["n_rows"] = 5
    with pytest.raises(
        ResultsFormatError, match="attribute n_rows is .*5.*, expected an integer in 0..1"
    ):
        read_results(path)


def write_version_1(path: Path, source: Results) -> None:
    """A file as ndt 0.2 wrote it (format version 1), with plain h5py."""
    string = h5py.string_dtype("utf-8")
    with h5py.File(path, "w") as f:
        f.attrs.update(format_version=1, kind="ndt-results", ndt_version="0.2.0", created="x")
        f["steps"] = source.steps
        f.create_dataset("layers", data=np.asarray(source.layers, dtype=object), dtype=string)
        f.create_group("metrics").attrs["order"] = json.dumps(list(source.metrics))
        for name, values in source.metrics.items():
            f["metrics"][name] = values
        group = f.create_group("checkpoints")
        group.attrs["columns"] = json.dumps(list(source.checkpoints.columns))
        for column in source.checkpoints.columns:
            values = source.checkpoints[column].to_numpy()
            if values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
                group.create_dataset(column, data=np.asarray(values, dtype=object), dtype=string)
            else:
                group[column] = values
        f.create_group("provenance").attrs.update(
            model="mlp", model_kwargs="{}", probe_sha256="ab" * 32, center=True,
            dormant_tau=0.0, metrics=json.dumps(["m1", "m2"]), layers=json.dumps(LAYERS),
        )  # fmt: skip
        f.create_group("metadata").attrs["note"] = "old"


def test_version_1_is_read_and_upgraded_by_the_next_write(tmp_path):
    path = tmp_path / "r.h5"
    write_version_1(path, results([0, 10]))
    old = read_results(path)
    assert_rows_of(old, [0, 10])
    assert old.provenance == Provenance(
        **{**PROVENANCE.__dict__, "ndt_version": old.provenance.ndt_version}
    )
    assert not append(path, [20])  # version 1 cannot take rows in place
    dummy = tmp_path / "step_20.safetensors"
    dummy.write_bytes(b"x" * 200)
    run = RunTable.start(path, PROVENANCE, overwrite=False, wait=0)
    run.add(Checkpoint(20, dummy, (dummy,)), "ckpt/step_20.safetensors", row(20), "ef" * 32)
    run.write()
    with h5py.File(path, "r") as f:
        assert f.attrs["format_version"] == 2 and f.attrs["n_rows"] == 3
    new = read_results(path)
    assert new.steps.tolist() == [0, 10, 20] and new.metadata == {"note": "old"}
    np.testing.assert_array_equal(new.metrics["m2"], np.stack([row(s)[1] for s in (0, 10, 20)]))


_WRITER = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from test_store_append import PROVENANCE, row
from ndt.io.checkpoints import Checkpoint
from ndt.replay.run_table import RunTable
path = Path(sys.argv[1])
dummy = path.with_name("ckpt.bin")
dummy.write_bytes(b"x")
table = RunTable.start(path, PROVENANCE, overwrite=False, wait=10)
step = max(table.rows, default=-1) + 1
print("started", flush=True)
while True:
    table.add(Checkpoint(step, dummy, (dummy,)), f"ckpt/step_{step}.safetensors", row(step), "")
    table.write()
    step += 1
"""


@pytest.mark.skipif(os.name != "posix", reason="needs POSIX signals")
def test_kill_minus_nine_during_commits_leaves_every_committed_row(tmp_path):
    """A writer commits one row after another (appends, and a rewrite each time the spare
    rows run out); it is killed at random moments and restarted on the same file."""
    path = tmp_path / "r.h5"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rng = np.random.default_rng(0)
    seen = 0
    for _trial in range(8):
        writer = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path), str(Path(__file__).parent)],
            stdout=subprocess.PIPE, env=env, text=True,
        )  # fmt: skip
        assert writer.stdout.readline().strip() == "started"
        time.sleep(rng.uniform(0.05, 0.6))
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        read = read_results(path)  # readable, whatever the moment of the kill
        steps = read.steps.tolist()
        assert steps == list(range(len(steps))) and len(steps) >= seen  # a prefix, none lost
        for index, step in enumerate(steps):
            np.testing.assert_array_equal(read.metrics["m1"][index], row(step)[0])
            np.testing.assert_array_equal(read.metrics["m2"][index], row(step)[1])
        assert read.checkpoints["file"].tolist() == [f"ckpt/step_{s}.safetensors" for s in steps]
        seen = len(steps)
    assert seen > 20  # the trials did commit rows, across several rewrites
