"""Transformer and ViT handlers: the residual stream after each block, then the head."""

from __future__ import annotations

from torch import nn

from ndt.architectures.base import ArchitectureHandler, leaf_modules


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


class TransformerHandler(ArchitectureHandler):
    """Track each block's output and, when the model ends in a Linear head, the head."""

    name = "transformer"

    def get_layer_names(self, model: nn.Module) -> list[str]:
        blocks = block_names(model)
        leaves = leaf_modules(model)
        head = [n for n, m in leaves if isinstance(m, nn.Linear)]
        if head and not any(head[-1].startswith(b + ".") for b in blocks):
            return blocks + [head[-1]]
        return blocks


class ViTHandler(TransformerHandler):
    name = "vit"
