"""The stores' periodic work (lease renewals, purges) keeps its period start to start.

It runs on ``trio_util.periodic``: a renewal or purge that takes a while does not
push the next one back (before, each waited a whole period after the previous
one ended, so a slow database stretched every lease renewal by its own latency).
"""

from __future__ import annotations

from typing import Any

import trio

from stageflow_trio.pipeline.idempotency import IdempotencyClaim
from stageflow_trio.stores.redis import RedisIdempotencyStore
from stageflow_trio.stores.sqlite import PURGE_INTERVAL_SECONDS, SqliteIdempotencyStore


class SlowDatabase:
    """Answers every statement after ``latency`` seconds of trio's clock, noting when it was asked."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.asked: list[float] = []

    def clock(self) -> float:
        return 1_000.0

    async def run(self, fn: Any) -> None:
        self.asked.append(trio.current_time())
        await trio.sleep(self.latency)


class SlowRedis:
    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.asked: list[float] = []

    async def eval(self, *args: Any, **kwargs: Any) -> None:
        self.asked.append(trio.current_time())
        await trio.sleep(self.latency)


class Backend:
    def __init__(self, client: SlowRedis) -> None:
        self.client = client

    def key(self, *parts: str) -> str:
        return ":".join(("t", *parts))


async def run_for(seconds: float, work: Any) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(work)
        await trio.sleep(seconds)
        nursery.cancel_scope.cancel()


async def test_sqlite_lease_renewals_keep_their_period(autojump_clock: trio.abc.Clock) -> None:
    db = SlowDatabase(latency=1.0)
    store = SqliteIdempotencyStore(db, claim_lease_seconds=30.0)  # type: ignore[arg-type]
    claim = IdempotencyClaim("k")
    store._held[claim.token] = claim
    await run_for(35.0, store._renew_leases)
    assert db.asked == [10.0, 20.0, 30.0]


async def test_sqlite_renews_nothing_while_no_claim_is_held(autojump_clock: trio.abc.Clock) -> None:
    db = SlowDatabase(latency=1.0)
    store = SqliteIdempotencyStore(db, claim_lease_seconds=30.0)  # type: ignore[arg-type]
    await run_for(35.0, store._renew_leases)
    assert db.asked == []


async def test_sqlite_purges_keep_their_period(autojump_clock: trio.abc.Clock) -> None:
    db = SlowDatabase(latency=5.0)
    store = SqliteIdempotencyStore(db, claim_lease_seconds=30.0)  # type: ignore[arg-type]
    await run_for(3 * PURGE_INTERVAL_SECONDS + 1, store._purge_expired)
    assert db.asked == [PURGE_INTERVAL_SECONDS * n for n in (1, 2, 3)]


async def test_redis_lease_renewals_keep_their_period(autojump_clock: trio.abc.Clock) -> None:
    client = SlowRedis(latency=1.0)
    store = RedisIdempotencyStore(Backend(client), claim_lease_seconds=30.0)  # type: ignore[arg-type]
    claim = IdempotencyClaim("k")
    store._held[claim.token] = claim
    await run_for(35.0, store._renew_leases)
    assert client.asked == [10.0, 20.0, 30.0]
