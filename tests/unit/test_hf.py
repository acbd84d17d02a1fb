"""Hugging Face models: built from config.json, loaded through transformers' loading rules."""

from __future__ import annotations

import json
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file

from ndt.errors import ModelSpecError, WeightsMismatchError
from ndt.io.checkpoints import discover_checkpoints
from ndt.io.manifest import ModelSpec
from ndt.io.probe import save_probe
from ndt.models.hf import build_hf_model, find_config, load_hf_weights
from ndt.models.inspection import list_layers
from ndt.models.loading import load_checkpoint, run_model_spec
from ndt.models.spec import build_model
from ndt.replay.engine import layer_spectra, prepare_run

transformers = pytest.importorskip("transformers")


def tiny_config() -> transformers.GPT2Config:
    return transformers.GPT2Config(
        n_layer=2, n_embd=16, n_head=2, vocab_size=24, n_positions=12,
        bos_token_id=0, eos_token_id=0,
    )  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Two save_pretrained folders of a tied-embedding GPT-2, as Trainer lays them out."""
    root = tmp_path_factory.mktemp("hf-run")
    models = {}
    for step in (10, 20):
        torch.manual_seed(step)
        model = transformers.GPT2LMHeadModel(tiny_config())
        model.save_pretrained(root / f"checkpoint-{step}")
        models[step] = model
    ids = torch.randint(0, 24, (12, 6), generator=torch.Generator().manual_seed(0))
    save_probe(root / "probe.safetensors", ids, extras={"attention_mask": torch.ones_like(ids)})
    return root, models


def test_tied_weights_are_left_out_on_disk_and_restored_on_load(run):
    root, models = run
    on_disk = load_file(root / "checkpoint-20" / "model.safetensors")
    assert "lm_head.weight" not in on_disk  # save_pretrained drops the tied copy
    model = build_hf_model(root)
    assert type(model).__name__ == "GPT2LMHeadModel"
    load_hf_weights(model, on_disk, "checkpoint-20")
    for name, tensor in models[20].state_dict().items():
        torch.testing.assert_close(model.state_dict()[name], tensor, rtol=0, atol=0)
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()


def test_folder_with_config_needs_no_model(run):
    root, models = run
    assert find_config(root) == root / "checkpoint-10" / "config.json"
    assert run_model_spec(root) == ModelSpec("hf")
    setup = prepare_run(root, probe=root / "probe.safetensors", device="cpu")
    # lm_head (16 -> 24) is wider than its input: left out by default, and said so.
    assert setup.layers == ["transformer.h.0", "transformer.h.1"]
    assert setup.notices[0].startswith("lm_head (16 -> 24, wider than its input)")
    checkpoint = discover_checkpoints(root, exclude=[root / "probe.safetensors"])[1]
    load_checkpoint(setup.model, checkpoint, setup.device)
    spectra = layer_spectra(setup.model, setup.probe, setup.layers)
    # The same layer output straight from the model transformers loads from the folder.
    loaded = transformers.GPT2LMHeadModel.from_pretrained(
        root / "checkpoint-20", local_files_only=True
    ).eval()
    with torch.no_grad():
        # hidden_states[1] is block 0's output (the last entry has ln_f applied).
        hidden = loaded(setup.probe.inputs, output_hidden_states=True).hidden_states[1]
    rows = hidden.reshape(-1, 16).double()
    rows -= rows.mean(0)
    expected = torch.linalg.svdvals(rows) ** 2
    got = torch.as_tensor(spectra["transformer.h.0"].eigenvalues)
    torch.testing.assert_close(got[: len(expected)], expected, rtol=1e-4, atol=1e-6)


def test_missing_and_unexpected_keys_are_named(run):
    root, _ = run
    state = load_file(root / "checkpoint-10" / "model.safetensors")
    state.pop("transformer.h.1.mlp.c_fc.weight")
    state["transformer.extra.weight"] = torch.zeros(2)
    model = build_hf_model(root)
    with pytest.raises(WeightsMismatchError) as info:
        load_hf_weights(model, state, "checkpoint-10/model.safetensors")
    message = str(info.value)
    assert "checkpoint-10/model.safetensors does not fit GPT2LMHeadModel" in message
    assert "missing transformer.h.1.mlp.c_fc.weight" in message
    assert "unexpected transformer.extra.weight" in message


def test_mis_shaped_and_integer_weights_are_refused(run):
    root, _ = run
    state = load_file(root / "checkpoint-10" / "model.safetensors")
    model = build_hf_model(root)
    wrong = dict(state, **{"transformer.wpe.weight": torch.zeros(13, 16)})
    with pytest.raises(WeightsMismatchError, match="shape mismatch transformer.wpe.weight"):
        load_hf_weights(model, wrong, "c")
    integer = dict(state, **{"transformer.wpe.weight": torch.zeros(12, 16, dtype=torch.int8)})
    with pytest.raises(WeightsMismatchError, match=r"integer weights .*wpe.weight \(int8\)"):
        load_hf_weights(model, integer, "c")


def test_custom_code_is_refused(tmp_path):
    config = tiny_config().to_dict()
    config["auto_map"] = {"AutoModel": "modeling_mine.MyModel"}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelSpecError, match=r"needs the checkpoint's own code \(auto_map"):
        build_hf_model(tmp_path)


def test_explicit_hf_without_config_names_the_folder(tmp_path):
    with pytest.raises(ModelSpecError, match=r"--model hf: no config.json in"):
        build_model(ModelSpec("hf"), tmp_path)
    with pytest.raises(ModelSpecError, match="takes no --model-kwargs"):
        build_model(ModelSpec("hf", {"x": 1}), tmp_path)


def test_unknown_architecture_falls_back_to_automodel(tmp_path):
    config = tiny_config()
    config.architectures = ["NotInTransformers"]
    config.save_pretrained(tmp_path)
    assert type(build_hf_model(tmp_path)).__name__ == "GPT2Model"


def test_without_transformers_one_line_says_what_to_install(run, monkeypatch):
    root, _ = run
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ModelSpecError, match=r"pip install 'ndt-replay\[hf\]'"):
        build_hf_model(root)


def test_layers_listing_and_checkpoint_check(run, tmp_path):
    root, _ = run
    listing = list_layers(ckpt_dir=root, checkpoint=root / "checkpoint-10" / "model.safetensors")
    assert listing.spec == ModelSpec("hf")
    assert [i.name for i in listing.layers if i.tracked] == [
        "transformer.h.0", "transformer.h.1",
    ]  # fmt: skip
    state = load_file(root / "checkpoint-10" / "model.safetensors")
    state.pop("transformer.ln_f.bias")
    save_file(state, tmp_path / "broken.safetensors")
    with pytest.raises(WeightsMismatchError, match="missing transformer.ln_f.bias"):
        list_layers(ckpt_dir=root, checkpoint=tmp_path / "broken.safetensors")


def test_layers_count_parameters_recursively(run):
    root, models = run
    listing = {i.name: i.n_parameters for i in list_layers(ckpt_dir=root).layers}
    block = models[10].transformer.h[0]
    direct = sum(p.numel() for p in block.parameters())
    assert listing["transformer.h.0"] == direct > 0
    assert listing["transformer.h.0.mlp"] == block.mlp.c_fc.weight.numel() + 16 * 4 + (
        block.mlp.c_proj.weight.numel() + 16
    )
    assert listing["lm_head"] == 24 * 16  # its (tied) weight, vocab x n_embd
    assert listing["transformer"] == sum(p.numel() for p in models[10].transformer.parameters())


def test_keys_renamed_on_disk_load_through_transformers(tmp_path):
    """transformers 5 saves ViT with its old key names and renames them on load."""
    config = transformers.ViTConfig(
        image_size=8, patch_size=2, num_channels=1, hidden_size=16, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=32, num_labels=10,
    )  # fmt: skip
    torch.manual_seed(0)
    transformers.ViTForImageClassification(config).save_pretrained(tmp_path / "checkpoint-1")
    on_disk = load_file(tmp_path / "checkpoint-1" / "model.safetensors")
    model = build_hf_model(tmp_path)
    in_memory = set(model.state_dict())
    if set(on_disk) <= in_memory:
        pytest.skip("this transformers saves ViT under its in-memory names")
    load_hf_weights(model, on_disk, "checkpoint-1")
    reference = transformers.ViTForImageClassification.from_pretrained(
        tmp_path / "checkpoint-1", local_files_only=True
    )
    for name, tensor in reference.state_dict().items():
        torch.testing.assert_close(model.state_dict()[name], tensor, rtol=0, atol=0)
