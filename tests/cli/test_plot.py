"""`ndt plot` on synthetic results files: files written, options, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ndt.io.store import Provenance, Results, write_results
from ndt_cli.main import app

METRICS = ("stable_rank", "participation_ratio")
LAYERS = ["fc1", "fc2", "fc3"]


@pytest.fixture
def results_file(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    steps = np.arange(0, 200, 10)
    metrics = {m: rng.uniform(1, 10, (len(steps), len(LAYERS))) for m in METRICS}
    jumps = pd.DataFrame(
        {"layer": ["fc2"], "metric": ["stable_rank"], "step": [100], "prev_step": [90],
         "value_before": [2.0], "value_after": [8.0], "delta": [6.0], "p_value": [1e-4],
         "q_value": [1e-3], "significant": [True]}
    )  # fmt: skip
    path = tmp_path / "results.h5"
    provenance = Provenance(checkpoint_dir="runs/digits-mlp/ckpts")
    write_results(path, Results(steps, LAYERS, metrics, jumps=jumps, provenance=provenance))
    return path


def _run(*args: str):
    return CliRunner().invoke(app, ["plot", *args])


def _one_error(result) -> str:
    assert result.exit_code == 1
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert "Traceback" not in result.stderr
    return lines[0]


def test_default_writes_a_png_per_metric_plus_grid_and_correlation(results_file, tmp_path):
    out = tmp_path / "plots"
    result = _run(str(results_file), "--out-dir", str(out), "--json")
    assert result.exit_code == 0, result.stderr
    files = [Path(f) for f in json.loads(result.stdout)["files"]]
    names = [f.name for f in files]
    assert names == [f"{m}.png" for m in METRICS] + ["all-metrics.png", "correlation.png"]
    for file in files:
        data = file.read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 20_000


def test_plain_output_lists_what_it_wrote(results_file, tmp_path):
    result = _run(
        str(results_file), "--out-dir", str(tmp_path / "p"), "--heatmap", "-m", "stable_rank"
    )
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3  # the curves, the heatmap, the grid; one metric: no correlation
    assert all(line.startswith("wrote ") for line in lines)
    assert (tmp_path / "p" / "stable_rank-heatmap.png").stat().st_size > 10_000


@pytest.mark.parametrize(("name", "magic"), [("f.svg", b"<?xml"), ("f.pdf", b"%PDF")])
def test_one_figure_by_extension(results_file, tmp_path, name, magic):
    target = tmp_path / name
    result = _run(str(results_file), "-m", "stable_rank", "-l", "fc[12]", "-o", str(target))
    assert result.exit_code == 0, result.stderr
    assert target.read_bytes().startswith(magic)
    assert result.stdout.splitlines() == [f"wrote {target}"]


def test_html_page(results_file, tmp_path):
    target = tmp_path / "report.html"
    result = _run(str(results_file), "--html", str(target))
    assert result.exit_code == 0, result.stderr
    text = target.read_text()
    assert "digits-mlp: dimensionality per layer" in text
    assert '"layers":["fc1","fc2","fc3"]' in text


def test_unknown_metric_lists_present_ones(results_file):
    line = _one_error(_run(str(results_file), "--metric", "effective_rank"))
    assert "'effective_rank'" in line and "stable_rank, participation_ratio" in line


def test_heatmap_with_output_needs_one_metric(results_file, tmp_path):
    line = _one_error(_run(str(results_file), "--heatmap", "-o", str(tmp_path / "h.png")))
    assert "--metric" in line


def test_results_without_curves(tmp_path):
    path = tmp_path / "empty.h5"
    write_results(path, Results(np.arange(3), ["fc1"], {}))
    assert "holds no metric curves" in _one_error(_run(str(path)))


def test_unwritable_output_folder(results_file, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    line = _one_error(_run(str(results_file), "--out-dir", str(blocker / "plots")))
    assert "cannot create output folder" in line


def test_missing_results_file(tmp_path):
    assert "does not exist" in _one_error(_run(str(tmp_path / "nope.h5")))
