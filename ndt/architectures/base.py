"""The handler interface (ndtracker's): which modules of a model are worth tracking."""

from __future__ import annotations

from abc import ABC, abstractmethod

from torch import nn

ACTIVATIONS = (
    nn.ReLU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.LeakyReLU, nn.ELU, nn.Mish, nn.Softplus,
    nn.ReLU6, nn.Hardswish, nn.PReLU, nn.SELU, nn.CELU,
)  # fmt: skip
CONVOLUTIONS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


class ArchitectureHandler(ABC):
    """Chooses the layers of one family of architectures, as the ndtracker package does.

    Subclasses say whether a model is of their family (`validate_model`), which modules to
    hook (`get_activation_layers`) and a readable name for each (`get_layer_names`). These
    are the reference API's handlers; ``ndt track`` picks its own default layers
    (`ndt.architectures.select_layers`).
    """

    @abstractmethod
    def validate_model(self, model: nn.Module) -> bool:
        """True if `model` belongs to this handler's family."""

    @abstractmethod
    def get_activation_layers(self, model: nn.Module) -> list[nn.Module]:
        """The modules to hook, in order."""

    @abstractmethod
    def get_layer_names(self, model: nn.Module) -> list[str]:
        """One display name per module of `get_activation_layers`."""

    def get_name(self) -> str:
        """The family's name: the class name without its ``Handler`` suffix."""
        return type(self).__name__.removesuffix("Handler")

    def __str__(self) -> str:
        return self.get_name()


def leaf_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules without children, in registration order."""
    return [(n, m) for n, m in model.named_modules() if n and not any(m.children())]


def every_other_if_many(layers: list[nn.Module], limit: int = 10) -> list[nn.Module]:
    """`layers`, or every other one when there are more than `limit`."""
    return layers[::2] if len(layers) > limit else layers
