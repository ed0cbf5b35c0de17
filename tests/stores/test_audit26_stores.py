"""Audit 26 (stores): three leftovers of the idempotency stores.

1. A Ctrl-C between a claim becoming real in the store and the code that owns its
   release (fixed). Trio raises a ``KeyboardInterrupt`` wherever unprotected code
   runs when the signal comes; the claim was written (the SQLite row, the Redis key),
   then a ``KeyboardInterrupt`` landing before the claim was handed to whoever releases
   it left the key blocked for a lease (30 s, for every worker), or for good in the
   in-memory store. The windows found, each simulated here by sending SIGINT (trio's
   own handler decides, as for a real Ctrl-C) from a patched point inside it:

   - the store's ``claim`` after its write: the SQLite row committed, or the claim
     recorded in the store's ``_held`` (SQLite, Redis), not yet returned;
   - the interceptor's ``before`` after ``claim`` returned, before the claim is in
     ``_owned`` (where ``after`` / ``on_abort`` find it);
   - ``after`` / ``on_abort`` between taking the claim out of ``_owned`` and releasing
     it;
   - the chain's abort path: the ``except`` block of ``_run_chain`` before it calls the
     ``on_abort`` hooks, and ``_abort`` between two hooks (a Ctrl-C while a call is
     being cancelled, or a second one).

   Fixed by KI protection (``trio.lowlevel.enable_ki_protection``, which marks code
   objects: no cost per call) of the SQLite and Redis stores' ``claim`` and
   ``release``, the interceptor's three hooks, and the chain's abort path (moved into
   a protected helper, ``_aborted``); trio then raises the KeyboardInterrupt in the main
   task at its next checkpoint, once the claim is owned: the stage's here, so the call
   is aborted and releases its claim. Between ``before`` returning and the chain
   counting it (``entered += 1``), and between the chain marking an ``after`` as called
   and that hook's first line, CPython checks for signals nowhere (the bytecode holds
   no call and no backward jump there, and a resumption after ``await`` does not
   check), so no window remains. ``python -m benchmarks interceptors`` (default chain)
   gave the same ratios before and after (0.32-0.36 / 0.22-0.24 / 0.19-0.21, three runs
   each). Each test below fails on the old code (the key is left claimed); so does each
   test when the decorator it is about is removed (``on_abort``'s is also covered by
   the chain's protected abort path).

2. A Redis claim release failing during an outage logged its traceback, chained
   ("During handling of the above exception, another exception occurred") to the
   claim's own error when the release followed a failed claim (fixed): one warning
   per failed write now, no traceback, naming the key, the error and its causes, and
   the lease that frees the key. The lease renewals' warning is made alike.

3. Old pending approval requests that are never closed stay in the index of the
   versions before retention and are looked at again at each open (kept as is). The
   sweep cannot drop them: a version before retention still running (a rolling
   upgrade) may close one without an expiry, and the next open's sweep is what gives
   it one. The cost is one script per 250 of them at each open, below that of one
   ``pending()`` call, which reads all of them every time (they are pending requests,
   kept until closed by design): with 10,000 such requests, the sweep took 41 scripts,
   47-64 ms, and ``pending()`` 204-294 ms (local Redis). An id leaves that index once
   its request is closed or removed (checked below).

4. Noticed while fixing 2: a closing store whose drain ran out of time (a paused Redis,
   a SQLite file another process keeps locked) dropped the releases it had not written
   with no record (fixed): ``serve_releases`` hands them to the store, which logs one
   warning naming the keys and the lease that frees them.
"""

from __future__ import annotations

import gc
import logging
import signal
import sqlite3
import sys
import uuid
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import coredis.exceptions
import pytest
import trio

from stageflow_trio._engine import _stage_call
from stageflow_trio.pipeline import idempotency as idempotency_module
from stageflow_trio.pipeline.idempotency import (
    IdempotencyClaim,
    IdempotencyInterceptor,
    InMemoryIdempotencyStore,
)
from stageflow_trio.pipeline.interceptors import BaseInterceptor, run_with_interceptors
from stageflow_trio.stores._common import log_unreleased, serve_releases
from stageflow_trio.stores.redis import open_redis_stores
from stageflow_trio.stores.sqlite import SqliteIdempotencyStore, open_sqlite_stores
from stageflow_trio.testing import create_test_pipeline_context
from tests.fakes import CountingStage
from tests.stores.conftest import _command
from tests.trio_setups import inline_run_sync, mock_clock

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractAsyncContextManager

    from stageflow_trio.pipeline.idempotency import IdempotencyStore
    from stageflow_trio.stages.context import PipelineContext
    from stageflow_trio.stages.result import StageResult
    from stageflow_trio.stores import Stores

STORE_KEY = '["charge", "req-1"]'


def make_ctx() -> PipelineContext:
    ctx = create_test_pipeline_context()
    ctx.data["idempotency_key"] = "req-1"
    return ctx


def ctrl_c(seen: list[bool]) -> None:
    """A Ctrl-C landing here: SIGINT, handled by trio's handler as a real one would be
    (raised here when this code is unprotected, else delivered at the next checkpoint)."""
    seen.append(trio.lowlevel.currently_ki_protected())
    signal.raise_signal(signal.SIGINT)


class CtrlCOnRecord(dict[str, IdempotencyClaim]):
    """A store's ``_held``: a Ctrl-C lands right after the store records a claim."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[bool] = []

    def __setitem__(self, token: str, claim: IdempotencyClaim) -> None:
        super().__setitem__(token, claim)
        ctrl_c(self.seen)


# Per backend: a block opening the stores (a file or key prefix of the test's own) and a
# look at the shared state: is the claim still there after the process let go?


class SqliteBackend:
    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        # No worker thread: the autojump clock must not jump while a statement runs.
        monkeypatch.setattr(trio.to_thread, "run_sync", inline_run_sync)
        self.path = str(tmp_path / "stores.db")

    def clock(self) -> trio.abc.Clock | None:
        return mock_clock()

    def open(self) -> AbstractAsyncContextManager[Stores]:
        return open_sqlite_stores(self.path)

    def claimed(self) -> list[str]:
        with closing(sqlite3.connect(self.path)) as connection:
            return [row[0] for row in connection.execute("SELECT key FROM idempotency_claims")]


class RedisBackend:
    def __init__(self, url: str) -> None:
        self.url = url
        self.prefix = f"audit26-stores:{uuid.uuid4().hex}:"

    def clock(self) -> trio.abc.Clock | None:
        # Real time: the client's connect and reads wait on sockets, and an autojump
        # clock would jump past connect_timeout meanwhile. Nothing here sleeps.
        return None

    def open(self) -> AbstractAsyncContextManager[Stores]:
        return open_redis_stores(self.url, prefix=self.prefix)

    def claimed(self) -> list[str]:
        key = f"{self.prefix}idem:claim:{STORE_KEY}"
        return [STORE_KEY] if _command(self.url, "EXISTS", key) == b":1\r\n" else []

    def clean(self) -> None:
        for name in (f"idem:claim:{STORE_KEY}", f"idem:result:{STORE_KEY}", "schema"):
            _command(self.url, "DEL", self.prefix + name)


Backend = SqliteBackend | RedisBackend


def make_backend(
    name: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Backend:
    if name == "sqlite":
        return SqliteBackend(tmp_path, monkeypatch)
    # The session's server, not emptied: these tests touch only their own prefix.
    backend = RedisBackend(request.getfixturevalue("redis_server"))
    request.addfinalizer(gc.collect)  # coredis's unclosed streams, in the test that made them
    request.addfinalizer(backend.clean)
    return backend


@pytest.fixture(params=["sqlite", "redis"])
def shared(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Backend:
    return make_backend(request.param, request, tmp_path, monkeypatch)


def run(main: Callable[[], Any], backend: Backend | None = None) -> None:
    trio.run(main, clock=mock_clock() if backend is None else backend.clock())


async def claim_at_once(store: IdempotencyStore) -> None:
    """The key is free: a new claim is granted at once (virtual or real time)."""
    with trio.fail_after(1):
        claim = await store.claim(STORE_KEY)
    assert isinstance(claim, IdempotencyClaim)
    store.release(claim)


def check_free(backend: Backend) -> None:
    assert backend.claimed() == []

    async def again() -> None:
        async with backend.open() as stores:
            await claim_at_once(stores.idempotency)

    run(again, backend)


# --- 1. A Ctrl-C in the store's claim, right after its write ------------------------------


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_ctrl_c_as_the_store_records_its_claim_leaves_no_claim_behind(shared: Backend) -> None:
    """SIGINT right after the store recorded the claim its write was granted (SQLite: the
    row committed; Redis: the key set), before ``claim`` returned it: the KeyboardInterrupt
    comes at the stage's checkpoint instead, the call is aborted and releases the claim.
    Before, it was raised right there, out of ``claim``: the claim stayed in the store
    (and in its ``_held``, renewed while the stores stayed open) until its lease ran out."""
    stage = CountingStage()
    seen: list[bool] = []

    async def main() -> None:
        async with shared.open() as stores:
            store = stores.idempotency
            held = CtrlCOnRecord()
            store._held = held  # type: ignore[attr-defined]
            try:
                await run_with_interceptors(
                    "charge", stage, make_ctx(), [IdempotencyInterceptor(store=store)]
                )
            finally:
                seen.extend(held.seen)

    with pytest.raises(KeyboardInterrupt):
        run(main, shared)
    assert shared.claimed() == []
    assert seen == [True]
    assert stage.calls == 1  # interrupted at its checkpoint
    check_free(shared)


def test_a_ctrl_c_as_the_sqlite_claim_commits_leaves_no_row_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGINT as the claim's transaction hands its result back, before ``claim`` looked
    at it: before, the committed row stayed for a lease, and nobody held it."""
    backend = SqliteBackend(tmp_path, monkeypatch)
    seen: list[bool] = []

    async def main() -> None:
        async with backend.open() as stores:
            store = stores.idempotency
            assert isinstance(store, SqliteIdempotencyStore)
            db = store._db
            real = db.transaction

            async def transaction(fn: Callable[[sqlite3.Connection], Any]) -> Any:
                value = await real(fn)
                if isinstance(value, IdempotencyClaim):
                    ctrl_c(seen)
                return value

            monkeypatch.setattr(db, "transaction", transaction)
            await run_with_interceptors(
                "charge", CountingStage(), make_ctx(), [IdempotencyInterceptor(store=store)]
            )

    with pytest.raises(KeyboardInterrupt):
        run(main, backend)
    assert backend.claimed() == []
    assert seen == [True]
    check_free(backend)


class CtrlCOnForget(dict[str, IdempotencyClaim]):
    """A store's ``_held``: a Ctrl-C lands as ``release`` forgets a claim, before it queues
    the claim's release for the background task."""

    def __init__(self, held: dict[str, IdempotencyClaim]) -> None:
        super().__init__(held)
        self.seen: list[bool] = []

    def pop(self, token: str, default: Any = None) -> Any:
        value = super().pop(token, default)
        if value is not None:  # (a claim released already is ignored)
            ctrl_c(self.seen)
        return value


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("where", ["claim", "release"])
def test_a_ctrl_c_inside_the_store_calls_leaves_no_claim_behind(
    shared: Backend, where: str
) -> None:
    """The store used directly. SIGINT as ``claim`` records its grant: ``claim`` returns
    the claim, and the KeyboardInterrupt comes at the caller's next checkpoint, in the
    ``try`` whose ``finally`` releases it. SIGINT as ``release`` forgets the claim: the
    release is queued all the same, and written as the stores close. Before, the first
    left ``claim`` with the claim recorded and nobody holding it, the second left the
    claim forgotten and never released: the key blocked for a lease."""
    hooks: list[CtrlCOnRecord | CtrlCOnForget] = []
    got: list[object] = []

    async def main() -> None:
        async with shared.open() as stores:
            store = stores.idempotency
            if where == "claim":
                hooks.append(CtrlCOnRecord())
                store._held = hooks[0]  # type: ignore[attr-defined]
            claim = await store.claim(STORE_KEY)
            got.append(claim)
            assert isinstance(claim, IdempotencyClaim)
            try:
                if where == "release":
                    hooks.append(CtrlCOnForget(store._held))  # type: ignore[attr-defined]
                    store._held = hooks[0]  # type: ignore[attr-defined]
                    store.release(claim)
                await trio.lowlevel.checkpoint()  # the KeyboardInterrupt comes here
            finally:
                store.release(claim)  # (a claim released already is ignored)

    with pytest.raises(KeyboardInterrupt):
        run(main, shared)
    assert shared.claimed() == []
    [hook] = hooks
    assert hook.seen == [True]
    assert len(got) == 1
    check_free(shared)


# --- 1. A Ctrl-C in the interceptor's bookkeeping --------------------------------------


class CtrlCHeldClaim(idempotency_module._HeldClaim):
    """The mark ``before`` makes once granted: a Ctrl-C lands as it is made."""

    seen: ClassVar[list[bool]] = []

    def __init__(self, scope: object, key: str) -> None:
        super().__init__(scope, key)
        ctrl_c(self.seen)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("kind", ["memory", "sqlite", "redis"])
def test_a_ctrl_c_in_before_once_granted_leaves_no_claim_behind(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGINT in ``before`` after ``claim`` returned, before the claim is where ``after``
    and ``on_abort`` find it. Before, the KeyboardInterrupt left ``before`` there: the
    chain called no ``on_abort`` (``before`` had not returned) and nobody released the
    claim: for a lease in a shared store, for ever in the in-memory one."""
    seen: list[bool] = []
    monkeypatch.setattr(CtrlCHeldClaim, "seen", seen)
    real = idempotency_module._HeldClaim
    monkeypatch.setattr(idempotency_module, "_HeldClaim", CtrlCHeldClaim)
    memory = InMemoryIdempotencyStore()
    backend = None if kind == "memory" else make_backend(kind, request, tmp_path, monkeypatch)

    async def main() -> None:
        if backend is None:
            await run_with_interceptors(
                "charge", CountingStage(), make_ctx(), [IdempotencyInterceptor(store=memory)]
            )
            return
        async with backend.open() as stores:
            await run_with_interceptors(
                "charge",
                CountingStage(),
                make_ctx(),
                [IdempotencyInterceptor(store=stores.idempotency)],
            )

    with pytest.raises(KeyboardInterrupt):
        run(main, backend)
    monkeypatch.setattr(idempotency_module, "_HeldClaim", real)
    if backend is None:
        assert not memory.is_claimed(STORE_KEY)
    else:
        assert backend.claimed() == []
    assert seen == [True]
    if backend is None:
        run(lambda: claim_at_once(memory))
    else:
        check_free(backend)


# --- 1. A Ctrl-C in after / on_abort between taking the claim and releasing it -----------


class CtrlCOnTake(dict[Any, Any]):
    """An interceptor's ``_owned``: a Ctrl-C lands as a hook takes its claim out."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[bool] = []

    def pop(self, key: Any, default: Any = None) -> Any:
        value = super().pop(key, default)
        ctrl_c(self.seen)
        return value


@pytest.mark.parametrize("hook", ["after", "on_abort"])
def test_a_ctrl_c_as_a_hook_takes_its_claim_still_releases_it(hook: str) -> None:
    """SIGINT in ``after`` (the stage completed) or ``on_abort`` (the call was cancelled)
    right after the hook took the claim out of ``_owned``: the claim is released (and
    ``after`` still caches the result). Before, the KeyboardInterrupt left the hook there,
    with the claim taken and never released: the key stayed claimed for ever."""
    store = InMemoryIdempotencyStore()
    interceptor = IdempotencyInterceptor(store=store)
    owned = CtrlCOnTake()
    interceptor._owned = owned
    stage = CountingStage(delay=10 if hook == "on_abort" else 0)

    async def main() -> None:
        with trio.move_on_after(1):
            await run_with_interceptors("charge", stage, make_ctx(), [interceptor])

    with pytest.raises(KeyboardInterrupt):
        run(main)
    assert not store.is_claimed(STORE_KEY)
    assert owned.seen == [True]
    assert (store._entries.get(STORE_KEY) is not None) == (hook == "after")


# --- 1. A Ctrl-C in the chain's abort path -------------------------------------------------


class LookedUpAbort(BaseInterceptor):
    """An interceptor whose ``on_abort`` is looked up as a property: a stand-in for a
    Ctrl-C landing in the chain's own code between two abort hooks."""

    name = "looked-up"
    priority = 30
    seen: list[bool]

    async def before(self, stage_name: str, ctx: PipelineContext) -> None:
        return None

    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        return None

    @property
    def on_abort(self) -> Callable[[str, PipelineContext], Any]:
        ctrl_c(self.seen)
        return self._on_abort

    async def _on_abort(self, stage_name: str, ctx: PipelineContext) -> None:
        await trio.lowlevel.checkpoint()


@pytest.mark.parametrize("where", ["before_the_hooks", "between_the_hooks"])
def test_a_ctrl_c_on_the_chain_abort_path_still_releases_the_claim(
    where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A call being cancelled: SIGINT lands in the chain's except block before it runs
    the ``on_abort`` hooks, or in ``_abort`` before it reaches the idempotency hook (the
    last: priority 4). Before, the KeyboardInterrupt raised there ended the abort path,
    and the idempotency hook that releases the claim never ran."""
    store = InMemoryIdempotencyStore()
    seen: list[bool] = []
    other = LookedUpAbort()
    other.seen = seen if where == "between_the_hooks" else []
    if where == "before_the_hooks":
        real = _stage_call._end_completion

        def end_completion(completion: Any) -> None:
            if isinstance(sys.exc_info()[1], trio.Cancelled) and not seen:
                ctrl_c(seen)
            real(completion)

        monkeypatch.setattr(_stage_call, "_end_completion", end_completion)

    async def main() -> None:
        with trio.move_on_after(1):
            await run_with_interceptors(
                "charge",
                CountingStage(delay=10),
                make_ctx(),
                [IdempotencyInterceptor(store=store), other],
            )

    with pytest.raises(KeyboardInterrupt):
        run(main)
    assert not store.is_claimed(STORE_KEY)
    assert seen == [True]


# --- 2. The warning of a release that could not be written --------------------------------


def test_an_unreleased_claim_is_one_warning_naming_the_key_the_error_and_the_lease(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No traceback: the error's text and its causes' (``raise ... from``), never the
    exception it was raised while handling (a ``Cancelled`` being drained, the claim's
    own error)."""
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except OSError as refused:
            raise coredis.exceptions.ConnectionError("Unable to connect") from refused
    except coredis.exceptions.ConnectionError as exc:
        error = exc
    try:
        raise RuntimeError("the claim's own error")
    except RuntimeError:
        try:
            raise error
        except coredis.exceptions.ConnectionError:
            pass
    assert isinstance(error.__context__, RuntimeError)  # what the old record printed
    with caplog.at_level(logging.WARNING, logger="stageflow_trio.stores"):
        log_unreleased([IdempotencyClaim("k1", "t1")], error, 30)
        log_unreleased([IdempotencyClaim("k1", "t1"), IdempotencyClaim("k2", "t2")], error, 0.5)
    assert caplog.messages == [
        "could not release claim 'k1' (ConnectionError: Unable to connect, from"
        " ConnectionRefusedError: [Errno 111] Connection refused); its lease frees the key"
        " within 30 s",
        "could not release 2 claims ['k1', 'k2'] (ConnectionError: Unable to connect, from"
        " ConnectionRefusedError: [Errno 111] Connection refused); their leases free the"
        " keys within 0.5 s",
    ]
    assert all(record.levelno == logging.WARNING for record in caplog.records)
    assert all(record.exc_info is None for record in caplog.records)


class OutageClient:
    """The stores' client during an outage: the claim's script is lost on its way (the
    connection dropped), then every release is refused (the server is gone)."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.releases = 0

    async def eval(self, script: str, *, keys: list[str], args: list[str]) -> Any:
        await trio.lowlevel.checkpoint()
        if "'NX'" in script:  # the claim
            raise coredis.exceptions.ConnectionError("Connection lost")
        self.releases += 1
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except OSError as refused:
            raise coredis.exceptions.ConnectionError("Unable to connect") from refused


async def test_redis_a_release_failing_in_an_outage_is_one_clear_warning(
    redis_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The claim fails (its script may have been granted), so ``claim`` releases what it
    may hold, and that release fails too. The record was the release's traceback chained
    to the claim's error ("During handling of the above exception, another exception
    occurred"); it is one line now, saying what to expect."""
    prefix = f"audit26-stores:{uuid.uuid4().hex}:"
    try:
        with caplog.at_level(logging.WARNING, logger="stageflow_trio.stores"):
            async with open_redis_stores(
                redis_server, prefix=prefix, claim_lease_seconds=12
            ) as stores:
                store = stores.idempotency
                real = store._client  # type: ignore[attr-defined]
                client = OutageClient(real)
                store._client = client  # type: ignore[attr-defined]
                with pytest.raises(coredis.exceptions.ConnectionError, match="Connection lost"):
                    await store.claim("k")
                store._client = real  # type: ignore[attr-defined]
        assert client.releases == 1  # the background task's retry went to the server
        [record] = [r for r in caplog.records if r.name == "stageflow_trio.stores"]
        assert record.getMessage() == (
            "could not release claim 'k' (ConnectionError: Unable to connect, from"
            " ConnectionRefusedError: [Errno 111] Connection refused); trying again in the"
            " background; its lease frees the key within 12 s"
        )
        assert record.exc_info is None
    finally:
        _command(redis_server, "DEL", f"{prefix}schema")
        gc.collect()


# --- 3. The legacy approval index ----------------------------------------------------------


async def test_redis_a_legacy_pending_request_leaves_the_old_index_once_closed(
    redis_server: str,
) -> None:
    """Kept as is: a pending request a version before retention made stays in its
    creation-ordered index (looked at again at each open, so that a close by such a
    version still gets an expiry), and leaves it at the first open after it is closed."""
    from stageflow_trio.tools.approval import ApprovalRequest, ApprovalStatus

    prefix = f"audit26-stores:{uuid.uuid4().hex}:"
    request = ApprovalRequest(
        id=uuid.uuid4(), action_id=uuid.uuid4(), tool_name="t", approval_message="m"
    )
    index = f"{prefix}approvals"
    try:
        async with open_redis_stores(redis_server, prefix=prefix) as stores:
            await stores.approvals.add(request)
        # As a version before retention listed it.
        _command(redis_server, "ZADD", index, "1", str(request.id))
        for _ in range(2):
            async with open_redis_stores(redis_server, prefix=prefix):
                pass
            assert _command(redis_server, "ZCARD", index) == b":1\r\n"
        async with open_redis_stores(redis_server, prefix=prefix) as stores:
            await stores.approvals.close_pending(request.id, ApprovalStatus.CANCELLED, None)
        async with open_redis_stores(redis_server, prefix=prefix):
            pass
        assert _command(redis_server, "ZCARD", index) == b":0\r\n"
    finally:
        for name in (
            "schema",
            "approvals",
            "approvals:seq",
            "approvals:pending",
            f"approvals:action:{request.action_id}",
            f"approval:{request.id}",
        ):
            _command(redis_server, "DEL", f"{prefix}{name}")
        gc.collect()


# 4. A closing store whose drain runs out of time (fixed): the releases not written were
#    dropped with no record (a paused Redis, a locked SQLite file at close). The lease
#    still frees their keys; now a warning says which, and when.


async def test_serve_releases_hands_over_what_a_cut_drain_did_not_write(
    autojump_clock: trio.testing.MockClock,
) -> None:
    send, receive = trio.open_memory_channel[IdempotencyClaim](10)
    written: list[str] = []
    unwritten: list[list[str]] = []
    hang = trio.Event()

    async def write(batch: list[IdempotencyClaim]) -> None:
        if batch[0].key == "c":
            await hang.wait()  # the server stopped answering
        written.extend(claim.key for claim in batch)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            serve_releases,
            receive,
            write,
            2.0,
            lambda claims: unwritten.append([claim.key for claim in claims]),
        )
        for key in "ab":
            send.send_nowait(IdempotencyClaim(key=key))
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
        for key in "cde":  # queued while the store closes: the drain takes them
            send.send_nowait(IdempotencyClaim(key=key))
    assert written == ["a", "b"]
    assert unwritten == [["c", "d", "e"]]  # the batch cut and nothing else was left
    assert trio.current_time() == pytest.approx(2.0)


async def test_serve_releases_reports_nothing_when_the_drain_finishes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    send, receive = trio.open_memory_channel[IdempotencyClaim](10)
    unwritten: list[object] = []

    async def write(batch: list[IdempotencyClaim]) -> None:
        await trio.sleep(0.5)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve_releases, receive, write, 2.0, unwritten.append)
        send.send_nowait(IdempotencyClaim(key="a"))
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
        send.close()
    assert unwritten == []


def test_a_store_closing_with_releases_it_could_not_write_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    backend = SqliteBackend(tmp_path, monkeypatch)

    async def stuck(self: SqliteIdempotencyStore, claims: list[IdempotencyClaim]) -> None:
        await trio.sleep_forever()  # a file another process keeps locked

    async def main() -> None:
        monkeypatch.setattr(SqliteIdempotencyStore, "_write_release", stuck)
        with trio.CancelScope() as scope:
            async with backend.open() as stores:
                store = stores.idempotency
                assert isinstance(store, SqliteIdempotencyStore)
                claim = await store.claim("order-7")
                assert isinstance(claim, IdempotencyClaim)
                store.release(claim)
                scope.cancel()
                await trio.sleep_forever()

    with caplog.at_level(logging.WARNING, logger="stageflow_trio.stores"):
        trio.run(main, clock=backend.clock())
    assert [record.getMessage() for record in caplog.records] == [
        "SqliteIdempotencyStore closed with 1 claim releases not written within 5 s"
        " ['order-7']; their leases free the keys within 30 s"
    ]
    assert backend.claimed() == ["order-7"]  # still there: its lease frees it
