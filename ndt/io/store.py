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
rename, `ndt.io.file_replace`), so an interrupted run leaves the previous complete file, never
a torn one; and every writer holds the file's lock (`ndt.io.results_lock`) while it reads and
writes, so two writers never lose each other's rows.
"""

from __future__ import annotations

import errno
import json
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from ndt import __version__
from ndt.errors import ResultsFormatError, describe
from ndt.io.file_replace import replacing
from ndt.io.results_lock import results_lock
from ndt.io.results_schema import violations

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
    dtype: str = "float32"
    tokens: str = "all"
    command: str = ""

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
            "dtype": self.dtype,
            "tokens": self.tokens,
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


_HDF5_ERRNO = re.compile(r"errno = (\d+)")


def _write_error(exc: BaseException, path: Path) -> OSError:
    """An OSError naming the results file for a failed write (h5py reports a full disk as a
    RuntimeError with the errno in its message, and names the temporary file)."""
    code = None
    # Closing the broken file raises again; the first error of the chain has the cause.
    while exc is not None and code is None:
        code = getattr(exc, "errno", None)
        found = _HDF5_ERRNO.search(str(exc))
        code = code if code is not None else int(found.group(1)) if found else None
        exc = exc.__context__
    code = code if code is not None else errno.EIO
    return OSError(code, os.strerror(code), str(path))


def write_results(path: str | Path, results: Results, *, wait: float = 0.0) -> None:
    """Write `results` to `path`, replacing the file atomically, under its write lock.

    Args:
        path: The results file; a symlink is written through.
        results: What to write.
        wait: Seconds to wait for another writer (see `ndt.io.results_lock`).

    Raises:
        ResultsLockedError: if another process is writing `path`.
        OSError: naming `path` when the folder is read-only, full, or missing (the previous
            file, if any, is left as it was).
    """
    with results_lock(path, wait):
        _write(path, results)


def _write(path: str | Path, results: Results) -> None:
    try:
        _write_replacing(path, results)
    except (OSError, RuntimeError) as exc:
        raise _write_error(exc, Path(path)) from exc


def _write_replacing(path: str | Path, results: Results) -> None:
    with replacing(path) as tmp_name:
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
    """Open a results file for reading after checking it against the specification."""
    if not path.exists():
        raise ResultsFormatError(f"results file {path} does not exist; run `ndt track` first")
    if path.is_dir():
        raise ResultsFormatError(f"{path} is a folder, not a results file")
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        if isinstance(exc, PermissionError):  # h5py puts its own text where the cause goes
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path)) from exc
        raise ResultsFormatError(f"{path} is not an HDF5 file") from None
    try:
        version = handle.attrs.get("format_version")
        if version is None:
            raise ResultsFormatError(f"{path} is not an ndt results file (no format_version)")
        if not isinstance(version, (int, np.integer)) or isinstance(version, (bool, np.bool_)):
            shown = version.item() if isinstance(version, np.generic) else version
            raise ResultsFormatError(
                f"{path} has format_version {shown!r} ({type(version).__name__}); "
                "expected an integer (see docs/results-format.md)"
            )
        if int(version) > FORMAT_VERSION:
            raise ResultsFormatError(
                f"{path} has format version {int(version)}; this ndt reads up to "
                f"{FORMAT_VERSION} (upgrade ndt)"
            )
        problems = violations(handle)
    except ResultsFormatError:
        handle.close()
        raise
    except Exception as exc:  # h5py raises several types for a damaged file
        handle.close()
        raise ResultsFormatError(f"cannot read {path}: {describe(exc)}") from exc
    if problems:
        handle.close()
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise ResultsFormatError(
            f"{path} does not follow the results format: {'; '.join(problems[:3])}{more} "
            "(see docs/results-format.md)"
        )
    return handle


def read_results(path: str | Path) -> Results:
    """Read a whole results file, checked against docs/results-format.md.

    Raises:
        ResultsFormatError: if the file is missing, not HDF5, not an ndt results file, of a
            newer format version, or departs from the specification (the message names
            each violation: a missing or mis-shaped dataset, a malformed attribute...).
    """
    path = Path(path)
    with _open(path) as f:
        try:
            return _read_checked(f)
        except Exception as exc:  # h5py raises several types for a damaged file
            raise ResultsFormatError(f"cannot read {path}: {describe(exc)}") from exc


def _read_checked(f: h5py.File) -> Results:
    steps = f["steps"][()].astype(np.int64)
    layers = list(f["layers"].asstr()[()])
    group = f["metrics"]
    order = json.loads(group.attrs.get("order", "[]")) or sorted(group)
    metrics = {name: group[name][()].astype(np.float64) for name in order if name in group}
    results = Results(steps=steps, layers=layers, metrics=metrics)
    if "scalars" in f:
        results.scalars = {name: f["scalars"][name][()] for name in f["scalars"]}
    for name in ("checkpoints", "failures", "jumps"):
        if name in f:
            setattr(results, name, _read_table(f[name]))
    if "jumps" in f:
        results.jump_settings = {
            k: (v.item() if isinstance(v, np.generic) else v) for k, v in f["jumps"].attrs.items()
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
    *,
    wait: float = 0.0,
) -> None:
    """Replace the ``/jumps`` group (curve rows, transitions) of a results file, atomically.

    The file is read and rewritten under its write lock, so rows that `ndt track` added
    meanwhile are kept.

    Raises:
        ResultsLockedError: if another process is writing `path`.
    """
    with results_lock(path, wait):
        results = read_results(path)
        results.jumps = jumps.reset_index(drop=True)
        results.jump_settings = dict(settings or {})
        results.transitions = None if transitions is None else transitions.reset_index(drop=True)
        _write(path, results)
