"""Audit 26 (smallb): four items left in earlier sessions' notes.

1. websearch: a ``<base href>`` inside ``<template>`` or ``<svg>`` was honoured.
   Fixed. Per the HTML standard the document's base URL comes from the first
   ``base`` element *in the document* with an ``href``, and that element is HTML's
   (HTML namespace): a template's content is a separate fragment, and a ``<base>``
   under ``<svg>`` / ``<math>`` is an SVG / MathML element of that name (``base`` is
   not one of the tags that break out of foreign content), unless an integration
   point (``<foreignObject>``, ``<desc>``, SVG ``<title>``, MathML ``<mi>`` and the
   like, ``<annotation-xml encoding="text/html">``) is between them. Before, Modest
   took the one in a ``<template>`` (lexbor keeps template content out of the
   tree), both parsers the SVG / MathML one, and the regex fallback any ``<base``
   text, in a comment or a ``<script>`` string too. Now ``tree_base_href`` reads the
   candidate's ancestors (root down) for a template and the namespaces, and
   ``markup_base_href`` scans comments, raw text elements and ``<template>`` /
   ``<svg>`` / ``<math>`` (nested ones counted) as one linear regex, skipping what
   is inside; the fallback skips under an integration point too (documented).
2. websearch: ``SiteMap.depth_reached`` counted a page too shallow when a
   ``link_filter`` (deciding by link text) refused its URL on one page and took it
   on a later, deeper one: ``_deepest`` replayed the crawl from the pages' links
   without the filter's answers (2 pages deep reported as 1, reproduced). Fixed:
   ``map_site`` hands the crawl a wrapper of ``link_filter`` that keeps the refused
   link objects, and the replay skips them; the filter is still asked once per link.
3. CLI live view on a 1-row terminal: the block was cut to ``max(rows - 1, 1)``
   lines, so a one-row terminal got the title plus the cursor's row (2 rows) and
   every redraw scrolled a copy of the title into the scrollback (reproduced with
   the terminal model of tests/cli/test_audit25_liveview.py). Fixed: the block gets
   ``rows - 1`` lines, none on one row, and nothing is written while there is
   nothing to draw or clear; the outputs and the outcome are printed at the end as
   always. 2 rows (the title alone) was right already (kept, tested here through
   the model); a size of 0 (a pty nobody sized: ``os.get_terminal_size`` gives
   0 x 0, or one of the two 0) is an unknown size, and the block is drawn whole as
   before (kept: guessing a height would cut blocks on tall terminals). The view
   reads ``os.get_terminal_size`` of its own output, not ``shutil``'s (which reads
   ``COLUMNS`` / ``LINES`` and ``sys.__stdout__``).
4. Output that bypasses ``sys.stdout`` / ``sys.stderr`` garbles the live view: it
   was documented in docs/cli.md already; the workaround (``--plain``, there is no
   ``--no-live``; or logging with no handler of one's own, so that Python's last
   resort handler writes through ``sys.stderr`` as it is then) is now said there.
   Documentation only.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import trio
from selectolax.lexbor import LexborHTMLParser
from selectolax.parser import HTMLParser

from stageflow_trio.cli.run import LiveView, RunOptions, RunRecorder, run_graph
from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.pipeline import Pipeline
from stageflow_trio.websearch import create_mock_client, map_site
from stageflow_trio.websearch._baseurl import markup_base_href, tree_base_href
from stageflow_trio.websearch.models import ExtractedLink
from tests.cli.test_audit25_liveview import (
    Screen,
    SizedTerminal,
    _screen_of,
    _sized_terminals,  # noqa: F401 - the autouse fixture sizing SizedTerminal
)
from tests.websearch.test_audit25_websearch import PAGE, _extract_links, _page

# --- 1. which <base> counts -----------------------------------------------------------

REAL = '<base href="/real/">'
# (markup before the real <base>, what the parsers read, what the regex fallback reads)
NOT_THE_BASE = {
    "template": ('<template><base href="/t/"></template>', "/real/", "/real/"),
    "nested_template": (
        '<template><template></template><base href="/t/"></template>',
        "/real/",
        "/real/",
    ),
    "svg": ('<svg><base href="/s/"/></svg>', "/real/", "/real/"),
    "svg_deeper": ('<svg><g><a><base href="/s/"></a></g></svg>', "/real/", "/real/"),
    "math": ('<math><base href="/m/"></math>', "/real/", "/real/"),
    "svg_in_foreign_object": (
        '<svg><foreignObject><svg><base href="/s/"></svg></foreignObject></svg>',
        "/real/",
        "/real/",
    ),
    "math_in_svg": ('<svg><math><mi><base href="/s/"></mi></math></svg>', "/real/", "/real/"),
    "annotation_xml": (
        '<math><annotation-xml><base href="/m/"></annotation-xml></math>',
        "/real/",
        "/real/",
    ),
    "comment": ('<!-- <base href="/c/"> -->', "/real/", "/real/"),
    "script": ("<SCRIPT>document.write('<base href=\"/j/\">')</script >", "/real/", "/real/"),
    "title": ('<title>a <base href="/t/"> tag</title>', "/real/", "/real/"),
    "closed_svg": ("<svg/><p>x</p>", "/real/", "/real/"),
    # HTML elements under an integration point: a browser takes these.
    "foreign_object": (
        '<svg><foreignObject><div><base href="/f/"></div></foreignObject></svg>',
        "/f/",
        "/real/",
    ),
    "svg_desc": ('<svg><desc><base href="/f/"></desc></svg>', "/f/", "/real/"),
    "math_mi": ('<math><mi><base href="/f/"></mi></math>', "/f/", "/real/"),
    "annotation_xml_html": (
        '<math><annotation-xml encoding="Text/HTML"><base href="/f/"></annotation-xml></math>',
        "/f/",
        "/real/",
    ),
}


@pytest.mark.parametrize("case", sorted(NOT_THE_BASE))
@pytest.mark.parametrize("parser", [HTMLParser, LexborHTMLParser])
def test_tree_base_href_takes_the_html_base_in_the_document(parser: Any, case: str) -> None:
    before, expected, _ = NOT_THE_BASE[case]
    html = f"<html><head></head><body>{before}{REAL}</body></html>"
    assert tree_base_href(parser(html)) == expected


@pytest.mark.parametrize("case", sorted(NOT_THE_BASE))
def test_markup_base_href_skips_what_is_not_an_element_of_the_document(case: str) -> None:
    before, _, expected = NOT_THE_BASE[case]
    assert markup_base_href(f"<html><body>{before}{REAL}</body></html>") == expected


def test_markup_base_href_scans_in_linear_time() -> None:
    # Unclosed comments, raw text and containers swallow the rest of the page.
    for html in ("<svg>" * 5000, "<!--" * 5000, "<script " * 5000, "<template>" * 5000):
        assert markup_base_href(html + REAL) is None
    # Stray end tags are nothing; "<svg" without its ">" before the next "<" neither.
    for html in ("</svg>" * 5000, "<svg " * 5000, "<math/>" * 5000):
        assert markup_base_href(html + REAL) == "/real/"


@pytest.mark.parametrize("kind", ["modest", "lexbor", "fallback"])
def test_the_extractors_links_skip_a_template_or_svg_base(kind: str) -> None:
    head = '<template><base href="/tpl/"></template><base href="/docs/v2/">'
    body = '<svg><base href="https://svg.test/"/></svg>'
    links = _extract_links(kind, _page(head, body), PAGE)
    assert links[0] == ("https://site.test/docs/v2/intro.html", True)
    # Only an SVG base: the page's URL.
    links = _extract_links(kind, _page("", body), PAGE)
    assert links[0] == ("https://site.test/docs/guide/intro.html", True)


# --- 2. depth_reached with a link_filter deciding by text ------------------------------


def _html(*links: tuple[str, str]) -> str:
    anchors = "".join(f'<a href="{href}">{text}</a> ' for href, text in links)
    return f"<html><body><main><p>A page.</p><p>{anchors}</p></main></body></html>"


HEADERS = {"content-type": "text/html"}
# / links /a as "skip" and /b; /b links /a again: the crawl reaches /a at depth 2.
TWO_WAYS = {
    "https://s.test/": (200, _html(("/a", "skip a"), ("/b", "take b")), HEADERS),
    "https://s.test/b": (200, _html(("/a", "take a")), HEADERS),
    "https://s.test/a": (200, _html(), HEADERS),
}


async def test_depth_reached_counts_where_the_crawl_took_the_link() -> None:
    asked: list[str] = []

    def by_text(link: ExtractedLink) -> bool:
        asked.append(link.text)
        return not link.text.startswith("skip")

    site = await map_site(
        "https://s.test/",
        client_factory=lambda: create_mock_client(TWO_WAYS),
        max_depth=5,
        link_filter=by_text,
    )
    assert [page.url for page in site.pages] == [
        "https://s.test/",
        "https://s.test/b",
        "https://s.test/a",
    ]
    assert site.depth_reached == 2  # was 1: /a counted at /'s refused link
    assert asked == ["skip a", "take b", "take a"]  # asked once per link, as before
    # max_depth 1: /b's links are not followed, /a is not crawled.
    shallow = await map_site(
        "https://s.test/",
        client_factory=lambda: create_mock_client(TWO_WAYS),
        max_depth=1,
        link_filter=by_text,
    )
    assert (len(shallow.pages), shallow.depth_reached) == (2, 1)


async def test_a_link_filter_error_still_propagates() -> None:
    def broken(link: ExtractedLink) -> bool:
        raise LookupError(link.url)

    with pytest.raises(LookupError, match=r"https://s\.test/a"):
        await map_site(
            "https://s.test/",
            client_factory=lambda: create_mock_client(TWO_WAYS),
            link_filter=broken,
        )


# --- 3. the live view on tiny terminals -----------------------------------------------


async def _redraws(terminal: SizedTerminal, times: int = 4) -> RunRecorder:
    view = LiveView(terminal, "tiny", colour=False)
    recorder = RunRecorder(["a", "b", "c"], view)
    recorder.try_emit(type="stage.a.started", data=None)
    for _ in range(times):
        view.redraw(recorder)
        await trio.sleep(0.1)
    return recorder


async def test_a_one_row_terminal_gets_no_block(autojump_clock: trio.abc.Clock) -> None:
    """Before: the title and the cursor's row (2 rows on 1): a copy per redraw."""
    terminal = SizedTerminal(40, 1)
    await _redraws(terminal)
    assert terminal.getvalue() == ""
    assert _screen_of(terminal) == ["$ stageflow-trio run"]


async def test_a_two_row_terminal_gets_the_title_alone(autojump_clock: trio.abc.Clock) -> None:
    terminal = SizedTerminal(40, 2)
    await _redraws(terminal)
    rows = _screen_of(terminal)
    assert rows[0] == "$ stageflow-trio run"
    assert len(rows) == 2
    assert rows[1].startswith("tiny  [")


@pytest.mark.parametrize("size", [(1, 1), (1, 2), (2, 3), (3, 2)])
async def test_tiny_terminals_never_get_more_rows_than_they_have(
    autojump_clock: trio.abc.Clock, size: tuple[int, int]
) -> None:
    terminal = SizedTerminal(*size)
    await _redraws(terminal)
    screen = Screen(*size)
    screen.feed(terminal.getvalue())
    # Nothing went into the scrollback: every redraw fitted on the screen.
    assert screen.scrollback == []


async def test_shrunk_to_one_row_and_back(autojump_clock: trio.abc.Clock) -> None:
    terminal = SizedTerminal(40, 10)
    view = LiveView(terminal, "tiny", colour=False)
    recorder = RunRecorder(["a", "b"], view)
    view.redraw(recorder)
    assert view.drawn == 3
    terminal.size = os.terminal_size((40, 1))
    view.redraw(recorder)  # moved up over the 3 rows and cleared them
    assert terminal.getvalue().endswith("\x1b[3F\x1b[J")
    assert view.drawn == 0
    written = len(terminal.getvalue())
    view.redraw(recorder)
    view.write_above("said\n", terminal)  # nothing drawn: written as it is
    assert terminal.getvalue()[written:] == "said\n"
    terminal.size = os.terminal_size((40, 10))
    view.redraw(recorder)
    assert view.drawn == 3


@pytest.mark.parametrize("size", [(0, 0), (80, 0), (0, 24)])
async def test_an_unsized_terminal_gets_the_whole_block(
    autojump_clock: trio.abc.Clock, size: tuple[int, int]
) -> None:
    """A pty nobody sized: the size is unknown, the block is drawn uncut (as before)."""
    terminal = SizedTerminal(*size)
    view = LiveView(terminal, "t" * 100, colour=False)
    recorder = RunRecorder([f"s{i}" for i in range(30)], view)
    view.redraw(recorder)
    view.redraw(recorder)
    assert terminal.getvalue().count("\x1b[31F") == 1
    assert terminal.getvalue().endswith(
        "".join(f"\x1b[2K{line}\n" for line in view.lines(recorder)) + "\x1b[J"
    )


async def test_a_whole_run_on_a_one_row_terminal(autojump_clock: trio.abc.Clock) -> None:
    async def work(ctx: StageContext) -> StageOutput:
        await trio.sleep(1)
        return StageOutput.ok(done=True)

    graph = Pipeline(name="one").with_stage("work", work, StageKind.WORK).build()
    terminal = SizedTerminal(40, 1)
    view = LiveView(terminal, "one")
    assert await run_graph(graph, RunOptions(), view, title="one", handle_sigint=False) == 0
    assert terminal.getvalue() == 'work: {"done": true}\ncompleted in 1.000s\n'
