"""Export: tracker frames -> results file / tidy CSV, and a results file -> CSV / JSON."""

from __future__ import annotations

import json
import logging

import h5py
import numpy as np
import pandas as pd
import pytest

from ndt import export_to_csv, export_to_hdf5, load_results, read_results
from ndt.errors import NdtError, ResultsFormatError
from ndt.export.csv import load_from_csv
from ndt.export.hdf5 import append_to_hdf5, load_from_hdf5
from ndt.export.json import export_metadata, export_to_json, load_from_json
from ndt.io.export import export_results, render_results, results_from_frames


def _frames() -> dict[str, pd.DataFrame]:
    """Two layers logged at different steps, as a tracker would return them."""
    a = pd.DataFrame(
        {
            "step": [0, 10, 20],
            "loss": [2.5, 1.5, 0.5],
            "grad_norm": [np.nan, np.nan, np.nan],
            "stable_rank": [1.0, 2.0, 3.0],
            "participation_ratio": [1.5, 2.5, 3.5],
        }
    )
    b = pd.DataFrame(
        {
            "step": [10, 20, 30],
            "loss": [1.5, 0.5, 0.25],
            "grad_norm": [np.nan, np.nan, np.nan],
            "stable_rank": [4.0, 5.0, 6.0],
            "participation_ratio": [4.5, 5.5, 6.5],
        }
    )
    return {"fc1": a, "head": b}


def test_export_to_hdf5_writes_union_of_steps_nan_where_missing(tmp_path):
    path = export_to_hdf5(_frames(), tmp_path / "r.h5", metadata={"model": "MLP", "seed": 3})
    results = read_results(path)
    np.testing.assert_array_equal(results.steps, [0, 10, 20, 30])
    assert results.layers == ["fc1", "head"]
    assert list(results.metrics) == ["stable_rank", "participation_ratio"]
    expected = np.array([[1.0, np.nan], [2.0, 4.0], [3.0, 5.0], [np.nan, 6.0]])
    np.testing.assert_array_equal(results.metrics["stable_rank"], expected)
    np.testing.assert_array_equal(results.scalars["loss"], [2.5, 1.5, 0.5, 0.25])
    assert "grad_norm" not in results.scalars  # never logged
    assert results.metadata == {"model": "MLP", "seed": "3"}


def test_exported_file_reads_as_the_tidy_table(tmp_path):
    export_to_hdf5(_frames(), tmp_path / "r.h5")
    frame = load_results(tmp_path / "r.h5")
    assert list(frame.columns) == ["step", "layer", "stable_rank", "participation_ratio"]
    assert len(frame) == 8
    row = frame[(frame.step == 30) & (frame.layer == "head")].iloc[0]
    assert row.participation_ratio == 6.5


def test_grad_norm_is_kept_when_logged(tmp_path):
    frames = _frames()
    for frame in frames.values():
        frame["grad_norm"] = frame["step"] / 10.0
    results = results_from_frames(frames)
    np.testing.assert_array_equal(results.scalars["grad_norm"], [0.0, 1.0, 2.0, 3.0])


def test_export_to_csv_writes_ndtrackers_layer_then_frame_columns(tmp_path, capsys, caplog):
    frames = _frames()
    with caplog.at_level(logging.INFO, logger="ndt.export"):
        export_to_csv(frames, tmp_path / "r.csv")
    assert [r.getMessage() for r in caplog.records] == [
        f"Exported all layers to {tmp_path / 'r.csv'}"
    ]
    assert capsys.readouterr().out == ""  # the library never prints
    caplog.clear()
    frame = pd.read_csv(tmp_path / "r.csv")
    assert list(frame.columns) == ["layer", *frames["fc1"].columns]
    assert frame["layer"].tolist() == ["fc1"] * 3 + ["head"] * 3
    assert frame["step"].tolist() == [0, 10, 20, 10, 20, 30]
    np.testing.assert_array_equal(frame["stable_rank"], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    loaded = load_from_csv(tmp_path / "r.csv")
    for layer, original in frames.items():
        pd.testing.assert_frame_equal(loaded[layer], original)
    with caplog.at_level(logging.INFO, logger="ndt.export"):
        export_to_csv(frames, tmp_path / "split", separate_files=True, verbose=False)
    assert caplog.records == []
    assert sorted(p.name for p in (tmp_path / "split").iterdir()) == ["fc1.csv", "head.csv"]
    pd.testing.assert_frame_equal(
        load_from_csv(tmp_path / "split", separate_files=True)["head"], frames["head"]
    )


def test_hdf5_holds_ndtrackers_layer_groups_and_loads_back(tmp_path):
    frames = _frames()
    path = export_to_hdf5(frames, tmp_path / "r.h5", metadata={"seed": 3}, verbose=False)
    with h5py.File(path, "r") as f:
        assert list(f["head"].attrs["columns"]) == list(frames["head"].columns)
        assert f["head"]["stable_rank"].compression == "gzip"
    loaded, metadata = load_from_hdf5(path)
    assert metadata == {"seed": "3"}
    for layer, original in frames.items():
        pd.testing.assert_frame_equal(loaded[layer], original)
    more = {"head": frames["head"].assign(step=[40, 50, 60])}
    append_to_hdf5(more, path, verbose=False)
    stored = read_results(path)  # the results-file side is rewritten too
    np.testing.assert_array_equal(stored.steps, [0, 10, 20, 30, 40, 50, 60])
    assert load_from_hdf5(path)[0]["head"]["step"].tolist() == [10, 20, 30, 40, 50, 60]
    with pytest.raises(ValueError, match="Column phase not found"):
        append_to_hdf5({"head": pd.DataFrame({"phase": [1]})}, path)
    with pytest.raises(ValueError, match="reserved"):
        export_to_hdf5({"metrics": frames["head"]}, tmp_path / "x.h5")


def test_load_from_hdf5_reads_an_ndt_track_file(tiny_run, tmp_path):
    from ndt.replay.track import track

    track(tiny_run / "ckpts", out=tmp_path / "r.h5")
    frames, _ = load_from_hdf5(tmp_path / "r.h5")
    stored = read_results(tmp_path / "r.h5")
    first = stored.layers[0]
    np.testing.assert_array_equal(frames[first]["step"], stored.steps)
    np.testing.assert_array_equal(frames[first]["stable_rank"], stored.metrics["stable_rank"][:, 0])


def test_json_records_and_list_orient_round_trip(tmp_path):
    frames = _frames()
    export_to_json(frames, tmp_path / "r.json", verbose=False)
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["fc1"][0] == {
        "step": 0, "loss": 2.5, "grad_norm": None, "stable_rank": 1.0,
        "participation_ratio": 1.5,
    }  # fmt: skip
    export_to_json(frames, tmp_path / "cols.json", orient="list", pretty=False, verbose=False)
    columns = json.loads((tmp_path / "cols.json").read_text())
    assert columns["head"]["stable_rank"] == [4.0, 5.0, 6.0]  # reference §1.2's layout
    for name in ("r.json", "cols.json"):
        loaded = load_from_json(tmp_path / name)
        pd.testing.assert_frame_equal(loaded["head"], frames["head"])
    export_metadata({"a": [1, 2]}, tmp_path / "m.json", pretty=False, verbose=False)
    assert (tmp_path / "m.json").read_text() == '{"a": [1, 2]}'


def test_csv_and_json_exports_round_trip_exactly(tmp_path):
    rng = np.random.default_rng(0)
    frames = _frames()
    for frame in frames.values():
        frame["stable_rank"] = rng.random(3) * 10  # full-precision floats
    export_to_hdf5(frames, tmp_path / "r.h5")
    expected = load_results(tmp_path / "r.h5")

    report = export_results(tmp_path / "r.h5", "csv", tmp_path / "out.csv")
    assert report.n_rows == 8 and report.columns[:2] == ("step", "layer")
    from_csv = pd.read_csv(tmp_path / "out.csv")
    np.testing.assert_array_equal(from_csv["stable_rank"], expected["stable_rank"])

    export_results(tmp_path / "r.h5", None, tmp_path / "out.json")  # format from suffix
    records = json.loads((tmp_path / "out.json").read_text())
    assert len(records) == 8
    assert records[0]["step"] == 0 and records[0]["layer"] == "fc1"
    assert records[1]["stable_rank"] is None  # NaN -> null
    assert [r["stable_rank"] for r in records if r["stable_rank"] is not None] == [
        v for v in expected["stable_rank"] if not np.isnan(v)
    ]


def test_render_results_matches_the_written_file(tmp_path):
    export_to_hdf5(_frames(), tmp_path / "r.h5")
    export_results(tmp_path / "r.h5", "json", tmp_path / "out.json")
    assert render_results(tmp_path / "r.h5", "json") == (tmp_path / "out.json").read_text()


@pytest.mark.parametrize(
    ("frames", "match"),
    [
        ({}, "nothing to export"),
        ({"fc1": pd.DataFrame({"loss": [1.0]})}, "no 'step' column"),
        ({"fc1": pd.DataFrame({"step": [0, 0], "stable_rank": [1, 2]})}, "step 0 twice"),
        ({"fc1": pd.DataFrame({"step": []})}, "no step was logged"),
    ],
)
def test_bad_tracker_results_raise(tmp_path, frames, match):
    with pytest.raises(NdtError, match=match):
        export_to_hdf5(frames, tmp_path / "r.h5")
    assert not (tmp_path / "r.h5").exists()


def test_export_results_errors(tmp_path):
    with pytest.raises(ResultsFormatError, match="does not exist"):
        export_results(tmp_path / "missing.h5", "csv", tmp_path / "o.csv")
    export_to_hdf5(_frames(), tmp_path / "r.h5")
    with pytest.raises(NdtError, match="unknown export format 'xml'"):
        export_results(tmp_path / "r.h5", "xml", tmp_path / "o.xml")


def test_export_confirmations_are_log_records_never_printed(tmp_path, capsys, caplog):
    from ndt.utils import save_config

    frames = _frames()
    with caplog.at_level(logging.INFO, logger="ndt"):
        export_to_hdf5(frames, tmp_path / "r.h5")
        append_to_hdf5({"fc1": frames["fc1"].assign(step=[40, 50, 60])}, tmp_path / "r.h5")
        export_to_json(frames, tmp_path / "r.json")
        export_metadata({"seed": 1}, tmp_path / "m.json")
        save_config({"sampling_frequency": 5}, tmp_path / "c.yaml")
    assert capsys.readouterr() == ("", "")
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("ndt.export", logging.INFO, f"Exported results for 2 layers to {tmp_path / 'r.h5'}"),
        ("ndt.export", logging.INFO, f"Appended results for 1 layers to {tmp_path / 'r.h5'}"),
        ("ndt.export", logging.INFO, f"Exported results for 2 layers to {tmp_path / 'r.json'}"),
        ("ndt.export", logging.INFO, f"Exported metadata to {tmp_path / 'm.json'}"),
        ("ndt.utils", logging.INFO, f"Saved configuration to {tmp_path / 'c.yaml'}"),
    ]


def test_ndt_jumps_keeps_ndtrackers_layer_groups_when_it_rewrites_the_file(tmp_path):
    from typer.testing import CliRunner

    from ndt_cli.main import app

    rng = np.random.default_rng(0)
    steps = np.arange(0, 400, 10)
    curve = np.where(steps < 200, 2.0, 6.0) + 0.01 * rng.standard_normal(steps.size)
    frames = {
        layer: pd.DataFrame(
            {"step": steps, "loss": np.linspace(2, 0, steps.size), "stable_rank": curve * k}
        )
        for k, layer in ((1.0, "fc1"), (2.0, "head"))
    }
    path = export_to_hdf5(frames, tmp_path / "r.h5", verbose=False)
    with h5py.File(path, "r") as f:
        before = {layer: f[layer]["stable_rank"][()] for layer in frames}
        compression = f["fc1"]["stable_rank"].compression
    done = CliRunner().invoke(app, ["jumps", str(path), "--metric", "stable_rank"])
    assert done.exit_code == 0, done.output
    assert read_results(path).jumps is not None  # the rewrite happened
    loaded, _ = load_from_hdf5(path)
    assert list(loaded) == ["fc1", "head"]
    for layer, frame in frames.items():
        pd.testing.assert_frame_equal(loaded[layer], frame)
    with h5py.File(path, "r") as f:
        for layer in frames:
            np.testing.assert_array_equal(f[layer]["stable_rank"][()], before[layer])
        assert f["fc1"]["stable_rank"].compression == compression == "gzip"
        assert json.loads(f.attrs["layer_groups"]) == ["fc1", "head"]
