"""DefaultContentExtractor on selectolax's lexbor backend, against the Modest one.

selectolax 1.0 removed ``selectolax.parser`` (Modest, the reference's parser);
there the extractor imports ``selectolax.lexbor`` instead (``_LexborParser``:
lexbor's parser, decoding bytes first). The venv's selectolax has both, so these
tests swap the module's ``HTMLParser`` for ``_LexborParser`` (a monkeypatch,
undone after each use) and compare with the Modest result on the same input:
the corpus and configurations of test_extractor.py, Hypothesis-built pages, bad
selectors. The differences found are pinned by their own tests:

- a table row mixing ``<th>`` and ``<td>`` cells: Modest returns the header cells
  first, lexbor keeps document order (which is what the page says);
- an unfinished tag at the very end of the input: lexbor tokenizes it as the HTML
  standard says (a lone ``<`` is text, ``<b`` is dropped), Modest the other way
  round;
- bytes without a byte order mark or ``<meta>`` charset: read as UTF-8 (an
  undecodable byte becomes U+FFFD; Modest guesses or drops it); a UTF-8 byte
  order mark is dropped (Modest keeps U+FEFF in the text);
- invalid selectors Modest accepts (``p[``, ``div >``, matching nothing) are
  rejected with the ValueError;
- ``remove_selectors`` that match ``<body>`` (Modest reads the detached body on).

One test runs the real import with ``selectolax.parser`` blocked, as under
selectolax 1.0.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from selectolax.lexbor import LexborHTMLParser, SelectolaxError
from selectolax.parser import HTMLParser as ModestHTMLParser

from stageflow_trio.websearch import extractor as ours
from stageflow_trio.websearch.extractor import DefaultContentExtractor, ExtractionConfig
from tests.fakes import python_output
from tests.websearch.test_extractor import (
    BASE,
    CONFIG_VARIANTS,
    CONFIGS,
    CORPUS,
    SOUP,
    html_pages,
    html_trees,
)

assert ours._LexborParser is not None
PARSERS = {
    "modest": ModestHTMLParser,
    "lexbor": ours._LexborParser,
    "plain_lexbor": LexborHTMLParser,
}

# DOCS_PAGE's row <td>mode</td><td>"a" | "b"</td><td>a</td><th>note</th>.
MODEST_ROW = '| note | mode | "a" \\| "b" | a |'
LEXBOR_ROW = '| mode | "a" \\| "b" | a | note |'


@contextmanager
def backend(name: str) -> Iterator[None]:
    """Run the extractor on ``name``'s parser inside the block."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ours, "HTMLParser", PARSERS[name])
        patch.setattr(ours, "_BACKEND", name.removeprefix("plain_"))
        yield


def outputs(name: str, config: dict[str, Any], html: Any, **call: Any) -> dict[str, Any]:
    """Everything the extractor reads from ``html`` on backend ``name``."""
    with backend(name):
        extractor = DefaultContentExtractor(ExtractionConfig(**config))
        return {
            "extract": extractor.extract(html, **call).to_dict(),
            "links": [link.to_dict() for link in extractor.extract_links(html, **call)],
            "metadata": extractor.extract_metadata(html).to_dict(),
        }


def modest_with_lexbor_rows(result: dict[str, Any]) -> dict[str, Any]:
    """The Modest result with DOCS_PAGE's mixed row in document order, as lexbor reads it."""
    markdown = result["extract"]["markdown"]
    assert LEXBOR_ROW not in markdown
    result["extract"]["markdown"] = markdown.replace(MODEST_ROW, LEXBOR_ROW)
    return result


def test_the_module_uses_modest_when_selectolax_has_it() -> None:
    # The differential tests against the reference depend on it.
    assert ours._BACKEND == "modest"
    assert vars(ours)["HTMLParser"] is ModestHTMLParser
    assert ours.SELECTOLAX_AVAILABLE is True


def test_the_module_falls_back_to_lexbor_without_selectolax_parser() -> None:
    # As under selectolax >= 1.0, where importing selectolax.parser fails.
    code = """
import sys

class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "selectolax.parser":
            raise ImportError("removed in selectolax 1.0")

sys.meta_path.insert(0, Block())
from selectolax.lexbor import LexborHTMLParser
from stageflow_trio.websearch import extractor
parser = extractor.HTMLParser
print(extractor._BACKEND, extractor.SELECTOLAX_AVAILABLE, issubclass(parser, LexborHTMLParser))
print(type(extractor.get_default_extractor()).__name__)
page = "<main><h1>T</h1><table><tr><th>a</th><td>b</td><th>c</th></tr></table></main>"
print(repr(extractor.get_default_extractor().extract(page).markdown))
try:
    extractor.DefaultContentExtractor().extract("<p>x</p>", selector=":::")
except ValueError as exc:
    print(repr(exc), type(exc.__cause__).__name__)
page = '<meta charset="windows-1251"><p>\u043f\u0440\u0438</p>'.encode("cp1251")
print(extractor.get_default_extractor().extract(page).plain_text == "\u043f\u0440\u0438")
"""
    assert python_output(code) == (
        "lexbor True True\n"
        "DefaultContentExtractor\n"
        "'# T\\n\\n| a | b | c |\\n| --- | --- | --- |'\n"
        "ValueError('Bad CSS Selectors: :::') SelectolaxError\n"
        "True\n"
    )


@pytest.mark.parametrize("config", CONFIGS.values(), ids=list(CONFIGS))
@pytest.mark.parametrize("page", CORPUS.values(), ids=list(CORPUS))
@pytest.mark.parametrize("base_url", [None, BASE], ids=["no_base", "base"])
def test_the_corpus_reads_the_same_on_lexbor(
    config: dict[str, Any], page: str, base_url: str | None
) -> None:
    # extract, extract_links and extract_metadata; only DOCS_PAGE's mixed row
    # differs (where the table is kept).
    expected = modest_with_lexbor_rows(outputs("modest", config, page, base_url=base_url))
    assert outputs("lexbor", config, page, base_url=base_url) == expected


@pytest.mark.parametrize(
    "selector", ["article", "#content table", "ul", "li", "p", "h1", "#nowhere", ""]
)
@pytest.mark.parametrize("page", ["news", "docs", "listing", "malformed"])
def test_the_corpus_with_a_selector_reads_the_same_on_lexbor(selector: str, page: str) -> None:
    html = CORPUS[page]
    expected = modest_with_lexbor_rows(
        outputs("modest", {}, html, base_url=BASE, selector=selector)
    )
    assert outputs("lexbor", {}, html, base_url=BASE, selector=selector) == expected


def test_utf8_bytes_read_the_same_on_lexbor() -> None:
    page = CORPUS["news"].encode()
    assert outputs("lexbor", {}, page, base_url=BASE) == outputs("modest", {}, page, base_url=BASE)


# -- the differences -------------------------------------------------------------------


def test_a_row_mixing_header_and_data_cells_is_read_in_document_order() -> None:
    page = "<table><tr><th>A</th><td>1</td><th>B</th><td>2</td></tr><tr><td>x</td></tr></table>"
    header = "| --- | --- | --- | --- |\n| x | | | |"
    assert outputs("modest", {}, page)["extract"]["markdown"] == "| A | B | 1 | 2 |\n" + header
    assert outputs("lexbor", {}, page)["extract"]["markdown"] == "| A | 1 | B | 2 |\n" + header
    markdown = outputs("lexbor", {}, CORPUS["docs"])["extract"]["markdown"]
    assert LEXBOR_ROW in markdown
    assert MODEST_ROW not in markdown


@pytest.mark.parametrize(
    ("page", "modest", "lexbor"),
    [
        # A lone "<" at the end is text (HTML standard: EOF in the tag open state);
        # Modest drops it after a tag.
        ("<p>One</p><", ("One", "One"), ("One", "One <")),
        ("<p>One</p><p>Two <a href=/x>x</a> <", ("One\n\nTwo [x](/x)", "One Two x"), None),
        # An unfinished tag name at the end is dropped (EOF in the tag name state);
        # Modest keeps it as text.
        ("<p>One</p> <b", ("One", "One b"), ("One", "One")),
    ],
)
def test_an_unfinished_tag_at_the_end_is_tokenized_as_the_html_standard_says(
    page: str, modest: tuple[str, str], lexbor: tuple[str, str] | None
) -> None:
    if lexbor is None:
        lexbor = ("One\n\nTwo [x](/x) <", "One Two x <")
    for name, (markdown, plain_text) in (("modest", modest), ("lexbor", lexbor)):
        result = outputs(name, {}, page)["extract"]
        assert (result["markdown"], result["plain_text"]) == (markdown, plain_text), name
        assert result["word_count"] == len(plain_text.split())


@pytest.mark.parametrize(
    "page",
    [
        '<meta charset="windows-1251"><p>привет</p>'.encode("cp1251"),
        '<meta http-equiv="Content-Type" content="text/html; charset=ISO-8859-7"><p>αβ</p>'.encode(
            "iso-8859-7"
        ),
        "<p>café</p>".encode(),
    ],
    ids=["meta_charset", "meta_http_equiv", "utf8"],
)
def test_bytes_in_any_declared_encoding_read_the_same_on_lexbor(page: bytes) -> None:
    expected = outputs("modest", {}, page)
    assert outputs("lexbor", {}, page) == expected
    assert expected["extract"]["word_count"] == 1
    # lexbor's own parser reads bytes as UTF-8 and fails on the text.
    if not page.startswith(b"<p>"):
        with backend("plain_lexbor"), pytest.raises(UnicodeDecodeError):
            DefaultContentExtractor().extract(page)


def test_undeclared_bytes_are_read_as_utf8_on_lexbor() -> None:
    # No byte order mark, no <meta> charset: UTF-8, an undecodable byte as
    # U+FFFD (Modest drops it here).
    page = "<p>caf\u00e9 ok</p>".encode("latin-1")
    assert outputs("modest", {}, page)["extract"]["plain_text"] == "caf ok"
    assert outputs("lexbor", {}, page)["extract"]["plain_text"] == "caf\ufffd ok"


@pytest.mark.parametrize(
    ("page", "modest_markdown"),
    [
        (codecs.BOM_UTF8 + "<p>café</p>".encode(), "café"),
        (codecs.BOM_UTF16_LE + "<p>café</p>".encode("utf-16-le"), "café"),
        # Modest reads big-endian UTF-16 as little-endian: no tags, no content.
        (codecs.BOM_UTF16_BE + "<p>café</p>".encode("utf-16-be"), ""),
    ],
    ids=["utf8", "utf16le", "utf16be"],
)
def test_a_byte_order_mark_names_the_encoding_and_is_not_text_on_lexbor(
    page: bytes, modest_markdown: str
) -> None:
    # Modest also keeps the mark as a U+FEFF text node.
    modest = outputs("modest", {}, page)["extract"]
    lexbor = outputs("lexbor", {}, page)["extract"]
    assert modest["markdown"] == modest_markdown
    assert modest["plain_text"].startswith("\ufeff")
    assert (lexbor["markdown"], lexbor["plain_text"]) == ("café", "café")


@pytest.mark.parametrize(
    ("page", "text"),
    [
        (b"<p>caf\xc3\xa9", "<p>caf\u00e9"),
        (b"<meta charset='koi8-r'><p>\xd0\xd2", "<meta charset='koi8-r'><p>\u043f\u0440"),
        (b'<META CHARSET = " latin-1"><p>\xe9', '<META CHARSET = " latin-1"><p>\u00e9'),
        # A UTF-16 <meta> was read as ASCII, so it is wrong: UTF-8.
        (b"<meta charset=utf-16><p>\xc3\xa9", "<meta charset=utf-16><p>\u00e9"),
        # Unknown names and codecs that do not decode bytes to text: UTF-8.
        (b"<meta charset=nope><p>\xc3\xa9", "<meta charset=nope><p>\u00e9"),
        (b"<meta charset=base64><p>x", "<meta charset=base64><p>x"),
        (b"<meta charset=rot13><p>x", "<meta charset=rot13><p>x"),
        # Only the first 1,024 bytes are searched.
        (b" " * 1024 + b"<meta charset=latin-1>\xe9", " " * 1024 + "<meta charset=latin-1>\ufffd"),
        (codecs.BOM_UTF8 + b"<p>\xc3\xa9", "<p>\u00e9"),
        (codecs.BOM_UTF16_BE + "<p>\u00e9".encode("utf-16-be"), "<p>\u00e9"),
    ],
)
def test_decode_page_sniffs_the_encoding(page: bytes, text: str) -> None:
    assert ours._decode_page(page) == text


@pytest.mark.parametrize(
    ("selector", "modest_markdown"), [("html", "x"), (":root", "x"), ("*", "")]
)
def test_a_selector_matching_the_root_reads_as_on_modest(
    selector: str, modest_markdown: str
) -> None:
    # lexbor refuses to delete the document's root (SelectolaxError); the extractor
    # keeps the root, so the page reads as the reference read it on Modest.
    page = "<title>t</title><p>x</p>"
    config: dict[str, Any] = {"remove_selectors": [selector]}
    modest = outputs("modest", config, page)
    assert modest["extract"]["markdown"] == modest_markdown
    assert outputs("lexbor", config, page) == modest


def test_removing_the_body_leaves_nothing_to_read_on_lexbor() -> None:
    # Modest keeps reading the detached <body>; lexbor reads what is left.
    page = "<title>t</title><p>x <a href=/y>y</a></p>"
    config = {"remove_selectors": ["body"]}
    modest = outputs("modest", config, page)
    lexbor = outputs("lexbor", config, page)
    assert (modest["extract"]["markdown"], modest["extract"]["plain_text"]) == ("x", "x")
    assert (lexbor["extract"]["markdown"], lexbor["extract"]["plain_text"]) == ("", "")
    assert lexbor["extract"]["metadata"] == modest["extract"]["metadata"]


# -- generated pages ---------------------------------------------------------------------


def mixed_rows(page: str) -> bool:
    """Whether a row of ``page`` has cells Modest returns out of document order."""
    for row in ModestHTMLParser(page).css("tr"):
        selected = [cell.tag for cell in row.css("th, td")]
        if selected != [tag for tag in tags_in_order(row) if tag in ("th", "td")]:
            return True
    return False


def tags_in_order(node: Any) -> list[str]:
    """The tags of ``node``'s descendants in document order (Modest's traverse()
    runs on past the node's siblings)."""
    tags: list[str] = []
    stack = [node.child] if node.child is not None else []
    while stack:
        current = stack.pop()
        tags.append(current.tag)
        if current.next is not None:
            stack.append(current.next)
        if current.child is not None:
            stack.append(current.child)
    return tags


def without_tables(result: dict[str, Any]) -> dict[str, Any]:
    markdown = result["extract"]["markdown"]
    kept = [line for line in markdown.split("\n") if not line.startswith("|")]
    result["extract"]["markdown"] = "\n".join(kept)
    return result


def assert_same_on_both(page: str, config: dict[str, Any], **call: Any) -> None:
    modest = outputs("modest", config, page, **call)
    lexbor = outputs("lexbor", config, page, **call)
    if mixed_rows(page):
        # Everything but the table rows (pinned above) is the same.
        assert without_tables(lexbor) == without_tables(modest)
    else:
        assert lexbor == modest


FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(
    page=html_pages(),
    config=CONFIG_VARIANTS,
    base_url=st.sampled_from([None, BASE]),
    selector=st.sampled_from([None, "p", "li", "div", "a", "table"]),
)
def test_generated_pages_read_the_same_on_lexbor(
    page: str, config: dict[str, Any], base_url: str | None, selector: str | None
) -> None:
    assert_same_on_both(page, config, base_url=base_url, selector=selector)


@FAST
@given(page=st.one_of(html_trees(), SOUP), base_url=st.sampled_from([None, BASE]))
def test_generated_fragments_and_tag_soup_read_the_same_on_lexbor(
    page: str, base_url: str | None
) -> None:
    if page.rfind("<") > page.rfind(">"):
        return  # ends inside a tag: the tokenizers differ (pinned above)
    assert_same_on_both(page, {}, base_url=base_url)


def test_mixed_rows_finds_the_rows_modest_reorders() -> None:
    # The split in assert_same_on_both relies on it.
    assert mixed_rows("<table><tr><td>1</td><th>A</th></tr></table>")
    assert not mixed_rows("<table><tr><th>A</th><td>1</td></tr><tr><td>2</td></tr></table>")
    assert mixed_rows(CORPUS["docs"])


# -- bad selectors -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["modest", "lexbor"])
@pytest.mark.parametrize("param", ["remove_selectors", "main_content_selectors"])
def test_a_bad_configured_selector_is_rejected_alike(name: str, param: str) -> None:
    message = (
        f"DefaultContentExtractor: config.{param}[1] is not a CSS selector "
        "selectolax can parse; got ':::'"
    )
    fields: dict[str, Any] = {param: ["p", ":::"]}
    config = ExtractionConfig(**fields)
    with backend(name), pytest.raises(ValueError, match=f"^{re.escape(message)}$") as caught:
        DefaultContentExtractor(config)
    assert type(caught.value.__cause__) is (ValueError if name == "modest" else SelectolaxError)


@pytest.mark.parametrize("name", ["modest", "lexbor"])
@pytest.mark.parametrize("method", ["extract", "extract_links"])
@pytest.mark.parametrize("selector", [":::", "#", "p ~~ q", ",p"])
def test_a_bad_selector_argument_raises_the_same_value_error(
    name: str, method: str, selector: str
) -> None:
    with backend(name):
        extractor = DefaultContentExtractor()
        with pytest.raises(ValueError, match=f"^{re.escape(f'Bad CSS Selectors: {selector}')}$"):
            getattr(extractor, method)("<p>x</p>", selector=selector)


@pytest.mark.parametrize("method", ["extract", "extract_links"])
@pytest.mark.parametrize("selector", ["p[", "div >", "p,", ":nth-child("])
def test_lexbor_rejects_invalid_selectors_modest_reads_as_matching_nothing(
    method: str, selector: str
) -> None:
    page = "<div><p>x <a href=/y>y</a></p></div>"
    modest = outputs("modest", {}, page, selector=selector)
    assert modest == outputs("modest", {}, page, selector="#nowhere")
    with backend("lexbor"):
        extractor = DefaultContentExtractor()
        with pytest.raises(ValueError, match=f"^{re.escape(f'Bad CSS Selectors: {selector}')}$"):
            getattr(extractor, method)(page, selector=selector)
    config = ExtractionConfig(main_content_selectors=[selector])
    DefaultContentExtractor(config)  # Modest takes it
    with backend("lexbor"), pytest.raises(ValueError, match="is not a CSS selector"):
        DefaultContentExtractor(config)


@pytest.mark.parametrize("name", ["modest", "lexbor"])
def test_a_remove_selector_matching_the_root_leaves_the_page_readable(name: str) -> None:
    # lexbor refuses to remove <html> (selectolax's own SelectolaxError escaped from
    # extract); the reference, on Modest, went on reading the page: both read it here.
    page = "<html><body><p>hello there</p><script>x()</script></body></html>"
    with backend(name):
        extractor = DefaultContentExtractor(ExtractionConfig(remove_selectors=["html", "script"]))
        result = extractor.extract(page)
    assert result.markdown == "hello there"
    assert result.word_count == 2
