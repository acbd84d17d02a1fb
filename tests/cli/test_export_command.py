"""`ndt export`: the tidy table of a results file as CSV or JSON."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ndt import load_results
from ndt.io.store import Results, write_results
from ndt_cli.main import app

runner = CliRunner()


def _results(path):
    rng = np.random.default_rng(0)
    values = rng.random((3, 2))
    values[1, 0] = np.nan
    write_results(
        path,
        Results(
            steps=np.array([0, 5, 10]),
            layers=["fc1", "head"],
            metrics={"stable_rank": values, "participation_ratio": values * 2},
            scalars={"loss": np.array([2.0, 1.0, 0.5])},
        ),
    )
    return path


def test_csv_to_file_matches_the_store(tmp_path):
    path = _results(tmp_path / "r.h5")
    result = runner.invoke(
        app, ["export", str(path), "--format", "csv", "-o", str(tmp_path / "o.csv")]
    )
    assert result.exit_code == 0, result.output
    assert "Wrote 6 rows" in result.stderr and result.stdout == ""
    frame = pd.read_csv(tmp_path / "o.csv")
    expected = load_results(path)
    cols = ["step", "layer", "stable_rank", "participation_ratio", "loss"]
    assert list(frame.columns) == cols
    pd.testing.assert_frame_equal(frame[expected.columns], expected, check_dtype=False)
    np.testing.assert_array_equal(frame["loss"], [2.0, 2.0, 1.0, 1.0, 0.5, 0.5])


def test_json_on_stdout(tmp_path):
    path = _results(tmp_path / "r.h5")
    result = runner.invoke(app, ["export", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert len(records) == 6
    assert records[2] == {
        "step": 5,
        "layer": "fc1",
        "stable_rank": None,
        "participation_ratio": None,
        "loss": 1.0,
    }
    assert records[3]["stable_rank"] == load_results(path)["stable_rank"][3]


def test_format_from_output_suffix(tmp_path):
    path = _results(tmp_path / "r.h5")
    result = runner.invoke(app, ["export", str(path), "-o", str(tmp_path / "o.json")])
    assert result.exit_code == 0
    assert len(json.loads((tmp_path / "o.json").read_text())) == 6


def test_missing_file_is_one_error_line(tmp_path):
    result = runner.invoke(app, ["export", str(tmp_path / "nope.h5")])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"Error: results file {tmp_path / 'nope.h5'} does not exist; run `ndt track` first"
    ]
    assert "Traceback" not in result.output


def test_unknown_format_is_a_usage_error(tmp_path):
    result = runner.invoke(app, ["export", str(_results(tmp_path / "r.h5")), "--format", "xml"])
    assert result.exit_code == 2


def test_tracker_export_is_read_by_jumps_plot_and_summary(tmp_path):
    """Issue 5 item 5: export_to_hdf5 of an in-training tracker is a valid results file."""
    pytest.importorskip("matplotlib")
    import torch

    from ndt import HighFrequencyTracker, export_to_hdf5
    from ndt.models.zoo import mlp

    torch.manual_seed(0)
    model = mlp(hidden=(16, 16))
    tracker = HighFrequencyTracker(model, sampling_frequency=2, probe=torch.randn(64, 64))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.2)
    for step in range(40):
        x, y = torch.randn(32, 64), torch.randint(0, 10, (32,))
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        tracker.log(step, loss.item())
    path = export_to_hdf5(tracker.get_results(), tmp_path / "tracker.h5", metadata={"run": 1})

    jumps = runner.invoke(app, ["jumps", str(path), "--metric", "stable_rank", "--json", "--all"])
    assert jumps.exit_code == 0, jumps.output
    assert {row["step"] for row in json.loads(jumps.stdout)["jumps"]} <= set(range(0, 40, 2))
    plot = runner.invoke(
        app, ["plot", str(path), "-m", "stable_rank", "-o", str(tmp_path / "p.png")]
    )
    assert plot.exit_code == 0, plot.output
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    summary = runner.invoke(app, ["summary", str(path), "--json"])
    assert json.loads(summary.stdout)[0]["analysed"] is True
