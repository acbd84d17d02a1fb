"""`ndt track`, `ndt layers` and `ndt compare` on a run saved by transformers' Trainer
(fixtures/hf-gpt2), and on bf16, sharded and accelerate-style copies of it, with no --model.

The reference is independent of ndt: the model transformers loads from each checkpoint
folder, forward hooks registered here, and the metrics on numpy's float64 SVD."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import assert_one_error
from safetensors import safe_open

from ndt.io.store import read_results

sys.path.insert(0, str(Path(__file__).parents[1] / "unit"))
from float64_reference import reference_metrics  # noqa: E402

transformers = pytest.importorskip("transformers")

FIXTURE = Path(__file__).parents[2] / "fixtures" / "hf-gpt2"
RUN = FIXTURE / "run"
PROBE = FIXTURE / "probe.safetensors"
LAYERS = ["transformer.h.0", "transformer.h.1", "lm_head"]
BLOCKS = LAYERS[:2]  # the default: lm_head (16 -> 17, wider than its input) is left out
WITH_HEAD = ("--layers", "@blocks", "--layers", "lm_head")
STEPS = [50, 100, 150, 200, 250, 300]


def pool(value: np.ndarray, mask: np.ndarray, tokens: str) -> np.ndarray:
    """Rows of a (B, T, D) output by --tokens, written out with numpy indexing."""
    valid = mask.astype(bool)
    if tokens == "all":
        return value[valid]
    if tokens == "mean":
        return np.stack([value[i, valid[i]].mean(0) for i in range(len(value))])
    if tokens == "first":
        return np.stack([value[i, np.flatnonzero(valid[i])[0]] for i in range(len(value))])
    if tokens == "last":
        return np.stack([value[i, np.flatnonzero(valid[i])[-1]] for i in range(len(value))])
    return value[:, int(tokens.removeprefix("pos:"))]


def reference(
    folder: Path, dtype: torch.dtype = torch.float32, tokens: str = "all"
) -> dict[str, dict[str, float]]:
    """Metrics per layer of the model transformers loads from `folder`, run in `dtype`, with
    the rows --tokens picks among the unpadded positions."""
    model = transformers.GPT2LMHeadModel.from_pretrained(
        folder, local_files_only=True, dtype=dtype
    ).eval()
    from safetensors.torch import load_file

    probe = load_file(PROBE)
    outputs: dict[str, np.ndarray] = {}
    modules = dict(model.named_modules())
    handles = [
        modules[name].register_forward_hook(
            lambda _m, _a, out, name=name: outputs.__setitem__(
                name, (out[0] if isinstance(out, tuple) else out).double().numpy()
            )
        )
        for name in LAYERS
    ]
    with torch.no_grad():
        model(probe["inputs"], attention_mask=probe["attention_mask"])
    for handle in handles:
        handle.remove()
    mask = probe["attention_mask"].numpy()
    return {name: reference_metrics(pool(value, mask, tokens)) for name, value in outputs.items()}


def assert_matches(
    results, folders: dict[int, Path], dtype=torch.float32, rtol=1e-4, tokens="all"
) -> None:
    assert results.steps.tolist() == sorted(folders)
    for row, step in enumerate(sorted(folders)):
        expected = reference(folders[step], dtype, tokens)
        for column, layer in enumerate(results.layers):
            for metric, values in results.metrics.items():
                np.testing.assert_allclose(
                    values[row, column], expected[layer][metric], rtol=rtol, atol=1e-12,
                    err_msg=f"step {step} {layer} {metric}",
                )  # fmt: skip


def test_trainer_run_needs_no_model(ndt, tmp_path):
    out = tmp_path / "r.h5"
    result = ndt("track", RUN, "--probe", PROBE, "--out", out, *WITH_HEAD)
    assert result.exit_code == 0, result.output
    assert f"{out}: 6 checkpoints x 3 layers (6 computed, 0 already there)" in result.stdout
    # trainer.save_model()'s final copy at the root has no step of its own: skipped.
    assert "Warning: skipped model.safetensors: no step in its name" in result.stderr
    results = read_results(out)
    assert results.layers == LAYERS
    assert results.provenance.model == "hf" and results.provenance.dtype == "float32"
    assert_matches(results, {s: RUN / f"checkpoint-{s}" for s in STEPS})


def test_default_layers_leave_the_vocabulary_head_out_and_say_so(ndt, tmp_path):
    out = tmp_path / "r.h5"
    result = ndt("track", RUN, "--probe", PROBE, "--out", out, "--steps", "300")
    assert result.exit_code == 0, result.output
    assert f"{out}: 1 checkpoint x 2 layers (1 computed, 0 already there)" in result.stdout
    assert read_results(out).layers == BLOCKS
    config = json.loads((RUN / "config.json").read_text())
    width = f"{config['n_embd']} -> {config['vocab_size']}"
    assert (
        f"Note: lm_head ({width}, wider than its input) is not tracked by default; add it "
        "with --layers @blocks --layers lm_head" in " ".join(result.stderr.split())
    )
    # Naming layers says nothing about the head.
    named = ndt("track", RUN, "--probe", PROBE, "--out", tmp_path / "b.h5", "--steps", "300",
                "--layers", "@blocks")  # fmt: skip
    assert named.exit_code == 0, named.output
    assert "lm_head" not in named.stderr


def test_extending_a_file_keeps_its_recorded_layers_probe_and_tokens(ndt, tmp_path):
    """A file tracked with the head (as the default was before 0.2) is extended, not refused,
    by a run that names no layers, with the probe and the token rows it records."""
    out = tmp_path / "r.h5"
    probe = tmp_path / "probe.safetensors"
    shutil.copy(PROBE, probe)
    first = ndt("track", RUN, "--probe", probe, "--out", out, "--quiet", "--steps", "250",
                "--tokens", "last", *WITH_HEAD)  # fmt: skip
    assert first.exit_code == 0, first.output
    again = ndt("track", RUN, "--out", out, "--quiet", "--steps", "250:300")
    assert again.exit_code == 0, again.output
    results = read_results(out)
    assert results.layers == LAYERS and results.steps.tolist() == [250, 300]
    assert results.provenance.tokens == "last"
    assert (
        f"{out} records the layers transformer.h.0, transformer.h.1, lm_head; tracking "
        "those" in " ".join(again.stderr.split())
    )
    assert_matches(results, {s: RUN / f"checkpoint-{s}" for s in (250, 300)}, tokens="last")
    # A recorded probe that is gone is not guessed at: the usual error names the option.
    probe.unlink()
    gone = ndt("track", RUN, "--out", out, "--quiet", "--steps", "150:300")
    assert_one_error(gone, "no probe for")


def test_probe_has_padding_that_no_row_takes():
    from safetensors.torch import load_file

    mask = load_file(PROBE)["attention_mask"]
    assert int((mask == 0).sum()) == 13  # the 13 shorter prompts, padded by one position


@pytest.mark.parametrize("tokens", ["last", "mean", "first", "pos:2"])
def test_tokens_pool_one_row_per_sample(ndt, tmp_path, tokens):
    out = tmp_path / "r.h5"
    result = ndt("track", RUN, "--probe", PROBE, "--out", out, "--quiet", "--tokens", tokens,
                 "--steps", "100:150")  # fmt: skip
    assert result.exit_code == 0, result.output
    results = read_results(out)
    assert results.provenance.tokens == tokens
    assert_matches(results, {s: RUN / f"checkpoint-{s}" for s in (100, 150)}, tokens=tokens)


def test_tokens_errors_are_one_line(ndt, tmp_path):
    result = ndt("track", RUN, "--probe", PROBE, "--out", tmp_path / "r.h5", "--tokens", "cls")
    assert_one_error(result, "--tokens 'cls' is not one of all, first, last, mean, pos:K")
    result = ndt("track", RUN, "--probe", PROBE, "--out", tmp_path / "r.h5", "--tokens", "pos:4")
    assert_one_error(result, "--tokens pos:4 is padding in 13 probe samples")


def test_fixture_probe_is_what_ndt_probe_text_writes(ndt, tmp_path):
    written = tmp_path / "probe.safetensors"
    result = ndt("probe", written, "--text", FIXTURE / "probe.tsv", "--tokenizer",
                 FIXTURE / "tokenizer")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "attention_mask" in result.stdout and "Wrote" in result.stdout
    # One column per field: the shapes start at the same offset on every tensor's line.
    lines = [line for line in result.stdout.splitlines() if line.startswith("  ")]
    assert len(lines) == 3 and len({line.index("104") for line in lines}) == 1
    assert written.read_bytes() == PROBE.read_bytes()
    result = ndt("probe", tmp_path / "x.safetensors", "--text", FIXTURE / "probe.tsv")
    assert_one_error(result, "--text needs --tokenizer DIR")


def test_dry_run_says_where_steps_come_from(ndt):
    result = ndt("track", RUN, "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    listing = json.loads(result.stdout)
    assert [(c["step"], c["from"]) for c in listing["checkpoints"]] == [
        (s, "trainer_state.json global_step") for s in STEPS
    ]
    assert listing["notes"][0].startswith("skipped model.safetensors")


def resave(tmp_path: Path, name: str, steps: list[int], dtype=None, **save) -> Path:
    """Checkpoints of the fixture loaded by transformers, cast to `dtype`, saved again."""
    root = tmp_path / name
    for step in steps:
        source = RUN / f"checkpoint-{step}"
        model = transformers.GPT2LMHeadModel.from_pretrained(source, local_files_only=True)
        if dtype is not None:
            model = model.to(dtype)
        model.save_pretrained(root / f"checkpoint-{step}", **save)
        shutil.copy(source / "trainer_state.json", root / f"checkpoint-{step}")
    return root


def test_bf16_checkpoints_run_in_float32(ndt, tmp_path):
    root = resave(tmp_path, "bf16", [100, 300], dtype=torch.bfloat16)
    with safe_open(root / "checkpoint-100" / "model.safetensors", "pt") as f:
        assert f.get_tensor("transformer.h.0.mlp.c_fc.weight").dtype == torch.bfloat16
    out = tmp_path / "r.h5"
    result = ndt("track", root, "--probe", PROBE, "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    # The reference model: the bf16 weights upcast to float32, run in float32.
    assert_matches(read_results(out), {s: root / f"checkpoint-{s}" for s in (100, 300)})


def test_dtype_option_sets_the_forward_precision(ndt, tmp_path):
    out = tmp_path / "r64.h5"
    result = ndt("track", RUN, "--probe", PROBE, "--out", out, "--quiet", "--dtype", "float64",
                 "--steps", "300")  # fmt: skip
    assert result.exit_code == 0, result.output
    results = read_results(out)
    assert results.provenance.dtype == "float64"
    assert_matches(results, {300: RUN / "checkpoint-300"}, dtype=torch.float64, rtol=1e-9)
    # Extending the file without --dtype keeps its dtype; another one is refused.
    again = ndt("track", RUN, "--out", out, "--quiet", "--steps", "250:300")
    assert again.exit_code == 0, again.output
    results = read_results(out)
    assert results.provenance.dtype == "float64" and results.steps.tolist() == [250, 300]
    assert_matches(results, {s: RUN / f"checkpoint-{s}" for s in (250, 300)},
                   dtype=torch.float64, rtol=1e-9)  # fmt: skip
    other = ndt("track", RUN, "--out", out, "--quiet", "--dtype", "float32")
    assert_one_error(other, "was made with dtype='float64', not 'float32'")


def test_sharded_copy_gives_identical_values(ndt, tmp_path):
    root = resave(tmp_path, "sharded", [150, 250], max_shard_size="10KB")
    shards = sorted((root / "checkpoint-150").glob("model-*-of-*.safetensors"))
    assert len(shards) > 1
    assert (root / "checkpoint-150" / "model.safetensors.index.json").is_file()
    listing = json.loads(ndt("track", root, "--dry-run", "--json").stdout)["checkpoints"]
    assert listing[0]["file"] == f"checkpoint-150/{shards[0].name}"
    assert listing[0]["files"] == len(shards)
    shown = ndt("track", root, "--dry-run").stdout
    assert f"(+{len(shards) - 1} shards)" in " ".join(shown.split())
    # A shard gone from one checkpoint: that one is skipped, named; the other is tracked.
    missing = sorted((root / "checkpoint-250").glob("model-*-of-*.safetensors"))[-1]
    moved = missing.rename(tmp_path / missing.name)
    partial = ndt("track", root, "--probe", PROBE, "--out", tmp_path / "p.h5", "--quiet")
    assert partial.exit_code == 0, partial.output
    assert read_results(tmp_path / "p.h5").steps.tolist() == [150]
    assert (
        f"Warning: skipped checkpoint-250: model.safetensors.index.json lists {missing.name}"
        in " ".join(partial.stderr.split())
    )
    moved.rename(missing)
    sharded, whole = tmp_path / "sharded.h5", tmp_path / "whole.h5"
    assert ndt("track", root, "--probe", PROBE, "--out", sharded, "--quiet").exit_code == 0
    ndt("track", RUN, "--probe", PROBE, "--out", whole, "--quiet", "--steps", "150:250")
    a, b = read_results(sharded), read_results(whole)
    keep = np.isin(b.steps, [150, 250])
    for metric in a.metrics:
        np.testing.assert_array_equal(a.metrics[metric], b.metrics[metric][keep])


def accelerate_copy(tmp_path: Path, steps: list[int]) -> Path:
    """accelerate's save_state layout: checkpoints/checkpoint_<i>/model.safetensors, with the
    model's config.json at the project root."""
    root = tmp_path / "acc"
    for index, step in enumerate(steps):
        folder = root / "checkpoints" / f"checkpoint_{index}"
        folder.mkdir(parents=True)
        shutil.copy(RUN / f"checkpoint-{step}" / "model.safetensors", folder)
    shutil.copy(RUN / "config.json", root)
    return root


def test_accelerate_folders_warn_then_map_with_step_scale(ndt, tmp_path):
    root = accelerate_copy(tmp_path, [50, 100, 150])
    listing = ndt("track", root, "--dry-run", "--json")
    assert [c["step"] for c in json.loads(listing.stdout)["checkpoints"]] == [0, 1, 2]
    assert "numbered by accelerate's save counter" in listing.stderr
    out = tmp_path / "r.h5"
    result = ndt("track", root, "--probe", PROBE, "--out", out, "--quiet", "--step-scale", 50)
    assert result.exit_code == 0, result.output
    assert "Warning" not in result.stderr
    results = read_results(out)
    assert results.steps.tolist() == [0, 50, 100]
    assert results.provenance.step_scale == 50
    folders = {i * 50: RUN / f"checkpoint-{s}" for i, s in enumerate([50, 100, 150])}
    assert_matches(results, folders)
    # A fourth save; the run that extends the file without --step-scale keeps its scale.
    folder = root / "checkpoints" / "checkpoint_3"
    folder.mkdir()
    shutil.copy(RUN / "checkpoint-200" / "model.safetensors", folder)
    again = ndt("track", root, "--out", out, "--quiet")
    assert again.exit_code == 0, again.output
    assert "changed since" not in again.stderr and "Warning" not in again.stderr
    results = read_results(out)
    assert results.steps.tolist() == [0, 50, 100, 150]
    assert_matches(results, {**folders, 150: RUN / "checkpoint-200"})
    other = ndt("track", root, "--out", out, "--quiet", "--step-scale", 10)
    assert_one_error(other, "was made with step_scale=50, not 10")


def test_layers_and_compare_need_no_model(ndt, tmp_path):
    listed = ndt("layers", RUN, "--ckpt", RUN / "checkpoint-50" / "model.safetensors", "--json")
    assert listed.exit_code == 0, listed.output
    listing = json.loads(listed.stdout)
    tracked = [r["name"] for r in listing["layers"] if r["tracked"]]
    assert listing["model"] == "hf {}" and tracked == BLOCKS
    assert listing["notes"][0].startswith("lm_head (16 -> 17, wider than its input)")
    out = tmp_path / "r.h5"
    ndt("track", RUN, "--probe", PROBE, "--out", out, "--quiet")
    written = tmp_path / "compare.json"
    compared = ndt("compare", "--results", out, "--before", 50, "--after", 300, "--json", written)
    assert compared.exit_code == 0, compared.output
    report = json.loads(written.read_text())
    assert report["model"] == "hf {}"
    assert sorted(layer["layer"] for layer in report["layers"]) == BLOCKS
    # Token rows: 104 samples x 5 positions, less the 13 padded ones.
    assert {layer["n_rows"] for layer in report["layers"]} == {104 * 5 - 13}
    assert sorted(report["labels_per_token"]) == BLOCKS
    assert "label is repeated over its tokens" in compared.stderr
    # Pooled: one row per sample, labels not repeated.
    pooled = tmp_path / "last.h5"
    ndt("track", RUN, "--probe", PROBE, "--out", pooled, "--quiet", "--tokens", "last")
    compared = ndt("compare", "--results", pooled, "--before", 50, "--after", 300, "--json",
                   written)  # fmt: skip
    assert compared.exit_code == 0, compared.output
    report = json.loads(written.read_text())
    assert {layer["n_rows"] for layer in report["layers"]} == {104}
    assert report["tokens"] == "last" and report["labels_per_token"] == []
    assert "repeated" not in compared.stderr


def test_custom_code_and_missing_config_are_one_error_line(ndt, tmp_path):
    run = tmp_path / "remote"
    shutil.copytree(RUN / "checkpoint-50", run / "checkpoint-50")
    config = json.loads((run / "checkpoint-50" / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_x.XForCausalLM"}
    (run / "checkpoint-50" / "config.json").write_text(json.dumps(config))
    result = ndt("track", run, "--probe", PROBE, "--out", tmp_path / "r.h5")
    assert_one_error(result, "needs the checkpoint's own code (auto_map: AutoModelForCausalLM)")
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(RUN / "checkpoint-50" / "model.safetensors", bare / "step_50.safetensors")
    result = ndt("track", bare, "--model", "hf", "--probe", PROBE, "--out", tmp_path / "r.h5")
    assert_one_error(result, "--model hf: no config.json in")


def test_a_bf16_forward_would_not_match(ndt, tmp_path):
    """The float32 default is what makes the bf16 test above pass: a bf16 forward pass
    moves the metrics well beyond its tolerance."""
    root = resave(tmp_path, "bf16", [300], dtype=torch.bfloat16)
    out = tmp_path / "r.h5"
    result = ndt("track", root, "--probe", PROBE, "--out", out, "--quiet", "--dtype", "bfloat16")
    assert result.exit_code == 0, result.output
    results = read_results(out)
    assert results.provenance.dtype == "bfloat16"
    expected = reference(root / "checkpoint-300")
    worst = max(
        abs(results.metrics[m][0, c] / expected[layer][m] - 1)
        for c, layer in enumerate(results.layers)
        for m in ("stable_rank", "participation_ratio", "effective_rank")
    )
    assert worst > 1e-3
