"""Check an open results file against docs/results-format.md before anything reads it.

`violations` walks the file and names every departure from the specification (a missing or
mis-shaped dataset, a text ``format_version``, an attribute that is not the JSON it should
be, layer names that are not strings...), so that `ndt.io.store.read_results` refuses a damaged
or hand-edited file with one message instead of failing somewhere downstream, and every
command (`ndt summary` included) accepts and rejects the same files.
"""

from __future__ import annotations

import json
import math

import h5py
import numpy as np

# Table columns the specification types: name -> (kind, description). Kinds: "int",
# "float" (any real number), "str", "bool".
_TABLE_COLUMNS: dict[str, dict[str, str]] = {
    "checkpoints": {"step": "int", "file": "str", "size": "int", "mtime": "float"},
    "failures": {"file": "str", "error": "str"},
    "jumps": {
        "layer": "str", "metric": "str", "step": "int", "prev_step": "int",
        "value_before": "float", "value_after": "float", "delta": "float", "score": "float",
        "p_value": "float", "q_value": "float", "methods": "str", "significant": "bool",
    },
    "jumps/transitions": {
        "rank": "int", "prev_step": "int", "step": "int", "peak_prev_step": "int",
        "peak_step": "int", "p_value": "float", "p_adjusted": "float", "n_curves": "int",
        "layers": "str", "metrics": "str", "strongest": "str",
    },
}  # fmt: skip
_REQUIRED_COLUMNS = {
    # `ndt track` matches recorded checkpoints by file, size and mtime when it extends a file.
    "checkpoints": ("step", "file", "size", "mtime"),
    "failures": ("file",),
    "jumps": ("layer", "step"),
    # Every column: `ndt compare` and the plots read them all.
    "jumps/transitions": tuple(_TABLE_COLUMNS["jumps/transitions"]),
}
# Attributes of /jumps and /provenance: name -> kind ("json-list", "json-object" are strings
# holding that JSON value).
_JUMP_ATTRS = {
    "method": "str", "fdr": "float", "n_tests": "int", "n_significant": "int",
    "expected_false_discoveries": "float", "n_curves": "int", "null_model": "str",
    "detector": "json-object", "tolerance": "int", "half_window": "int", "n_intervals": "int",
    "n_transitions": "int", "largest_change": "json-numbers",
    # Written by ndt 0.1's surrogate null.
    "seed": "int", "n_surrogates": "int",
}  # fmt: skip
_PROVENANCE_ATTRS = {
    "checkpoint_dir": "str", "model": "str", "model_kwargs": "json-object", "probe_path": "str",
    "probe_sha256": "str", "center": "bool", "dormant_tau": "float", "metrics": "json-list",
    "layers": "json-list", "ndt_version": "str", "torch_version": "str", "device": "str",
    "command": "str", "dtype": "str", "tokens": "str", "definitions": "str", "step_scale": "int",
}  # fmt: skip


def _kind_of_dtype(dtype: np.dtype) -> str:
    if h5py.check_string_dtype(dtype) is not None:
        return "str"
    if dtype.kind == "b" or h5py.check_enum_dtype(dtype) is not None:
        return "bool"
    if dtype.kind in "iu":
        return "int"
    if dtype.kind == "f":
        return "float"
    return dtype.name if dtype.names is None else "compound"


def _fits(kind: str, wanted: str) -> bool:
    return kind == wanted or (wanted == "float" and kind == "int")


def _attr_kind(value: object) -> str:
    if isinstance(value, (bytes, str)):
        return "str"
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (int, np.integer)):
        return "int"
    if isinstance(value, (float, np.floating)):
        return "float"
    return type(value).__name__


def _check_attr(where: str, name: str, value: object, wanted: str) -> str | None:
    kind = _attr_kind(value)
    if wanted.startswith("json-"):
        if kind != "str":
            return f"{where} attribute '{name}' is {kind}, not a JSON string"
        try:
            parsed = json.loads(value)
        except (ValueError, UnicodeDecodeError):
            return f"{where} attribute '{name}' is not valid JSON"
        if wanted == "json-list" and not (
            isinstance(parsed, list) and all(isinstance(v, str) for v in parsed)
        ):
            return f"{where} attribute '{name}' is not a JSON list of strings"
        if wanted == "json-object" and not isinstance(parsed, dict):
            return f"{where} attribute '{name}' is not a JSON object"
        if wanted == "json-numbers" and not (
            isinstance(parsed, list)
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in parsed)
        ):
            return f"{where} attribute '{name}' is not a JSON list of numbers"
        return None
    if not _fits(kind, wanted) and not (wanted == "bool" and kind == "int" and value in (0, 1)):
        return f"{where} attribute '{name}' is {kind}, expected {wanted}"
    if wanted == "float" and not math.isfinite(float(value)):
        return f"{where} attribute '{name}' is {value}, expected a finite number"
    return None


def _dataset(f: h5py.Group, name: str, problems: list[str]) -> h5py.Dataset | None:
    item = f.get(name, getlink=False)
    if item is None:
        problems.append(f"missing dataset /{name}")
        return None
    if not isinstance(item, h5py.Dataset):
        problems.append(f"/{name} is a {type(item).__name__.lower()}, not a dataset")
        return None
    return item


def _check_root(f: h5py.File, problems: list[str]) -> tuple[int | None, int | None]:
    version = f.attrs.get("format_version")
    if _attr_kind(version) != "int":
        problems.append(f"attribute format_version is {_attr_kind(version)}, expected an integer")
    elif int(version) < 1:
        problems.append(f"attribute format_version is {int(version)}, expected 1 or more")
    kind = f.attrs.get("kind")
    if kind is not None and (_attr_kind(kind) != "str" or _text(kind) != "ndt-results"):
        problems.append(f"attribute kind is {kind!r}, expected 'ndt-results'")
    n_steps = n_layers = None
    steps = _dataset(f, "steps", problems)
    if steps is not None:
        if steps.ndim != 1 or _kind_of_dtype(steps.dtype) != "int":
            problems.append(
                f"/steps is {_kind_of_dtype(steps.dtype)} of shape {steps.shape}, "
                "expected int64 (n_steps,)"
            )
        else:
            n_steps = steps.shape[0]  # version 2: the row capacity; all row datasets share it
            committed = _committed_rows(f, n_steps, problems)
            values = steps[:committed]
            # Version 2 appends rows: a step may come again (its last row counts).
            if int(f.attrs.get("format_version", 1)) < 2 and np.any(np.diff(values) <= 0):
                problems.append("/steps is not strictly increasing")
    layers = _dataset(f, "layers", problems)
    if layers is not None:
        if layers.ndim != 1 or _kind_of_dtype(layers.dtype) != "str":
            problems.append(
                f"/layers is {_kind_of_dtype(layers.dtype)} of shape {layers.shape}, "
                "expected utf-8 strings (n_layers,)"
            )
        else:
            try:
                names = list(layers.asstr()[()])
            except UnicodeDecodeError:
                problems.append("/layers holds names that are not valid UTF-8")
            else:
                n_layers = len(names)
                if len(set(names)) != n_layers:
                    problems.append("/layers names a layer twice")
    return n_steps, n_layers


def _committed_rows(f: h5py.File, capacity: int, problems: list[str]) -> int:
    """Version 2's ``n_rows`` (0 <= n_rows <= the row capacity); every row for version 1."""
    if int(f.attrs.get("format_version", 1)) < 2:
        return capacity
    n_rows = f.attrs.get("n_rows")
    if _attr_kind(n_rows) != "int" or not 0 <= int(n_rows) <= capacity:
        problems.append(f"attribute n_rows is {n_rows!r}, expected an integer in 0..{capacity}")
        return 0
    return int(n_rows)


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _check_metrics(f: h5py.File, n_steps: int | None, n_layers: int | None, problems) -> None:
    group = f.get("metrics", getlink=False)
    if not isinstance(group, h5py.Group):
        problems.append("missing group /metrics" if group is None else "/metrics is not a group")
        return
    if "order" in group.attrs:
        problem = _check_attr("/metrics", "order", group.attrs["order"], "json-list")
        if problem:
            problems.append(problem)
    expected = (n_steps, n_layers)
    for name, item in group.items():
        if not isinstance(item, h5py.Dataset):
            problems.append(f"/metrics/{name} is not a dataset")
        elif _kind_of_dtype(item.dtype) not in ("float", "int"):
            problems.append(f"/metrics/{name} is {_kind_of_dtype(item.dtype)}, expected float64")
        elif None not in expected and item.shape != expected:
            problems.append(
                f"/metrics/{name} has shape {item.shape}, expected (n_steps, n_layers) = {expected}"
            )
    scalars = f.get("scalars", getlink=False)
    if scalars is None:
        return
    if not isinstance(scalars, h5py.Group):
        problems.append("/scalars is not a group")
        return
    for name, item in scalars.items():
        if not isinstance(item, h5py.Dataset) or _kind_of_dtype(item.dtype) not in (
            "float",
            "int",
        ):
            problems.append(f"/scalars/{name} is not a float64 dataset")
        elif n_steps is not None and item.shape != (n_steps,):
            problems.append(f"/scalars/{name} has shape {item.shape}, expected ({n_steps},)")


def _check_table(f: h5py.File, name: str, problems: list[str]) -> None:
    group = f.get(name, getlink=False)
    if group is None:
        return
    if not isinstance(group, h5py.Group):
        problems.append(f"/{name} is not a group")
        return
    columns = list(group)
    if "columns" in group.attrs:
        problem = _check_attr(f"/{name}", "columns", group.attrs["columns"], "json-list")
        if problem:
            problems.append(problem)
        else:
            columns = json.loads(group.attrs["columns"]) or columns
    lengths = set()
    for column in columns:
        item = group.get(column, getlink=False)
        if not isinstance(item, h5py.Dataset):
            problems.append(f"/{name}/{column} is missing or not a dataset")
            continue
        if item.ndim != 1:
            problems.append(f"/{name}/{column} has shape {item.shape}, expected one dimension")
            continue
        lengths.add(item.shape[0])
        wanted = _TABLE_COLUMNS[name].get(column)
        # An empty column has no values to type (pandas writes an empty table's as text).
        if wanted is not None and item.shape[0] and not _fits(_kind_of_dtype(item.dtype), wanted):
            problems.append(f"/{name}/{column} is {_kind_of_dtype(item.dtype)}, expected {wanted}")
    if len(lengths) > 1:
        problems.append(f"/{name} columns differ in length ({sorted(lengths)})")
    missing = [c for c in _REQUIRED_COLUMNS[name] if c not in columns]
    if missing:
        problems.append(f"/{name} lacks column {', '.join(missing)}")


def _check_attrs(f: h5py.File, name: str, spec: dict[str, str], problems: list[str]) -> None:
    group = f.get(name, getlink=False)
    if group is None:
        return
    if not isinstance(group, h5py.Group):
        problems.append(f"/{name} is not a group")
        return
    for key, wanted in spec.items():
        if key in group.attrs:
            problem = _check_attr(f"/{name}", key, group.attrs[key], wanted)
            if problem:
                problems.append(problem)


def _check_provenance_matches(f: h5py.File, problems: list[str]) -> None:
    """The provenance's metrics are stored, and its layers are /layers (checked once the
    parts themselves are well-formed)."""
    if "provenance" not in f:
        return
    attrs = f["provenance"].attrs
    if "metrics" in attrs:
        missing = [m for m in json.loads(attrs["metrics"]) if m not in f["metrics"]]
        if missing:
            problems.append(f"/metrics lacks {', '.join(missing)} (listed in /provenance)")
    recorded = json.loads(attrs["layers"]) if "layers" in attrs else []
    if recorded and recorded != list(f["layers"].asstr()[()]):
        problems.append("/provenance attribute 'layers' differs from /layers")


def violations(f: h5py.File) -> list[str]:
    """Every way the open file departs from docs/results-format.md (empty when it conforms).

    Args:
        f: A results file opened for reading.

    Returns:
        One short phrase per violation, such as ``"/layers is int of shape (3,), expected
        utf-8 strings (n_layers,)"``.
    """
    problems: list[str] = []
    n_steps, n_layers = _check_root(f, problems)
    _check_metrics(f, n_steps, n_layers, problems)
    for name in _TABLE_COLUMNS:
        _check_table(f, name, problems)
    _check_attrs(f, "jumps", _JUMP_ATTRS, problems)
    _check_attrs(f, "provenance", _PROVENANCE_ATTRS, problems)
    if not problems:
        _check_provenance_matches(f, problems)
    metadata = f.get("metadata", getlink=False)
    if metadata is not None and not isinstance(metadata, h5py.Group):
        problems.append("/metadata is not a group")
    return problems
