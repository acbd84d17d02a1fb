"""Probe files: reading (memory-mapped), validation, chunking and the fingerprint."""

from __future__ import annotations

import hashlib

import pytest
import torch
from safetensors.torch import save_file

from ndt.errors import ProbeError
from ndt.io.probe import load_probe, save_probe


def test_round_trip_and_fingerprint(tmp_path):
    inputs, labels = torch.randn(10, 3), torch.arange(10)
    probe = save_probe(
        tmp_path / "p.safetensors", inputs, labels, {"mask": torch.ones(10, 2, dtype=torch.bool)}
    )
    assert torch.equal(probe.inputs, inputs) and torch.equal(probe.labels, labels)
    assert probe.extras["mask"].dtype == torch.bool and probe.n_samples == 10
    assert probe.sha256 == hashlib.sha256((tmp_path / "p.safetensors").read_bytes()).hexdigest()


def test_half_precision_types_that_numpy_cannot_map(tmp_path):
    probe = save_probe(tmp_path / "p.safetensors", torch.randn(4, 2).bfloat16())
    assert probe.inputs.dtype == torch.bfloat16 and probe.inputs.shape == (4, 2)


def test_chunks_cover_the_probe_in_order(tmp_path):
    probe = save_probe(
        tmp_path / "p.safetensors",
        torch.arange(10.0).reshape(10, 1),
        extras={"w": torch.arange(10)},
    )
    chunks = list(probe.chunks(4))
    assert [c[0].shape[0] for c in chunks] == [4, 4, 2]
    assert torch.equal(torch.cat([c[0] for c in chunks]).flatten(), torch.arange(10.0))
    assert torch.equal(torch.cat([c[1]["w"] for c in chunks]), torch.arange(10))
    with pytest.raises(ProbeError, match="--batch-size must be at least 1"):
        list(probe.chunks(-1))


def test_bad_probes(tmp_path):
    with pytest.raises(ProbeError, match="does not exist"):
        load_probe(tmp_path / "none.safetensors")
    save_file({"x": torch.zeros(3)}, tmp_path / "no_inputs.safetensors")
    with pytest.raises(ProbeError, match="has no 'inputs' or 'input_ids' tensor \\(it holds x\\)"):
        load_probe(tmp_path / "no_inputs.safetensors")
    save_file(
        {"inputs": torch.zeros(3, 2), "labels": torch.zeros(4)}, tmp_path / "ragged.safetensors"
    )
    with pytest.raises(ProbeError, match="'labels' has shape \\(4,\\) but 'inputs' has 3 samples"):
        load_probe(tmp_path / "ragged.safetensors")
    good = save_probe(tmp_path / "t.safetensors", torch.zeros(50, 5)).path
    good.write_bytes(good.read_bytes()[:-16])
    with pytest.raises(ProbeError, match="cannot read probe"):
        load_probe(good)
    (tmp_path / "text.safetensors").write_text("not a probe")
    with pytest.raises(ProbeError, match="cannot read probe"):
        load_probe(tmp_path / "text.safetensors")


def test_a_tokenizer_output_saved_as_it_is_reads_input_ids_as_inputs(tmp_path):
    ids = torch.arange(12).reshape(3, 4)
    mask = torch.ones(3, 4, dtype=torch.int64)
    save_file({"input_ids": ids, "attention_mask": mask}, tmp_path / "tok.safetensors")
    probe = load_probe(tmp_path / "tok.safetensors")
    assert torch.equal(probe.inputs, ids) and probe.labels is None
    assert torch.equal(probe.extras["attention_mask"], mask)
