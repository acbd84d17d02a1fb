"""Forward hooks that hand each selected module's output to a callback, scoped so that no
hook outlives its use.

Hooks are global state on a model: `forward_hooks` registers them in a context manager and
removes every handle in ``finally``. A module whose output is a tuple (or a mapping, as
Hugging Face model outputs are) contributes its first tensor. `ActivationCapture` is the
reference API's object form, which keeps the last output of each module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from ndt.errors import NdtError


def first_tensor(output: object) -> torch.Tensor | None:
    """The tensor a module output stands for: itself, or the first tensor it contains."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping):
        output = list(output.values())
    if isinstance(output, (tuple, list)):
        for item in output:
            found = first_tensor(item)
            if found is not None:
                return found
    return None


@contextmanager
def forward_hooks(
    modules: Mapping[str, nn.Module], callback: Callable[[str, torch.Tensor], None]
) -> Iterator[None]:
    """Call ``callback(name, output)`` after each forward of each module in `modules`.

    Outputs are detached. A module whose output holds no tensor raises NdtError.
    """
    handles = []

    def make_hook(name: str) -> Callable:
        def hook(module: nn.Module, args: object, output: object) -> None:
            tensor = first_tensor(output)
            if tensor is None:
                raise NdtError(f"layer '{name}' returned no tensor; choose another layer")
            callback(name, tensor.detach())

        return hook

    try:
        for name, module in modules.items():
            handles.append(module.register_forward_hook(make_hook(name)))
        yield
    finally:
        for handle in handles:
            handle.remove()


def resolve_modules(model: nn.Module, names: Sequence[str]) -> dict[str, nn.Module]:
    """Map qualified names from ``named_modules()`` to modules, keeping the given order.

    Raises:
        NdtError: naming the first name the model does not have.
    """
    available = dict(model.named_modules())
    missing = [n for n in names if n not in available]
    if missing:
        raise NdtError(f"the model has no layer '{missing[0]}'; see `ndt layers` for its names")
    return {name: available[name] for name in names}


class ActivationCapture:
    """Keep the latest output of selected modules, as in the reference API.

    Example:
        >>> capture = ActivationCapture()
        >>> capture.register_hooks(model, [m for m in model.modules() if isinstance(m, nn.Linear)])
        >>> _ = model(x)
        >>> capture.get_activation("Linear_0").shape
        >>> capture.remove_hooks()

    Default names are ``<ClassName>_<index>`` with the index in `layers` (ndtracker's);
    `get_activation` also answers to ``<ClassName>_<index>_out``, the reference document's
    spelling. Pass `layer_names` (for instance qualified names) to choose others.

    Attributes:
        activations: Name -> detached latest output.
        hooks: The registered hook handles.
    """

    def __init__(self) -> None:
        self.activations: dict[str, torch.Tensor] = {}
        self.hooks: list[torch.utils.hooks.RemovableHandle] = []
        self._layer_names: dict[nn.Module, str] = {}

    def register_hooks(
        self,
        model: nn.Module,
        layers: Sequence[nn.Module],
        layer_names: Sequence[str] | None = None,
    ) -> None:
        """Hook every module in `layers` (which should belong to `model`).

        Raises:
            NdtError (a ValueError): if `layer_names` and `layers` differ in length, or a
                layer is not a module of `model`.
        """
        layers = list(layers)
        if layer_names is not None and len(layer_names) != len(layers):
            raise NdtError(
                f"Number of layer names ({len(layer_names)}) must match number of layers "
                f"({len(layers)})"
            )
        names = list(layer_names or default_layer_names(layers))
        owned = {id(m) for m in model.modules()}
        for name, module in zip(names, layers, strict=True):
            if id(module) not in owned:
                raise NdtError(f"layer {name} is not a module of the given model")
        for name, module in zip(names, layers, strict=True):
            self._layer_names[module] = name
            self.hooks.append(module.register_forward_hook(self._make_hook(name)))

    def pause(self) -> None:
        """Remove the hooks but remember the layers (`resume` hooks them again); stored
        outputs stay. A paused capture costs the model nothing."""
        for handle in self.hooks:
            handle.remove()
        self.hooks.clear()

    def resume(self) -> None:
        """Hook the registered layers again after `pause` (nothing if they are hooked)."""
        if not self.hooks:
            for module, name in self._layer_names.items():
                self.hooks.append(module.register_forward_hook(self._make_hook(name)))

    def _make_hook(self, name: str) -> Callable:
        def hook(module: nn.Module, args: object, output: object) -> None:
            tensor = first_tensor(output)
            if tensor is not None:
                self.activations[name] = tensor.detach()

        return hook

    def get_activation(self, name: str) -> torch.Tensor | None:
        """The latest output of the layer called `name` (or `name` less an ``_out``
        suffix), or None."""
        found = self.activations.get(name)
        if found is None and name.endswith("_out"):
            found = self.activations.get(name[: -len("_out")])
        return found

    def get_all_activations(self) -> dict[str, torch.Tensor]:
        """A copy of the name -> latest output mapping."""
        return dict(self.activations)

    def clear_activations(self) -> None:
        """Forget the stored outputs (hooks stay registered)."""
        self.activations.clear()

    def remove_hooks(self) -> None:
        """Remove every hook this object registered, and the stored outputs."""
        for handle in self.hooks:
            handle.remove()
        self.hooks.clear()
        self.activations.clear()
        self._layer_names.clear()

    def __enter__(self) -> ActivationCapture:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove_hooks()


def default_layer_names(layers: Sequence[nn.Module]) -> list[str]:
    """ndtracker's names: class name and position in `layers` (``Linear_0``, ``Conv2d_1``)."""
    return [f"{type(m).__name__}_{i}" for i, m in enumerate(layers)]
