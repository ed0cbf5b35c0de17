"""The undo backend contract, through UndoStore, on every backend; TTLs per backend."""

from __future__ import annotations

import math
import uuid
from pathlib import Path

import pytest
import trio

from stageflow_trio.stores import open_stores
from stageflow_trio.stores.sqlite import open_sqlite_stores

from .test_ttl import FakeWallClock

A, B, C = (uuid.UUID(int=n) for n in (1, 2, 3))


async def test_store_get_delete_get_all(store_url: str) -> None:
    async with open_stores(store_url) as stores:
        undo = stores.undo_store()
        stored = await undo.store(A, "edit", {"before": "x", "n": [1]})
        await undo.store(B, "delete", {"id": 2}, ttl_seconds=math.inf)
        got = await undo.get(A)
        assert got is not None
        assert got.to_dict() == stored.to_dict()
        assert await undo.get(C) is None
        # Replacing keeps the entry's place in the order.
        replaced = await undo.store(A, "edit", {"before": "y"})
        assert [m.to_dict() for m in await undo.get_all()] == [
            replaced.to_dict(),
            (await undo.get(B)).to_dict(),  # type: ignore[union-attr]
        ]
        assert await undo.delete(A) is True
        assert await undo.delete(A) is False
        assert [m.action_id for m in await undo.get_all()] == [B]
        assert await undo.cleanup_expired() == 0


@pytest.mark.parametrize("backend", ["memory"])
async def test_memory_ttl_on_the_trio_clock(
    store_url: str, autojump_clock: trio.testing.MockClock
) -> None:
    async with open_stores(store_url) as stores:
        undo = stores.undo_store(default_ttl_seconds=10)
        await undo.store(A, "edit", {})
        await undo.store(B, "edit", {}, ttl_seconds=20)
        await trio.sleep(10)
        assert [m.action_id for m in await undo.get_all()] == [A, B]  # valid at its expiry
        await trio.sleep(0.5)
        assert [m.action_id for m in await undo.get_all()] == [B]
        assert await undo.cleanup_expired() == 1
        await trio.sleep(10)
        assert await undo.get(B) is None


async def test_sqlite_ttl_on_the_injected_clock(tmp_path: Path) -> None:
    clock = FakeWallClock()
    async with open_sqlite_stores(str(tmp_path / "s.db"), clock=clock) as stores:
        undo = stores.undo_store(default_ttl_seconds=10)
        await undo.store(A, "edit", {})
        await undo.store(B, "edit", {}, ttl_seconds=20)
        await undo.store(C, "edit", {}, ttl_seconds=math.inf)
        clock.now += 10
        assert [m.action_id for m in await undo.get_all()] == [A, B, C]
        clock.now += 0.5
        assert [m.action_id for m in await undo.get_all()] == [B, C]
        assert await undo.cleanup_expired() == 1
        clock.now += 10
        assert await undo.get(B) is None  # removed as it is read
        assert await undo.cleanup_expired() == 0
        assert [m.action_id for m in await undo.get_all()] == [C]


async def test_redis_ttl_by_px(redis_url: str) -> None:
    async with open_stores(redis_url) as stores:
        undo = stores.undo_store()
        await undo.store(A, "edit", {}, ttl_seconds=0.05)
        await undo.store(B, "edit", {}, ttl_seconds=0.05)
        await undo.store(C, "edit", {})
        # Wall-clock time must pass for Redis to expire the keys.
        await trio.sleep(0.08)
        assert await undo.get(A) is None  # and pruned from the index
        assert await undo.cleanup_expired() == 1  # B
        assert [m.action_id for m in await undo.get_all()] == [C]


async def test_len_needs_the_in_memory_backend(tmp_path: Path) -> None:
    async with open_stores("memory://") as stores:
        undo = stores.undo_store()
        await undo.store(A, "edit", {})
        assert len(undo) == 1
    async with open_stores(f"sqlite:///{tmp_path}/s.db") as stores:
        with pytest.raises(TypeError):
            len(stores.undo_store())
