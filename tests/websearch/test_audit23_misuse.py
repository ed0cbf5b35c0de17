"""Audit 23: the websearch package held the way real code holds it.

A client made outside trio and used in two runs, one client shared by many
tasks, batches of hundreds of URLs, values copied and serialized, and callbacks that
are async functions by mistake (refused at the call: they are called, never
awaited, so their bodies would never run).
"""

from __future__ import annotations

import copy
import json
import pickle
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from stageflow_trio.websearch import run_utils
from stageflow_trio.websearch.client import WebSearchClient, WebSearchConfig, create_mock_client
from stageflow_trio.websearch.extractor import DefaultContentExtractor, ExtractionConfig
from stageflow_trio.websearch.fetcher import FetchConfig, Fetcher, HttpFetcher, MockFetcher
from stageflow_trio.websearch.models import (
    ExtractedLink,
    NavigationAction,
    PageMetadata,
    PaginationInfo,
    WebPage,
)
from stageflow_trio.websearch.navigator import NavigationConfig, PageNavigator

HTML = (
    "<html><head><title>T</title></head><body><p>hello world</p>"
    "<a href='/b'>b</a><a href='/c'>c</a></body></html>"
)
SITE = {
    url: (200, HTML, {"content-type": "text/html"})
    for url in ("http://x/a", "http://x/b", "http://x/c")
}


async def _async_hook(*args: object) -> None:
    raise AssertionError("never awaited")  # pragma: no cover


# -- async callbacks by mistake ---------------------------------------------------


@pytest.mark.parametrize("hook", ["on_fetch_start", "on_fetch_complete", "on_fetch_error"])
@pytest.mark.parametrize("kind", [MockFetcher, HttpFetcher, WebSearchClient])
def test_async_fetch_hook_is_refused(kind: type[Any], hook: str) -> None:
    with pytest.raises(TypeError, match=rf"{hook} must be a plain function"):
        kind(**{hook: _async_hook})


def test_async_extract_hook_is_refused() -> None:
    with pytest.raises(TypeError, match="WebSearchClient: on_extract_complete must be a plain"):
        WebSearchClient(fetcher=MockFetcher(), on_extract_complete=_async_hook)  # type: ignore[arg-type]


def test_object_with_async_call_is_refused() -> None:
    class Hook:
        async def __call__(self, url: str, request_id: str) -> None: ...

    with pytest.raises(TypeError, match="on_fetch_start must be a plain function"):
        Fetcher(on_fetch_start=Hook())  # type: ignore[arg-type]


async def test_async_link_filter_is_refused() -> None:
    # Before: the coroutine counted as True, so every link was followed.
    client = create_mock_client(SITE)
    with pytest.raises(TypeError, match=r"WebSearchClient\.crawl: link_filter must be a plain"):
        await client.crawl("http://x/a", link_filter=_async_hook)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="map_site: link_filter must be a plain"):
        await run_utils.map_site(
            "http://x/a",
            link_filter=_async_hook,  # type: ignore[arg-type]
            client_factory=lambda: client,
        )


async def test_async_client_factory_is_refused() -> None:
    async def factory() -> WebSearchClient:
        return create_mock_client(SITE)  # pragma: no cover

    with pytest.raises(TypeError, match="fetch_pages: client_factory must be a plain"):
        await run_utils.fetch_pages(["http://x/a"], client_factory=factory)  # type: ignore[arg-type]


def test_async_extractor_or_navigator_method_is_refused_at_construction() -> None:
    # Before: accepted, and the first fetch failed with "'coroutine' object has no
    # attribute 'markdown'" (and a never-awaited warning).
    class AsyncExtractor:
        async def extract(self, html: str, **kwargs: Any) -> Any: ...
        def extract_metadata(self, html: str) -> PageMetadata:
            return PageMetadata()

    class AsyncNavigator:
        async def analyze(self, html: str, **kwargs: Any) -> Any: ...

    with pytest.raises(TypeError, match=r"extractor\.extract must be a plain method"):
        WebSearchClient(fetcher=MockFetcher(), extractor=AsyncExtractor())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"navigator\.analyze must be a plain method"):
        WebSearchClient(fetcher=MockFetcher(), navigator=AsyncNavigator())  # type: ignore[arg-type]


async def test_sync_hooks_that_raise_or_reenter_do_not_break_fetches() -> None:
    client: WebSearchClient

    def start(url: str, request_id: str) -> None:
        client.extract_content(HTML, base_url=url)
        raise RuntimeError("boom")

    def fail(*args: object) -> None:
        raise ZeroDivisionError

    fetcher = MockFetcher(SITE, on_fetch_start=start, on_fetch_complete=fail, on_fetch_error=fail)
    client = WebSearchClient(fetcher=fetcher, on_extract_complete=fail)
    assert (await client.fetch("http://x/a")).success
    assert (await client.fetch("http://x/missing")).error == "HTTP 404"


# -- one client, many runs and many tasks ------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the pool keeps the connection

    def do_GET(self) -> None:
        body = HTML.encode()
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def loopback_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/a"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_client_made_at_import_serves_successive_runs(loopback_url: str) -> None:
    # Made outside trio; the first run leaves a pooled connection open (no close),
    # which the second run reuses; then with `async with`, then after close().
    client = WebSearchClient(WebSearchConfig(fetch=FetchConfig(max_retries=0)))
    titles: list[str | None] = []

    async def bare() -> None:
        titles.append((await client.fetch(loopback_url)).title)

    async def in_block() -> None:
        async with client:
            titles.append((await client.fetch(loopback_url)).title)
        titles.append((await client.fetch(loopback_url)).title)  # a new HTTP client
        await client.close()

    trio.run(bare)
    trio.run(bare)
    trio.run(in_block)
    trio.run(in_block)
    assert titles == ["T"] * 6


async def test_one_client_shared_by_many_tasks_and_a_fetcher_by_two_clients() -> None:
    site = {
        f"http://x/{i}": (200, HTML.replace("/b", f"/{i + 1}"), {"content-type": "text/html"})
        for i in range(40)
    }
    client = create_mock_client(site)
    other = WebSearchClient(fetcher=client._fetcher)
    out: dict[str, list[WebPage]] = {}

    async def run(name: str, call: Any) -> None:
        out[name] = await call

    async with client, other, trio.open_nursery() as nursery:
        nursery.start_soon(run, "many", client.fetch_many(list(site)[:20], concurrency=3))
        nursery.start_soon(run, "other", other.fetch_many(list(site)[20:], concurrency=3))
        nursery.start_soon(run, "crawl", client.crawl("http://x/0", max_pages=5, max_depth=10))
    assert [page.url for page in out["many"]] == list(site)[:20]
    assert [page.url for page in out["other"]] == list(site)[20:]
    assert all(page.success for page in out["many"] + out["other"])
    assert [page.url for page in out["crawl"]] == [
        "http://x/0",
        "http://x/1",
        "http://x/c",
        "http://x/2",
        "http://x/3",
    ]


async def test_two_hundred_urls_run_ten_at_a_time(autojump_clock: trio.abc.Clock) -> None:
    # 200 URLs: 20 rounds of 10 show the bound, the order and the duplicates as 2,000 did
    # (200 rounds, 7 s under coverage; 10,000 before that); fetch_many has no size limit.
    in_flight = peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await trio.sleep(1)
        in_flight -= 1
        return httpx.Response(200, html=HTML)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        client = WebSearchClient(fetcher=HttpFetcher(client=http))
        urls = [f"http://x/{i % 100}" for i in range(200)]  # each URL twice
        started = trio.current_time()
        pages = await client.fetch_many(urls, concurrency=10, navigate=False)
    assert peak == 10
    assert trio.current_time() - started == pytest.approx(20.0)
    assert [page.url for page in pages] == urls
    assert all(page.success for page in pages)


# -- values -------------------------------------------------------------------------


def _values() -> list[Any]:
    metadata = PageMetadata(title="t", keywords=["a", "b"], description="d")
    link = ExtractedLink(url="https://a/x", text="x", is_internal=True)
    action = NavigationAction(
        action_type="pagination", label="n", url="https://a/2", metadata={"k": 1}
    )
    pagination = PaginationInfo(
        current_page=1, total_pages=3, next_url="https://a/2", page_urls=["https://a/1"]
    )
    page = WebPage(
        url="https://a",
        status_code=200,
        markdown="m",
        metadata=metadata,
        links=[link],
        navigation_actions=[action],
        pagination=pagination,
    )
    return [metadata, link, action, pagination, page, WebPage.error_result("u", "e")]


@pytest.mark.parametrize("value", _values(), ids=lambda value: type(value).__name__)
def test_values_copy_pickle_hash_and_round_trip_through_json(value: Any) -> None:
    for same in (copy.copy(value), copy.deepcopy(value), pickle.loads(pickle.dumps(value))):
        assert same == value
        assert hash(same) == hash(value)
    text = json.dumps(value.to_dict())
    assert type(value).from_dict(json.loads(text)) == value


@pytest.mark.parametrize(
    "config",
    [
        FetchConfig(default_headers={"a": "b"}),
        ExtractionConfig(),
        NavigationConfig(),
        WebSearchConfig(),
    ],
    ids=lambda config: type(config).__name__,
)
def test_configs_copy_and_pickle(config: Any) -> None:
    for same in (copy.copy(config), copy.deepcopy(config), pickle.loads(pickle.dumps(config))):
        assert same == config
        assert hash(same) == hash(config)


def test_fetched_pages_serialize_with_their_frozen_lists() -> None:
    extraction = DefaultContentExtractor().extract(HTML, base_url="http://x/a")
    analysis = PageNavigator().analyze(HTML, base_url="http://x/a")
    json.dumps(extraction.to_dict())
    json.dumps(analysis.to_dict())
    client = create_mock_client(SITE)
    page = client.extract_content(HTML, base_url="http://x/a")
    assert WebPage.from_dict(json.loads(json.dumps(page.to_dict()))) == page
