"""The URL a page's relative links resolve against: its ``<base href>``, else the page's URL.

A browser resolves a relative link against the document's base URL: the ``href``
of the first ``<base>`` element that has one, itself resolved against the page's
URL; without such an element, the page's URL. The extractors and navigators find
that URL once per page (:func:`tree_base_href` for the selectolax parsers,
:func:`markup_base_href` for the regular-expression fallbacks) and pass it to
:func:`document_base`; every link is then made by :func:`page_link`. The
reference resolved every link against the page's URL, so a crawler following
links of a page with a ``<base>`` went to the wrong pages.
"""

from __future__ import annotations

import re
from html import unescape
from typing import Any
from urllib.parse import urljoin, urlparse, urlsplit

from stageflow_trio.websearch.models import ExtractedLink, _href_url

__all__ = ["document_base", "markup_base_href", "page_link", "tree_base_href"]

# Stripped from an href before it is parsed, as the URL parser strips them.
_ASCII_WHITESPACE = " \t\n\r\f"
# Schemes the HTML standard refuses as a base URL (the page's URL is used instead).
_REFUSED_SCHEMES = frozenset({"data", "javascript"})

# A <base ...> start tag. "[^<>]*" rather than "[^>]*": a scan stops at the next
# "<" too, so a page of many "<base" without ">" is still read in linear time.
_BASE_TAG = re.compile(r"<base(?=[\s/>])[^<>]*>", re.IGNORECASE)
_HREF = re.compile(
    r"""[\s/]href(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+))|(?=[\s/>]))""",
    re.IGNORECASE,
)


def document_base(page_url: str | None, base_href: str | None) -> str | None:
    """The URL relative links of the page at ``page_url`` resolve against.

    Args:
        page_url: The page's URL (None or "" when unknown).
        base_href: The ``href`` of the page's first ``<base>`` that has one
            (None when there is none; "" for an empty or valueless one).

    Returns:
        ``base_href`` resolved against ``page_url``; ``page_url`` itself when
        there is no ``base_href``, when it cannot be parsed (``urllib.parse``
        raises), when it resolves to no absolute URL (a relative one on a page
        of unknown URL), or when its scheme is ``data`` or ``javascript`` (which
        the HTML standard does not let a base URL have).
    """
    if base_href is None:
        return page_url
    href = base_href.strip(_ASCII_WHITESPACE)
    try:
        # urljoin, not the links' rule: a protocol-relative base takes the page's scheme.
        url = urljoin(page_url, href) if page_url else href
        parts = urlsplit(url)
    except ValueError:
        return page_url
    if not parts.scheme or parts.scheme.lower() in _REFUSED_SCHEMES:
        return page_url
    return url


def tree_base_href(tree: Any) -> str | None:
    """The ``href`` of the first ``<base>`` in a selectolax tree that has one (Modest or lexbor).

    None when there is none; "" for ``<base href>``, which Modest reads as None.
    """
    node = tree.css_first("base[href]")
    if node is None:
        return None
    href: str | None = node.attributes.get("href")
    return href or ""


def markup_base_href(html: str) -> str | None:
    """The ``href`` of the first ``<base>`` tag in ``html`` that has one, entities decoded.

    For the regular-expression fallbacks, which have no tree.
    """
    for tag in _BASE_TAG.finditer(html):
        match = _HREF.search(tag.group(), 5)
        if match is not None:
            value = next((group for group in match.groups() if group is not None), "")
            return unescape(value)
    return None


def page_link(
    href: str,
    text: str,
    *,
    link_base: str | None,
    page_url: str | None,
    title: str | None = None,
    rel: str | None = None,
) -> ExtractedLink:
    """An :class:`ExtractedLink` of the page at ``page_url``, resolved against ``link_base``.

    ``link_base`` is :func:`document_base`'s answer; the link is internal when
    its host is the page's (a ``<base>`` on another host does not make that host
    internal). Without a ``<base>`` this is ``ExtractedLink.from_element``.

    Raises:
        ValueError: ``urllib.parse`` cannot parse ``href``.
    """
    if (link_base or "") == (page_url or ""):
        return ExtractedLink.from_element(href, text, base_url=page_url, title=title, rel=rel)
    url = _href_url(href, link_base)
    is_internal = bool(page_url) and urlparse(page_url).netloc == urlparse(url).netloc
    return ExtractedLink(url=url, text=text.strip(), title=title, rel=rel, is_internal=is_internal)
