"""The results file: an HDF5 store of per-layer metric curves, their provenance and jumps.

Layout (format version 2, specified in docs/results-format.md)::

    /                    attrs: format_version, ndt_version, created, kind="ndt-results",
                                n_rows (committed rows of the row datasets)
    /steps               int64   (rows,)                 one row per committed checkpoint
    /layers              utf-8   (n_layers,)             model order
    /metrics/<metric>    float64 (rows, n_layers)        NaN where not computed
    /scalars/<name>      float64 (rows,)                 optional: loss, grad_norm
    /checkpoints/        row table: step, file, size, mtime, sha256 (optional; by track)
    /failures/           table: file, error               (optional; retried next run)
    /provenance          attrs: what changes the numbers (optional)
    /jumps/              table written by `ndt jumps`, run settings in its attrs (optional)
    /jumps/transitions/  table: the ranked transitions of that run (optional)
    /metadata            attrs: free-form user metadata (optional)

`append_rows` adds one checkpoint's rows in place, at a cost proportional to those rows
(`ndt.io.results_rows` says why a kill at any moment leaves a readable file); every other write
replaces the whole file atomically (write a temporary file beside it, then rename,
`ndt.io.file_replace`). Every writer holds the file's lock (`ndt.io.results_lock`) while it reads
and writes, so two writers never lose each other's rows. Version-1 files (rows exactly
``len(steps)``, no ``n_rows``) are read as well and rewritten as version 2 by the next write.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from ndt import __version__
from ndt.errors import ResultsFormatError, describe
from ndt.io.file_replace import replacing, resolve_target
from ndt.io.results_lock import results_lock
from ndt.io.results_rows import (
    N_ROWS,
    aligned,
    fits,
    last_per_step,
    read_rows,
    row_array,
    write_rows,
)
from ndt.io.results_schema import violations

FORMAT_VERSION = 2
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
    #: Metric definitions ("ndt" or "ndtracker"); files written before it read as "ndt".
    definitions: str = "ndt"
    #: ``--step-scale``: steps per accelerate save index (1: steps as found).
    step_scale: int = 1

    def comparable(self) -> dict[str, object]:
        """The fields two runs must share for their curves to be comparable."""
        return {
            "model": self.model,
            "model_kwargs": json.loads(self.model_kwargs or "{}"),
            "probe_sha256": self.probe_sha256,
            "center": self.center,
            "dormant_tau": self.dormant_tau,
            "definitions": self.definitions,
            "metrics": tuple(self.metrics),
            "layers": tuple(self.layers),
            "dtype": self.dtype,
            "tokens": self.tokens,
            "step_scale": self.step_scale,
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


def _read_table(group: h5py.Group, n_rows: int | None = None) -> pd.DataFrame:
    """A table; for a row table, its first `n_rows` rows (the committed ones)."""
    columns = json.loads(group.attrs.get("columns", "[]")) or list(group)
    data = {column: read_rows(group[column], n_rows) for column in columns}
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


def write_results(
    path: str | Path, results: Results, *, wait: float = 0.0, spare_rows: int = 0
) -> None:
    """Write `results` to `path`, replacing the file atomically, under its write lock.

    Args:
        path: The results file; a symlink is written through.
        results: What to write; a step found twice keeps its last row.
        wait: Seconds to wait for another writer (see `ndt.io.results_lock`).
        spare_rows: Rows to allocate beyond the results, for `append_rows` to fill.

    Raises:
        ResultsLockedError: if another process is writing `path`.
        OSError: naming `path` when the folder is read-only, full, or missing (the previous
            file, if any, is left as it was).
    """
    with results_lock(path, wait):
        _write(path, results, spare_rows)


#: The root groups and attributes the store writes; a rewrite that keeps the curves
#: (`write_jumps`) copies any other root member of the old file (such as the per-layer
#: groups that `ndt.export.hdf5.export_to_hdf5` writes for ndtracker's readers).
OWN_GROUPS = frozenset(
    {"steps", "layers", "metrics", "scalars", "checkpoints", "failures", "jumps",
     "provenance", "metadata"}
)  # fmt: skip
_OWN_ATTRS = frozenset({"format_version", "kind", "ndt_version", "created", N_ROWS})


def _write(
    path: str | Path, results: Results, spare_rows: int = 0, *, keep_foreign: bool = False
) -> None:
    try:
        _write_replacing(path, results, spare_rows, keep_foreign)
    except (OSError, RuntimeError) as exc:
        raise _write_error(exc, Path(path)) from exc


#: Room a rewrite wants beyond twice its rows: HDF5's own structures and the tables.
_WRITE_MARGIN = 256 * 1024


def _check_free_space(path: str | Path, results: Results, capacity: int) -> None:
    """Refuse a rewrite the disk cannot hold, before HDF5 starts it: h5py meets a full disk
    in its allocation and teardown, where it prints tracebacks and can crash the process.

    Raises:
        OSError: ENOSPC, naming `path`, when the folder has less free space than twice the
            rows to write plus `_WRITE_MARGIN`.
    """
    n_steps = max(len(results.steps), 1)
    data = sum(np.asarray(v).nbytes for v in [*results.metrics.values(), *results.scalars.values()])
    per_row = 8 + data / n_steps + 256  # the step, the metrics, a checkpoints row
    need = 2 * per_row * max(capacity, 1) + _WRITE_MARGIN
    folder = resolve_target(path).parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return  # the write itself will say what is wrong with the folder
    if free < need:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def _copy_foreign(source: str | Path, target: h5py.File) -> None:
    """Copy the root groups, datasets and attributes of `source` that the store does not
    write itself into `target`."""
    with h5py.File(source, "r", locking=False) as old:
        for name in old:
            if name not in OWN_GROUPS:
                old.copy(old[name], target, name)
        for key, value in old.attrs.items():
            if key not in _OWN_ATTRS:
                target.attrs[key] = value


def _write_replacing(
    path: str | Path, results: Results, spare_rows: int, keep_foreign: bool = False
) -> None:
    order = last_per_step(np.asarray(results.steps, dtype=np.int64))
    steps = np.asarray(results.steps, dtype=np.int64)[order]
    capacity = len(steps) + spare_rows
    _check_free_space(path, results, capacity)
    with replacing(path) as tmp_name:
        with h5py.File(tmp_name, "w", locking=False) as f:
            f.attrs.update(
                format_version=FORMAT_VERSION,
                kind=KIND,
                ndt_version=__version__,
                created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            )
            f.attrs[N_ROWS] = np.int64(len(steps))
            write_rows(f, "steps", steps, capacity)
            f.create_dataset("layers", data=np.asarray(results.layers, dtype=object), dtype=_STR)
            metrics = f.create_group("metrics")
            metrics.attrs["order"] = json.dumps(list(results.metrics))
            for name, values in results.metrics.items():
                write_rows(metrics, name, np.asarray(values, dtype=np.float64)[order], capacity)
            scalars = f.create_group("scalars")
            for name, values in results.scalars.items():
                write_rows(scalars, name, np.asarray(values, dtype=np.float64)[order], capacity)
            if results.checkpoints is not None:
                table = aligned(results.checkpoints, steps)
                group = f.create_group("checkpoints")
                group.attrs["columns"] = json.dumps(list(table.columns))
                for column in table.columns:
                    write_rows(group, column, table[column].to_numpy(), capacity)
            for name in ("failures", "jumps"):
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
            if keep_foreign:
                _copy_foreign(path, f)
            f.flush()
            os.fsync(f.id.get_vfd_handle())


def append_rows(
    path: str | Path,
    steps: Sequence[int],
    metrics: Mapping[str, np.ndarray],
    checkpoints: pd.DataFrame | None = None,
    *,
    wait: float = 0.0,
) -> bool:
    """Commit rows to the file in place, if it has room for them as they are.

    The cost is that of the rows, whatever the size of the file. Rows are written into
    allocated space and flushed, then the committed count ``n_rows`` is updated and flushed
    (see `ndt.io.results_rows`). A step already in the file gets a new row, which wins.

    Args:
        path: A results file of this format version.
        steps: The steps of the new rows, shape (k,).
        metrics: Metric name -> values of shape (k, n_layers); exactly the file's metrics.
        checkpoints: The new rows of the checkpoints table (the file's columns), or None.
        wait: Seconds to wait for another writer.

    Returns:
        False, having written nothing, if the file does not exist, is of an older version,
        lacks room for k rows, or differs in metrics, layers or columns: the caller then
        rewrites it whole (`write_results` with spare rows).

    Raises:
        ResultsLockedError: if another process is writing `path`.
    """
    new_steps = np.asarray(steps, dtype=np.int64)
    columns = {"steps": new_steps}
    columns.update({f"metrics/{m}": np.asarray(v, dtype=np.float64) for m, v in metrics.items()})
    if checkpoints is not None:
        columns.update({f"checkpoints/{c}": row_array(checkpoints[c]) for c in checkpoints})
    with results_lock(path, wait):
        if not Path(path).exists():
            return False
        try:
            return _append(path, new_steps, columns)
        except (OSError, RuntimeError) as exc:
            raise _write_error(exc, Path(path)) from exc


def _append(path: str | Path, new_steps: np.ndarray, columns: dict[str, np.ndarray]) -> bool:
    """Write the rows into the spare space, then the count (see `append_rows`)."""
    with h5py.File(path, "r+", locking=False) as f:
        if int(f.attrs.get("format_version", 0)) != FORMAT_VERSION or N_ROWS not in f.attrs:
            return False
        datasets = {name: f[name] for name in _row_datasets(f)}
        start = int(f.attrs[N_ROWS])
        stop = start + len(new_steps)
        if not _can_append(datasets, columns, stop):
            return False
        for name, dataset in datasets.items():
            # Rows past the count may hold an interrupted append: overwrite them all.
            value = columns.get(name)
            dataset[start:stop] = value if value is not None else dataset.fillvalue
        f.flush()
        # The rows reach the disk before the count that covers them; the count itself
        # may be lost to a power cut, which only means computing those rows again.
        os.fsync(f.id.get_vfd_handle())
        f.attrs.modify(N_ROWS, np.int64(stop))
    return True


def _row_datasets(f: h5py.File) -> list[str]:
    names = ["steps"]
    for group in ("metrics", "scalars", "checkpoints"):
        if group in f:
            names += [f"{group}/{name}" for name in f[group]]
    return names


def _can_append(
    datasets: Mapping[str, h5py.Dataset], columns: Mapping[str, np.ndarray], n_rows: int
) -> bool:
    """Whether the row datasets can hold `n_rows` rows, the new ones being `columns`."""
    if sorted(n for n in datasets if not n.startswith("scalars/")) != sorted(columns):
        return False
    capacity = datasets["steps"].shape[0]
    if any(dataset.shape[0] != capacity for dataset in datasets.values()):
        return False
    return n_rows <= capacity and all(fits(datasets[n], v) for n, v in columns.items())


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
        # No HDF5 file lock: a writer may be appending (under ndt's own lock, which readers
        # never need, see `ndt.io.results_rows`).
        handle = h5py.File(path, "r", locking=False)
    except OSError as exc:
        if isinstance(exc, PermissionError):  # h5py puts its own text where the cause goes
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path)) from exc
        raise ResultsFormatError(f"{path} is not an HDF5 file") from None
    try:
        _check_version(path, handle.attrs.get("format_version"))
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


def _check_version(path: Path, version: object) -> None:
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
    if int(version) < 1:
        raise ResultsFormatError(
            f"{path} has format version {int(version)}; this ndt reads versions 1 to "
            f"{FORMAT_VERSION}"
        )


def _committed(path: Path, f: h5py.File) -> int:
    """How many rows the row datasets hold (version 1: all of them)."""
    n_steps = f["steps"].shape[0]
    if int(f.attrs["format_version"]) < 2:
        return n_steps
    n_rows = int(f.attrs.get(N_ROWS, -1))
    if not 0 <= n_rows <= n_steps:
        raise ResultsFormatError(
            f"{path} has n_rows={n_rows} but room for {n_steps} rows; it is damaged"
        )
    return n_rows


def read_provenance(path: str | Path) -> Provenance | None:
    """Only the provenance of a results file (None if it has none); reads no rows."""
    path = Path(path)
    with _open(path) as f:
        return _read_provenance(f["provenance"]) if "provenance" in f else None


def read_results(path: str | Path) -> Results:
    """Read a whole results file (its committed rows, one per step, steps increasing),
    checked against docs/results-format.md.

    Raises:
        ResultsFormatError: if the file is missing, not HDF5, not an ndt results file, of a
            newer format version, or departs from the specification (the message names
            each violation: a missing or mis-shaped dataset, a malformed attribute...).
    """
    path = Path(path)
    with _open(path) as f:
        try:
            return _read_checked(path, f)
        except ResultsFormatError:
            raise
        except Exception as exc:  # h5py raises several types for a damaged file
            raise ResultsFormatError(f"cannot read {path}: {describe(exc)}") from exc


def _read_checked(path: Path, f: h5py.File) -> Results:
    try:
        n_rows = _committed(path, f)
        steps = f["steps"][:n_rows].astype(np.int64)
        order = last_per_step(steps)
        layers = list(f["layers"].asstr()[()])
        group = f["metrics"]
        names = json.loads(group.attrs.get("order", "[]")) or sorted(group)
        metrics = {name: group[name][:n_rows][order] for name in names if name in group}
    except KeyError as exc:
        raise ResultsFormatError(f"{path} lacks a required dataset: {exc}") from None
    metrics = {name: values.astype(np.float64) for name, values in metrics.items()}
    results = Results(steps=steps[order], layers=layers, metrics=metrics)
    if "scalars" in f:
        results.scalars = {k: v[:n_rows][order] for k, v in f["scalars"].items()}
    if "checkpoints" in f:
        table = _read_table(f["checkpoints"], n_rows)
        # Version 1 tables need not have one row per step.
        results.checkpoints = (
            table.iloc[order].reset_index(drop=True) if len(table) == n_rows else table
        )
    for name in ("failures", "jumps"):
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
    meanwhile are kept, and so are root members that are not the store's own (the curves do
    not change, so the per-layer groups of `export_to_hdf5` stay true).

    Raises:
        ResultsLockedError: if another process is writing `path`.
    """
    with results_lock(path, wait):
        results = read_results(path)
        results.jumps = jumps.reset_index(drop=True)
        results.jump_settings = dict(settings or {})
        results.transitions = None if transitions is None else transitions.reset_index(drop=True)
        _write(path, results, keep_foreign=True)
