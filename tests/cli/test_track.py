"""`ndt track` and `ndt layers` end to end, including every bad input of the issue."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch
from conftest import assert_one_error

from ndt.core.metrics import DEFAULT_METRICS, REGISTRY
from ndt.io.checkpoints import save_checkpoint
from ndt.io.manifest import ModelSpec
from ndt.io.probe import save_probe
from ndt.io.store import read_results
from ndt.models.spec import build_model


def test_track_writes_results_and_summary(ndt, tiny_run, tmp_path):
    out = tmp_path / "r.h5"
    result = ndt("track", tiny_run / "ckpts", "--out", out, "--batch-size", "8")
    assert result.exit_code == 0, result.output
    assert f"{out}: 5 checkpoints x 3 layers (5 computed, 0 already there)" in result.stdout
    assert "stable_rank" in result.stdout and "relu1" in result.stdout
    results = read_results(out)
    assert results.metrics["stable_rank"].shape == (5, 3)
    assert np.isfinite(results.metrics["effective_rank"]).all()


def test_track_definitions_ndtracker_is_recorded(ndt, tiny_run, tmp_path):
    ndt_file, ndtracker_file = tmp_path / "ndt.h5", tmp_path / "ndtracker.h5"
    assert ndt("track", tiny_run / "ckpts", "--out", ndt_file, "-q").exit_code == 0
    result = ndt("track", tiny_run / "ckpts", "--out", ndtracker_file, "--definitions",
                 "ndtracker", "-q")  # fmt: skip
    assert result.exit_code == 0, result.output
    plain, other = read_results(ndt_file), read_results(ndtracker_file)
    assert (other.provenance.definitions, other.provenance.center) == ("ndtracker", False)
    assert (plain.provenance.definitions, plain.provenance.center) == ("ndt", True)
    assert not np.allclose(plain.metrics["stable_rank"], other.metrics["stable_rank"])
    # Extending it without --definitions keeps them; naming the other ones is refused.
    again = ndt("track", tiny_run / "ckpts", "--out", ndtracker_file, "-q", "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["computed"] == []
    assert read_results(ndtracker_file).provenance.definitions == "ndtracker"
    mixed = ndt("track", tiny_run / "ckpts", "--out", ndtracker_file, "-q", "--definitions",
                "ndt")  # fmt: skip
    assert (
        mixed.exit_code == 1 and "ndtracker.h5 was made with center=False, not True" in mixed.stderr
    )


def test_track_json_summary_matches_file(ndt, tiny_run, tmp_path):
    out = tmp_path / "r.h5"
    result = ndt("track", tiny_run / "ckpts", "--out", out, "--json")
    assert result.exit_code == 0
    summary = json.loads(result.stdout)
    results = read_results(out)
    assert summary["computed"] == [0, 10, 20, 30, 40]
    head = next(row for row in summary["layers"] if row["layer"] == "head")
    assert head["last"]["stable_rank"] == results.metrics["stable_rank"][-1, 2]
    again = json.loads(ndt("track", tiny_run / "ckpts", "--out", out, "--json").stdout)
    assert again["computed"] == [] and again["skipped"] == [0, 10, 20, 30, 40]


def test_track_explicit_model_and_probe_and_selection(ndt, tiny_run, tmp_path):
    (tiny_run / "ckpts" / "ndt.toml").unlink()
    out = tmp_path / "r.h5"
    result = ndt(
        "track", tiny_run / "ckpts", "--model", "mlp",
        "--model-kwargs", '{"in_features": 12, "hidden": [16, 8], "n_classes": 3}',
        "--probe", tiny_run / "probe.safetensors", "--out", out,
        "--layers", "fc*", "--metric", "stable_rank", "--steps", "10:30", "--every", "2", "-q",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    results = read_results(out)
    assert results.layers == ["fc1", "fc2"] and list(results.metrics) == ["stable_rank"]
    assert list(results.steps) == [10, 30]


def test_track_fixes_the_malloc_threshold(ndt, tiny_run, tmp_path, monkeypatch):
    import ndt_cli.track

    calls = []
    monkeypatch.setattr(ndt_cli.track, "return_large_blocks_to_os", lambda: calls.append(1))
    result = ndt("track", tiny_run / "ckpts", "--out", tmp_path / "r.h5", "-q")
    assert result.exit_code == 0, result.output
    assert calls == [1]  # the setting that keeps peak memory flat (test_memory_bounds.py)


def test_threads_option_sets_torch_threads(ndt, tiny_run, tmp_path):
    before = torch.get_num_threads()
    try:
        result = ndt("track", tiny_run / "ckpts", "--out", tmp_path / "r.h5", "--threads", "1")
        assert result.exit_code == 0, result.output
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    bad = ndt("track", tiny_run / "ckpts", "--out", tmp_path / "r.h5", "--threads", "0")
    assert bad.exit_code == 2 and "--threads" in bad.output


def test_profile_prints_the_split(ndt, tiny_run, tmp_path):
    result = ndt("track", tiny_run / "ckpts", "--out", tmp_path / "r.h5", "--profile")
    assert "profile over 5 checkpoints: load" in result.stdout
    for part in ("forward", "metrics", "write", "wall"):
        assert f" {part} " in result.stdout


def test_empty_folder(ndt, tmp_path):
    (tmp_path / "ckpts").mkdir()
    save_probe(tmp_path / "p.safetensors", torch.zeros(3, 2))
    result = ndt(
        "track",
        tmp_path / "ckpts",
        "--model",
        "mlp",
        "--probe",
        tmp_path / "p.safetensors",
        "--out",
        tmp_path / "r.h5",
    )
    assert_one_error(result, "no *.safetensors files in")


def test_no_model_and_no_manifest(ndt, tiny_run, monkeypatch):
    monkeypatch.chdir(tiny_run)
    (tiny_run / "ckpts" / "ndt.toml").unlink()
    assert_one_error(ndt("track", tiny_run / "ckpts"), "no model for")


def test_duplicate_steps(ndt, tiny_run, tmp_path):
    model = build_model(ModelSpec("mlp", {"in_features": 12, "hidden": [16, 8], "n_classes": 3}))
    (tiny_run / "ckpts" / "again").mkdir()
    save_checkpoint(model, tiny_run / "ckpts" / "again", 10)
    assert_one_error(
        ndt("track", tiny_run / "ckpts", "--out", tmp_path / "r.h5"), "two checkpoints have step 10"
    )


def test_key_mismatch(ndt, tiny_run, tmp_path):
    result = ndt("track", tiny_run / "ckpts", "--out", tmp_path / "r.h5", "--model", "mlp")
    assert_one_error(
        result, "step_00000000.safetensors does not fit the model: missing fc3.bias, fc3.weight"
    )
    assert not (tmp_path / "r.h5").exists()  # a randomly initialised model is never analysed


def test_truncated_checkpoint_in_the_middle(ndt, tiny_run, tmp_path):
    path = tiny_run / "ckpts" / "step_00000020.safetensors"
    path.write_bytes(path.read_bytes()[:100])
    out = tmp_path / "r.h5"
    result = ndt("track", tiny_run / "ckpts", "--out", out)
    assert_one_error(
        result, "skipped step_00000020.safetensors: cannot read step_00000020.safetensors"
    )
    assert list(read_results(out).steps) == [0, 10, 30, 40]


def test_probe_that_does_not_fit(ndt, tiny_run, tmp_path):
    save_probe(tmp_path / "p.safetensors", torch.zeros(3, 5))
    result = ndt(
        "track",
        tiny_run / "ckpts",
        "--probe",
        tmp_path / "p.safetensors",
        "--out",
        tmp_path / "r.h5",
    )
    assert_one_error(result, "p.safetensors does not fit the model")


def test_nan_weights_are_flagged(ndt, tiny_run, tmp_path):
    model = build_model(ModelSpec("mlp", {"in_features": 12, "hidden": [16, 8], "n_classes": 3}))
    with torch.no_grad():
        model.fc2.bias.fill_(float("nan"))
    save_checkpoint(model, tiny_run / "ckpts", 99)
    result = ndt("track", tiny_run / "ckpts", "--out", tmp_path / "r.h5")
    assert result.exit_code == 0
    assert (
        "Warning: non-finite activations (NaN metrics) in 2 layer-steps, at steps 99"
        in result.stderr
    )


def test_changed_option_refused(ndt, tiny_run, tmp_path):
    out = tmp_path / "r.h5"
    ndt("track", tiny_run / "ckpts", "--out", out, "-q")
    assert_one_error(
        ndt("track", tiny_run / "ckpts", "--out", out, "--no-center"), "was made with center=True"
    )


def test_bad_options(ndt, tiny_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_one_error(
        ndt("track", tiny_run / "ckpts", "--metric", "rankiness"),
        "--metric: unknown metric rankiness",
    )
    assert_one_error(
        ndt("track", tiny_run / "ckpts", "--steps", "x:y"), "--steps 'x:y' is not a range"
    )
    assert_one_error(
        ndt("track", tiny_run / "ckpts", "--layers", "nope*"), "--layers 'nope*' matches no layer"
    )
    assert_one_error(ndt("track", tiny_run / "ckpts", "--device", "cuda:7"), "--device cuda:7")
    assert_one_error(
        ndt("track", tiny_run / "ckpts", "--model-kwargs", "{"), "--model-kwargs is not valid JSON"
    )


def test_layers_command(ndt, tiny_run):
    result = ndt(
        "layers",
        tiny_run / "ckpts",
        "--ckpt",
        tiny_run / "ckpts" / "step_00000010.safetensors",
        "--json",
    )
    listing = json.loads(result.stdout)
    assert listing["architecture"] == "mlp"
    assert [row["name"] for row in listing["layers"]] == ["relu1", "relu2", "head"]
    everything = ndt("layers", "--model", "cnn", "--all")
    assert "conv1" in everything.stdout and "architecture cnn" in everything.stdout
    assert_one_error(
        ndt("layers", "--model", "mlp", "--ckpt", tiny_run / "ckpts" / "step_00000010.safetensors"),
        "does not fit the model",
    )


def test_rerun_without_metric_keeps_a_files_older_metric_set(ndt, tiny_run, tmp_path):
    """A file written before a metric was added (simulated by a subset of --metric) stays
    valid: a rerun without --metric extends it with the metrics it records, in its order,
    and says so in one note; the new steps' values are those of a fresh run."""
    out, fresh = tmp_path / "old.h5", tmp_path / "fresh.h5"
    recorded = ["effective_rank", "stable_rank"]  # not the registry's order, nor all
    first = ndt("track", tiny_run / "ckpts", "--out", out, "--steps", ":20", "-q",
                *[arg for name in recorded for arg in ("--metric", name)])  # fmt: skip
    assert first.exit_code == 0, first.output
    again = ndt("track", tiny_run / "ckpts", "--out", out, "-q")
    assert again.exit_code == 0, again.output
    notes = [line for line in again.stderr.splitlines() if line.startswith("Note:")]
    assert len(notes) == 1, again.stderr
    assert "records the metrics effective_rank, stable_rank" in notes[0]
    assert "participation_ratio" in notes[0] and "--overwrite" in notes[0]
    assert "Error" not in again.stderr
    results = read_results(out)
    assert list(results.metrics) == recorded and results.provenance.metrics == tuple(recorded)
    assert list(results.steps) == [0, 10, 20, 30, 40]
    assert ndt("track", tiny_run / "ckpts", "--out", fresh, "-q").exit_code == 0
    every = read_results(fresh)
    assert list(every.metrics) == list(DEFAULT_METRICS)
    for name in recorded:
        np.testing.assert_allclose(results.metrics[name], every.metrics[name], rtol=1e-12)
    # Run again: nothing to compute, the same single note, the file unchanged.
    before = out.read_bytes()
    third = ndt("track", tiny_run / "ckpts", "--out", out, "-q")
    assert third.exit_code == 0 and third.stderr.count("Note:") == 1
    assert read_results(out).steps.tolist() == [0, 10, 20, 30, 40]
    assert before == out.read_bytes()


def test_rerun_with_another_explicit_metric_is_refused(ndt, tiny_run, tmp_path):
    out = tmp_path / "r.h5"
    assert ndt("track", tiny_run / "ckpts", "--out", out, "--metric", "stable_rank",
               "-q").exit_code == 0  # fmt: skip
    before = out.read_bytes()
    assert_one_error(
        ndt("track", tiny_run / "ckpts", "--out", out, "--metric", "effective_rank"),
        f"{out} was made with metrics=('stable_rank',), not ('effective_rank',)",
    )
    assert_one_error(  # every metric, asked explicitly, is not what the file records either
        ndt("track", tiny_run / "ckpts", "--out", out,
            *[arg for name in DEFAULT_METRICS for arg in ("--metric", name)]),
        "was made with metrics=('stable_rank',)",
    )  # fmt: skip
    assert out.read_bytes() == before
    # --overwrite without --metric starts again with every metric, and says nothing of it.
    fresh = ndt("track", tiny_run / "ckpts", "--out", out, "--overwrite", "-q")
    assert fresh.exit_code == 0 and "Note:" not in fresh.stderr
    assert list(read_results(out).metrics) == list(DEFAULT_METRICS)


def test_a_new_file_without_metric_gets_every_metric_of_the_registry(ndt, tiny_run, tmp_path):
    out = tmp_path / "r.h5"
    result = ndt("track", tiny_run / "ckpts", "--out", out, "-q")
    assert result.exit_code == 0 and "Note:" not in result.stderr
    assert list(read_results(out).metrics) == list(REGISTRY)


@pytest.mark.parametrize(
    ("name", "value"),
    [("step_scale", -3), ("dtype", "garbage"), ("tokens", "pos:x"), ("definitions", "foo"),
     ("dormant_tau", -1.0)],
)  # fmt: skip
def test_extending_a_file_with_an_unusable_recorded_option_names_the_file(
    ndt, tiny_run, tmp_path, name, value
):
    """A run takes left-out options from the file it extends, so a damaged provenance value
    is reported as the file's, not as an option the user never gave (nor used silently)."""
    out = tmp_path / "r.h5"
    assert ndt("track", tiny_run / "ckpts", "--out", out, "-q", "--steps", "0:10").exit_code == 0
    with h5py.File(out, "a") as f:
        f["provenance"].attrs[name] = value
    before = out.read_bytes()
    result = ndt("track", tiny_run / "ckpts", "--out", out, "-q")
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.output
    option = name.replace("_", "-")
    assert " ".join(result.stderr.split()) == (
        f"Error: {out}: provenance/{name} is {value!r}, which no run can use; pass "
        f"--{option} to choose, or --overwrite to recompute the file"
    )
    assert out.read_bytes() == before


def test_extending_a_file_whose_checkpoints_table_lost_a_column_names_it(ndt, tiny_run, tmp_path):
    """Found by tests/fuzz: `checkpoints/file` and the table's `columns` attribute deleted;
    `ndt track` extending the file ended in a KeyError."""
    out = tmp_path / "r.h5"
    assert ndt("track", tiny_run / "ckpts", "--out", out, "-q", "--steps", "0:10").exit_code == 0
    with h5py.File(out, "a") as f:
        del f["checkpoints/file"]
        del f["checkpoints"].attrs["columns"]
    before = out.read_bytes()
    result = ndt("track", tiny_run / "ckpts", "--out", out, "-q")
    assert_one_error(result, "/checkpoints lacks column file")
    assert out.read_bytes() == before
