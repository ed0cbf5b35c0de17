"""stageflow_trio.websearch.client: WebSearchConfig, WebSearchClient, create_mock_client."""

from __future__ import annotations

import asyncio
import importlib
import re
from collections.abc import Callable
from types import ModuleType
from typing import Any

import attrs
import httpx
import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio._frozen import FrozenInstanceError
from stageflow_trio.websearch.client import WebSearchClient, WebSearchConfig, create_mock_client
from stageflow_trio.websearch.extractor import (
    DefaultContentExtractor,
    ExtractionConfig,
    ExtractionResult,
)
from stageflow_trio.websearch.fetcher import (
    FetchConfig,
    Fetcher,
    FetchResult,
    HttpFetcher,
    MockFetcher,
)
from stageflow_trio.websearch.models import ExtractedLink, PaginationInfo
from stageflow_trio.websearch.navigator import (
    NavigationConfig,
    NavigationResult,
    Navigator,
    PageNavigator,
)

HTML = {"content-type": "text/html; charset=utf-8"}
Responses = dict[str, tuple[int, str, dict[str, str]]]


@pytest.fixture(scope="module")
def ref_client(reference: ModuleType) -> ModuleType:
    return importlib.import_module("stageflow.websearch.client")


def page(title: str, *hrefs: str, next_href: str | None = None, body: str = "") -> str:
    """A small HTML page with a title, a paragraph, links and maybe a rel=next link."""
    links = "".join(f'<p><a href="{href}">Go to {href}</a></p>' for href in hrefs)
    nav = (
        f'<nav class="pagination"><a rel="next" href="{next_href}">Next</a></nav>'
        if next_href
        else ""
    )
    return (
        f"<html><head><title>{title}</title><meta name='description' content='About {title}'>"
        f"</head><body><main><h1>{title}</h1><p>This is the page called {title}. {body}</p>"
        f"{links}{nav}</main></body></html>"
    )


def _comparable(data: dict[str, Any]) -> dict[str, Any]:
    """A page's dict without what depends on the clock."""
    return {
        k: v
        for k, v in data.items()
        if k not in ("fetch_duration_ms", "extract_duration_ms", "fetched_at")
    }


def reference_config(ref_client: ModuleType) -> Any:
    """The reference's config without menu selectors.

    :func:`page` has at most one menu link (its pagination ``<nav>``), fewer than
    ``min_nav_links`` (3), so ours reads no menu there (a parity row, audit 25);
    the reference, which ignores ``min_nav_links``, finds none without the selectors.
    """
    navigation = importlib.import_module("stageflow.websearch.navigator")
    return ref_client.WebSearchConfig(navigation=navigation.NavigationConfig(nav_link_selectors=[]))


def run_reference(ref_client: ModuleType, responses: Responses, call: Callable[[Any], Any]) -> Any:
    async def main() -> Any:
        client = ref_client.create_mock_client(responses, config=reference_config(ref_client))
        return await call(client)

    return asyncio.run(main())


def run_ours(responses: Responses, call: Callable[[Any], Any]) -> Any:
    async def main() -> Any:
        client = create_mock_client(responses)
        return await call(client)

    return trio.run(main)


def dicts(pages: Any) -> Any:
    if isinstance(pages, list):
        return [_comparable(p.to_dict()) for p in pages]
    return _comparable(pages.to_dict())


def _re(text: str) -> str:
    return re.escape(text)


# --- WebSearchConfig -----------------------------------------------------------------


def test_config_defaults_match_reference(ref_client: ModuleType) -> None:
    ours, theirs = WebSearchConfig(), ref_client.WebSearchConfig()
    assert [f.name for f in attrs.fields(WebSearchConfig)] == list(theirs.__dataclass_fields__)
    assert (ours.max_concurrent, ours.auto_extract, ours.auto_navigate) == (
        theirs.max_concurrent,
        theirs.auto_extract,
        theirs.auto_navigate,
    )
    assert ours.fetch == FetchConfig()
    assert ours.extraction == ExtractionConfig()
    assert ours.navigation == NavigationConfig()
    with pytest.raises(FrozenInstanceError):
        ours.max_concurrent = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"fetch": {}}, TypeError, "WebSearchConfig: fetch must be a FetchConfig; got dict"),
        (
            {"extraction": None},
            TypeError,
            "WebSearchConfig: extraction must be an ExtractionConfig; got NoneType",
        ),
        (
            {"navigation": 1},
            TypeError,
            "WebSearchConfig: navigation must be a NavigationConfig; got int",
        ),
        (
            {"max_concurrent": 0},
            ValueError,
            "WebSearchConfig: max_concurrent must be at least 1; got 0",
        ),
        (
            {"auto_extract": "no"},
            TypeError,
            "WebSearchConfig: auto_extract must be a bool; got str",
        ),
        (
            {"auto_navigate": None},
            TypeError,
            "WebSearchConfig: auto_navigate must be a bool; got NoneType",
        ),
    ],
)
def test_config_rejects_bad_values(kwargs: dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error, match=f"^{_re(message)}$"):
        WebSearchConfig(**kwargs)


# --- construction --------------------------------------------------------------------


def test_default_parts() -> None:
    config = WebSearchConfig(fetch=FetchConfig(timeout=3.0))
    client = WebSearchClient(config)
    assert isinstance(client._fetcher, HttpFetcher)
    assert client._fetcher.config is config.fetch
    assert isinstance(client._extractor, DefaultContentExtractor)
    assert isinstance(client._navigator, PageNavigator)
    assert client._extractor.config is config.extraction


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"config": FetchConfig()},
            "WebSearchClient: config must be a WebSearchConfig or None; got FetchConfig",
        ),
        (
            {"fetcher": object()},
            "WebSearchClient: fetcher must be a fetcher (with fetch); got object",
        ),
        (
            {"extractor": "x"},
            "WebSearchClient: extractor must be an extractor (with extract, extract_metadata); got str",
        ),
        (
            {"navigator": 3},
            "WebSearchClient: navigator must be a navigator (with analyze); got int",
        ),
        (
            {"on_extract_complete": 1},
            "WebSearchClient: on_extract_complete must be a callable or None; got int",
        ),
        ({"on_fetch_start": 1}, "HttpFetcher: on_fetch_start must be a callable or None; got int"),
    ],
)
def test_constructor_rejects_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError, match=f"^{_re(message)}$"):
        WebSearchClient(**kwargs)


def test_create_mock_client_rejects_bad_config() -> None:
    with pytest.raises(
        TypeError, match=r"^create_mock_client: config must be a WebSearchConfig or None; got dict$"
    ):
        create_mock_client({}, config={})  # type: ignore[arg-type]


def test_create_mock_client_passes_fetch_config() -> None:
    config = WebSearchConfig(fetch=FetchConfig(max_retries=0))
    client = create_mock_client({"u": (200, "x", {})}, config=config)
    assert isinstance(client._fetcher, MockFetcher)
    assert client._fetcher.config is config.fetch
    assert client.config is config


# --- fetch ---------------------------------------------------------------------------


RESPONSES: Responses = {
    "https://a.test/": (200, page("Home", "/one", "https://b.test/x", next_href="/p2"), HTML),
    "https://a.test/p2": (200, page("Page 2", "/two", next_href="/p3"), HTML),
    "https://a.test/p3": (200, page("Page 3", "/"), HTML),
    "https://a.test/text": (200, "plain words " * 3000, {"content-type": "text/plain"}),
    "https://a.test/json": (200, '{"a": 1}', {"content-type": "application/json"}),
    "https://a.test/latin": (200, "café", {"content-type": "text/plain; charset=utf-8"}),
    "https://a.test/gone": (410, "gone", HTML),
    "https://a.test/down": (503, "down", HTML),
}


@pytest.mark.parametrize("url", [*sorted(RESPONSES), "https://a.test/missing"])
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"extract": False},
        {"navigate": False},
        {"selector": "h1"},
        {"extract": False, "navigate": False},
    ],
)
def test_fetch_matches_reference(ref_client: ModuleType, url: str, options: dict[str, Any]) -> None:
    theirs = run_reference(ref_client, RESPONSES, lambda c: c.fetch(url, **options))
    ours = run_ours(RESPONSES, lambda c: c.fetch(url, **options))
    assert dicts(ours) == dicts(theirs)


async def test_fetch_html_page() -> None:
    client = create_mock_client(RESPONSES)
    home = await client.fetch("https://a.test/")
    assert home.success
    assert home.title == "Home"
    assert home.description == "About Home"
    assert [link.url for link in home.links] == [
        "https://a.test/one",
        "https://b.test/x",
    ]  # the <nav> (and its next link) is cut from the content
    assert home.pagination is not None
    assert home.pagination.next_url == "https://a.test/p2"
    assert home.navigation_actions
    assert home.fetched_at is not None
    assert home.fetched_at.endswith("+00:00")


async def test_fetch_non_html_keeps_ten_thousand_characters() -> None:
    client = create_mock_client(RESPONSES)
    text = await client.fetch("https://a.test/text")
    assert len(text.markdown) == 10_000
    assert text.plain_text == text.markdown
    assert text.word_count == 6000  # counted over the whole text
    assert text.links == []


async def test_fetch_failures_give_error_pages(autojump_clock: trio.abc.Clock) -> None:
    class Broken(Fetcher):
        async def _do_fetch(self, url: str, **_: Any) -> FetchResult:
            await trio.sleep(1)
            raise ValueError("bad things")

    client = create_mock_client(RESPONSES)
    gone = await client.fetch("https://a.test/gone")
    assert (gone.status_code, gone.error, gone.success) == (0, "HTTP 410", False)
    broken = await WebSearchClient(fetcher=Broken()).fetch("https://a.test/")
    assert (broken.error, broken.fetch_duration_ms) == ("bad things", 1000.0)


async def test_fetch_options_follow_config() -> None:
    quiet = create_mock_client(
        RESPONSES, config=WebSearchConfig(auto_extract=False, auto_navigate=False)
    )
    bare = await quiet.fetch("https://a.test/")
    assert (
        bare.markdown,
        bare.links,
        bare.word_count,
        bare.navigation_actions,
        bare.pagination,
    ) == (
        "",
        [],
        0,
        [],
        None,
    )
    assert bare.title == "Home"  # metadata is still read
    full = await quiet.fetch("https://a.test/", extract=True, navigate=True)
    assert full.markdown.startswith("# Home")
    assert full.pagination is not None


async def test_fetch_passes_timeout_and_headers() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/start":
            return httpx.Response(302, headers={"Location": "/docs/final"})
        return httpx.Response(200, text=page("Final", "next.html"), headers=HTML)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        client = WebSearchClient(fetcher=HttpFetcher(client=http))
        result = await client.fetch("https://a.test/start", timeout=2.0, headers={"X-Token": "t"})
    assert result.final_url == "https://a.test/docs/final"
    # Relative links resolve against the final URL, not the one asked for.
    assert [link.url for link in result.links] == ["https://a.test/docs/next.html"]
    assert seen[0].headers["x-token"] == "t"
    assert seen[0].extensions["timeout"] == httpx.Timeout(2.0).as_dict()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"url": None}, TypeError, "WebSearchClient.fetch: url must be a str; got NoneType"),
        ({"timeout": 0}, ValueError, "WebSearchClient.fetch: timeout must be > 0; got 0"),
        (
            {"headers": {"a": 1}},
            TypeError,
            "WebSearchClient.fetch: headers must map str to str; got str -> int",
        ),
        (
            {"selector": 1},
            TypeError,
            "WebSearchClient.fetch: selector must be a str or None; got int",
        ),
        ({"extract": 1}, TypeError, "WebSearchClient.fetch: extract must be a bool; got int"),
        ({"navigate": "y"}, TypeError, "WebSearchClient.fetch: navigate must be a bool; got str"),
    ],
)
async def test_fetch_rejects_bad_arguments(
    kwargs: dict[str, Any], error: type, message: str
) -> None:
    client = create_mock_client(RESPONSES)
    url = kwargs.pop("url", "https://a.test/")
    with pytest.raises(error, match=f"^{_re(message)}$"):
        await client.fetch(url, **kwargs)


async def test_hooks_share_the_request_id() -> None:
    calls: list[tuple[str, tuple[Any, ...]]] = []
    fetcher = MockFetcher(
        RESPONSES,
        on_fetch_start=lambda *a: calls.append(("start", a)),
        on_fetch_complete=lambda *a: calls.append(("complete", a)),
    )
    client = WebSearchClient(
        fetcher=fetcher, on_extract_complete=lambda *a: calls.append(("extract", a))
    )
    home = await client.fetch("https://a.test/")
    await client.fetch("https://a.test/text")  # not HTML: no extraction hook
    await client.fetch("https://a.test/gone")  # failed: none either
    start, complete, extract = calls[:3]
    assert [name for name, _ in calls] == [
        "start",
        "complete",
        "extract",
        "start",
        "complete",
        "start",
    ]
    request_id = start[1][1]
    assert complete[1][1] == request_id
    url, extract_id, duration_ms, chars, links = extract[1]
    assert (url, extract_id, chars, links) == ("https://a.test/", request_id, len(home.markdown), 2)
    assert duration_ms >= 0


async def test_extract_hook_errors_are_suppressed() -> None:
    def boom(*_: Any) -> None:
        raise RuntimeError("hook failed")

    client = WebSearchClient(fetcher=MockFetcher(RESPONSES), on_extract_complete=boom)
    assert (await client.fetch("https://a.test/")).success


async def test_fetch_hooks_go_to_the_owned_fetcher(monkeypatch: pytest.MonkeyPatch) -> None:
    real_client = httpx.AsyncClient

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200 if request.url.path == "/ok" else 500, text="x")

    def make(**kwargs: Any) -> httpx.AsyncClient:
        return real_client(transport=httpx.MockTransport(handler), **kwargs)

    monkeypatch.setattr(httpx, "AsyncClient", make)
    calls: list[str] = []
    async with WebSearchClient(
        on_fetch_start=lambda *a: calls.append("start"),
        on_fetch_complete=lambda *a: calls.append("complete"),
        on_fetch_error=lambda *a: calls.append("error"),
    ) as client:
        await client.fetch("https://a.test/ok")
        await client.fetch("https://a.test/fail")
    assert calls == ["start", "complete", "start", "error"]


async def test_fetch_is_a_checkpoint() -> None:
    class Instant:
        """A fetcher that never checkpoints."""

        async def fetch(self, url: str, **_: Any) -> FetchResult:
            return FetchResult(url=url, status_code=200, content=b"x", content_type="text/plain")

    client = WebSearchClient(fetcher=Instant())  # type: ignore[arg-type]
    with trio.testing.assert_checkpoints():
        await client.fetch("https://a.test/")
    for call in (
        client.fetch_many([]),
        client.fetch_with_navigation("u", max_pages=0),
        client.crawl("u", max_pages=0),
        client.close(),
    ):
        with trio.testing.assert_checkpoints():
            await call


# --- lifecycle -----------------------------------------------------------------------


async def test_async_with_closes_the_owned_fetcher(monkeypatch: pytest.MonkeyPatch) -> None:
    real_client = httpx.AsyncClient
    made: list[httpx.AsyncClient] = []

    def make(**kwargs: Any) -> httpx.AsyncClient:
        made.append(
            real_client(
                transport=httpx.MockTransport(lambda _: httpx.Response(200, text="ok")), **kwargs
            )
        )
        return made[-1]

    monkeypatch.setattr(httpx, "AsyncClient", make)
    async with WebSearchClient() as client:
        assert len(made) == 1
        assert (await client.fetch("https://a.test/")).markdown == "ok"
    assert _closed(made[0])
    # Without async with: close() closes it, and again is harmless.
    client = WebSearchClient()
    await client.fetch("https://a.test/")
    await client.close()
    await client.close()
    assert _closed(made[1])


def _closed(client: httpx.AsyncClient) -> bool:
    return client.is_closed


async def test_a_given_fetcher_is_neither_entered_nor_closed() -> None:
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(lambda _: httpx.Response(200))
    ) as http:
        fetcher = HttpFetcher()
        entered: list[str] = []

        async def track_enter() -> HttpFetcher:
            entered.append("enter")
            return fetcher

        fetcher.__aenter__ = track_enter  # type: ignore[method-assign]
        fetcher._client = http
        async with WebSearchClient(fetcher=fetcher):
            pass
        assert entered == []
        assert fetcher._client is http
        assert not _closed(http)
        await fetcher.close()  # the fetcher's owner closes it


# --- fetch_many ----------------------------------------------------------------------


class TimedFetcher(MockFetcher):
    """Each response takes ``delay(url)`` seconds; tracks the fetches in flight."""

    def __init__(self, responses: Responses, delay: Callable[[str], float]) -> None:
        super().__init__(responses)
        self.delay = delay
        self.in_flight = 0
        self.peak = 0

    async def _do_fetch(self, url: str, **kwargs: Any) -> FetchResult:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await trio.sleep(self.delay(url))
            return await super()._do_fetch(url, **kwargs)
        finally:
            self.in_flight -= 1


async def test_fetch_many_order_and_concurrency(autojump_clock: trio.abc.Clock) -> None:
    urls = [f"https://a.test/{i}" for i in range(7)]
    responses = {url: (200, page(f"P{i}"), HTML) for i, url in enumerate(urls)}
    fetcher = TimedFetcher(responses, lambda url: 1.0)
    client = WebSearchClient(WebSearchConfig(max_concurrent=3), fetcher=fetcher)
    pages = await client.fetch_many(urls)
    assert [p.title for p in pages] == [f"P{i}" for i in range(7)]
    assert fetcher.peak == 3
    assert trio.current_time() == 3.0  # 3 + 3 + 1
    fetcher.peak = 0
    await client.fetch_many(urls, concurrency=0)  # 0: the config's
    assert fetcher.peak == 3
    fetcher.peak = 0
    await client.fetch_many(urls, concurrency=7)
    assert fetcher.peak == 7


def test_fetch_many_matches_reference(ref_client: ModuleType) -> None:
    urls = [*sorted(RESPONSES), "https://a.test/missing", "https://a.test/"]
    theirs = run_reference(ref_client, RESPONSES, lambda c: c.fetch_many(urls, concurrency=2))
    ours = run_ours(RESPONSES, lambda c: c.fetch_many(urls, concurrency=2))
    assert dicts(ours) == dicts(theirs)


async def test_fetch_many_error_page_for_a_failing_url(autojump_clock: trio.abc.Clock) -> None:
    class Flaky(MockFetcher):
        async def _do_fetch(self, url: str, **kwargs: Any) -> FetchResult:
            if url.endswith("bad"):
                raise ValueError("no route")
            return await super()._do_fetch(url, **kwargs)

    client = WebSearchClient(fetcher=Flaky(RESPONSES))
    pages = await client.fetch_many(["https://a.test/", "https://a.test/bad", "https://a.test/p2"])
    assert [p.error for p in pages] == [None, "no route", None]


async def test_fetch_many_extractor_error_propagates_unwrapped(
    autojump_clock: trio.abc.Clock,
) -> None:
    class Picky(DefaultContentExtractor):
        def extract(
            self, html: str | bytes, *, base_url: str | None = None, selector: str | None = None
        ) -> ExtractionResult:
            if "Page 2" in str(html):
                raise RuntimeError("cannot parse")
            return super().extract(html, base_url=base_url, selector=selector)

    fetcher = TimedFetcher(RESPONSES, lambda url: 5.0 if url.endswith("p3") else 1.0)
    client = WebSearchClient(fetcher=fetcher, extractor=Picky())
    with pytest.raises(RuntimeError, match=r"^cannot parse$"):
        await client.fetch_many(["https://a.test/", "https://a.test/p2", "https://a.test/p3"])
    assert trio.current_time() == 1.0  # the slow fetch was cancelled, not waited for
    assert fetcher.in_flight == 0
    assert _child_tasks() == []


def _child_tasks() -> list[trio.lowlevel.Task]:
    task = trio.lowlevel.current_task()
    return [child for nursery in task.child_nurseries for child in nursery.child_tasks]


async def test_cancelled_fetch_many_leaves_no_task(autojump_clock: trio.abc.Clock) -> None:
    fetcher = TimedFetcher(RESPONSES, lambda url: 10.0)
    client = WebSearchClient(fetcher=fetcher)
    with trio.move_on_after(3) as scope:
        await client.fetch_many(["https://a.test/", "https://a.test/p2", "https://a.test/p3"])
    assert scope.cancelled_caught
    assert trio.current_time() == 3.0
    assert fetcher.in_flight == 0
    assert _child_tasks() == []


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        (
            ("https://a.test/",),
            {},
            TypeError,
            "WebSearchClient.fetch_many: urls must be a list of str; got str",
        ),
        ((5,), {}, TypeError, "WebSearchClient.fetch_many: urls must be a list of str; got int"),
        (([None],), {}, TypeError, "WebSearchClient.fetch_many: urls must be a str; got NoneType"),
        (
            (["u"],),
            {"concurrency": -1},
            ValueError,
            "WebSearchClient.fetch_many: concurrency must be at least 0; got -1",
        ),
        (
            (["u"],),
            {"extract": 0},
            TypeError,
            "WebSearchClient.fetch_many: extract must be a bool; got int",
        ),
    ],
)
async def test_fetch_many_rejects_bad_arguments(
    args: tuple[Any, ...], kwargs: dict[str, Any], error: type, message: str
) -> None:
    with pytest.raises(error, match=f"^{_re(message)}$"):
        await create_mock_client({}).fetch_many(*args, **kwargs)


# --- fetch_with_navigation -----------------------------------------------------------


async def test_fetch_with_navigation_follows_next_links() -> None:
    client = create_mock_client(RESPONSES)
    pages = await client.fetch_with_navigation("https://a.test/")
    assert [p.url for p in pages] == ["https://a.test/", "https://a.test/p2", "https://a.test/p3"]
    assert [p.url for p in await client.fetch_with_navigation("https://a.test/", max_pages=2)] == [
        "https://a.test/",
        "https://a.test/p2",
    ]
    only = await client.fetch_with_navigation("https://a.test/", follow_pagination=False)
    assert [p.url for p in only] == ["https://a.test/"]
    assert await client.fetch_with_navigation("https://a.test/", max_pages=-1) == []


async def test_fetch_with_navigation_ends_on_a_pagination_loop() -> None:
    responses = {
        "https://a.test/1": (200, page("One", next_href="/2"), HTML),
        "https://a.test/2": (200, page("Two", next_href="/1"), HTML),
    }
    client = create_mock_client(responses)
    pages = await client.fetch_with_navigation("https://a.test/1", max_pages=100)
    assert [p.url for p in pages] == ["https://a.test/1", "https://a.test/2"]
    assert client._fetcher.fetch_history == ["https://a.test/1", "https://a.test/2"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("start", ["https://a.test/", "https://a.test/1", "https://a.test/gone"])
@pytest.mark.parametrize("max_pages", [0, 1, 2, 10])
def test_fetch_with_navigation_matches_reference(
    ref_client: ModuleType, start: str, max_pages: int
) -> None:
    responses = {
        **RESPONSES,
        "https://a.test/1": (200, page("One", next_href="/2"), HTML),
        "https://a.test/2": (200, page("Two", next_href="/1"), HTML),
    }
    theirs = run_reference(
        ref_client, responses, lambda c: c.fetch_with_navigation(start, max_pages=max_pages)
    )
    ours = run_ours(responses, lambda c: c.fetch_with_navigation(start, max_pages=max_pages))
    assert dicts(ours) == dicts(theirs)


# --- crawl ---------------------------------------------------------------------------


def graph_responses(graph: dict[int, list[str]]) -> Responses:
    """Page /n links to each of graph[n] (paths or absolute URLs)."""
    return {f"https://a.test/{n}": (200, page(f"N{n}", *hrefs), HTML) for n, hrefs in graph.items()}


async def test_crawl_ends_on_link_cycles() -> None:
    # 0 -> 1 -> 2 -> 0, each also linking to itself: every page once.
    responses = graph_responses({0: ["/1", "/0"], 1: ["/2", "/1"], 2: ["/0", "/2"]})
    client = create_mock_client(responses)
    with trio.fail_after(5):  # (real time would only pass if it looped)
        pages = await client.crawl("https://a.test/0", max_pages=1000, max_depth=1000)
    assert [p.url for p in pages] == ["https://a.test/0", "https://a.test/1", "https://a.test/2"]
    assert client._fetcher.fetch_history == [p.url for p in pages]  # type: ignore[attr-defined]


async def test_crawl_depth_domain_and_filter() -> None:
    responses = graph_responses(
        {0: ["/1", "/2", "https://b.test/x"], 1: ["/3"], 2: ["/3", "/4"], 3: ["/5"], 4: [], 5: []}
    )
    responses["https://b.test/x"] = (200, page("Other"), HTML)
    client = create_mock_client(responses)

    async def urls(**kwargs: Any) -> list[str]:
        return [p.url for p in await client.crawl("https://a.test/0", **kwargs)]

    assert await urls() == [f"https://a.test/{n}" for n in (0, 1, 2, 3, 4)]  # depth 2
    assert await urls(max_depth=0) == ["https://a.test/0"]
    assert await urls(max_depth=5) == [f"https://a.test/{n}" for n in range(6)]
    assert await urls(max_pages=3) == [f"https://a.test/{n}" for n in (0, 1, 2)]
    assert await urls(same_domain_only=False, max_depth=1) == [
        "https://a.test/0",
        "https://a.test/1",
        "https://a.test/2",
        "https://b.test/x",
    ]
    seen: list[str] = []

    def no_twos(link: ExtractedLink) -> bool:
        seen.append(link.url)
        return not link.url.endswith("/2")

    assert await urls(link_filter=no_twos) == [f"https://a.test/{n}" for n in (0, 1, 3)]
    assert seen == ["https://a.test/1", "https://a.test/2", "https://a.test/3"]


async def test_crawl_link_filter_error_propagates() -> None:
    def broken(link: ExtractedLink) -> bool:
        raise KeyError(link.url)

    client = create_mock_client(graph_responses({0: ["/1"]}))
    with pytest.raises(KeyError):
        await client.crawl("https://a.test/0", link_filter=broken)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"start_url": 1}, TypeError, "WebSearchClient.crawl: start_url must be a str; got int"),
        (
            {"max_pages": 1.0},
            TypeError,
            "WebSearchClient.crawl: max_pages must be an int; got float",
        ),
        (
            {"max_depth": None},
            TypeError,
            "WebSearchClient.crawl: max_depth must be an int; got NoneType",
        ),
        (
            {"same_domain_only": 1},
            TypeError,
            "WebSearchClient.crawl: same_domain_only must be a bool; got int",
        ),
        (
            {"link_filter": "x"},
            TypeError,
            "WebSearchClient.crawl: link_filter must be a callable or None; got str",
        ),
    ],
)
async def test_crawl_rejects_bad_arguments(
    kwargs: dict[str, Any], error: type, message: str
) -> None:
    client = create_mock_client({})
    start = kwargs.pop("start_url", "https://a.test/")
    with pytest.raises(error, match=f"^{_re(message)}$"):
        await client.crawl(start, **kwargs)


_GRAPHS = st.dictionaries(
    st.integers(0, 6),
    st.lists(
        st.one_of(
            st.integers(0, 7).map(lambda n: f"/{n}"),
            st.sampled_from(["https://b.test/0", "https://a.test/0#frag", "/0?q=1"]),
        ),
        max_size=4,
    ),
    max_size=7,
)


@given(
    graph=_GRAPHS,
    max_pages=st.integers(0, 8),
    max_depth=st.integers(0, 4),
    same_domain_only=st.booleans(),
)
def test_crawl_matches_reference(
    ref_client: ModuleType,
    graph: dict[int, list[str]],
    max_pages: int,
    max_depth: int,
    same_domain_only: bool,
) -> None:
    responses = graph_responses(graph)
    kwargs = {"max_pages": max_pages, "max_depth": max_depth, "same_domain_only": same_domain_only}
    theirs = run_reference(ref_client, responses, lambda c: c.crawl("https://a.test/0", **kwargs))
    ours = run_ours(responses, lambda c: c.crawl("https://a.test/0", **kwargs))
    assert dicts(ours) == dicts(theirs)


# --- extract_content -----------------------------------------------------------------


@pytest.mark.parametrize("base_url", [None, "https://a.test/dir/page"])
@pytest.mark.parametrize("selector", [None, "main"])
def test_extract_content_matches_reference(
    ref_client: ModuleType, base_url: str | None, selector: str | None
) -> None:
    html = page("Local", "rel.html", "/abs", next_href="?page=2")
    theirs = ref_client.create_mock_client({}, config=reference_config(ref_client)).extract_content(
        html, base_url=base_url, selector=selector
    )
    ours = create_mock_client({}).extract_content(html, base_url=base_url, selector=selector)
    assert dicts(ours) == dicts(theirs)
    assert ours.url == (base_url or "")
    assert ours.status_code == 200


def test_extract_content_rejects_bad_arguments() -> None:
    client = create_mock_client({})
    with pytest.raises(
        TypeError, match=r"^WebSearchClient.extract_content: html must be a str; got bytes$"
    ):
        client.extract_content(b"<p>x</p>")  # type: ignore[arg-type]
    with pytest.raises(
        TypeError,
        match=r"^WebSearchClient.extract_content: base_url must be a str or None; got int$",
    ):
        client.extract_content("<p>x</p>", base_url=1)  # type: ignore[arg-type]


async def test_custom_navigator_is_used() -> None:
    calls: list[tuple[str, str | None]] = []

    class OnePage(Navigator):
        def analyze(self, html: str, *, base_url: str | None = None) -> NavigationResult:
            calls.append((html[:6], base_url))
            return NavigationResult(pagination=PaginationInfo(current_page=7))

    client = WebSearchClient(fetcher=MockFetcher(RESPONSES), navigator=OnePage())
    fetched = await client.fetch("https://a.test/p2")
    local = client.extract_content("<html></html>", base_url="https://c.test/")
    assert fetched.pagination == local.pagination == PaginationInfo(current_page=7)
    assert calls == [("<html>", "https://a.test/p2"), ("<html>", "https://c.test/")]
