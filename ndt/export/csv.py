"""Tracker results as CSV, in ndtracker's layout: one combined table with a leading
``layer`` column, or one file per layer."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from ndt.errors import NdtError
from ndt.export._notice import notice


def export_to_csv(
    results: Mapping[str, pd.DataFrame],
    path: str | Path,
    separate_files: bool = False,
    verbose: bool = True,
) -> Path | None:
    """Write tracker results (layer -> DataFrame) as CSV.

    Args:
        results: Layer -> DataFrame, as `HighFrequencyTracker.get_results` returns.
        path: The CSV file; with `separate_files`, the folder (created) that receives one
            ``<layer>.csv`` per layer.
        separate_files: One file per layer instead of one table.
        verbose: Log a one-line confirmation (INFO, logger ``ndt.export``; ndtracker
            printed it).

    Returns:
        The path written, or None when `results` is empty (nothing is written).
    """
    path = Path(path)
    if not results:
        notice("No data to export", verbose)
        return None
    if separate_files:
        path.mkdir(parents=True, exist_ok=True)
        for layer, frame in results.items():
            frame.to_csv(path / f"{layer}.csv", index=False)
        notice(f"Exported {len(results)} layers to {path}", verbose)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pd.concat(
        [frame.assign(layer=layer)[["layer", *frame.columns]] for layer, frame in results.items()],
        ignore_index=True,
    )
    table.to_csv(path, index=False)
    notice(f"Exported all layers to {path}", verbose)
    return path


def load_from_csv(path: str | Path, separate_files: bool = False) -> dict[str, pd.DataFrame]:
    """Read what `export_to_csv` wrote back into layer -> DataFrame.

    Raises:
        FileNotFoundError: if `path` does not exist.
        NdtError (a ValueError): if `separate_files` and `path` is not a folder, or a
            combined table has no ``layer`` column.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"CSV results not found: {path}")
    if separate_files:
        if not path.is_dir():
            raise NdtError(f"Expected directory of per-layer CSV files, got file {path}")
        return {p.stem: pd.read_csv(p) for p in sorted(path.glob("*.csv"))}
    table = pd.read_csv(path)
    if "layer" not in table.columns:
        raise NdtError(f"{path} has no 'layer' column; was it written with separate_files?")
    return {
        str(layer): group.drop(columns="layer").reset_index(drop=True)
        for layer, group in table.groupby("layer", sort=False)
    }
