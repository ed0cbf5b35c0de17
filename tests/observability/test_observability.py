"""The observability package: error summaries, the breaker error, the protocols' no-op defaults."""

from __future__ import annotations

import pickle
import uuid
from types import ModuleType
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

import stageflow_trio
from stageflow_trio import observability
from stageflow_trio.errors import StageflowError
from stageflow_trio.observability import (
    CircuitBreaker,
    CircuitBreakerOpenError,
    NoOpPipelineRunLogger,
    NoOpProviderCallLogger,
    PipelineRunLogger,
    ProviderCallLogger,
    error_summary_to_stages_patch,
    error_summary_to_string,
    get_circuit_breaker,
    pipeline_run_logger,
    provider_call_logger,
    summarize_pipeline_error,
)

NIL = uuid.UUID("00000000-0000-0000-0000-000000000000")


# --- summarize_pipeline_error ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "summary"),
    [
        (
            TimeoutError("slow"),
            {"code": "TIMEOUT", "type": "TimeoutError", "message": "slow", "retryable": True},
        ),
        (
            trio.TooSlowError(),
            {"code": "TIMEOUT", "type": "TooSlowError", "message": "", "retryable": True},
        ),
        (
            CircuitBreakerOpenError("llm", "openai"),
            {
                "code": "CIRCUIT_OPEN",
                "type": "CircuitBreakerOpenError",
                "message": "Circuit breaker open for llm/openai",
                "retryable": True,
            },
        ),
        (
            RuntimeError("the CIRCUIT BREAKER tripped"),
            {
                "code": "CIRCUIT_OPEN",
                "type": "RuntimeError",
                "message": "the CIRCUIT BREAKER tripped",
                "retryable": True,
            },
        ),
        (
            ValueError("bad"),
            {"code": "UNKNOWN", "type": "ValueError", "message": "bad", "retryable": False},
        ),
        (
            KeyboardInterrupt(),
            {"code": "UNKNOWN", "type": "KeyboardInterrupt", "message": "", "retryable": False},
        ),
    ],
)
def test_summarize_pipeline_error(exc: BaseException, summary: dict[str, Any]) -> None:
    assert summarize_pipeline_error(exc) == summary


def test_a_summary_keeps_500_characters_of_the_message() -> None:
    summary = summarize_pipeline_error(RuntimeError("x" * 499 + "yz"))
    assert summary["message"] == "x" * 499 + "y"


def test_summarize_needs_an_exception() -> None:
    with pytest.raises(
        TypeError, match=r"^summarize_pipeline_error: exc must be an exception; got str$"
    ):
        summarize_pipeline_error("boom")  # type: ignore[arg-type]


EXCEPTION_TYPES = st.sampled_from([RuntimeError, ValueError, TimeoutError, KeyError, OSError])
MESSAGES = st.one_of(
    st.text(max_size=600),
    st.sampled_from(["circuit breaker open", "Circuit Breaker open for a/b", ""]),
)


@pytest.mark.usefixtures("reference")
@given(exc_type=EXCEPTION_TYPES, message=MESSAGES)
def test_summaries_match_the_reference(exc_type: type[Exception], message: str) -> None:
    from stageflow.observability import (
        error_summary_to_stages_patch as ref_patch,
    )
    from stageflow.observability import (
        error_summary_to_string as ref_to_string,
    )
    from stageflow.observability import (
        summarize_pipeline_error as ref_summarize,
    )

    exc = exc_type(message)
    ours = summarize_pipeline_error(exc)
    assert ours == ref_summarize(exc)
    assert error_summary_to_string(ours) == ref_to_string(ours)
    assert error_summary_to_stages_patch(ours) == ref_patch(ours)


# --- error_summary_to_string / error_summary_to_stages_patch -------------------------------


@pytest.mark.parametrize(
    ("summary", "text"),
    [
        ({"code": "TIMEOUT", "message": "slow"}, "TIMEOUT: slow"),
        ({"message": "  padded  "}, "UNKNOWN:   padded"),
        ({"code": "", "message": None}, "UNKNOWN:"),
        ({}, "UNKNOWN:"),
        ({"code": 42, "message": "n"}, "42: n"),
    ],
)
def test_error_summary_to_string(summary: dict[str, Any], text: str) -> None:
    assert error_summary_to_string(summary) == text


def test_error_summary_to_string_matches_the_reference(reference: ModuleType) -> None:
    for summary in ({"code": "", "message": None}, {}, {"code": 42, "message": " n "}):
        assert error_summary_to_string(summary) == (
            reference.observability.error_summary_to_string(summary)
        )


def test_stages_patch_wraps_the_summary_itself() -> None:
    summary = {"code": "UNKNOWN"}
    patch = error_summary_to_stages_patch(summary)
    assert patch == {"failure": {"error": {"code": "UNKNOWN"}}}
    assert patch["failure"]["error"] is summary


@pytest.mark.parametrize(
    "function", [error_summary_to_string, error_summary_to_stages_patch], ids=lambda f: f.__name__
)
def test_summary_helpers_need_a_mapping(function: Any) -> None:
    with pytest.raises(
        TypeError, match=rf"^{function.__name__}: error_summary must be a mapping; got list$"
    ):
        function([("code", "X")])


# --- CircuitBreakerOpenError ----------------------------------------------------------------


def test_circuit_breaker_open_error(reference: ModuleType) -> None:
    error = CircuitBreakerOpenError("stt", "deepgram")
    assert str(error) == "Circuit breaker open for stt/deepgram"
    assert (error.operation, error.provider) == ("stt", "deepgram")
    assert isinstance(error, StageflowError)
    again = pickle.loads(pickle.dumps(error))
    assert (type(again), str(again), again.operation) == (
        CircuitBreakerOpenError,
        str(error),
        "stt",
    )
    assert str(error) == str(reference.observability.CircuitBreakerOpenError("stt", "deepgram"))


# --- the no-op loggers and breaker ----------------------------------------------------------


async def test_no_op_run_logger_accepts_anything_and_checkpoints() -> None:
    logger: PipelineRunLogger = NoOpPipelineRunLogger()
    run_id = uuid.uuid4()
    with trio.testing.assert_checkpoints():
        await logger.log_run_started(
            pipeline_run_id=run_id,
            pipeline_name="p",
            topology=None,
            execution_mode=None,
            user_id=None,
        )
    with trio.testing.assert_checkpoints():
        await logger.log_run_completed(
            pipeline_run_id=run_id,
            pipeline_name="p",
            duration_ms=1,
            status="completed",
            stage_results={},
            extra=1,
        )
    with trio.testing.assert_checkpoints():
        await logger.log_run_failed(
            pipeline_run_id=run_id, pipeline_name="p", error="e", stage=None
        )


async def test_no_op_provider_logger_returns_the_nil_uuid(reference: ModuleType) -> None:
    logger: ProviderCallLogger = NoOpProviderCallLogger()
    with trio.testing.assert_checkpoints():
        call_id = await logger.log_call_start(operation="llm", provider="x", model_id=None)
    assert call_id == NIL
    with trio.testing.assert_checkpoints():
        await logger.log_call_end(call_id, success=True, latency_ms=3, tokens=10)
    with trio.testing.assert_checkpoints():
        await NoOpProviderCallLogger().log_call_end(call_id=call_id)
    ref_logger = reference.observability.NoOpProviderCallLogger()
    assert call_id == _drive(ref_logger.log_call_start(operation="llm"))


def _drive(coroutine: Any) -> Any:
    """The result of a reference coroutine that never suspends."""
    with pytest.raises(StopIteration) as done:
        coroutine.send(None)
    return done.value.value


def test_the_default_loggers_are_no_ops() -> None:
    assert type(pipeline_run_logger) is NoOpPipelineRunLogger
    assert type(provider_call_logger) is NoOpProviderCallLogger


async def test_the_default_breaker_never_opens() -> None:
    breaker: CircuitBreaker = get_circuit_breaker()
    for _ in range(10):
        with trio.testing.assert_checkpoints():
            await breaker.record_failure(operation="llm", provider="x", reason="down")
    with trio.testing.assert_checkpoints():
        assert await breaker.is_open(operation="llm", provider="x") is False
    with trio.testing.assert_checkpoints():
        await breaker.record_success(operation="llm", provider="x")
    assert get_circuit_breaker() is not breaker  # a new stateless one per call


async def test_the_default_breaker_is_shared_safely_by_concurrent_tasks(
    autojump_clock: trio.abc.Clock,
) -> None:
    breaker = get_circuit_breaker()
    answers: list[bool] = []

    async def caller(n: int) -> None:
        await trio.sleep(n)
        await breaker.record_failure(operation="op", provider=str(n % 2), reason="r")
        answers.append(await breaker.is_open(operation="op", provider=str(n % 2)))

    async with trio.open_nursery() as nursery:
        for n in range(6):
            nursery.start_soon(caller, n)
    assert answers == [False] * 6
    assert trio.current_time() == 5


def test_the_package_names(reference: ModuleType) -> None:
    assert sorted(observability.__all__) == sorted(reference.observability.__all__)
    ref_top = set(reference.__all__)
    ours_top = set(stageflow_trio.__all__)
    for name in observability.__all__:
        if name in ref_top:
            assert name in ours_top, name
            assert getattr(stageflow_trio, name) is getattr(observability, name)
