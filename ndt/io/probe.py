"""The fixed probe batch: a safetensors file with ``inputs`` (required), ``labels`` (optional)
and any other tensors, which are passed to ``forward`` as keyword arguments.

Every checkpoint is replayed on the same probe, so the probe's sha256 is recorded with the
results and checked again by ``ndt compare``.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ndt.errors import ProbeError, describe

INPUTS_KEY = "inputs"
#: Read as the inputs when a probe has no ``inputs``: a tokenizer's output saved as it is.
INPUTS_ALIASES = ("input_ids",)
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


# safetensors dtype codes that numpy can memory-map; others (bf16, fp8) are read whole.
_NUMPY_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64,
    "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_,
}  # fmt: skip


def _map_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file, memory-mapped where possible, so that a probe larger
    than memory is paged in chunk by chunk as the forward passes read it."""
    with open(path, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
    header.pop("__metadata__", None)
    if any(entry["dtype"] not in _NUMPY_DTYPES for entry in header.values()):
        from safetensors.torch import load_file

        return load_file(path)
    tensors = {}
    for name, entry in header.items():
        start, stop = entry["data_offsets"]
        dtype = np.dtype(_NUMPY_DTYPES[entry["dtype"]])
        shape = tuple(entry["shape"])
        if stop - start != dtype.itemsize * int(np.prod(shape)):
            raise ValueError(f"tensor '{name}' has {stop - start} bytes for shape {shape}")
        if stop == start:
            tensors[name] = torch.from_numpy(np.empty(shape, dtype))
            continue
        # Copy-on-write mapping: pages load lazily and the tensor is writable for torch.
        mapped = np.memmap(path, dtype=dtype, mode="c", offset=8 + length + start, shape=shape)
        tensors[name] = torch.from_numpy(mapped)
    return tensors


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
        tensors = _map_tensors(path)
    except Exception as exc:
        raise ProbeError(f"cannot read probe {path}: {describe(exc)}") from exc
    key = next((k for k in (INPUTS_KEY, *INPUTS_ALIASES) if k in tensors), None)
    if key is None:
        keys = ", ".join(sorted(tensors)) or "nothing"
        raise ProbeError(f"probe {path} has no 'inputs' or 'input_ids' tensor (it holds {keys})")
    inputs = tensors.pop(key)
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
