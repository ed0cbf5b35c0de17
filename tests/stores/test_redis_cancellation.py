"""Cancelling ``RedisIdempotencyStore.claim``: a checkpoint, cancellable while Redis is
silent, and a caller cancelled inside it holds nothing."""

from __future__ import annotations

import trio

from stageflow_trio.pipeline.idempotency import IdempotencyClaim
from stageflow_trio.stores import open_stores
from stageflow_trio.stores.redis import CANCELLED_CLAIM_RELEASE_SECONDS

from .conftest import OwnRedis, _command


async def test_a_cancelled_caller_sends_nothing_and_holds_nothing(redis_url: str) -> None:
    async with open_stores(redis_url) as stores:
        with trio.CancelScope() as scope:
            scope.cancel()
            await stores.idempotency.claim("k")
        assert scope.cancelled_caught
        assert _command(redis_url, "EXISTS", "stageflow:idem:claim:k") == b":0\r\n"
        with trio.fail_after(5):
            assert isinstance(await stores.idempotency.claim("k"), IdempotencyClaim)


async def _resume_later(server: OwnRedis, seconds: float) -> None:
    await trio.sleep(seconds)
    server.resume()


async def test_a_claim_waiting_on_a_silent_server_is_cancellable(own_redis: OwnRedis) -> None:
    async with open_stores(own_redis.url) as stores:
        store = stores.idempotency
        assert await store.get("k") is None  # connected
        own_redis.pause()
        try:
            async with trio.open_nursery() as nursery:
                # Resumed after 5 s at the latest, so that a claim waiting for the server ends.
                nursery.start_soon(_resume_later, own_redis, 5)
                start = trio.current_time()
                with trio.move_on_after(0.1) as scope:
                    await store.claim("k")
                elapsed = trio.current_time() - start
                nursery.cancel_scope.cancel()
        finally:
            own_redis.resume()
        assert scope.cancelled_caught
        # The caller's 0.1 s, then the bounded, shielded release of what the script may grant.
        assert 0.1 <= elapsed < 0.1 + CANCELLED_CLAIM_RELEASE_SECONDS + 0.4
        # The server ran the claim script when it woke; its claim was released after it.
        with trio.fail_after(5):
            assert isinstance(await store.claim("k"), IdempotencyClaim)
