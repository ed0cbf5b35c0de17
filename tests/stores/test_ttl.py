"""Times to live of the shared stores: SQLite on an injected wall clock, Redis by PX.

An idempotency claim whose holder died (here: a store closed without releasing,
which also stops renewing the lease) frees its key after one lease.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
import trio

from stageflow_trio.pipeline.idempotency import CachedStageResult, IdempotencyClaim
from stageflow_trio.stores import open_stores
from stageflow_trio.stores.redis import RedisIdempotencyStore
from stageflow_trio.stores.sqlite import open_sqlite_stores

from ._worker import entry as _entry
from .test_idempotency_contract import _same


def _claim_expiry(path: str, key: str) -> float:
    # closing(): a connection's own ``with`` commits, it does not close.
    with closing(sqlite3.connect(path)) as connection:
        row = connection.execute(
            "SELECT expires_at FROM idempotency_claims WHERE key = ?", (key,)
        ).fetchone()
    assert row is not None, f"no claim on {key!r}"
    expires_at: float = row[0]
    return expires_at


class FakeWallClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_sqlite_entries_expire_on_the_injected_clock(tmp_path: Path) -> None:
    clock = FakeWallClock()
    async with open_sqlite_stores(str(tmp_path / "s.db"), clock=clock) as stores:
        await stores.idempotency.set("k", _entry(1), ttl_seconds=10)
        got = await stores.idempotency.get("k")
        assert got is not None
        assert got.expires_at == 1_000_010.0
        clock.now += 9.999
        _same(await stores.idempotency.claim("k"), _entry(1))
        clock.now += 0.001  # expired at its expiry instant
        assert await stores.idempotency.get("k") is None
        claim = await stores.idempotency.claim("k")
        assert isinstance(claim, IdempotencyClaim)  # the expired entry is gone


async def test_sqlite_a_dead_holders_claim_frees_its_key_after_one_lease(tmp_path: Path) -> None:
    clock = FakeWallClock()
    path = str(tmp_path / "s.db")
    async with open_sqlite_stores(path, clock=clock, claim_lease_seconds=10) as stores:
        assert isinstance(await stores.idempotency.claim("k"), IdempotencyClaim)
    # Closed without releasing: the claim stays until its lease ends.
    async with open_sqlite_stores(path, clock=clock, poll_interval=0.01) as stores:
        got: list[CachedStageResult | IdempotencyClaim] = []

        async def waiter() -> None:
            got.append(await stores.idempotency.claim("k"))

        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(waiter)
                await trio.sleep(0.05)  # several polls: still held
                assert got == []
                clock.now += 10
        assert isinstance(got[0], IdempotencyClaim)


async def test_sqlite_a_held_claim_is_renewed(tmp_path: Path) -> None:
    clock = FakeWallClock()
    path = str(tmp_path / "s.db")
    async with (
        open_sqlite_stores(path, clock=clock, claim_lease_seconds=0.03) as holder,
        open_sqlite_stores(path, clock=clock, poll_interval=0.01) as other,
    ):
        claim = await holder.idempotency.claim("k")
        assert isinstance(claim, IdempotencyClaim)
        assert _claim_expiry(path, "k") == pytest.approx(1_000_000.03)
        clock.now += 0.02
        # The holder renews every 10 ms (trio's clock, real here) to now + 0.03: wait
        # for the row to show it rather than for a fixed time.
        with trio.fail_after(5):
            while _claim_expiry(path, "k") < 1_000_000.045:  # noqa: ASYNC110 - a row to poll
                await trio.sleep(0.01)
        # Past the first lease (.03), inside the renewed one: held only because it was
        # renewed. (Before: the clock stayed inside the first lease, so this passed
        # with renewal switched off.)
        clock.now += 0.02
        with trio.move_on_after(0.05) as scope:
            await other.idempotency.claim("k")
        assert scope.cancelled_caught
        holder.idempotency.release(claim)
        with trio.fail_after(5):
            assert isinstance(await other.idempotency.claim("k"), IdempotencyClaim)


async def test_redis_entries_expire_by_px(redis_url: str) -> None:
    async with open_stores(redis_url) as stores:
        store = stores.idempotency
        assert isinstance(store, RedisIdempotencyStore)
        await store.set("k", _entry(1), ttl_seconds=0.05)
        _same(await store.get("k"), _entry(1))
        # Wall-clock time must pass for Redis to expire the key.
        await trio.sleep(0.08)
        assert await store.get("k") is None
        assert isinstance(await store.claim("k"), IdempotencyClaim)


async def test_redis_a_dead_holders_claim_frees_its_key_after_one_lease(redis_url: str) -> None:
    url = f"{redis_url}?claim_lease_seconds=0.3"
    async with open_stores(url) as stores:
        assert isinstance(await stores.idempotency.claim("k"), IdempotencyClaim)
        start = trio.current_time()
    async with open_stores(url) as stores:
        with trio.fail_after(5):
            claim = await stores.idempotency.claim("k")
        assert isinstance(claim, IdempotencyClaim)
        assert 0.25 < trio.current_time() - start < 1


async def test_redis_a_held_claim_is_renewed(redis_url: str) -> None:
    async with (
        open_stores(f"{redis_url}?claim_lease_seconds=0.06") as holder,
        open_stores(redis_url) as other,
    ):
        claim = await holder.idempotency.claim("k")
        assert isinstance(claim, IdempotencyClaim)
        with trio.move_on_after(0.15) as scope:  # 2.5 leases: renewed every 20 ms
            await other.idempotency.claim("k")
        assert scope.cancelled_caught
        holder.idempotency.release(claim)
        with trio.fail_after(5):
            assert isinstance(await other.idempotency.claim("k"), IdempotencyClaim)
