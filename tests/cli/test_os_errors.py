"""OS errors and Ctrl-C end as one line: `Error: FILE: cause` (exit 1) or `Interrupted.`
(exit 130), never a traceback, and the previous results file stays byte-identical.

Full and read-only disks are simulated two ways: by making the system call fail with the
real errno (always), and with real tmpfs mounts where the test may mount them (root)."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ndt.errors import CheckpointError, NdtError, ResultsFormatError
from ndt.io.store import Results, write_results

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def _results(path: Path) -> Path:
    rng = np.random.default_rng(0)
    values = 3 + 0.05 * rng.standard_normal((30, 2))
    values[15:, 1] += 1.0
    write_results(
        path, Results(steps=np.arange(30) * 10, layers=["a", "b"], metrics={"stable_rank": values})
    )
    return path


def _fail(code: int):
    def failing(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    return failing


def test_ndt_error_is_a_value_error():
    assert issubclass(NdtError, ValueError)
    with pytest.raises(ValueError, match="bad"):
        raise CheckpointError("bad")
    with pytest.raises(ValueError):
        raise ResultsFormatError("bad")


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EIO])
def test_jumps_write_failure_names_the_file_and_keeps_it(
    ndt, one_error, tmp_path, monkeypatch, code
):
    path = _results(tmp_path / "r.h5")
    before = path.read_bytes()
    monkeypatch.setattr(os, "fsync", _fail(code))
    result = ndt("jumps", path)
    one_error(result, f"{path}: {os.strerror(code)}")
    assert path.read_bytes() == before
    # No temporary file left; the writers' lock file (results.h5.lock) stays by design.
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".lock") == ["r.h5"]


def test_read_only_folder_at_the_temporary_file(ndt, one_error, tmp_path, monkeypatch):
    path = _results(tmp_path / "r.h5")
    before = path.read_bytes()
    # The rewrite's temporary file beside the results (ndt.io.file_replace.replacing).
    real_open = os.open

    def refuse_temporary(name, *args, **kwargs):
        if str(name).endswith(".tmp"):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(name))
        return real_open(name, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse_temporary)
    one_error(ndt("jumps", path), f"{path}: Read-only file system")
    assert path.read_bytes() == before


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_full_disk_leaves_no_partial_file(ndt, one_error, tmp_path, monkeypatch, fmt):
    path = _results(tmp_path / "r.h5")
    target = tmp_path / f"out.{fmt}"
    monkeypatch.setattr(os, "fsync", _fail(errno.ENOSPC))
    one_error(ndt("export", path, "-o", target), f"{target}: No space left on device")
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".lock") == ["r.h5"]


def test_export_replaces_an_old_output_only_when_complete(ndt, one_error, tmp_path, monkeypatch):
    path = _results(tmp_path / "r.h5")
    target = tmp_path / "out.csv"
    target.write_text("old\n")
    monkeypatch.setattr(os, "fsync", _fail(errno.ENOSPC))
    one_error(ndt("export", path, "-o", target), str(target))
    assert target.read_text() == "old\n"
    monkeypatch.undo()
    assert ndt("export", path, "-o", target).exit_code == 0
    assert target.read_text().splitlines()[0] == "step,layer,stable_rank"
    assert len(target.read_text().splitlines()) == 1 + 30 * 2


def test_export_to_a_folder_is_one_error(ndt, one_error, tmp_path):
    path = _results(tmp_path / "r.h5")
    one_error(ndt("export", path, "-o", "/"), "/: Is a directory")
    one_error(ndt("export", path, "-o", tmp_path), f"{tmp_path}: Is a directory")


def test_jumps_csv_in_a_missing_folder_leaves_the_results_file(ndt, one_error, tmp_path):
    path = _results(tmp_path / "r.h5")
    before = path.read_bytes()
    target = tmp_path / "missing" / "x.csv"
    one_error(ndt("jumps", path, "--csv", target), f"{target}: No such file or directory")
    assert path.read_bytes() == before
    assert not target.parent.exists()


def test_jumps_csv_is_complete_when_written(ndt, one_error, tmp_path):
    path = _results(tmp_path / "r.h5")
    target = tmp_path / "j.csv"
    result = ndt("jumps", path, "--csv", target, "--all")
    assert result.exit_code == 0, result.output
    lines = target.read_text().splitlines()
    assert lines[0].startswith("layer,metric,step,prev_step")
    assert len(lines) >= 2


def test_results_file_that_is_a_folder(ndt, one_error, tmp_path):
    usage = ndt("jumps", tmp_path)  # Typer's dir_okay=False: a usage error
    assert usage.exit_code == 2 and "directory" in usage.stderr
    assert "Traceback" not in usage.output
    one_error(ndt("export", tmp_path), f"{tmp_path} is a folder")


def test_ctrl_c_in_a_command_is_one_line_and_exit_130(ndt, one_error, tmp_path, monkeypatch):
    from ndt.io import store

    path = _results(tmp_path / "r.h5")
    before = path.read_bytes()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    # ndt_cli.jumps imports write_jumps when the command runs (a fast --help).
    monkeypatch.setattr(store, "write_jumps", interrupted)
    result = ndt("jumps", path)
    assert result.exit_code == 130
    assert result.stderr.strip() == "Interrupted."
    assert "Traceback" not in result.output
    assert path.read_bytes() == before


def test_ctrl_c_during_an_atomic_write_leaves_no_temporary_file(
    ndt, one_error, tmp_path, monkeypatch
):
    path = _results(tmp_path / "r.h5")
    before = path.read_bytes()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    assert ndt("jumps", path).exit_code == 130
    assert ndt("export", path, "-o", tmp_path / "x.csv").exit_code == 130
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".lock") == ["r.h5"]


# Real file systems: a 16 KiB tmpfs (full after the first results file) and a read-only one.


@pytest.fixture
def mounts(tmp_path):
    full, ro = tmp_path / "full", tmp_path / "ro"
    full.mkdir()
    ro.mkdir()
    try:
        for options, where in (("size=64k", full), ("ro,size=64k", ro)):
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                check=True,
                capture_output=True,
            )
    except (OSError, subprocess.CalledProcessError):
        for where in (full, ro):
            subprocess.run(["umount", str(where)], capture_output=True)
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield full, ro
    for where in (full, ro):
        subprocess.run(["umount", str(where)], capture_output=True)


def test_real_full_and_read_only_disks(ndt, one_error, mounts, tmp_path):
    full, ro = mounts
    ckpts = FIXTURES / "digits-mlp" / "ckpts"
    result = ndt("track", ckpts, "--out", ro / "r.h5", "-q")
    one_error(result, f"{ro / 'r.h5'}: Read-only file system")
    result = ndt("track", ckpts, "--out", full / "r.h5", "-q")
    one_error(result, f"{full / 'r.h5'}: No space left on device")
    # What the full disk holds is a complete results file, and it survives a failed jumps.
    source = _results(tmp_path / "r.h5")
    (full / "r.h5").unlink(missing_ok=True)
    shutil.copy(source, full / "r.h5")
    filler = full / "filler"
    with open(filler, "wb") as stream:  # fill what is left
        try:
            stream.write(b"\0" * (1 << 20))
        except OSError:
            pass
    before = (full / "r.h5").read_bytes()
    one_error(ndt("jumps", full / "r.h5"), f"{full / 'r.h5'}: No space left on device")
    assert (full / "r.h5").read_bytes() == before
    one_error(
        ndt("export", full / "r.h5", "-o", full / "x.csv"), f"{full / 'x.csv'}: No space left"
    )
    assert sorted(p.name for p in full.iterdir() if p.suffix != ".lock") == ["filler", "r.h5"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_results_file(ndt, one_error, tmp_path):
    path = _results(tmp_path / "r.h5")
    path.chmod(0)
    try:
        one_error(ndt("summary", path), f"{path}: Permission denied")
    finally:
        path.chmod(0o600)


def test_h5py_permission_error_names_the_file(ndt, one_error, tmp_path, monkeypatch):
    import h5py

    path = _results(tmp_path / "r.h5")

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Unable to synchronously open file (errno = 13)")

    monkeypatch.setattr(h5py, "File", denied)
    one_error(ndt("summary", path), f"{path}: Permission denied")


def test_ctrl_c_outside_the_command_still_says_interrupted(monkeypatch, capsys):
    """Typer turns a Ctrl-C it catches itself (before the command runs) into exit code 130
    without a word; the entry point adds the line."""
    import sys

    from typer import _click  # the Click that Typer vendors

    import ndt_cli.main

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ndt_cli.main, "prefer_huge_pages", lambda: False)
    monkeypatch.setattr(_click.core.Context, "invoke", interrupted)
    monkeypatch.setattr(sys, "argv", ["ndt", "summary", "results.h5"])
    with pytest.raises(SystemExit) as caught:
        ndt_cli.main.main()
    assert caught.value.code == 130
    captured = capsys.readouterr()
    assert captured.err.strip() == "Interrupted."
    assert "Traceback" not in captured.err + captured.out
