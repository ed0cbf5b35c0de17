"""Error handling for legacy stages: logging helpers, a decorator and :class:`StageRunner`.

The logging helpers write one ERROR record (with the traceback) and a fixed
set of ``extra`` fields to a named logger. :func:`with_error_handling` and
:class:`StageRunner` run a legacy stage's work, emit its ``stage.{name}.failed``
event through the :class:`~stageflow_trio.stages.context.PipelineContext` and
wrap unexpected exceptions in
:class:`~stageflow_trio.pipeline.dag.StageExecutionError`. ``trio.Cancelled``
(a BaseException) is never caught.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ParamSpec

import attrs
import trio

from stageflow_trio._args import error_text, type_of
from stageflow_trio._time import ended_at, monotonic, utc_now
from stageflow_trio.stages._execution_error import StageExecutionError
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.stages.result import StageError, StageResult

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = [
    "StageRunner",
    "_is_recoverable_error",
    "create_error_context",
    "handle_async_task_error",
    "handle_provider_error",
    "log_debug_failure",
    "log_stage_error",
    "safe_debug_log",
    "with_error_handling",
]

logger: logging.Logger = logging.getLogger("stageflow_trio.stage_errors")

_P = ParamSpec("_P")

# The loggers the helpers write to: the reference's names, under the package's.
_PIPELINE_ERROR_LOGGER = "stageflow_trio.pipeline_error"
_DEBUG_LOGGER = "stageflow_trio.debug_operations"
_PROVIDER_LOGGER = "stageflow_trio.provider_error"
_TASK_LOGGER = "stageflow_trio.async_tasks"


def _id(value: object) -> str | None:
    return str(value) if value else None


# What a LogRecord already has: logging refuses an ``extra`` key among them (KeyError
# "Attempt to overwrite ..."), and "message" / "asctime" are set by formatting.
_RECORD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("n", logging.INFO, "p", 0, "m", (), None))
) | {"message", "asctime"}


def _add_context(owner: str, extra: dict[str, Any], context: dict[str, Any]) -> None:
    """``extra.update(context)``, a key a LogRecord already has going in as ``context_<key>``.

    The caller's context is free-form: ``{"name": ...}`` must not turn the record being
    written into a KeyError (raised from an error handler, in place of the error).

    Raises:
        TypeError: ``context`` is not a mapping.
    """
    if not isinstance(context, Mapping):
        raise TypeError(f"{owner} must be a dict or None; got {type_of(context)}")
    for key, value in context.items():
        extra[f"context_{key}" if key in _RECORD_ATTRIBUTES else key] = value


def _error_fields(error: Exception) -> dict[str, Any]:
    return {"error_type": type(error).__name__, "error_message": error_text(error)}


def log_stage_error(
    stage_name: str,
    error: Exception,
    ctx: PipelineContext | None = None,
    stage_logger: logging.Logger | None = None,
    additional_context: dict[str, Any] | None = None,
) -> None:
    """Log that ``stage_name`` failed with ``error``, with the run's ids from ``ctx``.

    The record goes to ``stage_logger`` (default ``stageflow_trio.pipeline_error``);
    its extras are ``service``, ``stage``, ``error_type``, ``error_message``, the
    five ids of ``ctx`` (strings or None) and ``additional_context`` (a key a log
    record already has, such as ``name`` or ``message``, as ``context_<key>``).
    """
    extra: dict[str, Any] = {"service": "pipeline", "stage": stage_name, **_error_fields(error)}
    if ctx:
        extra.update(
            pipeline_run_id=_id(ctx.pipeline_run_id),
            request_id=_id(ctx.request_id),
            session_id=_id(ctx.session_id),
            user_id=_id(ctx.user_id),
            org_id=_id(ctx.org_id),
        )
    if additional_context:
        _add_context("log_stage_error: additional_context", extra, additional_context)
    (stage_logger or logging.getLogger(_PIPELINE_ERROR_LOGGER)).error(
        "Stage %s failed: %s", stage_name, error, extra=extra, exc_info=error
    )


def log_debug_failure(
    operation: str, error: Exception, context: dict[str, Any] | None = None
) -> None:
    """Log that a debug ``operation`` failed (logger ``stageflow_trio.debug_operations``)."""
    extra: dict[str, Any] = {"service": "debug", "operation": operation, **_error_fields(error)}
    if context:
        _add_context("log_debug_failure: context", extra, context)
    logging.getLogger(_DEBUG_LOGGER).error(
        "Debug operation failed: %s", operation, extra=extra, exc_info=error
    )


def safe_debug_log(operation: str, log_func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Call ``log_func(*args, **kwargs)``; an Exception it raises is logged with :func:`log_debug_failure`."""
    try:
        log_func(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - a failing debug log must not break the caller
        log_debug_failure(operation, exc)


def handle_provider_error(
    provider_name: str,
    operation: str,
    error: Exception,
    ctx: PipelineContext | None = None,
) -> None:
    """Log a provider's error (logger ``stageflow_trio.provider_error``), with three ids of ``ctx``."""
    extra: dict[str, Any] = {
        "service": "provider",
        "provider": provider_name,
        "operation": operation,
        **_error_fields(error),
    }
    if ctx:
        extra.update(
            pipeline_run_id=_id(ctx.pipeline_run_id),
            request_id=_id(ctx.request_id),
            session_id=_id(ctx.session_id),
        )
    logging.getLogger(_PROVIDER_LOGGER).error(
        "Provider %s error during %s: %s",
        provider_name,
        operation,
        error,
        extra=extra,
        exc_info=error,
    )


def handle_async_task_error(
    task_name: str,
    error: Exception,
    context: dict[str, Any] | None = None,
) -> None:
    """Log a background task's error (logger ``stageflow_trio.async_tasks``)."""
    extra: dict[str, Any] = {
        "service": "async_tasks",
        "task_name": task_name,
        **_error_fields(error),
    }
    if context:
        _add_context("handle_async_task_error: context", extra, context)
    logging.getLogger(_TASK_LOGGER).error(
        "Background task '%s' failed: %s", task_name, error, extra=extra, exc_info=error
    )


def create_error_context(**kwargs: Any) -> dict[str, Any]:
    """``{"error_timestamp": time.time(), **kwargs}``."""
    return {"error_timestamp": time.time(), **kwargs}


def _is_recoverable_error(error: Exception) -> bool:
    """Whether ``error`` looks transient: a network-ish message or a connection/timeout/HTTP error type."""
    message = error_text(error).lower()
    type_name = type(error).__name__.lower()
    return any(
        keyword in message
        for keyword in ("connection", "timeout", "network", "disconnected", "server disconnected")
    ) or type_name in ("connectionerror", "timeouterror", "httperror")


def _find_context(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    # The first PipelineContext argument, else whatever ctx= is (duck-typed, as the reference).
    for arg in args:
        if isinstance(arg, PipelineContext):
            return arg
    return kwargs.get("ctx")


def with_error_handling(
    stage_name: str,
    error_message: str | None = None,
    record_payload_fn: Callable[[Exception, dict[str, Any]], dict[str, Any]] | None = None,
) -> Callable[[Callable[_P, Awaitable[Any]]], Callable[_P, Awaitable[StageResult]]]:
    """Decorate a legacy stage's async ``run`` with consistent error handling.

    The wrapped function's StageResult gets fresh ``started_at``/``ended_at``
    (``ended_at - started_at`` is the call's time on trio's clock, as in the
    graphs' results);
    a dict becomes the ``data`` of a completed StageResult (anything else, empty
    data). A :class:`~stageflow_trio.stages.result.StageError` is logged as a
    warning, recorded as ``stage.{stage_name}.failed`` (payload ``error`` plus
    ``record_payload_fn(exc, payload)``) on the PipelineContext found among the
    arguments (or ``ctx=``), and re-raised; any other Exception is logged,
    recorded with ``error_type`` too, and raised as a StageExecutionError
    (``recoverable`` per :func:`_is_recoverable_error`) chained to it. The
    wrapper is a checkpoint, also when the function raises without yielding.
    It keeps the function's parameters for type checkers (only the return
    type becomes ``Awaitable[StageResult]``).

    Example::

        class Summarize:
            @with_error_handling(stage_name="summarize", error_message="Summary failed")
            async def run(self, ctx: PipelineContext) -> StageResult: ...
    """

    def decorator(func: Callable[_P, Awaitable[Any]]) -> Callable[_P, Awaitable[StageResult]]:
        @functools.wraps(func)
        async def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> StageResult:
            ctx = _find_context(args, kwargs)
            started_at = utc_now()
            started = monotonic()
            try:
                result = await func(*args, **kwargs)
                # The stage may have returned without yielding; the wrapper still checkpoints.
                await trio.lowlevel.checkpoint()
            except StageError as exc:
                # A checkpoint on the error paths too (the stage may raise without yielding).
                await trio.lowlevel.checkpoint()
                text = error_text(exc)  # the stage's error stays the error raised
                logger.warning(
                    text or error_message or f"{stage_name} error",
                    extra={"service": "stage", "stage": stage_name, "error": text},
                )
                if ctx:
                    payload: dict[str, Any] = {"error": text}
                    if record_payload_fn:
                        payload.update(record_payload_fn(exc, payload))
                    ctx.record_stage_event(stage=stage_name, status="failed", payload=payload)
                raise
            except Exception as exc:
                await trio.lowlevel.checkpoint()
                text = error_text(exc)
                logger.exception(
                    "%s failed: %s",
                    error_message or stage_name,
                    text,
                    extra={"service": "stage", "stage": stage_name, "error": text},
                )
                if ctx:
                    payload = {"error": text, "error_type": type(exc).__name__}
                    if record_payload_fn:
                        payload.update(record_payload_fn(exc, payload))
                    ctx.record_stage_event(stage=stage_name, status="failed", payload=payload)
                raise StageExecutionError(
                    stage=stage_name, original=exc, recoverable=_is_recoverable_error(exc)
                ) from exc
            end = ended_at(started_at, monotonic() - started)
            if isinstance(result, StageResult):
                return attrs.evolve(result, started_at=started_at, ended_at=end)
            return StageResult(
                name=stage_name,
                status="completed",
                started_at=started_at,
                ended_at=end,
                data=result if isinstance(result, dict) else {},
            )

        return wrapper

    return decorator


class StageRunner:
    """Runs a legacy stage's work with consistent events and errors.

    Usage::

        runner = StageRunner(stage_name="fetch", ctx=ctx)
        result = await runner.run(lambda: fetch(ctx), error_message="Fetch failed")

    Args:
        stage_name: The stage's name, used in events and errors.
        ctx: The run's PipelineContext, which receives the events.
        error_message: The log message prefix on failure (default ``stage_name``).

    Raises:
        TypeError: ``stage_name`` is not a str or ``ctx`` is not a PipelineContext.
    """

    def __init__(
        self,
        stage_name: str,
        ctx: PipelineContext,
        error_message: str | None = None,
    ) -> None:
        if not isinstance(stage_name, str):
            raise TypeError(
                f"StageRunner: stage_name must be a str; got {type(stage_name).__name__}"
            )
        if not isinstance(ctx, PipelineContext):
            raise TypeError(f"StageRunner: ctx must be a PipelineContext; got {type(ctx).__name__}")
        self.stage_name: str = stage_name
        self.ctx: PipelineContext = ctx
        self.error_message: str = error_message or stage_name

    async def run(
        self,
        run_fn: Callable[[], Any],
        *,
        on_success: Callable[[Any], dict[str, Any]] | None = None,
        on_error: Callable[[Exception], dict[str, Any]] | None = None,
    ) -> StageResult:
        """Call ``run_fn()`` (awaiting what it returns if awaitable) and build a StageResult.

        A checkpoint. The data is ``on_success(result)`` if that is truthy, else
        the result if it is a dict, else empty; ``stage.{name}.completed`` is
        recorded (payload ``{"data_keys": [...]}``, or none for empty data). An
        Exception is logged, recorded as ``stage.{name}.failed`` (``error``,
        ``error_type`` and ``on_error(exc)``) and raised as a StageExecutionError
        chained to it. The result's ``ended_at - started_at`` is the call's time on
        trio's clock.
        """
        started_at = utc_now()
        started = monotonic()
        try:
            result = run_fn()
            if hasattr(result, "__await__"):
                result = await result
            # A checkpoint whether or not run_fn's awaitable yielded.
            await trio.lowlevel.checkpoint()
            data = (on_success and on_success(result)) or (
                result if isinstance(result, dict) else {}
            )
            self.ctx.record_stage_event(
                stage=self.stage_name,
                status="completed",
                payload={"data_keys": list(data)} if data else None,
            )
            return StageResult(
                name=self.stage_name,
                status="completed",
                started_at=started_at,
                ended_at=ended_at(started_at, monotonic() - started),
                data=data,
            )
        except Exception as exc:
            # A checkpoint on the error path too (run_fn may raise without yielding).
            await trio.lowlevel.checkpoint()
            text = error_text(exc)  # the error stays the one raised
            logger.exception(
                "%s: %s",
                self.error_message,
                text,
                extra={"service": "stage", "stage": self.stage_name, "error": text},
            )
            payload: dict[str, Any] = {"error": text, "error_type": type(exc).__name__}
            if on_error:
                payload.update(on_error(exc))
            self.ctx.record_stage_event(stage=self.stage_name, status="failed", payload=payload)
            raise StageExecutionError(
                stage=self.stage_name, original=exc, recoverable=_is_recoverable_error(exc)
            ) from exc
