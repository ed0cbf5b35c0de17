"""Audit 20: behaviour of this session's changes that a mutation pass found unpinned.

Each test names the change it pins: the engine's ``ended_at`` on trio's clock,
the wide-event failure log, the idempotency interceptor's nested claims, the
W3C bounds of ``trace_flags`` / ``trace_state``, and the approval backend's
retention. Each one failed with a small change to the code it covers.
"""

from __future__ import annotations

import logging
import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trio

import stageflow_trio._time as time_module
from stageflow_trio._engine._unified_events import wide_event_failed
from stageflow_trio._time import utc_now
from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.observability import wide_events
from stageflow_trio.observability.tracing import TraceContext
from stageflow_trio.pipeline.dag import StageGraph, StageSpec, UnifiedStageGraph
from stageflow_trio.pipeline.idempotency import (
    CachedStageResult,
    IdempotencyInterceptor,
    IdempotencyReentryError,
    InMemoryIdempotencyStore,
)
from stageflow_trio.pipeline.interceptors import run_with_interceptors
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.stages.errors import with_error_handling
from stageflow_trio.stages.result import StageResult
from stageflow_trio.testing import RecordingEventSink, create_test_pipeline_context
from stageflow_trio.tools.approval import (
    ApprovalRequest,
    ApprovalService,
    ApprovalStatus,
    InMemoryApprovalBackend,
)
from tests.fakes import payload, pipeline_context
from tests.pipeline.graph_helpers import spec, stage_ctx
from tests.test_audit20_durations import Recorder

LIMIT = 20.0  # virtual seconds: a hang shows as a failure, far before any chain timeout


# -- ended_at on trio's clock --------------------------------------------------------


async def test_legacy_stage_returning_a_stage_output_is_timed_on_trio_clock(
    autojump_clock: trio.abc.Clock,
) -> None:
    async def slow(ctx: PipelineContext) -> StageOutput:
        await trio.sleep(5)
        return StageOutput.ok(done=True)

    results = await StageGraph([StageSpec(name="slow", runner=slow)]).run(pipeline_context())
    result = results["slow"]
    assert result.ended_at - result.started_at == timedelta(seconds=5)


async def test_run_with_interceptors_times_a_call_that_starts_late(
    autojump_clock: trio.abc.Clock,
) -> None:
    # The chain's own failed result measures from the call's start, not from 0.
    async def fails() -> StageResult:
        await trio.sleep(5)
        raise ValueError("boom")

    await trio.sleep(100)
    result = await run_with_interceptors("s", fails, pipeline_context(), [])
    assert result.status == "failed"
    assert result.ended_at - result.started_at == timedelta(seconds=5)


async def test_with_error_handling_retimes_a_stage_result_the_function_made(
    autojump_clock: trio.abc.Clock,
) -> None:
    made = datetime(2000, 1, 1, tzinfo=UTC)

    @with_error_handling(stage_name="decorated")
    async def decorated(ctx: PipelineContext) -> StageResult:
        await trio.sleep(3)
        return StageResult(name="decorated", status="completed", started_at=made, ended_at=made)

    result = await decorated(pipeline_context())
    assert result.started_at != made
    assert result.ended_at - result.started_at == timedelta(seconds=3)


async def test_unified_skipped_stage_has_a_zero_length_wide_result(
    autojump_clock: trio.abc.Clock,
) -> None:
    async def skips(ctx: StageContext) -> StageOutput:
        await trio.sleep(2)
        return StageOutput.ok(skip_reason="nothing to do")

    async def never(ctx: StageContext) -> StageOutput:
        raise AssertionError("a skipped conditional stage must not run")

    sink = RecordingEventSink()
    graph = UnifiedStageGraph(
        [spec("first", skips), spec("then", never, deps=["first"], conditional=True)],
        emit_stage_wide_events=True,
    )
    await graph.run(stage_ctx(event_sink=sink))
    by_stage = {payload(e)["stage"]: payload(e) for e in sink.of_type("stage.wide")}
    assert by_stage["first"]["duration_ms"] == 2000
    skipped = by_stage["then"]
    assert (skipped["duration_ms"], skipped["started_at"]) == (0, skipped["ended_at"])


class TickingWallClock(datetime):
    """``datetime.now`` of a wall clock that moves 1 ms at every reading."""

    readings = 0
    base = datetime(2026, 1, 1, 12, tzinfo=UTC)

    @classmethod
    def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
        cls.readings += 1
        return cls.base + timedelta(milliseconds=cls.readings)


async def test_unified_interceptors_and_stage_wide_share_the_calls_start(
    autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One wall-clock start per call: what the interceptors see is what stage.wide says.
    monkeypatch.setattr(time_module, "datetime", TickingWallClock)

    async def slow(ctx: StageContext) -> StageOutput:
        await trio.sleep(1)
        return StageOutput.ok()

    recorder = Recorder()
    sink = RecordingEventSink()
    graph = UnifiedStageGraph(
        [spec("slow", slow)], interceptors=[recorder], emit_stage_wide_events=True
    )
    await graph.run(stage_ctx(event_sink=sink))
    [result] = recorder.results
    [event] = sink.of_type("stage.wide")
    assert payload(event)["started_at"] == result.started_at.isoformat()
    assert payload(event)["ended_at"] == result.ended_at.isoformat()


# -- the engine's log of a raising emitter --------------------------------------------


@pytest.mark.parametrize(
    ("stage", "expected"),
    [("first", "stage.wide"), (None, "pipeline.wide")],
)
def test_an_emitter_without_usable_event_types_is_logged_with_the_defaults(
    caplog: pytest.LogCaptureFixture, stage: str | None, expected: str
) -> None:
    class Odd:
        stage_event_type = 7  # not a str: the default is logged instead
        pipeline_event_type = None

    for emitter in (object(), Odd()):
        caplog.clear()
        wide_event_failed(emitter, stage, RuntimeError("down"))
        [record] = caplog.records
        assert record.__dict__["event_type"] == expected
        assert record.__dict__["stage"] == stage
        assert record.getMessage().startswith(f"Failed to emit {expected}")


@pytest.mark.parametrize("stage", ["first", None])
def test_a_raising_emitter_is_logged_as_wide_events_logs_a_raising_sink(
    caplog: pytest.LogCaptureFixture, stage: str | None
) -> None:
    # One writer of the record (the engine's log_wide_failure, which the wide-events
    # module calls for a failing sink): the emitter's own event type, the logger,
    # level, message and extras a log pipeline alerts on.
    emitter = wide_events.WideEventEmitter(stage_event_type="a.stage", pipeline_event_type="a.run")
    event_type = "a.run" if stage is None else "a.stage"
    wide_event_failed(emitter, stage, RuntimeError("down"))
    [record] = caplog.records
    assert (record.name, record.levelno, record.getMessage()) == (
        "stageflow_trio.wide_events",
        logging.WARNING,
        f"Failed to emit {event_type}{'' if stage is None else ' for stage first'}: down",
    )
    assert [record.__dict__[f] for f in ("event_type", "stage", "error")] == [
        event_type,
        stage,
        "down",
    ]


# -- idempotency: nested claims ------------------------------------------------------


def _ctx(key: str) -> PipelineContext:
    ctx = create_test_pipeline_context()
    ctx.data["idempotency_key"] = key
    return ctx


def _ok(name: str, **data: Any) -> StageResult:
    now = utc_now()
    return StageResult(name=name, status="completed", started_at=now, ended_at=now, data=data)


async def test_a_re_entry_under_another_nested_call_is_still_refused(
    autojump_clock: trio.abc.Clock,
) -> None:
    # charge(req-1) runs refund(req-2), which runs charge(req-1) again: the innermost
    # call waits for the outermost one, two levels up; it must be refused too.
    interceptor = IdempotencyInterceptor()
    refused: list[IdempotencyReentryError] = []

    async def innermost() -> StageResult:
        raise AssertionError("the re-entered stage must not run")

    async def refund() -> StageResult:
        try:
            await run_with_interceptors("charge", innermost, _ctx("req-1"), [interceptor])
        except IdempotencyReentryError as exc:
            refused.append(exc)
        return _ok("refund")

    async def charge() -> StageResult:
        await run_with_interceptors("refund", refund, _ctx("req-2"), [interceptor])
        return _ok("charge")

    with trio.fail_after(LIMIT):
        result = await run_with_interceptors("charge", charge, _ctx("req-1"), [interceptor])
    assert result.status == "completed"
    assert [(e.stage_name, e.key) for e in refused] == [("charge", "req-1")]


async def test_a_nested_call_takes_an_entry_cached_meanwhile(
    autojump_clock: trio.abc.Clock,
) -> None:
    # claim() returns a cached entry at once, held or not; the nested call does the same.
    store = InMemoryIdempotencyStore()
    interceptor = IdempotencyInterceptor(store=store)
    replayed: list[StageResult] = []

    async def inner() -> StageResult:
        raise AssertionError("a cached entry is replayed, the stage does not run")

    async def outer() -> StageResult:
        entry = CachedStageResult(result=_ok("charge", cached=True))
        await store.set('["charge", "req-1"]', entry)
        replayed.append(await run_with_interceptors("charge", inner, _ctx("req-1"), [interceptor]))
        return _ok("charge", outer=True)

    with trio.fail_after(LIMIT):
        await run_with_interceptors("charge", outer, _ctx("req-1"), [interceptor])
    assert [r.data for r in replayed] == [{"cached": True}]


async def test_a_task_outliving_a_failed_call_runs_the_stage_again(
    autojump_clock: trio.abc.Clock,
) -> None:
    # The task inherits a context that lists the outer call's claim; once that call
    # has released it (failed: nothing cached), the task's call is granted the claim.
    interceptor = IdempotencyInterceptor()
    runs: list[str] = []
    later: list[StageResult] = []

    async with trio.open_nursery() as service:

        async def charge() -> StageResult:
            runs.append("charge")
            if len(runs) == 1:
                service.start_soon(late_duplicate)
                now = utc_now()
                return StageResult(
                    name="charge", status="failed", started_at=now, ended_at=now, error="no"
                )
            return _ok("charge", call=len(runs))

        async def late_duplicate() -> None:
            await trio.sleep(5)
            later.append(
                await run_with_interceptors("charge", charge, _ctx("req-1"), [interceptor])
            )

        with trio.fail_after(LIMIT):
            first = await run_with_interceptors("charge", charge, _ctx("req-1"), [interceptor])
    assert first.status == "failed"
    assert runs == ["charge", "charge"]
    assert [r.data for r in later] == [{"call": 2}]


# -- tracing: the W3C bounds -----------------------------------------------------------

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"


def _headers(flags: str = "01", tracestate: str | None = None) -> dict[str, str]:
    headers = {"traceparent": f"00-{TRACE_ID}-{SPAN_ID}-{flags}"}
    if tracestate is not None:
        headers["tracestate"] = tracestate
    return headers


def test_trace_flags_take_the_whole_byte() -> None:
    context = TraceContext(trace_id=TRACE_ID, span_id=SPAN_ID, trace_flags=0xFF)
    assert context.to_headers()["traceparent"].endswith("-ff")
    assert TraceContext.from_headers(_headers("ff")).trace_flags == 0xFF


def test_trace_flags_in_upper_case_hex_are_read() -> None:
    assert TraceContext.from_headers(_headers("0A")).trace_flags == 0x0A


def test_the_longest_w3c_keys_and_values_are_kept() -> None:
    simple = "a" + "b" * 255  # 256 characters
    tenant = "t" * 241 + "@" + "v" * 14  # a 241-character tenant, a 14-character vendor
    value = "x" * 256
    for member in (f"{simple}=1", f"{tenant}=1", f"k={value}"):
        assert TraceContext(trace_state=member).trace_state == member
        assert TraceContext.from_headers(_headers(tracestate=member)).trace_state == member
    # One character more is malformed.
    for member in (f"{simple}b=1", f"t{tenant}=1", f"{tenant}v=1", f"k=x{value}"):
        with pytest.raises(ValueError, match="trace_state members must be key=value"):
            TraceContext(trace_state=member)


def test_a_tracestate_of_exactly_8192_characters_is_kept() -> None:
    values = [251] * 31 + [252]  # 32 members "kNN=" + value, 31 commas: 8192 characters
    state = ",".join(f"k{i:02d}=" + "v" * n for i, n in enumerate(values))
    assert len(state) == 8192
    assert TraceContext(trace_state=state).trace_state == state
    assert TraceContext.from_headers(_headers(tracestate=state)).trace_state == state
    with pytest.raises(ValueError, match="at most 8192 characters; got 8193"):
        TraceContext(trace_state=state + ",")


# -- InMemoryApprovalBackend retention ----------------------------------------------------


async def test_a_request_closed_again_restarts_its_period_behind_the_others(
    autojump_clock: trio.abc.Clock,
) -> None:
    service = ApprovalService(backend=InMemoryApprovalBackend(retention_seconds=100))
    first = await service.request_approval(uuid.uuid4(), "edit")
    with pytest.raises(TimeoutError):
        await service.await_decision(first.id, timeout_seconds=1)  # EXPIRED at t=1
    second = await service.request_approval(uuid.uuid4(), "edit")
    await service.record_decision(second.id, granted=True)  # closed at t=1, after first
    await trio.sleep_until(50)
    await service.record_decision(first.id, granted=True)  # first's period starts again
    await trio.sleep_until(102)
    await service.request_approval(uuid.uuid4(), "other")  # a call that forgets
    assert await service.get_request(second.id) is None
    assert await service.get_request(first.id) is first


async def test_a_request_kept_for_a_waiter_goes_a_period_after_the_waiter_left(
    autojump_clock: trio.abc.Clock,
) -> None:
    service = ApprovalService(backend=InMemoryApprovalBackend(retention_seconds=10))
    request = await service.request_approval(uuid.uuid4(), "edit")
    async with trio.open_nursery() as nursery:

        async def patient() -> None:
            await service.await_decision(request.id, timeout_seconds=math.inf)

        nursery.start_soon(patient)
        with pytest.raises(TimeoutError):
            await service.await_decision(request.id, timeout_seconds=1)
        assert request.status is ApprovalStatus.EXPIRED
        await trio.sleep(20)
        await service.request_approval(uuid.uuid4(), "other")  # kept: someone waits
        assert await service.get_request(request.id) is request
        nursery.cancel_scope.cancel()  # the waiter gives up; nobody decides
    await trio.sleep(11)
    await service.request_approval(uuid.uuid4(), "other")
    assert await service.get_request(request.id) is None


async def test_a_request_added_closed_is_forgotten_after_the_period(
    autojump_clock: trio.abc.Clock,
) -> None:
    backend = InMemoryApprovalBackend(retention_seconds=10)
    closed = ApprovalRequest(
        id=uuid.uuid4(), action_id=uuid.uuid4(), tool_name="edit", status=ApprovalStatus.APPROVED
    )
    await backend.add(closed)
    await trio.sleep(10)
    await backend.add(ApprovalRequest(id=uuid.uuid4(), action_id=uuid.uuid4(), tool_name="x"))
    assert await backend.get(closed.id) is closed  # the period is inclusive
    await trio.sleep(1)
    await backend.add(ApprovalRequest(id=uuid.uuid4(), action_id=uuid.uuid4(), tool_name="x"))
    assert await backend.get(closed.id) is None
    assert await backend.latest_for_action(closed.action_id) is None
