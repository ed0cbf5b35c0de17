"""Our own checks for what the reference's websearch suite checks and ours did not yet.

stageflow-core 0.9.1 ships 163 websearch tests (pytest-asyncio). Every behaviour they
check was looked up in our suite; this file holds tests for the ones no test of ours
asserted, grouped by the reference module they come from. Where each reference test
module is covered (reference file in the sdist's tests/websearch/ -> our files):

- test_models.py -> tests/websearch/test_models.py
- test_fetcher.py -> tests/websearch/test_fetcher.py
- test_extractor.py -> tests/websearch/test_extractor.py
- test_navigator.py -> tests/websearch/test_navigator.py, test_reference_suite_analogs.py
  (the regex ``FallbackNavigator`` on arrow texts and class names)
- test_client.py -> tests/websearch/test_client.py, test_reference_suite_analogs.py
  (extraction time is measured, not left at zero)
- test_run_utils.py -> tests/websearch/test_run_utils.py, test_reference_suite_analogs.py
  (the package-level exports of the run helpers)
- test_exports.py -> test_reference_suite_analogs.py (the package ``__init__``)

The reference's tests were also run, with only their imports and asyncio markers
changed, against this port under trio: all 163 pass.
"""

from __future__ import annotations

import importlib

import pytest
import stageflow.websearch as reference_websearch

import stageflow_trio.websearch as websearch
from stageflow_trio.websearch import client, extractor, fetcher, models, navigator, run_utils
from stageflow_trio.websearch.client import WebSearchClient, create_mock_client
from stageflow_trio.websearch.fetcher import MockFetcher
from stageflow_trio.websearch.models import NavigationAction, PaginationInfo
from stageflow_trio.websearch.navigator import FallbackNavigator

HTML = {"content-type": "text/html"}


# --- test_exports.py: the package's public names -------------------------------------


def test_package_all_is_the_reference_all_plus_the_two_names_of_stageflow_1_2() -> None:
    assert sorted(websearch.__all__) == sorted(
        [*reference_websearch.__all__, "create_mock_client", "PaginationInfo"]
    )
    assert len(set(websearch.__all__)) == len(websearch.__all__)


_HOMES = {
    "WebSearchClient": client,
    "WebSearchConfig": client,
    "create_mock_client": client,
    "ExtractionConfig": extractor,
    "FetchConfig": fetcher,
    "NavigationConfig": navigator,
    "NavigationAction": models,
    "PageMetadata": models,
    "PaginationInfo": models,
    "WebPage": models,
    "ExtractedLink": models,
    "FetchProgress": run_utils,
    "SearchResult": run_utils,
    "SiteMap": run_utils,
    "fetch_page": run_utils,
    "fetch_pages": run_utils,
    "fetch_with_retry": run_utils,
    "search_and_extract": run_utils,
    "map_site": run_utils,
    "extract_all_links": run_utils,
    "shutdown_extraction_pool": run_utils,
}


@pytest.mark.parametrize("name", sorted(_HOMES))
def test_package_name_is_the_object_of_its_module(name: str) -> None:
    assert name in websearch.__all__
    assert getattr(websearch, name) is getattr(_HOMES[name], name)


@pytest.mark.parametrize(
    "name", ["ContentExtractorProtocol", "FetcherProtocol", "NavigatorProtocol"]
)
def test_package_exports_the_protocols(name: str) -> None:
    protocols = importlib.import_module("stageflow_trio.websearch.protocols")
    assert getattr(websearch, name) is getattr(protocols, name)
    assert name in websearch.__all__


def test_configs_from_the_package_have_the_reference_defaults() -> None:
    config = websearch.WebSearchConfig()
    assert (config.max_concurrent, config.auto_extract, config.auto_navigate) == (5, True, True)
    navigation = websearch.NavigationConfig()
    assert navigation.max_actions == 20
    assert ".pagination" in navigation.pagination_selectors
    extraction = websearch.ExtractionConfig()
    assert (extraction.preserve_headings, extraction.preserve_links) == (True, True)
    assert websearch.FetchConfig().timeout == 30.0


@pytest.mark.parametrize("action_type", ["pagination", "nav_link", "content_link", "external"])
def test_navigation_action_documents_and_accepts_each_action_type(action_type: str) -> None:
    assert action_type in (NavigationAction.__doc__ or "")
    action = NavigationAction(
        action_type=action_type,
        label="Go",
        url="https://example.org/x",
        priority=2,
        metadata={"direction": "next"},
    )
    assert action.action_type == action_type
    assert action.metadata["direction"] == "next"
    assert NavigationAction.from_dict(action.to_dict()) == action


def test_run_helpers_from_the_package_are_callable() -> None:
    for name in run_utils.__all__:
        assert name in websearch.__all__
        assert getattr(websearch, name) is getattr(run_utils, name)
    for name in ("fetch_page", "fetch_pages", "fetch_with_retry", "map_site"):
        assert callable(getattr(websearch, name))


# --- test_navigator.py: the regex FallbackNavigator ------------------------------------


@pytest.mark.parametrize(
    ("html", "next_url", "prev_url"),
    [
        ('<p><a href="/list/4">Next →</a></p>', "https://s.example/list/4", None),
        ('<p><a href="/list/2">← Previous</a></p>', None, "https://s.example/list/2"),
        # Marked by its class alone: the text is just a number.
        ('<p><a class="next-page" href="/list/4">4</a></p>', "https://s.example/list/4", None),
        (
            '<a href="/list/2">prev</a> <a href="/list/4">next</a>',
            "https://s.example/list/4",
            "https://s.example/list/2",
        ),
    ],
)
def test_fallback_navigator_finds_next_and_prev(
    html: str, next_url: str | None, prev_url: str | None
) -> None:
    result = FallbackNavigator().analyze(html, base_url="https://s.example/list/3")
    assert result.pagination == PaginationInfo(next_url=next_url, prev_url=prev_url)
    expected = [
        ("Next page", next_url, 1),
        ("Previous page", prev_url, 2),
    ]
    assert [(a.action_type, a.label, a.url, a.priority) for a in result.actions] == [
        ("pagination", label, url, priority) for label, url, priority in expected if url
    ]


def test_fallback_navigator_without_pagination_suggests_nothing() -> None:
    result = FallbackNavigator().analyze('<p>Plain text and <a href="/about">about us</a>.</p>')
    assert result.pagination is None
    assert result.actions == []


# --- test_client.py: extraction time --------------------------------------------------


def test_extract_content_measures_its_extraction_time() -> None:
    page = create_mock_client().extract_content(
        "<html><head><title>T</title></head><body><h1>Head</h1><p>Body</p></body></html>",
        base_url="https://example.org/",
    )
    assert page.success
    assert page.title == "T"
    assert page.extract_duration_ms > 0


async def test_extract_hook_gets_a_positive_duration_and_the_counts() -> None:
    calls: list[tuple[str, str, float, int, int]] = []
    responses = {
        "https://example.org/": (
            200,
            "<html><body><h1>A</h1><a href='/b'>B</a></body></html>",
            HTML,
        )
    }
    client_ = WebSearchClient(
        fetcher=MockFetcher(responses),
        on_extract_complete=lambda *args: calls.append(args),
    )
    page = await client_.fetch("https://example.org/")
    assert len(calls) == 1
    url, request_id, duration_ms, chars, links = calls[0]
    assert (url, chars, links) == ("https://example.org/", len(page.markdown), 1)
    assert request_id
    assert duration_ms > 0
    assert page.extract_duration_ms > 0
