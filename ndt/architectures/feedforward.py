"""MLP and CNN handlers: the output of each Linear/Conv layer after its nonlinearity."""

from __future__ import annotations

from torch import nn

from ndt.architectures.base import ACTIVATIONS, ArchitectureHandler, leaf_modules

WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


class FeedForwardHandler(ArchitectureHandler):
    """Track each Linear or Conv layer through the activation module that follows it.

    When the next leaf module (in registration order) is a nonlinearity such as ReLU, its
    output is tracked (post-activation, where dormant units show); otherwise the layer's
    own output is, as for the final logits.
    """

    def get_layer_names(self, model: nn.Module) -> list[str]:
        leaves = leaf_modules(model)
        names = []
        for index, (name, module) in enumerate(leaves):
            if not isinstance(module, WEIGHT_LAYERS):
                continue
            follower = leaves[index + 1] if index + 1 < len(leaves) else None
            if follower is not None and isinstance(follower[1], ACTIVATIONS):
                names.append(follower[0])
            else:
                names.append(name)
        return names


class MLPHandler(FeedForwardHandler):
    name = "mlp"


class CNNHandler(FeedForwardHandler):
    name = "cnn"
