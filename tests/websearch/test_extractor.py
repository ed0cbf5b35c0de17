"""The HTML extractors: differential against stageflow-core 0.9.1, the fixes, the config checks.

The differential tests feed the same HTML (a corpus of realistic pages, then
Hypothesis-built trees and tag soup) to the reference's extractors and to ours,
with the same configuration, and compare ``to_dict()`` (markdown, plain text,
word count, metadata, links, heading outline), ``extract_metadata`` and
``extract_links``. Where the reference raises (its known crashes), ours must
return a result instead. A page with a ``<base href>`` (generated pages have
one now and then): ours resolves its links against it, the reference against
the page's URL (a parity row), so the reference is given the document's base
URL as ``base_url`` (:func:`reference_base_url`).
"""

from __future__ import annotations

import importlib
import re
from typing import Any
from urllib.parse import urljoin, urlsplit

import attrs
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from stageflow_trio.utils.frozen import FrozenList
from stageflow_trio.websearch import extractor as ours
from stageflow_trio.websearch.extractor import (
    ContentExtractor,
    DefaultContentExtractor,
    ExtractionConfig,
    ExtractionResult,
    FallbackContentExtractor,
    get_default_extractor,
)
from stageflow_trio.websearch.models import ExtractedLink, PageMetadata
from tests.fakes import import_reference, python_output

reference = import_reference()
ref = importlib.import_module("stageflow.websearch.extractor")
ref_models = importlib.import_module("stageflow.websearch.models")

KINDS = ("DefaultContentExtractor", "FallbackContentExtractor")
BASE = "https://example.com/blog/post.html"

# The crashes of the reference that ours fixes (see the module docstring).
REFERENCE_CRASHES = (TypeError, IndexError, RecursionError, ValueError)


# -- the corpus ----------------------------------------------------------------------

NEWS_ARTICLE = """<!DOCTYPE html>
<html lang="en-GB">
<head>
  <meta charset="utf-8">
  <title>Rivers rise after storm | The Daily Example</title>
  <meta name="description" content="Plain description">
  <meta property="og:title" content="Rivers rise after a week of storms">
  <meta property="og:description" content="Flood warnings across the region.">
  <meta property="og:image" content="https://cdn.example.com/img/river.jpg">
  <meta property="og:type" content="article">
  <meta name="author" content="Jo Reporter">
  <meta property="article:published_time" content="2024-03-01T08:00:00Z">
  <meta name="keywords" content="weather, floods , rivers,, storms">
  <link rel="canonical" href="https://example.com/news/rivers-rise">
  <style>body { font-family: serif; } .ad { display: none }</style>
  <script>window.dataLayer = [{"page": "<p>not content</p>"}];</script>
</head>
<body>
  <header><a href="/">Home</a> <a href="/news">News</a></header>
  <nav class="menu"><ul><li><a href="/sport">Sport</a></li><li><a href="/weather">Weather</a></li></ul></nav>
  <div class="cookie-banner">We use cookies. <a href="/cookies">Settings</a></div>
  <article>
    <h1>Rivers rise after a week of storms</h1>
    <p class="byline">By <a href="/authors/jo" rel="author" title="Jo's page">Jo Reporter</a>, <em>1 March 2024</em></p>
    <figure><img src="/img/river.jpg" alt="The river in flood"><figcaption>The river on Friday.</figcaption></figure>
    <p>Rivers across the region rose to <strong>record levels</strong> on Friday,
       after a week of heavy rain &mdash; the wettest since 1998.</p>
    <div class="ad">Buy umbrellas! <a href="https://ads.example.net/click?id=1">Click</a></div>
    <p>The <abbr title="Environment Agency">EA</abbr> issued 42 flood warnings &amp; urged people to
       <a href="../advice/floods.html">read the advice</a> and <a href="https://gov.example.org/floods">check the map</a>.</p>
    <blockquote>We have never seen anything like it.
It came up so fast.</blockquote>
    <h2>What happens next</h2>
    <ul>
      <li>More rain is forecast for <b>Sunday</b>.</li>
      <li>Schools in <a href="/places/low-town">Low Town</a> will stay closed.</li>
      <li>Volunteers are needed:
        <ul><li>sandbags</li><li>transport</li></ul>
      </li>
    </ul>
    <h3>Timeline</h3>
    <ol><li>Monday: first warnings</li><li>Wednesday: bridge closed</li><li>Friday: peak</li></ol>
    <aside class="related"><a href="/news/older">Older story</a></aside>
  </article>
  <section id="comments"><p>First!</p></section>
  <div class="share-buttons"><a href="https://share.example.com/?u=1">Share</a></div>
  <footer><p>&copy; 2024 The Daily Example</p><a href="mailto:news@example.com">Contact</a></footer>
  <script src="/app.js"></script>
</body>
</html>
"""

DOCS_PAGE = """<html><head><title>API &mdash; Docs</title>
<meta name="description" content="How to call the API"></head>
<body>
<div class="layout"><div class="sidebar"><a href="/docs/intro">Intro</a></div>
<main>
<h2 id="install">Install</h2>
<p>Run <code>pip install example</code> then import it:</p>
<pre><code class="language-python">import example

client = example.Client(timeout=5)
print(client.get("/items?page=1&amp;size=10"))
</code></pre>
<pre>plain preformatted
   text with   spaces</pre>
<pre><code class="highlight language-bash extra">curl -s https://api.example.com/v1/items | jq .</code></pre>
<h3>Parameters</h3>
<table>
  <thead><tr><th>Name</th><th>Type</th><th>Default</th></tr></thead>
  <tbody>
    <tr><td>timeout</td><td><code>float</code></td><td>5</td></tr>
    <tr><td>retries</td><td>int</td></tr>
    <tr><td>mode</td><td>"a" | "b"</td><td>a</td><th>note</th></tr>
  </tbody>
</table>
<h3>Steps</h3>
<ol>
  <li>Create a client</li>
  <li>Call <a href="/docs/api#get">get()</a>
    <ol><li>check the status</li><li>read the body</li></ol></li>
  <li></li>
  <li>Close it</li>
</ol>
<p>See <a href="#install">above</a>, <a href="javascript:void(0)">this</a>,
<a href="tel:+441234">call us</a> or <a href="//cdn.example.com/docs.pdf">the PDF</a>.</p>
<hr>
<p>Last updated<br>yesterday</p>
</main></div>
</body></html>
"""

BLOG_PAGE = """<html lang="fr"><head><title>Un billet</title>
<meta name="keywords" content="">
<script type="application/ld+json">{"@type": "BlogPosting", "headline": "x"}</script>
</head><body>
<div class="popup modal">Subscribe!</div>
<div class="post">
  <div class="post-content">
    <h1>Caf&eacute; &amp; cr&egrave;me</h1>
    <p>Prix&nbsp;: 3&nbsp;&euro; &ndash; <i>environ</i>. Code&nbsp;: <code>a &lt; b</code>. &#169; &#x263A;</p>
    <p>Text with &amp;lt;escaped&amp;gt; markup and   many    spaces.</p>
    <p>Markdown-looking text: [not a link] (really), a_b_c, **stars**, `ticks`, | pipes |.</p>
    <p><a href="/tags/cafe">caf&eacute;</a> <a href="/tags/cafe">same again</a>
       <a href="/tags/creme" title="Cr&egrave;me">cr&egrave;me</a></p>
    <p>   </p>
    <p><img src="x.png"><img src="y.png" alt=""></p>
  </div>
  <div class="comments"><p>Nice post</p></div>
  <div class="social-share"><a href="https://social.example/share">Share</a></div>
</div>
<noscript><p>Enable JS</p></noscript>
<iframe src="https://video.example/embed"></iframe>
<svg><text>vector</text></svg>
</body></html>
"""

DIV_SOUP = """<html><body>
<div>Loose text in a div <span>and a span</span>
  <div><div>Deeper <b>bold</b> text</div><br>
  <a href="relative/page">A link outside any paragraph</a>
  <em>emphasis outside</em></div>
  <section><h4>Section heading</h4><p>Section text</p>
    <figure><img src="a.png" alt="figure image"><p>Caption paragraph</p></figure>
  </section>
  <li>An item outside a list</li>
  <font color="red">Old <b>font</b> tag</font>
  <!-- a comment that is not content -->
  <table><tr><td>only</td></tr></table>
  <table></table>
  <blockquote></blockquote>
  <h5>   </h5>
</div>
</body></html>
"""

MALFORMED = """<HTML><HEAD><TITLE>Broken page</TITLE>
<META NAME="description" CONTENT="Upper case tags">
<body>
<DIV CLASS=content>
<H2>Unclosed paragraphs</h2>
<P>First paragraph
<P>Second paragraph with <B>bold <I>and italic</B> mixed</I> tags
<p>Third with a <a href=/unquoted?x=1&y=2>bare href</a> and <a href>no value</a> and <a>no href</a>
<ul><li>one<li>two<li>three</ul>
<ol><li>first<li><p>second in a paragraph</p><li>third</ol>
<table><tr><td>a<td>b<tr><td>c</table>
</div></div></span>
<pre><code class>valueless class</code></pre>
<pre><code class="language-">empty language</code></pre>
<h1>Heading <h2>inside heading</h2></h1>
<p>Stray &lt; and &gt; and & alone &amp unterminated</p>
<p><![CDATA[ cdata text ]]> after cdata</p>
<a href="http://[::1/broken">broken ipv6</a> <a href="foo://[x">also broken</a>
<p>End <a href="/end">end link</a>
"""

LISTING = """<html><head><title>Results page 2</title>
<meta name="description" content='Single-quoted description'>
<link rel="canonical" href="/results?page=2"></head>
<body><div id="content">
<h1>Search results</h1>
<table class="results">
<tr><th>#</th><th>Title</th></tr>
<tr><td>1</td><td><a href="/item/1">First item</a></td></tr>
<tr><td>2</td><td><a href="/item/2">Second item</a></td></tr>
<tr><td>3</td><td><a href="/item/1">First item again</a><table><tr><td>nested</td></tr></table></td></tr>
</table>
<p><a href="/results?page=1" rel="prev">Previous</a> | <a href="/results?page=3" rel="next">Next</a></p>
<p><a href="https://other.example.org/deep/link">A link with a very long text that goes on and on past
any reasonable limit for the text of one link in a markdown document, really it does</a></p>
<div role="main"><p>Not chosen: #content came first</p></div>
</div></body></html>
"""

ROLE_MAIN = """<html><body>
<div role="main">
<h1>A heading that is rather long for a heading, longer than ten characters</h1>
<h2>Short</h2>
<p>Body <a href="page2.html">next page</a></p>
</div>
<div class="entry-content"><p>entry</p></div>
</body></html>
"""

CORPUS = {
    "news": NEWS_ARTICLE,
    "docs": DOCS_PAGE,
    "blog": BLOG_PAGE,
    "div_soup": DIV_SOUP,
    "malformed": MALFORMED,
    "listing": LISTING,
    "role_main": ROLE_MAIN,
    "empty": "",
    "whitespace": "  \n\t ",
    "text_only": "Just some text &amp; an entity, no tags at all.",
    "head_only": "<html><head><title> Spaced  title </title></head></html>",
    "fragment": "<p>One</p><p>Two <a href='x'>x</a></p>",
}

CONFIGS: dict[str, dict[str, Any]] = {
    "default": {},
    "nothing_preserved": {
        "preserve_headings": False,
        "preserve_lists": False,
        "preserve_links": False,
        "preserve_emphasis": False,
        "preserve_code": False,
        "preserve_blockquotes": False,
        "preserve_tables": False,
    },
    "short_limits": {
        "include_link_urls": False,
        "max_link_text_length": 5,
        "max_heading_length": 10,
    },
    "zero_limits": {"max_link_text_length": 0, "max_heading_length": 0},
    "no_selectors": {"remove_selectors": [], "main_content_selectors": []},
    "custom_selectors": {
        "remove_selectors": ["table", "blockquote", "p.byline"],
        "main_content_selectors": ["#missing", "main", "body"],
    },
}


def extractors(kind: str, config: dict[str, Any]) -> tuple[Any, ContentExtractor]:
    """The reference's extractor and ours, with the same configuration."""
    return (
        getattr(ref, kind)(ref.ExtractionConfig(**config)),
        getattr(ours, kind)(ExtractionConfig(**config)),
    )


def outcome(call: Any) -> tuple[str, Any]:
    try:
        return ("ok", call())
    except REFERENCE_CRASHES as exc:
        return ("raised", exc)


def dicts(value: Any) -> Any:
    if isinstance(value, list):
        return [item.to_dict() for item in value]
    return value.to_dict()


def underscores_dropped(text: str) -> str:
    return " ".join(text.replace("_", "").split())


# The generated pages' <base>, always written this way (test_audit25_websearch.py
# tests the other spellings).
_BASE_TAG = re.compile(r'<base href="([^"]*)">')


def reference_base_url(html: Any, base_url: str | None) -> str | None:
    """The ``base_url`` that makes the reference resolve ``html``'s links as ours does.

    Ours resolves them against the document's base URL (the ``<base href>``
    resolved against the page's URL, a parity row), the reference against the
    ``base_url`` it is given. A relative ``<base>`` on a page of unknown URL
    counts for nothing.
    """
    match = _BASE_TAG.search(html) if isinstance(html, str) else None
    if match is None:
        return base_url
    resolved = urljoin(base_url or "", match.group(1))
    return resolved if urlsplit(resolved).scheme else base_url


def internal_on(data: Any, page_url: str | None) -> Any:
    """``data`` (dicts) with each link's ``is_internal`` decided by ``page_url``'s host.

    The reference decides it by the ``base_url`` it is given: the document's base
    URL (:func:`reference_base_url`), where ours decides it by the page's URL.
    """
    if isinstance(data, list):
        return [internal_on(item, page_url) for item in data]
    if isinstance(data, dict):
        data = {key: internal_on(value, page_url) for key, value in data.items()}
        if "is_internal" in data:
            data["is_internal"] = bool(page_url) and (
                urlsplit(page_url).netloc == urlsplit(data["url"]).netloc
            )
    return data


def assert_same(reference_call: Any, our_call: Any, *, page_url: Any = None) -> None:
    """Our result equals the reference's, or the reference crashed and ours did not.

    With ``page_url`` (a str, or "" for an unknown one) the reference's links are
    internal on that URL's host (see :func:`internal_on`).
    """
    status, expected = outcome(reference_call)
    actual = our_call()
    if status == "ok":
        ours, theirs = dicts(actual), dicts(expected)
        if page_url is not None:
            theirs = internal_on(theirs, page_url)
        if "plain_text" in ours and "_" in ours["plain_text"] + theirs["plain_text"]:
            # Underscores inside words are kept as text (a parity row): the plain
            # texts differ only by underscores the reference took for emphasis.
            assert underscores_dropped(ours.pop("plain_text")) == underscores_dropped(
                theirs.pop("plain_text")
            )
            assert actual.word_count == len(actual.plain_text.split())
            del ours["word_count"], theirs["word_count"]
        assert ours == theirs
    else:
        assert dicts(actual) is not None  # ours returns where the reference raised


def assert_same_everywhere(kind: str, config: dict[str, Any], html: Any, **call: Any) -> None:
    theirs, mine = extractors(kind, config)
    page_url = call.get("base_url")
    ref_call = {**call, "base_url": reference_base_url(html, page_url)}
    # None: the reference's is_internal stands (no <base> changed its base URL).
    internal_by = None if ref_call["base_url"] == page_url else page_url or ""
    assert_same(
        lambda: theirs.extract(html, **ref_call),
        lambda: mine.extract(html, **call),
        page_url=internal_by,
    )
    assert_same(
        lambda: theirs.extract_links(html, **ref_call),
        lambda: mine.extract_links(html, **call),
        page_url=internal_by,
    )
    assert_same(lambda: theirs.extract_metadata(html), lambda: mine.extract_metadata(html))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("config", CONFIGS.values(), ids=list(CONFIGS))
@pytest.mark.parametrize("page", CORPUS.values(), ids=list(CORPUS))
@pytest.mark.parametrize("base_url", [None, BASE], ids=["no_base", "base"])
def test_corpus_matches_the_reference(
    kind: str, config: dict[str, Any], page: str, base_url: str | None
) -> None:
    assert_same_everywhere(kind, config, page, base_url=base_url)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "selector", ["article", "#content table", "ul", "li", "p", "h1", "#nowhere", ""]
)
@pytest.mark.parametrize("page", ["news", "docs", "listing", "malformed"])
def test_corpus_with_a_selector_matches_the_reference(kind: str, selector: str, page: str) -> None:
    assert_same_everywhere(kind, {}, CORPUS[page], base_url=BASE, selector=selector)


def test_the_corpus_gives_what_a_reader_expects() -> None:
    # One page read in full, so the differential tests above compare real content.
    result = DefaultContentExtractor().extract(NEWS_ARTICLE, base_url=BASE)
    assert result.markdown == (
        "# Rivers rise after a week of storms\n\n"
        "By [Jo Reporter](https://example.com/authors/jo) , _1 March 2024_\n\n"
        "Rivers across the region rose to **record levels** on Friday,\n"
        "after a week of heavy rain \u2014 the wettest since 1998.\n\n"
        "The EA issued 42 flood warnings & urged people to "
        "[read the advice](https://example.com/advice/floods.html) and "
        "[check the map](https://gov.example.org/floods) .\n\n"
        "> We have never seen anything like it.\n> It came up so fast.\n\n"
        "## What happens next\n\n"
        "- More rain is forecast for **Sunday** .\n\n"
        "- Schools in [Low Town](https://example.com/places/low-town) will stay closed.\n\n"
        "- Volunteers are needed: sandbags transport\n\n"
        "### Timeline\n\n"
        "1. Monday: first warnings\n\n"
        "2. Wednesday: bridge closed\n\n"
        "3. Friday: peak"
    )
    assert result.heading_outline == [
        (1, "Rivers rise after a week of storms"),
        (2, "What happens next"),
        (3, "Timeline"),
    ]
    assert result.metadata == PageMetadata(
        title="Rivers rise after a week of storms",
        description="Flood warnings across the region.",
        language="en-GB",
        author="Jo Reporter",
        published_date="2024-03-01T08:00:00Z",
        canonical_url="https://example.com/news/rivers-rise",
        og_image="https://cdn.example.com/img/river.jpg",
        keywords=["weather", "floods", "rivers", "storms"],
        content_type="article",
    )
    assert [link.url for link in result.links] == [
        "https://example.com/authors/jo",
        "https://example.com/advice/floods.html",
        "https://gov.example.org/floods",
        "https://example.com/places/low-town",
    ]
    assert result.links[0] == ExtractedLink(
        url="https://example.com/authors/jo",
        text="Jo Reporter",
        title="Jo's page",
        rel="author",
        is_internal=True,
    )
    assert result.word_count == len(result.plain_text.split()) == 100
    assert "umbrellas" not in result.plain_text  # the .ad block was removed
    assert "cookies" not in result.plain_text


def test_code_blocks_tables_and_the_fallback_shape() -> None:
    result = DefaultContentExtractor().extract(DOCS_PAGE)
    assert (
        '```python\nimport example\n\nclient = example.Client(timeout=5)\nprint(client.get("/items?page=1&size=10"))\n\n```'
        in result.markdown
    )
    assert "```bash\ncurl -s" in result.markdown
    # selectolax returns a row's <th> cells before its <td> cells.
    assert '| note | mode | "a" \\| "b" | a |' in result.markdown
    assert "| retries | int | | |" in result.markdown
    fallback = FallbackContentExtractor().extract(DOCS_PAGE)
    assert fallback.markdown.startswith(
        "## Install\n\n### Parameters\n\n### Steps\n\nRun pip install"
    )
    assert fallback.metadata == PageMetadata(
        title="API &mdash; Docs", description="How to call the API"
    )  # the fallback leaves entities in the title, as the reference does


def test_bytes_are_read_as_the_reference_reads_them() -> None:
    page = NEWS_ARTICLE.encode()
    assert_same_everywhere("DefaultContentExtractor", {}, page, base_url=BASE)
    assert DefaultContentExtractor().extract("<p>caf\u00e9</p>".encode()).plain_text == "café"


# -- Hypothesis: generated trees and tag soup -----------------------------------------

TEXTS = st.lists(
    st.sampled_from(
        [
            "word",
            "Two words",
            " ",
            "\n",
            "  spaced  ",
            "&amp;",
            "&lt;b&gt;",
            "&nbsp;",
            "&amp;lt;",
            "[",
            "]",
            "(",
            ")",
            "[x](y)",
            "_",
            "*",
            "**",
            "`",
            "|",
            "#",
            "é",
            "1.",
            ">",
        ]
    ),
    min_size=1,
    max_size=4,
).map("".join)

HREFS = st.sampled_from(
    [
        "/abs/path",
        "rel/page.html",
        "../up",
        "?q=1",
        "http://example.com/x",
        "https://other.org/y",
        "//cdn.example.com/z",
        "#frag",
        "javascript:void(0)",
        "mailto:a@b.c",
        "tel:123",
        "",
        None,
        "http://[::1/broken",
    ]
)

CODE_CLASSES = st.sampled_from(
    [
        None,
        "",
        "language-python",
        "x language-js y",
        "language-",
        "language- sp",
        "language-a language-b",
        "plain",
    ]
)

CONTAINERS = ["div", "section", "article", "main", "span", "figure", "font", "abbr"]
BLOCKS = [
    "p",
    "p",
    "h1",
    "h2",
    "h3",
    "h6",
    "ul",
    "ul",
    "ol",
    "ol",
    "li",
    "li",
    "blockquote",
    "pre",
    "table",
    "tr",
    "td",
    "th",
    "thead",
    "tbody",
]
# Removed before reading (by the default remove_selectors or the regexes): rarer.
REMOVED = ["nav", "footer", "header", "aside", "script", "style", "noscript"]
INLINE = ["a", "a", "strong", "b", "em", "i", "code"]
VOIDS = ["br", "hr", "img"]


def attributes(tag: str, draw: Any) -> str:
    parts: list[str] = []
    if tag == "a":
        href = draw(HREFS)
        if href is None:
            parts.append(" href")
        elif draw(st.booleans()):
            parts.append(f' href="{href}"')
        if draw(st.booleans()):
            parts.append(' title="t" rel="nofollow"')
    elif tag == "code":
        css = draw(CODE_CLASSES)
        if css is None:
            parts.append(" class")
        elif css:
            parts.append(f' class="{css}"')
    elif tag == "img":
        parts.append(draw(st.sampled_from(["", ' alt=""', ' alt="pic"', " alt"])))
    elif tag in ("div", "section"):
        parts.append(
            draw(
                st.sampled_from(
                    ["", ' class="ad"', ' class="content"', ' role="main"', ' id="comments"']
                )
            )
        )
    return "".join(parts)


@st.composite
def html_trees(draw: Any, depth: int = 0) -> str:
    """A tree of the elements the extractor handles, with text, sometimes unclosed."""
    pieces: list[str] = []
    low = 1 if depth == 0 else 0
    for _ in range(draw(st.integers(low, 5 if depth < 3 else 2))):
        choice = draw(st.integers(0, 9))
        if choice < 3 or depth >= 5:
            pieces.append(draw(TEXTS))
        elif choice == 3:
            tag = draw(st.sampled_from(VOIDS))
            pieces.append(f"<{tag}{attributes(tag, draw)}>")
        else:
            tag = draw(st.sampled_from(CONTAINERS + BLOCKS + INLINE + REMOVED[: choice - 8]))
            inner = draw(html_trees(depth + 1))
            close = "" if draw(st.integers(0, 7)) == 0 else f"</{tag}>"
            pieces.append(f"<{tag}{attributes(tag, draw)}>{inner}{close}")
    return "".join(pieces)


@st.composite
def inline_content(draw: Any, depth: int = 0) -> str:
    """Text mixed with links, emphasis, inline code, images and line breaks."""
    pieces: list[str] = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.integers(0, 5))
        if kind < 2 or depth >= 2:
            pieces.append(draw(TEXTS))
        elif kind == 2:
            tag = draw(st.sampled_from(["br", "img"]))
            pieces.append(f"<{tag}{attributes(tag, draw)}>")
        else:
            tag = draw(st.sampled_from([*INLINE, "span", "font"]))
            inner = draw(inline_content(depth + 1))
            pieces.append(f"<{tag}{attributes(tag, draw)}>{inner}</{tag}>")
    return " ".join(pieces) if draw(st.booleans()) else "".join(pieces)


@st.composite
def blocks(draw: Any, depth: int = 0) -> str:
    """Block elements as pages hold them, now and then a random (malformed) tree."""
    out: list[str] = []
    for _ in range(draw(st.integers(1, 4 if depth < 2 else 2))):
        kind = draw(
            st.sampled_from(
                ["p", "p", "h", "list", "list", "quote", "pre", "table", "div", "removed", "random"]
            )
        )
        if depth >= 3 and kind in ("div", "removed", "list"):
            kind = "p"
        if kind == "p":
            out.append(f"<p>{draw(inline_content())}</p>")
        elif kind == "h":
            level = draw(st.integers(1, 6))
            out.append(f"<h{level}>{draw(inline_content())}</h{level}>")
        elif kind == "list":
            tag = draw(st.sampled_from(["ul", "ol"]))
            items = []
            for _ in range(draw(st.integers(0, 4))):
                nested = draw(blocks(depth + 1)) if draw(st.integers(0, 4)) == 0 else ""
                close = draw(st.sampled_from(["</li>", "</li>", ""]))
                items.append(f"<li>{draw(inline_content())}{nested}{close}")
            out.append(f"<{tag}>{''.join(items)}</{tag}>")
        elif kind == "quote":
            inner = draw(st.one_of(inline_content(), blocks(depth + 1)))
            out.append(f"<blockquote>{inner}</blockquote>")
        elif kind == "pre":
            text = draw(st.lists(TEXTS, min_size=1, max_size=3).map("\n".join))
            if draw(st.booleans()):
                text = f"<code{attributes('code', draw)}>{text}</code>"
            out.append(f"<pre>{text}</pre>")
        elif kind == "table":
            rows = []
            for _ in range(draw(st.integers(0, 3))):
                cells = "".join(
                    f"<{cell}>{draw(inline_content())}</{cell}>"
                    for cell in draw(st.lists(st.sampled_from(["td", "td", "th"]), max_size=3))
                )
                rows.append(f"<tr>{cells}</tr>")
            out.append(f"<table>{''.join(rows)}</table>")
        elif kind == "div":
            tag = draw(st.sampled_from(CONTAINERS))
            out.append(f"<{tag}{attributes(tag, draw)}>{draw(blocks(depth + 1))}</{tag}>")
        elif kind == "removed":
            tag = draw(st.sampled_from(REMOVED))
            out.append(f"<{tag}>{draw(blocks(depth + 1))}</{tag}>")
        else:
            out.append(draw(html_trees(depth + 1)))
    return "\n".join(out)


@st.composite
def html_pages(draw: Any) -> str:
    head = draw(
        st.sampled_from(
            [
                "",
                "<head><title>T &amp; t</title></head>",
                '<head><title>x</title><meta name="description" content="d">'
                '<meta property="og:title" content="og"><meta name="keywords" content="a,b">'
                '<link rel="canonical" href="/c"></head>',
            ]
        )
    )
    lang = draw(st.sampled_from(["", ' lang="en"']))
    base = draw(
        st.sampled_from(
            [
                "",
                "",
                "",
                '<base href="/docs/v2/">',
                '<base href="sub/dir/">',
                '<base href="https://example.com/other/index.html">',
                '<base href="//cdn.example.org/assets/">',
                '<base target="_top">',
            ]
        )
    )
    if base:
        head = f"<head>{base}</head>" if not head else head.replace("<head>", f"<head>{base}")
    body = draw(st.one_of(blocks(), blocks(), html_trees()))
    return f"<html{lang}>{head}<body>{body}</body></html>"


CONFIG_VARIANTS = st.fixed_dictionaries(
    {
        "preserve_headings": st.booleans(),
        "preserve_lists": st.booleans(),
        "preserve_links": st.booleans(),
        "preserve_emphasis": st.booleans(),
        "preserve_code": st.booleans(),
        "preserve_blockquotes": st.booleans(),
        "preserve_tables": st.booleans(),
        "include_link_urls": st.booleans(),
        "max_link_text_length": st.integers(0, 12),
        "max_heading_length": st.integers(0, 12),
    }
)

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(page=html_pages(), base_url=st.sampled_from([None, BASE, "https://example.com"]))
def test_generated_pages_match_the_reference(page: str, base_url: str | None) -> None:
    for kind in KINDS:
        assert_same_everywhere(kind, {}, page, base_url=base_url)


@FAST
@given(
    page=html_pages(), config=CONFIG_VARIANTS, selector=st.sampled_from([None, "p", "li", "div"])
)
def test_generated_pages_match_the_reference_under_any_config(
    page: str, config: dict[str, Any], selector: str | None
) -> None:
    assert_same_everywhere(
        "DefaultContentExtractor", config, page, base_url=BASE, selector=selector
    )


SOUP = st.lists(
    st.sampled_from(
        [
            "<p>",
            "</p>",
            "<P class=x>",
            "<pre>",
            "<h1>",
            "</h1>",
            "<h2 id=a>",
            "<h1 ",
            "<h3",
            "<p ",
            "</H2>",
            "</h3>",
            "<a href='/x'>",
            '<a class=y href="http://e.com/">',
            "<abbr href='/z'>",
            "</a>",
            "<script>",
            "</script>",
            "<style>",
            "</style>",
            "<!--",
            "-->",
            "<title>",
            "</TITLE>",
            '<meta name="description" content="d">',
            "<",
            ">",
            "<b>",
            "</b>",
            "text",
            " ",
            "&amp;",
            "'",
            '"',
        ]
    ),
    max_size=30,
).map("".join)


@FAST
@given(soup=SOUP, base_url=st.sampled_from([None, BASE]))
def test_fallback_matches_the_reference_on_tag_soup(soup: str, base_url: str | None) -> None:
    # The fallback's linear matching (cut at the last closing tag, headings
    # indexed by level) finds what the reference's regular expressions find.
    assert_same_everywhere("FallbackContentExtractor", {}, soup, base_url=base_url)


REFERENCE_LINK = re.compile(r"\[([^\]]+)\]\([^)]+\)")


@FAST
@given(text=st.text(alphabet="[]()a \n", max_size=40))
@example("[a]() [b](c)")
@example("[[a](b) [](c) [d]x(e) [f](g")
@example("[a](b)(c)] [x\n](\ny)")
def test_link_stripping_matches_the_reference_pattern(text: str) -> None:
    assert ours._strip_links(text) == REFERENCE_LINK.sub(r"\1", text)


# -- what the reference got wrong ------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "crash"),
    [("<code class>", TypeError), ('<code class="language-">', IndexError)],
)
def test_a_code_block_with_a_bare_class_has_no_language(code: str, crash: type[Exception]) -> None:
    page = f"<pre>{code}x = 1</code></pre>"
    with pytest.raises(crash):
        ref.DefaultContentExtractor().extract(page)
    result = DefaultContentExtractor().extract(page)
    assert result.markdown == "```\nx = 1\n```"
    assert result.plain_text == "x = 1"


def test_deep_nesting_does_not_hit_the_recursion_limit() -> None:
    depth = 3000
    page = "<div>" * depth + "<p>deep <b>x</b></p>" + "</div>" * depth
    page += "<p>" + "<span>" * depth + "inline <em>y</em>" + "</span>" * depth + "</p>"
    with pytest.raises(RecursionError):
        ref.DefaultContentExtractor().extract(page)
    result = DefaultContentExtractor().extract(page)
    assert result.markdown == "deep **x**\n\ninline _y_"
    assert result.plain_text == "deep x inline y"


def test_an_unparsable_href_is_left_out_not_fatal() -> None:
    page = (
        '<p><a href="http://[::1/x">bad</a> <a href="foo://[y">worse</a> <a href="/ok">ok</a></p>'
    )
    for kind in KINDS:
        with pytest.raises(ValueError, match="Invalid IPv6 URL"):
            getattr(ref, kind)().extract(page, base_url=BASE)
        result = getattr(ours, kind)().extract(page, base_url=BASE)
        assert [link.url for link in result.links] == ["https://example.com/ok"]
    markdown = DefaultContentExtractor().extract(page, base_url=BASE).markdown
    assert markdown == "[bad](http://[::1/x) [worse](foo://[y) [ok](https://example.com/ok)"


def test_min_text_length_leaves_out_short_blocks() -> None:
    page = (
        "<h2>Hi</h2><h2>Longer heading</h2><p>ok</p><p>long enough</p>"
        "<ul><li>a</li><li>item two</li><li>item three</li></ul>"
        "<ol><li>b</li><li>first kept</li></ol><blockquote>no</blockquote>"
        "<blockquote>quoted text</blockquote><pre>c</pre>"
    )
    result = DefaultContentExtractor(ExtractionConfig(min_text_length=4)).extract(page)
    assert result.markdown == (
        "## Longer heading\n\nlong enough\n\n- item two\n\n- item three\n\n"
        "1. first kept\n\n> quoted text\n\n```\nc\n```"
    )
    assert result.heading_outline == [(2, "Longer heading")]
    # 0 and 1 both leave out only empty blocks, as the reference did.
    for minimum in (0, 1):
        config = ExtractionConfig(min_text_length=minimum)
        assert DefaultContentExtractor(config).extract(page).to_dict() == (
            ref.DefaultContentExtractor().extract(page).to_dict()
        )


# -- large pages: linear time ----------------------------------------------------------


def big_page(items: int) -> str:
    rows = "".join(f"<tr><td>{i}</td><td>row {i}</td></tr>" for i in range(items // 4))
    listing = "".join(
        f'<li>Item {i} has <a href="/items/{i}">its page</a> and <b>bold</b></li>'
        for i in range(items)
    )
    paragraphs = "".join(
        f"<p>Paragraph {i} [see note] with _underscores_ and "
        f'<a href="https://other.org/{i % 50}">a link</a>.'
        for i in range(items)
    )
    return (
        f"<html><head><title>Big</title></head><body><main><h1>Big page</h1>"
        f"<ul>{listing}</ul><table>{rows}</table>{paragraphs}"
        f"<p>{'[' * 20000} brackets]</p></main></body></html>"
    )


def test_a_one_megabyte_page_is_read_in_linear_time() -> None:
    # The reference spends minutes here: its list items are matched to their list
    # by serialized HTML, and its link pattern rescans from every "[".
    page = big_page(6000)
    assert len(page) > 1_000_000
    result = DefaultContentExtractor().extract(page, base_url=BASE)
    assert result.markdown.count("\n- Item ") == 6000
    assert (
        "- Item 5999 has [its page](https://example.com/items/5999) and **bold**" in result.markdown
    )
    assert "| 1499 | row 1499 |" in result.markdown
    assert len(result.links) == 6000 + 50
    assert result.plain_text.endswith("[" * 20000 + " brackets]")
    assert result.word_count == len(result.plain_text.split())


def test_a_one_megabyte_page_of_unclosed_tags_is_read_in_linear_time_by_the_fallback() -> None:
    # Unclosed <p> and <h2> tags made the reference's patterns rescan the page
    # from each of them.
    page = "<title>Big" + "".join(
        f"<h2>Section {i}<p>Paragraph {i} &amp; words <a href='/s/{i}'>link {i}"
        for i in range(25000)
    )
    assert len(page) > 1_000_000
    result = FallbackContentExtractor().extract(page, base_url=BASE)
    assert result.markdown == ""
    assert result.heading_outline == []
    assert result.links == []
    assert result.metadata == PageMetadata(title=None)
    assert result.word_count == 25000 * 8 + 1
    assert result.plain_text.endswith("Section 24999 Paragraph 24999 & words link 24999")
    closed = page.replace("<p>", "</h2><p>") + "</p></a>"
    result = FallbackContentExtractor().extract(closed, base_url=BASE)
    assert len(result.heading_outline) == 25000
    assert result.markdown.endswith("Paragraph 24999 & words link 24999")
    assert len(result.links) == 1


# -- configuration ---------------------------------------------------------------------


def test_config_defaults_and_field_order_match_the_reference() -> None:
    names = [field.name for field in attrs.fields(ExtractionConfig)]
    assert names == [field.name for field in ref.ExtractionConfig.__dataclass_fields__.values()]
    mine, theirs = ExtractionConfig(), ref.ExtractionConfig()
    for name in names:
        assert getattr(mine, name) == getattr(theirs, name), name
    positional = ExtractionConfig(
        False, False, False, False, False, False, False, ["p"], ["main"], 3, 4, False, 2
    )
    assert positional.remove_selectors == ["p"]
    assert positional.min_text_length == 2


def test_config_selector_lists_are_read_only() -> None:
    config = ExtractionConfig(remove_selectors=("script", ".ad"))
    assert type(config.remove_selectors) is FrozenList
    assert config.remove_selectors == ["script", ".ad"]
    with pytest.raises(TypeError):
        config.remove_selectors.append("style")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        config.max_heading_length = 5  # type: ignore[misc]
    assert [*config.remove_selectors, "nav"] == ["script", ".ad", "nav"]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"preserve_links": 1},
            TypeError,
            "ExtractionConfig: preserve_links must be a bool; got int",
        ),
        (
            {"include_link_urls": "no"},
            TypeError,
            "ExtractionConfig: include_link_urls must be a bool; got str",
        ),
        (
            {"max_link_text_length": 2.5},
            TypeError,
            "ExtractionConfig: max_link_text_length must be an int; got float",
        ),
        (
            {"max_heading_length": True},
            TypeError,
            "ExtractionConfig: max_heading_length must be an int; got bool",
        ),
        (
            {"min_text_length": -1},
            ValueError,
            "ExtractionConfig: min_text_length must be at least 0; got -1",
        ),
        (
            {"max_link_text_length": -3},
            ValueError,
            "ExtractionConfig: max_link_text_length must be at least 0; got -3",
        ),
        (
            {"remove_selectors": "script"},
            TypeError,
            "ExtractionConfig: remove_selectors must be a list of CSS selectors (str); got str",
        ),
        (
            {"remove_selectors": None},
            TypeError,
            "ExtractionConfig: remove_selectors must be a list of CSS selectors (str); got NoneType",
        ),
        (
            {"main_content_selectors": ["main", 3]},
            TypeError,
            "ExtractionConfig: main_content_selectors[1] must be a str; got int",
        ),
        (
            {"main_content_selectors": ["main", " "]},
            ValueError,
            "ExtractionConfig: main_content_selectors[1] must not be blank; got ' '",
        ),
    ],
)
def test_config_checks_its_fields(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        ExtractionConfig(**kwargs)


def test_the_default_extractor_rejects_a_selector_selectolax_cannot_parse() -> None:
    config = ExtractionConfig(main_content_selectors=["main", ":::"])
    message = (
        "DefaultContentExtractor: config.main_content_selectors[1] is not a CSS selector "
        "selectolax can parse; got ':::'"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        DefaultContentExtractor(config)
    # The fallback does not read selectors, so it takes the config.
    assert FallbackContentExtractor(config).config is config
    # The reference failed only when a page was read, with selectolax's error.
    with pytest.raises(ValueError, match="Bad CSS Selectors"):
        ref.DefaultContentExtractor(
            ref.ExtractionConfig(main_content_selectors=["main", ":::"])
        ).extract("<p>x</p>")


# -- calls, results, the interface -----------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_calls_check_their_arguments(kind: str) -> None:
    extractor = getattr(ours, kind)()
    html_rule = "a str or bytes" if kind == "DefaultContentExtractor" else "a str"
    with pytest.raises(
        TypeError, match=rf"^{kind}\.extract: html must be {html_rule}; got NoneType$"
    ):
        extractor.extract(None)
    with pytest.raises(
        TypeError, match=rf"^{kind}\.extract: base_url must be a str or None; got int$"
    ):
        extractor.extract("<p>x</p>", base_url=1)
    with pytest.raises(
        TypeError, match=rf"^{kind}\.extract_links: selector must be a str or None; got list$"
    ):
        extractor.extract_links("<p>x</p>", selector=["p"])
    with pytest.raises(
        TypeError, match=rf"^{kind}\.extract_metadata: html must be {html_rule}; got int$"
    ):
        extractor.extract_metadata(3)
    with pytest.raises(
        TypeError, match=rf"^{kind}: config must be an ExtractionConfig or None; got dict$"
    ):
        getattr(ours, kind)({"preserve_links": False})


def test_a_bad_selector_argument_raises_selectolax_error_as_in_the_reference() -> None:
    with pytest.raises(ValueError, match="Bad CSS Selectors"):
        ref.DefaultContentExtractor().extract("<p>x</p>", selector=":::")
    with pytest.raises(ValueError, match="Bad CSS Selectors"):
        DefaultContentExtractor().extract("<p>x</p>", selector=":::")


def test_the_base_class_leaves_the_methods_to_subclasses() -> None:
    base = ContentExtractor()
    assert base.config == ExtractionConfig()
    with pytest.raises(NotImplementedError, match=r"^Subclasses must implement extract$"):
        base.extract("<p>x</p>")
    with pytest.raises(NotImplementedError, match=r"^Subclasses must implement extract_metadata$"):
        base.extract_metadata("<p>x</p>")
    with pytest.raises(NotImplementedError, match=r"^Subclasses must implement extract_links$"):
        base.extract_links("<p>x</p>")


def test_result_to_dict_matches_the_reference() -> None:
    assert ExtractionResult().to_dict() == ref.ExtractionResult().to_dict()
    outline = [(1, "A"), (2, "B")]
    mine = ExtractionResult(
        "# A",
        "A",
        PageMetadata(title="t", keywords=["k"]),
        [ExtractedLink("https://x/", "x")],
        1,
        outline,
    )
    theirs = ref.ExtractionResult(
        "# A",
        "A",
        ref_models.PageMetadata(title="t", keywords=["k"]),
        [ref_models.ExtractedLink("https://x/", "x")],
        1,
        list(outline),
    )
    assert mine.to_dict() == theirs.to_dict()
    assert mine.to_dict()["heading_outline"] is not mine.heading_outline


def test_result_is_mutable_and_type_checked() -> None:
    result = ExtractionResult()
    result.markdown = "trimmed"
    assert result.markdown == "trimmed"
    with pytest.raises(TypeError, match=r"^ExtractionResult: word_count must be an int; got str$"):
        result.word_count = "3"  # type: ignore[assignment]
    with pytest.raises(
        TypeError, match=r"^ExtractionResult: metadata must be a PageMetadata; got dict$"
    ):
        ExtractionResult(metadata={})  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"^ExtractionResult: links must be a list of ExtractedLink; got tuple$"
    ):
        ExtractionResult(links=())  # type: ignore[arg-type]


def test_the_module_surface_matches_the_reference() -> None:
    assert sorted(ours.__all__) == sorted(ref.__all__)
    assert ours.SELECTOLAX_AVAILABLE is True
    assert isinstance(get_default_extractor(), DefaultContentExtractor)
    config = ExtractionConfig(preserve_links=False)
    assert get_default_extractor(config).config is config


def test_without_selectolax_the_default_extractor_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ours, "SELECTOLAX_AVAILABLE", False)
    message = (
        "selectolax is required for DefaultContentExtractor. "
        "Install with: pip install 'stageflow-trio[websearch]'"
    )
    with pytest.raises(ImportError, match=f"^{re.escape(message)}$"):
        DefaultContentExtractor()
    assert type(get_default_extractor()) is FallbackContentExtractor


def test_the_module_imports_and_falls_back_without_selectolax() -> None:
    code = """
import sys

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "selectolax":
            raise ImportError("blocked")

sys.meta_path.insert(0, Block())
from stageflow_trio.websearch import extractor
print(extractor.SELECTOLAX_AVAILABLE, type(extractor.get_default_extractor()).__name__)
print(repr(extractor.get_default_extractor().extract("<h1>A</h1><p>b</p>").markdown))
"""
    assert python_output(code) == "False FallbackContentExtractor\n'# A\\n\\nb'\n"


@pytest.mark.parametrize(
    ("html", "plain", "reference_plain"),
    [
        # Identifiers keep their underscores (the reference: "moveonafter").
        (
            "<p>Call move_on_after or fail_after.</p>",
            "Call move_on_after or fail_after.",
            "Call moveonafter or fail_after.",
        ),
        ("<p>see __init__ here</p>", "see __init__ here", "see _init_ here"),
        # Emphasis is still plain text; one around an identifier loses only its marks.
        (
            "<p>use <em>snake_case</em> names</p>",
            "use snake_case names",
            "use snakecase_ names",
        ),
        ("<p>a <em>b</em> c</p>", "a b c", "a b c"),
        # Underscores written around words read as emphasis, as in the reference.
        ("<p>an _old_ habit</p>", "an old habit", "an old habit"),
    ],
)
def test_underscores_inside_words_are_text(html: str, plain: str, reference_plain: str) -> None:
    # The selectolax extractor's plain text is its markdown without the marks (the
    # regex fallback's is the page without its tags: no emphasis is read there).
    theirs, mine = extractors("DefaultContentExtractor", {})
    assert mine.extract(html).plain_text == plain
    assert theirs.extract(html).plain_text == reference_plain
