"""Logging helpers shared by the library adapters."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def quiet(logger_name: str) -> Iterator[None]:
    """Drop a library's INFO chatter (one line per trial) while inside; restore the level after.

    Scoped rather than global so a program that set the library's verbosity keeps it.
    """
    logger = logging.getLogger(logger_name)
    old = logger.level
    if logger.getEffectiveLevel() < logging.WARNING:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        if logger.level != old:
            logger.setLevel(old)
