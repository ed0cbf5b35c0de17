"""Cancellation semantics of a graph run, shown in virtual time.

Three scenarios, each printing what every stage saw:

1. a stage fails: its running siblings are cancelled before the error comes out;
2. a CancellationToken is cancelled from outside: a stage blocked forever is
   interrupted and the run raises UnifiedPipelineCancelled with the results so far;
3. the caller's deadline (trio.move_on_after) expires: the run stops there and
   its cleanup callbacks run exactly once.

The run uses trio.testing.MockClock with autojump, so the "seconds" below pass
instantly and the printed times are exact. Run it: ``python -m stageflow_trio.examples cancellation``.
"""

from __future__ import annotations

import trio
import trio.testing

from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.examples import _run_main
from stageflow_trio.pipeline import (
    CancellationToken,
    Pipeline,
    UnifiedPipelineCancelled,
    UnifiedStageExecutionError,
)
from stageflow_trio.testing import create_test_stage_context

__all__ = [
    "deadline_stops_the_run",
    "failure_cancels_siblings",
    "main",
    "token_interrupts_a_blocked_stage",
]

log: list[str] = []


def note(message: str) -> None:
    line = f"[t={trio.current_time():5.2f}s] {message}"
    log.append(line)
    print(line)


async def slow_lookup(ctx: StageContext) -> StageOutput:
    note(f"{ctx.stage_name}: started")
    try:
        await trio.sleep(60)
    except trio.Cancelled:
        note(f"{ctx.stage_name}: cancelled")
        raise
    return StageOutput.ok()


async def failing_call(ctx: StageContext) -> StageOutput:
    await trio.sleep(1.5)
    note(f"{ctx.stage_name}: raising")
    raise ConnectionError("upstream refused")


async def fetch(ctx: StageContext) -> StageOutput:
    await trio.sleep(0.5)
    note(f"{ctx.stage_name}: done")
    return StageOutput.ok(rows=3)


async def blocked(ctx: StageContext) -> StageOutput:
    note(f"{ctx.stage_name}: waiting forever")
    try:
        await trio.sleep_forever()
    finally:
        note(f"{ctx.stage_name}: unblocked by cancellation")
    raise AssertionError("not reached")


async def failure_cancels_siblings() -> None:
    print("\n1. a stage fails")
    graph = (
        Pipeline()
        .with_stage("lookup", slow_lookup, StageKind.ENRICH)
        .with_stage("call", failing_call, StageKind.WORK)
        .build()
    )
    try:
        await graph.run(create_test_stage_context())
    except UnifiedStageExecutionError as exc:
        note(f"run raised {type(exc).__name__}: {exc}")


async def token_interrupts_a_blocked_stage() -> None:
    print("\n2. a token is cancelled from outside")
    graph = (
        Pipeline()
        .with_stage("fetch", fetch, StageKind.ENRICH)
        .with_stage("wait", blocked, StageKind.WORK, dependencies=("fetch",))
        .build()
    )
    token = CancellationToken()

    async def hang_up_later() -> None:
        await trio.sleep(2)
        note("caller: token.cancel('caller hung up')")
        token.cancel("caller hung up")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(hang_up_later)
        try:
            await graph.run(create_test_stage_context(), cancel_token=token)
        except UnifiedPipelineCancelled as stopped:
            note(
                f"run raised UnifiedPipelineCancelled({stopped.reason!r}); kept {sorted(stopped.results)}"
            )


async def deadline_stops_the_run() -> None:
    print("\n3. the caller's deadline expires")

    async def release_connection() -> None:
        note("cleanup: connection released")

    async def wait_holding_a_connection(ctx: StageContext) -> StageOutput:
        # Cleanup registered during the run runs once, however the run ends.
        graph.register_cleanup(release_connection, name="connection")
        return await blocked(ctx)

    graph = Pipeline().with_stage("wait", wait_holding_a_connection, StageKind.WORK).build()
    with trio.move_on_after(3) as scope:
        await graph.run(create_test_stage_context())
    note(f"deadline reached: cancelled_caught={scope.cancelled_caught}")


async def main() -> list[str]:
    log.clear()
    await failure_cancels_siblings()
    await token_interrupts_a_blocked_stage()
    await deadline_stops_the_run()
    return log


if __name__ == "__main__":
    # trio.run(main), ending quietly (status 141) if the reader goes away (| head).
    _run_main(main, clock=trio.testing.MockClock(autojump_threshold=0))
