"""assert_no_orphans: a task that outlives its run fails the block, named."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.pipeline import Pipeline
from stageflow_trio.testing import assert_no_orphans, create_test_stage_context
from stageflow_trio.testing.orphans import NoOrphans, TaskWatcher


async def stage(ctx: StageContext) -> StageOutput:
    await trio.sleep(1)
    return StageOutput.ok()


async def test_a_clean_run_passes(virtual_clock: trio.testing.MockClock) -> None:
    graph = Pipeline().with_stage("a", stage, StageKind.WORK).build()
    async with assert_no_orphans() as watch:
        await graph.run(create_test_stage_context())
    assert isinstance(watch, NoOrphans)
    assert watch.orphans == []
    with assert_no_orphans() as watch:
        await graph.run(create_test_stage_context())
    assert watch.orphans == []


async def test_a_task_spawned_into_an_outer_nursery_is_named(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as outside:

        async def leaky(ctx: StageContext) -> StageOutput:
            outside.start_soon(trio.sleep_forever, name="heartbeat")
            await trio.sleep(1)
            return StageOutput.ok()

        graph = Pipeline().with_stage("a", leaky, StageKind.WORK).build()
        watch = assert_no_orphans()
        with pytest.raises(
            AssertionError,
            match=r"^1 task\(s\) started during the run outlived it: 'heartbeat' \(a task must"
            r" not outlive the run that started it\)$",
        ):
            async with watch:
                await graph.run(create_test_stage_context())
        assert watch.orphans == ["heartbeat"]
        outside.cancel_scope.cancel()


async def test_tasks_of_spawned_tasks_are_watched_too(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as outside:

        async def grandchild_spawner() -> None:
            outside.start_soon(trio.sleep_forever, name="grandchild")
            await trio.sleep(0.1)

        async def run() -> None:
            with assert_no_orphans():
                async with trio.open_nursery() as inner:
                    inner.start_soon(grandchild_spawner, name="child")

        with pytest.raises(AssertionError, match=r"^1 task\(s\) .*: 'grandchild' "):
            await run()
        outside.cancel_scope.cancel()


async def test_an_error_from_the_block_wins(virtual_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as outside:
        watch = assert_no_orphans()

        def run() -> None:
            with watch:
                outside.start_soon(trio.sleep_forever, name="left")
                raise ValueError("boom")

        with pytest.raises(ValueError, match=r"^boom$"):
            run()
        assert watch.orphans == ["left"]
        outside.cancel_scope.cancel()


async def test_tasks_from_outside_the_block_are_not_watched(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async def spawns_later(nursery: trio.Nursery) -> None:
        await trio.sleep(1)
        nursery.start_soon(trio.sleep_forever, name="spawned by an outside task")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.sleep_forever, name="before")
        nursery.start_soon(spawns_later, nursery)
        with assert_no_orphans() as watch:
            await trio.sleep(2)
        assert watch.orphans == []
        nursery.cancel_scope.cancel()


async def test_a_block_cannot_be_entered_twice() -> None:
    watch = assert_no_orphans()
    with (
        watch,
        pytest.raises(RuntimeError, match=r"^assert_no_orphans\(\): this block is already in use$"),
    ):
        watch.__enter__()


def test_outside_trio() -> None:
    with pytest.raises(RuntimeError), assert_no_orphans():
        pass  # pragma: no cover - not reached


async def test_the_watcher_cancels_once_and_only_with_a_scope() -> None:
    watcher = TaskWatcher(trio.lowlevel.current_task())
    watcher.cancel("nothing to cancel")
    assert (watcher.cancelled_at, watcher.interrupted) == (None, [])
    with trio.CancelScope() as scope:
        watcher.scope = scope
        watcher.cancel("now")
        watcher.cancel("again")  # once only
        await trio.lowlevel.checkpoint()
    assert scope.cancelled_caught
    assert watcher.cancelled_at == -1  # before any step
    assert watcher.interrupted == []


async def test_a_runnable_task_is_interrupted_at_its_next_unshielded_checkpoint() -> None:
    root = trio.lowlevel.current_task()
    watcher = TaskWatcher(root)
    received: list[trio.lowlevel.Task] = []
    watcher.on_interrupt = received.append
    trio.lowlevel.add_instrument(watcher)
    try:
        with trio.CancelScope() as scope:
            watcher.scope = scope
            watcher.cancel("now")  # from this task, running: nothing is woken
            assert watcher.interrupted == []
            with trio.CancelScope(shield=True):
                await trio.lowlevel.checkpoint()  # shielded: no Cancelled
                with trio.CancelScope() as inner:
                    inner.cancel("its own")
                    await trio.lowlevel.checkpoint()  # a Cancelled, but not this cancel's
            assert inner.cancelled_caught
            assert watcher.interrupted == []
            await trio.lowlevel.checkpoint()
    finally:
        trio.lowlevel.remove_instrument(watcher)
    assert scope.cancelled_caught
    assert watcher.interrupted == received == [root]
