"""Random operation sequences on the idempotency stores, checked against a dict model.

Every backend that runs here: in memory (its TTLs on a ``MockClock``), SQLite (on an
injected wall clock) and Redis (its own clock: times to live that never run out during
the sequence). Operations: ``set`` (every kind of ``ttl_seconds``), ``get``,
``delete``, ``claim`` (granted, replayed, or blocked by a holder and cancelled there),
``release`` (of the current, a stale or a foreign claim), cancelled calls, and the
clock moving on.
"""

from __future__ import annotations

import itertools
import math
import uuid
from typing import TYPE_CHECKING, Any

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stageflow_trio.pipeline.idempotency import (
    CachedStageResult,
    IdempotencyClaim,
    InMemoryIdempotencyStore,
)
from stageflow_trio.stores import open_stores
from stageflow_trio.stores.sqlite import open_sqlite_stores

from ._worker import entry as _entry

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

    from stageflow_trio.pipeline.idempotency import IdempotencyStore

KEYS = ("a", "b")
TTLS: tuple[float | None, ...] = (None, 0, -1, 0.5, 2, 7, math.inf, math.nan, 10**9)
# Redis: only times to live that cannot run out during a sequence (its clock is real).
REDIS_TTLS: tuple[float | None, ...] = (None, 0, -1, math.inf, math.nan, 10**4, 10**9)

_ops = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(KEYS), st.integers(0, 9), st.sampled_from(TTLS)),
    st.tuples(st.just("get"), st.sampled_from(KEYS)),
    st.tuples(st.just("delete"), st.sampled_from(KEYS)),
    st.tuples(st.just("claim"), st.sampled_from(KEYS)),
    st.tuples(st.just("release"), st.sampled_from(KEYS)),
    st.tuples(st.just("release_stale"), st.sampled_from(KEYS)),
    st.tuples(st.just("cancelled_set"), st.sampled_from(KEYS), st.integers(0, 9)),
    st.tuples(st.just("advance"), st.sampled_from((0.25, 0.5, 1.5, 3.0))),
)
_sequences = st.lists(_ops, min_size=1, max_size=25)


class Model:
    """What the store should hold: entries with their expiry, and the held claims."""

    def __init__(self, now: Callable[[], float]) -> None:
        self.now = now
        self.entries: dict[str, tuple[int, float | None]] = {}
        self.claims: dict[str, IdempotencyClaim] = {}
        self.stale: dict[str, IdempotencyClaim] = {}

    def set(self, key: str, value: int, ttl: float | None) -> None:
        if not ttl or math.isnan(ttl) or ttl == math.inf:
            self.entries[key] = (value, None)
        else:
            self.entries[key] = (value, self.now() + ttl)

    def live(self, key: str) -> int | None:
        got = self.entries.get(key)
        if got is None:
            return None
        value, expires_at = got
        if expires_at is not None and expires_at <= self.now():
            del self.entries[key]
            return None
        return value


async def _blocked_claim(store: IdempotencyStore, key: str) -> list[object]:
    """Claim ``key`` (held by someone): it must wait; cancel it there and return what it got."""
    got: list[object] = []

    async def claimer() -> None:
        got.append(await store.claim(key))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(claimer)
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    return got


async def run_sequence(
    store: IdempotencyStore,
    ops: list[tuple[Any, ...]],
    *,
    now: Callable[[], float],
    advance: Callable[[float], Awaitable[None]] | None,
    ttls: tuple[float | None, ...] = TTLS,
) -> None:
    model = Model(now)
    for op in ops:
        kind, key = op[0], op[1]
        where = f"{op!r} in {ops!r}"
        if kind == "set":
            ttl = op[3] if op[3] in ttls or op[3] is None else ttls[0]
            await store.set(key, _entry(op[2]), ttl_seconds=ttl)
            model.set(key, op[2], ttl)
        elif kind == "cancelled_set":
            with trio.CancelScope() as scope:
                scope.cancel()
                await store.set(key, _entry(op[2]))
            # Cancelled at its checkpoint: nothing stored.
        elif kind == "get":
            got = await store.get(key)
            want = model.live(key)
            assert (None if got is None else got.result.data["n"]) == want, where
        elif kind == "delete":
            await store.delete(key)
            model.entries.pop(key, None)
        elif kind == "claim":
            want = model.live(key)
            if want is None and key in model.claims:
                got_list = await _blocked_claim(store, key)
                assert got_list == [], f"a claim on a held key returned {got_list!r}: {where}"
                continue
            got_claim = await store.claim(key)
            if want is not None:
                assert isinstance(got_claim, CachedStageResult), where
                assert got_claim.result.data["n"] == want, where
            else:
                assert isinstance(got_claim, IdempotencyClaim), where
                assert got_claim.key == key
                model.claims[key] = got_claim
        elif kind == "release":
            claim = model.claims.pop(key, None)
            if claim is not None:
                store.release(claim)
                model.stale[key] = claim
                await trio.lowlevel.checkpoint()
        elif kind == "release_stale":
            # Released already, or never granted: must not free the current holder.
            stale = model.stale.get(key) or IdempotencyClaim(key)
            store.release(stale)
            store.release(IdempotencyClaim(key, "not-a-token"))
        elif kind == "advance" and advance is not None:
            await advance(op[1])
        # Every claim the model holds is still held: a claim now must wait.
        for held_key in model.claims:
            if model.live(held_key) is None:
                got_list = await _blocked_claim(store, held_key)
                assert got_list == [], f"{held_key!r} claimed twice: {got_list!r} after {where}"
    for claim in model.claims.values():
        store.release(claim)


_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_SETTINGS
@given(ops=_sequences)
def test_in_memory_store_follows_the_model(ops: list[tuple[Any, ...]]) -> None:
    clock = trio.testing.MockClock()

    async def main() -> None:
        store = InMemoryIdempotencyStore(max_entries=100)

        async def advance(seconds: float) -> None:
            clock.jump(seconds)
            await trio.lowlevel.checkpoint()

        await run_sequence(store, ops, now=trio.current_time, advance=advance)

    trio.run(main, clock=clock)


class _WallClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


_counter = itertools.count()


@_SETTINGS
@given(ops=_sequences)
def test_sqlite_store_follows_the_model(tmp_path: Path, ops: list[tuple[Any, ...]]) -> None:
    clock = _WallClock()
    path = str(tmp_path / f"model-{next(_counter)}.db")

    async def main() -> None:
        # A lease longer than any sequence: claims end only by release.
        async with open_sqlite_stores(path, clock=clock, claim_lease_seconds=10**6) as stores:

            async def advance(seconds: float) -> None:
                clock.now += seconds
                await trio.lowlevel.checkpoint()

            await run_sequence(stores.idempotency, ops, now=clock, advance=advance)

    trio.run(main)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=_sequences)
def test_redis_store_follows_the_model(redis_server: str, ops: list[tuple[Any, ...]]) -> None:
    from .conftest import _command

    assert _command(redis_server, "FLUSHDB").startswith(b"+OK")

    async def main() -> None:
        async with open_stores(redis_server) as stores:
            await run_sequence(
                stores.idempotency, ops, now=lambda: 0.0, advance=None, ttls=REDIS_TTLS
            )

    trio.run(main)


@pytest.mark.parametrize("ttl", [1e17, 1e306, 1.7e308])
async def test_a_huge_finite_ttl_never_expires_on_every_backend(store_url: str, ttl: float) -> None:
    """``stored_at + ttl <= now`` never holds: kept, as in memory (Redis raised)."""
    async with open_stores(store_url) as stores:
        await stores.idempotency.set("k", _entry(1), ttl_seconds=ttl)
        got = await stores.idempotency.get("k")
        assert got is not None
        assert got.result.data["n"] == 1


@pytest.mark.parametrize("ttl", [1e17, 1e306, 1.7e308])
async def test_a_huge_finite_undo_ttl_keeps_the_entry_on_every_backend(
    store_url: str, ttl: float
) -> None:
    """UndoStore accepts any finite time >= 0: kept, as in memory (Redis raised)."""
    async with open_stores(store_url) as stores:
        undo = stores.undo_store()
        action_id = uuid.UUID(int=7)
        await undo.store(action_id, "tool", {"a": 1}, ttl_seconds=ttl)
        got = await undo.get(action_id)
        assert got is not None
        assert got.undo_data == {"a": 1}
        assert [m.action_id for m in await undo.get_all()] == [action_id]
