"""Where `ndt track` takes each checkpoint's step from: `--dry-run`, `--step-scale`, and the
files it skips, on copies of the digits-mlp run laid out as Trainer and accelerate save."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from ndt.io.store import read_results, write_results

FIXTURE = Path(__file__).parents[2] / "fixtures" / "digits-mlp"
MANIFEST = """[model]
arch = "mlp"
[model.kwargs]
in_features = 64
hidden = [32, 32, 32]
n_classes = 10
"""


def accelerate_run(tmp_path: Path, steps: list[int]) -> Path:
    """checkpoints/checkpoint_<i>/model.safetensors for the fixture's given steps, in order."""
    root = tmp_path / "acc"
    for index, step in enumerate(steps):
        folder = root / "checkpoints" / f"checkpoint_{index}"
        folder.mkdir(parents=True)
        shutil.copy(FIXTURE / "ckpts" / f"step_{step:08d}.safetensors", folder / "model.tmp")
        # accelerate writes no step into the file: drop the fixture's header metadata.
        from safetensors.torch import load_file, save_file

        save_file(load_file(folder / "model.tmp"), folder / "model.safetensors")
        (folder / "model.tmp").unlink()
    (root / "ndt.toml").write_text(MANIFEST)
    return root


def test_dry_run_lists_steps_and_their_source(ndt, tmp_path):
    root = accelerate_run(tmp_path, [0, 1])
    result = ndt("track", root, "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    listing = json.loads(result.stdout)
    assert listing["checkpoints"] == [
        {"step": 0, "file": "checkpoints/checkpoint_0/model.safetensors", "files": 1,
         "from": "save index"},
        {"step": 1, "file": "checkpoints/checkpoint_1/model.safetensors", "files": 1,
         "from": "save index"},
    ]  # fmt: skip
    assert "Warning: the checkpoint_<i> folders are numbered by accelerate's save counter" in (
        result.stderr
    )
    assert not (tmp_path / "results.h5").exists()


def test_step_scale_maps_save_indices_to_the_recorded_steps(ndt, tmp_path):
    chosen, scale = [200, 250, 300], 50  # saved every 50 steps from step 200
    root = accelerate_run(tmp_path, chosen)
    out = tmp_path / "r.h5"
    result = ndt("track", root, "--probe", FIXTURE / "probe.safetensors", "--step-scale", scale,
                 "--out", out, "--quiet")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Warning" not in result.stderr
    results = read_results(out)
    assert results.steps.tolist() == [0, 50, 100]
    # Same weights as the fixture's own checkpoints at those steps, so the same curves.
    direct = tmp_path / "direct.h5"
    ndt("track", FIXTURE / "ckpts", "--out", direct, "--quiet", "--steps",
        f"{chosen[0]}:{chosen[-1]}")  # fmt: skip
    reference = read_results(direct)
    keep = np.isin(reference.steps, chosen)
    for metric, values in results.metrics.items():
        np.testing.assert_allclose(values, reference.metrics[metric][keep], rtol=1e-12)


def test_compare_finds_scaled_checkpoints_by_their_recorded_file(ndt, tmp_path):
    root = accelerate_run(tmp_path, [200, 250, 300])
    out = tmp_path / "r.h5"
    ndt("track", root, "--probe", FIXTURE / "probe.safetensors", "--step-scale", 50,
        "--out", out, "--quiet")  # fmt: skip
    report = tmp_path / "c.json"
    result = ndt("compare", "--results", out, "--before", 0, "--after", 100, "--json", report)
    assert result.exit_code == 0, result.output
    doc = json.loads(report.read_text())
    assert doc["before"]["file"].endswith("checkpoints/checkpoint_0/model.safetensors")
    assert doc["after"]["file"].endswith("checkpoints/checkpoint_2/model.safetensors")
    # With no file recorded (a results file without its checkpoints table), the recorded
    # step scale still maps save index 2 to step 100.
    results = read_results(out)
    assert results.provenance.step_scale == 50
    results.checkpoints = None
    bare = tmp_path / "bare.h5"
    write_results(bare, results)
    result = ndt("compare", "--results", bare, "--before", 0, "--after", 100, "--json", report)
    assert result.exit_code == 0, result.output
    assert json.loads(report.read_text())["after"]["file"].endswith(
        "checkpoints/checkpoint_2/model.safetensors"
    )
