"""IdempotencyInterceptor and InMemoryIdempotencyStore: caching, per-stage keys, concurrency."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from stageflow_trio._engine._stage_call import stage_result_replayable, stage_short_circuited
from stageflow_trio._time import utc_now
from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.core.stage_enums import StageKind, StageStatus
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.pipeline.dag import (
    StageExecutionError,
    StageGraph,
    StageSpec,
    UnifiedPipelineCancelled,
    UnifiedStageGraph,
)
from stageflow_trio.pipeline.guard_retry import GuardRetryPolicy, GuardRetryStrategy
from stageflow_trio.pipeline.idempotency import (
    DEFAULT_MAX_ENTRIES,
    STAGE_ATTEMPT_KEY,
    CachedStageResult,
    IdempotencyClaim,
    IdempotencyError,
    IdempotencyInterceptor,
    IdempotencyParamMismatch,
    InMemoryIdempotencyStore,
)
from stageflow_trio.pipeline.interceptors import (
    BaseInterceptor,
    CircuitBreakerInterceptor,
    CriticalInterceptorError,
    InterceptorResult,
    get_default_interceptors,
    run_with_interceptors,
)
from stageflow_trio.pipeline.pipeline import Pipeline
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.stages.result import StageResult
from stageflow_trio.testing import create_test_pipeline_context
from tests.fakes import CountingStage

from .graph_helpers import spec, stage_ctx


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


# --- only the stage's own result is cached (issue 13, defect 4) ------------------------------


class Placeholder(BaseInterceptor):
    """Short-circuits with a placeholder (no error) while ``active``, like a deferral."""

    name = "placeholder"
    priority = 30

    def __init__(self) -> None:
        self.active = True

    async def before(self, stage_name: str, ctx: PipelineContext) -> InterceptorResult | None:
        if self.active:
            return InterceptorResult(stage_ran=False, result={"deferred": True})
        return None

    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        return None


async def test_another_interceptors_placeholder_is_not_cached() -> None:
    interceptor = IdempotencyInterceptor()
    placeholder = Placeholder()
    stage = CountingStage()
    deferred = await run_with_interceptors("charge", stage, make_ctx(), [interceptor, placeholder])
    assert deferred.data == {"deferred": True}
    assert deferred.error is None
    assert await interceptor.store.get(json.dumps(["charge", "req-1"])) is None
    placeholder.active = False
    real = await run_with_interceptors("charge", stage, make_ctx(), [interceptor, placeholder])
    assert stage.calls == 1
    assert real.data == {"call": 1, "nested": {"items": [1]}}
    replay = await run_with_interceptors("charge", stage, make_ctx(), [interceptor, placeholder])
    assert stage.calls == 1
    assert replay.data == real.data


async def test_a_chain_run_inside_a_short_circuited_calls_after_still_caches() -> None:
    # The short-circuit marker belongs to the outer call only.
    inner = IdempotencyInterceptor()
    stage = CountingStage()

    class RunsAChainInAfter(Placeholder):
        priority = 60

        async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
            await run_with_interceptors("charge", stage, make_ctx(), [inner])

    await run_with_interceptors("outer", CountingStage("outer"), make_ctx(), [RunsAChainInAfter()])
    assert stage.calls == 1
    await run_with_interceptors("charge", stage, make_ctx(), [inner])
    assert stage.calls == 1


async def test_the_short_circuit_marker_is_set_only_in_a_short_circuited_calls_after() -> None:
    seen: list[bool] = []

    class Seer(Placeholder):
        priority = 60

        async def before(self, stage_name: str, ctx: PipelineContext) -> None:
            seen.append(stage_short_circuited())

        async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
            seen.append(stage_short_circuited())
            if stage_name == "critical":
                raise CriticalInterceptorError("stop", "seer")

    placeholder = Placeholder()
    await run_with_interceptors("s", CountingStage(), make_ctx(), [placeholder, Seer()])
    assert seen == [True]  # inside the placeholder: no before, but after runs on every hook
    seen.clear()
    outer = Seer()
    outer.priority = 1
    await run_with_interceptors("s", CountingStage(), make_ctx(), [outer, placeholder])
    assert seen == [False, True]
    assert stage_short_circuited() is False
    placeholder.active = False
    seen.clear()
    await run_with_interceptors("s", CountingStage(), make_ctx(), [outer, placeholder])
    assert seen == [False, False]
    placeholder.active = True
    with pytest.raises(CriticalInterceptorError):
        await run_with_interceptors("critical", CountingStage(), make_ctx(), [outer, placeholder])
    assert stage_short_circuited() is False


async def test_an_unhashable_cache_only_store_gets_claims_of_its_own() -> None:
    class Unhashable(CacheOnlyStore):
        __hash__ = None  # type: ignore[assignment]

    interceptor = IdempotencyInterceptor(store=Unhashable())
    stage = CountingStage()
    for _ in range(2):
        await run_with_interceptors("charge", stage, make_ctx(), [interceptor])
    assert stage.calls == 1


# --- claims live in the store (defect 5) -----------------------------------------------------


async def test_two_interceptors_sharing_a_store_run_the_stage_once(
    autojump_clock: trio.abc.Clock,
) -> None:
    store = InMemoryIdempotencyStore()
    first, second = IdempotencyInterceptor(store=store), IdempotencyInterceptor(store=store)
    stage = CountingStage(delay=1.0)
    results: list[StageResult] = []

    async def call(interceptor: IdempotencyInterceptor) -> None:
        results.append(await run_with_interceptors("charge", stage, make_ctx(), [interceptor]))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(call, first)
        await trio.testing.wait_all_tasks_blocked()
        assert store.is_claimed(json.dumps(["charge", "req-1"]))
        nursery.start_soon(call, second)
    assert stage.calls == 1
    assert [r.data["call"] for r in results] == [1, 1]
    assert trio.current_time() == 1.0
    assert not store.is_claimed(json.dumps(["charge", "req-1"]))


async def test_two_legacy_graphs_sharing_a_store_charge_once(
    autojump_clock: trio.abc.Clock,
) -> None:
    charges: list[float] = []

    async def charge(ctx: PipelineContext) -> dict[str, int]:
        charges.append(trio.current_time())
        await trio.sleep(2)
        return {"charged": 10}

    store = InMemoryIdempotencyStore()
    graphs = [
        StageGraph(
            [StageSpec(name="charge", runner=charge)],
            get_default_interceptors(idempotency_store=store),
        )
        for _ in range(2)
    ]
    results: list[dict[str, StageResult]] = []

    async def submit(graph: StageGraph) -> None:
        results.append(await graph.run(make_ctx()))

    async with trio.open_nursery() as nursery:
        for graph in graphs:
            nursery.start_soon(submit, graph)
    assert charges == [0.0]
    assert [dict(r["charge"].data) for r in results] == [{"charged": 10}] * 2
    assert trio.current_time() == 2.0


class CacheOnlyStore:
    """A store written for the reference: get, set and delete only."""

    def __init__(self) -> None:
        self.inner = InMemoryIdempotencyStore()

    async def get(self, key: str) -> CachedStageResult | None:
        return await self.inner.get(key)

    async def set(
        self, key: str, entry: CachedStageResult, *, ttl_seconds: int | None = None
    ) -> None:
        await self.inner.set(key, entry, ttl_seconds=ttl_seconds)

    async def delete(self, key: str) -> None:
        await self.inner.delete(key)


async def test_a_cache_only_store_shared_by_two_interceptors_runs_the_stage_once(
    autojump_clock: trio.abc.Clock,
) -> None:
    store = CacheOnlyStore()
    interceptors = [IdempotencyInterceptor(store=store) for _ in range(2)]
    stage = CountingStage(delay=1.0)

    async with trio.open_nursery() as nursery:
        for interceptor in interceptors:
            nursery.start_soon(run_with_interceptors, "charge", stage, make_ctx(), [interceptor])
    assert stage.calls == 1
    assert trio.current_time() == 1.0


def test_a_store_without_the_result_methods_is_rejected() -> None:
    class NotAStore:
        async def get(self, key: str) -> None:
            return None

    with pytest.raises(
        TypeError,
        match=r"^IdempotencyInterceptor: store must be an IdempotencyStore \(async get, set,"
        r" delete; claim and release\), or have at least get and set; got NotAStore without"
        r" set$",
    ):
        IdempotencyInterceptor(store=NotAStore())  # type: ignore[call-overload]


def test_a_store_class_is_rejected() -> None:
    # The class has get/set/delete too; accepted, every call failed open (the stage ran).
    with pytest.raises(
        TypeError,
        match=r"^IdempotencyInterceptor: store must be an IdempotencyStore instance; got the"
        r" class InMemoryIdempotencyStore \(pass InMemoryIdempotencyStore\(\)\)$",
    ):
        IdempotencyInterceptor(store=InMemoryIdempotencyStore)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match=r"^IdempotencyInterceptor: store must be"):
        get_default_interceptors(idempotency_store=InMemoryIdempotencyStore)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"key_extractor": "order_id"},
            TypeError,
            "IdempotencyInterceptor: key_extractor must be a callable or None; got str",
        ),
        (
            {"params_extractor": 3},
            TypeError,
            "IdempotencyInterceptor: params_extractor must be a callable or None; got int",
        ),
        (
            {"ttl_seconds": "1h"},
            TypeError,
            "IdempotencyInterceptor: ttl_seconds must be a number; got str",
        ),
        (
            {"ttl_seconds": True},
            TypeError,
            "IdempotencyInterceptor: ttl_seconds must be a number; got bool",
        ),
        (
            {"ttl_seconds": -5},
            ValueError,
            "IdempotencyInterceptor: ttl_seconds must be >= 0; got -5",
        ),
        (
            {"ttl_seconds": float("nan")},
            ValueError,
            "IdempotencyInterceptor: ttl_seconds must be >= 0; got nan",
        ),
        (
            {"validate_params": "no"},
            TypeError,
            "IdempotencyInterceptor: validate_params must be a bool; got str",
        ),
    ],
)
def test_bad_options_are_rejected_at_construction(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    # Accepted, each failed inside the hooks at every call, logged and swallowed: the
    # stage ran for every duplicate.
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        IdempotencyInterceptor(**kwargs)


@pytest.mark.parametrize("ttl", [None, 0, 60, 1.5, math.inf])
async def test_good_ttls_are_accepted(ttl: float | None) -> None:
    interceptor = IdempotencyInterceptor(ttl_seconds=ttl)
    stage = CountingStage()
    for _ in range(2):
        await run_with_interceptors("charge", stage, make_ctx(), [interceptor])
    assert stage.calls == 1


async def test_a_duck_typed_store_needs_no_subclassing() -> None:
    entries: dict[str, CachedStageResult] = {}

    class DictStore:
        async def get(self, key: str) -> CachedStageResult | None:
            return entries.get(key)

        async def set(
            self, key: str, entry: CachedStageResult, *, ttl_seconds: int | None = None
        ) -> None:
            entries[key] = entry

        async def delete(self, key: str) -> None:
            entries.pop(key, None)

    # Only the reference's three methods: the protocol's claim/release are optional.
    interceptor = IdempotencyInterceptor(store=DictStore())
    stage = CountingStage()
    for _ in range(2):
        await run_with_interceptors("charge", stage, make_ctx(), [interceptor])
    assert stage.calls == 1
    assert list(entries) == ['["charge", "req-1"]']


async def test_claim_grants_a_free_key_and_returns_a_cached_entry() -> None:
    store = InMemoryIdempotencyStore()
    claim = await store.claim("k")
    assert isinstance(claim, IdempotencyClaim)
    assert claim.key == "k"
    assert store.is_claimed("k")
    await store.set("k", _entry({"list": [1]}))
    store.release(claim)
    assert not store.is_claimed("k")
    cached = await store.claim("k")
    assert isinstance(cached, CachedStageResult)
    assert cached.result.data == {"list": [1]}
    cached.result.data["list"].append(2)  # a copy
    again = await store.claim("k")
    assert isinstance(again, CachedStageResult)
    assert again.result.data == {"list": [1]}
    assert not store.is_claimed("k")


async def test_claim_waits_for_the_holder_then_takes_its_result_or_the_claim(
    autojump_clock: trio.abc.Clock,
) -> None:
    store = InMemoryIdempotencyStore()
    holder = await store.claim("k")
    assert isinstance(holder, IdempotencyClaim)
    got: list[tuple[float, object]] = []

    async def wait() -> None:
        outcome = await store.claim("k")
        got.append((trio.current_time(), outcome))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait)
        await trio.sleep(3)
        assert got == []
        store.release(holder)  # no result: the waiter gets the claim
    assert len(got) == 1
    assert got[0][0] == 3.0
    second = got[0][1]
    assert isinstance(second, IdempotencyClaim)
    assert second.token != holder.token
    assert store.is_claimed("k")
    store.release(holder)  # stale: ignored, the new holder keeps its claim
    assert store.is_claimed("k")
    got.clear()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait)
        await trio.sleep(2)
        await store.set("k", _entry({"n": 1}))
        store.release(second)
        store.release(second)  # twice: ignored
    assert got[0][0] == 5.0
    result = got[0][1]
    assert isinstance(result, CachedStageResult)
    assert result.result.data == {"n": 1}


async def test_claim_is_a_checkpoint_and_release_is_not() -> None:
    store = InMemoryIdempotencyStore()
    with trio.testing.assert_checkpoints():
        claim = await store.claim("k")
    assert isinstance(claim, IdempotencyClaim)
    with trio.testing.assert_no_checkpoints():
        store.release(claim)
    await store.set("k", _entry({}))
    with trio.testing.assert_checkpoints():
        await store.claim("k")


async def test_claim_cancelled_while_waiting_holds_nothing(
    autojump_clock: trio.abc.Clock,
) -> None:
    store = InMemoryIdempotencyStore()
    holder = await store.claim("k")
    assert isinstance(holder, IdempotencyClaim)
    with trio.move_on_after(1) as scope:
        await store.claim("k")
    assert scope.cancelled_caught
    store.release(holder)
    assert not store.is_claimed("k")


async def test_a_cancelled_claim_call_takes_nothing_even_on_a_free_key() -> None:
    store = InMemoryIdempotencyStore()
    with trio.CancelScope() as scope:
        scope.cancel()
        await store.claim("k")
    assert not store.is_claimed("k")


# --- a guard retry is a new attempt (defect 18) ----------------------------------------------


async def test_a_re_run_of_a_stage_in_one_run_is_a_new_attempt() -> None:
    interceptor = IdempotencyInterceptor()
    stage = CountingStage()
    ctx = make_ctx()
    first = await run_with_interceptors("charge", stage, ctx, [interceptor])
    ctx.data[STAGE_ATTEMPT_KEY.format(stage="charge")] = 2
    second = await run_with_interceptors("charge", stage, ctx, [interceptor])
    assert stage.calls == 2
    assert (first.data["call"], second.data["call"]) == (1, 2)
    assert await interceptor.store.get(json.dumps(["charge", "req-1", 2])) is not None
    # A duplicate request replays each attempt as it was.
    duplicate = make_ctx()
    assert (await run_with_interceptors("charge", stage, duplicate, [interceptor])).data[
        "call"
    ] == 1
    duplicate.data["_stage_attempt.charge"] = 2
    assert (await run_with_interceptors("charge", stage, duplicate, [interceptor])).data[
        "call"
    ] == 2
    assert stage.calls == 2


@pytest.mark.parametrize("attempt", [1, None, "2", True])
async def test_a_first_attempt_or_a_malformed_one_uses_the_plain_key(attempt: object) -> None:
    interceptor = IdempotencyInterceptor()
    stage = CountingStage()
    await run_with_interceptors("charge", stage, make_ctx(), [interceptor])
    ctx = make_ctx()
    ctx.data["_stage_attempt.charge"] = attempt
    replay = await run_with_interceptors("charge", stage, ctx, [interceptor])
    assert stage.calls == 1
    assert replay.data["call"] == 1


async def test_a_guard_retry_re_runs_an_idempotent_stage() -> None:
    calls: dict[str, int] = {}

    async def draft(ctx: StageContext) -> StageOutput:
        calls["draft"] = calls.get("draft", 0) + 1
        return StageOutput.ok(text=f"draft {calls['draft']}")

    async def guard(ctx: StageContext) -> StageOutput:
        if ctx.inputs.get_from("draft", "text") == "draft 1":
            return StageOutput.fail(error="too short")
        return StageOutput.ok(passed=True)

    graph = UnifiedStageGraph(
        [spec("draft", draft), spec("guard", guard, ["draft"], kind=StageKind.GUARD)],
        guard_retry_strategy=GuardRetryStrategy(
            {"guard": GuardRetryPolicy(retry_stage="draft", max_attempts=3)}
        ),
        interceptors=[IdempotencyInterceptor(key_extractor=lambda ctx: "req-1")],
    )
    results = await graph.run(stage_ctx())
    assert calls == {"draft": 2}
    assert results["guard"].data == {"passed": True}


# --- bounded in time and size (defect 6) -----------------------------------------------------


async def test_expired_entries_are_swept_as_the_store_is_written(
    autojump_clock: trio.abc.Clock,
) -> None:
    store = InMemoryIdempotencyStore()
    for n in range(500):
        await trio.sleep(1 if n else 0)
        await store.set(f"k{n}", _entry({}), ttl_seconds=60)
    # Written at t=0..499; at t=499 those written before t=440 had expired.
    assert trio.current_time() == 499
    assert len(store) == 60
    assert await store.get("k439") is None
    assert await store.get("k440") is not None


async def test_legacy_runs_with_a_ttl_hold_a_bounded_number_of_results(
    autojump_clock: trio.abc.Clock,
) -> None:
    async def stage(ctx: PipelineContext) -> dict[str, int]:
        return {"ok": 1}

    store = InMemoryIdempotencyStore()
    interceptors = get_default_interceptors(idempotency_store=store)
    interceptors[0] = IdempotencyInterceptor(store=store, ttl_seconds=60)
    graph = StageGraph(
        [StageSpec(name="a", runner=stage), StageSpec(name="b", runner=stage)], interceptors
    )
    for n in range(300):
        await graph.run(make_ctx(key=f"request-{n}"))
        await trio.sleep(1)
    assert len(store) == 2 * 60


async def test_an_entry_without_expiry_does_not_shield_expired_ones_behind_it(
    autojump_clock: trio.abc.Clock,
) -> None:
    store = InMemoryIdempotencyStore()
    await store.set("forever", _entry({}))
    for n in range(10):
        await store.set(f"short{n}", _entry({}), ttl_seconds=1)
    await trio.sleep(2)
    # The front sweep stops at "forever", so the expired entries stay until the
    # full pass, which runs at the 64th write (64 entries held by then).
    for n in range(52):
        await store.set(f"long{n}", _entry({}), ttl_seconds=3600)
    assert len(store) == 1 + 10 + 52
    await store.set("long52", _entry({}), ttl_seconds=3600)
    assert len(store) == 1 + 53
    for n in range(10):
        assert await store.get(f"short{n}") is None


async def test_purge_expired_removes_every_expired_entry(autojump_clock: trio.abc.Clock) -> None:
    store = InMemoryIdempotencyStore()
    await store.set("forever", _entry({}))
    await store.set("a", _entry({}), ttl_seconds=1)
    await store.set("b", _entry({}), ttl_seconds=5)
    await trio.sleep(2)
    with trio.testing.assert_no_checkpoints():
        assert store.purge_expired() == 1
    assert len(store) == 2
    await trio.sleep(3)
    assert store.purge_expired() == 1
    assert store.purge_expired() == 0
    assert len(store) == 1


async def test_the_size_cap_evicts_the_least_recently_written(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = InMemoryIdempotencyStore(max_entries=3)
    for key in ("a", "b", "c"):
        await store.set(key, _entry({}))
    await store.set("a", _entry({"again": True}))  # "a" is now the newest
    await store.set("d", _entry({}))
    assert len(store) == 3
    assert await store.get("b") is None
    for key in ("a", "c", "d"):
        assert await store.get(key) is not None
    await store.set("e", _entry({}))
    assert await store.get("c") is None
    warnings = [r.getMessage() for r in caplog.records if r.name == "stageflow_trio.idempotency"]
    assert warnings == [
        "InMemoryIdempotencyStore is full (max_entries=3): evicting the oldest results;"
        " duplicates of evicted requests will run their stages again"
    ]


def test_the_default_size_cap() -> None:
    assert DEFAULT_MAX_ENTRIES == 10_000
    assert InMemoryIdempotencyStore().max_entries == 10_000


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        ("10", TypeError, r"^max_entries must be an int, got str$"),
        (True, TypeError, r"^max_entries must be an int, got bool$"),
        (1.5, TypeError, r"^max_entries must be an int, got float$"),
        (0, ValueError, r"^max_entries must be >= 1, got 0$"),
    ],
)
def test_the_size_cap_is_validated(value: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        InMemoryIdempotencyStore(max_entries=value)  # type: ignore[arg-type]


@pytest.mark.parametrize("returned", ["cancel", "skip"])
async def test_a_unified_stage_that_skipped_or_cancelled_is_not_replayed_as_ok(
    returned: str,
) -> None:
    # Its StageResult says "completed" (the legacy statuses), but replaying it as an
    # OK would let a duplicate request do what the first one did not.
    calls: list[str] = []
    shipped: list[int] = []

    async def check(ctx: StageContext) -> StageOutput:
        calls.append("check")
        if returned == "cancel":
            return StageOutput.cancel(reason="duplicate order")
        return StageOutput.skip(reason="nothing to do")

    async def ship(ctx: StageContext) -> StageOutput:
        shipped.append(1)
        return StageOutput.ok(shipped=True)

    pipeline = (
        Pipeline()
        .with_stage("check", check, StageKind.GUARD)
        .with_stage("ship", ship, StageKind.WORK, dependencies=("check",))
    )
    store = InMemoryIdempotencyStore()
    idempotency = IdempotencyInterceptor(store=store)
    outcomes: list[object] = []
    for _ in range(2):
        try:
            results = await pipeline.run(
                interceptors=[idempotency], data={"idempotency_key": "order-1"}
            )
            outcomes.append(results["check"].status)
        except UnifiedPipelineCancelled as cancelled:
            outcomes.append(cancelled.reason)
    assert calls == ["check", "check"]  # nothing cached: the stage ran again
    assert stage_result_replayable()  # the mark ended with its call
    if returned == "cancel":
        assert outcomes == ["duplicate order", "duplicate order"]
        assert shipped == []
    else:
        assert outcomes == [StageStatus.SKIP, StageStatus.SKIP]
        assert shipped == [1]  # ship completed: its own answer is replayed
    assert len(store) == (0 if returned == "cancel" else 1)
