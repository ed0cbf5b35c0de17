"""Cancellation and aborts never leave an idempotency key blocked."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio._time import utc_now
from stageflow_trio.pipeline.dag import StageExecutionError, StageGraph, StageSpec
from stageflow_trio.pipeline.idempotency import (
    CachedStageResult,
    IdempotencyInterceptor,
    InMemoryIdempotencyStore,
)
from stageflow_trio.pipeline.interceptors import (
    BaseInterceptor,
    CriticalInterceptorError,
    InterceptorResult,
    run_with_interceptors,
)
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.stages.result import StageResult
from stageflow_trio.testing import create_test_pipeline_context
from tests.fakes import CountingStage


def make_ctx(key: str = "req-1") -> PipelineContext:
    ctx = create_test_pipeline_context()
    ctx.data["idempotency_key"] = key
    return ctx


async def test_a_cancelled_owner_releases_its_key(autojump_clock: trio.abc.Clock) -> None:
    interceptor = IdempotencyInterceptor()
    stage = CountingStage(delay=10)
    with trio.move_on_after(1) as scope:
        await run_with_interceptors("charge", stage, make_ctx(), [interceptor])
    assert scope.cancelled_caught
    assert not interceptor.in_flight("req-1", "charge")
    stage.delay = 0
    result = await run_with_interceptors("charge", stage, make_ctx(), [interceptor])
    assert result.status == "completed"
    assert result.data == {"call": 2, "nested": {"items": [2]}}
    assert stage.calls == 2
    replay = await run_with_interceptors("charge", stage, make_ctx(), [interceptor])
    assert replay.data == {"call": 2, "nested": {"items": [2]}}
    assert stage.calls == 2


async def test_a_waiter_takes_over_when_the_owner_is_cancelled(
    autojump_clock: trio.abc.Clock,
) -> None:
    interceptor = IdempotencyInterceptor()
    stage = CountingStage(delay=10)
    results: list[StageResult] = []

    async def waiter() -> None:
        results.append(await run_with_interceptors("charge", stage, make_ctx(), [interceptor]))

    async with trio.open_nursery() as nursery:
        with trio.CancelScope() as owner_scope:
            async with trio.open_nursery() as owner:
                owner.start_soon(run_with_interceptors, "charge", stage, make_ctx(), [interceptor])
                await trio.testing.wait_all_tasks_blocked()
                assert interceptor.in_flight("req-1", "charge")
                nursery.start_soon(waiter)
                await trio.sleep(3)
                owner_scope.cancel()
    # The owner was cancelled at t=3; the waiter ran the stage itself from t=3 to t=13.
    assert stage.calls == 2
    assert [r.data for r in results] == [{"call": 2, "nested": {"items": [2]}}]
    assert trio.current_time() == 13.0
    assert not interceptor.in_flight("req-1", "charge")


async def test_a_cancelled_waiter_leaves_the_owner_alone(autojump_clock: trio.abc.Clock) -> None:
    interceptor = IdempotencyInterceptor()
    stage = CountingStage(delay=5)
    owner_results: list[StageResult] = []

    async def owner() -> None:
        owner_results.append(
            await run_with_interceptors("charge", stage, make_ctx(), [interceptor])
        )

    async with trio.open_nursery() as nursery:
        nursery.start_soon(owner)
        await trio.testing.wait_all_tasks_blocked()
        with trio.move_on_after(1):
            await run_with_interceptors("charge", stage, make_ctx(), [interceptor])
        assert interceptor.in_flight("req-1", "charge")
    assert [r.data for r in owner_results] == [{"call": 1, "nested": {"items": [1]}}]
    assert stage.calls == 1
    assert not interceptor.in_flight("req-1", "charge")


class CacheOnlyStore:
    """A store with only the reference's three methods: the interceptor keeps its claims."""

    def __init__(self) -> None:
        self.inner = InMemoryIdempotencyStore()
        self.gets = 0

    async def get(self, key: str) -> CachedStageResult | None:
        self.gets += 1
        return await self.inner.get(key)

    async def set(
        self, key: str, entry: CachedStageResult, *, ttl_seconds: int | None = None
    ) -> None:
        await self.inner.set(key, entry, ttl_seconds=ttl_seconds)

    async def delete(self, key: str) -> None:
        await self.inner.delete(key)


class SlowStore(CacheOnlyStore):
    """The second ``get`` of a key hangs (the re-check after the claim)."""

    async def get(self, key: str) -> CachedStageResult | None:
        if self.gets == 1:
            self.gets += 1
            await trio.sleep_forever()
        return await super().get(key)


async def test_cancellation_while_claiming_releases_the_claim(
    autojump_clock: trio.abc.Clock,
) -> None:
    store = SlowStore()
    interceptor = IdempotencyInterceptor(store=store)  # get/set/delete only, as a reference store
    stage = CountingStage(delay=0)
    with trio.move_on_after(1) as scope:
        await run_with_interceptors("charge", stage, make_ctx(), [interceptor])
    assert scope.cancelled_caught
    assert stage.calls == 0
    assert not interceptor.in_flight("req-1", "charge")
    await run_with_interceptors("charge", stage, make_ctx(), [interceptor])
    assert stage.calls == 1


class CriticalBefore(BaseInterceptor):
    name = "critical_before"
    priority = 30

    async def before(self, stage_name: str, ctx: PipelineContext) -> InterceptorResult | None:
        raise CriticalInterceptorError("denied", self.name)

    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        return None


async def test_a_critical_error_after_the_claim_releases_the_key() -> None:
    interceptor = IdempotencyInterceptor()
    stage = CountingStage(delay=0)
    with pytest.raises(CriticalInterceptorError, match=r"^denied$"):
        await run_with_interceptors("charge", stage, make_ctx(), [interceptor, CriticalBefore()])
    assert not interceptor.in_flight("req-1", "charge")
    await run_with_interceptors("charge", stage, make_ctx(), [interceptor])
    assert stage.calls == 1


async def test_a_cancelled_legacy_run_releases_the_key(autojump_clock: trio.abc.Clock) -> None:
    store = InMemoryIdempotencyStore()
    interceptor = IdempotencyInterceptor(store=store)
    calls: list[str] = []

    async def slow(ctx: PipelineContext) -> dict[str, Any]:
        calls.append("slow")
        await trio.sleep(100)
        return {"done": True}

    async def fails(ctx: PipelineContext) -> dict[str, Any]:
        await trio.sleep(1)
        raise CriticalInterceptorError("stop the run", "test")

    class Abort(BaseInterceptor):
        name = "abort"
        priority = 60

        async def before(self, stage_name: str, ctx: PipelineContext) -> None:
            return None

        async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
            if stage_name == "fails":
                raise CriticalInterceptorError("abort", self.name)

    graph = StageGraph(
        [StageSpec(name="slow", runner=slow), StageSpec(name="fails", runner=fails)],
        [interceptor, Abort()],
    )
    with pytest.raises(StageExecutionError):
        await graph.run(make_ctx())
    # "fails" aborted the run at t=1, which cancelled "slow" while it held its claim.
    assert trio.current_time() == 1.0
    assert not interceptor.in_flight("req-1", "slow")
    assert not interceptor.in_flight("req-1", "fails")
    result = await run_with_interceptors("slow", CountingStage(delay=0), make_ctx(), [interceptor])
    assert result.data == {"call": 1, "nested": {"items": [1]}}


class RacingStore(CacheOnlyStore):
    """The first ``get`` misses; another owner caches its result before the re-check."""

    def __init__(self, cached: CachedStageResult) -> None:
        super().__init__()
        self.cached = cached

    async def get(self, key: str) -> CachedStageResult | None:
        self.gets += 1
        await trio.lowlevel.checkpoint()
        return None if self.gets == 1 else self.cached


async def test_a_result_cached_during_the_claim_is_replayed_and_the_claim_released() -> None:
    now = utc_now()
    done = StageResult(
        name="charge", status="completed", started_at=now, ended_at=now, data={"n": 7}
    )
    store = RacingStore(CachedStageResult(result=done))
    interceptor = IdempotencyInterceptor(store=store)  # get/set/delete only, as a reference store
    stage = CountingStage(delay=0)
    result = await run_with_interceptors("charge", stage, make_ctx(), [interceptor])
    assert stage.calls == 0
    assert result.data == {"n": 7}
    assert store.gets == 2
    assert not interceptor.in_flight("req-1", "charge")


# --- the release cannot be starved (issue 13, defect 3) --------------------------------------


async def test_on_abort_releases_without_a_checkpoint_even_when_already_cancelled() -> None:
    store = InMemoryIdempotencyStore()
    interceptor = IdempotencyInterceptor(store=store)
    ctx = make_ctx()
    assert await interceptor.before("charge", ctx) is None
    assert store.is_claimed('["charge", "req-1"]')
    with trio.CancelScope() as scope:
        scope.cancel()  # as when the abort hooks' time budget has run out
        with trio.testing.assert_no_checkpoints():
            await interceptor.on_abort("charge", ctx)
    assert not store.is_claimed('["charge", "req-1"]')
    assert not interceptor.in_flight("req-1", "charge")


class HangingSetStore(InMemoryIdempotencyStore):
    async def set(
        self, key: str, entry: CachedStageResult, *, ttl_seconds: float | None = None
    ) -> None:
        await trio.sleep_forever()


async def test_a_call_cancelled_while_caching_releases_its_claim(
    autojump_clock: trio.abc.Clock,
) -> None:
    store = HangingSetStore()
    interceptor = IdempotencyInterceptor(store=store)
    stage = CountingStage(delay=1)
    with trio.move_on_after(2) as scope:
        await run_with_interceptors("charge", stage, make_ctx(), [interceptor])
    assert scope.cancelled_caught
    assert stage.calls == 1
    assert not store.is_claimed('["charge", "req-1"]')


async def test_a_waiter_in_another_chain_takes_over_from_a_cancelled_holder(
    autojump_clock: trio.abc.Clock,
) -> None:
    store = InMemoryIdempotencyStore()
    holder, waiter = IdempotencyInterceptor(store=store), IdempotencyInterceptor(store=store)
    stage = CountingStage(delay=10)
    results: list[StageResult] = []

    async def hold() -> None:
        with trio.move_on_after(3):
            await run_with_interceptors("charge", stage, make_ctx(), [holder])

    async def wait() -> None:
        results.append(await run_with_interceptors("charge", stage, make_ctx(), [waiter]))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(hold)
        await trio.testing.wait_all_tasks_blocked()
        assert holder.in_flight("req-1", "charge")
        nursery.start_soon(wait)
    # The holder was cancelled at t=3; the waiter ran the stage from t=3 to t=13.
    assert stage.calls == 2
    assert [r.data for r in results] == [{"call": 2, "nested": {"items": [2]}}]
    assert trio.current_time() == 13.0


class SlowAbort(BaseInterceptor):
    """An inner interceptor whose on_abort uses up the whole abort budget."""

    name = "slow_abort"
    priority = 30

    async def before(self, stage_name: str, ctx: PipelineContext) -> InterceptorResult | None:
        return None

    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        return None

    async def on_abort(self, stage_name: str, ctx: PipelineContext) -> None:
        await trio.sleep(60)


async def test_a_slow_abort_hook_does_not_starve_the_release(
    autojump_clock: trio.abc.Clock,
) -> None:
    store = InMemoryIdempotencyStore()
    interceptor = IdempotencyInterceptor(store=store)
    with trio.move_on_after(1):
        await run_with_interceptors(
            "charge", CountingStage(delay=100), make_ctx(), [interceptor, SlowAbort()]
        )
    assert not store.is_claimed('["charge", "req-1"]')


class InterruptedSetStore(InMemoryIdempotencyStore):
    """A store whose first ``set`` is cut by a Ctrl-C at its checkpoint."""

    def __init__(self) -> None:
        super().__init__()
        self.sets = 0

    async def set(
        self, key: str, entry: CachedStageResult, *, ttl_seconds: float | None = None
    ) -> None:
        self.sets += 1
        if self.sets == 1:
            await trio.lowlevel.checkpoint()
            raise KeyboardInterrupt
        await super().set(key, entry, ttl_seconds=ttl_seconds)


async def test_a_ctrl_c_while_caching_still_caches_the_result() -> None:
    # Audit 18: set() was made again (shielded) only for Cancelled; a Ctrl-C landing
    # at its checkpoint left a stage that ran with no cached result, so a duplicate
    # would run it again.
    store = InterruptedSetStore()
    stage = CountingStage()
    with pytest.raises(KeyboardInterrupt):
        await run_with_interceptors(
            "charge", stage, make_ctx(), [IdempotencyInterceptor(store=store)]
        )
    assert store.sets == 2
    assert await store.get('["charge", "req-1"]') is not None
    assert not store.is_claimed('["charge", "req-1"]')
    await run_with_interceptors("charge", stage, make_ctx(), [IdempotencyInterceptor(store=store)])
    assert stage.calls == 1  # the duplicate replayed
