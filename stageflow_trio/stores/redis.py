"""Redis stores: shared by every worker process of every machine (the ``redis`` extra).

:func:`open_redis_stores` connects to one Redis server with coredis (which
runs on trio through anyio) and yields a :class:`~stageflow_trio.stores.Stores`
whose stores all live there, under one key prefix (``stageflow:``).

- Times to live are Redis's own (``SET ... PX``, ``PEXPIRE``): an entry is
  gone for every process at once, whoever wrote it. So is a closed approval
  request, ``approval_retention_seconds`` (an hour) after its last change (or after
  the first open of this version, for one closed by a version before retention).
- An idempotency claim is one atomic Lua script (the cached result, else
  ``SET NX PX`` of the claim), with a lease (``claim_lease_seconds``, 30 s)
  renewed every third of it while this process holds the claim: a process
  that dies holding one blocks its key for at most one lease.
- Changes that waiters wait for (a released claim, a decided approval) are
  published on Redis pub/sub and pushed to every process's waiters; nothing
  polls. A waiter also looks again every ``resync_interval`` (5 s), a safety
  net for a pub/sub connection that was lost and re-established.
- A store call waits for Redis as long as its caller lets it (a paused or
  partitioned server answers nothing); ``command_timeout`` (None by default)
  bounds each of its commands: past it the call raises ``TimeoutError``.
- Redis Cluster (``redis+cluster://host:port,...``): the scripts touch several
  keys, so they must hash to one slot: the key prefix must hold a hash tag, and
  is ``"{stageflow}:"`` by default there (all the keys on one shard). Sentinel
  (``redis+sentinel://host:port,.../service[/db]``): the primary it names. A
  client of your own from ``Sentinel.primary_for`` needs its ``Sentinel``
  entered around :func:`open_redis_stores`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

import anyio
import coredis
import coredis.exceptions
import coredis.retry
import trio
from trio_util import periodic

from stageflow_trio._args import check_number, check_seconds, type_of
from stageflow_trio._groups import unwrapping_groups
from stageflow_trio.helpers.memory import (
    MemoryConfig,
    MemoryEntry,
    _check_fetch,
    _check_memory_entry,
    _check_session_id,
    _select,
)
from stageflow_trio.pipeline.idempotency import CachedStageResult, IdempotencyClaim
from stageflow_trio.tools.approval import ApprovalStatus

from ._common import (
    DEFAULT_APPROVAL_RETENTION_SECONDS,
    DEFAULT_CLAIM_LEASE_SECONDS,
    ClaimingStore,
    StoreConfigError,
    Wakeups,
    check_entry,
    check_key,
    decision_from_json,
    decision_to_json,
    entry_from_json,
    entry_to_json,
    log_unreleased,
    log_unrenewed,
    memory_from_json,
    memory_to_json,
    redacted,
    request_from_json,
    request_to_json,
    time_to_live,
    undo_from_json,
    undo_to_json,
)
from ._redis_url import RedisTarget, has_hash_tag, parse_redis_url, redis_client

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from stageflow_trio.tools.approval import ApprovalDecision, ApprovalRequest
    from stageflow_trio.tools.definitions import UndoMetadata

    from ._common import Stores

__all__ = [
    "CANCELLED_CLAIM_RELEASE_SECONDS",
    "SCHEMA_VERSION",
    "RedisApprovalBackend",
    "RedisIdempotencyStore",
    "RedisMemoryStore",
    "RedisUndoBackend",
    "open_redis_stores",
]

logger: logging.Logger = logging.getLogger("stageflow_trio.stores")

_REDIS_ERRORS = (
    coredis.exceptions.RedisError,
    OSError,
    # A connection the stores' cancellation closed: coredis fails to send on it.
    anyio.ClosedResourceError,
    anyio.BrokenResourceError,
)

SCHEMA_VERSION = 1
"""The layout of the keys this version writes (kept under ``{prefix}schema``)."""

DEFAULT_PREFIX = "stageflow:"
CLUSTER_DEFAULT_PREFIX = "{stageflow}:"
DEFAULT_RESYNC_INTERVAL_SECONDS = 5.0

_T = TypeVar("_T")

CANCELLED_CLAIM_RELEASE_SECONDS = 0.5
"""How long a cancelled :meth:`RedisIdempotencyStore.claim` waits, shielded, to release
the claim its script may have granted; past that the store's background task releases it."""

_NEVER_EXPIRES_MS = 2**62
"""PX values from this on mean never (Redis refuses an expiry past 2**63 ms from now)."""


def _milliseconds(seconds: float, to_int: Callable[[float], int]) -> int | None:
    """A ``PX`` for ``seconds`` (>= 0): 1 at least, or None (never) from 2**62 ms on.

    Compared as a float first: ``seconds * 1000`` may be infinite (a finite time over
    about 1.8e305 s), which no int holds.
    """
    ms = seconds * 1000
    if ms >= _NEVER_EXPIRES_MS:
        return None
    return max(1, to_int(ms))


_PUBSUB_RETRY = coredis.retry.ExponentialBackoffRetryPolicy(
    (coredis.exceptions.ConnectionError, TimeoutError),
    retries=None,
    base_delay=0.05,
    max_delay=1.0,
    jitter=True,
)
"""The listener reconnects for as long as the stores are open, at least once a second:
coredis's default waits up to 16 s, and stops after three subscriptions not acknowledged."""

_CLAIM = """
local entry = redis.call('GET', KEYS[1])
if entry then return {1, entry, tostring(redis.call('PTTL', KEYS[1]))} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {2, '', ''} end
return {0, '', tostring(redis.call('PTTL', KEYS[2]))}
"""

_GET = """
local entry = redis.call('GET', KEYS[1])
if not entry then return {false, -2} end
return {entry, redis.call('PTTL', KEYS[1])}
"""

_RELEASE = """
local released = 0
for i, key in ipairs(KEYS) do
    if redis.call('GET', key) == ARGV[i * 2] then
        redis.call('DEL', key)
        redis.call('PUBLISH', ARGV[1], ARGV[i * 2 + 1])
        released = released + 1
    end
end
return released
"""

_RENEW = """
local renewed = 0
for i, key in ipairs(KEYS) do
    if redis.call('GET', key) == ARGV[i + 1] then
        redis.call('PEXPIRE', key, ARGV[1])
        renewed = renewed + 1
    end
end
return renewed
"""

_CLEAR = """
local n = redis.call('LLEN', KEYS[1])
redis.call('DEL', KEYS[1])
return n
"""

_SCHEMA = """
local version = redis.call('GET', KEYS[1])
if not version then redis.call('SET', KEYS[1], ARGV[1]) return tonumber(ARGV[1]) end
return tonumber(version)
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisBackend:
    """One connected Redis client and the pub/sub listener its stores share.

    Made by :func:`open_redis_stores`.

    Attributes:
        client: The coredis client.
        prefix: Prepended to every key and channel.
        resync_interval: How often a waiter looks again without a notification.
        command_timeout: The longest a store call waits for one Redis command
            (seconds), or None: as long as its caller lets it.
    """

    def __init__(
        self,
        client: Any,
        *,
        prefix: str,
        resync_interval: float,
        command_timeout: float | None = None,
    ) -> None:
        self.client: Any = client
        self.prefix: str = prefix
        self.resync_interval: float = resync_interval
        self.command_timeout: float | None = command_timeout
        self.wakeups: Wakeups = Wakeups()
        self.channel: str = f"{prefix}changed"

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    async def call(self, owner: str, command: Awaitable[_T]) -> _T:
        """Await ``command`` (a client command), for at most :attr:`command_timeout`.

        Raises:
            TimeoutError: Redis did not answer within :attr:`command_timeout`.
        """
        timeout = self.command_timeout
        if timeout is None:
            return await command
        with trio.move_on_after(timeout):
            return await command
        raise TimeoutError(
            f"{owner}: Redis did not answer within command_timeout={timeout} s; the command"
            " may still run when the server answers (check the server, or raise command_timeout)"
        )

    async def listen(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Wake this process's waiters for every change published on :attr:`channel`.

        A lost connection is re-established and the channel subscribed again
        (coredis does both); every (re)subscription wakes every waiter, since what
        was published meanwhile never arrives. Cancelled (the stores close), it
        raises ``trio.Cancelled`` alone: the error the pub/sub's cleanup may meet on
        its connection, closed by that cancellation, is logged (debug).
        """
        try:
            await self._listen(task_status)
        except trio.Cancelled:
            raise
        except BaseException as exc:
            if trio.current_effective_deadline() != -math.inf or _fatal(exc):
                raise
            logger.debug("the pub/sub connection failed as it was cancelled", exc_info=True)
            await trio.lowlevel.checkpoint()  # raises the cancellation
            raise

    async def _listen(self, task_status: trio.TaskStatus[None]) -> None:
        async with self.client.pubsub(
            channels=[self.channel], retry_policy=_PUBSUB_RETRY
        ) as pubsub:
            task_status.started()
            while True:
                # Not `async for message in pubsub`: coredis 6.9 ends that iteration when a
                # resubscription's acknowledgement arrives before the pubsub marks itself
                # subscribed again, and the listener would be gone for good.
                message = await pubsub.get_message()
                if message is None:
                    continue
                kind = _text(message["type"])
                if kind == "message":
                    self.wakeups.wake(_text(message["data"]))
                elif kind == "subscribe":
                    self.wakeups.wake_all()


def _fatal(exc: BaseException) -> bool:
    """Whether ``exc`` is (or holds) a KeyboardInterrupt or SystemExit."""
    if isinstance(exc, BaseExceptionGroup):
        return exc.subgroup((KeyboardInterrupt, SystemExit)) is not None
    return isinstance(exc, KeyboardInterrupt | SystemExit)


@asynccontextmanager
async def open_redis_stores(
    url: str | None = None,
    *,
    client: Any = None,
    prefix: str | None = None,
    claim_lease_seconds: float = DEFAULT_CLAIM_LEASE_SECONDS,
    resync_interval: float = DEFAULT_RESYNC_INTERVAL_SECONDS,
    connect_timeout: float = 5.0,
    command_timeout: float | None = None,
    approval_retention_seconds: float = DEFAULT_APPROVAL_RETENTION_SECONDS,
    setting: str = "url",
) -> AsyncIterator[Stores]:
    """Connect to Redis and yield its stores; disconnect on exit.

    The connection (with the pub/sub listener and the lease renewals) lasts as long as
    the block's body, even when the block is cancelled while the body finishes its work
    under a shield (a graceful shutdown); on exit, the queued claim releases are written
    (for ``connect_timeout`` at most, 0.5 s once cancelled), then the client disconnects.

    Args:
        url: ``redis://[user:password@]host:port/db`` or ``rediss://...``; a
            Redis Cluster ``redis+cluster://host:port[,host:port...]``; the primary
            that Sentinel names ``redis+sentinel://host:port[,host:port...]/service[/db]``
            (see :mod:`stageflow_trio.stores._redis_url`).
        client: A coredis client to use instead of ``url`` (custom TLS, a pool of
            your own); entered here, so not entered already. A client from
            ``Sentinel.primary_for`` needs its ``Sentinel`` entered around this call.
        prefix: Prepended to every key and channel; ``"stageflow:"`` by default,
            ``"{stageflow}:"`` on a Redis Cluster, where the prefix must hold a
            hash tag (``{...}``) so that every key of the stores is in one slot.
        claim_lease_seconds: The lease of an idempotency claim.
        resync_interval: How often a waiter looks again without a notification.
        connect_timeout: Seconds to reach the server at open.
        command_timeout: The longest a store call waits for each of its Redis
            commands, in seconds; past it the call raises ``TimeoutError`` (the
            command may still run when the server answers). None (the default):
            as long as the caller lets it. The background tasks (releasing
            claims, renewing leases, listening) are not bounded by it.
        approval_retention_seconds: How long a closed approval request is kept
            after its last change (an hour; ``math.inf``: until removed); see
            :class:`RedisApprovalBackend`. A request that a version before retention
            closed gets its period from this open.
        setting: The setting named in errors (``url``, or the environment variable).

    Raises:
        StoreConfigError: The URL is malformed, the server cannot be reached
            within ``connect_timeout``, or it holds a newer key layout.
        TypeError, ValueError: A bad argument.
    """
    from ._common import Stores

    if command_timeout is not None:
        command_timeout = check_number(
            "open_redis_stores", "command_timeout", command_timeout, minimum=0, above=True
        )
    if (url is None) == (client is None):
        raise TypeError("open_redis_stores: give exactly one of url and client")
    if url is not None and not isinstance(url, str):
        raise TypeError(f"open_redis_stores: url must be a str; got {type_of(url)}")
    if prefix is not None and not isinstance(prefix, str):
        raise TypeError(f"open_redis_stores: prefix must be a str or None; got {type_of(prefix)}")
    lease = check_number(
        "open_redis_stores", "claim_lease_seconds", claim_lease_seconds, minimum=0, above=True
    )
    resync_interval = check_number(
        "open_redis_stores", "resync_interval", resync_interval, minimum=0, above=True
    )
    connect_timeout = check_number(
        "open_redis_stores", "connect_timeout", connect_timeout, minimum=0, above=True
    )
    retention = check_seconds(
        "open_redis_stores", "approval_retention_seconds", approval_retention_seconds
    )
    where = redacted(url) if url is not None else repr(client)
    target = None if url is None else parse_redis_url(url, setting)

    async def connect(stack: contextlib.AsyncExitStack[bool | None]) -> RedisBackend:
        connected = client
        if target is not None:
            connected = await stack.enter_async_context(
                redis_client(target, connect_timeout, setting)
            )
        backend = RedisBackend(
            connected,
            prefix=_cluster_prefix(connected, prefix, setting),
            resync_interval=resync_interval,
            command_timeout=command_timeout,
        )
        try:
            await stack.enter_async_context(connected)
            with trio.fail_after(connect_timeout):
                version = int(
                    await connected.eval(
                        _SCHEMA, keys=[backend.key("schema")], args=[str(SCHEMA_VERSION)]
                    )
                )
        except (coredis.exceptions.RedisError, TimeoutError, OSError) as exc:
            raise StoreConfigError(setting, f"cannot use Redis at {where}: {exc!r}") from exc
        if version > SCHEMA_VERSION:
            raise StoreConfigError(
                setting,
                f"Redis at {where} holds key layout version {version}, newer than this"
                f" library's {SCHEMA_VERSION}",
            )
        return backend

    with unwrapping_groups():
        if target is not None:
            await _check_reachable(target, setting, connect_timeout)
        async with trio.open_nursery() as nursery:
            connection = _Connection()
            try:
                # Inside the try: the connection and the store's background task are
                # shielded from the block's cancellation until the body has ended.
                backend = await nursery.start(connection.run, connect)
                approvals = RedisApprovalBackend(backend, retention_seconds=retention)
                try:
                    await approvals._expire_legacy()
                except (*_REDIS_ERRORS, TimeoutError):
                    # Housekeeping: the stores work without it, and the next open tries again.
                    logger.warning(
                        "could not give the approval requests closed by an older version"
                        " their expiry",
                        exc_info=True,
                    )
                idempotency = RedisIdempotencyStore(backend, claim_lease_seconds=lease)
                connection.idempotency = idempotency
                await nursery.start(idempotency._serve)
                yield Stores(
                    url=url if url is not None else where,
                    idempotency=idempotency,
                    memory=RedisMemoryStore(backend),
                    approvals=approvals,
                    undo=RedisUndoBackend(backend),
                )
            finally:
                # Let the queued releases reach Redis (bounded), then disconnect.
                connection.close(within=connect_timeout)
                try:
                    if connection.idempotency is not None:
                        with trio.CancelScope(shield=True), trio.move_on_after(connect_timeout):
                            await connection.idempotency._drained.wait()
                finally:
                    connection.stop()
                    nursery.cancel_scope.cancel()


class _Connection:
    """The stores' client (and the Sentinel it came from) with its pub/sub listener, in a
    task of their own (:meth:`run`), and the idempotency store that uses them.

    The task is shielded from the cancellation of the stores' block while the block's body
    runs: a graceful shutdown cancels the block while its body finishes the requests in
    flight under a shield, and that work still needs the connection (its store calls, the
    renewal of its claims' leases, its releases) and the listener (the waiters of this
    process wake on the releases it publishes). Closed (:meth:`close`) when the body has
    ended: the connection then lasts while the store writes the releases still queued
    (``within`` seconds at most), and is ended by :meth:`stop`.
    """

    def __init__(self) -> None:
        self._scope = trio.CancelScope()
        self.idempotency: RedisIdempotencyStore | None = None

    async def run(
        self,
        connect: Callable[[contextlib.AsyncExitStack[bool | None]], Awaitable[RedisBackend]],
        *,
        task_status: trio.TaskStatus[RedisBackend] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Connect (cancellable, and raising its errors to the opener's ``start``), start
        the listener, hand the backend over, then stay connected, shielded, until ended."""
        with self._scope:
            async with contextlib.AsyncExitStack() as stack:
                backend = await connect(stack)
                async with trio.open_nursery() as nursery:
                    await nursery.start(backend.listen)
                    task_status.started(backend)
                    # Cancelled here only when started() left this task in start()'s
                    # cancelled nursery (the opener was cancelled meanwhile: the check
                    # and the move happen in one step): its start() raises Cancelled
                    # once this task has disconnected; nothing needs the connection.
                    await trio.lowlevel.checkpoint_if_cancelled()
                    self._scope.shield = True
                    await trio.sleep_forever()

    @trio.lowlevel.enable_ki_protection
    def close(self, *, within: float) -> None:
        """The stores' block's body has ended: the idempotency store's background task
        drains its releases, and the connection ends ``within`` seconds at the latest.

        Protected from a Ctrl-C: left shielded, the tasks would hold the block for ever.
        """
        if self.idempotency is not None:
            self.idempotency._close()
        self._scope.deadline = min(self._scope.deadline, trio.current_time() + within)

    def stop(self) -> None:
        """Disconnect now."""
        self._scope.cancel()


def _cluster_prefix(client: Any, prefix: str | None, setting: str) -> str:
    """The key prefix: the default for the client's kind, and one slot on a Redis Cluster."""
    if not isinstance(client, coredis.RedisCluster):
        return DEFAULT_PREFIX if prefix is None else prefix
    if prefix is None:
        return CLUSTER_DEFAULT_PREFIX
    if not has_hash_tag(prefix):
        raise StoreConfigError(
            setting,
            f"a Redis Cluster needs a key prefix with a hash tag, so that every key of the"
            f" stores is in one slot (the scripts touch several); got {prefix!r},"
            f" e.g. {'{' + prefix.rstrip(':') + '}:'!r}",
        )
    return prefix


async def _check_reachable(target: RedisTarget, setting: str, timeout: float) -> None:
    """Fail fast, and without the client's retries, when no listed node accepts a connection."""
    if not target.nodes:  # a unix socket
        return
    errors: list[str] = []
    with trio.move_on_after(timeout):
        for host, port in target.nodes:
            try:
                stream = await trio.open_tcp_stream(host, port)
            except OSError as exc:
                errors.append(f"{host}:{port}: {type(exc).__name__}: {exc}")
                continue
            await stream.aclose()
            return
    detail = "; ".join(errors) or f"no answer within {timeout} s"
    raise StoreConfigError(setting, f"cannot reach Redis at {redacted(target.url)}: {detail}")


class RedisIdempotencyStore(ClaimingStore):
    """An :class:`~stageflow_trio.pipeline.idempotency.IdempotencyStore` in Redis.

    Results expire by Redis's ``PX``; ``get`` returns them with ``expires_at``
    in epoch seconds (this machine's clock plus the ``PTTL`` Redis reports). :meth:`release` hands the deletion to the store's
    background task (it must not block); the release is published, which wakes
    every process's waiters at once. The background task (renewals, releases), the
    client's connection and the pub/sub listener run as long as the stores' block's
    body, even when the block is cancelled while the body still works shielded.
    """

    _OWNER = "RedisIdempotencyStore"
    _DRAIN_SECONDS = CANCELLED_CLAIM_RELEASE_SECONDS

    def __init__(self, backend: RedisBackend, *, claim_lease_seconds: float) -> None:
        super().__init__()
        self._backend = backend
        self._client = backend.client
        self._lease_ms = max(1, round(claim_lease_seconds * 1000))

    def _keys(self, key: str) -> list[str]:
        return [self._backend.key("idem", "result", key), self._backend.key("idem", "claim", key)]

    async def get(self, key: str) -> CachedStageResult | None:
        """The live entry for ``key``, or None. A checkpoint.

        Raises:
            TypeError: ``key`` is not a str.
        """
        check_key("RedisIdempotencyStore.get", key)
        value, ttl = await self._backend.call(
            "RedisIdempotencyStore.get",
            self._client.eval(_GET, keys=[self._keys(key)[0]], args=[]),
        )
        return None if value is None else entry_from_json(value, _expires(ttl))

    async def set(
        self, key: str, entry: CachedStageResult, *, ttl_seconds: float | None = None
    ) -> None:
        """Store ``entry`` under ``key``, expiring (by Redis) after ``ttl_seconds``. A checkpoint.

        As the reference's in-memory store: None, 0, NaN or ``math.inf``: never
        expires; a negative time: expired at once (the entry of ``key`` is deleted). Redis counts
        whole milliseconds: a shorter time lives 1 ms (rounded up), and one of
        2**62 ms or more never expires (Redis refuses an expiry that far).

        Raises:
            TypeError: ``key`` is not a str, ``entry`` not a CachedStageResult,
                ``ttl_seconds`` neither a number nor None.
        """
        owner = "RedisIdempotencyStore.set"
        check_key(owner, key)
        check_entry(owner, entry)
        ttl = time_to_live(owner, ttl_seconds)
        text = entry_to_json(entry)
        name = self._keys(key)[0]
        if ttl is not None and ttl < 0:
            await self._backend.call(owner, self._client.delete([name]))
            return
        px = None if ttl is None else _milliseconds(ttl, math.ceil)
        if px is None:
            await self._backend.call(owner, self._client.set(name, text))
        else:
            await self._backend.call(owner, self._client.set(name, text, px=px))

    async def delete(self, key: str) -> None:
        """Forget the entry of ``key``. A checkpoint.

        Raises:
            TypeError: ``key`` is not a str.
        """
        check_key("RedisIdempotencyStore.delete", key)
        await self._backend.call(
            "RedisIdempotencyStore.delete", self._client.delete([self._keys(key)[0]])
        )

    @trio.lowlevel.enable_ki_protection  # see ClaimingStore
    async def claim(self, key: str) -> IdempotencyClaim | CachedStageResult:
        """See :meth:`IdempotencyStore.claim`; woken by the holder's published release.

        A checkpoint, cancellable while it waits for Redis. A call cancelled (or
        failing, or interrupted by Ctrl-C) after its script was sent releases the
        claim the script may have granted before it raises: shielded, for at most
        :data:`CANCELLED_CLAIM_RELEASE_SECONDS`; past that (an unresponsive
        server) the background task releases it when Redis answers, and the lease
        bounds it in any case. Protected from Ctrl-C (see
        :class:`~stageflow_trio.stores._common.ClaimingStore`).

        Raises:
            TypeError: ``key`` is not a str.
        """
        check_key("RedisIdempotencyStore.claim", key)
        keys = self._keys(key)
        wakeups = self._backend.wakeups
        topic = "idem:" + key
        while True:
            claim = IdempotencyClaim(key)
            with wakeups.watch(topic) as event:
                await trio.lowlevel.checkpoint_if_cancelled()  # nothing sent when cancelled
                try:
                    kind, value, ttl = await self._backend.call(
                        "RedisIdempotencyStore.claim",
                        self._client.eval(
                            _CLAIM, keys=keys, args=[claim.token, str(self._lease_ms)]
                        ),
                    )
                except BaseException:
                    await self._release_ungranted(claim)
                    raise
                if kind == 2:
                    self._held[claim.token] = claim
                    return claim
                if kind == 1:
                    return entry_from_json(value, _expires(ttl))
                # Held by someone: its release is published; an expired lease is not, so
                # look again when it runs out.
                wait = min(self._backend.resync_interval, max(int(ttl), 1) / 1000)
                with trio.move_on_after(wait):
                    await event.wait()

    async def _release_ungranted(self, claim: IdempotencyClaim) -> None:
        """Release ``claim``, which a call that is not returning it may have been granted.

        Shielded and bounded; the background task tries again if this cannot.
        """
        with trio.CancelScope(shield=True), trio.move_on_after(CANCELLED_CLAIM_RELEASE_SECONDS):
            try:
                await self._send_release([claim])
            except Exception as exc:  # noqa: BLE001 - must not replace what is propagating
                log_unreleased([claim], exc, self._lease_ms / 1000, retrying=True)
            else:
                return
        # For the background task, which writes it when Redis answers.
        self._queue_release(claim)

    async def _send_release(self, claims: list[IdempotencyClaim]) -> None:
        """Delete each claim's key if it still holds it, and tell the waiters (one script)."""
        args = [self._backend.channel]
        for claim in claims:
            args += (claim.token, "idem:" + claim.key)
        await self._client.eval(
            _RELEASE, keys=[self._keys(claim.key)[1] for claim in claims], args=args
        )

    def _lease_seconds(self) -> float:
        return self._lease_ms / 1000

    def _periodic(self) -> list[Callable[[], Awaitable[None]]]:
        return [self._renew_leases]

    async def _write_release(self, claims: list[IdempotencyClaim]) -> None:
        try:
            await self._send_release(claims)
        except _REDIS_ERRORS as exc:
            # The lease frees the keys; the store goes on.
            log_unreleased(claims, exc, self._lease_ms / 1000)

    async def _renew_leases(self) -> None:
        """Every third of the lease (start to start, the first a third in), renew the claims held."""
        async with contextlib.aclosing(periodic(self._lease_ms / 3000)) as ticks:
            async for _, since_last in ticks:
                held = list(self._held.values())
                if since_last is None or not held:
                    continue
                try:
                    await self._client.eval(
                        _RENEW,
                        keys=[self._keys(claim.key)[1] for claim in held],
                        args=[str(self._lease_ms), *(claim.token for claim in held)],
                    )
                except _REDIS_ERRORS as exc:
                    # A lease not renewed this time may be renewed next time.
                    log_unrenewed(held, exc, self._lease_ms / 3000)


def _expires(ttl: Any) -> float | None:
    # Epoch seconds, as the SQLite store reports them: now plus what Redis says is left.
    ms = int(ttl)
    return None if ms < 0 else time.time() + ms / 1000


class RedisMemoryStore:
    """A :class:`~stageflow_trio.helpers.memory.MemoryStore` in Redis: one list per session.

    ``fetch`` selects exactly as :class:`~stageflow_trio.helpers.memory.InMemoryStore`
    does, over the session's entries in write order.
    """

    def __init__(self, backend: RedisBackend) -> None:
        self._backend = backend

    def _key(self, session_id: UUID) -> str:
        return self._backend.key("memory", str(session_id))

    async def fetch(self, session_id: UUID, config: MemoryConfig) -> list[MemoryEntry]:
        """The session's entries that ``config`` selects, oldest first. A checkpoint.

        Raises:
            TypeError: ``session_id`` is not a UUID or ``config`` is not a MemoryConfig.
        """
        _check_fetch("RedisMemoryStore.fetch", session_id, config)
        values = await self._backend.call(
            "RedisMemoryStore.fetch", self._backend.client.lrange(self._key(session_id), 0, -1)
        )
        return _select([memory_from_json(value) for value in values], config)

    async def write(self, entry: MemoryEntry) -> None:
        """Append ``entry`` to its session. A checkpoint.

        Raises:
            TypeError: ``entry`` is not a MemoryEntry.
        """
        _check_memory_entry("RedisMemoryStore.write", entry)
        await self._backend.call(
            "RedisMemoryStore.write",
            self._backend.client.rpush(self._key(entry.session_id), [memory_to_json(entry)]),
        )

    async def clear(self, session_id: UUID) -> int:
        """Forget the session; return how many entries it had. A checkpoint.

        Raises:
            TypeError: ``session_id`` is not a UUID.
        """
        _check_session_id("RedisMemoryStore.clear", session_id)
        cleared = await self._backend.call(
            "RedisMemoryStore.clear",
            self._backend.client.eval(_CLEAR, keys=[self._key(session_id)], args=[]),
        )
        return int(cleared)


_APPROVAL_FIELDS = ("request", "status", "decided_by", "decided_at")

# Retention: a closed request's hash expires (PEXPIRE) retention after its last change, set
# by the script that makes the change (px: milliseconds, '' for ever); a pending one has no
# expiry. An action's index lives as long as its longest-kept request (one pending or kept
# for ever: for ever), and drops the ids whose hash is gone whenever one of its requests
# changes, so it never outlives them.
_APPROVAL_KEEP = """
local function retain(hash, px)
    if px == '' then redis.call('PERSIST', hash) else redis.call('PEXPIRE', hash, px) end
end
local function keep_index(index, hash_prefix)
    local longest = 0
    for _, id in ipairs(redis.call('ZRANGE', index, 0, -1)) do
        local ttl = redis.call('PTTL', hash_prefix .. id)
        if ttl == -2 then redis.call('ZREM', index, id)
        elseif ttl == -1 then longest = -1
        elseif longest ~= -1 and ttl > longest then longest = ttl end
    end
    if longest == -1 then redis.call('PERSIST', index)
    elseif longest > 0 then redis.call('PEXPIRE', index, longest)
    else redis.call('DEL', index) end
end
"""

# (The creation-ordered index ``approvals`` of the first versions is no longer written:
# nothing read it, and it kept an id per request ever made. Remove still cleans it.)
_APPROVAL_ADD = (
    _APPROVAL_KEEP
    + """
local seq = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'request', ARGV[1], 'status', ARGV[2], 'decided_by', '',
    'decided_at', '', 'action_id', ARGV[4])
redis.call('ZADD', KEYS[3], seq, ARGV[3])
if ARGV[2] == 'pending' then
    redis.call('ZADD', KEYS[4], seq, ARGV[3])
    redis.call('PERSIST', KEYS[1])
else
    retain(KEYS[1], ARGV[5])
end
keep_index(KEYS[3], ARGV[7])
return seq
"""
)

# Newest first, past the requests already forgotten (an older one may still be open).
_APPROVAL_LATEST = """
for _, id in ipairs(redis.call('ZREVRANGE', KEYS[1], 0, -1)) do
    local fields = redis.call('HMGET', ARGV[1] .. id, 'request', 'status', 'decided_by',
        'decided_at')
    if fields[1] then return fields end
end
return false
"""

_APPROVAL_PENDING = """
local out = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    local fields = redis.call('HMGET', ARGV[1] .. id, 'request', 'status', 'decided_by', 'decided_at')
    if fields[1] then for _, value in ipairs(fields) do table.insert(out, value) end end
end
return out
"""

_APPROVAL_DECIDE = (
    _APPROVAL_KEEP
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'decided_by', ARGV[2], 'decided_at', ARGV[3],
    'decision', ARGV[4])
redis.call('ZREM', KEYS[2], ARGV[7])
retain(KEYS[1], ARGV[8])
keep_index(ARGV[9] .. redis.call('HGET', KEYS[1], 'action_id'), ARGV[10])
redis.call('PUBLISH', ARGV[5], ARGV[6])
return redis.call('HMGET', KEYS[1], 'request', 'status', 'decided_by', 'decided_at')
"""
)

_APPROVAL_CLOSE = (
    _APPROVAL_KEEP
    + """
if redis.call('HGET', KEYS[1], 'status') ~= 'pending' then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[5])
retain(KEYS[1], ARGV[6])
keep_index(ARGV[7] .. redis.call('HGET', KEYS[1], 'action_id'), ARGV[8])
if ARGV[2] ~= '' then
    redis.call('HSET', KEYS[1], 'decision', ARGV[2])
    redis.call('PUBLISH', ARGV[3], ARGV[4])
end
return 1
"""
)

_APPROVAL_REMOVE = (
    _APPROVAL_KEEP
    + """
local action = redis.call('HGET', KEYS[1], 'action_id')
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
if action then keep_index(ARGV[3] .. action, ARGV[4]) end -- drops the id, gone now
return 0
"""
)

# The requests that versions before retention closed have no expiry. Every one of those
# versions listed each request it made in the creation-ordered index ``approvals`` (KEYS[1],
# score: the request's sequence number), so that index is exactly where to look: no SCAN of
# the keyspace (whose cost grows with every key of the database, and which a cluster needs
# node by node), and it shares the prefix's slot. One batch: up to ARGV[5] ids scored above
# ARGV[4] ('-inf', then '(' .. the last score returned); a closed request without expiry
# starts its period now (ARGV[1], ms), as after any change, and its action's index follows
# (ARGV[2], ARGV[3]: the prefixes of the action indexes and of the hashes); an id whose
# request is closed or gone leaves the index; a pending one stays listed, since an older
# version may still close it without an expiry (the next open looks again). Returns the
# batch's last score, or false after the last batch.
_APPROVAL_LEGACY = (
    _APPROVAL_KEEP
    + """
local batch = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[4], '+inf', 'WITHSCORES', 'LIMIT', 0,
    ARGV[5])
local actions = {}
for i = 1, #batch, 2 do
    local hash = ARGV[3] .. batch[i]
    local status = redis.call('HGET', hash, 'status')
    if status ~= 'pending' then
        if status and redis.call('PTTL', hash) == -1 then
            retain(hash, ARGV[1])
            local action = redis.call('HGET', hash, 'action_id')
            if action then actions[action] = true end
        end
        redis.call('ZREM', KEYS[1], batch[i])
    end
end
for action in pairs(actions) do keep_index(ARGV[2] .. action, ARGV[3]) end
if #batch < 2 * tonumber(ARGV[5]) then return false end
return batch[#batch]
"""
)

_LEGACY_BATCH = 250
"""Ids per script of the sweep at open: a script holds the server while it runs (500 closed
requests, each of an action of its own, took 4 ms on a loaded 2-core machine), and the
sweep sends one after another until the index is done."""


class RedisApprovalBackend:
    """An :class:`~stageflow_trio.tools.approval.ApprovalBackend` in Redis.

    One hash per request, an index per action, and one of the pending
    requests. A decision (or a cancellation) is published, and every
    process's waiters wake at once. Requests come back as copies: a caller
    holding one does not see later changes (read it again).

    A PENDING request is kept until it is closed or removed. A closed one
    (approved, denied, expired or cancelled) is forgotten ``retention_seconds``
    after its last change: the script that makes the change sets its hash's
    expiry (``PEXPIRE``), so Redis removes it for every process at once, with no
    scan; a later change starts the period again, with the retention of the
    process that makes it. An action's index lives as long as its longest-kept
    request. Unlike the in-memory backend, a request is not kept longer for a
    waiter (another process's waiters cannot be seen): keep the period well
    above the time a waiter takes to read a decision, or it may miss one (and
    then waits until its timeout). A request closed by a version before
    retention has no expiry: :func:`open_redis_stores` gives it one as it opens
    (:meth:`_expire_legacy`), counting from then.

    Args:
        backend: The connected client.
        retention_seconds: How long a closed request stays readable after its
            last change (3600 s; ``math.inf`` keeps every request until
            :meth:`remove`). Time is Redis's own clock, as for every expiry of
            these stores; it counts whole milliseconds, 1 at least (so 0 forgets
            a request 1 ms after it closes), and a period of 2**62 ms or more is
            for ever.

    Raises:
        TypeError, ValueError: ``retention_seconds`` is not a number >= 0.
    """

    def __init__(
        self,
        backend: RedisBackend,
        *,
        retention_seconds: float = DEFAULT_APPROVAL_RETENTION_SECONDS,
    ) -> None:
        self._retention: float = check_seconds(
            "RedisApprovalBackend", "retention_seconds", retention_seconds
        )
        # Rounded up: a request is never forgotten before its period is over.
        px = _milliseconds(self._retention, math.ceil)
        self._px = "" if px is None else str(px)
        self._backend = backend
        self._client = backend.client

    @property
    def retention_seconds(self) -> float:
        """How long a closed request is kept after its last change."""
        return self._retention

    def _keep_args(self) -> list[str]:
        """The end of a changing script's ARGV: the expiry of a closed request, the prefix
        of the action indexes and that of the requests' hashes."""
        return [self._px, self._backend.key("approvals", "action", ""), self._key("")]

    def _key(self, request_id: UUID | str) -> str:
        return self._backend.key("approval", str(request_id))

    async def _eval(self, method: str, script: str, keys: list[str], args: list[str]) -> Any:
        return await self._backend.call(
            f"RedisApprovalBackend.{method}", self._client.eval(script, keys=keys, args=args)
        )

    @staticmethod
    def _request(fields: list[Any]) -> ApprovalRequest:
        request_text, status, decided_by, decided_at = fields
        request = request_from_json(request_text)
        request.status = ApprovalStatus(_text(status))
        request.decided_by = UUID(_text(decided_by)) if decided_by else None
        request.decided_at = _text(decided_at) if decided_at else None
        return request

    async def add(self, request: ApprovalRequest) -> None:
        """Store a new request (a closed one starts its retention period). A checkpoint."""
        key = self._backend.key
        await self._eval(
            "add",
            _APPROVAL_ADD,
            [
                self._key(request.id),
                key("approvals", "seq"),
                key("approvals", "action", str(request.action_id)),
                key("approvals", "pending"),
            ],
            [
                request_to_json(request),
                request.status.value,
                str(request.id),
                str(request.action_id),
                *self._keep_args(),
            ],
        )

    async def _expire_legacy(self) -> int:
        """Start the retention period of the closed requests that versions before retention
        left without an expiry; return how many batches it took. A checkpoint.

        Run at open, as the SQLite stores stamp such rows as they open: the cost is one
        round trip once the old versions' index is empty (Redis then holds no such key),
        and one per :data:`_LEGACY_BATCH` requests the first time. Not on a read (the
        requests left behind are the ones nobody reads, and a read would need a second
        round trip or a script), nor in :meth:`remove` (``ApprovalService.cleanup``, which
        the executor never calls). Any number of processes may sweep at once: each batch
        is one script, which expires only a request that still has no expiry and removes
        the ids it is done with. With ``retention_seconds`` infinite, there is nothing to
        do: those requests are kept.
        """
        if not self._px:
            await trio.lowlevel.checkpoint()
            return 0
        batches, after = 0, "-inf"
        while True:
            last = await self._eval(
                "_expire_legacy",
                _APPROVAL_LEGACY,
                [self._backend.key("approvals")],
                [*self._keep_args(), after, str(_LEGACY_BATCH)],
            )
            batches += 1
            if last is None:
                return batches
            after = "(" + _text(last)

    async def get(self, request_id: UUID) -> ApprovalRequest | None:
        """The request, or None. A checkpoint."""
        fields = await self._backend.call(
            "RedisApprovalBackend.get",
            self._client.hmget(self._key(request_id), list(_APPROVAL_FIELDS)),
        )
        return None if fields[0] is None else self._request(list(fields))

    async def latest_for_action(self, action_id: UUID) -> ApprovalRequest | None:
        """The newest request for the action, or None. A checkpoint."""
        fields = await self._eval(
            "latest_for_action",
            _APPROVAL_LATEST,
            [self._backend.key("approvals", "action", str(action_id))],
            [self._key("")],
        )
        return None if not fields or fields[0] is None else self._request(list(fields))

    async def pending(self, pipeline_run_id: UUID | None = None) -> list[ApprovalRequest]:
        """The PENDING requests (of the run, when given), oldest first. A checkpoint."""
        flat = await self._eval(
            "pending",
            _APPROVAL_PENDING,
            [self._backend.key("approvals", "pending")],
            [self._key("")],
        )
        requests = [self._request(list(flat[i : i + 4])) for i in range(0, len(flat), 4)]
        return [
            request
            for request in requests
            if pipeline_run_id is None or request.pipeline_run_id == pipeline_run_id
        ]

    async def decide(self, decision: ApprovalDecision, decided_at: str) -> ApprovalRequest | None:
        """Record ``decision`` (whatever the status) and publish it; None if unknown."""
        status = ApprovalStatus.APPROVED if decision.granted else ApprovalStatus.DENIED
        request_id = str(decision.request_id)
        fields = await self._eval(
            "decide",
            _APPROVAL_DECIDE,
            [self._key(request_id), self._backend.key("approvals", "pending")],
            [
                status.value,
                "" if decision.decided_by is None else str(decision.decided_by),
                decided_at,
                decision_to_json(decision),
                self._backend.channel,
                "approval:" + request_id,
                request_id,
                *self._keep_args(),
            ],
        )
        return None if not fields else self._request(list(fields))

    async def close_pending(
        self, request_id: UUID, status: ApprovalStatus, decision: ApprovalDecision | None
    ) -> bool:
        """A PENDING request becomes ``status``; with ``decision``, its waiters get it."""
        closed = await self._eval(
            "close_pending",
            _APPROVAL_CLOSE,
            [self._key(request_id), self._backend.key("approvals", "pending")],
            [
                status.value,
                "" if decision is None else decision_to_json(decision),
                self._backend.channel,
                f"approval:{request_id}",
                str(request_id),
                *self._keep_args(),
            ],
        )
        return bool(closed)

    async def decision(self, request_id: UUID) -> ApprovalDecision | None:
        """The recorded decision, or None. A checkpoint."""
        text = await self._backend.call(
            "RedisApprovalBackend.decision", self._client.hget(self._key(request_id), "decision")
        )
        return None if text is None else decision_from_json(text)

    async def wait_decision(self, request_id: UUID) -> ApprovalDecision | None:
        """Wait until the request has a decision and return it (never None here)."""
        topic = f"approval:{request_id}"
        wakeups = self._backend.wakeups
        while True:
            with wakeups.watch(topic) as event:
                decision = await self.decision(request_id)
                if decision is not None:
                    return decision
                with trio.move_on_after(self._backend.resync_interval):
                    await event.wait()

    async def remove(self, request_id: UUID) -> None:
        """Forget the request and its decision (no error if unknown). A checkpoint."""
        key = self._backend.key
        await self._eval(
            "remove",
            _APPROVAL_REMOVE,
            [self._key(request_id), key("approvals"), key("approvals", "pending")],
            [str(request_id), *self._keep_args()],
        )


# The index lists every entry written, and Redis expires an entry's key without touching
# it: after as many puts as the index held at the last sweep (at least 64), a put prunes
# the ids whose key is gone, as the in-memory backend sweeps. O(1) amortized per put.
_UNDO_PUT = """
if not redis.call('ZSCORE', KEYS[2], ARGV[3]) then
    redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[3]), ARGV[3])
end
if ARGV[2] == '' then redis.call('SET', KEYS[1], ARGV[1])
else redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end
if redis.call('DECR', KEYS[4]) <= 0 then
    for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
        if redis.call('EXISTS', ARGV[4] .. id) == 0 then redis.call('ZREM', KEYS[2], id) end
    end
    redis.call('SET', KEYS[4], math.max(redis.call('ZCARD', KEYS[2]), tonumber(ARGV[5])))
end
return 0
"""

_UNDO_SWEEP_MIN_PUTS = 64

_UNDO_GET = """
local value = redis.call('GET', KEYS[1])
if not value then redis.call('ZREM', KEYS[2], ARGV[1]) end
return value
"""

_UNDO_DELETE = """
redis.call('ZREM', KEYS[2], ARGV[1])
return redis.call('DEL', KEYS[1])
"""

_UNDO_SWEEP = """
local live, gone = {}, 0
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    local value = redis.call('GET', ARGV[1] .. id)
    if value then table.insert(live, value)
    else redis.call('ZREM', KEYS[1], id) gone = gone + 1 end
end
if ARGV[2] == 'count' then return gone end
return live
"""


class RedisUndoBackend:
    """An :class:`~stageflow_trio.tools.undo.UndoBackend` in Redis.

    Each entry is a key with Redis's own ``PX`` expiry, listed in a
    write-ordered index that the reads prune of the keys Redis expired.
    :meth:`cleanup_expired` counts the entries it prunes that way. Writes prune
    it too, after as many puts as it held at the last prune (at least 64), so
    the index stays near the live entries when nothing reads it (the executor
    reads undo data only to undo).
    """

    def __init__(self, backend: RedisBackend) -> None:
        self._backend = backend
        self._client = backend.client

    def _keys(self, action_id: UUID) -> list[str]:
        return [self._backend.key("undo", str(action_id)), self._backend.key("undos")]

    async def _eval(self, method: str, script: str, keys: list[str], args: list[str]) -> Any:
        return await self._backend.call(
            f"RedisUndoBackend.{method}", self._client.eval(script, keys=keys, args=args)
        )

    async def put(self, metadata: UndoMetadata, ttl_seconds: float) -> None:
        """Store ``metadata`` for ``ttl_seconds`` (``math.inf``: until deleted). A checkpoint.

        Redis counts whole milliseconds (1 at least); a time of 2**62 ms or more is
        kept until deleted (Redis refuses an expiry that far).
        """
        ms = _milliseconds(ttl_seconds, round)
        px = "" if ms is None else str(ms)
        await self._eval(
            "put",
            _UNDO_PUT,
            [
                *self._keys(metadata.action_id),
                self._backend.key("undos", "seq"),
                self._backend.key("undos", "sweep"),
            ],
            [
                undo_to_json(metadata),
                px,
                str(metadata.action_id),
                self._backend.key("undo", ""),
                str(_UNDO_SWEEP_MIN_PUTS),
            ],
        )

    async def get(self, action_id: UUID) -> UndoMetadata | None:
        """The live metadata, or None. A checkpoint."""
        text = await self._eval("get", _UNDO_GET, self._keys(action_id), [str(action_id)])
        return None if text is None else undo_from_json(text)

    async def delete(self, action_id: UUID) -> bool:
        """Remove the entry; True if there was one. A checkpoint."""
        removed = await self._eval("delete", _UNDO_DELETE, self._keys(action_id), [str(action_id)])
        return bool(removed)

    async def _sweep(self, method: str, what: str) -> Any:
        return await self._eval(
            method,
            _UNDO_SWEEP,
            [self._backend.key("undos")],
            [self._backend.key("undo", ""), what],
        )

    async def cleanup_expired(self) -> int:
        """Prune the index of the entries Redis expired; return how many. A checkpoint."""
        return int(await self._sweep("cleanup_expired", "count"))

    async def get_all(self) -> list[UndoMetadata]:
        """Every live entry's metadata, oldest stored first. A checkpoint."""
        return [undo_from_json(text) for text in await self._sweep("get_all", "live")]
