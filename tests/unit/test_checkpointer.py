"""Phase2Checkpointer: safetensors checkpoints + ndt.toml that `ndt track` reads unaided."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from ndt import Phase2Checkpointer
from ndt.errors import CheckpointError, NdtError
from ndt.io.checkpoints import discover_checkpoints, read_safetensors_metadata
from ndt.io.manifest import ModelSpec, read_manifest
from ndt.io.probe import load_probe, save_probe
from ndt.models.zoo import mlp
from ndt.replay.engine import prepare_run


def test_should_capture_every_interval(tmp_path):
    checkpointer = Phase2Checkpointer(tmp_path / "ckpts", capture_interval=25)
    assert [s for s in range(101) if checkpointer.should_capture(s)] == [0, 25, 50, 75, 100]
    assert (tmp_path / "ckpts").is_dir()


def test_checkpoints_carry_their_step_and_load_back(tmp_path):
    torch.manual_seed(0)
    model = mlp(hidden=(8,))
    checkpointer = Phase2Checkpointer(tmp_path, capture_interval=10)
    path = checkpointer.save_checkpoint(model, 1200, metadata={"lr": 0.1})
    assert path.name == "step_00001200.safetensors"
    assert read_safetensors_metadata(path) == {"step": "1200", "lr": "0.1"}
    assert [c.step for c in discover_checkpoints(tmp_path)] == [1200]

    other = mlp(hidden=(8,))
    checkpointer.load_checkpoint(other, 1200)
    for (name, a), (_, b) in zip(
        model.state_dict().items(), other.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    assert not (tmp_path / "ndt.toml").exists()  # no model spec, no manifest


def test_load_checkpoint_errors(tmp_path):
    checkpointer = Phase2Checkpointer(tmp_path, capture_interval=10)
    with pytest.raises(CheckpointError, match="no checkpoint for step 5"):
        checkpointer.load_checkpoint(mlp(), 5)
    checkpointer.save_checkpoint(mlp(hidden=(8,)), 5)
    with pytest.raises(CheckpointError, match="does not fit the model"):
        checkpointer.load_checkpoint(mlp(hidden=(16,)), 5)


def test_manifest_with_tensor_probe_makes_a_folder_track_reads(tmp_path):
    torch.manual_seed(0)
    probe = torch.randn(32, 64)
    checkpointer = Phase2Checkpointer(
        tmp_path / "ckpts", 10, model_spec=ModelSpec("mlp", {"hidden": [16]}), probe=probe
    )
    checkpointer.save_checkpoint(mlp(hidden=(16,)), 0)
    checkpointer.save_checkpoint(mlp(hidden=(16,)), 10)
    manifest = read_manifest(tmp_path / "ckpts")
    assert manifest.model == ModelSpec("mlp", {"hidden": [16]})
    assert manifest.probe == (tmp_path / "ckpts" / "probe.safetensors").resolve()
    assert torch.equal(load_probe(manifest.probe).inputs, probe)
    setup = prepare_run(tmp_path / "ckpts", device="cpu")
    assert setup.layers == ["relu1", "head"]
    steps = [c.step for c in discover_checkpoints(tmp_path / "ckpts", exclude=[manifest.probe])]
    assert steps == [0, 10]


def test_manifest_points_to_an_existing_probe_file(tmp_path):
    probe = save_probe(tmp_path / "probe.safetensors", torch.zeros(4, 64))
    checkpointer = Phase2Checkpointer(tmp_path / "ckpts", 1, model_spec="mlp", probe=probe)
    checkpointer.save_checkpoint(mlp(), 0)
    manifest = read_manifest(tmp_path / "ckpts")
    assert manifest.model == ModelSpec("mlp")
    assert manifest.probe == (tmp_path / "probe.safetensors").resolve()
    assert not (tmp_path / "ckpts" / "probe.safetensors").exists()


def test_activations_are_saved_gzip_compressed(tmp_path):
    checkpointer = Phase2Checkpointer(tmp_path, 1)
    rng = np.random.default_rng(0)
    acts = {"fc1": torch.from_numpy(rng.random((5, 3))), "head": rng.random((5, 2))}
    path = checkpointer.save_activations(acts, 7)
    assert path.name == "activations_step_7.h5"
    with h5py.File(path) as handle:
        assert list(handle) == ["fc1", "head"]
        assert handle["fc1"].compression == "gzip"
        assert handle.attrs["step"] == 7
    loaded = checkpointer.load_activations(7)
    np.testing.assert_array_equal(loaded["fc1"], acts["fc1"].numpy())
    np.testing.assert_array_equal(loaded["head"], acts["head"])
    assert checkpointer.captured_steps == {7}
    with pytest.raises(NdtError, match="no activation snapshot for step 8"):
        checkpointer.load_activations(8)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"capture_interval": 0}, "capture_interval must be at least 1"),
        ({"probe": torch.zeros(2, 3)}, "pass model_spec too"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(NdtError, match=match):
        Phase2Checkpointer(tmp_path, **{"capture_interval": 1, **kwargs})


def test_missing_probe_file_is_reported(tmp_path):
    checkpointer = Phase2Checkpointer(tmp_path, 1, model_spec="mlp", probe=tmp_path / "nope")
    with pytest.raises(NdtError, match="probe file .*nope does not exist"):
        checkpointer.save_checkpoint(mlp(), 0)
