"""Batch summary of many results files: per run, how many significant jumps and where.

This is the reference API's batch analysis (§5.2) over results files instead of JSON
curves: the jumps are the ones ``ndt jumps`` wrote into each file's ``/jumps`` table, so
their significance is the one that command established. A file without that table is
reported as not analysed rather than analysed here with other settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ndt.errors import NdtError
from ndt.io.store import read_results

RESULTS_PATTERN = "*.h5"


@dataclass(frozen=True)
class JumpAt:
    """One significant jump of a run: where (layer, metric) and when (step)."""

    layer: str
    metric: str
    step: int


@dataclass(frozen=True)
class RunSummary:
    """One run's row.

    Attributes:
        path: The results file.
        name: The file's stem, used as the run's name.
        n_steps: Recorded steps.
        n_layers: Tracked layers.
        first_step: First recorded step (-1 when there is none).
        last_step: Last recorded step (-1 when there is none).
        analysed: Whether the file holds a ``/jumps`` table written by ``ndt jumps``.
        jumps: Its significant jumps, by step then layer (empty when not analysed).
    """

    path: Path
    name: str
    n_steps: int
    n_layers: int
    first_step: int
    last_step: int
    analysed: bool
    jumps: tuple[JumpAt, ...] = ()

    @property
    def n_jumps(self) -> int | None:
        """Number of significant jumps, or None when the file was not analysed."""
        return len(self.jumps) if self.analysed else None

    @property
    def jump_steps(self) -> list[int]:
        """Distinct steps with at least one significant jump, increasing."""
        return sorted({jump.step for jump in self.jumps})


def results_files(paths: Sequence[str | Path]) -> list[Path]:
    """Expand files and folders (their ``*.h5`` files, not recursive) into a file list.

    Raises:
        NdtError: if a path does not exist or a folder holds no ``*.h5`` file.
    """
    if not paths:
        raise NdtError("no results file given; pass files or folders of *.h5")
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(path.glob(RESULTS_PATTERN))
            if not found:
                raise NdtError(f"no {RESULTS_PATTERN} files in {path}")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise NdtError(f"{path} does not exist")
    unique: dict[Path, Path] = {}
    for file in files:
        unique.setdefault(file.resolve(), file)
    return list(unique.values())


def significant_jumps(jumps: pd.DataFrame, settings: dict[str, object]) -> pd.DataFrame:
    """The rows of a ``/jumps`` table that ``ndt jumps`` counted as significant.

    The table marks them in a boolean ``significant`` column; for tables without it, a
    ``q_value`` at or under the run's ``fdr`` setting counts, and otherwise every row does.
    """
    if "significant" in jumps.columns:
        return jumps[jumps["significant"].astype(bool)]
    if "q_value" in jumps.columns and "fdr" in settings:
        q_values = pd.to_numeric(jumps["q_value"], errors="coerce").to_numpy(np.float64)
        return jumps[q_values <= float(settings["fdr"])]
    return jumps


def summarize_run(path: str | Path) -> RunSummary:
    """Summarise one results file.

    Raises:
        ResultsFormatError: if the file is not a readable results file.
    """
    path = Path(path)
    results = read_results(path)
    steps = np.asarray(results.steps, dtype=np.int64)
    jumps: tuple[JumpAt, ...] = ()
    if results.jumps is not None:
        kept = significant_jumps(results.jumps, results.jump_settings)
        jumps = tuple(
            sorted(
                (
                    JumpAt(str(row.layer), str(getattr(row, "metric", "")), int(row.step))
                    for row in kept.itertuples(index=False)
                ),
                key=lambda jump: (jump.step, jump.layer, jump.metric),
            )
        )
    return RunSummary(
        path=path,
        name=path.stem,
        n_steps=int(steps.size),
        n_layers=len(results.layers),
        first_step=int(steps[0]) if steps.size else -1,
        last_step=int(steps[-1]) if steps.size else -1,
        analysed=results.jumps is not None,
        jumps=jumps,
    )


def summarize_runs(paths: Sequence[str | Path]) -> list[RunSummary]:
    """One `RunSummary` per results file in `paths` (files, or folders of ``*.h5``).

    Raises:
        NdtError: for a missing path, an empty folder, or an unreadable results file.
    """
    return [summarize_run(path) for path in results_files(paths)]
