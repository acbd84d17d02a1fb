"""Discover checkpoint files in a folder, read their steps, and load them into a model.

A checkpoint is one ``*.safetensors`` file, or the shards ``model-00001-of-00002.safetensors``
... of one save. Its step is the integer in the safetensors header metadata key ``step`` when
present, otherwise the integer in the file name, or in the name of the folder that holds it
(``step_1200``, ``model_step_1200``, ``checkpoint-1200``, ``step1200``, ``1200``). Legacy
``.pt/.pth/.bin`` state dicts are considered only when the tree holds no safetensors at all
(so that ``optimizer.pt`` beside ``model.safetensors`` is never mistaken for weights), and
they are read only through ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import json
import logging
import re
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ndt.errors import CheckpointError, WeightsMismatchError, describe

SAFETENSORS_SUFFIX = ".safetensors"
LEGACY_SUFFIXES = (".pt", ".pth", ".bin")
# Wrappers that prefix every key: DataParallel/DDP, torch.compile, Lightning-style modules.
WRAPPER_PREFIXES = ("module.", "_orig_mod.", "model.")

_STEP_NAME = re.compile(
    r"(?:.*?(?:step|checkpoint|ckpt|iter|iteration)[_\-]?)?(\d+)", flags=re.IGNORECASE
)
_SHARD = re.compile(r"(.+)-(\d+)-of-(\d+)$")
#: Steps are stored as int64.
STEP_LIMIT = 2**63
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Checkpoint:
    """One saved model state.

    Attributes:
        step: Training step the state was saved at.
        path: The file (for a sharded save, the first shard).
        files: Every file of the save, in shard order.
    """

    step: int
    path: Path
    files: tuple[Path, ...]

    @property
    def name(self) -> str:
        """A short label: the file name, or folder/file for nested saves."""
        return self.path.name

    @property
    def size(self) -> int:
        """Total bytes on disk."""
        return sum(f.stat().st_size for f in self.files)

    @property
    def mtime(self) -> float:
        """Latest modification time of its files (seconds since the epoch)."""
        return max(f.stat().st_mtime for f in self.files)


def read_safetensors_metadata(path: Path) -> dict[str, str]:
    """Return the ``__metadata__`` of a safetensors header (empty if absent or unreadable)."""
    try:
        with open(path, "rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if length > 100_000_000:
                return {}
            header = json.loads(handle.read(length))
    except (OSError, struct.error, ValueError):
        return {}
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    return dict(metadata) if isinstance(metadata, dict) else {}


def step_from_name(name: str) -> int | None:
    """Parse a step from a file or folder name without its suffix, or None."""
    match = _STEP_NAME.fullmatch(name)
    return int(match.group(1)) if match else None


def _step_of(path: Path, root: Path) -> int:
    step = _raw_step_of(path, root)
    if not -STEP_LIMIT <= step < STEP_LIMIT:
        raise CheckpointError(
            f"step {step} of '{path.relative_to(root)}' does not fit a 64-bit integer "
            f"(|step| < 2**63)"
        )
    return step


def _raw_step_of(path: Path, root: Path) -> int:
    if path.suffix == SAFETENSORS_SUFFIX:
        value = read_safetensors_metadata(path).get("step")
        if value is not None and re.fullmatch(r"-?[0-9]+", str(value).strip()):
            return int(value)
    stem = _SHARD.sub(r"\1", path.stem)
    candidates = [stem] + [p.name for p in path.relative_to(root).parents if p.name]
    for candidate in candidates:
        step = step_from_name(candidate)
        if step is not None:
            return step
    raise CheckpointError(
        f"cannot read a step from '{path.relative_to(root)}'; expected a name like "
        "'step_001200.safetensors' or a 'step' key in the safetensors metadata"
    )


def _utf8_name(path: Path, root: Path) -> bool:
    """Whether the name is valid UTF-8, as the results file stores it; others are skipped
    with a warning rather than stopping the run."""
    relative = str(path.relative_to(root))
    try:
        relative.encode("utf-8")
    except UnicodeEncodeError:
        shown = relative.encode("utf-8", "surrogateescape").decode("ascii", "backslashreplace")
        logger.warning("skipped %s: its name is not valid UTF-8; rename it to track it", shown)
        return False
    return True


def _group_shards(files: Iterable[Path]) -> list[tuple[Path, ...]]:
    groups: dict[tuple[Path, str], list[Path]] = {}
    for path in sorted(files):
        shard = _SHARD.fullmatch(path.stem)
        key = (path.parent, shard.group(1) if shard else path.name)
        groups.setdefault(key, []).append(path)
    return [tuple(group) for group in groups.values()]


def discover_checkpoints(
    directory: str | Path,
    *,
    steps: tuple[int | None, int | None] | None = None,
    every: int = 1,
    exclude: Iterable[str | Path] = (),
) -> list[Checkpoint]:
    """Find every checkpoint under `directory`, sorted by step.

    Args:
        directory: Folder to search, recursively.
        steps: Keep only steps in this inclusive (start, stop) range; None is open.
        every: Keep every K-th checkpoint of the (range-filtered) series, starting with the first.
        exclude: Files to skip, such as a probe stored beside the checkpoints.

    Returns:
        Checkpoints in increasing step order.

    Raises:
        CheckpointError: if the folder is missing or empty, a name has no step, a step
            does not fit int64, or two checkpoints share a step. A file whose name is not
            valid UTF-8 is skipped with a logged warning.
    """
    root = Path(directory)
    if not root.is_dir():
        raise CheckpointError(f"checkpoint folder {root} does not exist")
    if every < 1:
        raise CheckpointError(f"--every must be at least 1, got {every}")
    skip = {Path(p).resolve() for p in exclude}
    files = [p for p in root.rglob(f"*{SAFETENSORS_SUFFIX}") if p.resolve() not in skip]
    if not files:
        files = [
            p
            for p in root.rglob("*")
            if p.suffix in LEGACY_SUFFIXES and p.is_file() and p.resolve() not in skip
        ]
    files = [p for p in files if _utf8_name(p, root)]
    if not files:
        raise CheckpointError(f"no *.safetensors files in {root}")

    by_step: dict[int, Checkpoint] = {}
    for group in _group_shards(files):
        step = _step_of(group[0], root)
        if step in by_step:
            first = by_step[step].path.relative_to(root)
            raise CheckpointError(
                f"two checkpoints have step {step}: {first} and {group[0].relative_to(root)}"
            )
        by_step[step] = Checkpoint(step=step, path=group[0], files=group)

    selected = [by_step[s] for s in sorted(by_step)]
    if steps is not None:
        start, stop = steps
        selected = [
            c
            for c in selected
            if (start is None or c.step >= start) and (stop is None or c.step <= stop)
        ]
    return selected[::every]


def parse_step_range(text: str) -> tuple[int | None, int | None]:
    """Parse ``START:STOP`` (either side may be empty) or a single step ``S``."""
    try:
        if ":" not in text:
            return int(text), int(text)
        start, stop = text.split(":", 1)
        return (int(start) if start.strip() else None, int(stop) if stop.strip() else None)
    except ValueError:
        raise CheckpointError(
            f"--steps '{text}' is not a range; expected START:STOP such as 1000:5000"
        ) from None


def read_state_dict(checkpoint: Checkpoint, device: str | torch.device = "cpu") -> dict:
    """Read a checkpoint's tensors, straight onto `device` for safetensors files.

    Raises:
        CheckpointError: if a file is truncated, corrupt or unreadable.
    """
    state: dict[str, torch.Tensor] = {}
    for path in checkpoint.files:
        try:
            if path.suffix == SAFETENSORS_SUFFIX:
                from safetensors.torch import load_file

                state.update(load_file(path, device=str(device)))
            else:
                loaded = torch.load(path, map_location=device, weights_only=True)
                if isinstance(loaded, Mapping) and "state_dict" in loaded:
                    loaded = loaded["state_dict"]
                if not isinstance(loaded, Mapping):
                    raise CheckpointError(f"{path.name} does not hold a state dict")
                state.update({k: v for k, v in loaded.items() if isinstance(v, torch.Tensor)})
        except CheckpointError:
            raise
        except Exception as exc:  # safetensors and torch raise several unrelated types
            raise CheckpointError(f"cannot read {path.name}: {describe(exc)}") from exc
    return state


def _strip_wrapper_prefixes(state: dict, expected: set[str]) -> dict:
    while set(state) != expected:
        for prefix in WRAPPER_PREFIXES:
            if state and all(k.startswith(prefix) for k in state):
                state = {k[len(prefix) :]: v for k, v in state.items()}
                break
        else:
            return state
    return state


def _first(names: Iterable[str], limit: int = 3) -> str:
    names = sorted(names)
    shown = ", ".join(names[:limit])
    return shown + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


def load_weights(model: nn.Module, state: dict, checkpoint_name: str) -> None:
    """Load `state` into `model` strictly, after removing common wrapper prefixes.

    Raises:
        WeightsMismatchError: naming the checkpoint and the first missing, unexpected or
            mis-shaped keys, so that a randomly initialised model is never analysed.
    """
    reference = model.state_dict()
    state = _strip_wrapper_prefixes(dict(state), set(reference))
    missing = set(reference) - set(state)
    unexpected = set(state) - set(reference)
    problems = []
    if missing:
        problems.append(f"missing {_first(missing)}")
    if unexpected:
        problems.append(f"unexpected {_first(unexpected)}")
    if not problems:
        mismatched = [
            f"{k} {tuple(state[k].shape)} vs {tuple(reference[k].shape)}"
            for k in sorted(reference)
            if state[k].shape != reference[k].shape
        ]
        if mismatched:
            problems.append(f"shape mismatch {_first(mismatched, 2)}")
    if problems:
        raise WeightsMismatchError(
            f"{checkpoint_name} does not fit the model: {'; '.join(problems)}"
        )
    model.load_state_dict(state, strict=True)


def save_checkpoint(
    model: nn.Module, directory: str | Path, step: int, metadata: Mapping[str, str] | None = None
) -> Path:
    """Write `model`'s weights to ``directory/step_XXXXXXXX.safetensors`` with the step in
    the header metadata; tied tensors are written once per name.

    Returns:
        The path written.
    """
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"step_{step:08d}{SAFETENSORS_SUFFIX}"
    tensors = {k: v.detach().cpu().clone().contiguous() for k, v in model.state_dict().items()}
    header = {"step": str(step), **{k: str(v) for k, v in (metadata or {}).items()}}
    save_file(tensors, path, metadata=header)
    return path
