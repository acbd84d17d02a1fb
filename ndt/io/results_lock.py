"""One writer at a time: the lock file beside a results file.

Every writer of a results file (``ndt track``, the ``/jumps`` write of ``ndt jumps``,
`export_to_hdf5`) holds ``NAME.lock`` for its whole read-modify-write, so that no writer
replaces the file with a copy that lacks another's rows. Writers hold it only while they
read and write the file (well under a second), and ``ndt track`` re-reads the file under it
before each write, so `ndt jumps` may run while `ndt track` does and both outcomes are kept.
Readers never take it: each write renames a complete file into place.

A writer that finds the lock held waits up to `GRACE_SECONDS` (a write in progress) or
``--wait SECONDS``, then fails with one line naming the holder's pid, which the holder
writes into the lock file. The lock is `filelock.FileLock` (``flock`` on Unix), so the
kernel releases it when its holder dies, however it dies.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from ndt.errors import NdtError, describe
from ndt.io.file_replace import remove_temp_files, resolve_target

#: How long any writer waits for a write in progress before it gives up (without --wait).
GRACE_SECONDS = 2.0


class ResultsLockedError(NdtError):
    """Another process is writing the results file."""


def lock_path(path: str | Path) -> Path:
    """The lock file of the results file `path` (beside the file its symlinks lead to)."""
    target = resolve_target(path)
    return target.with_name(target.name + ".lock")


def _holder(lock_file: Path) -> str:
    try:
        text = lock_file.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        text = ""
    return f" (pid {text})" if text.isdigit() else ""


@contextmanager
def results_lock(path: str | Path, wait: float = 0.0) -> Iterator[None]:
    """Hold the write lock of the results file `path` for the block.

    The same thread may nest it (a writer that calls another writer); other threads and
    processes wait. On the outermost acquisition it records this process's pid in the lock
    file and removes temporary files of writers that died (`ndt.io.file_replace`).

    Args:
        path: The results file (it need not exist yet).
        wait: Seconds to wait for another writer (never less than `GRACE_SECONDS`).

    Raises:
        ResultsLockedError: if another writer holds the lock for longer than that.
        NdtError: if `wait` is negative or not finite, or the lock file cannot be created.
    """
    if not (isinstance(wait, (int, float)) and math.isfinite(wait) and wait >= 0):
        raise NdtError(f"--wait must be a number of seconds >= 0, got {wait}")
    lock_file = lock_path(path)
    try:
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(lock_file, is_singleton=True)
        lock.acquire(timeout=max(float(wait), GRACE_SECONDS))
    except Timeout:
        raise ResultsLockedError(
            f"{path} is being written by another ndt process{_holder(lock_file)}; wait for "
            "it or pass --wait SECONDS"
        ) from None
    except OSError as exc:
        # Named as the results file: the lock beside it is where writing it fails first.
        reason = exc.strerror or describe(exc)
        raise NdtError(f"{path}: {reason} (cannot create its lock file {lock_file})") from None
    try:
        if lock.lock_counter == 1:
            _record_pid(lock_file)
            remove_temp_files(path)
        yield
    finally:
        lock.release()


def _record_pid(lock_file: Path) -> None:
    # Best effort: the pid only makes the message of a waiting writer more helpful.
    try:
        fd = os.open(lock_file, os.O_WRONLY)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        finally:
            os.close(fd)
    except OSError:
        pass
