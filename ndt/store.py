"""The results file: an HDF5 store of per-layer metric curves, their provenance and jumps.

Layout (format version 1, specified in docs/results-format.md)::

    /                    attrs: format_version, ndt_version, created, kind="ndt-results"
    /steps               int64   (n_steps,)
    /layers              utf-8   (n_layers,)            model order
    /metrics/<metric>    float64 (n_steps, n_layers)    NaN where not computed
    /scalars/<name>      float64 (n_steps,)             optional: loss, grad_norm
    /checkpoints/        table: step, file, size, mtime (optional; written by track)
    /failures/           table: step, file, error       (optional; retried next run)
    /provenance          attrs: what changes the numbers (optional)
    /jumps/              table written by `ndt jumps`, run settings in its attrs (optional)
    /jumps/transitions/  table: the ranked transitions of that run (optional)
    /metadata            attrs: free-form user metadata (optional)

Every write replaces the whole file atomically (write a temporary file beside it, then
rename), so an interrupted run leaves the previous complete file, never a torn one.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from ndt import __version__
from ndt.errors import ResultsFormatError

FORMAT_VERSION = 1
KIND = "ndt-results"
#: Columns of the ``/jumps`` table, in order (docs/results-format.md).
JUMP_COLUMNS: tuple[str, ...] = (
    "layer",
    "metric",
    "step",
    "prev_step",
    "value_before",
    "value_after",
    "delta",
    "score",
    "p_value",
    "q_value",
    "methods",
    "significant",
)
_STR = h5py.string_dtype("utf-8")


@dataclass(frozen=True)
class Provenance:
    """Everything that changes the numbers, and where they came from."""

    checkpoint_dir: str = ""
    model: str = ""
    model_kwargs: str = "{}"
    probe_path: str = ""
    probe_sha256: str = ""
    center: bool = True
    dormant_tau: float = 0.0
    metrics: tuple[str, ...] = ()
    layers: tuple[str, ...] = ()
    ndt_version: str = __version__
    torch_version: str = ""
    device: str = ""
    command: str = ""
    #: Metric definitions ("ndt" or "ndtracker"); files written before it read as "ndt".
    definitions: str = "ndt"

    def comparable(self) -> dict[str, object]:
        """The fields two runs must share for their curves to be comparable."""
        return {
            "model": self.model,
            "model_kwargs": json.loads(self.model_kwargs or "{}"),
            "probe_sha256": self.probe_sha256,
            "center": self.center,
            "dormant_tau": self.dormant_tau,
            "metrics": tuple(self.metrics),
            "layers": tuple(self.layers),
            "definitions": self.definitions,
        }


@dataclass
class Results:
    """In-memory contents of a results file.

    Attributes:
        steps: Checkpoint steps, increasing, shape (n_steps,).
        layers: Layer names in model order.
        metrics: Metric name -> values of shape (n_steps, n_layers).
        scalars: Optional per-step series such as loss, shape (n_steps,).
        checkpoints: One row per step (step, file, size, mtime), or None.
        failures: Checkpoints that could not be processed (step, file, error), or None.
        provenance: How the curves were made, or None for exported tracker results.
        jumps: The per-curve table of the last `ndt jumps` run, or None.
        jump_settings: That run's settings (method, fdr, n_tests, ...).
        transitions: That run's ranked transitions, or None (files from before 0.2).
        metadata: Free-form user metadata.
    """

    steps: np.ndarray
    layers: list[str]
    metrics: dict[str, np.ndarray]
    scalars: dict[str, np.ndarray] = field(default_factory=dict)
    checkpoints: pd.DataFrame | None = None
    failures: pd.DataFrame | None = None
    provenance: Provenance | None = None
    jumps: pd.DataFrame | None = None
    jump_settings: dict[str, object] = field(default_factory=dict)
    transitions: pd.DataFrame | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """The tidy table: one row per (step, layer), columns step, layer, then metrics."""
        n_steps, n_layers = len(self.steps), len(self.layers)
        frame = pd.DataFrame(
            {
                "step": np.repeat(np.asarray(self.steps, dtype=np.int64), n_layers),
                "layer": np.tile(np.asarray(self.layers, dtype=object), n_steps),
            }
        )
        for name, values in self.metrics.items():
            frame[name] = np.asarray(values, dtype=np.float64).reshape(-1)
        return frame


def _write_table(group: h5py.Group, table: pd.DataFrame) -> None:
    group.attrs["columns"] = json.dumps(list(table.columns))
    for column in table.columns:
        values = table[column].to_numpy()
        if values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
            group.create_dataset(column, data=np.asarray(values, dtype=object), dtype=_STR)
        else:
            group.create_dataset(column, data=values)


def _read_table(group: h5py.Group) -> pd.DataFrame:
    columns = json.loads(group.attrs.get("columns", "[]")) or list(group)
    data = {}
    for column in columns:
        dataset = group[column]
        data[column] = (
            dataset.asstr()[()] if h5py.check_string_dtype(dataset.dtype) else dataset[()]
        )
    return pd.DataFrame(data, columns=columns)


def _attr_value(value: object) -> object:
    if isinstance(value, (tuple, list, dict)):
        return json.dumps(value)
    return value


def write_results(path: str | Path, results: Results) -> None:
    """Write `results` to `path`, replacing the file atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        with h5py.File(tmp_name, "w") as f:
            f.attrs.update(
                format_version=FORMAT_VERSION,
                kind=KIND,
                ndt_version=__version__,
                created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            )
            f.create_dataset("steps", data=np.asarray(results.steps, dtype=np.int64))
            f.create_dataset("layers", data=np.asarray(results.layers, dtype=object), dtype=_STR)
            metrics = f.create_group("metrics")
            metrics.attrs["order"] = json.dumps(list(results.metrics))
            for name, values in results.metrics.items():
                metrics.create_dataset(name, data=np.asarray(values, dtype=np.float64))
            scalars = f.create_group("scalars")
            for name, values in results.scalars.items():
                scalars.create_dataset(name, data=np.asarray(values, dtype=np.float64))
            for name in ("checkpoints", "failures", "jumps"):
                table = getattr(results, name)
                if table is not None:
                    _write_table(f.create_group(name), table)
            if results.jumps is not None:
                f["jumps"].attrs.update(
                    {k: _attr_value(v) for k, v in results.jump_settings.items()}
                )
                if results.transitions is not None:
                    _write_table(f["jumps"].create_group("transitions"), results.transitions)
            if results.provenance is not None:
                group = f.create_group("provenance")
                group.attrs.update(
                    {k: _attr_value(v) for k, v in asdict(results.provenance).items()}
                )
            f.create_group("metadata").attrs.update(dict(results.metadata))
            f.flush()
            os.fsync(f.id.get_vfd_handle())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _read_provenance(group: h5py.Group) -> Provenance:
    values = {}
    for item in fields(Provenance):
        if item.name not in group.attrs:
            continue
        value = group.attrs[item.name]
        if item.name in ("metrics", "layers"):
            value = tuple(json.loads(value))
        elif isinstance(value, np.generic):
            value = value.item()
        values[item.name] = value
    return Provenance(**values)


def _open(path: Path) -> h5py.File:
    if not path.exists():
        raise ResultsFormatError(f"results file {path} does not exist; run `ndt track` first")
    try:
        handle = h5py.File(path, "r")
    except OSError:
        raise ResultsFormatError(f"{path} is not an HDF5 file") from None
    version = handle.attrs.get("format_version")
    if version is None:
        handle.close()
        raise ResultsFormatError(f"{path} is not an ndt results file (no format_version)")
    if int(version) > FORMAT_VERSION:
        handle.close()
        raise ResultsFormatError(
            f"{path} has format version {int(version)}; this ndt reads up to "
            f"{FORMAT_VERSION} (upgrade ndt)"
        )
    return handle


def read_results(path: str | Path) -> Results:
    """Read a whole results file.

    Raises:
        ResultsFormatError: if the file is missing, not HDF5, not an ndt results file,
            of a newer format version, or lacks a required dataset.
    """
    path = Path(path)
    with _open(path) as f:
        try:
            steps = f["steps"][()].astype(np.int64)
            layers = list(f["layers"].asstr()[()])
            group = f["metrics"]
            order = json.loads(group.attrs.get("order", "[]")) or sorted(group)
            metrics = {name: group[name][()] for name in order if name in group}
        except KeyError as exc:
            raise ResultsFormatError(f"{path} lacks a required dataset: {exc}") from None
        results = Results(steps=steps, layers=layers, metrics=metrics)
        if "scalars" in f:
            results.scalars = {name: f["scalars"][name][()] for name in f["scalars"]}
        for name in ("checkpoints", "failures", "jumps"):
            if name in f:
                setattr(results, name, _read_table(f[name]))
        if "jumps" in f:
            results.jump_settings = {
                k: (v.item() if isinstance(v, np.generic) else v)
                for k, v in f["jumps"].attrs.items()
            }
            results.jump_settings.pop("columns", None)
            if "transitions" in f["jumps"]:
                results.transitions = _read_table(f["jumps"]["transitions"])
        if "provenance" in f:
            results.provenance = _read_provenance(f["provenance"])
        if "metadata" in f:
            results.metadata = {k: str(v) for k, v in f["metadata"].attrs.items()}
    return results


def load_results(path: str | Path) -> pd.DataFrame:
    """Read a results file as the tidy table (columns step, layer, then one per metric)."""
    return read_results(path).to_frame()


def write_jumps(
    path: str | Path,
    jumps: pd.DataFrame,
    settings: Mapping[str, object] | None = None,
    transitions: pd.DataFrame | None = None,
) -> None:
    """Replace the ``/jumps`` group (curve rows, transitions) of a results file, atomically."""
    results = read_results(path)
    results.jumps = jumps.reset_index(drop=True)
    results.jump_settings = dict(settings or {})
    results.transitions = None if transitions is None else transitions.reset_index(drop=True)
    write_results(path, results)
