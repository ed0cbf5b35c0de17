"""Notes that name the usual mistake behind a stage's failure (failure paths only).

An asyncio call left in a stage, a sync ``def`` stage or a missing ``await`` fail
with a message from Python or asyncio that does not say what to change. The
engine adds one of these as a note (:meth:`BaseException.add_note`) to the
stage's own exception where it already handles the failure, so the type and the
message stay those the reference gives, and a run that succeeds pays nothing.
"""

from __future__ import annotations

import inspect
import os
import sys
from typing import TYPE_CHECKING

from stageflow_trio._args import causes, error_text

if TYPE_CHECKING:
    import logging

ASYNCIO_NOTE = (
    "stageflow_trio runs stages (and interceptors, tools, sinks) under trio, where asyncio"
    " calls (asyncio.sleep, create_task, wait_for, Queue, Event, get_running_loop, an"
    " asyncio-only client) find no event loop: use trio's (trio.sleep, a nursery,"
    " trio.fail_after, memory channels, trio.Event) or a client that supports trio (anyio,"
    " httpx); see docs/migration.md"
)
SYNC_STAGE_NOTE = (
    "a stage must be an async function (or a class whose execute() is async): this one"
    " returned a value the engine cannot await; write it with 'async def'"
)
MISSING_AWAIT_NOTE = (
    "the stage returned a coroutine, not its result: an 'await' is missing"
    " (return await ..., not return ...)"
)
RESULT_NOTE = "a stage returns a StageOutput, a dict (its output data) or None"
NOT_UNDER_TRIO_NOTE = (
    "stageflow_trio runs under trio: start the program with trio.run(main) (pass the"
    " function, not main()), not asyncio.run; see docs/migration.md"
)

_ENGINE_DIR = os.path.dirname(__file__)  # as the co_filename of its modules
# Where the engine calls and awaits a stage: its own modules, and the runners
# that call a stage class's or instance's execute().
_RUNNER_FILE = os.path.join(os.path.dirname(_ENGINE_DIR), "pipeline", "spec.py")


def _innermost_file(exc: BaseException) -> str | None:
    tb = exc.__traceback__
    if tb is None:
        return None
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code.co_filename


def from_asyncio(exc: BaseException) -> bool:
    """Whether ``exc`` is what an asyncio call gives when no asyncio loop runs."""
    if isinstance(exc, RuntimeError) and error_text(exc) == "no running event loop":
        return True  # asyncio's own text, also when a client library made the call
    if isinstance(exc, TypeError) and "unrecognized yield message" in error_text(exc):
        return True  # trio's, for an asyncio future awaited in a trio task
    asyncio = sys.modules.get("asyncio")
    if asyncio is None or asyncio._get_running_loop() is not None:
        return False  # never imported, or a loop runs (trio-asyncio): a real asyncio error
    where = _innermost_file(exc)
    home = getattr(asyncio, "__file__", None)
    return (
        where is not None
        and home is not None
        and where.startswith(os.path.join(os.path.dirname(home), ""))
    )


def asyncio_note(exc: BaseException) -> str | None:
    """:data:`ASYNCIO_NOTE` when ``exc`` (or, for a group, one of its leaves: a task of the
    failing code's own nursery) is what an asyncio call gives under trio, else None."""
    if from_asyncio(exc):
        return ASYNCIO_NOTE
    if isinstance(exc, BaseExceptionGroup) and exc.subgroup(from_asyncio) is not None:
        return ASYNCIO_NOTE
    return None


def asyncio_cause_note(exc: BaseException) -> str | None:
    """:func:`asyncio_note` of ``exc`` or of an error it was raised from (``raise ... from``,
    as ``ToolExecutionError`` wraps a handler's error), else None."""
    for current in causes(exc, 8):  # a chain deeper than this is not a wrapper's
        note = asyncio_note(current)
        if note is not None:
            return note
    return None


def stage_failure_note(exc: BaseException) -> str | None:
    """The note for a stage that raised ``exc``, or None when no usual mistake fits."""
    note = asyncio_note(exc)
    if note is not None or isinstance(exc, BaseExceptionGroup):
        return note
    if isinstance(exc, TypeError):
        where = _innermost_file(exc)
        if where is None or (os.path.dirname(where) != _ENGINE_DIR and where != _RUNNER_FILE):
            return None  # raised in the stage's own code: its own error
        text = error_text(exc)
        if "can't be used in 'await' expression" in text:
            return SYNC_STAGE_NOTE
    return None


def unsupported_result(name: str, raw: object) -> TypeError:
    """The TypeError for stage ``name`` returning ``raw``, with the note of its mistake
    (a missing ``await`` when ``raw`` is a coroutine), for both graphs to raise."""
    error = TypeError(f"Stage {name} returned unsupported result type {type(raw)}")
    error.add_note(MISSING_AWAIT_NOTE if inspect.iscoroutine(raw) else RESULT_NOTE)
    return error


def add_stage_failure_note(exc: BaseException) -> None:
    """Add :func:`stage_failure_note`'s note to ``exc``, once."""
    note = stage_failure_note(exc)
    if note is not None and note not in getattr(exc, "__notes__", ()):
        exc.add_note(note)


_STAGE_NOTES = frozenset({ASYNCIO_NOTE, SYNC_STAGE_NOTE, MISSING_AWAIT_NOTE, RESULT_NOTE})


def log_stage_mistake(logger: logging.Logger, stage: str, exc: Exception) -> None:
    """Log the note of the usual mistake behind ``exc`` (stage ``stage``'s error), if one fits.

    For a stage whose error becomes a failed result holding only its text (the legacy
    ``StageGraph``, ``run_with_interceptors``): the note also goes on ``exc``, as the
    unified graph puts it. One WARNING record, ``Stage s failed: <error>; <note>``;
    nothing for any other error.
    """
    notes = getattr(exc, "__notes__", None)
    if notes is not None and not isinstance(notes, list):
        return  # add_note would raise: not this engine's to repair
    add_stage_failure_note(exc)
    for note in getattr(exc, "__notes__", ()):
        if isinstance(note, str) and note in _STAGE_NOTES:  # here, or by unsupported_result
            text = error_text(exc)
            logger.warning(
                "Stage %s failed: %s; %s",
                stage,
                text,
                note,
                extra={"event": "stage_mistake", "stage": stage, "error": text},
            )
            return


def note_not_under_trio(exc: RuntimeError) -> None:
    """Note on trio's "must be called from async context", raised as a run starts."""
    exc.add_note(NOT_UNDER_TRIO_NOTE)
