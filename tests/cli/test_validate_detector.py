"""`ndt validate-detector`: deterministic report, JSON keys, --from, verdict and exit code."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from ndt.store import Results, write_results
from ndt_cli.main import app

runner = CliRunner()


def _run(*args: str) -> tuple[int, dict]:
    result = runner.invoke(app, ["validate-detector", *args, "--json", "--n-curves", "5"])
    return result.exit_code, json.loads(result.stdout)


def test_report_is_deterministic_and_exit_code_follows_verdict() -> None:
    code, report = _run("--method", "gradient")
    again = _run("--method", "gradient")[1]
    assert report == again
    assert [s["name"] for s in report["scenarios"]] == ["single", "multiple", "noise", "drift"]
    assert code == (0 if report["verdict"] == "PASS" else 1)
    for scenario in report["scenarios"]:
        passed = (
            scenario["value"] >= scenario["threshold"]
            if scenario["measure"] == "recall"
            else scenario["value"] <= scenario["threshold"]
        )
        assert scenario["passed"] == passed
        assert scenario["value"] <= scenario["raw_value"] or scenario["measure"] == "recall"


def test_from_adds_scenarios_built_on_a_real_curve(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    values = np.log1p(np.arange(40.0))[:, None] + 0.05 * rng.standard_normal((40, 1))
    path = tmp_path / "r.h5"
    write_results(
        path, Results(steps=np.arange(40) * 10, layers=["fc1"], metrics={"stable_rank": values})
    )
    _, report = _run("--method", "gradient", "--from", str(path), "--layer", "fc1")
    names = [s["name"] for s in report["scenarios"]]
    assert names[-2:] == ["real-null", "real-planted"]
    assert report["scenarios"][-1]["n_points"] == 40


def test_from_without_layer_is_a_usage_error() -> None:
    result = runner.invoke(app, ["validate-detector", "--from", "x.h5"])
    assert result.exit_code == 2
