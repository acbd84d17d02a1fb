"""A console (and optional file) logger in one call, as the reference API's `setup_logger`."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

DEFAULT_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"


def setup_logger(
    name: str,
    level: int = logging.INFO,
    log_file: str | Path | None = None,
    format_string: str | None = None,
) -> logging.Logger:
    """Configure the logger `name` to write to stdout (and `log_file`) at `level`.

    Calling it again for the same name replaces its handlers instead of adding more.
    """
    logger = logging.getLogger(name)
    logger.setLevel(level)
    for handler in list(logger.handlers):
        handler.close()
        logger.removeHandler(handler)
    formatter = logging.Formatter(format_string or DEFAULT_FORMAT)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if log_file is not None:
        handlers.append(logging.FileHandler(log_file))
    for handler in handlers:
        handler.setLevel(level)
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    return logger
