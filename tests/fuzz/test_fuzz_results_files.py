"""Fuzz: a real small results file with generated attribute and dataset corruptions, read
by every command that reads one (jumps, summary, export, track extending it)."""

from __future__ import annotations

import json

import h5py
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ndt.io.store import read_results
from tests.fuzz.conftest import check, examples

_STR = h5py.string_dtype("utf-8")

# HDF5 strings and names cannot hold NUL (h5py refuses to write one): no file on disk has it.
HDF5_CHARS = st.characters(exclude_characters="\x00")
TEXTS = st.one_of(
    st.text(HDF5_CHARS, max_size=12),
    st.sampled_from(["1", "2", "[", "{}", "[]", '["stable_rank"]', '{"a": 1}', "[1, 2]",
                     "nan", "null", "true", "ndt-results", "stable_rank", "a.b"]),
)  # fmt: skip
ATTR_VALUES = st.one_of(
    TEXTS,
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.lists(st.integers(-5, 5), min_size=0, max_size=4).map(np.asarray),
    st.binary(max_size=8).map(np.bytes_),
)
DTYPES = st.sampled_from(["int64", "float64", "float32", "int8", "bool", "str", "uint64"])


@st.composite
def arrays(draw) -> np.ndarray:
    dtype = draw(DTYPES)
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=25))
    if dtype == "str":
        values = draw(st.lists(st.text(HDF5_CHARS, max_size=6), min_size=1, max_size=4))
        flat = np.resize(np.asarray(values, dtype=object), int(np.prod(shape)))
        return flat.reshape(shape)
    return draw(hnp.arrays(dtype=dtype, shape=shape))


def _objects(f: h5py.File) -> list[str]:
    names = ["/"]
    f.visit(names.append)
    return names


def _corrupt(f: h5py.File, data) -> str:
    """Apply one generated corruption; returns its description."""
    name = data.draw(st.sampled_from(_objects(f)), label="object")
    kind = data.draw(
        st.sampled_from(["set_attr", "del_attr", "delete", "replace", "to_group", "to_dataset"]),
        label="corruption",
    )
    obj = f[name]
    if kind == "set_attr":
        keys = sorted(obj.attrs) + ["format_version", "kind", "order", "columns", "fdr",
                                    "seed", "detector", "metrics", "layers", "center"]  # fmt: skip
        key = data.draw(
            st.one_of(st.sampled_from(keys), st.text(HDF5_CHARS, min_size=1, max_size=6))
        )
        obj.attrs[key] = data.draw(ATTR_VALUES, label="value")
    elif kind == "del_attr" and len(obj.attrs):
        del obj.attrs[data.draw(st.sampled_from(sorted(obj.attrs)))]
    elif name != "/" and kind in ("delete", "replace", "to_group", "to_dataset"):
        del f[name]
        if kind == "replace":
            values = data.draw(arrays(), label="array")
            dtype = _STR if values.dtype == object else None
            f.create_dataset(name, data=values, dtype=dtype)
        elif kind == "to_group":
            f.create_group(name)
        elif kind == "to_dataset":
            f.create_dataset(name, data=np.zeros(3))
    return f"{kind} {name}"


COMMANDS = st.sampled_from(["jumps", "jumps-read", "summary", "export", "track"])


@settings(max_examples=examples(150))
@given(data=st.data(), command=COMMANDS, n_corruptions=st.integers(1, 3))
def test_corrupted_results_files(base_run, run, tmp_path, data, command, n_corruptions):
    root = base_run.root
    path = tmp_path / "r.h5"
    for leftover in tmp_path.iterdir():
        leftover.unlink()
    path.write_bytes(base_run.results)
    with h5py.File(path, "a") as f:
        for _ in range(n_corruptions):
            _corrupt(f, data)
    if data.draw(st.booleans(), label="truncate"):
        size = path.stat().st_size
        cut = data.draw(st.integers(0, size - 1), label="truncate at")
        with open(path, "r+b") as stream:
            stream.truncate(cut)
    before = path.read_bytes()
    args = {
        "jumps": ["jumps", path, "--all"],
        "jumps-read": ["jumps", path, "--no-write", "--json"],
        "summary": ["summary", path, "--json"],
        "export": ["export", path, "-f", "json"],
        "track": ["track", root / "ckpts", "--out", path, "-q"],
    }[command]
    result = run(*args)
    check(result, before, path)
    # No temporary file left (the writers' lock file stays beside the results, by design).
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".lock") == ["r.h5"]
    if result.exit_code == 0 and command in ("jumps", "track"):
        written = read_results(path)  # what a command wrote reads back
        assert list(written.layers) == json.loads(json.dumps(list(written.layers)))
