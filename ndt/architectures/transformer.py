"""Transformer and ViT: ndt's default layers (each block's output, then the head) and
ndtracker's handlers."""

from __future__ import annotations

from torch import nn

from ndt.architectures.base import (
    CONVOLUTIONS,
    ArchitectureHandler,
    every_other_if_many,
    leaf_modules,
)

_FFN_WORDS = ("fc1", "fc2", "ffn", "feed_forward", "mlp")


def is_attention(module: nn.Module) -> bool:
    """True for nn.MultiheadAttention and for classes named like attention (GPT2Attention)."""
    return isinstance(module, nn.MultiheadAttention) or "Attention" in type(module).__name__


def block_names(model: nn.Module) -> list[str]:
    """Items of a ModuleList/Sequential that contain an attention module, in model order."""
    names = []
    for name, module in model.named_modules():
        if not isinstance(module, (nn.ModuleList, nn.Sequential)):
            continue
        for child_name, child in module.named_children():
            if any(is_attention(m) for m in child.modules()):
                names.append(f"{name}.{child_name}" if name else child_name)
    # A block list nested inside another block list: keep the innermost blocks only.
    return [n for n in names if not any(o.startswith(n + ".") for o in names)]


def final_head(model: nn.Module) -> tuple[str, nn.Linear] | None:
    """The model's last Linear layer when it lies outside the blocks (its head), else None."""
    blocks = block_names(model)
    linears = [(n, m) for n, m in leaf_modules(model) if isinstance(m, nn.Linear)]
    if linears and not any(linears[-1][0].startswith(b + ".") for b in blocks):
        return linears[-1]
    return None


def is_wide_head(head: nn.Linear) -> bool:
    """A head wider than its input, such as a language model's vocabulary head.

    Its outputs have rank at most its input width, and their spectrum costs an n x n Gram
    over the whole width (n^2 x 50,257 multiply-adds per checkpoint for GPT-2), more than
    all the blocks together; ``ndt track`` leaves it out unless it is named."""
    return head.out_features > head.in_features


def transformer_layer_names(model: nn.Module) -> list[str]:
    """``ndt track``'s default: each block's output and the head (a Linear layer after the
    blocks) unless it is wider than its input (`is_wide_head`)."""
    head = final_head(model)
    if head is not None and not is_wide_head(head[1]):
        return block_names(model) + [head[0]]
    return block_names(model)


def _attention(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, nn.MultiheadAttention)]


def _linears_named(model: nn.Module, words: tuple[str, ...]) -> list[nn.Module]:
    return [
        m
        for name, m in model.named_modules()
        if isinstance(m, nn.Linear) and any(w in name for w in words)
    ]


class TransformerHandler(ArchitectureHandler):
    """Attention modules, then feed-forward Linear layers (named fc1/fc2, ffn, mlp); with
    neither, every Linear layer (every other one when there are more than 10)."""

    def validate_model(self, model: nn.Module) -> bool:
        return any(
            isinstance(m, nn.MultiheadAttention) or "Transformer" in type(m).__name__
            for m in model.modules()
        )

    def get_activation_layers(self, model: nn.Module) -> list[nn.Module]:
        layers = _attention(model) + _linears_named(model, _FFN_WORDS)
        if layers:
            return layers
        return every_other_if_many([m for m in model.modules() if isinstance(m, nn.Linear)])

    def get_layer_names(self, model: nn.Module) -> list[str]:
        attention = {id(m) for m in _attention(model)}
        ffn = {id(m) for m in _linears_named(model, _FFN_WORDS)}
        names, counts = [], {"Attention": 0, "FFN": 0, "FC": 0}
        for module in self.get_activation_layers(model):
            kind = "Attention" if id(module) in attention else "FFN" if id(module) in ffn else "FC"
            suffix = "" if kind == "Attention" else f"_{module.out_features}"
            names.append(f"{kind}_{counts[kind]}{suffix}")
            counts[kind] += 1
        return names


class ViTHandler(ArchitectureHandler):
    """The patch embedding, the attention modules, then the MLP Linear layers (every other
    one when there are more than 10)."""

    def validate_model(self, model: nn.Module) -> bool:
        names = [name for name, _ in model.named_modules()]
        if any("patch_embed" in name for name in names):
            return True
        modules = list(model.modules())
        return any(isinstance(m, CONVOLUTIONS) for m in modules) and bool(_attention(model))

    def get_activation_layers(self, model: nn.Module) -> list[nn.Module]:
        patch = [m for name, m in model.named_modules() if name.endswith("patch_embed")]
        mlp = _linears_named(model, ("mlp",))
        return patch[:1] + _attention(model) + every_other_if_many(mlp)

    def get_layer_names(self, model: nn.Module) -> list[str]:
        qualified = {id(m): name for name, m in model.named_modules()}
        names, counts = [], {"PatchEmbed": 0, "Attention": 0, "MLP": 0, "Layer": 0}
        for module in self.get_activation_layers(model):
            name = qualified.get(id(module)) or ""
            if "patch_embed" in name:
                kind = "PatchEmbed"
            elif isinstance(module, nn.MultiheadAttention):
                kind = "Attention"
            elif "mlp" in name:
                kind = "MLP"
            else:
                kind = "Layer"
            names.append(f"{kind}_{counts[kind]}")
            counts[kind] += 1
        return names
