"""stageflow_trio.websearch.protocols: the surface matches the reference, and the library conforms.

The protocols have no behaviour of their own; what matters is that their methods
have the reference's signatures (so implementations written for it fit), that
``isinstance`` works as with the reference's ``runtime_checkable`` protocols, and
that the library's fetchers, extractors and navigators satisfy them for mypy
(the annotated assignments below are checked when the tests are type-checked)
and at run time.
"""

from __future__ import annotations

import importlib
import inspect
import typing
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import pytest

from stageflow_trio.websearch import models, protocols
from stageflow_trio.websearch.extractor import (
    DefaultContentExtractor,
    FallbackContentExtractor,
)
from stageflow_trio.websearch.extractor import (
    ExtractionResult as LibraryExtractionResult,
)
from stageflow_trio.websearch.fetcher import FetchResult as LibraryFetchResult
from stageflow_trio.websearch.fetcher import HttpFetcher, MockFetcher
from stageflow_trio.websearch.models import ExtractedLink, NavigationAction, PageMetadata
from stageflow_trio.websearch.navigator import FallbackNavigator, PageNavigator
from stageflow_trio.websearch.protocols import (
    ContentExtractorProtocol,
    ExtractionResult,
    FetcherProtocol,
    FetchResult,
    NavigatorProtocol,
    ObservabilityProtocol,
    PaginationInfo,
)

PROTOCOLS = (
    "FetcherProtocol",
    "ContentExtractorProtocol",
    "NavigatorProtocol",
    "ObservabilityProtocol",
)


@pytest.fixture(scope="module")
def ref(reference: ModuleType) -> ModuleType:
    return importlib.import_module("stageflow.websearch.protocols")


def _methods(cls: type[Any]) -> list[str]:
    return sorted(
        name for name, value in vars(cls).items() if not name.startswith("_") and callable(value)
    )


def test_all_matches_reference(ref: ModuleType) -> None:
    assert sorted(protocols.__all__) == sorted(ref.__all__)
    for name in protocols.__all__:
        assert getattr(protocols, name).__name__ == name


@pytest.mark.parametrize("name", PROTOCOLS)
def test_protocol_methods_and_signatures_match_reference(ref: ModuleType, name: str) -> None:
    ours, theirs = getattr(protocols, name), getattr(ref, name)
    assert _methods(ours) == _methods(theirs)
    for method in _methods(ours):
        mine = inspect.signature(getattr(ours, method))
        their = inspect.signature(getattr(theirs, method))
        # Names, kinds, defaults and the annotations' text (both modules defer them);
        # fetch_many returns a Sequence, where the reference wrote list (invariant).
        if (name, method) == ("FetcherProtocol", "fetch_many"):
            assert mine.return_annotation == "Sequence[FetchResult]"
            assert their.return_annotation == "list[FetchResult]"
            their = their.replace(return_annotation=mine.return_annotation)
        assert mine == their, f"{name}.{method}"
        assert inspect.iscoroutinefunction(getattr(ours, method)) == inspect.iscoroutinefunction(
            getattr(theirs, method)
        )


@pytest.mark.parametrize("name", PROTOCOLS)
def test_protocol_type_hints_resolve(name: str) -> None:
    # Every annotation names something importable from the module at run time.
    cls = getattr(protocols, name)
    for method in _methods(cls):
        hints = typing.get_type_hints(getattr(cls, method))
        assert "return" in hints


@pytest.mark.parametrize("name", PROTOCOLS)
def test_protocols_cannot_be_instantiated(name: str) -> None:
    with pytest.raises(TypeError, match="Protocols cannot be instantiated"):
        getattr(protocols, name)()


# -- runtime checks: complete and incomplete fakes ----------------------------------------


class _Fetcher:
    async def fetch(
        self,
        url: str,
        *,
        timeout: float | None = None,
        headers: dict[str, str] | None = None,
        follow_redirects: bool = True,
    ) -> FetchResult:
        return LibraryFetchResult(url, status_code=200, content=b"ok")

    async def fetch_many(
        self, urls: list[str], *, concurrency: int = 5, timeout: float | None = None
    ) -> Sequence[FetchResult]:
        return [await self.fetch(url) for url in urls]


class _Extractor:
    def extract(
        self, html: str, *, base_url: str | None = None, selector: str | None = None
    ) -> ExtractionResult:
        return LibraryExtractionResult(markdown=html)

    def extract_metadata(self, html: str) -> PageMetadata:
        return PageMetadata(title=html)

    def extract_links(
        self, html: str, *, base_url: str | None = None, selector: str | None = None
    ) -> list[ExtractedLink]:
        return []


class _Navigator:
    def get_navigation_actions(
        self, html: str, *, base_url: str | None = None
    ) -> list[NavigationAction]:
        return []

    def find_pagination(self, html: str, *, base_url: str | None = None) -> PaginationInfo | None:
        return None

    def find_main_content_selector(self, html: str) -> str | None:
        return None


class _Observer:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def on_fetch_start(self, url: str, *, request_id: str | None = None) -> None:
        self.calls.append(("start", url, {"request_id": request_id}))

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
        self.calls.append(("complete", url, {"status_code": status_code}))

    def on_fetch_error(
        self,
        url: str,
        *,
        request_id: str | None = None,
        error: str,
        duration_ms: float,
        retryable: bool = False,
    ) -> None:
        self.calls.append(("error", url, {"error": error}))

    def on_extract_complete(
        self,
        url: str,
        *,
        request_id: str | None = None,
        duration_ms: float,
        content_length: int,
        link_count: int,
    ) -> None:
        self.calls.append(("extract", url, {"link_count": link_count}))


FAKES: dict[str, type[Any]] = {
    "FetcherProtocol": _Fetcher,
    "ContentExtractorProtocol": _Extractor,
    "NavigatorProtocol": _Navigator,
    "ObservabilityProtocol": _Observer,
}


@pytest.mark.parametrize("name", PROTOCOLS)
def test_isinstance_accepts_a_complete_implementation(name: str) -> None:
    protocol = getattr(protocols, name)
    assert isinstance(FAKES[name](), protocol)
    for other in PROTOCOLS:
        if other != name:
            assert not isinstance(FAKES[name](), getattr(protocols, other))


@pytest.mark.parametrize("name", PROTOCOLS)
def test_isinstance_refuses_a_missing_method(ref: ModuleType, name: str) -> None:
    protocol = getattr(protocols, name)
    for method in _methods(protocol):
        # The fake's class minus one method: the check fails for ours and the reference's.
        partial = type(
            "Partial", (), {m: getattr(FAKES[name], m) for m in _methods(protocol) if m != method}
        )
        assert not isinstance(partial(), protocol), method
        assert not isinstance(partial(), getattr(ref, name)), method
    assert not isinstance(object(), protocol)


def test_fake_implementations_agree_with_reference_protocols(ref: ModuleType) -> None:
    for name in PROTOCOLS:
        assert isinstance(FAKES[name](), getattr(ref, name))


async def test_a_fetcher_used_through_the_protocol() -> None:
    fetcher: FetcherProtocol = _Fetcher()
    results = await fetcher.fetch_many(["https://a/", "https://b/"])
    assert [(r.url, r.status_code, r.content) for r in results] == [
        ("https://a/", 200, b"ok"),
        ("https://b/", 200, b"ok"),
    ]
    assert all(isinstance(r, FetchResult) for r in results)


def test_an_observer_used_through_the_protocol() -> None:
    observer = _Observer()
    hooks: ObservabilityProtocol = observer
    hooks.on_fetch_start("u", request_id="r")
    hooks.on_fetch_complete("u", status_code=200, duration_ms=1.0, content_length=10)
    hooks.on_fetch_error("u", error="boom", duration_ms=1.0, retryable=True)
    hooks.on_extract_complete("u", duration_ms=1.0, content_length=10, link_count=3)
    assert [call[0] for call in observer.calls] == ["start", "complete", "error", "extract"]


# -- the result declarations ------------------------------------------------------------


def test_pagination_info_is_the_model() -> None:
    assert PaginationInfo is models.PaginationInfo
    assert PaginationInfo(next_url="n").has_next


def test_fetch_result_declaration() -> None:
    assert isinstance(LibraryFetchResult("https://a/"), FetchResult)
    with pytest.raises(TypeError, match="Protocols cannot be instantiated"):
        typing.cast("Any", FetchResult)()

    class Partial:
        url = "u"
        status_code = 200
        content = b""
        headers: dict[str, str] = {}  # noqa: RUF012 - a class attribute is enough here
        duration_ms = 0.0

    assert not isinstance(Partial(), FetchResult)  # no error attribute
    Partial.error = None  # type: ignore[attr-defined]
    assert isinstance(Partial(), FetchResult)


def test_fetch_result_declaration_accepts_the_reference_result(reference: ModuleType) -> None:
    ref_fetcher = importlib.import_module("stageflow.websearch.fetcher")
    assert isinstance(ref_fetcher.FetchResult("https://a/"), FetchResult)


def test_extraction_result_declaration(reference: ModuleType) -> None:
    assert isinstance(LibraryExtractionResult(), ExtractionResult)
    ref_extractor = importlib.import_module("stageflow.websearch.extractor")
    assert isinstance(ref_extractor.ExtractionResult(), ExtractionResult)
    assert not isinstance(PageMetadata(), ExtractionResult)
    with pytest.raises(TypeError, match="Protocols cannot be instantiated"):
        typing.cast("Any", ExtractionResult)()


# -- the library's own components ----------------------------------------------------------


def test_library_fetchers_satisfy_the_protocol() -> None:
    mock: FetcherProtocol = MockFetcher()
    http: FetcherProtocol = HttpFetcher()
    assert isinstance(mock, FetcherProtocol)
    assert isinstance(http, FetcherProtocol)


def test_library_extractors_satisfy_the_protocol() -> None:
    default: ContentExtractorProtocol = DefaultContentExtractor()
    fallback: ContentExtractorProtocol = FallbackContentExtractor()
    assert isinstance(default, ContentExtractorProtocol)
    assert isinstance(fallback, ContentExtractorProtocol)
    result: ExtractionResult = default.extract("<html><body><p>Hi</p></body></html>")
    assert isinstance(result, ExtractionResult)


def test_library_navigators_satisfy_the_protocol() -> None:
    page: NavigatorProtocol = PageNavigator()
    fallback: NavigatorProtocol = FallbackNavigator()
    assert isinstance(page, NavigatorProtocol)
    assert isinstance(fallback, NavigatorProtocol)
