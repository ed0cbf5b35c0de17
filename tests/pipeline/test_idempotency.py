"""IdempotencyInterceptor and InMemoryIdempotencyStore: caching, per-stage keys, concurrency."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from stageflow_trio._time import utc_now
from stageflow_trio.pipeline.dag import StageExecutionError, StageGraph, StageSpec
from stageflow_trio.pipeline.idempotency import (
    CachedStageResult,
    IdempotencyError,
    IdempotencyInterceptor,
    IdempotencyParamMismatch,
    InMemoryIdempotencyStore,
)
from stageflow_trio.pipeline.interceptors import (
    CircuitBreakerInterceptor,
    CriticalInterceptorError,
    get_default_interceptors,
    run_with_interceptors,
)
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.stages.result import StageResult
from stageflow_trio.testing import create_test_pipeline_context
from tests.fakes import CountingStage


def make_ctx(key: str | None = "req-1", params: Any = None) -> PipelineContext:
    ctx = create_test_pipeline_context()
    if key is not None:
        ctx.data["idempotency_key"] = key
    if params is not None:
        ctx.data["idempotency_params"] = params
    return ctx


async def test_a_duplicate_replays_the_cached_result() -> None:
    interceptor = IdempotencyInterceptor()
    stage = CountingStage()
    first = await run_with_interceptors("charge", stage, make_ctx(), [interceptor])
    second = await run_with_interceptors("charge", stage, make_ctx(), [interceptor])
    assert stage.calls == 1
    assert first.status == second.status == "completed"
    assert second.data == first.data == {"call": 1, "nested": {"items": [1]}}
    assert second.error is None


async def test_no_key_means_no_caching() -> None:
    interceptor = IdempotencyInterceptor()
    stage = CountingStage()
    for _ in range(3):
        await run_with_interceptors("charge", stage, make_ctx(key=None), [interceptor])
    assert stage.calls == 3
    assert isinstance(interceptor.store, InMemoryIdempotencyStore)
    assert await interceptor.store.get(json.dumps(["charge", "None"])) is None


async def test_results_are_keyed_per_stage() -> None:
    interceptor = IdempotencyInterceptor()
    charge, notify = CountingStage("charge"), CountingStage("notify")
    ctx = make_ctx()
    a = await run_with_interceptors("charge", charge, ctx, [interceptor])
    b = await run_with_interceptors("notify", notify, ctx, [interceptor])
    assert (charge.calls, notify.calls) == (1, 1)
    assert a.name == "charge"
    assert b.name == "notify"
    again = await run_with_interceptors("notify", notify, make_ctx(), [interceptor])
    assert notify.calls == 1
    assert again.data == b.data


async def test_stages_of_one_legacy_run_do_not_replay_each_other() -> None:
    # d7: the reference's pipeline-wide key made every later stage replay the first one.
    calls: list[str] = []

    def runner(name: str) -> Callable[[PipelineContext], Awaitable[dict[str, str]]]:
        async def run(ctx: PipelineContext) -> dict[str, str]:
            calls.append(name)
            return {"from": name}

        return run

    store = InMemoryIdempotencyStore()
    specs = [
        StageSpec(name="a", runner=runner("a")),
        StageSpec(name="b", runner=runner("b"), dependencies=("a",)),
    ]
    graph = StageGraph(specs, get_default_interceptors(idempotency_store=store))
    first = await graph.run(make_ctx())
    assert calls == ["a", "b"]
    assert first["b"].data == {"from": "b"}
    second = await StageGraph(specs, get_default_interceptors(idempotency_store=store)).run(
        make_ctx()
    )
    assert calls == ["a", "b"]
    assert {name: dict(r.data) for name, r in second.items()} == {
        "a": {"from": "a"},
        "b": {"from": "b"},
    }


async def test_fifty_concurrent_duplicates_run_the_stage_once(
    autojump_clock: trio.abc.Clock,
) -> None:
    interceptor = IdempotencyInterceptor()
    stage = CountingStage(delay=1.0)
    results: list[StageResult] = []

    async def call() -> None:
        results.append(await run_with_interceptors("charge", stage, make_ctx(), [interceptor]))

    async with trio.open_nursery() as nursery:
        for _ in range(50):
            nursery.start_soon(call)
    assert stage.calls == 1
    assert len(results) == 50
    assert {json.dumps(dict(r.data), sort_keys=True) for r in results} == {
        json.dumps({"call": 1, "nested": {"items": [1]}}, sort_keys=True)
    }
    assert all(r.status == "completed" for r in results)
    assert trio.current_time() == 1.0
    assert not interceptor.in_flight("req-1", "charge")


async def test_duplicates_wait_for_the_running_call(autojump_clock: trio.abc.Clock) -> None:
    interceptor = IdempotencyInterceptor()
    stage = CountingStage(delay=5.0)
    finished: list[float] = []

    async def call() -> None:
        await run_with_interceptors("charge", stage, make_ctx(), [interceptor])
        finished.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(call)
        await trio.testing.wait_all_tasks_blocked()
        assert interceptor.in_flight("req-1", "charge")
        await trio.sleep(2)
        nursery.start_soon(call)
    assert finished == [5.0, 5.0]
    assert stage.calls == 1


async def test_a_failed_result_is_not_cached_and_a_waiter_takes_over(
    autojump_clock: trio.abc.Clock,
) -> None:
    interceptor = IdempotencyInterceptor()
    failing = CountingStage(delay=1.0, status="failed")
    succeeding = CountingStage(delay=1.0)
    results: dict[str, StageResult] = {}

    async def call(label: str, stage: CountingStage) -> None:
        results[label] = await run_with_interceptors("charge", stage, make_ctx(), [interceptor])

    async with trio.open_nursery() as nursery:
        nursery.start_soon(call, "first", failing)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(call, "second", succeeding)
    assert results["first"].status == "failed"
    assert results["second"].status == "completed"
    assert (failing.calls, succeeding.calls) == (1, 1)
    assert trio.current_time() == 2.0


async def test_a_raising_stage_is_not_cached() -> None:
    interceptor = IdempotencyInterceptor()
    stage = CountingStage(raise_error=ValueError("boom"))
    for _ in range(2):
        result = await run_with_interceptors("charge", stage, make_ctx(), [interceptor])
        assert result.status == "failed"
    assert stage.calls == 2
    assert not interceptor.in_flight("req-1", "charge")


async def test_a_short_circuit_by_another_interceptor_is_not_cached(
    autojump_clock: trio.abc.Clock,
) -> None:
    # An open breaker reports "completed" with an error; that must not become the cached answer.
    breaker = CircuitBreakerInterceptor()
    interceptor = IdempotencyInterceptor()
    failing = CountingStage(raise_error=ValueError("down"))
    for _ in range(breaker.FAILURE_THRESHOLD):
        await run_with_interceptors("charge", failing, make_ctx(key=None), [breaker])
    open_result = await run_with_interceptors("charge", failing, make_ctx(), [interceptor, breaker])
    assert open_result.error == "Circuit breaker open for charge"
    await trio.sleep(breaker.RESET_SECONDS + 1)
    healthy = CountingStage()
    result = await run_with_interceptors("charge", healthy, make_ctx(), [interceptor, breaker])
    assert healthy.calls == 1
    assert result.error is None


async def test_parameter_mismatch_raises_the_critical_error() -> None:
    interceptor = IdempotencyInterceptor()
    stage = CountingStage()
    await run_with_interceptors("charge", stage, make_ctx(params={"amount": 10}), [interceptor])
    expected = hashlib.sha256(json.dumps({"amount": 10}, sort_keys=True).encode()).hexdigest()
    actual = hashlib.sha256(json.dumps({"amount": 99}, sort_keys=True).encode()).hexdigest()
    with pytest.raises(
        IdempotencyParamMismatch,
        match=rf"^Idempotency key 'req-1' parameter mismatch: expected={expected}, actual={actual}$",
    ) as info:
        await run_with_interceptors("charge", stage, make_ctx(params={"amount": 99}), [interceptor])
    assert isinstance(info.value, CriticalInterceptorError)
    assert isinstance(info.value, IdempotencyError)
    assert (info.value.key, info.value.expected, info.value.actual) == ("req-1", expected, actual)
    assert info.value.interceptor_name == "idempotency"
    assert stage.calls == 1
    same = await run_with_interceptors(
        "charge", stage, make_ctx(params={"amount": 10}), [interceptor]
    )
    assert same.data["call"] == 1


def test_mismatch_message_equals_the_reference(reference: ModuleType) -> None:
    ref = reference.pipeline.idempotency
    ours = IdempotencyParamMismatch("k", expected="h1", actual="h2")
    theirs = ref.IdempotencyParamMismatch("k", expected="h1", actual="h2")
    assert str(ours) == str(theirs)
    assert ours.interceptor_name == theirs.interceptor_name


async def test_mismatch_is_ignored_when_validation_is_off() -> None:
    interceptor = IdempotencyInterceptor(validate_params=False)
    stage = CountingStage()
    await run_with_interceptors("charge", stage, make_ctx(params={"a": 1}), [interceptor])
    replay = await run_with_interceptors("charge", stage, make_ctx(params={"a": 2}), [interceptor])
    assert replay.data["call"] == 1


async def test_a_mismatch_aborts_a_legacy_run() -> None:
    store = InMemoryIdempotencyStore()

    async def charge(ctx: PipelineContext) -> dict[str, int]:
        return {"charged": 1}

    graph = StageGraph(
        [StageSpec(name="charge", runner=charge)],
        get_default_interceptors(idempotency_store=store),
    )
    await graph.run(make_ctx(params={"amount": 1}))
    with pytest.raises(StageExecutionError) as info:
        await graph.run(make_ctx(params={"amount": 2}))
    assert isinstance(info.value.__cause__, IdempotencyParamMismatch)


async def test_custom_extractors() -> None:
    interceptor = IdempotencyInterceptor(
        key_extractor=lambda ctx: ctx.data.get("order"),
        params_extractor=lambda ctx: {"order": ctx.data.get("order")},
    )
    stage = CountingStage()
    for order in ("o1", "o1", "o2"):
        ctx = make_ctx(key=None)
        ctx.data["order"] = order
        await run_with_interceptors("charge", stage, ctx, [interceptor])
    assert stage.calls == 2


async def test_cached_results_expire_on_the_trio_clock(autojump_clock: trio.abc.Clock) -> None:
    interceptor = IdempotencyInterceptor(ttl_seconds=60)
    stage = CountingStage()
    await run_with_interceptors("charge", stage, make_ctx(), [interceptor])
    await trio.sleep(59.5)
    await run_with_interceptors("charge", stage, make_ctx(), [interceptor])
    assert stage.calls == 1
    await trio.sleep(0.5)
    await run_with_interceptors("charge", stage, make_ctx(), [interceptor])
    assert stage.calls == 2


async def test_replayed_data_is_a_copy() -> None:
    interceptor = IdempotencyInterceptor()
    stage = CountingStage()
    await run_with_interceptors("charge", stage, make_ctx(), [interceptor])
    replay = await run_with_interceptors("charge", stage, make_ctx(), [interceptor])
    replay.data["nested"]["items"].append("mutated")
    again = await run_with_interceptors("charge", stage, make_ctx(), [interceptor])
    assert again.data["nested"] == {"items": [1]}


# --- the store ----------------------------------------------------------------------------


def _entry(data: dict[str, Any]) -> CachedStageResult:
    now = utc_now()
    return CachedStageResult(
        result=StageResult(name="s", status="completed", started_at=now, ended_at=now, data=data),
        params_hash="h",
    )


async def test_store_round_trip_copies_and_deletes() -> None:
    store = InMemoryIdempotencyStore()
    data = {"list": [1, 2]}
    await store.set("k", _entry(data))
    data["list"].append(3)
    got = await store.get("k")
    assert got is not None
    assert got.result.data == {"list": [1, 2]}
    assert got.params_hash == "h"
    assert got.expires_at is None
    got.result.data["list"].append(4)
    again = await store.get("k")
    assert again is not None
    assert again.result.data == {"list": [1, 2]}
    await store.delete("k")
    await store.delete("k")
    assert await store.get("k") is None


async def test_store_ttl(autojump_clock: trio.abc.Clock) -> None:
    store = InMemoryIdempotencyStore()
    await store.set("k", _entry({}), ttl_seconds=10)
    got = await store.get("k")
    assert got is not None
    assert got.expires_at == trio.current_time() + 10
    await trio.sleep(10)
    assert await store.get("k") is None
    await store.set("forever", _entry({}), ttl_seconds=0)
    await trio.sleep(10**6)
    assert await store.get("forever") is not None


async def test_store_methods_are_checkpoints() -> None:
    store = InMemoryIdempotencyStore()
    with trio.testing.assert_checkpoints():
        await store.set("k", _entry({}))
    with trio.testing.assert_checkpoints():
        await store.get("k")
    with trio.testing.assert_checkpoints():
        await store.get("missing")
    with trio.testing.assert_checkpoints():
        await store.delete("k")


def test_cached_stage_result_is_frozen() -> None:
    entry = _entry({})
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        entry.params_hash = "other"  # type: ignore[misc]


def test_defaults_match_the_reference(reference: ModuleType) -> None:
    ref = reference.pipeline.idempotency
    ours, theirs = IdempotencyInterceptor(), ref.IdempotencyInterceptor()
    assert (ours.name, ours.priority) == (theirs.name, theirs.priority)
    assert ours._ttl_seconds == theirs._ttl_seconds == 86400
    for params in ({"b": 2, "a": [1, {"x": None}]}, {}, None):
        assert ours._hash_params(params) == theirs._hash_params(params)


def test_default_chain_uses_the_given_store() -> None:
    store = InMemoryIdempotencyStore()
    chain = get_default_interceptors(idempotency_store=store)
    assert chain[0].name == "idempotency"
    assert isinstance(chain[0], IdempotencyInterceptor)
    assert chain[0].store is store
