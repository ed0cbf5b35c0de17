"""Capturing log records of one scenario on each library, for the log-record differentials.

``capture(side_name, body)`` runs ``body(Side(side_name))`` (the reference under asyncio,
ours under trio on an autojump clock) with a handler on the root logger at ``level``, and
returns every record but the event loops' own. ``ours_name`` maps a reference logger name
to ours; ``extra_types`` is a record's ``extra``, key -> type name.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio
import trio.testing

from tests.differential.harness import Side

__all__ = ["Body", "Capture", "Record", "capture", "extra_types", "ours_name", "record_shape"]

Body = Callable[[Side], Awaitable[Any]]
# A record as the differentials compare it: see record_shape.
Record = tuple[str, str, str, dict[str, str], bool]

# The reference's logger names that are not ``stageflow.<x>`` (docs/parity.md "Logger names").
REF_LOGGERS = {
    "pipeline_dag": "stageflow_trio.dag",
    "interceptors": "stageflow_trio.interceptors",
    "stage_interceptor": "stageflow_trio.stage_interceptor",
    "stage_metrics": "stageflow_trio.stage_metrics",
    "auth_interceptor": "stageflow_trio.auth_interceptor",
}
# Attributes every LogRecord has: what is left is the call's ``extra``.
STANDARD_ATTRS = frozenset(vars(logging.LogRecord("n", logging.INFO, "p", 0, "m", (), None))) | {
    "message",
    "asctime",
    "taskName",
}
# Loggers of the event loops, not of the libraries.
LOOP_LOGGERS = ("asyncio", "trio")


class Capture(logging.Handler):
    """Keeps every record it is handed."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def ours_name(name: str) -> str:
    """The stageflow_trio logger a reference logger's records belong to."""
    if name in REF_LOGGERS:
        return REF_LOGGERS[name]
    if name.startswith("stageflow."):
        return "stageflow_trio." + name.removeprefix("stageflow.")
    return name


def extra_types(record: logging.LogRecord) -> dict[str, str]:
    """The record's ``extra``: key -> the value's type name."""
    return {
        key: type(value).__name__
        for key, value in vars(record).items()
        if key not in STANDARD_ATTRS
    }


def capture(side_name: str, body: Body, level: int = logging.DEBUG) -> list[logging.LogRecord]:
    """The records ``body`` leaves on side ``"ref"`` or ``"ours"`` (its exception is its outcome)."""
    handler = Capture()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(level)
    side = Side(side_name)

    async def main() -> object:
        try:
            return await body(side)
        except Exception as exc:  # the scenario's outcome
            return exc

    try:
        if side_name == "ref":
            asyncio.run(main())
        else:
            trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    return [r for r in handler.records if not r.name.startswith(LOOP_LOGGERS)]


def record_shape(record: logging.LogRecord, message: Callable[[str], str] = str) -> Record:
    """A record as compared: logger (ours), level, ``message(text)``, extra key -> type, exc_info.

    The last item says whether a traceback is attached: the reference's run-level
    record of a raised stage passes ``exc_info=True`` outside an except block, which
    attaches ``(None, None, None)``, no traceback; ours passes none.
    """
    return (
        ours_name(record.name),
        record.levelname,
        message(record.getMessage()),
        extra_types(record),
        bool(record.exc_info and record.exc_info[0] is not None),
    )
