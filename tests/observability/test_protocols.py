"""The observability protocols, their no-op defaults and the error summaries (vs the reference)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any
from uuid import UUID

import pytest
import trio
import trio.testing

import stageflow_trio
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

if TYPE_CHECKING:
    from types import ModuleType


@pytest.fixture
def ref_obs(reference: ModuleType) -> ModuleType:
    return importlib.import_module("stageflow.observability")


ERRORS: list[Exception] = [
    TimeoutError("slow"),
    trio.TooSlowError(),
    RuntimeError("Circuit Breaker open for x/y"),
    CircuitBreakerOpenError("chat", "openai"),
    ValueError("x" * 600),
    KeyError("k"),
]


@pytest.mark.parametrize("error", ERRORS, ids=repr)
def test_summaries_match_the_reference(ref_obs: ModuleType, error: Exception) -> None:
    ours = summarize_pipeline_error(error)
    assert ours == ref_obs.summarize_pipeline_error(error)
    assert error_summary_to_string(ours) == ref_obs.error_summary_to_string(ours)
    assert error_summary_to_stages_patch(ours) == {"failure": {"error": ours}}


def test_summary_examples() -> None:
    assert summarize_pipeline_error(TimeoutError("slow")) == {
        "code": "TIMEOUT",
        "type": "TimeoutError",
        "message": "slow",
        "retryable": True,
    }
    assert len(summarize_pipeline_error(ValueError("x" * 600))["message"]) == 500
    assert error_summary_to_string({}) == "UNKNOWN:"
    assert error_summary_to_string({"code": "C", "message": "m"}) == "C: m"


def test_circuit_breaker_open_error(ref_obs: ModuleType) -> None:
    error = CircuitBreakerOpenError("chat", "openai")
    assert str(error) == str(ref_obs.CircuitBreakerOpenError("chat", "openai"))
    assert str(error) == "Circuit breaker open for chat/openai"
    assert (error.operation, error.provider) == ("chat", "openai")
    assert isinstance(error, StageflowError)


async def test_noop_implementations_are_checkpoints() -> None:
    breaker: CircuitBreaker = get_circuit_breaker()
    with trio.testing.assert_checkpoints():
        assert await breaker.is_open(operation="o", provider="p") is False
    with trio.testing.assert_checkpoints():
        await breaker.record_success(operation="o", provider="p")
    with trio.testing.assert_checkpoints():
        await breaker.record_failure(operation="o", provider="p", reason="r")
    runs: PipelineRunLogger = NoOpPipelineRunLogger()
    for call in (runs.log_run_started, runs.log_run_completed, runs.log_run_failed):
        with trio.testing.assert_checkpoints():
            await call(pipeline_run_id=UUID(int=1))  # type: ignore[call-arg]
    calls: ProviderCallLogger = NoOpProviderCallLogger()
    with trio.testing.assert_checkpoints():
        call_id = await calls.log_call_start(operation="o", provider="p", model_id=None)
    assert call_id == UUID(int=0)
    with trio.testing.assert_checkpoints():
        await calls.log_call_end(call_id, success=True, latency_ms=1)


def test_defaults_and_top_level_names(ref_obs: ModuleType) -> None:
    assert isinstance(pipeline_run_logger, NoOpPipelineRunLogger)
    assert isinstance(provider_call_logger, NoOpProviderCallLogger)
    assert get_circuit_breaker() is not get_circuit_breaker()
    for name in ("CircuitBreaker", "PipelineRunLogger", "summarize_pipeline_error"):
        assert getattr(stageflow_trio, name) is getattr(stageflow_trio.observability, name)


def test_protocol_signatures_match_the_reference(ref_obs: ModuleType) -> None:
    import inspect

    def shape(cls: Any) -> dict[str, list[tuple[str, Any, Any]]]:
        return {
            name: [
                (p.name, p.kind, p.default)
                for p in inspect.signature(getattr(cls, name)).parameters.values()
            ]
            for name in dir(cls)
            if not name.startswith("_")
        }

    for name in ("PipelineRunLogger", "ProviderCallLogger", "CircuitBreaker"):
        assert shape(getattr(stageflow_trio.observability, name)) == shape(getattr(ref_obs, name))
