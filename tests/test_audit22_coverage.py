"""Audit 22: the behaviours the suite's branch coverage showed nobody tested.

Two defects:

1. A stray ``trio.Cancelled`` (one a callback saved and raised again, not its own
   scope's) raised by a ``CleanupRegistry.run_all`` callback ended the loop there:
   the callbacks after it never ran and stayed registered. The same from an
   ``on_abort`` hook skipped the later hooks (the idempotency claim's release among
   them). Both now treat it as they treat a KeyboardInterrupt: every other
   callback / hook runs, then it is raised.
2. ``ContentFilter(blocked_patterns=)`` / ``InjectionDetector(additional_patterns=)``
   refused a str subclass as a pattern (the list check took it; the compile step
   wanted the exact type), where the reference, and ``re.compile``, take one.

The rest pins behaviour the code had but no test exercised (each test names the
lines it reaches).
"""

from __future__ import annotations

import contextvars
import logging
import math
import sqlite3
import uuid
from collections.abc import Generator
from datetime import UTC, datetime
from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio._engine._scheduler import run_in_context
from stageflow_trio._engine._stage_call import mark_not_a_completion, stage_result_replayable
from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.core.stage_enums import StageKind
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.events import set_event_sink
from stageflow_trio.helpers._buffered import BufferedExporter
from stageflow_trio.helpers.guardrails import ContentFilter, InjectionDetector
from stageflow_trio.helpers.memory import InMemoryStore, MemoryConfig, MemoryEntry
from stageflow_trio.helpers.memory_tracker import MemoryTracker, track_memory
from stageflow_trio.pipeline.builder import PipelineBuilder
from stageflow_trio.pipeline.cancellation import (
    CancellationToken,
    CleanupRegistry,
    StructuredTaskGroup,
    run_with_cleanup,
)
from stageflow_trio.pipeline.dag import UnifiedStageGraph
from stageflow_trio.pipeline.guard_retry import GuardRetryPolicy, GuardRetryStrategy
from stageflow_trio.pipeline.idempotency import IdempotencyClaim, IdempotencyInterceptor
from stageflow_trio.pipeline.interceptors import (
    BaseInterceptor,
    CriticalInterceptorError,
    ErrorAction,
    InterceptorResult,
    TracingInterceptor,
    run_with_interceptors,
)
from stageflow_trio.pipeline.interceptors_hardening import ContextSizeInterceptor
from stageflow_trio.pipeline.pipeline import Pipeline
from stageflow_trio.pipeline.registry import PipelineRegistry
from stageflow_trio.pipeline.retry import RetryInterceptor
from stageflow_trio.pipeline.subpipeline import (
    ChildRunTracker,
    MaxDepthExceededError,
    SubpipelineSpawner,
)
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.stages.result import StageResult
from stageflow_trio.stores import sqlite as sqlite_module
from stageflow_trio.stores._common import log_unreleased, redacted
from stageflow_trio.stores.sqlite import open_sqlite_stores
from stageflow_trio.testing import RecordingEventSink, create_test_pipeline_context
from stageflow_trio.tools.approval import ApprovalRequest, ApprovalService, InMemoryApprovalBackend
from stageflow_trio.tools.definitions import ToolDefinition
from stageflow_trio.tools.executor import ToolExecutor
from stageflow_trio.tools.executor_v2 import AdvancedToolExecutor, ToolExecutorConfig
from stageflow_trio.tools.undo import UndoStore
from stageflow_trio.utils.frozen import FrozenDict
from tests.fakes import RecordingExporter, ev
from tests.pipeline.graph_helpers import spec, stage_ctx
from tests.tools.test_audit12_cancel_after_effect import (
    ACTION,
    Act,
    Counter,
    SlowSink,
    make_executor,
)
from tests.tools.test_audit12_cancel_after_effect import ctx as undo_ctx


async def _stray_cancelled() -> trio.Cancelled:
    """A Cancelled caught from a scope that is gone: raised again, it belongs to nothing."""
    with trio.CancelScope() as scope:
        scope.cancel()
        try:
            await trio.lowlevel.checkpoint()
        except trio.Cancelled as exc:
            return exc
    raise AssertionError("not reached")


def _ok_result(name: str) -> StageResult:
    now = datetime.now(UTC)
    return StageResult(name=name, status="completed", started_at=now, ended_at=now)


# --- the defect: a stray Cancelled in a cleanup callback or an on_abort hook --------------------


async def test_a_stray_cancelled_from_a_cleanup_callback_does_not_skip_the_others() -> None:
    # _cleanup.py: it went to `except trio.Cancelled: raise`, so "first" (registered
    # first, run last) never ran and stayed registered.
    registry = CleanupRegistry()
    ran: list[str] = []
    stray = await _stray_cancelled()

    async def first() -> None:
        ran.append("first")

    async def raises_stray() -> None:
        ran.append("stray")
        raise stray

    registry.register(first, name="first")
    registry.register(raises_stray, name="stray")
    with pytest.raises(trio.Cancelled) as info:
        await registry.run_all(timeout=1)
    assert info.value is stray
    assert ran == ["stray", "first"]
    assert registry.pending_count == 0


class _Aborts(BaseInterceptor):
    def __init__(self, name: str, priority: int, log: list[str], raise_: BaseException | None):
        self.name = name
        self.priority = priority
        self.log = log
        self.raise_ = raise_

    async def before(self, stage_name: str, ctx: PipelineContext) -> InterceptorResult | None:
        return None

    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        return None

    async def on_abort(self, stage_name: str, ctx: PipelineContext) -> None:
        self.log.append(self.name)
        if self.raise_ is not None:
            raise self.raise_


async def test_a_stray_cancelled_from_an_on_abort_hook_does_not_skip_the_others(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # _stage_call._abort: the hooks run innermost first; the inner one raising a
    # stray Cancelled kept the outer one (an idempotency release, say) from running.
    log: list[str] = []
    stray = await _stray_cancelled()
    outer = _Aborts("outer", 10, log, None)
    inner = _Aborts("inner", 20, log, stray)

    async def stage_run() -> StageResult:
        await trio.sleep(10)
        raise AssertionError("not reached")

    with trio.move_on_after(1) as scope:
        await run_with_interceptors("s", stage_run, create_test_pipeline_context(), [outer, inner])
    assert scope.cancelled_caught
    assert log == ["inner", "outer"]


async def test_an_on_abort_hook_overrunning_its_slot_is_still_cut_at_its_deadline(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    # The slot's own Cancelled (its deadline) is still caught by the slot, not deferred.
    log: list[str] = []

    class Slow(_Aborts):
        async def on_abort(self, stage_name: str, ctx: PipelineContext) -> None:
            await super().on_abort(stage_name, ctx)
            await trio.sleep_forever()

    async def stage_run() -> StageResult:
        await trio.sleep(10)
        raise AssertionError("not reached")

    with trio.move_on_after(1) as scope:
        await run_with_interceptors(
            "s",
            stage_run,
            create_test_pipeline_context(),
            [_Aborts("outer", 10, log, None), Slow("slow", 20, log, None)],
        )
    assert scope.cancelled_caught
    assert log == ["slow", "outer"]
    assert any("did not finish within" in m for m in caplog.messages)


# --- engine: cleanup, token, task group ---------------------------------------------------------


async def test_run_all_without_a_time_limit_runs_a_late_callback_unbounded(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # _cleanup.py 198->201: an infinite budget keeps no shares back (inf - inf is NaN).
    registry = CleanupRegistry()

    async def late() -> None:
        await trio.sleep(1000)

    async def first() -> None:
        await trio.sleep(500)
        registry.register(late, name="late")

    registry.register(first, name="first")
    completed, failed = await registry.run_all(timeout=math.inf)
    assert (completed, failed) == (["first", "late"], [])
    assert trio.current_time() == 1500


class _Awaitable:
    """An awaitable that is not a coroutine: nothing to close."""

    def __await__(self) -> Generator[Any, None, str]:
        raise AssertionError("never awaited")


async def test_run_with_cleanup_refuses_a_bad_timeout_before_awaiting_an_awaitable() -> None:
    # _cleanup.py 295->297: not a coroutine, so not closed; the error is the timeout's.
    cleaned: list[int] = []

    async def cleanup() -> None:
        cleaned.append(1)

    with pytest.raises(ValueError, match="cleanup_timeout"):
        await run_with_cleanup(_Awaitable(), cleanup, cleanup_timeout=-1)
    assert cleaned == []


async def test_every_token_callback_runs_and_the_first_interrupt_is_raised() -> None:
    # _token.py 83->74: a second KeyboardInterrupt is dropped, not raised instead.
    token = CancellationToken()
    ran: list[str] = []
    first, second = KeyboardInterrupt("first"), KeyboardInterrupt("second")

    def raising(name: str, exc: BaseException) -> Any:
        def callback() -> None:
            ran.append(name)
            raise exc

        return callback

    token.on_cancel(raising("a", first))
    token.on_cancel(raising("b", second))
    token.on_cancel(lambda: ran.append("c"))
    with pytest.raises(KeyboardInterrupt) as info:
        token.cancel("stop")
    assert info.value is first
    assert ran == ["a", "b", "c"]
    assert token.is_cancelled


async def test_two_tasks_can_wait_for_one_task_handle(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # _task_group.py 88->90: the second waiter shares the first one's event.
    got: list[tuple[str, int]] = []

    async def work() -> int:
        await trio.sleep(1)
        return 7

    async with StructuredTaskGroup() as group:
        handle = group.create_task(work())

        async def waiter(name: str) -> None:
            got.append((name, await handle.wait()))

        group.create_task(waiter("x"))
        group.create_task(waiter("y"))
    assert sorted(got) == [("x", 7), ("y", 7)]


# --- engine: the scheduler's context runner -----------------------------------------------------


class _Trap:
    def __await__(self) -> Generator[str, None, None]:
        yield "trap"


def test_run_in_context_throws_with_the_traceback_it_is_given() -> None:
    # _scheduler.py 103: the (type, value, traceback) form of throw keeps the traceback.
    async def catcher() -> BaseException:
        try:
            await _Trap()
        except ValueError as exc:
            return exc
        raise AssertionError("not reached")

    try:
        raise ValueError("elsewhere")
    except ValueError as exc:
        tb = exc.__traceback__
    assert tb is not None
    wrapped = run_in_context(contextvars.copy_context(), catcher())
    assert wrapped.send(None) == "trap"
    with pytest.raises(StopIteration) as info:
        wrapped.throw(ValueError, None, tb)
    caught = info.value.value
    assert type(caught) is ValueError
    chain = []
    entry = caught.__traceback__
    while entry is not None:
        chain.append(entry)
        entry = entry.tb_next
    assert tb in chain


# --- engine: guard retries, the interceptor chain, the unified run -------------------------------


async def test_two_guards_failing_on_one_retry_stage_rerun_it_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # _guard_retry.py 192: g2 fails at once and draft runs again (for a second); g1
    # fails meanwhile and finds it running: both guards run again once it has completed.
    calls: dict[str, int] = {}

    async def draft(ctx: StageContext) -> StageOutput:
        calls["draft"] = calls.get("draft", 0) + 1
        if calls["draft"] > 1:
            await trio.sleep(1)
        return StageOutput.ok(text=f"draft {calls['draft']}")

    def guard(name: str, delay: float) -> Any:
        async def run(ctx: StageContext) -> StageOutput:
            calls[name] = calls.get(name, 0) + 1
            if calls[name] == 1:
                await trio.sleep(delay)
                return StageOutput.fail(error=f"{name} says no")
            return StageOutput.ok(passed=ctx.inputs.get_from("draft", "text"))

        return run

    policy = GuardRetryPolicy(retry_stage="draft", max_attempts=3)
    graph = UnifiedStageGraph(
        [
            spec("draft", draft),
            spec("g1", guard("g1", 0.5), ["draft"], kind=StageKind.GUARD),
            spec("g2", guard("g2", 0), ["draft"], kind=StageKind.GUARD),
        ],
        guard_retry_strategy=GuardRetryStrategy({"g1": policy, "g2": policy}),
    )
    results = await graph.run(stage_ctx())
    assert calls == {"draft": 2, "g1": 2, "g2": 2}
    assert results["g1"].data == {"passed": "draft 2"}
    assert results["g2"].data == {"passed": "draft 2"}
    assert trio.current_time() == 1


class _Hooks(BaseInterceptor):
    """Records what its hooks see; ``nested`` runs a call inside its ``after``."""

    def __init__(self, name: str, log: list[Any], **behaviour: Any) -> None:
        self.name = name
        self.log = log
        self.behaviour = behaviour

    async def before(self, stage_name: str, ctx: PipelineContext) -> InterceptorResult | None:
        return self.behaviour.get("short_circuit")

    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        nested = self.behaviour.get("nested")
        if nested is not None and stage_name == "outer":
            await nested(ctx)
        self.log.append((stage_name, "replayable", stage_result_replayable()))

    async def on_error(
        self, stage_name: str, error: Exception, ctx: PipelineContext
    ) -> ErrorAction:
        self.log.append((stage_name, "on_error", self.name))
        if self.behaviour.get("on_error_raises"):
            raise RuntimeError("hook broke")
        action: ErrorAction = self.behaviour.get("action", ErrorAction.FAIL)
        return action


async def test_a_call_nested_in_the_after_hooks_of_a_marked_call_has_its_own_mark() -> None:
    # _stage_call.py 273 and 160: the nested call starts unmarked, and the outer call's
    # remaining after hooks still see their own stage's mark afterwards.
    log: list[Any] = []

    async def inner_run() -> StageResult:
        return _ok_result("inner")

    async def nested(ctx: PipelineContext) -> None:
        await run_with_interceptors("inner", inner_run, ctx, [_Hooks("in", log)])

    async def outer_run() -> StageResult:
        mark_not_a_completion()  # as a unified stage that returned skip or cancel does
        return _ok_result("outer")

    await run_with_interceptors(
        "outer", outer_run, create_test_pipeline_context(), [_Hooks("out", log, nested=nested)]
    )
    assert log == [("inner", "replayable", True), ("outer", "replayable", False)]


async def test_an_on_error_hook_that_raises_is_logged_and_the_next_one_is_asked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # _stage_call.py 449-450: the hooks are asked innermost first.
    log: list[Any] = []
    attempts: list[int] = []

    async def flaky() -> StageResult:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("down")
        return _ok_result("s")

    chain = [
        _Hooks("outer", log, action=ErrorAction.RETRY),
        _Hooks("inner", log, on_error_raises=True),
    ]
    chain[0].priority, chain[1].priority = 10, 20
    result = await run_with_interceptors("s", flaky, create_test_pipeline_context(), chain)
    assert result.status == "completed"
    assert [entry for entry in log if entry[1] == "on_error"] == [
        ("s", "on_error", "inner"),
        ("s", "on_error", "outer"),
    ]
    assert any("on_error" in record.getMessage() for record in caplog.records)


async def test_a_short_circuit_with_a_stage_result_keeps_its_own_error() -> None:
    # _stage_call.py 345->347: the interceptor's error wins over the replayed result's.
    replayed = StageResult(
        name="s",
        status="completed",
        started_at=datetime.now(UTC),
        ended_at=datetime.now(UTC),
        data={"cached": 1},
        error="old",
    )

    async def never() -> StageResult:
        raise AssertionError("short-circuited")

    result = await run_with_interceptors(
        "s",
        never,
        create_test_pipeline_context(),
        [
            _Hooks(
                "cache",
                [],
                short_circuit=InterceptorResult(stage_ran=False, result=replayed, error="new"),
            )
        ],
    )
    assert (dict(result.data), result.error) == ({"cached": 1}, "new")


class _Output(StageOutput):
    """A StageOutput subclass a stage may return."""

    __slots__ = ()


async def test_a_stage_returning_a_stage_output_subclass_gets_its_duration(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # _unified_run.py 417: not the exact type, so with_duration() sets the duration.
    async def slow(ctx: StageContext) -> StageOutput:
        await trio.sleep(0.25)
        out = StageOutput.ok(n=1)
        return _Output(status=out.status, data=out.data)

    results = await UnifiedStageGraph([spec("s", slow)]).run(stage_ctx())
    assert results["s"].duration_ms == 250
    assert dict(results["s"].data) == {"n": 1}


@pytest.mark.parametrize("with_sink", [True, False])
async def test_a_keyboard_interrupt_from_a_stage_reaches_the_caller_with_or_without_a_sink(
    with_sink: bool,
) -> None:
    # _unified.py 108->110: without a sink there is no pipeline_failed to send.
    async def interrupted(ctx: StageContext) -> StageOutput:
        raise KeyboardInterrupt

    sink = RecordingEventSink() if with_sink else None
    with pytest.raises(KeyboardInterrupt):
        await UnifiedStageGraph([spec("s", interrupted)]).run(stage_ctx(event_sink=sink))
    if sink is not None:
        assert sink.types()[-1] == "pipeline_failed"


# --- pipeline: the child tracker, the builder, interceptors --------------------------------------


async def test_a_child_outliving_its_cleaned_up_parent_is_cleaned_up_cleanly() -> None:
    # _child_tracker.py 173->177: the parent's list of children is gone already.
    tracker = ChildRunTracker()
    parent, child, grandchild = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await tracker.register_child(parent, child)
    await tracker.register_child(child, grandchild)
    await tracker.cleanup_run(parent)
    assert await tracker.get_parent(child) == parent  # kept, as in the reference
    await tracker.cleanup_run(child)
    assert await tracker.get_parent(child) is None
    assert await tracker.get_children(child) == set()
    assert await tracker.get_children(parent) == set()
    assert (await tracker.get_metrics())["cleanup_count"] == 2


async def test_cancelling_a_run_whose_tracked_children_form_a_cycle_ends() -> None:
    # _child_tracker.py 89->88: a run already visited is not walked again.
    tracker = ChildRunTracker()
    spawner = SubpipelineSpawner(child_tracker=tracker, emit_events=False)
    a, b = uuid.uuid4(), uuid.uuid4()
    await tracker.register_child(a, b)
    await tracker.register_child(b, a)
    assert sorted(map(str, await spawner.cancel_with_children(a, "stop"))) == sorted(
        map(str, (a, b))
    )


async def test_a_pipelines_stage_table_shows_as_a_dict_and_builders_compare_only_to_builders() -> (
    None
):
    # builder.py 110 and 305.
    async def work(ctx: StageContext) -> StageOutput:
        return StageOutput.ok()

    pipeline = Pipeline().with_stage("a", work, StageKind.WORK)
    assert repr(pipeline.stages) == repr(dict(pipeline.stages.items()))
    assert repr(pipeline.stages).startswith("{'a': ")
    builder = PipelineBuilder("p")
    assert builder.__eq__(object()) is NotImplemented
    assert builder != "p"
    assert builder == PipelineBuilder("p")


class _Refuse(CriticalInterceptorError):
    """A critical error an idempotency key extractor raises on purpose."""


async def test_a_critical_error_from_the_key_extractor_is_not_wrapped() -> None:
    # idempotency.py 810: only other errors become IdempotencyError.
    def extractor(ctx: PipelineContext) -> str:
        raise _Refuse("no key for you", "keys")

    interceptor = IdempotencyInterceptor(key_extractor=extractor)
    with pytest.raises(_Refuse, match=r"^no key for you$"):
        await interceptor.before("s", create_test_pipeline_context())


class _MetricsCtx:
    """A context as ContextSizeInterceptor reads it: data and a record_metric that fails."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    def record_metric(self, name: str, value: int, tags: dict[str, str]) -> None:
        raise RuntimeError("metrics backend down")


async def test_context_size_a_failing_record_metric_is_logged_and_the_metric_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # interceptors_hardening.py 309-310.
    interceptor = ContextSizeInterceptor(snapshot_getter=lambda ctx: None)
    ctx = _MetricsCtx()
    with caplog.at_level(logging.DEBUG, logger="stageflow_trio"):
        await interceptor.before("s", ctx)  # type: ignore[arg-type]
        ctx.data["x"] = "y"
        await interceptor.after("s", _ok_result("s"), ctx)  # type: ignore[arg-type]
    assert interceptor.metrics["s"].size_bytes == len("{}") + len('{"x": "y"}')
    assert "record_metric failed for stage s: metrics backend down" in caplog.messages


async def test_context_size_a_context_that_cannot_be_measured_after_the_stage_is_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # interceptors_hardening.py 292: measured before, not after: no growth, no metric.
    calls: list[int] = []

    def snapshot_getter(ctx: Any) -> None:
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("snapshot gone")

    interceptor = ContextSizeInterceptor(snapshot_getter=snapshot_getter)
    ctx = _MetricsCtx()
    with caplog.at_level(logging.DEBUG, logger="stageflow_trio"):
        await interceptor.before("s", ctx)  # type: ignore[arg-type]
        await interceptor.after("s", _ok_result("s"), ctx)  # type: ignore[arg-type]
    assert interceptor.metrics == {}
    assert "Context size of stage s could not be measured: snapshot gone" in caplog.messages


class _EventCtx:
    """A context without try_emit_event: the retry events go to its sink."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.event_sink = RecordingEventSink()


async def test_retry_on_error_without_its_before_state_starts_at_the_first_attempt(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # retry.py 230 (no state of before's: attempt 0) and 378 (no try_emit_event).
    interceptor = RetryInterceptor(max_attempts=3, base_delay_ms=100, jitter_strategy="none")
    ctx = _EventCtx()
    ctx.data["_retry.s"] = "overwritten by the stage"
    action = await interceptor.on_error("s", ConnectionError("down"), ctx)  # type: ignore[arg-type]
    assert action is ErrorAction.RETRY
    assert trio.current_time() == pytest.approx(0.1)
    assert ctx.event_sink.types() == ["stage.retry_scheduled"]
    data = ctx.event_sink.events[0][1]
    assert data is not None
    assert data["attempt"] == 1


class _Span:
    def __init__(self, name: str, ended: list[str]) -> None:
        self.name = name
        self.ended = ended

    def set_attribute(self, key: str, value: Any) -> None:
        pass

    def set_status(self, *args: Any) -> None:
        pass

    def end(self) -> None:
        self.ended.append(self.name)

    def get_span_context(self) -> Any:
        return None

    def is_recording(self) -> bool:
        return True


async def test_a_stage_whose_span_failed_to_start_does_not_disturb_the_others(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    # _tracing_interceptor.py 123: "a" holds a span (until t=1) when "b" (which has
    # none) ends at t=0.5, after "c".
    ended: list[str] = []

    class Tracer:
        def start_span(self, name: str, attributes: Any = None) -> _Span:
            if name == "stage.b":
                raise RuntimeError("exporter down")
            return _Span(name, ended)

    def sleeping(seconds: float) -> Any:
        async def run(ctx: StageContext) -> StageOutput:
            await trio.sleep(seconds)
            return StageOutput.ok()

        return run

    graph = UnifiedStageGraph(
        [spec("a", sleeping(1)), spec("c", sleeping(0.5)), spec("b", deps=["c"])],
        interceptors=[TracingInterceptor(Tracer())],
    )
    results = await graph.run(stage_ctx())
    assert sorted(results) == ["a", "b", "c"]
    assert ended == ["stage.c", "stage.a"]
    hook_errors = [
        r.getMessage() for r in caplog.records if "Interceptor tracing" in r.getMessage()
    ]
    assert hook_errors == ["Interceptor tracing before() failed: exporter down"]  # none from after


# --- tools ---------------------------------------------------------------------------------------


async def test_an_approval_request_stored_again_under_another_action_moves_there() -> None:
    # approval.py 265: its old action no longer lists it.
    backend = InMemoryApprovalBackend()
    first_action, second_action = uuid.uuid4(), uuid.uuid4()
    request = ApprovalRequest(id=uuid.uuid4(), action_id=first_action, tool_name="t")
    await backend.add(request)
    moved = ApprovalRequest(id=request.id, action_id=second_action, tool_name="t")
    await backend.add(moved)
    assert await backend.latest_for_action(first_action) is None
    assert await backend.latest_for_action(second_action) is moved
    assert await backend.pending() == [moved]


def _child_pipeline() -> Pipeline:
    async def work(ctx: StageContext) -> StageOutput:
        await trio.sleep(0.5)
        return StageOutput.ok(value=1)

    return Pipeline().with_stage("work", work, StageKind.WORK)


async def test_spawn_subpipeline_logs_its_start_and_end_at_info(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    # executor.py 321 and 429: the reference's two INFO records and their extras.
    registry = PipelineRegistry()
    registry.register("child", _child_pipeline())
    executor = ToolExecutor(
        spawner=SubpipelineSpawner(child_tracker=ChildRunTracker(), emit_events=False),
        registry=registry,
    )
    parent = create_test_pipeline_context()
    correlation = uuid.uuid4()
    with caplog.at_level(logging.INFO, logger="stageflow_trio"):
        result = await executor.spawn_subpipeline(
            "child", parent, correlation, topology_override="t2"
        )
    records = {r.getMessage(): r for r in caplog.records}
    start, end = records["Spawning subpipeline"], records["Subpipeline completed"]
    assert start.levelno == end.levelno == logging.INFO
    assert start.pipeline_name == end.pipeline_name == "child"  # type: ignore[attr-defined]
    assert start.parent_run_id == end.parent_run_id == str(parent.pipeline_run_id)  # type: ignore[attr-defined]
    assert start.correlation_id == end.correlation_id == str(correlation)  # type: ignore[attr-defined]
    assert start.topology_override == "t2"  # type: ignore[attr-defined]
    assert start.execution_mode_override is None  # type: ignore[attr-defined]
    assert end.child_run_id == str(result.child_run_id)  # type: ignore[attr-defined]
    assert end.success is True  # type: ignore[attr-defined]
    assert end.duration_ms >= 0  # type: ignore[attr-defined]


async def test_spawn_subpipeline_over_the_depth_limit_without_a_memory_tracker(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # executor.py 399->401: no tracker to tell; the rejection is still logged and raised.
    registry = PipelineRegistry()
    registry.register("child", _child_pipeline())
    executor = ToolExecutor(
        spawner=SubpipelineSpawner(child_tracker=ChildRunTracker(), max_depth=0),
        registry=registry,
    )
    with pytest.raises(MaxDepthExceededError):
        await executor.spawn_subpipeline("child", create_test_pipeline_context(), uuid.uuid4())
    assert "Subpipeline spawn rejected: max depth exceeded" in caplog.messages


class _BlockingUndoStore(UndoStore):
    """An UndoStore whose ``store`` never returns."""

    async def store(self, *args: Any, **kwargs: Any) -> Any:
        await trio.sleep_forever()


async def test_cancelled_while_reporting_completion_without_undo_data_stores_nothing(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    # executor_v2.py 463->465: a tool that is not undoable has nothing to keep.
    set_event_sink(SlowSink())
    counter, store = Counter(), UndoStore()
    executor = AdvancedToolExecutor(
        ToolExecutorConfig(emit_events=True),
        undo_store=store,
        approval_service=ApprovalService(),
    )
    executor.register(ToolDefinition("add", "ADD", counter.add))
    with trio.move_on_after(2.5) as scope:
        await executor.execute(Act(ACTION, "ADD", {}), undo_ctx())
    assert scope.cancelled_caught
    assert counter.value == 1
    assert await store.get(ACTION) is None
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_a_shielded_undo_store_that_hangs_is_given_up_after_the_grace_period(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    # executor_v2.py 538: cancelled while reporting, the undo data is stored shielded,
    # but not for ever: the cancellation goes on after _SHIELD_GRACE_SECONDS (5 s).
    set_event_sink(SlowSink())
    counter = Counter()
    executor = make_executor(counter, _BlockingUndoStore())
    with trio.move_on_after(2.5) as scope:
        await executor.execute(Act(ACTION, "ADD", {}), undo_ctx())
    assert scope.cancelled_caught
    assert trio.current_time() == pytest.approx(7.5)
    assert counter.value == 1
    assert (
        f"Gave up trying to store the undo metadata of action {ACTION} after 5.0 s"
        in caplog.messages
    )


# --- stores --------------------------------------------------------------------------------------


def test_redacted_hides_credential_query_values_of_a_url_without_a_scheme() -> None:
    # _common.py 273->279.
    assert redacted("localhost:6379/0?password=hunter2&db=1") == (
        "localhost:6379/0?password=***&db=1"
    )


def test_unreleased_claims_are_logged_one_way_for_one_and_another_for_several(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # _common.py 171-172.
    error = OSError("gone")
    log_unreleased([IdempotencyClaim("k1", "t1")], error, 30)
    log_unreleased([IdempotencyClaim("k1", "t1"), IdempotencyClaim("k2", "t2")], error, 30)
    # Audit 26: the error's text and the lease, no traceback.
    assert caplog.messages == [
        "could not release claim 'k1' (OSError: gone); its lease frees the key within 30 s",
        "could not release 2 claims ['k1', 'k2'] (OSError: gone); their leases free the keys"
        " within 30 s",
    ]
    assert all(record.exc_info is None for record in caplog.records)


async def test_a_failed_sqlite_purge_is_logged_and_the_store_goes_on(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # sqlite.py 579: tried again next time.
    def failing_purge(connection: sqlite3.Connection, *, now: float) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    async with open_sqlite_stores(str(tmp_path / "db.sqlite")) as stores:
        monkeypatch.setattr(sqlite_module, "_purge", failing_purge)
        await stores.idempotency._purge_once()  # type: ignore[attr-defined]
        assert await stores.idempotency.get("k") is None
    (record,) = [r for r in caplog.records if r.name.startswith("stageflow_trio")]
    assert record.getMessage() == "could not delete expired idempotency rows"
    assert record.levelno == logging.WARNING


# --- helpers -------------------------------------------------------------------------------------


class _Pattern(str):
    __slots__ = ()


def test_a_str_subclass_is_a_pattern_and_a_subclass_patterns_are_checked() -> None:
    # guardrails.py 180. A str subclass was refused by _compile though the list check
    # took it (and re.compile does); a subclass's own non-str pattern is still refused.
    found = ContentFilter(blocked_patterns=[_Pattern(r"secret\s+plan")]).check("the secret  plan")
    assert not found.passed
    assert (
        InjectionDetector(additional_patterns=[_Pattern("open sesame")])
        .check("open sesame")
        .violations
    )

    class Broken(InjectionDetector):
        INJECTION_PATTERNS = (*InjectionDetector.INJECTION_PATTERNS, 5)  # type: ignore[arg-type]

    with pytest.raises(
        TypeError, match=r"^InjectionDetector: INJECTION_PATTERNS\[11\] must be a str; got int$"
    ):
        Broken()


async def test_buffered_exporter_drops_the_oldest_without_an_overflow_callback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # _buffered.py 168: nothing to call, and nothing logged about it.
    sink = RecordingExporter()
    exporter = BufferedExporter(sink, batch_size=100, max_buffer_size=2)
    for index in range(3):
        await exporter.export(ev(index))
    assert exporter.dropped_count == 1
    await exporter.close()
    assert [event.event_type for event in sink.events] == ["e1", "e2"]
    assert caplog.records == []


async def test_a_memory_entry_whose_time_cannot_be_compared_marks_its_session_unordered() -> None:
    # memory.py 296-297: a naive datetime.min has no POSIX time; the write goes through.
    store = InMemoryStore()
    session = uuid.uuid4()
    first = MemoryEntry(id="1", session_id=session, role="user", content="a")
    odd = MemoryEntry(id="2", session_id=session, role="user", content="b", timestamp=datetime.min)
    await store.write(first)
    await store.write(odd)
    assert await store.fetch(session, MemoryConfig()) == [first, odd]


async def test_track_memory_takes_the_end_sample_when_the_function_raises() -> None:
    # memory_tracker.py 244.
    tracker = MemoryTracker()

    @track_memory(label="job", tracker=tracker)
    async def job() -> None:
        await trio.lowlevel.checkpoint()
        raise LookupError("missing")

    with pytest.raises(LookupError, match=r"^missing$"):
        await job()
    assert [sample.label for sample in tracker.samples] == ["job:start", "job:end"]


class _EmitOnlySink:
    """A sink with ``emit`` alone (no ``try_emit``), whose deliveries take a second."""

    def __init__(self) -> None:
        self.types: list[str] = []

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        await trio.sleep(1)
        self.types.append(type)


async def test_cancelled_while_reporting_a_cancel_to_a_sink_without_try_emit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # _spawner.py 744->747: no try_emit to hand the rest to; the cancellation goes on.
    sink = _EmitOnlySink()
    set_event_sink(sink)  # type: ignore[arg-type]
    spawner = SubpipelineSpawner(child_tracker=ChildRunTracker())
    run_id = uuid.uuid4()
    with trio.move_on_after(0.5) as scope:
        await spawner.cancel_with_children(run_id, "stop")
    assert scope.cancelled_caught
    assert sink.types == []
    assert await spawner.is_canceled(run_id)


def test_stage_output_keeps_an_already_frozen_mapping_as_its_data() -> None:
    # stage_output.py 134: shared, not copied.
    data = FrozenDict({"n": 1})
    assert StageOutput.ok(data).data is data
