"""The one-line confirmations ndtracker's export functions print, kept for its users."""

from __future__ import annotations

import sys


def notice(message: str, verbose: bool) -> None:
    """Write `message` to stdout when `verbose` (the reference library's behaviour)."""
    if verbose:
        sys.stdout.write(message + "\n")
