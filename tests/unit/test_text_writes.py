"""write_text_atomic: the old file or the complete new one, never a partial one."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from ndt.io.file_replace import write_text_atomic


def test_writes_and_replaces(tmp_path):
    path = tmp_path / "a.csv"
    assert write_text_atomic(path, "x,y\n1,2\n") == path
    assert path.read_text() == "x,y\n1,2\n"
    write_text_atomic(path, "z\n")
    assert path.read_text() == "z\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv"]


def test_new_file_follows_the_umask_and_a_rewrite_keeps_the_mode(tmp_path):
    old = os.umask(0o027)
    try:
        path = write_text_atomic(tmp_path / "a.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    path.chmod(0o604)
    write_text_atomic(path, "[]")
    assert stat.S_IMODE(path.stat().st_mode) == 0o604


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "a.csv"
    path.write_text("old\n")

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError) as caught:
        write_text_atomic(path, "new\n")
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(path)
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv"]


def test_a_folder_or_a_missing_folder_is_an_os_error_naming_the_path(tmp_path):
    with pytest.raises(IsADirectoryError) as caught:
        write_text_atomic(tmp_path, "x")
    assert caught.value.filename == str(tmp_path)
    missing = tmp_path / "no" / "a.csv"
    with pytest.raises(FileNotFoundError) as caught:
        write_text_atomic(missing, "x")
    assert caught.value.filename == str(missing)
    assert list(tmp_path.iterdir()) == []
