"""HighFrequencyTracker: dimensionality curves logged from inside a training loop.

Two sources of activations, both reduced to ONE spectrum per layer (`ndt.core.spectrum`)
from which every metric is computed (`ndt.core.estimators`):

- with ``probe=``, each sampled step runs the fixed probe batch forward in eval mode under
  ``torch.inference_mode()`` through the replay engine's `layer_spectra`, then restores each
  module's train/eval mode. These curves equal ``ndt track`` on checkpoints saved at the
  same steps;
- without a probe (as the reference API does), forward hooks keep the detached output of
  the latest forward pass of each layer, i.e. the current training batch, and a sampled
  `log` measures those. The batch changes from step to step, so these curves are noisier.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from ndt.architectures import select_layers
from ndt.core.estimators import DEFAULT_METRICS, compute_metrics, validate_metrics
from ndt.core.hooks import ActivationCapture, resolve_modules
from ndt.core.rows import channels_first_layers
from ndt.core.spectrum import Spectrum, compute_spectrum
from ndt.errors import NdtError
from ndt.io.probe import Probe

logger = logging.getLogger(__name__)

_BASE_COLUMNS = ("step", "loss", "grad_norm")


class HighFrequencyTracker:
    """Log per-layer dimensionality every `sampling_frequency` training steps.

    Args:
        model: The model being trained.
        layers: Modules of `model`, or their qualified names, to track; None uses
            `ndt.architectures.select_layers` (the layers ``ndt track`` picks).
        layer_names: Names for `layers` in the results (default: qualified module names).
        sampling_frequency: Measure at steps that are multiples of this (and when forced).
        enable_jump_detection: Allow `detect_jumps`.
        jump_window_size: Trailing window of the z-score detector, in logged points
            (None: `JumpDetector`'s default).
        jump_z_threshold: |z| above which the detector reports a jump (None: its default).
        device: Where the probe forward runs; None means the device of the model's weights.
        probe: A fixed probe batch (`ndt.io.probe.Probe` or an inputs tensor (n_samples, ...)).
            None measures the activations of the latest training forward instead.
        center: Centre activations over samples before the spectrum (as ``ndt track``).
        metrics: Names from `ndt.core.estimators.METRICS` to compute.

    Example:
        >>> tracker = HighFrequencyTracker(model, sampling_frequency=10, probe=x_probe)
        >>> for step, (x, y) in enumerate(loader):
        ...     loss = train_step(model, x, y)
        ...     tracker.log(step, loss.item())
        >>> results = tracker.get_results()  # layer -> DataFrame
        >>> tracker.close()
    """

    def __init__(
        self,
        model: nn.Module,
        layers: Sequence[nn.Module | str] | None = None,
        layer_names: Sequence[str] | None = None,
        sampling_frequency: int = 10,
        enable_jump_detection: bool = True,
        jump_window_size: int | None = None,
        jump_z_threshold: float | None = None,
        device: str | torch.device | None = None,
        probe: Probe | torch.Tensor | None = None,
        center: bool = True,
        metrics: Sequence[str] = DEFAULT_METRICS,
    ) -> None:
        self.model = model
        self.sampling_frequency = sampling_frequency
        self.enable_jump_detection = enable_jump_detection
        self.jump_window_size = jump_window_size
        self.jump_z_threshold = jump_z_threshold
        self.center = center
        if not isinstance(model, nn.Module):
            raise NdtError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if int(sampling_frequency) < 1:
            raise NdtError(f"sampling_frequency must be at least 1, got {sampling_frequency}")
        try:
            self.metrics = validate_metrics(metrics)
        except ValueError as exc:
            raise NdtError(str(exc)) from None
        self._modules = self._resolve_layers(layers)
        names = list(layer_names) if layer_names is not None else list(self._modules)
        if len(names) != len(self._modules):
            raise NdtError(f"{len(names)} layer_names for {len(self._modules)} layers")
        if len(set(names)) != len(names):
            raise NdtError("layer_names must be unique")
        self.layer_names = names
        self._display = dict(zip(self._modules, names, strict=True))
        weights = next(model.parameters(), None)
        default = weights.device if weights is not None else torch.device("cpu")
        self.device = torch.device(device) if device is not None else default
        self.probe = Probe(inputs=probe) if isinstance(probe, torch.Tensor) else probe
        self._rows: dict[str, list[tuple[float, ...]]] = {name: [] for name in names}
        self._capture: ActivationCapture | None = None
        if self.probe is None:
            self._capture = ActivationCapture()
            self._capture.register_hooks(model, list(self._modules.values()), list(self._modules))
            # Hooks live on the model: drop them when the tracker goes, even without close().
            self._finalizer = weakref.finalize(self, self._capture.remove_hooks)

    def _resolve_layers(self, layers: Sequence[nn.Module | str] | None) -> dict[str, nn.Module]:
        """Qualified name -> module, in the given (or model) order."""
        if layers is None:
            return resolve_modules(self.model, select_layers(self.model))
        layers = list(layers)
        if not layers:
            raise NdtError("layers is empty; pass None to track the default layers")
        if all(isinstance(layer, str) for layer in layers):
            return resolve_modules(self.model, layers)
        qualified = {id(module): name for name, module in self.model.named_modules()}
        modules = {}
        for index, layer in enumerate(layers):
            if not isinstance(layer, nn.Module) or id(layer) not in qualified:
                raise NdtError(
                    f"layers[{index}] ({type(layer).__name__}) is not a module of the model; "
                    "pass its modules or their qualified names"
                )
            modules[qualified[id(layer)]] = layer
        return modules

    def _spectra(self) -> dict[str, Spectrum | None]:
        if self.probe is not None:
            from ndt.replay.engine import layer_spectra

            modes = [(module, module.training) for module in self.model.modules()]
            try:
                return layer_spectra(
                    self.model, self.probe, list(self._modules), center=self.center,
                    device=self.device,
                )  # fmt: skip
            finally:
                for module, training in modes:
                    module.training = training
        spectra: dict[str, Spectrum | None] = {}
        channels_first = channels_first_layers(self.model, list(self._modules))
        for name in self._modules:
            activation = self._capture.get_activation(name)
            if activation is None:
                spectra[name] = None
                continue
            spectra[name] = compute_spectrum(
                activation, center=self.center, token_axis=name not in channels_first
            )
        if all(spectrum is None for spectrum in spectra.values()):
            raise NdtError(
                "no activations to measure: call tracker.log after the model's forward pass, "
                "or pass probe= to measure a fixed batch"
            )
        self._capture.clear_activations()
        return spectra

    def should_log(self, step: int) -> bool:
        """True when `step` is a multiple of `sampling_frequency`."""
        return step % self.sampling_frequency == 0

    def log(
        self,
        step: int,
        loss: float | torch.Tensor,
        grad_norm: float | torch.Tensor | None = None,
        force: bool = False,
    ) -> None:
        """Record the metrics of every tracked layer if `step` is sampled (or `force`).

        Call it after the training step's forward pass (and, usually, after
        ``optimizer.step()``). Without a probe, a layer that did not run since the last
        recorded step gets NaN metrics and a logged warning.

        Raises:
            NdtError: without a probe, if no tracked layer ran since the last recorded step;
                with one, if the probe does not fit the model.
        """
        if not force and not self.should_log(step):
            return
        spectra = self._spectra()
        base = (float(step), _scalar(loss), _scalar(grad_norm))
        for name, spectrum in spectra.items():
            if spectrum is None:
                logger.warning("layer %s produced no output before step %d", name, step)
                values = (float("nan"),) * len(self.metrics)
            else:
                values = tuple(compute_metrics(spectrum, self.metrics).values())
            self._rows[self._display[name]].append(base + values)

    def get_results(self, layer_name: str | None = None) -> dict[str, pd.DataFrame]:
        """The curves: layer -> DataFrame with one row per recorded step and the columns
        step, loss, grad_norm, then one per metric.

        Args:
            layer_name: Return only this layer's DataFrame (still in a one-item dict).
        """
        names = self.layer_names if layer_name is None else [self._checked_layer(layer_name)]
        columns = [*_BASE_COLUMNS, *self.metrics]
        frames = {}
        for name in names:
            frame = pd.DataFrame(self._rows[name], columns=columns, dtype=np.float64)
            frame["step"] = frame["step"].astype(np.int64)
            frames[name] = frame
        return frames

    def _checked_layer(self, name: str) -> str:
        if name not in self._rows:
            raise NdtError(f"no layer '{name}' is tracked; tracked: {', '.join(self._rows)}")
        return name

    def detect_jumps(
        self, metric: str = "stable_rank", layer_name: str | None = None
    ) -> dict[str, list]:
        """Run the reference's rolling z-score detector on each layer's curve of `metric`.

        Returns:
            Layer -> list of `ndt.core.jump_detector.Jump`, with `step` the training step.

        Raises:
            NdtError: if jump detection is disabled or `metric` is not tracked.
        """
        from ndt.core.jump_detector import JumpDetector

        if not self.enable_jump_detection:
            raise NdtError("jump detection is disabled; create the tracker with it enabled")
        if metric not in self.metrics:
            raise NdtError(f"metric '{metric}' is not tracked; tracked: {', '.join(self.metrics)}")
        settings = {"window_size": self.jump_window_size, "z_threshold": self.jump_z_threshold}
        detector = JumpDetector(**{k: v for k, v in settings.items() if v is not None})
        found = {}
        for name, frame in self.get_results(layer_name).items():
            steps = frame["step"].to_numpy()
            jumps = detector.detect_jumps(frame[metric].to_numpy(), metric_name=metric)
            found[name] = [_at_step(jump, steps) for jump in jumps]
        return found

    def close(self) -> None:
        """Remove the forward hooks (if any); recorded results stay available."""
        if self._capture is not None:
            self._capture.remove_hooks()

    def __enter__(self) -> HighFrequencyTracker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _scalar(value: float | torch.Tensor | None) -> float:
    if value is None:
        return float("nan")
    if isinstance(value, torch.Tensor):
        return float(value.detach().item())
    return float(value)


def _at_step(jump: object, steps: np.ndarray) -> object:
    """The detector counts logged points; report the training step of that point."""
    from dataclasses import replace

    return replace(jump, step=int(steps[int(jump.step)]))
