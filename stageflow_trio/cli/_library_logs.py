"""Where the library's log records go while the command line or an example runs."""

from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["library_records"]

_FORMAT = "%(levelname)s %(name)s: %(message)s"


@contextmanager
def library_records(debug: bool) -> Iterator[None]:
    """Route the ``stageflow_trio`` loggers' records for one command or example.

    A process that configured logging (a handler on the root logger) gets them as it
    configured. Otherwise, with ``debug``, every record goes to stderr, tracebacks
    included; without, none: the command's own output already says what a run did
    (a failed stage, a cancellation), and Python's last-resort handler would print a
    failed stage's ERROR record, traceback and all, a second time.
    """
    if logging.getLogger().handlers:
        yield
        return
    library = logging.getLogger("stageflow_trio")
    level = library.level
    handler: logging.Handler
    if debug:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(_FORMAT))
        library.setLevel(logging.DEBUG)
    else:
        handler = logging.NullHandler()  # found, so the last-resort handler stays out
    library.addHandler(handler)
    try:
        yield
    finally:
        library.removeHandler(handler)
        library.setLevel(level)
