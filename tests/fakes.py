"""Fakes shared by the tests: event sinks that are slow, broken, falsy or trio-free, a
stage that counts its calls, an analytics exporter, streaming event emitters, a context
builder for golden payloads, and the reference.

The public fakes (``RecordingEventSink`` and the context builders) live in
:mod:`stageflow_trio.testing`; these are the ones only this test suite needs.
"""

from __future__ import annotations

import importlib
import logging
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
import trio

from stageflow_trio._time import utc_now
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.helpers.analytics import AnalyticsEvent
from stageflow_trio.stages.result import StageResult
from stageflow_trio.testing import RecordingEventSink, create_test_pipeline_context

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType

    from stageflow_trio.stages.context import PipelineContext


def extra(record: logging.LogRecord, name: str) -> Any:
    """A field the logging call put on ``record`` through ``extra=``."""
    return record.__dict__[name]


def extras(record: logging.LogRecord, *names: str) -> tuple[Any, ...]:
    """Several ``extra=`` fields of ``record``, in the order named."""
    return tuple(record.__dict__[name] for name in names)


# --- event sinks ----------------------------------------------------------------------


def payload(data: dict[str, Any] | None) -> dict[str, Any]:
    """A recorded event's payload, which the test expects to be there (fails on None)."""
    assert data is not None
    return data


class SlowSink(RecordingEventSink):
    """Records each event after ``delay`` seconds of (virtual) time, and when it arrived."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.times: list[float] = []

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        await trio.sleep(self.delay)
        self.events.append((type, data))
        self.times.append(trio.current_time())


class FailingSink(RecordingEventSink):
    """A sink that is down: ``emit`` and ``try_emit`` raise ``error(message)``.

    Given event types, only those fail and every other event is recorded.
    """

    def __init__(
        self, *failing: str, error: type[Exception] = RuntimeError, message: str = "sink down"
    ) -> None:
        super().__init__()
        self.failing = frozenset(failing)
        self.error = error
        self.message = message

    def _check(self, event_type: str) -> None:
        if not self.failing or event_type in self.failing:
            raise self.error(self.message)

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        self._check(type)
        await super().emit(type=type, data=data)

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        self._check(type)
        super().try_emit(type=type, data=data)


class EmptyIsFalsy(RecordingEventSink):
    """A recording sink that is falsy until it holds an event (code must test ``is None``)."""

    def __len__(self) -> int:
        return len(self.events)


class TryEmitOnlySink:
    """Has ``try_emit`` but no ``emit``: records what arrives through ``try_emit``."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any] | None]] = []

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        self.events.append((type, data))


class RefRecorder:
    """A recording sink that never calls trio, so the reference's asyncio code can use it too.

    Each payload is copied (shallowly) on arrival, so what the emitter does to
    its dict afterwards does not show in ``events``.
    """

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any] | None]] = []

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        self.try_emit(type=type, data=data)

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        self.events.append((type, dict(data) if data is not None else None))


# --- stages ---------------------------------------------------------------------------


class NoopStage:
    """A stage class for graphs that are built, never run: returns an empty ok output."""

    async def execute(self, ctx: PipelineContext) -> StageOutput:
        return StageOutput.ok()


class CountingStage:
    """A stage that counts its calls; optionally waits, fails, or returns a failed result."""

    def __init__(
        self,
        name: str = "charge",
        *,
        delay: float = 0,
        raise_error: Exception | None = None,
        status: Any = "completed",
    ) -> None:
        self.name = name
        self.calls = 0
        self.delay = delay
        self.raise_error = raise_error
        self.status = status

    async def __call__(self) -> StageResult:
        self.calls += 1
        call = self.calls
        await trio.sleep(self.delay)
        if self.raise_error is not None:
            raise self.raise_error
        now = utc_now()
        return StageResult(
            name=self.name,
            status=self.status,
            started_at=now,
            ended_at=now,
            data={"call": call, "nested": {"items": [call]}},
            error="failed" if self.status == "failed" else None,
        )


# --- analytics ------------------------------------------------------------------------

EVENT_TIME = datetime(2026, 3, 4, 5, 6, 7, 891234, tzinfo=UTC)
EVENT_RUN_ID = uuid.UUID("12345678-1234-5678-1234-567812345678")


def ev(n: int | str, **kwargs: Any) -> AnalyticsEvent:
    """An AnalyticsEvent of type ``f"e{n}"`` at :data:`EVENT_TIME`."""
    return AnalyticsEvent(event_type=f"e{n}", timestamp=EVENT_TIME, **kwargs)


class RecordingExporter:
    """An AnalyticsExporter fake: records calls and the time of each hand-off.

    ``gate`` (if set) must be set before export_batch completes; ``delay`` is
    virtual time per call; ``failures`` exceptions are raised by the next calls.
    """

    def __init__(self, *, delay: float = 0.0, gate: trio.Event | None = None) -> None:
        self.delay = delay
        self.gate = gate
        self.failures: list[Exception] = []
        self.events: list[AnalyticsEvent] = []
        self.batches: list[list[str]] = []
        self.batch_times: list[float] = []
        self.flushes = 0
        self.closes = 0

    async def _step(self) -> None:
        await trio.sleep(self.delay)
        if self.gate is not None:
            await self.gate.wait()
        if self.failures:
            raise self.failures.pop(0)

    async def export(self, event: AnalyticsEvent) -> None:
        await self._step()
        self.events.append(event)

    async def export_batch(self, events: list[AnalyticsEvent]) -> None:
        await self._step()
        self.events.extend(events)
        self.batches.append([event.event_type for event in events])
        self.batch_times.append(trio.current_time())

    async def flush(self) -> None:
        await self._step()
        self.flushes += 1

    async def close(self) -> None:
        await trio.lowlevel.checkpoint()
        self.closes += 1

    def types(self) -> list[str]:
        return [event.event_type for event in self.events]


# --- streaming ------------------------------------------------------------------------


class RecordingEmitter:
    """An event_emitter that records (event_type, data) pairs."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, event_type: str, data: dict[str, Any]) -> None:
        self.events.append((event_type, data))

    def types(self) -> list[str]:
        return [event_type for event_type, _ in self.events]


def failing_emitter(event_type: str, data: dict[str, Any]) -> None:
    """A streaming event_emitter that is down."""
    raise RuntimeError("emitter down")


# --- contexts -------------------------------------------------------------------------

_IDS = ("pipeline_run_id", "request_id", "session_id", "user_id", "org_id", "interaction_id")


def pipeline_context(*, service: str = "pipeline", **kwargs: Any) -> PipelineContext:
    """:func:`~stageflow_trio.testing.create_test_pipeline_context`, with the ids left out None.

    The public builder gives every id but ``org_id`` a random UUID and labels
    events ``service="test"``; golden payloads and comparisons with the
    reference need the ids a test does not give to be None, and the
    constructor's own ``service="pipeline"``.
    """
    ctx = create_test_pipeline_context(service=service, **kwargs)
    for name in _IDS:
        if name not in kwargs:
            setattr(ctx, name, None)
    return ctx


# --- the reference --------------------------------------------------------------------

REFERENCE_MISSING = (
    "the reference stageflow-core 0.9.1 is not installed; the differential tests need it "
    "(pip install -e '.[test]')"
)
# The reference modules the tests read that ``import stageflow`` does not load itself.
_REFERENCE_SUBMODULES = (
    "stageflow.helpers.analytics",
    "stageflow.helpers.streaming",
    "stageflow.pipeline.idempotency",
    "stageflow.pipeline.interceptors_hardening",
    "stageflow.tools.adapters",
    "stageflow.utils.frozen",
)


def import_reference() -> ModuleType:
    """The reference ``stageflow`` package, with every module the tests read imported.

    Skips the calling test (or, at import time, the whole module) when the
    reference is not installed. An error inside an installed reference is
    raised, not turned into a skip.
    """
    try:
        reference = importlib.import_module("stageflow")
    except ModuleNotFoundError as exc:
        if exc.name != "stageflow":
            raise
        pytest.skip(REFERENCE_MISSING, allow_module_level=True)
    for name in _REFERENCE_SUBMODULES:
        importlib.import_module(name)
    return reference


def python_output(code: str) -> str:
    """What ``code`` prints when run in a fresh interpreter (this one's Python)."""
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout


class RecordingSpan:
    """A span for ``TracingInterceptor(tracer=...)`` tests: keeps attributes and statuses,
    counts ``end`` calls; with ``refuse=True`` every ``set_attribute`` raises."""

    def __init__(self, name: str, attributes: dict[str, Any], *, refuse: bool = False) -> None:
        self.name = name
        self.attributes = dict(attributes)
        self.statuses: list[Any] = []
        self.ended = 0
        self.refuse = refuse

    def set_attribute(self, key: str, value: Any) -> None:
        if self.refuse:
            raise RuntimeError("attribute refused")
        self.attributes[key] = value

    def set_status(self, status: Any) -> None:
        self.statuses.append(status)

    def end(self) -> None:
        self.ended += 1


class RecordingTracer:
    """A tracer keeping every :class:`RecordingSpan` it started, in order."""

    def __init__(self, *, refuse: bool = False) -> None:
        self.spans: list[RecordingSpan] = []
        self.refuse = refuse

    def start_span(self, name: str, attributes: dict[str, Any] | None = None) -> RecordingSpan:
        span = RecordingSpan(name, attributes or {}, refuse=self.refuse)
        self.spans.append(span)
        return span


def assert_linear_time(make: Callable[[int], str], check: Callable[[str], object], n: int) -> None:
    """Fail if ``check`` on ``make(4 * n)`` costs more than 8 times ``check`` on ``make(n)``.

    Linear time gives about 4, quadratic 16. A ratio, not a time limit, so a slow or
    busy machine (CI's coverage run) cannot fail it; each size's best of three runs.
    A large input checked in under 50 ms is linear enough whatever the ratio says.
    """

    def best(text: str) -> float:
        times = []
        for _ in range(3):
            started = time.perf_counter()
            check(text)
            times.append(time.perf_counter() - started)
        return min(times)

    small, large = best(make(n)), best(make(4 * n))
    if large >= 0.05:
        assert large < 8 * small + 0.01, f"{large:.3f} s at {4 * n} against {small:.3f} s at {n}"
