"""SQLite stores: durable, shared by the worker processes of one machine.

:func:`open_sqlite_stores` opens (creating if needed) one database file and
yields a :class:`~stageflow_trio.stores.Stores` whose stores all live in it.

- The file is in WAL mode with ``synchronous=NORMAL``: a committed write
  survives the death of its process, though a power loss may lose the last
  few; readers do not block the writer, and several processes can use it at once; a writer waits up to ``busy_timeout`` (5 s) for
  another process's write transaction.
- Every statement runs in a worker thread (``trio.to_thread.run_sync``), one
  at a time per opened database: the trio loop never blocks on the disk.
- The schema is versioned (``PRAGMA user_version``): a new file gets the
  current schema; a file written by a newer version of this library is refused
  at open.
- Times to live are wall-clock (``clock``, :func:`time.time` by default; inject
  one in tests), since the file outlives the process and is shared with others.
- SQLite cannot notify another process. A waiter (a duplicate idempotency
  claim, an approval waiting for its decision) is woken at once by a change
  made through the same opened database, and otherwise finds a change made by
  another process by polling every ``poll_interval`` seconds (50 ms by
  default).
- An idempotency claim has a lease (``claim_lease_seconds``, 30 s by
  default), renewed every third of it while this process holds the claim:
  a process that dies holding one blocks its key for at most one lease.
- Expired idempotency results and claims are deleted by the store's background
  task every :data:`PURGE_INTERVAL_SECONDS` (60 s), through an index on their
  expiry, so that the file does not keep one row per key ever used.
- A closed approval request is deleted by the first ``add`` more than
  ``approval_retention_seconds`` (an hour) after its last change, through an
  index on the time of that change; a pending one is kept.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import sqlite3
import time
from contextlib import aclosing, asynccontextmanager
from typing import TYPE_CHECKING, TypeVar

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

from ._common import (
    DEFAULT_APPROVAL_RETENTION_SECONDS,
    DEFAULT_CLAIM_LEASE_SECONDS,
    DEFAULT_POLL_INTERVAL_SECONDS,
    ClaimingStore,
    StoreConfigError,
    Wakeups,
    check_entry,
    check_key,
    decided,
    decision_from_json,
    decision_to_json,
    entry_from_json,
    entry_to_json,
    log_unreleased,
    log_unrenewed,
    memory_from_json,
    memory_to_json,
    request_from_json,
    request_to_json,
    time_to_live,
    undo_from_json,
    undo_to_json,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable
    from uuid import UUID

    from stageflow_trio.tools.approval import ApprovalDecision, ApprovalRequest, ApprovalStatus
    from stageflow_trio.tools.definitions import UndoMetadata

    from ._common import Stores

__all__ = [
    "PURGE_INTERVAL_SECONDS",
    "SCHEMA_VERSION",
    "SqliteApprovalBackend",
    "SqliteDatabase",
    "SqliteIdempotencyStore",
    "SqliteMemoryStore",
    "SqliteUndoBackend",
    "open_sqlite_stores",
]

logger: logging.Logger = logging.getLogger("stageflow_trio.stores")

SCHEMA_VERSION = 1
"""The schema this version writes (``PRAGMA user_version``)."""

PURGE_INTERVAL_SECONDS = 60.0
"""How often (trio's clock) an opened store deletes the expired idempotency results and
claims and the expired undo entries: the reads already ignore them, but the file would
keep one row per key ever used and one per undoable action ever run."""

_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE idempotency_entries (
    key TEXT PRIMARY KEY, entry TEXT NOT NULL, expires_at REAL);
CREATE TABLE idempotency_claims (
    key TEXT PRIMARY KEY, token TEXT NOT NULL, expires_at REAL NOT NULL);
CREATE TABLE memory (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL, entry TEXT NOT NULL);
CREATE INDEX memory_by_session ON memory (session_id, seq);
CREATE TABLE approvals (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, action_id TEXT NOT NULL,
    pipeline_run_id TEXT, status TEXT NOT NULL, request TEXT NOT NULL, decision TEXT,
    closed_at REAL);
CREATE INDEX approvals_by_action ON approvals (action_id, seq);
CREATE INDEX IF NOT EXISTS approvals_by_closed_at ON approvals (closed_at);
CREATE INDEX IF NOT EXISTS idempotency_entries_by_expiry ON idempotency_entries (expires_at);
CREATE TABLE undo (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, action_id TEXT NOT NULL UNIQUE,
    metadata TEXT NOT NULL, expires_at REAL);
"""


class SqliteDatabase:
    """One opened SQLite file: a connection used from one worker thread at a time.

    Made by :func:`open_sqlite_stores`; its stores share it.

    Attributes:
        path: The file.
        clock: Wall-clock seconds, for expiry.
        poll_interval: How often a waiter looks for another process's change.
    """

    def __init__(
        self,
        connection: sqlite3.Connection,
        path: str,
        *,
        clock: Callable[[], float],
        poll_interval: float,
    ) -> None:
        self._connection = connection
        self._limiter = trio.CapacityLimiter(1)
        self.path: str = path
        self.clock: Callable[[], float] = clock
        self.poll_interval: float = poll_interval

    async def run(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``fn(connection)`` in a worker thread; one at a time. A checkpoint.

        Not abandoned when cancelled: a statement under way completes (so a
        transaction is never left half done), then ``Cancelled`` is raised at
        the caller's next checkpoint.
        """
        return await trio.to_thread.run_sync(fn, self._connection, limiter=self._limiter)

    async def execute(self, sql: str, parameters: tuple[object, ...] = ()) -> sqlite3.Cursor:
        """Run one statement in a worker thread (autocommit). A checkpoint."""
        return await self.run(lambda connection: connection.execute(sql, parameters))

    async def transaction(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``fn`` inside ``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back if it raises)."""

        return await self.run(lambda connection: _in_transaction(connection, fn))


def _purge(connection: sqlite3.Connection, *, now: float) -> None:
    # The same bounds the reads use: a result is live while expires_at > now, a claim too.
    connection.execute(
        "DELETE FROM idempotency_entries WHERE expires_at IS NOT NULL AND expires_at <= ?",
        (now,),
    )
    connection.execute("DELETE FROM idempotency_claims WHERE expires_at <= ?", (now,))
    # An undo entry is valid up to and including its expiry instant. The executor reads
    # undo data only to undo, so without this the file kept every action's entry.
    connection.execute("DELETE FROM undo WHERE expires_at IS NOT NULL AND expires_at < ?", (now,))


def _executemany(
    sql: str, rows: list[tuple[object, ...]], connection: sqlite3.Connection
) -> sqlite3.Cursor:
    return connection.executemany(sql, rows)


def _in_transaction(connection: sqlite3.Connection, fn: Callable[[sqlite3.Connection], _T]) -> _T:
    """``fn(connection)`` inside ``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back if it raises."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        value = fn(connection)
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
    return value


_EXPIRY_INDEX = (
    "CREATE INDEX IF NOT EXISTS idempotency_entries_by_expiry ON idempotency_entries (expires_at)"
)
"""Added to files of schema 1 made before it (the layout is unchanged: no new version)."""


_CLOSED_AT_INDEX = "CREATE INDEX IF NOT EXISTS approvals_by_closed_at ON approvals (closed_at)"


def _add_closed_at(connection: sqlite3.Connection) -> None:
    """Give a schema-1 file made before it the ``closed_at`` column of the approvals
    (when a request last changed, once closed) and its index.

    The layout stays readable and writable by the versions before (they name their
    columns), so the schema version is unchanged; the requests they close are stamped
    by :func:`_stamp_closed` at the next open.
    """
    columns = {row[1] for row in connection.execute("PRAGMA table_info(approvals)")}
    if "closed_at" not in columns:
        connection.execute("ALTER TABLE approvals ADD COLUMN closed_at REAL")
    connection.execute(_CLOSED_AT_INDEX)


def _stamp_closed(connection: sqlite3.Connection, *, now: float) -> None:
    """Start the retention period of the closed requests that have none (closed by a
    version before retention); the index on ``closed_at`` finds them."""
    connection.execute(
        "UPDATE approvals SET closed_at = ? WHERE closed_at IS NULL AND status != 'pending'",
        (now,),
    )


def _migrate(connection: sqlite3.Connection) -> int:
    """Create the schema in a new file; the file's schema version (before creating it)."""
    version: int = connection.execute("PRAGMA user_version").fetchone()[0]
    if version == 0:
        # One statement at a time: executescript would commit first.
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                connection.execute(statement)
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    elif version == SCHEMA_VERSION:
        connection.execute(_EXPIRY_INDEX)
        _add_closed_at(connection)
    return version


_BUSY_TIMEOUT_SECONDS = 5.0
"""How long a statement waits for another connection's lock (SQLite's ``busy_timeout``),
and how long opening a file tries again while SQLite refuses at once."""

_DRAIN_SECONDS = _BUSY_TIMEOUT_SECONDS
"""How long a cancelled store's background task goes on writing the releases queued
until the store closes (shielded)."""


def _while_locked(fn: Callable[[], _T]) -> _T:
    """``fn()``, tried again for up to 5 s while SQLite says the database is locked.

    Switching a new file to WAL mode, or reading a WAL file another process is creating,
    can fail with ``database is locked`` at once, without waiting ``busy_timeout``: two
    processes opening one new file together meet this. Runs in a worker thread.
    """
    deadline = time.monotonic() + _BUSY_TIMEOUT_SECONDS
    pause = 0.001
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def _prepare(connection: sqlite3.Connection) -> tuple[str, int]:
    """WAL mode and the schema: the journal mode SQLite reports, and the file's version."""
    mode: str = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    # In WAL mode: a commit survives the process's death (SIGKILL), and is synced to
    # disk at the next checkpoint; a power loss may lose the last transactions.
    connection.execute("PRAGMA synchronous = NORMAL")
    return mode, _in_transaction(connection, _migrate)


_FILE_MODE = 0o600
"""The permissions a new database file gets: its owner's only (SQLite would make it 0644
less the umask, readable by every local user; the file holds stage results, conversation
memory, approvals and undo data). SQLite gives its ``-wal`` and ``-shm`` files the
database file's permissions. An existing file keeps its own."""


def _create_private(path: str) -> None:
    """Create ``path`` empty with :data:`_FILE_MODE` if nothing is there; runs in a thread.

    ``O_EXCL`` fails on anything already there, a symlink included (it is not
    followed): that file, and any other error, is left to ``sqlite3.connect``.
    """
    if path == ":memory:":
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
    except OSError:
        return
    os.close(fd)


def _connect(path: str, setting: str) -> sqlite3.Connection:
    _create_private(path)
    try:
        connection = sqlite3.connect(
            # timeout= is SQLite's busy_timeout.
            path,
            timeout=_BUSY_TIMEOUT_SECONDS,
            isolation_level=None,
            check_same_thread=False,
        )
    except sqlite3.Error as exc:
        raise StoreConfigError(setting, f"cannot open SQLite database {path!r}: {exc}") from exc
    try:
        mode, version = _while_locked(lambda: _prepare(connection))
    except sqlite3.Error as exc:
        connection.close()
        raise StoreConfigError(setting, f"cannot use SQLite database {path!r}: {exc}") from exc
    except BaseException:
        connection.close()  # nothing else holds it
        raise
    problem = None
    if mode != "wal":  # ":memory:" cannot be: nor would it be shared
        problem = f"SQLite database {path!r} cannot use WAL mode (journal_mode={mode})"
    elif version > SCHEMA_VERSION:
        problem = (
            f"SQLite database {path!r} has schema version {version}, newer than this"
            f" library's {SCHEMA_VERSION}"
        )
    if problem is not None:
        connection.close()
        raise StoreConfigError(setting, problem)
    return connection


@asynccontextmanager
async def open_sqlite_stores(
    path: str,
    *,
    clock: Callable[[], float] = time.time,
    poll_interval: float = DEFAULT_POLL_INTERVAL_SECONDS,
    claim_lease_seconds: float = DEFAULT_CLAIM_LEASE_SECONDS,
    approval_retention_seconds: float = DEFAULT_APPROVAL_RETENTION_SECONDS,
    setting: str = "path",
) -> AsyncIterator[Stores]:
    """Open the SQLite file ``path`` (created if missing, mode 0600) and yield its stores.

    Args:
        path: The database file.
        clock: Wall-clock seconds, for times to live (:func:`time.time`).
        poll_interval: How often a waiter looks for another process's change.
        claim_lease_seconds: The lease of an idempotency claim.
        approval_retention_seconds: How long a closed approval request is kept
            after its last change (an hour; ``math.inf``: until removed); see
            :class:`SqliteApprovalBackend`.
        setting: The setting named in errors (``path``, or the URL's).

    Raises:
        StoreConfigError: The file cannot be opened, written, or put in WAL
            mode, or its schema is newer than this library's.
        TypeError, ValueError: A bad argument.
    """
    from ._common import Stores

    if type(path) is not str:
        raise TypeError(f"open_sqlite_stores: path must be a str; got {type_of(path)}")
    if not path:
        raise ValueError("open_sqlite_stores: path must not be empty")
    if not callable(clock):
        raise TypeError(f"open_sqlite_stores: clock must be callable; got {type_of(clock)}")
    poll_interval = check_number(
        "open_sqlite_stores", "poll_interval", poll_interval, minimum=0, above=True
    )
    claim_lease_seconds = check_number(
        "open_sqlite_stores", "claim_lease_seconds", claim_lease_seconds, minimum=0, above=True
    )
    retention = check_seconds(
        "open_sqlite_stores", "approval_retention_seconds", approval_retention_seconds
    )
    # Kept where a Ctrl-C arriving as the thread hands it back cannot lose it.
    opened: list[sqlite3.Connection] = []

    def connect() -> sqlite3.Connection:
        connection = _connect(path, setting)
        opened.append(connection)
        return connection

    try:
        connection = await trio.to_thread.run_sync(connect)
    except BaseException:
        for connection in opened:
            connection.close()
        raise
    try:
        db = SqliteDatabase(connection, path, clock=clock, poll_interval=poll_interval)
        await db.transaction(functools.partial(_stamp_closed, now=clock()))
        with unwrapping_groups():
            async with trio.open_nursery() as nursery:
                idempotency = SqliteIdempotencyStore(db, claim_lease_seconds=claim_lease_seconds)
                try:
                    # Inside the try: the task is shielded until _close (see _serve).
                    await nursery.start(idempotency._serve)
                    yield Stores(
                        url=f"sqlite:///{path}",
                        idempotency=idempotency,
                        memory=SqliteMemoryStore(db),
                        approvals=SqliteApprovalBackend(db, retention_seconds=retention),
                        undo=SqliteUndoBackend(db),
                    )
                finally:
                    # The background task ends once it has written the queued releases.
                    idempotency._close()
    finally:
        try:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(connection.close)
        except BaseException:
            # A Ctrl-C reaches the shielded scope too, perhaps before the thread ran:
            # close here (closing twice is harmless), then let it go on.
            connection.close()
            raise


class SqliteIdempotencyStore(ClaimingStore):
    """An :class:`~stageflow_trio.pipeline.idempotency.IdempotencyStore` in a SQLite file.

    Results expire on the database's wall clock; ``get`` returns them with
    ``expires_at`` in epoch seconds. Claims have a lease renewed while this
    process holds them; :meth:`release` hands the deletion to the store's
    background task (it must not block) and wakes this process's waiters when
    it is done; other processes' waiters find the key free at their next poll.
    The background task (renewals, releases, the purge) runs as long as the stores'
    block's body, even when the block is cancelled while the body still works shielded.
    """

    _OWNER = "SqliteIdempotencyStore"
    _DRAIN_SECONDS = _DRAIN_SECONDS

    def __init__(self, db: SqliteDatabase, *, claim_lease_seconds: float) -> None:
        super().__init__()
        self._db = db
        self._lease = claim_lease_seconds
        self._wakeups = Wakeups()

    async def get(self, key: str) -> CachedStageResult | None:
        """The live entry for ``key``, or None. A checkpoint.

        Raises:
            TypeError: ``key`` is not a str.
        """
        check_key("SqliteIdempotencyStore.get", key)
        now = self._db.clock()

        def read(connection: sqlite3.Connection) -> tuple[str, float | None] | None:
            row: tuple[str, float | None] | None = connection.execute(
                "SELECT entry, expires_at FROM idempotency_entries WHERE key = ?"
                " AND (expires_at IS NULL OR expires_at > ?)",
                (key, now),
            ).fetchone()
            return row

        row = await self._db.run(read)
        return None if row is None else entry_from_json(*row)

    async def set(
        self, key: str, entry: CachedStageResult, *, ttl_seconds: float | None = None
    ) -> None:
        """Store ``entry`` under ``key`` for ``ttl_seconds``. A checkpoint.

        As the reference's in-memory store: None, 0, NaN or ``math.inf``: never
        expires; a negative time: expired at once (the entry of ``key`` is deleted).

        Raises:
            TypeError: ``key`` is not a str, ``entry`` not a CachedStageResult,
                ``ttl_seconds`` neither a number nor None.
        """
        owner = "SqliteIdempotencyStore.set"
        check_key(owner, key)
        check_entry(owner, entry)
        ttl = time_to_live(owner, ttl_seconds)
        text = entry_to_json(entry)
        if ttl is not None and ttl < 0:
            await self._db.execute("DELETE FROM idempotency_entries WHERE key = ?", (key,))
            return
        expires_at = None if ttl is None else self._db.clock() + ttl
        await self._db.execute(
            "INSERT OR REPLACE INTO idempotency_entries VALUES (?, ?, ?)", (key, text, expires_at)
        )

    async def delete(self, key: str) -> None:
        """Forget the entry of ``key``. A checkpoint.

        Raises:
            TypeError: ``key`` is not a str.
        """
        check_key("SqliteIdempotencyStore.delete", key)
        await self._db.run(
            lambda c: c.execute("DELETE FROM idempotency_entries WHERE key = ?", (key,))
        )

    @trio.lowlevel.enable_ki_protection  # see ClaimingStore
    async def claim(self, key: str) -> IdempotencyClaim | CachedStageResult:
        """See :meth:`IdempotencyStore.claim`. Waits for another process by polling.

        Protected from Ctrl-C (see :class:`~stageflow_trio.stores._common.ClaimingStore`).

        Raises:
            TypeError: ``key`` is not a str.
        """
        check_key("SqliteIdempotencyStore.claim", key)
        while True:
            token = IdempotencyClaim(key).token
            with self._wakeups.watch(key) as event:
                now = self._db.clock()
                outcome = await self._db.transaction(
                    functools.partial(self._try_claim, key=key, token=token, now=now)
                )
                if isinstance(outcome, IdempotencyClaim):
                    self._held[outcome.token] = outcome
                    return outcome
                if isinstance(outcome, CachedStageResult):
                    return outcome
                with trio.move_on_after(min(self._db.poll_interval, max(outcome - now, 0.0))):
                    await event.wait()

    def _try_claim(
        self, connection: sqlite3.Connection, *, key: str, token: str, now: float
    ) -> IdempotencyClaim | CachedStageResult | float:
        row = connection.execute(
            "SELECT entry, expires_at FROM idempotency_entries WHERE key = ?", (key,)
        ).fetchone()
        if row is not None:
            if row[1] is None or row[1] > now:
                return entry_from_json(*row)
            connection.execute("DELETE FROM idempotency_entries WHERE key = ?", (key,))
        held = connection.execute(
            "SELECT expires_at FROM idempotency_claims WHERE key = ?", (key,)
        ).fetchone()
        if held is not None and held[0] > now:
            expires_at: float = held[0]
            return expires_at
        connection.execute(
            "INSERT OR REPLACE INTO idempotency_claims VALUES (?, ?, ?)",
            (key, token, now + self._lease),
        )
        return IdempotencyClaim(key, token)

    def _lease_seconds(self) -> float:
        return self._lease

    def _periodic(self) -> list[Callable[[], Awaitable[None]]]:
        return [self._renew_leases, self._purge_expired]

    async def _purge_expired(self) -> None:
        """Every :data:`PURGE_INTERVAL_SECONDS`, delete the expired results and claims.

        The first purge comes one period after the store starts; the period runs
        start to start, so a slow purge does not push the next one back.
        """
        async with aclosing(periodic(PURGE_INTERVAL_SECONDS)) as ticks:
            async for _, since_last in ticks:
                if since_last is not None:  # not the first tick, which comes at once
                    await self._purge_once()

    async def _purge_once(self) -> None:
        now = self._db.clock()
        try:
            await self._db.run(functools.partial(_purge, now=now))
        except sqlite3.Error:
            # Tried again next time; the reads ignore expired rows anyway.
            logger.warning("could not delete expired idempotency rows", exc_info=True)

    async def _write_release(self, claims: list[IdempotencyClaim]) -> None:
        try:
            await self._db.transaction(
                functools.partial(
                    _executemany,
                    "DELETE FROM idempotency_claims WHERE key = ? AND token = ?",
                    [(claim.key, claim.token) for claim in claims],
                )
            )
        except sqlite3.Error as exc:
            # The lease frees the keys; the store goes on.
            log_unreleased(claims, exc, self._lease)
        for claim in claims:
            self._wakeups.wake(claim.key)

    async def _renew_leases(self) -> None:
        """Every third of the lease (start to start, the first a third in), renew the claims held."""
        async with aclosing(periodic(self._lease / 3)) as ticks:
            async for _, since_last in ticks:
                held = list(self._held.values())
                if since_last is None or not held:
                    continue
                expires_at = self._db.clock() + self._lease
                try:
                    await self._db.run(
                        functools.partial(
                            _executemany,
                            "UPDATE idempotency_claims SET expires_at = ? WHERE key = ? AND token = ?",
                            [(expires_at, claim.key, claim.token) for claim in held],
                        )
                    )
                except sqlite3.Error as exc:
                    # A lease not renewed this time may be renewed next time.
                    log_unrenewed(held, exc, self._lease / 3)


class SqliteMemoryStore:
    """A :class:`~stageflow_trio.helpers.memory.MemoryStore` in a SQLite file.

    ``fetch`` selects exactly as :class:`~stageflow_trio.helpers.memory.InMemoryStore`
    does, over the session's entries in write order.
    """

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def fetch(self, session_id: UUID, config: MemoryConfig) -> list[MemoryEntry]:
        """The session's entries that ``config`` selects, oldest first. A checkpoint.

        Raises:
            TypeError: ``session_id`` is not a UUID or ``config`` is not a MemoryConfig.
        """
        _check_fetch("SqliteMemoryStore.fetch", session_id, config)
        rows = await self._db.run(
            lambda c: c.execute(
                "SELECT entry FROM memory WHERE session_id = ? ORDER BY seq", (str(session_id),)
            ).fetchall()
        )
        return _select([memory_from_json(row[0]) for row in rows], config)

    async def write(self, entry: MemoryEntry) -> None:
        """Append ``entry`` to its session. A checkpoint.

        Raises:
            TypeError: ``entry`` is not a MemoryEntry.
        """
        _check_memory_entry("SqliteMemoryStore.write", entry)
        text = memory_to_json(entry)
        await self._db.run(
            lambda c: c.execute(
                "INSERT INTO memory (session_id, entry) VALUES (?, ?)",
                (str(entry.session_id), text),
            )
        )

    async def clear(self, session_id: UUID) -> int:
        """Forget the session; return how many entries it had. A checkpoint.

        Raises:
            TypeError: ``session_id`` is not a UUID.
        """
        _check_session_id("SqliteMemoryStore.clear", session_id)
        cursor = await self._db.run(
            lambda c: c.execute("DELETE FROM memory WHERE session_id = ?", (str(session_id),))
        )
        return cursor.rowcount


def _id(value: UUID | None) -> str | None:
    return None if value is None else str(value)


class SqliteApprovalBackend:
    """An :class:`~stageflow_trio.tools.approval.ApprovalBackend` in a SQLite file.

    Requests come back as copies: a caller holding one does not see later
    changes (read it again). A waiter is woken at once by a decision recorded
    through the same opened database, and polls every ``poll_interval`` for
    one recorded by another process.

    A PENDING request is kept until it is closed or removed. A closed one
    (approved, denied, expired or cancelled) is stamped with the time of its
    last change, and the first :meth:`add` more than ``retention_seconds``
    later deletes it, in the transaction that stores the new request (through an
    index on that time: the cost does not grow with the requests kept). Any
    process may do it: a closed request is final, and each process deletes by
    its own ``retention_seconds``. Unlike the in-memory backend, a request is
    not kept longer for a waiter (another process's waiters cannot be seen):
    keep the period well above ``poll_interval``, or a waiter may miss a decision
    deleted before it looked (it then waits until its timeout).

    Args:
        db: The opened database.
        retention_seconds: How long a closed request stays readable after its
            last change (3600 s; ``math.inf`` keeps every request until
            :meth:`remove`; 0 deletes it at the first :meth:`add` after the clock
            moves on). Time is the database's wall clock
            (:attr:`SqliteDatabase.clock`), the one its other expiries use.

    Raises:
        TypeError, ValueError: ``retention_seconds`` is not a number >= 0.
    """

    def __init__(
        self, db: SqliteDatabase, *, retention_seconds: float = DEFAULT_APPROVAL_RETENTION_SECONDS
    ) -> None:
        self._retention: float = check_seconds(
            "SqliteApprovalBackend", "retention_seconds", retention_seconds
        )
        self._db = db
        self._wakeups = Wakeups()

    @property
    def retention_seconds(self) -> float:
        """How long a closed request is kept after its last change."""
        return self._retention

    async def add(self, request: ApprovalRequest) -> None:
        """Store a new request, first deleting the closed ones kept long enough. A checkpoint."""
        now = self._db.clock()
        closed_at = None if request.status.value == "pending" else now
        row = (
            str(request.id),
            str(request.action_id),
            _id(request.pipeline_run_id),
            request.status.value,
            request_to_json(request),
            closed_at,
        )

        def insert(connection: sqlite3.Connection) -> None:
            if self._retention != math.inf:
                # Strictly before: kept for the whole period, as the in-memory backend.
                connection.execute(
                    "DELETE FROM approvals WHERE closed_at < ? AND status != 'pending'",
                    (now - self._retention,),
                )
            connection.execute(
                "INSERT INTO approvals (id, action_id, pipeline_run_id, status, request,"
                " closed_at) VALUES (?, ?, ?, ?, ?, ?)",
                row,
            )

        await self._db.transaction(insert)

    async def _one(self, sql: str, parameters: tuple[object, ...]) -> ApprovalRequest | None:
        row = await self._db.run(lambda c: c.execute(sql, parameters).fetchone())
        return None if row is None else request_from_json(row[0])

    async def get(self, request_id: UUID) -> ApprovalRequest | None:
        """The request, or None. A checkpoint."""
        return await self._one("SELECT request FROM approvals WHERE id = ?", (str(request_id),))

    async def latest_for_action(self, action_id: UUID) -> ApprovalRequest | None:
        """The newest request for the action, or None. A checkpoint."""
        return await self._one(
            "SELECT request FROM approvals WHERE action_id = ? ORDER BY seq DESC LIMIT 1",
            (str(action_id),),
        )

    async def pending(self, pipeline_run_id: UUID | None = None) -> list[ApprovalRequest]:
        """The PENDING requests (of the run, when given), oldest first. A checkpoint."""
        sql = "SELECT request FROM approvals WHERE status = 'pending'"
        parameters: tuple[object, ...] = ()
        if pipeline_run_id is not None:
            sql += " AND pipeline_run_id = ?"
            parameters = (str(pipeline_run_id),)
        rows = await self._db.run(lambda c: c.execute(sql + " ORDER BY seq", parameters).fetchall())
        return [request_from_json(row[0]) for row in rows]

    async def decide(self, decision: ApprovalDecision, decided_at: str) -> ApprovalRequest | None:
        """Record ``decision`` (whatever the status) and wake the waiters; None if unknown.
        Its retention period starts (again) now."""
        now = self._db.clock()

        def update(connection: sqlite3.Connection) -> ApprovalRequest | None:
            row = connection.execute(
                "SELECT request FROM approvals WHERE id = ?", (str(decision.request_id),)
            ).fetchone()
            if row is None:
                return None
            request = request_from_json(row[0])
            decided(request, decision, decided_at)
            connection.execute(
                "UPDATE approvals SET status = ?, request = ?, decision = ?, closed_at = ?"
                " WHERE id = ?",
                (
                    request.status.value,
                    request_to_json(request),
                    decision_to_json(decision),
                    now,
                    str(request.id),
                ),
            )
            return request

        request = await self._db.transaction(update)
        self._wakeups.wake(str(decision.request_id))
        return request

    async def close_pending(
        self, request_id: UUID, status: ApprovalStatus, decision: ApprovalDecision | None
    ) -> bool:
        """A PENDING request becomes ``status``; with ``decision``, its waiters get it.
        Its retention period starts now."""
        now = self._db.clock()

        def update(connection: sqlite3.Connection) -> bool:
            row = connection.execute(
                "SELECT request FROM approvals WHERE id = ? AND status = 'pending'",
                (str(request_id),),
            ).fetchone()
            if row is None:
                return False
            request = request_from_json(row[0])
            request.status = status
            connection.execute(
                "UPDATE approvals SET status = ?, request = ?,"
                " decision = coalesce(?, decision), closed_at = ? WHERE id = ?",
                (
                    status.value,
                    request_to_json(request),
                    None if decision is None else decision_to_json(decision),
                    now,
                    str(request_id),
                ),
            )
            return True

        closed = await self._db.transaction(update)
        if closed and decision is not None:
            self._wakeups.wake(str(request_id))
        return closed

    async def decision(self, request_id: UUID) -> ApprovalDecision | None:
        """The recorded decision, or None. A checkpoint."""
        row = await self._db.run(
            lambda c: c.execute(
                "SELECT decision FROM approvals WHERE id = ? AND decision IS NOT NULL",
                (str(request_id),),
            ).fetchone()
        )
        return None if row is None else decision_from_json(row[0])

    async def wait_decision(self, request_id: UUID) -> ApprovalDecision | None:
        """Wait until the request has a decision and return it (never None here)."""
        while True:
            with self._wakeups.watch(str(request_id)) as event:
                decision = await self.decision(request_id)
                if decision is not None:
                    return decision
                with trio.move_on_after(self._db.poll_interval):
                    await event.wait()

    async def remove(self, request_id: UUID) -> None:
        """Forget the request and its decision (no error if unknown). A checkpoint."""
        await self._db.execute("DELETE FROM approvals WHERE id = ?", (str(request_id),))


class SqliteUndoBackend:
    """An :class:`~stageflow_trio.tools.undo.UndoBackend` in a SQLite file.

    Expiry is on the database's wall clock: an entry is valid up to and
    including its expiry instant. Replacing an entry keeps its place in
    :meth:`get_all`'s order, as the in-memory backend does. Expired entries are
    deleted every :data:`PURGE_INTERVAL_SECONDS` while the stores are open, so the
    file does not keep one for every action ever run.
    """

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def put(self, metadata: UndoMetadata, ttl_seconds: float) -> None:
        """Store ``metadata`` for ``ttl_seconds`` (``math.inf``: until deleted). A checkpoint."""
        expires_at = None if math.isinf(ttl_seconds) else self._db.clock() + ttl_seconds
        await self._db.execute(
            "INSERT INTO undo (action_id, metadata, expires_at) VALUES (?, ?, ?)"
            " ON CONFLICT (action_id) DO UPDATE"
            " SET metadata = excluded.metadata, expires_at = excluded.expires_at",
            (str(metadata.action_id), undo_to_json(metadata), expires_at),
        )

    async def get(self, action_id: UUID) -> UndoMetadata | None:
        """The live metadata, or None (an expired entry is removed). A checkpoint."""
        now = self._db.clock()

        def read(connection: sqlite3.Connection) -> str | None:
            row = connection.execute(
                "SELECT metadata, expires_at FROM undo WHERE action_id = ?", (str(action_id),)
            ).fetchone()
            if row is None:
                return None
            if row[1] is not None and now > row[1]:
                connection.execute("DELETE FROM undo WHERE action_id = ?", (str(action_id),))
                return None
            text: str = row[0]
            return text

        text = await self._db.transaction(read)
        return None if text is None else undo_from_json(text)

    async def delete(self, action_id: UUID) -> bool:
        """Remove the entry; True if there was one. A checkpoint."""
        cursor = await self._db.execute("DELETE FROM undo WHERE action_id = ?", (str(action_id),))
        return cursor.rowcount > 0

    async def cleanup_expired(self) -> int:
        """Remove every expired entry; return how many. A checkpoint."""
        cursor = await self._db.execute(
            "DELETE FROM undo WHERE expires_at IS NOT NULL AND expires_at < ?", (self._db.clock(),)
        )
        return cursor.rowcount

    async def get_all(self) -> list[UndoMetadata]:
        """Every live entry's metadata, oldest stored first. A checkpoint."""
        now = self._db.clock()  # here, not in the worker thread: the clock may need trio
        rows = await self._db.run(
            lambda c: c.execute(
                "SELECT metadata FROM undo WHERE expires_at IS NULL OR expires_at >= ?"
                " ORDER BY seq",
                (now,),
            ).fetchall()
        )
        return [undo_from_json(row[0]) for row in rows]
