"""How many objects the garbage collector tracks per graph run and child run in flight.

With many runs in flight, every collection walks what each run holds, so the cost
per run grows with that number (docs/performance.md, tenth round). These tests park
runs at an event inside a stage and count the tracked objects they hold, minus what
as many bare trio tasks parked the same way hold, with some slack: a change that
adds per-run objects (a closure, a list kept in a frame) fails here. They also pin
the behaviour of the pieces trimmed for it.
"""

from __future__ import annotations

import gc
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio._engine._cleanup import CleanupRegistry
from stageflow_trio._engine._token import CancellationToken
from stageflow_trio.context import ContextSnapshot
from stageflow_trio.context.identity import RunIdentity
from stageflow_trio.core import PipelineTimer, StageContext, StageKind, StageOutput
from stageflow_trio.pipeline.dag import UnifiedStageGraph, UnifiedStageSpec
from stageflow_trio.pipeline.subpipeline import ChildRunTracker, SubpipelineSpawner
from stageflow_trio.stages.context import PipelineContext, StageEventTemplate, stage_event_key
from stageflow_trio.stages.inputs import StageInputs

N = 200


class _DroppingSink:
    """A sink that keeps nothing, but is not the NoOpEventSink: every event is built."""

    def __init__(self) -> None:
        self.count = 0

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        self.count += 1

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        self.count += 1


def _tracked() -> int:
    """The tracked objects of the youngest generation (the collector is off meanwhile).

    Not the whole heap: a full collection and count inside the test suite cost about
    a second each; what the parked items hold is young.
    """
    return len(gc.get_objects(generation=0))


async def _held_per_item(start: Callable[[trio.Event], Callable[[], Awaitable[Any]]]) -> float:
    """Tracked objects per parked item: ``start(event)`` gives the item to run N times."""
    event = trio.Event()
    run = start(event)
    async with trio.open_nursery() as nursery:  # warm up: caches, interned strings
        nursery.start_soon(run)
        await trio.testing.wait_all_tasks_blocked()
        event.set()
    event = trio.Event()
    run = start(event)
    async with trio.open_nursery() as nursery:
        await trio.testing.wait_all_tasks_blocked()
        gc.disable()
        try:
            gc.collect(0)  # young garbage freed, the rest moved out of the youngest generation
            before = _tracked()
            for _ in range(N):
                nursery.start_soon(run)
            await trio.testing.wait_all_tasks_blocked()
            after = _tracked()
        finally:
            gc.enable()
        event.set()
    return (after - before) / N


def _bare(event: trio.Event) -> Callable[[], Awaitable[Any]]:
    return event.wait


def _stage_ctx(sink: Any) -> StageContext:
    identity = RunIdentity(pipeline_run_id=uuid.UUID(int=1), request_id=uuid.UUID(int=2))
    snapshot: ContextSnapshot[Any] = ContextSnapshot(
        run_id=identity, topology="t", execution_mode="m"
    )
    return StageContext(
        snapshot=snapshot,
        inputs=StageInputs(snapshot=snapshot),
        stage_name="root",
        timer=PipelineTimer(),
        event_sink=sink,
    )


def _fan_out(event: trio.Event) -> Callable[[], Awaitable[Any]]:
    """guard, then two stages at once, both parked: a run with a nursery and two stage tasks."""

    async def guard(ctx: StageContext) -> StageOutput:
        return StageOutput.ok(allowed=True)

    async def parked(ctx: StageContext) -> StageOutput:
        await event.wait()
        return StageOutput.ok(value=1)

    graph = UnifiedStageGraph(
        [
            UnifiedStageSpec(name="guard", runner=guard, kind=StageKind.GUARD),
            UnifiedStageSpec(
                name="a", runner=parked, kind=StageKind.ENRICH, dependencies=("guard",)
            ),
            UnifiedStageSpec(
                name="b", runner=parked, kind=StageKind.ENRICH, dependencies=("guard",)
            ),
        ]
    )
    ctx = _stage_ctx(_DroppingSink())
    return lambda: graph.run(ctx)


def _chain_graph(event: trio.Event) -> UnifiedStageGraph:
    async def work(ctx: StageContext) -> StageOutput:
        await event.wait()
        return StageOutput.ok(value=1)

    return UnifiedStageGraph([UnifiedStageSpec(name="work", runner=work, kind=StageKind.WORK)])


def _chain(event: trio.Event) -> Callable[[], Awaitable[Any]]:
    graph = _chain_graph(event)
    ctx = _stage_ctx(_DroppingSink())
    return lambda: graph.run(ctx)


def _child(event: trio.Event) -> Callable[[], Awaitable[Any]]:
    """A one-stage child through SubpipelineSpawner.spawn, events off."""
    graph = _chain_graph(event)
    spawner = SubpipelineSpawner(child_tracker=ChildRunTracker(), emit_events=False)
    parent = PipelineContext(
        pipeline_run_id=uuid.UUID(int=7),
        request_id=None,
        session_id=None,
        user_id=None,
        org_id=None,
        interaction_id=None,
        topology="t",
        execution_mode="m",
    )
    ctx = _stage_ctx(None)

    async def runner(child: PipelineContext) -> dict[str, Any]:
        results = await graph.run(ctx)
        return {name: out.data for name, out in results.items()}

    async def one() -> None:
        await spawner.spawn("child", parent, uuid.UUID(int=8), "stage", runner)

    return one


# Measured when the bounds were set (CPython 3.11, trio 0.35), beyond a bare parked
# task: fan-out 51, chain 25, child 40; the code before the trims held 71, 42 and 55.
# The slack allows for another Python or trio release.
@pytest.mark.parametrize(
    ("shape", "bound"),
    [(_fan_out, 55), (_chain, 29), (_child, 44)],
    ids=["fan_out", "chain", "child"],
)
def test_an_in_flight_run_holds_few_tracked_objects(
    shape: Callable[[trio.Event], Callable[[], Awaitable[Any]]], bound: int
) -> None:
    async def main() -> tuple[float, float]:
        return await _held_per_item(_bare), await _held_per_item(shape)

    bare, held = trio.run(main)
    assert held - bare <= bound, (held, bare)


# --- the trimmed pieces keep their behaviour ---------------------------------------


async def test_a_run_scope_bound_to_a_token_is_cancelled_with_its_reason_in_order() -> None:
    token = CancellationToken()
    seen: list[str] = []
    token.on_cancel(lambda: seen.append("first"))
    with trio.CancelScope() as scope:
        token._bind_run_scope(scope)
        token.on_cancel(lambda: seen.append(f"after the scope: {scope.cancel_called}"))
        token.cancel("stop")
        await trio.lowlevel.checkpoint()
    assert scope.cancelled_caught
    assert seen == ["first", "after the scope: True"]
    token._unbind_run_scope(scope)  # after cancel: harmless


async def test_an_unbound_run_scope_is_not_cancelled_and_binding_a_cancelled_token_cancels() -> (
    None
):
    token = CancellationToken()
    with trio.CancelScope() as scope:
        token._bind_run_scope(scope)
        token._unbind_run_scope(scope)
        token._unbind_run_scope(scope)  # twice: harmless
        token.cancel("late")
        await trio.lowlevel.checkpoint()
    assert not scope.cancel_called
    assert not token._callbacks
    with trio.CancelScope() as other:
        token._bind_run_scope(other)
        await trio.lowlevel.checkpoint()
    assert other.cancelled_caught


async def test_cleanup_registry_starts_empty_and_takes_registrations_while_running() -> None:
    registry = CleanupRegistry()
    assert registry.pending_count == 0
    assert await registry.run_all() == ([], [])
    ran: list[str] = []

    async def late() -> None:
        ran.append("late")

    async def first() -> None:
        ran.append("first")
        registry.register(late)

    registry.register(first)
    assert registry.pending_count == 1
    assert registry.name_of(first) == "first"
    assert await registry.run_all() == (["first", "late"], [])
    assert ran == ["first", "late"]
    registry.register(first)
    assert registry.unregister(first)
    assert not registry.unregister(first)
    assert registry.pending_count == 0


async def test_register_cleanup_after_the_run_finds_no_run_and_cleanups_still_register() -> None:
    ran: list[str] = []

    async def second() -> None:
        ran.append("second")

    async def first() -> None:
        ran.append("first")
        graph.register_cleanup(second)  # from a cleanup callback of the run

    async def stage(ctx: StageContext) -> StageOutput:
        graph.register_cleanup(first)
        return StageOutput.ok()

    graph = UnifiedStageGraph([UnifiedStageSpec(name="s", runner=stage, kind=StageKind.WORK)])
    await graph.run(_stage_ctx(None))
    assert ran == ["first", "second"]
    with pytest.raises(RuntimeError, match="outside any run"):
        graph.register_cleanup(second)


def test_a_template_primed_without_a_key_makes_the_views_data_again() -> None:
    ctx = PipelineContext(
        pipeline_run_id=uuid.UUID(int=1),
        request_id=uuid.UUID(int=2),
        session_id=None,
        user_id=None,
        org_id=None,
        interaction_id=None,
        topology="t",
        execution_mode="m",
    )
    template = StageEventTemplate()
    template.prime_fields("other", "x", "y", "r", None, None, None, "run")
    data = template.data(stage_event_key(ctx), "s", "started", None)
    expected = StageEventTemplate().data(stage_event_key(ctx), "s", "started", None)
    data.pop("timestamp")
    expected.pop("timestamp")
    assert data == expected
    assert data["topology"] == "t"
    assert data["request_id"] == str(uuid.UUID(int=2))


async def test_stages_completed_lists_the_finished_stages_sorted() -> None:
    events: list[tuple[str, dict[str, Any] | None]] = []

    class Sink(_DroppingSink):
        def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
            events.append((type, data))

    async def ok(ctx: StageContext) -> StageOutput:
        return StageOutput.ok()

    graph = UnifiedStageGraph(
        [
            UnifiedStageSpec(name="z", runner=ok, kind=StageKind.WORK),
            UnifiedStageSpec(name="a", runner=ok, kind=StageKind.WORK, dependencies=("z",)),
            UnifiedStageSpec(name="m", runner=ok, kind=StageKind.WORK, dependencies=("z",)),
        ]
    )
    await graph.run(_stage_ctx(Sink()))
    (completed,) = [data for type_, data in events if type_ == "pipeline_completed"]
    assert completed is not None
    assert completed["stages_completed"] == ["a", "m", "z"]
