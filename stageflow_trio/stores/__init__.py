"""Durable and shared stores: one backend for idempotency, approvals, undo and memory.

A pipeline service that runs as several worker processes needs its state
shared and kept across restarts. :func:`open_stores` opens every store of one
backend, chosen by one URL (or the ``STAGEFLOW_STORE_URL`` environment variable):

- ``memory://`` (the default): this process's memory; nothing shared, nothing kept.
- ``sqlite:///relative/file.db`` or ``sqlite:////absolute/file.db``: one file, shared by the processes of one
  machine (:mod:`stageflow_trio.stores.sqlite`).
- ``redis://host:port/db`` (or ``rediss://``): a Redis server, shared by every
  machine; needs the ``redis`` extra (:mod:`stageflow_trio.stores.redis`).
  ``redis+cluster://host:port[,host:port...]`` is a Redis Cluster, and
  ``redis+sentinel://host:port[,host:port...]/service[/db]`` the primary that
  Sentinel names ``service`` (``rediss+...`` for TLS).

Configuration is checked when the stores open (an unreachable server, an
unwritable file, a malformed URL raise :class:`StoreConfigError` there), never
at the first request. See docs/deployment.md.
"""

from __future__ import annotations

import math
import os
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import trio

from stageflow_trio.helpers.memory import InMemoryStore
from stageflow_trio.pipeline.idempotency import InMemoryIdempotencyStore
from stageflow_trio.tools.approval import InMemoryApprovalBackend
from stageflow_trio.tools.undo import InMemoryUndoBackend

from ._common import REDIS_SCHEMES, redacted
from ._common import STORE_URL_ENV as STORE_URL_ENV
from ._common import StoreConfigError as StoreConfigError
from ._common import Stores as Stores

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

__all__ = ["STORE_URL_ENV", "StoreConfigError", "Stores", "open_stores"]


def _seconds(text: str) -> float:
    """A duration option: a finite number of seconds above 0."""
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise ValueError("must be a finite number of seconds > 0")
    return value


def _retention(text: str) -> float:
    """``approval_retention_seconds``: as the openers' keyword, a number of seconds >= 0,
    infinity (``inf``, or a number past a float's range) keeping every closed request."""
    value = float(text)
    if math.isnan(value) or value < 0:
        raise ValueError("must be a number of seconds >= 0 (inf: kept until removed)")
    return value


def _text(text: str) -> str:
    return text


_SQLITE_OPTIONS: dict[str, Callable[[str], Any]] = {
    "approval_retention_seconds": _retention,
    "claim_lease_seconds": _seconds,
    "poll_interval": _seconds,
}
_REDIS_OPTIONS: dict[str, Callable[[str], Any]] = {
    "approval_retention_seconds": _retention,
    "claim_lease_seconds": _seconds,
    "command_timeout": _seconds,
    "resync_interval": _seconds,
    "prefix": _text,
}
_REDIS_CLIENT_OPTIONS = (
    "client_name",
    "connect_timeout",
    "db",
    "max_connections",
    "max_idle_time",
    "noevict",
    "notouch",
    "stream_timeout",
    "timeout",
)
"""The query parameters of a ``redis://`` URL passed to its client (coredis reads them).

Its ``noreply`` is left out: the stores need every reply.
"""


def _options(
    setting: str,
    url: str,
    query: str,
    known: dict[str, Callable[[str], Any]],
    passed: tuple[str, ...] = (),
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The store options in the URL's query, and the query parameters ``passed`` on.

    Raises:
        StoreConfigError: An option that is neither known nor passed on, or a bad value.
    """
    options: dict[str, Any] = {}
    rest: list[tuple[str, str]] = []
    shown = redacted(url)
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name in passed:
            rest.append((name, value))
            continue
        convert = known.get(name)
        if convert is None:
            names = ", ".join(sorted([*known, *passed]))
            raise StoreConfigError(setting, f"unknown option {name!r} in {shown!r}; known: {names}")
        try:
            options[name] = convert(value)
        except ValueError as exc:
            raise StoreConfigError(setting, f"option {name}={value!r} in {shown!r}: {exc}") from exc
    return options, rest


@asynccontextmanager
async def open_stores(url: str | None = None) -> AsyncIterator[Stores]:
    """Open the stores of the backend ``url`` names; close them on exit.

    Args:
        url: ``memory://``, ``sqlite:///path``, ``redis://host:port/db``,
            ``redis+cluster://host:port,...`` or ``redis+sentinel://host:port,.../service``;
            None reads :data:`STORE_URL_ENV`, and ``memory://`` when unset.
            Options go in the query: ``claim_lease_seconds`` (SQLite, Redis),
            ``poll_interval`` (SQLite), ``prefix``, ``resync_interval`` and
            ``command_timeout`` (Redis; unset: a call waits for the server as long
            as its caller lets it), durations in seconds above 0;
            ``approval_retention_seconds`` (SQLite, Redis; 3600), seconds >= 0 or
            ``inf`` (kept until removed), as the openers' keyword; a ``redis://`` URL also
            takes its client's ``max_connections``, ``timeout``, ``client_name``, ``db``,
            ``connect_timeout``, ``stream_timeout``, ``max_idle_time``, ``noevict``, ``notouch``.

    Raises:
        StoreConfigError: The URL is malformed or names an unknown scheme, an
            unknown option or a bad option value, or the backend cannot be
            reached or written (raised on entry). The message starts with the
            setting: ``url: ...`` or ``STAGEFLOW_STORE_URL: ...``; the URL it
            shows has its password (and credential-like query values) as ``***``.
        TypeError: ``url`` is not a str or None.
    """
    setting = "url"
    if url is None:
        url = os.environ.get(STORE_URL_ENV) or "memory://"
        setting = STORE_URL_ENV
    elif not isinstance(url, str):
        raise TypeError(f"open_stores: url must be a str or None; got {type(url).__name__}")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise StoreConfigError(setting, f"malformed store URL {redacted(url)!r}: {exc}") from exc
    scheme = parts.scheme
    if scheme == "memory":
        if parts.netloc or parts.path or parts.query:
            raise StoreConfigError(
                setting, f"memory store URL takes nothing after memory://; got {redacted(url)!r}"
            )
        await trio.lowlevel.checkpoint()
        yield Stores(
            url="memory://",
            idempotency=InMemoryIdempotencyStore(),
            memory=InMemoryStore(),
            approvals=InMemoryApprovalBackend(),
            undo=InMemoryUndoBackend(),
        )
    elif scheme == "sqlite":
        if parts.netloc or not parts.path or parts.path == "/":
            raise StoreConfigError(
                setting,
                f"SQLite store URL must be sqlite:///path/to/file.db; got {redacted(url)!r}",
            )
        from .sqlite import open_sqlite_stores

        options = _options(setting, url, parts.query, _SQLITE_OPTIONS)[0]
        # As SQLAlchemy's: sqlite:///relative/file.db, sqlite:////absolute/file.db.
        async with open_sqlite_stores(parts.path[1:], setting=setting, **options) as stores:
            yield stores
    elif scheme in REDIS_SCHEMES:
        try:
            from .redis import open_redis_stores
        except ImportError as exc:
            raise StoreConfigError(
                setting,
                f"{redacted(url)!r} needs the Redis client: pip install 'stageflow-trio[redis]' ({exc})",
            ) from exc
        options, rest = _options(setting, url, parts.query, _REDIS_OPTIONS, _REDIS_CLIENT_OPTIONS)
        client_url = urlunsplit(parts._replace(query=urlencode(rest)))
        async with open_redis_stores(client_url, setting=setting, **options) as stores:
            yield stores
    else:
        raise StoreConfigError(
            setting,
            f"unknown store URL {redacted(url)!r}: expected memory://, sqlite:///path, redis://host:port/db,"
            " redis+cluster://host:port,... or redis+sentinel://host:port,.../service",
        )


from stageflow_trio._exports import publish  # noqa: E402

publish(__name__)
