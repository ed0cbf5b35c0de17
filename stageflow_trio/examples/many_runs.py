"""A trio application that runs many pipelines in its own nursery, in virtual time.

One graph serves every request: a graph keeps no per-run state, so runs of it may
overlap. The application owns a nursery; a request handler starts a run in it, at
most 3 at a time (a ``trio.Semaphore`` taken in request order, so that the
printed times are the same on every run), and hands the answer back through a
memory channel. A failing request fails alone: its error is caught in its own
task, so the other runs go on. When the application leaves its nursery, nothing
it started is still running.

Run it: ``python -m stageflow_trio.examples many_runs``.
"""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.examples import _run_main
from stageflow_trio.pipeline import Pipeline, UnifiedStageExecutionError, UnifiedStageGraph
from stageflow_trio.testing import create_test_stage_context

__all__ = ["build_graph", "main"]


async def lookup(ctx: StageContext) -> StageOutput:
    text = ctx.snapshot.input_text or ""
    await trio.sleep(0.1 * len(text))  # longer questions take longer
    if "?" not in text:
        return StageOutput.fail(error=f"not a question: {text!r}")
    return StageOutput.ok(facts=len(text))


async def answer(ctx: StageContext) -> StageOutput:
    await trio.sleep(0.05)
    return StageOutput.ok(text=f"{ctx.inputs.get_from('lookup', 'facts')} facts")


def build_graph() -> UnifiedStageGraph:
    return (
        Pipeline(name="qa")
        .with_stage("lookup", lookup, StageKind.ENRICH)
        .with_stage("answer", answer, StageKind.TRANSFORM, dependencies=("lookup",))
        .build()
    )


async def serve(
    graph: UnifiedStageGraph,
    requests: list[str],
    answers: trio.MemorySendChannel[tuple[str, str, float]],
    limit: int = 3,
) -> None:
    """Run one pipeline per request in this function's nursery, ``limit`` at a time."""
    slots = trio.Semaphore(limit)

    async def handle(question: str) -> None:
        try:
            results = await graph.run(create_test_stage_context(input_text=question))
            reply = results["answer"].data["text"]
        except UnifiedStageExecutionError as exc:
            reply = f"error: {exc.original}"
        finally:
            slots.release()
        await answers.send((question, reply, round(trio.current_time(), 6)))

    # The channel closes after the nursery block, when every handler is done.
    async with answers, trio.open_nursery() as nursery:
        for question in requests:
            await slots.acquire()  # taken here, in order; released by the handler
            nursery.start_soon(handle, question)


async def main() -> dict[str, Any]:
    requests = ["why?", "how so?", "statement", "what is a nursery?", "ok?"]
    send, receive = trio.open_memory_channel[tuple[str, str, float]](0)
    replies: list[tuple[str, str, float]] = []
    async with trio.open_nursery() as app:
        app.start_soon(serve, build_graph(), requests, send)
        async with receive:
            async for question, reply, at in receive:
                print(f"[t={at:4.2f}s] {question!r}: {reply}")
                replies.append((question, reply, at))
    return {"replies": replies, "finished_at": trio.current_time()}


if __name__ == "__main__":
    # trio.run(main), ending quietly (status 141) if the reader goes away (| head).
    _run_main(main, clock=trio.testing.MockClock(autojump_threshold=0))
