"""The IdempotencyStore contract, on every backend (memory, SQLite, Redis)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import trio

from stageflow_trio.pipeline.idempotency import CachedStageResult, IdempotencyClaim
from stageflow_trio.stores import open_stores

from ._worker import entry as _entry


def _same(got: CachedStageResult | IdempotencyClaim | None, want: CachedStageResult) -> None:
    assert isinstance(got, CachedStageResult)
    assert got.result == want.result
    assert got.params_hash == want.params_hash


async def test_get_set_delete(store_url: str) -> None:
    async with open_stores(store_url) as stores:
        store = stores.idempotency
        assert await store.get("k") is None
        await store.set("k", _entry(1))
        _same(await store.get("k"), _entry(1))
        assert (await store.get("k")).expires_at is None  # type: ignore[union-attr]
        await store.set("k", _entry(2, None))  # replaces
        _same(await store.get("k"), _entry(2, None))
        await store.delete("k")
        assert await store.get("k") is None
        await store.delete("k")  # absent: no error


async def test_a_stored_entry_has_its_expiry(store_url: str) -> None:
    async with open_stores(store_url) as stores:
        await stores.idempotency.set("k", _entry(1), ttl_seconds=100)
        got = await stores.idempotency.get("k")
        assert got is not None
        assert got.expires_at is not None
        # In memory: the trio clock; shared stores: epoch seconds (wall clock).
        now = trio.current_time() if store_url == "memory://" else datetime.now(UTC).timestamp()
        assert now + 99 < got.expires_at <= now + 100


async def test_claim_grants_then_a_cached_result_wins(store_url: str) -> None:
    async with open_stores(store_url) as stores:
        store = stores.idempotency
        claim = await store.claim("k")
        assert isinstance(claim, IdempotencyClaim)
        assert claim.key == "k"
        await store.set("k", _entry(1))
        store.release(claim)
        store.release(claim)  # released twice: ignored
        _same(await store.claim("k"), _entry(1))
        # A claim is not a result, and delete does not touch claims.
        other = await store.claim("other")
        assert isinstance(other, IdempotencyClaim)
        assert await store.get("other") is None
        store.release(other)


async def test_a_duplicate_waits_for_the_holder_and_replays_its_result(store_url: str) -> None:
    async with open_stores(store_url) as stores:
        store = stores.idempotency
        claim = await store.claim("k")
        assert isinstance(claim, IdempotencyClaim)
        got: list[CachedStageResult | IdempotencyClaim] = []

        async def duplicate() -> None:
            got.append(await store.claim("k"))

        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(duplicate)
                nursery.start_soon(duplicate)
                await trio.testing.wait_all_tasks_blocked()
                assert got == []
                await store.set("k", _entry(7))
                store.release(claim)
        assert len(got) == 2
        for outcome in got:
            _same(outcome, _entry(7))


async def test_without_a_result_one_waiter_gets_the_claim(store_url: str) -> None:
    async with open_stores(store_url) as stores:
        store = stores.idempotency
        claim = await store.claim("k")
        assert isinstance(claim, IdempotencyClaim)
        got: list[CachedStageResult | IdempotencyClaim] = []

        async def duplicate() -> None:
            outcome = await store.claim("k")
            got.append(outcome)
            if isinstance(outcome, IdempotencyClaim):
                await store.set("k", _entry(3))
                store.release(outcome)

        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(duplicate)
                nursery.start_soon(duplicate)
                await trio.testing.wait_all_tasks_blocked()
                store.release(claim)  # the holder failed: no result
        claims = [o for o in got if isinstance(o, IdempotencyClaim)]
        assert len(claims) == 1
        assert claims[0].token != claim.token
        _same(next(o for o in got if isinstance(o, CachedStageResult)), _entry(3))


async def test_a_stale_release_does_not_free_the_current_claim(store_url: str) -> None:
    async with open_stores(store_url) as stores:
        store = stores.idempotency
        claim = await store.claim("k")
        assert isinstance(claim, IdempotencyClaim)
        store.release(IdempotencyClaim("k", token="someone-else"))
        with trio.move_on_after(0.2) as scope:
            await store.claim("k")
        assert scope.cancelled_caught  # still held
        store.release(claim)
        with trio.fail_after(5):
            again = await store.claim("k")
        assert isinstance(again, IdempotencyClaim)
        store.release(again)


async def test_a_cancelled_waiter_holds_nothing(store_url: str) -> None:
    async with open_stores(store_url) as stores:
        store = stores.idempotency
        claim = await store.claim("k")
        assert isinstance(claim, IdempotencyClaim)
        with trio.move_on_after(0.05) as scope:
            await store.claim("k")
        assert scope.cancelled_caught
        store.release(claim)
        with trio.fail_after(5):
            again = await store.claim("k")
        assert isinstance(again, IdempotencyClaim)
        store.release(again)


@pytest.mark.parametrize("backend", ["memory"])
async def test_memory_ttl_on_the_trio_clock(
    store_url: str, autojump_clock: trio.testing.MockClock
) -> None:
    async with open_stores(store_url) as stores:
        await stores.idempotency.set("k", _entry(1), ttl_seconds=10)
        await trio.sleep(9.5)
        _same(await stores.idempotency.get("k"), _entry(1))
        await trio.sleep(0.5)
        assert await stores.idempotency.get("k") is None
        assert isinstance(await stores.idempotency.claim("k"), IdempotencyClaim)


async def test_a_key_no_store_can_encode_is_a_value_error_at_the_call(store_url: str) -> None:
    # Audit 18: a lone surrogate in a key was a bare UnicodeEncodeError from the
    # SQLite store's worker thread (Redis: from the client); the in-memory store
    # takes it, and non-ASCII keys work everywhere.
    async with open_stores(store_url) as stores:
        store = stores.idempotency
        await store.set("clé-日本", _entry(1))
        _same(await store.get("clé-日本"), _entry(1))
        if store_url.startswith("memory"):
            assert await store.get("bad\ud800") is None
            return
        for call in (
            lambda: store.get("bad\ud800"),
            lambda: store.set("bad\ud800", _entry(1)),
            lambda: store.delete("bad\ud800"),
            lambda: store.claim("bad\ud800"),
        ):
            with pytest.raises(ValueError, match=r"key must be encodable as UTF-8.*index 3"):
                await call()
