"""Where an agent can go from a page: pagination, menus, breadcrumbs, content links.

:class:`PageNavigator` parses a page with selectolax and answers, in one
:class:`NavigationResult`: the next and previous pages (:class:`PaginationInfo`),
the CSS selector of the main content, the menu links, the breadcrumb trail, and a
ranked list of :class:`NavigationAction` an agent can take (next page first, then
menu links, then links inside the main content). :class:`FallbackNavigator` finds
only next/previous links, with regular expressions, for when selectolax is not
installed; :func:`get_default_navigator` picks the better of the two.

The work is pure, synchronous CPU work (a parse, some twenty CSS queries and the
resolution of every link's URL: 0.5 to 1 ms for a page of a few kilobytes, a few
ms for a long one), so nothing here is async; a caller in a trio task that
analyses large pages may hand it to ``trio.to_thread.run_sync``. selectolax is an
optional dependency (``pip install 'stageflow-trio[websearch]'``): this module
imports without it, and constructing a :class:`PageNavigator` then raises ImportError.

Differences from the reference (stageflow 0.9.1), each a row in docs/parity.md:

- The reference imports ``selectolax.parser`` (the Modest backend), which
  selectolax 1.0 removed: with a current selectolax its PageNavigator cannot be
  constructed at all. Ours uses the lexbor backend (``selectolax.lexbor``, in
  every selectolax since 0.3.1) and keeps Modest's answers where the two
  differ in what the reference read: the two selector groups it queried are
  asked one selector at a time, in the order Modest listed their matches, and
  an empty ``href`` in a pagination container is None, as Modest read it.
  lexbor parses by the HTML5 rules, as browsers do, where Modest did not
  quite: a tag cut off by the end of the document is dropped, and of an
  attribute given twice on one element the first value counts (Modest took
  the last).
- Pages the reference crashed on are analysed: an empty or valueless
  attribute (``<a href="">`` outside a pagination container, ``<a class="">``,
  ``<div class>``), a whitespace-only ``class`` on a content candidate, a
  "current page" label of digits ``int()`` refuses (``²``), a link whose URL
  urllib cannot parse (``http://[::1``, an unrendered ``//[link]``). Ours
  reads the attribute as empty, names the candidate by its ``id``, keeps page
  1, and drops the one link.
- The main-content selector built from a ``class`` or ``id`` is CSS-escaped
  when lexbor would not parse it or it would mean something else (Tailwind's
  ``md:w-1/2``, a leading digit, a space, characters U+0080 to U+00B6, which
  Modest took raw), and a class is split on ASCII
  whitespace only, as HTML splits it: the reference returned such selectors
  and then crashed querying them, or matched another element.
- Relative links resolve against the document's base URL (its first ``<base
  href>``, resolved against ``base_url``), as a browser resolves them; the
  reference used ``base_url`` alone. Internal still means on ``base_url``'s host.
- ``NavigationConfig.min_nav_links``, documented by the reference and never
  read, applies: fewer menu links than that make no menu.
- :class:`NavigationConfig` checks its fields when constructed (types, regular
  expressions that compile, CSS selectors that parse, counts >= 0) and holds
  its lists read-only.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import attrs

from stageflow_trio._args import check_int, check_str, type_of
from stageflow_trio._frozen import frozen_compat
from stageflow_trio.utils.frozen import FrozenList
from stageflow_trio.websearch._baseurl import (
    document_base,
    markup_base_href,
    page_link,
    tree_base_href,
)
from stageflow_trio.websearch.models import ExtractedLink, NavigationAction, PaginationInfo

try:
    from selectolax.lexbor import LexborHTMLParser, SelectolaxError

    SELECTOLAX_AVAILABLE = True
except ImportError:  # pragma: no cover - exercised by the tests through the flag
    SELECTOLAX_AVAILABLE = False

if TYPE_CHECKING:
    from selectolax.lexbor import LexborNode

__all__ = [
    "FallbackNavigator",
    "NavigationConfig",
    "NavigationResult",
    "Navigator",
    "PageNavigator",
    "get_default_navigator",
]

_INSTALL_HINT = (
    "selectolax is required for PageNavigator. "
    "Install with: pip install 'stageflow-trio[websearch]'"
)


# --- NavigationConfig -----------------------------------------------------------


def _str_list(param: str, value: object) -> FrozenList[str]:
    # A str would become a list of its characters, a dict the list of its keys.
    if isinstance(value, str | bytes | bytearray | Mapping) or not isinstance(value, Iterable):
        raise TypeError(f"NavigationConfig: {param} must be a list of str; got {type_of(value)}")
    items: FrozenList[str] = FrozenList(value)
    for index, item in enumerate(items):
        if type(item) is not str:
            raise TypeError(
                f"NavigationConfig: {param}[{index}] must be a str; got {type_of(item)}"
            )
    return items


@functools.lru_cache(maxsize=256)
def _selector_parses(selector: str) -> bool:
    # Queried against an empty document: only whether lexbor can parse it matters.
    try:
        LexborHTMLParser("").css_first(selector)
    except SelectolaxError:
        return False
    return True


def _selector_list(param: str, value: object) -> FrozenList[str]:
    items = _str_list(param, value)
    # Without selectolax no selector is ever queried (FallbackNavigator reads none).
    if SELECTOLAX_AVAILABLE:
        for index, selector in enumerate(items):
            if not _selector_parses(selector):
                raise ValueError(
                    f"NavigationConfig: {param}[{index}] must be a CSS selector "
                    f"selectolax can parse; got {selector!r}"
                )
    return items


def _pattern_list(param: str, value: object) -> FrozenList[str]:
    items = _str_list(param, value)
    for index, pattern in enumerate(items):
        try:
            re.compile(pattern, re.IGNORECASE)
        except re.error as exc:
            raise ValueError(
                f"NavigationConfig: {param}[{index}] must be a regular expression; "
                f"got {pattern!r} ({exc})"
            ) from None
    return items


def _pagination_selectors(value: Iterable[str]) -> FrozenList[str]:
    return _selector_list("pagination_selectors", value)


def _pagination_link_patterns(value: Iterable[str]) -> FrozenList[str]:
    return _pattern_list("pagination_link_patterns", value)


def _next_link_texts(value: Iterable[str]) -> FrozenList[str]:
    return _str_list("next_link_texts", value)


def _prev_link_texts(value: Iterable[str]) -> FrozenList[str]:
    return _str_list("prev_link_texts", value)


def _nav_link_selectors(value: Iterable[str]) -> FrozenList[str]:
    return _selector_list("nav_link_selectors", value)


def _content_selectors(value: Iterable[str]) -> FrozenList[str]:
    return _selector_list("content_selectors", value)


def _min_nav_links(value: int) -> int:
    return check_int("NavigationConfig", "min_nav_links", value, minimum=0)


def _max_actions(value: int) -> int:
    return check_int("NavigationConfig", "max_actions", value, minimum=0)


def _default_pagination_selectors() -> FrozenList[str]:
    return FrozenList(
        [
            ".pagination",
            ".pager",
            ".pages",
            '[role="navigation"]',
            "nav.pagination",
            ".page-numbers",
            ".wp-pagenavi",
        ]
    )


def _default_pagination_link_patterns() -> FrozenList[str]:
    return FrozenList([r"page[=/-]?\d+", r"p[=/-]?\d+", r"offset[=/-]?\d+", r"\?.*page"])


def _default_next_link_texts() -> FrozenList[str]:
    # "\u203a" and "\u2039" are the single angle quotation marks, escaped: ruff (RUF001)
    # reads them as look-alikes of ">" and "<".
    return FrozenList(["next", "→", "»", "\u203a", ">", "next page", "older", "more"])


def _default_prev_link_texts() -> FrozenList[str]:
    return FrozenList(["prev", "previous", "←", "«", "\u2039", "<", "newer", "back"])


def _default_nav_link_selectors() -> FrozenList[str]:
    return FrozenList(["nav a", ".nav a", ".menu a", ".navigation a", '[role="navigation"] a'])


def _default_content_selectors() -> FrozenList[str]:
    return FrozenList(
        [
            "article",
            "main",
            '[role="main"]',
            ".post-content",
            ".article-content",
            ".entry-content",
            "#content",
            ".content",
        ]
    )


@frozen_compat
@attrs.frozen
class NavigationConfig:
    """What :class:`PageNavigator` looks for, and how many actions it suggests.

    Attributes:
        pagination_selectors: CSS selectors of a pagination container; the first
            that matches anything is the page's pagination (even if it holds no
            link, which then means no pagination).
        pagination_link_patterns: Regular expressions (matched case-insensitively
            anywhere in an ``href``) marking a page link, used when no container matches.
        next_link_texts: Lower-case words or symbols: a link whose lower-cased
            text contains one is a "next page" link.
        prev_link_texts: The same for "previous page" links.
        nav_link_selectors: CSS selectors of menu links.
        content_selectors: CSS selectors of the main content, tried in order;
            the first whose text is longer than 200 characters wins.
        min_nav_links: The fewest menu links (distinct URLs matched by
            ``nav_link_selectors``) that make a menu: a page with fewer has no
            ``nav_links`` and no menu actions. The reference documented this
            and never applied it; 0 or 1 gives its answers.
        max_actions: The most actions :meth:`PageNavigator.analyze` returns.

    Raises:
        TypeError: A list field is not a list of str (a bare str is refused), or
            a count is not an int.
        ValueError: A pattern does not compile, a selector does not parse (when
            selectolax is installed), or a count is negative.
    """

    pagination_selectors: FrozenList[str] = attrs.field(
        factory=_default_pagination_selectors, converter=_pagination_selectors
    )
    pagination_link_patterns: FrozenList[str] = attrs.field(
        factory=_default_pagination_link_patterns, converter=_pagination_link_patterns
    )
    next_link_texts: FrozenList[str] = attrs.field(
        factory=_default_next_link_texts, converter=_next_link_texts
    )
    prev_link_texts: FrozenList[str] = attrs.field(
        factory=_default_prev_link_texts, converter=_prev_link_texts
    )
    nav_link_selectors: FrozenList[str] = attrs.field(
        factory=_default_nav_link_selectors, converter=_nav_link_selectors
    )
    content_selectors: FrozenList[str] = attrs.field(
        factory=_default_content_selectors, converter=_content_selectors
    )
    min_nav_links: int = attrs.field(default=3, converter=_min_nav_links)
    max_actions: int = attrs.field(default=20, converter=_max_actions)


# --- NavigationResult -----------------------------------------------------------


@attrs.define
class NavigationResult:
    """What :meth:`Navigator.analyze` found on one page.

    Attributes:
        actions: Suggested actions, most useful first (priority 1 = next page,
            2 = previous page, 3 = menu link, 4 = link in the main content).
        pagination: The page's pagination, or None if none was found.
        main_content_selector: A CSS selector of the main content, or None.
        nav_links: Menu links, each URL once, in page order per selector.
        breadcrumbs: The breadcrumb trail's links, in page order.
    """

    actions: list[NavigationAction] = attrs.field(factory=list)
    pagination: PaginationInfo | None = None
    main_content_selector: str | None = None
    nav_links: list[ExtractedLink] = attrs.field(factory=list)
    breadcrumbs: list[ExtractedLink] = attrs.field(factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready plain dicts and lists, with the reference's keys."""
        return {
            "actions": [action.to_dict() for action in self.actions],
            "pagination": None if self.pagination is None else self.pagination.to_dict(),
            "main_content_selector": self.main_content_selector,
            "nav_links": [link.to_dict() for link in self.nav_links],
            "breadcrumbs": [crumb.to_dict() for crumb in self.breadcrumbs],
        }


# --- Navigator ------------------------------------------------------------------


def _pagination_actions(
    pagination: PaginationInfo | None, *, with_direction: bool
) -> list[NavigationAction]:
    """The next (priority 1) and previous (priority 2) page actions, where known."""
    actions: list[NavigationAction] = []
    if pagination is None:
        return actions
    # A next or previous link without a URL offers no action.
    for url, label, priority, direction in (
        (pagination.next_url, "Next page", 1, "next"),
        (pagination.prev_url, "Previous page", 2, "prev"),
    ):
        if url:
            metadata = {"direction": direction} if with_direction else None
            actions.append(
                NavigationAction(
                    action_type="pagination",
                    label=label,
                    url=url,
                    priority=priority,
                    metadata=metadata,
                )
            )
    return actions


class Navigator:
    """The interface of a page analyser; subclasses implement :meth:`analyze`.

    The three query methods answer from one :meth:`analyze` call each, so a
    subclass only has to write that.

    Args:
        config: What to look for; None means ``NavigationConfig()``.

    Raises:
        TypeError: ``config`` is neither a NavigationConfig nor None.
    """

    def __init__(self, config: NavigationConfig | None = None) -> None:
        if config is None:
            config = NavigationConfig()
        elif not isinstance(config, NavigationConfig):
            raise TypeError(
                f"{type(self).__name__}: config must be a NavigationConfig or None; "
                f"got {type_of(config)}"
            )
        self.config: NavigationConfig = config

    def analyze(
        self,
        html: str,
        *,
        base_url: str | None = None,
    ) -> NavigationResult:
        """Analyse ``html``; relative links resolve against ``base_url`` when given.

        Raises:
            NotImplementedError: Always, on the base class.
        """
        raise NotImplementedError("Subclasses must implement analyze")

    def get_navigation_actions(
        self,
        html: str,
        *,
        base_url: str | None = None,
    ) -> list[NavigationAction]:
        """The suggested actions of ``analyze(html, base_url=base_url)``."""
        return self.analyze(html, base_url=base_url).actions

    def find_pagination(
        self,
        html: str,
        *,
        base_url: str | None = None,
    ) -> PaginationInfo | None:
        """The pagination of ``analyze(html, base_url=base_url)``, or None."""
        return self.analyze(html, base_url=base_url).pagination

    def find_main_content_selector(self, html: str) -> str | None:
        """The main-content selector of ``analyze(html)``, or None."""
        return self.analyze(html).main_content_selector


# --- PageNavigator --------------------------------------------------------------

# Searched in this order for a page number in a URL; the first that matches decides.
_PAGE_NUMBER_PATTERNS = (
    re.compile(r"page[=/-]?(\d+)", re.IGNORECASE),
    re.compile(r"p[=/-]?(\d+)", re.IGNORECASE),
    re.compile(r"/(\d+)/?$", re.IGNORECASE),
)

# The current-page marker, by preference. The reference queried them as one
# selector group; selectolax's Modest backend (the one it was written for)
# answers a group selector by selector, lexbor in document order: trying them
# in turn keeps the reference's answer when a page has, say, both an "active"
# and a "current" element.
_CURRENT_PAGE_SELECTORS = (".current", ".active", "[aria-current='page']")

# A div whose class or id contains one of these is a main-content candidate.
_CONTENT_HINTS = ("content", "article", "post", "main", "body", "entry")

_BREADCRUMB_SELECTORS = (
    ".breadcrumb a",
    ".breadcrumbs a",
    '[aria-label="breadcrumb"] a',
    "nav.breadcrumb a",
    ".bread-crumbs a",
)

_SKIPPED_NAV_PREFIXES = ("#", "javascript:")
_SKIPPED_CONTENT_PREFIXES = ("#", "javascript:", "mailto:", "tel:")

# Characters that may appear unescaped in a CSS identifier: ASCII letters, digits,
# "_" and "-", and the non-ASCII ranges of CSS Syntax 3's "ident code point"
# (lexbor refuses the rest, e.g. U+0080-U+00B6, U+2014, private use).
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
_NON_ASCII_NAME_RANGES = (
    (0xB7, 0xB7),
    (0xC0, 0xD6),
    (0xD8, 0xF6),
    (0xF8, 0x37D),
    (0x37F, 0x1FFF),
    (0x200C, 0x200D),
    (0x203F, 0x2040),
    (0x2070, 0x218F),
    (0x2C00, 0x2FEF),
    (0x3001, 0xD7FF),
    (0xF900, 0xFDCF),
    (0xFDF0, 0xFFFD),
    (0x10000, 0x10FFFF),
)

# What HTML splits a class attribute on (str.split would also split on U+00A0 and
# other Unicode spaces, which belong to the class name).
_ASCII_WHITESPACE = re.compile(r"[ \t\n\f\r]+")


def _is_name_char(char: str) -> bool:
    if char in _NAME_CHARS:
        return True
    code = ord(char)
    return code >= 0x80 and any(low <= code <= high for low, high in _NON_ASCII_NAME_RANGES)


def _attr(node: LexborNode, name: str) -> str:
    """An attribute's value; "" when absent or written without a value (``<a href>``)."""
    return node.attributes.get(name) or ""


def _first(node: LexborNode | LexborHTMLParser, selector: str) -> LexborNode | None:
    # default=None spelled out: selectolax's stubs type the bare call as never None.
    return node.css_first(selector, default=None)


def _text(node: LexborNode) -> str:
    return node.text(strip=True)


def _css_escape(name: str) -> str:
    """``name`` as a CSS identifier, escaped as the CSSOM's ``CSS.escape`` does.

    One difference: a non-ASCII character outside the identifier ranges of CSS
    Syntax 3, which ``CSS.escape`` leaves as is but lexbor refuses, is written
    as a hex escape.
    """
    out: list[str] = []
    for index, char in enumerate(name):
        code = ord(char)
        # An identifier cannot start with a digit, nor with "-" and a digit.
        leading_digit = "0" <= char <= "9" and (index == 0 or (index == 1 and name[0] == "-"))
        if code == 0:
            out.append("\ufffd")
        elif index == 0 and char == "-" and len(name) == 1:
            out.append("\\-")
        elif _is_name_char(char) and not leading_digit:
            out.append(char)
        elif code < 0x20 or code >= 0x7F or leading_digit:
            out.append(f"\\{code:x} ")  # controls, a leading digit, non-ASCII outside the ranges
        else:
            out.append("\\" + char)  # ASCII punctuation
    return "".join(out)


def _id_selector(ident: str) -> str:
    # lexbor reads any run of name characters after "#" (even "#1main"), as the
    # reference's selector had it; only other characters need escaping.
    if all(_is_name_char(char) for char in ident):
        return "#" + ident
    return "#" + _css_escape(ident)


def _candidate_selector(class_attr: str, id_attr: str) -> str:
    """The selector naming a content candidate: its first class, else its id.

    The reference returned ``"." + first class`` unescaped: for a class such as
    Tailwind's ``md:w-1/2`` that is no valid selector, and querying it raised.
    A plain identifier is returned unchanged, as the reference had it. The
    class is split on ASCII whitespace, as HTML splits it.
    """
    tokens = [token for token in _ASCII_WHITESPACE.split(class_attr) if token]
    if tokens:
        return "." + _css_escape(tokens[0])
    return _id_selector(id_attr)


def _resolve(base_url: str | None, href: str) -> str | None:
    """``href`` resolved against ``base_url`` (if any); None if urllib cannot parse it.

    ``urljoin`` raises ValueError on a malformed host (``http://[::1``, an
    unrendered ``//[link]`` template): the reference let that abort the whole
    analysis; here the one link is dropped.
    """
    if not base_url:
        return href
    try:
        return urljoin(base_url, href)
    except ValueError:
        return None


def _link(
    href: str, text: str, link_base: str | None, page_url: str | None
) -> ExtractedLink | None:
    """An ExtractedLink resolved against the document's base URL, internal on
    ``page_url``'s host; None when its URL cannot be parsed (see :func:`_resolve`)."""
    try:
        return page_link(href, text, link_base=link_base, page_url=page_url)
    except ValueError:
        return None


def _mentions(text: str, words: Iterable[str]) -> bool:
    return any(word in text for word in words)


class PageNavigator(Navigator):
    """A :class:`Navigator` that reads the page's structure with selectolax (lexbor).

    Args:
        config: What to look for; None means ``NavigationConfig()``.

    Raises:
        TypeError: ``config`` is neither a NavigationConfig nor None.
        ImportError: selectolax is not installed.
    """

    def __init__(self, config: NavigationConfig | None = None) -> None:
        super().__init__(config)
        if not SELECTOLAX_AVAILABLE:
            raise ImportError(_INSTALL_HINT)

    def analyze(
        self,
        html: str,
        *,
        base_url: str | None = None,
    ) -> NavigationResult:
        """Find the pagination, main content, menus, breadcrumbs and actions of a page.

        Args:
            html: The page (str, or bytes read as UTF-8). Malformed HTML is
                repaired the way a browser would.
            base_url: Where the page came from; relative links resolve against
                it (through the page's ``<base href>``, when it has one) and it
                decides which links are internal. None or "" leaves links as
                written, unless a ``<base>`` gives an absolute URL.

        Returns:
            A NavigationResult. Its actions are, in order: next page, previous
            page, menu links (when there are at least ``config.min_nav_links``),
            then links of at least 3 characters of text in the
            main content (or the whole body) not already offered, at most
            ``config.max_actions`` in all.

        Raises:
            TypeError: ``html`` is not a str or bytes, or ``base_url`` not a str or None.
        """
        if not isinstance(html, str | bytes):
            raise TypeError(
                f"PageNavigator.analyze: html must be a str or bytes; got {type_of(html)}"
            )
        check_str("PageNavigator.analyze", "base_url", base_url, optional=True)
        tree = LexborHTMLParser(html)
        limit = self.config.max_actions
        # Links resolve against the document's base URL (its <base href>, else
        # the page's URL); whether one is internal is decided by the page's URL.
        link_base = document_base(base_url, tree_base_href(tree))

        pagination = self._find_pagination(tree, link_base)
        main_selector = self._detect_main_content(tree)
        nav_links = self._extract_nav_links(tree, link_base, base_url)
        if len(nav_links) < self.config.min_nav_links:
            # Too few to be a menu (a lone "Log in" link in a <nav>): the page has none.
            nav_links = []
        breadcrumbs = self._extract_breadcrumbs(tree, link_base, base_url)

        actions = _pagination_actions(pagination, with_direction=True)
        room = limit - len(actions)
        if room > 0:
            actions.extend(
                NavigationAction(
                    action_type="nav_link", label=link.text or link.url, url=link.url, priority=3
                )
                for link in nav_links[:room]
            )
        room = limit - len(actions)
        if room > 0:
            # The room is counted before duplicates are dropped, as in the
            # reference: a duplicate uses up a slot without filling it.
            offered = {action.url for action in actions}
            content_links = self._extract_content_links(tree, link_base, main_selector, base_url)
            for link in content_links[:room]:
                if link.url not in offered:
                    offered.add(link.url)
                    actions.append(
                        NavigationAction(
                            action_type="content_link",
                            label=link.text or link.url,
                            url=link.url,
                            priority=4,
                        )
                    )

        return NavigationResult(
            actions=actions[:limit],
            pagination=pagination,
            main_content_selector=main_selector,
            nav_links=nav_links,
            breadcrumbs=breadcrumbs,
        )

    def _find_pagination(
        self, tree: LexborHTMLParser, base_url: str | None
    ) -> PaginationInfo | None:
        """The pagination container's links, else links whose URL looks like a page."""
        config = self.config
        for selector in config.pagination_selectors:
            container = _first(tree, selector)
            if container is not None:
                # The first container found decides, even when it has no link.
                return self._parse_pagination_node(container, base_url)

        patterns = [re.compile(p, re.IGNORECASE) for p in config.pagination_link_patterns]
        page_links: list[tuple[str, int | None]] = []
        for anchor in tree.css("a[href]"):
            href = _attr(anchor, "href")
            if any(pattern.search(href) for pattern in patterns):
                url = _resolve(base_url, href)
                if url is not None:
                    page_links.append((url, self._extract_page_number(href)))
        if len(page_links) < 2:
            return None
        # Lowest page number first (an unnumbered link counts as 0); the page
        # is taken to be page 1, so the lowest linked page is "next".
        page_links.sort(key=lambda link: link[1] or 0)
        return PaginationInfo(
            current_page=1,
            page_urls=[url for url, _ in page_links],
            next_url=page_links[0][0],
        )

    def _parse_pagination_node(
        self, node: LexborNode, base_url: str | None
    ) -> PaginationInfo | None:
        """Read next, previous, numbered links and the current page from a container.

        When several links read as "next" (or "previous"), the last one wins.
        """
        anchors = node.css("a[href]")
        if not anchors:
            return None
        config = self.config
        next_url: str | None = None
        prev_url: str | None = None
        page_urls: list[str] = []
        for anchor in anchors:
            # An empty href (``href=""`` or a bare ``<a href>``) is None, as
            # selectolax's Modest backend read it for the reference: a next or
            # previous link without a URL leaves next_url / prev_url None.
            href = anchor.attributes.get("href") or None
            if href is not None:
                href = _resolve(base_url, href)
                if href is None:
                    continue  # a URL urllib cannot parse: not a link to follow
            text = _text(anchor).lower()
            classes = _attr(anchor, "class").lower()
            if _mentions(text, config.next_link_texts) or "next" in classes:
                next_url = href
            elif _mentions(text, config.prev_link_texts) or "prev" in classes:
                prev_url = href
            elif href:
                page_urls.append(href)

        current_page = 1
        marker = next(
            (found for sel in _CURRENT_PAGE_SELECTORS if (found := _first(node, sel)) is not None),
            None,
        )
        if marker is not None:
            label = _text(marker)
            # isdecimal, not isdigit: "²" is a digit int() refuses (the reference
            # crashed on it); int() also refuses more than 4,300 digits.
            if label.isdecimal():
                with contextlib.suppress(ValueError):
                    current_page = int(label)

        return PaginationInfo(
            current_page=current_page,
            next_url=next_url,
            prev_url=prev_url,
            page_urls=page_urls,
            total_pages=len(page_urls) + 1 if page_urls else None,
        )

    def _extract_page_number(self, url: str) -> int | None:
        """The page number in a URL (``page=3``, ``/page/3``, ``p3``, ``/3/``), or None."""
        for pattern in _PAGE_NUMBER_PATTERNS:
            match = pattern.search(url)
            if match is not None:
                try:
                    return int(match.group(1))
                except ValueError:  # more digits than int() reads: try the next pattern
                    continue
        return None

    def _detect_main_content(self, tree: LexborHTMLParser) -> str | None:
        """A selector of the main content: a configured one, else the wordiest candidate div."""
        for selector in self.config.content_selectors:
            node = _first(tree, selector)
            if node is not None and len(_text(node)) > 200:
                return selector

        best: tuple[str, str] | None = None
        best_length = -1
        # Divs with a class, then divs with only an id: the order in which the
        # Modest backend listed the reference's group "div[class], div[id]", and
        # so which of two equally long candidates comes first.
        for div in (*tree.css("div[class]"), *tree.css("div[id]:not([class])")):
            class_attr = _attr(div, "class")
            id_attr = _attr(div, "id")
            lowered = (class_attr.lower(), id_attr.lower())
            if not any(hint in attr for hint in _CONTENT_HINTS for attr in lowered):
                continue
            length = len(_text(div))
            if length > best_length:  # strictly longer: the first of equals wins
                best, best_length = (class_attr, id_attr), length
        return None if best is None else _candidate_selector(*best)

    def _extract_nav_links(
        self, tree: LexborHTMLParser, base_url: str | None, page_url: str | None
    ) -> list[ExtractedLink]:
        """Menu links, selector by selector, each URL once; anchors and scripts skipped."""
        links: list[ExtractedLink] = []
        seen: set[str] = set()
        # The default selectors overlap ("nav a", ".navigation a", ...), so most
        # anchors come back several times; an href met before resolves to a URL
        # already taken, and is skipped without resolving it again.
        seen_hrefs: set[str] = set()
        for selector in self.config.nav_link_selectors:
            for anchor in tree.css(selector):
                href = _attr(anchor, "href")
                if href in seen_hrefs or not href or href.startswith(_SKIPPED_NAV_PREFIXES):
                    continue
                seen_hrefs.add(href)
                link = _link(href, _text(anchor), base_url, page_url)
                if link is not None and link.url not in seen:
                    seen.add(link.url)
                    links.append(link)
        return links

    def _extract_breadcrumbs(
        self, tree: LexborHTMLParser, base_url: str | None, page_url: str | None
    ) -> list[ExtractedLink]:
        """The links of the first breadcrumb selector that yields any (repeats kept)."""
        for selector in _BREADCRUMB_SELECTORS:
            links = [
                link
                for anchor in tree.css(selector)
                if (href := _attr(anchor, "href")) and not href.startswith("#")
                if (link := _link(href, _text(anchor), base_url, page_url)) is not None
            ]
            if links:
                return links
        return []

    def _extract_content_links(
        self,
        tree: LexborHTMLParser,
        base_url: str | None,
        main_selector: str | None,
        page_url: str | None,
    ) -> list[ExtractedLink]:
        """Links in the main content (else the body) with at least 3 characters of text."""
        container = None
        if main_selector:
            container = _first(tree, main_selector)
        if container is None:
            container = tree.body or tree.root
        if container is None:
            return []
        links: list[ExtractedLink] = []
        seen: set[str] = set()
        for anchor in container.css("a[href]"):
            href = _attr(anchor, "href")
            if not href or href.startswith(_SKIPPED_CONTENT_PREFIXES):
                continue
            text = _text(anchor)
            if len(text) < 3:
                continue
            link = _link(href, text, base_url, page_url)
            if link is not None and link.url not in seen:
                seen.add(link.url)
                links.append(link)
        return links


# --- FallbackNavigator ----------------------------------------------------------

# An anchor with a quoted, non-empty href: the attributes around the href, the
# href, and the inner HTML up to the first "</a>".
_ANCHOR = re.compile(
    r"<a(?P<before>[^>]*)href=[\"'](?P<href>[^\"']+)[\"'](?P<after>[^>]*)>(?P<inner>.*?)</a>",
    re.IGNORECASE | re.DOTALL,
)
_TAG = re.compile(r"<[^>]+>")
_CLASS_ATTR = re.compile(r"class=[\"']([^\"']+)[\"']", re.IGNORECASE)


class FallbackNavigator(Navigator):
    """A :class:`Navigator` that needs no parser: it finds next and previous links only.

    It scans the raw HTML for anchors with regular expressions; the first link
    reading as "next" and the first reading as "previous" (by text or class)
    make the pagination. It finds no menus, breadcrumbs or main content.

    Args:
        config: Only its ``next_link_texts`` and ``prev_link_texts`` are read.

    Raises:
        TypeError: ``config`` is neither a NavigationConfig nor None.
    """

    def analyze(
        self,
        html: str,
        *,
        base_url: str | None = None,
    ) -> NavigationResult:
        """Find the first next and previous links of ``html``.

        Returns:
            A NavigationResult with pagination (page 1, next and previous URLs)
            and the matching "Next page" / "Previous page" actions, or an empty one.

        Raises:
            TypeError: ``html`` is not a str, or ``base_url`` not a str or None.
        """
        check_str("FallbackNavigator.analyze", "html", html)
        check_str("FallbackNavigator.analyze", "base_url", base_url, optional=True)
        config = self.config
        link_base = document_base(base_url, markup_base_href(html))
        next_url: str | None = None
        prev_url: str | None = None
        for match in _ANCHOR.finditer(html):
            text = _TAG.sub("", match["inner"]).strip().lower()
            class_match = _CLASS_ATTR.search(f"{match['before']} {match['after']}")
            classes = class_match.group(1).lower() if class_match else ""
            url = _resolve(link_base, match["href"])
            if url is None:
                continue
            if next_url is None and (_mentions(text, config.next_link_texts) or "next" in classes):
                next_url = url
            if prev_url is None and (_mentions(text, config.prev_link_texts) or "prev" in classes):
                prev_url = url
            if next_url and prev_url:
                break

        if next_url is None and prev_url is None:
            return NavigationResult()
        pagination = PaginationInfo(current_page=1, next_url=next_url, prev_url=prev_url)
        return NavigationResult(
            actions=_pagination_actions(pagination, with_direction=False),
            pagination=pagination,
        )


def get_default_navigator(config: NavigationConfig | None = None) -> Navigator:
    """A :class:`PageNavigator` if selectolax is installed, else a :class:`FallbackNavigator`.

    Raises:
        TypeError: ``config`` is neither a NavigationConfig nor None.
    """
    if SELECTOLAX_AVAILABLE:
        return PageNavigator(config)
    return FallbackNavigator(config)
