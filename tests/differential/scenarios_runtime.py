"""Scenarios: interceptors, cancellation, subpipelines, event sinks and wide events."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from tests.differential.harness import (
    RUN_ID,
    SESSION_ID,
    USER_ID,
    Divergence,
    Side,
    drop_events,
    scenario,
    swap_outcome,
)
from tests.differential.scenarios_core import pipeline_ctx
from tests.fakes import extras

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)


def result(side: Side, name: str, status: str, error: str | None = None, **data: Any) -> Any:
    return side.mod("stages.result").StageResult(
        name=name, status=status, started_at=T0, ended_at=T1, data=data, error=error
    )


def _result_view(res: Any) -> Any:
    return [res.name, res.status, dict(res.data), res.error]


# --- interceptors -----------------------------------------------------------------------


@scenario("interceptors")
async def default_interceptor_chain(side: Side) -> Any:
    ic = side.mod("pipeline.interceptors")
    chain = ic.get_default_interceptors(include_idempotency=False)
    return [[type(i).__name__, i.priority] for i in chain]


@scenario("interceptors")
async def interceptors_run_ok_stage(side: Side) -> Any:
    ic = side.mod("pipeline.interceptors")

    async def run() -> Any:
        await side.checkpoint()
        return result(side, "s", "completed", answer=42)

    chain = ic.get_default_interceptors(include_idempotency=False)
    return _result_view(await ic.run_with_interceptors("s", run, pipeline_ctx(side), chain))


@scenario("interceptors")
async def interceptors_stage_raises(side: Side) -> Any:
    ic = side.mod("pipeline.interceptors")

    async def run() -> Any:
        raise RuntimeError("stage broke")

    chain = ic.get_default_interceptors(include_idempotency=False)
    return _result_view(await ic.run_with_interceptors("s", run, pipeline_ctx(side), chain))


@scenario("interceptors")
async def custom_interceptor_short_circuits(side: Side) -> Any:
    ic = side.mod("pipeline.interceptors")
    seen: list[str] = []

    base: Any = ic.BaseInterceptor

    class Gate(base):  # type: ignore[misc]
        name = "gate"
        priority = 5

        async def before(self, stage_name: str, ctx: Any) -> Any:
            seen.append(f"before:{stage_name}")
            return ic.InterceptorResult(stage_ran=False, result={"cached": True}, error=None)

        async def after(self, stage_name: str, res: Any, ctx: Any) -> None:
            seen.append("after")

    async def run() -> Any:
        seen.append("ran")
        return result(side, "s", "completed")

    res = await ic.run_with_interceptors("s", run, pipeline_ctx(side), [Gate()])
    return [seen, _result_view(res)]


@scenario("interceptors")
async def retry_interceptor_strategies(side: Side) -> Any:
    retry = side.mod("pipeline.retry")
    return [[s.value for s in retry.BackoffStrategy], [s.value for s in retry.JitterStrategy]]


@scenario(
    "interceptors",
    Divergence(
        "Differential harness findings",
        "`stage.retry_scheduled` / `stage.retry_exhausted` delivery",
        drop_events("stage.retry_"),
    ),
)
async def retry_interceptor_recovers(side: Side) -> Any:
    ic, retry = side.mod("pipeline.interceptors"), side.mod("pipeline.retry")
    calls = {"n": 0}

    async def run() -> Any:
        calls["n"] += 1
        await side.checkpoint()
        if calls["n"] < 2:
            raise ConnectionError("connection reset")
        return result(side, "s", "completed", ok=1)

    interceptor = retry.RetryInterceptor(
        max_attempts=3, base_delay_ms=1, jitter_strategy=retry.JitterStrategy.NONE
    )
    res = await ic.run_with_interceptors("s", run, pipeline_ctx(side), [interceptor])
    return [calls["n"], _result_view(res)]


IDEMPOTENT_REPLAY = Divergence(
    "Differential harness findings",
    "Idempotency replay through `run_with_interceptors`",
    swap_outcome(
        [1, ["work", "completed", {"n": 1}, None], ["work", "completed", {"n": 1}, None]],
        {"raised": "TypeError", "message": "'StageResult' object is not iterable"},
    ),
)


@scenario("interceptors", IDEMPOTENT_REPLAY, raises="TypeError")
async def idempotency_interceptor_replays(side: Side) -> Any:
    ic, idem = side.mod("pipeline.interceptors"), side.mod("pipeline.idempotency")
    calls = {"n": 0}

    async def run() -> Any:
        calls["n"] += 1
        return result(side, "work", "completed", n=calls["n"])

    ctx = pipeline_ctx(side, data={"idempotency_key": "key-1"})
    interceptor = idem.IdempotencyInterceptor()
    first = await ic.run_with_interceptors("work", run, ctx, [interceptor])
    second = await ic.run_with_interceptors("work", run, ctx, [interceptor])
    return [calls["n"], _result_view(first), _result_view(second)]


# --- cancellation -----------------------------------------------------------------------


@scenario("cancellation")
async def cancellation_token_first_reason_wins(side: Side) -> Any:
    token = side.mod("pipeline.cancellation").CancellationToken()
    calls: list[str] = []
    token.on_cancel(lambda: calls.append("early"))
    token.cancel("first")
    token.cancel("second")
    token.on_cancel(lambda: calls.append("late"))
    return [token.is_cancelled, token.reason, calls]


@scenario("cancellation")
async def cancellation_callback_errors_are_suppressed(side: Side) -> Any:
    token = side.mod("pipeline.cancellation").CancellationToken()
    calls: list[str] = []

    def bad() -> None:
        raise RuntimeError("callback broke")

    token.on_cancel(bad)
    token.on_cancel(lambda: calls.append("after"))
    token.cancel("stop")
    return [token.reason, calls]


@scenario("cancellation")
async def cleanup_registry_lifo_and_errors(side: Side) -> Any:
    registry = side.mod("pipeline.cancellation").CleanupRegistry()
    order: list[str] = []

    def make(name: str, fail: bool = False) -> Any:
        async def cleanup() -> None:
            order.append(name)
            if fail:
                raise RuntimeError(f"{name} failed")

        return cleanup

    registry.register(make("a"), name="a")
    registry.register(make("b", fail=True), name="b")
    registry.register(make("c"), name="c")
    done, failed = await registry.run_all(timeout=1.0)
    return [
        order,
        done,
        [(n, str(e)) for n, e in failed],
        registry.count if hasattr(registry, "count") else None,
    ]


@scenario("cancellation")
async def cleanup_registry_unregister(side: Side) -> Any:
    registry = side.mod("pipeline.cancellation").CleanupRegistry()
    order: list[str] = []

    async def a() -> None:
        order.append("a")

    async def b() -> None:
        order.append("b")

    registry.register(a, name="a")
    registry.register(b)
    registry.unregister(a)
    done, failed = await registry.run_all()
    return [order, done, failed]


@scenario("cancellation")
async def run_with_cleanup_runs_cleanup(side: Side) -> Any:
    canc = side.mod("pipeline.cancellation")
    order: list[str] = []

    async def work() -> str:
        await side.checkpoint()
        order.append("work")
        return "value"

    async def cleanup() -> None:
        order.append("cleanup")

    value = await canc.run_with_cleanup(work(), cleanup)
    return [value, order]


@scenario("cancellation")
async def cleanup_on_cancel_runs_on_error(side: Side) -> Any:
    canc = side.mod("pipeline.cancellation")
    order: list[str] = []

    async def cleanup() -> None:
        order.append("cleanup")

    try:
        async with canc.cleanup_on_cancel(cleanup, name="c"):
            order.append("body")
            raise KeyError("x")
    except KeyError:
        order.append("raised")
    return order


# --- subpipelines -----------------------------------------------------------------------


@scenario("subpipelines")
async def child_tracker_tree(side: Side) -> Any:
    tracker = side.mod("pipeline").ChildRunTracker()
    await tracker.register_child(RUN_ID, SESSION_ID)
    await tracker.register_child(SESSION_ID, USER_ID)
    view = [
        sorted(map(str, await tracker.get_children(RUN_ID))),
        str(await tracker.get_parent(USER_ID)),
        str(await tracker.get_root_run(USER_ID)),
        sorted(map(str, await tracker.get_all_descendants(RUN_ID))),
    ]
    await tracker.cleanup_run(RUN_ID)
    view.append(sorted(map(str, await tracker.get_children(RUN_ID))))
    return view


@scenario("subpipelines")
async def spawner_child_succeeds(side: Side) -> Any:
    pipeline = side.mod("pipeline")
    spawner = pipeline.SubpipelineSpawner(child_tracker=pipeline.ChildRunTracker())

    async def runner(child: Any) -> Any:
        await side.checkpoint()
        return {"child_topology": child.topology, "parent": str(child.parent_run_id)}

    res = await spawner.spawn(
        "child", pipeline_ctx(side), USER_ID, "tool_stage", runner, topology="kid"
    )
    return [res.success, res.data, res.error]


@scenario("subpipelines")
async def spawner_child_fails(side: Side) -> Any:
    pipeline = side.mod("pipeline")
    spawner = pipeline.SubpipelineSpawner(child_tracker=pipeline.ChildRunTracker())

    async def runner(child: Any) -> Any:
        raise ValueError("child broke")

    res = await spawner.spawn("child", pipeline_ctx(side), USER_ID, "tool_stage", runner)
    return [res.success, res.data, res.error]


@scenario("subpipelines")
async def spawner_max_depth(side: Side) -> Any:
    pipeline = side.mod("pipeline")
    tracker = pipeline.ChildRunTracker()
    spawner = pipeline.SubpipelineSpawner(child_tracker=tracker, max_depth=1)
    depths: list[int] = []

    async def grandchild(ctx: Any) -> Any:
        return {}

    async def child(ctx: Any) -> Any:
        res = await spawner.spawn("grandchild", ctx, USER_ID, "inner", grandchild)
        depths.append(0)
        return {"inner": [res.success, res.error]}

    res = await spawner.spawn("child", pipeline_ctx(side), USER_ID, "outer", child)
    return [pipeline.DEFAULT_MAX_SUBPIPELINE_DEPTH, res.success, res.data, res.error, depths]


# --- event sinks and wide events ----------------------------------------------------------


@scenario("events")
async def backpressure_metrics_values(side: Side) -> Any:
    metrics = side.mod("events").BackpressureMetrics()
    for _ in range(3):
        metrics.record_emit()
    metrics.record_drop()
    view = metrics.to_dict()
    return {k: v for k, v in view.items() if not k.startswith("last_")}


@scenario("events")
async def noop_and_logging_sinks(side: Side) -> Any:
    events = side.mod("events")
    noop = events.NoOpEventSink()
    noop.try_emit(type=None, data=None)
    returned = await noop.emit(type="x", data=None)
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    logger = logging.getLogger(f"{side.root}.events")
    logger.addHandler(handler)
    try:
        sink = events.LoggingEventSink(level=logging.WARNING)
        sink.try_emit(type="a.b", data={"k": 1})
        await sink.emit(type="c.d", data=None)
    finally:
        logger.removeHandler(handler)
    return [
        returned,
        [(r.getMessage(), r.levelno, extras(r, "event_type", "event_data")) for r in records],
    ]


@scenario("events")
async def global_event_sink(side: Side) -> Any:
    events = side.mod("events")
    before = type(events.get_event_sink()).__name__
    events.set_event_sink(side.sink)
    try:
        await events.get_event_sink().emit(type="global.one", data={"n": 1})
        inside = events.get_event_sink() is side.sink
    finally:
        events.clear_event_sink()
    return [before, inside, type(events.get_event_sink()).__name__]


@scenario("events")
async def stage_wide_event_payload(side: Side) -> Any:
    wide = side.mod("observability.wide_events")
    ctx = pipeline_ctx(side)
    wide.emit_stage_wide_event(
        ctx=ctx, result=result(side, "s", "completed", z=1, a=2), extra={"x": 1}
    )
    wide.emit_stage_wide_event(ctx=ctx, result=result(side, "t", "failed", error="bad"))
    return None


@scenario("events")
async def pipeline_wide_event_payload(side: Side) -> Any:
    wide = side.mod("observability.wide_events")
    ctx = pipeline_ctx(side)
    results = {"a": result(side, "a", "completed"), "b": result(side, "b", "failed", error="x")}
    wide.emit_pipeline_wide_event(ctx=ctx, stage_results=results, pipeline_name=None, extra=None)
    wide.emit_pipeline_wide_event(ctx=ctx, stage_results={"a": results["a"]}, pipeline_name="named")
    return None


@scenario("events")
async def pipeline_context_records_stage_events(side: Side) -> Any:
    ctx = pipeline_ctx(side)
    ctx.record_stage_event(stage="s", status="started")
    ctx.record_stage_event(stage="s", status="completed", payload={"k": 1})
    return None


async def _spawn_with_events(side: Side, fail: bool) -> Any:
    pipeline, events = side.mod("pipeline"), side.mod("events")
    spawner = pipeline.SubpipelineSpawner(child_tracker=pipeline.ChildRunTracker())

    async def runner(child: Any) -> Any:
        await side.checkpoint()
        if fail:
            raise RuntimeError("child broke")
        return {"n": 1}

    events.set_event_sink(side.sink)
    try:
        res = await spawner.spawn("kid", pipeline_ctx(side), USER_ID, "tool_stage", runner)
    finally:
        events.clear_event_sink()
    return [res.success, res.data, res.error]


@scenario("subpipelines")
async def spawner_events_on_success(side: Side) -> Any:
    return await _spawn_with_events(side, fail=False)


@scenario("subpipelines")
async def spawner_events_on_failure(side: Side) -> Any:
    return await _spawn_with_events(side, fail=True)


@scenario("subpipelines")
async def spawner_cancel_with_children_marks_runs(side: Side) -> Any:
    pipeline, events = side.mod("pipeline"), side.mod("events")
    tracker = pipeline.ChildRunTracker()
    await tracker.register_child(RUN_ID, SESSION_ID)
    await tracker.register_child(SESSION_ID, USER_ID)
    spawner = pipeline.SubpipelineSpawner(child_tracker=tracker)
    events.set_event_sink(side.sink)
    try:
        await spawner.cancel_with_children(RUN_ID, reason="user_requested")
    finally:
        events.clear_event_sink()
    return sorted(map(str, await tracker.get_all_descendants(RUN_ID)))


@scenario("cancellation")
async def cancellation_token_callbacks_once(side: Side) -> Any:
    token = side.mod("pipeline.cancellation").CancellationToken()
    calls: list[int] = []
    token.on_cancel(lambda: calls.append(1))
    token.cancel("a")
    token.cancel("b")
    return [calls, token.reason]


_DOWN = ["s", "failed", {}, "down"]
_OPEN = ["s", "completed", {}, "Circuit breaker open for s"]


@scenario(
    "interceptors",
    Divergence(
        "Differential harness findings",
        "`CircuitBreakerInterceptor` failure count",
        swap_outcome([_DOWN] * 5 + [_OPEN] * 2, [_DOWN] * 3 + [_OPEN] + [_DOWN] * 3),
    ),
)
async def circuit_breaker_opens(side: Side) -> Any:
    ic = side.mod("pipeline.interceptors")

    async def run() -> Any:
        raise RuntimeError("down")

    breaker = ic.CircuitBreakerInterceptor()
    ctx = pipeline_ctx(side)
    seen = [
        _result_view(await ic.run_with_interceptors("s", run, ctx, [breaker])) for _ in range(7)
    ]
    return seen
