"""Audit 17: prose claims of the guides (engine, cancellation, events, interceptors, streaming,
subpipelines, tools_execution, context, testing, getting_started), pinned one by one.

Each test quotes the sentence it pins; the audit's full list of checked claims is in the
lead's notes. Claims whose doc sentence this audit corrected are marked "(corrected)".
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import uuid
from collections.abc import Sequence
from typing import Any

import attrs
import pytest
import trio

from stageflow_trio.context import ConflictDetector, Enrichments, MemoryEnrichment
from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.events import BackpressureAwareEventSink, set_event_sink
from stageflow_trio.helpers.streaming import ChunkQueue
from stageflow_trio.observability.wide_events import WideEventEmitter
from stageflow_trio.pipeline import (
    ChildRunTracker,
    GuardRetryPolicy,
    GuardRetryStrategy,
    Pipeline,
    SubpipelineSpawner,
)
from stageflow_trio.pipeline.cancellation import (
    CancellationToken,
    CleanupRegistry,
    StructuredTaskGroup,
)
from stageflow_trio.pipeline.dag import (
    StageGraph,
    StageSpec,
    UnifiedStageExecutionError,
    UnifiedStageGraph,
    UnifiedStageSpec,
)
from stageflow_trio.pipeline.interceptors import (
    BaseInterceptor,
    CircuitBreakerInterceptor,
    InterceptorResult,
    run_with_interceptors,
)
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.stages.result import StageResult
from stageflow_trio.testing import (
    Fault,
    RecordingEventSink,
    create_test_pipeline_context,
    create_test_stage_context,
)
from stageflow_trio.tools import (
    AdvancedToolExecutor,
    ApprovalService,
    ToolApprovalDeniedError,
    ToolApprovalTimeoutError,
    ToolDefinition,
    ToolInput,
    ToolOutput,
    UndoStore,
    adapt_context,
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _completed(name: str) -> StageResult:
    return StageResult(name=name, status="completed", started_at=_now(), ended_at=_now())


class _BrokenSink:
    """A sink whose every emit raises."""

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> object:  # noqa: A002
        raise RuntimeError("sink down")

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        raise RuntimeError("sink down")


# --- engine.md ---------------------------------------------------------------------------


async def test_engine_run_is_a_cancellation_point_when_it_starts() -> None:
    """engine.md: "Either way the run is a cancellation point when it starts"."""
    ran: list[str] = []

    async def mark(ctx: StageContext) -> None:
        ran.append("ran")

    graph = Pipeline().with_stage("m", mark, StageKind.TRANSFORM).build()
    with trio.CancelScope() as scope:
        scope.cancel()
        await graph.run(create_test_stage_context())
    assert scope.cancelled_caught
    assert ran == []


def test_engine_cleanup_timeout_is_a_non_negative_number_checked_at_build() -> None:
    """engine.md: "bounded by `cleanup_timeout` (a non-negative number of seconds, checked when
    the graph is built)"."""

    async def stage(ctx: StageContext) -> None:
        return None

    specs = [UnifiedStageSpec(name="s", runner=stage, kind=StageKind.TRANSFORM)]
    UnifiedStageGraph(specs, cleanup_timeout=0)
    UnifiedStageGraph(specs, cleanup_timeout=math.inf)
    with pytest.raises(ValueError, match="cleanup_timeout must be a non-negative number"):
        UnifiedStageGraph(specs, cleanup_timeout=-1)
    with pytest.raises(TypeError, match="cleanup_timeout"):
        UnifiedStageGraph(specs, cleanup_timeout="10")  # type: ignore[arg-type]


async def _run_failing_guard(policy: GuardRetryPolicy) -> tuple[int, dict[str, Any]]:
    """Runs draft -> guard (1 s, always the same failure); returns drafts and the exhausted."""
    drafts: list[float] = []

    async def draft(ctx: StageContext) -> StageOutput:
        drafts.append(trio.current_time())
        return StageOutput.ok(text="x")

    async def guard(ctx: StageContext) -> StageOutput:
        await trio.sleep(1)
        return StageOutput.fail(error="bad")

    graph = (
        Pipeline()
        .with_stage("draft", draft, StageKind.TRANSFORM)
        .with_stage("guard", guard, StageKind.GUARD, dependencies=("draft",))
        .build(guard_retry_strategy=GuardRetryStrategy({"guard": policy}))
    )
    sink = RecordingEventSink()
    with pytest.raises(UnifiedStageExecutionError):
        await graph.run(create_test_stage_context(event_sink=sink))
    [exhausted] = sink.of_type("guard_retry.exhausted")
    assert exhausted is not None
    return len(drafts), exhausted


async def test_engine_guard_retry_default_stagnation_ends_at_the_third_identical_failure(
    autojump_clock: trio.abc.Clock,
) -> None:
    """engine.md: "by stagnation (... with the default 2, the third identical failure, as in
    the reference)"."""
    drafts, exhausted = await _run_failing_guard(GuardRetryPolicy("draft", max_attempts=10))
    assert drafts == 3
    assert (exhausted["reason"], exhausted["attempts"]) == ("stagnation", 3)


async def test_engine_guard_retry_timeout_counts_from_the_first_failure(
    autojump_clock: trio.abc.Clock,
) -> None:
    """engine.md: "or by time (`timeout_seconds`, on the trio clock since the first failure)"."""
    policy = GuardRetryPolicy("draft", max_attempts=10, stagnation_limit=100, timeout_seconds=2.5)
    # Failures at t = 1, 2, 3, 4: the window opens at 1, so only the one at 4 is past it
    # (counted from the run's start, the one at 3 would be).
    drafts, exhausted = await _run_failing_guard(policy)
    assert (exhausted["reason"], exhausted["attempts"], drafts) == ("timeout", 4, 4)
    assert trio.current_time() == 4


# --- cancellation.md ---------------------------------------------------------------------


def test_cancellation_token_keyboard_interrupt_from_a_callback_comes_after_the_others() -> None:
    """cancellation.md: "A `BaseException` from one (a `KeyboardInterrupt`) is raised out of
    `cancel()` only after every other callback has run"."""
    token = CancellationToken()
    order: list[str] = []

    def interrupt() -> None:
        order.append("interrupt")
        raise KeyboardInterrupt

    token.on_cancel(interrupt)
    token.on_cancel(lambda: order.append("after"))
    with pytest.raises(KeyboardInterrupt):
        token.cancel("stop")
    assert order == ["interrupt", "after"]
    assert token.is_cancelled
    assert token.reason == "stop"


async def test_cancellation_run_all_zero_timeout_gives_the_floor_and_runs_late_callbacks(
    autojump_clock: trio.abc.Clock,
) -> None:
    """cancellation.md: "`0` gives each callback the 10 ms floor" and "A callback registered
    while `run_all` runs ... is run too, next"."""
    registry = CleanupRegistry()
    ran: list[str] = []

    async def late() -> None:
        ran.append("late")

    async def first() -> None:
        ran.append("first")
        registry.register(late, name="late")

    async def hangs() -> None:
        await trio.sleep_forever()

    registry.register(hangs, name="hangs")
    registry.register(first, name="first")
    start = trio.current_time()
    completed, failed = await registry.run_all(timeout=0)
    assert ran == ["first", "late"]
    assert completed == ["first", "late"]
    assert [(name, str(exc)) for name, exc in failed] == [("hangs", "Cleanup timed out: hangs")]
    assert trio.current_time() - start == pytest.approx(0.01)


async def test_cancellation_task_group_failed_cleanup_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """cancellation.md: "Failed cleanups are logged (`"Some cleanup callbacks failed:
    [...]"`), never raised."""

    async def broken() -> None:
        raise OSError("busy")

    with caplog.at_level(logging.WARNING, logger="stageflow_trio.cancellation"):
        async with StructuredTaskGroup() as group:
            group.cleanup_registry.register(broken, name="broken")
    assert "Some cleanup callbacks failed: ['broken']" in caplog.messages


class _DerivingGroup(ExceptionGroup[Exception]):
    # The typeshed signature is a pair of generic overloads; one concrete one does here.
    def derive(self, excs: Sequence[Exception], /) -> _DerivingGroup:  # type: ignore[override]
        return _DerivingGroup(self.message, excs)


class _PlainSubGroup(ExceptionGroup[Exception]):
    pass


async def test_cancellation_a_group_subclass_passes_through_when_it_overrides_derive() -> None:
    """cancellation.md (corrected): "a group subclass a user raises on purpose passes
    through, provided it overrides `derive()`": trio rebuilds a group crossing its cancel
    scopes with `derive()`, so one that inherits it arrives as a plain group, unwrapped."""

    async def raises_deriving() -> None:
        raise _DerivingGroup("mine", [ValueError("a")])

    async def raises_plain_subclass() -> None:
        raise _PlainSubGroup("mine", [ValueError("a")])

    with pytest.raises(_DerivingGroup):
        async with StructuredTaskGroup() as group:
            group.create_task(raises_deriving)
    with pytest.raises(ValueError, match=r"^a$"):
        async with StructuredTaskGroup() as group:
            group.create_task(raises_plain_subclass)


# --- events.md ---------------------------------------------------------------------------


async def test_events_idle_running_sink_takes_one_more_than_max_queue_size() -> None:
    """events.md: "a burst into an idle, running sink accepts `max_queue_size + 1` events
    before the first drop. A sink ... with no worker, accepts exactly `max_queue_size`"."""
    async with BackpressureAwareEventSink(RecordingEventSink(), max_queue_size=2) as running:
        await trio.testing.wait_all_tasks_blocked()
        accepted = [running.try_emit(type=f"e{n}", data=None) for n in range(4)]
    assert accepted == [True, True, True, False]
    idle = BackpressureAwareEventSink(RecordingEventSink(), max_queue_size=2)
    assert [idle.try_emit(type=f"e{n}", data=None) for n in range(3)] == [True, True, False]


async def test_events_keyboard_interrupt_sibling_reason_and_external_pipeline_failed() -> None:
    """events.md: a sibling interrupted by a `KeyboardInterrupt` "carries trio's reason
    (`"child task raised exception KeyboardInterrupt()"`); the sibling itself gets no
    terminal event, and the run ends with `pipeline_failed` (stage `"<external>"`)"."""

    async def waits(ctx: StageContext) -> None:
        await trio.sleep_forever()

    async def interrupts(ctx: StageContext) -> None:
        await trio.testing.wait_all_tasks_blocked()
        raise KeyboardInterrupt

    graph = (
        Pipeline()
        .with_stage("waits", waits, StageKind.WORK)
        .with_stage("ki", interrupts, StageKind.WORK)
        .build()
    )
    sink = RecordingEventSink()
    with pytest.raises(KeyboardInterrupt):
        await graph.run(create_test_stage_context(event_sink=sink))
    assert sink.types() == [
        "stage.waits.started",
        "stage.ki.started",
        "stage.waits.cancelled",
        "pipeline_failed",
    ]
    [cancelled] = sink.of_type("stage.waits.cancelled")
    [failed] = sink.of_type("pipeline_failed")
    assert cancelled is not None
    assert failed is not None
    assert cancelled["reason"] == "child task raised exception KeyboardInterrupt()"
    assert (failed["stage"], failed["error"]) == ("<external>", "KeyboardInterrupt")


async def test_events_pipeline_completed_lists_stages_sorted_with_trio_duration(
    autojump_clock: trio.abc.Clock,
) -> None:
    """events.md: "`stages_completed` is the sorted names of the stages that had finished;
    `duration_ms` is the run's time on the trio clock"."""

    async def quick(ctx: StageContext) -> None:
        await trio.sleep(0.25)

    graph = (
        Pipeline()
        .with_stage("zeta", quick, StageKind.WORK)
        .with_stage("alpha", quick, StageKind.WORK, dependencies=("zeta",))
        .build()
    )
    sink = RecordingEventSink()
    await graph.run(create_test_stage_context(event_sink=sink))
    assert sink.events[-1][0] == "pipeline_completed"
    payload = sink.events[-1][1]
    assert payload is not None
    assert (payload["stages_completed"], payload["duration_ms"]) == (["alpha", "zeta"], 500)


async def test_events_legacy_run_canceled_before_it_starts_reports_external() -> None:
    """events.md: "A legacy run stopped by `ctx.mark_canceled()` returns normally and ends
    with `pipeline_cancelled`, `stage` ... (`"<external>"` if it was set before the run ...),
    reason `"Pipeline canceled"`"."""

    async def stage(ctx: PipelineContext) -> StageResult:
        return _completed("s")

    sink = RecordingEventSink()
    ctx = create_test_pipeline_context(event_sink=sink)
    ctx.mark_canceled("my own reason")
    results = await StageGraph([StageSpec(name="s", runner=stage)]).run(ctx)
    assert (results["s"].status, results["s"].error) == ("failed", "Pipeline canceled")
    assert sink.types() == ["pipeline_cancelled"]
    [payload] = sink.of_type("pipeline_cancelled")
    assert payload is not None
    assert (payload["stage"], payload["reason"]) == ("<external>", "Pipeline canceled")


# --- interceptors.md ---------------------------------------------------------------------


async def test_interceptors_legacy_lifecycle_events_survive_a_broken_sink(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """interceptors.md (corrected): "The graphs' own lifecycle events ... are just as safe:
    a sink error is logged as a warning on `stageflow_trio.dag` and the run goes on"."""

    async def stage(ctx: PipelineContext) -> dict[str, Any]:
        return {"x": 1}

    ctx = create_test_pipeline_context(event_sink=_BrokenSink())
    with caplog.at_level(logging.WARNING, logger="stageflow_trio.dag"):
        results = await StageGraph([StageSpec(name="a", runner=stage)]).run(ctx)
    assert results["a"].status == "completed"
    dag_records = [r for r in caplog.records if r.name == "stageflow_trio.dag"]
    assert {r.levelno for r in dag_records} == {logging.WARNING}
    assert any("stage.a.started" in r.getMessage() for r in dag_records)


def test_interceptors_pipeline_wide_has_extra_only_when_given() -> None:
    """interceptors.md (corrected): `pipeline.wide` has "`extra` when a non-empty `extra` is
    given (as in the reference)"; `pipeline_name` falls back to `"pipeline"`."""
    sink = RecordingEventSink()
    ctx = create_test_pipeline_context(event_sink=sink, topology=None)
    emitter = WideEventEmitter()
    emitter.emit_pipeline_event(ctx=ctx, stage_results={})
    emitter.emit_pipeline_event(ctx=ctx, stage_results={}, extra={"k": 1})
    [plain, with_extra] = sink.of_type("pipeline.wide")
    assert plain is not None
    assert with_extra is not None
    assert "extra" not in plain
    assert with_extra["extra"] == {"k": 1}
    assert (plain["pipeline_name"], plain["status"], plain["duration_ms"]) == (
        "pipeline",
        "completed",
        None,
    )


async def test_interceptors_circuit_breaker_opens_after_five_and_half_opens_after_30_s(
    autojump_clock: trio.abc.Clock,
) -> None:
    """interceptors.md: "opens after 5 failed calls, short-circuits as "completed" with
    `"Circuit breaker open for {stage}"`, half-opens 30 s (trio clock) after the last
    failure"."""
    breaker = CircuitBreakerInterceptor()
    ctx = create_test_pipeline_context()
    calls: list[float] = []

    async def failing() -> StageResult:
        calls.append(trio.current_time())
        raise ValueError("down")

    for _ in range(5):
        assert (await run_with_interceptors("s", failing, ctx, [breaker])).status == "failed"
    blocked = await run_with_interceptors("s", failing, ctx, [breaker])
    assert (blocked.status, blocked.error) == ("completed", "Circuit breaker open for s")
    await trio.sleep(29.9)
    assert (await run_with_interceptors("s", failing, ctx, [breaker])).status == "completed"
    assert len(calls) == 5
    await trio.sleep(0.2)
    assert (await run_with_interceptors("s", failing, ctx, [breaker])).status == "failed"
    assert len(calls) == 6


class _ShortCircuit(BaseInterceptor):
    name = "short"
    priority = 1

    def __init__(self, value: Any) -> None:
        self.value = value

    async def before(self, stage_name: str, ctx: PipelineContext) -> InterceptorResult | None:
        return InterceptorResult(stage_ran=False, result=self.value)

    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        return None


async def test_interceptors_short_circuit_wraps_a_non_mapping_result() -> None:
    """interceptors.md: "A `result` that is not a mapping is kept as `{"result": value}`
    (`result="cached"` gives the data `{"result": "cached"}`); a falsy one gives `{}`"."""

    async def stage() -> StageResult:
        raise AssertionError("short-circuited: never called")

    ctx = create_test_pipeline_context()
    cases: list[tuple[Any, dict[str, Any]]] = [
        ("cached", {"result": "cached"}),
        ([1, 2], {"result": [1, 2]}),
        (0, {}),
        (None, {}),
        ({"k": 1}, {"k": 1}),
    ]
    for value, data in cases:
        result = await run_with_interceptors("s", stage, ctx, [_ShortCircuit(value)])
        assert (result.status, dict(result.data)) == ("completed", data)


# --- streaming.md ------------------------------------------------------------------------


async def test_streaming_a_put_waiting_for_room_returns_false_on_close() -> None:
    """streaming.md: "A `put` waiting for room at that moment returns `False`"; then
    consumers drain and "`get()` returns `None`"."""
    queue: ChunkQueue[int] = ChunkQueue(max_size=1)
    assert await queue.put(1)
    outcome: list[bool] = []

    async def blocked_put() -> None:
        outcome.append(await queue.put(2))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(blocked_put)
        await trio.testing.wait_all_tasks_blocked()
        await queue.close()
    assert outcome == [False]
    assert await queue.get() == 1
    assert await queue.get() is None


# --- subpipelines.md ---------------------------------------------------------------------


async def test_subpipelines_cancelled_child_fails_without_child_failed_event(
    autojump_clock: trio.abc.Clock,
) -> None:
    """subpipelines.md: the spawn "returns `SubpipelineResult(success=False, error="Child
    pipeline canceled: {reason}")`" and "A child stopped by `cancel_with_children` has no
    `child_failed` event"."""
    spawner = SubpipelineSpawner(child_tracker=ChildRunTracker())
    root = create_test_pipeline_context()
    assert root.pipeline_run_id is not None
    sink = RecordingEventSink()
    set_event_sink(sink)
    results: list[Any] = []

    async def forever(child: PipelineContext) -> None:
        await trio.sleep_forever()

    async def spawn() -> None:
        results.append(await spawner.spawn("w", root, uuid.uuid4(), "s", forever))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(spawn)
        await trio.sleep(1)
        await spawner.cancel_with_children(root.pipeline_run_id, reason="bye")
    [result] = results
    assert (result.success, result.error) == (False, "Child pipeline canceled: bye")
    assert "pipeline.child_failed" not in sink.types()
    with pytest.raises(TypeError, match="run_id must be a UUID"):
        await spawner.cancel_with_children(str(root.pipeline_run_id))  # type: ignore[arg-type]


# --- tools_execution.md ------------------------------------------------------------------


@attrs.frozen
class _Action:
    id: uuid.UUID
    type: str
    payload: dict[str, Any]


async def _tool(tool_input: ToolInput) -> ToolOutput:
    return ToolOutput.ok()


async def test_tools_execution_approval_timeout_and_denial(
    autojump_clock: trio.abc.Clock,
) -> None:
    """tools_execution.md: no decision in `approval_timeout_seconds` (60 s) "emits
    `tool.denied` (reason `approval_timeout`) and raises `ToolApprovalTimeoutError`";
    a denial raises `ToolApprovalDeniedError` "(no `request_id`, as in the reference)"."""
    sink = RecordingEventSink()
    set_event_sink(sink)
    approvals = ApprovalService()
    executor = AdvancedToolExecutor(undo_store=UndoStore(), approval_service=approvals)
    executor.register(
        ToolDefinition(name="t", action_type="T", handler=_tool, requires_approval=True)
    )
    ctx = adapt_context({"execution_mode": "agent"})
    with pytest.raises(ToolApprovalTimeoutError) as timed_out:
        await executor.execute(_Action(uuid.uuid4(), "T", {}), ctx)
    assert trio.current_time() == 60
    info = timed_out.value.to_dict()
    assert (info["reason"], info["timeout_seconds"]) == ("timeout", 60.0)
    [denied] = sink.of_type("tool.denied")
    assert denied is not None
    assert denied["reason"] == "approval_timeout"

    async def deny() -> None:
        await trio.testing.wait_all_tasks_blocked()
        [request] = await approvals.get_pending_requests()
        await approvals.record_decision(request.id, granted=False)

    errors: list[BaseException] = []

    async def execute() -> None:
        try:
            await executor.execute(_Action(uuid.uuid4(), "T", {}), ctx)
        except ToolApprovalDeniedError as error:
            errors.append(error)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(deny)
        nursery.start_soon(execute)
    [refused] = errors
    assert isinstance(refused, ToolApprovalDeniedError)
    assert refused.to_dict()["request_id"] is None


# --- context.md --------------------------------------------------------------------------


def test_context_list_field_checks_of_memory_and_enrichments() -> None:
    """context.md (corrected): `"goals[1] must be a str, got int"` "(also `MemoryEnrichment`'s
    `recent_topics` and `key_facts`)", `"blocks[0] must be a mapping, got int"` "(also
    `Enrichments(web_results=...)`)"."""
    with pytest.raises(TypeError, match=r"^recent_topics\[1\] must be a str, got int$"):
        MemoryEnrichment(recent_topics=["a", 1])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"^key_facts\[1\] must be a str, got int$"):
        MemoryEnrichment(key_facts=["a", 1])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"^web_results\[0\] must be a mapping, got int$"):
        Enrichments(web_results=[1])  # type: ignore[list-item]


def test_context_merge_deduplicates_lists_only_when_every_item_is_hashable() -> None:
    """context.md (corrected): `merge` gives "lists concatenated, leaving out the new items
    already in the old list when every item is hashable, plainly when one is not"."""
    detector = ConflictDetector("merge")
    assert detector.check_and_resolve("k", [1, 2], [2, 3]).merged_value == [1, 2, 3]
    mixed = detector.check_and_resolve("k", [1, [2]], [[2], 1, 3]).merged_value
    assert mixed == [1, [2], [2], 1, 3]
    assert detector.check_and_resolve("k", "a", "b").merged_value == "a\nb"


# --- testing.md --------------------------------------------------------------------------


def test_testing_fault_checks_its_fields() -> None:
    """testing.md: "a `"raise"` fault needs an exception instance as `error` (an exception
    class is refused), `message` is a str, and `seconds` is finite and `>= 0`"."""
    with pytest.raises(TypeError, match="error must be an exception instance"):
        Fault(stage="s", action="raise", error=ValueError)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs an error"):
        Fault(stage="s", action="raise")
    with pytest.raises(TypeError, match="message must be a str"):
        Fault(stage="s", action="fail", message=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seconds must be a finite number"):
        Fault(stage="s", action="delay", seconds=math.inf)
    with pytest.raises(ValueError, match="seconds must be >= 0"):
        Fault(stage="s", action="delay", seconds=-1)


# --- getting_started.md ------------------------------------------------------------------


async def test_getting_started_run_topology_defaults_to_the_pipeline_name() -> None:
    """getting_started.md: `Pipeline.run(...)` keywords include "`topology=` (default: the
    pipeline's name)"."""
    seen: list[str | None] = []

    async def look(ctx: StageContext) -> None:
        seen.append(ctx.snapshot.topology)

    await Pipeline(name="demo").with_stage("look", look, StageKind.TRANSFORM).run()
    assert seen == ["demo"]
