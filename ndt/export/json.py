"""Tracker results and run metadata as JSON, in ndtracker's layout
(``{layer: [row, ...]}``), or the column layout of reference §1.2."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from ndt.errors import NdtError
from ndt.export._notice import notice
from ndt.io.json_text import json_ready


def export_to_json(
    results: Mapping[str, pd.DataFrame],
    path: str | Path,
    pretty: bool = True,
    orient: Literal["records", "list"] = "records",
    verbose: bool = True,
) -> Path:
    """Write tracker results as JSON: ``{layer: [{column: value, ...}, ...]}``.

    Args:
        results: Layer -> DataFrame.
        path: The file to write.
        pretty: Indent by two spaces; False writes one line.
        orient: "records" (a list of rows per layer, ndtracker's) or "list"
            (``{layer: {column: [values]}}``, the layout reference §1.2 reads).
        verbose: Log a one-line confirmation (INFO, logger ``ndt.export``; ndtracker
            printed it).

    Returns:
        The path written. NaN is written as null.
    """
    if orient not in ("records", "list"):
        raise NdtError(f"orient must be 'records' or 'list', got {orient!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {str(layer): frame.to_dict(orient=orient) for layer, frame in results.items()}
    _write(data, path, pretty)
    notice(f"Exported results for {len(data)} layers to {path}", verbose)
    return path


def load_from_json(path: str | Path) -> dict[str, pd.DataFrame]:
    """Read `export_to_json`'s file (either orient) back into layer -> DataFrame.

    Raises:
        FileNotFoundError: if `path` does not exist.
        NdtError (a ValueError): if the JSON is not an object of layers.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"JSON results not found: {path}")
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise NdtError(f"{path}: JSON results must be a dictionary of layers")
    return {str(layer): _frame(rows) for layer, rows in data.items()}


def _frame(rows: object) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for column in frame.columns:
        if frame[column].isna().all():  # NaN was written as null: read it back as float
            frame[column] = np.nan
    return frame


def export_metadata(
    metadata: Mapping[str, object], path: str | Path, pretty: bool = True, verbose: bool = True
) -> Path:
    """Write run metadata (a JSON-serialisable mapping) to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write(dict(metadata), path, pretty)
    notice(f"Exported metadata to {path}", verbose)
    return path


def _write(data: object, path: Path, pretty: bool) -> None:
    text = json.dumps(json_ready(data), indent=2 if pretty else None, default=str)
    path.write_text(text, encoding="utf-8")
