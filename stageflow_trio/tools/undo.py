"""The undo store: what is needed to reverse a tool call, kept for a limited time.

:class:`UndoStore` keeps one :class:`~stageflow_trio.tools.definitions.UndoMetadata`
per action id, each with its own time to live. Expiry is measured on one trio
clock for the store's life (that of the run its backend is made in, or first used
in: see :class:`stageflow_trio._time.RunClock`), so ``MockClock`` drives it in
tests and a store used in several ``trio.run`` calls keeps its times: an entry is valid up to and including its expiry instant, and the first
:meth:`UndoStore.get` after that removes it and returns None.

The store keeps its entries in an :class:`UndoBackend`: by default
:class:`InMemoryUndoBackend`, for tests and single-process deployments;
:mod:`stageflow_trio.stores` has shared, durable ones (SQLite, Redis).
"""

from __future__ import annotations

from typing import Any, Protocol, cast
from uuid import UUID

import attrs
import trio

from stageflow_trio._args import check_seconds, type_of
from stageflow_trio._frozen import frozen_compat
from stageflow_trio._globals import install_once, register_global_reset
from stageflow_trio._time import RunClock

from ._checks import check_dict, check_str, check_uuid
from .definitions import UndoMetadata

__all__ = ["UndoEntry", "UndoStore", "clear_undo_store", "get_undo_store", "set_undo_store"]


@frozen_compat
@attrs.frozen
class UndoEntry:
    """A stored entry.

    Attributes:
        metadata: The undo metadata.
        expires_at: When it expires, in seconds on the backend's trio clock.
    """

    metadata: UndoMetadata
    expires_at: float


class UndoBackend(Protocol):
    """Where an :class:`UndoStore` keeps its entries. Every method is async and a checkpoint.

    :class:`InMemoryUndoBackend` is the default (the trio clock);
    :mod:`stageflow_trio.stores` has SQLite and Redis ones (wall-clock TTLs),
    shared between processes and kept across restarts.
    """

    async def put(self, metadata: UndoMetadata, ttl_seconds: float) -> None:
        """Store ``metadata`` under its action id (replacing any, keeping its place in
        :meth:`get_all`'s order) for ``ttl_seconds`` (``math.inf``: until deleted)."""
        ...

    async def get(self, action_id: UUID) -> UndoMetadata | None:
        """The live metadata for ``action_id``, or None (an expired entry is removed)."""
        ...

    async def delete(self, action_id: UUID) -> bool:
        """Remove the entry; True if there was one."""
        ...

    async def cleanup_expired(self) -> int:
        """Remove every expired entry; return how many."""
        ...

    async def get_all(self) -> list[UndoMetadata]:
        """Every live entry's metadata, oldest stored first."""
        ...


class InMemoryUndoBackend:
    """The default :class:`UndoBackend`: this process's memory, expiry on the trio clock.

    An entry is valid up to and including its expiry instant. Bounded: besides
    :meth:`get` (of that entry) and :meth:`cleanup_expired`, a sweep removes all
    expired entries once the puts since the last sweep reach the number of entries
    it left (at least 64). So a store nobody reads (the executor reads undo data
    only to undo) stays bounded by its load, about twice its peak of live entries
    plus 64, instead of growing with every put, at a constant cost per put. The
    reference keeps every expired entry until it is read or ``cleanup_expired`` runs.
    """

    _SWEEP_MIN_PUTS = 64

    def __init__(self) -> None:
        self._entries: dict[UUID, UndoEntry] = {}
        self._puts_since_sweep = 0
        self._sweep_after = self._SWEEP_MIN_PUTS
        self._clock = RunClock()

    async def put(self, metadata: UndoMetadata, ttl_seconds: float) -> None:
        """Store ``metadata`` for ``ttl_seconds``. A checkpoint, taken first."""
        await trio.lowlevel.checkpoint()
        now = self._clock()
        entries = self._entries
        entries[metadata.action_id] = UndoEntry(metadata=metadata, expires_at=now + ttl_seconds)
        self._puts_since_sweep += 1
        if self._puts_since_sweep >= self._sweep_after:
            self._remove_expired(now)

    async def get(self, action_id: UUID) -> UndoMetadata | None:
        """The live metadata, or None (an expired entry is removed). A checkpoint."""
        await trio.lowlevel.checkpoint()
        entry = self._entries.get(action_id)
        if entry is None:
            return None
        if self._clock() > entry.expires_at:
            del self._entries[action_id]
            return None
        return entry.metadata

    async def delete(self, action_id: UUID) -> bool:
        """Remove the entry; True if there was one. A checkpoint."""
        await trio.lowlevel.checkpoint()
        return self._entries.pop(action_id, None) is not None

    async def cleanup_expired(self) -> int:
        """Remove every expired entry and return how many. A checkpoint."""
        await trio.lowlevel.checkpoint()
        return self._remove_expired(self._clock())

    def _remove_expired(self, now: float) -> int:
        entries = self._entries
        expired = [key for key, entry in entries.items() if now > entry.expires_at]
        for key in expired:
            del entries[key]
        # The next sweep after as many puts as entries are left: O(1) per put.
        self._puts_since_sweep = 0
        self._sweep_after = max(len(entries), self._SWEEP_MIN_PUTS)
        return len(expired)

    async def get_all(self) -> list[UndoMetadata]:
        """The metadata of every entry not expired, oldest stored first. A checkpoint."""
        await trio.lowlevel.checkpoint()
        now = self._clock()
        return [entry.metadata for entry in self._entries.values() if now <= entry.expires_at]

    def __len__(self) -> int:
        """How many entries are held, expired ones not yet removed included."""
        return len(self._entries)


class UndoStore:
    """Undo metadata with a time to live per entry, kept by a backend.

    Args:
        default_ttl_seconds: How long entries live when :meth:`store` is given
            no TTL (3600 s; ``math.inf`` keeps them until deleted).
        backend: Where entries live; a new :class:`InMemoryUndoBackend` by
            default. A shared one (SQLite, Redis: :mod:`stageflow_trio.stores`)
            keeps them across processes and restarts.

    Raises:
        TypeError, ValueError: ``default_ttl_seconds`` is not a number >= 0.
    """

    def __init__(
        self, default_ttl_seconds: float = 3600.0, *, backend: UndoBackend | None = None
    ) -> None:
        self.default_ttl_seconds: float = check_seconds(
            "UndoStore", "default_ttl_seconds", default_ttl_seconds
        )
        self._backend: UndoBackend = InMemoryUndoBackend() if backend is None else backend

    @property
    def backend(self) -> UndoBackend:
        """Where entries live."""
        return self._backend

    async def store(
        self,
        action_id: UUID | UndoMetadata,
        tool_name: str | None = None,
        undo_data: dict[str, Any] | None = None,
        ttl_seconds: float | None = None,
    ) -> UndoMetadata:
        """Store undo data for ``action_id`` (replacing any), valid for ``ttl_seconds``.

        ``action_id`` may also be an :class:`UndoMetadata` (stageflow 1.2): it is
        stored as given, ``created_at`` included, and ``tool_name`` and
        ``undo_data`` are not read. ``ttl_seconds`` None means
        :attr:`default_ttl_seconds`. A checkpoint, taken before anything changes.

        Returns:
            The stored metadata (``created_at`` now, unless an UndoMetadata was given).

        Raises:
            TypeError: ``action_id`` is neither a UUID nor an UndoMetadata;
                ``tool_name`` or ``undo_data`` is None ("tool_name is required when
                storing by action_id", as in stageflow 1.2), ``tool_name`` not a str
                or ``undo_data`` not a dict; an UndoMetadata's fields have these
                wrong types (nothing is stored).
            TypeError, ValueError: ``ttl_seconds`` is not a number >= 0.
        """
        owner = "UndoStore.store"
        if isinstance(action_id, UndoMetadata):
            metadata = action_id
            check_uuid(owner, "action_id.action_id", metadata.action_id)
            check_str(owner, "action_id.tool_name", metadata.tool_name)
            check_dict(owner, "action_id.undo_data", metadata.undo_data)
            check_str(owner, "action_id.created_at", metadata.created_at)
        else:
            if not isinstance(action_id, UUID):
                raise TypeError(
                    f"{owner}: action_id must be a UUID or an UndoMetadata; got {type_of(action_id)}"
                )
            if tool_name is None:
                raise TypeError("tool_name is required when storing by action_id")
            if undo_data is None:
                raise TypeError("undo_data is required when storing by action_id")
            check_str(owner, "tool_name", tool_name)
            check_dict(owner, "undo_data", undo_data)
            metadata = UndoMetadata(action_id=action_id, tool_name=tool_name, undo_data=undo_data)
        ttl = (
            self.default_ttl_seconds
            if ttl_seconds is None
            else check_seconds(owner, "ttl_seconds", ttl_seconds)
        )
        await self._backend.put(metadata, ttl)
        return metadata

    async def get(self, action_id: UUID) -> UndoMetadata | None:
        """The metadata for ``action_id``; None if there is none or it expired
        (an expired entry is removed). A checkpoint."""
        return await self._backend.get(action_id)

    async def delete(self, action_id: UUID) -> bool:
        """Remove the entry for ``action_id``; True if there was one. A checkpoint."""
        return await self._backend.delete(action_id)

    async def remove(self, action_id: UUID) -> bool:
        """:meth:`delete` under stageflow 1.2's other name for it. A checkpoint."""
        return await self._backend.delete(action_id)

    async def cleanup_expired(self) -> int:
        """Remove every expired entry and return how many. A checkpoint."""
        return await self._backend.cleanup_expired()

    async def get_all(self) -> list[UndoMetadata]:
        """The metadata of every entry not expired, oldest stored first. A checkpoint."""
        return await self._backend.get_all()

    def __len__(self) -> int:
        """How many entries are held, expired ones not yet removed included (the
        in-memory backend removes them when read, on :meth:`cleanup_expired`, and
        in a sweep after as many stores as entries the last sweep left, at least 64).

        Raises:
            TypeError: The backend cannot count without I/O (the shared ones).
        """
        return len(self._backend)  # type: ignore[arg-type]


class UndoStoreLike(Protocol):
    """What :class:`~stageflow_trio.tools.executor_v2.AdvancedToolExecutor` calls on
    its undo store, given or process-wide (:func:`set_undo_store`): an
    :class:`UndoStore`, or any object with these three methods (it need not
    subclass UndoStore). Their results other than ``get``'s are not read."""

    async def store(
        self,
        action_id: UUID,
        tool_name: str,
        undo_data: dict[str, Any],
        ttl_seconds: float | None = None,
    ) -> object:
        """Store ``undo_data`` for ``action_id`` (replacing any) for ``ttl_seconds``."""
        ...

    async def get(self, action_id: UUID) -> UndoMetadata | None:
        """The live undo data of ``action_id``, or None."""
        ...

    async def delete(self, action_id: UUID) -> object:
        """Forget the undo data of ``action_id``."""
        ...


# -- the process-wide instance ------------------------------------------------

_undo_store: UndoStore | None = None


def get_undo_store() -> UndoStore:
    """The process-wide undo store, created on first use.

    Typed as the :class:`UndoStore` it creates, for its callers' sake (``get_all``,
    ``cleanup_expired``, ...): a replacement given to :func:`set_undo_store` that
    does not subclass UndoStore is sure to have only :class:`UndoStoreLike`'s methods.
    """
    store = _undo_store
    if store is None:
        # Two threads may get here at once: both get the one installed first.
        store = install_once(globals(), "_undo_store", UndoStore())
    return store


def set_undo_store(store: UndoStoreLike) -> None:
    """Make ``store`` the process-wide undo store (a replacement need not subclass
    UndoStore: it needs :class:`UndoStoreLike`'s methods, those the executor calls)."""
    global _undo_store
    # Typed as get_undo_store returns it (see there); nothing is checked or wrapped.
    _undo_store = cast("UndoStore", store)


def clear_undo_store() -> None:
    """Forget the process-wide undo store; the next get creates a new one."""
    global _undo_store
    _undo_store = None


register_global_reset(clear_undo_store)
