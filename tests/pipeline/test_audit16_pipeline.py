"""Audit 16: long-lived pipeline objects, concurrent use, failure paths, first programs."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

import trio

from stageflow_trio._time import utc_now
from stageflow_trio.pipeline.idempotency import IdempotencyInterceptor, InMemoryIdempotencyStore
from stageflow_trio.pipeline.interceptors import run_with_interceptors
from stageflow_trio.pipeline.interceptors_hardening import (
    ContextSizeInterceptor,
    ImmutabilityInterceptor,
    ImmutabilityViolationError,
)
from stageflow_trio.stages.result import StageResult
from stageflow_trio.testing import create_test_pipeline_context

# -- interceptors shared by concurrent calls of one stage on one context -------

_REQUEST: ContextVar[str] = ContextVar("audit16_request")


def _ok(name: str, data: dict[str, Any]) -> StageResult:
    now = utc_now()
    return StageResult(name=name, status="completed", started_at=now, ended_at=now, data=data)


async def test_concurrent_calls_on_one_context_each_release_their_own_claim(
    autojump_clock: trio.abc.Clock,
) -> None:
    store = InMemoryIdempotencyStore()
    idem = IdempotencyInterceptor(store=store, key_extractor=lambda ctx: _REQUEST.get())
    ctx = create_test_pipeline_context()
    ran: list[str] = []

    async def call(key: str, seconds: float) -> StageResult:
        _REQUEST.set(key)

        async def stage() -> StageResult:
            ran.append(key)
            await trio.sleep(seconds)
            return _ok("s", {"key": key})

        return await run_with_interceptors("s", stage, ctx, [idem])

    async with trio.open_nursery() as nursery:
        nursery.start_soon(call, "k1", 2)
        await trio.sleep(0.5)
        nursery.start_soon(call, "k2", 1)

    # Each call cached its own result and released its own claim.
    assert not store.is_claimed('["s", "k1"]')
    assert not store.is_claimed('["s", "k2"]')
    assert not idem.in_flight("k1", "s")
    for key in ("k1", "k2"):
        cached = await store.get(f'["s", "{key}"]')
        assert cached is not None
        assert dict(cached.result.data) == {"key": key}
    # A duplicate of the first request replays it (it used to wait forever on the claim).
    with trio.fail_after(5):
        replay = await call("k1", 0)
    assert dict(replay.data) == {"key": "k1"}
    assert ran == ["k1", "k2"]


async def test_immutability_checks_each_of_two_concurrent_calls_on_one_context(
    autojump_clock: trio.abc.Clock,
) -> None:
    guard = ImmutabilityInterceptor()
    ctx = create_test_pipeline_context(data={"snapshot": {"input": "hello"}})
    errors: list[BaseException] = []

    async def call(seconds: float, mutate: bool) -> None:
        async def stage() -> StageResult:
            await trio.sleep(seconds)
            if mutate:
                ctx.data["snapshot"]["input"] = "changed"
            return _ok("s", {})

        try:
            await run_with_interceptors("s", stage, ctx, [guard])
        except ImmutabilityViolationError as exc:
            errors.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(call, 1, False)
        nursery.start_soon(call, 2, True)

    # The call that mutated the snapshot is the one caught (it used to pass unchecked).
    assert [str(e) for e in errors] == [
        "Immutability violation: Stage 's' mutated the input ContextSnapshot."
    ]
    assert guard._before == {}


async def test_context_size_measures_each_of_two_concurrent_calls_on_one_context(
    autojump_clock: trio.abc.Clock,
) -> None:
    sizes = ContextSizeInterceptor()
    ctx = create_test_pipeline_context()

    async def call(seconds: float, grow: int) -> None:
        async def stage() -> StageResult:
            await trio.sleep(seconds)
            ctx.data["blob"] = "x" * grow
            return _ok("s", {})

        await run_with_interceptors("s", stage, ctx, [sizes])

    async with trio.open_nursery() as nursery:
        nursery.start_soon(call, 1, 0)
        nursery.start_soon(call, 2, 5000)

    # The last call to end is recorded, with the growth it caused (measured from its own
    # "before", not lost because the first call took it).
    metric = sizes.metrics["s"]
    assert metric.growth_bytes >= 5000
    assert sizes._sizes == {}
