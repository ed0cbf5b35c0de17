"""What the SQLite and Redis stores share: the configuration error, argument checks, JSON
forms, local wake-ups."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import UUID

import attrs
import trio

from stageflow_trio._args import causes, error_text
from stageflow_trio._frozen import frozen_compat
from stageflow_trio.helpers.memory import MemoryEntry, MemoryStore
from stageflow_trio.pipeline.idempotency import (
    CachedStageResult,
    IdempotencyClaim,
    IdempotencyStore,
    _check_claim,
    _check_entry,
    _check_key,
    _check_ttl,
)
from stageflow_trio.stages.result import StageResult
from stageflow_trio.tools.approval import (
    ApprovalBackend,
    ApprovalDecision,
    ApprovalRequest,
    ApprovalService,
    ApprovalStatus,
)
from stageflow_trio.tools.definitions import UndoMetadata
from stageflow_trio.tools.undo import UndoBackend, UndoStore

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

logger: logging.Logger = logging.getLogger("stageflow_trio.stores")

STORE_URL_ENV = "STAGEFLOW_STORE_URL"
"""The environment variable :func:`stageflow_trio.stores.open_stores` reads when given no URL."""

REDIS_SCHEMES = (
    "redis",
    "rediss",
    "redis+cluster",
    "rediss+cluster",
    "redis+sentinel",
    "rediss+sentinel",
)
"""The URL schemes of the Redis stores: one server, a Redis Cluster, Sentinel (``rediss``: TLS)."""

DEFAULT_CLAIM_LEASE_SECONDS = 30.0
DEFAULT_POLL_INTERVAL_SECONDS = 0.05
DEFAULT_APPROVAL_RETENTION_SECONDS = 3600.0
"""How long a shared approval backend keeps a closed request, as the in-memory one."""


class StoreConfigError(ValueError):
    """A store could not be opened as configured (malformed URL, unreachable server, unwritable path).

    Raised by the async open step, never by a later request. The message
    names the setting (``url``, ``path`` or :data:`STORE_URL_ENV`) and its value.

    Attributes:
        setting: The name of the setting at fault.
    """

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting

    def __reduce__(self) -> tuple[Any, ...]:
        text = str(self.args[0]) if self.args else ""
        return (type(self), (self.setting, text.removeprefix(f"{self.setting}: ")), self.__dict__)


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# A host list as in a store URL's authority: host[:port][,host[:port]...], IPv6 in brackets.
_HOST = r"(?:\[[^\]]*\]|[^:,\[\]@]*)(?::[0-9]*)?"
_HOSTS = re.compile(rf"{_HOST}(?:,{_HOST})*")
# A credential given as a query parameter (?password=..., &token=...).
_QUERY_SECRET = re.compile(
    r"([?&;](?:password|passwd|pass|pwd|secret|token|auth|api_key|apikey|access_key)=)[^&;#]*",
    re.IGNORECASE,
)


def _credentials_end(rest: str) -> int:
    """Where the ``user:password`` before the host ends in ``rest`` (the URL after its
    scheme): the index of its ``@``, or -1 when the URL has no password to hide."""
    at = rest.rfind("@")
    if at < 0:
        return -1
    # The authority as urlsplit reads it: up to the first "/", "?" or "#".
    end = next((i for i, char in enumerate(rest) if char in "/?#"), len(rest))
    if at < end:
        # Well formed: the password runs to the last "@" of the authority, even one
        # written unencoded.
        credentials_end = rest.rfind("@", 0, end)
    else:
        # An "@" only after the authority: either a password holding an unencoded "/",
        # "?" or "#", or an "@" in the query ("?client_name=a@b"). The latter leaves a
        # plain host list before the first "/", "?" or "#", and a "?" before the "@".
        # (An "@" in the path is taken for the end of a password: over-redacted.)
        query = rest.find("?")
        if _HOSTS.fullmatch(rest[:end]) and 0 <= query < at:
            return -1
        credentials_end = at
    return credentials_end if ":" in rest[:credentials_end] else -1


RELEASE_BATCH = 256
"""The most claim releases a store's background task writes in one round trip."""


def _batch(
    first: IdempotencyClaim, receive: trio.MemoryReceiveChannel[IdempotencyClaim]
) -> list[IdempotencyClaim]:
    """``first`` and the releases queued after it, up to :data:`RELEASE_BATCH`."""
    batch = [first]
    while len(batch) < RELEASE_BATCH:
        try:
            batch.append(receive.receive_nowait())
        except (trio.WouldBlock, trio.EndOfChannel):
            break
    return batch


async def serve_releases(
    receive: trio.MemoryReceiveChannel[IdempotencyClaim],
    write: Callable[[list[IdempotencyClaim]], Awaitable[None]],
    drain_seconds: float,
    unwritten: Callable[[list[IdempotencyClaim]], None] | None = None,
) -> None:
    """Write the claim releases ``receive`` brings, in order, until the store closes it.

    The releases queued meanwhile are written together (up to :data:`RELEASE_BATCH`
    in one ``write``): one writer keeps up with many tasks claiming at once.

    Cancelled (the stores' block is), the cleanup of that block still releases
    claims: the releases cancelled on their way and those queued until the block
    closes the store are written, shielded and within ``drain_seconds``, before
    the cancellation goes on (a release is idempotent, so writing one twice is
    harmless). When ``drain_seconds`` runs out first (a server that stopped
    answering), ``unwritten`` is called with the releases not written (the batch cut
    included), so that they are not dropped silently.
    """
    writing: list[IdempotencyClaim] = []
    try:
        async for claim in receive:
            writing = _batch(claim, receive)
            await write(writing)
            writing = []
    except trio.Cancelled:
        with trio.CancelScope(shield=True), trio.move_on_after(drain_seconds) as drain:
            if writing:
                await write(writing)
                writing = []
            async for claim in receive:
                writing = _batch(claim, receive)
                await write(writing)
                writing = []
        if drain.cancelled_caught and unwritten is not None:
            while True:
                try:
                    writing.append(receive.receive_nowait())
                except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                    break
            if writing:
                unwritten(writing)
        raise


def describe_error(error: BaseException) -> str:
    """``Type: text`` of ``error`` and of its causes (``raise ... from``), on one line.

    For the warnings of the stores' background work: a store error's traceback (the
    client's internals) tells an operator nothing its text does not, and the exception
    it was raised while handling (``__context__``: a ``Cancelled`` being drained, the
    failed claim's own error) is not its cause.
    """
    parts: list[str] = []
    for current in causes(error, 5):
        text = error_text(current)
        parts.append(f"{type(current).__name__}: {text}" if text else type(current).__name__)
    return ", from ".join(parts)


def log_unreleased(
    claims: list[IdempotencyClaim],
    error: BaseException,
    lease_seconds: float,
    *,
    retrying: bool = False,
) -> None:
    """Log the releases that ``error`` kept from being written: one warning, no traceback,
    naming the keys, the error (with its causes) and the lease that frees the keys
    (``lease_seconds`` at most: nothing renews a claim once released); ``retrying``: the
    store's background task writes them again."""
    then = "trying again in the background; " if retrying else ""
    if len(claims) == 1:
        logger.warning(
            "could not release claim %r (%s); %sits lease frees the key within %g s",
            claims[0].key,
            describe_error(error),
            then,
            lease_seconds,
        )
    else:
        logger.warning(
            "could not release %d claims %r (%s); %stheir leases free the keys within %g s",
            len(claims),
            [claim.key for claim in claims],
            describe_error(error),
            then,
            lease_seconds,
        )


def log_unrenewed(claims: list[IdempotencyClaim], error: BaseException, every: float) -> None:
    """Log the lease renewal that ``error`` failed: one warning, no traceback (as
    :func:`log_unreleased`)."""
    logger.warning(
        "could not renew %d claims (%s); trying again in %g s",
        len(claims),
        describe_error(error),
        every,
    )


class ClaimingStore:
    """What the SQLite and Redis idempotency stores share: the claims this process holds,
    and the background task that renews their leases and writes their releases.

    :meth:`release` queues the release for that task (it must not block). The task
    (:meth:`_serve`, which the stores' opener starts) runs the store's periodic work
    (:meth:`_periodic`: the renewals, ...) and writes the releases until :meth:`_close`.
    It is shielded from the cancellation of the stores' block until the block's body has
    ended (:meth:`_close` lifts the shield): a graceful shutdown cancels the block while
    its body finishes the requests in flight under a shield, and the claims that work
    holds must keep their lease (past one, another worker would be granted the key and
    run the stage again) and have their releases written. After :meth:`_close` a
    cancelled task writes what is queued within :attr:`_DRAIN_SECONDS` (shielded, see
    :func:`serve_releases`); :attr:`_drained` is set when the task has ended.

    Ctrl-C. The subclasses' ``claim`` and :meth:`release` are protected from it
    (``trio.lowlevel.enable_ki_protection``): trio raises a KeyboardInterrupt coming
    while they run in the main task, at its next checkpoint, so it never lands
    between the claim's write and ``claim`` returning it, nor between :meth:`release`
    forgetting a claim and queueing its release. A caller of ``claim`` that keeps the
    claim protects its own bookkeeping up to the ``try``/``finally`` that releases it,
    as :class:`~stageflow_trio.pipeline.idempotency.IdempotencyInterceptor` does.

    Subclasses set :attr:`_OWNER` (their name in error messages) and
    :attr:`_DRAIN_SECONDS`, and define :meth:`_periodic`, :meth:`_write_release` and
    :meth:`_lease_seconds`.
    """

    _OWNER: ClassVar[str]
    _DRAIN_SECONDS: ClassVar[float]

    def __init__(self) -> None:
        self._held: dict[str, IdempotencyClaim] = {}  # token -> claim
        self._send, self._receive = trio.open_memory_channel[IdempotencyClaim](math.inf)
        # Shields the background task from the stores' block's cancellation until the
        # block's body has ended (see _serve); _close lifts it.
        self._serving = trio.CancelScope(shield=True)
        self._drained = trio.Event()

    @trio.lowlevel.enable_ki_protection  # between forgetting the claim and queueing it
    def release(self, claim: IdempotencyClaim) -> None:
        """See :meth:`IdempotencyStore.release`: queued for the background task, no I/O here.

        Raises:
            TypeError: ``claim`` is not an IdempotencyClaim.
        """
        check_claim(f"{self._OWNER}.release", claim)
        if self._held.pop(claim.token, None) is None:
            return
        self._queue_release(claim)

    def _queue_release(self, claim: IdempotencyClaim) -> None:
        # A closed store (or one whose background task is gone): the lease frees the key.
        with contextlib.suppress(trio.ClosedResourceError, trio.BrokenResourceError):
            self._send.send_nowait(claim)

    @trio.lowlevel.enable_ki_protection
    def _close(self) -> None:
        # Protected from a Ctrl-C: closed but still shielded, the task would wait for ever.
        self._send.close()
        # The body has ended: a cancellation of the block may reach the task now, and
        # its drain (bounded) writes what is still queued.
        self._serving.shield = False

    async def _serve(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        try:
            task_status.started()
            # A Ctrl-C (or a cancellation) reaching the opener while this task starts
            # cancels start()'s nursery: started() then leaves this task there, and a
            # drain would wait (shielded) for a channel nobody can close yet. No claim
            # exists so far, so there is nothing to drain: end here, with a plain
            # Cancelled. (Not cancelled here, the task was moved: the check and the move
            # happen in one step.)
            await trio.lowlevel.checkpoint_if_cancelled()
            with self._serving:
                async with trio.open_nursery() as nursery:
                    for periodic in self._periodic():
                        nursery.start_soon(periodic)
                    async with self._receive:
                        await serve_releases(
                            self._receive,
                            self._write_release,
                            self._DRAIN_SECONDS,
                            self._log_undrained,
                        )
                    nursery.cancel_scope.cancel()
        finally:
            self._drained.set()

    def _periodic(self) -> list[Callable[[], Awaitable[None]]]:
        """The store's periodic work, run beside the releases (the lease renewals...)."""
        raise NotImplementedError

    def _lease_seconds(self) -> float:
        """How long a claim's lease lasts (the most a claim not released blocks its key)."""
        raise NotImplementedError

    def _log_undrained(self, claims: list[IdempotencyClaim]) -> None:
        """Log the releases the closing store could not write within :attr:`_DRAIN_SECONDS`."""
        logger.warning(
            "%s closed with %d claim releases not written within %g s %r; "
            "their leases free the keys within %g s",
            self._OWNER,
            len(claims),
            self._DRAIN_SECONDS,
            [claim.key for claim in claims],
            self._lease_seconds(),
        )

    async def _write_release(self, claims: list[IdempotencyClaim]) -> None:
        """Delete each claim if it still holds its key, and wake the waiters; never raises
        for a store error (logged: the lease frees the keys)."""
        raise NotImplementedError


def redacted(url: str) -> str:
    """``url`` with its password shown as ``***``, for messages and reprs.

    Also for a URL too malformed to split: the password is everything between
    the user's ``:`` and the ``@`` before the host, so one holding an unencoded
    ``@``, ``/``, ``?`` or ``#`` is hidden whole. The values of credential-like
    query parameters (``password``, ``token``, ``secret``, ``auth``,
    ``api_key``...) are shown as ``***`` too.
    """
    scheme = _SCHEME.match(url)
    if scheme is not None:
        rest = url[scheme.end() :]
        at = _credentials_end(rest)
        if at >= 0:
            user = rest[:at].partition(":")[0]
            url = f"{scheme.group()}{user}:***{rest[at:]}"
    return _QUERY_SECRET.sub(r"\1***", url)


# The argument checks every idempotency store shares (the in-memory one included).
check_entry = _check_entry


def check_key(owner: str, key: object) -> str:
    """Return ``key`` if it is a str a durable store can hold: UTF-8 encodable.

    Raises:
        TypeError: ``key`` is not a str.
        ValueError: ``key`` holds a lone surrogate (``"\\ud800"``), which neither
            SQLite nor Redis can store (it was a bare UnicodeEncodeError from the
            store's worker thread; the in-memory store takes such a key).
    """
    text = _check_key(owner, key)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(
                f"{owner}: key must be encodable as UTF-8; it holds {text[exc.start]!r} "
                f"at index {exc.start}"
            ) from None
    return text


check_claim = _check_claim


def time_to_live(owner: str, ttl_seconds: object) -> float | None:
    """The lifetime ``set`` gives an entry, read as the reference's in-memory store reads it.

    None and 0 mean no expiry; otherwise an entry has expired once
    ``stored_at + ttl_seconds <= now``: so ``math.inf`` and NaN never expire (None is
    returned), and a negative time has expired already (returned as it is). The
    interceptor itself refuses a negative or NaN ``ttl_seconds`` at construction.

    Raises:
        TypeError: ``ttl_seconds`` is not an int, a float or None (a bool included).
    """
    ttl = _check_ttl(owner, ttl_seconds)
    if not ttl or math.isnan(ttl) or ttl == math.inf:
        return None
    return float(ttl)


def entry_to_json(entry: CachedStageResult) -> str:
    """A cached result as JSON (its data must be JSON-serializable)."""
    result = entry.result
    return json.dumps(
        {
            "name": result.name,
            "status": result.status,
            "started_at": result.started_at.isoformat(),
            "ended_at": result.ended_at.isoformat(),
            "data": dict(result.data),
            "error": result.error,
            "params_hash": entry.params_hash,
        },
        separators=(",", ":"),
    )


def entry_from_json(text: str | bytes, expires_at: float | None) -> CachedStageResult:
    """The inverse of :func:`entry_to_json`; ``expires_at`` as the store tells it."""
    raw: dict[str, Any] = json.loads(text)
    result = StageResult(
        name=raw["name"],
        status=raw["status"],
        started_at=datetime.fromisoformat(raw["started_at"]),
        ended_at=datetime.fromisoformat(raw["ended_at"]),
        data=raw["data"],
        error=raw["error"],
    )
    return CachedStageResult(result=result, params_hash=raw["params_hash"], expires_at=expires_at)


def memory_to_json(entry: MemoryEntry) -> str:
    """A memory entry as JSON (its metadata must be JSON-serializable)."""
    return json.dumps(entry.to_dict(), separators=(",", ":"))


def memory_from_json(text: str | bytes) -> MemoryEntry:
    """The inverse of :func:`memory_to_json`."""
    return MemoryEntry.from_dict(json.loads(text))


class _Watched:
    __slots__ = ("event", "watchers")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.watchers = 0


class Wakeups:
    """Per-key events that wake this process's waiters when something changes.

    A waiter enters :meth:`watch` *before* it looks at the shared state, then
    waits on the event it got: a change made after the look-up sets it, so no
    wake-up is lost. :meth:`wake` sets the key's event and forgets it; later
    watchers get a fresh one. An event is dropped when its last watcher leaves.
    Synchronous, no checkpoint.
    """

    __slots__ = ("_events",)

    def __init__(self) -> None:
        self._events: dict[str, _Watched] = {}

    @contextlib.contextmanager
    def watch(self, key: str) -> Iterator[trio.Event]:
        watched = self._events.get(key)
        if watched is None:
            watched = self._events[key] = _Watched()
        watched.watchers += 1
        try:
            yield watched.event
        finally:
            watched.watchers -= 1
            if not watched.watchers and self._events.get(key) is watched:
                del self._events[key]

    def wake(self, key: str) -> None:
        watched = self._events.pop(key, None)
        if watched is not None:
            watched.event.set()

    def wake_all(self) -> None:
        """Wake every waiter: each looks at the shared state again."""
        events, self._events = self._events, {}
        for watched in events.values():
            watched.event.set()


@frozen_compat
@attrs.frozen
class Stores:
    """The stores of one backend, opened together by :func:`~stageflow_trio.stores.open_stores`.

    Attributes:
        url: The backend's URL (``memory://``, ``sqlite:///path``, ``redis://host:port/db``),
            as given; the ``repr`` shows its password as ``***``.
        idempotency: Cached stage results and in-flight claims.
        memory: Conversation memory.
        approvals: Approval requests and decisions (behind an ApprovalService).
        undo: Undo metadata (behind an UndoStore).
    """

    # A repr ends up in logs and tracebacks: never with the password.
    url: str = attrs.field(repr=lambda url: repr(redacted(url)))
    idempotency: IdempotencyStore
    memory: MemoryStore
    approvals: ApprovalBackend
    undo: UndoBackend

    def approval_service(self, default_timeout_seconds: float = 60.0) -> ApprovalService:
        """An :class:`~stageflow_trio.tools.approval.ApprovalService` over :attr:`approvals`."""
        return ApprovalService(default_timeout_seconds, backend=self.approvals)

    def undo_store(self, default_ttl_seconds: float = 3600.0) -> UndoStore:
        """An :class:`~stageflow_trio.tools.undo.UndoStore` over :attr:`undo`."""
        return UndoStore(default_ttl_seconds, backend=self.undo)


def _uuid(value: str | None) -> UUID | None:
    return None if value is None else UUID(value)


def request_to_json(request: ApprovalRequest) -> str:
    """An approval request as JSON (its payload summary must be JSON-serializable)."""
    return json.dumps(request.to_dict(), separators=(",", ":"))


def request_from_json(text: str | bytes) -> ApprovalRequest:
    """The inverse of :func:`request_to_json`."""
    raw: dict[str, Any] = json.loads(text)
    return ApprovalRequest(
        id=UUID(raw["id"]),
        action_id=UUID(raw["action_id"]),
        tool_name=raw["tool_name"],
        pipeline_run_id=_uuid(raw["pipeline_run_id"]),
        approval_message=raw["approval_message"],
        status=ApprovalStatus(raw["status"]),
        decided_by=_uuid(raw["decided_by"]),
        decided_at=raw["decided_at"],
        created_at=raw["created_at"],
        payload_summary=raw["payload_summary"],
    )


def decision_to_json(decision: ApprovalDecision) -> str:
    return json.dumps(decision.to_dict(), separators=(",", ":"))


def decision_from_json(text: str | bytes) -> ApprovalDecision:
    raw: dict[str, Any] = json.loads(text)
    request_id = _uuid(raw["request_id"])
    assert request_id is not None
    return ApprovalDecision(
        request_id=request_id,
        granted=raw["granted"],
        decided_by=_uuid(raw["decided_by"]),
        reason=raw["reason"],
    )


def decided(request: ApprovalRequest, decision: ApprovalDecision, decided_at: str) -> None:
    """Apply ``decision`` to ``request`` in place, as :meth:`ApprovalService.record_decision` does."""
    request.status = ApprovalStatus.APPROVED if decision.granted else ApprovalStatus.DENIED
    request.decided_by = decision.decided_by
    request.decided_at = decided_at


def undo_to_json(metadata: UndoMetadata) -> str:
    """Undo metadata as JSON (its undo data must be JSON-serializable)."""
    return json.dumps(metadata.to_dict(), separators=(",", ":"))


def undo_from_json(text: str | bytes) -> UndoMetadata:
    return UndoMetadata.from_dict(json.loads(text))
