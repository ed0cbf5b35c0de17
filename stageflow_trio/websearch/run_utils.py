"""One-call web workflows built on :class:`~stageflow_trio.websearch.client.WebSearchClient`.

- :func:`fetch_page`: fetch and extract one page.
- :func:`fetch_pages`: fetch many pages, at most ``concurrency`` at a time, with a
  progress callback; results come back in input order.
- :func:`search_and_extract`: crawl from a URL and keep the pages that mention a query.
- :func:`map_site`: crawl from a URL and list the links found.
- :func:`fetch_with_retry`: fetch one page again after a failure, with growing pauses.
- :func:`extract_all_links`: the distinct links of many pages.

Each call opens its own client (``WebSearchClient(config)``, or ``client_factory()``
when given, which then takes the place of ``config``) and closes it before returning.

Example::

    pages = await fetch_pages(
        ["https://example.com/a", "https://example.com/b"],
        concurrency=10,
        on_progress=lambda p: print(f"{p.completed}/{p.total}"),
    )

How this differs from the reference (``stageflow.websearch.run_utils``):

- A batch runs in a nursery; a ``trio.CapacityLimiter`` admits the URLs in input
  order, so at most ``concurrency`` fetches (and tasks) exist at a time. A failed
  fetch is an error page, as in the reference; an exception (from ``on_progress``,
  say) cancels the other fetches and escapes alone, never inside an
  ``ExceptionGroup`` (the reference left the other fetches running).
- HTML extraction for :func:`fetch_pages` runs in trio's worker threads
  (``trio.to_thread.run_sync``), at most four at a time per trio run, instead of a
  process-wide ``ThreadPoolExecutor``. A call waits for its threads, also when
  cancelled, so no extraction outlives the call; :func:`shutdown_extraction_pool`
  has nothing left to do and is kept as a no-op.
- Elapsed and total durations read the trio clock (``trio.testing.MockClock`` drives
  them in tests); the retry pauses of :func:`fetch_with_retry` are ``trio.sleep``.
- Arguments are checked at the call: a wrong type or value raises TypeError or
  ValueError naming the function and the parameter. An ``async def`` progress
  callback is refused (the reference called it without awaiting it, so it never ran).
- :attr:`SiteMap.depth_reached` is the depth of the deepest page crawled, as its
  name (and the reference's docstring, "Maximum depth reached") says; the
  reference always reported ``max_depth``.
- The crawls follow a page's links as a browser resolves them, through the page's
  ``<base href>`` (the extractor's doing).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

import attrs
import trio

from stageflow_trio._args import (
    check_flag,
    check_int,
    check_number,
    check_plain_callable,
    check_seconds,
    check_str,
    type_of,
)
from stageflow_trio._time import monotonic, utc_now_iso
from stageflow_trio.websearch.client import (
    WebSearchClient,
    WebSearchConfig,
    _error_page,
    _text_page,
)
from stageflow_trio.websearch.fetcher import _run_limited
from stageflow_trio.websearch.models import ExtractedLink, WebPage

if TYPE_CHECKING:
    from stageflow_trio.websearch.extractor import ExtractionResult
    from stageflow_trio.websearch.fetcher import FetchResult
    from stageflow_trio.websearch.navigator import NavigationResult

__all__ = [
    "FetchProgress",
    "SearchResult",
    "SiteMap",
    "extract_all_links",
    "fetch_page",
    "fetch_pages",
    "fetch_with_retry",
    "map_site",
    "search_and_extract",
    "shutdown_extraction_pool",
]


@attrs.define
class FetchProgress:
    """How far a :func:`fetch_pages` batch has got.

    One object per batch, updated in place and passed to ``on_progress`` after
    each page (as the reference does): read what you need inside the callback,
    or copy it (``attrs.evolve(progress)``) to keep it.

    Attributes:
        completed: Pages finished, successfully or not.
        total: Pages in the batch.
        current_url: The URL whose fetch started last.
        success_count: Pages fetched successfully.
        error_count: Pages that failed.
        elapsed_ms: Milliseconds since the batch started (trio clock).
    """

    completed: int = 0
    total: int = 0
    current_url: str | None = None
    success_count: int = 0
    error_count: int = 0
    elapsed_ms: float = 0.0

    @property
    def percent(self) -> float:
        """``completed`` as a percentage of ``total``; 0.0 for an empty batch."""
        if self.total > 0:
            return self.completed / self.total * 100
        return 0.0


@attrs.define
class SearchResult:
    """What :func:`search_and_extract` found.

    Attributes:
        query: The query searched for.
        pages: Every page crawled, in crawl order.
        relevant_pages: The successful pages that match the query, most
            matching terms first.
        total_words: Words in the relevant pages.
        duration_ms: Time the whole search took (trio clock).
    """

    query: str
    pages: list[WebPage] = attrs.field(factory=list)
    relevant_pages: list[WebPage] = attrs.field(factory=list)
    total_words: int = 0
    duration_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A summary: counts of pages, not the pages (keys as in the reference)."""
        return {
            "query": self.query,
            "pages_fetched": len(self.pages),
            "relevant_pages": len(self.relevant_pages),
            "total_words": self.total_words,
            "duration_ms": self.duration_ms,
        }


@attrs.define
class SiteMap:
    """What :func:`map_site` found.

    Attributes:
        start_url: Where the crawl started.
        pages: Every page crawled, in crawl order.
        internal_links: Distinct internal links of the crawled pages, first seen first.
        external_links: Distinct external links (empty with ``include_external=False``).
        depth_reached: The depth of the deepest page crawled: 0 when only the
            start page was, less than ``max_depth`` when the site ran out of
            links or ``max_pages`` stopped the crawl first (the reference always
            reported ``max_depth``). A page that failed counts: it was fetched.
        duration_ms: Time the whole crawl took (trio clock).
    """

    start_url: str
    pages: list[WebPage] = attrs.field(factory=list)
    internal_links: list[ExtractedLink] = attrs.field(factory=list)
    external_links: list[ExtractedLink] = attrs.field(factory=list)
    depth_reached: int = 0
    duration_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A summary: counts of pages and links (keys as in the reference)."""
        return {
            "start_url": self.start_url,
            "pages_crawled": len(self.pages),
            "internal_links": len(self.internal_links),
            "external_links": len(self.external_links),
            "depth_reached": self.depth_reached,
            "duration_ms": self.duration_ms,
        }


# --- extraction threads --------------------------------------------------------

# At most this many extractions run at once in one trio run (the reference's pool
# had four workers). One limiter per run: a trio limiter must not be shared
# between runs.
_EXTRACTION_THREADS = 4
_extraction_limiter_var: trio.lowlevel.RunVar[trio.CapacityLimiter] = trio.lowlevel.RunVar(
    "stageflow_websearch_extraction_limiter"
)


def _extraction_limiter() -> trio.CapacityLimiter:
    try:
        return _extraction_limiter_var.get()
    except LookupError:
        limiter = trio.CapacityLimiter(_EXTRACTION_THREADS)
        _extraction_limiter_var.set(limiter)
        return limiter


def shutdown_extraction_pool() -> None:
    """Do nothing: there is no extraction pool to shut down (kept for the reference's API).

    In the reference this shut down the process-wide thread pool that
    :func:`fetch_pages` extracts pages in. Here extraction runs in trio's own
    worker threads (``trio.to_thread.run_sync``). Every call waits for its
    extractions to finish, also when it is cancelled, so once :func:`fetch_pages`
    has returned or raised, no extraction is running; idle worker threads belong
    to trio's thread cache, which ends them after a short idle time. Safe to call
    any number of times, from any thread, inside or outside a trio run.
    """


def _extract_html(
    client: WebSearchClient, html: str, base_url: str, selector: str | None
) -> tuple[ExtractionResult, NavigationResult, float]:
    """Extraction and navigation analysis of one page (and the milliseconds they took).

    Runs in a worker thread: one hop for both, where the reference made two.
    """
    started = time.perf_counter()
    extraction = client._extractor.extract(html, base_url=base_url, selector=selector)
    navigation = client._navigator.analyze(html, base_url=base_url)
    return extraction, navigation, (time.perf_counter() - started) * 1000


async def _extract_page_async(
    client: WebSearchClient, url: str, fetch_result: FetchResult, selector: str | None
) -> WebPage:
    """The page built from ``fetch_result`` (HTML), extracted in a worker thread.

    Not abandoned on cancellation: the thread finishes its page first, so nothing
    outlives the call; then the cancellation is raised here, so a cancelled batch
    reports no page that finished after the cancel.
    """
    extraction, navigation, extract_ms = await trio.to_thread.run_sync(
        partial(_extract_html, client, fetch_result.text, fetch_result.final_url or url, selector),
        limiter=_extraction_limiter(),
    )
    # run_sync returns the thread's result even when the call was cancelled meanwhile.
    await trio.lowlevel.checkpoint_if_cancelled()
    return WebPage(
        url=url,
        final_url=fetch_result.final_url,
        status_code=fetch_result.status_code,
        markdown=extraction.markdown,
        plain_text=extraction.plain_text,
        metadata=extraction.metadata,
        links=extraction.links,
        navigation_actions=navigation.actions,
        pagination=navigation.pagination,
        fetch_duration_ms=fetch_result.duration_ms,
        extract_duration_ms=extract_ms,
        fetched_at=utc_now_iso(),
        word_count=extraction.word_count,
    )


async def _fetch_extracting_in_thread(
    client: WebSearchClient,
    url: str,
    timeout: float | None,
    headers: dict[str, str] | None,
    selector: str | None,
) -> WebPage:
    """One page of :func:`fetch_pages` with ``parallel_extraction=True``.

    As the reference: the client's fetcher fetches, HTML is always extracted and
    analysed for navigation (the config's ``auto_extract``/``auto_navigate`` and the
    client's ``on_extract_complete`` are not consulted), other content is kept
    as text.
    """
    fetch_result = await client._fetcher.fetch(url, timeout=timeout, headers=headers)
    if fetch_result.success and fetch_result.is_html:
        return await _extract_page_async(client, url, fetch_result, selector)
    if fetch_result.success:
        return _text_page(url, fetch_result)
    return _error_page(url, fetch_result)


# --- argument checks -----------------------------------------------------------


def _check_urls(owner: str, param: str, urls: object) -> list[str]:
    """``urls`` as a new list, each checked to be a str."""
    # A str would be fetched character by character.
    if isinstance(urls, str | bytes | bytearray | Mapping) or not isinstance(urls, Iterable):
        raise TypeError(f"{owner}: {param} must be a list of str; got {type_of(urls)}")
    url_list = list(urls)
    for index, url in enumerate(url_list):
        if not isinstance(url, str):
            raise TypeError(f"{owner}: {param}[{index}] must be a str; got {type_of(url)}")
    return url_list


def _check_request(
    owner: str, timeout: object, headers: object, selector: object | None = None
) -> None:
    if timeout is not None:
        check_number(owner, "timeout", timeout, minimum=0, above=True)
    if headers is not None:
        if not isinstance(headers, Mapping):
            raise TypeError(
                f"{owner}: headers must be a mapping of str to str or None; got {type_of(headers)}"
            )
        for key, item in headers.items():
            if not isinstance(key, str) or not isinstance(item, str):
                raise TypeError(
                    f"{owner}: headers must map str to str; got {type_of(key)} -> {type_of(item)}"
                )
    check_str(owner, "selector", selector, optional=True)


def _check_client(owner: str, config: object, client_factory: object) -> None:
    if config is not None and not isinstance(config, WebSearchConfig):
        raise TypeError(f"{owner}: config must be a WebSearchConfig or None; got {type_of(config)}")
    check_plain_callable(owner, "client_factory", client_factory, optional=True)


def _check_crawl(
    owner: str, start_url: object, max_pages: object, max_depth: object, same_domain_only: object
) -> None:
    check_str(owner, "start_url", start_url)
    check_int(owner, "max_pages", max_pages, minimum=0)
    check_int(owner, "max_depth", max_depth, minimum=0)
    check_flag(owner, "same_domain_only", same_domain_only)


_PROGRESS_NOT_AWAITED = (
    "fetch_pages: on_progress must be a plain function (it is called, not awaited)"
)


def _report(on_progress: Callable[[FetchProgress], object], progress: FetchProgress) -> None:
    outcome = on_progress(progress)
    if inspect.isawaitable(outcome):
        if inspect.iscoroutine(outcome):
            outcome.close()  # never awaited: close it rather than leave a warning
        raise TypeError(f"{_PROGRESS_NOT_AWAITED}; it returned {type_of(outcome)}")


@asynccontextmanager
async def _client_context(
    config: WebSearchConfig | None,
    client_factory: Callable[[], WebSearchClient] | None,
) -> AsyncIterator[WebSearchClient]:
    """A client for one call, closed when the call ends.

    ``client_factory`` wins over ``config`` when given (as in the reference).
    """
    client = client_factory() if client_factory is not None else WebSearchClient(config)
    async with client:
        yield client


# --- the workflows -------------------------------------------------------------


async def fetch_page(
    url: str,
    *,
    timeout: float | None = None,
    headers: dict[str, str] | None = None,
    selector: str | None = None,
    config: WebSearchConfig | None = None,
    client_factory: Callable[[], WebSearchClient] | None = None,
) -> WebPage:
    """Fetch and extract one page, with a client opened and closed for the call.

    Args:
        url: The URL to fetch.
        timeout: Seconds for the request; the config's timeout when None.
        headers: Extra HTTP headers.
        selector: A CSS selector for the content to extract.
        config: Settings for the client (ignored when ``client_factory`` is given).
        client_factory: Makes the client to use (e.g. one with a mock fetcher).

    Returns:
        The page; a failed fetch gives a page with ``error`` set, not an exception.

    Raises:
        TypeError / ValueError: an argument has the wrong type or value.
    """
    owner = "fetch_page"
    check_str(owner, "url", url)
    _check_request(owner, timeout, headers, selector)
    _check_client(owner, config, client_factory)
    async with _client_context(config, client_factory) as client:
        return await client.fetch(url, timeout=timeout, headers=headers, selector=selector)


async def fetch_pages(
    urls: Iterable[str],
    *,
    concurrency: int = 5,
    timeout: float | None = None,
    headers: dict[str, str] | None = None,
    selector: str | None = None,
    config: WebSearchConfig | None = None,
    on_progress: Callable[[FetchProgress], None] | None = None,
    parallel_extraction: bool = True,
    client_factory: Callable[[], WebSearchClient] | None = None,
) -> list[WebPage]:
    """Fetch many pages, at most ``concurrency`` at a time, through one client.

    URLs start in input order; a new one starts when one finishes. After each
    page the batch's :class:`FetchProgress` (one object, updated in place) is
    passed to ``on_progress``, in the task that fetched the page. A failed fetch
    is an error page in the result. An exception from ``on_progress``, the client
    or the extractor cancels the other fetches and escapes as itself.

    Args:
        urls: The URLs to fetch (any iterable of str but a str itself).
        concurrency: Fetches at a time (at least 1).
        timeout: Seconds per request; the config's timeout when None.
        headers: Extra HTTP headers for every request.
        selector: A CSS selector for the content to extract.
        config: Settings for the client (ignored when ``client_factory`` is given).
        on_progress: A plain function called with the progress after each page;
            it is called, not awaited (an ``async def`` is refused).
        parallel_extraction: Extract HTML in worker threads (at most four at a
            time), so that parsing one page does not hold up the other fetches.
            Then every HTML page is extracted and analysed for navigation,
            whatever the config says (as in the reference). With False each page
            goes through ``client.fetch``.
        client_factory: Makes the client to use (e.g. one with a mock fetcher).

    Returns:
        One page per URL, in input order.

    Raises:
        TypeError / ValueError: an argument has the wrong type or value, or
            ``on_progress`` returned an awaitable.
    """
    owner = "fetch_pages"
    url_list = _check_urls(owner, "urls", urls)
    check_int(owner, "concurrency", concurrency, minimum=1)
    _check_request(owner, timeout, headers, selector)
    _check_client(owner, config, client_factory)
    check_plain_callable(owner, "on_progress", on_progress, optional=True)
    check_flag(owner, "parallel_extraction", parallel_extraction)
    if not url_list:
        await trio.lowlevel.checkpoint()
        return []

    started = monotonic()
    progress = FetchProgress(total=len(url_list))
    report: Callable[[FetchProgress], object] | None = on_progress

    async with _client_context(config, client_factory) as client:

        async def fetch_one(url: str) -> WebPage:
            progress.current_url = url
            if parallel_extraction:
                page = await _fetch_extracting_in_thread(client, url, timeout, headers, selector)
            else:
                page = await client.fetch(url, timeout=timeout, headers=headers, selector=selector)
            progress.completed += 1
            if page.success:
                progress.success_count += 1
            else:
                progress.error_count += 1
            progress.elapsed_ms = (monotonic() - started) * 1000
            if report is not None:
                _report(report, progress)
            return page

        # The URLs start in input order, at most ``concurrency`` at a time (tasks
        # included); an exception cancels the rest and escapes as itself.
        return await _run_limited(fetch_one, url_list, concurrency)


def _matching_terms(page: WebPage, terms: set[str]) -> int:
    """How many of ``terms`` occur (as substrings) in the page's title and text."""
    content = f"{page.title or ''} {page.plain_text}".lower()
    return sum(1 for term in terms if term in content)


async def search_and_extract(
    start_url: str,
    query: str,
    *,
    max_pages: int = 20,
    max_depth: int = 2,
    same_domain_only: bool = True,
    config: WebSearchConfig | None = None,
    relevance_threshold: float = 0.1,
    client_factory: Callable[[], WebSearchClient] | None = None,
) -> SearchResult:
    """Crawl from ``start_url`` and keep the pages that mention the query's words.

    The crawl is the client's :meth:`~WebSearchClient.crawl`. A successful page's
    score is the share of the query's distinct lower-cased words that occur
    (as substrings) in its title and plain text; pages scoring at least
    ``relevance_threshold`` are relevant, sorted by the number of words matched,
    most first (ties keep crawl order). An empty query scores 0 everywhere. For
    anything smarter, score ``pages`` yourself (with an LLM, say).

    Args:
        start_url: Where the crawl starts.
        query: The words to look for.
        max_pages: Pages to fetch at most.
        max_depth: Links to follow from the start page at most.
        same_domain_only: Follow only links on the start URL's host.
        config: Settings for the client (ignored when ``client_factory`` is given).
        relevance_threshold: The lowest score (0 to 1) a relevant page has.
        client_factory: Makes the client to use (e.g. one with a mock fetcher).

    Returns:
        Every page crawled and the relevant ones.

    Raises:
        TypeError / ValueError: an argument has the wrong type or value.
    """
    owner = "search_and_extract"
    _check_crawl(owner, start_url, max_pages, max_depth, same_domain_only)
    check_str(owner, "query", query)
    check_number(owner, "relevance_threshold", relevance_threshold)
    _check_client(owner, config, client_factory)
    started = monotonic()

    async with _client_context(config, client_factory) as client:
        pages = await client.crawl(
            start_url,
            max_pages=max_pages,
            max_depth=max_depth,
            same_domain_only=same_domain_only,
        )

    terms = set(query.lower().split())
    scored: list[tuple[int, WebPage]] = []
    for page in pages:
        if not page.success:
            continue
        matched = _matching_terms(page, terms)
        score = matched / len(terms) if terms else 0
        if score >= relevance_threshold:
            scored.append((matched, page))
    # A stable sort: equal counts keep crawl order (reverse=True keeps it too).
    scored.sort(key=lambda item: item[0], reverse=True)
    relevant = [page for _, page in scored]

    return SearchResult(
        query=query,
        pages=list(pages),
        relevant_pages=relevant,
        total_words=sum(page.word_count for page in relevant),
        duration_ms=(monotonic() - started) * 1000,
    )


def _deepest(pages: list[WebPage], max_depth: int, refused: Mapping[int, ExtractedLink]) -> int:
    """The depth of the deepest of a crawl's ``pages`` (0 when there are none).

    :meth:`~WebSearchClient.crawl` returns pages, not depths; it goes breadth
    first, so a page's depth is one more than that of the first page before it
    whose link to it the crawl followed (the start page, first, is at 0). Pages
    at ``max_depth`` had their links left alone, and lend no depth; so do the
    links ``link_filter`` refused (``refused``, by their ``id``): a filter
    deciding by a link's text may refuse a URL on one page and take it on a later,
    deeper one, where the crawl reached it.
    """
    if not pages:
        return 0
    depths = {pages[0].url: 0}
    deepest = 0
    for page in pages:
        depth = depths.get(page.url)
        if depth is None:
            continue  # not reached through a listed link (a custom crawl)
        deepest = max(deepest, depth)
        if depth < max_depth:
            for link in page.links:
                if id(link) not in refused:
                    depths.setdefault(link.url, depth + 1)
    return deepest


def _recording_refusals(
    link_filter: Callable[[ExtractedLink], bool] | None, refused: dict[int, ExtractedLink]
) -> Callable[[ExtractedLink], bool] | None:
    """``link_filter``, keeping in ``refused`` each link it refuses, by its ``id``.

    The crawl asks about the pages' own link objects; ``refused`` keeps them alive
    too, so that an ``id`` names one link while :func:`_deepest` reads them.
    """
    if link_filter is None:
        return None
    check = link_filter

    def recording(link: ExtractedLink) -> bool:
        if check(link):
            return True
        refused[id(link)] = link
        return False

    return recording


async def map_site(
    start_url: str,
    *,
    max_pages: int = 100,
    max_depth: int = 3,
    same_domain_only: bool = True,
    include_external: bool = True,
    config: WebSearchConfig | None = None,
    link_filter: Callable[[ExtractedLink], bool] | None = None,
    client_factory: Callable[[], WebSearchClient] | None = None,
) -> SiteMap:
    """Crawl from ``start_url`` and list the distinct links of the pages crawled.

    The crawl is the client's :meth:`~WebSearchClient.crawl` (breadth first, each
    URL fetched once, so link cycles end). Links are listed once per URL, in the
    order first seen, split by their ``is_internal`` flag; ``link_filter`` only
    decides which links the crawl follows, not which are listed.

    Args:
        start_url: Where the crawl starts.
        max_pages: Pages to fetch at most.
        max_depth: Links to follow from the start page at most.
        same_domain_only: Follow only links on the start URL's host.
        include_external: List external links too.
        config: Settings for the client (ignored when ``client_factory`` is given).
        link_filter: Decides which links to follow (True: follow).
        client_factory: Makes the client to use (e.g. one with a mock fetcher).

    Returns:
        The pages and links; ``depth_reached`` is the depth of the deepest page crawled.

    Raises:
        TypeError / ValueError: an argument has the wrong type or value.
    """
    owner = "map_site"
    _check_crawl(owner, start_url, max_pages, max_depth, same_domain_only)
    check_flag(owner, "include_external", include_external)
    _check_client(owner, config, client_factory)
    check_plain_callable(owner, "link_filter", link_filter, optional=True)
    started = monotonic()

    refused: dict[int, ExtractedLink] = {}
    async with _client_context(config, client_factory) as client:
        pages = await client.crawl(
            start_url,
            max_pages=max_pages,
            max_depth=max_depth,
            same_domain_only=same_domain_only,
            link_filter=_recording_refusals(link_filter, refused),
        )

    internal: list[ExtractedLink] = []
    external: list[ExtractedLink] = []
    seen: set[str] = set()
    for page in pages:
        for link in page.links:
            if link.url in seen:
                continue
            seen.add(link.url)
            if link.is_internal:
                internal.append(link)
            elif include_external:
                external.append(link)

    return SiteMap(
        start_url=start_url,
        pages=list(pages),
        internal_links=internal,
        external_links=external,
        depth_reached=_deepest(pages, max_depth, refused),
        duration_ms=(monotonic() - started) * 1000,
    )


async def fetch_with_retry(
    url: str,
    *,
    max_retries: int = 3,
    retry_delay: float = 1.0,
    timeout: float | None = None,
    headers: dict[str, str] | None = None,
    config: WebSearchConfig | None = None,
    client_factory: Callable[[], WebSearchClient] | None = None,
) -> WebPage:
    """Fetch a page, trying again after a failed page up to ``max_retries`` times.

    Each attempt is a :func:`fetch_page` call (a new client each time). After the
    n-th failed attempt (n from 1) it sleeps ``retry_delay * n`` seconds
    (``trio.sleep``): the pauses grow linearly, as in the reference. An exception
    (not an error page) is not retried: it escapes.

    Args:
        url: The URL to fetch.
        max_retries: Attempts after the first (0: one attempt only).
        retry_delay: Seconds of the first pause (>= 0).
        timeout: Seconds per request; the config's timeout when None.
        headers: Extra HTTP headers.
        config: Settings for the client (ignored when ``client_factory`` is given).
        client_factory: Makes the client to use (e.g. one with a mock fetcher).

    Returns:
        The first successful page, or an error page
        ``"Failed after {attempts} attempts: {last error}"``.

    Raises:
        TypeError / ValueError: an argument has the wrong type or value.
    """
    owner = "fetch_with_retry"
    check_str(owner, "url", url)
    check_int(owner, "max_retries", max_retries, minimum=0)
    check_seconds(owner, "retry_delay", retry_delay)
    _check_request(owner, timeout, headers)
    _check_client(owner, config, client_factory)

    last_error: str | None = None
    for attempt in range(max_retries + 1):
        page = await fetch_page(
            url, timeout=timeout, headers=headers, config=config, client_factory=client_factory
        )
        if page.success:
            return page
        last_error = page.error
        if attempt < max_retries:
            await trio.sleep(retry_delay * (attempt + 1))

    return WebPage.error_result(url, f"Failed after {max_retries + 1} attempts: {last_error}", 0.0)


async def extract_all_links(
    urls: Iterable[str],
    *,
    concurrency: int = 10,
    internal_only: bool = False,
    external_only: bool = False,
    config: WebSearchConfig | None = None,
    client_factory: Callable[[], WebSearchClient] | None = None,
) -> list[ExtractedLink]:
    """The distinct links of many pages, fetched with :func:`fetch_pages`.

    Failed pages are skipped. A link is listed once per URL, in the order first
    seen. With both ``internal_only`` and ``external_only`` nothing is listed.

    Args:
        urls: The pages to fetch.
        concurrency: Fetches at a time (at least 1).
        internal_only: List internal links only.
        external_only: List external links only.
        config: Settings for the client (ignored when ``client_factory`` is given).
        client_factory: Makes the client to use (e.g. one with a mock fetcher).

    Returns:
        The links.

    Raises:
        TypeError / ValueError: an argument has the wrong type or value.
    """
    owner = "extract_all_links"
    url_list = _check_urls(owner, "urls", urls)
    check_int(owner, "concurrency", concurrency, minimum=1)
    check_flag(owner, "internal_only", internal_only)
    check_flag(owner, "external_only", external_only)
    _check_client(owner, config, client_factory)

    pages = await fetch_pages(
        url_list, concurrency=concurrency, config=config, client_factory=client_factory
    )
    links: list[ExtractedLink] = []
    seen: set[str] = set()
    for page in pages:
        if not page.success:
            continue
        for link in page.links:
            if link.url in seen:
                continue
            if internal_only and not link.is_internal:
                continue
            if external_only and link.is_internal:
                continue
            seen.add(link.url)
            links.append(link)
    return links
