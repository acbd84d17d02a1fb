"""The fixed probe batch: a safetensors file with ``inputs`` (required), ``labels`` (optional)
and any other tensors, which are passed to ``forward`` as keyword arguments.

Every checkpoint is replayed on the same probe, so the probe's sha256 is recorded with the
results and checked again by ``ndt compare``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ndt.errors import ProbeError

INPUTS_KEY = "inputs"
LABELS_KEY = "labels"


@dataclass(frozen=True)
class Probe:
    """A batch of probe samples, all tensors sharing their first dimension.

    Attributes:
        inputs: The positional input of ``forward``, shape (n_samples, ...).
        labels: Optional class labels, shape (n_samples,).
        extras: Other tensors, passed to ``forward`` by name.
        sha256: Hex digest of the file it was read from ("" when built in memory).
        path: The file it was read from, if any.
    """

    inputs: torch.Tensor
    labels: torch.Tensor | None = None
    extras: Mapping[str, torch.Tensor] = field(default_factory=dict)
    sha256: str = ""
    path: Path | None = None

    @property
    def n_samples(self) -> int:
        return int(self.inputs.shape[0])

    def chunks(
        self, batch_size: int | None, device: str | torch.device = "cpu"
    ) -> Iterator[tuple[torch.Tensor, dict[str, torch.Tensor]]]:
        """Yield ``(inputs, extras)`` slices of at most `batch_size` samples on `device`."""
        size = batch_size or self.n_samples
        if size < 1:
            raise ProbeError(f"--batch-size must be at least 1, got {size}")
        for start in range(0, self.n_samples, size):
            stop = start + size
            extras = {k: v[start:stop].to(device) for k, v in self.extras.items()}
            yield self.inputs[start:stop].to(device), extras


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_probe(path: str | Path) -> Probe:
    """Read a probe from a safetensors file.

    Raises:
        ProbeError: if the file is missing or unreadable, lacks ``inputs``, or its tensors
            disagree on the number of samples.
    """
    path = Path(path)
    if not path.is_file():
        raise ProbeError(f"probe file {path} does not exist")
    try:
        from safetensors.torch import load_file

        tensors = load_file(path)
    except Exception as exc:
        raise ProbeError(f"cannot read probe {path}: {str(exc).splitlines()[0]}") from exc
    if INPUTS_KEY not in tensors:
        keys = ", ".join(sorted(tensors)) or "nothing"
        raise ProbeError(f"probe {path} has no 'inputs' tensor (it holds {keys})")
    inputs = tensors.pop(INPUTS_KEY)
    labels = tensors.pop(LABELS_KEY, None)
    for name, tensor in [(LABELS_KEY, labels), *tensors.items()]:
        if tensor is not None and (tensor.ndim == 0 or tensor.shape[0] != inputs.shape[0]):
            raise ProbeError(
                f"probe {path}: '{name}' has shape {tuple(tensor.shape)} but 'inputs' has "
                f"{inputs.shape[0]} samples"
            )
    return Probe(inputs, labels, dict(tensors), sha256=file_sha256(path), path=path)


def save_probe(
    path: str | Path,
    inputs: torch.Tensor,
    labels: torch.Tensor | None = None,
    extras: Mapping[str, torch.Tensor] | None = None,
    metadata: Mapping[str, str] | None = None,
) -> Probe:
    """Write a probe file and return it as loaded back (with its sha256)."""
    from safetensors.torch import save_file

    tensors = {INPUTS_KEY: inputs.detach().cpu().contiguous()}
    if labels is not None:
        tensors[LABELS_KEY] = labels.detach().cpu().contiguous()
    for name, tensor in (extras or {}).items():
        tensors[name] = tensor.detach().cpu().contiguous()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, path, metadata=dict(metadata or {}))
    return load_probe(path)
