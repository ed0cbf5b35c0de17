"""Context variables a stage sets stay out of the task that called ``run()``.

The reference runs every stage in an asyncio task of its own, so a change never
leaves the stage. Here the first root runs in the caller's task but in a copy of
its context (``run_in_context``), the other roots in tasks (which copy it too), and a
stage's dependants continue in its task: a change reaches the stages a stage
releases, never the caller (docs/parity.md, "Stage scheduling").
"""

from __future__ import annotations

import contextvars
import types
from collections.abc import Generator
from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio._engine._scheduler import run_in_context
from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.core.stage_enums import StageKind
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.pipeline.dag import StageGraph, StageSpec, UnifiedStageGraph
from stageflow_trio.pipeline.pipeline import Pipeline
from stageflow_trio.stages.context import PipelineContext
from tests.fakes import pipeline_context
from tests.pipeline.graph_helpers import spec, stage_ctx

TENANT: contextvars.ContextVar[str] = contextvars.ContextVar("tenant", default="caller's")


async def _set_blue(ctx: Any) -> StageOutput:
    TENANT.set("blue")
    return StageOutput.ok(saw=TENANT.get())


async def _read(ctx: Any) -> StageOutput:
    return StageOutput.ok(saw=TENANT.get())


@pytest.mark.parametrize("roots", [1, 2])
async def test_a_unified_run_leaves_the_callers_context_alone(roots: int) -> None:
    specs = [spec("setter", _set_blue), spec("after", _read, ["setter"])]
    if roots == 2:
        specs.append(spec("other", _read))
    TENANT.set("red")
    results = await UnifiedStageGraph(specs).run(stage_ctx())
    assert TENANT.get() == "red"  # the caller's own value, whichever root ran first
    assert results["setter"].data == {"saw": "blue"}
    assert results["after"].data == {"saw": "blue"}  # released: continues in the task
    if roots == 2:
        assert results["other"].data == {"saw": "red"}  # a task of its own: a copy


async def test_a_legacy_run_leaves_the_callers_context_alone() -> None:
    seen: dict[str, str] = {}

    async def setter(ctx: PipelineContext) -> dict[str, Any]:
        TENANT.set("blue")
        return {}

    async def after(ctx: PipelineContext) -> dict[str, Any]:
        seen["after"] = TENANT.get()
        return {}

    TENANT.set("red")
    graph = StageGraph(
        [
            StageSpec(name="setter", runner=setter),
            StageSpec(name="after", runner=after, dependencies=("setter",)),
        ],
        [],
    )
    await graph.run(pipeline_context())
    assert TENANT.get() == "red"
    assert seen == {"after": "blue"}


async def test_a_pipeline_run_from_a_context_leaves_the_callers_context_alone() -> None:
    async def setter(ctx: StageContext) -> StageOutput:
        TENANT.set("blue")
        return StageOutput.ok()

    TENANT.set("red")
    await Pipeline().with_stage("setter", setter, StageKind.WORK).build().run(stage_ctx())
    assert TENANT.get() == "red"


# --- run_in_context, the engine's way to run the first root in the caller's task ------


@types.coroutine
def _suspend(label: str) -> Generator[str, Any, Any]:
    """Yield ``label`` to whoever drives the coroutine; return what it sends back."""
    return (yield label)


async def test_run_in_context_keeps_the_changes_in_its_context(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def body() -> str:
        TENANT.set("blue")
        await trio.sleep(1)  # a real trio trap passes through
        assert TENANT.get() == "blue"  # the next step runs in the same context
        return "done"

    TENANT.set("red")
    context = contextvars.copy_context()
    assert await run_in_context(context, body()) == "done"
    assert TENANT.get() == "red"
    assert context[TENANT] == "blue"


async def test_run_in_context_passes_errors_and_cancellation_through(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def fails() -> None:
        await trio.lowlevel.checkpoint()
        raise KeyError("inner")

    with pytest.raises(KeyError, match="inner"):
        await run_in_context(contextvars.copy_context(), fails())

    seen: list[str] = []

    async def blocked() -> None:
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            seen.append(f"cancelled in {TENANT.get()}")
            raise

    async def inner() -> None:
        TENANT.set("blue")
        await blocked()

    with trio.move_on_after(5) as scope:
        await run_in_context(contextvars.copy_context(), inner())
    assert scope.cancelled_caught
    assert seen == ["cancelled in blue"]


def test_run_in_context_forwards_sends_throws_and_close() -> None:
    log: list[object] = []

    async def inner() -> str:
        log.append(await _suspend("first"))
        try:
            await _suspend("second")
        except ValueError as exc:
            log.append(f"caught {exc}")
        try:
            await _suspend("third")
        finally:
            log.append("closed")
        return "unreachable"

    driven = run_in_context(contextvars.copy_context(), inner())
    assert driven.send(None) == "first"
    assert driven.send("sent") == "second"
    assert driven.throw(ValueError("thrown")) == "third"
    driven.close()
    assert log == ["sent", "caught thrown", "closed"]


async def test_a_blocked_first_root_shows_in_the_tasks_await_frames(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Debugging tools walk Task.iter_await_frames(); run_in_context must not hide the stage.
    async def stuck_stage(ctx: Any) -> StageOutput:
        await trio.sleep(3600)
        return StageOutput.ok()  # pragma: no cover - cancelled first

    graph = UnifiedStageGraph([spec("stuck", stuck_stage)])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(graph.run, stage_ctx(), name="the run")
        await trio.testing.wait_all_tasks_blocked()
        [task] = [t for t in nursery.child_tasks if t.name == "the run"]
        frames = [frame for frame, _ in task.iter_await_frames()]
        nursery.cancel_scope.cancel()
    names = [frame.f_code.co_name for frame in frames]
    assert len(set(map(id, frames))) == len(frames)  # each frame once
    assert names.count("_stage_task") == 1
    assert "drive" in names
    assert names.index("stuck_stage") > names.index("drive")
    assert names.index("sleep") > names.index("stuck_stage")
