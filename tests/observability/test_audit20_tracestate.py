"""Audit 20: the W3C ``tracestate`` header travels with the ``traceparent``.

``TraceContext.from_headers`` read only the ``traceparent``: the vendors' state in
``tracestate``, which the spec says a service must pass on with it, was dropped,
so a service continuing its caller's trace sent it nowhere. ``TraceContext`` now
keeps it as ``trace_state``; ``to_headers`` writes it, ``activate()`` makes it
current (for ``capture()`` and, with OpenTelemetry, in the remote parent's span
context, from which the SDK's spans and the propagator take it).

The OpenTelemetry tests reuse the SDK recorder of test_audit19_otel and skip
without the SDK; the others run with and without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs
import pytest

from stageflow_trio.observability import _otel
from stageflow_trio.observability import tracing as tracing_module
from stageflow_trio.observability.tracing import NoOpSpan, StageflowTracer, TraceContext
from stageflow_trio.testing import reset_globals
from tests.observability.test_audit19_otel import (
    INCOMING_SPAN,
    INCOMING_TRACE,
    Recorder,
    otel,  # noqa: F401  # the SDK recorder fixture, used through spans()
)

STATE = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE,tenant1@vendor=a b"
TRACEPARENT = f"00-{INCOMING_TRACE}-{INCOMING_SPAN}-01"


def incoming(state: str = STATE, flags: str = "01") -> dict[str, str]:
    return {
        "traceparent": f"00-{INCOMING_TRACE}-{INCOMING_SPAN}-{flags}",
        "tracestate": state,
        "x-correlation-id": "55555555-5555-4555-8555-555555555555",
    }


@pytest.fixture
def spans(request: pytest.FixtureRequest) -> Iterator[Recorder]:
    """test_audit19_otel's recorder; the test skips without opentelemetry-sdk."""
    pytest.importorskip("opentelemetry.sdk")
    recorder: Recorder = request.getfixturevalue("otel")
    yield recorder
    recorder.check_clean()  # also: no OpenTelemetry warning (it logs a tracestate it rejects)


def hex_span_id(span: Any) -> str:
    return format(span.get_span_context().span_id, "016x")


# --- TraceContext.trace_state and the headers ------------------------------------------------


def test_tracestate_travels_through_the_headers() -> None:
    ctx = TraceContext.from_headers(incoming())
    assert ctx.trace_state == STATE
    assert ctx.to_headers() == incoming()
    assert "trace_state" not in ctx.to_dict()  # the reference's keys
    # Bytes, as an ASGI scope has them; optional whitespace and empty members are
    # dropped, a value's leading space is its own; the longest lists are kept whole.
    raw = {b"traceparent": TRACEPARENT.encode(), b"tracestate": b" a=1 ,, \tb= 2\t, "}
    assert TraceContext.from_headers(raw).trace_state == "a=1,b= 2"
    longest = ",".join(f"k{i:02d}{'k' * 200}={'v' * 51}" for i in range(32))  # 32 members
    assert len(longest) == 8191
    assert TraceContext.from_headers(incoming(longest)).to_headers()["tracestate"] == longest
    # No tracestate (or one without members): nothing changes.
    for headers in ({"traceparent": TRACEPARENT}, incoming(""), incoming(" , \t")):
        ctx = TraceContext.from_headers(headers)
        assert ctx.trace_state is None
        assert ctx.to_headers() == {"traceparent": TRACEPARENT, **_ids(headers)}
    # Written only with the traceparent it belongs to.
    assert TraceContext(trace_state="a=1").to_headers() == {}
    assert TraceContext(trace_id=INCOMING_TRACE, trace_state="a=1").to_headers() == {
        "traceparent": f"00-{INCOMING_TRACE}-{'0' * 16}-01",
        "tracestate": "a=1",
    }


def _ids(headers: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in headers.items() if key.startswith("x-")}


@pytest.mark.parametrize(
    "state",
    [
        "Rojo=1",  # an upper-case key
        "rojo",  # no "="
        "rojo=1,congo",
        "rojo=a=b",  # "=" in a value
        "rojo=",  # an empty value
        "-rojo=1",  # a key starts with a letter (a digit before an "@")
        "1rojo=1",
        "t@1vendor=1",  # a vendor name after "@" starts with a letter
        "rojo=caf\u00e9",  # not ASCII
        "rojo=1\r\nx-injected: 1",  # a control character: no header injection
        "rojo=1,rojo=2",  # a key twice
        "k" * 257 + "=1",  # a key of more than 256 characters
        "rojo=" + "v" * 257,  # a value of more than 256 characters
        ",".join(f"k{i}=1" for i in range(33)),  # more than 32 members
        "rojo=1" + " " * 8187,  # longer than 8192 characters (OpenTelemetry's limit)
    ],
)
def test_a_malformed_or_oversized_tracestate_is_discarded_and_the_traceparent_kept(
    state: str,
) -> None:
    ctx = TraceContext.from_headers(incoming(state, flags="00"))
    assert (ctx.trace_id, ctx.span_id, ctx.trace_flags) == (INCOMING_TRACE, INCOMING_SPAN, 0)
    assert ctx.trace_state is None
    without = {key: value for key, value in incoming(flags="00").items() if key != "tracestate"}
    assert ctx.to_headers() == without
    with pytest.raises(ValueError, match=r"^TraceContext: trace_state "):
        TraceContext(trace_state=state)


def test_tracestate_is_read_only_with_a_traceparent_that_can_be_continued() -> None:
    for traceparent in (
        None,
        f"00-{INCOMING_TRACE}-{'0' * 16}-01",  # no parent span
        f"00-{'0' * 32}-{INCOMING_SPAN}-01",  # no trace
        f"00-{INCOMING_TRACE.upper()}-{INCOMING_SPAN}-01",  # not lower-case hex
        f"00-{INCOMING_TRACE}-{'x' * 16}-01",
        "garbage",
    ):
        headers: dict[str, Any] = {"tracestate": STATE, "x-baggage-k": "v"}
        if traceparent is not None:
            headers["traceparent"] = traceparent
        assert TraceContext.from_headers(headers).trace_state is None
        # A header that is not read is not looked at, as before.
        headers["tracestate"] = 7
        assert TraceContext.from_headers(headers).trace_state is None
    read: dict[str, Any] = {"traceparent": TRACEPARENT, "tracestate": 7}
    with pytest.raises(
        TypeError, match=r"^TraceContext.from_headers: headers\['tracestate'\] must be a str or"
    ):
        TraceContext.from_headers(read)


def test_trace_state_is_the_last_field_and_checked() -> None:
    assert [field.name for field in attrs.fields(TraceContext)][-2:] == [
        "trace_flags",
        "trace_state",
    ]
    assert TraceContext().trace_state is None
    assert TraceContext(trace_state=" a=1 , b=2 ").trace_state == "a=1,b=2"
    assert TraceContext(trace_state=",").trace_state is None
    with pytest.raises(TypeError, match=r"^TraceContext: trace_state must be a str or None; got"):
        TraceContext(trace_state=b"a=1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^TraceContext: trace_state keys must be unique; got"):
        TraceContext(trace_state="a=1,a=1")
    with pytest.raises(ValueError, match=r"at most 32 list members; got 33$"):
        TraceContext(trace_state=",".join(f"k{i}=1" for i in range(33)))
    with pytest.raises(ValueError, match=r"at most 8192 characters; got 8193$"):
        TraceContext(trace_state="a=1" + " " * 8190)
    with pytest.raises(ValueError, match=r"must be key=value with a W3C key .*; got 'A=1'$"):
        TraceContext(trace_state="b=2, A=1")


# --- without OpenTelemetry: the fallback passes it on --------------------------------------------


def test_without_opentelemetry_the_tracestate_is_passed_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_otel, "_api", None)  # as without opentelemetry-api (in either venv)
    tracer = StageflowTracer("svc")
    with tracer.extract_context(incoming()).activate():
        with tracer.start_span("handle") as span:
            assert isinstance(span, NoOpSpan)
            assert TraceContext.capture().trace_state == STATE
            out: dict[str, str] = {}
            tracer.inject_context(out)
            # A context of another trace brings its own state, or none.
            with TraceContext(trace_id="1" * 32).activate():
                assert TraceContext.capture().trace_state is None
            # One without a trace id leaves the trace's state alone.
            with TraceContext(trace_state="other=1").activate():
                assert TraceContext.capture().trace_state == STATE
    assert out == incoming()
    assert TraceContext.capture().trace_state is None
    # reset_globals() (between synchronous tests) clears it with the ids.
    tracing_module._trace_state.set(STATE)
    reset_globals()
    assert TraceContext.capture().trace_state is None


# --- with OpenTelemetry: the remote parent carries it to the spans and the propagator --------


@pytest.mark.parametrize("flags", ["01", "00"])
def test_with_opentelemetry_spans_carry_the_tracestate_and_inject_writes_it(
    spans: Recorder, flags: str
) -> None:
    tracer = StageflowTracer("svc")
    with tracer.extract_context(incoming(flags=flags)).activate():
        out: dict[str, str] = {}
        tracer.inject_context(out)  # the remote parent's, written by the propagator
        assert out == incoming(flags=flags)
        with tracer.start_span("handle") as span:
            span_id = hex_span_id(span)
            assert dict(span.get_span_context().trace_state) == {
                "rojo": "00f067aa0ba902b7",
                "congo": "t61rcWkgMzE",
                "tenant1@vendor": "a b",
            }
            assert TraceContext.capture().trace_state == STATE
            out = {}
            tracer.inject_context(out)
    traceparent = f"00-{INCOMING_TRACE}-{span_id}-{flags}"
    assert out == {**incoming(flags=flags), "traceparent": traceparent}
    assert tracer.extract_context(out).trace_state == STATE  # and the next service reads it
    if flags == "01":
        assert spans.one("handle").context.trace_state.to_header() == STATE


def test_with_opentelemetry_a_tracestate_goes_only_with_its_traceparent(spans: Recorder) -> None:
    tracer = StageflowTracer("svc")
    # No parent span to continue: the span starts a new trace, which has no state;
    # the propagator's traceparent is sent, and no tracestate with it.
    no_parent = TraceContext(trace_id=INCOMING_TRACE, trace_state=STATE)
    with no_parent.activate(), tracer.start_span("root") as root:
        assert len(root.get_span_context().trace_state) == 0
        out: dict[str, str] = {}
        tracer.inject_context(out)
    root_ctx = root.get_span_context()
    assert root_ctx.trace_id != int(INCOMING_TRACE, 16)
    assert out == {
        "traceparent": f"00-{root_ctx.trace_id:032x}-{hex_span_id(root)}-{root_ctx.trace_flags:02x}"
    }
    # A discarded header: the trace goes on without state.
    with tracer.extract_context(incoming("Bad=1")).activate(), tracer.start_span("s") as span:
        assert len(span.get_span_context().trace_state) == 0
        out = {}
        tracer.inject_context(out)
    assert "tracestate" not in out
    assert out["traceparent"] == f"00-{INCOMING_TRACE}-{hex_span_id(span)}-01"
