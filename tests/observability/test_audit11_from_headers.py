"""TraceContext.from_headers takes str or bytes header names and values, and names what it rejects.

An ASGI scope's headers are bytes (``dict(scope["headers"])``); anything that is
neither str nor bytes used to fail with a bare AttributeError or TypeError from
inside (``'int' object has no attribute 'startswith'``, ``startswith first arg
must be bytes``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from stageflow_trio.observability.tracing import StageflowTracer, TraceContext

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
REQ = uuid.UUID("33333333-3333-4333-8333-333333333333")
ORG = uuid.UUID("44444444-4444-4444-8444-444444444444")

TEXT_HEADERS = {
    "traceparent": f"00-{TRACE}-{SPAN}-01",
    "x-request-id": str(REQ),
    "x-org-id": str(ORG),
    "x-baggage-tenant": "acme",
    "content-type": "application/json",
}


def as_bytes(headers: Mapping[str, str]) -> dict[bytes, bytes]:
    return {k.encode("latin-1"): v.encode("latin-1") for k, v in headers.items()}


def test_bytes_names_and_values_read_like_str_ones() -> None:
    ours = TraceContext.from_headers(as_bytes(TEXT_HEADERS))
    expected = TraceContext.from_headers(TEXT_HEADERS)
    assert ours.to_headers() == expected.to_headers()
    assert (ours.trace_id, ours.span_id, ours.request_id, ours.org_id) == (TRACE, SPAN, REQ, ORG)
    assert dict(ours.baggage) == {"tenant": "acme"}


def test_asgi_scope_headers_through_the_tracer() -> None:
    scope_headers = [(b"traceparent", f"00-{TRACE}-{SPAN}-01".encode()), (b"host", b"x")]
    ctx = StageflowTracer().extract_context(dict(scope_headers))
    assert (ctx.trace_id, ctx.span_id) == (TRACE, SPAN)


def test_str_and_bytes_mix_and_bytes_decode_as_latin_1() -> None:
    ctx = TraceContext.from_headers(
        {  # type: ignore[arg-type]
            b"traceparent": f"00-{TRACE}-{SPAN}-01",
            "x-request-id": str(REQ).encode(),
            b"x-baggage-city": "Z\u00fcrich".encode("latin-1"),
            "x-baggage-plain": "v",
        }
    )
    assert (ctx.trace_id, ctx.span_id, ctx.request_id) == (TRACE, SPAN, REQ)
    assert dict(ctx.baggage) == {"city": "Z\u00fcrich", "plain": "v"}


@pytest.mark.parametrize("name", [1, None, 2.5, ("traceparent",)])
def test_a_header_name_neither_str_nor_bytes_is_a_named_type_error(name: Any) -> None:
    with pytest.raises(
        TypeError,
        match=r"^TraceContext.from_headers: header names in headers must be str or bytes; got ",
    ):
        TraceContext.from_headers({"traceparent": f"00-{TRACE}-{SPAN}-01", name: "x"})


@pytest.mark.parametrize(
    "name", ["traceparent", "x-correlation-id", "x-request-id", "x-org-id", "x-baggage-k"]
)
@pytest.mark.parametrize("value", [5, 1.5, ["a"], bytearray(b"x")])
def test_a_read_value_neither_str_nor_bytes_is_a_named_type_error(name: str, value: Any) -> None:
    with pytest.raises(
        TypeError,
        match=rf"^TraceContext.from_headers: headers\['{name}'\] must be a str or bytes; got ",
    ):
        TraceContext.from_headers({name: value})


@pytest.mark.parametrize("as_bytes_names", [False, True])
def test_a_bytes_name_with_a_bad_value_is_named_by_its_decoded_name(as_bytes_names: bool) -> None:
    name: Any = b"x-request-id" if as_bytes_names else "x-request-id"
    with pytest.raises(TypeError, match=r"headers\['x-request-id'\] must be a str or bytes"):
        TraceContext.from_headers({name: 7})  # type: ignore[arg-type]


def test_values_of_headers_that_are_not_read_are_left_alone() -> None:
    # As the reference: only the headers it reads are looked at.
    headers: dict[str, Any] = {
        "traceparent": f"00-{TRACE}-{SPAN}-01",
        "content-length": 5,
        "x-other": None,
    }
    ctx = TraceContext.from_headers(headers)
    assert ctx.trace_id == TRACE


def test_empty_bytes_values_are_absent_values() -> None:
    ctx = TraceContext.from_headers({b"traceparent": b"", b"x-request-id": b""})
    assert (ctx.trace_id, ctx.request_id) == (None, None)


class CaseInsensitiveHeaders(Mapping[str, str]):
    """Like many HTTP libraries' header maps: ``get`` ignores case, iteration keeps it."""

    def __init__(self, items: dict[str, str]) -> None:
        self._items = items

    def __getitem__(self, key: str) -> str:
        for name, value in self._items.items():
            if name.lower() == key.lower():
                return value
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


def test_a_str_mapping_is_still_read_through_its_own_lookup() -> None:
    headers = CaseInsensitiveHeaders({"Traceparent": f"00-{TRACE}-{SPAN}-01"})
    assert TraceContext.from_headers(headers).trace_id == TRACE


def test_str_headers_still_match_the_reference(reference: Any) -> None:
    from stageflow.observability.tracing import TraceContext as RefTraceContext

    ours = TraceContext.from_headers(TEXT_HEADERS)
    theirs = RefTraceContext.from_headers(TEXT_HEADERS)
    assert ours.to_headers() == theirs.to_headers()
