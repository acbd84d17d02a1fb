"""Run each docs/examples script (small sizes) and check what it produced."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.decomposition import PCA

from ndt import read_results
from ndt.core.estimators import stable_rank

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def load(name: str) -> dict:
    """The script's globals, without running its __main__ block."""
    return runpy.run_path(str(EXAMPLES / name), run_name="example")


def test_every_section_has_a_script():
    names = sorted(p.name for p in EXAMPLES.glob("s[1-5]_*.py"))
    assert [n[:2] for n in names] == ["s1", "s2", "s3", "s4", "s5"]


def test_s1_tracking_exports_what_the_tracker_measured(tmp_path, capsys):
    run = load("s1_tracking.py")["main"](tmp_path, n_steps=60)
    assert "Detected architecture: MLP" in capsys.readouterr().out
    results = run["results"]
    # The §1.3 handler's layers: every Linear, named as ndtracker names them.
    assert list(results) == [
        "Linear_0_64x32", "Linear_1_32x32", "Linear_2_32x32", "Linear_3_32x10"
    ]  # fmt: skip
    stored = read_results(tmp_path / "results.h5")
    np.testing.assert_array_equal(stored.steps, np.arange(0, 60, 5))
    for column, layer in enumerate(stored.layers):
        np.testing.assert_array_equal(
            stored.metrics["stable_rank"][:, column], results[layer]["stable_rank"]
        )
    assert stored.metadata == {"model": "MLP", "dataset": "digits"}
    assert len(pd.read_csv(tmp_path / "results.csv")) == 12 * 4
    for layer, jumps in run["jumps"].items():
        assert all(jump.step in set(results[layer]["step"]) for jump in jumps)


def test_s2_capture_saves_the_captured_arrays(tmp_path):
    run = load("s2_capture.py")["main"](tmp_path, n_steps=160)
    assert list(run["before"]) == ["Linear_0", "Linear_1", "Linear_2"]
    assert run["before"]["Linear_0"].shape == (256, 32)
    assert not np.allclose(run["before"]["Linear_2"], run["after"]["Linear_2"])
    with h5py.File(tmp_path / "activations.h5") as f:
        assert sorted(f) == ["step_0", "step_100", "step_150", "step_50"]
        assert f["step_50/layer_1"].compression == "gzip"
        np.testing.assert_array_equal(f["step_50/layer_1"][()], run["by_step"][50]["Linear_1"])


def test_s3_geometry_matches_sklearn_and_direct_counts(tmp_path):
    pytest.importorskip("matplotlib")
    run = load("s3_geometry.py")["main"](tmp_path, steps=(0, 40, 79))
    by_step = run["by_step"]
    stacked = np.vstack([by_step[s]["relu1"] for s in (0, 40, 79)]).astype(np.float64)
    direct = PCA(n_components=10).fit(stacked).explained_variance_ratio_
    np.testing.assert_allclose(run["pca"]["relu1"].explained_variance, direct, rtol=1e-6)
    # The reference's rule: a neuron is dead when it is exactly zero on over 90 % of rows.
    dead_before = (by_step[0]["relu2"] == 0).mean(axis=0) > 0.9
    dead_after = (by_step[79]["relu2"] == 0).mean(axis=0) > 0.9
    became = ~dead_before & dead_after
    assert int(run["stats"]["relu2"].became_dead.sum()) == int(became.sum())
    assert (tmp_path / "pca_relu1.png").stat().st_size > 1000


def test_s4_checkpointer_folder_replays_to_the_analyzer_values(tmp_path):
    run = load("s4_analyzer_checkpointer.py")["main"](tmp_path, n_steps=40, capture_interval=20)
    results = run["results"]
    assert results.steps.tolist() == [0, 20, 40]
    head = results.layers.index("head")
    for row, step in enumerate(results.steps):
        saved = run["checkpointer"].load_activations(int(step))["head"]
        a = saved.astype(np.float64) - saved.mean(0)
        lam = np.linalg.svd(a, compute_uv=False) ** 2
        assert results.metrics["stable_rank"][row, head] == pytest.approx(lam.sum() / lam.max())
        assert stable_rank(saved) == pytest.approx(lam.sum() / lam.max())


def test_s5_summary_counts_the_significant_rows_of_each_file(tmp_path):
    run = load("s5_pipeline.py")["main"](tmp_path, num_steps=150)
    for summary in run["summaries"]:
        with h5py.File(summary.path) as f:
            significant = f["jumps/significant"][()]
            steps = f["jumps/step"][()]
        assert summary.n_jumps == int(significant.sum())
        assert summary.jump_steps == sorted(set(steps[significant.astype(bool)].tolist()))
    assert sorted(p.name for p in (tmp_path / "seed0").glob("*.h5")) == [
        "activations_step_0.h5",
        "activations_step_100.h5",
    ]


def test_overhead_script_runs(monkeypatch, capsys):
    argv = ["tracker_overhead.py", "--blocks", "2", "--block", "10", "--sampling-frequency", "5"]
    monkeypatch.setattr(sys, "argv", argv)
    script = runpy.run_path(str(EXAMPLES / "tracker_overhead.py"), run_name="__main__")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("sampling_frequency=5: 2 rounds of 10 steps per variant")
    assert [line.split()[0] for line in lines[1:]] == [
        "tracker=none",
        "tracker=probe",
        "tracker=batch",
    ]
    assert all("overhead" in line for line in lines[2:])
    # The variants compare like with like: the same seed, and tracking leaves training alone.
    runs = [script["Run"](variant, 5) for variant in ("none", "probe", "batch")]
    for run in runs:
        run.train(12)
    weights = [torch.cat([p.detach().flatten() for p in r.model.parameters()]) for r in runs]
    assert torch.equal(weights[0], weights[1]) and torch.equal(weights[0], weights[2])
    assert [len(r.tracker.get_results()["Linear_0"]) for r in runs[2:]] == [3]
