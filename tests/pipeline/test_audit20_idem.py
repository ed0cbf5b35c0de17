"""Audit 20: a stage that re-runs itself with the same idempotency key fails fast.

The inner call needs the claim its own outer call holds; waiting for it waited
for ever (the outer call waits for the inner one). Each test runs under
``trio.fail_after`` on the autojump clock, so the old hang shows as a failure.
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio

from stageflow_trio._time import utc_now
from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.pipeline.dag import (
    StageExecutionError,
    StageGraph,
    StageSpec,
    UnifiedStageExecutionError,
    UnifiedStageGraph,
)
from stageflow_trio.pipeline.idempotency import (
    CachedStageResult,
    IdempotencyError,
    IdempotencyInterceptor,
    IdempotencyReentryError,
    InMemoryIdempotencyStore,
    _nested_claims,
)
from stageflow_trio.pipeline.interceptors import CriticalInterceptorError, run_with_interceptors
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.stages.result import StageResult
from stageflow_trio.testing import create_test_pipeline_context

from .graph_helpers import spec, stage_ctx

LIMIT = 20.0  # virtual seconds: far more than any run here takes, less than the chain timeout

MESSAGE = (
    "stage 'charge' with idempotency key 'req-1' cannot run: the claim is held by a call this"
    " one is nested in; re-running a stage from inside itself with the same idempotency key"
    " would wait for itself"
)


def make_ctx(key: str = "req-1") -> PipelineContext:
    ctx = create_test_pipeline_context()
    ctx.data["idempotency_key"] = key
    return ctx


def ok(name: str, **data: Any) -> StageResult:
    now = utc_now()
    return StageResult(name=name, status="completed", started_at=now, ended_at=now, data=data)


def inner_error(exc: BaseException) -> BaseException:
    """The interceptor's error inside a graph's stage error."""
    while isinstance(exc, StageExecutionError | UnifiedStageExecutionError):
        exc = exc.original
    return exc


async def test_an_inline_re_run_through_the_chain_raises_at_once(
    autojump_clock: trio.abc.Clock,
) -> None:
    interceptor = IdempotencyInterceptor()
    ctx = make_ctx()
    runs: list[str] = []
    errors: list[IdempotencyReentryError] = []

    async def charge() -> StageResult:
        runs.append("charge")
        if len(runs) == 1:
            try:
                await run_with_interceptors("charge", charge, ctx, [interceptor])
            except IdempotencyReentryError as exc:
                errors.append(exc)
        await trio.sleep(1)
        return ok("charge", call=len(runs))

    with trio.fail_after(LIMIT):
        result = await run_with_interceptors("charge", charge, ctx, [interceptor])
    assert runs == ["charge"]  # the inner stage never ran
    assert result.data == {"call": 1}
    assert trio.current_time() == 1.0
    [error] = errors
    assert str(error) == MESSAGE
    assert isinstance(error, IdempotencyError)
    assert isinstance(error, CriticalInterceptorError)
    assert isinstance(error, RuntimeError)
    assert (error.stage_name, error.key, error.interceptor_name) == (
        "charge",
        "req-1",
        "idempotency",
    )
    # The outer call cached its result and released its claim: a retry replays.
    with trio.fail_after(LIMIT):
        replay = await run_with_interceptors("charge", charge, make_ctx(), [interceptor])
    assert replay.data == {"call": 1}
    assert runs == ["charge"]
    assert not interceptor.in_flight("req-1", "charge")
    assert _nested_claims.get() == ()  # the outer call took its claim off the list


async def test_a_legacy_stage_re_running_its_graph_inline_fails_fast(
    autojump_clock: trio.abc.Clock,
) -> None:
    store = InMemoryIdempotencyStore()
    calls: list[str] = []
    seen: list[BaseException] = []
    graph: StageGraph

    async def charge(ctx: PipelineContext) -> dict[str, Any]:
        calls.append("charge")
        if len(calls) == 1:
            try:
                await graph.run(ctx)  # the same context, so the same key
            except StageExecutionError as exc:
                seen.append(exc)
        return {"charged": len(calls)}

    graph = StageGraph(
        [StageSpec(name="charge", runner=charge)],
        [IdempotencyInterceptor(store=store)],
    )
    ctx = make_ctx()
    with trio.fail_after(LIMIT):
        results = await graph.run(ctx)
    assert calls == ["charge"]
    assert results["charge"].data == {"charged": 1}
    [error] = seen
    assert isinstance(inner_error(error), IdempotencyReentryError)
    assert str(inner_error(error)) == MESSAGE
    # Nothing stays held in this task: a retry of the request replays.
    with trio.fail_after(LIMIT):
        again = await graph.run(make_ctx())
    assert calls == ["charge"]
    assert again["charge"].data == {"charged": 1}
    assert not store.is_claimed('["charge", "req-1"]')


async def test_an_uncaught_re_entry_fails_the_outer_stage_without_caching(
    autojump_clock: trio.abc.Clock,
) -> None:
    store = InMemoryIdempotencyStore()
    calls: list[int] = []
    graph: StageGraph

    async def charge(ctx: PipelineContext) -> dict[str, Any]:
        calls.append(1)
        if ctx.data.get("re_enter"):
            await graph.run(ctx)
        return {"charged": len(calls)}

    graph = StageGraph(
        [StageSpec(name="charge", runner=charge)], [IdempotencyInterceptor(store=store)]
    )
    ctx = make_ctx()
    ctx.data["re_enter"] = True
    with trio.fail_after(LIMIT):
        failed = await graph.run(ctx)
    assert calls == [1]
    # The inner run raised StageExecutionError out of the outer stage: a failed result.
    assert failed["charge"].status == "failed"
    assert MESSAGE in (failed["charge"].error or "")
    # The outer call failed: nothing cached, nothing held; the next request runs the stage.
    with trio.fail_after(LIMIT):
        results = await graph.run(make_ctx())
    assert results["charge"].data == {"charged": 2}


async def test_a_unified_stage_re_running_its_graph_from_a_task_it_started_fails_fast(
    autojump_clock: trio.abc.Clock,
) -> None:
    calls: list[str] = []
    seen: list[BaseException] = []
    graph: UnifiedStageGraph

    async def rerun() -> None:
        try:
            await graph.run(stage_ctx())
        except UnifiedStageExecutionError as exc:
            seen.append(exc)

    async def charge(ctx: StageContext) -> StageOutput:
        calls.append("charge")
        if len(calls) == 1:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(rerun)
        await trio.sleep(1)
        return StageOutput.ok(charged=len(calls))

    graph = UnifiedStageGraph(
        [spec("charge", charge)],
        interceptors=[IdempotencyInterceptor(key_extractor=lambda ctx: "req-1")],
    )
    with trio.fail_after(LIMIT):
        results = await graph.run(stage_ctx())
    assert calls == ["charge"]
    assert results["charge"].data == {"charged": 1}
    assert trio.current_time() == 1.0
    [error] = seen
    assert isinstance(inner_error(error), IdempotencyReentryError)
    assert str(inner_error(error)) == MESSAGE
    with trio.fail_after(LIMIT):
        again = await graph.run(stage_ctx())
    assert calls == ["charge"]
    assert again["charge"].data == {"charged": 1}


async def test_an_independent_duplicate_still_waits_and_replays(
    autojump_clock: trio.abc.Clock,
) -> None:
    # While the first request's stage re-enters itself (and is refused), a second
    # request with the same key, from a task of its own, waits for the first and
    # replays its result, as before.
    interceptor = IdempotencyInterceptor()
    runs: list[int] = []
    refused: list[BaseException] = []
    finished: list[tuple[float, dict[str, Any]]] = []

    def stage_for(ctx: PipelineContext) -> Callable[[], Awaitable[StageResult]]:
        async def charge() -> StageResult:
            runs.append(1)
            await trio.sleep(2)
            try:
                await run_with_interceptors("charge", charge, ctx, [interceptor])
            except IdempotencyReentryError as exc:
                refused.append(exc)
            await trio.sleep(3)
            return ok("charge", call=len(runs))

        return charge

    async def request(delay: float) -> None:
        await trio.sleep(delay)
        ctx = make_ctx()
        result = await run_with_interceptors("charge", stage_for(ctx), ctx, [interceptor])
        finished.append((trio.current_time(), dict(result.data)))

    with trio.fail_after(LIMIT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(request, 0)
            nursery.start_soon(request, 1)
    assert runs == [1]
    assert len(refused) == 1
    assert finished == [(5.0, {"call": 1}), (5.0, {"call": 1})]


async def test_a_task_the_stage_started_that_outlives_its_call_waits_as_before(
    autojump_clock: trio.abc.Clock,
) -> None:
    # The task inherits the stage's context (its claim listed), but by the time it
    # asks, the claim is released: it replays instead of being refused.
    interceptor = IdempotencyInterceptor()
    runs: list[int] = []
    later: list[StageResult] = []

    async with trio.open_nursery() as service:

        async def charge() -> StageResult:
            runs.append(1)
            if len(runs) == 1:
                service.start_soon(late_duplicate)
                with pytest.raises(IdempotencyReentryError):
                    await run_with_interceptors("charge", charge, make_ctx(), [interceptor])
            await trio.sleep(1)
            return ok("charge", call=len(runs))

        async def late_duplicate() -> None:
            await trio.sleep(5)
            later.append(await run_with_interceptors("charge", charge, make_ctx(), [interceptor]))

        with trio.fail_after(LIMIT):
            await run_with_interceptors("charge", charge, make_ctx(), [interceptor])
    assert runs == [1]
    assert [r.data for r in later] == [{"call": 1}]


async def test_nested_calls_with_another_key_or_store_or_stage_run(
    autojump_clock: trio.abc.Clock,
) -> None:
    # Only the exact claim the outer call holds is refused.
    first = IdempotencyInterceptor()
    other_store = IdempotencyInterceptor()
    ctx = make_ctx()
    runs: list[str] = []

    def stage(label: str) -> Callable[[], Awaitable[StageResult]]:
        async def run() -> StageResult:
            runs.append(label)
            return ok("x", label=label)

        return run

    async def outer() -> StageResult:
        runs.append("outer")
        await run_with_interceptors("charge", stage("other key"), make_ctx("req-2"), [first])
        await run_with_interceptors("refund", stage("other stage"), ctx, [first])
        await run_with_interceptors("charge", stage("other store"), ctx, [other_store])
        with pytest.raises(IdempotencyReentryError):
            await run_with_interceptors("charge", stage("refused"), ctx, [first])
        return ok("charge")

    with trio.fail_after(LIMIT):
        result = await run_with_interceptors("charge", outer, ctx, [first])
    assert result.status == "completed"
    assert runs == ["outer", "other key", "other stage", "other store"]
    assert trio.current_time() == 0.0


async def test_a_cache_only_store_shared_by_two_interceptors_refuses_the_re_entry(
    autojump_clock: trio.abc.Clock,
) -> None:
    class CacheOnly:
        """A store written for the reference: get, set and delete only."""

        def __init__(self) -> None:
            self.entries: dict[str, CachedStageResult] = {}

        async def get(self, key: str) -> CachedStageResult | None:
            await trio.lowlevel.checkpoint()
            return self.entries.get(key)

        async def set(
            self, key: str, entry: CachedStageResult, *, ttl_seconds: int | None = None
        ) -> None:
            await trio.lowlevel.checkpoint()
            self.entries[key] = entry

        async def delete(self, key: str) -> None:
            await trio.lowlevel.checkpoint()
            self.entries.pop(key, None)

    store = CacheOnly()
    outer_chain = [IdempotencyInterceptor(store=store)]
    inner_chain = [IdempotencyInterceptor(store=store)]  # claims shared through the store
    ctx = make_ctx()

    async def inner() -> StageResult:
        raise AssertionError("the inner stage must not run")

    async def outer() -> StageResult:
        with pytest.raises(IdempotencyReentryError, match=r"^stage 'charge' with idempotency"):
            await run_with_interceptors("charge", inner, ctx, inner_chain)
        return ok("charge", done=True)

    with trio.fail_after(LIMIT):
        result = await run_with_interceptors("charge", outer, ctx, outer_chain)
    assert result.data == {"done": True}
    assert list(store.entries) == ['["charge", "req-1"]']


async def test_a_cancelled_outer_call_takes_its_claim_off_the_nested_list(
    autojump_clock: trio.abc.Clock,
) -> None:
    interceptor = IdempotencyInterceptor()
    ctx = make_ctx()
    runs: list[int] = []
    refused: list[IdempotencyReentryError] = []

    async def charge() -> StageResult:
        runs.append(1)
        if len(runs) == 1:
            try:
                await run_with_interceptors("charge", charge, ctx, [interceptor])
            except IdempotencyReentryError as exc:
                refused.append(exc)
        await trio.sleep(10)
        return ok("charge", call=len(runs))

    with trio.move_on_after(1):
        await run_with_interceptors("charge", charge, ctx, [interceptor])
    assert len(refused) == 1
    assert _nested_claims.get() == ()
    # The same task, the same key: the claim is free and no longer listed, so
    # this call runs the stage (it would be refused if the list had leaked).
    with trio.fail_after(LIMIT):
        result = await run_with_interceptors("charge", charge, ctx, [interceptor])
    assert result.data == {"call": 2}


def test_the_error_survives_pickle_and_copy() -> None:
    error = IdempotencyReentryError("charge", "req-1")
    for clone in (pickle.loads(pickle.dumps(error)), copy.copy(error), copy.deepcopy(error)):
        assert type(clone) is IdempotencyReentryError
        assert str(clone) == MESSAGE
        assert (clone.stage_name, clone.key, clone.interceptor_name) == (
            "charge",
            "req-1",
            "idempotency",
        )
