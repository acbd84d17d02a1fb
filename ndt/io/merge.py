"""`ndt merge`: join results files of one run made in pieces (``ndt track --shard I/N``).

The files must describe the same computation (`Provenance.comparable`: model, probe,
metrics, centring, layers, ...); a step found in several files must carry the same values
in each (NaN equals NaN). The merged file holds every step once, in step order, with the
checkpoints table of its source; `/jumps` is left out, since it was found on partial curves.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ndt.errors import ConfigMismatchError, NdtError
from ndt.io.store import Results, read_results, write_results


def merge_results(
    paths: Sequence[str | Path],
    out: str | Path,
    *,
    overwrite: bool = False,
    wait: float = 0.0,
) -> Results:
    """Merge the results files `paths` into `out` and return what was written.

    Args:
        paths: Results files of the same run (same provenance), in any order.
        out: The merged file; it may be one of `paths`.
        overwrite: Replace `out` if it exists and is not one of `paths`.
        wait: Seconds to wait for another writer of `out`.

    Raises:
        NdtError: if no file is given, or `out` exists and is neither an input nor
            `overwrite`.
        ResultsFormatError: if an input cannot be read.
        ConfigMismatchError: if two inputs differ in provenance, or hold one step with
            different values.
    """
    inputs = [Path(p) for p in paths]
    out = Path(out)
    if not inputs:
        raise NdtError("no results files to merge; name two or more, e.g. shard-0.h5 shard-1.h5")
    if out.exists() and not overwrite and all(not _same(out, p) for p in inputs):
        raise NdtError(f"{out} exists; pass --overwrite to replace it, or -o another file")
    files = [(path, read_results(path)) for path in inputs]
    for path, results in files[1:]:
        _check_same_run(files[0], (path, results))
    merged = _join(files)
    write_results(out, merged, wait=wait)
    return merged


def _same(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


def _description(results: Results) -> dict[str, object]:
    if results.provenance is not None:
        return results.provenance.comparable()
    return {"layers": tuple(results.layers), "metrics": tuple(results.metrics)}


def _check_same_run(first: tuple[Path, Results], other: tuple[Path, Results]) -> None:
    (path_a, a), (path_b, b) = first, other
    if (a.provenance is None) != (b.provenance is None):
        lacking = path_a if a.provenance is None else path_b
        raise ConfigMismatchError(
            f"cannot merge {path_b} with {path_a}: {lacking} has no provenance (not written "
            "by `ndt track`)"
        )
    wanted, found = _description(a), _description(b)
    for key in dict.fromkeys([*wanted, *found]):
        if wanted.get(key) != found.get(key):
            raise ConfigMismatchError(
                f"cannot merge {path_b} with {path_a}: {key} differs ({found.get(key)!r} in "
                f"{path_b}, {wanted.get(key)!r} in {path_a})"
            )


def _join(files: list[tuple[Path, Results]]) -> Results:
    """One row per step; the first file holding a step gives its checkpoints row."""
    names = list(files[0][1].metrics)
    rows: dict[int, tuple[Path, np.ndarray]] = {}
    records: dict[int, dict[str, object]] = {}
    for path, results in files:
        table = results.checkpoints
        by_step = {} if table is None else {int(r["step"]): r for r in table.to_dict("records")}
        for index, step in enumerate(int(s) for s in results.steps):
            values = np.stack([results.metrics[m][index] for m in names])
            if step in rows:
                _check_equal(step, names, rows[step], (path, values))
                continue
            rows[step] = (path, values)
            if step in by_step:
                records[step] = by_step[step]
    steps = sorted(rows)
    n_layers = len(files[0][1].layers)
    stacked = (
        np.stack([rows[s][1] for s in steps], axis=1)
        if steps
        else np.empty((len(names), 0, n_layers))
    )
    first = files[0][1]
    return Results(
        steps=np.asarray(steps, dtype=np.int64),
        layers=list(first.layers),
        metrics={m: stacked[i] for i, m in enumerate(names)},
        scalars=_scalars(files, steps),
        checkpoints=_checkpoints(records, steps),
        failures=_failures(files, records),
        provenance=first.provenance,
        metadata={k: v for _, r in reversed(files) for k, v in r.metadata.items()},
    )


def _check_equal(
    step: int, names: list[str], kept: tuple[Path, np.ndarray], other: tuple[Path, np.ndarray]
) -> None:
    (path_a, a), (path_b, b) = kept, other
    for index, name in enumerate(names):
        if not np.array_equal(a[index], b[index], equal_nan=True):
            raise ConfigMismatchError(
                f"cannot merge {path_b} with {path_a}: step {step} is in both with different "
                f"{name} values; recompute it (ndt track --overwrite) or leave one file out"
            )


def _scalars(files: list[tuple[Path, Results]], steps: list[int]) -> dict[str, np.ndarray]:
    """Per-step series present in every file, by step."""
    shared = set.intersection(*(set(r.scalars) for _, r in files))
    merged = {}
    for name in sorted(shared):
        by_step: dict[int, float] = {}
        for _, results in files:
            for step, value in zip(results.steps, results.scalars[name], strict=True):
                by_step.setdefault(int(step), float(value))
        merged[name] = np.asarray([by_step.get(s, np.nan) for s in steps], dtype=np.float64)
    return merged


def _checkpoints(records: dict[int, dict[str, object]], steps: list[int]) -> pd.DataFrame | None:
    if not records:
        return None
    frame = pd.DataFrame([records[s] for s in steps if s in records])
    if "sha256" in frame.columns:
        frame["sha256"] = frame["sha256"].fillna("")
    return frame.reset_index(drop=True)


def _failures(
    files: list[tuple[Path, Results]], records: dict[int, dict[str, object]]
) -> pd.DataFrame | None:
    """Failures of any shard whose checkpoint no other shard computed."""
    done = {str(r.get("file", "")) for r in records.values()}
    tables = [r.failures for _, r in files if r.failures is not None and len(r.failures)]
    if not tables:
        return None
    failures = pd.concat(tables, ignore_index=True).drop_duplicates("file", keep="first")
    failures = failures[~failures["file"].isin(done)].reset_index(drop=True)
    return failures if len(failures) else None
