"""Audit regression: InMemoryStore refuses a session id that is not a UUID."""

from __future__ import annotations

from uuid import uuid4

import pytest

from stageflow_trio.helpers.memory import InMemoryStore, MemoryConfig, MemoryEntry


async def test_fetch_with_a_str_session_id_is_refused() -> None:
    store = InMemoryStore()
    session = uuid4()
    await store.write(MemoryEntry(id="1", session_id=session, role="user", content="hi"))
    # str(session) used to return [] silently, as if the session were empty.
    with pytest.raises(
        TypeError, match=r"^InMemoryStore\.fetch: session_id must be a UUID; got str$"
    ):
        await store.fetch(str(session), MemoryConfig())  # type: ignore[arg-type]
    assert len(await store.fetch(session, MemoryConfig())) == 1


async def test_clear_with_a_str_session_id_is_refused() -> None:
    store = InMemoryStore()
    session = uuid4()
    await store.write(MemoryEntry(id="1", session_id=session, role="user", content="hi"))
    with pytest.raises(
        TypeError, match=r"^InMemoryStore\.clear: session_id must be a UUID; got str$"
    ):
        await store.clear(str(session))  # type: ignore[arg-type]
    assert await store.clear(session) == 1
