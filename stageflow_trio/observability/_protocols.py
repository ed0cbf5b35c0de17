"""Observability back-end protocols, their no-op defaults and error summaries.

Public at :mod:`stageflow_trio.observability`: an application implements
:class:`PipelineRunLogger`, :class:`ProviderCallLogger` and
:class:`CircuitBreaker` for its own back end; the no-op implementations are
the defaults. Every no-op ``async def`` is a checkpoint.
"""

from __future__ import annotations

from typing import Any, Protocol
from uuid import UUID

import trio

from stageflow_trio.errors import StageflowError

_NIL_UUID = UUID(int=0)
_MESSAGE_LIMIT = 500


class PipelineRunLogger(Protocol):
    """Logs pipeline runs to an application's observability back end."""

    async def log_run_started(
        self,
        *,
        pipeline_run_id: UUID,
        pipeline_name: str,
        topology: str | None,
        execution_mode: str | None,
        user_id: UUID | None,
        **kwargs: Any,
    ) -> None:
        """A run started."""
        ...

    async def log_run_completed(
        self,
        *,
        pipeline_run_id: UUID,
        pipeline_name: str,
        duration_ms: int,
        status: str,
        stage_results: dict[str, Any],
        **kwargs: Any,
    ) -> None:
        """A run completed."""
        ...

    async def log_run_failed(
        self,
        *,
        pipeline_run_id: UUID,
        pipeline_name: str,
        error: str,
        stage: str | None,
        **kwargs: Any,
    ) -> None:
        """A run failed."""
        ...


class ProviderCallLogger(Protocol):
    """Logs calls to external providers (LLM, STT, TTS, ...) for cost and debugging."""

    async def log_call_start(
        self,
        *,
        operation: str,
        provider: str,
        model_id: str | None,
        **_context: Any,
    ) -> UUID:
        """A call started; returns its id."""
        ...

    async def log_call_end(
        self,
        call_id: UUID,
        *,
        success: bool,
        latency_ms: int,
        error: str | None = None,
        **metrics: Any,
    ) -> None:
        """The call ``call_id`` ended."""
        ...


class CircuitBreaker(Protocol):
    """Tracks provider failures and tells callers when to stop calling."""

    async def is_open(self, *, operation: str, provider: str) -> bool:
        """Whether calls to ``provider`` for ``operation`` should be refused."""
        ...

    async def record_success(self, *, operation: str, provider: str) -> None:
        """A call succeeded."""
        ...

    async def record_failure(self, *, operation: str, provider: str, reason: str) -> None:
        """A call failed."""
        ...


class CircuitBreakerOpenError(StageflowError):
    """A call was refused because the circuit is open: ``"Circuit breaker open for {operation}/{provider}"``."""

    def __init__(self, operation: str, provider: str) -> None:
        super().__init__(f"Circuit breaker open for {operation}/{provider}")
        self.operation: str = operation
        self.provider: str = provider


def summarize_pipeline_error(exc: Exception) -> dict[str, Any]:
    """``{"code", "type", "message", "retryable"}`` for logging ``exc``.

    ``code`` is ``"TIMEOUT"`` for a TimeoutError, ``"CIRCUIT_OPEN"`` when the
    message mentions a circuit breaker (both retryable), else ``"UNKNOWN"``;
    ``message`` is cut to 500 characters.
    """
    message = str(exc)
    code, retryable = "UNKNOWN", False
    if isinstance(exc, TimeoutError):
        code, retryable = "TIMEOUT", True
    elif "circuit breaker" in message.lower():
        code, retryable = "CIRCUIT_OPEN", True
    return {
        "code": code,
        "type": type(exc).__name__,
        "message": message[:_MESSAGE_LIMIT],
        "retryable": retryable,
    }


def error_summary_to_string(error_summary: dict[str, Any]) -> str:
    """``"{code}: {message}"`` (code ``UNKNOWN`` when missing), stripped."""
    code = error_summary.get("code") or "UNKNOWN"
    message = error_summary.get("message") or ""
    return f"{code}: {message}".strip()


def error_summary_to_stages_patch(error_summary: dict[str, Any]) -> dict[str, Any]:
    """``{"failure": {"error": error_summary}}``."""
    return {"failure": {"error": error_summary}}


class NoOpPipelineRunLogger:
    """A :class:`PipelineRunLogger` that records nothing."""

    async def log_run_started(self, **_kwargs: Any) -> None:
        """Nothing (a checkpoint)."""
        await trio.lowlevel.checkpoint()

    async def log_run_completed(self, **_kwargs: Any) -> None:
        """Nothing (a checkpoint)."""
        await trio.lowlevel.checkpoint()

    async def log_run_failed(self, **_kwargs: Any) -> None:
        """Nothing (a checkpoint)."""
        await trio.lowlevel.checkpoint()


class NoOpProviderCallLogger:
    """A :class:`ProviderCallLogger` that records nothing; every call id is the nil UUID."""

    async def log_call_start(self, **_kwargs: Any) -> UUID:
        """The nil UUID (a checkpoint)."""
        await trio.lowlevel.checkpoint()
        return _NIL_UUID

    async def log_call_end(self, call_id: UUID, **_kwargs: Any) -> None:  # noqa: ARG002
        """Nothing (a checkpoint)."""
        await trio.lowlevel.checkpoint()


class _NoOpCircuitBreaker:
    async def is_open(self, **_kwargs: Any) -> bool:
        await trio.lowlevel.checkpoint()
        return False

    async def record_success(self, **_kwargs: Any) -> None:
        await trio.lowlevel.checkpoint()

    async def record_failure(self, **_kwargs: Any) -> None:
        await trio.lowlevel.checkpoint()


pipeline_run_logger: PipelineRunLogger = NoOpPipelineRunLogger()
provider_call_logger: ProviderCallLogger = NoOpProviderCallLogger()


def get_circuit_breaker() -> CircuitBreaker:
    """A circuit breaker that is never open (a new no-op instance per call)."""
    return _NoOpCircuitBreaker()
