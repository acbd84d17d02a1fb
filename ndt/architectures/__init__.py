"""Architecture handlers (the reference API's) and ``ndt track``'s default choice of layers.

`detect_architecture` and `get_handler` return ndtracker-compatible handlers, whose
`get_activation_layers` / `get_layer_names` feed `HighFrequencyTracker` as in reference
§1.3. `detect_family` names the family ("mlp", "cnn", "transformer", "vit", or "generic")
and `select_layers` gives the layers ``ndt track`` tracks by default (after each
nonlinearity; each transformer block), or those matching ``--layers`` glob patterns.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from ndt.architectures.base import CONVOLUTIONS, ArchitectureHandler
from ndt.architectures.feedforward import CNNHandler, MLPHandler, feedforward_layer_names
from ndt.architectures.registry import detect_architecture, get_handler, get_layers_for_model
from ndt.architectures.transformer import (
    TransformerHandler,
    ViTHandler,
    final_head,
    is_attention,
    is_wide_head,
    transformer_layer_names,
)
from ndt.core.layer_globs import match_layers
from ndt.errors import NdtError

__all__ = [
    "ArchitectureHandler",
    "CNNHandler",
    "MLPHandler",
    "TransformerHandler",
    "ViTHandler",
    "detect_architecture",
    "default_layers_notices",
    "detect_family",
    "get_handler",
    "get_layers_for_model",
    "select_layers",
]


def detect_family(model: nn.Module) -> str:
    """Name the model's family: "transformer" or "vit" if it has attention (vit when it
    embeds image patches with a convolution), else "cnn" with convolutions, "mlp" with
    Linear layers, and "generic" otherwise."""
    modules = list(model.modules())
    if any(is_attention(m) for m in modules):
        return "vit" if any(isinstance(m, CONVOLUTIONS) for m in modules) else "transformer"
    if any(isinstance(m, CONVOLUTIONS) for m in modules):
        return "cnn"
    if any(isinstance(m, nn.Linear) for m in modules):
        return "mlp"
    return "generic"


def default_layer_names(model: nn.Module) -> list[str]:
    """Qualified names of the layers ``ndt track`` tracks when given no ``--layers``."""
    family = detect_family(model)
    if family in ("mlp", "cnn"):
        return feedforward_layer_names(model)
    if family in ("transformer", "vit"):
        return transformer_layer_names(model)
    return [name for name, _ in model.named_children()]


def default_layers_notices(model: nn.Module) -> tuple[str, ...]:
    """What `default_layer_names` leaves out that a user may expect: a head wider than its
    input (a language model's vocabulary head), named so that it can be asked for."""
    if detect_family(model) not in ("transformer", "vit"):
        return ()
    head = final_head(model)
    if head is None or not is_wide_head(head[1]):
        return ()
    name, module = head
    return (
        f"{name} ({module.in_features} -> {module.out_features}, wider than its input) is not "
        f"tracked by default; add it with --layers @blocks --layers {name}",
    )


#: ``--layers`` presets: ``@blocks`` the handler's default (each transformer block, or the
#: output of each nonlinearity), ``@attn`` the attention modules, ``@mlp`` the feed-forward
#: sub-blocks (a module named mlp, ffn, feed_forward or feedforward, or a class named *MLP).
PRESETS = ("@blocks", "@attn", "@mlp")
_MLP_NAMES = ("mlp", "ffn", "feed_forward", "feedforward")


def _preset(model: nn.Module, preset: str) -> list[str]:
    if preset == "@blocks":
        return default_layer_names(model)
    named = [(name, module) for name, module in model.named_modules() if name]
    if preset == "@attn":
        chosen = [name for name, module in named if is_attention(module)]
        # Keep the outermost: an attention module's own sub-attention is not a second layer.
        return [n for n in chosen if not any(n.startswith(f"{o}.") for o in chosen)]
    return [
        name for name, module in named
        if name.rsplit(".", 1)[-1].lower() in _MLP_NAMES or type(module).__name__.endswith("MLP")
    ]  # fmt: skip


def select_layers(model: nn.Module, patterns: Sequence[str] | None = None) -> list[str]:
    """Qualified names of the layers to track, in model order.

    Args:
        model: The model.
        patterns: Glob patterns over qualified names (``blocks.*.mlp``), or the presets
            ``@blocks``, ``@attn``, ``@mlp`` (see `PRESETS`); None or empty uses
            `default_layer_names`.

    Raises:
        NdtError: if a pattern or preset matches no module (listing a few that exist).
    """
    patterns = list(patterns or ())
    presets = [p for p in patterns if p.startswith("@")]
    unknown = [p for p in presets if p not in PRESETS]
    if unknown:
        raise NdtError(f"--layers {unknown[0]} is not a preset; use one of {', '.join(PRESETS)}")
    if presets:
        available = [name for name, _ in model.named_modules() if name]
        chosen = set()
        for preset in presets:
            found = _preset(model, preset)
            if not found:
                raise NdtError(f"--layers {preset} matches no module of this model")
            chosen.update(found)
        globs = [p for p in patterns if not p.startswith("@")]
        if globs:
            chosen.update(match_layers(available, globs, option="--layers"))
        return [name for name in available if name in chosen]
    if not patterns:
        names = default_layer_names(model)
        if not names:
            raise NdtError("found no layers to track in this model; pass --layers GLOB")
        return names
    available = [name for name, _ in model.named_modules() if name]
    return match_layers(available, patterns, option="--layers")
