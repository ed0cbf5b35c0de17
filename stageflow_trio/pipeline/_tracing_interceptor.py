"""TracingInterceptor: one OpenTelemetry span per stage call, and its OpenTelemetry helpers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stageflow_trio._engine._interceptors import BaseInterceptor, _duration_ms, _run_id, call_key
from stageflow_trio._engine._stage_call import before_ran
from stageflow_trio.observability._otel import otel_api
from stageflow_trio.observability.tracing import StageflowTracer

if TYPE_CHECKING:
    import trio

    from stageflow_trio.stages.context import PipelineContext
    from stageflow_trio.stages.result import StageResult


_NO_TRACER: Any = object()
_otel_tracer: Any = _NO_TRACER


def _default_tracer() -> Any:
    """The OpenTelemetry tracer when ``opentelemetry-api`` is installed, else None (looked up once)."""
    global _otel_tracer  # a process-wide cache of one lookup
    if _otel_tracer is _NO_TRACER:
        api = otel_api()
        _otel_tracer = None if api is None else api[0].get_tracer("stageflow_trio")
    return _otel_tracer


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
            A :class:`~stageflow_trio.observability.StageflowTracer` stands for
            its OpenTelemetry tracer (its ``start_span`` is a ``with`` block, not
            a span); a disabled one (no OpenTelemetry) means no spans.

    Raises:
        TypeError: ``tracer`` is a class, or has no callable ``start_span``.
    """

    name: str = "tracing"
    priority: int = 20

    def __init__(self, tracer: Any = None) -> None:
        if isinstance(tracer, StageflowTracer):
            # Its start_span returns a context manager: each before() would attach
            # that as the current span and each after() fail on it (logged, no span).
            # Its OpenTelemetry tracer (None without OpenTelemetry: no spans) instead.
            self._tracer: Any = tracer._tracer
        elif tracer is not None:
            _check_tracer(tracer)
            self._tracer = tracer
        else:
            self._tracer = _default_tracer()
        # (id(ctx), stage, task) -> spans of the calls in flight, innermost last. The
        # hooks of one call all run in its task, so two concurrent calls of a stage
        # on one context (or a nested one) never take each other's span.
        self._spans: dict[tuple[int, str, trio.lowlevel.Task], list[tuple[Any, Any]]] = {}

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
        api = otel_api()
        if api is not None:
            trace, context = api
            token = context.attach(trace.set_span_in_context(span))
        key = call_key(stage_name, ctx)
        self._spans.setdefault(key, []).append((span, token))

    def _take_span(
        self, stage_name: str, ctx: PipelineContext, *, in_after: bool
    ) -> tuple[Any, Any] | None:
        """Forget the call's span (and its markers in ``ctx.data``); return it if any."""
        data = ctx.data
        data.pop("_tracing.span_name", None)
        data.pop("_tracing.span_start", None)
        spans = self._spans
        if not spans:  # no tracer, or no span in flight: no task lookup
            return None
        if in_after and not before_ran(self):
            # An earlier interceptor skipped this call before our before ran: it has
            # no span, and one under its key is an enclosing call's (a nested call).
            return None
        key = call_key(stage_name, ctx)
        stack = spans.get(key)
        if not stack:
            return None
        entry = stack.pop()
        if not stack:
            del spans[key]
        return entry

    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        entry = self._take_span(stage_name, ctx, in_after=True)
        if entry is None:
            return
        span, token = entry
        try:
            span.set_attribute("stageflow.stage.status", result.status)
            span.set_attribute("stageflow.stage.duration_ms", _duration_ms(result))
            if result.error is not None:
                span.set_attribute("stageflow.stage.error", result.error)
            if result.status == "failed":
                _set_error_status(span, result.error)
        finally:  # a span that refuses an attribute is still ended, its context detached
            _finish(span, token)

    async def on_abort(self, stage_name: str, ctx: PipelineContext) -> None:
        # Called only for a call whose before returned.
        entry = self._take_span(stage_name, ctx, in_after=False)
        if entry is None:
            return
        span, token = entry
        try:
            span.set_attribute("stageflow.stage.status", "aborted")
        finally:
            _finish(span, token)


def _check_tracer(tracer: object) -> None:
    # Checked here: a bad tracer would fail in every before(), where hook errors are
    # logged and swallowed, and no stage would ever get a span.
    if isinstance(tracer, type):
        raise TypeError(
            "TracingInterceptor: tracer must be an instance with a callable start_span; "
            f"got the class {tracer.__name__} (pass {tracer.__name__}())"
        )
    if not callable(getattr(tracer, "start_span", None)):
        raise TypeError(
            "TracingInterceptor: tracer must have a callable start_span(name, attributes=...); "
            f"got {type(tracer).__name__}"
        )


def _set_error_status(span: Any, description: str | None) -> None:
    api = otel_api()
    if api is None:
        return
    trace = api[0]
    span.set_status(trace.Status(trace.StatusCode.ERROR, description))


def _finish(span: Any, token: Any) -> None:
    try:
        if token is not None:
            api = otel_api()
            if api is not None:
                api[1].detach(token)
    finally:
        span.end()
