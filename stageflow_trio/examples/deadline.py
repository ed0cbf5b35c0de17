"""A run under a deadline that stays clean under Ctrl-C, in virtual time.

``fetch`` holds a (pretend) connection and registers its release as a cleanup
callback of the run; ``summarize`` is slow. :func:`run_safely` runs the graph
under ``trio.move_on_after`` and, while it runs, turns SIGINT (Ctrl-C) into a
cancelled CancellationToken instead of a KeyboardInterrupt in the middle of a
stage. Either way the stages stop at their next checkpoint, the cleanup runs
exactly once, and the caller gets an answer instead of a traceback:

1. the deadline (2 s) passes while ``summarize`` is still working;
2. a Ctrl-C arrives after 0.5 s (this example sends itself the signal).

Run it: ``python -m stageflow_trio.examples deadline``; the command line does the
same for any pipeline with ``stageflow-trio run TARGET --timeout S``.
"""

from __future__ import annotations

import signal
from typing import Any

import trio
import trio.testing

from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.examples import _run_main
from stageflow_trio.pipeline import (
    CancellationToken,
    Pipeline,
    UnifiedPipelineCancelled,
    UnifiedStageGraph,
)
from stageflow_trio.testing import create_test_stage_context

__all__ = ["build_graph", "main", "run_safely"]


def build_graph(log: list[str] | None = None) -> UnifiedStageGraph:
    """fetch (0.2 s, holds a connection) -> summarize (5 s); what happens goes to ``log``."""
    if log is None:
        log = []

    async def fetch(ctx: StageContext) -> StageOutput:
        log.append(f"[t={trio.current_time():.2f}s] fetch: connection opened")

        async def release() -> None:
            log.append(f"[t={trio.current_time():.2f}s] cleanup: connection released")

        ctx.register_cleanup(release, name="release connection")
        await trio.sleep(0.2)
        return StageOutput.ok(pages=3)

    async def summarize(ctx: StageContext) -> StageOutput:
        try:
            await trio.sleep(5)
        except trio.Cancelled:
            log.append(f"[t={trio.current_time():.2f}s] summarize: cancelled")
            raise
        return StageOutput.ok(summary="...")

    return (
        Pipeline(name="deadline")
        .with_stage("fetch", fetch, StageKind.ENRICH)
        .with_stage("summarize", summarize, StageKind.TRANSFORM, dependencies=("fetch",))
        .build()
    )


async def _cancel_on_sigint(
    token: CancellationToken, *, task_status: Any = trio.TASK_STATUS_IGNORED
) -> None:
    with trio.open_signal_receiver(signal.SIGINT) as signals:
        task_status.started()
        async for _ in signals:
            token.cancel("Ctrl-C")


async def run_safely(graph: UnifiedStageGraph, deadline: float) -> str:
    """Run ``graph`` for at most ``deadline`` seconds, stopping cleanly on Ctrl-C.

    Returns how the run ended. A checkpoint. Needs the main thread (signals).
    """
    token = CancellationToken()
    outcome = "completed"
    async with trio.open_nursery() as nursery:
        await nursery.start(_cancel_on_sigint, token)
        with trio.move_on_after(deadline) as scope:
            try:
                await graph.run(create_test_stage_context(), cancel_token=token)
            except UnifiedPipelineCancelled as exc:
                outcome = f"cancelled ({exc.reason}); finished: {sorted(exc.results)}"
        if scope.cancelled_caught:
            outcome = f"deadline of {deadline}s reached"
        nursery.cancel_scope.cancel()  # stop listening for Ctrl-C
    return outcome


async def _press_ctrl_c_after(seconds: float) -> None:
    await trio.sleep(seconds)
    signal.raise_signal(signal.SIGINT)


async def main() -> list[str]:
    log: list[str] = []
    graph = build_graph(log)
    log.append(f"1. {await run_safely(graph, deadline=2.0)}")
    started = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_press_ctrl_c_after, 0.5)
        outcome = await run_safely(graph, deadline=2.0)
    log.append(f"2. {outcome} after {trio.current_time() - started:.2f}s")
    print("\n".join(log))
    return log


if __name__ == "__main__":
    # trio.run(main), ending quietly (status 141) if the reader goes away (| head).
    _run_main(main, clock=trio.testing.MockClock(autojump_threshold=0))
