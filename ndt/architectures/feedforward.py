"""MLP and CNN: ndt's default layers (after each nonlinearity) and ndtracker's handlers."""

from __future__ import annotations

import re

from torch import nn

from ndt.architectures.base import ACTIVATIONS, CONVOLUTIONS, ArchitectureHandler, leaf_modules
from ndt.architectures.transformer import is_attention

WEIGHT_LAYERS = (nn.Linear, *CONVOLUTIONS)
# Modules that may sit between a layer and its nonlinearity (Conv -> BatchNorm -> ReLU).
PASS_THROUGH = (
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm,
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Identity,
)  # fmt: skip
_GROUP = re.compile(r"layer\d+")


def feedforward_layer_names(model: nn.Module) -> list[str]:
    """``ndt track``'s default: each Linear or Conv layer through the activation after it.

    When the next leaf module (in registration order, past normalisation and dropout) is a
    nonlinearity such as ReLU, its output is tracked (post-activation, where dormant units
    show); otherwise the layer's own output is, as for the final logits.
    """
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


class MLPHandler(ArchitectureHandler):
    """Every Linear layer of a model without convolutions or attention."""

    def validate_model(self, model: nn.Module) -> bool:
        modules = list(model.modules())
        return (
            any(isinstance(m, nn.Linear) for m in modules)
            and not any(isinstance(m, CONVOLUTIONS) for m in modules)
            and not any(is_attention(m) for m in modules)
        )

    def get_activation_layers(self, model: nn.Module) -> list[nn.Module]:
        return [m for m in model.modules() if isinstance(m, nn.Linear)]

    def get_layer_names(self, model: nn.Module) -> list[str]:
        return [
            f"Linear_{i}_{m.in_features}x{m.out_features}"
            for i, m in enumerate(self.get_activation_layers(model))
        ]


class CNNHandler(ArchitectureHandler):
    """Each convolution (for a ResNet, the last of each ``layerN`` group), then the final
    Linear layer."""

    def validate_model(self, model: nn.Module) -> bool:
        return any(isinstance(m, CONVOLUTIONS) for m in model.modules())

    def _is_resnet(self, model: nn.Module) -> bool:
        return any(_GROUP.fullmatch(name) for name, _ in model.named_children())

    def _convolutions(self, model: nn.Module) -> list[nn.Module]:
        if not self._is_resnet(model):
            return [m for m in model.modules() if isinstance(m, CONVOLUTIONS)]
        groups = [m for name, m in model.named_children() if _GROUP.fullmatch(name)]
        lasts = [[m for m in g.modules() if isinstance(m, CONVOLUTIONS)][-1:] for g in groups]
        return [conv for last in lasts for conv in last]

    def get_activation_layers(self, model: nn.Module) -> list[nn.Module]:
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        return self._convolutions(model) + linears[-1:]

    def get_layer_names(self, model: nn.Module) -> list[str]:
        names, n_conv, n_fc = [], 0, 0
        for module in self.get_activation_layers(model):
            if isinstance(module, nn.Linear):
                names.append(f"FC_{n_fc}_{module.out_features}")
                n_fc += 1
            else:
                names.append(f"Conv_{n_conv}_{module.out_channels}ch")
                n_conv += 1
        return names
