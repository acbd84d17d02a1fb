"""Handler lookup by name or by detection, as in the ndtracker package."""

from __future__ import annotations

from torch import nn

from ndt.architectures.base import ArchitectureHandler
from ndt.architectures.feedforward import CNNHandler, MLPHandler
from ndt.architectures.transformer import TransformerHandler, ViTHandler
from ndt.errors import NdtError

HANDLERS: dict[str, type[ArchitectureHandler]] = {
    "mlp": MLPHandler,
    "cnn": CNNHandler,
    "transformer": TransformerHandler,
    "vit": ViTHandler,
}
# Most specific first: a ViT also has convolutions and attention, a CNN Linear layers.
_DETECTION_ORDER = ("vit", "transformer", "cnn", "mlp")


def detect_architecture(model: nn.Module) -> ArchitectureHandler | None:
    """The handler of the first family (ViT, Transformer, CNN, MLP) that accepts `model`,
    or None. ``str()`` of a handler is its family's name."""
    for name in _DETECTION_ORDER:
        handler = HANDLERS[name]()
        if handler.validate_model(model):
            return handler
    return None


def get_handler(model: nn.Module, architecture: str | None = None) -> ArchitectureHandler:
    """The handler named `architecture` ("mlp", "cnn", "transformer", "vit"; any case),
    or the detected one when None.

    Raises:
        NdtError (a ValueError): for an unknown name, a model the named handler rejects,
            or a model no handler accepts.
    """
    if architecture is None:
        handler = detect_architecture(model)
        if handler is None:
            raise NdtError(
                "Could not auto-detect the architecture; pass architecture= "
                f"({', '.join(HANDLERS)})"
            )
        return handler
    key = architecture.lower()
    if key not in HANDLERS:
        raise NdtError(f"Unknown architecture: {architecture}; choose from {', '.join(HANDLERS)}")
    handler = HANDLERS[key]()
    if not handler.validate_model(model):
        raise NdtError(f"The model does not appear to be a {handler.get_name()}")
    return handler


def get_layers_for_model(
    model: nn.Module, architecture: str | None = None
) -> tuple[list[nn.Module], list[str]]:
    """The handler's layers and their names: ``(modules, names)``."""
    handler = get_handler(model, architecture)
    return handler.get_activation_layers(model), handler.get_layer_names(model)
