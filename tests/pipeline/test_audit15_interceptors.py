"""Audit 15: the idempotency, circuit-breaker and default-chain interceptors.

Each test failed before its fix:

- a replay (or any short-circuit) reset the circuit breaker's failure count,
  or closed a half-open breaker, although the stage never ran;
- a custom ``key_extractor`` returning a non-str key (a UUID, an int) made every
  call fail in ``before`` (logged), so every duplicate ran its stage;
- a store whose ``claim`` raised (or an extractor that raised) let the stage
  run unguarded; circular parameters did the same;
- a call cancelled after its stage completed (noticed at the store's ``set``,
  or at the child-tracker metrics read of a child run) cached nothing, so a
  duplicate ran the stage again;
- ``get_default_interceptors(include_idempotency="no")`` turned idempotency on.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from stageflow_trio.pipeline.idempotency import (
    CachedStageResult,
    IdempotencyClaim,
    IdempotencyError,
    IdempotencyInterceptor,
    InMemoryIdempotencyStore,
)
from stageflow_trio.pipeline.interceptors import (
    BaseInterceptor,
    ChildTrackerMetricsInterceptor,
    CircuitBreakerInterceptor,
    InterceptorResult,
    get_default_interceptors,
    run_with_interceptors,
)
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.stages.result import StageResult
from stageflow_trio.testing import create_test_pipeline_context
from tests.fakes import CountingStage


def keyed_ctx(key: object = "req-1", **kwargs: Any) -> PipelineContext:
    ctx = create_test_pipeline_context(**kwargs)
    if key is not None:
        ctx.data["idempotency_key"] = key
    return ctx


class ShortCircuit(BaseInterceptor):
    """Short-circuits every call with a placeholder (after the breaker's before)."""

    name = "placeholder"
    priority = 30

    async def before(self, stage_name: str, ctx: PipelineContext) -> InterceptorResult:
        return InterceptorResult(stage_ran=False, result={"deferred": True})

    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        return None


# --- circuit breaker: a call whose stage did not run says nothing about the stage -------


async def test_replays_between_failures_do_not_keep_the_breaker_closed() -> None:
    breaker = CircuitBreakerInterceptor()
    idem = IdempotencyInterceptor()
    chain = [idem, breaker]
    ok = CountingStage("s")
    await run_with_interceptors("s", ok, keyed_ctx("cached"), chain)  # cached for "cached"
    failing = CountingStage("s", raise_error=ConnectionError("down"))
    for _ in range(breaker.FAILURE_THRESHOLD - 1):
        await run_with_interceptors("s", failing, keyed_ctx(None), chain)
        replay = await run_with_interceptors("s", ok, keyed_ctx("cached"), chain)
        assert replay.data["call"] == 1  # replayed: the stage did not run
    assert breaker.state("s") == "closed"
    await run_with_interceptors("s", failing, keyed_ctx(None), chain)
    # Five failed calls of the stage: open (the replays used to reset the count to 0).
    assert breaker.state("s") == "open"
    blocked = await run_with_interceptors("s", failing, keyed_ctx(None), chain)
    assert blocked.error == "Circuit breaker open for s"
    assert failing.calls == breaker.FAILURE_THRESHOLD


async def test_a_short_circuited_probe_does_not_close_a_half_open_breaker(
    autojump_clock: trio.abc.Clock,
) -> None:
    breaker = CircuitBreakerInterceptor()
    failing = CountingStage("s", raise_error=ConnectionError("down"))
    for _ in range(breaker.FAILURE_THRESHOLD):
        await run_with_interceptors("s", failing, keyed_ctx(None), [breaker])
    assert breaker.state("s") == "open"
    await trio.sleep(breaker.RESET_SECONDS + 1)
    # The probe is short-circuited by a later interceptor: the stage never runs.
    result = await run_with_interceptors("s", failing, keyed_ctx(None), [breaker, ShortCircuit()])
    assert result.data == {"deferred": True}
    assert failing.calls == breaker.FAILURE_THRESHOLD
    assert breaker.state("s") == "half_open"  # it used to close here, unprobed
    # The real probe fails: the breaker opens again at once.
    await run_with_interceptors("s", failing, keyed_ctx(None), [breaker])
    assert breaker.state("s") == "open"


# --- idempotency keys that are not str ----------------------------------------------------


async def test_a_uuid_key_from_a_custom_extractor_runs_the_stage_once() -> None:
    key = uuid.UUID(int=5)
    idem = IdempotencyInterceptor(key_extractor=lambda ctx: key)
    stage = CountingStage("s")
    first = await run_with_interceptors("s", stage, keyed_ctx(None), [idem])
    second = await run_with_interceptors("s", stage, keyed_ctx(None), [idem])
    assert stage.calls == 1
    assert second.data == first.data
    assert not idem.in_flight(key, "s")  # type: ignore[arg-type]


# Keys a custom extractor may return: ints, UUIDs (distinct as strings too), 0 (no key).
KEYS: list[object] = [0, 1, 2, uuid.UUID(int=1), uuid.UUID(int=2)]


def _run_ours(keys: list[object]) -> list[int]:
    async def main() -> list[int]:
        idem = IdempotencyInterceptor(key_extractor=lambda ctx: ctx.data["k"])
        calls: list[int] = []

        async def stage() -> StageResult:
            calls.append(1)
            now = datetime.now(UTC)
            return StageResult(
                name="s", status="completed", started_at=now, ended_at=now, data={"n": len(calls)}
            )

        seen = []
        for key in keys:
            ctx = create_test_pipeline_context()
            ctx.data["k"] = key
            result = await run_with_interceptors("s", stage, ctx, [idem])
            seen.append(result.data["n"])
        return seen

    return trio.run(main)


def _run_reference(reference: ModuleType, keys: list[object]) -> list[int]:
    from stageflow.pipeline.idempotency import IdempotencyInterceptor as RefIdempotency
    from stageflow.pipeline.interceptors import run_with_interceptors as ref_run
    from stageflow.stages.context import PipelineContext as RefContext
    from stageflow.stages.result import StageResult as RefResult

    async def main() -> list[int]:
        idem = RefIdempotency(key_extractor=lambda ctx: ctx.data["k"])
        calls: list[int] = []

        async def stage() -> Any:
            calls.append(1)
            now = datetime.now(UTC)
            return RefResult(
                name="s", status="completed", started_at=now, ended_at=now, data={"n": len(calls)}
            )

        seen = []
        for key in keys:
            ctx = RefContext(
                pipeline_run_id=None,
                request_id=None,
                session_id=None,
                user_id=None,
                org_id=None,
                interaction_id=None,
            )
            ctx.data["k"] = key
            result = await ref_run("s", stage, ctx, [idem])
            data: Any = result.data
            # The reference puts a replayed StageResult itself in data, and caches that
            # replay again, one level deeper (parity.md).
            while isinstance(data, RefResult):
                data = data.data
            seen.append(data["n"])
        return seen

    return asyncio.run(main())


@settings(max_examples=25, deadline=None)
@given(keys=st.lists(st.sampled_from(KEYS), min_size=1, max_size=8))
def test_non_str_keys_from_a_custom_extractor_replay_as_in_the_reference(
    reference: ModuleType, keys: list[object]
) -> None:
    logging.getLogger("stageflow_trio.interceptors").disabled = True
    try:
        assert _run_ours(keys) == _run_reference(reference, keys)
    finally:
        logging.getLogger("stageflow_trio.interceptors").disabled = False


# --- failing closed --------------------------------------------------------------------------


class BrokenClaimStore(InMemoryIdempotencyStore):
    async def claim(self, key: str) -> IdempotencyClaim | CachedStageResult:
        await trio.lowlevel.checkpoint()
        raise ConnectionError("store down")


async def test_a_store_that_cannot_claim_fails_closed() -> None:
    idem = IdempotencyInterceptor(store=BrokenClaimStore())
    stage = CountingStage("charge")
    with pytest.raises(IdempotencyError) as caught:
        await run_with_interceptors("charge", stage, keyed_ctx(), [idem])
    assert str(caught.value) == (
        "idempotency interceptor failed, so stage 'charge' does not run: "
        "ConnectionError: store down"
    )
    assert isinstance(caught.value.__cause__, ConnectionError)
    assert caught.value.interceptor_name == "idempotency"
    assert stage.calls == 0


def _raise(ctx: PipelineContext) -> Any:
    raise KeyError("order_id")


@pytest.mark.parametrize("option", ["key_extractor", "params_extractor"])
async def test_an_extractor_that_raises_fails_closed(option: str) -> None:
    options: dict[str, Any] = {option: _raise}
    idem = IdempotencyInterceptor(**options)
    stage = CountingStage("charge")
    with pytest.raises(IdempotencyError, match=r"stage 'charge' does not run: KeyError"):
        await run_with_interceptors("charge", stage, keyed_ctx(), [idem])
    assert stage.calls == 0
    # Without a key there is nothing to guard: the key extractor still decides that.
    idem = IdempotencyInterceptor(key_extractor=lambda ctx: None, params_extractor=_raise)
    await run_with_interceptors("charge", stage, keyed_ctx(), [idem])
    assert stage.calls == 1


async def test_circular_parameters_still_deduplicate() -> None:
    params: dict[str, Any] = {"amount": 10}
    params["self"] = params
    idem = IdempotencyInterceptor()
    stage = CountingStage("charge")
    for _ in range(2):
        ctx = keyed_ctx()
        ctx.data["idempotency_params"] = params
        await run_with_interceptors("charge", stage, ctx, [idem])
    assert stage.calls == 1


async def test_a_key_less_call_is_not_a_checkpoint_and_a_keyed_one_is() -> None:
    idem = IdempotencyInterceptor()
    with trio.testing.assert_no_checkpoints():
        assert await idem.before("s", keyed_ctx(None)) is None
    holder, other = keyed_ctx(), keyed_ctx()
    with trio.testing.assert_checkpoints():
        assert await idem.before("s", holder) is None
    assert idem.in_flight("req-1", "s")
    with trio.testing.assert_no_checkpoints():
        await idem.on_abort("s", other)  # not its claim
    assert idem.in_flight("req-1", "s")
    with trio.testing.assert_no_checkpoints():
        await idem.on_abort("s", holder)
    assert not idem.in_flight("req-1", "s")


# --- a stage that completed as its call was cancelled ------------------------------------


class CancellingStage:
    """Completes, but cancels the caller's scope on the way out (no checkpoint after)."""

    def __init__(self) -> None:
        self.calls = 0
        self.scope: trio.CancelScope | None = None

    async def __call__(self) -> StageResult:
        self.calls += 1
        await trio.lowlevel.checkpoint()
        if self.scope is not None:
            self.scope.cancel()
        now = datetime.now(UTC)
        return StageResult(
            name="charge", status="completed", started_at=now, ended_at=now, data={"n": self.calls}
        )


async def test_a_result_whose_caching_is_cancelled_is_still_cached() -> None:
    store = InMemoryIdempotencyStore()
    idem = IdempotencyInterceptor(store=store)
    stage = CancellingStage()
    with trio.CancelScope() as scope:
        stage.scope = scope
        await run_with_interceptors("charge", stage, keyed_ctx(), [idem])
    assert scope.cancelled_caught  # the call still ends Cancelled
    stage.scope = None
    replay = await run_with_interceptors("charge", stage, keyed_ctx(), [idem])
    assert stage.calls == 1  # the duplicate replays instead of charging again
    assert replay.data == {"n": 1}
    assert not store.is_claimed('["charge", "req-1"]')


async def test_a_child_run_cancelled_as_its_stage_completes_still_caches() -> None:
    store = InMemoryIdempotencyStore()
    chain = [IdempotencyInterceptor(store=store), ChildTrackerMetricsInterceptor()]
    stage = CancellingStage()
    parent = uuid.uuid4()
    with trio.CancelScope() as scope:
        stage.scope = scope
        await run_with_interceptors("charge", stage, keyed_ctx(parent_run_id=parent), chain)
    assert scope.cancelled_caught
    stage.scope = None
    await run_with_interceptors("charge", stage, keyed_ctx(parent_run_id=parent), chain)
    assert stage.calls == 1


class SetFailsOnceCancelled(InMemoryIdempotencyStore):
    """The first set is cancelled with the call; the shielded second one raises."""

    async def set(
        self, key: str, entry: CachedStageResult, *, ttl_seconds: float | None = None
    ) -> None:
        await trio.lowlevel.checkpoint()
        raise OSError("disk full")


async def test_a_failing_shielded_set_does_not_hide_the_cancellation(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = SetFailsOnceCancelled()
    idem = IdempotencyInterceptor(store=store)
    stage = CancellingStage()
    with trio.CancelScope() as scope:
        stage.scope = scope
        await run_with_interceptors("charge", stage, keyed_ctx(), [idem])
    assert scope.cancelled_caught
    assert not store.is_claimed('["charge", "req-1"]')
    assert "Could not store the idempotent result of cancelled stage charge: disk full" in (
        caplog.text
    )


# --- get_default_interceptors -------------------------------------------------------------


@pytest.mark.parametrize("option", ["include_auth", "include_idempotency"])
@pytest.mark.parametrize("value", ["no", 0, 1, None])
def test_default_chain_flags_must_be_bools(option: str, value: object) -> None:
    with pytest.raises(TypeError, match=rf"get_default_interceptors: {option} must be a bool"):
        get_default_interceptors(**{option: value})  # type: ignore[arg-type]


class AwaitingAfter(BaseInterceptor):
    """An after hook that awaits (and so receives a cancellation pending on the call)."""

    name = "awaiting_after"
    priority = 90  # its after runs before the idempotency interceptor's (priority 4)

    async def before(self, stage_name: str, ctx: PipelineContext) -> None:
        return None

    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        await trio.lowlevel.checkpoint()


async def test_a_call_cancelled_in_an_earlier_after_hook_still_caches_its_stage() -> None:
    # The cancellation reaches another interceptor's after hook first, so the
    # idempotency after never runs; its on_abort gets the completed result
    # (completed_before_abort) and caches it, so the duplicate replays.
    store = InMemoryIdempotencyStore()
    chain = [IdempotencyInterceptor(store=store), AwaitingAfter()]
    stage = CancellingStage()
    with trio.CancelScope() as scope:
        stage.scope = scope
        await run_with_interceptors("charge", stage, keyed_ctx(), chain)
    assert scope.cancelled_caught
    stage.scope = None
    replay = await run_with_interceptors("charge", stage, keyed_ctx(), chain)
    assert stage.calls == 1
    assert replay.data == {"n": 1}
    assert not store.is_claimed('["charge", "req-1"]')


async def test_a_stage_cancelled_before_it_completes_is_not_cached(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = InMemoryIdempotencyStore()
    chain = [IdempotencyInterceptor(store=store), AwaitingAfter()]
    calls = 0

    async def slow() -> StageResult:
        nonlocal calls
        calls += 1
        await trio.sleep(10)
        raise AssertionError("not reached")

    with trio.move_on_after(1):
        await run_with_interceptors("charge", slow, keyed_ctx(), chain)
    stage = CountingStage("charge")
    await run_with_interceptors("charge", stage, keyed_ctx(), chain)
    assert (calls, stage.calls) == (1, 1)  # nothing was cached: the duplicate ran
