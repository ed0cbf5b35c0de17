"""Audit 19, clocks: which clock each reading is on, and what happens when clocks differ.

Durations and in-process times to live are on trio's clock; each ``trio.run`` has its
own clock with its own origin (a random offset of 10,000 to 200,000 s on the default
``SystemClock``, 0 on a ``MockClock``). An object that keeps times across runs (an
in-memory store, a circuit breaker, a JWKS cache) read whichever clock was current, so
used in a second ``trio.run`` (a process that calls ``trio.run`` per job, a test suite
sharing a store) its entries expired at once or lived up to two days too long. Now each
such object reads one clock for its life (``stageflow_trio._time.RunClock``). The runs
here use clocks like trio's ``SystemClock`` at chosen origins; moving the first run's
clock between runs stands for time passing on it (a ``SystemClock`` keeps running after
its run). ``MockClock`` runs are the exception: each test has its own, frozen once its
run is over, so an object shared by tests follows the ``MockClock`` of the run using it.

Also: durations in events and results are exact in virtual time and unmoved by the wall
clock stepping back an hour mid-run, and in-process times to live ignore a wall-clock step.
"""

from __future__ import annotations

import math
import time
import uuid
from datetime import datetime
from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio import _time
from stageflow_trio._time import RunClock, utc_now
from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.helpers.run_utils import PipelineRunner
from stageflow_trio.pipeline import Pipeline
from stageflow_trio.pipeline.idempotency import CachedStageResult, InMemoryIdempotencyStore
from stageflow_trio.pipeline.interceptors import CircuitBreakerInterceptor
from stageflow_trio.stages.result import StageResult
from stageflow_trio.testing import create_test_pipeline_context
from stageflow_trio.tools.undo import UndoStore

# Far above any machine's uptime (time.monotonic()), so that a reading of that clock
# can never pass for one of this time line by chance.
ORIGIN = 1_000_000_000.0


class SystemLikeClock(trio.abc.Clock):
    """A clock like trio's ``SystemClock`` (not a ``MockClock``: an object keeps it across
    runs), at ``origin``, moved by :meth:`jump` and fast-forwarded to each deadline."""

    def __init__(self, origin: float) -> None:
        self.now = origin

    def start_clock(self) -> None:
        pass

    def current_time(self) -> float:
        return self.now

    def deadline_to_sleep_time(self, deadline: float) -> float:
        if deadline == math.inf:  # no timer: wait for I/O or another thread
            return 86400.0
        self.now = max(self.now, deadline)
        return 0.0

    def jump(self, seconds: float) -> None:
        self.now += seconds


def clock_at(seconds: float) -> SystemLikeClock:
    return SystemLikeClock(seconds)


def a_result() -> StageResult:
    now = utc_now()
    return StageResult(name="s", status="completed", started_at=now, ended_at=now, data={"x": 1})


# --------------------------------------------------------------- one clock across runs


def test_run_clock_reads_the_clock_of_the_run_it_is_made_or_first_used_in() -> None:
    first = clock_at(ORIGIN)

    async def make() -> RunClock:
        return RunClock()

    made_inside = trio.run(make, clock=first)
    made_outside = RunClock()

    async def read(clock: RunClock) -> float:
        return clock()

    assert trio.run(read, made_outside, clock=first) == ORIGIN  # bound at its first call
    # Another run, another origin: both still read the first clock, also outside a run.
    assert trio.run(read, made_inside, clock=clock_at(5.0)) == ORIGIN
    assert trio.run(read, made_outside, clock=clock_at(5.0)) == ORIGIN
    first.jump(7.0)
    assert made_inside() == made_outside() == ORIGIN + 7.0
    # First called outside any run: time.monotonic(), for good.
    unbound = RunClock()
    assert abs(unbound() - time.monotonic()) < 60
    assert abs(trio.run(read, unbound, clock=clock_at(ORIGIN)) - time.monotonic()) < 60


def test_an_in_memory_idempotency_ttl_holds_across_trio_runs() -> None:
    store = InMemoryIdempotencyStore()
    first = clock_at(ORIGIN)

    async def put(key: str, ttl: int) -> None:
        await store.set(key, CachedStageResult(result=a_result()), ttl_seconds=ttl)

    async def live(key: str) -> bool:
        return await store.get(key) is not None

    trio.run(put, "k", 60, clock=first)
    # A later run on a clock with a later origin: the entry is 0 s old (it had expired).
    assert trio.run(live, "k", clock=clock_at(2 * ORIGIN)) is True
    first.jump(59)
    assert trio.run(live, "k", clock=clock_at(0.0)) is True
    first.jump(2)
    # 61 s on: expired (on a clock with an earlier origin it lived ORIGIN seconds more).
    assert trio.run(live, "k", clock=clock_at(0.0)) is False
    # purge_expired outside any run reads the store's clock too (it read time.monotonic()).
    trio.run(put, "j", 10, clock=clock_at(0.0))
    first.jump(11)
    assert store.purge_expired() == 1
    assert len(store) == 0


def test_an_in_memory_undo_entry_keeps_its_ttl_across_trio_runs() -> None:
    undo = UndoStore()
    action = uuid.uuid4()
    first = clock_at(ORIGIN)

    async def put() -> None:
        await undo.store(action, "tool", {"row": 1}, ttl_seconds=3600)

    async def live() -> bool:
        return await undo.get(action) is not None

    trio.run(put, clock=first)
    assert trio.run(live, clock=clock_at(2 * ORIGIN)) is True
    first.jump(3601)
    assert trio.run(live, clock=clock_at(0.0)) is False
    assert len(undo) == 0


def test_objects_shared_by_tests_follow_each_tests_mock_clock() -> None:
    """Each test's ``MockClock`` stands still once its run is over: an object kept across
    tests (made at import time) must not stay on the first test's clock, where no time to
    live would ever run out again."""
    store = InMemoryIdempotencyStore()
    breaker = CircuitBreakerInterceptor()
    ctx = create_test_pipeline_context()
    failed = StageResult(
        name="s", status="failed", started_at=utc_now(), ended_at=utc_now(), error="boom"
    )

    async def a_test(key: str) -> tuple[bool, bool, str]:
        await store.set(key, CachedStageResult(result=a_result()), ttl_seconds=10)
        for _ in range(5):
            await breaker.before("s", ctx)
            await breaker.after("s", failed, ctx)
        await trio.sleep(31)
        closed = await breaker.before("s", ctx) is None
        await breaker.after("s", a_result(), ctx)
        return await store.get(key) is None, closed, breaker.state("s")

    for key in ("first", "second"):
        clock = trio.testing.MockClock(autojump_threshold=0)
        assert trio.run(a_test, key, clock=clock) == (True, True, "closed"), key


def test_an_open_circuit_breaker_stays_open_30_seconds_across_trio_runs() -> None:
    breaker = CircuitBreakerInterceptor()
    ctx = create_test_pipeline_context()
    failed = StageResult(
        name="s", status="failed", started_at=utc_now(), ended_at=utc_now(), error="boom"
    )
    first = clock_at(ORIGIN)

    async def fail_five_times() -> None:
        for _ in range(5):
            await breaker.before("s", ctx)
            await breaker.after("s", failed, ctx)

    async def short_circuited() -> bool:
        return await breaker.before("s", ctx) is not None

    trio.run(fail_five_times, clock=first)
    assert breaker.state("s") == "open"
    # A run on a clock with a later origin: 0 s have passed, not ORIGIN seconds.
    assert trio.run(short_circuited, clock=clock_at(2 * ORIGIN)) is True
    assert breaker.state("s") == "open"
    first.jump(31)
    assert trio.run(short_circuited, clock=clock_at(0.0)) is False
    assert breaker.state("s") == "half_open"


def test_a_jwks_cache_refetches_on_time_across_trio_runs() -> None:
    """Before: a run on a clock with an earlier origin saw the last fetch in the future
    and refused to refetch for that long, so a rotated key stayed unknown."""
    pyjwt = pytest.importorskip("jwt", reason="PyJWT is not installed")
    from stageflow_trio.auth.jwt import SignedJwtValidator
    from tests.auth.helpers import USER
    from tests.auth.test_jwt import NOW, Endpoint, Keys, jwks

    keys = Keys(pyjwt)
    endpoint = Endpoint(
        jwks(keys, (keys.rsa, "k1")), jwks(keys, (keys.rsa, "k1"), (keys.rsa2, "k2"))
    )
    validator = SignedJwtValidator(
        algorithms=["RS256"], jwks_fetcher=endpoint, now=lambda: NOW, jwks_refresh_interval=60
    )
    first = clock_at(ORIGIN)

    async def validate(key: Any, kid: str) -> str:
        try:
            claims = await validator.validate(keys.token(key, kid=kid))
        except Exception as exc:
            return str(getattr(exc, "reason", exc))
        return str(claims["user_id"])

    assert trio.run(validate, keys.rsa, "k1", clock=first) == USER
    first.jump(61)
    # The key rotated; 61 s after the last fetch, a run on a clock with an earlier origin.
    assert trio.run(validate, keys.rsa2, "k2", clock=clock_at(0.0)) == USER
    assert len(endpoint.fetches) == 2


# ------------------------------------------------------ durations in virtual time


def two_stage_pipeline(step_wall_clock: Any = None) -> Pipeline:
    async def slow(ctx: StageContext) -> StageOutput:
        await trio.sleep(1.0)
        if step_wall_clock is not None:
            step_wall_clock()
        await trio.sleep(1.5)
        return StageOutput.ok(done=True)

    async def quick(ctx: StageContext) -> StageOutput:
        await trio.sleep(0.25)
        return StageOutput.ok(done=True)

    return (
        Pipeline(name="clocks")
        .with_stage("slow", slow, StageKind.TRANSFORM)
        .with_stage("quick", quick, StageKind.WORK, dependencies=("slow",))
    )


async def test_observable_sink_elapsed_ms_agrees_with_the_runs_duration(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Before: ``elapsed_ms`` was on ``time.perf_counter``, so under MockClock the event
    of a 2.75 s run said about 0 ms while ``RunResult.duration_ms`` said 2750."""
    result = await PipelineRunner(verbose=False).run(two_stage_pipeline(), input_text="hi")
    assert result.success
    assert result.duration_ms == 2750.0
    elapsed = {event["type"]: event["elapsed_ms"] for event in result.events}
    assert elapsed["pipeline_completed"] == 2750.0
    assert elapsed["stage.slow.completed"] == 2500.0


async def test_durations_are_exact_and_unmoved_when_the_wall_clock_steps_back_mid_run(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every duration a run reports is on trio's clock: a wall clock stepped back one
    hour during the first stage changes the timestamps, never a duration."""
    real_time, real_time_ns = time.time, time.time_ns
    step = [0]

    def step_back() -> None:
        step[0] = -3600 * 10**9

    monkeypatch.setattr(time, "time", lambda: real_time() + step[0] / 1e9)
    monkeypatch.setattr(time, "time_ns", lambda: real_time_ns() + step[0])
    monkeypatch.setattr(_time, "_wall_ns", lambda: real_time_ns() + step[0])
    result = await PipelineRunner(verbose=False).run(two_stage_pipeline(step_back), input_text="hi")
    assert step[0] != 0
    assert result.success
    assert result.duration_ms == 2750.0
    durations = {
        event["type"]: event["data"]["duration_ms"]
        for event in result.events
        if "duration_ms" in event["data"]
    }
    assert durations == {
        "stage.slow.completed": 2500,
        "stage.quick.completed": 250,
        "pipeline_completed": 2750,
    }
    assert all(event["elapsed_ms"] >= 0 for event in result.events)
    # The event timestamps are wall clock: the step shows there, about an hour back.
    stamps = [datetime.fromisoformat(event["timestamp"]) for event in result.events]
    assert (stamps[0] - stamps[-1]).total_seconds() > 3000


async def test_in_process_ttls_ignore_a_wall_clock_step(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reference expires its in-memory idempotency entries by ``time.time()``: a
    step forward of an hour expired them all at once. Here they are on trio's clock."""
    store = InMemoryIdempotencyStore()
    undo = UndoStore()
    action = uuid.uuid4()
    await store.set("k", CachedStageResult(result=a_result()), ttl_seconds=60)
    await undo.store(action, "tool", {}, ttl_seconds=60)
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 3600)
    assert await store.get("k") is not None
    assert await undo.get(action) is not None
    monkeypatch.setattr(time, "time", lambda: real_time() - 3600)
    await trio.sleep(61)
    assert await store.get("k") is None
    assert await undo.get(action) is None


def test_the_v2_executors_undo_key_map_stays_bounded_across_trio_runs() -> None:
    """The executor remembers which tool each stored undo entry belongs to until the
    entry expires. Before: on a clock with an earlier origin a run saw every expired
    entry as live for up to that difference, so the map grew by one per undoable
    action (a process running a ``trio.run`` per job kept them for up to two days)."""
    from stageflow_trio.tools.definitions import ToolDefinition
    from stageflow_trio.tools.executor_v2 import AdvancedToolExecutor, ToolExecutorConfig
    from tests.test_audit18_trio_integration_3 import Act, Counter, exec_ctx

    counter = Counter()
    executor = AdvancedToolExecutor(
        ToolExecutorConfig(emit_events=False, undo_ttl_seconds=60), undo_store=UndoStore()
    )
    executor.register(
        ToolDefinition("add", "ADD", counter.add, undoable=True, undo_handler=counter.undo)
    )
    first = clock_at(ORIGIN)

    async def act() -> None:
        await executor.execute(Act(uuid.uuid4(), "ADD", {}), exec_ctx())

    trio.run(act, clock=first)
    first.jump(61)
    trio.run(act, clock=clock_at(0.0))
    assert counter.value == 2
    assert len(executor._undo_keys) == 1  # the first action's entry has expired
