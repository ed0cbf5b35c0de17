"""Audit 20: tests for two mutants of audit 19's store changes that no test killed.

- The SQLite stores' opener starts the idempotency store's background task inside the
  ``try`` whose ``finally`` closes it: a Ctrl-C landing as ``nursery.start`` returns
  (in its own last lines, which trio does not protect) must not leave that task,
  shielded, holding the block open for ever with the file still open.
- A Redis claim whose reply was lost releases what its script may have granted; when that
  direct release fails (an error, or no answer in time) the store's background task
  writes it: the key is free again and its waiters wake, long before the lease ends.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import TYPE_CHECKING, Any, cast

import coredis
import coredis.exceptions
import pytest
import trio

from stageflow_trio.pipeline.idempotency import IdempotencyClaim
from stageflow_trio.stores import sqlite as sqlite_module
from stageflow_trio.stores.redis import (
    _CLAIM,
    _RELEASE,
    CANCELLED_CLAIM_RELEASE_SECONDS,
    open_redis_stores,
)
from tests.test_audit18_trio_integration_3 import sqlite_closed
from tests.trio_setups import TaskLedger, inline_run_sync, run_under_sigint

from .conftest import _command

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

WATCHDOG_SECONDS = 10_000.0


# --------------------------------------------------------------------------- SQLite


class _SqliteOpening:
    """Opens SQLite stores (the test makes their background task's ``start`` end in a
    Ctrl-C); records what is left when the block has ended, or, if it never ends, what
    still runs when the watchdog fires."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.opened: list[sqlite3.Connection] = []
        self.stores: list[sqlite_module.SqliteIdempotencyStore] = []
        self.entered = False
        self.hung: list[str] | None = None  # the tasks still running, if the block hung
        self.leftover: list[str] = []
        self.elapsed = -1.0
        self.ledger = TaskLedger()

    def _others(self) -> list[str]:
        me = trio.lowlevel.current_task()
        return sorted(t.name for t in self.ledger.alive - {me} if "watchdog" not in t.name)

    async def run(self) -> None:
        trio.lowlevel.add_instrument(self.ledger)
        start = trio.current_time()

        async def watchdog() -> None:
            await trio.sleep(WATCHDOG_SECONDS)
            self.hung = self._others()
            if not all(sqlite_closed(connection) for connection in self.opened):
                self.hung.append("(the SQLite connection is open)")
            # Lets the shielded task end, so that the run (and the test) ends.
            for store in self.stores:
                store._close()

        trio.lowlevel.spawn_system_task(watchdog)
        try:
            async with sqlite_module.open_sqlite_stores(str(self.path)):
                self.entered = True
        finally:
            self.elapsed = trio.current_time() - start
            self.leftover = self._others()


def test_a_ctrl_c_as_the_sqlite_background_task_starts_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C lands in ``nursery.start``'s last lines, once the idempotency store's
    background task has moved into the opener's nursery and entered its shield (trio
    runs those lines unprotected: with its default, unrestricted delivery, the
    KeyboardInterrupt is raised right there). The KeyboardInterrupt reaches the caller at
    once; no task is left, the connection is closed. With the ``start`` outside the
    ``try`` that closes the store, ``_close`` never ran: the task and its renewals and
    purge ran on shielded, the nursery waited for them for ever, and the file stayed open."""
    monkeypatch.setattr(trio.to_thread, "run_sync", inline_run_sync)
    scenario = _SqliteOpening(tmp_path / "stores.db")
    real_connect = sqlite_module._connect

    def recording_connect(path: str, setting: str) -> sqlite3.Connection:
        connection = real_connect(path, setting)
        scenario.opened.append(connection)
        return connection

    real_start = trio.Nursery.start

    async def start_then_ctrl_c(
        nursery: trio.Nursery, async_fn: Callable[..., Awaitable[object]], *args: object
    ) -> object:
        value = await real_start(nursery, async_fn, *args)
        store = getattr(async_fn, "__self__", None)
        if isinstance(store, sqlite_module.SqliteIdempotencyStore):
            scenario.stores.append(store)
            raise KeyboardInterrupt
        return value

    monkeypatch.setattr(sqlite_module, "_connect", recording_connect)
    monkeypatch.setattr(trio.Nursery, "start", start_then_ctrl_c)
    error, _, instrument = run_under_sigint(lambda: scenario, None, restrict=False)
    assert not instrument.sent  # the KeyboardInterrupt is the patched start's
    assert scenario.hung is None, f"the block hung; still running: {scenario.hung}"
    assert type(error) is KeyboardInterrupt, repr(error)
    assert not scenario.entered
    assert scenario.elapsed == 0
    assert scenario.leftover == []
    [store] = scenario.stores
    assert store._drained.is_set()
    [connection] = scenario.opened
    assert sqlite_closed(connection)


# --------------------------------------------------------------------------- Redis


class _LostReplyRedis(coredis.Redis):  # type: ignore[type-arg]
    """A client that loses the reply to a claim script the server ran (``lose_claim``),
    then fails the direct release of what it granted (``direct``: ``"error"``, a
    connection error; ``"silent"``, no answer). The next release, the store's background
    task's, is held until ``allow`` is set."""

    lose_claim = False
    direct = ""
    releases: list[str]
    allow: trio.Event
    refused: trio.Event  # a claim script found the key held

    async def eval(self, script: Any, keys: Any = None, args: Any = None) -> Any:  # type: ignore[override]
        if script == _RELEASE:
            if self.direct:
                how, self.direct = self.direct, ""
                self.releases.append(how)
                if how == "silent":
                    await trio.sleep_forever()
                raise coredis.exceptions.ConnectionError("connection lost (injected)")
            await self.allow.wait()
            self.releases.append("sent")
        result: Any = await super().eval(script, keys=keys, args=args)
        if script == _CLAIM:
            if self.lose_claim:
                self.lose_claim = False
                raise coredis.exceptions.ConnectionError("reply lost (injected)")
            if int(result[0]) == 0:
                self.refused.set()
        return result


@pytest.mark.parametrize("direct", ["error", "silent"])
async def test_redis_a_claim_whose_direct_release_fails_is_released_by_the_background_task(
    redis_url: str, caplog: pytest.LogCaptureFixture, direct: str
) -> None:
    """The reply to a granted claim is lost, and the claim's own release of it fails:
    the store's background task writes that release, so the key is free again and a
    waiter on it wakes at once. Without that fallback the key stayed held until its
    lease ran out (600 s here; the waiter looks again only then: resync 600 s too)."""
    client = cast("_LostReplyRedis", _LostReplyRedis.from_url(redis_url))
    client.releases = []
    client.allow = trio.Event()
    client.refused = trio.Event()
    key = "stageflow:idem:claim:k"
    got: list[object] = []
    with caplog.at_level(logging.WARNING, logger="stageflow_trio.stores"):
        async with open_redis_stores(
            client=client, claim_lease_seconds=600, resync_interval=600
        ) as stores:
            store = stores.idempotency
            client.lose_claim, client.direct = True, direct
            start = trio.current_time()
            with pytest.raises(coredis.exceptions.ConnectionError, match=r"^reply lost"):
                await store.claim("k")
            if direct == "silent":  # the direct release waited its bound
                assert trio.current_time() - start >= CANCELLED_CLAIM_RELEASE_SECONDS
            assert client.releases == [direct]
            # The server granted the claim, and the direct release left it there.
            assert _command(redis_url, "EXISTS", key) == b":1\r\n"

            async def waiter() -> None:
                got.append(await store.claim("k"))

            # Generous for a loaded machine: the waiter is woken within milliseconds.
            with trio.fail_after(30):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(waiter)
                    await client.refused.wait()  # the waiter found the key held
                    client.allow.set()  # the background task's release goes out
            assert client.releases == [direct, "sent"]
            [claim] = got
            assert isinstance(claim, IdempotencyClaim)
            store.release(claim)
    assert _command(redis_url, "EXISTS", key) == b":0\r\n"
    if direct == "error":
        assert "could not release claim 'k'" in caplog.text
