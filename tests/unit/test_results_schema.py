"""The reader checks a results file against docs/results-format.md and names each violation."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from ndt.errors import ResultsFormatError
from ndt.io.store import JUMP_COLUMNS, Provenance, Results, read_results, write_results


def _valid(path: Path) -> Path:
    rng = np.random.default_rng(0)
    jumps = pd.DataFrame(
        {
            "layer": ["b"], "metric": ["stable_rank"], "step": [50], "prev_step": [40],
            "value_before": [1.0], "value_after": [2.0], "delta": [1.0], "score": [3.0],
            "p_value": [0.001], "q_value": [0.002], "methods": ["pelt"], "significant": [True],
        }
    )  # fmt: skip
    assert tuple(jumps.columns) == JUMP_COLUMNS
    write_results(
        path,
        Results(
            steps=np.arange(8) * 10,
            layers=["a", "b", "c"],
            metrics={"stable_rank": rng.random((8, 3)), "participation_ratio": rng.random((8, 3))},
            scalars={"loss": rng.random(8)},
            provenance=Provenance(
                model="mlp", metrics=("stable_rank", "participation_ratio"), layers=("a", "b", "c")
            ),
            jumps=jumps,
            jump_settings={"method": "pelt", "fdr": 0.05, "seed": 0, "detector": {"pen": 1.0}},
        ),
    )
    return path


def test_a_valid_file_reads_back(tmp_path):
    results = read_results(_valid(tmp_path / "r.h5"))
    assert results.layers == ["a", "b", "c"]
    assert results.metrics["stable_rank"].shape == (8, 3)
    assert results.jumps["significant"].tolist() == [True]


def _set_attr(name, key, value):
    return lambda f: f[name].attrs.__setitem__(key, value)


def _replace(name, data):
    def edit(f):
        del f[name]
        f.create_dataset(name, data=data)

    return edit


def _to_group(name):
    def edit(f):
        del f[name]
        f.create_group(name)

    return edit


CORRUPTIONS = {
    "text format_version": (
        _set_attr("/", "format_version", "1"),
        "format_version '1' (str); expected an integer",
    ),
    "float format_version": (
        _set_attr("/", "format_version", 1.5),
        "format_version 1.5 (float64); expected an integer",
    ),
    "zero format_version": (
        _set_attr("/", "format_version", 0),
        "has format version 0; this ndt reads versions 1 to",
    ),
    "other kind": (_set_attr("/", "kind", "other"), "attribute kind is 'other'"),
    "integer layer names": (_replace("layers", np.arange(3)), "/layers is int of shape (3,)"),
    "2-d layers": (
        _replace("layers", np.array([["a", "b", "c"]], dtype=object).astype("S")),
        "/layers is str of shape (1, 3)",
    ),
    "duplicate layers": (
        _replace("layers", np.array(["a", "a", "c"], dtype=h5py.string_dtype())),
        "/layers names a layer twice",
    ),
    "float steps": (_replace("steps", np.arange(8) * 1.5), "/steps is float of shape (8,)"),
    # Version 2 appends rows in any order (the last row of a step wins); version 1 may not.
    "unsorted steps (version 1)": (
        lambda f: (
            _set_attr("/", "format_version", 1)(f),
            _replace("steps", np.arange(8)[::-1])(f),
        ),
        "/steps is not strictly increasing",
    ),
    "missing steps": (lambda f: f.__delitem__("steps"), "missing dataset /steps"),
    "steps as group": (_to_group("steps"), "/steps is a group, not a dataset"),
    "missing layers": (lambda f: f.__delitem__("layers"), "missing dataset /layers"),
    "missing metrics": (lambda f: f.__delitem__("metrics"), "missing group /metrics"),
    "metric wrong shape": (
        _replace("metrics/stable_rank", np.zeros((3, 8))),
        "/metrics/stable_rank has shape (3, 8), expected (n_steps, n_layers) = (8, 3)",
    ),
    "metric of text": (
        _replace("metrics/stable_rank", np.array(["x"] * 3, dtype=h5py.string_dtype())),
        "/metrics/stable_rank is str",
    ),
    "metrics order not JSON": (
        _set_attr("metrics", "order", "[stable_rank"),
        "/metrics attribute 'order' is not valid JSON",
    ),
    "metrics order not a list": (
        _set_attr("metrics", "order", '{"a": 1}'),
        "'order' is not a JSON list of strings",
    ),
    "scalar wrong length": (_replace("scalars/loss", np.zeros(5)), "/scalars/loss has shape (5,)"),
    "jumps columns broken JSON": (
        _set_attr("jumps", "columns", "[layer"),
        "/jumps attribute 'columns' is not valid JSON",
    ),
    "jumps column missing": (
        lambda f: f["jumps"].__delitem__("step"),
        "/jumps/step is missing or not a dataset",
    ),
    "jumps step as text": (
        _replace("jumps/step", np.array(["50"], dtype=h5py.string_dtype())),
        "/jumps/step is str, expected int",
    ),
    "jumps columns differ in length": (
        _replace("jumps/q_value", np.zeros(3)),
        "/jumps columns differ in length ([1, 3])",
    ),
    "jumps fdr as text": (_set_attr("jumps", "fdr", "0.05"), "'fdr' is str, expected float"),
    "jumps fdr NaN": (_set_attr("jumps", "fdr", np.nan), "'fdr' is nan, expected a finite"),
    "jumps detector broken JSON": (
        _set_attr("jumps", "detector", "{pen"),
        "/jumps attribute 'detector' is not valid JSON",
    ),
    "provenance metrics broken JSON": (
        _set_attr("provenance", "metrics", "[stable"),
        "/provenance attribute 'metrics' is not valid JSON",
    ),
    "provenance kwargs a list": (
        _set_attr("provenance", "model_kwargs", "[1]"),
        "'model_kwargs' is not a JSON object",
    ),
    "provenance center as text": (
        _set_attr("provenance", "center", "yes"),
        "'center' is str, expected bool",
    ),
    "provenance layers as integer": (
        _set_attr("provenance", "layers", 3),
        "'layers' is int, not a JSON string",
    ),
    "provenance metric not stored": (
        lambda f: f["metrics"].__delitem__("participation_ratio"),
        "/metrics lacks participation_ratio (listed in /provenance)",
    ),
    "provenance layers differ": (
        _set_attr("provenance", "layers", '["a", "b"]'),
        "/provenance attribute 'layers' differs from /layers",
    ),
    "metadata as dataset": (_replace("metadata", np.zeros(2)), "/metadata is not a group"),
}


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_each_violation_is_named(tmp_path, name):
    path = _valid(tmp_path / "r.h5")
    edit, fragment = CORRUPTIONS[name]
    with h5py.File(path, "a") as f:
        edit(f)
    with pytest.raises(ResultsFormatError) as caught:
        read_results(path)
    message = str(caught.value)
    assert fragment in message
    assert str(path) in message
    assert "\n" not in message


def test_several_violations_are_listed_together(tmp_path):
    path = _valid(tmp_path / "r.h5")
    with h5py.File(path, "a") as f:
        _replace("layers", np.arange(3))(f)
        _set_attr("jumps", "fdr", "x")(f)
    with pytest.raises(ResultsFormatError, match=r"/layers is int.*; /jumps attribute 'fdr'"):
        read_results(path)


def test_an_empty_jumps_table_is_valid(tmp_path):
    path = _valid(tmp_path / "r.h5")
    results = read_results(path)
    results.jumps = pd.DataFrame({c: [] for c in JUMP_COLUMNS})
    write_results(path, results)
    assert len(read_results(path).jumps) == 0


def test_an_exported_file_without_provenance_is_valid(tmp_path):
    path = tmp_path / "r.h5"
    write_results(path, Results(steps=np.array([3]), layers=["x"], metrics={"m": np.ones((1, 1))}))
    with h5py.File(path) as f:
        assert "provenance" not in f and json.loads(f["metrics"].attrs["order"]) == ["m"]
    assert read_results(path).metrics["m"].tolist() == [[1.0]]
