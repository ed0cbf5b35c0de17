"""Interceptors: middleware around legacy stage calls.

An interceptor has a ``priority`` (lower runs first, i.e. outermost) and
hooks: ``before`` (may short-circuit the stage), ``on_error`` (may ask for a
retry), ``after`` (runs when the call finished) and the optional
``on_abort`` (runs, shielded, when a cancelled or aborted call skips
``after``). The chain itself is :func:`run_with_interceptors`; its exact
order is documented in ``stageflow_trio._engine._stage_call`` and in
docs/interceptors.md, with every difference from the reference.

Built-ins (priority): TimeoutInterceptor (5), CircuitBreakerInterceptor (10),
TracingInterceptor (20), MetricsInterceptor (40),
ChildTrackerMetricsInterceptor (45), LoggingInterceptor (50); the
idempotency (4), retry (15) and hardening (10, 42) interceptors live in
their own modules.

Checkpoints: :func:`run_with_interceptors` is always a checkpoint. The hooks
are callbacks the chain awaits, not calls an application makes, and the
built-in hooks that do no I/O are not checkpoints of their own: with six
interceptors a stage calls twelve hooks, and a schedule point in each would
cost more than the whole rest of the chain (2.5 µs each on a 2-core machine).
Hooks that wait (idempotency, retry backoff) checkpoint as usual.
"""

# Hooks implement a fixed interface, so unused hook arguments are expected.
# ruff: noqa: ARG002

from __future__ import annotations

import importlib
import logging
from abc import ABC, abstractmethod
from enum import Enum, auto
from typing import TYPE_CHECKING, Any

import attrs

from stageflow_trio._engine._stage_call import DEFAULT_TIMEOUT_MS, run_with_interceptors
from stageflow_trio._time import monotonic
from stageflow_trio.errors import StageflowError

if TYPE_CHECKING:
    from stageflow_trio.pipeline.idempotency import IdempotencyStore
    from stageflow_trio.stages.context import PipelineContext
    from stageflow_trio.stages.result import StageResult

__all__ = [
    "BaseInterceptor",
    "ChildTrackerMetricsInterceptor",
    "CircuitBreakerInterceptor",
    "CriticalInterceptorError",
    "ErrorAction",
    "InterceptorContext",
    "InterceptorError",
    "InterceptorResult",
    "LoggingInterceptor",
    "MetricsInterceptor",
    "TimeoutInterceptor",
    "TracingInterceptor",
    "get_default_interceptors",
    "run_with_interceptors",
]


class ErrorAction(Enum):
    """What ``on_error`` asks the chain to do with a failed stage."""

    RETRY = auto()
    FALLBACK = auto()
    FAIL = auto()


@attrs.define(kw_only=True)
class InterceptorResult:
    """What ``before`` returns to change the call; ``stage_ran=False`` short-circuits."""

    stage_ran: bool = True
    result: Any = None
    error: str | None = None


class InterceptorError(StageflowError):
    """An interceptor failed."""

    def __init__(self, message: str, interceptor_name: str) -> None:
        super().__init__(message)
        self.interceptor_name = interceptor_name


class CriticalInterceptorError(InterceptorError):
    """An interceptor error that aborts the stage instead of being logged."""


@attrs.define
class InterceptorContext:
    """A read-only view of a PipelineContext, namespaced for one interceptor."""

    _ctx: PipelineContext
    _interceptor_name: str
    _observations: dict[str, Any] = attrs.field(factory=dict)

    @property
    def name(self) -> str:
        """The owning interceptor's name."""
        return self._interceptor_name

    @property
    def data(self) -> dict[str, Any]:
        """A copy of the pipeline data."""
        return dict(self._ctx.data)

    @property
    def pipeline_run_id(self) -> Any:
        return self._ctx.pipeline_run_id

    @property
    def request_id(self) -> Any:
        return self._ctx.request_id

    @property
    def session_id(self) -> Any:
        return self._ctx.session_id

    @property
    def user_id(self) -> Any:
        return self._ctx.user_id

    @property
    def org_id(self) -> Any:
        return self._ctx.org_id

    @property
    def topology(self) -> str | None:
        return self._ctx.topology

    @property
    def execution_mode(self) -> str | None:
        return self._ctx.execution_mode

    def add_observation(self, key: str, value: Any) -> None:
        """Record ``value`` under this interceptor's namespace in the pipeline data."""
        self._ctx.data.setdefault(f"_interceptor.{self._interceptor_name}", {})[key] = value

    def get_observation(self, key: str) -> Any:
        """Read an observation recorded under this interceptor's namespace."""
        return self._ctx.data.get(f"_interceptor.{self._interceptor_name}", {}).get(key)


class BaseInterceptor(ABC):
    """Base class of stage interceptors; lower ``priority`` wraps further out.

    Hooks are called by :func:`run_with_interceptors`; see its module
    docstring for the exact order. Besides the reference's three hooks there
    is :meth:`on_abort`, for interceptors that hold per-call resources.
    """

    name: str = "base_interceptor"
    priority: int = 100

    @abstractmethod
    async def before(self, stage_name: str, ctx: PipelineContext) -> InterceptorResult | None:
        """Before the stage: ``None`` to go on, ``InterceptorResult(stage_ran=False)`` to skip it."""

    @abstractmethod
    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        """After the stage finished (completed or failed)."""

    async def on_error(
        self, stage_name: str, error: Exception, ctx: PipelineContext
    ) -> ErrorAction:
        """When the stage raised: FAIL (the default) passes the error on."""
        return ErrorAction.FAIL

    async def on_abort(self, stage_name: str, ctx: PipelineContext) -> None:  # noqa: B027 - optional hook
        """The call ended by an exception after :meth:`before` returned, so :meth:`after` won't run.

        Called for a cancelled call, or when a CriticalInterceptorError or
        another exception escapes the chain. It runs shielded from
        cancellation (under a short time bound), so it may await to release
        what :meth:`before` acquired. Errors it raises are logged and
        swallowed. The default does nothing. Not in the reference, whose
        interceptors leak per-call state on cancellation.
        """


_stage_logger = logging.getLogger("stageflow_trio.stage_interceptor")
_metrics_logger = logging.getLogger("stageflow_trio.stage_metrics")


def _run_id(ctx: PipelineContext) -> str | None:
    return str(ctx.pipeline_run_id) if ctx.pipeline_run_id else None


def _duration_ms(result: StageResult) -> int:
    return int((result.ended_at - result.started_at).total_seconds() * 1000)


class ChildTrackerMetricsInterceptor(BaseInterceptor):
    """Logs ChildRunTracker metrics after stages of child runs."""

    name: str = "child_tracker_metrics"
    priority: int = 45

    async def before(self, stage_name: str, ctx: PipelineContext) -> None:
        return None

    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        if not getattr(ctx, "is_child_run", False):
            return
        try:
            # Looked up at call time: the subpipeline module imports this one.
            subpipeline = importlib.import_module("stageflow_trio.pipeline.subpipeline")
        except ImportError:  # subpipelines not available
            return
        tracker_logger = logging.getLogger("stageflow_trio.child_tracker_metrics")
        try:
            metrics = await subpipeline.get_child_tracker().get_metrics()
            tracker_logger.info(
                "ChildRunTracker metrics",
                extra={
                    "component": "ChildRunTracker",
                    "pipeline_run_id": _run_id(ctx),
                    "is_child_run": True,
                    **metrics,
                },
            )
        except Exception as exc:  # noqa: BLE001 - metrics must never break a stage
            tracker_logger.warning("Failed to log ChildRunTracker metrics: %s", exc)


class LoggingInterceptor(BaseInterceptor):
    """Structured log lines when a stage starts and completes."""

    name: str = "logging"
    priority: int = 50

    async def before(self, stage_name: str, ctx: PipelineContext) -> None:
        if _stage_logger.isEnabledFor(logging.INFO):
            _stage_logger.info(
                "Stage starting: %s",
                stage_name,
                extra={
                    "stage": stage_name,
                    "pipeline_run_id": _run_id(ctx),
                    "topology": ctx.topology,
                },
            )

    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        if _stage_logger.isEnabledFor(logging.INFO):
            _stage_logger.info(
                "Stage completed: %s - %s",
                stage_name,
                result.status,
                extra={
                    "stage": stage_name,
                    "status": result.status,
                    "duration_ms": _duration_ms(result),
                },
            )


class MetricsInterceptor(BaseInterceptor):
    """Records the stage start time and logs the stage's duration."""

    name: str = "metrics"
    priority: int = 40

    async def before(self, stage_name: str, ctx: PipelineContext) -> None:
        ctx.data["_metrics.stage_start_time"] = ctx.now()

    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        ctx.data.pop("_metrics.stage_start_time", None)
        if _metrics_logger.isEnabledFor(logging.INFO):
            _metrics_logger.info(
                "Stage metrics: %s",
                stage_name,
                extra={
                    "stage": stage_name,
                    "status": result.status,
                    "duration_ms": _duration_ms(result),
                    "pipeline_run_id": _run_id(ctx),
                },
            )

    async def on_abort(self, stage_name: str, ctx: PipelineContext) -> None:
        ctx.data.pop("_metrics.stage_start_time", None)


_NO_TRACER: Any = object()
_otel_tracer: Any = _NO_TRACER


def _default_tracer() -> Any:
    """The OpenTelemetry tracer when ``opentelemetry-api`` is installed, else None (looked up once)."""
    global _otel_tracer  # a process-wide cache of one import attempt
    if _otel_tracer is _NO_TRACER:
        try:
            from opentelemetry import trace
        except ImportError:
            _otel_tracer = None
        else:
            _otel_tracer = trace.get_tracer("stageflow_trio")
    return _otel_tracer


def _otel_api() -> tuple[Any, Any] | None:
    """``(opentelemetry.trace, opentelemetry.context)`` when installed, else None."""
    try:
        from opentelemetry import context, trace
    except ImportError:
        return None
    return trace, context


class TracingInterceptor(BaseInterceptor):
    """One OpenTelemetry span per stage call, when a tracer is available.

    Like the reference, it keeps ``_tracing.span_name`` and
    ``_tracing.span_start`` in the pipeline data while the stage runs. When
    ``opentelemetry-api`` is installed (the ``otel`` extra), or a ``tracer`` is
    passed, it also starts a span ``stage.{name}`` in ``before`` (made current
    while the stage runs, when the OpenTelemetry API is importable), records
    the status, duration and error in ``after`` and ends it; a cancelled or
    aborted call ends its span with status ``"aborted"``. Without a tracer it
    only keeps the two keys (the reference's behaviour).

    Args:
        tracer: An object with ``start_span(name, attributes=...)`` returning
            a span with ``set_attribute``, ``set_status`` and ``end``; default:
            ``opentelemetry.trace.get_tracer("stageflow_trio")`` when installed.
    """

    name: str = "tracing"
    priority: int = 20

    def __init__(self, tracer: Any = None) -> None:
        self._tracer = tracer if tracer is not None else _default_tracer()
        # (id(ctx), stage) -> (span, context token or None) for calls in flight.
        self._spans: dict[tuple[int, str], tuple[Any, Any]] = {}

    @property
    def tracer(self) -> Any:
        """The tracer spans are started on, or None (no spans)."""
        return self._tracer

    async def before(self, stage_name: str, ctx: PipelineContext) -> None:
        data = ctx.data
        data["_tracing.span_name"] = stage_name
        data["_tracing.span_start"] = ctx.now()
        if self._tracer is None:
            return
        attributes = {
            key: value
            for key, value in (
                ("stageflow.stage", stage_name),
                ("stageflow.pipeline_run_id", _run_id(ctx)),
                ("stageflow.request_id", str(ctx.request_id) if ctx.request_id else None),
                ("stageflow.topology", ctx.topology),
                ("stageflow.execution_mode", ctx.execution_mode),
            )
            if value is not None
        }
        span = self._tracer.start_span(f"stage.{stage_name}", attributes=attributes)
        token = None
        api = _otel_api()
        if api is not None:
            trace, context = api
            token = context.attach(trace.set_span_in_context(span))
        self._spans[(id(ctx), stage_name)] = (span, token)

    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        data = ctx.data
        data.pop("_tracing.span_name", None)
        data.pop("_tracing.span_start", None)
        entry = self._spans.pop((id(ctx), stage_name), None)
        if entry is None:
            return
        span, token = entry
        span.set_attribute("stageflow.stage.status", result.status)
        span.set_attribute("stageflow.stage.duration_ms", _duration_ms(result))
        if result.error is not None:
            span.set_attribute("stageflow.stage.error", result.error)
        if result.status == "failed":
            _set_error_status(span, result.error)
        _finish(span, token)

    async def on_abort(self, stage_name: str, ctx: PipelineContext) -> None:
        data = ctx.data
        data.pop("_tracing.span_name", None)
        data.pop("_tracing.span_start", None)
        entry = self._spans.pop((id(ctx), stage_name), None)
        if entry is None:
            return
        span, token = entry
        span.set_attribute("stageflow.stage.status", "aborted")
        _finish(span, token)


def _set_error_status(span: Any, description: str | None) -> None:
    api = _otel_api()
    if api is None:
        return
    trace = api[0]
    span.set_status(trace.Status(trace.StatusCode.ERROR, description))


def _finish(span: Any, token: Any) -> None:
    if token is not None:
        api = _otel_api()
        if api is not None:
            api[1].detach(token)
    span.end()


class CircuitBreakerInterceptor(BaseInterceptor):
    """Opens a per-stage breaker after 5 failed calls; it half-opens 30 s later.

    While open, the stage is short-circuited as "completed" with the error
    "Circuit breaker open for {stage}" (parity with the reference). A failed
    call counts once (the reference counted a raised exception twice, in
    ``on_error`` and in ``after``), and the breaker stays open until the reset
    time has passed (the reference closed it again in the ``after`` of the
    very call it had short-circuited). A success closes it and resets the
    count. Time is read on the trio clock, so ``MockClock`` drives the reset.
    """

    name: str = "circuit_breaker"
    priority: int = 10

    FAILURE_THRESHOLD: int = 5
    RESET_SECONDS: float = 30.0

    def __init__(self) -> None:
        self._breaker_states: dict[str, str] = {}
        self._failure_counts: dict[str, int] = {}
        self._last_failure: dict[str, float] = {}

    def state(self, stage_name: str) -> str:
        """The breaker state of ``stage_name``: ``"closed"``, ``"open"`` or ``"half_open"``."""
        return self._breaker_states.get(stage_name, "closed")

    async def before(self, stage_name: str, ctx: PipelineContext) -> InterceptorResult | None:
        if self._breaker_states.get(stage_name, "closed") == "open":
            if monotonic() - self._last_failure.get(stage_name, 0.0) > self.RESET_SECONDS:
                self._breaker_states[stage_name] = "half_open"
            else:
                return InterceptorResult(
                    stage_ran=False, result=None, error=f"Circuit breaker open for {stage_name}"
                )
        return None

    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        if self._breaker_states.get(stage_name) == "open":
            # A call the breaker short-circuited, or one that started before it opened.
            return
        if result.status == "failed":
            self._record_failure(stage_name)
        else:
            self._breaker_states[stage_name] = "closed"
            self._failure_counts[stage_name] = 0

    def _record_failure(self, stage_name: str) -> None:
        count = self._failure_counts.get(stage_name, 0) + 1
        self._failure_counts[stage_name] = count
        self._last_failure[stage_name] = monotonic()
        if count >= self.FAILURE_THRESHOLD:
            self._breaker_states[stage_name] = "open"


class TimeoutInterceptor(BaseInterceptor):
    """Sets each stage's timeout from ``ctx.data["_timeout_ms"]`` (default 30000 ms).

    The chain enforces it with a cancel scope; a timed-out stage raises the
    builtin ``TimeoutError("Stage timed out after {ms}ms")`` into ``on_error``
    (so a RetryInterceptor can retry it) and, unless retried, fails with that
    message. ``<= 0`` means no timeout.
    """

    name: str = "timeout"
    priority: int = 5

    DEFAULT_TIMEOUT_MS: int = DEFAULT_TIMEOUT_MS

    async def before(self, stage_name: str, ctx: PipelineContext) -> InterceptorResult | None:
        ctx.data[f"_timeout.{stage_name}"] = ctx.data.get("_timeout_ms", self.DEFAULT_TIMEOUT_MS)
        return None

    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        ctx.data.pop(f"_timeout.{stage_name}", None)

    async def on_abort(self, stage_name: str, ctx: PipelineContext) -> None:
        ctx.data.pop(f"_timeout.{stage_name}", None)


def get_default_interceptors(
    *,
    include_auth: bool = False,
    include_idempotency: bool = True,
    idempotency_store: IdempotencyStore | None = None,
) -> list[BaseInterceptor]:
    """The default chain, sorted by priority.

    Idempotency (4, unless ``include_idempotency=False``; with
    ``idempotency_store`` when given), Timeout (5), CircuitBreaker (10),
    Tracing (20), Metrics (40), ChildTrackerMetrics (45), Logging (50).

    Raises:
        ValueError: ``include_auth=True``: the auth interceptors are not part of
            stageflow_trio yet (the reference raises ImportError here).
    """
    # Imported here: the idempotency module builds on this one.
    from stageflow_trio.pipeline.idempotency import IdempotencyInterceptor

    if include_auth:
        raise ValueError(
            "include_auth=True: auth interceptors are not available in stageflow_trio yet"
        )
    interceptors: list[BaseInterceptor] = [
        TimeoutInterceptor(),
        CircuitBreakerInterceptor(),
        TracingInterceptor(),
        MetricsInterceptor(),
        ChildTrackerMetricsInterceptor(),
        LoggingInterceptor(),
    ]
    if include_idempotency:
        interceptors.insert(0, IdempotencyInterceptor(store=idempotency_store))
    return interceptors
