"""Discover checkpoint files in a folder, read their steps, and load them into a model.

A checkpoint is one ``*.safetensors`` file, or the shards ``model-00001-of-00002.safetensors``
... of one save. Its step is, in this order: the integer in the safetensors header metadata
key ``step``; ``global_step`` of a ``trainer_state.json`` beside it (transformers' Trainer);
the integer in the file name, or in the name of a folder that holds it (``step_1200``,
``model_step_1200``, ``checkpoint-1200``, ``step1200``, ``global_step1200``,
``iter_0001200``, ``1200``). accelerate's automatic ``checkpoint_<i>`` folders are numbered
by save, not by step: their number is used as the step, with a warning, unless
``step_scale`` maps it (step = i * step_scale). A file with no step (the ``model.safetensors``
that ``trainer.save_model()`` writes at a run's root) is skipped with a note when other
checkpoints have steps. Legacy ``.pt/.pth/.bin`` state dicts are considered only when the
tree holds no safetensors at all (so that ``optimizer.pt`` beside ``model.safetensors`` is
never mistaken for weights), and they are read only through
``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import hashlib
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
#: Checkpoints up to this size get a sha256 in the results file (hashing costs a read).
SHA256_MAX_BYTES = 64 * 1024 * 1024
LEGACY_SUFFIXES = (".pt", ".pth", ".bin")
# What transformers' Trainer and accelerate save beside the weights: never a checkpoint.
_TRAINING_STATE = re.compile(
    r"(optimizer|scheduler|scaler|training_args|rng_state|random_states|sampler)(_\d+)?",
    flags=re.IGNORECASE,
)
# Wrappers that prefix every key: DataParallel/DDP, torch.compile, Lightning-style modules.
WRAPPER_PREFIXES = ("module.", "_orig_mod.", "model.")

_STEP_NAME = re.compile(
    r"(?:.*?(?:step|checkpoint|ckpt|iter|iteration)[_\-]?)?(\d+)", flags=re.IGNORECASE
)
_SHARD = re.compile(r"(.+)-(\d+)-of-(\d+)$")
# accelerate's ProjectConfiguration(automatic_checkpoint_naming=True) folders: a save counter.
_SAVE_INDEX = re.compile(r"checkpoint_(\d+)")
TRAINER_STATE = "trainer_state.json"
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
        step_source: Where the step came from (``metadata``, ``trainer_state.json``,
            ``name 'checkpoint-500'``, ``save index ...``).
    """

    step: int
    path: Path
    files: tuple[Path, ...]
    step_source: str = ""

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


def checkpoint_sha256(checkpoint: Checkpoint, max_bytes: int = SHA256_MAX_BYTES) -> str:
    """Hex sha256 of a checkpoint's bytes (its files in shard order), or "" when it is
    larger than `max_bytes` or cannot be read."""
    try:
        if checkpoint.size > max_bytes:
            return ""
        digest = hashlib.sha256()
        for path in checkpoint.files:
            with open(path, "rb") as handle:
                for block in iter(lambda handle=handle: handle.read(1 << 20), b""):
                    digest.update(block)
    except OSError:
        return ""
    return digest.hexdigest()


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


def _trainer_step(folder: Path) -> int | None:
    try:
        state = json.loads((folder / TRAINER_STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    step = state.get("global_step") if isinstance(state, dict) else None
    return step if isinstance(step, int) and not isinstance(step, bool) else None


def _step_of(path: Path, root: Path, step_scale: int | None) -> tuple[int, str] | None:
    """The step of a checkpoint file and where it came from, or None if it has none.

    Raises:
        CheckpointError: if the step does not fit int64, as the results file stores it.
    """
    found = _raw_step_of(path, root, step_scale)
    if found is not None and not -STEP_LIMIT <= found[0] < STEP_LIMIT:
        raise CheckpointError(
            f"step {found[0]} of '{path.relative_to(root)}' does not fit a 64-bit integer "
            f"(|step| < 2**63)"
        )
    return found


def _raw_step_of(path: Path, root: Path, step_scale: int | None) -> tuple[int, str] | None:
    if path.suffix == SAFETENSORS_SUFFIX:
        value = read_safetensors_metadata(path).get("step")
        if value is not None and re.fullmatch(r"-?[0-9]+", str(value).strip()):
            return int(value), "metadata"
    trainer_step = _trainer_step(path.parent)
    if trainer_step is not None:
        return trainer_step, f"{TRAINER_STATE} global_step"
    stem = _SHARD.sub(r"\1", path.stem)
    candidates = [stem] + [p.name for p in path.relative_to(root).parents if p.name]
    if not path.parent.relative_to(root).parts:
        candidates.append(root.name)  # a single checkpoint folder given as the root
    for candidate in candidates:
        index = _SAVE_INDEX.fullmatch(candidate)
        if index is not None and _is_accelerate_save(path.parent):
            if step_scale is None:
                return int(index.group(1)), "save index"
            return int(index.group(1)) * step_scale, f"save index x {step_scale}"
        step = step_from_name(candidate)
        if step is not None:
            return step, f"name '{candidate}'"
    return None


def _is_accelerate_save(folder: Path) -> bool:
    """accelerate's automatic naming: ``checkpoints/checkpoint_<i>/``, or a folder holding
    the ``random_states_<rank>.pkl`` that ``save_state`` writes."""
    return folder.parent.name == "checkpoints" or any(folder.glob("random_states_*.pkl"))


def _no_step(path: Path, root: Path) -> CheckpointError:
    return CheckpointError(
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
    step_scale: int | None = None,
    notes: list[str] | None = None,
) -> list[Checkpoint]:
    """Find every checkpoint under `directory`, sorted by step (see the module docstring for
    where steps come from).

    Args:
        directory: Folder to search, recursively.
        steps: Keep only steps in this inclusive (start, stop) range; None is open.
        every: Keep every K-th checkpoint of the (range-filtered) series, starting with the first.
        exclude: Files to skip, such as a probe stored beside the checkpoints.
        step_scale: Steps between two saves, mapping accelerate's ``checkpoint_<i>`` save
            indices to steps (i * step_scale).
        notes: If given, receives one line per skipped file and a warning about save
            indices, or about a `step_scale` that maps none.

    Returns:
        Checkpoints in increasing step order.

    Raises:
        CheckpointError: if the folder is missing or empty, no file has a step, a step
            does not fit int64, two checkpoints share a step, every checkpoint misses a
            shard that its index file lists (one that misses a shard among complete ones
            is skipped with a note, and taken by the next run), or `steps` selects none
            of them. A file whose name is not valid UTF-8 is skipped with a logged warning.
    """
    root = Path(directory)
    if not root.is_dir():
        raise CheckpointError(f"checkpoint folder {root} does not exist")
    if every < 1:
        raise CheckpointError(f"--every must be at least 1, got {every}")
    if step_scale is not None and step_scale < 1:
        raise CheckpointError(f"--step-scale must be at least 1, got {step_scale}")
    notes = notes if notes is not None else []
    skip = {Path(p).resolve() for p in exclude}
    files = [p for p in root.rglob(f"*{SAFETENSORS_SUFFIX}") if p.resolve() not in skip]
    if not files:
        files = [
            p
            for p in root.rglob("*")
            if p.suffix in LEGACY_SUFFIXES
            and not _TRAINING_STATE.fullmatch(p.stem)
            and p.is_file()
            and p.resolve() not in skip
        ]
    files = [p for p in files if _utf8_name(p, root)]
    if not files:
        raise CheckpointError(f"no *.safetensors files in {root}")

    found: list[Checkpoint] = []
    stepless: list[Path] = []
    incomplete: list[CheckpointError] = []
    for group in _group_shards(files):
        try:
            _check_index(group)
        except CheckpointError as exc:
            # A save still being written, or a partial copy: the next run takes it.
            incomplete.append(exc)
            notes.append(f"skipped {group[0].parent.relative_to(root)}: {exc}")
            continue
        step = _step_of(group[0], root, step_scale)
        if step is None:
            stepless.append(group[0])
        else:
            found.append(Checkpoint(step[0], group[0], group, step_source=step[1]))
    if incomplete and not found and not stepless:
        raise incomplete[0]
    if stepless and not found:
        raise _no_step(stepless[0], root)
    for path in stepless:
        notes.append(
            f"skipped {path.relative_to(root)}: no step in its name, its metadata or a "
            f"{TRAINER_STATE} (a final save_model() copy?)"
        )
    by_step = _by_step(found, root, notes)
    if any(c.step_source == "save index" for c in by_step.values()):
        notes.append(
            "the checkpoint_<i> folders are numbered by accelerate's save counter, so their "
            "steps are save indices, not training steps; pass --step-scale K (steps between "
            "saves) to map them"
        )
    if step_scale is not None and not any(
        c.step_source.startswith("save index") for c in by_step.values()
    ):
        notes.append(
            f"--step-scale {step_scale} changed nothing: it maps accelerate's checkpoint_<i> "
            "save indices, and no checkpoint here has its step from one"
        )

    selected = [by_step[s] for s in sorted(by_step)]
    if steps is not None:
        start, stop = steps
        selected = [
            c
            for c in selected
            if (start is None or c.step >= start) and (stop is None or c.step <= stop)
        ]
        if not selected:
            first, last = min(by_step), max(by_step)
            raise CheckpointError(
                f"--steps {'' if start is None else start}:{'' if stop is None else stop} "
                f"selects no checkpoint; {root} has steps {first}..{last} ({len(by_step)} "
                "checkpoints)"
            )
    return selected[::every]


def _by_step(found: list[Checkpoint], root: Path, notes: list[str]) -> dict[int, Checkpoint]:
    """Index checkpoints by step. A save at the root whose step comes from the run's
    trainer_state.json repeats the last checkpoint-N (Trainer's final save): it is skipped."""
    by_step: dict[int, Checkpoint] = {}
    for checkpoint in sorted(found, key=lambda c: (c.path.parent == root, str(c.path))):
        other = by_step.get(checkpoint.step)
        if other is None:
            by_step[checkpoint.step] = checkpoint
            continue
        if checkpoint.path.parent == root and checkpoint.step_source.startswith(TRAINER_STATE):
            notes.append(
                f"skipped {checkpoint.path.relative_to(root)}: it repeats step "
                f"{checkpoint.step} of {other.path.relative_to(root)}"
            )
            continue
        first, second = sorted([other.path.relative_to(root), checkpoint.path.relative_to(root)])
        raise CheckpointError(f"two checkpoints have step {checkpoint.step}: {first} and {second}")
    return by_step


def _check_index(group: tuple[Path, ...]) -> None:
    """A sharded save must have every shard its ``*.safetensors.index.json`` lists."""
    shard = _SHARD.fullmatch(group[0].stem)
    if shard is None:
        return
    index = group[0].parent / f"{shard.group(1)}{SAFETENSORS_SUFFIX}.index.json"
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map", {})
    except (OSError, ValueError, AttributeError):
        return
    names = {path.name for path in group}
    missing = sorted({str(f) for f in weight_map.values()} - names)
    if missing:
        raise CheckpointError(
            f"{index.name} lists {missing[0]}, which is missing from {index.parent}"
        )


def parse_step_range(text: str) -> tuple[int | None, int | None]:
    """Parse ``START:STOP`` (either side may be empty) or a single step ``S``."""
    try:
        if ":" not in text:
            return int(text), int(text)
        start, stop = text.split(":", 1)
        bounds = (int(start) if start.strip() else None, int(stop) if stop.strip() else None)
    except ValueError:
        raise CheckpointError(
            f"--steps '{text}' is not a range; expected START:STOP such as 1000:5000"
        ) from None
    if bounds[0] is not None and bounds[1] is not None and bounds[0] > bounds[1]:
        raise CheckpointError(
            f"--steps {text} is empty: START {bounds[0]} is after STOP {bounds[1]}"
        )
    return bounds


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
    refuse_integer_weights(model, state, checkpoint_name)
    model.load_state_dict(state, strict=True)


def refuse_integer_weights(model: nn.Module, state: Mapping, checkpoint_name: str) -> None:
    """Refuse integer tensors given for a float model's weights (a quantized or corrupt
    save), which loading would otherwise cast silently.

    Raises:
        WeightsMismatchError: naming the first such tensors.
    """
    floats = {k for k, v in model.state_dict().items() if v.is_floating_point()}
    integers = [
        f"{k} ({str(v.dtype).removeprefix('torch.')})"
        for k, v in state.items()
        if isinstance(v, torch.Tensor)
        and not v.is_floating_point()
        and (k in floats or k.endswith((".weight", ".bias")))
    ]
    if integers:
        raise WeightsMismatchError(
            f"{checkpoint_name} holds integer weights for a float model: {_first(integers)}; "
            "ndt replays float checkpoints only"
        )


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
