"""`ndt summary`: one row per run with its significant jumps."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from ndt.io.store import Results, write_jumps, write_results
from ndt_cli import _output
from ndt_cli.main import app

runner = CliRunner()


def _run(path, jumps=None):
    rng = np.random.default_rng(1)
    write_results(
        path,
        Results(
            steps=np.array([0, 10, 20]),
            layers=["fc1", "head"],
            metrics={"stable_rank": rng.random((3, 2))},
        ),
    )
    if jumps is not None:
        table = pd.DataFrame(jumps, columns=["layer", "metric", "step", "significant"])
        write_jumps(path, table, {"fdr": 0.05})
    return path


def test_table_lists_each_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # short paths, and a wide console, so rows do not wrap
    monkeypatch.setattr(_output.out, "width", 160)
    _run(tmp_path / "a.h5", [("fc1", "stable_rank", 10, True), ("head", "stable_rank", 20, False)])
    _run(tmp_path / "b.h5")
    result = runner.invoke(app, ["summary", "."])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    row_a = next(line for line in lines if "a.h5" in line)
    row_b = next(line for line in lines if "b.h5" in line)
    cells = [cell.strip() for cell in row_a.split("│")]
    assert cells[1:6] == ["a.h5", "3 (0–20)", "2", "1", "10"]  # run, steps, layers, jumps, at
    assert cells[6] == "fc1@10"  # where; head's only jump is not significant
    assert "head" not in result.stdout
    assert "not analysed — run ndt jumps" in row_b


def test_json(tmp_path):
    a = _run(tmp_path / "a.h5", [("fc1", "stable_rank", 10, True), ("head", "x", 20, True)])
    b = _run(tmp_path / "b.h5")
    result = runner.invoke(app, ["summary", str(a), str(b), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [row["name"] for row in rows] == ["a", "b"]
    assert rows[0]["n_jumps"] == 2 and rows[0]["jump_steps"] == [10, 20]
    assert rows[0]["jumps"][0] == {"layer": "fc1", "metric": "stable_rank", "step": 10}
    assert rows[1]["analysed"] is False and rows[1]["n_jumps"] is None
    assert rows[1]["note"] == "not analysed — run ndt jumps"


def test_empty_folder_is_one_error_line(tmp_path):
    result = runner.invoke(app, ["summary", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [f"Error: no *.h5 files in {tmp_path}"]
    assert "Traceback" not in result.output
