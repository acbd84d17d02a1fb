"""Every malformed input of issue 13 ends as one `Error:` line (exit 1) or a usage error
(exit 2), with no traceback, and leaves an existing results file byte-identical."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from ndt.io.store import Results, write_results


def _results(path: Path) -> Path:
    rng = np.random.default_rng(0)
    write_results(
        path,
        Results(
            steps=np.arange(20) * 10,
            layers=["a", "b"],
            metrics={"stable_rank": rng.random((20, 2))},
        ),
    )
    return path


def _usage_error(result, option: str, words: str) -> None:
    assert result.exit_code == 2, result.output
    flat = " ".join(result.stderr.replace("│", " ").split())
    assert option in flat and words in flat, flat
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "option", "words"),
    [
        (["jumps", "R", "--half-window", "1"], "--half-window", "greater than or equal to 2"),
        (["jumps", "R", "--tolerance", "-1"], "--tolerance", "greater than or equal to 0"),
        (["jumps", "R", "--fdr", "0"], "--fdr", "not a finite number in (0, 1)"),
        (["jumps", "R", "--fdr", "1"], "--fdr", "not a finite number in (0, 1)"),
        (["jumps", "R", "--fdr", "nan"], "--fdr", "nan is not a finite number"),
        (["jumps", "R", "--window-size", "0"], "--window-size", "greater than or equal to 1"),
        (["jumps", "R", "--z-threshold", "inf"], "--z-threshold", "inf is not a finite"),
        (["jumps", "R", "--penalty", "-1"], "--penalty", "-1 is not a finite number in [0, inf)"),
        (["compare", "--results", "R", "--clusters", "0"], "--clusters", "greater than or equal"),
        (["compare", "--results", "R", "--dead-threshold", "2"], "--dead-threshold", "[0, 1]"),
        (["compare", "--results", "R", "--dead-threshold", "-0.1"], "--dead-threshold", "[0, 1]"),
        (["compare", "--results", "R", "--seed", "-3"], "--seed", "greater than or equal to 0"),
        (["track", "C", "--threads", "100000"], "--threads", "less than or equal to"),
        (["track", "C", "--dormant-tau", "-1"], "--dormant-tau", "not a finite number in [0,"),
        (["track", "C", "--dormant-tau", "inf"], "--dormant-tau", "inf is not a finite number"),
        (["track", "C", "--every", "0"], "--every", "greater than or equal to 1"),
        (["track", "C", "--batch-size", "0"], "--batch-size", "greater than or equal to 1"),
        (["probe", "P", "--gaussian", "4x4", "--seed", "-1"], "--seed", "greater than or equal"),
        (["validate-detector", "--fdr", "2"], "--fdr", "not a finite number in (0, 1)"),
    ],
)
def test_numeric_options_are_bounded_when_parsed(ndt, tiny_run, tmp_path, args, option, words):
    path = _results(tmp_path / "r.h5")
    before = path.read_bytes()
    where = {"R": path, "C": tiny_run / "ckpts", "P": tmp_path / "p.safetensors"}
    result = ndt(*[where.get(a, a) for a in args])
    _usage_error(result, option, words)
    assert path.read_bytes() == before
    assert not (tmp_path / "p.safetensors").exists()


def test_huge_gaussian_probe_is_refused_before_allocating(ndt, one_error, tmp_path):
    result = ndt("probe", tmp_path / "p.safetensors", "--gaussian", "99999999x99999999")
    one_error(result, "--gaussian 99999999x99999999 needs")
    assert "half this machine's memory" in result.stderr
    assert not (tmp_path / "p.safetensors").exists()


def test_model_colon_and_rejected_factory_kwargs(ndt, one_error, tiny_run, tmp_path):
    out = tmp_path / "r.h5"
    ckpts = tiny_run / "ckpts"
    one_error(ndt("track", ckpts, "--model", ":", "--out", out), "model ':' is not")
    one_error(
        ndt("track", ckpts, "--model", "json:dumps", "--model-kwargs", '{"nope": 1}', "--out", out),
        "calling json:dumps failed",
    )
    one_error(
        ndt("track", ckpts, "--model", "mlp", "--model-kwargs", '{"hidden": "x"}', "--out", out),
        "arch 'mlp' does not accept these sizes",
    )
    one_error(
        ndt(
            "track", ckpts, "--model", "mlp", "--model-kwargs", '{"in_features": -3}', "--out", out
        ),
        "negative dimension -3",
    )
    assert not out.exists()


def _track_args(run: Path, out: Path, probe: Path) -> list:
    kwargs = json.dumps({"in_features": 12, "hidden": [16, 8], "n_classes": 3})
    return ["track", run / "ckpts", "--model", "mlp", "--model-kwargs", kwargs,
            "--probe", probe, "--out", out, "-q"]  # fmt: skip


def test_zero_dimensional_probe_inputs(ndt, one_error, tiny_run, tmp_path):
    out = tmp_path / "r.h5"
    assert ndt("track", tiny_run / "ckpts", "--out", out, "-q").exit_code == 0
    before = out.read_bytes()
    from safetensors.torch import save_file

    probe = tmp_path / "scalar.safetensors"
    save_file({"inputs": torch.tensor(3.0)}, probe)
    one_error(ndt(*_track_args(tiny_run, out, probe)), "'inputs' has shape ()")
    assert out.read_bytes() == before


def _raw_safetensors(path: Path, header: dict, data: bytes) -> Path:
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)
    return path


@pytest.mark.parametrize(
    ("header", "data", "fragment"),
    [
        (
            {"inputs": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
             "labels": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}},
            bytes(16), "tensor 'labels' starts at byte 8, expected 16",
        ),
        (
            {"inputs": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 99]}},
            bytes(16), "the tensors cover 99 bytes but the data has 16",
        ),
        (
            {"inputs": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 8]}},
            bytes(8), "tensor 'inputs' has 8 bytes for shape (2, 2)",
        ),
        (
            {"inputs": {"dtype": "F32", "shape": [2, -2], "data_offsets": [0, 16]}},
            bytes(16), "tensor 'inputs' has shape [2, -2]",
        ),
        (
            {"inputs": {"dtype": "F32", "shape": [2], "data_offsets": [16, 8]}},
            bytes(16), "tensor 'inputs' has data_offsets [16, 8]",
        ),
        ({"inputs": {"dtype": "F32", "shape": [4]}}, bytes(16), "data_offsets None"),
    ],
)  # fmt: skip
def test_probe_headers_safetensors_would_reject(
    ndt, one_error, tiny_run, tmp_path, header, data, fragment
):
    out = tmp_path / "r.h5"
    assert ndt("track", tiny_run / "ckpts", "--out", out, "-q").exit_code == 0
    before = out.read_bytes()
    probe = _raw_safetensors(tmp_path / "bad.safetensors", header, data)
    one_error(ndt(*_track_args(tiny_run, out, probe)), fragment)
    assert out.read_bytes() == before


def test_probe_header_longer_than_the_file(ndt, one_error, tiny_run, tmp_path):
    probe = tmp_path / "bad.safetensors"
    probe.write_bytes(struct.pack("<Q", 2**40) + b"{}")
    one_error(
        ndt(*_track_args(tiny_run, tmp_path / "r.h5", probe)),
        f"the header claims {2**40} bytes but the file has 10",
    )


def test_step_beyond_int64_in_checkpoint_metadata(ndt, one_error, tiny_run, tmp_path):
    from safetensors.torch import load_file, save_file

    ckpts = tiny_run / "ckpts"
    first = sorted(ckpts.glob("*.safetensors"))[0]
    save_file(load_file(first), first, metadata={"step": str(2**63 + 5)})
    result = ndt("track", ckpts, "--out", tmp_path / "r.h5", "-q")
    one_error(result, f"step {2**63 + 5} of '{first.name}' does not fit a 64-bit integer")


@pytest.mark.skipif(os.name != "posix", reason="needs byte file names")
def test_checkpoint_with_a_non_utf8_name_is_skipped_with_a_warning(ndt, tiny_run, tmp_path):
    ckpts = tiny_run / "ckpts"
    first = sorted(ckpts.glob("*.safetensors"))[0]
    odd = os.path.join(os.fsencode(ckpts), b"\xffstep_00000099.safetensors")
    with open(first, "rb") as source, open(odd, "wb") as target:
        target.write(source.read())
    out = tmp_path / "r.h5"
    result = ndt("track", ckpts, "--out", out, "-q")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning:")]
    assert warnings == [
        "Warning: skipped \\xffstep_00000099.safetensors: its name is not valid UTF-8; "
        "rename it to track it"
    ]
    with h5py.File(out) as f:
        assert f["steps"][()].tolist() == [0, 10, 20, 30, 40]


def test_summary_rejects_what_jumps_rejects(ndt, one_error, tmp_path):
    path = _results(tmp_path / "r.h5")
    with h5py.File(path, "a") as f:
        f.attrs["format_version"] = "1"
    before = path.read_bytes()
    for args in (["summary", path], ["jumps", path], ["export", path], ["plot", path]):
        one_error(ndt(*args), "format_version '1' (str); expected an integer")
    assert path.read_bytes() == before
    with h5py.File(path, "a") as f:
        f.attrs["format_version"] = 1
        del f["layers"]
        f["layers"] = np.arange(2)
    for args in (["summary", path], ["jumps", path]):
        one_error(ndt(*args), "/layers is int of shape (2,), expected utf-8 strings")
