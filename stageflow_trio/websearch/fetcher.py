"""Fetching web pages over HTTP: retries with backoff, per-request timeouts, hooks.

:class:`Fetcher` holds the logic every fetcher shares: it merges headers, calls
the subclass's ``_do_fetch`` (one HTTP request), retries the errors that are
worth retrying with exponential backoff, measures the duration and reports each
fetch to three optional observability callbacks. :class:`HttpFetcher` does the
request with an ``httpx.AsyncClient`` (httpx runs on trio through its own trio
backend); :class:`MockFetcher` answers from a dict, for tests.

It needs httpx for :class:`HttpFetcher` only: ``pip install 'stageflow-trio[websearch]'``.
The module imports without it (``HTTPX_AVAILABLE`` says whether it is there).

How it differs from the reference (stageflow 0.9.1, asyncio):

- :meth:`Fetcher.fetch_many` runs the fetches in a nursery under a
  ``trio.CapacityLimiter`` instead of ``asyncio.gather`` over a semaphore: the
  results still come in input order, and a cancellation cancels every fetch and
  propagates as ``trio.Cancelled`` (never as an error result).
- Backoff sleeps are ``trio.sleep`` and durations are read on trio's clock, so a
  ``trio.testing.MockClock`` drives both in tests.
- An exception whose message is empty is reported by its class name: httpx's
  timeouts carry no message, so the reference reported them as "Unknown error"
  and, finding no "timeout" in that text, never retried them. httpx's network
  errors (connection refused, reset) are retried whatever their wording: trio's
  "all attempts to connect ... failed" does not contain asyncio's "connection".
- :class:`HttpFetcher` stops reading a body at ``max_content_length`` bytes
  (and closes that connection), where the reference read the whole body into
  memory and then cut it: an endless or huge body is cut off, not downloaded.
- The user agent, the default headers and a call's headers are merged with
  header names compared case-insensitively, so ``{"user-agent": ...}`` replaces
  the configured ``User-Agent`` (the reference sent both).
- :attr:`FetchResult.text` decodes an HTML page whose ``Content-Type`` names no
  charset with the charset of its ``<meta>`` (the reference: UTF-8).
- :attr:`FetchConfig.default_headers` is read-only (the config is frozen);
  :attr:`FetchResult.text` never raises (the reference let punycode's bare
  UnicodeError out); :class:`MockFetcher` gives each result a copy of the
  response headers, not the dict it was given.
- Arguments are checked at the call (TypeError / ValueError naming the
  parameter) instead of failing inside a request; ``HttpFetcher(client=...)``
  takes an ``httpx.AsyncClient`` only (it streams the body).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import trio

from stageflow_trio._args import (
    check_flag,
    check_int,
    check_number,
    check_plain_callable,
    check_str,
    type_of,
)
from stageflow_trio._frozen import frozen_compat
from stageflow_trio._groups import unwrapping_groups
from stageflow_trio._time import uuid4
from stageflow_trio.utils.frozen import FrozenDict
from stageflow_trio.websearch._charset import meta_charset

try:
    import httpx

    HTTPX_AVAILABLE = True
except ImportError:  # pragma: no cover - the test environment has httpx
    HTTPX_AVAILABLE = False

if TYPE_CHECKING:
    from types import TracebackType
    from typing import Self

__all__ = [
    "HTTPX_AVAILABLE",
    "FetchConfig",
    "FetchResult",
    "Fetcher",
    "HttpFetcher",
    "MockFetcher",
]

_INSTALL_HINT = "HttpFetcher needs httpx: pip install 'stageflow-trio[websearch]'"

# Substrings of an error's text (lowercased) that mark it as worth retrying.
_RETRYABLE_PATTERNS = (
    "timeout",
    "connection",
    "reset",
    "refused",
    "temporary",
    "503",
    "502",
    "504",
    "429",
)

_T = TypeVar("_T")
_R = TypeVar("_R")

StartHook = Callable[[str, str], None]
CompleteHook = Callable[[str, str, int, float, int, bool], None]
ErrorHook = Callable[[str, str, str, float, bool], None]


def _check_timeout(owner: str, param: str, value: object) -> float:
    return check_number(owner, param, value, minimum=0, above=True)


def _str_mapping(owner: str, param: str, value: object) -> dict[str, str]:
    """A plain dict copy of ``value``, a mapping of str to str."""
    if not isinstance(value, Mapping):
        raise TypeError(f"{owner}: {param} must be a mapping of str to str; got {type_of(value)}")
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise TypeError(
                f"{owner}: {param} must map str to str; got {type_of(key)} -> {type_of(item)}"
            )
    return dict(value)


def _default_headers(value: Mapping[str, str]) -> dict[str, str]:
    return FrozenDict(_str_mapping("FetchConfig", "default_headers", value))


def _merge_headers(*layers: Mapping[str, str]) -> dict[str, str]:
    """The header layers in one dict, a later layer's value winning.

    Header names are compared case-insensitively, as HTTP compares them: a plain
    dict merge kept ``User-Agent`` and ``user-agent`` as two keys, and httpx sent
    both, so a caller's header added a second value instead of replacing the
    default (servers mostly read the first). The later spelling is kept.
    """
    merged: dict[str, tuple[str, str]] = {}
    for layer in layers:
        for name, value in layer.items():
            merged[name.lower()] = (name, value)
    return dict(merged.values())


def _error_text(exc: Exception) -> str:
    """``str(exc)``, or the class name when that is empty (httpx's timeouts have no message)."""
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - a broken __str__ must not escape the retry loop
        text = ""
    return text or type(exc).__name__


@frozen_compat
@attrs.frozen
class FetchConfig:
    """How a fetcher makes its requests.

    Attributes:
        timeout: Seconds httpx allows each request (connect, each read, each
            write); a number > 0.
        max_retries: How many times a retryable error is retried (>= 0).
        retry_delay: Seconds before the first retry; each further retry waits
            twice as long as the one before (>= 0).
        follow_redirects: Whether redirects are followed.
        max_redirects: How many redirects an owned httpx client follows (>= 0).
        user_agent: The ``User-Agent`` header sent with every request.
        default_headers: Headers sent with every request, held read-only.
        verify_ssl: Whether TLS certificates are verified.
        max_content_length: The most body bytes read; reading stops there (0: no limit).

    Raises:
        TypeError, ValueError: a field has the wrong type or is out of range;
            the message names the field and the rule.
    """

    timeout: float = 30.0
    max_retries: int = 3
    retry_delay: float = 1.0
    follow_redirects: bool = True
    max_redirects: int = 10
    user_agent: str = "Mozilla/5.0 (compatible; StageflowBot/1.0; +https://stageflow.dev/bot)"
    default_headers: dict[str, str] = attrs.field(factory=FrozenDict, converter=_default_headers)
    verify_ssl: bool = True
    max_content_length: int = 10_000_000

    def __attrs_post_init__(self) -> None:
        owner = "FetchConfig"
        _check_timeout(owner, "timeout", self.timeout)
        check_int(owner, "max_retries", self.max_retries, minimum=0)
        check_number(owner, "retry_delay", self.retry_delay, minimum=0)
        check_flag(owner, "follow_redirects", self.follow_redirects)
        check_int(owner, "max_redirects", self.max_redirects, minimum=0)
        check_str(owner, "user_agent", self.user_agent)
        check_flag(owner, "verify_ssl", self.verify_ssl)
        check_int(owner, "max_content_length", self.max_content_length, minimum=0)


@attrs.define
class FetchResult:
    """What one fetch got: the response, or the error that ended it.

    Mutable, as the reference's: :meth:`Fetcher.fetch` stamps ``request_id``,
    ``retry_count`` and ``duration_ms`` on the result its ``_do_fetch`` returns.

    Attributes:
        url: The URL asked for.
        final_url: The URL answered, after redirects; None when nothing answered.
        status_code: The HTTP status; 0 when no response came.
        content: The body (at most ``max_content_length`` bytes).
        content_type: The ``Content-Type`` header, or ``""``.
        headers: The response headers (repeated ones joined with ``", "``).
        duration_ms: Milliseconds from the start of the first attempt to the end
            of the last, backoff included, on trio's clock.
        retry_count: Retries made (the reference's count: one more than the
            retries when the last attempt raised).
        error: Why the fetch failed, or None.
        request_id: A fresh UUID string that the hooks also receive.

    Raises:
        TypeError: a field has the wrong type (checked at construction).
    """

    url: str
    final_url: str | None = None
    status_code: int = 0
    content: bytes = b""
    content_type: str = ""
    headers: dict[str, str] = attrs.field(factory=dict)
    duration_ms: float = 0.0
    retry_count: int = 0
    error: str | None = None
    request_id: str = attrs.field(factory=lambda: str(uuid4()))

    def __attrs_post_init__(self) -> None:
        owner = "FetchResult"
        check_str(owner, "url", self.url)
        if self.final_url is not None:
            check_str(owner, "final_url", self.final_url)
        check_int(owner, "status_code", self.status_code)
        if not isinstance(self.content, bytes | bytearray):
            raise TypeError(f"{owner}: content must be bytes; got {type_of(self.content)}")
        check_str(owner, "content_type", self.content_type)
        if not isinstance(self.headers, Mapping):
            raise TypeError(f"{owner}: headers must be a mapping; got {type_of(self.headers)}")
        check_number(owner, "duration_ms", self.duration_ms)
        check_int(owner, "retry_count", self.retry_count)
        if self.error is not None:
            check_str(owner, "error", self.error)
        check_str(owner, "request_id", self.request_id)

    @property
    def success(self) -> bool:
        """True when there is no error and the status is 2xx or 3xx."""
        return self.error is None and 200 <= self.status_code < 400

    @property
    def text(self) -> str:
        """The body decoded with the ``charset`` of ``content_type`` (UTF-8 by default).

        An HTML page whose ``content_type`` names no charset is decoded with the
        one its ``<meta>`` declares in the first 1,024 bytes, as browsers do (the
        reference decoded it as UTF-8, garbling a page that says ``windows-1252``).

        An unknown charset, or bytes that do not decode, fall back to UTF-8 with
        U+FFFD for the bad bytes, so this never raises (the reference raised
        for the few codecs, such as punycode, that fail with a bare UnicodeError).
        """
        if not self.content:
            return ""
        content_type = self.content_type.lower()
        encoding = "utf-8"
        if "charset=" in content_type:
            encoding = content_type.split("charset=")[1].split(";")[0].strip()
        elif self.is_html:
            encoding = meta_charset(self.content) or encoding
        try:
            return self.content.decode(encoding)
        except (UnicodeError, LookupError):  # UnicodeError: punycode's, not a DecodeError
            return self.content.decode("utf-8", errors="replace")

    @property
    def is_html(self) -> bool:
        """Whether ``content_type`` names HTML or XHTML."""
        content_type = self.content_type.lower()
        return "text/html" in content_type or "application/xhtml" in content_type

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data; the body is given by its length only."""
        return {
            "url": self.url,
            "final_url": self.final_url,
            "status_code": self.status_code,
            "content_type": self.content_type,
            "content_length": len(self.content),
            "headers": self.headers,
            "duration_ms": self.duration_ms,
            "retry_count": self.retry_count,
            "error": self.error,
            "request_id": self.request_id,
        }


class Fetcher:
    """The retry loop and the observability hooks; subclasses do the request.

    A subclass overrides ``_do_fetch(url, *, timeout, headers, follow_redirects)``,
    which makes one request and returns a :class:`FetchResult` or raises.

    The hooks are called synchronously, in the fetching task; an exception they
    raise is suppressed so that observing a fetch can never break it:

    - ``on_fetch_start(url, request_id)`` before the first attempt;
    - ``on_fetch_complete(url, request_id, status, duration_ms, size, from_cache)``
      after a successful response (``from_cache`` is always False);
    - ``on_fetch_error(url, request_id, error, duration_ms, retryable)`` after an
      unsuccessful response (``error`` is its error or ``"HTTP <status>"``,
      ``retryable`` whether the status is >= 500) or once the attempts ran out
      (``retryable`` False).

    Raises:
        TypeError: ``config`` is not a FetchConfig or None, or a hook is not
            callable or is an async function.
    """

    def __init__(
        self,
        config: FetchConfig | None = None,
        *,
        on_fetch_start: StartHook | None = None,
        on_fetch_complete: CompleteHook | None = None,
        on_fetch_error: ErrorHook | None = None,
    ) -> None:
        owner = type(self).__name__
        if config is not None and not isinstance(config, FetchConfig):
            raise TypeError(f"{owner}: config must be a FetchConfig or None; got {type_of(config)}")
        check_plain_callable(owner, "on_fetch_start", on_fetch_start, optional=True)
        check_plain_callable(owner, "on_fetch_complete", on_fetch_complete, optional=True)
        check_plain_callable(owner, "on_fetch_error", on_fetch_error, optional=True)
        self.config: FetchConfig = config if config is not None else FetchConfig()
        self._on_fetch_start = on_fetch_start
        self._on_fetch_complete = on_fetch_complete
        self._on_fetch_error = on_fetch_error

    def _emit_start(self, url: str, request_id: str) -> None:
        if self._on_fetch_start is not None:
            with contextlib.suppress(Exception):
                self._on_fetch_start(url, request_id)

    def _emit_complete(
        self,
        url: str,
        request_id: str,
        status: int,
        duration_ms: float,
        size: int,
        from_cache: bool = False,
    ) -> None:
        if self._on_fetch_complete is not None:
            with contextlib.suppress(Exception):
                self._on_fetch_complete(url, request_id, status, duration_ms, size, from_cache)

    def _emit_error(
        self,
        url: str,
        request_id: str,
        error: str,
        duration_ms: float,
        retryable: bool = False,
    ) -> None:
        if self._on_fetch_error is not None:
            with contextlib.suppress(Exception):
                self._on_fetch_error(url, request_id, error, duration_ms, retryable)

    async def _do_fetch(
        self,
        url: str,
        *,
        timeout: float,
        headers: dict[str, str],
        follow_redirects: bool,
    ) -> FetchResult:
        """Make one request. Subclasses override this."""
        raise NotImplementedError("Subclasses must implement _do_fetch")

    async def fetch(
        self,
        url: str,
        *,
        timeout: float | None = None,
        headers: dict[str, str] | None = None,
        follow_redirects: bool | None = None,
    ) -> FetchResult:
        """Fetch ``url``, retrying the errors worth retrying.

        A response, whatever its status, ends the fetch: only an exception from
        ``_do_fetch`` is retried, and only when :meth:`_is_retryable_error` says
        so, after ``retry_delay * 2**attempt`` seconds (``trio.sleep``). Once the
        attempts run out the result carries the last error; it is never raised.

        Always a checkpoint. ``trio.Cancelled`` (and any other BaseException)
        propagates and is never turned into an error result.

        Args:
            url: The URL.
            timeout: Seconds for this request (> 0); the config's when None.
            headers: Headers added to, and overriding, the config's
                ``User-Agent`` and ``default_headers`` (names compared
                case-insensitively).
            follow_redirects: Overrides the config's when not None.

        Returns:
            The result, with ``request_id``, ``retry_count`` and ``duration_ms`` set.

        Raises:
            TypeError, ValueError: an argument has the wrong type or is out of range.
        """
        owner = f"{type(self).__name__}.fetch"
        check_str(owner, "url", url)
        if timeout is not None:
            _check_timeout(owner, "timeout", timeout)
        extra = {} if headers is None else _str_mapping(owner, "headers", headers)
        if follow_redirects is not None:
            check_flag(owner, "follow_redirects", follow_redirects)
        await trio.lowlevel.checkpoint()

        config = self.config
        request_id = str(uuid4())
        effective_timeout = config.timeout if timeout is None else timeout
        effective_follow = config.follow_redirects if follow_redirects is None else follow_redirects
        merged_headers = _merge_headers(
            {"User-Agent": config.user_agent}, config.default_headers, extra
        )

        self._emit_start(url, request_id)
        start = trio.current_time()
        retry_count = 0
        attempt = 0
        while True:
            try:
                result = await self._do_fetch(
                    url,
                    timeout=effective_timeout,
                    headers=merged_headers,
                    follow_redirects=effective_follow,
                )
                result.request_id = request_id
                result.retry_count = retry_count
                duration_ms = (trio.current_time() - start) * 1000
                result.duration_ms = duration_ms
                if result.success:
                    self._emit_complete(
                        url, request_id, result.status_code, duration_ms, len(result.content)
                    )
                else:
                    self._emit_error(
                        url,
                        request_id,
                        result.error or f"HTTP {result.status_code}",
                        duration_ms,
                        retryable=result.status_code >= 500,
                    )
            except Exception as exc:  # noqa: BLE001 - every failure becomes the result's error
                error = _error_text(exc)
                retry_count = attempt + 1
                retryable = self._is_retryable_error(exc)
                if attempt >= config.max_retries or not retryable:
                    break
                await trio.sleep(config.retry_delay * 2**attempt)
                attempt += 1
            else:
                return result

        # The reference's "Unknown error" for an empty message cannot arise:
        # _error_text names the exception's class instead.
        duration_ms = (trio.current_time() - start) * 1000
        self._emit_error(url, request_id, error, duration_ms, retryable=False)
        return FetchResult(
            url=url,
            error=error,
            duration_ms=duration_ms,
            retry_count=retry_count,
            request_id=request_id,
        )

    def _is_retryable_error(self, error: Exception) -> bool:
        """Whether another attempt might succeed.

        The reference's rule: the error's text (lowercased; its class name when
        the text is empty) mentions a timeout, a connection problem or a
        temporary status. Any httpx timeout or network error is retryable too.
        """
        if HTTPX_AVAILABLE and isinstance(error, httpx.TimeoutException | httpx.NetworkError):
            return True
        text = _error_text(error).lower()
        return any(pattern in text for pattern in _RETRYABLE_PATTERNS)

    async def fetch_many(
        self,
        urls: list[str],
        *,
        concurrency: int = 5,
        timeout: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> list[FetchResult]:
        """Fetch every URL, at most ``concurrency`` at a time; results in input order.

        Each URL gets :meth:`fetch`'s result, so a failing URL gives its error
        result and the others carry on. The fetches run in a nursery that this
        call owns: a cancellation cancels them all and propagates (as a single
        ``trio.Cancelled``); when it returns, nothing it started is left running.
        Always a checkpoint.

        Args:
            urls: The URLs (any iterable of str but a str itself).
            concurrency: The most fetches in flight (>= 1).
            timeout: Per-request timeout, as in :meth:`fetch`.
            headers: Extra headers for every request, as in :meth:`fetch`.

        Raises:
            TypeError, ValueError: an argument has the wrong type or is out of range.
        """
        owner = f"{type(self).__name__}.fetch_many"
        url_list = _url_list(owner, urls)
        check_int(owner, "concurrency", concurrency, minimum=1)
        if timeout is not None:
            _check_timeout(owner, "timeout", timeout)
        if headers is not None:
            _str_mapping(owner, "headers", headers)

        async def fetch_one(url: str) -> FetchResult:
            return await self.fetch(url, timeout=timeout, headers=headers)

        return await _run_limited(fetch_one, url_list, concurrency)


def _url_list(owner: str, urls: object) -> list[str]:
    if isinstance(urls, str | bytes) or not isinstance(urls, Iterable):
        raise TypeError(f"{owner}: urls must be a list of str; got {type_of(urls)}")
    url_list = list(urls)
    for url in url_list:
        check_str(owner, "urls", url)
    return url_list


async def _run_limited(
    call: Callable[[_T], Awaitable[_R]], items: list[_T], limit: int
) -> list[_R]:
    """``[await call(item) for item in items]``, at most ``limit`` calls at a time.

    The calls run in a nursery owned by this call; the results keep the order of
    ``items``. Slots go to the items in their order, as ``asyncio.gather`` over a
    semaphore gave them: this task takes a slot for each item before starting its
    call (a ``trio.CapacityLimiter`` serves waiters first come, first served, but
    tasks started together first run in no set order). An exception from a call
    cancels the others and escapes as itself (never an ExceptionGroup); a
    cancellation propagates as one ``trio.Cancelled``. Always a checkpoint.
    """
    if not items:
        await trio.lowlevel.checkpoint()
        return []
    results: list[Any] = [None] * len(items)
    limiter = trio.CapacityLimiter(limit)

    async def run_one(index: int, item: _T) -> None:
        try:
            results[index] = await call(item)
        finally:
            limiter.release_on_behalf_of(index)

    with unwrapping_groups():
        async with trio.open_nursery() as nursery:
            for index, item in enumerate(items):
                await limiter.acquire_on_behalf_of(index)
                nursery.start_soon(run_one, index, item)
    return results


class HttpFetcher(Fetcher):
    """A fetcher that makes its requests with an ``httpx.AsyncClient``.

    The fetcher owns the client it makes (lazily, at the first fetch or on
    entering ``async with``): leaving the ``async with`` block, or calling
    :meth:`close`, closes it and its pooled connections. A fetcher used without
    ``async with`` must be closed with :meth:`close` when done; a fetch after
    that opens a new client, which needs closing again.

    A client passed as ``client`` stays yours: the fetcher never closes it, and
    the config's ``max_redirects`` and ``verify_ssl`` do not apply to it (the
    timeout, headers and redirect choice are passed with each request).

    Raises:
        ImportError: httpx is not installed.
        TypeError: ``client`` is not an ``httpx.AsyncClient``, or another
            argument is wrong as in :class:`Fetcher`.
    """

    def __init__(
        self,
        config: FetchConfig | None = None,
        *,
        client: httpx.AsyncClient | None = None,
        on_fetch_start: StartHook | None = None,
        on_fetch_complete: CompleteHook | None = None,
        on_fetch_error: ErrorHook | None = None,
    ) -> None:
        if not HTTPX_AVAILABLE:  # pragma: no cover - the test environment has httpx
            raise ImportError(_INSTALL_HINT)
        super().__init__(
            config,
            on_fetch_start=on_fetch_start,
            on_fetch_complete=on_fetch_complete,
            on_fetch_error=on_fetch_error,
        )
        if client is not None and not isinstance(client, httpx.AsyncClient):
            raise TypeError(
                f"HttpFetcher: client must be an httpx.AsyncClient or None; got {type_of(client)}"
            )
        self._client = client
        self._owns_client = client is None

    async def _get_client(self) -> httpx.AsyncClient:
        """The client, made now if the fetcher owns it and has none open."""
        if self._client is None:
            config = self.config
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(config.timeout),
                follow_redirects=config.follow_redirects,
                max_redirects=config.max_redirects,
                verify=config.verify_ssl,
            )
        return self._client

    async def close(self) -> None:
        """Close the client if the fetcher made it; a no-op otherwise, and when repeated.

        Always a checkpoint. httpx closes the pooled connections shielded from
        cancellation, so they are released even when the caller is being cancelled;
        a cancelled close closes the client, then raises ``trio.Cancelled``.
        """
        client = self._client
        if client is None or not self._owns_client:
            await trio.lowlevel.checkpoint()
            return
        self._client = None
        await client.aclose()
        # httpx's close is shielded and, with no pooled connection, never yields.
        await trio.lowlevel.checkpoint()

    async def __aenter__(self) -> Self:
        # Checkpoint before making the client: a cancellation at this checkpoint
        # would otherwise leave a client that no ``__aexit__`` closes.
        await trio.lowlevel.checkpoint()
        await self._get_client()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _do_fetch(
        self,
        url: str,
        *,
        timeout: float,
        headers: dict[str, str],
        follow_redirects: bool,
    ) -> FetchResult:
        client = await self._get_client()
        limit = self.config.max_content_length
        async with client.stream(
            "GET", url, headers=headers, timeout=timeout, follow_redirects=follow_redirects
        ) as response:
            if limit > 0:
                content = await _read_at_most(response, limit)
            else:
                content = await response.aread()
            return FetchResult(
                url=url,
                final_url=str(response.url),
                status_code=response.status_code,
                content=content,
                content_type=response.headers.get("content-type", ""),
                headers=dict(response.headers),
            )


async def _read_at_most(response: httpx.Response, limit: int) -> bytes:
    """The first ``limit`` bytes of ``response``'s decoded body; the rest is not read.

    Leaving httpx's nested body generators half-consumed makes trio warn about
    abandoned async generators (encode/httpx#3686), so the read is stopped with a
    cancel scope instead: the next read that would wait raises ``Cancelled``
    inside the generators, which ends them, and httpcore closes the connection
    (a half-read connection cannot be reused). Chunks already buffered may still
    arrive after the cut; they are dropped. The scope catches only its own
    cancellation: a cancellation of the caller still propagates.
    """
    chunks: list[bytes] = []
    size = 0
    with trio.CancelScope() as cut:
        async for chunk in response.aiter_bytes():
            if size < limit:
                chunks.append(chunk[: limit - size])
                size += len(chunks[-1])
            if size >= limit:
                cut.cancel()
    return b"".join(chunks)


def _check_response(owner: str, param: str, value: object) -> None:
    if (
        not isinstance(value, tuple)
        or len(value) != 3
        or isinstance(value[0], bool)
        or not isinstance(value[0], int)
        or not isinstance(value[1], str | bytes)
        or not isinstance(value[2], Mapping)
    ):
        raise TypeError(
            f"{owner}: {param} must be a (status: int, content: str | bytes, headers: dict) "
            f"tuple; got {value!r:.200}"
        )


class MockFetcher(Fetcher):
    """A fetcher that answers from a dict instead of the network, for tests.

    ``responses`` maps a URL to ``(status, content, headers)``; other URLs get
    ``default_response`` (404 ``"Not Found"`` as ``text/plain`` unless given).
    A str content is encoded as UTF-8; the content type is the ``content-type``
    header, ``text/html`` without one. Every URL asked for, retries included,
    is appended to ``fetch_history``.

    ``responses`` is kept as given (not copied), so entries added to it later are
    answered too.

    Raises:
        TypeError: ``responses`` is not a mapping of URL to a
            ``(status, content, headers)`` tuple, ``default_response`` is not
            such a tuple, or another argument is wrong as in :class:`Fetcher`.
    """

    def __init__(
        self,
        responses: Mapping[str, tuple[int, str | bytes, Mapping[str, str]]] | None = None,
        *,
        default_response: tuple[int, str | bytes, Mapping[str, str]] | None = None,
        config: FetchConfig | None = None,
        on_fetch_start: StartHook | None = None,
        on_fetch_complete: CompleteHook | None = None,
        on_fetch_error: ErrorHook | None = None,
    ) -> None:
        super().__init__(
            config,
            on_fetch_start=on_fetch_start,
            on_fetch_complete=on_fetch_complete,
            on_fetch_error=on_fetch_error,
        )
        owner = "MockFetcher"
        if responses is None:
            responses = {}
        elif not isinstance(responses, Mapping):
            raise TypeError(f"{owner}: responses must be a dict or None; got {type_of(responses)}")
        for url, response in responses.items():
            check_str(owner, "responses keys", url)
            _check_response(owner, f"responses[{url!r}]", response)
        if default_response is None:
            default_response = (404, "Not Found", {"content-type": "text/plain"})
        else:
            _check_response(owner, "default_response", default_response)
        self.responses = responses
        self.default_response = default_response
        self.fetch_history: list[str] = []

    async def _do_fetch(
        self,
        url: str,
        *,
        timeout: float,
        headers: dict[str, str],
        follow_redirects: bool,
    ) -> FetchResult:
        # No checkpoint needed: fetch() checkpoints before the first attempt.
        del timeout, headers, follow_redirects
        self.fetch_history.append(url)
        status, content, response_headers = self.responses.get(url, self.default_response)
        if isinstance(content, str):
            content = content.encode("utf-8")
        return FetchResult(
            url=url,
            final_url=url,
            status_code=status,
            content=content,
            content_type=response_headers.get("content-type", "text/html"),
            headers=dict(response_headers),
        )
