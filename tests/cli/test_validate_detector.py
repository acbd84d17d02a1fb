"""`ndt validate-detector`: deterministic report, JSON keys, pass rules and exit code."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from ndt_cli.main import app

runner = CliRunner()
SCENARIOS = ["a:step-3", "a:step-6", "a:step-10", "b:null", "c:ar1-0", "c:ar1-0.5",
             "c:ar1-0.8", "d:integer-null", "d:integer-step", "e:two-steps"]  # fmt: skip


def _run(*args: str) -> tuple[int, dict]:
    result = runner.invoke(app, ["validate-detector", *args, "--json", "--n-runs", "6"])
    return result.exit_code, json.loads(result.stdout)


def test_report_is_deterministic_and_exit_code_follows_verdict() -> None:
    code, report = _run()
    assert report == _run()[1]
    assert [s["name"] for s in report["scenarios"]] == SCENARIOS
    assert code == (0 if report["verdict"] == "PASS" else 1)
    for scenario in report["scenarios"]:
        threshold = scenario["threshold"]
        assert scenario["passed"] == (threshold is None or scenario["value"] >= threshold)
        assert scenario["n_runs"] == 6 and scenario["n_points"] == 49


def test_table_prints_pass_rules_and_schedule() -> None:
    result = runner.invoke(app, ["validate-detector", "--n-runs", "3"])
    assert ">= 0.9" in result.stdout and ">= 0.95" in result.stdout
    assert "0, 1, 2, 4, ..., 128, then every 50" in result.stdout
    assert result.stdout.strip().splitlines()[-1] in ("PASS: local", "FAIL: local")


def test_bad_counts_are_usage_errors() -> None:
    assert runner.invoke(app, ["validate-detector", "--n-runs", "0"]).exit_code == 2
