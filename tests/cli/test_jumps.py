"""`ndt jumps` end to end: table, JSON, CSV, the stored /jumps group, errors, fixtures."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ndt.io.store import JUMP_COLUMNS, Results, read_results, write_results
from ndt.jumps.transitions import TRANSITION_COLUMNS
from ndt_cli.main import app

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
KEYS = ["layer", "metric", "step", "prev_step", "value_before", "value_after", "delta",
        "score", "p_value", "q_value", "methods"]  # fmt: skip
runner = CliRunner()


def _synthetic(path: Path) -> Path:
    rng = np.random.default_rng(0)
    steps = np.arange(40) * 50
    values = 3 + 0.05 * rng.standard_normal((40, 2))
    values[25:, 1] += 1.0
    write_results(
        path, Results(steps=steps, layers=["fc1", "fc2"], metrics={"stable_rank": values})
    )
    return path


def _from_expected(name: str, path: Path) -> Path:
    """A results file holding fixtures/<name>/expected.csv (the reference metrics)."""
    table = pd.read_csv(FIXTURES / name / "expected.csv")
    steps = np.array(sorted(table["step"].unique()))
    layers = list(dict.fromkeys(table["layer"]))
    metrics = {
        c: table.pivot(index="step", columns="layer", values=c).loc[steps, layers].to_numpy()
        for c in table.columns[2:]
    }
    write_results(path, Results(steps=steps, layers=layers, metrics=metrics))
    return path


def test_transition_line_footer_and_stored_group(tmp_path: Path) -> None:
    path = _synthetic(tmp_path / "r.h5")
    result = runner.invoke(app, ["jumps", str(path)])
    assert result.exit_code == 0, result.stderr
    assert "transitions" in result.stdout and "1200→1250" in result.stdout
    assert re.search(r"1 transition\. 78 tests on 2 curves x 39 intervals", result.stdout)
    assert re.search(r"; \d+\.\d\d s\.$", result.stdout.strip())
    stored = read_results(path)
    assert tuple(stored.jumps.columns) == JUMP_COLUMNS
    assert tuple(stored.transitions.columns) == TRANSITION_COLUMNS
    assert stored.transitions.loc[0, ["prev_step", "step"]].tolist() == [1200, 1250]
    assert stored.jump_settings["method"] == "local" and stored.jump_settings["n_tests"] == 78


def test_json_carries_transitions_and_curve_rows(tmp_path: Path) -> None:
    path = _synthetic(tmp_path / "r.h5")
    csv = tmp_path / "jumps.csv"
    result = runner.invoke(app, ["jumps", str(path), "--json", "--csv", str(csv), "--no-write"])
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert list(document["transitions"][0]) == list(TRANSITION_COLUMNS)
    top = document["transitions"][0]
    assert (top["peak_prev_step"], top["peak_step"], top["layers"]) == (1200, 1250, "fc2")
    rows = document["jumps"]
    assert [list(r) for r in rows] == [KEYS]
    assert rows[0]["layer"] == "fc2" and rows[0]["step"] == 1250 and rows[0]["prev_step"] == 1200
    assert rows[0]["delta"] == pytest.approx(rows[0]["value_after"] - rows[0]["value_before"])
    assert list(pd.read_csv(csv).columns) == KEYS
    assert read_results(path).jumps is None


def test_curves_and_all_show_per_curve_rows(tmp_path: Path) -> None:
    path = _synthetic(tmp_path / "r.h5")
    curves = runner.invoke(app, ["jumps", str(path), "--curves", "--no-write"])
    assert "jumps (local)" in curves.stdout and "fc2" in curves.stdout
    shown = json.loads(runner.invoke(app, ["jumps", str(path), "--json", "--all"]).stdout)
    stored = read_results(path).jumps
    # Every curve's strongest interval is listed, significant or not.
    assert len(shown["jumps"]) == len(stored) >= 2
    assert {r["layer"] for r in shown["jumps"]} == {"fc1", "fc2"}


def test_no_transition_names_the_largest_change(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    values = np.cumsum(0.05 * rng.standard_normal((40, 1)), axis=0)
    path = tmp_path / "flat.h5"
    write_results(path, Results(steps=np.arange(40) * 50, layers=["a"], metrics={"m": values}))
    result = runner.invoke(app, ["jumps", str(path)])
    assert result.exit_code == 0
    assert result.stdout.startswith("No significant transition; the largest change is ")


def test_nan_points_are_reported_on_stderr(tmp_path: Path) -> None:
    path = _synthetic(tmp_path / "r.h5")
    results = read_results(path)
    results.metrics["stable_rank"][5, 0] = np.nan
    write_results(path, results)
    result = runner.invoke(app, ["jumps", str(path), "--no-write"])
    assert result.exit_code == 0
    assert "skipped 1 NaN points in fc1 stable_rank" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--metric", "rank"], "Error: no metric rank in the results file; it has stable_rank"),
        (["--layer", "conv*"], "Error: layer pattern 'conv*' matches no layer; the layers are"),
    ],
)
def test_bad_selection_is_one_error_line(tmp_path: Path, args: list[str], message: str) -> None:
    path = _synthetic(tmp_path / "r.h5")
    result = runner.invoke(app, ["jumps", str(path), *args])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message) and "Traceback" not in result.stderr


def test_short_and_empty_files_are_one_error_line(tmp_path: Path) -> None:
    short = tmp_path / "short.h5"
    write_results(
        short, Results(steps=np.arange(5), layers=["a"], metrics={"stable_rank": np.ones((5, 1))})
    )
    result = runner.invoke(app, ["jumps", str(short)])
    assert result.exit_code == 1 and "at least 8 are needed" in result.stderr
    empty = tmp_path / "empty.h5"
    write_results(empty, Results(steps=np.arange(5), layers=["a"], metrics={}))
    result = runner.invoke(app, ["jumps", str(empty)])
    assert result.exit_code == 1 and "Error: the results file has no curves" in result.stderr


def test_switch_is_the_top_transition_of_a_run_saved_like_real_runs(tmp_path: Path) -> None:
    """digits-transition: log-spaced saves to 128, then every 50; classes 5-9 join at 800."""
    info = json.loads((FIXTURES / "digits-transition" / "info.json").read_text())
    steps = info["steps"]
    switch = steps.index(info["transition_step"])
    path = _from_expected("digits-transition", tmp_path / "t.h5")
    document = json.loads(runner.invoke(app, ["jumps", str(path), "--json"]).stdout)
    top = document["transitions"][0]
    # The change lies between transition_step and the next checkpoint (+-1 checkpoint).
    peak = steps.index(top["peak_step"])
    assert abs(peak - (switch + 1)) <= 1, top
    assert {"relu2", "relu3"} <= set(top["layers"].split(","))


def test_null_twin_has_no_transition_after_the_collapse(tmp_path: Path) -> None:
    """digits-transition-null: the same run without the switch."""
    info = json.loads((FIXTURES / "digits-transition-null" / "info.json").read_text())
    path = _from_expected("digits-transition-null", tmp_path / "n.h5")
    document = json.loads(runner.invoke(app, ["jumps", str(path), "--json"]).stdout)
    late = [t for t in document["transitions"] if t["prev_step"] >= info["learning_phase_end"]]
    assert late == []
    # The early collapse itself is found: training moves the curves most there.
    assert document["transitions"] and document["transitions"][0]["prev_step"] < 128


@pytest.mark.parametrize("name", ["digits-mlp", "digits-cnn", "modadd-transformer"])
def test_fixtures_without_a_switch_change_only_while_learning(tmp_path: Path, name: str) -> None:
    path = _from_expected(name, tmp_path / "r.h5")
    document = json.loads(runner.invoke(app, ["jumps", str(path), "--json"]).stdout)
    # Measured: digits-mlp 0->250, digits-cnn 0->144 and 250->300, modadd-transformer
    # 13->34: the curves move while the model learns (train accuracy climbs from about 0.1
    # to 0.9 by step 250), and no transition starts after that.
    assert document["transitions"]
    assert all(t["prev_step"] <= 250 for t in document["transitions"])
