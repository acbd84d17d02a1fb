"""One process-wide memory setting for long replay jobs (glibc only).

glibc's malloc serves a block by ``mmap`` (returned to the system when freed) only above a
threshold that it raises, up to 32 MiB, each time such a block is freed. After the first
few checkpoints, layer outputs of a few MiB are therefore carved out of heaps instead, and
with several threads allocating (reader, folder, solver) those heaps fragment: the peak
RSS of a long `ndt track` run creeps up for tens of checkpoints although nothing is kept.
A fixed threshold keeps the peak at the memory actually in use.
"""

from __future__ import annotations

import ctypes
import sys

_M_MMAP_THRESHOLD = -3  # from glibc's <malloc.h>


def return_large_blocks_to_os(threshold_bytes: int = 1 << 20) -> bool:
    """Serve every block of at least `threshold_bytes` by mmap, for the rest of the process.

    `ndt track` calls this before its loop; call it yourself when you drive
    `ndt.tracking.track` from Python over many checkpoints.

    Returns:
        True when the setting took effect; False where malloc is not glibc's (macOS,
        Windows, musl), where nothing changes.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, int(threshold_bytes)))
    except (OSError, AttributeError):
        return False
