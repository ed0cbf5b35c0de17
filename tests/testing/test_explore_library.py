"""The library's own paths survive a cancellation at every checkpoint (explore_cancellation).

Every example pipeline, and the graph, guard-retry, interceptor, subpipeline,
streaming, tool-approval and voice-turn paths, each run under the explorer with the
default invariants: the run ends in trio.Cancelled (or as it would have), every
tracked cleanup ran once, no task outlives the run, every started stage has a
terminal event, and every event queued in a BackpressureAwareEventSink is delivered
or counted. Runs are capped
(``max_checkpoints``) to keep the suite's time modest; the explored indices are
spread over the whole run, first and last included.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.events.sink import BackpressureAwareEventSink
from stageflow_trio.examples import guard_retry, list_examples, quickstart
from stageflow_trio.helpers import ChunkQueue
from stageflow_trio.pipeline import (
    GuardRetryPolicy,
    GuardRetryStrategy,
    Pipeline,
    RetryInterceptor,
    StageGraph,
    StageSpec,
    SubpipelineSpawner,
    UnifiedStageGraph,
    get_default_interceptors,
)
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.testing import (
    FaultPlan,
    RecordingEventSink,
    create_test_pipeline_context,
    create_test_stage_context,
    current_run,
    explore_cancellation,
    tracked_cleanup,
)
from stageflow_trio.testing.explore import (
    CANCELLED,
    DEFAULT_INVARIANTS,
    RETURNED,
    RunRecord,
    invariant,
)

CAP = 40  # checkpoints explored per path at most


def sink() -> RecordingEventSink:
    return current_run().sink


# The deadline example sends itself SIGINT: a rerun cancelled before its signal receiver
# is open meets Python's default handler (a KeyboardInterrupt), which is the point of
# that example. Its pipeline is explored below without the signal.
EXPLORED_EXAMPLES = [name for name in list_examples() if name != "deadline"]


@pytest.mark.parametrize("name", EXPLORED_EXAMPLES)
async def test_every_example(
    name: str, virtual_clock: trio.testing.MockClock, capsys: pytest.CaptureFixture[str]
) -> None:
    example = __import__(f"stageflow_trio.examples.{name}", fromlist=["main"])
    report = await explore_cancellation(example.main, max_checkpoints=CAP, max_deadlines=CAP)
    assert len(report.explored) == min(CAP, report.checkpoints)
    assert len(report.deadlines) <= CAP
    assert report.outcomes[CANCELLED] >= 1
    capsys.readouterr()  # what the examples printed


async def test_the_deadline_example_pipeline(virtual_clock: trio.testing.MockClock) -> None:
    from stageflow_trio.examples import deadline

    async def run() -> str:
        return await deadline.run_safely(deadline.build_graph(), 1.0)

    report = await explore_cancellation(run, max_checkpoints=CAP, max_deadlines=CAP)
    assert len(report.explored) == min(CAP, report.checkpoints)
    assert report.outcomes[CANCELLED] >= 1


async def test_the_quickstart_pipeline_with_its_events(
    virtual_clock: trio.testing.MockClock, capsys: pytest.CaptureFixture[str]
) -> None:
    graph = quickstart.build_pipeline().build()

    async def run() -> dict[str, StageOutput]:
        return await graph.run(create_test_stage_context(event_sink=sink(), input_text="hi"))

    report = await explore_cancellation(run)
    assert report.explored == tuple(range(report.checkpoints))
    assert report.deadlines == (0.005, 0.015)  # profile and memory asleep; memory alone


async def test_graph_fan_out_failure_and_cleanup(virtual_clock: trio.testing.MockClock) -> None:
    async def release() -> None:
        await trio.lowlevel.checkpoint()

    async def enrich(ctx: StageContext) -> StageOutput:
        ctx.register_cleanup(tracked_cleanup(release, name=ctx.stage_name), name=ctx.stage_name)
        await trio.sleep(0.25)
        return StageOutput.ok()

    async def work(ctx: StageContext) -> StageOutput:
        await trio.sleep(0.5)
        return StageOutput.ok()

    pipeline = (
        Pipeline()
        .with_stage("guard", work, StageKind.GUARD)
        .with_stage("profile", enrich, StageKind.ENRICH, dependencies=("guard",))
        .with_stage("memory", enrich, StageKind.ENRICH, dependencies=("guard",))
        .with_stage("compose", work, StageKind.TRANSFORM, dependencies=("profile", "memory"))
        .with_stage("save", work, StageKind.WORK, dependencies=("compose",))
    )
    # Each graph with how its uncancelled run ends: returns, fails with memory's error,
    # or stops at compose's cancel.
    for graph, uncancelled in (
        (pipeline.build(), RETURNED),
        (
            FaultPlan().raise_error("memory", ConnectionError("down")).apply(pipeline).build(),
            "UnifiedStageExecutionError",
        ),
        (
            FaultPlan().cancel("compose", "user left").apply(pipeline).build(),
            "UnifiedPipelineCancelled",
        ),
    ):

        async def run(graph: UnifiedStageGraph = graph) -> dict[str, StageOutput]:
            return await graph.run(create_test_stage_context(event_sink=sink()))

        report = await explore_cancellation(run, max_checkpoints=CAP, max_deadlines=CAP)
        assert report.checkpoints > 0
        assert len(report.explored) == min(CAP, report.checkpoints)
        assert report.deadlines  # the stages sleep: there are moments between them
        assert set(report.outcomes) == {uncancelled, CANCELLED}, report.outcomes
        assert report.outcomes[CANCELLED] >= 1
        assert sum(report.outcomes.values()) == report.runs


async def test_guard_retry(virtual_clock: trio.testing.MockClock) -> None:
    async def run() -> dict[str, StageOutput]:
        graph = (
            Pipeline()
            .with_stage("draft", guard_retry.Drafter(), StageKind.TRANSFORM)
            .with_stage("guard", guard_retry.guard, StageKind.GUARD, dependencies=("draft",))
            .with_stage("publish", guard_retry.publish, StageKind.WORK, dependencies=("guard",))
            .build(
                guard_retry_strategy=GuardRetryStrategy(
                    {"guard": GuardRetryPolicy(retry_stage="draft", max_attempts=4)}
                )
            )
        )
        return await graph.run(create_test_stage_context(event_sink=sink()))

    report = await explore_cancellation(run, max_checkpoints=CAP, max_deadlines=CAP)
    assert report.checkpoints > 6  # three drafts and three verdicts at least


async def test_interceptor_chain_on_the_legacy_graph(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async def charge(ctx: PipelineContext) -> dict[str, Any]:
        await trio.sleep(1)
        return {"charged": True}

    async def receipt(ctx: PipelineContext) -> dict[str, Any]:
        await trio.sleep(0.5)
        return {"sent": True}

    stages = [
        StageSpec(name="charge", runner=charge),
        StageSpec(name="receipt", runner=receipt, dependencies=("charge",)),
    ]
    plan = FaultPlan().delay("charge", 2, attempts=[1])
    chain = [
        *get_default_interceptors(),
        RetryInterceptor(max_attempts=2, base_delay_ms=100),
        plan.interceptor(),
    ]
    graph = StageGraph(stages, chain)

    async def run() -> dict[str, Any]:
        return await graph.run(create_test_pipeline_context(event_sink=sink()))

    report = await explore_cancellation(run, max_checkpoints=CAP, max_deadlines=CAP)
    assert report.outcomes[CANCELLED] >= 1


async def test_interceptor_chain_on_the_unified_graph(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async def step(ctx: StageContext) -> StageOutput:
        await trio.sleep(0.5)
        return StageOutput.ok()

    graph = (
        Pipeline()
        .with_stage("a", step, StageKind.WORK)
        .with_stage("b", step, StageKind.WORK, dependencies=("a",))
        .build(interceptors=get_default_interceptors())
    )

    async def run() -> dict[str, StageOutput]:
        return await graph.run(create_test_stage_context(event_sink=sink()))

    report = await explore_cancellation(run, max_checkpoints=CAP, max_deadlines=CAP)
    assert len(report.explored) == min(CAP, report.checkpoints)
    assert len(report.deadlines) >= 1  # at least one moment while a stage sleeps
    assert set(report.outcomes) == {RETURNED, CANCELLED}, report.outcomes
    assert report.outcomes[CANCELLED] >= 1
    assert sum(report.outcomes.values()) == report.runs


async def test_subpipeline(virtual_clock: trio.testing.MockClock) -> None:
    spawner = SubpipelineSpawner()

    async def check_spelling(child: PipelineContext) -> dict[str, object]:
        await trio.sleep(0.2)
        return {"typos": 0}

    async def edit(ctx: StageContext) -> StageOutput:
        result = await spawner.spawn(
            "spellcheck", ctx.as_pipeline_context(), uuid.uuid4(), "edit", check_spelling
        )
        if not result.success:
            return StageOutput.fail(error=result.error or "child failed")
        return StageOutput.ok(spelling=dict(result.data or {}))

    graph = Pipeline().with_stage("edit", edit, StageKind.WORK).build()

    async def run() -> dict[str, StageOutput]:
        return await graph.run(create_test_stage_context(event_sink=sink()))

    report = await explore_cancellation(run, max_checkpoints=CAP, max_deadlines=CAP)
    assert report.outcomes[CANCELLED] >= 1


async def test_streaming_queue_and_backpressure_sink(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async def transcribe(ctx: StageContext) -> StageOutput:
        queue: ChunkQueue[int] = ChunkQueue(max_size=4)
        heard: list[int] = []

        async def microphone() -> None:
            for i in range(12):
                await queue.put(i)
                await trio.sleep(0.02)
            await queue.close()

        async def listener() -> None:
            async for chunk in queue:
                await trio.sleep(0.03)
                heard.append(chunk)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(microphone)
            nursery.start_soon(listener)
        return StageOutput.ok(heard=len(heard))

    graph = Pipeline().with_stage("transcribe", transcribe, StageKind.TRANSFORM).build()

    async def run() -> dict[str, StageOutput]:
        downstream = RecordingEventSink()
        async with BackpressureAwareEventSink(downstream, max_queue_size=100) as queue:
            current_run().watch_queue(queue, downstream)
            return await graph.run(create_test_stage_context(event_sink=queue))

    report = await explore_cancellation(run, max_checkpoints=CAP, max_deadlines=CAP)
    assert report.outcomes[CANCELLED] >= 1


async def test_tool_approval_cancelled_while_waiting_leaves_no_request_and_no_task(
    virtual_clock: trio.testing.MockClock,
) -> None:
    """The rename stage waits for approval from 0 to 0.75 s; the reviewer stage approves.

    Cancelled anywhere, and in particular while the tool waits for the decision, the
    run leaves no PENDING request behind (the waiting call cancels its own request)
    and no task (the default invariants).
    """
    from stageflow_trio.examples import tool_approval

    pending_after: dict[str, int] = {}

    async def run() -> dict[str, StageOutput]:
        workspace = tool_approval.Workspace()
        graph = tool_approval.build_pipeline(workspace).build()
        try:
            return await graph.run(create_test_stage_context(event_sink=sink()))
        finally:
            with trio.CancelScope(shield=True):
                pending = await workspace.approvals.get_pending_requests()
            pending_after[current_run().label] = len(pending)

    waiting_when_cancelled: list[str] = []

    @invariant("no approval request left pending")
    def nothing_pending(run: RunRecord) -> str | None:
        types = run.sink.types()
        if "approval.requested" in types and "approval.decided" not in types:
            waiting_when_cancelled.append(run.label)
        left = pending_after[run.label]
        return f"{left} approval request(s) left PENDING" if left else None

    report = await explore_cancellation(
        run,
        invariants=(*DEFAULT_INVARIANTS, nothing_pending),
        max_checkpoints=CAP,
        max_deadlines=CAP,
    )
    assert report.outcomes[CANCELLED] >= 1
    assert report.outcomes[RETURNED] >= 1  # the uncancelled run
    # Runs cancelled with the tool waiting (the request filed, never decided) were
    # among them: at checkpoints and at the deadline halfway to the approval.
    assert "deadline +0.375" in waiting_when_cancelled
    assert any(label.startswith("checkpoint") for label in waiting_when_cancelled)


async def test_voice_turn_pipeline(virtual_clock: trio.testing.MockClock) -> None:
    """STT, guard and memory fetch, the reply streamed through a full ChunkQueue, memory write."""
    from stageflow_trio.examples import voice_turn
    from stageflow_trio.helpers import InMemoryStore

    async def run() -> dict[str, StageOutput]:
        graph = voice_turn.build_pipeline(InMemoryStore()).build()
        ctx = create_test_stage_context(
            event_sink=sink(),
            session_id=uuid.UUID(int=1),
            metadata={"audio": voice_turn.record(voice_turn.PHRASES[0])},
        )
        return await graph.run(ctx)

    report = await explore_cancellation(run, max_checkpoints=CAP, max_deadlines=CAP)
    assert report.outcomes[CANCELLED] >= 1
