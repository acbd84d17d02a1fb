"""Fuzz: generated values of the numeric and text options of jumps, track, compare and probe."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz.conftest import check, examples

# Integers around every bound the options have, and far beyond them; large values stay
# above 10**7 so that a valid one never asks for hours of work.
INTEGERS = st.one_of(
    st.integers(-5, 60),
    st.sampled_from([19, 999, 2**31 - 1, 2**32 - 1, 2**32, 2**63 - 1, 2**63, -(2**63)]),
    st.integers(10**7, 10**30),
    st.integers(-(10**30), -6),
)
FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1.0, 0.5, 1e-300, 1e308, -1.0]),
)
TEXT = st.text(max_size=10)


def _value(kind: str):
    numbers = {"int": INTEGERS.map(str), "float": FLOATS.map(repr)}[kind]
    return st.one_of(numbers, numbers, TEXT)


def _options(spec: dict[str, str]):
    """A list of `--name value` pairs drawn from `spec` (name -> int, float or text)."""
    pairs = st.lists(st.sampled_from(sorted(spec)), unique=True, min_size=1, max_size=3).flatmap(
        lambda names: st.tuples(
            *[_value(spec[n]) if spec[n] != "text" else TEXT for n in names]
        ).map(lambda values: [x for pair in zip(names, values, strict=True) for x in pair])
    )
    return pairs


JUMPS = {"--fdr": "float", "--seed": "int", "--n-surrogates": "int", "--window-size": "int",
         "--z-threshold": "float", "--min-samples": "int", "--gradient-threshold": "float",
         "--penalty": "float", "--tolerance": "int", "--cost": "text", "--metric": "text",
         "--layer": "text", "--method": "text"}  # fmt: skip
TRACK = {"--threads": "int", "--dormant-tau": "float", "--every": "int", "--batch-size": "int",
         "--steps": "text", "--layers": "text", "--metric": "text"}  # fmt: skip
COMPARE = {"--step": "int", "--window": "int", "--before": "int", "--after": "int",
           "--dead-threshold": "float", "--clusters": "int", "--components": "int",
           "--top-k": "int", "--seed": "int", "--max-rows": "int", "--batch-size": "int"}  # fmt: skip


@settings(max_examples=examples(45))
@given(options=_options(JUMPS))
def test_jumps_options(base_run, run, tmp_path, options):
    path = tmp_path / "r.h5"
    path.write_bytes(base_run.results)
    check(run("jumps", path, "--json", *options), base_run.results, path)


@settings(max_examples=examples(35))
@given(options=_options(TRACK))
def test_track_options(base_run, run, tmp_path, options):
    path = tmp_path / "r.h5"
    path.write_bytes(base_run.results)
    threads = torch.get_num_threads()
    try:
        result = run("track", base_run.root / "ckpts", "--out", path, "-q", *options)
    finally:
        torch.set_num_threads(threads)
    check(result, base_run.results, path)


@settings(max_examples=examples(25))
@given(options=_options(COMPARE))
def test_compare_options(run, tmp_path, options):
    # No results file: values are checked when parsed (exit 2), valid ones reach the
    # library, which names the missing file (exit 1).
    result = run("compare", "--results", tmp_path / "missing.h5", *options)
    check(result)
    assert result.exit_code in (1, 2)


# Sizes a probe can have: small, or far beyond any machine's memory (a valid 8 GB probe
# would only test the allocator).
SIZES = st.one_of(st.integers(-5, 2000), st.integers(10**12, 10**30), st.integers(-(10**30), -6))
SIDES = st.one_of(st.integers(0, 16).map(str), st.integers(10**12, 10**30).map(str), TEXT)
SHAPES = st.lists(SIDES, min_size=1, max_size=3).map("x".join)


@settings(max_examples=examples(30))
@given(
    source=st.sampled_from(["--gaussian", "--tokens", "--digits"]),
    shape=st.one_of(SHAPES, SIZES.map(str)),
    extra=_options({"--vocab": "int", "--seed": "int"}),
)
def test_probe_options(run, tmp_path, source, shape, extra):
    target = tmp_path / "p.safetensors"
    target.unlink(missing_ok=True)
    result = run("probe", target, source, shape, *extra)
    check(result)
    assert target.exists() == (result.exit_code == 0)
