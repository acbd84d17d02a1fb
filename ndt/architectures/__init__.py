"""Architecture detection and the default choice of layers to track.

`detect_architecture` names the family ("mlp", "cnn", "transformer", "vit", or "generic"
for anything else); `get_handler` returns the object that picks its layers. `select_layers`
applies ``--layers`` glob patterns (`ndt.core.layer_globs`) to qualified module names instead.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from ndt.architectures.base import ArchitectureHandler
from ndt.architectures.feedforward import CNNHandler, MLPHandler
from ndt.architectures.transformer import TransformerHandler, ViTHandler, is_attention
from ndt.core.layer_globs import match_layers
from ndt.errors import NdtError

HANDLERS: dict[str, type[ArchitectureHandler]] = {
    "mlp": MLPHandler,
    "cnn": CNNHandler,
    "transformer": TransformerHandler,
    "vit": ViTHandler,
    "generic": ArchitectureHandler,
}

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def detect_architecture(model: nn.Module) -> str:
    """Name the model's family: "transformer" or "vit" if it has attention (vit when it
    embeds image patches with a convolution), else "cnn" with convolutions, "mlp" with
    Linear layers, and "generic" otherwise."""
    modules = list(model.modules())
    if any(is_attention(m) for m in modules):
        return "vit" if any(isinstance(m, _CONV) for m in modules) else "transformer"
    if any(isinstance(m, _CONV) for m in modules):
        return "cnn"
    if any(isinstance(m, nn.Linear) for m in modules):
        return "mlp"
    return "generic"


def get_handler(model: nn.Module) -> ArchitectureHandler:
    """The handler for the model's detected architecture."""
    return HANDLERS[detect_architecture(model)]()


def select_layers(model: nn.Module, patterns: Sequence[str] | None = None) -> list[str]:
    """Qualified names of the layers to track, in model order.

    Args:
        model: The model.
        patterns: Glob patterns over qualified names (``blocks.*.mlp``); None or empty uses
            the architecture handler's default.

    Raises:
        NdtError: if a pattern matches no module (listing a few that exist).
    """
    if not patterns:
        names = get_handler(model).get_layer_names(model)
        if not names:
            raise NdtError("found no layers to track in this model; pass --layers GLOB")
        return names
    available = [name for name, _ in model.named_modules() if name]
    return match_layers(available, patterns, option="--layers")
