"""Tests of stageflow_trio.websearch.run_utils: the one-call workflows over a mock site.

Every fetch goes through a ``MockFetcher`` (or a subclass that sleeps in virtual
time), never the network. The differential tests run the reference's
``stageflow.websearch.run_utils`` under ``asyncio.run`` on the same responses and
compare what both return, timings and timestamps aside.
"""

from __future__ import annotations

import asyncio
import importlib
import math
import threading
from typing import Any

import attrs
import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio.websearch import run_utils
from stageflow_trio.websearch.client import WebSearchClient, WebSearchConfig, create_mock_client
from stageflow_trio.websearch.extractor import DefaultContentExtractor
from stageflow_trio.websearch.fetcher import FetchConfig, MockFetcher
from stageflow_trio.websearch.models import ExtractedLink, WebPage
from stageflow_trio.websearch.run_utils import (
    FetchProgress,
    SearchResult,
    SiteMap,
    extract_all_links,
    fetch_page,
    fetch_pages,
    fetch_with_retry,
    map_site,
    search_and_extract,
    shutdown_extraction_pool,
)
from tests.fakes import import_reference

import_reference()
ref_run_utils: Any = importlib.import_module("stageflow.websearch.run_utils")
ref_client: Any = importlib.import_module("stageflow.websearch.client")
ref_fetcher: Any = importlib.import_module("stageflow.websearch.fetcher")
ref_models: Any = importlib.import_module("stageflow.websearch.models")

BASE = "https://site.test"
HTML = {"content-type": "text/html; charset=utf-8"}
Responses = dict[str, tuple[int, str | bytes, dict[str, str]]]


def _html(title: str, text: str, links: list[str]) -> str:
    anchors = "".join(f'<li><a href="{href}">to {href}</a></li>' for href in links)
    return (
        f"<html><head><title>{title}</title></head><body><main><h1>{title}</h1>"
        f"<p>{text}</p><ul>{anchors}</ul></main></body></html>"
    )


# A small site with a link cycle (/ -> /a -> / and /a <-> /b), external links,
# a dead link (/missing: the default 404), a plain-text page and a server error.
SITE: Responses = {
    f"{BASE}/": (
        200,
        _html(
            "Home",
            "Welcome to the python documentation",
            ["/a", "/b", "https://ext.test/x", "/missing"],
        ),
        HTML,
    ),
    f"{BASE}/a": (
        200,
        _html("Install guide", "The installation guide for python users", ["/", "/b", "/c"]),
        HTML,
    ),
    f"{BASE}/b": (200, _html("About", "About us and our team", ["/a", "https://ext.test/y"]), HTML),
    f"{BASE}/c": (200, _html("Deep", "Deep python installation notes", ["/d"]), HTML),
    f"{BASE}/d": (200, _html("Deeper", "Deeper still", ["/", "https://ext.test/x"]), HTML),
    f"{BASE}/text": (200, "plain words here\nand more", {"content-type": "text/plain"}),
    f"{BASE}/boom": (503, "unavailable", {"content-type": "text/plain"}),
}
URLS = [f"{BASE}/", f"{BASE}/a", f"{BASE}/missing", f"{BASE}/text", f"{BASE}/b", f"{BASE}/boom"]

# What the two implementations stamp differently on every page.
TIMING_KEYS = ("fetch_duration_ms", "extract_duration_ms", "fetched_at")


def _factory(responses: Any = SITE) -> Any:
    return lambda: create_mock_client(dict(responses))


_ANY_SITE: Any = SITE


def _ref_factory(responses: Responses = SITE) -> Any:
    return lambda: ref_client.create_mock_client(dict(responses))


def _page(page: Any) -> dict[str, Any]:
    data: dict[str, Any] = page.to_dict()
    for key in TIMING_KEYS:
        data.pop(key)
    return data


def _run_reference(function: Any, *args: Any, **kwargs: Any) -> Any:
    """``function(*args, **kwargs)`` of the reference, run to completion under asyncio."""
    try:
        return asyncio.run(function(*args, **kwargs))
    finally:
        ref_run_utils.shutdown_extraction_pool()


class SlowFetcher(MockFetcher):
    """A MockFetcher whose every request takes ``delay`` virtual seconds; it records
    when requests start, finish and are cancelled."""

    def __init__(
        self, *args: Any, delay: float = 1.0, delays: dict[str, float] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.delay = delay
        self.delays = delays or {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.started: list[tuple[str, float]] = []
        self.finished: list[str] = []
        self.cancelled: list[str] = []

    async def _do_fetch(self, url: str, **kwargs: Any) -> Any:
        self.started.append((url, trio.current_time()))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await trio.sleep(self.delays.get(url, self.delay))
        except trio.Cancelled:
            self.cancelled.append(url)
            raise
        finally:
            self.in_flight -= 1
        self.finished.append(url)
        return await super()._do_fetch(url, **kwargs)


def _client_with(fetcher: Any, **kwargs: Any) -> Any:
    return lambda: WebSearchClient(fetcher=fetcher, **kwargs)


# --- the public surface and the result classes -----------------------------------


def test_all_matches_the_reference() -> None:
    assert run_utils.__all__ == ref_run_utils.__all__
    for name in run_utils.__all__:
        assert getattr(run_utils, name).__module__ == "stageflow_trio.websearch.run_utils"


def test_fetch_progress_defaults_and_percent() -> None:
    progress = FetchProgress()
    assert attrs.asdict(progress) == {
        "completed": 0,
        "total": 0,
        "current_url": None,
        "success_count": 0,
        "error_count": 0,
        "elapsed_ms": 0.0,
    }
    assert progress.percent == 0.0
    assert FetchProgress(1, 4).percent == 25.0
    assert FetchProgress(completed=3, total=3).percent == 100.0
    progress.completed = 2  # mutable, as the reference's
    assert progress.completed == 2


@given(completed=st.integers(0, 10**6), total=st.integers(-5, 10**6))
def test_fetch_progress_percent_matches_the_reference(completed: int, total: int) -> None:
    ours = FetchProgress(completed=completed, total=total).percent
    theirs = ref_run_utils.FetchProgress(completed=completed, total=total).percent
    assert ours == theirs


_TEXT = st.text(max_size=20)
_FLOAT = st.floats(allow_nan=False)


@given(
    query=_TEXT,
    pages=st.integers(0, 4),
    relevant=st.integers(0, 4),
    words=st.integers(0, 10**6),
    ms=_FLOAT,
)
def test_search_result_to_dict_matches_the_reference(
    query: str, pages: int, relevant: int, words: int, ms: float
) -> None:
    page = WebPage(url="u")
    ref_page = ref_models.WebPage(url="u")
    ours = SearchResult(query, [page] * pages, [page] * relevant, words, ms)
    theirs = ref_run_utils.SearchResult(query, [ref_page] * pages, [ref_page] * relevant, words, ms)
    assert ours.to_dict() == theirs.to_dict()
    assert list(ours.to_dict()) == [
        "query",
        "pages_fetched",
        "relevant_pages",
        "total_words",
        "duration_ms",
    ]


@given(
    start=_TEXT,
    pages=st.integers(0, 4),
    internal=st.integers(0, 4),
    external=st.integers(0, 4),
    depth=st.integers(0, 9),
    ms=_FLOAT,
)
def test_site_map_to_dict_matches_the_reference(
    start: str, pages: int, internal: int, external: int, depth: int, ms: float
) -> None:
    link, ref_link = ExtractedLink(url="l"), ref_models.ExtractedLink(url="l")
    page, ref_page = WebPage(url="u"), ref_models.WebPage(url="u")
    ours = SiteMap(start, [page] * pages, [link] * internal, [link] * external, depth, ms)
    theirs = ref_run_utils.SiteMap(
        start, [ref_page] * pages, [ref_link] * internal, [ref_link] * external, depth, ms
    )
    assert ours.to_dict() == theirs.to_dict()


def test_result_defaults_are_fresh_lists() -> None:
    first, second = SearchResult("q"), SearchResult("q")
    first.pages.append(WebPage(url="u"))
    assert second.pages == []
    assert SiteMap("s").to_dict() == ref_run_utils.SiteMap("s").to_dict()
    assert SearchResult("q").to_dict() == ref_run_utils.SearchResult("q").to_dict()


# --- fetch_page --------------------------------------------------------------------


@pytest.mark.parametrize("url", [f"{BASE}/", f"{BASE}/text", f"{BASE}/missing", f"{BASE}/boom"])
async def test_fetch_page_matches_the_reference(url: str) -> None:
    ours = await fetch_page(url, client_factory=_factory())
    theirs = _run_reference(ref_run_utils.fetch_page, url, client_factory=_ref_factory())
    assert _page(ours) == _page(theirs)


async def test_fetch_page_passes_selector_and_closes_its_client() -> None:
    entered: list[str] = []

    class Recording(WebSearchClient):
        async def __aenter__(self) -> Any:
            entered.append("enter")
            return await super().__aenter__()

        async def __aexit__(self, *exc: Any) -> None:
            entered.append("exit")
            await super().__aexit__(*exc)

    page = await fetch_page(
        f"{BASE}/a", selector="h1", client_factory=lambda: Recording(fetcher=MockFetcher(SITE))
    )
    assert page.markdown.strip() == "# Install guide"
    assert entered == ["enter", "exit"]


async def test_fetch_page_uses_config_without_a_factory(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[Any] = []

    def fake_client(config: Any = None) -> Any:
        made.append(config)
        return _factory()() if config is None else create_mock_client(_ANY_SITE, config=config)

    monkeypatch.setattr(run_utils, "WebSearchClient", fake_client)
    config = WebSearchConfig(fetch=FetchConfig(timeout=5.0))
    page = await fetch_page(f"{BASE}/b", config=config)
    assert page.title == "About"
    assert made == [config]


# --- fetch_pages -------------------------------------------------------------------


@pytest.mark.parametrize("parallel_extraction", [True, False])
async def test_fetch_pages_matches_the_reference(parallel_extraction: bool) -> None:
    ours = await fetch_pages(
        URLS, parallel_extraction=parallel_extraction, client_factory=_factory()
    )
    theirs = _run_reference(
        ref_run_utils.fetch_pages,
        URLS,
        parallel_extraction=parallel_extraction,
        client_factory=_ref_factory(),
    )
    assert [p.url for p in ours] == URLS
    assert [_page(p) for p in ours] == [_page(p) for p in theirs]


def _progress_row(progress: Any) -> tuple[Any, ...]:
    return (
        progress.completed,
        progress.total,
        progress.current_url,
        progress.success_count,
        progress.error_count,
        progress.percent,
    )


async def test_fetch_pages_progress_matches_the_reference_one_at_a_time() -> None:
    ours: list[tuple[Any, ...]] = []
    theirs: list[tuple[Any, ...]] = []
    seen: list[FetchProgress] = []

    def record(progress: FetchProgress) -> None:
        ours.append(_progress_row(progress))
        seen.append(progress)

    await fetch_pages(URLS, concurrency=1, on_progress=record, client_factory=_factory())
    _run_reference(
        ref_run_utils.fetch_pages,
        URLS,
        concurrency=1,
        on_progress=lambda p: theirs.append(_progress_row(p)),
        client_factory=_ref_factory(),
    )
    assert ours == theirs
    assert ours[-1] == (6, 6, f"{BASE}/boom", 4, 2, 100.0)
    assert all(p is seen[0] for p in seen)  # one object, updated in place


# HTML extraction in a worker thread takes real time, during which the autojump
# clock may jump: the exact-time tests use the client's own extraction or text pages.
TEXT_SITE: Responses = {
    f"{BASE}/{name}": (200, f"text of {name}", {"content-type": "text/plain"}) for name in "abcd"
}


@pytest.mark.parametrize(
    ("site", "parallel_extraction"), [(SITE, False), (TEXT_SITE, True)], ids=["html", "text"]
)
async def test_fetch_pages_limits_concurrency_and_keeps_input_order(
    autojump_clock: trio.testing.MockClock, site: Responses, parallel_extraction: bool
) -> None:
    fetcher = SlowFetcher(site, delay=1.0)
    urls = [f"{BASE}/{name}" for name in "abcd"] * 2 + [f"{BASE}/a"] * 2
    elapsed: list[float] = []
    pages = await fetch_pages(
        urls,
        concurrency=3,
        on_progress=lambda p: elapsed.append(p.elapsed_ms),
        parallel_extraction=parallel_extraction,
        client_factory=_client_with(fetcher),
    )
    assert trio.current_time() == 4.0  # ceil(10 / 3) rounds of one second
    assert fetcher.max_in_flight == 3
    assert [url for url, _ in fetcher.started] == urls  # started in input order
    assert [t for _, t in fetcher.started] == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3]
    assert [p.url for p in pages] == urls
    assert all(p.success for p in pages)
    assert sorted(elapsed) == [1000.0] * 3 + [2000.0] * 3 + [3000.0] * 3 + [4000.0]


async def test_fetch_pages_runs_every_url_at_once_when_concurrency_allows(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fetcher = SlowFetcher(SITE, delay=2.5)
    pages = await fetch_pages(
        URLS, concurrency=100, parallel_extraction=False, client_factory=_client_with(fetcher)
    )
    assert trio.current_time() == 2.5
    assert fetcher.max_in_flight == len(URLS)
    assert [p.success for p in pages] == [True, True, False, True, True, False]


async def test_fetch_pages_empty_is_a_checkpoint_and_opens_no_client() -> None:
    def no_client() -> Any:
        raise AssertionError("no client for an empty batch")

    with trio.testing.assert_checkpoints():
        assert await fetch_pages([], client_factory=no_client) == []
    with trio.testing.assert_checkpoints():
        assert await fetch_pages(iter(()), client_factory=no_client) == []


async def test_fetch_pages_accepts_any_iterable_of_urls() -> None:
    pages = await fetch_pages((u for u in URLS[:2]), client_factory=_factory())
    assert [p.title for p in pages] == ["Home", "Install guide"]


async def test_fetch_pages_progress_error_escapes_alone_and_cancels_the_rest(
    autojump_clock: trio.testing.MockClock,
) -> None:
    urls = [f"{BASE}/a", f"{BASE}/b", f"{BASE}/c", f"{BASE}/d"]
    fetcher = SlowFetcher(SITE, delays={urls[0]: 1.0, urls[1]: 2.0})
    reports: list[int] = []

    def explode(progress: FetchProgress) -> None:
        reports.append(progress.completed)
        raise ValueError(f"progress failed at {progress.completed}")

    with pytest.raises(ValueError, match=r"^progress failed at 1$") as info:
        await fetch_pages(
            urls,
            concurrency=2,
            on_progress=explode,
            parallel_extraction=False,
            client_factory=_client_with(fetcher),
        )
    assert type(info.value) is ValueError  # not inside an ExceptionGroup
    # /a finished at t=1 and its report raised: /b (still fetching) was cancelled
    # and /c, /d (waiting for the limiter) never started.
    assert trio.current_time() == 1.0
    assert fetcher.cancelled == [urls[1]]
    await trio.sleep(10)
    assert fetcher.finished == [urls[0]]
    assert [url for url, _ in fetcher.started] == urls[:2]
    assert reports == [1]


async def test_fetch_pages_cancellation_propagates_and_leaves_no_task(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fetcher = SlowFetcher(SITE, delay=10.0)
    reports: list[int] = []
    with trio.move_on_after(2.5) as scope:
        await fetch_pages(
            URLS,
            concurrency=3,
            on_progress=lambda p: reports.append(p.completed),
            client_factory=_client_with(fetcher),
        )
    assert scope.cancelled_caught
    assert trio.current_time() == 2.5
    assert sorted(fetcher.cancelled) == sorted(URLS[:3])
    await trio.sleep(100)  # nothing keeps running after the call
    assert fetcher.finished == []
    assert len(fetcher.started) == 3
    assert reports == []


async def test_fetch_pages_extracts_in_worker_threads_only_when_asked() -> None:
    threads: list[threading.Thread] = []

    class Recording(DefaultContentExtractor):
        def extract(self, *args: Any, **kwargs: Any) -> Any:
            threads.append(threading.current_thread())
            return super().extract(*args, **kwargs)

    def factory() -> Any:
        return WebSearchClient(fetcher=MockFetcher(SITE), extractor=Recording())

    await fetch_pages([f"{BASE}/a"], client_factory=factory)
    await fetch_pages([f"{BASE}/a"], parallel_extraction=False, client_factory=factory)
    assert threads[0] is not threading.main_thread()
    assert threads[1] is threading.main_thread()


async def test_fetch_pages_runs_at_most_four_extractions_at_once() -> None:
    release = trio.Event()
    four_inside = trio.Event()
    inside = 0
    most = 0

    async def gate() -> None:
        nonlocal inside, most
        inside += 1
        most = max(most, inside)
        if inside == 4:
            four_inside.set()
        await release.wait()
        inside -= 1

    class Gated(DefaultContentExtractor):
        def extract(self, *args: Any, **kwargs: Any) -> Any:
            trio.from_thread.run(gate)
            return super().extract(*args, **kwargs)

    urls = [f"{BASE}/{name}" for name in "abcd"] * 2

    def factory() -> Any:
        return WebSearchClient(fetcher=MockFetcher(SITE), extractor=Gated())

    result: list[WebPage] = []

    async def run() -> None:
        result.extend(await fetch_pages(urls, concurrency=8, client_factory=factory))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run)
        with trio.fail_after(30):  # a guard against a hang, never reached when it works
            await four_inside.wait()
        await trio.testing.wait_all_tasks_blocked()
        limiter = run_utils._extraction_limiter()
        assert (inside, limiter.borrowed_tokens, limiter.statistics().tasks_waiting) == (4, 4, 4)
        release.set()
    assert most == 4
    assert [p.title for p in result] == ["Install guide", "About", "Deep", "Deeper"] * 2


async def test_fetch_pages_refuses_an_async_progress_callback() -> None:
    async def progress(p: FetchProgress) -> None:
        raise AssertionError("never called")

    class AsyncCall:
        async def __call__(self, p: FetchProgress) -> None:
            raise AssertionError("never called")

    fetcher = MockFetcher(SITE)
    callbacks: list[Any] = [progress, AsyncCall()]
    for callback in callbacks:
        with pytest.raises(
            TypeError,
            match=r"^fetch_pages: on_progress must be a plain function \(it is called, not "
            r"awaited\); got an async function$",
        ):
            await fetch_pages(URLS, on_progress=callback, client_factory=_client_with(fetcher))
    assert fetcher.fetch_history == []


async def test_fetch_pages_refuses_a_progress_callback_returning_a_coroutine() -> None:
    made: list[Any] = []

    async def later() -> None:
        raise AssertionError("never run")

    def progress(p: FetchProgress) -> Any:
        made.append(later())
        return made[-1]

    with pytest.raises(
        TypeError,
        match=r"^fetch_pages: on_progress must be a plain function \(it is called, not "
        r"awaited\); it returned coroutine$",
    ):
        await fetch_pages(URLS, on_progress=progress, client_factory=_factory())
    assert made[0].cr_frame is None  # closed, so no "never awaited" warning


async def test_shutdown_extraction_pool_is_a_harmless_no_op() -> None:
    shutdown_extraction_pool()
    shutdown_extraction_pool()  # again
    pages = await fetch_pages([f"{BASE}/a"], client_factory=_factory())
    assert pages[0].title == "Install guide"
    await trio.to_thread.run_sync(shutdown_extraction_pool)  # from a worker thread


def test_extraction_limiter_is_one_per_run() -> None:
    seen: list[trio.CapacityLimiter] = []

    async def main() -> None:
        seen.append(run_utils._extraction_limiter())
        seen.append(run_utils._extraction_limiter())

    trio.run(main)
    trio.run(main)
    assert seen[0] is seen[1]
    assert seen[2] is not seen[0]
    assert seen[0].total_tokens == 4


# --- search_and_extract ------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "threshold", "max_pages", "max_depth"),
    [
        ("python installation", 0.1, 20, 2),
        ("python installation guide", 0.5, 20, 3),
        ("python", 1.0, 3, 1),
        ("", 0.0, 20, 2),
        ("", 0.1, 20, 2),
        ("ABOUT team", 0.1, 20, 0),
        ("nothing-matches", 0.1, 0, 2),
    ],
)
async def test_search_and_extract_matches_the_reference(
    query: str, threshold: float, max_pages: int, max_depth: int
) -> None:
    kwargs: dict[str, Any] = {
        "max_pages": max_pages,
        "max_depth": max_depth,
        "relevance_threshold": threshold,
    }
    ours = await search_and_extract(f"{BASE}/", query, client_factory=_factory(), **kwargs)
    theirs = _run_reference(
        ref_run_utils.search_and_extract,
        f"{BASE}/",
        query,
        client_factory=_ref_factory(),
        **kwargs,
    )
    assert [p.url for p in ours.pages] == [p.url for p in theirs.pages]
    assert [p.url for p in ours.relevant_pages] == [p.url for p in theirs.relevant_pages]
    ours_dict, theirs_dict = ours.to_dict(), theirs.to_dict()
    ours_dict.pop("duration_ms")
    theirs_dict.pop("duration_ms")
    assert ours_dict == theirs_dict


async def test_search_and_extract_ranks_by_matched_terms() -> None:
    result = await search_and_extract(
        f"{BASE}/", "python installation guide", max_depth=3, client_factory=_factory()
    )
    # /a matches all three words, /c two, / one; /b none (and /missing failed).
    assert [p.url for p in result.relevant_pages] == [f"{BASE}/a", f"{BASE}/c", f"{BASE}/"]
    assert result.total_words == sum(p.word_count for p in result.relevant_pages)
    assert result.query == "python installation guide"
    assert f"{BASE}/missing" in [p.url for p in result.pages]


async def test_search_and_extract_duration_is_virtual_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fetcher = SlowFetcher(SITE, delay=0.25)
    result = await search_and_extract(
        f"{BASE}/", "python", max_pages=4, client_factory=_client_with(fetcher)
    )
    assert len(result.pages) == 4
    assert result.duration_ms == 1000.0


async def test_search_and_extract_with_no_pages_is_a_checkpoint() -> None:
    with trio.testing.assert_checkpoints():
        result = await search_and_extract(f"{BASE}/", "x", max_pages=0, client_factory=_factory())
    assert result.pages == []


# --- map_site ----------------------------------------------------------------------


def _links(links: Any) -> list[tuple[str, bool]]:
    return [(link.url, link.is_internal) for link in links]


@pytest.mark.parametrize(
    ("kwargs", "depth"),
    [
        ({}, 3),
        ({"max_pages": 3}, 1),
        ({"max_depth": 1}, 1),
        ({"max_depth": 0}, 0),
        ({"include_external": False}, 3),
        ({"same_domain_only": False, "max_pages": 20}, 3),
    ],
)
async def test_map_site_matches_the_reference(kwargs: dict[str, Any], depth: int) -> None:
    ours = await map_site(f"{BASE}/", client_factory=_factory(), **kwargs)
    theirs = _run_reference(
        ref_run_utils.map_site, f"{BASE}/", client_factory=_ref_factory(), **kwargs
    )
    assert [p.url for p in ours.pages] == [p.url for p in theirs.pages]
    assert _links(ours.internal_links) == _links(theirs.internal_links)
    assert _links(ours.external_links) == _links(theirs.external_links)
    ours_dict, theirs_dict = ours.to_dict(), theirs.to_dict()
    ours_dict.pop("duration_ms")
    theirs_dict.pop("duration_ms")
    # depth_reached: the deepest page's depth here, max_depth there (a parity row, audit 25).
    assert ours_dict.pop("depth_reached") == depth
    assert theirs_dict.pop("depth_reached") == kwargs.get("max_depth", 3)
    assert ours_dict == theirs_dict


async def test_map_site_ends_on_link_cycles_and_fetches_each_url_once() -> None:
    fetcher = MockFetcher(SITE)
    site = await map_site(
        f"{BASE}/", max_pages=1000, max_depth=1000, client_factory=_client_with(fetcher)
    )
    crawled = [p.url for p in site.pages]
    assert crawled == [
        f"{BASE}/",
        f"{BASE}/a",
        f"{BASE}/b",
        f"{BASE}/missing",
        f"{BASE}/c",
        f"{BASE}/d",
    ]
    assert fetcher.fetch_history == crawled
    assert site.depth_reached == 3  # /d, not the limit (the reference said 1000)
    assert _links(site.external_links) == [
        ("https://ext.test/x", False),
        ("https://ext.test/y", False),
    ]


async def test_map_site_respects_max_pages_and_max_depth() -> None:
    site = await map_site(f"{BASE}/", max_pages=2, client_factory=_factory())
    assert [p.url for p in site.pages] == [f"{BASE}/", f"{BASE}/a"]
    shallow = await map_site(f"{BASE}/", max_depth=1, client_factory=_factory())
    assert f"{BASE}/c" not in [p.url for p in shallow.pages]
    only_start = await map_site(f"{BASE}/", max_depth=0, client_factory=_factory())
    assert [p.url for p in only_start.pages] == [f"{BASE}/"]
    assert only_start.depth_reached == 0


async def test_map_site_link_filter_decides_what_is_followed() -> None:
    asked: list[str] = []

    def only_b(link: ExtractedLink) -> bool:
        asked.append(link.url)
        return link.url.endswith("/b")

    site = await map_site(f"{BASE}/", link_filter=only_b, client_factory=_factory())
    assert [p.url for p in site.pages] == [f"{BASE}/", f"{BASE}/b"]
    assert f"{BASE}/a" in asked
    # Links are listed whether followed or not.
    assert f"{BASE}/a" in [link.url for link in site.internal_links]


async def test_map_site_link_filter_error_escapes() -> None:
    def broken(link: ExtractedLink) -> bool:
        raise KeyError("filter broke")

    with pytest.raises(KeyError, match="filter broke"):
        await map_site(f"{BASE}/", link_filter=broken, client_factory=_factory())


async def test_map_site_cancellation_propagates(autojump_clock: trio.testing.MockClock) -> None:
    fetcher = SlowFetcher(SITE, delay=1.0)
    with trio.move_on_after(2.5) as scope:
        await map_site(f"{BASE}/", client_factory=_client_with(fetcher))
    assert scope.cancelled_caught
    assert len(fetcher.finished) == 2
    assert len(fetcher.cancelled) == 1


# --- fetch_with_retry ----------------------------------------------------------------


class FlakyFetcher(MockFetcher):
    """Answers 500 for the first ``failures`` requests, then from the site; records when."""

    def __init__(self, failures: int) -> None:
        super().__init__(SITE)
        self.failures = failures
        self.times: list[float] = []

    async def _do_fetch(self, url: str, **kwargs: Any) -> Any:
        self.times.append(trio.current_time())
        if len(self.times) <= self.failures:
            self.responses = {url: (500, "down", {"content-type": "text/plain"})}
        else:
            self.responses = SITE
        return await super()._do_fetch(url, **kwargs)


async def test_fetch_with_retry_sleeps_linearly_growing_pauses(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fetcher = FlakyFetcher(failures=2)
    page = await fetch_with_retry(
        f"{BASE}/a", retry_delay=1.5, client_factory=_client_with(fetcher)
    )
    assert page.success
    assert page.title == "Install guide"
    assert fetcher.times == [0.0, 1.5, 4.5]  # pauses of 1.5 * 1 and 1.5 * 2


async def test_fetch_with_retry_gives_up_with_the_last_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fetcher = FlakyFetcher(failures=100)
    page = await fetch_with_retry(f"{BASE}/a", max_retries=3, client_factory=_client_with(fetcher))
    assert page.error == "Failed after 4 attempts: HTTP 500"
    assert (page.url, page.status_code, page.fetch_duration_ms) == (f"{BASE}/a", 0, 0.0)
    assert fetcher.times == [0.0, 1.0, 3.0, 6.0]
    assert trio.current_time() == 6.0  # no pause after the last attempt


async def test_fetch_with_retry_zero_retries_tries_once() -> None:
    fetcher = FlakyFetcher(failures=1)
    page = await fetch_with_retry(f"{BASE}/a", max_retries=0, client_factory=_client_with(fetcher))
    assert page.error == "Failed after 1 attempts: HTTP 500"
    assert len(fetcher.times) == 1


@pytest.mark.parametrize(
    ("url", "max_retries"), [(f"{BASE}/missing", 2), (f"{BASE}/boom", 1), (f"{BASE}/", 0)]
)
async def test_fetch_with_retry_matches_the_reference(url: str, max_retries: int) -> None:
    ours = await fetch_with_retry(
        url, max_retries=max_retries, retry_delay=0, client_factory=_factory()
    )
    theirs = _run_reference(
        ref_run_utils.fetch_with_retry,
        url,
        max_retries=max_retries,
        retry_delay=0,
        client_factory=_ref_factory(),
    )
    assert _page(ours) == _page(theirs)


async def test_fetch_with_retry_does_not_retry_an_exception() -> None:
    calls: list[int] = []

    def factory() -> Any:
        calls.append(1)
        raise RuntimeError("no client")

    with pytest.raises(RuntimeError, match=r"^no client$"):
        await fetch_with_retry(f"{BASE}/a", client_factory=factory)
    assert calls == [1]


async def test_fetch_with_retry_is_cancellable_while_pausing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fetcher = FlakyFetcher(failures=100)
    with trio.move_on_after(2.0) as scope:
        await fetch_with_retry(f"{BASE}/a", retry_delay=1.0, client_factory=_client_with(fetcher))
    assert scope.cancelled_caught
    assert fetcher.times == [0.0, 1.0]


# --- extract_all_links ------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"internal_only": True},
        {"external_only": True},
        {"internal_only": True, "external_only": True},
    ],
)
async def test_extract_all_links_matches_the_reference(kwargs: dict[str, Any]) -> None:
    urls = [*URLS, f"{BASE}/d"]
    ours = await extract_all_links(urls, client_factory=_factory(), **kwargs)
    theirs = _run_reference(
        ref_run_utils.extract_all_links, urls, client_factory=_ref_factory(), **kwargs
    )
    assert [link.to_dict() for link in ours] == [link.to_dict() for link in theirs]


async def test_extract_all_links_dedupes_and_skips_failed_pages() -> None:
    links = await extract_all_links(
        [f"{BASE}/d", f"{BASE}/", f"{BASE}/missing"], client_factory=_factory()
    )
    urls = [link.url for link in links]
    assert urls == [f"{BASE}/", "https://ext.test/x", f"{BASE}/a", f"{BASE}/b", f"{BASE}/missing"]
    external = await extract_all_links(
        [f"{BASE}/d", f"{BASE}/b"], external_only=True, client_factory=_factory()
    )
    assert [link.url for link in external] == ["https://ext.test/x", "https://ext.test/y"]


async def test_extract_all_links_limits_concurrency(autojump_clock: trio.testing.MockClock) -> None:
    fetcher = SlowFetcher(SITE, delay=1.0)
    links = await extract_all_links(URLS, concurrency=2, client_factory=_client_with(fetcher))
    assert fetcher.max_in_flight == 2
    assert [url for url, _ in fetcher.started] == URLS
    assert links == await extract_all_links(URLS, client_factory=_factory())
    assert len(links) == 7


# --- argument checks ----------------------------------------------------------------


def _never() -> Any:
    raise AssertionError("no client should be made")


BAD_CALLS: list[tuple[Any, tuple[Any, ...], dict[str, Any], type[Exception], str]] = [
    (fetch_page, (b"https://x",), {}, TypeError, "fetch_page: url must be a str; got bytes"),
    (fetch_page, ("u",), {"timeout": 0}, ValueError, "fetch_page: timeout must be > 0; got 0"),
    (
        fetch_page,
        ("u",),
        {"timeout": "5"},
        TypeError,
        "fetch_page: timeout must be a number; got str",
    ),
    (
        fetch_page,
        ("u",),
        {"timeout": math.nan},
        ValueError,
        "fetch_page: timeout must be a finite number; got nan",
    ),
    (
        fetch_page,
        ("u",),
        {"headers": [("a", "b")]},
        TypeError,
        "fetch_page: headers must be a mapping of str to str or None; got list",
    ),
    (
        fetch_page,
        ("u",),
        {"headers": {"a": 1}},
        TypeError,
        "fetch_page: headers must map str to str; got str -> int",
    ),
    (
        fetch_page,
        ("u",),
        {"selector": 3},
        TypeError,
        "fetch_page: selector must be a str or None; got int",
    ),
    (
        fetch_page,
        ("u",),
        {"config": {}},
        TypeError,
        "fetch_page: config must be a WebSearchConfig or None; got dict",
    ),
    (
        fetch_page,
        ("u",),
        {"client_factory": 3},
        TypeError,
        "fetch_page: client_factory must be a callable or None; got int",
    ),
    (
        fetch_pages,
        ("https://x",),
        {},
        TypeError,
        "fetch_pages: urls must be a list of str; got str",
    ),
    (fetch_pages, (None,), {}, TypeError, "fetch_pages: urls must be a list of str; got NoneType"),
    (fetch_pages, ({"u": 1},), {}, TypeError, "fetch_pages: urls must be a list of str; got dict"),
    (fetch_pages, (["u", 3],), {}, TypeError, "fetch_pages: urls[1] must be a str; got int"),
    (
        fetch_pages,
        (["u"],),
        {"concurrency": 0},
        ValueError,
        "fetch_pages: concurrency must be at least 1; got 0",
    ),
    (
        fetch_pages,
        ([],),
        {"concurrency": 0},
        ValueError,
        "fetch_pages: concurrency must be at least 1; got 0",
    ),
    (
        fetch_pages,
        (["u"],),
        {"concurrency": 2.0},
        TypeError,
        "fetch_pages: concurrency must be an int; got float",
    ),
    (
        fetch_pages,
        (["u"],),
        {"concurrency": True},
        TypeError,
        "fetch_pages: concurrency must be an int; got bool",
    ),
    (
        fetch_pages,
        (["u"],),
        {"on_progress": 1},
        TypeError,
        "fetch_pages: on_progress must be a callable or None; got int",
    ),
    (
        fetch_pages,
        (["u"],),
        {"parallel_extraction": 1},
        TypeError,
        "fetch_pages: parallel_extraction must be a bool; got int",
    ),
    (
        fetch_pages,
        (["u"],),
        {"timeout": -1},
        ValueError,
        "fetch_pages: timeout must be > 0; got -1",
    ),
    (
        search_and_extract,
        (1, "q"),
        {},
        TypeError,
        "search_and_extract: start_url must be a str; got int",
    ),
    (
        search_and_extract,
        ("u", None),
        {},
        TypeError,
        "search_and_extract: query must be a str; got NoneType",
    ),
    (
        search_and_extract,
        ("u", "q"),
        {"max_pages": -1},
        ValueError,
        "search_and_extract: max_pages must be at least 0; got -1",
    ),
    (
        search_and_extract,
        ("u", "q"),
        {"max_depth": "2"},
        TypeError,
        "search_and_extract: max_depth must be an int; got str",
    ),
    (
        search_and_extract,
        ("u", "q"),
        {"same_domain_only": "yes"},
        TypeError,
        "search_and_extract: same_domain_only must be a bool; got str",
    ),
    (
        search_and_extract,
        ("u", "q"),
        {"relevance_threshold": math.nan},
        ValueError,
        "search_and_extract: relevance_threshold must be a finite number; got nan",
    ),
    (
        search_and_extract,
        ("u", "q"),
        {"relevance_threshold": "0.5"},
        TypeError,
        "search_and_extract: relevance_threshold must be a number; got str",
    ),
    (map_site, (None,), {}, TypeError, "map_site: start_url must be a str; got NoneType"),
    (
        map_site,
        ("u",),
        {"max_depth": -1},
        ValueError,
        "map_site: max_depth must be at least 0; got -1",
    ),
    (
        map_site,
        ("u",),
        {"include_external": None},
        TypeError,
        "map_site: include_external must be a bool; got NoneType",
    ),
    (
        map_site,
        ("u",),
        {"link_filter": "x"},
        TypeError,
        "map_site: link_filter must be a callable or None; got str",
    ),
    (
        fetch_with_retry,
        ("u",),
        {"max_retries": -1},
        ValueError,
        "fetch_with_retry: max_retries must be at least 0; got -1",
    ),
    (
        fetch_with_retry,
        ("u",),
        {"retry_delay": -0.5},
        ValueError,
        "fetch_with_retry: retry_delay must be >= 0; got -0.5",
    ),
    (
        fetch_with_retry,
        ("u",),
        {"retry_delay": None},
        TypeError,
        "fetch_with_retry: retry_delay must be a number; got NoneType",
    ),
    (
        fetch_with_retry,
        ("u",),
        {"headers": "h"},
        TypeError,
        "fetch_with_retry: headers must be a mapping of str to str or None; got str",
    ),
    (
        extract_all_links,
        ("u",),
        {},
        TypeError,
        "extract_all_links: urls must be a list of str; got str",
    ),
    (
        extract_all_links,
        (["u"],),
        {"concurrency": 0},
        ValueError,
        "extract_all_links: concurrency must be at least 1; got 0",
    ),
    (
        extract_all_links,
        (["u"],),
        {"internal_only": 1},
        TypeError,
        "extract_all_links: internal_only must be a bool; got int",
    ),
    (
        extract_all_links,
        (["u"],),
        {"external_only": None},
        TypeError,
        "extract_all_links: external_only must be a bool; got NoneType",
    ),
]


@pytest.mark.parametrize(
    ("function", "args", "kwargs", "error", "message"),
    BAD_CALLS,
    ids=[f"{call[0].__name__}-{call[4].split(': ')[1][:40]}" for call in BAD_CALLS],
)
async def test_bad_arguments_are_refused_at_the_call(
    function: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    kwargs = {"client_factory": _never, **kwargs}
    with pytest.raises(error) as info:
        await function(*args, **kwargs)
    assert str(info.value) == message


async def test_config_is_checked_everywhere() -> None:
    calls: list[tuple[Any, tuple[Any, ...]]] = [
        (fetch_pages, (["u"],)),
        (search_and_extract, ("u", "q")),
        (map_site, ("u",)),
        (fetch_with_retry, ("u",)),
        (extract_all_links, (["u"],)),
    ]
    for function, args in calls:
        with pytest.raises(
            TypeError, match=r": config must be a WebSearchConfig or None; got str$"
        ):
            await function(*args, config="cfg")


async def test_fetch_pages_extractor_error_escapes_alone() -> None:
    class Broken(DefaultContentExtractor):
        def extract(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("extractor broke")

    def factory() -> Any:
        return WebSearchClient(fetcher=MockFetcher(SITE), extractor=Broken())

    with pytest.raises(RuntimeError, match=r"^extractor broke$") as info:
        await fetch_pages(URLS, client_factory=factory)
    assert type(info.value) is RuntimeError


_WORDS = st.sampled_from(
    [
        "python",
        "installation",
        "guide",
        "about",
        "team",
        "deep",
        "home",
        "us",
        "zzz",
        "PYTHON",
        "in",
    ]
)


@given(
    words=st.lists(_WORDS, max_size=4),
    threshold=st.sampled_from([0.0, 0.1, 0.25, 1 / 3, 0.5, 0.75, 1.0, -1.0, 2.0]),
    max_depth=st.integers(0, 3),
)
def test_search_and_extract_relevance_matches_the_reference(
    words: list[str], threshold: float, max_depth: int
) -> None:
    query = " ".join(words)
    kwargs: dict[str, Any] = {"max_depth": max_depth, "relevance_threshold": threshold}

    async def ours_main() -> SearchResult:
        return await search_and_extract(f"{BASE}/", query, client_factory=_factory(), **kwargs)

    ours = trio.run(ours_main, clock=trio.testing.MockClock(autojump_threshold=0))
    theirs = _run_reference(
        ref_run_utils.search_and_extract, f"{BASE}/", query, client_factory=_ref_factory(), **kwargs
    )
    assert [p.url for p in ours.relevant_pages] == [p.url for p in theirs.relevant_pages]
    assert (ours.total_words, len(ours.pages)) == (theirs.total_words, len(theirs.pages))
