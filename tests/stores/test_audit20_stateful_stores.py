"""Model-based tests of the idempotency stores' claim protocol, with concurrent workers.

Hypothesis draws a sequence of operations over two keys and four workers (trio tasks):
a worker claims a key (granted, replayed, or left waiting); releases its claim (itself,
or the driver for it, when the worker's own release comes second and must be ignored);
caches a result with a time to live, then releases; or is cancelled, waiting or holding.
The driver sets, deletes and reads results and moves the virtual clock on. Some steps
make two operations at once (a release and the cancellation of the waiter it wakes...).
On SQLite and Redis the workers live in two "processes" (two opened stores on one file or
server); on SQLite one may die holding its claims, which their lease then frees. The
claims the interceptor keeps in the process for a store with only ``get``/``set``/``delete``
run the same sequences.

Every claim, replay, grant, release, cancellation and write is logged in the order it
happens, and the log is replayed through a model (who holds each key; what result is
cached, until when) that checks each event as it happens:

- a claim is granted only while nobody holds the key (its holder released it, or the
  lease of a dead process's claim ran out) and no live result is cached;
- a replay returns the result cached at that moment, with its expiry;
- a read returns the live result: a result expires at its time to live, not before;
- a waiter ends only replayed, granted, or because the test cancelled it (then holding
  nothing); a release of a claim already released changes nothing;
- a dead process's claim expires within one lease of its death, not before it.

After each step, once every task is blocked:

- no worker waits for a key nobody holds (no key blocked for ever), nor after asking
  while a result was live (that must be replayed at once); a waiter in another SQLite
  process finds a release within one ``poll_interval``;
- the claims the store holds (its table, its file, its Redis keys) are the model's.

At the end every holder releases, every waiter is served, every task ends, and no
claim is held.

The in-memory and SQLite stores run on a ``MockClock`` (SQLite's statements inline, so
the clock does not jump while one runs); Redis on the real clock, in short sequences
without the clock moving on, settling by polling (bounded) until the model's state holds.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import sqlite3
from typing import TYPE_CHECKING, Any

import attrs
import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stageflow_trio.pipeline.idempotency import (
    CachedStageResult,
    IdempotencyClaim,
    IdempotencyStore,
    InMemoryIdempotencyStore,
    _LocalClaims,
)
from stageflow_trio.stores.redis import open_redis_stores
from stageflow_trio.stores.sqlite import open_sqlite_stores
from tests.trio_setups import inline_run_sync

from ._worker import entry as _entry

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

KEYS = ("a", "b")
WORKERS = 4
LEASE = 3.0  # SQLite: renewed every second
POLL = 0.25  # SQLite: how often a waiter looks for another process's release
# Every time is a multiple of 0.25 s: sums and differences are exact.
TTLS: tuple[float | None, ...] = (None, 0, -1, 0.5, 1, 2.5)
REDIS_TTLS: tuple[float | None, ...] = (None, 0, -1, 10**6)  # none runs out (real time)
STEPS = (0.25, 0.5, 1.0, 2.5)


# --------------------------------------------------------------------------- the log


@attrs.frozen
class Event:
    """One thing that happened, logged when it happened (``time``: trio's clock)."""

    kind: str
    worker: int | None
    key: str | None
    payload: Any
    time: float

    def __str__(self) -> str:
        payload = self.payload
        if isinstance(payload, CachedStageResult):
            payload = f"result {payload.result.data['n']} expiring at {payload.expires_at}"
        elif isinstance(payload, IdempotencyClaim):
            payload = f"claim {payload.token[:6]}"
        who = "driver" if self.worker is None else f"worker {self.worker}"
        return f"{self.kind} ({who}, key {self.key!r}, {payload}) at t={self.time}"


class Log:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def add(self, kind: str, worker: int | None, key: str | None, payload: Any = None) -> None:
        self.events.append(Event(kind, worker, key, payload, trio.current_time()))


class Worker:
    """A trio task that claims keys as the driver says, like one call of an idempotent stage.

    Idle, it takes ``("claim", key)``. Holding a claim, it takes ``("release",)`` or
    ``("finish", value, ttl)`` (cache a result, then release), and releases however its
    call ends: cancelled included, as the interceptor does; not when its process dies.
    """

    def __init__(self, index: int, process: int, log: Log) -> None:
        self.index = index
        self.process = process
        self.log = log
        self.send, self.commands = trio.open_memory_channel[tuple[Any, ...]](math.inf)
        self.scope: trio.CancelScope | None = None
        self.crashed = False
        self.finished = False

    async def run(self, store: IdempotencyStore) -> None:
        try:
            async with self.commands:
                async for command in self.commands:
                    assert command[0] == "claim", command
                    await self._call(store, command[1])
        finally:
            self.finished = True

    async def _call(self, store: IdempotencyStore, key: str) -> None:
        log, index = self.log, self.index
        got: IdempotencyClaim | CachedStageResult | None = None
        held: IdempotencyClaim | None = None
        try:
            with trio.CancelScope() as self.scope:
                log.add("start", index, key)
                got = await store.claim(key)
                if isinstance(got, CachedStageResult):
                    log.add("result", index, key, got)
                    return
                held = got
                log.add("grant", index, key, held)
                command = await self.commands.receive()
                if command[0] == "finish":
                    _, value, ttl = command
                    log.add("setting", index, key, (value, ttl))
                    try:
                        await store.set(key, _entry(value), ttl_seconds=ttl)
                    except BaseException:
                        log.add("not set", index, key)
                        raise
                    log.add("set", index, key)
        finally:
            self.scope = None
            if held is not None:
                if not self.crashed:
                    store.release(held)
                    log.add("release", index, key, held)
                log.add("done", index, key)
            elif got is None:
                log.add("cancelled", index, key)


# --------------------------------------------------------------------------- the model


@attrs.define
class Entry:
    value: int
    expires_at: float | None


@attrs.define
class Version:
    """What one key held (``entry``; None: no result) between two log positions.

    A write takes effect somewhere between its first and its last event, and a read
    looks somewhere between its own two: so a version may be current from its write's
    first event (``since``) until the next write's last (``until``; None: still current).
    """

    entry: Entry | None
    since: int
    until: int | None = None


@attrs.define
class WorkerModel:
    process: int
    kind: str = "idle"  # idle, waiting, holding
    key: str | None = None
    claim: IdempotencyClaim | None = None
    released: bool = False  # holding, its claim released (its own release still to come)
    pending: bool = False  # told to act (or cancelled), not done yet
    cancelled: bool = False  # its call was cancelled (or its process died)
    # Waiting: the log position from which the look it returns from may have begun; and
    # whether it is known to wait (all tasks were blocked since it last looked).
    looks_from: int = 0
    blocked: bool = False
    live_at_start: Entry | None = None  # waiting: the live result when it asked


def _live(entry: Entry | None, now: float) -> Entry | None:
    if entry is None or (entry.expires_at is not None and entry.expires_at <= now):
        return None
    return entry


def _expiry(ttl: float | None, now: float) -> float | None:
    """When a result set at ``now`` expires, as every store reads ``ttl_seconds``."""
    if not ttl or math.isnan(ttl) or ttl == math.inf:
        return None
    return now + ttl


class Model:
    """Who holds each key and what result is cached: the log replayed, each event checked."""

    def __init__(self, processes: int, *, exact_expiry: bool, polls: bool) -> None:
        self.exact_expiry = exact_expiry
        self.polls = polls  # another process's release is found by polling (SQLite)
        self.workers = {i: WorkerModel(i % processes) for i in range(WORKERS)}
        self.holder: dict[str, tuple[int, IdempotencyClaim]] = {}
        self.versions: dict[str, list[Version]] = {key: [Version(None, 0)] for key in KEYS}
        self.writing: dict[str, Version] = {}  # the write of a key under way
        # A dead process's claim: its key is blocked until the lease runs out.
        self.dead: dict[str, tuple[float, str]] = {}  # key -> (expires_at, token)
        self.died_at: dict[int, float] = {}
        # The last release of a key not granted again: (process, time), and its position.
        self.freed: dict[str, tuple[int, float]] = {}
        self.free_from: dict[str, int] = dict.fromkeys(KEYS, 0)
        self.released: set[str] = set()
        self.getting = 0  # where the driver's read began
        self.seen = 0  # the position of the event applied
        self.where = ""

    def current(self, key: str) -> Entry | None:
        """The result of ``key`` once the writes under way have ended."""
        return self.versions[key][-1].entry

    def readable(self, key: str, since: int, now: float) -> list[Entry | None]:
        """What a read of ``key`` that began at position ``since`` may find now.

        The live result of each version current at some point since then (None: none).
        """
        versions = [*self.versions[key], *([self.writing[key]] if key in self.writing else [])]
        return [
            _live(version.entry, now)
            for version in versions
            if version.until is None or version.until >= since
        ]

    def _check_read(self, got: CachedStageResult | None, key: str, since: int, e: Event) -> None:
        readable = self.readable(key, since, e.time)
        if got is None:
            assert None in readable, f"found no result; {readable} is live: {e} at {self.where}"
            return
        matches = [
            entry
            for entry in readable
            if entry is not None
            and entry.value == got.result.data["n"]
            and (entry.expires_at == got.expires_at or not self.exact_expiry)
        ]
        assert matches, f"found a result that is not {readable}: {e} at {self.where}"

    def replay(self, log: Log) -> None:
        for event in log.events[self.seen :]:
            self._apply(event)
            self.seen += 1

    def _apply(self, e: Event) -> None:
        where = f"{e} at {self.where}"
        key = e.key
        w = self.workers[e.worker] if e.worker is not None else None
        if w is not None:
            # Events of a worker's call: its claim, its replay, its grant, its release...
            assert key is not None
            if e.kind == "start":
                assert w.kind == "idle", where
                w.kind, w.key, w.pending = "waiting", key, False
                w.looks_from, w.blocked = self.seen, False
                w.live_at_start = None if key in self.writing else _live(self.current(key), e.time)
            elif e.kind == "cancel":
                w.cancelled = w.pending = True
            elif e.kind == "grant":
                assert (w.kind, w.key) == ("waiting", key), where
                assert key not in self.holder, f"granted while {self.holder[key]} holds it: {where}"
                dead = self.dead.get(key)
                assert dead is None or dead[0] <= e.time, f"granted within the lease: {where}"
                # Free and without a live result at one moment, since it looked.
                since = max(w.looks_from, self.free_from[key])
                readable = self.readable(key, since, e.time)
                assert None in readable, f"granted though {readable} is cached: {where}"
                assert isinstance(e.payload, IdempotencyClaim), where
                assert e.payload.key == key, where
                self.holder[key] = (e.worker, e.payload)  # type: ignore[assignment]
                self.dead.pop(key, None)
                self.freed.pop(key, None)
                w.kind, w.claim, w.released = "holding", e.payload, False
            elif e.kind == "result":
                assert (w.kind, w.key) == ("waiting", key), where
                self._check_read(e.payload, key, w.looks_from, e)
                self._idle(w)
            elif e.kind == "cancelled":
                assert (w.kind, w.key) == ("waiting", key), where
                assert w.cancelled, f"a waiter ended without a claim or a result: {where}"
                self._idle(w)
            elif e.kind == "release":
                claim: IdempotencyClaim = e.payload
                if self.holder.get(key) == (e.worker, claim):
                    del self.holder[key]
                    self.freed[key] = (w.process, e.time)
                    self.free_from[key] = self.seen
                    self.released.add(claim.token)
                    w.released = True
                    self._wake(key)
                else:
                    assert claim.token in self.released, f"released a claim not held: {where}"
            elif e.kind == "done":
                assert (w.kind, w.key) == ("holding", key), where
                assert w.released or w.cancelled, where
                self._idle(w)  # a dead process's claim stays held (see "dead")
            else:
                self._write(e, where)
            return
        if e.kind == "getting":
            self.getting = self.seen
        elif e.kind == "get":
            assert key is not None
            self._check_read(e.payload, key, self.getting, e)
        elif e.kind == "advance":
            # Waiters look again as the clock moves (SQLite polls, leases run out).
            for key in KEYS:
                self._wake(key)
        elif e.kind == "crash":
            self.died_at[e.payload] = e.time
            for wm in self.workers.values():
                if wm.process == e.payload:
                    wm.cancelled = True
        elif e.kind == "dead":
            # The process has ended: its claims stay in the file, renewed no more.
            process, rows = e.payload
            died = self.died_at[process]
            for key, (index, claim) in list(self.holder.items()):
                if self.workers[index].process != process:
                    continue
                expires_at, token = rows[key]
                assert token == claim.token, where
                # Renewed until the death, then at most one lease more.
                assert died < expires_at <= died + LEASE, f"lease until {expires_at}: {where}"
                self.dead[key] = (expires_at, token)
                self.free_from[key] = self.seen  # at the latest: when the lease runs out
                del self.holder[key]
        elif e.kind == "restart":
            for wm in self.workers.values():
                if wm.process == e.payload:
                    assert wm.kind == "idle", where
                    wm.cancelled = wm.pending = False
        else:
            self._write(e, where)

    def _wake(self, key: str) -> None:
        """The waiters for ``key`` known to wait look again from here on.

        (One that has not waited since it last looked may return what that look found.)
        """
        for w in self.workers.values():
            if (w.kind, w.key, w.blocked) == ("waiting", key, True):
                w.looks_from, w.blocked = self.seen, False

    def settled(self) -> None:
        """Every task is blocked: every waiter waits."""
        for w in self.workers.values():
            w.blocked = w.kind == "waiting"

    def _write(self, e: Event, where: str) -> None:
        key = e.key
        assert key is not None, where
        versions = self.versions[key]
        if e.kind in ("setting", "deleting"):
            assert key not in self.writing, where
            entry = (
                None if e.kind == "deleting" else Entry(e.payload[0], _expiry(e.payload[1], e.time))
            )
            self.writing[key] = Version(entry, self.seen)
        elif e.kind in ("set", "delete"):
            version = self.writing.pop(key)
            for old in versions:
                if old.until is None:
                    old.until = self.seen
            versions.append(version)
        elif e.kind == "not set":  # cancelled first: nothing stored
            del self.writing[key]
        else:  # pragma: no cover
            raise AssertionError(where)

    @staticmethod
    def _idle(w: WorkerModel) -> None:
        w.kind, w.key, w.claim = "idle", None, None
        w.released = w.pending = w.cancelled = False

    def unsettled(self, now: float, store_claims: dict[str, str]) -> str | None:
        """Why the state is not one the stores may stay in, or None."""
        for i, w in self.workers.items():
            if w.pending or (w.kind == "holding" and w.released):
                return f"worker {i} has not finished its command"
            if w.kind != "waiting":
                continue
            assert w.key is not None
            key = w.key
            if w.live_at_start is not None:
                return f"worker {i} waits for {key!r} though {w.live_at_start} was live"
            if key in self.holder:
                continue
            dead = self.dead.get(key)
            if dead is not None and dead[0] > now:
                continue
            freed = self.freed.get(key)
            if self.polls and freed and freed[0] != w.process and now < freed[1] + POLL:
                continue  # another process's release, not polled yet
            return f"worker {i} waits for {key!r}, which nobody holds"
        if self.writing:
            return f"the writes of {sorted(self.writing)} have not ended"
        expected = {key: claim.token for key, (_, claim) in self.holder.items()}
        expected.update({key: token for key, (at, token) in self.dead.items() if at > now})
        if store_claims != expected:
            return f"the store holds the claims {store_claims}, not {expected}"
        return None


# --------------------------------------------------------------------------- the backends


class Memory:
    processes = 1
    mock_clock = True

    def __init__(self) -> None:
        self.store = InMemoryIdempotencyStore()

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[IdempotencyStore]:
        yield self.store

    def claims(self, now: float) -> dict[str, str]:
        held = {key: self.store._claims.holder(key) for key in KEYS}
        return {key: h.claim.token for key, h in held.items() if h is not None}


class ResultsOnly:
    """A store written for the reference: ``get``, ``set`` and ``delete``, no claims.

    Its answers arrive a checkpoint after it read or wrote, as a server's replies do.
    """

    def __init__(self) -> None:
        self._store = InMemoryIdempotencyStore()

    async def get(self, key: str) -> CachedStageResult | None:
        got = await self._store.get(key)
        await trio.lowlevel.checkpoint()
        return got

    async def set(
        self, key: str, entry: CachedStageResult, *, ttl_seconds: float | None = None
    ) -> None:
        await self._store.set(key, entry, ttl_seconds=ttl_seconds)
        await trio.lowlevel.checkpoint()

    async def delete(self, key: str) -> None:
        await self._store.delete(key)
        await trio.lowlevel.checkpoint()


class WithLocalClaims(ResultsOnly):
    """That store with the claims the interceptor keeps in the process for it."""

    def __init__(self) -> None:
        super().__init__()
        self.local = _LocalClaims(self)

    async def claim(self, key: str) -> IdempotencyClaim | CachedStageResult:
        return await self.local.claim(key)

    def release(self, claim: IdempotencyClaim) -> None:
        self.local.release(claim)


class Local:
    processes = 1
    mock_clock = True

    def __init__(self) -> None:
        self.store = WithLocalClaims()

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[IdempotencyStore]:
        yield self.store

    def claims(self, now: float) -> dict[str, str]:
        held = {key: self.store.local._table.holder(key) for key in KEYS}
        return {key: h.claim.token for key, h in held.items() if h is not None}


class Sqlite:
    processes = 2
    mock_clock = True

    def __init__(self, path: str) -> None:
        self.path = path
        self.reader: sqlite3.Connection | None = None

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[IdempotencyStore]:
        async with open_sqlite_stores(
            self.path, clock=trio.current_time, poll_interval=POLL, claim_lease_seconds=LEASE
        ) as stores:
            yield stores.idempotency

    def rows(self, now: float) -> dict[str, tuple[str, float]]:
        if self.reader is None:
            self.reader = sqlite3.connect(self.path)
        rows = self.reader.execute(
            "SELECT key, token, expires_at FROM idempotency_claims WHERE expires_at > ?", (now,)
        ).fetchall()
        return {key: (token, expires_at) for key, token, expires_at in rows}

    def claims(self, now: float) -> dict[str, str]:
        return {key: token for key, (token, _) in self.rows(now).items()}


class Redis:
    processes = 2
    mock_clock = False

    def __init__(self, url: str) -> None:
        self.url = url
        self.names: dict[str, str] = {}

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[IdempotencyStore]:
        # Waiters wake only on a published release (no resync within a sequence).
        async with open_redis_stores(self.url, resync_interval=60) as stores:
            store: Any = stores.idempotency
            self.names = {key: store._keys(key)[1] for key in KEYS}
            yield stores.idempotency

    def claims(self, now: float) -> dict[str, str]:
        from .conftest import _command

        held = {}
        for key, name in self.names.items():
            reply = _command(self.url, "GET", name)
            if not reply.startswith(b"$-1"):
                held[key] = reply.split(b"\r\n")[1].decode()
        return held


Backend = Memory | Local | Sqlite | Redis


# --------------------------------------------------------------------------- the driver


class Run:
    """One drawn sequence, run against one backend."""

    def __init__(self, backend: Backend, ops: list[tuple[Any, ...]]) -> None:
        self.backend = backend
        self.ops = ops
        self.log = Log()
        self.model = Model(
            backend.processes, exact_expiry=backend.mock_clock, polls=isinstance(backend, Sqlite)
        )
        self.values = itertools.count(1)
        self.workers: dict[int, Worker] = {}
        self.stores: dict[int, IdempotencyStore] = {}
        self.scopes: dict[int, trio.CancelScope] = {}
        self.ended: dict[int, trio.Event] = {}
        self.finishing: set[str] = set()  # keys a worker is caching a result of, this step

    async def main(self) -> None:
        async with trio.open_nursery() as nursery:
            for process in range(self.backend.processes):
                await self._start(nursery, process)
            for number, op in enumerate(self.ops):
                self.model.where = f"step {number} {op!r}"
                await self._step(nursery, op)
                await self._settle()
            self.model.where = "the end"
            await self._drain()
            for store in self.stores.values():
                assert not getattr(store, "_held", {}), "a released claim is still renewed"
            for worker in self.workers.values():
                worker.send.close()
        assert all(worker.finished for worker in self.workers.values())
        assert self.backend.claims(trio.current_time()) == {}

    async def _start(self, nursery: trio.Nursery, process: int) -> None:
        ready = trio.Event()
        self.ended[process] = trio.Event()
        for index in range(process, WORKERS, self.backend.processes):
            self.workers[index] = Worker(index, process, self.log)
        nursery.start_soon(self._process, process, ready)
        await ready.wait()

    async def _process(self, process: int, ready: trio.Event) -> None:
        try:
            async with self.backend.open() as store, trio.open_nursery() as nursery:
                self.stores[process] = store
                self.scopes[process] = nursery.cancel_scope
                for worker in self.workers.values():
                    if worker.process == process:
                        nursery.start_soon(worker.run, store)
                ready.set()
        finally:
            self.ended[process].set()

    def _pick(self, n: int, *kinds: str, key: str | None = None) -> int | None:
        """The ``n``-th worker (cyclically) of those in one of ``kinds`` (on ``key``), or None."""
        found = [
            i
            for i, w in self.model.workers.items()
            if w.kind in kinds and not (w.released or w.pending) and key in (None, w.key)
        ]
        return found[n % len(found)] if found else None

    async def _step(self, nursery: trio.Nursery, op: tuple[Any, ...]) -> None:
        kind = op[0]
        model = self.model
        model.replay(self.log)  # picks by the state now
        if kind == "claim":
            index = self._pick(op[1], "idle")
            if index is not None:
                model.workers[index].pending = True
                self.workers[index].send.send_nowait(("claim", op[2]))
        elif kind in ("release", "finish", "release_cancel"):
            index = self._pick(op[1], "holding")
            cancel = None
            if kind == "release_cancel" and index is not None:
                # A waiter for the key released (or else the holder itself), picked now.
                key = model.workers[index].key
                cancel = self._pick(op[2], "waiting", key=key)
                cancel = index if cancel is None else cancel
            if index is not None:
                w = model.workers[index]
                if kind == "finish":
                    command: tuple[Any, ...] = ("finish", next(self.values), op[2])
                    self.finishing.add(w.key)  # type: ignore[arg-type]
                elif kind == "release_cancel" or op[2]:
                    # The driver releases it; the worker's own release comes second.
                    assert w.claim is not None
                    self.stores[w.process].release(w.claim)
                    self.log.add("release", index, w.key, w.claim)
                    command = ("release",)
                else:
                    command = ("release",)
                w.pending = True
                self.workers[index].send.send_nowait(command)
            if cancel is not None:
                # No checkpoint since the release: the waiter may have been woken already.
                self._cancel(cancel)
        elif kind == "cancel":
            index = self._pick(op[1], "waiting", "holding")
            if index is not None:
                self._cancel(index)
        elif kind in ("set", "delete") and op[1] in self.finishing:
            # Two writes of one key at once: which lands last is not in the log.
            pass
        elif kind == "set":
            _, key, ttl = op
            value = next(self.values)
            self.log.add("setting", None, key, (value, ttl))
            await self.stores[0].set(key, _entry(value), ttl_seconds=ttl)
            self.log.add("set", None, key)
        elif kind == "delete":
            self.log.add("deleting", None, op[1])
            await self.stores[0].delete(op[1])
            self.log.add("delete", None, op[1])
        elif kind == "get":
            self.log.add("getting", None, op[1])
            got = await self.stores[0].get(op[1])
            self.log.add("get", None, op[1], got)
        elif kind == "advance":
            self.log.add("advance", None, None, op[1])
            await trio.sleep(op[1])
        elif kind == "together":
            # Two operations with no settling between: the second lands mid-way.
            await self._step(nursery, op[1])
            await self._step(nursery, op[2])
        elif kind == "crash":
            # The process of a holder, if any.
            index = self._pick(op[1], "holding")
            process = op[1] if index is None else model.workers[index].process
            await self._crash(nursery, process % self.backend.processes)
        else:  # pragma: no cover
            raise AssertionError(op)

    def _cancel(self, index: int) -> None:
        scope = self.workers[index].scope
        if scope is not None:  # None: its call ended (a "together" step), nothing to cancel
            self.log.add("cancel", index, self.model.workers[index].key)
            scope.cancel()

    async def _crash(self, nursery: trio.Nursery, process: int) -> None:
        """The process dies: its claims stay in the file, renewed no more; then it restarts."""
        assert isinstance(self.backend, Sqlite)
        self.log.add("crash", None, None, process)
        for worker in self.workers.values():
            if worker.process == process:
                worker.crashed = True
        self.scopes[process].cancel()
        await self.ended[process].wait()
        rows = self.backend.rows(trio.current_time())
        dead = {key: (expires_at, token) for key, (token, expires_at) in rows.items()}
        self.log.add("dead", None, None, (process, dead))
        self.log.add("restart", None, None, process)
        await self._start(nursery, process)

    async def _settle(self) -> None:
        """Wait until every task is blocked, and check the state is one the stores may stay in.

        Redis answers in real time: there, poll (for 5 s at most) until the state holds.
        """
        self.finishing.clear()
        problem: str | None = None
        with trio.move_on_after(5):
            while True:
                await trio.testing.wait_all_tasks_blocked()
                self.model.replay(self.log)
                now = trio.current_time()
                problem = self.model.unsettled(now, self.backend.claims(now))
                if problem is None:
                    self.model.settled()
                    return
                if self.backend.mock_clock:
                    break  # every task waits: nothing changes until the clock moves
                await trio.sleep(0.002)
        raise AssertionError(f"{problem} after {self.model.where}")

    async def _drain(self) -> None:
        """Every holder releases and every waiter is served, until no claim is held."""
        for _ in range(50):
            holders = [i for i, w in self.model.workers.items() if w.kind == "holding"]
            waiting = any(w.kind == "waiting" for w in self.model.workers.values())
            dead = [at for at, _ in self.model.dead.values()]
            if not holders and not waiting and all(at <= trio.current_time() for at in dead):
                return
            for index in holders:
                self.model.workers[index].pending = True
                self.workers[index].send.send_nowait(("release",))
            if not holders and self.backend.mock_clock:
                await trio.sleep(POLL)
            await self._settle()
        raise AssertionError(f"not drained: {self.model.workers} at {self.model.where}")


# --------------------------------------------------------------------------- the strategies


def _ops(*, ttls: tuple[float | None, ...], clock: bool, crash: bool) -> st.SearchStrategy[Any]:
    """One operation, or (sometimes) two at once: a release and a claim, an advance and a
    cancellation...

    An operation's workers are picked by rank: ``("claim", n, key)`` makes the ``n``-th
    idle worker claim ``key``, ``("release", n, direct)`` the ``n``-th holder release
    (``direct``: the driver releases its claim, then the worker), ``("release_cancel", n,
    m)`` releases and cancels the ``m``-th waiter for that key at once.
    """
    # Claims most often: the interesting states need several workers claiming at once.
    # "get" first: what a failing sequence shrinks its padding to.
    kinds = ["get"] + ["claim"] * 5
    kinds += ["release", "finish", "finish", "cancel", "release_cancel"] * 2 + ["set", "delete"]
    if clock:
        kinds += ["advance"] * 2
    if crash:
        kinds += ["crash"]
    keys = ("a", "a", "a", "b")  # contention on "a", mostly
    radices = (WORKERS, WORKERS, len(keys), len(ttls), 2, len(STEPS))

    def op(kind: str, drawn: int) -> tuple[Any, ...]:
        # The arguments from one drawn number (one draw, not six: drawing is what costs).
        digits = []
        for radix in radices:
            drawn, digit = divmod(drawn, radix)
            digits.append(digit)
        n, m, key, ttl, direct, step = digits
        return {
            "claim": (kind, n, keys[key]),
            "release": (kind, n, bool(direct)),
            "finish": (kind, n, ttls[ttl]),
            "cancel": (kind, n),
            "release_cancel": (kind, n, m),
            "set": (kind, keys[key], ttls[ttl]),
            "delete": (kind, keys[key]),
            "get": (kind, keys[key]),
            "advance": (kind, STEPS[step]),
            "crash": (kind, n),
        }[kind]

    one = st.builds(op, st.sampled_from(kinds), st.integers(0, math.prod(radices) - 1))
    return st.one_of(one, one, one, st.tuples(st.just("together"), one, one))


# Deterministic: the same sequences every run (trio's scheduling is seeded by Hypothesis).
_SETTINGS = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@settings(_SETTINGS, max_examples=150)
@given(ops=st.lists(_ops(ttls=TTLS, clock=True, crash=False), min_size=20, max_size=50))
def test_in_memory_claims_follow_the_model(ops: list[tuple[Any, ...]]) -> None:
    run = Run(Memory(), ops)
    trio.run(run.main, clock=trio.testing.MockClock(autojump_threshold=0))


@settings(_SETTINGS, max_examples=60)
@given(ops=st.lists(_ops(ttls=TTLS, clock=True, crash=False), min_size=20, max_size=50))
def test_local_claims_of_a_reference_store_follow_the_model(ops: list[tuple[Any, ...]]) -> None:
    """The claims the interceptor keeps for a store with only ``get``/``set``/``delete``."""
    trio.run(Run(Local(), ops).main, clock=trio.testing.MockClock(autojump_threshold=0))


_paths = itertools.count()


@settings(_SETTINGS, max_examples=100)
@given(ops=st.lists(_ops(ttls=TTLS, clock=True, crash=True), min_size=20, max_size=50))
def test_sqlite_claims_follow_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ops: list[tuple[Any, ...]]
) -> None:
    # Statements inline: the virtual clock must not jump while one runs in a thread.
    monkeypatch.setattr(trio.to_thread, "run_sync", inline_run_sync)
    backend = Sqlite(str(tmp_path / f"claims-{next(_paths)}.db"))
    try:
        trio.run(Run(backend, ops).main, clock=trio.testing.MockClock(autojump_threshold=0))
    finally:
        if backend.reader is not None:
            backend.reader.close()


@settings(_SETTINGS, max_examples=25)
@given(ops=st.lists(_ops(ttls=REDIS_TTLS, clock=False, crash=False), min_size=10, max_size=25))
def test_redis_claims_follow_the_model(redis_server: str, ops: list[tuple[Any, ...]]) -> None:
    from .conftest import _command

    assert _command(redis_server, "FLUSHDB").startswith(b"+OK")
    trio.run(Run(Redis(redis_server), ops).main)
