"""HighFrequencyTracker: dimensionality curves logged from inside a training loop.

Two sources of activations, both reduced to ONE spectrum per layer (`ndt.core.spectrum`)
from which every metric is computed (`ndt.core.estimators`):

- with ``probe=``, each sampled step runs the fixed probe batch forward in eval mode under
  ``torch.inference_mode()`` (the replay engine's capture; a probe above 4096 samples is
  streamed in chunks by its `layer_spectra`), then restores each module's train/eval
  mode. These curves equal ``ndt track`` on checkpoints saved at the same steps;
- without a probe (as the reference API does), forward hooks keep the detached output of
  the latest forward pass of each layer, i.e. the current training batch, and a sampled
  `log` measures those. The batch changes from step to step, so these curves are noisier.

Small finite CPU outputs are kept (up to `_PENDING_STEPS` sampled steps and
`_PENDING_BYTES`) and measured together in one batched pass when the results are read or a
limit is reached: the fixed cost of a measurement, which dominates for small layers, is
then paid once for many steps (docs/performance.md, "In-training tracker"). A non-finite
output is reported at its own `log` call.

Defaults, names and accessors follow the ndtracker package (the reference API's
implementation) where the reference document does not say otherwise; docs/python-api.md
lists each choice.
"""

from __future__ import annotations

import logging
import math
import weakref
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from ndt.architectures import select_layers
from ndt.core.estimators import (
    DEFAULT_METRICS,
    Definitions,
    check_definitions,
    metrics_table,
    validate_metrics,
)
from ndt.core.hooks import ActivationCapture, default_layer_names, resolve_modules
from ndt.core.jump_detector import JumpDetector
from ndt.core.rows import channels_first_layers
from ndt.core.spectrum import Spectrum, as_matrix, is_small, small_spectra
from ndt.errors import NdtError
from ndt.io.probe import Probe

logger = logging.getLogger(__name__)

_BASE_COLUMNS = ("step", "loss", "grad_norm")
_TRACKED_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_MAX_AUTO_LAYERS = 20
# Probes up to this many samples are run in one forward pass and kept whole; larger ones
# are streamed in chunks by the replay engine.
_WHOLE_PROBE_MAX = 4096
# Without a probe, the small outputs of at most this many sampled steps (and bytes) wait to
# be measured together.
_PENDING_STEPS = 32
_PENDING_BYTES = 16 * 2**20


@dataclass
class DimensionalityMetrics:
    """One layer's four reference metrics at one step (ndtracker's record)."""

    step: int
    stable_rank: float
    participation_ratio: float
    cumulative_90: float
    nuclear_norm_ratio: float
    loss: float
    grad_norm: float | None = None

    def to_dict(self) -> dict[str, float | int | None]:
        """The record as a plain dict (keys as the field names)."""
        return asdict(self)


class HighFrequencyTracker:
    """Log per-layer dimensionality every `sampling_frequency` training steps.

    Args:
        model: The model being trained.
        layers: Modules of `model`, or their qualified names, to track. None: with a probe,
            the layers ``ndt track`` picks (`ndt.architectures.select_layers`), named by
            their qualified names; without one, as ndtracker: every Linear and Conv layer
            (every other one when there are more than 20), named ``Linear_0``,
            ``Conv2d_1``, ... (class name and position).
        layer_names: Names for `layers` in the results (default: qualified module names
            for given layers).
        sampling_frequency: Measure at steps that are multiples of this (and when forced).
        enable_jump_detection: Create `jump_detector` and allow `detect_jumps`.
        jump_window_size: Trailing window of the z-score detector, in logged points.
        jump_z_threshold: |z| above which the detector reports a jump.
        device: Where the probe forward runs; None means the device of the model's weights.
        probe: A fixed probe batch (`ndt.io.probe.Probe` or an inputs tensor (n_samples, ...)).
            None measures the activations of the latest training forward instead.
        center: Centre activations over samples before the spectrum; None takes the
            definitions' choice.
        metrics: Names from `ndt.core.estimators.METRICS` to compute.
        definitions: "ndt" (centred, as ``ndt track``) or "ndtracker" (uncentred,
            sigma-based participation ratio), see docs/metrics.md.

    Attributes:
        activation_capture: The `ActivationCapture` holding the hooks (None with a probe).
        jump_detector: The `JumpDetector` of `detect_jumps` (None when disabled).
        metrics_history: Layer -> list of `DimensionalityMetrics`, one per recorded step.

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
        sampling_frequency: int = 1,
        enable_jump_detection: bool = True,
        jump_window_size: int = 50,
        jump_z_threshold: float = 3.0,
        device: str | torch.device | None = None,
        probe: Probe | torch.Tensor | None = None,
        center: bool | None = None,
        metrics: Sequence[str] = DEFAULT_METRICS,
        definitions: Definitions = "ndt",
    ) -> None:
        self.model = model
        self.sampling_frequency = sampling_frequency
        self.enable_jump_detection = enable_jump_detection
        self.jump_window_size = jump_window_size
        self.jump_z_threshold = jump_z_threshold
        self.definitions = check_definitions(definitions)
        self.center = (definitions == "ndt") if center is None else center
        if not isinstance(model, nn.Module):
            raise NdtError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if int(sampling_frequency) < 1:
            raise NdtError(f"sampling_frequency must be at least 1, got {sampling_frequency}")
        self.metrics = validate_metrics(metrics)
        self.probe = Probe(inputs=probe) if isinstance(probe, torch.Tensor) else probe
        self._modules, default_names = self._resolve_layers(layers)
        names = list(layer_names) if layer_names is not None else default_names
        if len(names) != len(self._modules):
            raise NdtError(f"{len(names)} layer_names for {len(self._modules)} layers")
        if len(set(names)) != len(names):
            raise NdtError("layer_names must be unique")
        self.layer_names = names
        self._display = dict(zip(self._modules, names, strict=True))
        # One rows rule with `ndt track`: a Conv1d and the modules it feeds are (B, C, L).
        channels_first = channels_first_layers(model, list(self._modules))
        self._token_axes = {n: n not in channels_first for n in self._modules}
        weights = next(model.parameters(), None)
        default = weights.device if weights is not None else torch.device("cpu")
        self.device = torch.device(device) if device is not None else default
        self._rows: dict[str, list[tuple[float, ...]]] = {name: [] for name in names}
        # `metrics_history`'s records, made from the rows when it is read.
        self._history: dict[str, list[DimensionalityMetrics]] = {n: [] for n in names}
        # Sampled steps not measured yet: (step, (step, loss, grad_norm), key -> output).
        self._pending: list[tuple[int, tuple[float, float, float], dict[str, torch.Tensor]]] = []
        self._pending_bytes = 0
        self._small: dict[tuple[str, torch.Size, torch.device], bool] = {}  # by output shape
        self.jump_detector = (
            JumpDetector(window_size=jump_window_size, z_threshold=jump_z_threshold)
            if enable_jump_detection
            else None
        )
        self.activation_capture: ActivationCapture | None = None
        # Hooks are on only for the forward pass before a sampled step once `log` is seen
        # to be called every step (see `_plan_hooks`).
        self._last_step: int | None = None
        self._closed = False
        self._adaptive_hooks = True
        if self.probe is None:
            self.activation_capture = ActivationCapture()
            self.activation_capture.register_hooks(
                model, list(self._modules.values()), list(self._modules)
            )
            # Hooks live on the model: drop them when the tracker goes, even without close().
            self._finalizer = weakref.finalize(self, self.activation_capture.remove_hooks)

    @property
    def activations(self) -> dict[str, torch.Tensor]:
        """The captured outputs not yet measured, by module key (empty with a probe)."""
        return {} if self.activation_capture is None else self.activation_capture.activations

    def _resolve_layers(
        self, layers: Sequence[nn.Module | str] | None
    ) -> tuple[dict[str, nn.Module], list[str]]:
        """(Qualified name -> module, in the given or model order; their default names)."""
        if layers is None:
            return self._default_layers()
        layers = list(layers)
        if not layers:
            raise NdtError("No layers to track: layers is empty; pass None for the default")
        if all(isinstance(layer, str) for layer in layers):
            modules = resolve_modules(self.model, layers)
            return modules, list(modules)
        qualified = {id(module): name for name, module in self.model.named_modules()}
        modules = {}
        for index, layer in enumerate(layers):
            if not isinstance(layer, nn.Module) or id(layer) not in qualified:
                raise NdtError(
                    f"layers[{index}] ({type(layer).__name__}) is not a module of the model; "
                    "pass its modules or their qualified names"
                )
            modules[qualified[id(layer)]] = layer
        return modules, list(modules)

    def _default_layers(self) -> tuple[dict[str, nn.Module], list[str]]:
        if self.probe is not None:
            try:
                modules = resolve_modules(self.model, select_layers(self.model))
            except NdtError as exc:
                raise NdtError(f"No layers to track: {exc}") from None
            return modules, list(modules)
        found = [(n, m) for n, m in self.model.named_modules() if isinstance(m, _TRACKED_TYPES)]
        if not found:
            raise NdtError(
                "No layers to track: the model has no Linear or Conv layer; pass layers="
            )
        if len(found) > _MAX_AUTO_LAYERS:
            found = found[::2]
        return dict(found), default_layer_names([m for _, m in found])

    def _prepare_activation_matrix(self, activation: torch.Tensor) -> torch.Tensor:
        """A layer output as the (n_samples, n_features) matrix its spectrum is taken of."""
        return as_matrix(activation)

    @property
    def metrics_history(self) -> dict[str, list[DimensionalityMetrics]]:
        """Layer -> one `DimensionalityMetrics` per recorded step."""
        self.flush()
        for name, rows in self._rows.items():
            history = self._history[name]
            history.extend(self._history_record(row) for row in rows[len(history) :])
        return self._history

    def _history_record(self, row: tuple[float, ...]) -> DimensionalityMetrics:
        values = dict(zip(self.metrics, row[len(_BASE_COLUMNS) :], strict=True))
        return _record(int(row[0]), row[: len(_BASE_COLUMNS)], values)

    def _take_outputs(self, step: int) -> dict[str, torch.Tensor]:
        """The captured outputs by module key (then forgotten by the capture); a layer
        that did not run since the last measurement is warned about and left out."""
        outputs = {}
        for name in self._modules:
            activation = self.activation_capture.get_activation(name)
            if activation is None:
                logger.warning(
                    "No activation captured for layer %s at step %d", self._display[name], step
                )
            else:
                outputs[name] = activation
        self.activation_capture.clear_activations()
        return outputs

    def _can_wait(self, outputs: dict[str, torch.Tensor]) -> bool:
        """True when every output is small, on the CPU and finite (a non-finite one is
        reported at its step), so that its measurement can join the pending ones."""
        if not outputs:
            return True
        for name, output in outputs.items():
            key = (name, output.shape, output.device)
            small = self._small.get(key)
            if small is None:
                matrix = as_matrix(output, token_axis=self._token_axes[name])
                small = self._small[key] = is_small(matrix)
            if not small:
                return False
        # The sum of an output holding NaN or Inf is not finite (an overflowing sum only
        # sends the step down the direct path, which checks every value).
        return math.isfinite(sum(output.sum().item() for output in outputs.values()))

    def flush(self) -> None:
        """Measure the sampled steps still pending (the results accessors call it)."""
        if not self._pending:
            return
        pending, self._pending, self._pending_bytes = self._pending, [], 0
        outputs = {
            (index, name): output
            for index, (_, _, step_outputs) in enumerate(pending)
            for name, output in step_outputs.items()
        }
        token_axes = {key: self._token_axes[key[1]] for key in outputs}
        spectra = small_spectra(outputs, center=self.center, token_axes=token_axes)
        measured = [
            (step, base, {name: spectra[(index, name)] for name in step_outputs})
            for index, (step, base, step_outputs) in enumerate(pending)
        ]
        self._store(measured)

    def _probe_outputs(self) -> dict[str, torch.Tensor] | None:
        """The probe's outputs of every layer in one forward pass (eval mode, each module's
        mode restored), or None for a probe above `_WHOLE_PROBE_MAX` samples."""
        from ndt.replay.engine import capture_activations

        if self.probe.n_samples > _WHOLE_PROBE_MAX:
            return None
        modes = [(module, module.training) for module in self.model.modules()]
        try:
            return capture_activations(
                self.model, self.probe, list(self._modules), device=self.device
            )
        finally:
            for module, training in modes:
                module.training = training

    def _streamed_probe_spectra(self) -> dict[str, Spectrum]:
        """A large probe's spectra, streamed in chunks by the replay engine (as ``ndt
        track``)."""
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
        ``optimizer.step()``). A layer that did not run since the last recorded step, or
        whose activations are not finite, records nothing for this step; a warning (no
        activation) or an error (non-finite) is logged, as ndtracker does.

        Raises:
            NdtError: with a probe, if the probe does not fit the model.
        """
        sampled = force or self.should_log(step)
        capture = self.activation_capture
        if sampled and capture is not None and not capture.hooks and not self._closed:
            self._missed(step)
        if sampled:
            self._measure(step, loss, grad_norm)
        if capture is not None:
            self._plan_hooks(step)

    def _plan_hooks(self, step: int) -> None:
        """Hook the layers for the next forward pass only if its step will be measured.

        Once two calls came for consecutive steps, `log` is taken to be called every step:
        the hooks are then removed after a step whose successor is not sampled and put
        back before one that is, so that unmeasured steps pay nothing for them. Any other
        pattern keeps them on.
        """
        if self._closed:
            return
        # This runs after every training step: kept to a few attribute reads.
        step = int(step)
        last, self._last_step = self._last_step, step
        capture = self.activation_capture
        next_unsampled = (step + 1) % self.sampling_frequency != 0
        if self._adaptive_hooks and last is not None and step == last + 1 and next_unsampled:
            if capture.hooks:  # already off on most steps
                capture.pause()
            if capture.activations:  # never measured later as stale
                capture.activations.clear()
        else:
            capture.resume()

    def _missed(self, step: int) -> None:
        """A measured step whose forward ran with the hooks off (`log` skipped steps, or
        was forced at a step it did not expect): keep the hooks on from now on."""
        self._adaptive_hooks = False
        logger.warning(
            "log(step=%d): the forward hooks were off since step %s, when log was being "
            "called every step and step %d was not due; nothing is recorded for it, and the "
            "hooks stay on from now on",
            step,
            self._last_step,
            step,
        )

    def _measure(
        self,
        step: int,
        loss: float | torch.Tensor,
        grad_norm: float | torch.Tensor | None,
    ) -> None:
        base = (float(step), _scalar(loss), _scalar(grad_norm))
        if self.probe is None:
            outputs = self._take_outputs(step)
        else:
            outputs = self._probe_outputs()
            if outputs is None:
                self.flush()
                self._store([(step, base, self._streamed_probe_spectra())])
                return
        if self._can_wait(outputs):
            self._pending.append((step, base, outputs))
            self._pending_bytes += sum(o.element_size() * o.nelement() for o in outputs.values())
            if len(self._pending) >= _PENDING_STEPS or self._pending_bytes > _PENDING_BYTES:
                self.flush()
            return
        self.flush()  # rows stay in step order
        spectra = small_spectra(outputs, center=self.center, token_axes=self._token_axes)
        self._store([(step, base, spectra)])

    def _store(
        self, measured: list[tuple[int, tuple[float, float, float], dict[str, Spectrum]]]
    ) -> None:
        """Compute the metrics of measured steps (one pass for all) and record them."""
        kept = []
        for step, base, spectra in measured:
            for name, spectrum in spectra.items():
                display = self._display[name]
                if spectrum is None:
                    logger.warning("No activation captured for layer %s at step %d", display, step)
                elif not spectrum.is_finite:
                    logger.error(
                        "Error computing metrics for %s at step %d: the activations hold NaN "
                        "or Inf values",
                        display,
                        step,
                    )
                else:
                    kept.append((step, base, display, spectrum))
        table = metrics_table(
            [spectrum for *_, spectrum in kept], self.metrics, definitions=self.definitions
        )
        for (_, base, display, _), values in zip(kept, table.tolist(), strict=True):
            self._rows[display].append(base + tuple(values))

    def get_results(self, layer_name: str | None = None) -> dict[str, pd.DataFrame] | pd.DataFrame:
        """The curves: layer -> DataFrame with one row per recorded step and the columns
        step, loss, grad_norm, then one per metric.

        Args:
            layer_name: Return only this layer's DataFrame (not in a dict).

        Raises:
            NdtError (a ValueError): "Unknown layer name ..." for an untracked layer.
        """
        self.flush()
        if layer_name is not None:
            return self._frame(self._checked_layer(layer_name))
        return {name: self._frame(name) for name in self.layer_names}

    def _frame(self, name: str) -> pd.DataFrame:
        columns = [*_BASE_COLUMNS, *self.metrics]
        frame = pd.DataFrame(self._rows[name], columns=columns, dtype=np.float64)
        frame["step"] = frame["step"].astype(np.int64)
        return frame

    def _checked_layer(self, name: str) -> str:
        if name not in self._rows:
            raise NdtError(f"Unknown layer name '{name}'; tracked: {', '.join(self._rows)}")
        return name

    def detect_jumps(
        self, metric: str = "stable_rank", layer_name: str | None = None
    ) -> dict[str, list]:
        """Run `jump_detector` (rolling z-score) on each layer's curve of `metric`.

        Args:
            metric: A tracked metric.
            layer_name: Only this layer; an untracked name gives an empty dict.

        Returns:
            Layer -> list of `ndt.core.jump_detector.Jump`, with `step` the training step
            and `metric_name` ``<layer>_<metric>``.

        Raises:
            NdtError (a ValueError): if jump detection is disabled or `metric` is not tracked.
        """
        if self.jump_detector is None:
            raise NdtError("Jump detection is disabled; create the tracker with it enabled")
        if metric not in self.metrics:
            raise NdtError(f"metric must be one of {', '.join(self.metrics)}; got '{metric}'")
        self.flush()
        names = self.layer_names if layer_name is None else [layer_name]
        found = {}
        for name in names:
            if name not in self._rows:
                continue
            frame = self._frame(name)
            steps = frame["step"].to_numpy()
            jumps = self.jump_detector.detect_jumps(
                frame[metric].to_numpy(), metric_name=f"{name}_{metric}"
            )
            found[name] = [_at_step(jump, steps) for jump in jumps]
        return found

    def close(self) -> None:
        """Remove the forward hooks (if any); recorded results stay available."""
        self.flush()
        self._closed = True
        if self.activation_capture is not None:
            self.activation_capture.remove_hooks()

    def __enter__(self) -> HighFrequencyTracker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _record(step: int, base: tuple[float, ...], values: dict[str, float]) -> DimensionalityMetrics:
    return DimensionalityMetrics(
        step=int(step),
        stable_rank=values.get("stable_rank", float("nan")),
        participation_ratio=values.get("participation_ratio", float("nan")),
        cumulative_90=values.get("cumulative_energy_90", float("nan")),
        nuclear_norm_ratio=values.get("nuclear_norm_ratio", float("nan")),
        loss=base[1],
        grad_norm=None if np.isnan(base[2]) else base[2],
    )


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
