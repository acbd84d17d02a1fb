"""The rows of a results file that `ndt track` is writing: the steps already there, the
ones this run computes, and what other writers add meanwhile.

Each `RunTable.write` holds the file's lock (`ndt.io.results_lock`) and appends the rows this
run computed since its last write (`ndt.io.store.append_rows`), at the cost of those rows. When
the file cannot take them in place (a new, version-1 or full file, a new failure, the first
write of ``--overwrite``) it rewrites the file whole with spare rows, after taking in the
other writers' rows (all but this run's own) and their ``/jumps`` and metadata, so that
concurrent writers lose nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ndt.errors import ConfigMismatchError
from ndt.io.checkpoints import Checkpoint, checkpoint_sha256
from ndt.io.results_lock import results_lock
from ndt.io.store import (
    Provenance,
    Results,
    append_rows,
    read_provenance,
    read_results,
    write_results,
)

#: Spare rows of a rewrite, as a fraction of its rows (at least `MIN_SPARE_ROWS`): rewrites
#: get rarer as the file grows, so their total cost stays proportional to the rows.
SPARE_FRACTION = 1.0
MIN_SPARE_ROWS = 16


class RunTable:
    """The rows of a results file under construction: existing steps plus new ones.

    Args:
        out: The results file.
        provenance: This run's provenance; rows of other writers must share it.
        base: The file's contents when the run starts, or None for a new file.
        wait: Seconds to wait for another writer's lock.
    """

    def __init__(
        self, out: Path, provenance: Provenance, base: Results | None, wait: float
    ) -> None:
        self.out, self.provenance, self.wait = out, provenance, wait
        self.rows: dict[int, np.ndarray] = {}
        self.files: dict[int, tuple[str, int, float, str]] = {}
        self.failures: list[tuple[str, str]] = []
        self.own: set[int] = set()  # steps computed by this run
        self.base: Results | None = None
        # The file as this run last saw it (None: absent); what differs was written by others.
        self.seen: tuple[int, ...] | None = None
        self.replace_next = False  # --overwrite: the first write ignores what is there
        self.unwritten: list[int] = []  # own steps not in the file yet
        self.written_failures: list[tuple[str, str]] = []
        self.spare = False  # this run wrote the file, which may have spare rows
        if base is not None:
            self._adopt(base)

    @classmethod
    def start(cls, out: Path, provenance: Provenance, overwrite: bool, wait: float) -> RunTable:
        """The table of a run on `out`: empty for `overwrite` or a new file, else its rows.

        Raises:
            ConfigMismatchError: if `out` was made with other options.
        """
        with results_lock(out, wait):
            if overwrite or not out.exists():
                table = cls(out, provenance, None, wait)
                table.replace_next = overwrite
                return table
            existing = read_results(out)
            _check_comparable(out, existing, provenance)
            table = cls(out, provenance, existing, wait)
            table.seen = _signature(out)
            return table

    def _adopt(self, base: Results) -> None:
        """Take `base`'s rows (except this run's own) and its jumps and metadata."""
        stacked = np.stack([base.metrics[m] for m in self.provenance.metrics])
        recorded: dict[int, tuple[str, int, float, str]] = {}
        if base.checkpoints is not None:
            table = base.checkpoints
            digests = table["sha256"] if "sha256" in table.columns else [""] * len(table)
            for step, file, size, mtime, digest in zip(
                table["step"], table["file"], table["size"], table["mtime"], digests, strict=True
            ):
                recorded[int(step)] = (str(file), int(size), float(mtime), str(digest))
        self.rows = {s: v for s, v in self.rows.items() if s in self.own}
        for index, step in enumerate(int(s) for s in base.steps):
            if step not in self.own:
                self.rows[step] = stacked[:, index, :]
                if step in recorded:
                    self.files[step] = recorded[step]
        self.base = base

    def forget_changed(
        self, checkpoints: Sequence[Checkpoint], ckpt_dir: Path
    ) -> list[tuple[int, str]]:
        """Drop the rows of checkpoints whose size or mtime differ from those recorded
        (unless a recorded sha256 still matches), so that they are computed again."""
        changed = []
        for checkpoint in checkpoints:
            recorded = self.files.get(checkpoint.step)
            if checkpoint.step not in self.rows or recorded is None:
                continue
            _, size, mtime, digest = recorded
            if (size, mtime) == (checkpoint.size, checkpoint.mtime):
                continue
            if digest and checkpoint_sha256(checkpoint) == digest:
                continue  # copied or touched: the same bytes
            del self.rows[checkpoint.step]
            changed.append((checkpoint.step, checkpoint.path.relative_to(ckpt_dir).as_posix()))
        return changed

    def add(self, checkpoint: Checkpoint, name: str, values: np.ndarray, digest: str) -> None:
        """Record this run's metrics of `checkpoint`, shape (n_metrics, n_layers)."""
        self.rows[checkpoint.step] = values
        self.files[checkpoint.step] = (name, checkpoint.size, checkpoint.mtime, digest)
        self.own.add(checkpoint.step)
        self.unwritten.append(checkpoint.step)

    def write(self) -> None:
        """Commit this run's new rows under the file's lock: append them, or rewrite the file
        whole (with spare rows) after taking in what other writers added."""
        with results_lock(self.out, self.wait):
            if self.failures == self.written_failures and not self.replace_next:
                if not self.unwritten:
                    return
                if self.out.exists() and self._append():
                    self._committed()
                    return
            self._take_in_others()
            spare = max(MIN_SPARE_ROWS, int(SPARE_FRACTION * len(self.rows)))
            write_results(self.out, self.results(), spare_rows=spare)
            self._committed()

    def finish(self) -> None:
        """Rewrite the file without spare rows, if this run left some (once per run)."""
        if not self.spare:
            return
        with results_lock(self.out, self.wait):
            self._take_in_others()
            write_results(self.out, self.results())
            self.seen, self.spare = _signature(self.out), False

    def _append(self) -> bool:
        if _signature(self.out) != self.seen:
            _check_provenance(self.out, read_provenance(self.out), self.provenance, True)
        steps = self.unwritten
        names = self.provenance.metrics
        table = self._checkpoint_table(steps)
        stacked = np.stack([self.rows[s] for s in steps], axis=1)
        metrics = {m: stacked[i] for i, m in enumerate(names)}
        return append_rows(self.out, steps, metrics, table, wait=self.wait)

    def _take_in_others(self) -> None:
        """Take in the file's rows of other writers (unless --overwrite's first write)."""
        if not self.replace_next and self.out.exists():
            existing = read_results(self.out)
            _check_comparable(self.out, existing, self.provenance, meanwhile=True)
            self._adopt(existing)

    def _committed(self) -> None:
        self.seen, self.replace_next = _signature(self.out), False
        self.unwritten, self.written_failures = [], list(self.failures)
        self.spare = True

    def _checkpoint_table(self, steps: list[int]) -> pd.DataFrame:
        """The /checkpoints rows of `steps` (empty values for a step with no recorded file)."""
        files = [self.files.get(s, ("", 0, float("nan"), "")) for s in steps]
        return pd.DataFrame(
            {
                "step": np.asarray(steps, dtype=np.int64),
                "file": [f[0] for f in files],
                "size": np.asarray([f[1] for f in files], dtype=np.int64),
                "mtime": np.asarray([f[2] for f in files], dtype=np.float64),
                "sha256": [f[3] for f in files],
            }
        )

    def results(self) -> Results:
        """The table as a `Results`, steps in increasing order."""
        steps = sorted(self.rows)
        names = self.provenance.metrics
        stacked = (
            np.stack([self.rows[s] for s in steps], axis=1)
            if steps
            else np.empty((len(names), 0, len(self.provenance.layers)))
        )
        checkpoints = self._checkpoint_table(steps)
        failures = pd.DataFrame(self.failures, columns=["file", "error"]) if self.failures else None
        base = self.base
        return Results(
            steps=np.asarray(steps, dtype=np.int64),
            layers=list(self.provenance.layers),
            metrics={m: stacked[i] for i, m in enumerate(names)},
            checkpoints=checkpoints,
            failures=failures,
            provenance=self.provenance,
            # Jumps found on earlier curves stay until `ndt jumps` runs again.
            jumps=base.jumps if base is not None else None,
            jump_settings=base.jump_settings if base is not None else {},
            transitions=base.transitions if base is not None else None,
            metadata=base.metadata if base is not None else {},
        )


def _signature(path: Path) -> tuple[int, ...] | None:
    """What tells one version of the file from another (each write is a new inode)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


def _check_comparable(
    out: Path, existing: Results, provenance: Provenance, meanwhile: bool = False
) -> None:
    _check_provenance(out, existing.provenance, provenance, meanwhile)


def _check_provenance(
    out: Path, recorded_provenance: Provenance | None, provenance: Provenance, meanwhile: bool
) -> None:
    when = " by another process during this run" if meanwhile else ""
    if recorded_provenance is None:
        raise ConfigMismatchError(
            f"{out} holds results without provenance{when}; use --overwrite or another --out"
        )
    recorded, wanted = recorded_provenance.comparable(), provenance.comparable()
    differing = [key for key in wanted if recorded.get(key) != wanted[key]]
    if differing:
        key = differing[0]
        raise ConfigMismatchError(
            f"{out} was made{when} with {key}={recorded.get(key)!r}, not {wanted[key]!r}; "
            "pass --overwrite to recompute, or --out another file"
        )
