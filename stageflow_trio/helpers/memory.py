"""Conversation memory: a store contract, an in-memory store, and stages that read and write it.

- :class:`MemoryEntry`: one message of a session (frozen).
- :class:`MemoryConfig`: how much to fetch (entries, approximate tokens, recency, system messages).
- :class:`MemoryStore`: the protocol (async ``fetch``, ``write``, ``clear``) to implement
  over Redis, PostgreSQL, ...
- :class:`InMemoryStore`: a process-local store for tests and prototypes.
- :class:`MemoryFetchStage` / :class:`MemoryWriteStage`: put a session's memory into a
  run's outputs, and record the exchange afterwards.

Tokens are approximated as ``len(content) // 4``.

Example::

    store = InMemoryStore()
    pipeline = (
        Pipeline()
        .with_stage("fetch_memory", MemoryFetchStage(store), StageKind.ENRICH)
        .with_stage("llm", LLMStage(), StageKind.TRANSFORM, dependencies=("fetch_memory",))
        .with_stage("write_memory", MemoryWriteStage(store), StageKind.WORK, dependencies=("llm",))
    )
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

import attrs
import trio

from stageflow_trio._args import check_flag, check_int, type_of
from stageflow_trio._frozen import frozen_compat
from stageflow_trio._time import parse_uuid, utc_now
from stageflow_trio.core import StageKind, StageOutput
from stageflow_trio.utils.frozen import FrozenDict

if TYPE_CHECKING:
    from collections.abc import Mapping

    from stageflow_trio.core import StageContext

__all__ = [
    "InMemoryStore",
    "MemoryConfig",
    "MemoryEntry",
    "MemoryFetchStage",
    "MemoryStore",
    "MemoryWriteStage",
]


def _freeze(value: Mapping[str, Any]) -> FrozenDict[str, Any]:
    return value if type(value) is FrozenDict else FrozenDict(value)


def _check_str(owner: str, param: str, value: object) -> None:
    if type(value) is not str:
        raise TypeError(f"{owner}: {param} must be a str; got {type_of(value)}")


def _check_session_id(owner: str, value: object) -> None:
    if not isinstance(value, UUID):
        raise TypeError(f"{owner}: session_id must be a UUID; got {type_of(value)}")


# The argument checks of every memory store, this module's and those of stores/.


def _check_fetch(owner: str, session_id: object, config: object) -> None:
    """A store's ``fetch`` checks (a str session id would find nothing, silently)."""
    _check_session_id(owner, session_id)
    if type(config) is not MemoryConfig:
        raise TypeError(f"{owner}: config must be a MemoryConfig; got {type_of(config)}")


def _check_memory_entry(owner: str, entry: object) -> None:
    """A store's ``write`` check."""
    if not isinstance(entry, MemoryEntry):
        raise TypeError(f"{owner}: entry must be a MemoryEntry; got {type_of(entry)}")


def _tokens(content: str) -> int:
    return len(content) // 4


@frozen_compat
@attrs.frozen
class MemoryEntry:
    """One remembered message.

    Attributes:
        id: Unique id of the entry.
        session_id: The session it belongs to.
        role: ``"user"``, ``"assistant"`` or ``"system"``.
        content: The message text.
        timestamp: When it was written; defaults to now (UTC).
        metadata: Extra data, held read-only.

    Raises:
        TypeError: a field has the wrong type.
    """

    id: str
    session_id: UUID
    role: str
    content: str
    timestamp: datetime = attrs.field(factory=utc_now)
    metadata: FrozenDict[str, Any] = attrs.field(factory=FrozenDict, converter=_freeze)

    def __attrs_post_init__(self) -> None:
        owner = "MemoryEntry"
        _check_str(owner, "id", self.id)
        _check_session_id(owner, self.session_id)
        _check_str(owner, "role", self.role)
        _check_str(owner, "content", self.content)
        if not isinstance(self.timestamp, datetime):
            raise TypeError(f"{owner}: timestamp must be a datetime; got {type_of(self.timestamp)}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``session_id`` as a string, ``timestamp`` in ISO 8601."""
        return {
            "id": self.id,
            "session_id": str(self.session_id),
            "role": self.role,
            "content": self.content,
            "timestamp": self.timestamp.isoformat(),
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MemoryEntry:
        """Rebuild an entry from :meth:`to_dict` output.

        ``session_id`` may be a UUID or its string, ``timestamp`` a datetime or
        an ISO 8601 string; ``metadata`` may be missing.

        Raises:
            KeyError: ``id``, ``session_id``, ``role``, ``content`` or ``timestamp`` is missing.
            ValueError: ``session_id`` or ``timestamp`` is a malformed string.
            TypeError: a field has the wrong type.
        """
        timestamp = data["timestamp"]
        if isinstance(timestamp, str):
            timestamp = datetime.fromisoformat(timestamp)
        return cls(
            id=data["id"],
            session_id=parse_uuid(data["session_id"], "MemoryEntry.from_dict: session_id"),  # type: ignore[arg-type]
            role=data["role"],
            content=data["content"],
            timestamp=timestamp,
            metadata=data.get("metadata", {}),
        )


@frozen_compat
@attrs.frozen
class MemoryConfig:
    """What :meth:`MemoryStore.fetch` returns.

    Attributes:
        max_entries: At most this many (the most recent); 0 means no limit.
        max_tokens: At most this many approximate tokens (the most recent entries
            that fit); 0 means no limit.
        include_system: Whether ``"system"`` messages are included.
        recency_window_seconds: Only entries newer than this many seconds; 0 means all.

    Raises:
        TypeError, ValueError: a field is not a bool / an int >= 0.
    """

    max_entries: int = 20
    max_tokens: int = 4000
    include_system: bool = True
    recency_window_seconds: int = 0

    def __attrs_post_init__(self) -> None:
        owner = "MemoryConfig"
        check_int(owner, "max_entries", self.max_entries, minimum=0)
        check_int(owner, "max_tokens", self.max_tokens, minimum=0)
        check_flag(owner, "include_system", self.include_system)
        check_int(owner, "recency_window_seconds", self.recency_window_seconds, minimum=0)


class MemoryStore(Protocol):
    """Where memory lives. Every method is async and should be a checkpoint."""

    async def fetch(self, session_id: UUID, config: MemoryConfig) -> list[MemoryEntry]:
        """The session's entries that ``config`` selects, oldest first."""
        ...

    async def write(self, entry: MemoryEntry) -> None:
        """Store one entry."""
        ...

    async def clear(self, session_id: UUID) -> int:
        """Forget a session; return how many entries it had."""
        ...


def _select(
    entries: list[MemoryEntry], config: MemoryConfig, *, time_ordered: bool = False
) -> list[MemoryEntry]:
    """``entries`` (one session's, oldest first) filtered as :meth:`InMemoryStore.fetch` says.

    The four steps run in one walk from the newest entry back, which stops as soon
    as ``max_entries`` or ``max_tokens`` is reached: a fetch costs what it
    returns (plus the entries it skips), not the session's whole history. With
    ``time_ordered`` (timestamps never decrease along ``entries``), the walk also
    stops at the first entry outside the recency window.
    """
    cutoff = (
        utc_now().timestamp() - config.recency_window_seconds
        if config.recency_window_seconds > 0
        else None
    )
    skip_system = not config.include_system
    max_entries = config.max_entries
    count_tokens = config.max_tokens > 0
    budget = config.max_tokens
    kept: list[MemoryEntry] = []
    for entry in reversed(entries):
        if cutoff is not None and not entry.timestamp.timestamp() > cutoff:
            if time_ordered:
                break
            continue
        if skip_system and entry.role == "system":
            continue
        if max_entries > 0 and len(kept) == max_entries:
            break
        if count_tokens:
            budget -= _tokens(entry.content)
            if budget < 0:
                break
        kept.append(entry)
    kept.reverse()
    return kept


class InMemoryStore:
    """A :class:`MemoryStore` in this process's memory (lost on exit), for tests and prototypes.

    Entries are kept in the order they were written. No lock is needed: nothing
    inside a method is a checkpoint, so each call is atomic among trio tasks.

    A :meth:`fetch` walks back from the session's newest entry and stops once it
    has what ``config`` asks for, so its cost does not grow with the session's
    history (with a recency window, an entry written with an older timestamp than
    the one before it makes later fetches of that session check every entry).
    """

    def __init__(self) -> None:
        self._entries: dict[UUID, list[MemoryEntry]] = {}
        # Sessions with an entry written after a newer one (by timestamp): their
        # recency filter cannot stop at the first entry outside the window.
        self._out_of_order: set[UUID] = set()

    async def fetch(self, session_id: UUID, config: MemoryConfig) -> list[MemoryEntry]:
        """The session's entries, oldest first, filtered in this order.

        1. With ``recency_window_seconds``, entries whose timestamp is after now
           minus the window (wall clock, as the timestamps are).
        2. Without ``include_system``, entries whose role is not ``"system"``.
        3. With ``max_entries``, the last ``max_entries``.
        4. With ``max_tokens``, the longest run of most recent entries whose
           approximate tokens add up to at most ``max_tokens`` (it stops at the
           first entry that does not fit).

        A checkpoint.

        Raises:
            TypeError: ``session_id`` is not a UUID or ``config`` is not a MemoryConfig.
        """
        await trio.lowlevel.checkpoint()
        _check_fetch("InMemoryStore.fetch", session_id, config)
        return _select(
            self._entries.get(session_id, []),
            config,
            time_ordered=session_id not in self._out_of_order,
        )

    async def write(self, entry: MemoryEntry) -> None:
        """Append ``entry`` to its session. A checkpoint.

        Raises:
            TypeError: ``entry`` is not a MemoryEntry.
        """
        await trio.lowlevel.checkpoint()
        _check_memory_entry("InMemoryStore.write", entry)
        session_id = entry.session_id
        entries = self._entries.setdefault(session_id, [])
        if entries and session_id not in self._out_of_order:
            try:
                backwards = entry.timestamp.timestamp() < entries[-1].timestamp.timestamp()
            except (OverflowError, ValueError, OSError):  # a naive datetime.min, ...
                backwards = True
            if backwards:
                self._out_of_order.add(session_id)
        entries.append(entry)

    async def clear(self, session_id: UUID) -> int:
        """Forget the session; return how many entries it had. A checkpoint.

        Raises:
            TypeError: ``session_id`` is not a UUID.
        """
        await trio.lowlevel.checkpoint()
        _check_session_id("InMemoryStore.clear", session_id)
        self._out_of_order.discard(session_id)
        return len(self._entries.pop(session_id, ()))

    def get_all_sessions(self) -> list[UUID]:
        """The sessions that have entries, in the order of their first write."""
        return list(self._entries)


def _check_store(owner: str, store: object) -> None:
    for method in ("fetch", "write", "clear"):
        if not callable(getattr(store, method, None)):
            raise TypeError(
                f"{owner}: store must be a MemoryStore (async fetch, write, clear); "
                f"got {type_of(store)}"
            )


class MemoryFetchStage:
    """A stage that puts the session's memory into its output.

    Output data: ``memory_entries`` (the entries' ``to_dict()``, oldest first),
    ``memory_count`` and ``memory_tokens`` (approximate). Skips when the
    snapshot has no ``session_id``.

    Args:
        store: Where memory lives.
        config: What to fetch; defaults to ``MemoryConfig()``.
    """

    name = "memory_fetch"
    kind = StageKind.ENRICH

    def __init__(self, store: MemoryStore, config: MemoryConfig | None = None) -> None:
        _check_store("MemoryFetchStage", store)
        if config is not None and type(config) is not MemoryConfig:
            raise TypeError(
                f"MemoryFetchStage: config must be a MemoryConfig or None; got {type_of(config)}"
            )
        self._store = store
        self._config = config or MemoryConfig()

    async def execute(self, ctx: StageContext) -> StageOutput:
        """Fetch the session's memory. A checkpoint, whatever the store does."""
        session_id = ctx.snapshot.session_id
        await trio.lowlevel.checkpoint()
        if session_id is None:
            return StageOutput.skip(reason="No session_id in context")
        entries = await self._store.fetch(session_id, self._config)
        return StageOutput.ok(
            memory_entries=[entry.to_dict() for entry in entries],
            memory_count=len(entries),
            memory_tokens=sum(_tokens(entry.content) for entry in entries),
        )


class MemoryWriteStage:
    """A stage that records the exchange: the user's input and the assistant's response.

    Writes ``{interaction_id or "unknown"}_user`` with the snapshot's
    ``input_text`` when there is one, and ``{interaction_id or "unknown"}_assistant``
    with ``str(response)`` when the output of ``response_stage`` has a truthy
    ``response_key``. Output data: ``entries_written`` and ``session_id`` (a
    string). Skips when the snapshot has no ``session_id``.

    Args:
        store: Where memory lives.
        response_stage: The stage whose output holds the response (``"llm"``).
        response_key: The key of the response in that output (``"response"``).
    """

    name = "memory_write"
    kind = StageKind.WORK

    def __init__(
        self, store: MemoryStore, *, response_stage: str = "llm", response_key: str = "response"
    ) -> None:
        _check_store("MemoryWriteStage", store)
        _check_str("MemoryWriteStage", "response_stage", response_stage)
        _check_str("MemoryWriteStage", "response_key", response_key)
        self._store = store
        self._response_stage = response_stage
        self._response_key = response_key

    async def execute(self, ctx: StageContext) -> StageOutput:
        """Write the exchange. A checkpoint, whatever the store does.

        Raises:
            UndeclaredDependencyError: strict inputs and ``response_stage`` is not
                a declared dependency.
        """
        snapshot = ctx.snapshot
        session_id = snapshot.session_id
        await trio.lowlevel.checkpoint()
        if session_id is None:
            return StageOutput.skip(reason="No session_id in context")
        prefix = snapshot.interaction_id or "unknown"
        written = 0
        if snapshot.input_text:
            await self._store.write(
                MemoryEntry(
                    id=f"{prefix}_user",
                    session_id=session_id,
                    role="user",
                    content=snapshot.input_text,
                )
            )
            written += 1
        response = ctx.inputs.get_from(self._response_stage, self._response_key, default=None)
        if response:
            await self._store.write(
                MemoryEntry(
                    id=f"{prefix}_assistant",
                    session_id=session_id,
                    role="assistant",
                    content=str(response),
                )
            )
            written += 1
        return StageOutput.ok(entries_written=written, session_id=str(session_id))
