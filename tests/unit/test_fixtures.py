"""The committed fixtures are complete and consistent: checkpoints, manifest, probe, info.json
and expected.csv agree with each other, and expected.csv is recomputed here for one checkpoint
of each run with plain hooks and a float64 numpy SVD."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from float64_reference import reference_metrics
from safetensors.torch import load_file
from threadpoolctl import threadpool_limits

from ndt.architectures import select_layers
from ndt.core.estimators import METRICS
from ndt.errors import CheckpointError
from ndt.io.checkpoints import (
    discover_checkpoints,
    load_weights,
    read_safetensors_metadata,
    read_state_dict,
)
from ndt.io.manifest import read_manifest
from ndt.io.probe import load_probe
from ndt.io.probe_sources import digits_probe
from ndt.models.spec import build_model

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
# name -> the number of checkpoints the fixture promises (issue 2, item 10)
RUNS = {
    "digits-mlp": 30,
    "digits-cnn": 25,
    "modadd-transformer": 25,
    "digits-transition": 36,
    "digits-transition-null": 36,
}


def _columns(expected: pd.DataFrame) -> list[str]:
    """expected.csv's columns: step, layer, then registry metrics in registry order. A
    metric added after the fixtures were made is absent until they are regenerated (its
    values are held to the float64 reference by test_estimators meanwhile)."""
    return ["step", "layer", *[m for m in METRICS if m in expected.columns]]


def _info(name: str) -> dict:
    return json.loads((FIXTURES / name / "info.json").read_text())


@pytest.mark.parametrize(("name", "promised"), RUNS.items())
def test_run_is_complete_and_consistent(name, promised):
    folder = FIXTURES / name
    info = _info(name)
    checkpoints = discover_checkpoints(folder / "ckpts")
    steps = [c.step for c in checkpoints]
    assert len(checkpoints) >= promised
    assert steps == info["steps"] and len(steps) == info["n_checkpoints"]
    for checkpoint in checkpoints:
        assert read_safetensors_metadata(checkpoint.path)["step"] == str(checkpoint.step)
        assert checkpoint.path.name == f"step_{checkpoint.step:08d}.safetensors"

    manifest = read_manifest(folder / "ckpts")
    assert manifest.model.target == info["model"]["arch"]
    assert dict(manifest.model.kwargs) == info["model"]["kwargs"]
    assert manifest.probe == (folder / "probe.safetensors").resolve()
    probe = load_probe(manifest.probe)
    assert probe.labels is not None and probe.labels.shape == (probe.n_samples,)

    model = build_model(manifest.model)
    for checkpoint in checkpoints:  # strict: every key present, every shape right
        load_weights(model, read_state_dict(checkpoint), checkpoint.name)

    expected = pd.read_csv(folder / "expected.csv")
    layers = select_layers(model)
    assert list(expected.columns) == _columns(expected)
    assert len(expected.columns) > 2
    assert layers == info["layers"]
    assert expected["layer"].tolist() == layers * len(steps)
    assert expected["step"].tolist() == [s for s in steps for _ in layers]
    assert np.isfinite(expected[_columns(expected)[2:]].to_numpy()).all()


@pytest.mark.parametrize(
    "name", ["digits-mlp", "digits-cnn", "digits-transition", "digits-transition-null"]
)
def test_digits_probes_are_the_documented_subset(name):
    probe = load_probe(FIXTURES / name / "probe.safetensors")
    want = digits_probe(512, seed=0, image=name == "digits-cnn")
    assert torch.equal(probe.inputs, want.inputs) and torch.equal(probe.labels, want.labels)


def test_schedules():
    assert _info("digits-mlp")["steps"][:8] == [0, 1, 2, 3, 5, 8, 13, 21]  # log-spaced start
    # The switch runs are saved the way Pythia and OLMo save: log-spaced, then uniform.
    for name in ("digits-transition", "digits-transition-null"):
        steps = _info(name)["steps"]
        assert steps[:9] == [0, 1, 2, 4, 8, 16, 32, 64, 128]
        assert steps[9:] == list(range(150, 1501, 50))
    assert _info("digits-transition")["transition_step"] in _info("digits-transition")["steps"]


def test_null_twin_is_the_same_run_until_the_switch():
    switch = _info("digits-transition")["transition_step"]
    assert _info("digits-transition-null")["transition_step"] is None
    for step in _info("digits-transition")["steps"]:
        name = f"step_{step:08d}.safetensors"
        same = (FIXTURES / "digits-transition" / "ckpts" / name).read_bytes() == (
            FIXTURES / "digits-transition-null" / "ckpts" / name
        ).read_bytes()
        assert same == (step <= switch), step


def _reference_row(model: torch.nn.Module, inputs: torch.Tensor, layer: str) -> dict[str, float]:
    captured = {}
    module = dict(model.named_modules())[layer]
    handle = module.register_forward_hook(lambda m, a, out: captured.update(out=out))
    with torch.no_grad():
        model.eval()(inputs)
    handle.remove()
    out = captured["out"].double().numpy()
    a = out.reshape(-1, out.shape[-1]) if out.ndim == 3 else out.reshape(out.shape[0], -1)
    return reference_metrics(a)


@pytest.mark.parametrize("name", RUNS)
def test_expected_csv_matches_committed_weights(name):
    folder = FIXTURES / name
    manifest = read_manifest(folder / "ckpts")
    model = build_model(manifest.model)
    last = discover_checkpoints(folder / "ckpts")[-1]
    model.load_state_dict(load_file(last.path))
    inputs = load_file(manifest.probe)["inputs"]
    expected = pd.read_csv(folder / "expected.csv")
    expected = expected[expected["step"] == last.step].set_index("layer")
    with threadpool_limits(limits=1):
        for layer in expected.index:
            got = _reference_row(model, inputs, layer)
            for metric, value in got.items():
                if metric not in expected.columns:
                    continue  # added since the fixtures were made (see `_columns`)
                # The float32 forward pass differs across CPU kernels in the last bits
                # (measured: 4e-9 relative between two x86 machines); the SVD is float64.
                np.testing.assert_allclose(value, expected.loc[layer, metric], rtol=1e-6)


def test_transition_is_the_largest_change_after_early_training():
    info = _info("digits-transition")
    step = info["transition_step"]
    after = info["steps"][info["steps"].index(step) + 1]
    table = pd.read_csv(FIXTURES / "digits-transition" / "expected.csv")
    for layer in ("relu2", "relu3"):
        curves = table[(table["layer"] == layer) & (table["step"] >= 150)].set_index("step")
        for metric in ("stable_rank", "participation_ratio", "effective_rank"):
            change = curves[metric].diff().abs()
            assert change.idxmax() == after, (layer, metric)
            assert change[after] > 5 * change.drop(after).median(), (layer, metric)


def test_broken_inputs():
    broken = FIXTURES / "broken"
    for case in ("truncated", "wrong-keys", "no-step", "nan-weights"):
        assert read_manifest(broken / case).model.target == "mlp"
    truncated = broken / "truncated" / "step_00000425.safetensors"
    full = broken / "nan-weights" / "step_00000425.safetensors"
    assert truncated.stat().st_size < full.stat().st_size
    assert read_safetensors_metadata(truncated)["step"] == "425"
    assert 425 not in _info("digits-mlp")["steps"]
    with pytest.raises(CheckpointError, match="cannot read"):
        read_state_dict(discover_checkpoints(broken / "truncated")[0])
    assert read_safetensors_metadata(broken / "no-step" / "final.safetensors") == {}
    with pytest.raises(CheckpointError, match="cannot read a step from 'final.safetensors'"):
        discover_checkpoints(broken / "no-step")
    wrong = load_file(broken / "wrong-keys" / "step_00000425.safetensors")
    assert "fc3.weight" not in wrong and "fc2.weight" in wrong
    with pytest.raises(CheckpointError, match="missing fc3.bias, fc3.weight"):
        load_weights(build_model(read_manifest(broken / "wrong-keys").model), wrong, "w")
    poisoned = load_file(full)
    assert int(torch.isnan(poisoned["fc2.weight"]).sum()) == 1
    nan_table = pd.read_csv(broken / "nan-weights" / "expected.csv")
    metrics = _columns(nan_table)[2:]
    nan_table = nan_table.set_index("layer")
    assert np.isfinite(nan_table.loc["relu1", metrics].to_numpy(dtype=float)).all()
    for layer in ("relu2", "relu3", "head"):
        assert np.isnan(nan_table.loc[layer, metrics].to_numpy(dtype=float)).all()
