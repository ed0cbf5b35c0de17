"""The interfaces web search is built from: fetching, extracting, navigating, observing.

Each protocol is small and structural: any class with the right methods satisfies
it, no inheritance needed, and all four are ``runtime_checkable`` as in the
reference (``isinstance`` then checks that the methods exist, not their
signatures). The library's :mod:`~stageflow_trio.websearch.fetcher`,
:mod:`~stageflow_trio.websearch.extractor` and
:mod:`~stageflow_trio.websearch.navigator` classes implement the first three;
write your own to fetch through a browser or extract with another parser.

- :class:`FetcherProtocol`: ``async`` (under trio) ``fetch`` and ``fetch_many``;
  ``fetch_many`` returns results in input order.
- :class:`ContentExtractorProtocol`: HTML to markdown, metadata and links.
- :class:`NavigatorProtocol`: navigation actions, pagination, main content.
- :class:`ObservabilityProtocol`: hooks called around fetches and extractions.

The reference closed this module with three "forward declaration" classes,
``FetchResult``, ``ExtractionResult`` and ``PaginationInfo``: plain classes with
annotations only, unrelated to the real result classes, so the real fetcher and
extractor did not satisfy these protocols for a type checker. Here the names stay
(same ``__all__``) but mean something: ``FetchResult`` and ``ExtractionResult``
are read-only structural protocols the real results (and yours) satisfy, and
``PaginationInfo`` is :class:`stageflow_trio.websearch.models.PaginationInfo`.
"""

from __future__ import annotations

from collections.abc import Sequence  # noqa: TC003 - get_type_hints resolves it
from typing import Protocol, runtime_checkable

from stageflow_trio.websearch.models import (
    ExtractedLink,
    NavigationAction,
    PageMetadata,
    PaginationInfo,
)

__all__ = [
    "ContentExtractorProtocol",
    "ExtractionResult",
    "FetchResult",
    "FetcherProtocol",
    "NavigatorProtocol",
    "ObservabilityProtocol",
    "PaginationInfo",
]


@runtime_checkable
class FetchResult(Protocol):
    """What a fetch returns, as far as the protocols rely on it.

    :class:`stageflow_trio.websearch.fetcher.FetchResult` is the library's; any
    object with these attributes (plain or read-only) will do.
    """

    @property
    def url(self) -> str:
        """The URL asked for."""
        ...

    @property
    def status_code(self) -> int:
        """The HTTP status; 0 when no response arrived."""
        ...

    @property
    def content(self) -> bytes:
        """The response body."""
        ...

    @property
    def headers(self) -> dict[str, str]:
        """The response headers."""
        ...

    @property
    def duration_ms(self) -> float:
        """How long the fetch took, in milliseconds."""
        ...

    @property
    def error(self) -> str | None:
        """What went wrong, or None."""
        ...


@runtime_checkable
class ExtractionResult(Protocol):
    """What an extraction returns, as far as the protocols rely on it.

    :class:`stageflow_trio.websearch.extractor.ExtractionResult` is the library's.
    """

    @property
    def markdown(self) -> str:
        """The content as markdown."""
        ...

    @property
    def plain_text(self) -> str:
        """The content as plain text."""
        ...

    @property
    def metadata(self) -> PageMetadata:
        """The page's metadata."""
        ...

    @property
    def links(self) -> list[ExtractedLink]:
        """The links found (a read-only list is a list)."""
        ...

    @property
    def word_count(self) -> int:
        """Words in the content."""
        ...


@runtime_checkable
class FetcherProtocol(Protocol):
    """Fetches URLs over HTTP, with whatever retries and timeouts it implements.

    Example::

        class BrowserFetcher:
            async def fetch(self, url, *, timeout=None, headers=None,
                            follow_redirects=True) -> FetchResult: ...
            async def fetch_many(self, urls, *, concurrency=5,
                                 timeout=None) -> list[FetchResult]: ...
    """

    async def fetch(
        self,
        url: str,
        *,
        timeout: float | None = None,
        headers: dict[str, str] | None = None,
        follow_redirects: bool = True,
    ) -> FetchResult:
        """Fetch ``url``: its status, body, headers and timing.

        Args:
            url: The URL to fetch.
            timeout: Seconds before giving up; None for the fetcher's default.
            headers: Headers to send in addition to the fetcher's own.
            follow_redirects: Whether to follow redirects.
        """
        ...

    async def fetch_many(
        self,
        urls: list[str],
        *,
        concurrency: int = 5,
        timeout: float | None = None,
    ) -> Sequence[FetchResult]:
        """Fetch every URL, at most ``concurrency`` at a time.

        Args:
            urls: The URLs to fetch.
            concurrency: How many fetches may run at once.
            timeout: Seconds per fetch; None for the fetcher's default.

        Returns:
            One result per URL, in the order of ``urls``. (A ``Sequence``, where the
            reference said ``list``: a list is invariant, so a fetcher returning
            ``list[ItsOwnResult]`` would not match ``list[FetchResult]``.)
        """
        ...


@runtime_checkable
class ContentExtractorProtocol(Protocol):
    """Turns HTML into clean structured content: markdown, plain text, metadata, links.

    Headings, lists and links should survive as structure, not flatten into text.
    """

    def extract(
        self,
        html: str,
        *,
        base_url: str | None = None,
        selector: str | None = None,
    ) -> ExtractionResult:
        """The page's content, metadata and links.

        Args:
            html: The raw HTML.
            base_url: The page's URL, to make relative links absolute.
            selector: A CSS selector for the part of the page to extract.
        """
        ...

    def extract_metadata(self, html: str) -> PageMetadata:
        """The page's title, description, language and other ``<head>`` facts."""
        ...

    def extract_links(
        self,
        html: str,
        *,
        base_url: str | None = None,
        selector: str | None = None,
    ) -> list[ExtractedLink]:
        """The page's links.

        Args:
            html: The raw HTML.
            base_url: The page's URL, to make relative links absolute.
            selector: A CSS selector for the part of the page to take links from.
        """
        ...


@runtime_checkable
class NavigatorProtocol(Protocol):
    """Finds where an agent can go from a page: links, pagination, the main content."""

    def get_navigation_actions(
        self,
        html: str,
        *,
        base_url: str | None = None,
    ) -> list[NavigationAction]:
        """What an agent can do next on the page, most useful first.

        Args:
            html: The raw HTML.
            base_url: The page's URL, to make relative links absolute.
        """
        ...

    def find_pagination(
        self,
        html: str,
        *,
        base_url: str | None = None,
    ) -> PaginationInfo | None:
        """The page's pagination controls, or None if it has none.

        Args:
            html: The raw HTML.
            base_url: The page's URL, to make relative links absolute.
        """
        ...

    def find_main_content_selector(self, html: str) -> str | None:
        """A CSS selector for the page's main content area, or None if none stands out."""
        ...


@runtime_checkable
class ObservabilityProtocol(Protocol):
    """Hooks around fetches and extractions, to log, trace or count them.

    An interface for your own components to report through; the library's
    fetchers take plain callbacks instead (``on_fetch_start=`` and so on). The
    hooks are synchronous and run in the working task, so they should be quick.
    """

    def on_fetch_start(
        self,
        url: str,
        *,
        request_id: str | None = None,
    ) -> None:
        """A fetch of ``url`` is starting."""
        ...

    def on_fetch_complete(
        self,
        url: str,
        *,
        request_id: str | None = None,
        status_code: int,
        duration_ms: float,
        content_length: int,
        from_cache: bool = False,
    ) -> None:
        """A fetch of ``url`` got a response (of any status)."""
        ...

    def on_fetch_error(
        self,
        url: str,
        *,
        request_id: str | None = None,
        error: str,
        duration_ms: float,
        retryable: bool = False,
    ) -> None:
        """A fetch of ``url`` failed; ``retryable`` says whether it will be tried again."""
        ...

    def on_extract_complete(
        self,
        url: str,
        *,
        request_id: str | None = None,
        duration_ms: float,
        content_length: int,
        link_count: int,
    ) -> None:
        """The content of ``url`` has been extracted."""
        ...
