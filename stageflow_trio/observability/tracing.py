"""Correlation and trace ids in context variables, and spans with or without OpenTelemetry.

The ids live in :class:`contextvars.ContextVar` objects. Trio gives every task
a copy of its spawner's context, so a task sees the ids that were set when it
was started, its own writes stay its own, and concurrent tasks never see each
other's ids. :class:`TraceContext` carries them across boundaries trio cannot
see (a thread, a queue, an HTTP call).

OpenTelemetry is optional (the ``otel`` extra, ``opentelemetry-api``). Without
it :class:`StageflowTracer` hands out :class:`NoOpSpan` objects and the ids are
only what the application sets.
"""

from __future__ import annotations

import logging
import re
import reprlib
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar, Token
from datetime import datetime
from typing import Any, Final, cast
from uuid import UUID

import attrs

from stageflow_trio._args import error_text, type_of
from stageflow_trio._frozen import frozen_compat
from stageflow_trio._globals import register_global_reset
from stageflow_trio._time import parse_uuid, utc_now, uuid4
from stageflow_trio.utils.frozen import FrozenDict

from ._otel import otel_api

logger: logging.Logger = logging.getLogger("stageflow_trio.observability.tracing")

_trace_id: ContextVar[str | None] = ContextVar("trace_id", default=None)
_span_id: ContextVar[str | None] = ContextVar("span_id", default=None)
_parent_span_id: ContextVar[str | None] = ContextVar("parent_span_id", default=None)
_correlation_id: ContextVar[UUID | None] = ContextVar("correlation_id", default=None)
# The W3C trace flags of the activated trace id (None: none activated, read as sampled).
_trace_flags: ContextVar[int | None] = ContextVar("trace_flags", default=None)
# The W3C tracestate that came with the activated trace id (None: none).
_trace_state: ContextVar[str | None] = ContextVar("trace_state", default=None)


def _clear_ids() -> None:
    # In synchronous code (a test, a script) the ids live in the thread's one context.
    for var in (_trace_id, _span_id, _parent_span_id, _correlation_id, _trace_flags, _trace_state):
        var.set(None)


register_global_reset(_clear_ids)

OTEL_AVAILABLE: Final[bool] = otel_api() is not None
"""Whether ``opentelemetry-api`` could be imported when this module was loaded."""

_BAGGAGE_PREFIX: Final = "x-baggage-"
_SAMPLED: Final = 0x01  # W3C trace flags: the "sampled" bit, all the reference ever writes
_HEX: Final = frozenset("0123456789abcdef")

# W3C tracestate (Trace Context level 1): at most 32 list members; OpenTelemetry's
# propagator drops a header longer than 8192 characters, and so do we.
_TRACE_STATE_MEMBERS: Final = 32
_TRACE_STATE_CHARS: Final = 8192
_KEY_CHAR: Final = r"[a-z0-9_\-*/]"
_TRACE_STATE_MEMBER: Final = re.compile(
    # A key is a vendor name, or a tenant id "@" a vendor name; a value is printable
    # ASCII without "," and "=", not ending in a space.
    rf"(?:[a-z]{_KEY_CHAR}{{0,255}}|[a-z0-9]{_KEY_CHAR}{{0,240}}@[a-z]{_KEY_CHAR}{{0,13}})"
    r"=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]"
)


# attrs' mypy plugin only understands converters that are named functions, hence one per field.
def _text(field: str, value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"TraceContext: {field} must be a str or None; got {type_of(value)}")


def _trace_id_field(value: str | None) -> str | None:
    return _text("trace_id", value)


def _span_id_field(value: str | None) -> str | None:
    return _text("span_id", value)


def _parent_span_id_field(value: str | None) -> str | None:
    return _text("parent_span_id", value)


def _correlation_id_field(value: UUID | str | None) -> UUID | None:
    return parse_uuid(value, "correlation_id")


def _pipeline_run_id_field(value: UUID | str | None) -> UUID | None:
    return parse_uuid(value, "pipeline_run_id")


def _request_id_field(value: UUID | str | None) -> UUID | None:
    return parse_uuid(value, "request_id")


def _org_id_field(value: UUID | str | None) -> UUID | None:
    return parse_uuid(value, "org_id")


def _baggage_field(value: Mapping[str, str] | None) -> FrozenDict[str, str]:
    if value is None:
        return FrozenDict()
    if not isinstance(value, Mapping):
        raise TypeError(f"TraceContext: baggage must be a mapping; got {type_of(value)}")
    entries = cast("Mapping[object, object]", value)  # checked here: the annotation is a promise
    for key, item in entries.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise TypeError(
                "TraceContext: baggage keys and values must be str; "
                f"got {type_of(key)} -> {type_of(item)}"
            )
    return value if isinstance(value, FrozenDict) else FrozenDict(value)


def _trace_state_field(value: str | None) -> str | None:
    """A W3C ``tracestate`` in its shortest form (members joined by bare commas), or None.

    Spaces and tabs around members and empty members are optional whitespace
    in the spec and are dropped; a list without members is None.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"TraceContext: trace_state must be a str or None; got {type_of(value)}")
    if len(value) > _TRACE_STATE_CHARS:
        raise ValueError(
            f"TraceContext: trace_state must be at most {_TRACE_STATE_CHARS} characters;"
            f" got {len(value)}"
        )
    members = [member for part in value.split(",") if (member := part.strip(" \t"))]
    if len(members) > _TRACE_STATE_MEMBERS:
        raise ValueError(
            f"TraceContext: trace_state must have at most {_TRACE_STATE_MEMBERS} list members;"
            f" got {len(members)}"
        )
    keys: set[str] = set()
    for member in members:
        if _TRACE_STATE_MEMBER.fullmatch(member) is None:
            raise ValueError(
                "TraceContext: trace_state members must be key=value with a W3C key"
                " (a-z, 0-9, _ - * /, one @ after a tenant id) and a value of printable ASCII"
                f" without ',' or '='; got {reprlib.repr(member)}"
            )
        key = member.partition("=")[0]
        if key in keys:
            raise ValueError(f"TraceContext: trace_state keys must be unique; got {key!r} twice")
        keys.add(key)
    return ",".join(members) or None


def _check_created_at(_: object, __: object, value: object) -> None:
    if not isinstance(value, datetime):
        raise TypeError(f"TraceContext: created_at must be a datetime; got {type_of(value)}")


def _check_trace_flags(_: object, __: object, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"TraceContext: trace_flags must be an int; got {type_of(value)}")
    if not 0 <= value <= 0xFF:
        raise ValueError(f"TraceContext: trace_flags must be from 0 to 255; got {value}")


def _w3c_id(value: str | None, length: int) -> int | None:
    """``value`` as a number if it is a valid W3C id of ``length`` hex digits (not all zeros)."""
    if value is None or len(value) != length or not _HEX.issuperset(value):
        return None
    return int(value, 16) or None


def _otel_ids(span: Any) -> tuple[str, str] | None:
    """The span's ``(trace_id, span_id)`` in W3C hex form, or None for an invalid context."""
    span_ctx = span.get_span_context()
    if not span_ctx.is_valid:
        return None
    return format(span_ctx.trace_id, "032x"), format(span_ctx.span_id, "016x")


def _otel_flags_and_state(span: Any) -> tuple[int, str | None]:
    """The span's W3C trace flags and ``tracestate`` (None: empty, or longer than 8192 characters).

    The API's ``TraceState`` checks its members as :class:`TraceContext` does but
    not its total length, which only the propagator enforces: a longer one is
    discarded here as the propagator would discard it.
    """
    span_ctx = span.get_span_context()
    state = span_ctx.trace_state
    try:
        header = _trace_state_field(state.to_header() if state else None)
    except ValueError as exc:
        logger.debug("the current span's trace state is not passed on: %s", exc)
        header = None
    return int(span_ctx.trace_flags), header


def _id_str(value: UUID | None) -> str | None:
    return str(value) if value else None


@frozen_compat
@attrs.frozen
class TraceContext:
    """The correlation and trace ids of one piece of work, to carry across a boundary.

    Capture it where the work starts, hand it over (to a thread, a queue
    message, an HTTP request as headers), and :meth:`activate` it on the other
    side, so logs and events there carry the same ids::

        ctx = TraceContext.capture()

        def worker() -> None:  # e.g. in trio.to_thread.run_sync(worker)
            with ctx.activate():
                ...

    A trio task started with ``start_soon`` needs none of this: it already
    inherits the ids of the task that started it.

    A service continues its caller's trace the same way: its spans started
    inside the block are children of the caller's span (see :meth:`activate`)::

        with tracer.extract_context(request_headers).activate():
            with tracer.start_span("handle_request"):
                ...

    UUID fields accept a ``UUID``, a UUID string (parsed) or None; anything
    else raises ``ValueError``/``TypeError`` naming the field. ``baggage`` is
    a read-only mapping of str to str. ``trace_flags`` (not in the reference)
    is the W3C trace-flags byte of the ``traceparent`` (``0x01``: sampled, the
    default; ``0x00``: the caller's sampler dropped the trace). ``trace_state``
    (not in the reference either) is the W3C ``tracestate`` that came with the
    ``traceparent``, the tracing vendors' own state, to pass on unchanged: a
    str of at most 32 ``key=value`` members and 8192 characters, kept in its
    shortest form (``"a=1, b=2"`` is ``"a=1,b=2"``; one without members is
    None); a str that breaks the W3C grammar is a ``ValueError``.
    """

    trace_id: str | None = attrs.field(default=None, converter=_trace_id_field)
    span_id: str | None = attrs.field(default=None, converter=_span_id_field)
    parent_span_id: str | None = attrs.field(default=None, converter=_parent_span_id_field)
    correlation_id: UUID | None = attrs.field(default=None, converter=_correlation_id_field)
    pipeline_run_id: UUID | None = attrs.field(default=None, converter=_pipeline_run_id_field)
    request_id: UUID | None = attrs.field(default=None, converter=_request_id_field)
    org_id: UUID | None = attrs.field(default=None, converter=_org_id_field)
    baggage: FrozenDict[str, str] = attrs.field(factory=FrozenDict, converter=_baggage_field)
    created_at: datetime = attrs.field(factory=utc_now, validator=_check_created_at)
    trace_flags: int = attrs.field(default=_SAMPLED, validator=_check_trace_flags)
    trace_state: str | None = attrs.field(default=None, converter=_trace_state_field)

    @classmethod
    def capture(cls) -> TraceContext:
        """The ids of the current context (task).

        When OpenTelemetry is installed and a recording span is current, its
        trace and span ids replace the context variables' ones. ``trace_flags``
        and ``trace_state`` always come with the trace id they describe: the
        span's own (its span context's) when its ids are taken, which may be
        another trace than the activated context's (a new root started inside
        the block); else those of the activated context that set the trace id
        (``0x01`` and None when none did).
        """
        trace_id = _trace_id.get()
        span_id = _span_id.get()
        flags = _trace_flags.get()
        state = _trace_state.get()
        api = otel_api()
        if api is not None:
            span = api[0].get_current_span()
            if span and span.is_recording():
                ids = _otel_ids(span)
                if ids is not None:
                    trace_id, span_id = ids
                    flags, state = _otel_flags_and_state(span)
        return cls(
            trace_id=trace_id,
            span_id=span_id,
            parent_span_id=_parent_span_id.get(),
            correlation_id=_correlation_id.get(),
            trace_flags=_SAMPLED if flags is None else flags,
            trace_state=state,
        )

    @contextmanager
    def activate(self) -> Iterator[None]:
        """Set this context's ids in the current context for the ``with`` block.

        Only the ids that are set (non-empty) are written (``trace_flags`` and
        ``trace_state`` with the trace id); on exit each variable gets back the
        value it had before, also when the block raises.

        With OpenTelemetry, a context with a valid W3C trace id and span id
        (as :meth:`from_headers` reads them from a ``traceparent``) also
        becomes OpenTelemetry's current span context for the block, as a remote
        parent with these ``trace_flags`` and ``trace_state``: spans started
        inside it, by :class:`StageflowTracer`, the pipeline's
        ``TracingInterceptor`` or OpenTelemetry itself, continue this trace as
        its children (with its trace state), and the caller's sampling decision
        holds. A span of the same trace that is already current (an
        instrumented server's, or the one this context was captured from) is
        left current.
        """
        tokens: list[tuple[ContextVar[Any], Token[Any]]] = []
        if self.trace_id:
            tokens.append((_trace_id, _trace_id.set(self.trace_id)))
            tokens.append((_trace_flags, _trace_flags.set(self.trace_flags)))
            tokens.append((_trace_state, _trace_state.set(self.trace_state)))
        if self.span_id:
            tokens.append((_span_id, _span_id.set(self.span_id)))
        if self.parent_span_id:
            tokens.append((_parent_span_id, _parent_span_id.set(self.parent_span_id)))
        if self.correlation_id:
            tokens.append((_correlation_id, _correlation_id.set(self.correlation_id)))
        attached = None
        try:
            attached = self._attach_remote_parent()
            yield
        finally:
            try:
                if attached is not None:
                    context, otel_token = attached
                    context.detach(otel_token)
            finally:
                for var, token in reversed(tokens):
                    var.reset(token)

    def _attach_remote_parent(self) -> tuple[Any, object] | None:
        """Make these ids OpenTelemetry's current (remote) span context.

        OpenTelemetry keeps its own current context: with only this module's
        variables set, a span started next would begin a new trace.

        Returns:
            ``(opentelemetry.context, token)`` to detach it with, or None when
            nothing was attached.
        """
        trace_id = _w3c_id(self.trace_id, 32)
        span_id = _w3c_id(self.span_id, 16)
        api = otel_api()
        if trace_id is None or span_id is None or api is None:
            return None
        trace, context = api
        current = trace.get_current_span().get_span_context()
        if current.is_valid and current.trace_id == trace_id:
            return None
        extra: dict[str, Any] = {}
        if self.trace_state:
            # The SDK copies a parent's trace state to its children, and the
            # propagator writes a span's out: the vendors' state travels on.
            extra["trace_state"] = trace.TraceState.from_header([self.trace_state])
        remote = trace.SpanContext(
            trace_id=trace_id,
            span_id=span_id,
            is_remote=True,
            trace_flags=trace.TraceFlags(self.trace_flags),
            **extra,
        )
        return context, context.attach(trace.set_span_in_context(trace.NonRecordingSpan(remote)))

    def to_dict(self) -> dict[str, Any]:
        """The reference's fields, ids as strings (None when unset), ``created_at`` in ISO form.

        ``trace_flags`` and ``trace_state`` are left out, so a record has the
        reference's keys; the ``traceparent`` and ``tracestate`` of
        :meth:`to_headers` carry them.
        """
        return {
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "parent_span_id": self.parent_span_id,
            "correlation_id": _id_str(self.correlation_id),
            "pipeline_run_id": _id_str(self.pipeline_run_id),
            "request_id": _id_str(self.request_id),
            "org_id": _id_str(self.org_id),
            "baggage": dict(self.baggage),
            "created_at": self.created_at.isoformat(),
        }

    def to_headers(self) -> dict[str, str]:
        """HTTP headers that carry this context; :meth:`from_headers` reads them back.

        ``traceparent`` (W3C Trace Context, version 00, with ``trace_flags``;
        a zero span id when none is set) and ``tracestate`` (when ``trace_state``
        is set) when there is a trace id; ``x-correlation-id``,
        ``x-pipeline-run-id``, ``x-request-id``, ``x-org-id`` for the set ids;
        ``x-baggage-{key}`` for each baggage item.
        """
        headers: dict[str, str] = {}
        if self.trace_id:
            span_id = self.span_id or "0" * 16
            headers["traceparent"] = f"00-{self.trace_id}-{span_id}-{self.trace_flags:02x}"
            if self.trace_state:
                headers["tracestate"] = self.trace_state
        if self.correlation_id:
            headers["x-correlation-id"] = str(self.correlation_id)
        if self.pipeline_run_id:
            headers["x-pipeline-run-id"] = str(self.pipeline_run_id)
        if self.request_id:
            headers["x-request-id"] = str(self.request_id)
        if self.org_id:
            headers["x-org-id"] = str(self.org_id)
        for key, value in self.baggage.items():
            headers[_BAGGAGE_PREFIX + key] = value
        return headers

    @classmethod
    def from_headers(cls, headers: Mapping[str, str] | Mapping[bytes, bytes]) -> TraceContext:
        """The context carried by ``headers`` (keys as :meth:`to_headers` writes them).

        A ``traceparent`` gives the trace id if its second part has 32
        characters, the span id if its third has 16 and ``trace_flags`` if its
        fourth is two hex digits (else ``0x01``, sampled); an id header that is
        not a UUID is ignored. ``parent_span_id`` is never read.

        ``tracestate`` is read only along with a ``traceparent`` whose trace id
        (32 lower-case hex digits) and span id (16) are valid and not all zeros,
        the one a service can continue, as the W3C spec says; it becomes
        ``trace_state`` in its shortest form (see :class:`TraceContext`). A
        malformed one (a member that breaks the grammar, a key twice, more than
        32 members) or one longer than 8192 characters is discarded whole, as
        the spec allows and OpenTelemetry's propagator does: ``trace_state`` is
        None and the ``traceparent`` still counts. It is never cut down, since a
        service that passes the ``traceparent`` on unchanged must not change it.

        Names and values may be str or bytes (an ASGI scope's raw headers,
        turned into a dict); bytes are decoded as latin-1, as HTTP headers are.
        Names are matched exactly, so pass them lower-case (ASGI does). Values
        of headers that are not read are not looked at.

        Raises:
            TypeError: ``headers`` is not a mapping; a header name is neither
                str nor bytes; the value of a header that is read (``traceparent``,
                ``tracestate``, the id headers, ``x-baggage-*``) is neither str
                nor bytes.
        """
        if not isinstance(headers, Mapping):
            raise TypeError(
                f"TraceContext.from_headers: headers must be a mapping; got {type_of(headers)}"
            )
        text = _text_names(headers)
        trace_id: str | None = None
        span_id: str | None = None
        flags = _SAMPLED
        traceparent = _header_text(text, "traceparent")
        if traceparent:
            parts = traceparent.split("-")
            if len(parts) >= 3:
                trace_id = parts[1] if len(parts[1]) == 32 else None
                span_id = parts[2] if len(parts[2]) == 16 else None
            if len(parts) >= 4 and len(parts[3]) == 2 and _HEX.issuperset(parts[3].lower()):
                flags = int(parts[3], 16)
        trace_state = None
        if _w3c_id(trace_id, 32) is not None and _w3c_id(span_id, 16) is not None:
            trace_state = _header_trace_state(text)
        baggage = {
            key[len(_BAGGAGE_PREFIX) :]: _as_text(key, value)
            for key, value in text.items()
            if key.startswith(_BAGGAGE_PREFIX)
        }
        return cls(
            trace_id=trace_id,
            span_id=span_id,
            correlation_id=_header_uuid(text, "x-correlation-id"),
            pipeline_run_id=_header_uuid(text, "x-pipeline-run-id"),
            request_id=_header_uuid(text, "x-request-id"),
            org_id=_header_uuid(text, "x-org-id"),
            baggage=baggage,
            trace_flags=flags,
            trace_state=trace_state,
        )


def _text_names(headers: Mapping[Any, Any]) -> Mapping[str, Any]:
    """``headers`` itself when every name is a str; else a dict with bytes names decoded."""
    if all(isinstance(key, str) for key in headers):
        # Looked up with the mapping's own ``get`` (a case-insensitive one stays so).
        return headers
    decoded: dict[str, Any] = {}
    for key, value in headers.items():
        if isinstance(key, bytes):
            decoded[key.decode("latin-1")] = value
        elif isinstance(key, str):
            decoded[key] = value
        else:
            raise TypeError(
                "TraceContext.from_headers: header names in headers must be str or bytes;"
                f" got {type_of(key)}"
            )
    return decoded


def _header_text(headers: Mapping[str, Any], name: str) -> str | None:
    """The value of header ``name`` as a str (bytes decoded as latin-1), None if absent."""
    value = headers.get(name)
    return None if value is None else _as_text(name, value)


def _as_text(name: str, value: object) -> str:
    """A header's value as a str: bytes decoded as latin-1; TypeError for anything else."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("latin-1")
    raise TypeError(
        f"TraceContext.from_headers: headers[{name!r}] must be a str or bytes; got {type_of(value)}"
    )


def _header_trace_state(headers: Mapping[str, Any]) -> str | None:
    """The ``tracestate`` header in its shortest form; None if absent, empty or malformed."""
    value = _header_text(headers, "tracestate")
    if value is None:
        return None
    try:
        return _trace_state_field(value)
    except ValueError as exc:  # the vendors' state is lost, the trace is not
        logger.debug("tracestate header discarded: %s", exc)
        return None


def _header_uuid(headers: Mapping[str, Any], name: str) -> UUID | None:
    value = _header_text(headers, name)
    if not value:
        return None
    try:
        return UUID(value)
    except ValueError:
        return None


class StageflowTracer:
    """Spans on OpenTelemetry when it is installed, :class:`NoOpSpan` objects otherwise.

    Example::

        tracer = StageflowTracer("my_service")
        with tracer.start_span("process_request", attributes={"user": "u1"}) as span:
            span.set_attribute("result_size", 3)

    Args:
        name: The instrumentation name passed to ``opentelemetry.trace.get_tracer``.
    """

    def __init__(self, name: str = "stageflow") -> None:
        if not isinstance(name, str):
            raise TypeError(f"StageflowTracer: name must be a str; got {type_of(name)}")
        self._name = name
        self._api = otel_api()
        self._tracer: Any = None if self._api is None else self._api[0].get_tracer(name)

    @property
    def is_enabled(self) -> bool:
        """Whether spans go to OpenTelemetry (False: they are :class:`NoOpSpan` objects)."""
        return self._tracer is not None

    def start_span(
        self,
        name: str,
        *,
        kind: Any = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> AbstractContextManager[Any]:
        """A span for the ``with`` block, current while the block runs.

        With OpenTelemetry the span is started with ``start_as_current_span``
        (``kind`` defaults to ``SpanKind.INTERNAL``) and, while the block runs,
        :func:`get_trace_id` and :func:`get_span_id` return its ids. Without
        it the block gets a :class:`NoOpSpan` and the ids are left alone.

        Raises:
            TypeError: ``name`` is not a str or ``attributes`` not a mapping (at the call).
        """
        if not isinstance(name, str):
            raise TypeError(f"StageflowTracer.start_span: name must be a str; got {type_of(name)}")
        if attributes is not None and not isinstance(attributes, Mapping):
            raise TypeError(
                "StageflowTracer.start_span: attributes must be a mapping or None; "
                f"got {type_of(attributes)}"
            )
        if self._tracer is None:
            return nullcontext(NoOpSpan(name, attributes=attributes))
        return self._otel_span(name, kind, attributes)

    @contextmanager
    def _otel_span(
        self, name: str, kind: Any, attributes: Mapping[str, Any] | None
    ) -> Iterator[Any]:
        assert self._api is not None  # a tracer comes from the API
        span_kind = self._api[0].SpanKind.INTERNAL if kind is None else kind
        with self._tracer.start_as_current_span(
            name, kind=span_kind, attributes=attributes
        ) as span:
            ids = _otel_ids(span)
            if ids is None:
                yield span
                return
            trace_token = _trace_id.set(ids[0])
            span_token = _span_id.set(ids[1])
            try:
                yield span
            finally:
                _span_id.reset(span_token)
                _trace_id.reset(trace_token)

    def inject_context(self, carrier: MutableMapping[str, str]) -> None:
        """Write the current context into ``carrier`` (e.g. outgoing HTTP headers).

        With OpenTelemetry its W3C propagator writes first; then
        :meth:`TraceContext.to_headers` of :meth:`TraceContext.capture` is
        merged in. The propagator's ``traceparent``, when it writes one (a valid
        span is current), is kept with its ``tracestate`` (the span's trace state,
        or none): they carry the span's sampling decision and vendors' state,
        which :class:`TraceContext` may not know. Without one, the
        :class:`TraceContext` ``traceparent`` and ``tracestate`` are written.

        Raises:
            TypeError: ``carrier`` is not a mutable mapping.
        """
        if not isinstance(carrier, MutableMapping):
            raise TypeError(
                "StageflowTracer.inject_context: carrier must be a mutable mapping; "
                f"got {type_of(carrier)}"
            )
        written: dict[str, str] = {}
        if otel_api() is not None:
            try:
                from opentelemetry.trace.propagation.tracecontext import (
                    TraceContextTextMapPropagator,
                )
            except ImportError:  # an API too old or too partial to propagate
                logger.debug("OpenTelemetry has no TraceContextTextMapPropagator")
            else:
                TraceContextTextMapPropagator().inject(written)
                carrier.update(written)
        headers = TraceContext.capture().to_headers()
        if "traceparent" in written:
            # An unsampled span's "-00" must not become "-01": downstream samplers
            # would record traces this service's sampler dropped.
            headers.pop("traceparent", None)
            # A tracestate belongs with its traceparent: the span's, not one of ours.
            headers.pop("tracestate", None)
        carrier.update(headers)

    def extract_context(self, carrier: Mapping[str, str] | Mapping[bytes, bytes]) -> TraceContext:
        """The context carried by ``carrier``: :meth:`TraceContext.from_headers`."""
        return TraceContext.from_headers(carrier)


class NoOpSpan:
    """The span :class:`StageflowTracer` gives without OpenTelemetry: it records, exports nothing.

    It keeps what is set on it, readable through :attr:`name`,
    :attr:`attributes` and :attr:`events`, so tests can check instrumentation
    without an OpenTelemetry SDK.
    """

    def __init__(self, name: str, *, attributes: Mapping[str, Any] | None = None) -> None:
        self._name = name
        # A copy: the caller's dict is not the span's to change.
        self._attributes: dict[str, Any] = dict(attributes) if attributes else {}
        self._events: list[tuple[str, dict[str, Any]]] = []

    @property
    def name(self) -> str:
        """The span's name."""
        return self._name

    @property
    def attributes(self) -> Mapping[str, Any]:
        """A read-only copy of the attributes (``_status`` and ``_status_description`` included)."""
        return FrozenDict(self._attributes)

    @property
    def events(self) -> tuple[tuple[str, dict[str, Any]], ...]:
        """The ``(name, attributes)`` of each added event, oldest first."""
        return tuple(self._events)

    def set_attribute(self, key: str, value: Any) -> None:
        """Set attribute ``key``."""
        self._attributes[key] = value

    def add_event(self, name: str, attributes: Mapping[str, Any] | None = None) -> None:
        """Record event ``name`` with a copy of ``attributes`` (later changes to yours do not show)."""
        self._events.append((name, dict(attributes) if attributes else {}))

    def set_status(self, status: Any, description: str | None = None) -> None:
        """Keep ``str(status)`` as the ``_status`` attribute, a description as ``_status_description``."""
        self._attributes["_status"] = str(status)
        if description:
            self._attributes["_status_description"] = description

    def record_exception(self, exception: BaseException) -> None:
        """Add an ``exception`` event with ``exception.type`` and ``exception.message``."""
        self.add_event(
            "exception",
            {
                "exception.type": type(exception).__name__,
                "exception.message": error_text(exception),
            },
        )

    def is_recording(self) -> bool:
        """False: nothing is exported."""
        return False

    def get_span_context(self) -> Any:
        """None: a no-op span has no span context."""
        return None


def set_correlation_id(correlation_id: UUID | str | None) -> None:
    """Set the current context's correlation id (a UUID string is parsed; None unsets it).

    The current task and the tasks it starts from now on see it; its parent
    and its siblings do not.

    Raises:
        ValueError: a string that is not a UUID.
        TypeError: neither a UUID, a str nor None.
    """
    _correlation_id.set(parse_uuid(correlation_id, "correlation_id"))


def get_correlation_id() -> UUID | None:
    """The current context's correlation id, or None."""
    return _correlation_id.get()


def ensure_correlation_id() -> UUID:
    """The current correlation id; a new random one is set first when there is none."""
    cid = _correlation_id.get()
    if cid is None:
        cid = uuid4()
        _correlation_id.set(cid)
    return cid


def clear_correlation_id() -> None:
    """Set the current context's correlation id to None."""
    _correlation_id.set(None)


def get_trace_id() -> str | None:
    """The current context's trace id (32 hex characters with OpenTelemetry), or None."""
    return _trace_id.get()


def get_span_id() -> str | None:
    """The current context's span id (16 hex characters with OpenTelemetry), or None."""
    return _span_id.get()


def get_trace_context_dict() -> dict[str, Any]:
    """``trace_id``, ``span_id``, ``parent_span_id`` and ``correlation_id`` (a str), for logs.

    Each value is a str or None. Typed ``dict[str, Any]``, as the reference's: a
    caller adds its own log fields to the dict it gets.
    """
    return {
        "trace_id": _trace_id.get(),
        "span_id": _span_id.get(),
        "parent_span_id": _parent_span_id.get(),
        "correlation_id": _id_str(_correlation_id.get()),
    }


__all__ = [
    "OTEL_AVAILABLE",
    "NoOpSpan",
    "StageflowTracer",
    "TraceContext",
    "clear_correlation_id",
    "ensure_correlation_id",
    "get_correlation_id",
    "get_span_id",
    "get_trace_context_dict",
    "get_trace_id",
    "set_correlation_id",
]
