"""Split one run's checkpoints into N shards (``--shard I/N``), e.g. one per SLURM array task.

Shard I of N holds the checkpoints whose position in step order (after ``--steps`` and
``--every``) is I modulo N, so every shard gets early and late checkpoints alike; `ndt merge`
joins the shards' results files back into one (`ndt.io.merge`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TypeVar

from ndt.errors import NdtError

T = TypeVar("T")


def parse_shard(text: str) -> tuple[int, int]:
    """Parse ``I/N`` (0 <= I < N) into ``(I, N)``.

    Raises:
        NdtError: if `text` is not of that form.
    """
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if match is None:
        raise NdtError(f"--shard '{text}' is not I/N, e.g. 0/4 (shards 0/4 to 3/4)")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or index >= count:
        raise NdtError(
            f"--shard {text}: I must be in 0..N-1 and N at least 1, e.g. 0/{max(count, 2)}"
        )
    return index, count


def select_shard(items: Sequence[T], shard: tuple[int, int] | None) -> list[T]:
    """The items at positions ≡ I (mod N), in order; all of them for `shard` None."""
    if shard is None:
        return list(items)
    index, count = shard
    return list(items[index::count])
