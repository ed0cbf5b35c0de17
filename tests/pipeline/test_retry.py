"""RetryInterceptor: exact backoff/jitter delays in virtual time, attempts, events, deadline."""

from __future__ import annotations

import asyncio
import math
import random
import uuid
from types import ModuleType
from typing import Any

import pytest
import trio

from stageflow_trio._engine._stage_call import MAX_CHAIN_RETRIES
from stageflow_trio._time import utc_now
from stageflow_trio.errors import StageflowError
from stageflow_trio.pipeline.dag import StageGraph, StageSpec
from stageflow_trio.pipeline.interceptors import (
    TimeoutInterceptor,
    get_default_interceptors,
    run_with_interceptors,
)
from stageflow_trio.pipeline.retry import (
    BackoffStrategy,
    JitterStrategy,
    RateLimitError,
    RetryInterceptor,
    ServiceUnavailableError,
    TransientError,
)
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.stages.result import StageResult
from stageflow_trio.testing import RecordingEventSink
from tests.fakes import FailingSink, pipeline_context
from tests.fakes import payload as event_payload

RUN_ID = uuid.UUID("77777777-7777-4777-8777-777777777777")
ENRICHMENT_KEYS = ["pipeline_run_id", "request_id", "execution_mode", "topology", "service"]
SCHEDULED_KEYS = ["stage", "attempt", "delay_ms", "error", "backoff_strategy"]
EXHAUSTED_KEYS = ["stage", "attempts", "error", "reason"]


def make_ctx(sink: RecordingEventSink | None = None) -> PipelineContext:
    return pipeline_context(
        pipeline_run_id=RUN_ID,
        topology="retry_topology",
        execution_mode="practice",
        event_sink=sink,
    )


class Flaky:
    """A stage that raises ``error`` on its first ``failures`` calls, recording call times."""

    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error or ConnectionError("connection reset")
        self.times: list[float] = []
        self.seen_attempts: list[Any] = []
        self.ctx: PipelineContext | None = None

    async def __call__(self) -> StageResult:
        self.times.append(trio.current_time())
        if self.ctx is not None:
            self.seen_attempts.append(self.ctx.data.get("_retry.s", {}).get("attempt"))
        await trio.lowlevel.checkpoint()
        if len(self.times) <= self.failures:
            raise self.error
        now = utc_now()
        return StageResult(
            name="s", status="completed", started_at=now, ended_at=now, data={"ok": 1}
        )


def expected_delays(
    n: int, base: int, cap: int, backoff: BackoffStrategy, jitter: JitterStrategy, seed: int
) -> list[int]:
    """An independent statement of the reference's delay formulas."""
    rng = random.Random(seed)
    delays: list[int] = []
    previous = base
    for attempt in range(n):
        if jitter is JitterStrategy.DECORRELATED:
            delay = min(cap, rng.randint(base, previous * 3))
        else:
            raw = {
                BackoffStrategy.EXPONENTIAL: base * 2**attempt,
                BackoffStrategy.LINEAR: base * (attempt + 1),
                BackoffStrategy.CONSTANT: base,
            }[backoff]
            raw = min(raw, cap)
            if jitter is JitterStrategy.NONE:
                delay = raw
            elif jitter is JitterStrategy.FULL:
                delay = rng.randint(0, raw)
            else:
                delay = raw // 2 + rng.randint(0, raw // 2)
        previous = delay
        delays.append(delay)
    return delays


COMBINATIONS = [(b, j) for b in BackoffStrategy for j in JitterStrategy]


@pytest.mark.parametrize(("backoff", "jitter"), COMBINATIONS, ids=lambda v: v.value)
async def test_delays_are_exact_in_virtual_time(
    backoff: BackoffStrategy, jitter: JitterStrategy, autojump_clock: trio.abc.Clock
) -> None:
    seed = 1234
    retry = RetryInterceptor(
        max_attempts=6,
        base_delay_ms=150,
        max_delay_ms=2000,
        backoff_strategy=backoff,
        jitter_strategy=jitter,
        rng=random.Random(seed),
    )
    stage = Flaky(failures=5)
    start = trio.current_time()
    result = await run_with_interceptors("s", stage, make_ctx(), [retry])
    assert result.status == "completed"
    delays = expected_delays(5, 150, 2000, backoff, jitter, seed)
    expected_times = [start]
    for delay in delays:
        expected_times.append(expected_times[-1] + delay / 1000)
    assert stage.times == expected_times


def test_literal_delays_pin_the_formulas() -> None:
    # Hand-checked values: no jitter needs no randomness.
    def none(backoff: BackoffStrategy) -> list[int]:
        retry = RetryInterceptor(
            base_delay_ms=100,
            max_delay_ms=1000,
            backoff_strategy=backoff,
            jitter_strategy=JitterStrategy.NONE,
        )
        return [retry._calculate_delay(a, None) for a in range(6)]

    assert none(BackoffStrategy.EXPONENTIAL) == [100, 200, 400, 800, 1000, 1000]
    assert none(BackoffStrategy.LINEAR) == [100, 200, 300, 400, 500, 600]
    assert none(BackoffStrategy.CONSTANT) == [100] * 6


class _ZeroRandom(random.Random):
    def randint(self, a: int, b: int) -> int:
        return a


class _MaxRandom(random.Random):
    def randint(self, a: int, b: int) -> int:
        return b


@pytest.mark.parametrize(
    ("rng", "jitter", "expected"),
    [
        (_ZeroRandom(), JitterStrategy.FULL, [0, 0, 0]),
        (_MaxRandom(), JitterStrategy.FULL, [100, 200, 400]),
        (_ZeroRandom(), JitterStrategy.EQUAL, [50, 100, 200]),
        (_MaxRandom(), JitterStrategy.EQUAL, [100, 200, 400]),
        (_ZeroRandom(), JitterStrategy.DECORRELATED, [100, 100, 100]),
        (_MaxRandom(), JitterStrategy.DECORRELATED, [300, 900, 1000]),
    ],
)
def test_jitter_bounds(rng: random.Random, jitter: JitterStrategy, expected: list[int]) -> None:
    retry = RetryInterceptor(base_delay_ms=100, max_delay_ms=1000, jitter_strategy=jitter, rng=rng)
    delays: list[int] = []
    previous = None
    for attempt in range(3):
        previous = retry._calculate_delay(attempt, previous)
        delays.append(previous)
    assert delays == expected


@pytest.mark.parametrize(("backoff", "jitter"), COMBINATIONS, ids=lambda v: v.value)
def test_delays_equal_the_reference(
    reference: ModuleType, backoff: BackoffStrategy, jitter: JitterStrategy
) -> None:
    ref = reference.pipeline.retry
    seed = 99
    theirs = ref.RetryInterceptor(
        base_delay_ms=120,
        max_delay_ms=5000,
        backoff_strategy=ref.BackoffStrategy(backoff.value),
        jitter_strategy=ref.JitterStrategy(jitter.value),
    )
    ours = RetryInterceptor(
        base_delay_ms=120,
        max_delay_ms=5000,
        backoff_strategy=backoff,
        jitter_strategy=jitter,
        rng=random.Random(seed),
    )
    state = random.getstate()
    try:
        random.seed(seed)  # the reference draws from the global generator
        their_delays = [theirs._calculate_delay("s", attempt) for attempt in range(6)]
    finally:
        random.setstate(state)
    our_delays: list[int] = []
    previous = None
    for attempt in range(6):
        previous = ours._calculate_delay(attempt, previous)
        our_delays.append(previous)
    assert our_delays == their_delays


@pytest.mark.parametrize("max_attempts", [0, 1, 2, 3, 5, MAX_CHAIN_RETRIES + 1])
async def test_max_attempts_is_honoured_exactly(
    max_attempts: int, autojump_clock: trio.abc.Clock
) -> None:
    retry = RetryInterceptor(
        max_attempts=max_attempts, base_delay_ms=10, jitter_strategy=JitterStrategy.NONE
    )
    stage = Flaky(failures=10**6)
    result = await run_with_interceptors("s", stage, make_ctx(), [retry])
    assert result.status == "failed"
    assert result.error == "connection reset"
    assert len(stage.times) == max(max_attempts, 1)


def test_reference_stops_after_one_retry(reference: ModuleType) -> None:
    # Why the chain loops on RETRY: the reference makes 2 calls whatever max_attempts says.
    ref_retry = reference.pipeline.retry
    ref_interceptors = reference.pipeline.interceptors
    ref_context = reference.stages.context
    calls: list[int] = []

    async def always_fails() -> Any:
        calls.append(1)
        raise ConnectionError("down")

    ctx = ref_context.PipelineContext(
        pipeline_run_id=None,
        request_id=None,
        session_id=None,
        user_id=None,
        org_id=None,
        interaction_id=None,
    )
    retry = ref_retry.RetryInterceptor(max_attempts=5, base_delay_ms=0)
    asyncio.run(ref_interceptors.run_with_interceptors("s", always_fails, ctx, [retry]))
    assert len(calls) == 2


async def test_the_stage_sees_its_attempt_and_no_state_leaks(
    autojump_clock: trio.abc.Clock,
) -> None:
    ctx = make_ctx()
    stage = Flaky(failures=2)
    stage.ctx = ctx
    retry = RetryInterceptor(base_delay_ms=10, jitter_strategy=JitterStrategy.NONE)
    result = await run_with_interceptors("s", stage, ctx, [retry])
    assert result.status == "completed"
    assert stage.seen_attempts == [0, 1, 2]
    assert not [key for key in ctx.data if key.startswith("_retry.")]


async def test_no_state_leaks_after_exhaustion_or_a_stale_key(
    autojump_clock: trio.abc.Clock,
) -> None:
    ctx = make_ctx()
    ctx.data["_retry.s"] = {"attempt": 7}  # stale state must not shorten this call's retries
    retry = RetryInterceptor(max_attempts=3, base_delay_ms=10, jitter_strategy=JitterStrategy.NONE)
    stage = Flaky(failures=10)
    result = await run_with_interceptors("s", stage, ctx, [retry])
    assert result.status == "failed"
    assert len(stage.times) == 3
    assert "_retry.s" not in ctx.data


async def test_non_retryable_errors_fail_at_once() -> None:
    sink = RecordingEventSink()
    retry = RetryInterceptor(base_delay_ms=10)
    stage = Flaky(failures=1, error=ValueError("bad input"))
    result = await run_with_interceptors("s", stage, make_ctx(sink), [retry])
    assert result.status == "failed"
    assert result.error == "bad input"
    assert len(stage.times) == 1
    assert sink.events == []


async def test_transient_errors_are_not_retryable_by_default(
    autojump_clock: trio.abc.Clock,
) -> None:
    stage = Flaky(failures=1, error=ServiceUnavailableError("later"))
    result = await run_with_interceptors("s", stage, make_ctx(), [RetryInterceptor()])
    assert result.status == "failed"
    opted_in = RetryInterceptor(retryable_errors=(TransientError,), base_delay_ms=5)
    stage = Flaky(failures=1, error=RateLimitError("slow down", retry_after=1.5))
    result = await run_with_interceptors("s", stage, make_ctx(), [opted_in])
    assert result.status == "completed"
    assert len(stage.times) == 2


@pytest.mark.parametrize(
    "error", [TimeoutError("t"), trio.TooSlowError(), OSError("o"), ConnectionResetError("c")]
)
async def test_default_retryable_errors(error: Exception, autojump_clock: trio.abc.Clock) -> None:
    stage = Flaky(failures=1, error=error)
    retry = RetryInterceptor(base_delay_ms=1, jitter_strategy=JitterStrategy.NONE)
    result = await run_with_interceptors("s", stage, make_ctx(), [retry])
    assert result.status == "completed"


async def test_stage_timeouts_are_retried(autojump_clock: trio.abc.Clock) -> None:
    ctx = make_ctx()
    ctx.data["_timeout_ms"] = 500
    calls: list[float] = []

    async def slow_then_fast() -> StageResult:
        calls.append(trio.current_time())
        if len(calls) == 1:
            await trio.sleep(10)
        now = utc_now()
        return StageResult(name="s", status="completed", started_at=now, ended_at=now)

    retry = RetryInterceptor(base_delay_ms=100, jitter_strategy=JitterStrategy.NONE)
    result = await run_with_interceptors("s", slow_then_fast, ctx, [TimeoutInterceptor(), retry])
    assert result.status == "completed"
    assert calls == [0.0, 0.5 + 0.1]


def _check_types(payload: dict[str, Any]) -> None:
    for key in ("pipeline_run_id", "request_id", "execution_mode", "topology"):
        assert payload[key] is None or isinstance(payload[key], str), key
    assert isinstance(payload["service"], str)
    assert isinstance(payload["stage"], str)
    assert isinstance(payload["error"], str)


async def test_retry_events_have_golden_payloads(autojump_clock: trio.abc.Clock) -> None:
    sink = RecordingEventSink()
    retry = RetryInterceptor(
        max_attempts=3,
        base_delay_ms=100,
        backoff_strategy=BackoffStrategy.LINEAR,
        jitter_strategy=JitterStrategy.NONE,
    )
    await run_with_interceptors("s", Flaky(failures=10), make_ctx(sink), [retry])
    assert sink.types() == [
        "stage.retry_scheduled",
        "stage.retry_scheduled",
        "stage.retry_exhausted",
    ]
    first, second = sink.of_type("stage.retry_scheduled")
    common = {
        "pipeline_run_id": str(RUN_ID),
        "request_id": None,
        "execution_mode": "practice",
        "topology": "retry_topology",
        "service": "pipeline",
    }
    assert first == {
        **common,
        "stage": "s",
        "attempt": 1,
        "delay_ms": 100,
        "error": "connection reset",
        "backoff_strategy": "linear",
    }
    assert second is not None
    assert second["attempt"] == 2
    assert second["delay_ms"] == 200
    [exhausted] = sink.of_type("stage.retry_exhausted")
    assert exhausted == {
        **common,
        "stage": "s",
        "attempts": 3,
        "error": "connection reset",
        "reason": "max_attempts",
    }
    for payload in (first, second, exhausted):
        assert payload is not None
        _check_types(payload)
    assert list(first) == ENRICHMENT_KEYS + SCHEDULED_KEYS
    assert list(exhausted) == ENRICHMENT_KEYS + EXHAUSTED_KEYS


def test_payload_keys_cover_the_reference_keys(reference: ModuleType) -> None:
    # The reference passes its payloads positionally, so keyword-only sinks lose them (d8).
    # A sink that accepts positional arguments reveals what it meant to send.
    ref_retry = reference.pipeline.retry
    ref_interceptors = reference.pipeline.interceptors
    ref_context = reference.stages.context

    class PositionalSink:
        def __init__(self) -> None:
            self.events: list[tuple[Any, ...]] = []

        def try_emit(self, *args: Any, **kwargs: Any) -> None:
            self.events.append(args)

    async def always_fails() -> Any:
        raise ConnectionError("down")

    sent: dict[str, list[str]] = {}
    for max_attempts in (2, 1):
        sink = PositionalSink()
        ctx = ref_context.PipelineContext(
            pipeline_run_id=None,
            request_id=None,
            session_id=None,
            user_id=None,
            org_id=None,
            interaction_id=None,
            event_sink=sink,
        )
        retry = ref_retry.RetryInterceptor(max_attempts=max_attempts, base_delay_ms=0)
        asyncio.run(ref_interceptors.run_with_interceptors("s", always_fails, ctx, [retry]))
        for event_type, payload in sink.events:
            sent[event_type] = list(payload)
    assert sent == {
        "stage.retry_scheduled": SCHEDULED_KEYS,
        "stage.retry_exhausted": EXHAUSTED_KEYS[:-1],
    }


async def test_events_reach_the_sink_of_a_legacy_graph(autojump_clock: trio.abc.Clock) -> None:
    sink = RecordingEventSink()
    calls: list[int] = []

    async def flaky(ctx: PipelineContext) -> dict[str, int]:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("flap")
        return {"done": 1}

    chain = [*get_default_interceptors(), RetryInterceptor(base_delay_ms=50, rng=random.Random(3))]
    graph = StageGraph([StageSpec(name="s", runner=flaky)], chain)
    ctx = make_ctx(sink)
    results = await graph.run(ctx)
    assert results["s"].status == "completed"
    assert results["s"].data == {"done": 1}
    assert sink.types().count("stage.retry_scheduled") == 2
    assert "stage.s.completed" in sink.types()
    assert not [key for key in ctx.data if key.startswith("_")]


async def test_a_retry_past_the_enclosing_deadline_is_not_scheduled(
    autojump_clock: trio.abc.Clock,
) -> None:
    sink = RecordingEventSink()
    retry = RetryInterceptor(
        max_attempts=5, base_delay_ms=1000, jitter_strategy=JitterStrategy.NONE
    )
    stage = Flaky(failures=10)
    with trio.move_on_after(2.5) as scope:
        result = await run_with_interceptors("s", stage, make_ctx(sink), [retry])
    assert not scope.cancelled_caught
    # Calls at 0 and 1; the next retry (2000 ms) would start at 3.0 > 2.5.
    assert stage.times == [0.0, 1.0]
    assert trio.current_time() == 1.0
    assert result.status == "failed"
    [exhausted] = sink.of_type("stage.retry_exhausted")
    assert exhausted is not None
    assert exhausted["reason"] == "deadline"
    assert exhausted["attempts"] == 2


async def test_a_retry_starting_exactly_at_the_deadline_is_not_scheduled(
    autojump_clock: trio.abc.Clock,
) -> None:
    retry = RetryInterceptor(base_delay_ms=1000, jitter_strategy=JitterStrategy.NONE)
    stage = Flaky(failures=10)
    with trio.move_on_after(1.0):
        result = await run_with_interceptors("s", stage, make_ctx(), [retry])
    assert stage.times == [0.0]
    assert result.status == "failed"


async def test_cancellation_during_backoff_propagates_and_clears_state(
    autojump_clock: trio.abc.Clock,
) -> None:
    ctx = make_ctx()
    retry = RetryInterceptor(base_delay_ms=10_000, jitter_strategy=JitterStrategy.NONE)
    stage = Flaky(failures=10)
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:

            async def cancel_later() -> None:
                await trio.sleep(3)
                scope.cancel()

            nursery.start_soon(cancel_later)
            await run_with_interceptors("s", stage, ctx, [retry])
    assert scope.cancelled_caught
    assert stage.times == [0.0]
    assert "_retry.s" not in ctx.data


async def test_retry_on_status_has_no_effect_on_returned_failures() -> None:
    async def returns_failed() -> StageResult:
        now = utc_now()
        return StageResult(name="s", status="failed", started_at=now, ended_at=now, error="x")

    sink = RecordingEventSink()
    retry = RetryInterceptor(retry_on_status=("failed",))
    result = await run_with_interceptors("s", returns_failed, make_ctx(sink), [retry])
    assert result.status == "failed"
    assert sink.events == []


async def test_sink_errors_do_not_break_the_retry(autojump_clock: trio.abc.Clock) -> None:
    retry = RetryInterceptor(base_delay_ms=1, jitter_strategy=JitterStrategy.NONE)
    stage = Flaky(failures=1)
    result = await run_with_interceptors("s", stage, make_ctx(FailingSink()), [retry])
    assert result.status == "completed"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"max_attempts": MAX_CHAIN_RETRIES + 2},
            rf"max_attempts must be at most {MAX_CHAIN_RETRIES + 1} \(the chain's retry limit\),"
            rf" got {MAX_CHAIN_RETRIES + 2}",
        ),
        ({"base_delay_ms": -1}, r"base_delay_ms must be >= 0, got -1"),
        ({"max_delay_ms": -5}, r"max_delay_ms must be >= 0, got -5"),
    ],
)
def test_invalid_parameters_are_rejected(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=rf"^{message}$"):
        RetryInterceptor(**kwargs)


# Issue 13, defects 14 and 15: nonsense was accepted, then the interceptor never retried.
@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"max_attempts": "3"}, TypeError, r"max_attempts must be an int, got str"),
        ({"max_attempts": 2.0}, TypeError, r"max_attempts must be an int, got float"),
        ({"max_attempts": True}, TypeError, r"max_attempts must be an int, got bool"),
        ({"max_attempts": -1}, ValueError, r"max_attempts must be >= 0, got -1"),
        (
            {"base_delay_ms": math.nan},
            TypeError,
            r"base_delay_ms must be an int \(whole milliseconds\), got float",
        ),
        (
            {"max_delay_ms": "30000"},
            TypeError,
            r"max_delay_ms must be an int \(whole milliseconds\), got str",
        ),
        ({"rng": "seed"}, TypeError, r"rng must be a random.Random or None, got str"),
        ({"rng": 42}, TypeError, r"rng must be a random.Random or None, got int"),
        (
            {"backoff_strategy": "quadratic"},
            ValueError,
            r"backoff_strategy must be a BackoffStrategy or one of"
            r" \['exponential', 'linear', 'constant'\], got 'quadratic'",
        ),
        (
            {"backoff_strategy": "LINEAR"},
            ValueError,
            r"backoff_strategy must be a BackoffStrategy or one of"
            r" \['exponential', 'linear', 'constant'\], got 'LINEAR'",
        ),
        (
            {"backoff_strategy": JitterStrategy.FULL},
            TypeError,
            r"backoff_strategy must be a BackoffStrategy or one of"
            r" \['exponential', 'linear', 'constant'\], got JitterStrategy",
        ),
        (
            {"jitter_strategy": 1},
            TypeError,
            r"jitter_strategy must be a JitterStrategy or one of"
            r" \['none', 'full', 'equal', 'decorrelated'\], got int",
        ),
        (
            {"retryable_errors": ("ConnectionError",)},
            TypeError,
            r"retryable_errors must contain Exception subclasses, got 'ConnectionError' \(str\)",
        ),
        (
            {"retryable_errors": (ConnectionError, KeyboardInterrupt)},
            TypeError,
            r"retryable_errors must contain Exception subclasses, got KeyboardInterrupt",
        ),
        (
            {"retryable_errors": "ConnectionError"},
            TypeError,
            r"retryable_errors must be exception classes \(a tuple of them, or one\) or None,"
            r" got str",
        ),
        (
            {"retryable_errors": ()},
            ValueError,
            r"retryable_errors must name at least one exception class \(None means the"
            r" defaults; to retry nothing, leave the interceptor out\), got an empty collection",
        ),
    ],
)
def test_nonsense_is_rejected_at_construction(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=rf"^{message}$"):
        RetryInterceptor(**kwargs)


async def test_strategies_given_by_value_are_the_members(autojump_clock: trio.abc.Clock) -> None:
    sink = RecordingEventSink()
    retry = RetryInterceptor(
        max_attempts=3, base_delay_ms=100, backoff_strategy="linear", jitter_strategy="none"
    )
    assert retry.backoff_strategy is BackoffStrategy.LINEAR
    assert retry.jitter_strategy is JitterStrategy.NONE
    stage = Flaky(failures=2)
    result = await run_with_interceptors("s", stage, make_ctx(sink), [retry])
    assert result.status == "completed"
    assert stage.times == [0.0, 0.1, 0.1 + 0.2]  # linear: 100 ms, then 200 ms
    assert [
        event_payload(e)["backoff_strategy"] for e in sink.of_type("stage.retry_scheduled")
    ] == ["linear"] * 2


@pytest.mark.parametrize("given", [[ValueError], {ValueError}, ValueError, (ValueError,)], ids=repr)
async def test_retryable_errors_accepts_one_class_or_a_collection(
    given: Any, autojump_clock: trio.abc.Clock
) -> None:
    retry = RetryInterceptor(retryable_errors=given, jitter_strategy=JitterStrategy.NONE)
    assert retry.retryable_errors == (ValueError,)
    stage = Flaky(failures=1, error=ValueError("flaky"))
    result = await run_with_interceptors("s", stage, make_ctx(), [retry])
    assert result.status == "completed"
    assert len(stage.times) == 2


def test_defaults_and_errors_match_the_reference(reference: ModuleType) -> None:
    ref = reference.pipeline.retry
    ours = RetryInterceptor()
    theirs = ref.RetryInterceptor()
    for attr in ("max_attempts", "base_delay_ms", "max_delay_ms", "retry_on_status"):
        assert getattr(ours, attr) == getattr(theirs, attr)
    assert ours.backoff_strategy.value == theirs.backoff_strategy.value
    assert ours.jitter_strategy.value == theirs.jitter_strategy.value
    assert (ours.name, ours.priority) == (theirs.name, theirs.priority)
    assert [s.value for s in BackoffStrategy] == [s.value for s in ref.BackoffStrategy]
    assert [s.value for s in JitterStrategy] == [s.value for s in ref.JitterStrategy]
    error = RateLimitError("slow", retry_after=2.0)
    assert isinstance(error, TransientError)
    assert isinstance(error, StageflowError)
    assert error.retry_after == 2.0
    assert str(error) == str(ref.RateLimitError("slow", retry_after=2.0))
