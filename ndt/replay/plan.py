"""Which checkpoints `ndt track` replays: the run's checkpoints in step order, after
``--steps``, ``--every`` and ``--shard``, found without building the model (``--dry-run``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ndt.io.checkpoints import Checkpoint, discover_checkpoints
from ndt.io.manifest import read_manifest
from ndt.replay.shards import select_shard


@dataclass(frozen=True)
class CheckpointPlan:
    """The checkpoints `track` would replay, and notes on skipped files and steps."""

    checkpoints: list[Checkpoint]
    notes: list[str]


def plan_checkpoints(
    ckpt_dir: str | Path,
    *,
    probe: str | Path | None = None,
    steps: tuple[int | None, int | None] | None = None,
    every: int = 1,
    step_scale: int | None = None,
    shard: tuple[int, int] | None = None,
) -> CheckpointPlan:
    """The checkpoints of a run in step order, without building the model (``--dry-run``).

    The probe (given, or named by the folder's ndt.toml) is never taken for a checkpoint;
    `shard` ``(I, N)`` keeps the positions ≡ I (mod N) (`ndt.replay.shards`).

    Raises:
        CheckpointError: see `ndt.io.checkpoints.discover_checkpoints`.
    """
    if probe is None:
        manifest = read_manifest(ckpt_dir)
        probe = manifest.probe if manifest is not None else None
    notes: list[str] = []
    found = discover_checkpoints(
        ckpt_dir, steps=steps, every=every, exclude=[probe] if probe else [],
        step_scale=step_scale, notes=notes,
    )  # fmt: skip
    return CheckpointPlan(select_shard(found, shard), notes)
