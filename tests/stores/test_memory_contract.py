"""The MemoryStore contract, on every backend (memory, SQLite, Redis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from stageflow_trio.helpers.memory import MemoryConfig, MemoryEntry
from stageflow_trio.stores import open_stores


def _entry(session: UUID, n: int, role: str = "user", content: str = "abcd") -> MemoryEntry:
    return MemoryEntry(
        id=f"m{n}",
        session_id=session,
        role=role,
        content=content,
        timestamp=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=n),
        metadata={"n": n},
    )


async def test_write_fetch_clear(store_url: str) -> None:
    session, other = uuid4(), uuid4()
    async with open_stores(store_url) as stores:
        memory = stores.memory
        assert await memory.fetch(session, MemoryConfig()) == []
        written = [_entry(session, n) for n in range(3)]
        for entry in written:
            await memory.write(entry)
        await memory.write(_entry(other, 9))
        assert await memory.fetch(session, MemoryConfig()) == written  # write order, equal
        assert await memory.clear(session) == 3
        assert await memory.clear(session) == 0
        assert await memory.fetch(session, MemoryConfig()) == []
        assert await memory.fetch(other, MemoryConfig()) == [_entry(other, 9)]


async def test_fetch_selects_as_the_in_memory_store(store_url: str) -> None:
    session = uuid4()
    async with open_stores(store_url) as stores:
        memory = stores.memory
        entries = [
            _entry(session, 0, "system", "s" * 8),
            _entry(session, 1, "user", "u" * 8),
            _entry(session, 2, "assistant", "a" * 8),
            _entry(session, 3, "user", "v" * 8),
        ]
        for entry in entries:
            await memory.write(entry)
        assert await memory.fetch(session, MemoryConfig(max_entries=2)) == entries[2:]
        assert await memory.fetch(session, MemoryConfig(include_system=False)) == entries[1:]
        # 2 tokens each: 5 tokens hold the last two.
        assert await memory.fetch(session, MemoryConfig(max_tokens=5)) == entries[2:]
        # The timestamps are in January 2026: outside a one-hour window.
        assert await memory.fetch(session, MemoryConfig(recency_window_seconds=3600)) == []


@pytest.mark.parametrize("bad", [None, {"max_entries": 1}])
async def test_bad_input_raises_type_error_naming_the_parameter(store_url: str, bad: Any) -> None:
    async with open_stores(store_url) as stores:
        with pytest.raises(TypeError, match=r"config must be a MemoryConfig; got "):
            await stores.memory.fetch(uuid4(), bad)
        with pytest.raises(TypeError, match=r"entry must be a MemoryEntry; got "):
            await stores.memory.write(bad)
