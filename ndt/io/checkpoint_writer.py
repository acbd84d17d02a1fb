"""Phase2Checkpointer: the reference API's checkpoint and activation saver, writing a folder
that ``ndt track DIR`` analyses with no other option.

Checkpoints are ``step_XXXXXXXX.safetensors`` files with the step in the header metadata
(`ndt.io.checkpoints.save_checkpoint`). Given a model spec, it also writes the ``ndt.toml``
manifest (model factory and probe) beside them; a probe passed as tensors is saved there as
``probe.safetensors``. Activation snapshots go to ``activations_step_<step>.h5`` (gzip).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ndt.errors import CheckpointError, NdtError
from ndt.io.checkpoints import SAFETENSORS_SUFFIX, Checkpoint, load_weights, read_state_dict
from ndt.io.checkpoints import save_checkpoint as _save_checkpoint
from ndt.io.manifest import ModelSpec, write_manifest
from ndt.io.probe import Probe, save_probe

PROBE_NAME = "probe.safetensors"


class Phase2Checkpointer:
    """Save checkpoints and activation snapshots at a fixed interval during training.

    Args:
        checkpoint_dir: Folder for the checkpoints, manifest and snapshots (created).
        capture_interval: `should_capture` is true every this many steps (from step 0).
        model_spec: How ``ndt track`` rebuilds the model: a `ModelSpec`, a zoo name
            (``"mlp"``) or a factory (``"pkg.module:build"``, ``"file.py:build"``). When
            given, the first `save_checkpoint` writes ``ndt.toml``.
        probe: The fixed probe batch for ``ndt track``: a safetensors file, a `Probe`, or an
            inputs tensor (n_samples, ...); tensors and in-memory probes are written to
            ``checkpoint_dir/probe.safetensors``. Recorded in ``ndt.toml`` (needs `model_spec`).

    A factory `model_spec` is code that ``ndt track`` runs only with consent: after the
    first save, run ``ndt trust CHECKPOINT_DIR`` once (or `ndt.models.trust.trust_folder`).

    Example:
        >>> checkpointer = Phase2Checkpointer("runs/mlp/ckpts", 100, model_spec="mlp",
        ...                                   probe=x_probe)
        >>> if checkpointer.should_capture(step):
        ...     checkpointer.save_checkpoint(model, step)
    """

    def __init__(
        self,
        checkpoint_dir: str | Path = "phase2_checkpoints",
        capture_interval: int = 50,
        model_spec: ModelSpec | str | None = None,
        probe: str | Path | Probe | torch.Tensor | None = None,
    ) -> None:
        self.checkpoint_dir = Path(checkpoint_dir)
        self.capture_interval = capture_interval
        self.model_spec = model_spec
        self.probe = probe
        self.captured_steps: set[int] = set()
        self.saved_steps: set[int] = set()
        self._manifest_written = False
        if int(capture_interval) < 1:
            raise NdtError(f"capture_interval must be at least 1, got {capture_interval}")
        if probe is not None and model_spec is None:
            raise NdtError("a probe is recorded in ndt.toml with the model; pass model_spec too")
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)

    def should_capture(self, step: int) -> bool:
        """True when `step` is a multiple of `capture_interval`."""
        return step % self.capture_interval == 0

    def checkpoint_path(self, step: int) -> Path:
        """Where the checkpoint of `step` is (or would be) saved."""
        return self.checkpoint_dir / f"step_{step:08d}{SAFETENSORS_SUFFIX}"

    def save_checkpoint(
        self, model: nn.Module, step: int, metadata: Mapping[str, object] | None = None
    ) -> Path:
        """Save `model`'s weights for `step` (and ``ndt.toml`` the first time).

        Args:
            model: The model being trained.
            step: The training step; stored in the file name and the header metadata.
            metadata: Extra header metadata; values are stored as strings.

        Returns:
            The checkpoint path.
        """
        if not self._manifest_written and self.model_spec is not None:
            self._write_manifest()
        path = _save_checkpoint(model, self.checkpoint_dir, int(step), metadata)
        self.saved_steps.add(int(step))
        return path

    def _write_manifest(self) -> None:
        spec = self.model_spec
        if isinstance(spec, str):
            spec = ModelSpec(spec)
        probe_path = None
        if isinstance(self.probe, (str, Path)):
            probe_path = Path(self.probe)
            if not probe_path.is_file():
                raise NdtError(f"probe file {probe_path} does not exist")
        elif isinstance(self.probe, Probe) and self.probe.path is not None:
            probe_path = self.probe.path
        elif isinstance(self.probe, Probe):
            probe_path = self.checkpoint_dir / PROBE_NAME
            save_probe(probe_path, self.probe.inputs, self.probe.labels, self.probe.extras)
        elif isinstance(self.probe, torch.Tensor):
            probe_path = self.checkpoint_dir / PROBE_NAME
            save_probe(probe_path, self.probe)
        write_manifest(self.checkpoint_dir, spec, probe_path)
        self._manifest_written = True

    def load_checkpoint(self, model: nn.Module, step: int) -> nn.Module:
        """Load the checkpoint of `step` into `model` (strictly) and return the model.

        Raises:
            CheckpointError: if there is no checkpoint for `step` or it does not fit `model`.
        """
        path = self.checkpoint_path(step)
        if not path.is_file():
            raise CheckpointError(f"no checkpoint for step {step} in {self.checkpoint_dir}")
        device = next(model.parameters(), torch.empty(0)).device
        state = read_state_dict(Checkpoint(step=step, path=path, files=(path,)), device)
        load_weights(model, state, path.name)
        return model

    def activations_path(self, step: int) -> Path:
        """Where the activation snapshot of `step` is (or would be) saved."""
        return self.checkpoint_dir / f"activations_step_{step}.h5"

    def save_activations(
        self, activations: Mapping[str, torch.Tensor | np.ndarray], step: int
    ) -> Path:
        """Save layer name -> activation arrays for `step` as gzip-compressed HDF5 datasets.

        Returns:
            The HDF5 file path.
        """
        import h5py

        path = self.activations_path(step)
        with h5py.File(path, "w", track_order=True) as handle:
            handle.attrs["step"] = int(step)
            for name, activation in activations.items():
                if isinstance(activation, torch.Tensor):
                    activation = activation.detach().cpu().numpy()
                # Layer names are qualified module names; '/' would make HDF5 groups.
                handle.create_dataset(
                    name.replace("/", "."),
                    data=np.asarray(activation),
                    compression="gzip",
                    compression_opts=4,
                )
        self.captured_steps.add(int(step))
        return path

    def load_activations(self, step: int) -> dict[str, np.ndarray]:
        """Read back the snapshot saved by `save_activations` for `step`.

        Raises:
            NdtError: if there is no snapshot for `step`.
        """
        import h5py

        path = self.activations_path(step)
        if not path.is_file():
            raise NdtError(f"no activation snapshot for step {step} in {self.checkpoint_dir}")
        with h5py.File(path, "r") as handle:
            return {name: handle[name][()] for name in handle}
