"""Process-wide memory settings for long replay jobs (Linux; no-ops elsewhere).

- Huge pages. A transformer forward pass allocates gigabytes of short-lived activations;
  with 4 KiB pages the kernel spends a tenth of the pass in page faults (0.5-1.2 s of
  system time per pass of the benchmark transformer, 330k-610k faults). torch backs buffers
  of 2 MiB and more with transparent huge pages when ``THP_MEM_ALLOC_ENABLE=1`` is set
  before its first allocation (pytorch/pytorch#115990), which cuts that to 44k faults.
- The mmap threshold. glibc's malloc serves a block by ``mmap`` (returned to the system
  when freed) only above a threshold that it raises, up to 32 MiB, each time such a block
  is freed. After the first few checkpoints, layer outputs of a few MiB are therefore
  carved out of heaps instead, and with several threads allocating (reader, folder,
  solver) those heaps fragment: the peak RSS of a long `ndt track` run creeps up for tens
  of checkpoints although nothing is kept. A fixed threshold keeps the peak at the memory
  actually in use.
"""

from __future__ import annotations

import ctypes
import os
import sys

_M_MMAP_THRESHOLD = -3  # from glibc's <malloc.h>


def return_large_blocks_to_os(threshold_bytes: int = 1 << 20) -> bool:
    """Serve every block of at least `threshold_bytes` by mmap, for the rest of the process.

    `ndt track` calls this before its loop; call it yourself when you drive
    `ndt.replay.track.track` from Python over many checkpoints.

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


def prefer_huge_pages() -> bool:
    """Ask torch to back its large CPU buffers with transparent huge pages.

    Only takes effect when called before torch is imported (torch reads the setting once);
    the `ndt` command calls it first thing. An explicit ``THP_MEM_ALLOC_ENABLE`` in the
    environment wins. The kernel ignores it where huge pages are disabled.

    Returns:
        True when torch will see the setting.
    """
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
    return "torch" not in sys.modules
