"""Audit 23: cancellation of the web search client and the run helpers.

Each flow runs under :func:`explore_cancellation`, which cancels it after each of its
checkpoints (and at deadlines between them) and checks, after every run, that
``trio.Cancelled`` propagated (never an error page), that no task is left, that every
HTTP client the flow made is closed, that no extraction thread is still running and
that no progress callback came after the call ended. Fetches go to an in-memory site
(``MockFetcher``, or ``httpx.MockTransport`` with an async handler that sleeps in
virtual time) or, in one test, to a loopback server.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import math
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from stageflow_trio.testing import assert_no_orphans, explore_cancellation
from stageflow_trio.testing.explore import DEFAULT_INVARIANTS, RunRecord, invariant
from stageflow_trio.websearch.client import WebSearchClient, WebSearchConfig, create_mock_client
from stageflow_trio.websearch.extractor import DefaultContentExtractor, ExtractionResult
from stageflow_trio.websearch.fetcher import FetchConfig, HttpFetcher, MockFetcher
from stageflow_trio.websearch.run_utils import (
    FetchProgress,
    extract_all_links,
    fetch_pages,
    fetch_with_retry,
    map_site,
    search_and_extract,
)

BASE = "https://site.test"
HTML = {"content-type": "text/html; charset=utf-8"}


def _html(title: str, links: list[str], next_url: str | None = None) -> str:
    anchors = "".join(f'<a href="{href}">to {href}</a> ' for href in links)
    nxt = f'<a rel="next" href="{next_url}">Next</a>' if next_url else ""
    return (
        f"<html><head><title>{title}</title></head><body><main><h1>{title}</h1>"
        f"<p>python words about {title}</p>{anchors}{nxt}</main></body></html>"
    )


SITE: dict[str, tuple[int, str, dict[str, str]]] = {
    f"{BASE}/": (200, _html("Home", ["/a", "/b", "https://ext.test/x"], "/p2"), HTML),
    f"{BASE}/p2": (200, _html("Page 2", ["/a"], "/p3"), HTML),
    f"{BASE}/p3": (200, _html("Page 3", ["/c"]), HTML),
    f"{BASE}/a": (200, _html("A", ["/", "/b", "/c"]), HTML),
    f"{BASE}/b": (200, _html("B", ["/a"]), HTML),
    f"{BASE}/c": (200, "plain text page", {"content-type": "text/plain"}),
    f"{BASE}/err": (503, "down", {"content-type": "text/plain"}),
}
URLS = [f"{BASE}/", f"{BASE}/a", f"{BASE}/b", f"{BASE}/c", f"{BASE}/missing"]


class _Watch:
    """What one run left behind: HTTP clients made, threads extracting, late callbacks."""

    def __init__(self) -> None:
        self.clients: list[httpx.AsyncClient] = []
        self.extracting = 0
        self.lock = threading.Lock()
        self.ended = False
        self.late: list[str] = []
        self.after_end_extracting = 0

    def progress(self, progress: FetchProgress) -> None:
        if self.ended:
            self.late.append(f"on_progress after the call ended ({progress.completed})")


class _CountingExtractor(DefaultContentExtractor):
    """Counts the extractions running (in any thread)."""

    def __init__(self, watch: _Watch) -> None:
        super().__init__()
        self._watch = watch

    def extract(
        self, html: str | bytes, base_url: str | None = None, selector: str | None = None
    ) -> ExtractionResult:
        with self._watch.lock:
            self._watch.extracting += 1
        try:
            return super().extract(html, base_url=base_url, selector=selector)
        finally:
            with self._watch.lock:
                self._watch.extracting -= 1


_WATCH: list[_Watch] = []


@invariant("every HTTP client made is closed")
def _clients_closed(run: RunRecord) -> str | None:
    watch = _WATCH[-1]
    open_ = [i for i, client in enumerate(watch.clients) if not client.is_closed]
    if open_:
        return f"httpx client(s) {open_} of {len(watch.clients)} left open"
    return None


@invariant("no extraction outlives the call")
def _no_threads(run: RunRecord) -> str | None:
    watch = _WATCH[-1]
    if watch.after_end_extracting:
        return f"{watch.after_end_extracting} extraction(s) still running after the call"
    return None


@invariant("no callback after the call")
def _no_late_callbacks(run: RunRecord) -> str | None:
    return "; ".join(_WATCH[-1].late) or None


INVARIANTS = (*DEFAULT_INVARIANTS, _clients_closed, _no_threads, _no_late_callbacks)


async def _handler(request: httpx.Request) -> httpx.Response:
    await trio.sleep(0.5)
    status, body, headers = SITE.get(
        str(request.url), (404, "Not Found", {"content-type": "text/plain"})
    )

    async def chunks() -> AsyncIterator[bytes]:
        data = body.encode()
        half = len(data) // 2
        yield data[:half]
        await trio.sleep(0.25)
        yield data[half:]

    return httpx.Response(status, headers=headers, content=chunks())


@pytest.fixture
def http_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every httpx.AsyncClient made goes to the in-memory site and is recorded."""
    real = httpx.AsyncClient

    def make(**kwargs: Any) -> httpx.AsyncClient:
        client = real(transport=httpx.MockTransport(_handler), **kwargs)
        _WATCH[-1].clients.append(client)
        return client

    monkeypatch.setattr(httpx, "AsyncClient", make)


def _explored(flow: Callable[[_Watch], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
    async def run_fn() -> Any:
        watch = _Watch()
        _WATCH.append(watch)
        try:
            return await flow(watch)
        finally:
            watch.ended = True
            with watch.lock:
                watch.after_end_extracting = watch.extracting

    return run_fn


def _mock(watch: _Watch) -> WebSearchClient:
    client = create_mock_client(SITE)
    client._extractor = _CountingExtractor(watch)
    return client


def _http(watch: _Watch) -> WebSearchClient:
    config = WebSearchConfig(fetch=FetchConfig(max_retries=1, retry_delay=0.5))
    client = WebSearchClient(config, extractor=_CountingExtractor(watch))
    return client


FACTORIES = {"mock": _mock, "http": _http}


async def _client_flow(kind: str, call: str, watch: _Watch) -> Any:
    async with FACTORIES[kind](watch) as client:
        if call == "fetch":
            return await client.fetch(f"{BASE}/")
        if call == "fetch_many":
            return await client.fetch_many(URLS, concurrency=2)
        if call == "fetch_with_navigation":
            return await client.fetch_with_navigation(f"{BASE}/")
        return await client.crawl(f"{BASE}/", max_pages=5)


@pytest.mark.parametrize("kind", ["mock", "http"])
@pytest.mark.parametrize("call", ["fetch", "fetch_many", "fetch_with_navigation", "crawl"])
async def test_client_flows_under_cancellation(
    autojump_clock: trio.testing.MockClock, http_clients: None, kind: str, call: str
) -> None:
    report = await explore_cancellation(
        _explored(functools.partial(_client_flow, kind, call)), invariants=INVARIANTS
    )
    assert report.checkpoints > 0


RUN_UTILS: dict[str, Callable[[_Watch, Callable[[], WebSearchClient]], Awaitable[Any]]] = {
    "fetch_pages_threads": lambda w, f: fetch_pages(
        URLS, concurrency=2, on_progress=w.progress, client_factory=f
    ),
    # More HTML pages at once than the four extraction threads: some wait for one.
    "fetch_pages_six_threads": lambda w, f: fetch_pages(
        [*URLS[:3], f"{BASE}/p2", f"{BASE}/p3", f"{BASE}/"],
        concurrency=6,
        on_progress=w.progress,
        client_factory=f,
    ),
    "fetch_pages_inline": lambda w, f: fetch_pages(
        URLS, concurrency=2, on_progress=w.progress, parallel_extraction=False, client_factory=f
    ),
    "fetch_with_retry": lambda w, f: fetch_with_retry(
        f"{BASE}/err", max_retries=2, retry_delay=1.0, client_factory=f
    ),
    "map_site": lambda w, f: map_site(f"{BASE}/", max_pages=4, client_factory=f),
    "search_and_extract": lambda w, f: search_and_extract(
        f"{BASE}/", "python", max_pages=4, client_factory=f
    ),
    "extract_all_links": lambda w, f: extract_all_links(URLS[:3], concurrency=2, client_factory=f),
}


@pytest.mark.parametrize("kind", ["mock", "http"])
@pytest.mark.parametrize("name", sorted(RUN_UTILS))
async def test_run_utils_under_cancellation(
    autojump_clock: trio.testing.MockClock, http_clients: None, kind: str, name: str
) -> None:
    async def flow(watch: _Watch) -> Any:
        return await RUN_UTILS[name](watch, functools.partial(FACTORIES[kind], watch))

    # Worker threads do not hold trio's virtual clock: it jumps while a thread
    # extracts, so no virtual-time limit fits a run that waits for one.
    report = await explore_cancellation(
        _explored(flow), invariants=INVARIANTS, hang_timeout=math.inf
    )
    assert report.checkpoints > 0


@pytest.mark.parametrize("entered", [True, False])
async def test_http_fetcher_under_cancellation(
    autojump_clock: trio.testing.MockClock, http_clients: None, entered: bool
) -> None:
    async def flow(watch: _Watch) -> Any:
        fetcher = HttpFetcher(FetchConfig(max_retries=1))
        if entered:
            async with fetcher:
                return await fetcher.fetch_many(URLS[:3], concurrency=2)
        try:
            return await fetcher.fetch_many(URLS[:3], concurrency=2)
        finally:
            await fetcher.close()

    report = await explore_cancellation(_explored(flow), invariants=INVARIANTS)
    assert report.checkpoints > 0


async def test_client_closed_without_async_with_under_cancellation(
    autojump_clock: trio.testing.MockClock, http_clients: None
) -> None:
    async def flow(watch: _Watch) -> Any:
        client = _http(watch)
        try:
            return await client.fetch_many(URLS[:3], concurrency=2)
        finally:
            await client.close()

    report = await explore_cancellation(_explored(flow), invariants=INVARIANTS)
    assert report.checkpoints > 0


# --- a loopback server ------------------------------------------------------------------


async def _responder(stream: trio.SocketStream) -> None:
    """Answers one request from SITE (by path), the body in two parts, then closes.

    A client cancelled mid-request drops the connection: that ends the answer.
    """
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        await _respond(stream)


async def _respond(stream: trio.SocketStream) -> None:
    request = b""
    while b"\r\n\r\n" not in request:
        chunk = await stream.receive_some(4096)
        if not chunk:
            return
        request += chunk
    path = request.split(b" ", 2)[1].decode()
    status, body, headers = SITE.get(
        f"{BASE}{path}", (404, "Not Found", {"content-type": "text/plain"})
    )
    data = body.encode()
    head = (
        f"HTTP/1.1 {status} X\r\nContent-Type: {headers['content-type']}\r\n"
        f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    ).encode()
    await stream.send_all(head + data[: len(data) // 2])
    await trio.sleep(0.01)
    await stream.send_all(data[len(data) // 2 :])
    await stream.aclose()


@pytest.mark.parametrize("call", ["fetch", "fetch_many", "crawl"])
async def test_client_over_a_loopback_server_under_cancellation(call: str) -> None:
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, _responder, 0, host="127.0.0.1")
        )
        base = f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}"
        made: list[WebSearchClient] = []

        async def flow(watch: _Watch) -> Any:
            client = WebSearchClient(extractor=_CountingExtractor(watch))
            made.append(client)
            async with client:
                if call == "fetch":
                    return await client.fetch(f"{base}/")
                if call == "fetch_many":
                    return await client.fetch_many(
                        [f"{base}/", f"{base}/a", f"{base}/c"], concurrency=2
                    )
                return await client.crawl(f"{base}/", max_pages=3)

        @invariant("the owned fetcher's client is closed")
        def closed(run: RunRecord) -> str | None:
            fetcher = made[-1]._owned_fetcher
            assert fetcher is not None
            return None if fetcher._client is None else "the fetcher's client is open"

        # Real sockets: how often a read waits depends on when the bytes arrive, so
        # the runs are cancelled at moments (between those the uncancelled run
        # passed), not at numbered checkpoints.
        report = await explore_cancellation(
            _explored(flow), invariants=(*INVARIANTS, closed), at=(), max_deadlines=24
        )
        assert report.deadlines
        nursery.cancel_scope.cancel()
    # A socket left open warns (ResourceWarning) when collected: collect here, in the test.
    gc.collect()


# --- KeyboardInterrupt and worker threads ------------------------------------------------


class _Interrupting(_CountingExtractor):
    """Raises KeyboardInterrupt for one page's extraction."""

    def extract(
        self, html: str | bytes, base_url: str | None = None, selector: str | None = None
    ) -> ExtractionResult:
        if base_url == f"{BASE}/b":
            raise KeyboardInterrupt
        return super().extract(html, base_url=base_url, selector=selector)


@pytest.mark.parametrize("kind", ["mock", "http"])
@pytest.mark.parametrize("parallel_extraction", [True, False])
@pytest.mark.parametrize("source", ["on_progress", "extractor"])
async def test_keyboard_interrupt_escapes_as_itself(
    autojump_clock: trio.testing.MockClock,
    http_clients: None,
    kind: str,
    parallel_extraction: bool,
    source: str,
) -> None:
    watch = _Watch()
    _WATCH.append(watch)
    calls: list[int] = []

    def progress(p: FetchProgress) -> None:
        calls.append(p.completed)
        if source == "on_progress" and p.completed == 2:
            raise KeyboardInterrupt

    def factory() -> WebSearchClient:
        client = FACTORIES[kind](watch)
        if source == "extractor":
            client._extractor = _Interrupting(watch)
        return client

    with assert_no_orphans(), pytest.raises(KeyboardInterrupt) as caught:
        await fetch_pages(
            URLS,
            concurrency=2,
            on_progress=progress,
            parallel_extraction=parallel_extraction,
            client_factory=factory,
        )
    assert type(caught.value) is KeyboardInterrupt
    assert watch.extracting == 0
    assert all(client.is_closed for client in watch.clients)
    seen = len(calls)
    await trio.sleep(10)
    assert len(calls) == seen  # nothing reports after the call


class _MockSlowFetcher(MockFetcher):
    """A mock fetcher whose /b takes 100 s."""

    async def _do_fetch(self, url: str, **kwargs: Any) -> Any:
        if url.endswith("/b"):
            await trio.sleep(100)
        return await super()._do_fetch(url, **kwargs)


class _Gated(_CountingExtractor):
    """Blocks the extraction of page A until ``release`` is set."""

    def __init__(self, watch: _Watch) -> None:
        super().__init__(watch)
        self.entered = threading.Event()
        self.release = threading.Event()

    def extract(
        self, html: str | bytes, base_url: str | None = None, selector: str | None = None
    ) -> ExtractionResult:
        if base_url == f"{BASE}/a":
            self.entered.set()
            self.release.wait(10)
        return super().extract(html, base_url=base_url, selector=selector)


async def test_cancel_while_a_thread_extracts_ends_once_the_thread_ends() -> None:
    # The real clock: a virtual one would jump to the slow fetch's end while the
    # thread holds every task up.
    watch = _Watch()
    extractor = _Gated(watch)
    client = WebSearchClient(fetcher=_MockSlowFetcher(SITE), extractor=extractor)
    progress: list[int] = []
    ended: list[float] = []

    async def run(scope: trio.CancelScope) -> None:
        with scope:
            await fetch_pages(
                [f"{BASE}/a", f"{BASE}/b"],
                concurrency=2,
                on_progress=lambda p: progress.append(p.completed),
                client_factory=lambda: client,
            )
        ended.append(trio.current_time())
        assert scope.cancelled_caught

    start = trio.current_time()
    with trio.fail_after(30), assert_no_orphans():
        async with trio.open_nursery() as nursery:
            scope = trio.CancelScope()
            nursery.start_soon(run, scope)
            await trio.to_thread.run_sync(extractor.entered.wait)
            scope.cancel()
            await trio.testing.wait_all_tasks_blocked()
            assert not ended  # the thread is still extracting: the call waits for it
            extractor.release.set()
    assert ended
    assert progress == []  # /a finished after the cancel: not reported
    assert ended[0] - start < 100  # not held up by the slow fetch of /b
    assert watch.extracting == 0


# --- entering under a cancellation -------------------------------------------------------


@pytest.mark.parametrize("owner", ["HttpFetcher", "WebSearchClient"])
async def test_a_cancelled_enter_makes_no_http_client(http_clients: None, owner: str) -> None:
    # __aenter__ made the client, then met its checkpoint: a cancellation there
    # skipped __aexit__, and the client stayed open.
    watch = _Watch()
    _WATCH.append(watch)
    resource = HttpFetcher() if owner == "HttpFetcher" else WebSearchClient()
    with trio.CancelScope() as scope:
        scope.cancel()
        async with resource:
            pytest.fail("entered under a cancellation")
    assert scope.cancelled_caught
    assert [client.is_closed for client in watch.clients] in ([], [True])
