"""Fetch web pages, turn their HTML into structured markdown, and find where to go next.

The reference's ``stageflow.websearch`` on trio, with the names of stageflow 1.2's
``__all__`` (0.9.1's plus ``create_mock_client`` and ``PaginationInfo``):

- :mod:`~stageflow_trio.websearch.fetcher`: HTTP fetching with retries and backoff on
  trio's clock, observability hooks, and batches in a nursery under a
  ``trio.CapacityLimiter`` (``HttpFetcher`` on httpx; ``MockFetcher`` for tests);
- :mod:`~stageflow_trio.websearch.extractor`: HTML to markdown and plain text that keep
  headings, lists, links, emphasis, tables and code, plus the page's metadata;
- :mod:`~stageflow_trio.websearch.navigator`: link categories, pagination, breadcrumbs,
  the main content area and suggested navigation actions;
- :mod:`~stageflow_trio.websearch.client`: ``WebSearchClient`` combines the three
  (``fetch``, ``fetch_many``, ``fetch_with_navigation``, ``crawl``);
- :mod:`~stageflow_trio.websearch.run_utils`: one-call helpers (``fetch_page``,
  ``fetch_pages`` with progress, ``search_and_extract``, ``map_site``, ...);
- :mod:`~stageflow_trio.websearch.models` and :mod:`~stageflow_trio.websearch.protocols`:
  the frozen result values and the protocols a custom fetcher, extractor or navigator
  implements.

The package imports without its optional dependencies; ``HttpFetcher`` (and a
``WebSearchClient`` that makes one) needs httpx, and the structure-keeping extractor
and navigator need selectolax (without it, regex fallbacks are used):
``pip install 'stageflow-trio[websearch]'``. docs/websearch.md is the guide.
"""

from __future__ import annotations

from stageflow_trio.websearch.client import WebSearchClient as WebSearchClient
from stageflow_trio.websearch.client import WebSearchConfig as WebSearchConfig
from stageflow_trio.websearch.client import create_mock_client as create_mock_client
from stageflow_trio.websearch.extractor import ContentExtractor as ContentExtractor
from stageflow_trio.websearch.extractor import DefaultContentExtractor as DefaultContentExtractor
from stageflow_trio.websearch.extractor import ExtractionConfig as ExtractionConfig
from stageflow_trio.websearch.fetcher import FetchConfig as FetchConfig
from stageflow_trio.websearch.fetcher import Fetcher as Fetcher
from stageflow_trio.websearch.fetcher import FetchResult as FetchResult
from stageflow_trio.websearch.fetcher import HttpFetcher as HttpFetcher
from stageflow_trio.websearch.models import ExtractedLink as ExtractedLink
from stageflow_trio.websearch.models import NavigationAction as NavigationAction
from stageflow_trio.websearch.models import PageMetadata as PageMetadata
from stageflow_trio.websearch.models import PaginationInfo as PaginationInfo
from stageflow_trio.websearch.models import WebPage as WebPage
from stageflow_trio.websearch.navigator import NavigationConfig as NavigationConfig
from stageflow_trio.websearch.navigator import NavigationResult as NavigationResult
from stageflow_trio.websearch.navigator import Navigator as Navigator
from stageflow_trio.websearch.navigator import PageNavigator as PageNavigator
from stageflow_trio.websearch.protocols import ContentExtractorProtocol as ContentExtractorProtocol
from stageflow_trio.websearch.protocols import FetcherProtocol as FetcherProtocol
from stageflow_trio.websearch.protocols import NavigatorProtocol as NavigatorProtocol
from stageflow_trio.websearch.run_utils import FetchProgress as FetchProgress
from stageflow_trio.websearch.run_utils import SearchResult as SearchResult
from stageflow_trio.websearch.run_utils import SiteMap as SiteMap
from stageflow_trio.websearch.run_utils import extract_all_links as extract_all_links
from stageflow_trio.websearch.run_utils import fetch_page as fetch_page
from stageflow_trio.websearch.run_utils import fetch_pages as fetch_pages
from stageflow_trio.websearch.run_utils import fetch_with_retry as fetch_with_retry
from stageflow_trio.websearch.run_utils import map_site as map_site
from stageflow_trio.websearch.run_utils import search_and_extract as search_and_extract
from stageflow_trio.websearch.run_utils import shutdown_extraction_pool as shutdown_extraction_pool

__all__ = [
    "ContentExtractor",
    "ContentExtractorProtocol",
    "DefaultContentExtractor",
    "ExtractedLink",
    "ExtractionConfig",
    "FetchConfig",
    "FetchProgress",
    "FetchResult",
    "Fetcher",
    "FetcherProtocol",
    "HttpFetcher",
    "NavigationAction",
    "NavigationConfig",
    "NavigationResult",
    "Navigator",
    "NavigatorProtocol",
    "PageMetadata",
    "PageNavigator",
    "PaginationInfo",
    "SearchResult",
    "SiteMap",
    "WebPage",
    "WebSearchClient",
    "WebSearchConfig",
    "create_mock_client",
    "extract_all_links",
    "fetch_page",
    "fetch_pages",
    "fetch_with_retry",
    "map_site",
    "search_and_extract",
    "shutdown_extraction_pool",
]
