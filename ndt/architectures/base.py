"""The handler interface: which modules of a model are worth tracking."""

from __future__ import annotations

from torch import nn

ACTIVATIONS = (
    nn.ReLU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.LeakyReLU, nn.ELU, nn.Mish, nn.Softplus,
    nn.ReLU6, nn.Hardswish, nn.PReLU, nn.SELU, nn.CELU,
)  # fmt: skip


class ArchitectureHandler:
    """Chooses the layers tracked by default for one family of architectures."""

    name = "generic"

    def get_layer_names(self, model: nn.Module) -> list[str]:
        """Qualified names (as in ``named_modules()``) of the layers to track, in model order."""
        return [name for name, _ in model.named_children()]

    def get_activation_layers(self, model: nn.Module) -> list[nn.Module]:
        """The modules named by `get_layer_names`, in the same order."""
        modules = dict(model.named_modules())
        return [modules[name] for name in self.get_layer_names(model)]


def leaf_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules without children, in registration order."""
    return [(n, m) for n, m in model.named_modules() if n and not any(m.children())]
