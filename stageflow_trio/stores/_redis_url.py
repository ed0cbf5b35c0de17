"""Redis store URLs: one server, a Redis Cluster, or a primary that Sentinel names.

- ``redis://[user:password@]host:port/db`` (``rediss://`` for TLS, ``unix://path``
  for a socket): one server, through ``coredis.Redis.from_url`` (the client's query
  parameters that :func:`~stageflow_trio.stores.open_stores` passes on).
- ``redis+cluster://[user:password@]host:port[,host:port...]`` (``rediss+cluster://``):
  a Redis Cluster, reached through any of the listed nodes; database 0 only.
- ``redis+sentinel://[user:password@]host:port[,host:port...]/service[/db]``
  (``rediss+sentinel://``): the primary that the listed sentinels name ``service``;
  the credentials and TLS are the primary's.

The store options (``prefix``, ``claim_lease_seconds``, ``resync_interval``,
``command_timeout``, ``approval_retention_seconds``) are taken out of the query before
these URLs get here.
"""

from __future__ import annotations

import ssl
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import attrs
import coredis
import coredis.exceptions
import coredis.retry
from coredis.connection import TCPLocation

from stageflow_trio._frozen import frozen_compat

from ._common import REDIS_SCHEMES, StoreConfigError
from ._common import redacted as redacted

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


@frozen_compat
@attrs.frozen
class RedisTarget:
    """Where a Redis store URL points.

    Attributes:
        url: The URL itself.
        kind: ``"single"``, ``"cluster"`` or ``"sentinel"``.
        tls: Whether the connections use TLS (a ``rediss`` scheme).
        nodes: The listed ``(host, port)`` pairs (port 6379, or 26379 for a
            sentinel, when left out).
        username: The user, or None.
        password: The password, or None (``'***'`` in the repr, as is the URL's).
        service: The Sentinel service name (``kind == "sentinel"``).
        db: The database number (0 unless the URL names one).
    """

    # A repr ends up in logs and tracebacks: never with the password.
    url: str = attrs.field(repr=lambda url: repr(redacted(url)))
    kind: str
    tls: bool
    nodes: tuple[tuple[str, int], ...]
    username: str | None = None
    password: str | None = attrs.field(
        default=None, repr=lambda password: "None" if password is None else "'***'"
    )
    service: str = ""
    db: int = 0


def parse_redis_url(url: str, setting: str) -> RedisTarget:
    """The target of a Redis store URL.

    Raises:
        StoreConfigError: the URL is not one of the forms above (the message
            shows the URL without its password).
    """
    shown = redacted(url)
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise StoreConfigError(setting, f"malformed Redis URL {shown!r}: {exc}") from exc
    scheme = parts.scheme
    if scheme == "unix":  # a socket path: coredis reads it, there is no host to check
        return RedisTarget(url=url, kind="single", tls=False, nodes=())
    if scheme not in REDIS_SCHEMES:
        raise StoreConfigError(setting, f"not a Redis store URL: {shown!r}")
    base, _, kind = scheme.partition("+")
    kind = kind or "single"
    credentials, _, hosts = parts.netloc.rpartition("@")
    username, _, password = credentials.partition(":")
    default_port = 26379 if kind == "sentinel" else 6379
    nodes = tuple(_node(shown, setting, node, default_port) for node in hosts.split(","))
    if kind != "single" and parts.query:
        raise StoreConfigError(
            setting,
            f"{shown!r}: a {kind} URL takes only the store options in its query"
            " (prefix, claim_lease_seconds, resync_interval, command_timeout,"
            " approval_retention_seconds)",
        )
    path = [segment for segment in parts.path.split("/") if segment]
    service, db = "", 0
    if kind == "sentinel":
        if not path or len(path) > 2:
            raise StoreConfigError(
                setting, f"{shown!r}: a Sentinel URL names its service: .../service[/db]"
            )
        service = unquote(path[0])
        db = _db(shown, setting, path[1] if len(path) == 2 else "0")
    elif kind == "cluster":
        if path and path != ["0"]:
            raise StoreConfigError(setting, f"{shown!r}: a Redis Cluster has database 0 only")
    elif len(path) > 1 or (path and not path[0].isdigit()):
        raise StoreConfigError(setting, f"{shown!r}: the path is the database number, /db")
    return RedisTarget(
        url=url,
        kind=kind,
        tls=base == "rediss",
        nodes=nodes,
        username=unquote(username) or None,
        password=unquote(password) or None,
        service=service,
        db=db,
    )


def _node(url: str, setting: str, node: str, default_port: int) -> tuple[str, int]:
    if node.startswith("["):  # an IPv6 address: [::1] or [::1]:port
        host, bracket, rest = node[1:].partition("]")
        port = rest.removeprefix(":") if bracket and rest.startswith(":") else ""
        if not bracket or (rest and not port):
            host = ""
        port = port or str(default_port)
    else:
        host, colon, port = node.rpartition(":")
        if not colon:
            host, port = node, str(default_port)
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise StoreConfigError(setting, f"malformed Redis URL {url!r}: {node!r} is not host:port")
    return host, int(port)


def _db(url: str, setting: str, text: str) -> int:
    if not text.isdigit():
        raise StoreConfigError(setting, f"{url!r}: the database must be a number; got {text!r}")
    return int(text)


_SINGLE_RETRY = coredis.retry.ConstantRetryPolicy(
    (coredis.exceptions.ConnectionError,), retries=2, delay=0.01
)
"""A single server's client tries a command again on a lost connection, as coredis's default
does, but not after a ``stream_timeout``: the server may still run the command it did not
answer in time, and a write tried again would then land up to three times."""


@asynccontextmanager
async def redis_client(
    target: RedisTarget, connect_timeout: float, setting: str
) -> AsyncIterator[Any]:
    """A coredis client for ``target``, not entered yet; a Sentinel is entered here.

    A single server's client does not try a command again after its ``stream_timeout``
    (coredis's default tries twice more): a write the server runs late would land again.

    Raises:
        StoreConfigError: coredis refuses the URL of a single server.
    """
    if target.kind == "single":
        try:
            client = coredis.Redis.from_url(
                target.url,
                decode_responses=False,
                connect_timeout=connect_timeout,
                retry_policy=_SINGLE_RETRY,
            )
        except (ValueError, TypeError) as exc:
            raise StoreConfigError(
                setting, f"malformed Redis URL {redacted(target.url)!r}: {exc}"
            ) from exc
        yield client
        return
    auth: dict[str, Any] = {"username": target.username, "password": target.password}
    if target.kind == "cluster":
        yield coredis.RedisCluster(
            startup_nodes=[TCPLocation(host, port) for host, port in target.nodes],
            ssl=target.tls,
            connect_timeout=connect_timeout,
            decode_responses=False,
            **auth,
        )
        return
    if target.tls:
        auth["ssl_context"] = ssl.create_default_context()
    async with coredis.Sentinel(
        [TCPLocation(host, port) for host, port in target.nodes],
        connect_timeout=connect_timeout,
        decode_responses=False,
    ) as sentinel:
        yield sentinel.primary_for(target.service, db=target.db, **auth)


def has_hash_tag(prefix: str) -> bool:
    """Whether every key starting with ``prefix`` hashes to one Redis Cluster slot.

    Redis hashes only the part between the first ``{`` and the next ``}`` when
    it is not empty: ``"{stageflow}:"`` puts all the stores' keys in one slot.
    """
    start = prefix.find("{")
    return start >= 0 and prefix.find("}", start + 1) > start + 1
