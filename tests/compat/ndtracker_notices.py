"""pytest plugin: show ndt's export confirmations on stdout, where ndtracker printed them.

ndt's export functions and `save_config` log their one-line confirmation at INFO (loggers
``ndt.export`` and ``ndt.utils``) instead of printing it: the library never prints. Seven
tests of ndtracker's suite read that line from captured stdout (``capsys``), so
`run_ndtracker_suite.py` loads this plugin with ``-p ndtracker_notices``: it does what an
application that wants the lines on its console does, a logging handler on those loggers
that writes each record's message to ``sys.stdout``, looked up when the record is emitted
(pytest replaces it per test). The library itself is unchanged.
"""

from __future__ import annotations

import logging
import sys

LOGGERS = ("ndt.export", "ndt.utils")


class CurrentStdoutHandler(logging.Handler):
    """Write each record's message to whatever ``sys.stdout`` is at that moment."""

    def emit(self, record: logging.LogRecord) -> None:
        sys.stdout.write(self.format(record) + "\n")


def pytest_configure(config: object) -> None:
    handler = CurrentStdoutHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
