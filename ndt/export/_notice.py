"""The one-line confirmations of ndtracker's export functions, as log records.

ndtracker printed them; ndt's library never prints, so they are INFO records of the
``ndt.export`` logger (``ndt.utils`` for `save_config`), silent unless the application
configures logging, e.g. ``logging.basicConfig(level=logging.INFO)``.
"""

from __future__ import annotations

import logging


def notice(message: str, verbose: bool, *, logger: str = "ndt.export") -> None:
    """Log `message` at INFO on `logger` when `verbose` (ndtracker printed it)."""
    if verbose:
        logging.getLogger(logger).info(message)
