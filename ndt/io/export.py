"""Tables out of ndt: tracker results into a results file or CSV, and a results file into
CSV or JSON.

The tracker's results are a mapping layer -> DataFrame (columns ``step``, ``loss``,
``grad_norm``, then one per metric). `export_to_hdf5` turns them into a results file that
``ndt jumps`` and ``ndt plot`` read like one written by ``ndt track``: the union of the
logged steps, one (n_steps, n_layers) matrix per metric with NaN where a layer was not
logged, and ``loss``/``grad_norm`` as per-step scalars. The tidy table written by
`export_to_csv` and `export_results` has the columns ``step``, ``layer``, the metrics,
then the scalars (``loss``, ``grad_norm``) when the run has them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from ndt.errors import NdtError
from ndt.io.file_replace import write_text_atomic
from ndt.io.json_text import to_json
from ndt.io.store import Results, read_results

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
        str(key): value if isinstance(value, str) else json.dumps(value, default=str)
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


def write_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write `frame` (without its index) as CSV to `path`, atomically; the folder must exist.

    Raises:
        OSError: naming `path` when it is a folder, its folder is missing, or the write fails.
    """
    return write_text_atomic(path, frame.to_csv(index=False))


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
        OSError: naming `out` when it is a folder or cannot be written (written
            atomically: a failed write leaves no partial file).
    """
    out = Path(out)
    fmt = _resolve_format(fmt, out)
    frame = tidy_table(read_results(path))
    text = _render(frame, fmt)
    if not out.is_dir():
        out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, text)
    return ExportReport(path=out, fmt=fmt, n_rows=len(frame), columns=tuple(frame.columns))
