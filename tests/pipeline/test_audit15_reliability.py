"""Audit 15: per-run timeout arguments and retry delay bounds fail at the call.

- A bad ``data["_timeout_ms"]`` given to ``Pipeline.run`` / ``invoke`` / ``run_stage``
  (or held by the PipelineContext passed in) is a TypeError / ValueError naming the
  key before any stage runs; it used to fail the first stage, as a
  UnifiedStageExecutionError, after the run had started. Valid values behave as before.
- ``RetryInterceptor`` delays that ``trio.sleep`` cannot take (more than 10**300 ms)
  are refused at construction; they used to make every retry fail inside ``on_error``
  (logged) so the stage was never retried.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from stageflow_trio._engine._stage_call import _check_timeout_ms
from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.pipeline import UnifiedStageExecutionError
from stageflow_trio.pipeline.interceptors import LoggingInterceptor, TimeoutInterceptor
from stageflow_trio.pipeline.pipeline import Pipeline, run_stage
from stageflow_trio.pipeline.retry import MAX_DELAY_MS, RetryInterceptor
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.testing import RecordingEventSink

BAD_TYPES: list[Any] = ["2500", None, True, False, [2500], b"1", {"ms": 1}]
VALID: list[Any] = [2500, 0, -1, 2500.5, -0.5, math.inf, -math.inf, 10**12]


class Counter:
    """An async stage runner that counts its calls."""

    def __init__(self, sleep: float = 0.0) -> None:
        self.calls = 0
        self.sleep = sleep

    async def __call__(self, ctx: StageContext) -> StageOutput:
        self.calls += 1
        if self.sleep:
            await trio.sleep(self.sleep)
        return StageOutput.ok(n=self.calls)


def two_stages(runner: Counter) -> Pipeline:
    return (
        Pipeline("audit15")
        .with_stage("a", runner, StageKind.TRANSFORM)
        .with_stage("b", runner, StageKind.TRANSFORM, dependencies=("a",))
    )


# -- _timeout_ms at the call ------------------------------------------------------------


@pytest.mark.parametrize("value", BAD_TYPES, ids=repr)
async def test_bad_timeout_ms_type_fails_at_the_call(value: Any) -> None:
    runner = Counter()
    with pytest.raises(TypeError, match=r"data\['_timeout_ms'\] must be a number") as info:
        await two_stages(runner).run(data={"_timeout_ms": value})
    assert not isinstance(info.value, UnifiedStageExecutionError)
    assert type(value).__name__ in str(info.value)
    assert runner.calls == 0


async def test_nan_timeout_ms_fails_at_the_call() -> None:
    runner = Counter()
    with pytest.raises(ValueError, match=r"data\['_timeout_ms'\] must be .* not NaN"):
        await two_stages(runner).run(data={"_timeout_ms": math.nan})
    assert runner.calls == 0


async def test_bad_timeout_ms_fails_at_invoke_run_stage_and_with_a_context() -> None:
    runner = Counter()
    pipeline = two_stages(runner)
    with pytest.raises(TypeError, match="_timeout_ms"):
        await pipeline.invoke("hi", data={"_timeout_ms": "1s"})
    with pytest.raises(TypeError, match="_timeout_ms"):
        await run_stage("solo", runner, StageKind.TRANSFORM, data={"_timeout_ms": None})
    ctx = PipelineContext.create(topology="audit15", data={"_timeout_ms": "1s"})
    with pytest.raises(TypeError, match="_timeout_ms"):
        await pipeline.run(ctx)
    # A StageContext derived from that PipelineContext: the chain reads the same data.
    with pytest.raises(TypeError, match="_timeout_ms"):
        await pipeline.run(ctx.derive_root_stage_context())
    # Explicit chains with a TimeoutInterceptor check it too.
    with pytest.raises(ValueError, match="_timeout_ms"):
        await pipeline.run(
            data={"_timeout_ms": math.nan},
            interceptors=[TimeoutInterceptor(), LoggingInterceptor()],
        )
    assert runner.calls == 0


async def test_bad_timeout_ms_is_ignored_where_nothing_reads_it() -> None:
    runner = Counter()
    pipeline = two_stages(runner)
    # No chain, or a chain without a TimeoutInterceptor: the key is plain data, as before.
    results = await pipeline.run(data={"_timeout_ms": "1s"}, interceptors=[])
    assert list(results) == ["a", "b"]
    results = await pipeline.run(data={"_timeout_ms": None}, interceptors=[LoggingInterceptor()])
    assert list(results) == ["a", "b"]
    assert runner.calls == 4


@pytest.mark.parametrize("value", VALID, ids=repr)
async def test_valid_timeout_ms_values_run_as_before(
    value: Any, autojump_clock: trio.abc.Clock
) -> None:
    runner = Counter(sleep=1.0)
    results = await two_stages(runner).run(data={"_timeout_ms": value})
    assert [results[name].data["n"] for name in ("a", "b")] == [1, 2]


async def test_a_valid_timeout_still_times_the_stage_out(autojump_clock: trio.abc.Clock) -> None:
    runner = Counter(sleep=5.0)
    with pytest.raises(UnifiedStageExecutionError, match="Stage timed out after 1000ms"):
        await two_stages(runner).run(data={"_timeout_ms": 1000})
    assert runner.calls == 1


values = st.one_of(
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(max_size=3),
    st.lists(st.integers(), max_size=1),
)


@settings(max_examples=40, deadline=None)
@given(value=values)
def test_the_call_refuses_exactly_what_the_chain_would_refuse(value: Any) -> None:
    """Property: Pipeline.run rejects a value at the call iff the chain's check rejects it."""
    view = PipelineContext.create(data={"_timeout_ms": value})
    try:
        _check_timeout_ms("a", view, value)
        expected: type[Exception] | None = None
    except (TypeError, ValueError) as exc:
        expected = type(exc)

    async def main() -> None:
        runner = Counter()
        if expected is None:
            results = await two_stages(runner).run(data={"_timeout_ms": value})
            assert list(results) == ["a", "b"]
        else:
            with pytest.raises(expected, match=r"Pipeline\.run: data\['_timeout_ms'\]"):
                await two_stages(runner).run(data={"_timeout_ms": value})
            assert runner.calls == 0

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


# -- RetryInterceptor delay bounds --------------------------------------------------------


@pytest.mark.parametrize("param", ["base_delay_ms", "max_delay_ms"])
def test_retry_delays_trio_cannot_sleep_are_refused(param: str) -> None:
    with pytest.raises(ValueError, match=rf"{param} must be at most 10\*\*300"):
        RetryInterceptor(**{param: 10**400})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=rf"{param} must be at most 10\*\*300"):
        RetryInterceptor(**{param: MAX_DELAY_MS + 1})  # type: ignore[arg-type]


def test_the_largest_retry_delay_can_be_slept() -> None:
    retry = RetryInterceptor(
        base_delay_ms=MAX_DELAY_MS, max_delay_ms=MAX_DELAY_MS, jitter_strategy="none"
    )
    delay = retry._calculate_delay(100, None)
    assert delay == MAX_DELAY_MS
    assert math.isfinite(delay / 1000)


async def test_a_built_graph_still_names_the_key_when_the_stage_starts() -> None:
    """UnifiedStageGraph.run has no call-time check: the chain's check still applies."""
    runner = Counter()
    graph = two_stages(runner).build(interceptors=[TimeoutInterceptor()])
    ctx = PipelineContext.create(topology="audit15", data={"_timeout_ms": "2500"})
    with pytest.raises(UnifiedStageExecutionError) as caught:
        await graph.run(ctx)
    assert isinstance(caught.value.__cause__, TypeError)
    assert "Stage 'a': ctx.data['_timeout_ms'] must be a number" in str(caught.value.__cause__)
    assert runner.calls == 0


async def test_no_retry_is_scheduled_for_a_stage_whose_run_is_already_cancelled() -> None:
    # The stage fails after its run was cancelled (the Cancelled not delivered yet).
    # The cancelled scope's effective deadline is -inf, so the retry is refused as
    # past the deadline (no retry_scheduled, no sleep), and the stage's error is the
    # run's outcome: an error beats a cancellation (docs/events.md).
    sink = RecordingEventSink()
    calls = 0
    with trio.CancelScope() as outer:

        async def failing(ctx: StageContext) -> StageOutput:
            nonlocal calls
            calls += 1
            outer.cancel()
            raise ConnectionError("flaky")

        with pytest.raises(UnifiedStageExecutionError, match=r"^Stage 's' failed: flaky$"):
            await (
                Pipeline("p")
                .with_stage("s", failing, StageKind.WORK)
                .run(
                    interceptors=[RetryInterceptor(max_attempts=3, base_delay_ms=10)],
                    event_sink=sink,
                )
            )
    assert calls == 1
    types = sink.types()
    assert "stage.retry_scheduled" not in types
    [exhausted] = sink.of_type("stage.retry_exhausted")
    assert exhausted is not None
    assert exhausted["reason"] == "deadline"
    assert types[-1] == "pipeline_failed"
