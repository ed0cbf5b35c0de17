"""Guard retries: a guard sends a draft back for another attempt until it passes.

``draft`` writes an answer, ``guard`` rejects answers shorter than 20 characters,
and a GuardRetryPolicy makes a failing guard re-run ``draft`` (at most 4 times,
giving up early if the guard keeps failing the same way). ``publish`` waits for
the guard's final verdict. Every guard_retry.* event is printed.

Run it: ``python -m stageflow_trio.examples guard_retry``, or through the command line
with a live view: ``stageflow-trio run stageflow_trio.examples.guard_retry``.
"""

from __future__ import annotations

from typing import Any

import trio
import trio.lowlevel

from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.examples import _run_main
from stageflow_trio.pipeline import (
    GuardRetryPolicy,
    GuardRetryStrategy,
    Pipeline,
    UnifiedStageGraph,
)
from stageflow_trio.testing import RecordingEventSink, create_test_stage_context

__all__ = ["Drafter", "build_graph", "main"]

DRAFTS = ["Too short.", "Still short!", "This answer is finally long enough."]


class Drafter:
    """A stage instance: it is reused for every attempt, so it can count them."""

    name = "draft"
    kind = StageKind.TRANSFORM

    def __init__(self) -> None:
        self.calls: int = 0

    async def execute(self, ctx: StageContext) -> StageOutput:
        self.calls += 1
        await trio.lowlevel.checkpoint()  # a real stage would call a model here
        return StageOutput.ok(text=DRAFTS[min(self.calls, len(DRAFTS)) - 1])


async def guard(ctx: StageContext) -> StageOutput:
    text = ctx.inputs.get_from("draft", "text")
    if len(text) < 20:
        return StageOutput.fail(error="answer too short", data={"length": len(text)})
    return StageOutput.ok(approved=True)


async def publish(ctx: StageContext) -> StageOutput:
    return StageOutput.ok(published=ctx.inputs.get_from("draft", "text"))


def build_graph(drafter: Drafter | None = None) -> UnifiedStageGraph:
    """draft -> guard -> publish, the guard sending failures back to ``draft``."""
    return (
        Pipeline(name="answer")
        .with_stage("draft", drafter if drafter is not None else Drafter(), StageKind.TRANSFORM)
        .with_stage("guard", guard, StageKind.GUARD, dependencies=("draft",))
        .with_stage("publish", publish, StageKind.WORK, dependencies=("draft", "guard"))
        .build(
            guard_retry_strategy=GuardRetryStrategy(
                {"guard": GuardRetryPolicy(retry_stage="draft", max_attempts=4)}
            )
        )
    )


async def main() -> dict[str, Any]:
    drafter = Drafter()
    graph = build_graph(drafter)
    sink = RecordingEventSink()
    results = await graph.run(create_test_stage_context(event_sink=sink))
    for event_type, data in sink.events:
        if event_type.startswith("guard_retry."):
            assert data is not None
            details = {k: data[k] for k in ("attempt", "attempts") if k in data}
            print(f"{event_type:24s} {details}")
    print("published:", results["publish"].data["published"])
    return {"results": results, "events": sink.types(), "drafts": drafter.calls}


if __name__ == "__main__":
    # trio.run(main), ending quietly (status 141) if the reader goes away (| head).
    _run_main(main)
