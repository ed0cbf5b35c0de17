"""Cancellation of subpipelines: the cascade, parents that fail or are cancelled, the cancel path."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.core.stage_enums import StageKind
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.events import set_event_sink
from stageflow_trio.pipeline.cancellation import CancellationToken
from stageflow_trio.pipeline.dag import (
    UnifiedPipelineCancelled,
    UnifiedStageExecutionError,
    UnifiedStageGraph,
)
from stageflow_trio.pipeline.pipeline import Pipeline
from stageflow_trio.pipeline.registry import PipelineRegistry
from stageflow_trio.pipeline.subpipeline import (
    ChildRunTracker,
    SubpipelineResult,
    SubpipelineSpawner,
)
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.testing import RecordingEventSink, create_test_pipeline_context
from stageflow_trio.tools.executor import ToolExecutor

from .graph_helpers import RUN_ID, spec, stage_ctx

CORRELATION = uuid.UUID("cccccccc-0000-4000-8000-000000000002")
A, B, C, D = (uuid.UUID(int=i) for i in range(1, 5))


def canceled_events(sink: RecordingEventSink) -> list[dict[str, Any]]:
    return [data for data in sink.of_type("pipeline.canceled") if data is not None]


class Probe:
    """Records what each stage saw, by (level, run id)."""

    def __init__(self) -> None:
        self.log: list[tuple[str, int, uuid.UUID]] = []

    def count(self, what: str, level: int) -> int:
        return sum(1 for w, lvl, _ in self.log if (w, lvl) == (what, level))

    def index(self, what: str, run_id: str) -> int:
        return next(i for i, (w, _, r) in enumerate(self.log) if w == what and str(r) == run_id)


async def test_one_cancel_with_children_stops_a_three_level_tree_deepest_first(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Root run -> 2 children -> 2 grandchildren -> 2 great-grandchildren, all blocked.

    One ``cancel_with_children(root)`` interrupts every child stage with
    ``trio.Cancelled``; each cleanup runs once, innermost first; the events come
    deepest first; nothing is left running; no virtual time passes.
    """
    sink = RecordingEventSink()
    set_event_sink(sink)
    spawner = SubpipelineSpawner(child_tracker=ChildRunTracker())
    registry = PipelineRegistry()
    executor = ToolExecutor(spawner=spawner, registry=registry)
    probe = Probe()

    def level_stage(level: int) -> Any:
        async def stage(ctx: StageContext) -> StageOutput:
            run_id = ctx.snapshot.pipeline_run_id
            assert run_id is not None
            probe.log.append(("start", level, run_id))
            try:
                if level < 3:
                    await executor.spawn_subpipeline(
                        f"level{level + 1}", ctx.as_pipeline_context(), CORRELATION
                    )
                await trio.sleep_forever()
            except trio.Cancelled:
                probe.log.append(("cancelled", level, run_id))
                raise
            finally:
                probe.log.append(("cleanup", level, run_id))
            raise AssertionError("unreachable")

        return stage

    for level in (1, 2, 3):
        registry.register(
            f"level{level}", Pipeline().with_stage("work", level_stage(level), StageKind.WORK)
        )
    outcomes: list[SubpipelineResult] = []

    async def root_stage(ctx: StageContext) -> StageOutput:
        parent = ctx.as_pipeline_context()

        async def one() -> None:
            outcomes.append(await executor.spawn_subpipeline("level1", parent, CORRELATION))

        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(one)
                nursery.start_soon(one)
        finally:
            probe.log.append(("cleanup", 0, RUN_ID))
        return StageOutput.ok(children=len(outcomes))

    root = UnifiedStageGraph([spec("root", root_stage)])
    results: dict[str, Any] = {}

    async def run_root() -> None:
        results.update(await root.run(stage_ctx(event_sink=sink)))

    with trio.fail_after(60):  # virtual seconds: a cascade that stops nothing fails here
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_root)
            await trio.sleep(10)
            assert [probe.count("start", level) for level in (1, 2, 3)] == [2, 2, 2]
            assert sink.types().count("pipeline.spawned_child") == 6
            canceled = await spawner.cancel_with_children(RUN_ID, reason="shutdown")

    assert trio.current_time() == 10
    events = canceled_events(sink)
    assert [e["cascade_depth"] for e in events] == [3, 3, 2, 2, 1, 1, 0]
    assert [e["pipeline_run_id"] for e in events] == [str(run) for run in canceled]
    assert {e["reason"] for e in events} == {"shutdown"}
    assert events[-1]["pipeline_run_id"] == str(RUN_ID)
    assert events[-1]["parent_run_id"] is None
    parents = {e["pipeline_run_id"]: e["parent_run_id"] for e in events}
    by_level = {
        level: {str(run) for what, lvl, run in probe.log if (what, lvl) == ("start", level)}
        for level in (1, 2, 3)
    }
    assert {parents[run] for run in by_level[1]} == {str(RUN_ID)}
    assert {parents[run] for run in by_level[2]} == by_level[1]
    assert {parents[run] for run in by_level[3]} == by_level[2]
    # Every child stage saw Cancelled, and cleaned up exactly once.
    for level in (1, 2, 3):
        assert probe.count("cancelled", level) == 2
        assert probe.count("cleanup", level) == 2
    assert probe.count("cleanup", 0) == 1
    # Deepest first along every branch.
    for leaf in by_level[3]:
        middle = parents[leaf]
        top = parents[middle]
        assert (
            probe.index("cleanup", leaf)
            < probe.index("cleanup", middle)
            < probe.index("cleanup", top)
        )
    # Cancelled children report through pipeline.canceled only.
    assert "pipeline.child_completed" not in sink.types()
    assert "pipeline.child_failed" not in sink.types()
    # The root run was only marked: its stage got both children back as results.
    assert [o.to_dict()["error"] for o in outcomes] == ["Child pipeline canceled: shutdown"] * 2
    assert [o.success for o in outcomes] == [False, False]
    assert results["root"].data == {"children": 2}
    # Nothing is left running or registered.
    assert spawner.running_children == frozenset()
    metrics = await spawner.child_tracker.get_metrics()
    assert (metrics["active_parents"], metrics["active_children"]) == (0, 0)
    assert (metrics["registration_count"], metrics["unregistration_count"]) == (6, 6)
    assert await spawner.is_canceled(RUN_ID)


async def test_cancel_order_is_deepest_level_first_then_registration_order() -> None:
    sink = RecordingEventSink()
    set_event_sink(sink)
    tracker = ChildRunTracker()
    await tracker.register_child(A, B)
    await tracker.register_child(B, C)
    await tracker.register_child(A, D)
    spawner = SubpipelineSpawner(child_tracker=tracker)
    contexts = {run: create_test_pipeline_context(pipeline_run_id=run) for run in (A, C)}
    assert await spawner.cancel_with_children(A, contexts=contexts) == [C, B, D, A]
    assert [
        (e["pipeline_run_id"], e["parent_run_id"], e["cascade_depth"])
        for e in canceled_events(sink)
    ] == [
        (str(C), str(B), 2),
        (str(B), str(A), 1),
        (str(D), str(A), 1),
        (str(A), None, 0),
    ]
    assert [contexts[A].canceled, contexts[C].canceled] == [True, True]
    assert [await spawner.is_canceled(run) for run in (A, B, C, D)] == [True] * 4
    # Already cancelled runs are neither reported nor marked again.
    sink.clear()
    assert await spawner.cancel_with_children(B) == []
    assert sink.events == []


class _InterruptedSink(RecordingEventSink):
    """A sink whose second awaited ``pipeline.canceled`` emit is cut by a Ctrl-C."""

    def __init__(self) -> None:
        super().__init__()
        self.awaited = 0
        self.handed: list[str] = []

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        self.awaited += 1
        if self.awaited == 2:
            await trio.lowlevel.checkpoint()
            raise KeyboardInterrupt
        await super().emit(type=type, data=data)

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        assert data is not None
        self.handed.append(data["pipeline_run_id"])
        super().try_emit(type=type, data=data)


async def test_a_ctrl_c_during_the_cascade_events_hands_the_rest_to_try_emit() -> None:
    # Audit 18: the events not yet emitted went to try_emit only on Cancelled; a
    # Ctrl-C at an emit's checkpoint dropped them silently.
    sink = _InterruptedSink()
    set_event_sink(sink)
    tracker = ChildRunTracker()
    await tracker.register_child(A, B)
    await tracker.register_child(B, C)
    spawner = SubpipelineSpawner(child_tracker=tracker)
    with pytest.raises(KeyboardInterrupt):
        await spawner.cancel_with_children(A)
    assert sink.handed == [str(B), str(A)]  # the cut one and the one after it
    assert [e["pipeline_run_id"] for e in canceled_events(sink)] == [str(C), str(B), str(A)]


async def test_cancel_with_children_of_a_subtree_cancels_only_that_subtree() -> None:
    sink = RecordingEventSink()
    set_event_sink(sink)
    tracker = ChildRunTracker()
    await tracker.register_child(A, B)
    await tracker.register_child(B, C)
    spawner = SubpipelineSpawner(child_tracker=tracker, emit_events=False)
    assert await spawner.cancel_with_children(B, reason="r") == [C, B]
    assert await spawner.is_canceled(A) is False
    assert sink.events == []


async def test_a_failed_parent_run_cancels_its_children(autojump_clock: trio.abc.Clock) -> None:
    sink = RecordingEventSink()
    set_event_sink(sink)
    spawner = SubpipelineSpawner(child_tracker=ChildRunTracker())
    seen: list[str] = []
    children: list[PipelineContext] = []

    async def child_runner(child: PipelineContext) -> None:
        children.append(child)
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            seen.append("child cancelled")
            raise

    async def spawning(ctx: StageContext) -> StageOutput:
        await spawner.spawn(
            "child", ctx.as_pipeline_context(), CORRELATION, "spawning", child_runner
        )
        raise AssertionError("unreachable")

    async def failing(ctx: StageContext) -> StageOutput:
        await trio.sleep(1)
        return StageOutput.fail(error="broken")

    graph = UnifiedStageGraph([spec("spawning", spawning), spec("bad", failing)])
    with pytest.raises(UnifiedStageExecutionError, match=r"^Stage 'bad' failed: broken$"):
        await graph.run(stage_ctx())
    assert seen == ["child cancelled"]
    assert children[0].canceled
    assert spawner.running_children == frozenset()
    assert (await spawner.child_tracker.get_metrics())["active_children"] == 0
    assert sink.types() == ["pipeline.spawned_child"]
    assert trio.current_time() == 1


async def test_a_cancelled_parent_run_cancels_its_children(autojump_clock: trio.abc.Clock) -> None:
    spawner = SubpipelineSpawner(child_tracker=ChildRunTracker(), emit_events=False)
    token = CancellationToken()
    seen: list[str] = []

    async def child_runner(child: PipelineContext) -> None:
        try:
            await trio.sleep_forever()
        finally:
            seen.append("child cleanup")

    async def spawning(ctx: StageContext) -> StageOutput:
        await spawner.spawn("child", ctx.as_pipeline_context(), CORRELATION, "s", child_runner)
        raise AssertionError("unreachable")

    async def cancel_later() -> None:
        await trio.sleep(4)
        token.cancel("user hung up")

    graph = UnifiedStageGraph([spec("spawning", spawning)])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(cancel_later)
        with pytest.raises(UnifiedPipelineCancelled):
            await graph.run(stage_ctx(), cancel_token=token)
    assert seen == ["child cleanup"]
    assert spawner.running_children == frozenset()
    assert trio.current_time() == 4


async def test_a_deadline_around_spawn_cancels_the_child_and_is_not_swallowed(
    autojump_clock: trio.abc.Clock,
) -> None:
    spawner = SubpipelineSpawner(child_tracker=ChildRunTracker())
    children: list[PipelineContext] = []

    async def child_runner(child: PipelineContext) -> None:
        children.append(child)
        await trio.sleep_forever()

    parent = create_test_pipeline_context(pipeline_run_id=A)
    with trio.move_on_after(5) as scope:
        await spawner.spawn("child", parent, CORRELATION, "s", child_runner)
    assert scope.cancelled_caught
    assert children[0].canceled
    assert await spawner.child_tracker.get_children(A) == set()
    assert trio.current_time() == 5


async def test_cancel_from_inside_the_subtree_still_emits_every_event(
    autojump_clock: trio.abc.Clock,
) -> None:
    """A child stage cancels the whole tree, its own run included."""
    sink = RecordingEventSink()
    set_event_sink(sink)
    spawner = SubpipelineSpawner(child_tracker=ChildRunTracker())
    ids: list[uuid.UUID] = []
    reached: list[str] = []

    async def grandchild(child: PipelineContext) -> None:
        assert child.pipeline_run_id is not None
        ids.append(child.pipeline_run_id)
        try:
            await spawner.cancel_with_children(A, reason="abort")
        except trio.Cancelled:
            reached.append("caller cancelled")
            raise
        reached.append("not cancelled")

    async def child(ctx: PipelineContext) -> None:
        assert ctx.pipeline_run_id is not None
        ids.append(ctx.pipeline_run_id)
        await spawner.spawn("grandchild", ctx, CORRELATION, "s", grandchild)
        reached.append("child went on")

    parent = create_test_pipeline_context(pipeline_run_id=A)
    result = await spawner.spawn("child", parent, CORRELATION, "s", child)
    assert reached == ["caller cancelled"]
    assert result.error == "Child pipeline canceled: abort"
    events = canceled_events(sink)
    assert [(e["pipeline_run_id"], e["cascade_depth"]) for e in events] == [
        (str(ids[1]), 2),
        (str(ids[0]), 1),
        (str(A), 0),
    ]


async def test_a_child_cancelled_before_its_runner_starts_never_runs() -> None:
    """Cancelled while its spawned_child event is being delivered: the runner is not called."""
    release = trio.Event()
    entered = trio.Event()

    class SlowSink(RecordingEventSink):
        async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
            if type == "pipeline.spawned_child":
                entered.set()
                await release.wait()
            await super().emit(type=type, data=data)

    sink = SlowSink()
    set_event_sink(sink)
    spawner = SubpipelineSpawner(child_tracker=ChildRunTracker())
    called: list[PipelineContext] = []
    results: list[SubpipelineResult] = []

    async def runner(child: PipelineContext) -> None:
        called.append(child)

    async def spawn() -> None:
        parent = create_test_pipeline_context(pipeline_run_id=A)
        results.append(await spawner.spawn("child", parent, CORRELATION, "s", runner))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(spawn)
        await entered.wait()
        (child_id,) = spawner.running_children
        nursery.start_soon(spawner.cancel_with_children, child_id, "early")
        await trio.testing.wait_all_tasks_blocked()
        release.set()
    assert called == []
    assert results[0].error == "Child pipeline canceled: early"
    assert results[0].child_run_id == child_id
    assert sink.types() == ["pipeline.canceled", "pipeline.spawned_child"]


async def test_cancel_with_children_stops_a_detached_child(autojump_clock: trio.abc.Clock) -> None:
    sink = RecordingEventSink()
    set_event_sink(sink)
    spawner = SubpipelineSpawner(child_tracker=ChildRunTracker())
    seen: list[str] = []

    async def runner(child: PipelineContext) -> None:
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            seen.append("cancelled")
            raise

    with trio.fail_after(60):  # virtual seconds: a cancel that stops nothing fails here
        async with trio.open_nursery() as nursery:
            child_id = await spawner.spawn_detached(
                "child",
                create_test_pipeline_context(pipeline_run_id=A),
                CORRELATION,
                "s",
                runner,
                nursery=nursery,
            )
            await trio.sleep(2)
            assert await spawner.cancel_with_children(A) == [child_id, A]
    assert seen == ["cancelled"]
    assert trio.current_time() == 2
    assert sink.types() == ["pipeline.spawned_child", "pipeline.canceled", "pipeline.canceled"]
    assert spawner.running_children == frozenset()


async def test_cancel_with_children_is_a_checkpoint() -> None:
    spawner = SubpipelineSpawner(child_tracker=ChildRunTracker(), emit_events=False)
    with trio.testing.assert_checkpoints():
        await spawner.cancel_with_children(A)
    with trio.testing.assert_checkpoints():
        await spawner.is_canceled(A)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"run_id": str(A)}, r"^run_id must be a UUID, got str$"),
        ({"run_id": None}, r"^run_id must be a UUID, got NoneType$"),
        ({"run_id": A, "reason": 3}, r"^reason must be a str, got int$"),
        ({"run_id": A, "reason": None}, r"^reason must be a str, got NoneType$"),
    ],
)
async def test_cancel_with_children_rejects_bad_arguments_before_marking_anything(
    kwargs: dict[str, Any], message: str
) -> None:
    sink = RecordingEventSink()
    set_event_sink(sink)
    tracker = ChildRunTracker()
    await tracker.register_child(A, B)
    spawner = SubpipelineSpawner(child_tracker=tracker)
    context = create_test_pipeline_context(pipeline_run_id=A)
    with pytest.raises(TypeError, match=message):
        await spawner.cancel_with_children(**kwargs, contexts={A: context})
    assert [await spawner.is_canceled(run) for run in (A, B)] == [False, False]
    assert context.canceled is False
    assert sink.events == []


async def test_a_detached_grandchild_is_cancelled_with_the_root_after_its_spawner_returned(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Root -> child -> grandchild, where the child hands the grandchild to an outer
    nursery and returns.

    The tracker forgets root -> child when the child ends (as the reference's does),
    but ``cancel_with_children(root)`` still stops the grandchild; the child, already
    ended, is neither marked nor reported.
    """
    sink = RecordingEventSink()
    set_event_sink(sink)
    tracker = ChildRunTracker()
    spawner = SubpipelineSpawner(child_tracker=tracker)
    root = create_test_pipeline_context(pipeline_run_id=A)
    ids: dict[str, uuid.UUID] = {}
    cleaned: list[float] = []

    async def grandchild(ctx: PipelineContext) -> None:
        try:
            await trio.sleep_forever()
        finally:
            cleaned.append(trio.current_time())

    with trio.fail_after(60):  # virtual seconds: a cancel that misses the grandchild fails here
        async with trio.open_nursery() as outer:

            async def child(ctx: PipelineContext) -> None:
                assert ctx.pipeline_run_id is not None
                ids["child"] = ctx.pipeline_run_id
                grand = await spawner.spawn_detached(
                    "g", ctx, CORRELATION, "s", grandchild, nursery=outer
                )
                assert grand is not None
                ids["grandchild"] = grand

            assert (await spawner.spawn("c", root, CORRELATION, "s", child)).success
            await trio.sleep(1)
            # The tracker reports what the reference's would: root -> child is gone.
            assert await tracker.get_children(A) == set()
            assert await tracker.get_parent(ids["child"]) is None
            assert await tracker.get_parent(ids["grandchild"]) == ids["child"]
            assert await spawner.cancel_with_children(A, reason="stop") == [ids["grandchild"], A]
    assert cleaned == [1.0]
    assert [
        (e["pipeline_run_id"], e["parent_run_id"], e["cascade_depth"], e["reason"])
        for e in canceled_events(sink)
    ] == [(str(ids["grandchild"]), str(ids["child"]), 2, "stop"), (str(A), None, 0, "stop")]
    assert await spawner.is_canceled(ids["child"]) is False
    assert spawner.running_children == frozenset()
    metrics = await tracker.get_metrics()
    assert (metrics["active_parents"], metrics["active_children"]) == (0, 0)


async def test_ended_links_reach_any_depth_and_go_when_the_last_descendant_ends(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Root -> B1 -> B2 -> C: B1 and B2 each hand their child to an outer nursery and
    return. Cancelling the root while C runs reaches C at depth 3; once C has ended,
    nothing of the chain is kept (the walk visits the root alone, as the reference's)."""
    sink = RecordingEventSink()
    set_event_sink(sink)
    tracker = ChildRunTracker()
    spawner = SubpipelineSpawner(child_tracker=tracker)
    started: list[uuid.UUID | None] = []

    async def leaf(ctx: PipelineContext) -> None:
        started.append(ctx.pipeline_run_id)
        await trio.sleep(5)

    async def chain(root_id: uuid.UUID, cancel_at: float | None) -> None:
        async with trio.open_nursery() as outer:

            async def b2(ctx: PipelineContext) -> None:
                started.append(ctx.pipeline_run_id)
                await spawner.spawn_detached("c", ctx, CORRELATION, "s", leaf, nursery=outer)

            async def b1(ctx: PipelineContext) -> None:
                started.append(ctx.pipeline_run_id)
                await spawner.spawn_detached("b2", ctx, CORRELATION, "s", b2, nursery=outer)

            root = create_test_pipeline_context(pipeline_run_id=root_id)
            assert (await spawner.spawn("b1", root, CORRELATION, "s", b1)).success
            if cancel_at is not None:
                await trio.sleep(cancel_at)
                assert await spawner.cancel_with_children(root_id) == [started[-1], root_id]

    await chain(A, cancel_at=1)
    assert trio.current_time() == 1
    b2_id, c_id = started[1:3]
    assert [
        (e["pipeline_run_id"], e["parent_run_id"], e["cascade_depth"])
        for e in canceled_events(sink)
    ] == [(str(c_id), str(b2_id), 3), (str(A), None, 0)]

    started.clear()
    await chain(B, cancel_at=None)  # C ends on its own
    assert trio.current_time() == 6
    await tracker.reset_metrics()
    assert await spawner.cancel_with_children(B) == [B]
    # One get_children and one get_parent, as the reference's walk of a lone run.
    assert (await tracker.get_metrics())["lookup_count"] == 2
