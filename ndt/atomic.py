"""Write a text output (CSV, JSON) atomically: a complete new file or the old one, never half.

The text goes to a temporary file beside the target, is flushed to disk, then renamed over
it (``os.replace``), so an interrupted or failed write (full disk, Ctrl-C, ``kill -9``)
leaves the previous file, or no file, but never a truncated or empty one.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path


def _mode_for(path: Path) -> int:
    """The existing file's permissions, or 0o666 less the umask for a new file."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def write_text_atomic(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Replace `path` with `text` atomically; the folder must exist.

    Returns:
        The path written.

    Raises:
        OSError: naming `path` when it is a folder, its folder is missing, read-only or
            full; no temporary file is left behind.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    try:
        handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    try:
        with os.fdopen(handle, "w", encoding=encoding, newline="") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(tmp_name, _mode_for(path))
        os.replace(tmp_name, path)
    except OSError as exc:
        Path(tmp_name).unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path
