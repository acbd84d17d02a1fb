"""`ndt jumps` end to end: table, JSON, CSV, the stored /jumps group, errors, fixtures."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ndt.store import JUMP_COLUMNS, Results, read_results, write_results
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


def test_table_footer_and_stored_jumps(tmp_path: Path) -> None:
    path = _synthetic(tmp_path / "r.h5")
    result = runner.invoke(app, ["jumps", str(path)])
    assert result.exit_code == 0, result.stderr
    assert "fc2" in result.stdout and "1250" in result.stdout
    assert re.search(r"\d+ tests on 2 curves; 1 significant at FDR 0\.05", result.stdout)
    stored = read_results(path)
    assert tuple(stored.jumps.columns) == JUMP_COLUMNS
    assert stored.jump_settings["method"] == "pelt" and stored.jump_settings["seed"] == 0
    assert stored.jump_settings["n_tests"] >= 2


def test_json_and_csv_carry_the_same_rows(tmp_path: Path) -> None:
    path = _synthetic(tmp_path / "r.h5")
    csv = tmp_path / "jumps.csv"
    result = runner.invoke(app, ["jumps", str(path), "--json", "--csv", str(csv), "--no-write"])
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [list(r) for r in rows] == [KEYS]
    assert rows[0]["layer"] == "fc2" and rows[0]["step"] == 1250 and rows[0]["prev_step"] == 1200
    assert rows[0]["delta"] == pytest.approx(rows[0]["value_after"] - rows[0]["value_before"])
    assert list(pd.read_csv(csv).columns) == KEYS
    assert read_results(path).jumps is None


def test_all_shows_non_significant_rows(tmp_path: Path) -> None:
    path = _synthetic(tmp_path / "r.h5")
    shown = json.loads(runner.invoke(app, ["jumps", str(path), "--json", "--all"]).stdout)
    stored = read_results(path).jumps
    assert len(shown) == len(stored) >= 1
    assert sorted(r["q_value"] for r in shown) == [r["q_value"] for r in shown]


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
    assert result.exit_code == 1 and "at least 12 are needed" in result.stderr
    empty = tmp_path / "empty.h5"
    write_results(empty, Results(steps=np.arange(5), layers=["a"], metrics={}))
    result = runner.invoke(app, ["jumps", str(empty)])
    assert result.exit_code == 1 and "Error: the results file has no curves" in result.stderr


@pytest.mark.skipif(not (FIXTURES / "digits-transition").exists(), reason="fixture not built yet")
def test_induced_transition_is_found(tmp_path: Path) -> None:
    info = json.loads((FIXTURES / "digits-transition" / "info.json").read_text())
    path = _from_expected("digits-transition", tmp_path / "t.h5")
    rows = json.loads(runner.invoke(app, ["jumps", str(path), "--json"]).stdout)
    # The last checkpoint before the change is transition_step; the jump lands on the next.
    hits = [r for r in rows if r["prev_step"] == info["transition_step"]]
    # Measured (stable_rank, pelt, seed 0): significant at 500->520 in relu2 and relu3
    # (q = 0.0125), and nowhere else.
    assert {r["layer"] for r in hits} >= {"relu2", "relu3"}
    assert len(rows) == len(hits)


@pytest.mark.parametrize("name", ["digits-mlp", "digits-cnn", "modadd-transformer"])
def test_fixtures_without_a_transition_show_few(tmp_path: Path, name: str) -> None:
    if not (FIXTURES / name / "expected.csv").exists():
        pytest.skip("fixture not built yet")
    path = _from_expected(name, tmp_path / "r.h5")
    rows = json.loads(runner.invoke(app, ["jumps", str(path), "--json"]).stdout)
    # Measured (stable_rank, pelt, seed 0): digits-mlp 5 rows and digits-cnn 3, all within
    # the fast early learning (step <= 144, where train accuracy climbs from 0.1 to 0.8);
    # modadd-transformer none. Nothing is flagged once training has settled.
    assert len(rows) <= 6
    assert all(r["step"] <= 200 for r in rows)
