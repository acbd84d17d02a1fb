"""The results file: round trip, tidy table, plain-h5py readability, version checks."""

from __future__ import annotations

import errno

import h5py
import numpy as np
import pandas as pd
import pytest

from ndt.errors import ResultsFormatError
from ndt.io.store import (
    FORMAT_VERSION,
    Provenance,
    Results,
    load_results,
    read_results,
    write_jumps,
    write_results,
)


def sample_results() -> Results:
    steps = np.array([0, 10, 30])
    return Results(
        steps=steps,
        layers=["blocks.0", "head"],
        metrics={
            "stable_rank": np.arange(6, dtype=float).reshape(3, 2),
            "participation_ratio": np.full((3, 2), np.nan),
        },
        checkpoints=pd.DataFrame(
            {"step": steps, "file": ["a", "b", "c"], "size": [1, 2, 3], "mtime": [0.5, 1.5, 2.5]}
        ),
        provenance=Provenance(
            model="mlp",
            probe_sha256="ab" * 32,
            metrics=("stable_rank", "participation_ratio"),
            layers=("blocks.0", "head"),
        ),
        metadata={"dataset": "digits"},
    )


def test_round_trip(tmp_path):
    path = tmp_path / "r.h5"
    write_results(path, sample_results())
    back = read_results(path)
    np.testing.assert_array_equal(back.steps, [0, 10, 30])
    assert back.layers == ["blocks.0", "head"]
    assert list(back.metrics) == ["stable_rank", "participation_ratio"]  # order kept
    np.testing.assert_array_equal(back.metrics["stable_rank"], np.arange(6).reshape(3, 2))
    assert back.provenance == sample_results().provenance
    assert back.checkpoints["file"].tolist() == ["a", "b", "c"]
    assert back.metadata == {"dataset": "digits"}
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind


def test_tidy_frame(tmp_path):
    write_results(tmp_path / "r.h5", sample_results())
    frame = load_results(tmp_path / "r.h5")
    assert list(frame.columns) == ["step", "layer", "stable_rank", "participation_ratio"]
    assert frame.loc[(frame.step == 10) & (frame.layer == "head"), "stable_rank"].item() == 3.0
    assert len(frame) == 6


def test_readable_with_plain_h5py(tmp_path):
    write_results(tmp_path / "r.h5", sample_results())
    with h5py.File(tmp_path / "r.h5", "r") as f:
        assert f.attrs["format_version"] == FORMAT_VERSION
        assert f["metrics/stable_rank"].shape == (3, 2)
        assert list(f["layers"].asstr()[()]) == ["blocks.0", "head"]


def test_jumps_table_round_trip(tmp_path):
    path = tmp_path / "r.h5"
    write_results(path, sample_results())
    jumps = pd.DataFrame(
        {
            "layer": ["head"],
            "metric": ["stable_rank"],
            "step": [10],
            "p_value": [0.01],
            "significant": [True],
        }
    )
    write_jumps(path, jumps, {"method": "pelt", "fdr": 0.05})
    back = read_results(path)
    pd.testing.assert_frame_equal(back.jumps, jumps)
    assert back.jump_settings == {"method": "pelt", "fdr": 0.05}
    np.testing.assert_array_equal(
        back.metrics["stable_rank"], sample_results().metrics["stable_rank"]
    )


def test_transitions_round_trip_under_jumps(tmp_path):
    path = tmp_path / "r.h5"
    write_results(path, sample_results())
    jumps = pd.DataFrame({"layer": ["head"], "step": [10], "significant": [True]})
    transitions = pd.DataFrame(
        {"rank": [1], "prev_step": [0], "step": [10], "peak_prev_step": [0], "peak_step": [10],
         "p_value": [1e-9], "p_adjusted": [1e-8], "n_curves": [1], "layers": ["head"],
         "metrics": ["stable_rank"], "strongest": ["head stable_rank 1→2"]}
    )  # fmt: skip
    write_jumps(path, jumps, {"method": "local"}, transitions)
    back = read_results(path)
    pd.testing.assert_frame_equal(back.transitions, transitions)
    pd.testing.assert_frame_equal(back.jumps, jumps)
    with h5py.File(path, "r") as f:  # where docs/results-format.md puts it
        assert list(f["jumps/transitions"].attrs["columns"].__str__().split('"')[1::2]) == list(
            transitions.columns
        )
    # Files written before transitions existed read with transitions None.
    write_jumps(path, jumps, {"method": "pelt"})
    assert read_results(path).transitions is None


def test_errors(tmp_path):
    with pytest.raises(ResultsFormatError, match="does not exist; run `ndt track` first"):
        read_results(tmp_path / "none.h5")
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(ResultsFormatError, match="is not an HDF5 file"):
        read_results(tmp_path / "text.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(ResultsFormatError, match="not an ndt results file"):
        read_results(tmp_path / "other.h5")
    write_results(tmp_path / "new.h5", sample_results())
    with h5py.File(tmp_path / "new.h5", "a") as f:
        f.attrs["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(
        ResultsFormatError,
        match=f"has format version {FORMAT_VERSION + 1}; this ndt reads up to {FORMAT_VERSION} \\(upgrade ndt\\)",
    ):
        read_results(tmp_path / "new.h5")


def test_failed_write_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "r.h5"
    write_results(path, sample_results())
    broken = sample_results()
    broken.metrics["bad"] = object()  # cannot be written
    with pytest.raises(TypeError):
        write_results(path, broken)
    assert read_results(path).layers == ["blocks.0", "head"]
    assert not list(tmp_path.glob(".*tmp"))


def test_a_full_disk_in_hdf5_is_an_os_error_naming_the_results_file(tmp_path, monkeypatch):
    """h5py reports a failed flush as a RuntimeError with the errno in its text."""
    path = tmp_path / "r.h5"
    results = Results(steps=np.array([1, 2]), layers=["a"], metrics={"m": np.ones((2, 1))})
    write_results(path, results)
    before = path.read_bytes()

    def full(self):
        raise RuntimeError(
            "Unable to flush file (file write failed: errno = 28, error message = 'No space "
            "left on device')"
        )

    monkeypatch.setattr(h5py.File, "flush", full)
    with pytest.raises(OSError) as caught:
        write_results(path, results)
    assert caught.value.errno == errno.ENOSPC
    assert caught.value.filename == str(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".lock") == ["r.h5"]


def test_a_transitions_table_missing_a_column_is_refused_by_name(tmp_path):
    path = tmp_path / "r.h5"
    write_results(path, sample_results())
    partial = pd.DataFrame({"rank": [1], "prev_step": [0], "step": [10]})
    write_jumps(path, pd.DataFrame({"layer": ["head"], "step": [10]}), {}, partial)
    with pytest.raises(ResultsFormatError, match="/jumps/transitions lacks column peak_prev_step"):
        read_results(path)
