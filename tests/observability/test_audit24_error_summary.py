"""Audit 24: ``summarize_pipeline_error`` on the errors a graph run really raises.

The reference's error guide summarizes the exception caught around ``graph.run`` and
shows ``"code": "TIMEOUT"`` for a stage that ran past the chain's timeout. On both
libraries the graph raises ``UnifiedStageExecutionError`` there, which the reference
summarizes as ``UNKNOWN`` and not retryable. Ours reads the timeout through the
wrapper (its ``original``, its ``__cause__``, or the chain's timeout message).
"""

from __future__ import annotations

import logging

import pytest
import stageflow.observability as reference
import trio

from stageflow_trio import Pipeline, StageKind, StageOutput
from stageflow_trio.observability import summarize_pipeline_error
from stageflow_trio.pipeline.dag import UnifiedStageExecutionError
from stageflow_trio.pipeline.interceptors import get_default_interceptors
from stageflow_trio.testing import create_test_stage_context


class _Slow:
    name = "slow"
    kind = StageKind.WORK

    async def execute(self, ctx: object) -> StageOutput:
        await trio.sleep(60)
        return StageOutput.ok()


async def test_a_stage_timed_out_by_the_chain_is_summarized_as_a_timeout(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.CRITICAL)
    graph = (
        Pipeline()
        .with_stage("slow", _Slow, StageKind.WORK)
        .build(interceptors=get_default_interceptors())
    )
    with pytest.raises(UnifiedStageExecutionError) as caught:
        await graph.run(create_test_stage_context())
    assert trio.current_time() == pytest.approx(30.0)  # the chain's default 30 s
    assert summarize_pipeline_error(caught.value) == {
        "code": "TIMEOUT",
        "type": "UnifiedStageExecutionError",
        "message": "Stage 'slow' failed: Stage timed out after 30000ms",
        "retryable": True,
    }
    # The reference's summary of the same error (its graph raises it the same way).
    assert reference.summarize_pipeline_error(caught.value)["code"] == "UNKNOWN"


@pytest.mark.parametrize(
    "make",
    [
        lambda: UnifiedStageExecutionError("s", TimeoutError()),
        lambda: UnifiedStageExecutionError("s", trio.TooSlowError()),
        lambda: UnifiedStageExecutionError("s", RuntimeError("Stage timed out after 1500.5ms")),
    ],
    ids=["original-timeout", "original-too-slow", "chain-message"],
)
def test_a_wrapped_timeout_is_a_timeout(make: object) -> None:
    summary = summarize_pipeline_error(make())  # type: ignore[operator]
    assert summary["code"] == "TIMEOUT"
    assert summary["retryable"] is True
    assert summary["type"] == "UnifiedStageExecutionError"


def _lookup() -> None:
    try:
        raise TimeoutError("socket")
    except TimeoutError as inner:
        raise ValueError("lookup failed") from inner


def test_a_timeout_in_the_cause_chain_is_a_timeout() -> None:
    with pytest.raises(ValueError, match=r"^lookup failed$") as caught:
        _lookup()
    assert summarize_pipeline_error(caught.value)["code"] == "TIMEOUT"


@pytest.mark.parametrize(
    "message",
    ["the request timed out", "Stage timed out after soon", "stage timed out after 5ms"],
)
def test_other_timeout_wording_is_not_guessed(message: str) -> None:
    # Only the chain's own message counts; prose about a timeout does not.
    assert summarize_pipeline_error(RuntimeError(message))["code"] == "UNKNOWN"


def test_a_cyclic_cause_chain_ends() -> None:
    first = ValueError("a")
    second = KeyError("b")
    first.__cause__ = second
    second.__cause__ = first
    assert summarize_pipeline_error(first)["code"] == "UNKNOWN"


def test_a_long_cause_chain_is_followed_a_few_links_only() -> None:
    # Eight links are read: a timeout further down is not looked for.
    deep: BaseException = TimeoutError()
    for n in range(8):
        wrapper = RuntimeError(f"level {n}")
        wrapper.__cause__ = deep
        deep = wrapper
    assert summarize_pipeline_error(deep)["code"] == "UNKNOWN"
    assert summarize_pipeline_error(deep.__cause__)["code"] == "TIMEOUT"  # type: ignore[arg-type]


def test_an_original_property_that_raises_does_not_fail_the_summary() -> None:
    class Odd(Exception):
        @property
        def original(self) -> BaseException:
            raise RuntimeError("broken property")

    odd = Odd("outer")
    odd.__cause__ = TimeoutError()
    summary = summarize_pipeline_error(odd)
    assert summary["code"] == "TIMEOUT"  # the cause is still read
    assert summary["message"] == "outer"
