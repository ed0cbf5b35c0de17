"""Where the library's log records go while the command line or an example runs."""

from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["library_records"]

_FORMAT = "%(levelname)s %(name)s: %(message)s"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to ``sys.stderr`` as it is at each record, not as it was when made.

    The live view of ``run`` replaces ``sys.stderr`` while it draws, so that a record
    is written above its block rather than under the next redraw.
    """

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> Any:
        return sys.stderr


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
        handler = _StderrHandler()
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
