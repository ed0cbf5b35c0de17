"""Regressions found by the subpipeline fuzz (tests/pipeline/test_audit14_subpipeline_fuzz.py)."""

from __future__ import annotations

import uuid
from typing import Any

import trio

from stageflow_trio.events import set_event_sink
from stageflow_trio.pipeline import ChildRunTracker, SubpipelineSpawner
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.testing import RecordingEventSink, create_test_pipeline_context


class _GatedSink(RecordingEventSink):
    """Records; the second ``pipeline.spawned_child`` waits, shielded, at ``gate``.

    A sink whose ``emit`` ends at a point that cannot raise ``Cancelled`` (as
    RecordingEventSink's own final ``cancel_shielded_checkpoint``): the task that
    emitted resumes normally after a cancellation that arrived meanwhile.
    """

    def __init__(self) -> None:
        super().__init__()
        self.parked = trio.Event()
        self.gate = trio.Event()
        self._spawned = 0

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        await super().emit(type=type, data=data)
        if type == "pipeline.spawned_child":
            self._spawned += 1
            if self._spawned == 2:
                self.parked.set()
                with trio.CancelScope(shield=True):
                    await self.gate.wait()


async def test_a_child_cancelled_while_its_grandchild_is_announced_ends_cancelled(
    autojump_clock: trio.abc.Clock,
) -> None:
    """cancel_with_children(child) lands while the child's own spawn of a grandchild
    is emitting ``pipeline.spawned_child``: the grandchild never starts, and the child
    must end cancelled (its spawn returns "Child pipeline canceled: ..."), not return
    normally with a ``child_completed`` event after its ``pipeline.canceled`` one.

    Before the fix, the grandchild's spawn returned its "canceled" result to the
    child without raising ``Cancelled`` (though the child's scope was cancelled too),
    so a child whose next step was to return completed successfully.
    """
    sink = _GatedSink()
    set_event_sink(sink)
    spawner = SubpipelineSpawner(child_tracker=ChildRunTracker())
    root = create_test_pipeline_context()
    child_ids: list[uuid.UUID] = []
    steps: list[str] = []
    results: dict[str, Any] = {}

    async def grandchild(ctx: PipelineContext) -> dict[str, Any]:
        steps.append("grandchild ran")
        return {}

    async def child(ctx: PipelineContext) -> dict[str, Any]:
        assert ctx.pipeline_run_id is not None
        child_ids.append(ctx.pipeline_run_id)
        try:
            await spawner.spawn("grandchild", ctx, uuid.uuid4(), "c", grandchild)
        except trio.Cancelled:
            steps.append("child cancelled")
            raise
        steps.append("child returned")
        return {"done": True}

    async def top() -> None:
        results["child"] = await spawner.spawn("child", root, uuid.uuid4(), "r", child)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(top)
        await sink.parked.wait()
        canceled = await spawner.cancel_with_children(child_ids[0], reason="stop")
        sink.gate.set()

    assert canceled[-1] == child_ids[0]
    assert steps == ["child cancelled"]
    result = results["child"]
    assert (result.success, result.error) == (False, "Child pipeline canceled: stop")
    assert sink.of_type("pipeline.child_completed") == []
    assert sink.types() == ["pipeline.spawned_child"] * 2 + ["pipeline.canceled"] * 2
    assert spawner.running_children == frozenset()
    assert await spawner.child_tracker.get_metrics() == {
        **await spawner.child_tracker.get_metrics(),
        "active_parents": 0,
        "active_children": 0,
    }
