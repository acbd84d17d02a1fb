"""Replace a file atomically: write a temporary file beside it, then rename it over the file.

The temporary file is ``.NAME.<pid>-<random>.tmp`` in the same folder (a rename is atomic only
within one filesystem), so an interrupted writer leaves the previous complete file. A new file
gets the permissions the umask allows, as ``open()`` would give it; a rewrite keeps the mode
of the file it replaces; a symbolic link is written through (its target is replaced, the
link stays).
"""

from __future__ import annotations

import glob
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def resolve_target(path: str | Path) -> Path:
    """The file a write to `path` should replace: `path`, or where its symlinks lead."""
    path = Path(path)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def temp_pattern(path: str | Path) -> str:
    """The glob of the temporary files a writer of `path` makes (see the module docstring)."""
    target = resolve_target(path)
    return str(target.parent / f".{glob.escape(target.name)}.*.tmp")


@contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary file beside `path`'s target; rename it over the target on a
    clean exit, remove it on any exception.

    The caller writes the temporary file completely (and fsyncs it if it must survive a
    power cut) inside the block.
    """
    target = resolve_target(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
    # Created with 0o666 so that the kernel applies the umask, as for any new file.
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        try:
            os.chmod(tmp, os.stat(target).st_mode & 0o7777)
        except FileNotFoundError:
            pass
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_temp_files(path: str | Path) -> list[Path]:
    """Delete the temporary files that writers of `path` left behind; call it only while
    holding the file's write lock, when no live writer can own one.

    Returns:
        The files removed.
    """
    removed = []
    for name in glob.glob(temp_pattern(path)):
        try:
            os.unlink(name)
        except FileNotFoundError:
            continue
        removed.append(Path(name))
    return removed
