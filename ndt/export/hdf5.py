"""Tracker results as an HDF5 file that is both an ndt results file and ndtracker's layout.

`export_to_hdf5` writes the results file of docs/results-format.md (so ``ndt jumps``,
``ndt plot``, ``ndt export`` and ``ndt summary`` read it) and, beside it, ndtracker's
layout: one group per layer at the root holding one compressed dataset per column, with
the column order in the group's ``columns`` attribute. `load_from_hdf5` reads that layout
back (or, for a file ``ndt track`` wrote, builds the per-layer frames from its matrices);
`append_to_hdf5` adds rows and rewrites both.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from ndt.errors import NdtError
from ndt.export._notice import notice
from ndt.io.export import results_from_frames
from ndt.io.store import OWN_GROUPS, read_results, write_results


def export_to_hdf5(
    results: Mapping[str, pd.DataFrame],
    path: str | Path,
    metadata: Mapping[str, object] | None = None,
    compression: str | None = "gzip",
    verbose: bool = True,
) -> Path:
    """Write tracker results (layer -> DataFrame) to an HDF5 file.

    Args:
        results: Layer -> DataFrame, as `HighFrequencyTracker.get_results` returns.
        path: The file to write (replaced).
        metadata: Free-form metadata stored under ``/metadata`` (non-strings as JSON).
        compression: h5py compression of the per-layer datasets ("gzip" at level 4,
            "lzf", or None).
        verbose: Log a one-line confirmation (INFO, logger ``ndt.export``; ndtracker
            printed it).

    Returns:
        The path written.

    Raises:
        NdtError (a ValueError): if there is nothing to export, a layer is named like a
            group of the results file, a layer logs a step twice, or a column is not
            numeric.
    """
    path = Path(path)
    reserved = sorted(set(map(str, results)) & OWN_GROUPS)
    if reserved:
        raise NdtError(f"layer name '{reserved[0]}' is reserved in the results file; rename it")
    write_results(path, results_from_frames(results, metadata))
    options = {"compression": compression}
    if compression == "gzip":
        options["compression_opts"] = 4
    with h5py.File(path, "a") as f:
        f.attrs["layer_groups"] = json.dumps([str(layer) for layer in results])
        f.attrs["layer_compression"] = compression or ""
        for layer, frame in results.items():
            group = f.create_group(str(layer))
            group.attrs["columns"] = [str(c) for c in frame.columns]
            for column in frame.columns:
                group.create_dataset(str(column), data=frame[column].to_numpy(), **options)
    notice(f"Exported results for {len(results)} layers to {path}", verbose)
    return path


def load_from_hdf5(path: str | Path) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """Read tracker results and metadata from `path`.

    Returns:
        ``(layer -> DataFrame, metadata)``. Metadata values are strings (JSON for what was
        not a string).

    Raises:
        FileNotFoundError: if `path` does not exist.
        ResultsFormatError: if it is not a results file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"HDF5 results not found: {path}")
    stored = read_results(path)
    with h5py.File(path, "r") as f:
        layers = json.loads(f.attrs.get("layer_groups", "[]"))
        frames = {layer: _read_group(f[layer]) for layer in layers if layer in f}
    if not layers:
        frames = _frames_of(stored)
    return frames, dict(stored.metadata)


def append_to_hdf5(
    results: Mapping[str, pd.DataFrame], path: str | Path, verbose: bool = True
) -> Path:
    """Append rows to the layers of a file written by `export_to_hdf5`, then rewrite it.

    Raises:
        FileNotFoundError: if `path` does not exist.
        NdtError (a ValueError): if a layer, or a column of one, is not in the file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; create it with export_to_hdf5 first")
    frames, metadata = load_from_hdf5(path)
    with h5py.File(path, "r") as f:
        compression = f.attrs.get("layer_compression", "gzip") or None
    for layer, frame in results.items():
        if layer not in frames:
            raise NdtError(f"Layer {layer} not found in {path}; found {', '.join(frames)}")
        missing = [c for c in frame.columns if c not in frames[layer].columns]
        if missing:
            raise NdtError(f"Column {missing[0]} not found for layer {layer} in {path}")
        frames[layer] = pd.concat([frames[layer], frame], ignore_index=True)
    export_to_hdf5(frames, path, _parsed(metadata), compression=compression, verbose=False)
    notice(f"Appended results for {len(results)} layers to {path}", verbose)
    return path


def _read_group(group: h5py.Group) -> pd.DataFrame:
    columns = [str(c) for c in group.attrs["columns"]]
    return pd.DataFrame({c: group[c][()] for c in columns}, columns=columns)


def _frames_of(stored: object) -> dict[str, pd.DataFrame]:
    """Per-layer frames of a results file without ndtracker's groups (``ndt track``'s)."""
    frames = {}
    for column, layer in enumerate(stored.layers):
        data = {"step": np.asarray(stored.steps, dtype=np.int64)}
        data.update({name: values[:, column] for name, values in stored.metrics.items()})
        data.update(stored.scalars)
        frames[layer] = pd.DataFrame(data)
    return frames


def _parsed(metadata: Mapping[str, str]) -> dict[str, object]:
    """Undo the JSON encoding of non-string metadata values."""
    parsed = {}
    for key, value in metadata.items():
        try:
            parsed[key] = json.loads(value)
        except (TypeError, ValueError):
            parsed[key] = value
    return parsed
