"""The values web search produces: a page, its metadata, links, navigation actions, pagination.

- :class:`PageMetadata`: title, description, language and the other ``<head>`` facts.
- :class:`ExtractedLink`: one link, resolved to an absolute URL
  (:meth:`ExtractedLink.from_element` does the resolving).
- :class:`NavigationAction`: something an agent can do next on a page (follow a
  pagination, menu, content or external link).
- :class:`PaginationInfo`: the page's position in a paginated listing.
- :class:`WebPage`: everything fetched and extracted from one URL, or the error.

Every value is frozen, and ``to_dict()`` / ``from_dict()`` use the reference's keys,
so a page serialized by either library loads in the other (``WebPage.to_dict()``
is the shape stored in ``Enrichments.web_results``).

How this differs from the reference's frozen dataclasses:

- They are ``@attrs.frozen`` classes (same fields, order and defaults, so positional
  construction still works); copy one with ``attrs.evolve``, not
  ``dataclasses.replace``. Assigning a field raises an error that is both
  ``dataclasses.FrozenInstanceError`` and ``attrs.exceptions.FrozenInstanceError``.
- Their list and dict fields are held as :class:`~stageflow_trio.utils.frozen.FrozenList`
  and :class:`~stageflow_trio.utils.frozen.FrozenDict`: real lists and dicts (equal to
  plain ones, JSON-serializable) that refuse changes, so a value cannot change
  after it is shared. The reference's dataclasses were frozen only at the top:
  ``page.links.append(...)`` changed a "frozen" page. It also makes the values
  hashable (when a ``NavigationAction``'s metadata values are).
- ``to_dict()`` returns new plain lists and dicts, and the list properties and
  ``extract_links()`` return a new plain list, never the value's own container.
- The constructors check their arguments (a ``TypeError`` or ``ValueError`` naming
  the class and field) where the reference stored anything and failed later, in
  ``to_dict()``, in a JSON encoder or in ``success``. A ``None`` list
  (``keywords=None``, ``"links": None`` in ``from_dict``) is read as empty.
- ``WebPage.truncate()`` returns the caller's class (``attrs.evolve``) and refuses a
  negative ``max_chars``, which the reference turned into a cut from the end.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urljoin, urlparse

import attrs

from stageflow_trio._args import check_flag, check_int, check_number, check_str, type_of
from stageflow_trio._frozen import frozen_compat
from stageflow_trio._time import utc_now_iso
from stageflow_trio.utils.frozen import FrozenDict, FrozenList

__all__ = [
    "ExtractedLink",
    "NavigationAction",
    "PageMetadata",
    "PaginationInfo",
    "WebPage",
]

# The marker truncate() appends where it cut the markdown at a paragraph break.
_TRUNCATION_MARKER = "\n\n[Content truncated...]"


# -- argument checks ---------------------------------------------------------------


def _check_data(owner: str, data: object) -> None:
    # from_dict reads keys with .get(); a list or a JSON string failed with an
    # AttributeError that named neither the method nor the argument.
    if not isinstance(data, Mapping):
        raise TypeError(f"{owner}.from_dict: data must be a dict; got {type_of(data)}")


def _items(owner: str, param: str, value: object, rule: str) -> Iterable[Any]:
    """``value`` as an iterable of items, refusing what would iterate into nonsense.

    A str would become a list of its characters and a dict the list of its keys;
    ``None`` is an empty list (a JSON ``null``).
    """
    if value is None:
        return ()
    if isinstance(value, str | bytes | bytearray | Mapping) or not isinstance(value, Iterable):
        raise TypeError(f"{owner}: {param} must be {rule}; got {type_of(value)}")
    return value


def _str_list(owner: str, param: str, value: object) -> FrozenList[str]:
    frozen: FrozenList[str] = (
        value
        if type(value) is FrozenList
        else FrozenList(_items(owner, param, value, "a list of str"))
    )
    for index, item in enumerate(frozen):
        if not isinstance(item, str):
            raise TypeError(f"{owner}: {param}[{index}] must be a str; got {type_of(item)}")
    return frozen


def _object_list(owner: str, param: str, value: object, kind: type[Any]) -> FrozenList[Any]:
    rule = f"a list of {kind.__name__}"
    frozen: FrozenList[Any] = (
        value if type(value) is FrozenList else FrozenList(_items(owner, param, value, rule))
    )
    for index, item in enumerate(frozen):
        if not isinstance(item, kind):
            article = "an" if kind.__name__[0] in "AEIOU" else "a"
            raise TypeError(
                f"{owner}: {param}[{index}] must be {article} {kind.__name__}; got {type_of(item)}"
            )
    return frozen


def _list_from_data(owner: str, data: Mapping[str, Any], key: str) -> Iterable[Any]:
    # The reference iterated data.get(key, []) directly: a null failed there with
    # "'NoneType' object is not iterable".
    return _items(f"{owner}.from_dict", f"data[{key!r}]", data.get(key), "a list of dicts")


# Converters: one named function per field, so each message names its field
# (and attrs' mypy plugin reads their argument types for __init__).


def _keywords(value: Iterable[str] | None) -> FrozenList[str]:
    return _str_list("PageMetadata", "keywords", value)


def _page_urls(value: Iterable[str] | None) -> FrozenList[str]:
    return _str_list("PaginationInfo", "page_urls", value)


def _action_metadata(value: Mapping[str, Any] | None) -> FrozenDict[str, Any]:
    if type(value) is FrozenDict:
        return value
    if value is None:
        return FrozenDict()
    if not isinstance(value, Mapping):
        raise TypeError(f"NavigationAction: metadata must be a dict or None; got {type_of(value)}")
    return FrozenDict(value)


def _links(value: Iterable[ExtractedLink] | None) -> FrozenList[ExtractedLink]:
    return _object_list("WebPage", "links", value, ExtractedLink)


def _navigation_actions(
    value: Iterable[NavigationAction] | None,
) -> FrozenList[NavigationAction]:
    return _object_list("WebPage", "navigation_actions", value, NavigationAction)


# -- values --------------------------------------------------------------------------


@frozen_compat
@attrs.frozen
class PageMetadata:
    """What a page says about itself, from ``<title>``, ``<html lang>`` and ``<meta>`` tags.

    Attributes:
        title: ``<title>`` or ``og:title``.
        description: The meta description or ``og:description``.
        language: ``<html lang>``.
        author: ``meta[name=author]``.
        published_date: ``article:published_time``, as the page wrote it.
        canonical_url: ``<link rel="canonical">``.
        og_image: The Open Graph image URL.
        keywords: The meta keywords, held in a read-only list (``None`` gives an
            empty one).
        content_type: ``og:type`` (``"article"``, ``"product"``, ...).

    Raises:
        TypeError: a text field is neither a str nor None, or ``keywords`` is not a
            list of str.
    """

    title: str | None = None
    description: str | None = None
    language: str | None = None
    author: str | None = None
    published_date: str | None = None
    canonical_url: str | None = None
    og_image: str | None = None
    keywords: FrozenList[str] = attrs.field(factory=FrozenList, converter=_keywords)
    content_type: str | None = None

    def __attrs_post_init__(self) -> None:
        for name in (
            "title",
            "description",
            "language",
            "author",
            "published_date",
            "canonical_url",
            "og_image",
            "content_type",
        ):
            check_str("PageMetadata", name, getattr(self, name), optional=True)

    def to_dict(self) -> dict[str, Any]:
        """Every field, with the reference's keys; ``keywords`` as a new plain list."""
        return {
            "title": self.title,
            "description": self.description,
            "language": self.language,
            "author": self.author,
            "published_date": self.published_date,
            "canonical_url": self.canonical_url,
            "og_image": self.og_image,
            "keywords": list(self.keywords),
            "content_type": self.content_type,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PageMetadata:
        """The inverse of :meth:`to_dict`; a missing key takes the field's default.

        Raises:
            TypeError: ``data`` is not a dict, or a value has the wrong type.
        """
        _check_data("PageMetadata", data)
        return cls(
            title=data.get("title"),
            description=data.get("description"),
            language=data.get("language"),
            author=data.get("author"),
            published_date=data.get("published_date"),
            canonical_url=data.get("canonical_url"),
            og_image=data.get("og_image"),
            keywords=data.get("keywords"),
            content_type=data.get("content_type"),
        )


@frozen_compat
@attrs.frozen
class ExtractedLink:
    """One link found on a page.

    Attributes:
        url: The link's absolute URL (:meth:`from_element` resolves a relative href).
        text: The link text, stripped.
        title: The ``title`` attribute, if any.
        rel: The ``rel`` attribute (e.g. ``"nofollow"``), if any.
        is_internal: Whether the link stays on the page's host (the same
            ``netloc``, port included).
        context: Text around the link, if the extractor kept it.

    Raises:
        TypeError: ``url`` or ``text`` is not a str, another text field is neither
            a str nor None, or ``is_internal`` is not a bool.
    """

    url: str
    text: str = ""
    title: str | None = None
    rel: str | None = None
    is_internal: bool = False
    context: str | None = None

    def __attrs_post_init__(self) -> None:
        owner = "ExtractedLink"
        check_str(owner, "url", self.url)
        check_str(owner, "text", self.text)
        for name in ("title", "rel", "context"):
            check_str(owner, name, getattr(self, name), optional=True)
        check_flag(owner, "is_internal", self.is_internal)

    def to_dict(self) -> dict[str, Any]:
        """Every field, with the reference's keys."""
        return {
            "url": self.url,
            "text": self.text,
            "title": self.title,
            "rel": self.rel,
            "is_internal": self.is_internal,
            "context": self.context,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExtractedLink:
        """The inverse of :meth:`to_dict`; only ``"url"`` is required.

        Raises:
            KeyError: ``data`` has no ``"url"`` (as in the reference).
            TypeError: ``data`` is not a dict, or a value has the wrong type.
        """
        _check_data("ExtractedLink", data)
        return cls(
            url=data["url"],
            text=data.get("text", ""),
            title=data.get("title"),
            rel=data.get("rel"),
            is_internal=data.get("is_internal", False),
            context=data.get("context"),
        )

    @classmethod
    def from_element(
        cls,
        href: str,
        text: str,
        *,
        base_url: str | None = None,
        title: str | None = None,
        rel: str | None = None,
        context: str | None = None,
    ) -> ExtractedLink:
        """A link from an ``<a>`` element's attributes, its URL made absolute.

        An href starting with ``http://``, ``https://`` or ``//`` is absolute
        already (a protocol-relative ``//host/path`` gets ``https:``, with or
        without ``base_url``); anything else is resolved against ``base_url`` with
        ``urljoin``, or kept as written when there is no (or an empty)
        ``base_url``. The link is internal when its host (``netloc``) equals
        ``base_url``'s; without a base URL no link is internal.

        Args:
            href: The raw ``href`` attribute.
            text: The link text; leading and trailing whitespace is removed.
            base_url: The page's URL, to resolve relative links against.
            title: The ``title`` attribute.
            rel: The ``rel`` attribute.
            context: Text around the link.

        Raises:
            TypeError: ``href`` or ``text`` is not a str, or ``base_url`` is neither
                a str nor None.
            ValueError: ``urllib.parse`` cannot parse a URL (e.g. an unclosed IPv6
                bracket), as in the reference.
        """
        owner = "ExtractedLink.from_element"
        check_str(owner, "href", href)
        check_str(owner, "text", text)
        check_str(owner, "base_url", base_url, optional=True)
        url = _href_url(href, base_url)
        is_internal = False
        if base_url:
            is_internal = urlparse(base_url).netloc == urlparse(url).netloc
        return cls(
            url=url,
            text=text.strip(),
            title=title,
            rel=rel,
            is_internal=is_internal,
            context=context,
        )


def _href_url(href: str, base_url: str | None) -> str:
    """``href`` made absolute by :meth:`ExtractedLink.from_element`'s rule.

    Raises:
        ValueError: ``urljoin`` cannot parse ``href`` or ``base_url``.
    """
    if href.startswith("//"):
        return "https:" + href
    if base_url and not href.startswith(("http://", "https://")):
        return urljoin(base_url, href)
    return href


@frozen_compat
@attrs.frozen
class NavigationAction:
    """Something an agent can do next on a page.

    Attributes:
        action_type: What kind of action; the navigator makes ``"pagination"``,
            ``"nav_link"``, ``"content_link"`` and ``"external"`` (any str is accepted).
        label: Text for people (the link text, or its URL).
        url: Where the action leads, if anywhere.
        selector: A CSS selector for the element, if known.
        priority: 1 is the most worth doing; larger numbers less.
        metadata: Details, held read-only; a pagination action has
            ``{"direction": "next"}`` or ``{"direction": "prev"}``.

    Raises:
        TypeError: ``action_type`` or ``label`` is not a str, ``url`` or ``selector``
            is neither a str nor None, ``priority`` is not an int, or ``metadata``
            is not a dict.
    """

    action_type: str
    label: str
    url: str | None = None
    selector: str | None = None
    priority: int = 5
    metadata: FrozenDict[str, Any] = attrs.field(factory=FrozenDict, converter=_action_metadata)

    def __attrs_post_init__(self) -> None:
        owner = "NavigationAction"
        check_str(owner, "action_type", self.action_type)
        check_str(owner, "label", self.label)
        check_str(owner, "url", self.url, optional=True)
        check_str(owner, "selector", self.selector, optional=True)
        check_int(owner, "priority", self.priority)

    def to_dict(self) -> dict[str, Any]:
        """Every field, with the reference's keys; ``metadata`` as a new plain dict."""
        return {
            "action_type": self.action_type,
            "label": self.label,
            "url": self.url,
            "selector": self.selector,
            "priority": self.priority,
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NavigationAction:
        """The inverse of :meth:`to_dict`; ``"action_type"`` and ``"label"`` are required.

        Raises:
            KeyError: a required key is missing (as in the reference).
            TypeError: ``data`` is not a dict, or a value has the wrong type.
        """
        _check_data("NavigationAction", data)
        return cls(
            action_type=data["action_type"],
            label=data["label"],
            url=data.get("url"),
            selector=data.get("selector"),
            priority=data.get("priority", 5),
            metadata=data.get("metadata"),
        )


@frozen_compat
@attrs.frozen
class PaginationInfo:
    """Where a page sits in a paginated listing.

    Attributes:
        current_page: The page number (1 for the first page, as the navigator
            counts; it reads the number the page marks as current).
        total_pages: How many pages there are, if known.
        next_url: The next page's URL, if there is one.
        prev_url: The previous page's URL, if there is one.
        page_urls: The numbered pages' URLs, held in a read-only list.

    Raises:
        TypeError: a number is not an int, a URL is neither a str nor None, or
            ``page_urls`` is not a list of str.
        ValueError: ``current_page`` or ``total_pages`` is negative.
    """

    current_page: int = 1
    total_pages: int | None = None
    next_url: str | None = None
    prev_url: str | None = None
    page_urls: FrozenList[str] = attrs.field(factory=FrozenList, converter=_page_urls)

    def __attrs_post_init__(self) -> None:
        owner = "PaginationInfo"
        # 0 is possible: the navigator reads the number a page marks as current.
        check_int(owner, "current_page", self.current_page, minimum=0)
        if self.total_pages is not None:
            check_int(owner, "total_pages", self.total_pages, minimum=0)
        check_str(owner, "next_url", self.next_url, optional=True)
        check_str(owner, "prev_url", self.prev_url, optional=True)

    def to_dict(self) -> dict[str, Any]:
        """Every field, with the reference's keys; ``page_urls`` as a new plain list."""
        return {
            "current_page": self.current_page,
            "total_pages": self.total_pages,
            "next_url": self.next_url,
            "prev_url": self.prev_url,
            "page_urls": list(self.page_urls),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PaginationInfo:
        """The inverse of :meth:`to_dict`; a missing key takes the field's default.

        Raises:
            TypeError, ValueError: ``data`` is not a dict, or a value is not valid
                for its field.
        """
        _check_data("PaginationInfo", data)
        return cls(
            current_page=data.get("current_page", 1),
            total_pages=data.get("total_pages"),
            next_url=data.get("next_url"),
            prev_url=data.get("prev_url"),
            page_urls=data.get("page_urls"),
        )

    @property
    def has_next(self) -> bool:
        """Whether there is a next page (``next_url`` is not None)."""
        return self.next_url is not None

    @property
    def has_prev(self) -> bool:
        """Whether there is a previous page (``prev_url`` is not None)."""
        return self.prev_url is not None


@frozen_compat
@attrs.frozen
class WebPage:
    """Everything fetched and extracted from one URL, or why that failed.

    Attributes:
        url: The URL asked for.
        final_url: The URL after redirects, if known.
        status_code: The HTTP status; 0 when no response arrived.
        markdown: The content as markdown (headings, lists and links kept).
        plain_text: The content as plain text.
        metadata: The page's :class:`PageMetadata`.
        links: The links found, held in a read-only list.
        navigation_actions: What an agent can do next, held in a read-only list.
        pagination: The page's :class:`PaginationInfo`, if it is paginated.
        fetch_duration_ms: Time spent fetching, in milliseconds.
        extract_duration_ms: Time spent extracting, in milliseconds.
        fetched_at: When it was fetched, as ISO 8601 text.
        word_count: Words in the content.
        error: What went wrong, or None.

    Raises:
        TypeError: a field has the wrong type (``links`` must hold
            :class:`ExtractedLink` values, ``navigation_actions``
            :class:`NavigationAction` values).
        ValueError: a count or duration is negative, or a duration is not finite.
    """

    url: str
    final_url: str | None = None
    status_code: int = 0
    markdown: str = ""
    plain_text: str = ""
    metadata: PageMetadata = attrs.field(factory=PageMetadata)
    links: FrozenList[ExtractedLink] = attrs.field(factory=FrozenList, converter=_links)
    navigation_actions: FrozenList[NavigationAction] = attrs.field(
        factory=FrozenList, converter=_navigation_actions
    )
    pagination: PaginationInfo | None = None
    fetch_duration_ms: float = 0.0
    extract_duration_ms: float = 0.0
    fetched_at: str | None = None
    word_count: int = 0
    error: str | None = None

    def __attrs_post_init__(self) -> None:
        owner = "WebPage"
        check_str(owner, "url", self.url)
        check_str(owner, "final_url", self.final_url, optional=True)
        check_int(owner, "status_code", self.status_code, minimum=0)
        check_str(owner, "markdown", self.markdown)
        check_str(owner, "plain_text", self.plain_text)
        metadata: object = self.metadata
        if not isinstance(metadata, PageMetadata):
            raise TypeError(f"{owner}: metadata must be a PageMetadata; got {type_of(metadata)}")
        pagination: object = self.pagination
        if pagination is not None and not isinstance(pagination, PaginationInfo):
            raise TypeError(
                f"{owner}: pagination must be a PaginationInfo or None; got {type_of(pagination)}"
            )
        check_number(owner, "fetch_duration_ms", self.fetch_duration_ms, minimum=0)
        check_number(owner, "extract_duration_ms", self.extract_duration_ms, minimum=0)
        check_str(owner, "fetched_at", self.fetched_at, optional=True)
        check_int(owner, "word_count", self.word_count, minimum=0)
        check_str(owner, "error", self.error, optional=True)

    @property
    def success(self) -> bool:
        """No error and a 2xx or 3xx status."""
        return self.error is None and 200 <= self.status_code < 400

    @property
    def title(self) -> str | None:
        """``metadata.title``."""
        return self.metadata.title

    @property
    def description(self) -> str | None:
        """``metadata.description``."""
        return self.metadata.description

    @property
    def internal_links(self) -> list[ExtractedLink]:
        """The links to the page's own host, in page order (a new list)."""
        return [link for link in self.links if link.is_internal]

    @property
    def external_links(self) -> list[ExtractedLink]:
        """The links to other hosts, in page order (a new list)."""
        return [link for link in self.links if not link.is_internal]

    def extract_links(
        self,
        *,
        selector: str | None = None,
        internal_only: bool = False,
        external_only: bool = False,
        limit: int | None = None,
    ) -> list[ExtractedLink]:
        """The page's links, filtered, as a new list.

        The links were extracted when the page was built, so ``selector`` is
        ignored (it is there so calls written for the extractor's
        ``extract_links`` work here). ``internal_only`` wins when both filters are
        set. ``limit`` slices as a list does (a negative one drops from the end).

        Raises:
            TypeError: ``limit`` is neither an int nor None.
        """
        del selector  # accepted for signature compatibility only
        if limit is not None:
            check_int("WebPage.extract_links", "limit", limit)
        if internal_only:
            links = self.internal_links
        elif external_only:
            links = self.external_links
        else:
            links = list(self.links)
        return links if limit is None else links[:limit]

    def to_dict(self) -> dict[str, Any]:
        """Every field with the reference's keys, the nested values as their ``to_dict()``.

        The shape stored in ``Enrichments.web_results``.
        """
        return {
            "url": self.url,
            "final_url": self.final_url,
            "status_code": self.status_code,
            "markdown": self.markdown,
            "plain_text": self.plain_text,
            "metadata": self.metadata.to_dict(),
            "links": [link.to_dict() for link in self.links],
            "navigation_actions": [action.to_dict() for action in self.navigation_actions],
            "pagination": self.pagination.to_dict() if self.pagination else None,
            "fetch_duration_ms": self.fetch_duration_ms,
            "extract_duration_ms": self.extract_duration_ms,
            "fetched_at": self.fetched_at,
            "word_count": self.word_count,
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WebPage:
        """The inverse of :meth:`to_dict`; only ``"url"`` is required.

        A missing, null or empty ``"pagination"`` gives ``pagination=None``, as in
        the reference; a null ``"metadata"``, ``"links"`` or
        ``"navigation_actions"`` reads as empty.

        Raises:
            KeyError: ``data`` (or a nested dict) lacks a required key.
            TypeError, ValueError: ``data`` is not a dict, or a value is not valid
                for its field.
        """
        owner = "WebPage"
        _check_data(owner, data)
        metadata_data = data.get("metadata")
        metadata = (
            PageMetadata() if metadata_data is None else PageMetadata.from_dict(metadata_data)
        )
        links = [ExtractedLink.from_dict(item) for item in _list_from_data(owner, data, "links")]
        actions = [
            NavigationAction.from_dict(item)
            for item in _list_from_data(owner, data, "navigation_actions")
        ]
        pagination_data = data.get("pagination")
        pagination = PaginationInfo.from_dict(pagination_data) if pagination_data else None
        return cls(
            url=data["url"],
            final_url=data.get("final_url"),
            status_code=data.get("status_code", 0),
            markdown=data.get("markdown", ""),
            plain_text=data.get("plain_text", ""),
            metadata=metadata,
            links=links,
            navigation_actions=actions,
            pagination=pagination,
            fetch_duration_ms=data.get("fetch_duration_ms", 0.0),
            extract_duration_ms=data.get("extract_duration_ms", 0.0),
            fetched_at=data.get("fetched_at"),
            word_count=data.get("word_count", 0),
            error=data.get("error"),
        )

    @classmethod
    def error_result(cls, url: str, error: str, duration_ms: float = 0.0) -> WebPage:
        """A failed page: status 0, ``error`` set, stamped with the current UTC time.

        Args:
            url: The URL that failed.
            error: What went wrong.
            duration_ms: Time spent before the failure (``fetch_duration_ms``).
        """
        return cls(
            url=url,
            status_code=0,
            error=error,
            fetch_duration_ms=duration_ms,
            fetched_at=utc_now_iso(),
        )

    def truncate(self, max_chars: int = 10000) -> WebPage:
        """This page with its content cut to about ``max_chars`` characters.

        Nothing is cut while the markdown fits (the page itself is returned, even
        if ``plain_text`` is longer). Otherwise both texts are cut at
        ``max_chars``, then back to a natural break when one lies in the second
        half: the markdown to its last paragraph break, followed by
        ``"[Content truncated...]"``, the plain text to the end of its last
        sentence (``". "``, ``"! "`` or ``"? "``). Every other field is kept,
        ``word_count`` included.

        Raises:
            TypeError: ``max_chars`` is not an int.
            ValueError: ``max_chars`` is negative.
        """
        check_int("WebPage.truncate", "max_chars", max_chars, minimum=0)
        if len(self.markdown) <= max_chars:
            return self
        half = max_chars // 2
        markdown = self.markdown[:max_chars]
        paragraph_end = markdown.rfind("\n\n")
        if paragraph_end > half:
            markdown = markdown[:paragraph_end] + _TRUNCATION_MARKER
        plain_text = self.plain_text[:max_chars]
        sentence_end = max(plain_text.rfind(". "), plain_text.rfind("! "), plain_text.rfind("? "))
        if sentence_end > half:
            plain_text = plain_text[: sentence_end + 1]
        return attrs.evolve(self, markdown=markdown, plain_text=plain_text)
