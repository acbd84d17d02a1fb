"""Tables out of ndt: tracker results into a results file or CSV, and a results file into
CSV or JSON.

The tracker's results are a mapping layer -> DataFrame (columns ``step``, ``loss``,
``grad_norm``, then one per metric). `export_to_hdf5` turns them into a results file that
``ndt jumps`` and ``ndt plot`` read like one written by ``ndt track``: the union of the
logged steps, one (n_steps, n_layers) matrix per metric with NaN where a layer was not
logged, and ``loss``/``grad_norm`` as per-step scalars. The tidy table written by
`export_results` has the columns ``step``, ``layer``, the metrics, then the scalars
(``loss``, ``grad_norm``) when the run has them.

The reference API's functions live in one submodule per format, with ndtracker's
signatures: `ndt.export.hdf5` (`export_to_hdf5`, `load_from_hdf5`, `append_to_hdf5`),
`ndt.export.csv` (`export_to_csv`, `load_from_csv`) and `ndt.export.json`
(`export_to_json`, `load_from_json`, `export_metadata`); they are re-exported here.
"""

from __future__ import annotations

# Aliased: the submodule ndt.export.json, once imported, is this package's `json` attribute.
import json as _json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from ndt.errors import NdtError
from ndt.store import Results, read_results

ExportFormat = Literal["csv", "json"]
FORMATS: tuple[str, ...] = ("csv", "json")
SCALAR_COLUMNS: tuple[str, ...] = ("loss", "grad_norm")
_NOT_METRICS = {"step", "layer", *SCALAR_COLUMNS}


@dataclass(frozen=True)
class ExportReport:
    """What `export_results` wrote.

    Attributes:
        path: The file written.
        fmt: "csv" or "json".
        n_rows: Rows of the tidy table (steps x layers).
        columns: Its columns, in order.
    """

    path: Path
    fmt: str
    n_rows: int
    columns: tuple[str, ...]


def _metric_columns(frames: Mapping[str, pd.DataFrame]) -> list[str]:
    names: list[str] = []
    for frame in frames.values():
        for column in frame.columns:
            if column not in _NOT_METRICS and column not in names:
                names.append(str(column))
    return names


def _metadata_text(metadata: Mapping[str, object] | None) -> dict[str, str]:
    return {
        str(key): value if isinstance(value, str) else _json.dumps(value, default=str)
        for key, value in (metadata or {}).items()
    }


def results_from_frames(
    results: Mapping[str, pd.DataFrame], metadata: Mapping[str, object] | None = None
) -> Results:
    """Turn tracker results (layer -> DataFrame) into an in-memory results file.

    Args:
        results: Layer name -> DataFrame with a ``step`` column, optional ``loss`` and
            ``grad_norm`` columns, and one column per metric, as
            `HighFrequencyTracker.get_results` returns.
        metadata: Free-form metadata; values that are not strings are stored as JSON.

    Returns:
        Results whose steps are the union of the logged steps, in increasing order.

    Raises:
        NdtError: if there is nothing to export, a frame lacks ``step``, or a layer has a
            step twice.
    """
    if not results:
        raise NdtError("nothing to export: the results hold no layer")
    for layer, frame in results.items():
        if "step" not in frame.columns:
            raise NdtError(f"the results of layer '{layer}' have no 'step' column")
        if frame["step"].duplicated().any():
            step = int(frame["step"][frame["step"].duplicated()].iloc[0])
            raise NdtError(f"layer '{layer}' has step {step} twice; log each step once")
    steps = np.unique(np.concatenate([f["step"].to_numpy(np.int64) for f in results.values()]))
    if steps.size == 0:
        raise NdtError("nothing to export: no step was logged")
    layers = [str(name) for name in results]
    index = {int(step): row for row, step in enumerate(steps)}

    def matrix(column: str) -> np.ndarray:
        values = np.full((steps.size, len(layers)), np.nan)
        for col, frame in enumerate(results.values()):
            if column in frame.columns:
                rows = [index[int(s)] for s in frame["step"]]
                values[rows, col] = frame[column].to_numpy(np.float64, na_value=np.nan)
        return values

    metrics = {name: matrix(name) for name in _metric_columns(results)}
    scalars = {}
    for name in SCALAR_COLUMNS:
        values = matrix(name)
        if np.isfinite(values).any():
            # Every layer logs the same loss for a step; take the first one present.
            first = np.argmax(np.isfinite(values), axis=1)
            scalars[name] = values[np.arange(steps.size), first]
    return Results(
        steps=steps,
        layers=layers,
        metrics=metrics,
        scalars=scalars,
        metadata=_metadata_text(metadata),
    )


def tidy_table(results: Results) -> pd.DataFrame:
    """The tidy table: one row per (step, layer), columns step, layer, the metrics, then
    the per-step scalars (loss, grad_norm) when present."""
    frame = results.to_frame()
    n_layers = len(results.layers)
    for name, values in results.scalars.items():
        frame[name] = np.repeat(np.asarray(values, dtype=np.float64), n_layers)
    return frame


def json_ready(value: object) -> object:
    """`value` with NaN and infinities as None, numpy scalars as Python ones, recursively,
    so that ``json.dumps`` writes standard JSON."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value


def to_json(value: object, indent: int | None = 2) -> str:
    """Standard JSON for `value` (see `json_ready`); other objects are written as strings."""
    return _json.dumps(json_ready(value), indent=indent, default=str)


def _json_records(frame: pd.DataFrame) -> str:
    return to_json(frame.to_dict(orient="records"), indent=1)


def _render(frame: pd.DataFrame, fmt: str) -> str:
    return frame.to_csv(index=False) if fmt == "csv" else _json_records(frame) + "\n"


def _resolve_format(fmt: str | None, out: Path | None) -> str:
    if fmt is None:
        return "json" if out is not None and out.suffix.lower() == ".json" else "csv"
    if fmt not in FORMATS:
        raise NdtError(f"unknown export format '{fmt}'; choose csv or json")
    return fmt


def render_results(path: str | Path, fmt: ExportFormat = "csv") -> str:
    """The tidy table of a results file as CSV text or a JSON list of records.

    NaN is an empty CSV field and JSON null; floats keep full precision.

    Raises:
        ResultsFormatError: if the file cannot be read as a results file.
        NdtError: for an unknown format.
    """
    return _render(tidy_table(read_results(path)), _resolve_format(fmt, None))


def export_results(
    path: str | Path, fmt: ExportFormat | None = None, out: str | Path = "results.csv"
) -> ExportReport:
    """Write the tidy table of a results file to `out` as CSV or JSON.

    Args:
        path: A results file written by ``ndt track`` or `export_to_hdf5`.
        fmt: "csv" or "json"; None takes it from the suffix of `out` (csv unless ``.json``).
        out: The file to write.

    Returns:
        An ExportReport with the path, format, row count and columns.

    Raises:
        ResultsFormatError: if `path` cannot be read as a results file.
        NdtError: for an unknown format.
    """
    out = Path(out)
    fmt = _resolve_format(fmt, out)
    frame = tidy_table(read_results(path))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(_render(frame, fmt), encoding="utf-8")
    return ExportReport(path=out, fmt=fmt, n_rows=len(frame), columns=tuple(frame.columns))


_COMPAT = {
    "export_to_hdf5": "ndt.export.hdf5",
    "load_from_hdf5": "ndt.export.hdf5",
    "append_to_hdf5": "ndt.export.hdf5",
    "export_to_csv": "ndt.export.csv",
    "load_from_csv": "ndt.export.csv",
    "export_to_json": "ndt.export.json",
    "load_from_json": "ndt.export.json",
    "export_metadata": "ndt.export.json",
}


def __getattr__(name: str) -> object:
    # The per-format modules import this one: resolve their names on first use.
    if name in _COMPAT:
        import importlib

        return getattr(importlib.import_module(_COMPAT[name]), name)
    raise AttributeError(f"module 'ndt.export' has no attribute {name!r}")
