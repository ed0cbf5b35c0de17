"""Audit 23: HttpFetcher and WebSearchClient against real loopback HTTP servers.

Each test starts a small HTTP/1.1 responder with ``trio.serve_tcp`` on
127.0.0.1 (port 0) and fetches from it over httpx's trio backend. httpcore's
timeouts run on trio's clock, so slow servers are tested in virtual time
(``autojump_clock``).
"""

from __future__ import annotations

import gzip
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial

import pytest
import trio

from stageflow_trio.websearch import FetchConfig, HttpFetcher, WebSearchClient, WebSearchConfig


@dataclass
class Request:
    method: str
    target: str
    headers: list[tuple[str, str]]

    def header_values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]


@dataclass
class Reply:
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    # None: send a Content-Length; True: chunked; False: neither (the body ends at close).
    chunked: bool | None = None


Handler = Callable[[Request, trio.SocketStream], Awaitable[Reply | None]]


async def _read_request(stream: trio.SocketStream, buffer: bytearray) -> Request | None:
    while b"\r\n\r\n" not in buffer:
        data = await stream.receive_some(65536)
        if not data:
            return None
        buffer += data
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    buffer[:] = rest
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = []
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers.append((key.strip(), value.strip()))
    return Request(method, target, headers)


def _encode(reply: Reply) -> bytes:
    reason = {200: "OK", 204: "No Content", 304: "Not Modified"}.get(reply.status, "X")
    lines = [f"HTTP/1.1 {reply.status} {reason}"]
    lines += [f"{key}: {value}" for key, value in reply.headers]
    body = reply.body
    if reply.chunked is None and reply.status not in (204, 304):
        lines.append(f"Content-Length: {len(body)}")
    elif reply.chunked:
        lines.append("Transfer-Encoding: chunked")
        parts = [body[i : i + 7] for i in range(0, len(body), 7)]
        body = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts) + b"0\r\n\r\n"
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[tuple[str, list[Request]]]:
    """Serve ``handler`` on 127.0.0.1; yields the base URL and the requests seen."""
    seen: list[Request] = []

    async def connection(stream: trio.SocketStream) -> None:
        buffer = bytearray()
        try:
            while True:
                request = await _read_request(stream, buffer)
                if request is None:
                    return
                seen.append(request)
                reply = await handler(request, stream)
                if reply is None:  # the handler dealt with the stream itself
                    return
                await stream.send_all(_encode(reply))
                if reply.chunked is False:
                    return
        except trio.BrokenResourceError:
            return
        finally:
            await stream.aclose()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, connection, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        yield f"http://127.0.0.1:{port}", seen
        nursery.cancel_scope.cancel()


def html(body: str, content_type: str = "text/html; charset=utf-8") -> Reply:
    return Reply(headers=[("Content-Type", content_type)], body=body.encode("utf-8"))


PAGE = (
    "<html><head><title>Café</title></head>"
    "<body><h1>Naïve</h1><p>Crème brûlée.</p><a href='next'>next</a></body></html>"
)


def site(request: Request) -> Reply:
    """A site of fixed answers, one per path (shared with the reference's server)."""
    path = request.target
    if path.startswith("/redirect/"):  # /redirect/<status>/<location path>
        _, _, status, location = path.split("/", 3)
        return Reply(int(status), [("Location", "/" + location)])
    if path.startswith("/chain/"):  # /chain/<n>: n redirects, then the page
        left = int(path.removeprefix("/chain/"))
        if left:
            return Reply(302, [("Location", f"{left - 1}")])
        return html(PAGE)
    if path == "/loop":
        return Reply(302, [("Location", "/loop")])
    body = PAGE.encode("utf-8")
    answers = {
        "/dir/page": html(PAGE),
        "/gzip": Reply(
            200, [("Content-Type", "text/html"), ("Content-Encoding", "gzip")], gzip.compress(body)
        ),
        "/deflate": Reply(
            200,
            [("Content-Type", "text/html"), ("Content-Encoding", "deflate")],
            zlib.compress(body),
        ),
        "/chunked": Reply(200, [("Content-Type", "text/html")], body, chunked=True),
        "/until-close": Reply(200, [("Content-Type", "text/html")], body, chunked=False),
        "/latin1": Reply(
            200, [("Content-Type", "text/html; charset=ISO-8859-1")], PAGE.encode("latin-1")
        ),
        "/no-charset": Reply(200, [("Content-Type", "text/html")], body),
        "/plain": Reply(200, [("Content-Type", "text/plain")], b"just text"),
        "/json": Reply(200, [("Content-Type", "application/json")], b'{"a": 1}'),
        "/xhtml": Reply(200, [("Content-Type", "application/xhtml+xml")], body),
        "/no-type": Reply(200, [], body),
        "/empty": Reply(200, [("Content-Type", "text/html")], b""),
        "/204": Reply(204),
        "/304": Reply(304),
        "/404": Reply(404, [("Content-Type", "text/html")], b"<p>missing</p>"),
        "/500": Reply(500, [("Content-Type", "text/html")], b"<p>broken</p>"),
        "/ten": Reply(200, [("Content-Type", "text/plain")], b"0123456789"),
        "/eleven": Reply(200, [("Content-Type", "text/plain")], b"0123456789A"),
        "/eleven-chunked": Reply(
            200, [("Content-Type", "text/plain")], b"0123456789A", chunked=True
        ),
    }
    return answers.get(path, Reply(404, [("Content-Type", "text/plain")], b"no such path"))


async def site_handler(request: Request, stream: trio.SocketStream) -> Reply | None:
    return site(request)


def fast(**kwargs: object) -> FetchConfig:
    """A config that retries nothing unless told (most cases need one attempt)."""
    return FetchConfig(**{"max_retries": 0, **kwargs})  # type: ignore[arg-type]


# --- headers ---------------------------------------------------------------------


async def test_user_agent_and_default_headers_are_sent_once() -> None:
    config = fast(user_agent="UA/1", default_headers={"X-Token": "t", "Accept-Language": "fr"})
    async with serve(site_handler) as (base, seen), HttpFetcher(config) as fetcher:
        assert (await fetcher.fetch(base + "/plain")).success
    assert seen[0].header_values("User-Agent") == ["UA/1"]
    assert seen[0].header_values("X-Token") == ["t"]
    assert seen[0].header_values("Accept-Language") == ["fr"]


@pytest.mark.parametrize("name", ["User-Agent", "user-agent", "USER-AGENT"])
async def test_a_call_header_replaces_the_default_whatever_its_case(name: str) -> None:
    # The old plain-dict merge kept "User-Agent" and "user-agent" apart and httpx
    # sent both: the server saw the default first and the caller's second.
    config = fast(user_agent="UA/1", default_headers={"accept-language": "fr"})
    async with serve(site_handler) as (base, seen), HttpFetcher(config) as fetcher:
        await fetcher.fetch(base + "/plain", headers={name: "mine", "Accept-Language": "de"})
    assert seen[0].header_values("User-Agent") == ["mine"]
    assert seen[0].header_values("Accept-Language") == ["de"]


async def test_a_default_header_replaces_the_user_agent_whatever_its_case() -> None:
    config = fast(user_agent="UA/1", default_headers={"user-agent": "UA/2"})
    async with serve(site_handler) as (base, seen), HttpFetcher(config) as fetcher:
        await fetcher.fetch(base + "/plain")
    assert seen[0].header_values("User-Agent") == ["UA/2"]


# --- redirects -------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_redirects_are_followed_to_the_final_url(status: int) -> None:
    async with serve(site_handler) as (base, seen), HttpFetcher(fast()) as fetcher:
        result = await fetcher.fetch(f"{base}/redirect/{status}/dir/page")
    assert (result.status_code, result.final_url) == (200, f"{base}/dir/page")
    assert result.url == f"{base}/redirect/{status}/dir/page"
    assert [request.target for request in seen] == [f"/redirect/{status}/dir/page", "/dir/page"]
    assert all(request.method == "GET" for request in seen)


async def test_relative_redirects_resolve_against_each_hop() -> None:
    # /chain/3 -> "2" -> "1" -> "0": each Location is relative to the URL before it.
    async with serve(site_handler) as (base, seen), HttpFetcher(fast()) as fetcher:
        result = await fetcher.fetch(base + "/chain/3")
    assert result.final_url == base + "/chain/0"
    assert len(seen) == 4


async def test_redirect_to_another_host_and_links_resolve_against_the_final_url() -> None:
    async def first(request: Request, stream: trio.SocketStream) -> Reply:
        return Reply(307, [("Location", other + "/dir/page")])

    async with serve(site_handler) as (other, _), serve(first) as (base, _):
        config = WebSearchConfig(fetch=fast())
        async with WebSearchClient(config) as client:
            page = await client.fetch(base + "/start")
    assert page.url == base + "/start"
    assert page.final_url == other + "/dir/page"
    assert [link.url for link in page.links] == [other + "/dir/next"]


async def test_a_redirect_loop_and_too_many_redirects_fail_without_retries(
    autojump_clock: trio.abc.Clock,
) -> None:
    config = FetchConfig(max_retries=3, max_redirects=4)
    async with serve(site_handler) as (base, seen), HttpFetcher(config) as fetcher:
        loop = await fetcher.fetch(base + "/loop")
        assert len(seen) == 5  # the request and four redirects, once: not retried
        too_many = await fetcher.fetch(base + "/chain/5")
        exactly = await fetcher.fetch(base + "/chain/4")
    for result in (loop, too_many):
        assert result.error == "Exceeded maximum allowed redirects."
        assert (result.status_code, result.final_url, result.retry_count) == (0, None, 1)
    assert exactly.final_url == base + "/chain/0"


@pytest.mark.parametrize("where", ["config", "call"])
async def test_redirects_not_followed(where: str) -> None:
    config = fast(follow_redirects=where != "config")
    follow = False if where == "call" else None
    async with serve(site_handler) as (base, seen), HttpFetcher(config) as fetcher:
        result = await fetcher.fetch(base + "/redirect/302/dir/page", follow_redirects=follow)
    assert (result.status_code, result.final_url) == (302, base + "/redirect/302/dir/page")
    assert result.headers["location"] == "/dir/page"
    assert result.success  # a 3xx is a success, as in the reference
    assert len(seen) == 1


# --- bodies, encodings, charsets, content types ----------------------------------


@pytest.mark.parametrize("path", ["/gzip", "/deflate", "/chunked", "/until-close"])
async def test_encoded_and_framed_bodies_are_read_whole(path: str) -> None:
    async with serve(site_handler) as (base, _), HttpFetcher(fast()) as fetcher:
        result = await fetcher.fetch(base + path)
    assert result.content == PAGE.encode("utf-8")
    assert result.text == PAGE


@pytest.mark.parametrize(
    ("path", "limit", "content"),
    [
        ("/ten", 10, b"0123456789"),  # exactly the limit
        ("/eleven", 10, b"0123456789"),  # one byte over
        ("/eleven-chunked", 10, b"0123456789"),  # no length given
        ("/eleven-chunked", 0, b"0123456789A"),  # 0: no limit
        ("/gzip", 6, b"<html>"),  # the limit counts decoded bytes, as in the reference
    ],
)
async def test_max_content_length(path: str, limit: int, content: bytes) -> None:
    async with serve(site_handler) as (base, _), HttpFetcher(fast(max_content_length=limit)) as f:
        result = await f.fetch(base + path)
    assert result.content == content
    assert result.status_code == 200


_ENDLESS_CAP = 64 * 1024 * 1024  # the server gives up here: a client that reads to the end fails


def endless_body(sent: list[int], *, chunked: bool) -> Handler:
    """A handler whose body never ends (up to ``_ENDLESS_CAP``): it counts the bytes sent."""

    async def handler(request: Request, stream: trio.SocketStream) -> Reply | None:
        framing = "Transfer-Encoding: chunked" if chunked else "Connection: close"
        await stream.send_all(
            f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n{framing}\r\n\r\n".encode()
        )
        block = b"x" * 16384
        if chunked:
            block = b"%x\r\n%s\r\n" % (len(block), block)
        sent.append(0)
        while sent[-1] < _ENDLESS_CAP:
            await stream.send_all(block)  # BrokenResourceError once the client hangs up
            sent[-1] += len(block)
        return None

    return handler


@pytest.mark.parametrize("chunked", [True, False])
async def test_an_endless_body_is_cut_at_max_content_length(chunked: bool) -> None:
    # The reference reads a body to its end before cutting it: an endless body never
    # returns. Ours stops reading at the limit and hangs up.
    sent: list[int] = []
    async with serve(endless_body(sent, chunked=chunked)) as (base, _):
        async with HttpFetcher(fast(max_content_length=100_000)) as fetcher:
            result = await fetcher.fetch(base + "/endless")
    assert result.status_code == 200
    assert result.content == b"x" * 100_000
    # The server was stopped by the hang-up, far short of its cap (the socket buffers
    # hold a few MB at most).
    assert len(sent) == 1
    assert sent[0] < _ENDLESS_CAP // 4


async def test_the_connection_cut_at_the_limit_is_not_reused() -> None:
    # A half-read connection is closed, so the next fetch opens a new one and gets a
    # clean answer (no leftover body bytes read as a response).
    sent: list[int] = []
    endless = endless_body(sent, chunked=True)

    async def handler(request: Request, stream: trio.SocketStream) -> Reply | None:
        if request.target == "/endless":
            return await endless(request, stream)
        return site(request)

    async with serve(handler) as (base, seen):
        async with HttpFetcher(fast(max_content_length=50_000)) as fetcher:
            first = await fetcher.fetch(base + "/endless")
            second = await fetcher.fetch(base + "/ten")
    assert first.content == b"x" * 50_000
    assert second.content == b"0123456789"
    assert [request.target for request in seen] == ["/endless", "/ten"]


async def test_a_caller_cancellation_during_a_limited_read_propagates(
    autojump_clock: trio.abc.Clock,
) -> None:
    # The cut's own cancel scope catches only its own cancellation.
    async def stalling(request: Request, stream: trio.SocketStream) -> Reply | None:
        await stream.send_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\nab"
        )
        await trio.sleep_forever()

    async with serve(stalling) as (base, _):
        async with HttpFetcher(fast(max_content_length=10, timeout=3600.0)) as fetcher:
            with trio.move_on_after(5) as outer:
                await fetcher.fetch(base + "/stall")
                pytest.fail("the fetch returned inside a cancelled scope")  # pragma: no cover
    assert outer.cancelled_caught


async def test_charset_from_the_header() -> None:
    async with serve(site_handler) as (base, _), HttpFetcher(fast()) as fetcher:
        assert (await fetcher.fetch(base + "/latin1")).text == PAGE
        assert (await fetcher.fetch(base + "/no-charset")).text == PAGE  # UTF-8 by default


@pytest.mark.parametrize(
    "meta",
    [
        '<meta charset="windows-1252">',
        "<META CHARSET=iso-8859-1>",
        '<meta http-equiv="Content-Type" content="text/html; charset=ISO-8859-1">',
    ],
)
async def test_charset_from_a_meta_when_the_header_has_none(meta: str) -> None:
    # The old code decoded such a page as UTF-8: "Caf\ufffd".
    page = PAGE.replace("<head>", "<head>" + meta)

    async def handler(request: Request, stream: trio.SocketStream) -> Reply:
        return Reply(200, [("Content-Type", "text/html")], page.encode("cp1252"))

    async with serve(handler) as (base, _):
        async with WebSearchClient(WebSearchConfig(fetch=fast())) as client:
            web_page = await client.fetch(base + "/")
    assert web_page.metadata.title == "Café"
    assert "Crème brûlée." in web_page.plain_text


def test_the_header_charset_beats_a_meta_and_odd_charsets_fall_back() -> None:
    from stageflow_trio.websearch import FetchResult

    body = '<meta charset="iso-8859-1"><p>é</p>'.encode()
    assert FetchResult(url="u", content=body, content_type="text/html; charset=utf-8").text == (
        '<meta charset="iso-8859-1"><p>é</p>'
    )
    # A meta in a text/plain body is text, not a declaration.
    plain = FetchResult(
        url="u", content=body.replace(b"\xc3\xa9", b"\xe9"), content_type="text/plain"
    )
    assert plain.text.endswith("<p>\ufffd</p>")
    # A UTF-16 meta means UTF-8; an unknown one falls back to UTF-8 with replacement.
    for label in ("utf-16le", "no-such-charset"):
        result = FetchResult(
            url="u", content=f"<meta charset={label}>é".encode(), content_type="text/html"
        )
        assert result.text == f"<meta charset={label}>é"
    wrong = FetchResult(url="u", content=b"\xe9", content_type="text/html; charset=bogus")
    assert wrong.text == "\ufffd"


@pytest.mark.parametrize(
    ("path", "markdown", "title"),
    [
        ("/xhtml", None, "Café"),  # XHTML is HTML: extracted
        ("/plain", "just text", None),  # the rest is text
        ("/json", '{"a": 1}', None),
        ("/no-type", PAGE, None),  # no Content-Type: text, as in the reference
        ("/empty", "", None),  # an empty HTML page
    ],
)
async def test_content_types_through_the_client(
    path: str, markdown: str | None, title: str | None
) -> None:
    async with serve(site_handler) as (base, _):
        async with WebSearchClient(WebSearchConfig(fetch=fast())) as client:
            page = await client.fetch(base + path)
    assert page.success
    assert page.metadata.title == title
    if markdown is not None:
        assert page.markdown == markdown


# --- statuses --------------------------------------------------------------------


@pytest.mark.parametrize(("path", "status"), [("/204", 204), ("/304", 304)])
async def test_bodiless_statuses_are_successes(
    path: str, status: int, autojump_clock: trio.abc.Clock
) -> None:
    async with serve(site_handler) as (base, _):
        async with WebSearchClient(WebSearchConfig(fetch=fast())) as client:
            page = await client.fetch(base + path)
    assert (page.success, page.status_code, page.markdown) == (True, status, "")


@pytest.mark.parametrize(("path", "status"), [("/404", 404), ("/500", 500)])
async def test_error_statuses_are_error_pages_and_never_retried(
    path: str, status: int, autojump_clock: trio.abc.Clock
) -> None:
    errors: list[tuple[str, bool]] = []
    config = FetchConfig(max_retries=3, retry_delay=1.0)
    async with serve(site_handler) as (base, seen):
        fetcher = HttpFetcher(
            config, on_fetch_error=lambda u, r, e, d, retry: errors.append((e, retry))
        )
        async with WebSearchClient(fetcher=fetcher) as client:
            start = trio.current_time()
            page = await client.fetch(base + path)
            assert trio.current_time() == start
        await fetcher.close()
    assert (page.success, page.error) == (False, f"HTTP {status}")
    assert len(seen) == 1  # a status is a response, not an error to retry (docs/websearch.md)
    assert errors == [(f"HTTP {status}", status >= 500)]


# --- servers that fail -----------------------------------------------------------


async def test_a_server_that_never_answers_times_out_and_is_retried(
    autojump_clock: trio.abc.Clock,
) -> None:
    async def silent(request: Request, stream: trio.SocketStream) -> Reply:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    config = FetchConfig(timeout=30, max_retries=3, retry_delay=1.0)
    wall = time.perf_counter()
    async with serve(silent) as (base, seen), HttpFetcher(config) as fetcher:
        start = trio.current_time()
        result = await fetcher.fetch(base + "/")
        elapsed = trio.current_time() - start
    # Four attempts of 30 s each, and 1 + 2 + 4 s between them: all virtual.
    assert elapsed == pytest.approx(4 * 30 + 7)
    assert result.duration_ms == pytest.approx(elapsed * 1000)
    assert time.perf_counter() - wall < 20
    assert (result.error, result.retry_count, len(seen)) == ("ReadTimeout", 4, 4)


async def test_a_per_call_timeout_applies(autojump_clock: trio.abc.Clock) -> None:
    async def slow(request: Request, stream: trio.SocketStream) -> Reply:
        await trio.sleep(5)
        return html(PAGE)

    async with serve(slow) as (base, _), HttpFetcher(fast(timeout=30)) as fetcher:
        assert (await fetcher.fetch(base + "/")).success
        start = trio.current_time()
        result = await fetcher.fetch(base + "/", timeout=2)
        assert trio.current_time() - start == pytest.approx(2)
    assert result.error == "ReadTimeout"


async def test_a_server_closing_mid_body_is_retried(autojump_clock: trio.abc.Clock) -> None:
    async def cut(request: Request, stream: trio.SocketStream) -> None:
        await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")

    config = FetchConfig(max_retries=2, retry_delay=1.0)
    async with serve(cut) as (base, seen), HttpFetcher(config) as fetcher:
        result = await fetcher.fetch(base + "/")
    assert result.error is not None
    assert "peer closed connection" in result.error
    assert (result.retry_count, len(seen), result.duration_ms) == (3, 3, 3000)


async def test_connection_refused_is_retried(autojump_clock: trio.abc.Clock) -> None:
    async with serve(site_handler) as (base, _):
        pass  # the port is closed now
    async with HttpFetcher(FetchConfig(max_retries=2, retry_delay=0.5)) as fetcher:
        result = await fetcher.fetch(base + "/")
    assert result.error is not None
    assert "all attempts to connect" in result.error
    assert (result.retry_count, result.duration_ms) == (3, 1500)


# --- the run helpers over HTTP ---------------------------------------------------


async def test_fetch_with_retry_over_http(autojump_clock: trio.abc.Clock) -> None:
    from stageflow_trio.websearch import fetch_with_retry

    async def flaky(request: Request, stream: trio.SocketStream) -> Reply:
        return (
            Reply(503, [("Content-Type", "text/plain")], b"busy") if len(seen) < 3 else html(PAGE)
        )

    async with serve(flaky) as (base, seen):
        start = trio.current_time()
        page = await fetch_with_retry(
            base + "/", max_retries=3, retry_delay=1.0, config=WebSearchConfig(fetch=fast())
        )
        assert trio.current_time() - start == 1 + 2
    assert page.success
    assert page.metadata.title == "Café"
    assert len(seen) == 3


# --- the reference on the same site ----------------------------------------------

_SAME_AS_REFERENCE = [
    "/redirect/301/dir/page",
    "/redirect/303/dir/page",
    "/redirect/308/dir/page",
    "/chain/3",
    "/loop",
    "/gzip",
    "/deflate",
    "/chunked",
    "/until-close",
    "/latin1",
    "/xhtml",
    "/no-type",
    "/empty",
    "/204",
    "/304",
    "/404",
    "/500",
    "/eleven",
    "/eleven-chunked",
]


def _summary(result: object, base: str) -> tuple[object, ...]:
    final_url = getattr(result, "final_url", None)
    return (
        getattr(result, "status_code", None),
        None if final_url is None else final_url.removeprefix(base),
        getattr(result, "content", None),
        getattr(result, "content_type", None),
        getattr(result, "text", None),
        getattr(result, "success", None),
        getattr(result, "error", None),
    )


async def _reference_fetch_all(
    fetcher_module: object, config_kwargs: dict[str, object]
) -> list[tuple[object, ...]]:
    import asyncio

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                reply = site(Request(method, target, []))
                writer.write(_encode(reply))
                await writer.drain()
                if reply.chunked is False:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(connection, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    fetcher = fetcher_module.HttpFetcher(fetcher_module.FetchConfig(**config_kwargs))  # type: ignore[attr-defined]
    try:
        return [_summary(await fetcher.fetch(base + path), base) for path in _SAME_AS_REFERENCE]
    finally:
        await fetcher.close()
        server.close()


@pytest.mark.parametrize("limit", [0, 10])
def test_http_results_match_the_reference(limit: int) -> None:
    # The reference's HttpFetcher under asyncio against the same site served by asyncio.
    import asyncio
    import importlib

    reference = importlib.import_module("stageflow.websearch.fetcher")
    config_kwargs: dict[str, object] = {"max_retries": 0, "max_content_length": limit}
    theirs = asyncio.run(_reference_fetch_all(reference, config_kwargs))

    async def ours() -> list[tuple[object, ...]]:
        async with serve(site_handler) as (base, _):
            async with HttpFetcher(FetchConfig(**config_kwargs)) as fetcher:  # type: ignore[arg-type]
                return [
                    _summary(await fetcher.fetch(base + path), base) for path in _SAME_AS_REFERENCE
                ]

    assert trio.run(ours) == theirs
