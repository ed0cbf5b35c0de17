"""Observability: the protocols an application implements, error summaries, tracing, wide events.

The library ships no logging back end: :class:`PipelineRunLogger`,
:class:`ProviderCallLogger` and :class:`CircuitBreaker` are the shapes an
application's own implementations take (Datadog, a database table, ...), and
the no-op implementations here stand in until it provides them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol
from uuid import UUID

import trio

from stageflow_trio._args import error_text, type_of
from stageflow_trio._errors import StageflowError
from stageflow_trio._lazy import lazy_exports

if TYPE_CHECKING:
    from .tracing import OTEL_AVAILABLE as OTEL_AVAILABLE
    from .tracing import NoOpSpan as NoOpSpan
    from .tracing import StageflowTracer as StageflowTracer
    from .tracing import TraceContext as TraceContext
    from .tracing import clear_correlation_id as clear_correlation_id
    from .tracing import ensure_correlation_id as ensure_correlation_id
    from .tracing import get_correlation_id as get_correlation_id
    from .tracing import get_span_id as get_span_id
    from .tracing import get_trace_context_dict as get_trace_context_dict
    from .tracing import get_trace_id as get_trace_id
    from .tracing import set_correlation_id as set_correlation_id
    from .wide_events import WideEventEmitter as WideEventEmitter
    from .wide_events import emit_pipeline_wide_event as emit_pipeline_wide_event
    from .wide_events import emit_stage_wide_event as emit_stage_wide_event

_MESSAGE_LIMIT: Final = 500
_NIL_UUID: Final = UUID(int=0)


class PipelineRunLogger(Protocol):
    """Logs the start and the end of pipeline runs to the application's back end."""

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
        """A run ended with ``status``."""
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
        """A run failed, in ``stage`` when known."""
        ...


class ProviderCallLogger(Protocol):
    """Logs calls to external providers (LLM, STT, TTS, ...) for cost tracking and debugging."""

    async def log_call_start(
        self,
        *,
        operation: str,
        provider: str,
        model_id: str | None,
        **_context: Any,
    ) -> UUID:
        """A call started; returns the id that :meth:`log_call_end` takes."""
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
        """Call ``call_id`` ended."""
        ...


class CircuitBreaker(Protocol):
    """Stops calls to an (operation, provider) pair that keeps failing.

    An application implements it (:func:`get_circuit_breaker` returns one that
    never opens); read time from ``trio.current_time()`` so tests can drive
    the open period with ``trio.testing.MockClock``.
    """

    async def is_open(self, *, operation: str, provider: str) -> bool:
        """Whether calls to the pair should be refused now."""
        ...

    async def record_success(self, *, operation: str, provider: str) -> None:
        """A call to the pair succeeded."""
        ...

    async def record_failure(self, *, operation: str, provider: str, reason: str) -> None:
        """A call to the pair failed because of ``reason``."""
        ...


class CircuitBreakerOpenError(StageflowError):
    """A call was refused because the breaker of its (operation, provider) pair is open.

    Attributes:
        operation: The refused operation.
        provider: Its provider.
    """

    def __init__(self, operation: str, provider: str) -> None:
        super().__init__(f"Circuit breaker open for {operation}/{provider}")
        self.operation = operation
        self.provider = provider

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.operation, self.provider))


def summarize_pipeline_error(exc: BaseException) -> dict[str, Any]:
    """A small dict describing ``exc`` for logs and run records.

    Returns:
        ``code`` (``"TIMEOUT"`` for a ``TimeoutError`` or ``trio.TooSlowError``, also
        one a graph error wraps (its ``original`` or ``__cause__``), and the error a
        graph raises for a stage the interceptor chain timed out (its message
        carries the chain's "Stage timed out after <ms>ms");
        ``"CIRCUIT_OPEN"`` when the message mentions a circuit breaker, else
        ``"UNKNOWN"``), ``type`` (the class name), ``message`` (``str(exc)``, or a placeholder if that raises,
        at most 500 characters) and ``retryable`` (True for the two known codes).

    Raises:
        TypeError: ``exc`` is not an exception.
    """
    if not isinstance(exc, BaseException):
        raise TypeError(f"summarize_pipeline_error: exc must be an exception; got {type_of(exc)}")
    message = error_text(exc)
    code = "UNKNOWN"
    retryable = False
    # Imported here: importing the observability package does not load the engine.
    from stageflow_trio._engine._stage_call import TIMEOUT_TEXT

    if _timed_out(exc) or TIMEOUT_TEXT.search(message):
        code = "TIMEOUT"
        retryable = True
    elif "circuit breaker" in message.lower():
        code = "CIRCUIT_OPEN"
        retryable = True
    return {
        "code": code,
        "type": type(exc).__name__,
        "message": message[:_MESSAGE_LIMIT],
        "retryable": retryable,
    }


def _timed_out(exc: BaseException) -> bool:
    """Whether ``exc``, or an exception it wraps, is a timeout.

    A stage's timeout reaches the caller of a graph's ``run`` wrapped (for
    example in ``UnifiedStageExecutionError``, whose ``original`` it is, or as the
    ``__cause__``), which the reference summarized as ``UNKNOWN``, not retryable.
    The chain is followed a few links at most, and never round a cycle.
    """
    current: BaseException | None = exc
    seen: set[int] = set()
    while current is not None and id(current) not in seen and len(seen) < 8:
        if isinstance(current, TimeoutError | trio.TooSlowError):
            return True
        seen.add(id(current))
        try:
            original = getattr(current, "original", None)
        except Exception:  # noqa: BLE001 - a broken property must not fail the summary
            original = None
        current = original if isinstance(original, BaseException) else current.__cause__
    return False


def _check_summary(owner: str, error_summary: object) -> None:
    if not isinstance(error_summary, Mapping):
        raise TypeError(f"{owner}: error_summary must be a mapping; got {type_of(error_summary)}")


def error_summary_to_string(error_summary: Mapping[str, Any]) -> str:
    """``"CODE: message"``, stripped; a missing or empty code reads ``UNKNOWN``.

    Raises:
        TypeError: ``error_summary`` is not a mapping.
    """
    _check_summary("error_summary_to_string", error_summary)
    code = error_summary.get("code") or "UNKNOWN"
    message = error_summary.get("message") or ""
    return f"{code}: {message}".strip()


def error_summary_to_stages_patch(error_summary: Mapping[str, Any]) -> dict[str, Any]:
    """``{"failure": {"error": error_summary}}`` (the summary itself, not a copy).

    Raises:
        TypeError: ``error_summary`` is not a mapping.
    """
    _check_summary("error_summary_to_stages_patch", error_summary)
    return {"failure": {"error": error_summary}}


class NoOpPipelineRunLogger:
    """A :class:`PipelineRunLogger` that logs nothing; each call is a checkpoint."""

    async def log_run_started(self, **_kwargs: Any) -> None:
        """Nothing is logged."""
        await trio.lowlevel.checkpoint()

    async def log_run_completed(self, **_kwargs: Any) -> None:
        """Nothing is logged."""
        await trio.lowlevel.checkpoint()

    async def log_run_failed(self, **_kwargs: Any) -> None:
        """Nothing is logged."""
        await trio.lowlevel.checkpoint()


class NoOpProviderCallLogger:
    """A :class:`ProviderCallLogger` that logs nothing; each call is a checkpoint."""

    async def log_call_start(self, **_kwargs: Any) -> UUID:
        """Nothing is logged; returns the nil UUID ``00000000-0000-0000-0000-000000000000``."""
        await trio.lowlevel.checkpoint()
        return _NIL_UUID

    async def log_call_end(self, call_id: UUID, **_kwargs: Any) -> None:
        """Nothing is logged."""
        _ = call_id
        await trio.lowlevel.checkpoint()


class _NoOpCircuitBreaker:
    """The breaker :func:`get_circuit_breaker` returns: never open, keeps no state."""

    async def is_open(self, **_kwargs: Any) -> bool:
        await trio.lowlevel.checkpoint()
        return False

    async def record_success(self, **_kwargs: Any) -> None:
        await trio.lowlevel.checkpoint()

    async def record_failure(self, **_kwargs: Any) -> None:
        await trio.lowlevel.checkpoint()


pipeline_run_logger: PipelineRunLogger = NoOpPipelineRunLogger()
"""The default run logger: a :class:`NoOpPipelineRunLogger`."""

provider_call_logger: ProviderCallLogger = NoOpProviderCallLogger()
"""The default provider call logger: a :class:`NoOpProviderCallLogger`."""


def get_circuit_breaker() -> CircuitBreaker:
    """A circuit breaker that never opens (a new one per call; it keeps no state).

    Each of its methods accepts any keyword arguments and is a checkpoint.
    """
    return _NoOpCircuitBreaker()


__all__ = [
    "OTEL_AVAILABLE",
    "CircuitBreaker",
    "CircuitBreakerOpenError",
    "NoOpPipelineRunLogger",
    "NoOpProviderCallLogger",
    "NoOpSpan",
    "PipelineRunLogger",
    "ProviderCallLogger",
    "StageflowTracer",
    "TraceContext",
    "WideEventEmitter",
    "clear_correlation_id",
    "emit_pipeline_wide_event",
    "emit_stage_wide_event",
    "ensure_correlation_id",
    "error_summary_to_stages_patch",
    "error_summary_to_string",
    "get_circuit_breaker",
    "get_correlation_id",
    "get_span_id",
    "get_trace_context_dict",
    "get_trace_id",
    "pipeline_run_logger",
    "provider_call_logger",
    "set_correlation_id",
    "summarize_pipeline_error",
]

# Tracing and wide events load on first use: the engine imports only what it runs.
# Hidden from type checkers, which read the imports above: a visible module
# __getattr__ would make every misspelt name `Any` instead of an error.
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            ".tracing": (
                "OTEL_AVAILABLE NoOpSpan StageflowTracer TraceContext clear_correlation_id "
                "ensure_correlation_id get_correlation_id get_span_id get_trace_context_dict "
                "get_trace_id set_correlation_id"
            ),
            ".wide_events": "WideEventEmitter emit_pipeline_wide_event emit_stage_wide_event",
        },
    )
