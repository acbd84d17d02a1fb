"""Architecture detection and default layer choice, on the zoo and on standard torch models."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ndt.architectures import (
    CNNHandler,
    MLPHandler,
    TransformerHandler,
    ViTHandler,
    detect_architecture,
    detect_family,
    get_handler,
    get_layers_for_model,
    select_layers,
)
from ndt.errors import NdtError
from ndt.models.zoo import build_zoo_model


class ResNetStyle(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.block = nn.Sequential(
            nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1)
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = torch.relu(x + self.block(x))
        return self.fc(self.pool(x).flatten(1))


class PatchViT(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, 16, 4, stride=4)
        layer = nn.TransformerEncoderLayer(16, 2, 32, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2)
        self.head = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch(x).flatten(2).transpose(1, 2)
        return self.head(self.encoder(tokens).mean(1))


@pytest.mark.parametrize(
    ("arch", "expected"),
    [
        ("mlp", ["relu1", "relu2", "relu3", "head"]),
        ("cnn", ["relu1", "relu2", "head"]),
        ("transformer", ["blocks.0", "blocks.1", "head"]),
        ("vit", ["blocks.0", "blocks.1", "head"]),
    ],
)
def test_zoo(arch, expected):
    model = build_zoo_model(arch)
    assert detect_family(model) == arch
    assert select_layers(model) == expected


def test_reference_sequential_mlp():
    """The handlers are ndtracker's: every Linear, named with its shape."""
    model = nn.Sequential(
        nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10)
    )
    handler = get_handler(model)
    assert isinstance(handler, MLPHandler) and str(handler) == "MLP"
    assert handler.get_layer_names(model) == [
        "Linear_0_784x512", "Linear_1_512x256", "Linear_2_256x10"
    ]  # fmt: skip
    assert handler.get_activation_layers(model) == [model[0], model[2], model[4]]
    assert select_layers(model) == ["1", "3", "4"]  # ndt track: after each ReLU, the logits


def test_handler_detection_and_lookup():
    resnet = ResNetStyle()
    assert isinstance(detect_architecture(resnet), CNNHandler)
    assert CNNHandler().get_layer_names(resnet) == [
        "Conv_0_8ch", "Conv_1_8ch", "Conv_2_8ch", "FC_0_10"
    ]  # fmt: skip
    assert isinstance(detect_architecture(PatchViT()), ViTHandler)
    encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(32, 4, batch_first=True), 3)
    assert isinstance(get_handler(encoder, "Transformer"), TransformerHandler)
    layers, names = get_layers_for_model(encoder)
    assert names == ["Attention_0", "Attention_1", "Attention_2"]
    assert layers == [block.self_attn for block in encoder.layers]
    assert detect_architecture(nn.Sequential(nn.ReLU())) is None
    with pytest.raises(ValueError, match="Unknown architecture: rnn"):
        get_handler(resnet, "rnn")
    with pytest.raises(ValueError, match="does not appear to be a ViT"):
        get_handler(resnet, "vit")
    with pytest.raises(ValueError, match="Could not auto-detect"):
        get_handler(nn.Sequential(nn.ReLU()))


def test_standard_torch_models():
    encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(32, 4, batch_first=True), 3)
    assert detect_family(encoder) == "transformer"
    assert select_layers(encoder) == ["layers.0", "layers.1", "layers.2"]
    vit = PatchViT()
    assert detect_family(vit) == "vit"
    assert select_layers(vit) == ["encoder.layers.0", "encoder.layers.1", "head"]
    resnet = ResNetStyle()
    assert detect_family(resnet) == "cnn"
    assert select_layers(resnet) == ["stem.2", "block.1", "block.2", "fc"]


def test_generic_fallback_and_globs():
    model = nn.Sequential(nn.Embedding(10, 4), nn.LayerNorm(4))
    assert detect_family(model) == "generic"
    assert select_layers(model) == ["0", "1"]
    transformer = build_zoo_model("transformer")
    assert select_layers(transformer, ["blocks.*.mlp", "head"]) == [
        "blocks.0.mlp",
        "blocks.1.mlp",
        "head",
    ]
    with pytest.raises(
        NdtError, match="--layers 'decoder.\\*' matches no layer; the layers are embed"
    ):
        select_layers(transformer, ["decoder.*"])


def test_star_stays_within_one_level():
    model = build_zoo_model("transformer", n_layers=2)
    assert select_layers(model, ["blocks.*"]) == ["blocks.0", "blocks.1"]
    assert select_layers(model, ["**.fc_in"]) == ["blocks.0.mlp.fc_in", "blocks.1.mlp.fc_in"]


def test_a_head_wider_than_its_input_is_left_out_by_default():
    """A vocabulary head (d_model -> vocab, vocab > d_model) costs more than all the blocks
    and has rank at most d_model: named, not default. A head as wide as its input stays."""
    from ndt.architectures import default_layers_notices

    square = build_zoo_model("transformer", vocab_size=16, d_model=16, n_heads=2)
    assert select_layers(square) == ["blocks.0", "blocks.1", "head"]
    assert default_layers_notices(square) == ()
    wide = build_zoo_model("transformer", vocab_size=17, d_model=16, n_heads=2)
    assert select_layers(wide) == ["blocks.0", "blocks.1"]
    assert default_layers_notices(wide) == (
        "head (16 -> 17, wider than its input) is not tracked by default; add it with "
        "--layers @blocks --layers head",
    )
    assert select_layers(wide, ["@blocks", "head"]) == ["blocks.0", "blocks.1", "head"]
    assert default_layers_notices(build_zoo_model("mlp")) == ()  # feed-forward: logits stay


def test_layer_presets_name_blocks_attention_and_mlp_of_a_transformer():
    from ndt.models.zoo import build_zoo_model

    model = build_zoo_model("transformer", vocab_size=14, max_len=3, d_model=16, n_layers=2,
                            n_heads=2)  # fmt: skip
    names = [name for name, _ in model.named_modules() if name]
    # Independent of the presets' code: read off the module tree.
    attention = [n for n in names if n.endswith(".attn")]
    mlps = [n for n in names if n.endswith(".mlp")]
    assert select_layers(model, ["@attn"]) == attention == ["blocks.0.attn", "blocks.1.attn"]
    assert select_layers(model, ["@mlp"]) == mlps
    assert select_layers(model, ["@blocks"]) == select_layers(model)
    assert select_layers(model, ["@mlp", "head"]) == [*mlps, "head"]
    with pytest.raises(NdtError, match="--layers @heads is not a preset; use one of @blocks"):
        select_layers(model, ["@heads"])
