"""`Phase2AnalyzerBase` (reference §4.1): hooks on a live model, capture on a batch, and the
dimensionality of what was captured, computed by the same code as `ndt track`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from ndt.analysis.matrices import to_matrix
from ndt.core.estimators import DEFAULT_METRICS, compute_metrics
from ndt.core.hooks import ActivationCapture
from ndt.core.spectrum import compute_spectrum


@dataclass(frozen=True)
class LayerDimensionality:
    """Dimensionality of one captured layer.

    Attributes:
        metrics: Every metric of `ndt.core.estimators.METRICS` (centred spectrum).
        shape: Shape of the activation matrix, (n_rows, n_features).
        mean: Per-feature mean, (n_features,).
        std: Per-feature standard deviation, (n_features,).
    """

    metrics: dict[str, float]
    shape: tuple[int, int]
    mean: NDArray[np.float64]
    std: NDArray[np.float64]

    @property
    def stable_rank(self) -> float:
        return self.metrics["stable_rank"]

    @property
    def participation_ratio(self) -> float:
        return self.metrics["participation_ratio"]


class Phase2AnalyzerBase:
    """Capture a model's layer outputs on a batch and measure their dimensionality.

    Args:
        model: The model to observe.
        device: Where inputs go; default CUDA when available, else CPU.

    Example:
        >>> analyzer = Phase2AnalyzerBase(model)
        >>> analyzer.register_activation_hooks()
        >>> dims = analyzer.analyze_dimensionality(analyzer.capture_activations(x))
        >>> analyzer.cleanup()
    """

    def __init__(self, model: nn.Module, device: torch.device | str | None = None) -> None:
        self.model = model
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.capture = ActivationCapture()

    def register_activation_hooks(self, layers: Sequence[nn.Module] | None = None) -> None:
        """Hook `layers` (default: every Linear and Conv2d), named by qualified module name."""
        names = {id(m): n for n, m in self.model.named_modules()}
        if layers is None:
            layers = [m for m in self.model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
        self.capture.register_hooks(self.model, layers, [names.get(id(m), "?") for m in layers])

    def capture_activations(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run `x` through the model in eval mode without autograd; the hooked outputs."""
        self.model.eval()
        self.capture.clear_activations()
        with torch.no_grad():
            self.model(x.to(self.device))
        return self.capture.get_all_activations()

    def analyze_dimensionality(
        self, activations: dict[str, torch.Tensor]
    ) -> dict[str, LayerDimensionality]:
        """Every track metric, the matrix shape, and per-feature mean and std of each layer."""
        results = {}
        for name, activation in activations.items():
            spectrum = compute_spectrum(activation)
            matrix = to_matrix(activation)
            results[name] = LayerDimensionality(
                metrics=compute_metrics(spectrum, DEFAULT_METRICS),
                shape=(int(matrix.shape[0]), int(matrix.shape[1])),
                mean=matrix.mean(0),
                std=matrix.std(0, ddof=1) if len(matrix) > 1 else np.zeros(matrix.shape[1]),
            )
        return results

    def cleanup(self) -> None:
        """Remove every hook this analyzer registered."""
        self.capture.remove_hooks()
