"""One client that fetches pages and turns them into :class:`WebPage` values.

:class:`WebSearchClient` puts a fetcher, an extractor and a navigator behind
four calls: :meth:`~WebSearchClient.fetch` (one page: its markdown, text,
metadata, links, navigation actions and pagination),
:meth:`~WebSearchClient.fetch_many` (a batch, in input order),
:meth:`~WebSearchClient.fetch_with_navigation` (follow "next page" links) and
:meth:`~WebSearchClient.crawl` (breadth first over links), plus
:meth:`~WebSearchClient.extract_content` for HTML you already have.
:func:`create_mock_client` builds one over a :class:`MockFetcher` for tests.

How it differs from the reference (stageflow 0.9.1, asyncio):

- :meth:`~WebSearchClient.fetch_many` runs in a nursery under a
  ``trio.CapacityLimiter``: results in input order, a failing URL gives its
  error page, and a cancellation cancels every fetch and propagates.
- ``async with`` enters and closes only a fetcher the client made itself; a
  fetcher you pass in stays yours to enter and close (the reference entered it
  too, and left it entered).
- ``on_extract_complete`` receives the fetch's ``request_id`` (the one the fetch
  hooks received), where the reference made up an unrelated one.
- :meth:`~WebSearchClient.crawl` queues each URL once (the pages fetched, and
  their order, are the reference's).
- Arguments are checked at the call (TypeError / ValueError naming the parameter).

Extraction and navigation analysis are CPU work of a few milliseconds per page;
they run synchronously in the calling task, as in the reference.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import attrs
import trio

from stageflow_trio._args import (
    check_flag,
    check_int,
    check_number,
    check_plain_callable,
    check_str,
    is_async_callable,
    type_of,
)
from stageflow_trio._frozen import frozen_compat
from stageflow_trio._time import utc_now_iso
from stageflow_trio.websearch.extractor import (
    SELECTOLAX_AVAILABLE,
    ContentExtractor,
    DefaultContentExtractor,
    ExtractionConfig,
    FallbackContentExtractor,
)
from stageflow_trio.websearch.fetcher import (
    HTTPX_AVAILABLE,
    CompleteHook,
    ErrorHook,
    FetchConfig,
    Fetcher,
    HttpFetcher,
    MockFetcher,
    StartHook,
    _run_limited,
    _str_mapping,
    _url_list,
)
from stageflow_trio.websearch.models import (
    ExtractedLink,
    NavigationAction,
    PageMetadata,
    PaginationInfo,
    WebPage,
)
from stageflow_trio.websearch.navigator import (
    FallbackNavigator,
    NavigationConfig,
    Navigator,
    PageNavigator,
)

if TYPE_CHECKING:
    from types import TracebackType
    from typing import Self

    from stageflow_trio.websearch.fetcher import FetchResult

__all__ = [
    "WebSearchClient",
    "WebSearchConfig",
    "create_mock_client",
]

_INSTALL_HINT = "WebSearchClient needs httpx: pip install 'stageflow-trio[websearch]'"

# A page that is not HTML keeps at most this many characters of its text.
_NON_HTML_CHARS = 10_000

ExtractHook = Callable[[str, str, float, int, int], None]


def _check_instance(owner: str, param: str, value: object, kind: type, what: str) -> None:
    if not isinstance(value, kind):
        raise TypeError(f"{owner}: {param} must be {what}; got {type_of(value)}")


def _check_optional_flag(owner: str, param: str, value: object) -> None:
    if value is not None:
        check_flag(owner, param, value)


def _check_request(owner: str, timeout: object, headers: object) -> None:
    if timeout is not None:
        check_number(owner, "timeout", timeout, minimum=0, above=True)
    if headers is not None:
        _str_mapping(owner, "headers", headers)


def _check_methods(
    owner: str, param: str, value: object, methods: tuple[str, ...], what: str, *, sync: bool
) -> None:
    if not all(callable(getattr(value, name, None)) for name in methods):
        names = ", ".join(methods)
        raise TypeError(f"{owner}: {param} must be {what} (with {names}); got {type_of(value)}")
    for name in methods if sync else ():
        # The client calls these without awaiting: an async one would hand it a
        # coroutine, and the first fetch would fail on a missing attribute.
        if is_async_callable(getattr(value, name)):
            raise TypeError(
                f"{owner}: {param}.{name} must be a plain method (it is called, not "
                f"awaited); got an async function on {type_of(value)}"
            )


@frozen_compat
@attrs.frozen
class WebSearchConfig:
    """What a :class:`WebSearchClient` does by default.

    Attributes:
        fetch: How pages are fetched.
        extraction: What is kept of a page's content.
        navigation: What is looked for to navigate.
        max_concurrent: The most fetches :meth:`WebSearchClient.fetch_many` runs
            at once when not told (>= 1).
        auto_extract: Whether :meth:`WebSearchClient.fetch` extracts the content
            when not told.
        auto_navigate: Whether it analyses navigation when not told.

    Raises:
        TypeError, ValueError: a field has the wrong type or is out of range.
    """

    fetch: FetchConfig = attrs.field(factory=FetchConfig)
    extraction: ExtractionConfig = attrs.field(factory=ExtractionConfig)
    navigation: NavigationConfig = attrs.field(factory=NavigationConfig)
    max_concurrent: int = 5
    auto_extract: bool = True
    auto_navigate: bool = True

    def __attrs_post_init__(self) -> None:
        owner = "WebSearchConfig"
        _check_instance(owner, "fetch", self.fetch, FetchConfig, "a FetchConfig")
        _check_instance(
            owner, "extraction", self.extraction, ExtractionConfig, "an ExtractionConfig"
        )
        _check_instance(
            owner, "navigation", self.navigation, NavigationConfig, "a NavigationConfig"
        )
        check_int(owner, "max_concurrent", self.max_concurrent, minimum=1)
        check_flag(owner, "auto_extract", self.auto_extract)
        check_flag(owner, "auto_navigate", self.auto_navigate)


class WebSearchClient:
    """Fetches pages and extracts their content, links and navigation.

    Without a ``fetcher`` the client makes an :class:`HttpFetcher` from
    ``config.fetch`` and the three fetch hooks, and owns it: leaving
    ``async with`` (or :meth:`close`) closes its HTTP client. Use the client in
    ``async with``, or call :meth:`close` when done. A ``fetcher`` you pass in is
    used as is, never entered or closed by the client, and the fetch hooks are
    then ignored (give them to your fetcher).

    Without an ``extractor`` / ``navigator`` the client uses the selectolax-based
    :class:`DefaultContentExtractor` / :class:`PageNavigator` when selectolax is
    installed, else the regex-based fallbacks.

    ``on_extract_complete(url, request_id, duration_ms, chars, links)`` is called
    after each HTML page is processed: the fetch's request id, the milliseconds
    spent extracting and analysing, the markdown's length and the number of
    links. Its exceptions are suppressed.

    Example::

        async with WebSearchClient() as client:
            page = await client.fetch("https://example.com")
            print(page.title, len(page.links))
            pages = await client.fetch_many(["https://a.example", "https://b.example"])

    Raises:
        ImportError: no ``fetcher`` is given and httpx is not installed.
        TypeError: an argument has the wrong type; a hook, or the extractor's or
            navigator's methods, are async functions (they are called, not awaited).
    """

    def __init__(
        self,
        config: WebSearchConfig | None = None,
        *,
        fetcher: Fetcher | None = None,
        extractor: ContentExtractor | None = None,
        navigator: Navigator | None = None,
        on_fetch_start: StartHook | None = None,
        on_fetch_complete: CompleteHook | None = None,
        on_fetch_error: ErrorHook | None = None,
        on_extract_complete: ExtractHook | None = None,
    ) -> None:
        owner = "WebSearchClient"
        if config is None:
            config = WebSearchConfig()
        else:
            _check_instance(owner, "config", config, WebSearchConfig, "a WebSearchConfig or None")
        if fetcher is not None:
            _check_methods(owner, "fetcher", fetcher, ("fetch",), "a fetcher", sync=False)
        if extractor is not None:
            _check_methods(
                owner,
                "extractor",
                extractor,
                ("extract", "extract_metadata"),
                "an extractor",
                sync=True,
            )
        if navigator is not None:
            _check_methods(owner, "navigator", navigator, ("analyze",), "a navigator", sync=True)
        check_plain_callable(owner, "on_extract_complete", on_extract_complete, optional=True)
        self.config: WebSearchConfig = config
        self._on_extract_complete = on_extract_complete

        # The fetcher this client made, and so enters and closes; None for yours.
        self._owned_fetcher: HttpFetcher | None = None
        self._fetcher: Fetcher
        if fetcher is not None:
            self._fetcher = fetcher
        elif HTTPX_AVAILABLE:
            self._fetcher = self._owned_fetcher = HttpFetcher(
                config.fetch,
                on_fetch_start=on_fetch_start,
                on_fetch_complete=on_fetch_complete,
                on_fetch_error=on_fetch_error,
            )
        else:  # pragma: no cover - the test environment has httpx
            raise ImportError(_INSTALL_HINT)

        self._extractor: ContentExtractor
        if extractor is not None:
            self._extractor = extractor
        elif SELECTOLAX_AVAILABLE:
            self._extractor = DefaultContentExtractor(config.extraction)
        else:  # pragma: no cover - the test environment has selectolax
            self._extractor = FallbackContentExtractor(config.extraction)

        self._navigator: Navigator
        if navigator is not None:
            self._navigator = navigator
        elif SELECTOLAX_AVAILABLE:
            self._navigator = PageNavigator(config.navigation)
        else:  # pragma: no cover - the test environment has selectolax
            self._navigator = FallbackNavigator(config.navigation)

    async def __aenter__(self) -> Self:
        if self._owned_fetcher is not None:
            await self._owned_fetcher.__aenter__()
        else:
            await trio.lowlevel.checkpoint()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the fetcher if the client made it; a no-op otherwise. Always a checkpoint.

        Closing twice is harmless; a fetch after closing opens a new HTTP client,
        which needs closing again.
        """
        if self._owned_fetcher is not None:
            await self._owned_fetcher.close()
        else:
            await trio.lowlevel.checkpoint()

    async def fetch(
        self,
        url: str,
        *,
        timeout: float | None = None,
        headers: dict[str, str] | None = None,
        selector: str | None = None,
        extract: bool | None = None,
        navigate: bool | None = None,
    ) -> WebPage:
        """Fetch ``url`` and process it into a :class:`WebPage`.

        A failed fetch (an error, or a status outside 2xx/3xx) gives
        ``WebPage.error_result`` with the fetch's error or ``"HTTP <status>"``.
        A page that is not HTML gives its text (first 10,000 characters) as both
        markdown and plain text. An HTML page is extracted (or only its metadata
        read, with ``extract=False``) and analysed for navigation (unless
        ``navigate=False``). Always a checkpoint; an exception from the
        extractor or navigator propagates.

        Args:
            url: The URL.
            timeout: Seconds for the request (> 0); the fetch config's when None.
            headers: Extra request headers.
            selector: A CSS selector naming the content to extract.
            extract: Whether to extract the content; ``config.auto_extract`` when None.
            navigate: Whether to analyse navigation; ``config.auto_navigate`` when None.

        Raises:
            TypeError, ValueError: an argument has the wrong type or is out of range.
        """
        owner = "WebSearchClient.fetch"
        check_str(owner, "url", url)
        _check_request(owner, timeout, headers)
        check_str(owner, "selector", selector, optional=True)
        _check_optional_flag(owner, "extract", extract)
        _check_optional_flag(owner, "navigate", navigate)
        await trio.lowlevel.checkpoint()  # whatever the fetcher does
        should_extract = self.config.auto_extract if extract is None else extract
        should_navigate = self.config.auto_navigate if navigate is None else navigate
        fetched = await self._fetcher.fetch(url, timeout=timeout, headers=headers)

        if not fetched.success:
            return _error_page(url, fetched)
        if not fetched.is_html:
            return _text_page(url, fetched)
        text = fetched.text

        base_url = fetched.final_url or url
        # CPU work in this task, timed on the wall clock (trio's stands still here).
        started = time.perf_counter()
        markdown = plain_text = ""
        links: list[ExtractedLink] = []
        word_count = 0
        metadata: PageMetadata
        if should_extract:
            extraction = self._extractor.extract(text, base_url=base_url, selector=selector)
            markdown = extraction.markdown
            plain_text = extraction.plain_text
            metadata = extraction.metadata
            links = extraction.links
            word_count = extraction.word_count
        else:
            metadata = self._extractor.extract_metadata(text)

        actions: list[NavigationAction] = []
        pagination: PaginationInfo | None = None
        if should_navigate:
            analysis = self._navigator.analyze(text, base_url=base_url)
            actions = analysis.actions
            pagination = analysis.pagination
        extract_duration_ms = (time.perf_counter() - started) * 1000

        if self._on_extract_complete is not None:
            with contextlib.suppress(Exception):
                self._on_extract_complete(
                    url, fetched.request_id, extract_duration_ms, len(markdown), len(links)
                )

        return WebPage(
            url=url,
            final_url=fetched.final_url,
            status_code=fetched.status_code,
            markdown=markdown,
            plain_text=plain_text,
            metadata=metadata,
            links=links,
            navigation_actions=actions,
            pagination=pagination,
            fetch_duration_ms=fetched.duration_ms,
            extract_duration_ms=extract_duration_ms,
            fetched_at=utc_now_iso(),
            word_count=word_count,
        )

    async def fetch_many(
        self,
        urls: list[str],
        *,
        concurrency: int | None = None,
        timeout: float | None = None,
        headers: dict[str, str] | None = None,
        selector: str | None = None,
        extract: bool | None = None,
        navigate: bool | None = None,
    ) -> list[WebPage]:
        """:meth:`fetch` every URL, at most ``concurrency`` at a time; pages in input order.

        A failing URL gives its error page and the others carry on. The fetches
        run in a nursery this call owns: a cancellation cancels them all and
        propagates; an exception from the extractor or navigator cancels the
        others and propagates as itself (never an ExceptionGroup). When it
        returns, nothing it started is left running. Always a checkpoint.

        Args:
            urls: The URLs (any iterable of str but a str itself).
            concurrency: The most fetches in flight; None or 0 means
                ``config.max_concurrent``.
            timeout, headers, selector, extract, navigate: As in :meth:`fetch`,
                for every URL.

        Raises:
            TypeError, ValueError: an argument has the wrong type or is out of range.
        """
        owner = "WebSearchClient.fetch_many"
        url_list = _url_list(owner, urls)
        if concurrency is not None:
            check_int(owner, "concurrency", concurrency, minimum=0)
        _check_request(owner, timeout, headers)
        check_str(owner, "selector", selector, optional=True)
        _check_optional_flag(owner, "extract", extract)
        _check_optional_flag(owner, "navigate", navigate)
        limit = concurrency or self.config.max_concurrent

        async def fetch_one(url: str) -> WebPage:
            return await self.fetch(
                url,
                timeout=timeout,
                headers=headers,
                selector=selector,
                extract=extract,
                navigate=navigate,
            )

        return await _run_limited(fetch_one, url_list, limit)

    async def fetch_with_navigation(
        self,
        url: str,
        *,
        max_pages: int = 10,
        follow_pagination: bool = True,
        timeout: float | None = None,
        headers: dict[str, str] | None = None,
        selector: str | None = None,
    ) -> list[WebPage]:
        """Fetch ``url``, then follow its "next page" links, one page at a time.

        Stops after ``max_pages`` pages (none when it is 0 or less), at a page
        without pagination or without a next page, or at a URL already fetched
        (so a pagination loop ends). With ``follow_pagination=False`` only
        ``url`` is fetched. Always a checkpoint.

        Raises:
            TypeError, ValueError: an argument has the wrong type or is out of range.
        """
        owner = "WebSearchClient.fetch_with_navigation"
        check_str(owner, "url", url)
        _check_request(owner, timeout, headers)
        check_int(owner, "max_pages", max_pages)
        check_flag(owner, "follow_pagination", follow_pagination)
        check_str(owner, "selector", selector, optional=True)
        await trio.lowlevel.checkpoint()

        pages: list[WebPage] = []
        seen: set[str] = set()
        current: str | None = url
        while current and len(pages) < max_pages and current not in seen:
            seen.add(current)
            page = await self.fetch(current, timeout=timeout, headers=headers, selector=selector)
            pages.append(page)
            if not follow_pagination or page.pagination is None:
                break
            current = page.pagination.next_url
        return pages

    async def crawl(
        self,
        start_url: str,
        *,
        max_pages: int = 10,
        max_depth: int = 2,
        same_domain_only: bool = True,
        timeout: float | None = None,
        headers: dict[str, str] | None = None,
        selector: str | None = None,
        link_filter: Callable[[ExtractedLink], bool] | None = None,
    ) -> list[WebPage]:
        """Fetch pages breadth first from ``start_url``, following their links.

        ``start_url`` is at depth 0 and a page's links one deeper; the links of
        pages at ``max_depth`` are not followed. A link is followed when it was
        not fetched yet, is on ``start_url``'s host (``netloc``) if
        ``same_domain_only``, and passes ``link_filter`` (if given). Each URL is
        fetched at most once, so link cycles end; the crawl stops after
        ``max_pages`` pages or when no link is left. Pages are fetched one at a
        time, in the order found. Always a checkpoint; an exception from
        ``link_filter`` propagates.

        Returns:
            The pages in the order fetched, failed ones included (they have no links).

        Raises:
            TypeError, ValueError: an argument has the wrong type or is out of range
                (``link_filter`` an async function among them).
        """
        owner = "WebSearchClient.crawl"
        check_str(owner, "start_url", start_url)
        _check_request(owner, timeout, headers)
        check_int(owner, "max_pages", max_pages)
        check_int(owner, "max_depth", max_depth)
        check_flag(owner, "same_domain_only", same_domain_only)
        check_str(owner, "selector", selector, optional=True)
        check_plain_callable(owner, "link_filter", link_filter, optional=True)
        await trio.lowlevel.checkpoint()

        pages: list[WebPage] = []
        fetched: set[str] = set()
        queued = {start_url}
        start_host = urlparse(start_url).netloc
        queue: deque[tuple[str, int]] = deque([(start_url, 0)])
        while queue and len(pages) < max_pages:
            current, depth = queue.popleft()
            fetched.add(current)
            page = await self.fetch(current, timeout=timeout, headers=headers, selector=selector)
            pages.append(page)
            if depth >= max_depth:
                continue
            for link in page.links:
                if link.url in fetched:
                    continue
                if same_domain_only and urlparse(link.url).netloc != start_host:
                    continue
                if link_filter is not None and not link_filter(link):
                    continue
                # The reference queued a URL again for every page linking to it and
                # skipped the copies when popped; the first copy decides either way.
                if link.url not in queued:
                    queued.add(link.url)
                    queue.append((link.url, depth + 1))
        return pages

    def extract_content(
        self,
        html: str,
        *,
        base_url: str | None = None,
        selector: str | None = None,
    ) -> WebPage:
        """Extract and analyse ``html`` you already have, without fetching.

        The page has ``url=base_url or ""``, status 200, no fetch time, and the
        extraction and navigation results.
        """
        owner = "WebSearchClient.extract_content"
        check_str(owner, "html", html)
        check_str(owner, "base_url", base_url, optional=True)
        check_str(owner, "selector", selector, optional=True)
        started = time.perf_counter()
        extraction = self._extractor.extract(html, base_url=base_url, selector=selector)
        analysis = self._navigator.analyze(html, base_url=base_url)
        extract_duration_ms = (time.perf_counter() - started) * 1000
        return WebPage(
            url=base_url or "",
            status_code=200,
            markdown=extraction.markdown,
            plain_text=extraction.plain_text,
            metadata=extraction.metadata,
            links=extraction.links,
            navigation_actions=analysis.actions,
            pagination=analysis.pagination,
            extract_duration_ms=extract_duration_ms,
            fetched_at=utc_now_iso(),
            word_count=extraction.word_count,
        )


def _error_page(url: str, fetched: FetchResult) -> WebPage:
    """The page of a fetch that failed: its error, or the HTTP status when it has none."""
    return WebPage.error_result(
        url, fetched.error or f"HTTP {fetched.status_code}", fetched.duration_ms
    )


def _text_page(url: str, fetched: FetchResult) -> WebPage:
    """The page of a successful fetch that is not HTML: its first 10,000 characters as text."""
    text = fetched.text
    return WebPage(
        url=url,
        final_url=fetched.final_url,
        status_code=fetched.status_code,
        markdown=text[:_NON_HTML_CHARS],
        plain_text=text[:_NON_HTML_CHARS],
        fetch_duration_ms=fetched.duration_ms,
        fetched_at=utc_now_iso(),
        word_count=len(text.split()),
    )


def create_mock_client(
    responses: dict[str, tuple[int, str, dict[str, str]]] | None = None,
    *,
    config: WebSearchConfig | None = None,
) -> WebSearchClient:
    """A client over a :class:`MockFetcher` answering from ``responses``, for tests.

    Args:
        responses: URL to ``(status, body, headers)``; other URLs get a 404.
        config: The client's config; its ``fetch`` config goes to the mock fetcher.

    Raises:
        TypeError: ``responses`` or ``config`` has the wrong type.
    """
    if config is not None and not isinstance(config, WebSearchConfig):
        raise TypeError(
            f"create_mock_client: config must be a WebSearchConfig or None; got {type_of(config)}"
        )
    fetcher = MockFetcher(responses, config=config.fetch if config is not None else None)
    return WebSearchClient(config, fetcher=fetcher)
