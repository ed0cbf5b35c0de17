"""Audit 25: three gaps left in stageflow_trio.websearch "as the reference".

1. ``<base href>`` was ignored: the extractors' links and markdown, the
   navigators' pagination, menu, breadcrumb and content links, and so the
   crawls (``WebSearchClient.crawl``, ``map_site``, ``search_and_extract``)
   resolved relative links against the page's URL, where a browser resolves
   them against the document's base URL (the first ``<base>`` with an
   ``href``, resolved against the page's URL; an href that cannot be parsed,
   or a ``data:`` / ``javascript:`` one, leaves the page's URL). A crawler
   went to wrong pages. Fixed through one helper
   (``stageflow_trio.websearch._baseurl``), on Modest, lexbor and the regex
   fallbacks; whether a link is internal is still decided by the page's host.
   The differential tests give the reference the document's base URL as its
   ``base_url`` (test_extractor.reference_base_url). Parity row.
2. ``SiteMap.depth_reached`` was always ``max_depth``. The reference's own
   docstring says "Maximum depth reached", so this is a bug copied, not a
   choice: it is now the depth of the deepest page crawled (0 for the start
   page alone; less than ``max_depth`` when the site runs out of links or
   ``max_pages`` stops the crawl; a failed page counts, it was fetched).
   Parity row.
3. ``NavigationConfig.min_nav_links`` was accepted and never read. The
   reference documents it ("Minimum links to consider as navigation", 0.9.1
   and 1.2.0 alike, never read in either): it now applies. A page whose menu
   selectors find fewer distinct links has no menu (no ``nav_links``, no menu
   actions; content links take the room); 0 or 1 gives the reference's
   answers. The differential tests give the reference no menu selectors on
   such pages (test_navigator.reference_view). Parity row.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable
from typing import Any

import pytest

from stageflow_trio.websearch import create_mock_client, map_site, search_and_extract
from stageflow_trio.websearch._baseurl import document_base, markup_base_href
from stageflow_trio.websearch.extractor import (
    DefaultContentExtractor,
    FallbackContentExtractor,
)
from stageflow_trio.websearch.models import ExtractedLink
from stageflow_trio.websearch.navigator import (
    FallbackNavigator,
    NavigationConfig,
    PageNavigator,
)
from tests.fakes import import_reference
from tests.websearch.test_extractor_lexbor import backend
from tests.websearch.test_navigator import _ref_result

import_reference()
ref_extractor: Any = importlib.import_module("stageflow.websearch.extractor")
ref_client: Any = importlib.import_module("stageflow.websearch.client")
ref_run_utils: Any = importlib.import_module("stageflow.websearch.run_utils")

PAGE = "https://site.test/docs/guide/page.html"
HTML_HEADERS = {"content-type": "text/html"}


# --- 1. <base href> -----------------------------------------------------------------


def _page(head: str = "", body_extra: str = "") -> str:
    return (
        f"<html><head>{head}</head><body><main><p>Read the "
        '<a href="intro.html">intro</a>, the <a href="/abs">root page</a>, '
        '<a href="https://else.test/x">elsewhere</a> and '
        '<a href="//cdn.test/lib.js">a file</a>.</p></main>'
        f"{body_extra}</body></html>"
    )


def _extract_links(kind: str, html: str, base_url: str | None) -> list[tuple[str, bool]]:
    if kind == "fallback":
        links = FallbackContentExtractor().extract(html, base_url=base_url).links
    else:
        with backend(kind):
            result = DefaultContentExtractor().extract(html, base_url=base_url)
            assert result.links == DefaultContentExtractor().extract_links(html, base_url=base_url)
            links = result.links
    return [(link.url, link.is_internal) for link in links]


EXTRACTORS = ["modest", "lexbor", "fallback"]

# (head, intro's URL, root page's URL): what a browser resolves them to on PAGE.
BASES = {
    "none": ("", "https://site.test/docs/guide/intro.html", "https://site.test/abs"),
    "relative": (
        '<base href="/docs/v2/">',
        "https://site.test/docs/v2/intro.html",
        "https://site.test/abs",
    ),
    "relative_to_page": (
        '<base href="../v3/index.html">',
        "https://site.test/docs/v3/intro.html",
        "https://site.test/abs",
    ),
    "absolute": (
        '<base href="https://mirror.test/root/">',
        "https://mirror.test/root/intro.html",
        "https://mirror.test/abs",
    ),
    "protocol_relative": (
        '<base href="//mirror.test/p/">',
        "https://mirror.test/p/intro.html",
        "https://mirror.test/abs",
    ),
    "without_href": (
        '<base target="_blank">',
        "https://site.test/docs/guide/intro.html",
        "https://site.test/abs",
    ),
    "two_bases": (
        '<base target="_top"><base href="/first/"><base href="/second/">',
        "https://site.test/first/intro.html",
        "https://site.test/abs",
    ),
    "unparsable": (
        '<base href="http://[::1/x/">',
        "https://site.test/docs/guide/intro.html",
        "https://site.test/abs",
    ),
    "javascript": (
        '<base href="javascript:alert(1)">',
        "https://site.test/docs/guide/intro.html",
        "https://site.test/abs",
    ),
    "empty_href": (
        '<base href="">',
        "https://site.test/docs/guide/intro.html",
        "https://site.test/abs",
    ),
    "spaced_upper_case": (
        "<BASE HREF=' /docs/v2/ '>",
        "https://site.test/docs/v2/intro.html",
        "https://site.test/abs",
    ),
}


@pytest.mark.parametrize("kind", EXTRACTORS)
@pytest.mark.parametrize("case", sorted(BASES))
def test_extractor_links_resolve_against_the_document_base(kind: str, case: str) -> None:
    head, intro, root = BASES[case]
    links = _extract_links(kind, _page(head), PAGE)
    # Internal means on the page's host, whatever the base's.
    assert links == [
        (intro, intro.startswith("https://site.test/")),
        (root, root.startswith("https://site.test/")),
        ("https://else.test/x", False),
        ("https://cdn.test/lib.js", False),  # "//" links take https:, as before
    ]


@pytest.mark.parametrize("kind", ["modest", "lexbor"])
def test_markdown_links_resolve_against_the_document_base(kind: str) -> None:
    with backend(kind):
        markdown = DefaultContentExtractor().extract(_page(BASES["relative"][0]), base_url=PAGE)
    assert "[intro](https://site.test/docs/v2/intro.html)" in markdown.markdown
    assert "[root page](https://site.test/abs)" in markdown.markdown


@pytest.mark.parametrize("kind", EXTRACTORS)
def test_a_base_in_the_body_or_in_a_removed_element_counts(kind: str) -> None:
    # A browser takes the first <base href> wherever it is; the extractor finds it
    # before removing <header> and the like.
    for extra in ('<base href="/late/">', '<header><base href="/late/"></header>'):
        html = _page(body_extra=extra)
        assert _extract_links(kind, html, PAGE)[0] == ("https://site.test/late/intro.html", True)


@pytest.mark.parametrize("kind", EXTRACTORS)
def test_without_a_page_url_only_an_absolute_base_counts(kind: str) -> None:
    absolute = _extract_links(kind, _page(BASES["absolute"][0]), None)
    assert absolute[:2] == [
        ("https://mirror.test/root/intro.html", False),  # no page URL: nothing is internal
        ("https://mirror.test/abs", False),
    ]
    for case in ("relative", "protocol_relative"):
        assert _extract_links(kind, _page(BASES[case][0]), None)[:2] == [
            ("intro.html", False),
            ("/abs", False),
        ]


def test_the_reference_resolved_against_the_page_url() -> None:
    """The divergence: same page, the reference's links miss the base."""
    html = _page(BASES["relative"][0])
    theirs = ref_extractor.DefaultContentExtractor().extract(html, base_url=PAGE).links
    assert theirs[0].url == "https://site.test/docs/guide/intro.html"
    assert DefaultContentExtractor().extract(html, base_url=PAGE).links[0].url == (
        "https://site.test/docs/v2/intro.html"
    )


NAV_PAGE = """<html><head>{head}</head><body>
<nav><a href="home">Home</a><a href="guide">Guide</a><a href="api">API</a></nav>
<ol class="breadcrumb"><a href="./">Docs</a><a href="guide">Guide</a></ol>
<article><p>{filler}</p><a href="chapter-2.html">Chapter two</a></article>
<div class="pagination"><a href="p1.html">Previous</a><a href="p3.html">Next</a></div>
</body></html>"""


def test_navigator_links_resolve_against_the_document_base() -> None:
    html = NAV_PAGE.format(head='<base href="/docs/v2/">', filler="word " * 60)
    result = PageNavigator().analyze(html, base_url=PAGE)
    v2 = "https://site.test/docs/v2/"
    assert result.pagination is not None
    assert (result.pagination.next_url, result.pagination.prev_url) == (
        v2 + "p3.html",
        v2 + "p1.html",
    )
    assert [link.url for link in result.nav_links] == [v2 + "home", v2 + "guide", v2 + "api"]
    assert all(link.is_internal for link in result.nav_links)
    assert [link.url for link in result.breadcrumbs] == [v2, v2 + "guide"]
    assert v2 + "chapter-2.html" in [action.url for action in result.actions]
    fallback = FallbackNavigator().analyze(html, base_url=PAGE)
    assert fallback.pagination is not None
    assert (fallback.pagination.next_url, fallback.pagination.prev_url) == (
        v2 + "p3.html",
        v2 + "p1.html",
    )


def test_navigator_base_on_another_host_makes_no_link_internal() -> None:
    html = NAV_PAGE.format(head='<base href="https://mirror.test/">', filler="x")
    result = PageNavigator().analyze(html, base_url=PAGE)
    assert result.nav_links[0].url == "https://mirror.test/home"
    assert not any(link.is_internal for link in result.nav_links + result.breadcrumbs)


def test_navigator_without_base_is_unchanged() -> None:
    html = NAV_PAGE.format(head="", filler="word " * 60)
    ours = PageNavigator().analyze(html, base_url=PAGE).to_dict()
    assert ours == _ref_result("PageNavigator", html, PAGE, {}).to_dict()


@pytest.mark.parametrize(
    ("page_url", "href", "expected"),
    [
        (PAGE, None, PAGE),
        (None, None, None),
        ("", "/x/", ""),
        (PAGE, "/x/", "https://site.test/x/"),
        (PAGE, "", PAGE),
        (PAGE, " \t/x/\n", "https://site.test/x/"),
        ("http://site.test/a", "//cdn.test/", "http://cdn.test/"),  # the page's scheme
        (None, "//cdn.test/", None),
        (None, "https://cdn.test/b/", "https://cdn.test/b/"),
        (None, "relative/", None),
        (PAGE, "http://[::1/", PAGE),
        (PAGE, "javascript:void(0)", PAGE),
        (PAGE, "DATA:text/html,x", PAGE),
        (PAGE, "ftp://files.test/", "ftp://files.test/"),
    ],
)
def test_document_base(page_url: str | None, href: str | None, expected: str | None) -> None:
    assert document_base(page_url, href) == expected


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<p>no base</p>", None),
        ('<base href="/a/">', "/a/"),
        ("<base href='/a/'>", "/a/"),
        ("<base href=/a/ target=x>", "/a/"),
        ('<BASE\nHREF = "/a/">', "/a/"),
        ("<base href>", ""),
        ('<base target="x" href="/b/"/>', "/b/"),
        ('<base href="/a?x=1&amp;y=2">', "/a?x=1&y=2"),
        ('<base target="x"><base href="/b/"><base href="/c/">', "/b/"),
        ('<basefont href="/no/"><base hreflang="en"><base data-href="/no/">', None),
        ("<base " * 5000 + ">", None),  # linear: each scan stops at the next "<"
    ],
)
def test_markup_base_href(html: str, expected: str | None) -> None:
    assert markup_base_href(html) == expected


# A site whose index sets <base href="/docs/v2/">: its relative links exist only
# under /docs/v2/; under /docs/ they are dead.
SITE = {
    "https://site.test/docs/": (
        200,
        '<html><head><title>Index</title><base href="/docs/v2/"></head><body><main>'
        '<p>Start with the <a href="intro.html">intro</a> or the '
        '<a href="api.html">API</a>.</p></main></body></html>',
        HTML_HEADERS,
    ),
    "https://site.test/docs/v2/intro.html": (
        200,
        "<html><head><title>Intro</title></head><body><main><p>About trio nurseries.</p>"
        '<a href="deep.html">deeper</a></main></body></html>',
        HTML_HEADERS,
    ),
    "https://site.test/docs/v2/api.html": (
        200,
        "<html><head><title>API</title></head><body><main><p>trio API reference.</p>"
        "</main></body></html>",
        HTML_HEADERS,
    ),
    "https://site.test/docs/v2/deep.html": (
        200,
        "<html><head><title>Deep</title></head><body><main><p>Deep notes.</p></main></body></html>",
        HTML_HEADERS,
    ),
}


async def test_a_crawl_follows_links_through_the_base() -> None:
    async with create_mock_client(SITE) as client:
        pages = await client.crawl("https://site.test/docs/", max_pages=10, max_depth=3)
    assert [(page.url, page.success) for page in pages] == [
        ("https://site.test/docs/", True),
        ("https://site.test/docs/v2/intro.html", True),
        ("https://site.test/docs/v2/api.html", True),
        ("https://site.test/docs/v2/deep.html", True),
    ]
    site = await map_site(
        "https://site.test/docs/", client_factory=lambda: create_mock_client(SITE)
    )
    assert [page.title for page in site.pages] == ["Index", "Intro", "API", "Deep"]
    assert all(page.success for page in site.pages)
    assert site.depth_reached == 2
    found = await search_and_extract(
        "https://site.test/docs/", "trio", client_factory=lambda: create_mock_client(SITE)
    )
    assert [page.title for page in found.relevant_pages] == ["Intro", "API"]


def test_the_reference_crawl_goes_to_dead_pages() -> None:
    """What the fix changes: the reference follows /docs/intro.html, a 404."""

    async def crawl() -> list[Any]:
        client = ref_client.create_mock_client(SITE)
        pages: list[Any] = await client.crawl("https://site.test/docs/", max_depth=3)
        return pages

    pages = asyncio.run(crawl())
    assert [(page.url, page.success) for page in pages] == [
        ("https://site.test/docs/", True),
        ("https://site.test/docs/intro.html", False),
        ("https://site.test/docs/api.html", False),
    ]


# --- 2. SiteMap.depth_reached --------------------------------------------------------


def _html(*hrefs: str) -> str:
    links = "".join(f'<a href="{href}">to {href}</a> ' for href in hrefs)
    return f"<html><body><main><p>A page.</p><p>{links}</p></main></body></html>"


def _site(graph: dict[str, list[str]], failing: tuple[str, ...] = ()) -> Callable[[], Any]:
    responses: dict[str, tuple[int, str, dict[str, str]]] = {
        f"https://s.test{path}": (
            503 if path in failing else 200,
            _html(*links),
            HTML_HEADERS,
        )
        for path, links in graph.items()
    }
    return lambda: create_mock_client(responses)


# / -> /a -> /b -> /c (a chain of depth 3), / -> /x (depth 1).
CHAIN = {"/": ["/a", "/x"], "/a": ["/b", "/"], "/b": ["/c"], "/c": [], "/x": ["/"]}


@pytest.mark.parametrize(
    ("kwargs", "pages", "depth"),
    [
        ({"max_depth": 10}, 5, 3),  # the site runs out of links before max_depth
        ({"max_depth": 3}, 5, 3),
        ({"max_depth": 2}, 4, 2),
        ({"max_depth": 0}, 1, 0),  # the start page only
        ({"max_depth": 10, "max_pages": 3}, 3, 1),  # /, /a, /x: max_pages stops it
        ({"max_depth": 10, "max_pages": 4}, 4, 2),
        ({"max_depth": 10, "max_pages": 0}, 0, 0),  # nothing fetched
    ],
)
async def test_depth_reached_is_the_deepest_page_crawled(
    kwargs: dict[str, Any], pages: int, depth: int
) -> None:
    site = await map_site("https://s.test/", client_factory=_site(CHAIN), **kwargs)
    assert (len(site.pages), site.depth_reached, site.to_dict()["depth_reached"]) == (
        pages,
        depth,
        depth,
    )


async def test_depth_reached_of_a_start_page_without_links() -> None:
    site = await map_site("https://s.test/", client_factory=_site({"/": []}), max_depth=5)
    assert site.depth_reached == 0


async def test_depth_reached_counts_a_failed_page_at_the_last_depth() -> None:
    # /b fails (503): it was fetched, at depth 2, the last one.
    site = await map_site(
        "https://s.test/", client_factory=_site(CHAIN, failing=("/b",)), max_depth=2
    )
    assert [(page.url, page.success) for page in site.pages][-1] == ("https://s.test/b", False)
    assert site.depth_reached == 2
    # A dead link (the mock's 404) at depth 1 is the deepest page.
    dead = await map_site("https://s.test/", client_factory=_site({"/": ["/gone"]}))
    assert [page.success for page in dead.pages] == [True, False]
    assert dead.depth_reached == 1


async def test_depth_reached_follows_the_crawl_not_the_link_filter() -> None:
    def no_x(link: ExtractedLink) -> bool:
        return not link.url.endswith("/x")

    site = await map_site(
        "https://s.test/", client_factory=_site(CHAIN), max_depth=10, link_filter=no_x
    )
    assert [page.url.removeprefix("https://s.test") for page in site.pages] == [
        "/",
        "/a",
        "/b",
        "/c",
    ]
    assert site.depth_reached == 3


async def test_the_reference_reports_max_depth() -> None:
    responses = {f"https://s.test{p}": (200, _html(*ls), HTML_HEADERS) for p, ls in CHAIN.items()}
    theirs = asyncio.run(
        ref_run_utils.map_site(
            "https://s.test/",
            max_depth=10,
            client_factory=lambda: ref_client.create_mock_client(responses),
        )
    )
    assert theirs.depth_reached == 10
    ours = await map_site("https://s.test/", max_depth=10, client_factory=_site(CHAIN))
    assert [p.url for p in ours.pages] == [p.url for p in theirs.pages]
    assert ours.depth_reached == 3


# --- 3. NavigationConfig.min_nav_links -----------------------------------------------


def _menu_page(*hrefs: str) -> str:
    menu = "".join(f'<a href="{href}">Menu {href}</a>' for href in hrefs)
    return (
        f'<html><body><nav class="menu">{menu}</nav>'
        f'<main><p>{"Some words. " * 20}</p><a href="/story">A story to read</a></main>'
        "</body></html>"
    )


@pytest.mark.parametrize(
    ("hrefs", "minimum", "menu"),
    [
        (["/a", "/b"], 3, []),  # the default: two links make no menu
        (["/a", "/b", "/c"], 3, ["/a", "/b", "/c"]),
        (["/a", "/a", "/a"], 3, []),  # distinct URLs are counted
        (["/a", "/b"], 2, ["/a", "/b"]),
        (["/a"], 1, ["/a"]),
        (["/a"], 0, ["/a"]),
        ([], 0, []),
    ],
)
def test_min_nav_links_decides_what_is_a_menu(
    hrefs: list[str], minimum: int, menu: list[str]
) -> None:
    base = "https://s.test/"
    result = PageNavigator(NavigationConfig(min_nav_links=minimum)).analyze(
        _menu_page(*hrefs), base_url=base
    )
    assert [link.url.removeprefix("https://s.test") for link in result.nav_links] == menu
    assert [(a.url or "").removeprefix("https://s.test") for a in result.actions] == [
        *menu,
        "/story",
    ]
    assert [a.action_type for a in result.actions] == ["nav_link"] * len(menu) + ["content_link"]


def test_min_nav_links_default_is_three() -> None:
    assert NavigationConfig().min_nav_links == 3
    result = PageNavigator().analyze(_menu_page("/a", "/b"), base_url="https://s.test/")
    assert result.nav_links == []


@pytest.mark.parametrize("minimum", [0, 1])
def test_min_nav_links_zero_or_one_answers_as_the_reference(minimum: int) -> None:
    html = _menu_page("/a", "/b")
    ours = PageNavigator(NavigationConfig(min_nav_links=minimum)).analyze(
        html, base_url="https://s.test/"
    )
    theirs = _ref_result("PageNavigator", html, "https://s.test/", {})
    assert ours.to_dict() == theirs.to_dict()
    assert len(theirs.nav_links) == 2  # the reference keeps a two-link "menu"


def test_fewer_menu_links_leave_room_for_content_links() -> None:
    html = _menu_page("/a", "/b").replace("</main>", '<a href="/second">Second story</a></main>')
    result = PageNavigator(NavigationConfig(max_actions=2)).analyze(
        html, base_url="https://s.test/"
    )
    assert [a.url for a in result.actions] == ["https://s.test/story", "https://s.test/second"]
