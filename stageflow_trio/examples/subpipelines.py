"""Subpipelines and a cancellation cascade, in virtual time.

The ``research`` stage spawns two child runs (``search_web``, ``search_docs``)
through a SubpipelineSpawner; each child spawns a grandchild (``fetch_page``)
and every one of them then waits on slow work. After 1 s the ``watchdog`` stage
decides the user has gone and calls ``cancel_with_children`` on the parent run:
the whole tree stops at once, each run's ``finally`` block runs (grandchildren
first), ``pipeline.canceled`` events are emitted deepest first, and the spawns
return a failed SubpipelineResult instead of raising, so ``research`` finishes
normally with what it learned.

Run it: ``python -m stageflow_trio.examples subpipelines``.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import trio
import trio.testing

from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.events import set_event_sink
from stageflow_trio.examples import _run_main
from stageflow_trio.pipeline import Pipeline
from stageflow_trio.pipeline.subpipeline import (
    ChildRunTracker,
    SubpipelineResult,
    SubpipelineSpawner,
)
from stageflow_trio.testing import RecordingEventSink, create_test_stage_context

if TYPE_CHECKING:
    from stageflow_trio.stages.context import PipelineContext

__all__ = ["main"]

RUN_ID = uuid.UUID("00000000-0000-4000-8000-00000000000a")
CORRELATION = uuid.UUID("00000000-0000-4000-8000-00000000000c")


async def main() -> dict[str, Any]:
    log: list[str] = []
    spawner = SubpipelineSpawner(child_tracker=ChildRunTracker())
    sink = RecordingEventSink()
    set_event_sink(sink)  # the spawner's pipeline.* events go to the global sink

    def note(message: str) -> None:
        log.append(f"[t={trio.current_time():4.2f}s] {message}")

    def slow_work(name: str, child: str | None) -> Any:
        async def run(ctx: PipelineContext) -> dict[str, Any]:
            note(f"{name}: started")
            try:
                if child is not None:
                    await spawner.spawn(child, ctx, CORRELATION, name, slow_work(child, None))
                await trio.sleep_forever()  # slow work that will not finish
            finally:
                note(f"{name}: stopped, its resources released")

        return run

    outcomes: list[SubpipelineResult] = []

    async def research(ctx: StageContext) -> StageOutput:
        parent = ctx.as_pipeline_context()

        async def search(name: str) -> None:
            result = await spawner.spawn(
                name, parent, CORRELATION, "research", slow_work(name, "fetch_page")
            )
            outcomes.append(result)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(search, "search_web")
            nursery.start_soon(search, "search_docs")
        return StageOutput.ok(children=[r.error for r in outcomes])

    async def watchdog(ctx: StageContext) -> StageOutput:
        await trio.sleep(1.0)
        note("watchdog: the user has gone; cancelling the tree")
        cancelled = await spawner.cancel_with_children(RUN_ID, reason="user hung up")
        return StageOutput.ok(cancelled=len(cancelled))

    graph = (
        Pipeline(name="research")
        .with_stage("research", research, StageKind.WORK)
        .with_stage("watchdog", watchdog, StageKind.WORK)
        .build()
    )
    results = await graph.run(create_test_stage_context(pipeline_run_id=RUN_ID))
    depths = [data["cascade_depth"] for data in sink.of_type("pipeline.canceled") if data]
    log.append(f"pipeline.canceled events, by depth: {depths}")
    log.append(f"research: {results['research'].data['children']}")
    print("\n".join(log))
    return {"log": log, "results": results, "depths": depths}


if __name__ == "__main__":
    # trio.run(main), ending quietly (status 141) if the reader goes away (| head).
    _run_main(main, clock=trio.testing.MockClock(autojump_threshold=0))
