"""MLP and CNN handlers: the output of each Linear/Conv layer after its nonlinearity."""

from __future__ import annotations

from torch import nn

from ndt.architectures.base import ACTIVATIONS, ArchitectureHandler, leaf_modules

WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
# Modules that may sit between a layer and its nonlinearity (Conv -> BatchNorm -> ReLU).
PASS_THROUGH = (
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm,
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Identity,
)  # fmt: skip


class FeedForwardHandler(ArchitectureHandler):
    """Track each Linear or Conv layer through the activation module that follows it.

    When the next leaf module (in registration order, past normalisation and dropout) is a
    nonlinearity such as ReLU, its output is tracked (post-activation, where dormant units
    show); otherwise the layer's own output is, as for the final logits.
    """

    def get_layer_names(self, model: nn.Module) -> list[str]:
        leaves = leaf_modules(model)
        names = []
        for index, (name, module) in enumerate(leaves):
            if isinstance(module, WEIGHT_LAYERS):
                names.append(_activation_after(leaves, index) or name)
        return names


def _activation_after(leaves: list[tuple[str, nn.Module]], index: int) -> str | None:
    for name, module in leaves[index + 1 :]:
        if isinstance(module, ACTIVATIONS):
            return name
        if not isinstance(module, PASS_THROUGH):
            return None
    return None


class MLPHandler(FeedForwardHandler):
    name = "mlp"


class CNNHandler(FeedForwardHandler):
    name = "cnn"
