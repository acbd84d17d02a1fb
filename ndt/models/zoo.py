"""Small built-in architectures, addressed as `arch = "mlp" | "cnn" | "transformer" | "vit"`.

They are deliberately plain PyTorch so that checkpoints written from them load in any
training script, and so the architecture handlers can be tested on them as on user models.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

import torch
from torch import nn

from ndt.errors import ModelSpecError


def mlp(
    in_features: int = 64,
    hidden: Sequence[int] = (64, 64, 64),
    n_classes: int = 10,
) -> nn.Sequential:
    """A ReLU multilayer perceptron: modules `fc1, relu1, ..., head`.

    Args:
        in_features: Input width (64 for scikit-learn's 8x8 digits).
        hidden: Widths of the hidden layers.
        n_classes: Output width.
    """
    modules: OrderedDict[str, nn.Module] = OrderedDict()
    width = in_features
    for index, size in enumerate(hidden, start=1):
        modules[f"fc{index}"] = nn.Linear(width, size)
        modules[f"relu{index}"] = nn.ReLU()
        width = size
    modules["head"] = nn.Linear(width, n_classes)
    return nn.Sequential(modules)


def cnn(
    in_channels: int = 1,
    channels: Sequence[int] = (8, 16),
    image_size: int = 8,
    n_classes: int = 10,
) -> nn.Sequential:
    """A small ReLU convnet: `conv1, relu1, ...` (3x3, padding 1), then `pool, flatten, head`.

    Args:
        in_channels: Channels of the input images.
        channels: Output channels of each 3x3 convolution.
        image_size: Height and width of the (square) input images.
        n_classes: Output width.
    """
    modules: OrderedDict[str, nn.Module] = OrderedDict()
    width = in_channels
    for index, size in enumerate(channels, start=1):
        modules[f"conv{index}"] = nn.Conv2d(width, size, kernel_size=3, padding=1)
        modules[f"relu{index}"] = nn.ReLU()
        width = size
    modules["pool"] = nn.AdaptiveAvgPool2d(max(1, image_size // 4))
    modules["flatten"] = nn.Flatten()
    modules["head"] = nn.Linear(width * max(1, image_size // 4) ** 2, n_classes)
    return nn.Sequential(modules)


class SelfAttention(nn.Module):
    """Multi-head self-attention computed by `scaled_dot_product_attention`.

    Its parameters are named as nn.MultiheadAttention's (``in_proj_weight``, ``in_proj_bias``,
    ``out_proj``) and initialised the same way, so state dicts of either load into the other;
    the fused attention kernel makes the forward pass about a quarter faster on the CPU than
    nn.MultiheadAttention's masked-softmax path, and every submodule runs as a module (so
    hooks on ``out_proj`` fire).
    """

    def __init__(self, d_model: int, n_heads: int, causal: bool) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ModelSpecError(f"d_model {d_model} is not a multiple of n_heads {n_heads}")
        self.n_heads, self.causal = n_heads, causal
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d_model, d_model))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * d_model))
        self.out_proj = nn.Linear(d_model, d_model)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, n_tokens, width = x.shape
        qkv = nn.functional.linear(x, self.in_proj_weight, self.in_proj_bias)
        # (batch, tokens, 3 * width) -> three (batch, heads, tokens, head width) views
        q, k, v = qkv.view(batch, n_tokens, 3, self.n_heads, -1).permute(2, 0, 3, 1, 4)
        mixed = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        return self.out_proj(mixed.transpose(1, 2).reshape(batch, n_tokens, width))


class Block(nn.Module):
    """A pre-norm transformer block: self-attention then a GELU MLP, both residual."""

    def __init__(self, d_model: int, n_heads: int, d_mlp: int, causal: bool) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = SelfAttention(d_model, n_heads, causal)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(
            OrderedDict(
                fc_in=nn.Linear(d_model, d_mlp), act=nn.GELU(), fc_out=nn.Linear(d_mlp, d_model)
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class Transformer(nn.Module):
    """A GPT-style causal transformer over token ids: (B, T) int64 -> (B, T, vocab) logits."""

    def __init__(
        self,
        vocab_size: int = 32,
        max_len: int = 16,
        d_model: int = 64,
        n_layers: int = 2,
        n_heads: int = 4,
        d_mlp: int | None = None,
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Parameter(torch.zeros(1, max_len, d_model))
        self.blocks = nn.ModuleList(
            Block(d_model, n_heads, d_mlp or 4 * d_model, causal=True) for _ in range(n_layers)
        )
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens) + self.pos[:, : tokens.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))


class ViT(nn.Module):
    """A small vision transformer: patch embedding, class token, blocks, linear head."""

    def __init__(
        self,
        image_size: int = 8,
        patch_size: int = 2,
        in_channels: int = 1,
        d_model: int = 32,
        n_layers: int = 2,
        n_heads: int = 4,
        n_classes: int = 10,
    ) -> None:
        super().__init__()
        if image_size % patch_size:
            raise ModelSpecError(
                f"vit: image_size {image_size} is not a multiple of patch_size {patch_size}"
            )
        n_patches = (image_size // patch_size) ** 2
        self.patch_embed = nn.Conv2d(in_channels, d_model, patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d_model))
        self.pos = nn.Parameter(torch.zeros(1, n_patches + 1, d_model))
        self.blocks = nn.ModuleList(
            Block(d_model, n_heads, 4 * d_model, causal=False) for _ in range(n_layers)
        )
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, n_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(images).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x[:, 0]))


ZOO: dict[str, Callable[..., nn.Module]] = {
    "mlp": mlp,
    "cnn": cnn,
    "transformer": Transformer,
    "vit": ViT,
}


def build_zoo_model(arch: str, **sizes: object) -> nn.Module:
    """Build a zoo architecture by name with the given sizes.

    Raises:
        ModelSpecError: if `arch` is unknown or a size is not accepted.
    """
    if arch not in ZOO:
        raise ModelSpecError(f"unknown arch '{arch}'; choose one of {', '.join(ZOO)}")
    try:
        return ZOO[arch](**sizes)
    except TypeError as exc:
        raise ModelSpecError(f"arch '{arch}' does not accept these sizes: {exc}") from exc
