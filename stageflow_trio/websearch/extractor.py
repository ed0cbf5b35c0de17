"""Turn a page's HTML into markdown, plain text, metadata and links.

- :class:`ExtractionConfig`: what to keep (headings, lists, links, emphasis, code,
  quotes, tables), what to cut (scripts, navigation, ads) and where the main
  content usually is.
- :class:`ExtractionResult`: the markdown, the plain text, the word count, the
  :class:`~stageflow_trio.websearch.models.PageMetadata`, the links and the outline
  of headings.
- :class:`ContentExtractor`: the interface; :class:`DefaultContentExtractor` reads
  the page with selectolax, :class:`FallbackContentExtractor` with regular
  expressions (for when selectolax is not installed), and
  :func:`get_default_extractor` picks the better one available.

selectolax comes with ``pip install 'stageflow-trio[websearch]'``. This module
imports without it (``SELECTOLAX_AVAILABLE`` says whether it is there);
constructing a :class:`DefaultContentExtractor` then raises ImportError.

Extraction is synchronous CPU work, so nothing here needs trio; a caller that
must stay responsive during a large page can run it in
``trio.to_thread.run_sync``. For the same HTML both extractors give what the
reference's give, character for character (the tests compare them), except where
the reference fails:

- It crashed on ``<pre><code class>`` (a class attribute with no value: a
  TypeError) and on ``class="language-"`` (an IndexError); here the code block
  just has no language.
- Its DOM walk was recursive: a page nested about 1,000 elements deep (unclosed
  ``<div>`` or ``<span>`` tags pile up quickly) raised RecursionError. The walk
  here keeps its own stack, so any depth the parser builds works.
- It matched list items to their list by comparing serialized HTML
  (selectolax's ``Node.__eq__``), which made one long list cost time
  quadratic in its size; here the list's children are walked directly.
  Stripping markdown links from a paragraph, and the fallback's regular
  expressions, were quadratic on some inputs too (many ``[`` before a ``]``,
  unclosed ``<p>`` or ``<h2>`` tags, ``<`` without ``>``); they are linear here
  and give the same output.
- One unparsable href (``http://[::1``) made ``urllib.parse`` raise ValueError
  and failed the whole page; here that link is left out of ``links`` and kept
  as written in the markdown.
- Relative links resolved against the page's URL, ignoring a ``<base href>``;
  here, as in a browser, against the document's base URL (the first ``<base>``
  with an ``href``, resolved against the page's URL), in ``links`` and in the
  markdown, on every parser and the regex fallback. A link is still internal
  when it is on the page's host.
- ``min_text_length`` was accepted and ignored; here a heading, paragraph, list
  item or block quote whose stripped text is shorter is left out (the default,
  1, leaves out only empty blocks, as the reference did).
- The configuration is checked when it is built (a TypeError or ValueError
  naming the field) and its selector lists are read-only
  (:class:`~stageflow_trio.utils.frozen.FrozenList`);
  :class:`DefaultContentExtractor` rejects a selector selectolax cannot parse
  when it is constructed, not at every page.
- selectolax 1.0 removed the parser the reference uses (Modest,
  ``selectolax.parser``), so with the ``selectolax>=0.3`` the extra installs
  today the reference silently reads pages with its regular expressions. Here
  :class:`DefaultContentExtractor` then uses selectolax's lexbor parser, which
  gives the same result (the tests compare the two) except: a table row mixing
  ``<th>`` and ``<td>`` cells keeps document order (Modest puts the header
  cells first); an unfinished tag at the very end of the page is read as the
  HTML standard says; some invalid selectors Modest lets match nothing
  (``p[``, ``div >``) are rejected, with the same ValueError; bytes are decoded
  from their byte order mark or ``<meta>`` charset, else as UTF-8; a
  ``remove_selectors`` entry matching ``<body>`` leaves nothing to read (Modest
  goes on reading the removed element). An entry matching ``<html>`` is passed
  over on both (lexbor cannot remove the root; Modest read on).
"""

from __future__ import annotations

import codecs
import contextlib
import re
from bisect import bisect_left
from collections.abc import Iterable
from html import unescape
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urljoin

import attrs

from stageflow_trio._args import check_flag, check_int, check_str, type_of
from stageflow_trio._frozen import frozen_compat
from stageflow_trio.utils.frozen import FrozenList
from stageflow_trio.websearch._baseurl import (
    document_base,
    markup_base_href,
    page_link,
    tree_base_href,
)
from stageflow_trio.websearch._charset import meta_charset
from stageflow_trio.websearch.models import ExtractedLink, PageMetadata

# The parser. selectolax's Modest backend (``selectolax.parser``) is the one the
# reference reads pages with, so it comes first. selectolax 1.0 removed it, and
# the ``selectolax>=0.3`` of the extra now installs 1.0 or later: there the lexbor
# backend, which has the same calls, stands in (the reference fell back to its
# regular expressions). ``_BACKEND`` says which one was imported. The walk is
# typed against Modest's classes; lexbor's match them in every call made here.
# ``_SELECTOR_ERRORS`` is what either raises for a selector it cannot parse.
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def _decode_page(html: bytes) -> str:
    """``html`` as text: its byte order mark, else a ``<meta>`` charset in its
    first 1,024 bytes, else UTF-8 (the HTML standard's sniffing, without the
    transport layer). Undecodable bytes become U+FFFD.

    For lexbor, which reads bytes as UTF-8 whatever they are, and then fails
    with UnicodeDecodeError on the text of a page in another encoding; Modest
    detects the encoding itself.
    """
    for bom, encoding in _BOMS:
        if html.startswith(bom):
            return html[len(bom) :].decode(encoding, "replace")
    declared = meta_charset(html)
    if declared is not None:
        with contextlib.suppress(LookupError):  # a codec that is not a text encoding
            return html.decode(declared, "replace")
    return html.decode("utf-8", "replace")


_LexborParser: type[LexborHTMLParser] | None = None
_LEXBOR_ERRORS: tuple[type[Exception], ...] = ()
try:
    from selectolax.lexbor import LexborHTMLParser, SelectolaxError
except ImportError:  # pragma: no cover - CI pins a selectolax that has both backends
    pass
else:

    class _DecodingLexborParser(LexborHTMLParser):
        """lexbor's parser, given bytes decoded by :func:`_decode_page`."""

        def __init__(self, html: str | bytes) -> None:
            super().__init__(_decode_page(html) if isinstance(html, bytes) else html)

    _LexborParser = _DecodingLexborParser
    # Not a ValueError, as Modest's is.
    _LEXBOR_ERRORS = (SelectolaxError,)
_SELECTOR_ERRORS: tuple[type[Exception], ...] = (ValueError, *_LEXBOR_ERRORS)

_BACKEND: Literal["modest", "lexbor"] | None
try:
    from selectolax.parser import HTMLParser

    _BACKEND = "modest"
except ImportError:  # pragma: no cover - CI pins a selectolax that has both backends
    if _LexborParser is not None:
        HTMLParser = _LexborParser  # type: ignore[assignment, misc]
        _BACKEND = "lexbor"
    else:
        _BACKEND = None
SELECTOLAX_AVAILABLE = _BACKEND is not None

if TYPE_CHECKING:
    from selectolax.parser import Node

__all__ = [
    "SELECTOLAX_AVAILABLE",
    "ContentExtractor",
    "DefaultContentExtractor",
    "ExtractionConfig",
    "ExtractionResult",
    "FallbackContentExtractor",
    "get_default_extractor",
]

_INSTALL_HINT = (
    "selectolax is required for DefaultContentExtractor. "
    "Install with: pip install 'stageflow-trio[websearch]'"
)

_DEFAULT_REMOVE_SELECTORS = (
    "script",
    "style",
    "noscript",
    "iframe",
    "svg",
    "nav",
    "footer",
    "header",
    "aside",
    ".sidebar",
    ".advertisement",
    ".ad",
    ".ads",
    ".cookie-banner",
    ".popup",
    ".modal",
    "#comments",
    ".comments",
    ".share-buttons",
    ".social-share",
)

_DEFAULT_MAIN_CONTENT_SELECTORS = (
    "article",
    "main",
    '[role="main"]',
    ".post-content",
    ".article-content",
    ".entry-content",
    ".content",
    "#content",
    ".post",
    ".article",
)

# Hrefs that lead nowhere a reader could follow.
_SKIPPED_HREFS = ("#", "javascript:", "mailto:", "tel:")
_ABSOLUTE_HREFS = ("http://", "https://", "//")


# -- configuration -------------------------------------------------------------------


def _selector_list(param: str, value: object) -> FrozenList[str]:
    if isinstance(value, str | bytes | bytearray) or not isinstance(value, Iterable):
        raise TypeError(
            f"ExtractionConfig: {param} must be a list of CSS selectors (str); got {type_of(value)}"
        )
    frozen: FrozenList[str] = value if type(value) is FrozenList else FrozenList(value)
    for index, item in enumerate(frozen):
        if not isinstance(item, str):
            raise TypeError(
                f"ExtractionConfig: {param}[{index}] must be a str; got {type_of(item)}"
            )
        if not item.strip():
            raise ValueError(f"ExtractionConfig: {param}[{index}] must not be blank; got {item!r}")
    return frozen


def _remove_selectors(value: Iterable[str]) -> FrozenList[str]:
    return _selector_list("remove_selectors", value)


def _main_content_selectors(value: Iterable[str]) -> FrozenList[str]:
    return _selector_list("main_content_selectors", value)


@frozen_compat
@attrs.frozen
class ExtractionConfig:
    """What an extractor keeps, what it cuts and where it looks for the content.

    Attributes:
        preserve_headings: Write ``<h1>``-``<h6>`` as ``#``-``######`` headings
            (else as plain paragraphs).
        preserve_lists: Write list items as ``- item`` / ``1. item`` lines (else
            run together on one line).
        preserve_links: Write links as ``[text](url)`` (else the link's text only
            survives as part of the surrounding text).
        preserve_emphasis: Write bold as ``**text**`` and italics as ``_text_``.
        preserve_code: Fence ``<pre>`` blocks (with their ``language-*`` class)
            and write inline code as ```text```.
        preserve_blockquotes: Write block quotes as ``> `` lines (else their text
            goes to the plain text only).
        preserve_tables: Write tables as markdown tables (else their text goes to
            the plain text only).
        remove_selectors: CSS selectors of elements deleted before anything is
            read: scripts, styles, navigation, footers, ads, comment sections.
        main_content_selectors: CSS selectors tried in order; the first that
            matches names the content to extract (else the whole body).
        max_link_text_length: Link text longer than this is cut and ends in
            ``…`` in the markdown (the ``links`` keep the full text).
        max_heading_length: A heading longer than this is left out.
        include_link_urls: Put the URL in markdown links (else only their text).
        min_text_length: A heading, paragraph, list item or block quote whose
            stripped text is shorter than this is left out.

    Raises:
        TypeError: a flag is not a bool, a length is not an int, or a selector
            list is not a list (or other iterable) of str.
        ValueError: a length is negative, or a selector is blank.
    """

    preserve_headings: bool = True
    preserve_lists: bool = True
    preserve_links: bool = True
    preserve_emphasis: bool = True
    preserve_code: bool = True
    preserve_blockquotes: bool = True
    preserve_tables: bool = True
    remove_selectors: FrozenList[str] = attrs.field(
        factory=lambda: FrozenList(_DEFAULT_REMOVE_SELECTORS), converter=_remove_selectors
    )
    main_content_selectors: FrozenList[str] = attrs.field(
        factory=lambda: FrozenList(_DEFAULT_MAIN_CONTENT_SELECTORS),
        converter=_main_content_selectors,
    )
    max_link_text_length: int = 100
    max_heading_length: int = 200
    include_link_urls: bool = True
    min_text_length: int = 1

    def __attrs_post_init__(self) -> None:
        owner = "ExtractionConfig"
        for name in (
            "preserve_headings",
            "preserve_lists",
            "preserve_links",
            "preserve_emphasis",
            "preserve_code",
            "preserve_blockquotes",
            "preserve_tables",
            "include_link_urls",
        ):
            check_flag(owner, name, getattr(self, name))
        for name in ("max_link_text_length", "max_heading_length", "min_text_length"):
            check_int(owner, name, getattr(self, name), minimum=0)


# -- result --------------------------------------------------------------------------


def _check_instance(kind: type[Any], what: str) -> Any:
    def check(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise TypeError(
                f"ExtractionResult: {attribute.name} must be {what}; got {type_of(value)}"
            )

    return check


@attrs.define
class ExtractionResult:
    """What an extractor read from one page.

    It is mutable, as the reference's is (a caller may trim the markdown before
    storing it); fields are type-checked on construction and on assignment.

    Attributes:
        markdown: The content as markdown.
        plain_text: The content as text, whitespace collapsed.
        metadata: The page's ``<head>`` facts.
        links: The content's links, each URL once, in document order.
        word_count: The number of whitespace-separated words in ``plain_text``.
        heading_outline: ``(level, text)`` for every heading kept.

    Raises:
        TypeError: a field has the wrong type.
    """

    markdown: str = attrs.field(default="", validator=_check_instance(str, "a str"))
    plain_text: str = attrs.field(default="", validator=_check_instance(str, "a str"))
    metadata: PageMetadata = attrs.field(
        factory=PageMetadata, validator=_check_instance(PageMetadata, "a PageMetadata")
    )
    links: list[ExtractedLink] = attrs.field(
        factory=list, validator=_check_instance(list, "a list of ExtractedLink")
    )
    word_count: int = attrs.field(default=0, validator=_check_instance(int, "an int"))
    heading_outline: list[tuple[int, str]] = attrs.field(
        factory=list, validator=_check_instance(list, "a list of (level, text) tuples")
    )

    def to_dict(self) -> dict[str, Any]:
        """Every field, with the reference's keys; the lists are new lists."""
        return {
            "markdown": self.markdown,
            "plain_text": self.plain_text,
            "metadata": self.metadata.to_dict(),
            "links": [link.to_dict() for link in self.links],
            "word_count": self.word_count,
            "heading_outline": list(self.heading_outline),
        }


# -- the interface -------------------------------------------------------------------


def _check_call(
    owner: str, html: object, base_url: object, selector: object, *, allow_bytes: bool = False
) -> None:
    if allow_bytes:
        if not isinstance(html, str | bytes):
            raise TypeError(f"{owner}: html must be a str or bytes; got {type_of(html)}")
    else:
        check_str(owner, "html", html)
    check_str(owner, "base_url", base_url, optional=True)
    check_str(owner, "selector", selector, optional=True)


class ContentExtractor:
    """The interface of an extractor: subclass it and implement the three methods.

    Args:
        config: What to keep and cut; the defaults when None.

    Raises:
        TypeError: ``config`` is neither an :class:`ExtractionConfig` nor None.
    """

    def __init__(self, config: ExtractionConfig | None = None) -> None:
        if config is not None and not isinstance(config, ExtractionConfig):
            raise TypeError(
                f"{type(self).__name__}: config must be an ExtractionConfig or None; "
                f"got {type_of(config)}"
            )
        self.config: ExtractionConfig = config or ExtractionConfig()

    def extract(
        self,
        html: str,
        *,
        base_url: str | None = None,
        selector: str | None = None,
    ) -> ExtractionResult:
        """Read ``html`` into markdown, plain text, metadata and links.

        Args:
            html: The page's HTML.
            base_url: The page's URL, to make relative links absolute.
            selector: A CSS selector naming the content to read, instead of the
                configured guesses.
        """
        raise NotImplementedError("Subclasses must implement extract")

    def extract_metadata(self, html: str) -> PageMetadata:
        """Read the page's ``<head>`` facts from ``html``."""
        raise NotImplementedError("Subclasses must implement extract_metadata")

    def extract_links(
        self,
        html: str,
        *,
        base_url: str | None = None,
        selector: str | None = None,
    ) -> list[ExtractedLink]:
        """Read the links of ``html`` (of the ``selector`` element, if given)."""
        raise NotImplementedError("Subclasses must implement extract_links")


# -- markdown helpers shared by the DOM walk ------------------------------------------


def _strip_links(text: str) -> str:
    """Replace each ``[text](url)`` by ``text``, as ``re.sub(r"\\[([^\\]]+)\\]\\([^)]+\\)", r"\\1")``.

    Written out because that regular expression rescans to the next ``]`` from
    every ``[``: a paragraph of many ``[`` and few ``]`` took quadratic time. A
    failed match at one ``[`` fails at every ``[`` before the same ``]`` too, so
    the scan resumes after that ``]``.
    """
    if "[" not in text:
        return text
    out: list[str] = []
    copied = 0
    start = text.find("[")
    while start != -1:
        close = text.find("]", start + 1)
        if close == -1:
            break
        if close > start + 1 and text.startswith("(", close + 1):
            end = text.find(")", close + 2)
            if end == -1:
                break  # no ")" ahead: no later "[" can match either
            if end > close + 2:
                out.append(text[copied:start])
                out.append(text[start + 1 : close])
                copied = end + 1
                start = text.find("[", copied)
                continue
        start = text.find("[", close + 1)
    out.append(text[copied:])
    return "".join(out)


_BOLD = re.compile(r"\*\*([^*]+)\*\*")
# Emphasis only where a word starts and ends: ``_x_`` inside a word is text, not
# markup (``move_on_after`` stays as written; the reference's ``_([^_]+)_`` made it
# ``moveonafter``), and neither is ``__init__``. The extractor's own emphasis always
# stands apart, since inline parts are joined by spaces; the lazy match lets
# ``_snake_case_`` lose its outer pair only.
_ITALIC = re.compile(r"(?<!\w)_(?!_)(.+?)(?<!_)_(?!\w)", re.DOTALL)
_INLINE_CODE = re.compile(r"`([^`]+)`")
_BLANK_LINES = re.compile(r"\n{3,}")
_SPACE_RUNS = re.compile(r" {2,}")
_INDENTS = re.compile(r"\n +")
_WHITESPACE = re.compile(r"\s+")

_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
# Elements whose children are read block by block ("-undef-" and "" are the
# document and nameless nodes).
_CONTAINERS = frozenset(
    {"div", "section", "article", "main", "span", "figure", "body", "html", "-undef-", ""}
)


class _Walk:
    """The output of one page's DOM walk, in the order it was written."""

    __slots__ = ("headings", "markdown", "plain")

    def __init__(self) -> None:
        self.markdown: list[str] = []
        self.plain: list[str] = []
        self.headings: list[tuple[int, str]] = []


def _tag(node: Node) -> str:
    tag = node.tag
    return tag.lower() if tag else ""


def _text(node: Node) -> str:
    return node.text(strip=False)


def _children(node: Node) -> list[Node]:
    children: list[Node] = []
    child = node.child
    while child is not None:
        children.append(child)
        child = child.next
    return children


def _first_match(tree: HTMLParser, selector: str) -> Node | None:
    """The first element ``selector`` matches in ``tree``, or None.

    A selector the parser cannot read raises Modest's ValueError, with its
    message, on either backend: lexbor's own error is not a ValueError, so
    callers that caught the reference's would miss it.
    """
    try:
        return tree.css_first(selector)
    except _LEXBOR_ERRORS as exc:
        raise ValueError(f"Bad CSS Selectors: {selector}") from exc


# -- the selectolax extractor --------------------------------------------------------


class DefaultContentExtractor(ContentExtractor):
    """Reads pages with selectolax and writes the content as markdown.

    The markdown keeps headings, paragraphs, lists, links, emphasis, code,
    block quotes and tables (each as :class:`ExtractionConfig` says); the plain
    text is the same content without the markup. Elements matching
    ``remove_selectors`` are deleted first; then the ``selector`` argument, or
    the first matching ``main_content_selectors`` entry, or the body, names the
    content.

    Args:
        config: What to keep and cut; the defaults when None.

    Raises:
        ImportError: selectolax is not installed.
        TypeError: ``config`` is neither an :class:`ExtractionConfig` nor None.
        ValueError: a configured selector is not one selectolax can parse
            (also when lexbor, which raises its own SelectolaxError, reads it).
    """

    def __init__(self, config: ExtractionConfig | None = None) -> None:
        super().__init__(config)
        if not SELECTOLAX_AVAILABLE:  # pragma: no cover - the test environment has it
            raise ImportError(_INSTALL_HINT)
        probe = HTMLParser("")
        for param in ("remove_selectors", "main_content_selectors"):
            for index, selector in enumerate(getattr(self.config, param)):
                try:
                    probe.css(selector)
                except _SELECTOR_ERRORS as exc:
                    raise ValueError(
                        f"DefaultContentExtractor: config.{param}[{index}] is not a CSS "
                        f"selector selectolax can parse; got {selector!r}"
                    ) from exc

    def extract(
        self,
        html: str | bytes,
        *,
        base_url: str | None = None,
        selector: str | None = None,
    ) -> ExtractionResult:
        """Read ``html`` into markdown, plain text, metadata and links.

        Args:
            html: The page's HTML. Bytes are decoded by Modest, which detects
                their encoding; on lexbor, by their byte order mark or
                ``<meta>`` charset, else as UTF-8.
            base_url: The page's URL, to make relative links absolute (against
                the page's ``<base href>`` when it has one) and to tell internal
                links.
            selector: A CSS selector naming the content to read; when it matches
                nothing, the configured guesses are not tried: the body is read.

        Raises:
            TypeError: ``html`` is neither a str nor bytes, or ``base_url`` or ``selector`` is
                neither a str nor None.
            ValueError: selectolax cannot parse ``selector`` ("Bad CSS Selectors: ...",
                Modest's message, on either backend).
        """
        _check_call("DefaultContentExtractor.extract", html, base_url, selector, allow_bytes=True)
        tree = HTMLParser(html)
        # Found before removals: a <base> counts wherever it is (in a removed <header> too).
        link_base = document_base(base_url, tree_base_href(tree))
        self._remove_unwanted(tree)
        content: Node | None = None
        if selector:
            content = _first_match(tree, selector)
        else:
            for guess in self.config.main_content_selectors:
                content = tree.css_first(guess)
                if content is not None:
                    break
        if content is None:
            content = self._whole_page(tree)

        metadata = self._extract_metadata_from_tree(tree)
        links = self._extract_links_from_node(content, link_base, page_url=base_url or "")
        walk = _Walk()
        self._process_node(content, walk, link_base)
        markdown = self._clean_markdown("\n".join(walk.markdown))
        plain_text = self._clean_plain_text(" ".join(walk.plain))
        return ExtractionResult(
            markdown=markdown,
            plain_text=plain_text,
            metadata=metadata,
            links=links,
            word_count=len(plain_text.split()),
            heading_outline=walk.headings,
        )

    def extract_metadata(self, html: str | bytes) -> PageMetadata:
        """Read the page's title, description, language and other ``<head>`` facts.

        Raises:
            TypeError: ``html`` is neither a str nor bytes.
        """
        _check_call("DefaultContentExtractor.extract_metadata", html, None, None, allow_bytes=True)
        return self._extract_metadata_from_tree(HTMLParser(html))

    def extract_links(
        self,
        html: str | bytes,
        *,
        base_url: str | None = None,
        selector: str | None = None,
    ) -> list[ExtractedLink]:
        """The links of the body, or of the first ``selector`` match, after removals.

        Unlike :meth:`extract`, this does not try ``main_content_selectors``.

        Raises:
            TypeError: ``html`` is neither a str nor bytes, or ``base_url`` or ``selector`` is
                neither a str nor None.
            ValueError: selectolax cannot parse ``selector`` ("Bad CSS Selectors: ...",
                Modest's message, on either backend).
        """
        _check_call(
            "DefaultContentExtractor.extract_links", html, base_url, selector, allow_bytes=True
        )
        tree = HTMLParser(html)
        link_base = document_base(base_url, tree_base_href(tree))
        self._remove_unwanted(tree)
        target = self._whole_page(tree)
        if selector:
            match = _first_match(tree, selector)
            if match is not None:
                target = match
        return self._extract_links_from_node(target, link_base, page_url=base_url or "")

    # -- the parts (override them to change one step) --

    def _remove_unwanted(self, tree: HTMLParser) -> None:
        root = tree.root
        for selector in self.config.remove_selectors:
            for node in tree.css(selector):
                if node == root:
                    # A selector matching <html>: lexbor refuses to remove the root
                    # (SelectolaxError), and on Modest the reference went on reading
                    # the page all the same. Kept on both, so the page is read.
                    continue
                node.decompose()

    @staticmethod
    def _whole_page(tree: HTMLParser) -> Node:
        body = tree.body
        if body is not None:
            return body
        root = tree.root
        if root is None:  # pragma: no cover - selectolax always builds <html>
            raise ValueError("DefaultContentExtractor: the parser built no document")
        return root

    def _process_node(self, node: Node, walk: _Walk, base_url: str | None) -> None:
        """Write ``node``'s content to ``walk``, block by block, in document order.

        Container elements (div, section, ...) are opened and their children read
        in turn; every other element is one block. The walk keeps its own stack,
        so the nesting depth is not limited by Python's recursion limit.
        """
        stack = [node]
        while stack:
            current = stack.pop()
            tag = _tag(current)
            if tag in _CONTAINERS:
                stack.extend(reversed(_children(current)))
            elif tag in ("ul", "ol"):
                self._process_list(current, tag, walk, base_url)
            else:
                self._process_block(current, tag, walk, base_url)

    def _process_list(self, node: Node, tag: str, walk: _Walk, base_url: str | None) -> None:
        # Only the list's own <li> children are items; a nested list is read as
        # part of its item's text.
        walk.markdown.append("\n")
        number = 0
        for child in _children(node):
            if _tag(child) == "li":
                number = self._process_item(child, tag, number, walk, base_url)
        walk.markdown.append("\n")

    def _process_item(
        self, node: Node, list_tag: str | None, number: int, walk: _Walk, base_url: str | None
    ) -> int:
        """Write one list item; return the number of the last numbered item."""
        text = self._process_inline_content(node, base_url)
        if not self._long_enough(text):
            return number
        if not self.config.preserve_lists:
            walk.markdown.append(f"{text} ")
        elif list_tag == "ol":
            number += 1
            walk.markdown.append(f"{number}. {text}\n")
        else:
            walk.markdown.append(f"- {text}\n")
        walk.plain.append(self._strip_markdown(text))
        return number

    def _process_block(self, node: Node, tag: str, walk: _Walk, base_url: str | None) -> None:
        config = self.config
        level = _HEADINGS.get(tag)
        if level is not None:
            text = _text(node).strip()
            if self._long_enough(text) and len(text) <= config.max_heading_length:
                prefix = "#" * level + " " if config.preserve_headings else ""
                walk.markdown.append(f"\n\n{prefix}{text}\n")
                walk.plain.append(text)
                walk.headings.append((level, text))
        elif tag == "p":
            text = self._process_inline_content(node, base_url)
            if self._long_enough(text):
                walk.markdown.append(f"\n\n{text}")
                walk.plain.append(self._strip_markdown(text))
        elif tag == "li":
            # An item outside a list, or the content itself: a bullet, unnumbered.
            self._process_item(node, None, 0, walk, base_url)
        elif tag == "blockquote" and config.preserve_blockquotes:
            text = _text(node).strip()
            if self._long_enough(text):
                quoted = "\n".join(f"> {line}" for line in text.split("\n"))
                walk.markdown.append(f"\n\n{quoted}\n")
                walk.plain.append(text)
        elif tag == "pre":
            self._process_code_block(node, walk)
        elif tag == "table" and config.preserve_tables:
            table = self._process_table(node)
            if table:
                walk.markdown.append(f"\n\n{table}\n")
        elif tag == "br":
            walk.markdown.append("  \n")
        elif tag == "hr":
            walk.markdown.append("\n\n---\n")
        else:
            # Anything else (text between blocks, a lone link, an unkept quote
            # or table) reaches the plain text only.
            text = _text(node).strip()
            if text:
                walk.plain.append(text)

    def _process_code_block(self, node: Node, walk: _Walk) -> None:
        code = node.css_first("code")
        code_text = _text(code if code is not None else node)
        if code_text.strip():
            if self.config.preserve_code:
                language = ""
                if code is not None:
                    # A valueless class attribute reads as None; "language-" with
                    # nothing after it names no language (the reference crashed on both).
                    classes = code.attributes.get("class") or ""
                    if "language-" in classes:
                        words = classes.split("language-")[1].split()
                        language = words[0] if words else ""
                walk.markdown.append(f"\n\n```{language}\n{code_text}\n```\n")
            else:
                walk.markdown.append(f"\n\n{code_text}\n")
        walk.plain.append(code_text)

    def _long_enough(self, text: str) -> bool:
        stripped = text.strip()
        return bool(stripped) and len(stripped) >= self.config.min_text_length

    def _process_inline_content(self, node: Node, base_url: str | None) -> str:
        """``node``'s content as one line of markdown: links, emphasis, code, images.

        Text pieces are stripped and joined by single spaces.
        """
        config = self.config
        parts: list[str] = []
        stack = [node]
        while stack:
            current = stack.pop()
            tag = _tag(current)
            if tag == "a" and config.preserve_links:
                self._inline_link(current, parts, base_url)
            elif tag in ("strong", "b") and config.preserve_emphasis:
                self._wrap(current, "**", parts)
            elif tag in ("em", "i") and config.preserve_emphasis:
                self._wrap(current, "_", parts)
            elif tag == "code" and config.preserve_code:
                self._wrap(current, "`", parts)
            elif tag == "img":
                alt = current.attributes.get("alt")
                if alt:
                    parts.append(f"[Image: {alt}]")
            elif tag == "br":
                parts.append("\n")
            elif tag in ("", "-text"):
                text = _text(current).strip()
                if text:
                    parts.append(text)
            else:
                stack.extend(reversed(_children(current)))
        return " ".join(parts).strip()

    @staticmethod
    def _wrap(node: Node, mark: str, parts: list[str]) -> None:
        inner = _text(node).strip()
        if inner:
            parts.append(f"{mark}{inner}{mark}")

    def _inline_link(self, node: Node, parts: list[str], base_url: str | None) -> None:
        config = self.config
        href = node.attributes.get("href")
        text = _text(node).strip()
        if not text:
            return
        if not href:
            parts.append(text)
            return
        if base_url and not href.startswith(_ABSOLUTE_HREFS):
            # Unparsable: keep it as written rather than fail the page.
            with contextlib.suppress(ValueError):
                href = urljoin(base_url, href)
        if len(text) > config.max_link_text_length:
            text = text[: config.max_link_text_length] + "…"
        parts.append(f"[{text}]({href})" if config.include_link_urls else text)

    def _process_table(self, node: Node) -> str:
        """``node``'s rows as a markdown table, the first row as its header.

        Cells are read with ``tr.css("th, td")``, which Modest returns header
        cells first, then data cells (as the reference read them), and lexbor
        in document order. Short rows are padded with empty cells.
        """
        rows: list[list[str]] = []
        for row in node.css("tr"):
            cells = [
                _text(cell).strip().replace("|", "\\|").replace("\n", " ")
                for cell in row.css("th, td")
            ]
            if cells:
                rows.append(cells)
        if not rows:
            return ""
        width = max(len(row) for row in rows)
        lines = ["| " + " | ".join(row + [""] * (width - len(row))) + " |" for row in rows]
        lines.insert(1, "| " + " | ".join(["---"] * width) + " |")
        return "\n".join(lines)

    def _strip_markdown(self, text: str) -> str:
        """``text`` without link, bold, italic and code markup."""
        text = _strip_links(text)
        text = _BOLD.sub(r"\1", text)
        text = _ITALIC.sub(r"\1", text)
        return _INLINE_CODE.sub(r"\1", text)

    def _clean_markdown(self, text: str) -> str:
        """At most one blank line in a row, single spaces, no indents, entities decoded."""
        text = _BLANK_LINES.sub("\n\n", text)
        text = _SPACE_RUNS.sub(" ", text)
        text = _INDENTS.sub("\n", text)
        return unescape(text).strip()

    def _clean_plain_text(self, text: str) -> str:
        """Whitespace collapsed to single spaces, entities decoded."""
        return unescape(_WHITESPACE.sub(" ", text)).strip()

    def _extract_metadata_from_tree(self, tree: HTMLParser) -> PageMetadata:
        """The page's facts; Open Graph title and description win over the plain ones."""
        title_node = tree.css_first("title")
        title = title_node.text(strip=True) if title_node is not None else None
        title = self._get_meta_content(tree, "og:title") or title
        description = self._get_meta_content(tree, "og:description") or self._get_meta_content(
            tree, "description"
        )
        html_node = tree.css_first("html")
        canonical_node = tree.css_first('link[rel="canonical"]')
        keywords = self._get_meta_content(tree, "keywords")
        return PageMetadata(
            title=title,
            description=description,
            language=html_node.attributes.get("lang") if html_node is not None else None,
            author=self._get_meta_content(tree, "author"),
            published_date=self._get_meta_content(tree, "article:published_time"),
            canonical_url=(
                canonical_node.attributes.get("href") if canonical_node is not None else None
            ),
            og_image=self._get_meta_content(tree, "og:image"),
            keywords=[k.strip() for k in keywords.split(",") if k.strip()] if keywords else [],
            content_type=self._get_meta_content(tree, "og:type"),
        )

    def _get_meta_content(self, tree: HTMLParser, name: str) -> str | None:
        """The content of the first ``<meta name=...>``, else of ``<meta property=...>``."""
        for attribute in ("name", "property"):
            node = tree.css_first(f'meta[{attribute}="{name}"]')
            if node is not None:
                return node.attributes.get("content")
        return None

    def _extract_links_from_node(
        self, node: Node, base_url: str | None, *, page_url: str | None = None
    ) -> list[ExtractedLink]:
        """``node``'s followable links, each resolved URL once, in document order.

        Links resolve against ``base_url`` (the document's base URL); a link is
        internal when it is on ``page_url``'s host (None: ``base_url`` is the
        page's URL).
        """
        page = base_url if page_url is None else page_url
        links: list[ExtractedLink] = []
        seen: set[str] = set()
        for anchor in node.css("a[href]"):
            attributes = anchor.attributes
            href = attributes.get("href")
            if not href or href.startswith(_SKIPPED_HREFS):
                continue
            try:
                link = page_link(
                    href,
                    _text(anchor).strip(),
                    link_base=base_url,
                    page_url=page,
                    title=attributes.get("title"),
                    rel=attributes.get("rel"),
                )
            except ValueError:
                continue  # urllib.parse cannot read it (the reference failed the page)
            if link.url not in seen:
                seen.add(link.url)
                links.append(link)
        return links


# -- the regex fallback --------------------------------------------------------------

# Each pattern has the reference's meaning. A pattern of the form OPEN(.*?)CLOSE
# rescans to the end of the page from every OPEN that has no CLOSE after it, which
# is quadratic on a page of unclosed <p> tags; no match can end after the last
# CLOSE, so the page is cut there before matching (same matches, linear time).
_SCRIPT = re.compile(r"<script[^>]*>.*?</script>", re.DOTALL | re.IGNORECASE)
_SCRIPT_END = re.compile(r"</script>", re.IGNORECASE)
_STYLE = re.compile(r"<style[^>]*>.*?</style>", re.DOTALL | re.IGNORECASE)
_STYLE_END = re.compile(r"</style>", re.IGNORECASE)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_COMMENT_END = re.compile(r"-->")
_HEADING_OPEN = re.compile(r"<h([1-6])[^>]*>", re.DOTALL | re.IGNORECASE)
_HEADING_CLOSE = re.compile(r"</h([1-6])>", re.IGNORECASE)
_PARAGRAPH = re.compile(r"<p[^>]*>(.*?)</p>", re.DOTALL | re.IGNORECASE)
_PARAGRAPH_END = re.compile(r"</p>", re.IGNORECASE)
_LINK = re.compile(r'<a[^>]+href=["\']([^"\']+)["\'][^>]*>(.*?)</a>', re.DOTALL | re.IGNORECASE)
_LINK_END = re.compile(r"</a>", re.IGNORECASE)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.DOTALL | re.IGNORECASE)
_TITLE_END = re.compile(r"</title>", re.IGNORECASE)
_DESCRIPTION = re.compile(
    r'<meta[^>]+name=["\']description["\'][^>]+content=["\']([^"\']+)["\']', re.IGNORECASE
)
_TAG = re.compile(r"<[^>]+>")


def _end_of_last(closing: re.Pattern[str], text: str) -> int:
    """Where the last match of ``closing`` in ``text`` ends; 0 if there is none."""
    end = 0
    for match in closing.finditer(text):
        end = match.end()
    return end


def _remove_blocks(pattern: re.Pattern[str], closing: re.Pattern[str], html: str) -> str:
    cut = _end_of_last(closing, html)
    return pattern.sub("", html[:cut]) + html[cut:]


def _replace_tags(text: str, replacement: str) -> str:
    # A tag ends at a ">": none can end after the last one.
    cut = text.rfind(">") + 1
    return _TAG.sub(replacement, text[:cut]) + text[cut:]


def _headings(html: str) -> list[tuple[int, str]]:
    """``(level, inner html)`` of each ``<hN ...>...</hN>``, as ``re.finditer`` finds them.

    The reference's pattern (``<h([1-6])[^>]*>(.*?)</h\\1>``) closes a heading
    with the same level, which cutting the page cannot bound; so the closing
    tags are indexed by level and each opening tag looks up the next one.
    """
    closes: dict[str, list[int]] = {}
    ends: dict[str, list[int]] = {}
    for match in _HEADING_CLOSE.finditer(html):
        closes.setdefault(match.group(1), []).append(match.start())
        ends.setdefault(match.group(1), []).append(match.end())
    found: list[tuple[int, str]] = []
    position = 0
    while (opening := _HEADING_OPEN.search(html, position)) is not None:
        level = opening.group(1)
        starts = closes.get(level, [])
        index = bisect_left(starts, opening.end())
        if index == len(starts):
            # Unclosed: the regex would try again one character on.
            position = opening.start() + 1
            continue
        found.append((int(level), html[opening.end() : starts[index]]))
        position = ends[level][index]
    return found


class FallbackContentExtractor(ContentExtractor):
    """Reads pages with regular expressions, for when selectolax is not installed.

    Scripts, styles and comments are cut; the markdown is every heading, then
    every ``<p>`` paragraph (tags removed), the plain text the whole page without
    its tags. ``selector``, ``remove_selectors`` and ``main_content_selectors``
    are not used, and only the title and description are found for metadata.

    Args:
        config: Only ``preserve_headings`` is read.

    Raises:
        TypeError: ``config`` is neither an :class:`ExtractionConfig` nor None.
    """

    def extract(
        self,
        html: str,
        *,
        base_url: str | None = None,
        selector: str | None = None,
    ) -> ExtractionResult:
        """Read ``html`` into markdown, plain text, metadata and links.

        Args:
            html: The page's HTML.
            base_url: The page's URL, to make relative links absolute.
            selector: Not used (the regular expressions cannot select).

        Raises:
            TypeError: ``html`` is not a str, or ``base_url`` or ``selector`` is
                neither a str nor None.
        """
        _check_call("FallbackContentExtractor.extract", html, base_url, selector)
        html = _remove_blocks(_SCRIPT, _SCRIPT_END, html)
        html = _remove_blocks(_STYLE, _STYLE_END, html)
        html = _remove_blocks(_COMMENT, _COMMENT_END, html)

        parts: list[str] = []
        outline: list[tuple[int, str]] = []
        for level, inner in _headings(html):
            text = _replace_tags(inner, "").strip()
            if text and self.config.preserve_headings:
                parts.append(f"{'#' * level} {text}\n\n")
                outline.append((level, text))
        cut = _end_of_last(_PARAGRAPH_END, html)
        for match in _PARAGRAPH.finditer(html, 0, cut):
            text = _replace_tags(match.group(1), "").strip()
            if text:
                parts.append(f"{text}\n\n")

        plain_text = unescape(_WHITESPACE.sub(" ", _replace_tags(html, " ")).strip())
        return ExtractionResult(
            markdown=unescape("".join(parts)).strip(),
            plain_text=plain_text,
            metadata=self._extract_metadata_regex(html),
            links=self._extract_links_regex(html, base_url),
            word_count=len(plain_text.split()),
            heading_outline=outline,
        )

    def extract_metadata(self, html: str) -> PageMetadata:
        """The page's title and meta description (the rest stays None).

        Raises:
            TypeError: ``html`` is not a str.
        """
        _check_call("FallbackContentExtractor.extract_metadata", html, None, None)
        return self._extract_metadata_regex(html)

    def extract_links(
        self,
        html: str,
        *,
        base_url: str | None = None,
        selector: str | None = None,
    ) -> list[ExtractedLink]:
        """The page's links (``selector`` is not used; scripts are not cut first).

        Raises:
            TypeError: ``html`` is not a str, or ``base_url`` or ``selector`` is
                neither a str nor None.
        """
        _check_call("FallbackContentExtractor.extract_links", html, base_url, selector)
        return self._extract_links_regex(html, base_url)

    def _extract_links_regex(self, html: str, base_url: str | None) -> list[ExtractedLink]:
        """Each ``<a href="...">...</a>``'s link, each resolved URL once, in page order.

        Relative links resolve against the page's first ``<base href>``, if any.
        """
        link_base = document_base(base_url, markup_base_href(html))
        page = base_url or ""
        links: list[ExtractedLink] = []
        seen: set[str] = set()
        cut = _end_of_last(_LINK_END, html)
        for match in _LINK.finditer(html, 0, cut):
            href = match.group(1)
            if href.startswith(("#", "javascript:", "mailto:")):
                continue
            try:
                link = page_link(
                    href,
                    _replace_tags(match.group(2), "").strip(),
                    link_base=link_base,
                    page_url=page,
                )
            except ValueError:
                continue  # urllib.parse cannot read it (the reference failed the page)
            if link.url not in seen:
                seen.add(link.url)
                links.append(link)
        return links

    def _extract_metadata_regex(self, html: str) -> PageMetadata:
        """The first ``<title>`` (tags removed) and the first meta description."""
        title = None
        match = _TITLE.search(html, 0, _end_of_last(_TITLE_END, html))
        if match is not None:
            title = _replace_tags(match.group(1), "").strip()
        description = None
        match = _DESCRIPTION.search(html)
        if match is not None:
            description = match.group(1)
        return PageMetadata(title=title, description=description)


def get_default_extractor(config: ExtractionConfig | None = None) -> ContentExtractor:
    """A :class:`DefaultContentExtractor` if selectolax is installed, else a fallback one.

    Raises:
        TypeError: ``config`` is neither an :class:`ExtractionConfig` nor None.
    """
    if SELECTOLAX_AVAILABLE:
        return DefaultContentExtractor(config)
    return FallbackContentExtractor(config)  # pragma: no cover - the tests have selectolax
