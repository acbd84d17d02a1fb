"""The rows rule: channels-first layers, token pooling and padding."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from float64_reference import reference_metrics
from torch import nn

from ndt.core.estimators import compute_metrics
from ndt.core.rows import TokenRule, channels_first_layers, parse_tokens, sequence_rows
from ndt.errors import NdtError
from ndt.io.probe import Probe
from ndt.replay.engine import capture_activations, layer_spectra


def conv1d_net() -> nn.Sequential:
    return nn.Sequential(
        OrderedDict(
            conv=nn.Conv1d(3, 8, 5),
            relu=nn.ReLU(),
            block=nn.Sequential(nn.Conv1d(8, 8, 3, padding=1), nn.BatchNorm1d(8), nn.GELU()),
            pool=nn.MaxPool1d(2),
            drop=nn.Dropout(0.1),
            flatten=nn.Flatten(),
            head=nn.Linear(8 * 13, 4),
        )
    )


class Tokens(nn.Module):
    """Embedding -> LayerNorm -> ReLU -> Linear over (B, T) token ids: sequence outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 6)
        self.norm = nn.LayerNorm(6)
        self.act = nn.ReLU()
        self.out = nn.Linear(6, 5)

    def forward(self, tokens: torch.Tensor, attention_mask: torch.Tensor | None = None):
        return self.out(self.act(self.norm(self.embed(tokens))))


def test_channels_first_layers_follow_the_conv():
    net = conv1d_net()
    names = ["conv", "relu", "block", "block.1", "block.2", "pool", "drop", "head"]
    assert channels_first_layers(net, names) == {
        "conv", "relu", "block", "block.1", "block.2", "pool", "drop",
    }  # fmt: skip
    model = Tokens()
    assert channels_first_layers(model, ["embed", "norm", "act", "out"]) == set()


def test_conv1d_and_the_relu_after_it_give_one_row_per_sample():
    torch.manual_seed(0)
    net = conv1d_net().eval()
    probe = Probe(torch.randn(64, 3, 30))
    spectra = layer_spectra(net, probe, ["conv", "relu", "block"])
    with torch.no_grad():
        conv = net.conv(probe.inputs)
        relu = net.relu(conv)
        block = net.block(relu)
    for name, output in (("conv", conv), ("relu", relu), ("block", block)):
        assert spectra[name].n_samples == 64 and spectra[name].n_features == output[0].numel()
        expected = reference_metrics(output.reshape(64, -1).double().numpy())
        got = compute_metrics(spectra[name], list(expected))
        for metric, value in expected.items():
            np.testing.assert_allclose(got[metric], value, rtol=1e-6, err_msg=f"{name} {metric}")


def test_parse_tokens():
    assert parse_tokens("all") == TokenRule("all") and not TokenRule("all").pooled
    assert parse_tokens("pos:-1") == TokenRule("pos", -1)
    assert parse_tokens("pos:3").describe() == "pos:3" and parse_tokens("mean").pooled
    for bad in ("cls", "pos:", "pos:x", "Last"):
        with pytest.raises(NdtError, match=f"--tokens '{bad}' is not one of"):
            parse_tokens(bad)


def test_sequence_rows_known_answers():
    output = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3)
    mask = torch.tensor([[1, 1, 1, 0], [0, 1, 1, 1]])  # right- and left-padded
    rows, samples = sequence_rows(output, mask, TokenRule("all"))
    assert rows.tolist() == [*output[0, :3].tolist(), *output[1, 1:].tolist()]
    assert samples.tolist() == [0, 0, 0, 1, 1, 1]
    assert sequence_rows(output, mask, TokenRule("last"))[0].tolist() == [
        output[0, 2].tolist(), output[1, 3].tolist(),
    ]  # fmt: skip
    assert sequence_rows(output, mask, TokenRule("first"))[0].tolist() == [
        output[0, 0].tolist(), output[1, 1].tolist(),
    ]  # fmt: skip
    mean = sequence_rows(output, mask, TokenRule("mean"))[0]
    torch.testing.assert_close(mean, torch.stack([output[0, :3].mean(0), output[1, 1:].mean(0)]))
    assert sequence_rows(output, None, TokenRule("pos", -1))[0].tolist() == output[:, 3].tolist()
    assert sequence_rows(output, None, TokenRule("all"))[0].shape == (8, 3)
    with pytest.raises(NdtError, match="pos:0 is padding in 1 probe samples"):
        sequence_rows(output, mask, TokenRule("pos", 0))
    with pytest.raises(NdtError, match="outside sequences of 4"):
        sequence_rows(output, None, TokenRule("pos", 4))
    with pytest.raises(NdtError, match="attention_mask has shape"):
        sequence_rows(output, mask[:, :3], TokenRule("all"))
    with pytest.raises(NdtError, match="all zeros"):
        sequence_rows(output, torch.zeros(2, 4), TokenRule("mean"))


def test_track_pieces_pool_and_unpad_across_chunks():
    torch.manual_seed(0)
    model = Tokens().eval()
    tokens = torch.randint(0, 10, (30, 7))
    lengths = torch.randint(2, 8, (30,))
    mask = (torch.arange(7) < lengths[:, None]).long()
    probe = Probe(tokens, extras={"attention_mask": mask})
    with torch.no_grad():
        norm = model.norm(model.embed(tokens)).double()
    for rule, expected in (
        ("all", norm[mask.bool()]),
        ("last", norm[torch.arange(30), lengths - 1]),
        ("mean", (norm * mask[..., None]).sum(1) / lengths[:, None]),
    ):
        spectra = layer_spectra(model, probe, ["norm"], tokens=rule, batch_size=8)
        reference = reference_metrics(expected.numpy())
        got = compute_metrics(spectra["norm"], list(reference))
        for metric, value in reference.items():
            np.testing.assert_allclose(got[metric], value, rtol=1e-6, err_msg=f"{rule} {metric}")
    samples: dict[str, torch.Tensor] = {}
    captured = capture_activations(model, probe, ["norm"], batch_size=8, row_samples=samples)
    assert captured["norm"].shape == (int(lengths.sum()), 6)
    assert samples["norm"].tolist() == torch.arange(30).repeat_interleave(lengths).tolist()
