"""Checkpoint discovery, step parsing and strict loading."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from ndt.errors import CheckpointError, WeightsMismatchError
from ndt.io.checkpoints import (
    discover_checkpoints,
    load_weights,
    parse_step_range,
    read_state_dict,
    save_checkpoint,
    step_from_name,
)
from ndt.models.zoo import mlp


def write(path: Path, step: int | None = None, tensors: dict | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"step": str(step)} if step is not None else None
    save_file(tensors or {"w": torch.zeros(2)}, path, metadata=metadata)
    return path


@pytest.mark.parametrize(
    ("name", "step"),
    [("step_1200", 1200), ("model_step_1200", 1200), ("checkpoint-1200", 1200),
     ("step1200", 1200), ("1200", 1200), ("ckpt_7", 7), ("model", None), ("final", None)],
)  # fmt: skip
def test_step_from_name(name, step):
    assert step_from_name(name) == step


def test_flat_and_nested_layouts_sorted_by_step(tmp_path):
    write(tmp_path / "checkpoint-1200" / "model.safetensors")
    write(tmp_path / "step200" / "model.safetensors")
    write(tmp_path / "step_000050.safetensors")
    write(tmp_path / "final.safetensors", step=5000)  # the header wins over the name
    found = discover_checkpoints(tmp_path)
    assert [c.step for c in found] == [50, 200, 1200, 5000]
    assert found[1].path == tmp_path / "step200" / "model.safetensors"


def test_shards_form_one_checkpoint(tmp_path):
    write(
        tmp_path / "checkpoint-10" / "model-00001-of-00002.safetensors",
        tensors={"a": torch.ones(1)},
    )
    write(
        tmp_path / "checkpoint-10" / "model-00002-of-00002.safetensors",
        tensors={"b": torch.ones(1)},
    )
    (found,) = discover_checkpoints(tmp_path)
    assert found.step == 10 and len(found.files) == 2
    assert set(read_state_dict(found)) == {"a", "b"}


def test_selection_by_range_and_every(tmp_path):
    for step in range(0, 100, 10):
        write(tmp_path / f"step_{step}.safetensors")
    assert [c.step for c in discover_checkpoints(tmp_path, steps=(20, 60))] == [20, 30, 40, 50, 60]
    assert [c.step for c in discover_checkpoints(tmp_path, every=4)] == [0, 40, 80]
    assert [c.step for c in discover_checkpoints(tmp_path, steps=(None, 15))] == [0, 10]


def test_legacy_files_only_without_safetensors(tmp_path):
    torch.save({"w": torch.ones(2)}, tmp_path / "step_5.pt")
    (found,) = discover_checkpoints(tmp_path)
    assert found.step == 5 and torch.equal(read_state_dict(found)["w"], torch.ones(2))
    write(tmp_path / "step_6.safetensors")
    assert [c.step for c in discover_checkpoints(tmp_path)] == [6]  # optimizer.pt etc. ignored


def test_probe_beside_checkpoints_is_excluded(tmp_path):
    write(tmp_path / "step_1.safetensors")
    probe = write(tmp_path / "probe.safetensors")
    assert [c.step for c in discover_checkpoints(tmp_path, exclude=[probe])] == [1]


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        discover_checkpoints(tmp_path / "missing")
    with pytest.raises(CheckpointError, match=r"no \*\.safetensors files in"):
        discover_checkpoints(tmp_path)
    write(tmp_path / "final.safetensors")
    with pytest.raises(CheckpointError, match="cannot read a step from 'final.safetensors'"):
        discover_checkpoints(tmp_path)


def test_duplicate_steps_name_both_files(tmp_path):
    write(tmp_path / "step_100.safetensors")
    write(tmp_path / "checkpoint-100" / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"two checkpoints have step 100: .* and "):
        discover_checkpoints(tmp_path)


def test_truncated_file_is_a_checkpoint_error(tmp_path):
    path = save_checkpoint(mlp(4, (3,), 2), tmp_path, 3)
    path.write_bytes(path.read_bytes()[:-20])
    (found,) = discover_checkpoints(tmp_path)  # the step still comes from the header
    with pytest.raises(CheckpointError, match="cannot read step_00000003.safetensors"):
        read_state_dict(found)


def test_save_then_load_round_trip(tmp_path):
    model = mlp(4, (3,), 2)
    path = save_checkpoint(model, tmp_path, 42)
    (found,) = discover_checkpoints(tmp_path)
    assert found.step == 42 and path.name == "step_00000042.safetensors"
    other = mlp(4, (3,), 2)
    load_weights(other, read_state_dict(found), found.name)
    for a, b in zip(model.state_dict().values(), other.state_dict().values(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("prefix", ["module.", "_orig_mod.", "model.", "module._orig_mod."])
def test_wrapper_prefixes_are_removed(prefix):
    model = mlp(4, (3,), 2)
    state = {prefix + k: v + 1 for k, v in model.state_dict().items()}
    load_weights(model, state, "x")
    assert torch.equal(model.state_dict()["fc1.weight"], state[prefix + "fc1.weight"])


def test_mismatch_names_checkpoint_and_keys():
    model = mlp(4, (3,), 2)
    state = dict(model.state_dict())
    del state["head.bias"]
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(
        WeightsMismatchError,
        match=r"step_1 does not fit the model: missing head.bias; unexpected extra.weight",
    ):
        load_weights(model, state, "step_1")
    state = dict(mlp(4, (5,), 2).state_dict())
    with pytest.raises(WeightsMismatchError, match=r"shape mismatch fc1.bias \(5,\) vs \(3,\)"):
        load_weights(model, state, "step_1")


def test_integer_weights_for_a_float_model_are_refused():
    model = mlp(4, (3,), 2)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["fc1.weight"] = torch.ones(3, 4, dtype=torch.int8)
    with pytest.raises(WeightsMismatchError, match=r"step_1 holds integer weights .*fc1.weight"):
        load_weights(model, state, "step_1")
    # bf16 weights are floats: loaded, upcast exactly to the model's float32.
    state["fc1.weight"] = torch.full((3, 4), 0.15625, dtype=torch.bfloat16)
    load_weights(model, state, "step_1")
    assert model.fc1.weight.dtype == torch.float32
    assert torch.equal(model.fc1.weight, torch.full((3, 4), 0.15625))


def test_parse_step_range():
    assert parse_step_range("1000:5000") == (1000, 5000)
    assert parse_step_range(":5000") == (None, 5000)
    assert parse_step_range("7") == (7, 7)
    with pytest.raises(CheckpointError, match="--steps 'a:b' is not a range"):
        parse_step_range("a:b")


def trainer_state(folder: Path, global_step: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "trainer_state.json").write_text(f'{{"global_step": {global_step}, "epoch": 1.0}}')


@pytest.mark.parametrize(
    ("name", "step"),
    [("global_step1000", 1000), ("iter_0001000", 1000), ("step1000", 1000),
     ("checkpoint-1000", 1000)],
)  # fmt: skip
def test_pythia_megatron_deepspeed_names(name, step):
    assert step_from_name(name) == step


def test_step_sources_in_priority_order(tmp_path):
    write(tmp_path / "a" / "model.safetensors", step=7)  # metadata
    write(tmp_path / "checkpoint-500" / "model.safetensors")
    trainer_state(tmp_path / "checkpoint-500", 512)  # trainer_state.json beats the name
    write(tmp_path / "global_step900" / "model.safetensors")
    found = discover_checkpoints(tmp_path)
    assert [(c.step, c.step_source) for c in found] == [
        (7, "metadata"),
        (512, "trainer_state.json global_step"),
        (900, "name 'global_step900'"),
    ]


def test_trainer_root_save_is_skipped_with_a_note(tmp_path):
    for step in (100, 200):
        write(tmp_path / f"checkpoint-{step}" / "model.safetensors")
        trainer_state(tmp_path / f"checkpoint-{step}", step)
    write(tmp_path / "model.safetensors")  # trainer.save_model(): no step anywhere
    notes: list[str] = []
    assert [c.step for c in discover_checkpoints(tmp_path, notes=notes)] == [100, 200]
    assert notes == [
        "skipped model.safetensors: no step in its name, its metadata or a trainer_state.json "
        "(a final save_model() copy?)"
    ]
    # With trainer.save_state() the root has the last step: it repeats checkpoint-200.
    trainer_state(tmp_path, 200)
    notes.clear()
    assert [c.path.parent.name for c in discover_checkpoints(tmp_path, notes=notes)] == [
        "checkpoint-100", "checkpoint-200",
    ]  # fmt: skip
    assert notes == [
        "skipped model.safetensors: it repeats step 200 of checkpoint-200/model.safetensors"
    ]


def test_a_single_checkpoint_folder_reads_its_own_step(tmp_path):
    write(tmp_path / "checkpoint-300" / "model.safetensors")
    (found,) = discover_checkpoints(tmp_path / "checkpoint-300")
    assert (found.step, found.step_source) == (300, "name 'checkpoint-300'")


def test_accelerate_save_indices_warn_or_scale(tmp_path):
    for index in range(3):
        write(tmp_path / "checkpoints" / f"checkpoint_{index}" / "model.safetensors")
    notes: list[str] = []
    found = discover_checkpoints(tmp_path, notes=notes)
    assert [(c.step, c.step_source) for c in found] == [(i, "save index") for i in range(3)]
    assert len(notes) == 1 and "accelerate's save counter" in notes[0]
    assert "--step-scale" in notes[0]
    notes.clear()
    found = discover_checkpoints(tmp_path, step_scale=20, notes=notes)
    assert [(c.step, c.step_source) for c in found] == [
        (0, "save index x 20"), (20, "save index x 20"), (40, "save index x 20"),
    ]  # fmt: skip
    assert notes == []
    # A step saved with the state wins over the index.
    write(tmp_path / "checkpoints" / "checkpoint_1" / "model.safetensors", step=150)
    steps = [c.step for c in discover_checkpoints(tmp_path, step_scale=20)]
    assert steps == [0, 40, 150]
    with pytest.raises(CheckpointError, match="--step-scale must be at least 1"):
        discover_checkpoints(tmp_path, step_scale=0)


def test_sharded_index_names_a_missing_shard(tmp_path):
    folder = tmp_path / "checkpoint-10"
    write(folder / "model-00001-of-00002.safetensors", tensors={"a": torch.ones(1)})
    (folder / "model.safetensors.index.json").write_text(
        '{"weight_map": {"a": "model-00001-of-00002.safetensors", '
        '"b": "model-00002-of-00002.safetensors"}}'
    )
    with pytest.raises(CheckpointError, match="lists model-00002-of-00002.safetensors, which is"):
        discover_checkpoints(tmp_path)
    # Beside complete checkpoints it is skipped with a note (the next run takes it).
    write(tmp_path / "checkpoint-20" / "model.safetensors", tensors={"a": torch.ones(1)})
    notes = []
    assert [c.step for c in discover_checkpoints(tmp_path, notes=notes)] == [20]
    assert notes == [
        "skipped checkpoint-10: model.safetensors.index.json lists "
        f"model-00002-of-00002.safetensors, which is missing from {folder}"
    ]


def test_step_scale_that_maps_nothing_says_so(tmp_path):
    for step in (10, 20):
        write(tmp_path / f"checkpoint-{step}" / "model.safetensors")
    notes = []
    assert [c.step for c in discover_checkpoints(tmp_path, step_scale=5, notes=notes)] == [10, 20]
    assert notes == [
        "--step-scale 5 changed nothing: it maps accelerate's checkpoint_<i> save indices, "
        "and no checkpoint here has its step from one"
    ]


def test_trainer_state_files_beside_legacy_weights_are_not_checkpoints(tmp_path):
    folder = tmp_path / "checkpoint-500"
    folder.mkdir()
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth", "training_args.bin",
                 "scaler.pt", "rng_state_1.pth"):  # fmt: skip
        torch.save({"x": torch.zeros(1)}, folder / name)
    torch.save({"w": torch.ones(2)}, folder / "pytorch_model.bin")
    trainer_state(folder, 500)
    (found,) = discover_checkpoints(tmp_path)
    assert found.path.name == "pytorch_model.bin" and found.step == 500
    assert set(read_state_dict(found)) == {"w"}


def test_checkpoint_underscore_names_elsewhere_are_steps(tmp_path):
    write(tmp_path / "checkpoint_300" / "model.safetensors")
    notes: list[str] = []
    (found,) = discover_checkpoints(tmp_path, notes=notes)
    assert (found.step, found.step_source, notes) == (300, "name 'checkpoint_300'", [])
    (tmp_path / "checkpoint_300" / "random_states_0.pkl").write_bytes(b"")
    (found,) = discover_checkpoints(tmp_path, notes=notes)
    assert found.step_source == "save index" and len(notes) == 1
