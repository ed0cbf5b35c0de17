"""Audit 16: long-running use and failure paths of the helpers and compression."""

from __future__ import annotations

import traceback
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from stageflow_trio.compression import compress
from stageflow_trio.helpers.memory import InMemoryStore, MemoryConfig, MemoryEntry


class _CountingTime(datetime):
    """A datetime that counts how often its ``timestamp()`` is read."""

    reads = 0

    def timestamp(self) -> float:
        _CountingTime.reads += 1
        return super().timestamp()


def _moment(seconds_ago: float) -> _CountingTime:
    when = datetime.now(UTC) - timedelta(seconds=seconds_ago)
    return _CountingTime.fromtimestamp(when.timestamp(), UTC)


async def _long_session(store: InMemoryStore, count: int, *, spacing: float) -> uuid.UUID:
    session = uuid.uuid4()
    for index in range(count):
        await store.write(
            MemoryEntry(
                id=str(index),
                session_id=session,
                role="system" if index % 2 else "user",
                content="hello",
                timestamp=_moment((count - index) * spacing),
            )
        )
    return session


async def test_fetch_cost_does_not_grow_with_the_session_history() -> None:
    # A service keeps one store for days: a fetch of the last few entries must
    # not look at every entry ever written (it used to filter the whole list).
    store = InMemoryStore()
    session = await _long_session(store, 5000, spacing=0.001)
    _CountingTime.reads = 0
    config = MemoryConfig(max_entries=5, include_system=False, recency_window_seconds=3600)
    entries = await store.fetch(session, config)
    assert [entry.id for entry in entries] == ["4990", "4992", "4994", "4996", "4998"]
    assert _CountingTime.reads <= 20


async def test_recency_window_stops_at_the_first_older_entry() -> None:
    # Entries written in time order: the walk stops at the first one outside the window.
    store = InMemoryStore()
    session = await _long_session(store, 5000, spacing=60)  # one a minute, ~3.5 days
    _CountingTime.reads = 0
    entries = await store.fetch(session, MemoryConfig(recency_window_seconds=150))
    assert [entry.id for entry in entries] == ["4998", "4999"]
    assert _CountingTime.reads <= 10
    # Written out of time order: every entry is checked, and the answer is still right.
    late = MemoryEntry(
        id="late", session_id=session, role="user", content="x", timestamp=_moment(10_000)
    )
    await store.write(late)
    entries = await store.fetch(session, MemoryConfig(recency_window_seconds=150))
    assert [entry.id for entry in entries] == ["4998", "4999"]
    assert await store.clear(session) == 5001


def test_compress_measures_a_nested_dict_keyed_by_uuids() -> None:
    # docs/helpers.md: "a value JSON cannot encode is measured by its str()"; a
    # nested dict keyed by UUIDs raised "keys must be str, int, ..." (chained to
    # the first attempt's identical error).
    user = uuid.UUID(int=7)
    base: dict[str, object] = {"scores": {}}
    current = {"scores": {user: 3, (1, 2): 4}}
    delta, metrics = compress(base, current)
    assert delta == {"set": {"scores": {user: 3, (1, 2): 4}}}
    expected = len(f'{{"scores": {{"{user}": 3, "(1, 2)": 4}}}}'.encode())
    assert metrics.original_bytes == expected


def test_compress_failure_is_not_chained_to_its_first_attempt() -> None:
    # A payload the fallback cannot measure either fails with one error, not a
    # "During handling of the above exception" pair from compress's own retry.
    with pytest.raises(ValueError, match="integer string conversion") as caught:
        compress({}, {"odd": object(), "big": 10**5000})
    assert caught.value.__context__ is None, traceback.format_exception(caught.value)
