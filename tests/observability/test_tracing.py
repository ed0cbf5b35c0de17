"""Tracing: TraceContext, correlation and trace ids per task, StageflowTracer, NoOpSpan."""

from __future__ import annotations

import contextlib
import pickle
import sys
import types
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio.observability import _otel
from stageflow_trio.observability import tracing as tracing_module
from stageflow_trio.observability.tracing import (
    OTEL_AVAILABLE,
    NoOpSpan,
    StageflowTracer,
    TraceContext,
    clear_correlation_id,
    ensure_correlation_id,
    get_correlation_id,
    get_span_id,
    get_trace_context_dict,
    get_trace_id,
    set_correlation_id,
)
from stageflow_trio.testing import reset_globals
from stageflow_trio.utils.frozen import FrozenDict

CID = uuid.UUID("11111111-1111-4111-8111-111111111111")
RUN = uuid.UUID("22222222-2222-4222-8222-222222222222")
REQ = uuid.UUID("33333333-3333-4333-8333-333333333333")
ORG = uuid.UUID("44444444-4444-4444-8444-444444444444")
TRACE = "0af7651916cd43dd8448eb211c80319c"
SPAN = "b7ad6b7169203331"
T0 = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def full_context() -> TraceContext:
    return TraceContext(
        trace_id=TRACE,
        span_id=SPAN,
        parent_span_id="00f067aa0ba902b7",
        correlation_id=CID,
        pipeline_run_id=RUN,
        request_id=REQ,
        org_id=ORG,
        baggage={"tenant": "acme", "plan": "pro"},
        created_at=T0,
    )


# --- TraceContext: fields ------------------------------------------------------------------


def test_defaults() -> None:
    before = datetime.now(UTC)
    ctx = TraceContext()
    after = datetime.now(UTC)
    assert (ctx.trace_id, ctx.span_id, ctx.parent_span_id) == (None, None, None)
    assert (ctx.correlation_id, ctx.pipeline_run_id, ctx.request_id, ctx.org_id) == (None,) * 4
    assert ctx.baggage == {}
    assert before <= ctx.created_at <= after
    assert ctx.created_at.tzinfo is UTC
    assert TraceContext(baggage=None).baggage == {}


def test_uuid_strings_are_parsed() -> None:
    ctx = TraceContext(correlation_id=str(CID), pipeline_run_id=str(RUN), org_id=str(ORG))
    assert (ctx.correlation_id, ctx.pipeline_run_id, ctx.org_id) == (CID, RUN, ORG)


def test_is_frozen_and_its_baggage_read_only() -> None:
    ctx = full_context()
    with pytest.raises(AttributeError):
        ctx.trace_id = "x"  # type: ignore[misc]
    assert isinstance(ctx.baggage, FrozenDict)
    with pytest.raises(TypeError):
        ctx.baggage["tenant"] = "other"
    assert ctx == full_context()
    baggage = FrozenDict({"a": "b"})
    assert TraceContext(baggage=baggage).baggage is baggage  # already read-only: not copied
    assert pickle.loads(pickle.dumps(ctx)) == ctx


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"trace_id": 5}, TypeError, "TraceContext: trace_id must be a str or None; got int"),
        ({"span_id": b"x"}, TypeError, "TraceContext: span_id must be a str or None; got bytes"),
        (
            {"parent_span_id": 1.0},
            TypeError,
            "TraceContext: parent_span_id must be a str or None; got float",
        ),
        (
            {"correlation_id": "nope"},
            ValueError,
            "correlation_id must be a UUID string, got 'nope'",
        ),
        (
            {"request_id": 7},
            TypeError,
            "request_id must be a UUID, a UUID string or None, got int",
        ),
        ({"baggage": [("a", "b")]}, TypeError, "TraceContext: baggage must be a mapping; got list"),
        (
            {"baggage": {"a": 1}},
            TypeError,
            "TraceContext: baggage keys and values must be str; got str -> int",
        ),
        (
            {"created_at": "2026-01-01"},
            TypeError,
            "TraceContext: created_at must be a datetime; got str",
        ),
    ],
)
def test_bad_fields_name_the_field(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=f"^{message}$"):
        TraceContext(**kwargs)


# --- TraceContext: serialization -----------------------------------------------------------


def test_to_dict() -> None:
    assert full_context().to_dict() == {
        "trace_id": TRACE,
        "span_id": SPAN,
        "parent_span_id": "00f067aa0ba902b7",
        "correlation_id": str(CID),
        "pipeline_run_id": str(RUN),
        "request_id": str(REQ),
        "org_id": str(ORG),
        "baggage": {"tenant": "acme", "plan": "pro"},
        "created_at": "2026-01-02T03:04:05.678000+00:00",
    }
    empty = TraceContext(created_at=T0).to_dict()
    assert empty["correlation_id"] is None
    assert type(empty["baggage"]) is dict


def test_to_headers() -> None:
    assert full_context().to_headers() == {
        "traceparent": f"00-{TRACE}-{SPAN}-01",
        "x-correlation-id": str(CID),
        "x-pipeline-run-id": str(RUN),
        "x-request-id": str(REQ),
        "x-org-id": str(ORG),
        "x-baggage-tenant": "acme",
        "x-baggage-plan": "pro",
    }
    assert TraceContext(trace_id=TRACE).to_headers() == {
        "traceparent": f"00-{TRACE}-0000000000000000-01"
    }
    assert TraceContext(span_id=SPAN).to_headers() == {}


def test_headers_round_trip() -> None:
    back = TraceContext.from_headers(full_context().to_headers())
    assert back.to_headers() == full_context().to_headers()
    assert back.parent_span_id is None  # never carried by the headers


@pytest.mark.parametrize(
    ("traceparent", "trace_id", "span_id"),
    [
        (f"00-{TRACE}-{SPAN}-01", TRACE, SPAN),
        (f"00-{TRACE}-short-01", TRACE, None),
        (f"00-abc-{SPAN}", None, SPAN),
        (f"00-{TRACE}", None, None),
        ("", None, None),
    ],
)
def test_from_headers_reads_traceparent(
    traceparent: str, trace_id: str | None, span_id: str | None
) -> None:
    ctx = TraceContext.from_headers({"traceparent": traceparent})
    assert (ctx.trace_id, ctx.span_id) == (trace_id, span_id)


def test_from_headers_ignores_ids_that_are_not_uuids() -> None:
    ctx = TraceContext.from_headers(
        {"x-correlation-id": "x", "x-request-id": str(REQ), "x-org-id": "", "other": "1"}
    )
    assert (ctx.correlation_id, ctx.request_id, ctx.org_id) == (None, REQ, None)
    assert ctx.baggage == {}


def test_from_headers_needs_a_mapping() -> None:
    with pytest.raises(
        TypeError, match=r"^TraceContext.from_headers: headers must be a mapping; got list$"
    ):
        TraceContext.from_headers([("traceparent", "x")])  # type: ignore[arg-type]


HEADER_NAMES = st.sampled_from(
    [
        "traceparent",
        "x-correlation-id",
        "x-pipeline-run-id",
        "x-request-id",
        "x-org-id",
        "x-baggage-a",
        "x-baggage-",
        "x-other",
    ]
)
HEADER_VALUES = st.one_of(
    st.uuids().map(str),
    st.text(alphabet="0123456789abcdef-", max_size=60),
    st.builds(
        lambda t, s, f: f"00-{t}-{s}-{f}",
        st.text(alphabet="0123456789abcdef", min_size=31, max_size=33),
        st.text(alphabet="0123456789abcdef", min_size=15, max_size=17),
        st.sampled_from(["01", "00", "03", "zz", "1"]),
    ),
)


@pytest.mark.usefixtures("reference")
@given(headers=st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=8))
def test_from_headers_matches_the_reference(headers: dict[str, str]) -> None:
    from stageflow.observability.tracing import TraceContext as RefTraceContext

    ours = TraceContext.from_headers(headers)
    theirs = RefTraceContext.from_headers(headers)
    ours_dict, theirs_dict = ours.to_dict(), theirs.to_dict()
    del ours_dict["created_at"], theirs_dict["created_at"]
    assert ours_dict == theirs_dict
    expected = theirs.to_headers()
    if "traceparent" in expected:  # the reference always writes "01"; ours the header's flags
        expected["traceparent"] = expected["traceparent"][:-2] + f"{ours.trace_flags:02x}"
    assert ours.to_headers() == expected


def test_to_dict_and_headers_match_the_reference(reference: ModuleType) -> None:
    ref = reference.observability.tracing.TraceContext(
        trace_id=TRACE,
        span_id=SPAN,
        parent_span_id="00f067aa0ba902b7",
        correlation_id=CID,
        pipeline_run_id=RUN,
        request_id=REQ,
        org_id=ORG,
        baggage={"tenant": "acme", "plan": "pro"},
        created_at=T0,
    )
    assert full_context().to_dict() == ref.to_dict()
    assert full_context().to_headers() == ref.to_headers()


# --- capture and activate -------------------------------------------------------------------


def test_activate_sets_and_restores_the_ids() -> None:
    with full_context().activate():
        assert get_trace_context_dict() == {
            "trace_id": TRACE,
            "span_id": SPAN,
            "parent_span_id": "00f067aa0ba902b7",
            "correlation_id": str(CID),
        }
        assert (get_trace_id(), get_span_id(), get_correlation_id()) == (TRACE, SPAN, CID)
        captured = TraceContext.capture()
        assert (captured.trace_id, captured.span_id) == (TRACE, SPAN)
        assert (captured.parent_span_id, captured.correlation_id) == ("00f067aa0ba902b7", CID)
        assert captured.pipeline_run_id is None  # only the four variables are captured
    assert get_trace_context_dict() == dict.fromkeys(
        ("trace_id", "span_id", "parent_span_id", "correlation_id")
    )


def test_activate_writes_only_the_set_ids_and_restores_on_error() -> None:
    set_correlation_id(CID)
    seen: list[tuple[str | None, uuid.UUID | None]] = []

    def fail_inside() -> None:
        with TraceContext(trace_id=TRACE).activate():
            seen.append((get_trace_id(), get_correlation_id()))
            raise RuntimeError

    with pytest.raises(RuntimeError):
        fail_inside()
    assert seen == [(TRACE, CID)]
    assert (get_trace_id(), get_correlation_id()) == (None, CID)


def test_nested_activation() -> None:
    with TraceContext(trace_id="a" * 32).activate():
        with TraceContext(trace_id="b" * 32, span_id="c" * 16).activate():
            assert (get_trace_id(), get_span_id()) == ("b" * 32, "c" * 16)
        assert (get_trace_id(), get_span_id()) == ("a" * 32, None)
        with TraceContext(span_id="d" * 16).activate():
            assert (get_trace_id(), get_span_id()) == ("a" * 32, "d" * 16)


def test_trace_context_dict_matches_the_reference(reference: ModuleType) -> None:
    ref = reference.observability.tracing
    ours = full_context()
    theirs = ref.TraceContext(
        trace_id=TRACE, span_id=SPAN, parent_span_id="00f067aa0ba902b7", correlation_id=CID
    )
    with ours.activate(), theirs.activate():
        assert get_trace_context_dict() == ref.get_trace_context_dict()
    assert get_trace_context_dict() == ref.get_trace_context_dict()


# --- correlation ids ------------------------------------------------------------------------


def test_correlation_id_helpers() -> None:
    assert get_correlation_id() is None
    set_correlation_id(str(CID))
    assert get_correlation_id() == CID
    assert ensure_correlation_id() == CID
    clear_correlation_id()
    assert get_correlation_id() is None
    made = ensure_correlation_id()
    assert made.version == 4
    assert get_correlation_id() == made
    assert ensure_correlation_id() == made


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        ("not-a-uuid", ValueError, "correlation_id must be a UUID string, got 'not-a-uuid'"),
        (12, TypeError, "correlation_id must be a UUID, a UUID string or None, got int"),
    ],
)
def test_set_correlation_id_rejects_non_uuids(
    value: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=f"^{message}$"):
        set_correlation_id(value)  # type: ignore[arg-type]
    assert get_correlation_id() is None


def test_reset_globals_clears_the_ids_of_the_calling_context() -> None:
    set_correlation_id(CID)
    with full_context().activate():
        reset_globals()
        assert get_trace_context_dict() == dict.fromkeys(
            ("trace_id", "span_id", "parent_span_id", "correlation_id")
        )


async def test_concurrent_tasks_keep_their_own_correlation_ids() -> None:
    ids = [uuid.UUID(int=n) for n in range(1, 6)]
    seen: dict[int, list[uuid.UUID | None]] = {}
    set_correlation_id(CID)

    async def worker(n: int, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        seen[n] = [get_correlation_id()]  # inherited from the parent at spawn
        set_correlation_id(ids[n])
        task_status.started()
        await trio.testing.wait_all_tasks_blocked()  # every sibling has set its own by now
        seen[n].append(get_correlation_id())
        with TraceContext(trace_id=f"{n:032x}").activate():
            await trio.lowlevel.checkpoint()
            seen[n].append(get_trace_id())  # type: ignore[arg-type]

    async with trio.open_nursery() as nursery:
        for n in range(5):
            await nursery.start(worker, n)
        assert get_correlation_id() == CID  # the children's writes stay theirs
    assert seen == {n: [CID, ids[n], f"{n:032x}"] for n in range(5)}
    assert (get_correlation_id(), get_trace_id()) == (CID, None)


async def test_ensure_in_a_child_task_does_not_reach_the_parent() -> None:
    made: list[uuid.UUID] = []

    async def child() -> None:
        made.append(ensure_correlation_id())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(child)
        nursery.start_soon(child)
    assert get_correlation_id() is None
    assert len(set(made)) == 2


# --- StageflowTracer and NoOpSpan without OpenTelemetry -------------------------------------

needs_no_otel = pytest.mark.skipif(OTEL_AVAILABLE, reason="checks the path without OpenTelemetry")


@needs_no_otel
def test_tracer_without_opentelemetry_hands_out_no_op_spans() -> None:
    tracer = StageflowTracer()
    assert tracer.is_enabled is False
    attributes = {"user": "u1"}
    with tracer.start_span("work", attributes=attributes) as span:
        assert isinstance(span, NoOpSpan)
        assert get_trace_id() is None  # a no-op span sets no ids
        span.set_attribute("size", 3)
    assert span.name == "work"
    assert span.attributes == {"user": "u1", "size": 3}
    assert attributes == {"user": "u1"}  # the caller's dict is left alone


def test_tracer_argument_checks() -> None:
    with pytest.raises(TypeError, match=r"^StageflowTracer: name must be a str; got int$"):
        StageflowTracer(3)  # type: ignore[arg-type]
    tracer = StageflowTracer("svc")
    with pytest.raises(
        TypeError, match=r"^StageflowTracer.start_span: name must be a str; got NoneType$"
    ):
        tracer.start_span(None)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError,
        match=r"^StageflowTracer.start_span: attributes must be a mapping or None; got list$",
    ):
        tracer.start_span("s", attributes=[1])  # type: ignore[arg-type]
    with pytest.raises(
        TypeError,
        match=r"^StageflowTracer.inject_context: carrier must be a mutable mapping; got tuple$",
    ):
        tracer.inject_context(())  # type: ignore[arg-type]


@needs_no_otel
def test_inject_and_extract_without_opentelemetry() -> None:
    tracer = StageflowTracer()
    carrier = {"keep": "me"}
    with full_context().activate():
        tracer.inject_context(carrier)
    assert carrier == {
        "keep": "me",
        "traceparent": f"00-{TRACE}-{SPAN}-01",
        "x-correlation-id": str(CID),
    }
    back = tracer.extract_context(carrier)
    assert (back.trace_id, back.span_id, back.correlation_id) == (TRACE, SPAN, CID)


def test_no_op_span_records_what_is_set() -> None:
    span = NoOpSpan("s")
    assert span.attributes == {}
    span.set_attribute("k", 1)
    span.set_status("ERROR")
    span.add_event("e")
    span.add_event("f", {"x": 1})
    span.record_exception(ValueError("bad"))
    assert span.attributes == {"k": 1, "_status": "ERROR"}
    span.set_status("ERROR", "why")
    assert span.attributes["_status_description"] == "why"
    assert span.events == (
        ("e", {}),
        ("f", {"x": 1}),
        ("exception", {"exception.type": "ValueError", "exception.message": "bad"}),
    )
    assert span.is_recording() is False
    assert span.get_span_context() is None
    with pytest.raises(TypeError):
        span.attributes["k"] = 2  # type: ignore[index]


def test_no_op_span_matches_the_reference(reference: ModuleType) -> None:
    ref_span = reference.observability.tracing.NoOpSpan("s", attributes={"a": 1})
    span = NoOpSpan("s", attributes={"a": 1})
    for target in (span, ref_span):
        target.set_attribute("b", 2)
        target.set_status("OK", "fine")
        target.set_status("UNSET")
        target.add_event("e", {"x": 1})
        target.record_exception(KeyError("k"))
    assert span.attributes == ref_span._attributes
    assert list(span.events) == ref_span._events
    assert (span.is_recording(), span.get_span_context()) == (
        ref_span.is_recording(),
        ref_span.get_span_context(),
    )


# --- with OpenTelemetry (a fake of the API's surface) ---------------------------------------


class FakeSpanContext:
    def __init__(
        self,
        trace_id: int,
        span_id: int,
        *,
        valid: bool = True,
        trace_flags: int = 0x01,
        trace_state: Any = None,
    ) -> None:
        self.trace_id = trace_id
        self.span_id = span_id
        self.is_valid = valid
        self.trace_flags = trace_flags
        # The API's TraceState is a mapping with to_header(); an empty one is falsy.
        self.trace_state = trace_state if trace_state is not None else {}


class FakeSpan:
    def __init__(self, name: str, span_ctx: FakeSpanContext, *, recording: bool = True) -> None:
        self.name = name
        self._ctx = span_ctx
        self._recording = recording

    def get_span_context(self) -> FakeSpanContext:
        return self._ctx

    def is_recording(self) -> bool:
        return self._recording


class FakeOtel:
    """Just enough of opentelemetry-api: tracers, the current span, the W3C propagator."""

    INTERNAL = "INTERNAL"

    def __init__(self, *, with_propagator: bool = True) -> None:
        self.tracer_names: list[str] = []
        self.started: list[tuple[str, Any, Any]] = []
        self.current: Any = None
        self.next_valid = True
        self.trace = types.ModuleType("opentelemetry.trace")
        self.trace.get_tracer = self._get_tracer  # type: ignore[attr-defined]
        self.trace.get_current_span = lambda: self.current  # type: ignore[attr-defined]
        self.trace.SpanKind = types.SimpleNamespace(INTERNAL=self.INTERNAL)  # type: ignore[attr-defined]
        self.context = types.ModuleType("opentelemetry.context")
        self.package = types.ModuleType("opentelemetry")
        self.package.trace = self.trace  # type: ignore[attr-defined]
        self.package.context = self.context  # type: ignore[attr-defined]
        self.modules = {
            "opentelemetry": self.package,
            "opentelemetry.trace": self.trace,
            "opentelemetry.context": self.context,
        }
        if with_propagator:
            propagation = types.ModuleType("opentelemetry.trace.propagation")
            tracecontext = types.ModuleType("opentelemetry.trace.propagation.tracecontext")
            tracecontext.TraceContextTextMapPropagator = self._propagator  # type: ignore[attr-defined]
            self.modules["opentelemetry.trace.propagation"] = propagation
            self.modules["opentelemetry.trace.propagation.tracecontext"] = tracecontext

    def _get_tracer(self, name: str) -> FakeOtel:
        self.tracer_names.append(name)
        return self

    @contextlib.contextmanager
    def start_as_current_span(self, name: str, *, kind: Any, attributes: Any) -> Iterator[Any]:
        self.started.append((name, kind, attributes))
        span = FakeSpan(name, FakeSpanContext(0xABC, 0xDEF, valid=self.next_valid))
        previous, self.current = self.current, span
        try:
            yield span
        finally:
            self.current = previous

    def _propagator(self) -> Any:
        fake = self

        class Propagator:
            def inject(self, carrier: dict[str, str]) -> None:
                carrier["traceparent"] = "from-otel"
                carrier["tracestate"] = "vendor=1"
                assert fake.current is not None

        return Propagator()


@pytest.fixture
def fake_otel(monkeypatch: pytest.MonkeyPatch) -> FakeOtel:
    otel = FakeOtel()
    for name, module in otel.modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(_otel, "_api", _otel._UNSET)
    return otel


OTEL_TRACE = f"{0xABC:032x}"
OTEL_SPAN = f"{0xDEF:016x}"


def test_tracer_starts_current_spans_on_opentelemetry(fake_otel: FakeOtel) -> None:
    tracer = StageflowTracer("svc")
    assert tracer.is_enabled is True
    assert fake_otel.tracer_names == ["svc"]
    with tracer.start_span("work", attributes={"a": 1}) as span:
        assert span.name == "work"
        assert (get_trace_id(), get_span_id()) == (OTEL_TRACE, OTEL_SPAN)
        captured = TraceContext.capture()
        assert (captured.trace_id, captured.span_id) == (OTEL_TRACE, OTEL_SPAN)
    assert (get_trace_id(), get_span_id()) == (None, None)
    with tracer.start_span("client", kind="CLIENT"):
        pass
    assert fake_otel.started == [("work", "INTERNAL", {"a": 1}), ("client", "CLIENT", None)]


def test_an_invalid_otel_span_context_sets_no_ids(fake_otel: FakeOtel) -> None:
    fake_otel.next_valid = False
    with TraceContext(trace_id=TRACE).activate(), StageflowTracer().start_span("s") as span:
        assert isinstance(span, FakeSpan)
        assert get_trace_id() == TRACE
        assert TraceContext.capture().trace_id == TRACE


def test_capture_ignores_a_span_that_is_not_recording(fake_otel: FakeOtel) -> None:
    with TraceContext(trace_id=TRACE).activate():
        assert fake_otel.current is None
        assert TraceContext.capture().trace_id == TRACE
    fake_otel.current = FakeSpan("idle", FakeSpanContext(1, 2), recording=False)
    with TraceContext(trace_id=TRACE).activate():
        assert TraceContext.capture().trace_id == TRACE
    fake_otel.current = FakeSpan("on", FakeSpanContext(1, 2))
    assert TraceContext.capture().trace_id == f"{1:032x}"


def test_inject_runs_the_otel_propagator_first(fake_otel: FakeOtel) -> None:
    tracer = StageflowTracer()
    carrier: dict[str, str] = {}
    with tracer.start_span("s"):
        tracer.inject_context(carrier)
    # The propagator's traceparent is kept (it carries the sampled flag; audit 19).
    assert carrier == {"traceparent": "from-otel", "tracestate": "vendor=1"}


def test_inject_without_a_propagator(monkeypatch: pytest.MonkeyPatch) -> None:
    otel = FakeOtel(with_propagator=False)
    for name, module in otel.modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(_otel, "_api", _otel._UNSET)
    carrier: dict[str, str] = {}
    with StageflowTracer().start_span("s"):
        StageflowTracer().inject_context(carrier)
    assert carrier == {"traceparent": f"00-{OTEL_TRACE}-{OTEL_SPAN}-01"}


def test_the_otel_import_is_attempted_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_otel, "_api", _otel._UNSET)
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # makes the import fail
    assert _otel.otel_api() is None
    monkeypatch.setitem(sys.modules, "opentelemetry", FakeOtel().package)
    assert _otel.otel_api() is None  # cached


def test_otel_available_reflects_the_import() -> None:
    try:
        import opentelemetry.trace  # noqa: F401
    except ImportError:
        assert tracing_module.OTEL_AVAILABLE is False
    else:  # pragma: no cover - only with the otel extra
        assert tracing_module.OTEL_AVAILABLE is True


# --- with the real OpenTelemetry SDK, next to the reference ---------------------------------


def _real_sdk() -> Any:
    try:
        from opentelemetry.sdk.trace import TracerProvider
    except ImportError:
        return None
    return TracerProvider


@pytest.mark.skipif(_real_sdk() is None, reason="needs opentelemetry-sdk")
def test_real_opentelemetry_ids_match_the_reference(
    reference: ModuleType,
) -> None:  # pragma: no cover - only with opentelemetry-sdk installed
    from opentelemetry import trace

    trace.set_tracer_provider(_real_sdk()())
    ref = reference.observability.tracing
    ours = StageflowTracer("svc")
    theirs = ref.StageflowTracer("svc")
    assert ours.is_enabled
    assert theirs.is_enabled
    with ours.start_span("s") as span:
        ids = (get_trace_id(), get_span_id())
        carrier: dict[str, str] = {}
        ours.inject_context(carrier)
        ref_carrier: dict[str, str] = {}
        theirs.inject_context(ref_carrier)
        # The same ids; the flags are OpenTelemetry's own in ours ("03" where the SDK
        # sets W3C's random-trace-id bit), always "01" in the reference's (audit 19).
        otel_flags = format(span.get_span_context().trace_flags, "02x")
        assert carrier.pop("traceparent") == ref_carrier.pop("traceparent")[:-2] + otel_flags
        assert carrier == ref_carrier
        assert TraceContext.capture().trace_id == ref.TraceContext.capture().trace_id
    span_ctx = span.get_span_context()
    assert ids == (format(span_ctx.trace_id, "032x"), format(span_ctx.span_id, "016x"))
