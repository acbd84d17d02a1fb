"""The row datasets of a results file (format version 2): one row per committed checkpoint.

``/steps``, ``/metrics/*``, ``/scalars/*`` and the columns of ``/checkpoints`` have one row
per checkpoint, written with spare rows (resizable, chunked, every chunk allocated when the
file is written). The root attribute ``n_rows`` counts the committed rows; rows past it are
padding or an interrupted append, and readers ignore them. Appending a checkpoint writes its
rows into allocated chunks, flushes, then rewrites ``n_rows`` in place and flushes again: the
only metadata an append changes is that one attribute, so a process killed at any moment
leaves the old or the new count, each describing complete rows. A step appended twice (a
checkpoint recomputed because it changed on disk) counts once: its last row wins.
"""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd

#: Root attribute: the number of committed rows.
N_ROWS = "n_rows"
#: Bytes of one chunk of a row dataset (about; at least one row).
CHUNK_BYTES = 64 * 1024
#: Width of fixed-length string columns; a longer string widens the column (a rewrite).
MIN_STRING_BYTES = 256


def row_array(values: object) -> np.ndarray:
    """A column as stored: numbers as they are, strings as fixed-length utf-8 bytes."""
    array = np.asarray(values)
    if array.dtype == object or array.dtype.kind == "U":
        encoded = [str(v).encode("utf-8") for v in array.reshape(-1)]
        width = max([MIN_STRING_BYTES, *map(len, encoded)])
        # The dtype carries h5py's utf-8 tag: bytes tagged ascii do not convert to utf-8.
        utf8 = h5py.string_dtype("utf-8", width)
        return np.asarray(encoded, dtype=f"S{width}").astype(utf8).reshape(array.shape)
    return array


def _fill(dtype: np.dtype) -> object:
    if dtype.kind == "f":
        return np.nan
    return b"" if dtype.kind == "S" else 0


def write_rows(group: h5py.Group, name: str, values: object, capacity: int) -> h5py.Dataset:
    """Create a row dataset holding `values` (shape (n_rows, ...)) in `capacity` rows."""
    data = row_array(values)
    tail = data.shape[1:]
    padded = np.full((max(1, capacity), *tail), _fill(data.dtype), dtype=data.dtype)
    padded[: len(data)] = data
    row_bytes = data.dtype.itemsize * int(np.prod(tail, dtype=np.int64))
    chunk_rows = int(min(len(padded), max(1, CHUNK_BYTES // max(1, row_bytes))))
    # Writing every row now allocates every chunk, so that appends never allocate space.
    return group.create_dataset(
        name, data=padded, maxshape=(None, *tail), chunks=(chunk_rows, *tail),
        fillvalue=_fill(data.dtype), track_times=False,
    )  # fmt: skip


def fits(dataset: h5py.Dataset, values: np.ndarray) -> bool:
    """Whether `values` can be written into `dataset`'s rows as they are (shape, width)."""
    if values.shape[1:] != dataset.shape[1:]:
        return False
    info = h5py.check_string_dtype(dataset.dtype)
    if values.dtype.kind == "S":
        longest = max(map(len, values.reshape(-1)), default=0)
        return info is not None and info.length is not None and longest <= info.length
    return info is None


def read_rows(dataset: h5py.Dataset, n_rows: int) -> np.ndarray:
    """The committed rows of a row dataset (strings decoded)."""
    if h5py.check_string_dtype(dataset.dtype):
        return np.asarray(dataset.asstr()[:n_rows], dtype=object)
    return dataset[:n_rows]


def last_per_step(steps: np.ndarray) -> np.ndarray:
    """Indices of the last row of each step, in increasing step order."""
    reversed_steps = np.asarray(steps)[::-1]
    _, first_in_reversed = np.unique(reversed_steps, return_index=True)
    return len(reversed_steps) - 1 - first_in_reversed


def aligned(table: pd.DataFrame, steps: np.ndarray) -> pd.DataFrame:
    """`table` (a `step` column and others) with exactly one row per entry of `steps`, in
    that order: the last row of each step, empty values where a step has none."""
    kept = table.drop_duplicates("step", keep="last").set_index("step")
    frame = kept.reindex(np.asarray(steps, dtype=np.int64))
    for column in frame.columns:
        original = table[column].dtype
        if pd.api.types.is_bool_dtype(original):
            frame[column] = frame[column].fillna(False).astype(bool)
        elif pd.api.types.is_integer_dtype(original):
            frame[column] = frame[column].fillna(0).astype(np.int64)
        elif not pd.api.types.is_float_dtype(original):
            frame[column] = frame[column].fillna("").astype(str)
    return frame.rename_axis("step").reset_index()
