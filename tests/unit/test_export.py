"""Export: tracker frames -> results file / tidy CSV, and a results file -> CSV / JSON."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ndt import export_to_csv, export_to_hdf5, load_results, read_results
from ndt.errors import NdtError, ResultsFormatError
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


def test_export_to_csv_writes_step_layer_metrics_then_scalars(tmp_path):
    export_to_csv(_frames(), tmp_path / "r.csv")
    frame = pd.read_csv(tmp_path / "r.csv")
    assert list(frame.columns) == ["step", "layer", "stable_rank", "participation_ratio", "loss"]
    assert frame["step"].tolist() == [0, 0, 10, 10, 20, 20, 30, 30]
    assert frame["layer"].tolist() == ["fc1", "head"] * 4
    np.testing.assert_array_equal(
        frame["stable_rank"], [1.0, np.nan, 2.0, 4.0, 3.0, 5.0, np.nan, 6.0]
    )
    np.testing.assert_array_equal(frame["loss"], np.repeat([2.5, 1.5, 0.5, 0.25], 2))


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
