"""Tests for stageflow_trio.tools.undo: TTLs on the trio clock, the singleton helpers."""

from __future__ import annotations

import asyncio
import math
import re
import uuid
from types import ModuleType
from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio.testing import reset_globals
from stageflow_trio.tools import undo
from stageflow_trio.tools.definitions import UndoMetadata
from stageflow_trio.tools.undo import (
    InMemoryUndoBackend,
    UndoEntry,
    UndoStore,
    clear_undo_store,
    get_undo_store,
    set_undo_store,
)

A = uuid.UUID("aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa")
B = uuid.UUID("bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb")


def test_all_matches_the_reference(reference: ModuleType) -> None:
    assert sorted(undo.__all__) == sorted(reference.tools.undo.__all__)


async def test_store_and_get(autojump_clock: trio.testing.MockClock) -> None:
    store = UndoStore()
    metadata = await store.store(A, "edit", {"before": "x"})
    assert metadata == UndoMetadata(A, "edit", {"before": "x"}, metadata.created_at)
    assert await store.get(A) is metadata
    assert await store.get(B) is None
    assert len(store) == 1
    assert _memory(store)._entries[A] == UndoEntry(metadata, trio.current_time() + 3600.0)


async def test_an_entry_lives_up_to_its_ttl_and_is_removed_after(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = UndoStore(default_ttl_seconds=10)
    metadata = await store.store(A, "edit", {})
    await trio.sleep(10)
    assert await store.get(A) is metadata  # valid at the expiry instant itself
    await trio.sleep(0.001)
    assert len(store) == 1
    assert await store.get(A) is None
    assert len(store) == 0  # removed by the get


async def test_per_entry_ttl_overrides_the_default(autojump_clock: trio.testing.MockClock) -> None:
    store = UndoStore(default_ttl_seconds=10)
    await store.store(A, "edit", {}, ttl_seconds=2)
    kept = await store.store(B, "edit", {}, ttl_seconds=math.inf)
    await trio.sleep(5)
    assert await store.get(A) is None
    await trio.sleep(86_400)
    assert await store.get(B) is kept


async def test_storing_again_replaces(autojump_clock: trio.testing.MockClock) -> None:
    store = UndoStore()
    await store.store(A, "edit", {"v": 1}, ttl_seconds=1)
    second = await store.store(A, "edit", {"v": 2}, ttl_seconds=100)
    await trio.sleep(50)
    assert await store.get(A) is second
    assert len(store) == 1


async def test_delete() -> None:
    store = UndoStore()
    await store.store(A, "edit", {})
    assert await store.delete(A) is True
    assert await store.delete(A) is False
    assert await store.get(A) is None


async def test_remove_is_delete_under_1_2_s_name() -> None:
    store = UndoStore()
    await store.store(A, "edit", {})
    assert await store.remove(A) is True
    assert await store.get(A) is None
    assert await store.remove(A) is False


async def test_cleanup_expired_and_get_all(autojump_clock: trio.testing.MockClock) -> None:
    store = UndoStore()
    await store.store(A, "edit", {}, ttl_seconds=1)
    kept = await store.store(B, "edit", {}, ttl_seconds=5)
    await trio.sleep(1)
    assert [m.action_id for m in await store.get_all()] == [A, B]
    await trio.sleep(2)
    assert await store.get_all() == [kept]
    assert len(store) == 2  # get_all removes nothing
    assert await store.cleanup_expired() == 1
    assert await store.cleanup_expired() == 0
    assert len(store) == 1


async def test_every_method_is_a_checkpoint() -> None:
    store = UndoStore()
    with trio.testing.assert_checkpoints():
        await store.store(A, "edit", {})
    with trio.testing.assert_checkpoints():
        await store.get(A)
    with trio.testing.assert_checkpoints():
        await store.get_all()
    with trio.testing.assert_checkpoints():
        await store.cleanup_expired()
    with trio.testing.assert_checkpoints():
        await store.delete(A)


async def test_a_cancelled_store_stores_nothing() -> None:
    store = UndoStore()
    with trio.CancelScope() as scope:
        scope.cancel()
        await store.store(A, "edit", {})
    assert len(store) == 0


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        ("5", TypeError, "must be a number; got str"),
        (False, TypeError, "must be a number; got bool"),
        (-0.5, ValueError, "must be >= 0; got -0.5"),
        (math.nan, ValueError, "must be >= 0; got nan"),
    ],
)
async def test_bad_ttls(value: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=f"^UndoStore: default_ttl_seconds {message}$"):
        UndoStore(default_ttl_seconds=value)
    store = UndoStore()
    with pytest.raises(error, match=f"^UndoStore.store: ttl_seconds {message}$"):
        await store.store(A, "edit", {}, ttl_seconds=value)
    assert len(store) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("a", "edit", {}),
            "UndoStore.store: action_id must be a UUID or an UndoMetadata; got str",
        ),
        ((A, 5, {}), "UndoStore.store: tool_name must be a str; got int"),
        ((A, "edit", 5), "UndoStore.store: undo_data must be a dict; got int"),
        # stageflow 1.2's messages (audit 15: store also takes an UndoMetadata).
        ((A, None, {}), "tool_name is required when storing by action_id"),
        ((A, "edit", None), "undo_data is required when storing by action_id"),
        ((A, "edit"), "undo_data is required when storing by action_id"),
    ],
)
async def test_store_rejects_bad_arguments_and_stores_nothing(
    args: tuple[Any, ...], message: str
) -> None:
    store = UndoStore()
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        await store.store(*args)
    assert len(store) == 0


def test_singleton_helpers() -> None:
    store = get_undo_store()
    assert get_undo_store() is store
    assert store.default_ttl_seconds == 3600.0
    mine = UndoStore(default_ttl_seconds=5)
    set_undo_store(mine)
    assert get_undo_store() is mine
    clear_undo_store()
    fresh = get_undo_store()
    assert fresh is not mine
    reset_globals()
    assert get_undo_store() is not fresh


def test_matches_the_reference(reference: ModuleType) -> None:
    ref = reference.tools.undo

    async def scenario(store: Any) -> list[Any]:
        seen: list[Any] = []
        stored = await store.store(A, "edit", {"before": 1})
        seen.append({k: v for k, v in stored.to_dict().items() if k != "created_at"})
        seen.append((await store.get(A)).undo_data)
        await store.store(B, "edit", {}, ttl_seconds=0)
        seen.append(len(store))
        seen.append(await store.delete(A))
        seen.append(await store.delete(A))
        seen.append(await store.get(A))
        return seen

    ours = trio.run(scenario, UndoStore())
    theirs = asyncio.run(scenario(ref.UndoStore()))
    assert (
        ours
        == theirs
        == [
            {"action_id": str(A), "tool_name": "edit", "undo_data": {"before": 1}},
            {"before": 1},
            2,
            True,
            False,
            None,
        ]
    )


def _memory(store: UndoStore) -> InMemoryUndoBackend:
    """The store's default backend, whose internals these tests look at."""
    backend = store.backend
    assert isinstance(backend, InMemoryUndoBackend)
    return backend
