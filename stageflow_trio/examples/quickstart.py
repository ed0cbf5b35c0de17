"""Quickstart: a five-stage pipeline run under trio.

A guard checks the input, two enrich stages run in parallel, a transform
combines them and a work stage "saves" the result. Every stage event is
printed as it happens.

Run it with ``python -m stageflow_trio.examples quickstart``.
"""

from __future__ import annotations

from typing import Any

import trio

from stageflow_trio.context import ContextSnapshot
from stageflow_trio.core import PipelineTimer, StageContext, StageKind, StageOutput
from stageflow_trio.examples import _run_main
from stageflow_trio.pipeline import Pipeline
from stageflow_trio.stages import StageInputs

__all__ = ["build_pipeline", "main"]


class PrintingSink:
    """An event sink that prints each event type with its stage."""

    def __init__(self) -> None:
        self.events: list[str] = []

    async def emit(self, *, type: str, data: dict[str, object] | None) -> None:
        await trio.lowlevel.checkpoint()
        self.try_emit(type=type, data=data)

    def try_emit(self, *, type: str, data: dict[str, object] | None) -> None:
        self.events.append(type)
        print(f"  event: {type}")


class Guard:
    """Refuses empty input."""

    name = "guard"
    kind = StageKind.GUARD

    async def execute(self, ctx: StageContext) -> StageOutput:
        text = ctx.snapshot.input_text or ""
        if not text.strip():
            return StageOutput.fail(error="empty input")
        return StageOutput.ok(text=text.strip())


async def profile(ctx: StageContext) -> StageOutput:
    await trio.sleep(0.01)  # pretend to call a profile service
    return StageOutput.ok(name="Ada")


async def memory(ctx: StageContext) -> StageOutput:
    await trio.sleep(0.02)  # pretend to read conversation memory
    return StageOutput.ok(last_topic="engines")


async def compose(ctx: StageContext) -> StageOutput:
    name = ctx.inputs.get_from("profile", "name")
    topic = ctx.inputs.get_from("memory", "last_topic")
    text = ctx.inputs.get_from("guard", "text")
    return StageOutput.ok(reply=f"Hello {name}! Last time: {topic}. You said: {text}")


async def save(ctx: StageContext) -> StageOutput:
    reply = ctx.inputs.get_from("compose", "reply")
    return StageOutput.ok(saved=True, length=len(reply))


def build_pipeline() -> Pipeline:
    return (
        Pipeline(name="quickstart")
        .with_stage("guard", Guard, StageKind.GUARD)
        .with_stage("profile", profile, StageKind.ENRICH, dependencies=("guard",))
        .with_stage("memory", memory, StageKind.ENRICH, dependencies=("guard",))
        .with_stage(
            "compose", compose, StageKind.TRANSFORM, dependencies=("guard", "profile", "memory")
        )
        .with_stage("save", save, StageKind.WORK, dependencies=("compose",))
    )


async def main() -> dict[str, StageOutput]:
    graph = build_pipeline().build()
    snapshot: ContextSnapshot[Any] = ContextSnapshot(
        input_text="  tell me about trio  ", topology="quickstart"
    )
    ctx = StageContext(
        snapshot=snapshot,
        inputs=StageInputs(snapshot=snapshot),
        stage_name="quickstart",
        timer=PipelineTimer(),
        event_sink=PrintingSink(),
    )
    results = await graph.run(ctx)
    print(results["compose"].data["reply"])
    return results


if __name__ == "__main__":
    # trio.run(main), ending quietly (status 141) if the reader goes away (| head).
    _run_main(main)
