"""Fuzz: generated safetensors files (header length, JSON, dtypes, shapes, offsets, metadata
step, data) as a new checkpoint of a tracked run and as its probe, through `ndt track`."""

from __future__ import annotations

import json
import shutil
import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file

from ndt.io.store import read_results
from tests.fuzz.conftest import check, examples

_ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
             "U8": 1, "BOOL": 1}  # fmt: skip
DTYPES = st.one_of(
    st.sampled_from(sorted(_ITEMSIZE) + ["F8_E4M3", "C64", "X"]),
    st.integers(-1, 9),
    st.none(),
)
SIDES = st.one_of(st.integers(0, 40), st.integers(-3, -1), st.integers(2**31, 2**64))


@st.composite
def safetensors_files(draw, tensors: dict[str, tuple[str, list[int], bytes]]) -> bytes:
    """A safetensors file derived from real `tensors` (name -> dtype, shape, bytes): each
    part is kept or replaced by a generated value, so most files are nearly valid."""
    rate = draw(st.sampled_from([0, 1, 3, 5]), label="mutations per ten choices")

    def mutate() -> bool:
        return draw(st.integers(0, 9)) < rate

    names = sorted(tensors)
    if mutate():
        names = draw(st.lists(st.sampled_from(names), unique=True, max_size=len(names)))
    if mutate():
        names += draw(st.lists(st.text(max_size=8), max_size=2))
    header: dict[str, object] = {}
    offset, data = 0, b""
    for name in names:
        dtype, shape, raw = tensors.get(name, ("F32", [2], bytes(8)))
        if mutate():
            dtype = draw(DTYPES)
        if mutate():
            shape = draw(st.one_of(st.lists(SIDES, max_size=3), st.text(max_size=3)))
        size = len(raw)
        start, stop = offset, offset + size
        if mutate():
            start, stop = draw(st.integers(-2, 2 * offset + 8)), draw(st.integers(-2, 2**40))
        entry = {"dtype": dtype, "shape": shape, "data_offsets": [start, stop]}
        if mutate() and mutate():
            del entry[draw(st.sampled_from(sorted(entry)))]
        header[name] = entry
        offset, data = offset + size, data + raw
    metadata = None
    if mutate():
        metadata = draw(
            st.one_of(
                st.fixed_dictionaries(
                    {"step": st.one_of(st.integers(-(2**70), 2**70).map(str), st.text(max_size=5))}
                ),
                st.integers(),
            )
        )
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    if mutate() and mutate():
        text = draw(st.binary(max_size=40))
    length = len(text)
    if mutate():
        length = draw(st.one_of(st.integers(0, length + 64), st.integers(0, 2**64 - 1)))
    if mutate():
        data = data[: draw(st.integers(0, len(data)))] if data else draw(st.binary(max_size=16))
    return struct.pack("<Q", length) + text + data


def _real(path) -> dict[str, tuple[str, list[int], bytes]]:
    codes = {"float32": "F32", "int64": "I64", "float64": "F64"}
    return {
        name: (codes[str(t.dtype).removeprefix("torch.")], list(t.shape), t.numpy().tobytes())
        for name, t in load_file(path).items()
    }


def _rows(results) -> dict[int, np.ndarray]:
    stacked = np.stack([results.metrics[m] for m in sorted(results.metrics)], axis=1)
    return {int(step): stacked[index] for index, step in enumerate(results.steps)}


@settings(max_examples=examples(70))
@given(data=st.data())
def test_generated_checkpoint_in_a_tracked_run(base_run, run, tmp_path, data):
    ckpts = tmp_path / "ckpts"
    if not ckpts.exists():
        shutil.copytree(base_run.root / "ckpts", ckpts)
    first = sorted(ckpts.glob("*.safetensors"))[0]
    new = ckpts / "step_00000999.safetensors"
    new.write_bytes(data.draw(safetensors_files(_real(first)), label="checkpoint"))
    out = tmp_path / "r.h5"
    out.write_bytes(base_run.results)
    previous = _rows(read_results(out))
    probe = base_run.root / "probe.safetensors"
    result = run("track", ckpts, "--probe", probe, "--out", out, "-q")
    new.unlink()
    check(result)
    if result.exit_code != 0 and out.read_bytes() != base_run.results:
        # Only a checkpoint that could not be read may change the file: it is recorded as
        # a failure to retry, and every row computed before is kept as it was.
        assert "(the next run retries it)" in result.stderr, result.stderr
    now = _rows(read_results(out))
    for step, values in previous.items():
        np.testing.assert_array_equal(now[step], values)


@settings(max_examples=examples(60))
@given(data=st.data(), extend=st.booleans())
def test_generated_probe(base_run, run, tmp_path, data, extend):
    probe = tmp_path / "probe.safetensors"
    probe.write_bytes(data.draw(safetensors_files(_real(base_run.root / "probe.safetensors"))))
    out = tmp_path / "r.h5"
    out.unlink(missing_ok=True)
    if extend:  # a probe other than the recorded one must leave the results file alone
        out.write_bytes(base_run.results)
    before = out.read_bytes() if extend else None
    result = run("track", base_run.root / "ckpts", "--probe", probe, "--out", out, "-q")
    check(result, before, out)
    if result.exit_code == 0:
        assert len(read_results(out).steps) == 12
