"""What the SQLite and Redis stores share: the configuration error, JSON forms, local wake-ups."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import attrs
import trio

from stageflow_trio.helpers.memory import MemoryEntry, MemoryStore
from stageflow_trio.pipeline.idempotency import CachedStageResult, IdempotencyStore
from stageflow_trio.stages.result import StageResult

STORE_URL_ENV = "STAGEFLOW_STORE_URL"
"""The environment variable :func:`stageflow_trio.stores.open_stores` reads when given no URL."""

DEFAULT_CLAIM_LEASE_SECONDS = 30.0
DEFAULT_POLL_INTERVAL_SECONDS = 0.05


class StoreConfigError(ValueError):
    """A store could not be opened as configured (malformed URL, unreachable server, unwritable path).

    Raised by the async open step, never by a later request. The message
    names the setting (``url``, ``path`` or :data:`STORE_URL_ENV`) and its value.

    Attributes:
        setting: The name of the setting at fault.
    """

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting


def entry_to_json(entry: CachedStageResult) -> str:
    """A cached result as JSON (its data must be JSON-serializable)."""
    result = entry.result
    return json.dumps(
        {
            "name": result.name,
            "status": result.status,
            "started_at": result.started_at.isoformat(),
            "ended_at": result.ended_at.isoformat(),
            "data": dict(result.data),
            "error": result.error,
            "params_hash": entry.params_hash,
        },
        separators=(",", ":"),
    )


def entry_from_json(text: str | bytes, expires_at: float | None) -> CachedStageResult:
    """The inverse of :func:`entry_to_json`; ``expires_at`` as the store tells it."""
    raw: dict[str, Any] = json.loads(text)
    result = StageResult(
        name=raw["name"],
        status=raw["status"],
        started_at=datetime.fromisoformat(raw["started_at"]),
        ended_at=datetime.fromisoformat(raw["ended_at"]),
        data=raw["data"],
        error=raw["error"],
    )
    return CachedStageResult(result=result, params_hash=raw["params_hash"], expires_at=expires_at)


def memory_to_json(entry: MemoryEntry) -> str:
    """A memory entry as JSON (its metadata must be JSON-serializable)."""
    return json.dumps(entry.to_dict(), separators=(",", ":"))


def memory_from_json(text: str | bytes) -> MemoryEntry:
    """The inverse of :func:`memory_to_json`."""
    return MemoryEntry.from_dict(json.loads(text))


class Wakeups:
    """Per-key events that wake this process's waiters when something changes.

    A waiter calls :meth:`event` *before* it looks at the shared state, then
    waits on the event: a change made after the look-up sets it, so no wake-up
    is lost. :meth:`wake` sets and forgets the key's event; the next waiter
    gets a fresh one. Synchronous, no checkpoint.
    """

    __slots__ = ("_events",)

    def __init__(self) -> None:
        self._events: dict[str, trio.Event] = {}

    def event(self, key: str) -> trio.Event:
        event = self._events.get(key)
        if event is None:
            event = self._events[key] = trio.Event()
        return event

    def wake(self, key: str) -> None:
        event = self._events.pop(key, None)
        if event is not None:
            event.set()

    def forget(self, key: str, event: trio.Event) -> None:
        """Drop ``event`` (a waiter is done) unless another waiter may still need it."""
        # Nobody is woken by dropping it: a waiter blocked on it re-registers after
        # its poll interval at worst. Only drop an event nobody waits on.
        if self._events.get(key) is event and not event.statistics().tasks_waiting:
            del self._events[key]

    def __len__(self) -> int:
        return len(self._events)


@attrs.frozen
class Stores:
    """The stores of one backend, opened together by :func:`~stageflow_trio.stores.open_stores`.

    Attributes:
        url: The backend's URL (``memory://``, ``sqlite:///path``, ``redis://host:port/db``).
        idempotency: Cached stage results and in-flight claims.
        memory: Conversation memory.
    """

    url: str
    idempotency: IdempotencyStore
    memory: MemoryStore
