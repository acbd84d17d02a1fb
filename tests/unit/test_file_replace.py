"""Atomic replacement of results files: umask and existing modes are respected, symlinks are
written through, and temporary files of dead writers are removed under the lock."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from ndt.io.store import Results, read_results, write_results


def _results(steps) -> Results:
    steps = np.asarray(steps, dtype=np.int64)
    return Results(steps=steps, layers=["a"], metrics={"m": np.arange(len(steps))[:, None] * 1.0})


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_a_new_file_follows_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        write_results(tmp_path / "r.h5", _results([1]))
    finally:
        os.umask(previous)
    assert _mode(tmp_path / "r.h5") == 0o666 & ~umask


def test_a_rewrite_keeps_the_mode_the_user_set(tmp_path):
    out = tmp_path / "r.h5"
    write_results(out, _results([1]))
    os.chmod(out, 0o640)
    write_results(out, _results([1, 2]))
    assert _mode(out) == 0o640
    assert list(read_results(out).steps) == [1, 2]


def test_a_symlinked_out_is_written_through(tmp_path):
    (tmp_path / "store").mkdir()
    target = tmp_path / "store" / "real.h5"
    link = tmp_path / "results.h5"
    write_results(target, _results([1]))
    link.symlink_to(target)
    write_results(link, _results([1, 2, 3]))
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert list(read_results(target).steps) == [1, 2, 3]
    assert (tmp_path / "store" / "real.h5.lock").exists()  # one lock for every name of it
    assert not list(tmp_path.glob("*.tmp")) and not list((tmp_path / "store").glob(".*.tmp"))


def test_stale_temporary_files_are_removed_by_the_next_writer(tmp_path):
    out = tmp_path / "r.h5"
    stale = [tmp_path / ".r.h5.999999-0a1b2c3d.tmp", tmp_path / ".r.h5.k2j3h4ab.tmp"]
    unrelated = [tmp_path / ".other.h5.1-00000000.tmp", tmp_path / "r.h5.tmp"]
    for path in stale + unrelated:
        path.write_bytes(b"partial")
    write_results(out, _results([1]))
    assert [p.exists() for p in stale] == [False, False]
    assert [p.exists() for p in unrelated] == [True, True]


def test_a_failed_write_leaves_the_previous_file_and_no_temporary_file(tmp_path):
    out = tmp_path / "r.h5"
    write_results(out, _results([1]))
    before = out.read_bytes()
    broken = _results([1, 2])
    broken.metadata = {"bad": object()}  # h5py cannot store it
    with pytest.raises(TypeError):
        write_results(out, broken)
    assert out.read_bytes() == before
    assert not list(tmp_path.glob(".r.h5.*.tmp"))
