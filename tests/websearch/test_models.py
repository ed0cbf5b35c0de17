"""stageflow_trio.websearch.models: every value, method and property, and parity with the reference.

The differential tests build the same values with ``stageflow.websearch.models``
(the reference, 0.9.1) and compare ``to_dict()`` outputs, ``from_element`` URL
resolution and ``truncate`` cuts, on fixed and hypothesis-generated inputs.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import json
import math
import pickle
import re
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio.utils.frozen import FrozenDict, FrozenList
from stageflow_trio.websearch import models
from stageflow_trio.websearch.models import (
    ExtractedLink,
    NavigationAction,
    PageMetadata,
    PaginationInfo,
    WebPage,
)

CLASSES = (PageMetadata, ExtractedLink, NavigationAction, PaginationInfo, WebPage)


@pytest.fixture(scope="module")
def ref(reference: ModuleType) -> ModuleType:
    return importlib.import_module("stageflow.websearch.models")


def _plain(value: object) -> bool:
    """Whether ``value`` is built only of plain JSON types (no FrozenList/FrozenDict)."""
    if type(value) is dict:
        return all(type(k) is str and _plain(v) for k, v in value.items())
    if type(value) is list:
        return all(_plain(item) for item in value)
    return value is None or type(value) in (str, int, float, bool)


def _sample_page() -> WebPage:
    return WebPage(
        url="https://example.com/a",
        final_url="https://example.com/b",
        status_code=200,
        markdown="# Title\n\nBody.",
        plain_text="Title Body.",
        metadata=PageMetadata(title="Title", description="About", keywords=["k1", "k2"]),
        links=[
            ExtractedLink("https://example.com/x", "X", is_internal=True),
            ExtractedLink("https://other.org/y", "Y"),
            ExtractedLink("https://example.com/z", "Z", is_internal=True),
        ],
        navigation_actions=[
            NavigationAction(
                "pagination",
                "Next page",
                url="https://example.com/2",
                priority=1,
                metadata={"direction": "next"},
            ),
        ],
        pagination=PaginationInfo(
            current_page=1, next_url="https://example.com/2", page_urls=["https://example.com/2"]
        ),
        fetch_duration_ms=12.5,
        extract_duration_ms=3.0,
        fetched_at="2026-01-01T00:00:00+00:00",
        word_count=2,
    )


# -- the module's surface ----------------------------------------------------------


def test_all_matches_reference(ref: ModuleType) -> None:
    assert sorted(models.__all__) == sorted(ref.__all__)
    for name in models.__all__:
        assert getattr(models, name).__name__ == name


@pytest.mark.parametrize("name", [cls.__name__ for cls in CLASSES])
def test_fields_order_and_defaults_match_reference(ref: ModuleType, name: str) -> None:
    ours = attrs.fields(getattr(models, name))
    theirs = dataclasses.fields(getattr(ref, name))
    assert [f.name for f in ours] == [f.name for f in theirs]
    assert getattr(models, name).__match_args__ == getattr(ref, name).__match_args__
    for mine, their in zip(ours, theirs, strict=True):
        if their.default is not dataclasses.MISSING:
            assert mine.default == their.default, mine.name
        elif their.default_factory is not dataclasses.MISSING:
            assert isinstance(mine.default, attrs.Factory), mine.name  # type: ignore[arg-type]
            made, expected = mine.default.factory(), their.default_factory()
            if hasattr(expected, "to_dict"):
                made, expected = made.to_dict(), expected.to_dict()
            assert made == expected, mine.name
        else:
            assert mine.default is attrs.NOTHING, mine.name


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("PageMetadata", ("t", "d", "en", "a", "2020", "c", "img", ["k"], "article")),
        ("ExtractedLink", ("https://a/", "text", "title", "nofollow", True, "ctx")),
        ("NavigationAction", ("nav_link", "Home", "https://a/", "nav a", 3, {"k": 1})),
        ("PaginationInfo", (2, 5, "n", "p", ["u1", "u2"])),
    ],
)
def test_positional_construction_matches_reference(
    ref: ModuleType, name: str, args: tuple[Any, ...]
) -> None:
    assert getattr(models, name)(*args).to_dict() == getattr(ref, name)(*args).to_dict()


def test_webpage_positional_construction_matches_reference(ref: ModuleType) -> None:
    tail = (None, 3.0, 4.0, "2026-01-01T00:00:00+00:00", 7, "boom")
    ours = WebPage(
        "u",
        "f",
        404,
        "md",
        "pt",
        PageMetadata("t"),
        [ExtractedLink("l")],
        [NavigationAction("a", "b")],
        *tail,
    )
    theirs = ref.WebPage(
        "u",
        "f",
        404,
        "md",
        "pt",
        ref.PageMetadata("t"),
        [ref.ExtractedLink("l")],
        [ref.NavigationAction("a", "b")],
        *tail,
    )
    assert ours.to_dict() == theirs.to_dict()


# -- PageMetadata --------------------------------------------------------------------


def test_page_metadata_defaults_and_to_dict() -> None:
    meta = PageMetadata()
    assert meta.to_dict() == {
        "title": None,
        "description": None,
        "language": None,
        "author": None,
        "published_date": None,
        "canonical_url": None,
        "og_image": None,
        "keywords": [],
        "content_type": None,
    }
    assert type(meta.keywords) is FrozenList


def test_page_metadata_round_trip_and_plain_output() -> None:
    meta = PageMetadata(
        "T", "D", "fr", "Ann", "2024-05-01", "https://c/", "https://i/", ["a", "b"], "article"
    )
    data = meta.to_dict()
    assert data["keywords"] == ["a", "b"]
    assert type(data["keywords"]) is list
    assert data["keywords"] is not meta.keywords
    data["keywords"].append("c")  # the copy is the caller's
    assert meta.keywords == ["a", "b"]
    assert PageMetadata.from_dict(meta.to_dict()) == meta
    assert _plain(data)


def test_page_metadata_keywords_forms() -> None:
    assert PageMetadata(keywords=("a", "b")).keywords == ["a", "b"]
    assert PageMetadata(keywords=(k for k in "ab")).keywords == ["a", "b"]
    assert PageMetadata(keywords=None).keywords == []
    frozen = FrozenList(["x"])
    assert PageMetadata(keywords=frozen).keywords is frozen
    assert PageMetadata.from_dict({"keywords": None}).keywords == []
    assert PageMetadata.from_dict({}) == PageMetadata()


def test_page_metadata_keywords_are_read_only() -> None:
    source = ["a"]
    meta = PageMetadata(keywords=source)
    source.append("b")  # a copy was taken
    assert meta.keywords == ["a"]
    with pytest.raises(TypeError, match="FrozenList is immutable"):
        meta.keywords.append("c")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"title": 1}, "PageMetadata: title must be a str or None; got int"),
        ({"content_type": b"x"}, "PageMetadata: content_type must be a str or None; got bytes"),
        ({"og_image": ["x"]}, "PageMetadata: og_image must be a str or None; got list"),
        ({"keywords": "a,b"}, "PageMetadata: keywords must be a list of str; got str"),
        ({"keywords": {"a": 1}}, "PageMetadata: keywords must be a list of str; got dict"),
        ({"keywords": 3}, "PageMetadata: keywords must be a list of str; got int"),
        ({"keywords": ["a", 2]}, r"PageMetadata: keywords\[1\] must be a str; got int"),
    ],
)
def test_page_metadata_rejects(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError, match=f"^{message}$"):
        PageMetadata(**kwargs)


def test_from_dict_rejects_non_mapping() -> None:
    for cls in CLASSES:
        with pytest.raises(
            TypeError, match=rf"^{cls.__name__}\.from_dict: data must be a dict; got list$"
        ):
            cls.from_dict([])  # type: ignore[arg-type]


# -- ExtractedLink ---------------------------------------------------------------------


def test_extracted_link_defaults_and_round_trip() -> None:
    link = ExtractedLink("https://a/")
    assert link.to_dict() == {
        "url": "https://a/",
        "text": "",
        "title": None,
        "rel": None,
        "is_internal": False,
        "context": None,
    }
    full = ExtractedLink("https://a/", "t", "ti", "nofollow", True, "ctx")
    assert ExtractedLink.from_dict(full.to_dict()) == full
    assert ExtractedLink.from_dict({"url": "u"}) == ExtractedLink("u")


def test_extracted_link_from_dict_needs_url() -> None:
    with pytest.raises(KeyError, match="url"):
        ExtractedLink.from_dict({"text": "x"})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"url": None}, "ExtractedLink: url must be a str; got NoneType"),
        ({"url": "u", "text": None}, "ExtractedLink: text must be a str; got NoneType"),
        ({"url": "u", "rel": 1}, "ExtractedLink: rel must be a str or None; got int"),
        ({"url": "u", "title": 1.0}, "ExtractedLink: title must be a str or None; got float"),
        ({"url": "u", "context": []}, "ExtractedLink: context must be a str or None; got list"),
        ({"url": "u", "is_internal": 1}, "ExtractedLink: is_internal must be a bool; got int"),
        ({"url": "u", "is_internal": "yes"}, "ExtractedLink: is_internal must be a bool; got str"),
    ],
)
def test_extracted_link_rejects(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError, match=f"^{message}$"):
        ExtractedLink(**kwargs)


@pytest.mark.parametrize(
    ("href", "base_url", "url", "internal"),
    [
        ("/about", "https://ex.com/a/b", "https://ex.com/about", True),
        ("c", "https://ex.com/a/b", "https://ex.com/a/c", True),
        ("../up", "https://ex.com/a/b/c", "https://ex.com/a/up", True),
        ("?q=1", "https://ex.com/p", "https://ex.com/p?q=1", True),
        ("#top", "https://ex.com/p", "https://ex.com/p#top", True),
        ("https://other.org/x", "https://ex.com/", "https://other.org/x", False),
        ("http://ex.com/x", "https://ex.com/", "http://ex.com/x", True),  # scheme ignored
        ("https://ex.com:8443/x", "https://ex.com/", "https://ex.com:8443/x", False),  # port counts
        ("//cdn.ex.com/lib.js", "https://ex.com/", "https://cdn.ex.com/lib.js", False),
        ("//ex.com/x", "http://ex.com/", "https://ex.com/x", True),
        ("//cdn.ex.com/x", None, "https://cdn.ex.com/x", False),
        ("/relative", None, "/relative", False),
        ("/relative", "", "/relative", False),  # an empty base is no base
        ("mailto:a@b.c", "https://ex.com/", "mailto:a@b.c", False),
        ("", "https://ex.com/p?x", "https://ex.com/p?x", True),
    ],
)
def test_from_element_resolution(
    ref: ModuleType, href: str, base_url: str | None, url: str, internal: bool
) -> None:
    link = ExtractedLink.from_element(href, "  Text \n", base_url=base_url)
    assert (link.url, link.is_internal, link.text) == (url, internal, "Text")
    theirs = ref.ExtractedLink.from_element(href, "  Text \n", base_url=base_url)
    assert link.to_dict() == theirs.to_dict()


def test_from_element_keeps_attributes() -> None:
    link = ExtractedLink.from_element(
        "/x", "x", base_url="https://a/", title="T", rel="next", context="around"
    )
    assert (link.title, link.rel, link.context) == ("T", "next", "around")


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((None, "t"), {}, "ExtractedLink.from_element: href must be a str; got NoneType"),
        (("/x", None), {}, "ExtractedLink.from_element: text must be a str; got NoneType"),
        (
            ("/x", "t"),
            {"base_url": b"https://a/"},
            "ExtractedLink.from_element: base_url must be a str or None; got bytes",
        ),
        (("/x", "t"), {"rel": 5}, "ExtractedLink: rel must be a str or None; got int"),
    ],
)
def test_from_element_rejects(args: tuple[Any, ...], kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError, match=f"^{message}$"):
        ExtractedLink.from_element(*args, **kwargs)


def test_from_element_bad_url_raises_like_reference(ref: ModuleType) -> None:
    for href, base in (("http://[bad/x", "https://ex.com/"), ("/x", "http://[::1/")):
        with pytest.raises(ValueError, match="Invalid IPv6 URL") as ours:
            ExtractedLink.from_element(href, "t", base_url=base)
        with pytest.raises(ValueError, match="Invalid IPv6 URL") as theirs:
            ref.ExtractedLink.from_element(href, "t", base_url=base)
        assert str(ours.value) == str(theirs.value)


_URL_CHARS = st.sampled_from([*list("abcXYZ09-._~:/?#[]@!$&'()*+,;=% "), "..", "//", "\\", "é"])
_HREFS = st.one_of(
    st.sampled_from(
        [
            "",
            "/",
            "/a/b",
            "a",
            "../b",
            "./c",
            "?q=1",
            "#f",
            "//h.com/x",
            "//h.com:80",
            "http://h.com/x",
            "https://H.com",
            "https://h.com/",
            "mailto:x@y",
            "javascript:void(0)",
            "HTTP://h.com",
            " /x",
            "ftp://h.com/f",
            "data:text/plain,hi",
        ]
    ),
    st.lists(_URL_CHARS, max_size=8).map("".join),
)
_BASES = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "",
            "https://ex.com",
            "https://ex.com/",
            "https://ex.com/a/b",
            "http://ex.com:8080/a/",
            "https://user@ex.com/x?y#z",
            "/relative/base",
            "ex.com",
            "https://h.com/",
        ]
    ),
    st.lists(_URL_CHARS, max_size=8).map(lambda parts: "https://ex.com/" + "".join(parts)),
)


def _outcome(call: Any) -> tuple[str, Any]:
    try:
        return ("ok", call().to_dict())
    except ValueError as exc:
        return ("ValueError", str(exc))


@given(href=_HREFS, text=st.text(max_size=10), base_url=_BASES)
def test_from_element_matches_reference(
    ref: ModuleType, href: str, text: str, base_url: str | None
) -> None:
    ours = _outcome(lambda: ExtractedLink.from_element(href, text, base_url=base_url))
    theirs = _outcome(lambda: ref.ExtractedLink.from_element(href, text, base_url=base_url))
    assert ours == theirs


# -- NavigationAction ----------------------------------------------------------------


def test_navigation_action_defaults_and_round_trip() -> None:
    action = NavigationAction("nav_link", "Home")
    assert action.to_dict() == {
        "action_type": "nav_link",
        "label": "Home",
        "url": None,
        "selector": None,
        "priority": 5,
        "metadata": {},
    }
    full = NavigationAction("pagination", "Next", "https://a/2", "a.next", 1, {"direction": "next"})
    data = full.to_dict()
    assert type(data["metadata"]) is dict
    assert data["metadata"] == {"direction": "next"}
    assert NavigationAction.from_dict(data) == full
    assert NavigationAction.from_dict({"action_type": "x", "label": "y"}) == NavigationAction(
        "x", "y"
    )


def test_navigation_action_metadata_is_read_only_copy() -> None:
    source: dict[str, Any] = {"direction": "next"}
    action = NavigationAction("pagination", "Next", metadata=source)
    source["direction"] = "prev"
    assert action.metadata == {"direction": "next"}
    assert type(action.metadata) is FrozenDict
    with pytest.raises(TypeError, match="FrozenDict is immutable"):
        action.metadata["x"] = 1
    out = action.to_dict()["metadata"]
    out["x"] = 1
    assert "x" not in action.metadata
    assert NavigationAction("a", "b", metadata=None).metadata == {}
    assert (
        NavigationAction.from_dict({"action_type": "a", "label": "b", "metadata": None}).metadata
        == {}
    )


@pytest.mark.parametrize("key", ["action_type", "label"])
def test_navigation_action_from_dict_required(key: str) -> None:
    data = {"action_type": "a", "label": "b"}
    del data[key]
    with pytest.raises(KeyError, match=key):
        NavigationAction.from_dict(data)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"action_type": None}, "NavigationAction: action_type must be a str; got NoneType"),
        ({"label": 3}, "NavigationAction: label must be a str; got int"),
        ({"url": 3}, "NavigationAction: url must be a str or None; got int"),
        ({"selector": 3}, "NavigationAction: selector must be a str or None; got int"),
        ({"priority": "1"}, "NavigationAction: priority must be an int; got str"),
        ({"priority": True}, "NavigationAction: priority must be an int; got bool"),
        ({"priority": 1.0}, "NavigationAction: priority must be an int; got float"),
        ({"metadata": [("a", 1)]}, "NavigationAction: metadata must be a dict or None; got list"),
    ],
)
def test_navigation_action_rejects(kwargs: dict[str, Any], message: str) -> None:
    values = {"action_type": "a", "label": "b"} | kwargs
    with pytest.raises(TypeError, match=f"^{message}$"):
        NavigationAction(**values)


def test_navigation_action_accepts_any_int_priority() -> None:
    assert NavigationAction("a", "b", priority=-3).priority == -3
    assert NavigationAction("custom", "b").action_type == "custom"


# -- PaginationInfo --------------------------------------------------------------------


def test_pagination_info_defaults_and_properties() -> None:
    info = PaginationInfo()
    assert info.to_dict() == {
        "current_page": 1,
        "total_pages": None,
        "next_url": None,
        "prev_url": None,
        "page_urls": [],
    }
    assert (info.has_next, info.has_prev) == (False, False)
    both = PaginationInfo(2, 3, next_url="n", prev_url="p")
    assert (both.has_next, both.has_prev) == (True, True)
    assert PaginationInfo(next_url="").has_next  # set, even if empty, as in the reference
    assert not PaginationInfo(next_url="n").has_prev


def test_pagination_info_round_trip() -> None:
    info = PaginationInfo(3, 9, "n", "p", ["a", "b"])
    data = info.to_dict()
    assert type(data["page_urls"]) is list
    assert data["page_urls"] is not info.page_urls
    assert PaginationInfo.from_dict(data) == info
    assert PaginationInfo.from_dict({}) == PaginationInfo()
    assert PaginationInfo.from_dict({"page_urls": None}).page_urls == []
    assert PaginationInfo(current_page=0).current_page == 0  # the navigator can read a "0"


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"current_page": "2"}, TypeError, "PaginationInfo: current_page must be an int; got str"),
        (
            {"current_page": None},
            TypeError,
            "PaginationInfo: current_page must be an int; got NoneType",
        ),
        (
            {"current_page": -1},
            ValueError,
            "PaginationInfo: current_page must be at least 0; got -1",
        ),
        ({"total_pages": 2.0}, TypeError, "PaginationInfo: total_pages must be an int; got float"),
        ({"total_pages": -2}, ValueError, "PaginationInfo: total_pages must be at least 0; got -2"),
        ({"next_url": 1}, TypeError, "PaginationInfo: next_url must be a str or None; got int"),
        ({"prev_url": 1}, TypeError, "PaginationInfo: prev_url must be a str or None; got int"),
        (
            {"page_urls": "abc"},
            TypeError,
            "PaginationInfo: page_urls must be a list of str; got str",
        ),
        (
            {"page_urls": [None]},
            TypeError,
            r"PaginationInfo: page_urls\[0\] must be a str; got NoneType",
        ),
    ],
)
def test_pagination_info_rejects(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=f"^{message}$"):
        PaginationInfo(**kwargs)


# -- WebPage: properties -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error", "success"),
    [
        (200, None, True),
        (399, None, True),
        (301, None, True),
        (199, None, False),
        (400, None, False),
        (0, None, False),
        (500, None, False),
        (200, "boom", False),
        (200, "", False),
    ],
)
def test_webpage_success(ref: ModuleType, status: int, error: str | None, success: bool) -> None:
    assert WebPage("u", status_code=status, error=error).success is success
    assert ref.WebPage("u", status_code=status, error=error).success is success


def test_webpage_title_description() -> None:
    page = _sample_page()
    assert (page.title, page.description) == ("Title", "About")
    assert (WebPage("u").title, WebPage("u").description) == (None, None)


def test_webpage_internal_external_links() -> None:
    page = _sample_page()
    assert [link.url for link in page.internal_links] == [
        "https://example.com/x",
        "https://example.com/z",
    ]
    assert [link.url for link in page.external_links] == ["https://other.org/y"]
    assert type(page.internal_links) is list
    assert type(page.external_links) is list
    page.internal_links.clear()  # a new list each time
    assert len(page.internal_links) == 2


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, ["x", "y", "z"]),
        ({"internal_only": True}, ["x", "z"]),
        ({"external_only": True}, ["y"]),
        ({"internal_only": True, "external_only": True}, ["x", "z"]),  # internal wins
        ({"limit": 2}, ["x", "y"]),
        ({"limit": 0}, []),
        ({"limit": -1}, ["x", "y"]),
        ({"limit": 10}, ["x", "y", "z"]),
        ({"internal_only": True, "limit": 1}, ["x"]),
        ({"external_only": True, "limit": 5}, ["y"]),
        ({"selector": "main a"}, ["x", "y", "z"]),  # ignored
    ],
)
def test_webpage_extract_links(
    ref: ModuleType, kwargs: dict[str, Any], expected: list[str]
) -> None:
    page = _sample_page()
    links = page.extract_links(**kwargs)
    assert [link.url.rsplit("/", 1)[1] for link in links] == expected
    assert type(links) is list
    theirs = ref.WebPage.from_dict(page.to_dict()).extract_links(**kwargs)
    assert [link.to_dict() for link in links] == [link.to_dict() for link in theirs]


def test_webpage_extract_links_returns_a_new_list() -> None:
    page = _sample_page()
    links = page.extract_links()
    assert links == list(page.links)
    assert type(links) is list  # not the page's own FrozenList
    links.clear()
    assert len(page.links) == 3


def test_webpage_extract_links_rejects_bad_limit() -> None:
    with pytest.raises(TypeError, match=r"^WebPage\.extract_links: limit must be an int; got str$"):
        _sample_page().extract_links(limit="2")  # type: ignore[arg-type]


# -- WebPage: construction ---------------------------------------------------------------


def test_webpage_defaults() -> None:
    page = WebPage("u")
    assert page.to_dict() == {
        "url": "u",
        "final_url": None,
        "status_code": 0,
        "markdown": "",
        "plain_text": "",
        "metadata": PageMetadata().to_dict(),
        "links": [],
        "navigation_actions": [],
        "pagination": None,
        "fetch_duration_ms": 0.0,
        "extract_duration_ms": 0.0,
        "fetched_at": None,
        "word_count": 0,
        "error": None,
    }
    assert page.metadata == PageMetadata()


def test_webpage_lists_are_read_only_copies() -> None:
    link = ExtractedLink("https://a/")
    source = [link]
    page = WebPage("u", links=source, navigation_actions=(NavigationAction("a", "b"),))
    source.append(ExtractedLink("https://b/"))
    assert page.links == [link]
    assert type(page.links) is FrozenList
    assert type(page.navigation_actions) is FrozenList
    with pytest.raises(TypeError, match="FrozenList is immutable"):
        page.links.append(link)
    assert WebPage("u", links=None).links == []
    assert WebPage("u", links=(link,)) == WebPage("u", links=[link])


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"url": None}, TypeError, "WebPage: url must be a str; got NoneType"),
        ({"final_url": 1}, TypeError, "WebPage: final_url must be a str or None; got int"),
        ({"status_code": "200"}, TypeError, "WebPage: status_code must be an int; got str"),
        ({"status_code": 200.0}, TypeError, "WebPage: status_code must be an int; got float"),
        ({"status_code": -1}, ValueError, "WebPage: status_code must be at least 0; got -1"),
        ({"markdown": None}, TypeError, "WebPage: markdown must be a str; got NoneType"),
        ({"plain_text": b""}, TypeError, "WebPage: plain_text must be a str; got bytes"),
        ({"metadata": None}, TypeError, "WebPage: metadata must be a PageMetadata; got NoneType"),
        ({"metadata": {}}, TypeError, "WebPage: metadata must be a PageMetadata; got dict"),
        (
            {"links": "https://a/"},
            TypeError,
            "WebPage: links must be a list of ExtractedLink; got str",
        ),
        (
            {"links": [{"url": "u"}]},
            TypeError,
            r"WebPage: links\[0\] must be an ExtractedLink; got dict",
        ),
        (
            {"navigation_actions": [ExtractedLink("u")]},
            TypeError,
            r"WebPage: navigation_actions\[0\] must be a NavigationAction; got ExtractedLink",
        ),
        (
            {"navigation_actions": 5},
            TypeError,
            "WebPage: navigation_actions must be a list of NavigationAction; got int",
        ),
        (
            {"pagination": {}},
            TypeError,
            "WebPage: pagination must be a PaginationInfo or None; got dict",
        ),
        (
            {"fetch_duration_ms": "1"},
            TypeError,
            "WebPage: fetch_duration_ms must be a number; got str",
        ),
        (
            {"fetch_duration_ms": -1.0},
            ValueError,
            "WebPage: fetch_duration_ms must be >= 0; got -1.0",
        ),
        (
            {"extract_duration_ms": math.nan},
            ValueError,
            "WebPage: extract_duration_ms must be a finite number; got nan",
        ),
        (
            {"extract_duration_ms": math.inf},
            ValueError,
            "WebPage: extract_duration_ms must be a finite number; got inf",
        ),
        (
            {"fetched_at": datetime(2020, 1, 1)},
            TypeError,
            "WebPage: fetched_at must be a str or None; got datetime",
        ),
        ({"word_count": -1}, ValueError, "WebPage: word_count must be at least 0; got -1"),
        ({"word_count": None}, TypeError, "WebPage: word_count must be an int; got NoneType"),
        (
            {"error": ValueError("x")},
            TypeError,
            "WebPage: error must be a str or None; got ValueError",
        ),
    ],
)
def test_webpage_rejects(kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    values = {"url": "u"} | kwargs
    with pytest.raises(error, match=f"^{message}$"):
        WebPage(**values)


def test_webpage_accepts_int_durations_and_str_subclasses(ref: ModuleType) -> None:
    class Text(str):
        pass

    page = WebPage(Text("u"), fetch_duration_ms=5, extract_duration_ms=0, markdown=Text("m"))
    assert (
        page.to_dict()
        == ref.WebPage("u", fetch_duration_ms=5, extract_duration_ms=0, markdown="m").to_dict()
    )


# -- WebPage: serialization ----------------------------------------------------------------


def test_webpage_to_dict_nested_and_plain(ref: ModuleType) -> None:
    page = _sample_page()
    data = page.to_dict()
    assert _plain(data)
    assert data["metadata"] == page.metadata.to_dict()
    assert data["links"] == [link.to_dict() for link in page.links]
    assert data["navigation_actions"] == [a.to_dict() for a in page.navigation_actions]
    assert data["pagination"] == page.pagination.to_dict()  # type: ignore[union-attr]
    assert json.loads(json.dumps(data)) == data
    assert ref.WebPage.from_dict(data).to_dict() == data


def test_webpage_from_dict_round_trip() -> None:
    page = _sample_page()
    assert WebPage.from_dict(page.to_dict()) == page
    assert WebPage.from_dict(json.loads(json.dumps(page.to_dict()))) == page


def test_webpage_from_dict_missing_and_null_parts(ref: ModuleType) -> None:
    assert WebPage.from_dict({"url": "u"}) == WebPage("u")
    empty: dict[str, Any] | None
    for empty in ({}, None):
        assert WebPage.from_dict({"url": "u", "pagination": empty}).pagination is None
        assert ref.WebPage.from_dict({"url": "u", "pagination": empty}).pagination is None
    nulls = {"url": "u", "metadata": None, "links": None, "navigation_actions": None}
    assert WebPage.from_dict(nulls) == WebPage("u")
    with pytest.raises(KeyError, match="url"):
        WebPage.from_dict({})
    with pytest.raises(KeyError, match="url"):
        WebPage.from_dict({"url": "u", "links": [{"text": "no url"}]})


def test_webpage_from_dict_rejects_bad_lists() -> None:
    with pytest.raises(
        TypeError,
        match=r"""^WebPage\.from_dict: data\['links'\] must be a list of dicts; got str$""",
    ):
        WebPage.from_dict({"url": "u", "links": "https://a/"})
    with pytest.raises(
        TypeError, match=r"^ExtractedLink\.from_dict: data must be a dict; got str$"
    ):
        WebPage.from_dict({"url": "u", "links": ["https://a/"]})
    with pytest.raises(TypeError, match=r"^PageMetadata\.from_dict: data must be a dict; got str$"):
        WebPage.from_dict({"url": "u", "metadata": "title"})


# -- WebPage: error_result and truncate ----------------------------------------------------


def test_error_result(ref: ModuleType) -> None:
    before = datetime.now(UTC)
    page = WebPage.error_result("https://a/", "Timeout", 12.5)
    after = datetime.now(UTC)
    assert page.fetched_at is not None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00", page.fetched_at)
    assert before <= datetime.fromisoformat(page.fetched_at) <= after
    assert (page.url, page.error, page.status_code, page.fetch_duration_ms) == (
        "https://a/",
        "Timeout",
        0,
        12.5,
    )
    assert not page.success
    theirs = ref.WebPage.error_result("https://a/", "Timeout", 12.5).to_dict()
    ours = page.to_dict()
    assert ours.pop("fetched_at")
    assert theirs.pop("fetched_at")
    assert ours == theirs
    assert WebPage.error_result("u", "e").fetch_duration_ms == 0.0


def test_error_result_subclass_and_errors() -> None:
    @attrs.frozen
    class MyPage(WebPage):
        pass

    assert type(MyPage.error_result("u", "e")) is MyPage
    with pytest.raises(TypeError, match=r"^WebPage: error must be a str or None; got int$"):
        WebPage.error_result("u", 404)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^WebPage: fetch_duration_ms must be >= 0; got -5$"):
        WebPage.error_result("u", "e", -5)


def test_truncate_keeps_a_page_whose_markdown_fits() -> None:
    page = WebPage("u", markdown="short", plain_text="a much longer plain text " * 10)
    assert page.truncate(10) is page
    assert page.truncate(5) is page
    empty = WebPage("u", plain_text="text")
    assert empty.truncate(0) is empty


def test_truncate_at_paragraph_and_sentence() -> None:
    markdown = "First paragraph here.\n\nSecond one is longer than that.\n\nThird."
    plain = "One sentence here. Two sentences here! Three here? Four."
    page = attrs.evolve(_sample_page(), markdown=markdown, plain_text=plain)
    cut = page.truncate(40)
    assert cut.markdown == "First paragraph here.\n\n[Content truncated...]"
    assert cut.plain_text == "One sentence here. Two sentences here!"
    # Every other field is kept as it was.
    assert attrs.evolve(cut, markdown=markdown, plain_text=plain) == page


def test_truncate_hard_cut_without_a_late_break() -> None:
    page = WebPage("u", markdown="ab\n\n" + "x" * 50, plain_text="A. " + "y" * 50)
    cut = page.truncate(20)
    assert cut.markdown == "ab\n\n" + "x" * 16  # the only break is in the first half
    assert cut.plain_text == "A. " + "y" * 17


def test_truncate_keeps_subclass_and_rejects_bad_limits() -> None:
    @attrs.frozen
    class MyPage(WebPage):
        pass

    page = MyPage("u", markdown="x" * 30)
    assert type(page.truncate(10)) is MyPage
    assert page.truncate(0).markdown == ""
    with pytest.raises(
        ValueError, match=r"^WebPage\.truncate: max_chars must be at least 0; got -1$"
    ):
        page.truncate(-1)
    with pytest.raises(
        TypeError, match=r"^WebPage\.truncate: max_chars must be an int; got float$"
    ):
        page.truncate(10.5)  # type: ignore[arg-type]


_TRUNCATE_TEXT = st.lists(
    st.sampled_from(["a", "b", " ", ".", "!", "?", "\n", "\n\n", ". "]), max_size=40
).map("".join)


@given(markdown=_TRUNCATE_TEXT, plain=_TRUNCATE_TEXT, max_chars=st.integers(0, 45))
def test_truncate_matches_reference(
    ref: ModuleType, markdown: str, plain: str, max_chars: int
) -> None:
    ours = WebPage("u", markdown=markdown, plain_text=plain)
    theirs = ref.WebPage("u", markdown=markdown, plain_text=plain)
    ours_cut, theirs_cut = ours.truncate(max_chars), theirs.truncate(max_chars)
    assert ours_cut.to_dict() == theirs_cut.to_dict()
    assert (ours_cut is ours) == (theirs_cut is theirs)


# -- every value: frozen, equal, hashable, picklable, copyable --------------------------------


def _samples() -> list[Any]:
    page = _sample_page()
    return [page.metadata, page.links[0], page.navigation_actions[0], page.pagination, page]


@pytest.mark.parametrize("index", range(5))
def test_values_are_frozen(index: int) -> None:
    value = _samples()[index]
    assert not hasattr(value, "__dict__")  # slots, as the reference's
    first = attrs.fields(type(value))[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, first, None)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        delattr(value, first)


@pytest.mark.parametrize("index", range(5))
def test_values_pickle_and_copy(index: int) -> None:
    value = _samples()[index]
    for clone in (
        pickle.loads(pickle.dumps(value)),
        copy.copy(value),
        copy.deepcopy(value),
    ):
        assert clone == value
        assert type(clone) is type(value)
        assert clone.to_dict() == value.to_dict()
        assert hash(clone) == hash(value)
    deep = copy.deepcopy(value)
    for field in attrs.fields(type(value)):
        if type(getattr(value, field.name)) in (FrozenList, FrozenDict):
            assert type(getattr(deep, field.name)) is type(getattr(value, field.name))


def test_equality_and_hash() -> None:
    assert _sample_page() == _sample_page()
    assert hash(_sample_page()) == hash(_sample_page())
    assert _sample_page() != attrs.evolve(_sample_page(), word_count=3)
    assert PageMetadata(keywords=["a"]) == PageMetadata(keywords=("a",))
    assert {ExtractedLink("u"), ExtractedLink("u")} == {ExtractedLink("u")}
    with pytest.raises(TypeError, match="unhashable"):
        hash(NavigationAction("a", "b", metadata={"list": [1]}))


# -- differential: generated values ---------------------------------------------------------

_TEXT = st.text(max_size=12)
_OPT_TEXT = st.none() | _TEXT
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10) | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=6,
)
_METADATA = st.fixed_dictionaries(
    {},
    optional={
        "title": _OPT_TEXT,
        "description": _OPT_TEXT,
        "language": _OPT_TEXT,
        "author": _OPT_TEXT,
        "published_date": _OPT_TEXT,
        "canonical_url": _OPT_TEXT,
        "og_image": _OPT_TEXT,
        "keywords": st.lists(_TEXT, max_size=3),
        "content_type": _OPT_TEXT,
    },
)
_LINK = st.fixed_dictionaries(
    {"url": _TEXT},
    optional={
        "text": _TEXT,
        "title": _OPT_TEXT,
        "rel": _OPT_TEXT,
        "is_internal": st.booleans(),
        "context": _OPT_TEXT,
    },
)
_ACTION = st.fixed_dictionaries(
    {"action_type": _TEXT, "label": _TEXT},
    optional={
        "url": _OPT_TEXT,
        "selector": _OPT_TEXT,
        "priority": st.integers(-5, 10),
        "metadata": st.dictionaries(_TEXT, _JSON, max_size=3),
    },
)
_PAGINATION = st.fixed_dictionaries(
    {},
    optional={
        "current_page": st.integers(0, 50),
        "total_pages": st.none() | st.integers(0, 50),
        "next_url": _OPT_TEXT,
        "prev_url": _OPT_TEXT,
        "page_urls": st.lists(_TEXT, max_size=3),
    },
)
_DURATION = st.integers(0, 10**6) | st.floats(0, 1e9, allow_nan=False, allow_infinity=False)
_PAGE = st.fixed_dictionaries(
    {"url": _TEXT},
    optional={
        "final_url": _OPT_TEXT,
        "status_code": st.integers(0, 599),
        "markdown": _TEXT,
        "plain_text": _TEXT,
        "metadata": _METADATA,
        "links": st.lists(_LINK, max_size=3),
        "navigation_actions": st.lists(_ACTION, max_size=3),
        "pagination": st.none() | _PAGINATION,
        "fetch_duration_ms": _DURATION,
        "extract_duration_ms": _DURATION,
        "fetched_at": _OPT_TEXT,
        "word_count": st.integers(0, 10**6),
        "error": _OPT_TEXT,
    },
)


@given(data=_PAGE)
def test_webpage_from_dict_to_dict_matches_reference(ref: ModuleType, data: dict[str, Any]) -> None:
    ours = WebPage.from_dict(data)
    theirs = ref.WebPage.from_dict(data)
    out = ours.to_dict()
    assert out == theirs.to_dict()
    assert _plain(out)
    assert WebPage.from_dict(out) == ours
    assert WebPage.from_dict(theirs.to_dict()) == ours
    assert ours.success is theirs.success
    assert (ours.title, ours.description) == (theirs.title, theirs.description)
    assert [x.to_dict() for x in ours.internal_links] == [
        x.to_dict() for x in theirs.internal_links
    ]
    assert [x.to_dict() for x in ours.external_links] == [
        x.to_dict() for x in theirs.external_links
    ]
    if ours.pagination is not None:
        assert (ours.pagination.has_next, ours.pagination.has_prev) == (
            theirs.pagination.has_next,
            theirs.pagination.has_prev,
        )


@given(meta=_METADATA, link=_LINK, action=_ACTION, pagination=_PAGINATION)
def test_values_built_from_kwargs_match_reference(
    ref: ModuleType,
    meta: dict[str, Any],
    link: dict[str, Any],
    action: dict[str, Any],
    pagination: dict[str, Any],
) -> None:
    for name, kwargs in (
        ("PageMetadata", meta),
        ("ExtractedLink", link),
        ("NavigationAction", action),
        ("PaginationInfo", pagination),
    ):
        ours = getattr(models, name)(**kwargs)
        theirs = getattr(ref, name)(**kwargs)
        assert ours.to_dict() == theirs.to_dict()
        assert getattr(models, name).from_dict(theirs.to_dict()) == ours
        assert pickle.loads(pickle.dumps(ours)) == ours
