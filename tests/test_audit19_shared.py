"""Audit 19: one pipeline built once and run for every request, concurrently, in one trio run.

A web service builds its graph, interceptors, sinks, spawner and stores once and
runs a request through them in a task of its own, many at a time. Everything
shared must keep each run's state to that run: outputs, events, spans,
interceptor bookkeeping, claims, child runs, cancellation. These tests run 100-150
overlapping runs (stages yield at different points: seeded sleeps on the
autojump clock, bare checkpoints), fail, cancel and time out some of them in the
middle, and check that every run got its own answer and its own events, that the
others were untouched, and that the shared objects hold nothing once the runs
are over.

One defect was found: marking one run's PipelineContext cancelled (a client that
hung up), or starting a run with a context made ``canceled=True``, cancelled the
``cancel_token`` the caller passed, which a service shares between runs (a
shutdown token): every sibling run sharing it was cancelled, and so was every
later run given that token.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter, defaultdict
from typing import Any

import pytest
import trio

from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.events import BackpressureAwareEventSink, set_event_sink
from stageflow_trio.helpers import PipelineRunner
from stageflow_trio.pipeline import (
    ChildRunTracker,
    GuardRetryPolicy,
    GuardRetryStrategy,
    Pipeline,
    SubpipelineSpawner,
    UnifiedPipelineCancelled,
    UnifiedStageExecutionError,
)
from stageflow_trio.pipeline.cancellation import CancellationToken
from stageflow_trio.pipeline.dag import StageGraph, StageSpec
from stageflow_trio.pipeline.idempotency import IdempotencyInterceptor, InMemoryIdempotencyStore
from stageflow_trio.pipeline.interceptors import (
    ChildTrackerMetricsInterceptor,
    LoggingInterceptor,
    MetricsInterceptor,
    TimeoutInterceptor,
    TracingInterceptor,
    get_default_interceptors,
)
from stageflow_trio.pipeline.interceptors_hardening import (
    ContextSizeInterceptor,
    ImmutabilityInterceptor,
)
from stageflow_trio.pipeline.retry import RetryInterceptor
from stageflow_trio.stages import PipelineContext
from stageflow_trio.testing import RecordingEventSink, create_test_pipeline_context
from tests.fakes import RecordingTracer as FakeTracer

# --------------------------------------------------------------------------- helpers


def own_events_only(ctx: PipelineContext, sink: RecordingEventSink) -> None:
    """Every event in ``sink`` that names a run names ``ctx``'s run."""
    run_id = str(ctx.pipeline_run_id)
    for event_type, data in sink.events:
        if data and "pipeline_run_id" in data:
            assert str(data["pipeline_run_id"]) == run_id, (event_type, data)


def request_number(ctx: StageContext) -> int:
    return int(ctx.snapshot.input_text or "")


async def wait_long(ctx: StageContext) -> StageOutput:
    await trio.sleep(10)
    return StageOutput.ok(n=request_number(ctx))


# ----------------------------------------------------- the defect: a shared token


async def test_one_requests_context_marked_cancelled_leaves_a_shared_token_alone(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A client hangs up: its run stops, the others sharing the service's token go on."""
    graph = Pipeline("svc").with_stage("work", wait_long, StageKind.WORK).build()
    shutdown = CancellationToken()  # the service's, passed to every run
    contexts = {i: create_test_pipeline_context(input_text=str(i)) for i in range(20)}
    outcomes: dict[int, object] = {}

    async def handle(i: int) -> None:
        try:
            results = await graph.run(contexts[i], cancel_token=shutdown)
            outcomes[i] = results["work"].data["n"]
        except UnifiedPipelineCancelled as exc:
            outcomes[i] = ("cancelled", exc.stage, exc.reason)

    async with trio.open_nursery() as nursery:
        for i in range(20):
            nursery.start_soon(handle, i)
        await trio.sleep(1)
        contexts[3].mark_canceled("client went away")

    assert outcomes[3] == ("cancelled", "<external>", "client went away")
    assert {i: outcomes[i] for i in outcomes if i != 3} == {i: i for i in range(20) if i != 3}
    assert not shutdown.is_cancelled
    # The token keeps nothing of the runs that have ended.
    assert not shutdown._callbacks
    # ...and still serves: a later run with it completes.
    later = await graph.run(create_test_pipeline_context(input_text="99"), cancel_token=shutdown)
    assert later["work"].data["n"] == 99


async def test_a_context_made_cancelled_does_not_cancel_the_shared_token(
    autojump_clock: trio.testing.MockClock,
) -> None:
    graph = Pipeline("svc").with_stage("work", wait_long, StageKind.WORK).build()
    shutdown = CancellationToken()
    dead = create_test_pipeline_context(input_text="1", canceled=True)
    with pytest.raises(UnifiedPipelineCancelled) as stopped:
        await graph.run(dead, cancel_token=shutdown)
    assert (stopped.value.stage, stopped.value.reason) == ("<external>", "Cancelled")
    assert not shutdown.is_cancelled
    results = await graph.run(create_test_pipeline_context(input_text="2"), cancel_token=shutdown)
    assert results["work"].data["n"] == 2


@pytest.mark.parametrize("entry", ["Pipeline.run", "PipelineRunner.run"])
async def test_the_other_entries_keep_a_shared_token_too(
    autojump_clock: trio.testing.MockClock, entry: str
) -> None:
    pipeline = Pipeline("svc").with_stage("work", wait_long, StageKind.WORK)
    runner = PipelineRunner(verbose=False)
    shutdown = CancellationToken()
    contexts = {i: create_test_pipeline_context(input_text=str(i)) for i in range(5)}
    cancelled: dict[int, bool] = {}

    async def handle(i: int) -> None:
        if entry == "Pipeline.run":
            try:
                await pipeline.run(contexts[i], cancel_token=shutdown)
                cancelled[i] = False
            except UnifiedPipelineCancelled:
                cancelled[i] = True
        else:
            result = await runner.run(pipeline, pipeline_ctx=contexts[i], cancel_token=shutdown)
            cancelled[i] = result.cancelled

    async with trio.open_nursery() as nursery:
        for i in range(5):
            nursery.start_soon(handle, i)
        await trio.sleep(1)
        contexts[0].mark_canceled("gone")
    assert cancelled == {0: True, 1: False, 2: False, 3: False, 4: False}
    assert not shutdown.is_cancelled


async def test_the_shared_token_still_stops_every_run_with_its_reason(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Cancelling the caller's token reaches runs started with a PipelineContext."""
    graph = Pipeline("svc").with_stage("work", wait_long, StageKind.WORK).build()
    shutdown = CancellationToken()
    reasons: list[str] = []
    seen_in_stage: list[bool] = []

    async def handle(i: int) -> None:
        try:
            await graph.run(create_test_pipeline_context(input_text=str(i)), cancel_token=shutdown)
        except UnifiedPipelineCancelled as exc:
            reasons.append(exc.reason)

    async def probe(ctx: StageContext) -> StageOutput:
        try:
            await trio.sleep(10)
        finally:
            seen_in_stage.append(ctx.is_cancelled)
        return StageOutput.ok()

    probing = Pipeline("probe").with_stage("probe", probe, StageKind.WORK).build()

    async def handle_probe() -> None:
        with pytest.raises(UnifiedPipelineCancelled):
            await probing.run(create_test_pipeline_context(input_text="0"), cancel_token=shutdown)

    async with trio.open_nursery() as nursery:
        for i in range(10):
            nursery.start_soon(handle, i)
        nursery.start_soon(handle_probe)
        await trio.sleep(1)
        shutdown.cancel("server shutting down")
    assert reasons == ["server shutting down"] * 10
    assert seen_in_stage == [True]
    assert trio.current_time() == 1
    # A run started after the shutdown stops at once.
    with pytest.raises(UnifiedPipelineCancelled) as late:
        await graph.run(create_test_pipeline_context(input_text="1"), cancel_token=shutdown)
    assert late.value.reason == "server shutting down"


async def test_a_failing_or_cancelling_run_leaves_the_shared_token_alone(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def work(ctx: StageContext) -> StageOutput:
        n = request_number(ctx)
        await trio.sleep(1 if n < 2 else 5)
        if n == 0:
            return StageOutput.cancel(reason="nothing to do")
        if n == 1:
            raise ValueError("broken request")
        return StageOutput.ok(n=n)

    graph = Pipeline("svc").with_stage("work", work, StageKind.WORK).build()
    shutdown = CancellationToken()
    outcomes: dict[int, object] = {}

    async def handle(i: int, pipeline_ctx: bool) -> None:
        ctx = create_test_pipeline_context(input_text=str(i))
        try:
            run_ctx = ctx if pipeline_ctx else ctx.derive_root_stage_context()
            outcomes[i] = (await graph.run(run_ctx, cancel_token=shutdown))["work"].data["n"]
        except UnifiedPipelineCancelled as exc:
            outcomes[i] = exc.reason
        except UnifiedStageExecutionError as exc:
            outcomes[i] = str(exc.original)

    async with trio.open_nursery() as nursery:
        for i in range(8):
            nursery.start_soon(handle, i, i % 2 == 0)
    assert outcomes == {0: "nothing to do", 1: "broken request", **{i: i for i in range(2, 8)}}
    assert not shutdown.is_cancelled


# ------------------------------------------- checks that found nothing: unified chain


async def test_a_shared_chain_of_every_interceptor_keeps_each_runs_state_apart(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """70 runs at once through one chain: ok, raise, fail, cancel, outer timeout, in the
    middle. Ten runs of each ``n % 7``, all in flight together, interleave as the 150 did
    (until audit 26): each stage sleeps a random part of 10 ms, so every run's calls
    overlap calls of every kind."""
    rng = random.Random(19)
    tracer = FakeTracer()
    idempotency = IdempotencyInterceptor()
    timeout = TimeoutInterceptor()
    tracing = TracingInterceptor(tracer)
    size = ContextSizeInterceptor()
    immutability = ImmutabilityInterceptor()
    chain = [
        idempotency,
        timeout,
        tracing,
        MetricsInterceptor(),
        ChildTrackerMetricsInterceptor(),
        LoggingInterceptor(),
        RetryInterceptor(max_attempts=2, base_delay_ms=1),
        size,
        immutability,
    ]

    async def a(ctx: StageContext) -> StageOutput:
        await trio.sleep(rng.random() / 100)
        return StageOutput.ok(v=ctx.snapshot.input_text)

    async def b(ctx: StageContext) -> StageOutput:
        n = request_number(ctx)
        await trio.lowlevel.checkpoint()
        await trio.sleep(rng.random() / 100)
        kind = n % 7
        if kind == 1:
            raise ValueError(f"boom {n}")
        if kind == 2:
            return StageOutput.fail(error=f"fail {n}")
        if kind == 3:
            return StageOutput.cancel(reason=f"cancel {n}")
        if kind == 4:
            await trio.sleep(1000)  # the caller's deadline cuts it
        return StageOutput.ok(v=ctx.inputs.get_from("a", "v") + "b")

    async def c(ctx: StageContext) -> StageOutput:
        await trio.sleep(rng.random() / 100)
        return StageOutput.ok(v=ctx.inputs.get_from("a", "v") + "c")

    async def d(ctx: StageContext) -> StageOutput:
        return StageOutput.ok(v=ctx.inputs.get_from("b", "v") + ctx.inputs.get_from("c", "v"))

    graph = (
        Pipeline("p")
        .with_stage("a", a, StageKind.TRANSFORM)
        .with_stage("b", b, StageKind.TRANSFORM, dependencies=("a",))
        .with_stage("c", c, StageKind.TRANSFORM, dependencies=("a",))
        .with_stage("d", d, StageKind.TRANSFORM, dependencies=("b", "c"))
        .build(interceptors=chain)
    )
    count = 70
    outcomes: dict[int, tuple[Any, ...]] = {}
    runs: dict[int, tuple[PipelineContext, RecordingEventSink]] = {}

    async def handle(n: int) -> None:
        sink = RecordingEventSink()
        ctx = create_test_pipeline_context(
            input_text=str(n),
            event_sink=sink,
            data={"_timeout_ms": 100_000, "idempotency_key": f"request-{n}"},
        )
        runs[n] = (ctx, sink)
        with trio.move_on_after(0.5 if n % 7 == 4 else 100) as deadline:
            try:
                results = await graph.run(ctx)
                outcomes[n] = ("ok", results["d"].data["v"])
            except UnifiedStageExecutionError as exc:
                outcomes[n] = ("error", exc.stage, str(exc.original))
            except UnifiedPipelineCancelled as exc:
                outcomes[n] = ("cancelled", exc.stage, exc.reason)
        if deadline.cancelled_caught:
            outcomes[n] = ("deadline",)

    async with trio.open_nursery() as nursery:
        for n in range(count):
            nursery.start_soon(handle, n)

    def expected(n: int) -> tuple[Any, ...]:
        kind = n % 7
        if kind == 1:
            return ("error", "b", f"boom {n}")
        if kind == 2:
            return ("error", "b", f"fail {n}")
        if kind == 3:
            return ("cancelled", "b", f"cancel {n}")
        if kind == 4:
            return ("deadline",)
        return ("ok", f"{n}b{n}c")

    for n in range(count):
        want = expected(n)
        assert outcomes[n] == want, n
    for ctx, sink in runs.values():
        own_events_only(ctx, sink)
        # The chain's per-call keys are gone from each run's data.
        assert set(ctx.data) == {"_timeout_ms", "idempotency_key"}
    # One span per stage call, ended once, labelled with its own run.
    assert all(span.ended == 1 for span in tracer.spans)
    per_run = Counter(span.attributes["stageflow.pipeline_run_id"] for span in tracer.spans)
    for n, (ctx, _) in runs.items():
        assert per_run[str(ctx.pipeline_run_id)] == (4 if outcomes[n][0] == "ok" else 3), n
    # Nothing of any call is left in the shared interceptors.
    assert not idempotency._owned
    assert not tracing._spans
    assert not timeout._found
    assert not size._sizes
    assert not immutability._before
    # Each completed run's stages are cached under its own key: a repeat replays.
    repeat = create_test_pipeline_context(input_text="0", data={"idempotency_key": "request-0"})
    assert (await graph.run(repeat))["d"].data["v"] == "0b0c"


async def test_legacy_graph_with_one_default_chain_and_some_runs_marked_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    rng = random.Random(7)
    chain = [
        *get_default_interceptors(),
        RetryInterceptor(max_attempts=3, base_delay_ms=5),
        ContextSizeInterceptor(),
        ImmutabilityInterceptor(),
    ]
    chain = [i for i in chain if i.name != "circuit_breaker"]  # it is shared on purpose

    async def a(ctx: PipelineContext) -> dict[str, int]:
        n = ctx.data["n"]
        # The runs to be marked are still in their first stage when it happens.
        await trio.sleep(1 if n % 6 == 5 else rng.random() / 50)
        if n % 6 == 1 and not ctx.data.get("failed_once"):
            ctx.data["failed_once"] = True
            raise ConnectionError(f"flaky {n}")  # retried
        return {"n": n}

    async def b(ctx: PipelineContext) -> dict[str, int]:
        n = ctx.data["n"]
        await trio.sleep(rng.random() / 50)
        if n % 6 == 2:
            raise ValueError(f"bad {n}")
        if n % 6 == 4:
            await trio.sleep(100)  # the chain's timeout cuts it
        return {"n": n}

    async def c(ctx: PipelineContext) -> dict[str, int]:
        await trio.lowlevel.checkpoint()
        return {"n": ctx.data["n"]}

    graph = StageGraph(
        [
            StageSpec(name="a", runner=a),
            StageSpec(name="b", runner=b, dependencies=("a",)),
            StageSpec(name="c", runner=c, dependencies=("a",)),
        ],
        interceptors=chain,
    )
    count = 120
    contexts = {
        n: create_test_pipeline_context(data={"n": n, "_timeout_ms": 1000}) for n in range(count)
    }
    outcomes: dict[int, dict[str, tuple[Any, ...]]] = {}

    async def handle(n: int) -> None:
        results = await graph.run(contexts[n])
        outcomes[n] = {k: (r.status, r.data.get("n"), r.error) for k, r in results.items()}

    async with trio.open_nursery() as nursery:
        for n in range(count):
            nursery.start_soon(handle, n)
        await trio.sleep(0.001)
        for n in range(5, count, 6):
            contexts[n].mark_canceled("caller left")

    ok = ("completed",)
    for n, out in outcomes.items():
        kind = n % 6
        if kind == 5:
            assert out == dict.fromkeys("abc", ("failed", None, "Pipeline canceled")), n
        elif kind == 2:
            assert out["b"] == ("failed", None, f"bad {n}")
            assert out["c"] == (*ok, n, None)
        elif kind == 4:
            assert out["b"] == ("failed", None, "Stage timed out after 1000ms")
            assert out["c"] == (*ok, n, None)
        else:
            assert out == dict.fromkeys("abc", (*ok, n, None)), n
    owned = [getattr(i, "_owned", None) for i in chain] + [
        getattr(i, "_spans", None) for i in chain
    ]
    assert not any(owned)


# ------------------------------------------------- guard retries, runner, spawner


async def test_guard_retries_of_concurrent_runs_count_per_run(
    autojump_clock: trio.testing.MockClock,
) -> None:
    rng = random.Random(3)
    drafts: defaultdict[int, int] = defaultdict(int)

    async def draft(ctx: StageContext) -> StageOutput:
        n = request_number(ctx)
        drafts[n] += 1
        await trio.sleep(rng.random() / 100)
        return StageOutput.ok(draft_no=drafts[n], n=n)

    async def side(ctx: StageContext) -> StageOutput:
        await trio.sleep(rng.random() / 50)
        return StageOutput.ok()

    async def guard(ctx: StageContext) -> StageOutput:
        n = request_number(ctx)
        await trio.sleep(rng.random() / 100)
        assert ctx.inputs.get_from("draft", "n") == n
        version = ctx.inputs.get_from("draft", "draft_no")
        if version < n % 4 + 1:
            return StageOutput.fail(error=f"draft {version} too short")
        return StageOutput.ok(passed=version)

    chain = [i for i in get_default_interceptors() if i.name != "circuit_breaker"]
    graph = (
        Pipeline("g")
        .with_stage("draft", draft, StageKind.TRANSFORM)
        .with_stage("side", side, StageKind.WORK)
        .with_stage("guard", guard, StageKind.GUARD, dependencies=("draft", "side"))
        .build(
            guard_retry_strategy=GuardRetryStrategy(
                {"guard": GuardRetryPolicy("draft", max_attempts=3, stagnation_limit=5)}
            ),
            interceptors=chain,
        )
    )
    outcomes: dict[int, tuple[Any, ...]] = {}
    sinks: dict[int, RecordingEventSink] = {}

    async def handle(n: int) -> None:
        sink = sinks[n] = RecordingEventSink()
        ctx = create_test_pipeline_context(
            input_text=str(n), event_sink=sink, data={"idempotency_key": f"k{n}"}
        )
        try:
            results = await graph.run(ctx)
            outcomes[n] = ("ok", results["guard"].data["passed"])
        except UnifiedStageExecutionError as exc:
            outcomes[n] = ("error", exc.stage)

    async with trio.open_nursery() as nursery:
        for n in range(120):
            nursery.start_soon(handle, n)
    for n in range(120):
        needed = n % 4 + 1
        guard_events = Counter(t for t in sinks[n].types() if t.startswith("guard_retry."))
        if needed <= 3:
            assert outcomes[n] == ("ok", needed)
            assert drafts[n] == needed
            assert guard_events["guard_retry.attempt"] == needed - 1
            assert guard_events["guard_retry.recovered"] == (needed > 1)
        else:
            assert outcomes[n] == ("error", "guard")
            assert drafts[n] == 3
            assert guard_events["guard_retry.exhausted"] == 1


async def test_one_runner_serves_concurrent_runs_each_with_its_own_result(
    autojump_clock: trio.testing.MockClock,
) -> None:
    rng = random.Random(2)

    async def a(ctx: StageContext) -> StageOutput:
        await trio.sleep(rng.random() / 20)
        n = request_number(ctx)
        if n % 5 == 1:
            return StageOutput.fail(error=f"f{n}")
        if n % 5 == 2:
            return StageOutput.cancel(reason=f"c{n}")
        return StageOutput.ok(n=n)

    async def b(ctx: StageContext) -> StageOutput:
        await trio.sleep(0.1 + rng.random() / 20)
        return StageOutput.ok(n=ctx.inputs.get_from("a", "n"))

    pipeline = (
        Pipeline("p")
        .with_stage("a", a, StageKind.WORK)
        .with_stage("b", b, StageKind.WORK, dependencies=("a",))
    )
    runner = PipelineRunner(
        verbose=False,
        enable_uuid_monitor=True,
        enable_immutability_check=True,
        enable_context_size_monitor=True,
    )
    tokens = {n: CancellationToken() for n in range(100)}
    results: dict[int, Any] = {}

    async def handle(n: int) -> None:
        results[n] = await runner.run(pipeline, input_text=str(n), cancel_token=tokens[n])

    async with trio.open_nursery() as nursery:
        for n in range(100):
            nursery.start_soon(handle, n)
        await trio.sleep(0.06)  # every "b" is still running
        for n in range(3, 100, 5):
            tokens[n].cancel(f"t{n}")

    for n, result in results.items():
        for event in result.events:
            data = event.get("data") or {}
            if "pipeline_run_id" in data:
                assert str(data["pipeline_run_id"]) == str(result.pipeline_run_id)
        kind = n % 5
        if kind == 1:
            assert not result.success
            assert f"f{n}" in result.error
        elif kind in (2, 3):
            assert result.cancelled
            assert result.cancel_reason == f"{'ct'[kind - 2]}{n}"
        else:
            assert result.success
            assert result.stages["b"] == {"n": n}
    assert len({r.pipeline_run_id for r in results.values()}) == 100


async def test_many_parents_spawn_at_once_and_one_tree_is_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    rng = random.Random(5)
    tracker = ChildRunTracker()
    spawner = SubpipelineSpawner(child_tracker=tracker)
    parents: dict[int, uuid.UUID | None] = {}
    sink = RecordingEventSink()
    set_event_sink(sink)

    async with trio.open_nursery() as detached:

        async def edit(ctx: StageContext) -> StageOutput:
            parent = ctx.as_pipeline_context()
            n = request_number(ctx)
            parents[n] = parent.pipeline_run_id

            async def child(child_ctx: PipelineContext) -> dict[str, Any]:
                await trio.sleep(10 if n == 5 else rng.random() / 20)
                if n % 10 == 3:
                    raise RuntimeError(f"child of {n}")
                return {"n": n, "parent": child_ctx.parent_run_id}

            async def background(child_ctx: PipelineContext) -> None:
                await trio.sleep(10 if n == 5 else rng.random() / 2)

            await spawner.spawn_detached(
                "bg", parent, uuid.uuid4(), "edit", background, nursery=detached
            )
            found = []
            async with trio.open_nursery() as nursery:

                async def one() -> None:
                    found.append(await spawner.spawn("c", parent, uuid.uuid4(), "edit", child))

                for _ in range(3):
                    nursery.start_soon(one)
            return StageOutput.ok(found=[(r.success, r.data, r.error) for r in found])

        graph = Pipeline("parent").with_stage("edit", edit, StageKind.WORK).build()
        outputs: dict[int, Any] = {}

        async def handle(n: int) -> None:
            ctx = create_test_pipeline_context(input_text=str(n))
            outputs[n] = (await graph.run(ctx))["edit"].data["found"]

        async with trio.open_nursery() as nursery:
            for n in range(100):
                nursery.start_soon(handle, n)
            await trio.sleep(0.02)
            fifth = parents[5]
            assert fifth is not None
            cancelled = await spawner.cancel_with_children(fifth, "stop five")

    # Run 5, its three children and its background child.
    assert len(cancelled) == 5
    assert cancelled[-1] == parents[5]
    assert outputs[5] == [(False, None, "Child pipeline canceled: stop five")] * 3
    for n in set(outputs) - {5}:
        if n % 10 == 3:
            assert outputs[n] == [(False, None, f"child of {n}")] * 3
        else:
            assert outputs[n] == [(True, {"n": n, "parent": parents[n]}, None)] * 3
    types = Counter(sink.types())
    assert types["pipeline.spawned_child"] == 400
    assert types["pipeline.child_completed"] + types["pipeline.child_failed"] == 396
    assert types["pipeline.canceled"] == 5
    assert not spawner.running_children
    assert not spawner._retained
    metrics = await tracker.get_metrics()
    assert metrics["active_children"] == 0
    assert metrics["active_parents"] == 0
    assert metrics["registration_count"] == metrics["unregistration_count"] == 400


# --------------------------------------------------------- idempotency, shared sink


async def test_a_duplicate_request_waits_for_the_first_and_takes_over_when_it_is_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    charged: list[int] = []

    async def pay(ctx: StageContext) -> StageOutput:
        n = request_number(ctx)
        charged.append(n)
        await trio.sleep(1)
        return StageOutput.ok(charged=n)

    idempotency = IdempotencyInterceptor()
    graph = Pipeline("pay").with_stage("pay", pay, StageKind.WORK).build(interceptors=[idempotency])
    answers: dict[int, object] = {}
    scopes: dict[int, trio.CancelScope] = {}

    async def handle(n: int) -> None:
        await trio.sleep(n / 100)
        with trio.CancelScope() as scope:
            scopes[n] = scope
            ctx = create_test_pipeline_context(
                input_text=str(n), data={"idempotency_key": "order-7"}
            )
            answers[n] = (await graph.run(ctx))["pay"].data["charged"]
        if scope.cancelled_caught:
            answers[n] = "cancelled"

    async with trio.open_nursery() as nursery:
        for n in range(30):
            nursery.start_soon(handle, n)
        await trio.sleep(0.5)
        scopes[0].cancel()  # the first payer hangs up mid-charge

    # The first was cut; exactly one other ran the stage and everyone else replayed it.
    assert charged[0] == 0
    assert len(charged) == 2
    winner = charged[1]
    assert answers == {0: "cancelled", **dict.fromkeys(range(1, 30), winner)}
    assert not idempotency._owned
    store = idempotency.store
    assert isinstance(store, InMemoryIdempotencyStore)
    assert not store.is_claimed('["pay", "order-7"]')


async def test_one_backpressure_sink_carries_every_runs_events(
    autojump_clock: trio.testing.MockClock,
) -> None:
    rng = random.Random(11)

    async def a(ctx: StageContext) -> StageOutput:
        await trio.sleep(rng.random() / 10)
        ctx.try_emit_event("custom.tick", {"n": request_number(ctx)})
        return StageOutput.ok()

    async def b(ctx: StageContext) -> StageOutput:
        await trio.sleep(rng.random() / 10)
        return StageOutput.ok()

    graph = (
        Pipeline("p")
        .with_stage("a", a, StageKind.WORK)
        .with_stage("b", b, StageKind.WORK, dependencies=("a",))
        .build()
    )
    downstream = RecordingEventSink()
    async with BackpressureAwareEventSink(downstream, max_queue_size=10_000) as shared:

        async def handle(n: int) -> None:
            ctx = create_test_pipeline_context(input_text=str(n), event_sink=shared)
            await graph.run(ctx)

        async with trio.open_nursery() as nursery:
            for n in range(100):
                nursery.start_soon(handle, n)
    by_run: defaultdict[str, list[str]] = defaultdict(list)
    for event_type, data in downstream.events:
        assert data is not None
        by_run[str(data.get("pipeline_run_id"))].append(event_type)
    assert len(by_run) == 100
    for types in by_run.values():
        assert Counter(types) == Counter(
            [
                "stage.a.started",
                "stage.a.completed",
                "stage.b.started",
                "stage.b.completed",
                "custom.tick",
                "pipeline_completed",
            ]
        )
    ticks = sorted(data["n"] for t, data in downstream.events if t == "custom.tick")  # type: ignore[index]
    assert ticks == list(range(100))
    assert shared.metrics.emitted == len(downstream.events) == 600
    assert shared.metrics.dropped == 0


async def test_a_stage_task_group_given_graph_cancel_token_leaves_the_shared_token_alone(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A StageContext run given a shared token: a stage whose StructuredTaskGroup (given
    ``graph.cancel_token``, as the docs suggest) has a failing task cancels that token.
    It was the caller's own token, so every run sharing it stopped; now it is the run's."""
    from stageflow_trio.pipeline.cancellation import StructuredTaskGroup
    from stageflow_trio.pipeline.dag import UnifiedStageExecutionError
    from stageflow_trio.testing import create_test_stage_context

    shutdown = CancellationToken()
    outcomes: dict[str, str] = {}

    async def fails_in_group(ctx: StageContext) -> StageOutput:
        async def boom() -> None:
            await trio.sleep(1)
            raise ValueError("task failed")

        async with StructuredTaskGroup(cancel_token=graph.cancel_token) as group:
            group.create_task(boom)
        return StageOutput.ok()

    async def waits(ctx: StageContext) -> StageOutput:
        await trio.sleep(10)
        return StageOutput.ok()

    graph = Pipeline("g").with_stage("failing", fails_in_group, StageKind.WORK).build()
    other = Pipeline("o").with_stage("waits", waits, StageKind.WORK).build()

    async def run(name: str, which: Any) -> None:
        try:
            await which.run(create_test_stage_context(), cancel_token=shutdown)
        except UnifiedStageExecutionError:
            outcomes[name] = "failed"
        except UnifiedPipelineCancelled as exc:
            outcomes[name] = f"cancelled: {exc.reason}"
        else:
            outcomes[name] = "completed"

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run, "failing", graph)
        nursery.start_soon(run, "sibling", other)
    assert outcomes["sibling"] == "completed"
    assert outcomes["failing"] == "failed"  # its own run: the task's error
    assert not shutdown.is_cancelled
    assert shutdown._callbacks == {}  # the finished runs' links are gone
