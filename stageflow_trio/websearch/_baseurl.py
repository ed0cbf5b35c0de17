"""The URL a page's relative links resolve against: its ``<base href>``, else the page's URL.

A browser resolves a relative link against the document's base URL: the ``href``
of the first ``<base>`` element that has one, itself resolved against the page's
URL; without such an element, the page's URL. The element is HTML's ``base``: one
inside ``<template>`` is not in the document (it is the template's content), one
inside ``<svg>`` or ``<math>`` is an SVG or MathML element of that name, which
sets nothing (unless an HTML integration point, such as ``<foreignObject>``, is
between them), and one written in a comment or a script is no element at all.
The extractors and navigators find that URL once per page (:func:`tree_base_href`
for the selectolax parsers, :func:`markup_base_href` for the regular-expression
fallbacks) and pass it to :func:`document_base`; every link is then made by
:func:`page_link`. The reference resolved every link against the page's URL, so a
crawler following links of a page with a ``<base>`` went to the wrong pages.
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

# The markup the regular-expression fallback reads, in one linear scan: a comment,
# a raw text element (its content is text, up to its end tag or the end of the
# page), a <template>, <svg> or <math> tag (content not in the HTML document or not
# HTML), or a <base ...> start tag. "[^<>]*" rather than "[^>]*": a tag's scan
# stops at the next "<", so a page of many "<base" without ">" is read in linear time.
_MARKUP = re.compile(
    r"<!--(?:-?>|.*?(?:-->|\Z))"
    r"|<(?P<raw>script|style|textarea|title|xmp|iframe|noembed|noframes)(?=[\s/>])"
    r".*?(?:</(?P=raw)(?=[\s/>])|\Z)"
    r"|<(?P<end>/?)(?P<other>template|svg|math)(?=[\s/>])(?P<rest>[^<>]*)>"
    r"|(?P<base><base(?=[\s/>])[^<>]*>)",
    re.IGNORECASE | re.DOTALL,
)
_HREF = re.compile(
    r"""[\s/]href(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+))|(?=[\s/>]))""",
    re.IGNORECASE,
)
# SVG and MathML elements whose children the parser makes HTML elements again:
# the HTML integration points and MathML's text integration points.
_SVG_TO_HTML = frozenset({"foreignobject", "desc", "title"})
_MATHML_TO_HTML = frozenset({"mi", "mo", "mn", "ms", "mtext"})
_HTML_ENCODINGS = frozenset({"text/html", "application/xhtml+xml"})


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
    """The ``href`` of the first HTML ``<base>`` in a selectolax tree that has one (Modest or lexbor).

    None when there is none; "" for ``<base href>``, which Modest reads as None.
    A ``<base>`` in a ``<template>`` (Modest keeps a template's content in the tree;
    lexbor does not) or in SVG or MathML content is skipped.
    """
    for node in tree.css("base[href]"):
        if _is_html_base(node):
            href: str | None = node.attributes.get("href")
            return href or ""
    return None


def _is_html_base(node: Any) -> bool:
    """Whether a ``<base>`` node is HTML's and in the document.

    Its ancestors are read from the root down, as the parser made them: an element
    under an SVG or MathML one is in that namespace too, unless that one is an
    integration point, whose children are parsed as HTML's are.
    """
    path = []
    parent = node.parent
    while parent is not None:
        if parent.tag == "template":
            return False
        path.append(parent)
        parent = parent.parent
    children = "html"  # the namespace the next element down is parsed in
    above = ""
    for element in reversed(path):
        tag = element.tag.lower()
        if children == "html" or (above == "annotation-xml" and tag == "svg"):
            namespace = tag if tag in ("svg", "math") else "html"
        else:
            namespace = children
        if namespace == "svg":
            children = "html" if tag in _SVG_TO_HTML else "svg"
        elif namespace == "math":
            encoding = (element.attributes.get("encoding") or "").lower()
            html = tag in _MATHML_TO_HTML or (
                tag == "annotation-xml" and encoding in _HTML_ENCODINGS
            )
            children = "html" if html else "math"
        else:
            children = "html"
        above = tag
    return children == "html"


def markup_base_href(html: str) -> str | None:
    """The ``href`` of the first ``<base>`` tag in ``html`` that has one, entities decoded.

    For the regular-expression fallbacks, which have no tree. A ``<base>`` in a
    comment, a ``<script>`` or another raw text element, or between a
    ``<template>``, ``<svg>`` or ``<math>`` tag and its end tag (nested ones
    counted) is skipped. Simpler than a parser: one under an integration point
    (an SVG ``<foreignObject>``) is skipped too, and an ``<svg>`` or ``<math>``
    is not closed before the end tag (a parser closes it at a ``<p>`` or ``<div>``).
    """
    inside: str | None = None  # the <template>, <svg> or <math> the scan is in
    depth = 0
    for tag in _MARKUP.finditer(html):
        other = tag.group("other")
        if other is not None:
            other = other.lower()
            closing = bool(tag.group("end"))
            # <svg/> and <math/> are closed at once; HTML's <template/> is not.
            empty = not closing and other != "template" and tag.group("rest").endswith("/")
            if inside is None:
                if not closing and not empty:
                    inside, depth = other, 1
            elif other == inside and not empty:
                depth += -1 if closing else 1
                if depth == 0:
                    inside = None
        elif inside is None and tag.group("base") is not None:
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
