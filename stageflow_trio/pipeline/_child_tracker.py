"""ChildRunTracker, gathered by :mod:`stageflow_trio.pipeline.subpipeline`."""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING
from uuid import UUID

import trio

from stageflow_trio._globals import install_once

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping


def _check_ids(method: str, parent_id: object, child_id: object) -> None:
    for param, value in (("parent_id", parent_id), ("child_id", child_id)):
        if type(value) is not UUID and not isinstance(value, UUID):
            raise TypeError(
                f"ChildRunTracker.{method}: {param} must be a UUID; got {type(value).__name__}"
            )


class ChildRunTracker:
    """The parent/child links between pipeline runs, and counters about them.

    Every method is a checkpoint and then runs without one, so concurrent tasks
    see each change whole (the reference needed an ``asyncio.Lock`` for this;
    under trio a task is only interrupted at a checkpoint). A cancelled call
    changes nothing.
    """

    def __init__(self) -> None:
        # Children are kept in insertion order (a dict used as an ordered set), so
        # traversals and cancellation cascades are deterministic.
        self._children: dict[UUID, dict[UUID, None]] = {}
        self._parents: dict[UUID, UUID] = {}
        self._registration_count = 0
        self._unregistration_count = 0
        self._lookup_count = 0
        self._tree_traversal_count = 0
        self._cleanup_count = 0
        self._max_concurrent_children = 0
        self._max_depth_seen = 0

    # The spawner's synchronous entry points: spawn and cancel_with_children must
    # not give up control between reading the tree and acting on it.

    def _register(self, parent_id: UUID, child_id: UUID) -> None:
        children = self._children.setdefault(parent_id, {})
        children[child_id] = None
        self._parents[child_id] = parent_id
        self._max_concurrent_children = max(self._max_concurrent_children, len(children))
        self._registration_count += 1

    def _unregister(self, parent_id: UUID, child_id: UUID) -> None:
        children = self._children.get(parent_id)
        if children is not None:
            children.pop(child_id, None)
            if not children:
                del self._children[parent_id]
        self._parents.pop(child_id, None)
        self._unregistration_count += 1

    def _subtree(
        self, run_id: UUID, extra_links: Mapping[UUID, Iterable[UUID]] | None = None
    ) -> list[tuple[UUID, UUID | None, int]]:
        """``(run, parent, depth)`` for ``run_id`` and its descendants, deepest first.

        Within a depth, runs come in breadth-first, registration order (the
        tracker's children, then those in ``extra_links``: parent -> children links
        the caller keeps beyond the tracker's). Counts a lookup per run visited,
        as the reference's recursive walk did.
        """
        order: list[tuple[UUID, UUID | None, int]] = [(run_id, self._parents.get(run_id), 0)]
        seen = {run_id}
        index = 0
        while index < len(order):
            current, _, depth = order[index]
            index += 1
            self._lookup_count += 1
            # A copy (made in one step, under the GIL): a run in another thread
            # may link or unlink a child of this run while the walk goes on.
            children: Iterable[UUID] = tuple(self._children.get(current, ()))
            if extra_links is not None and current in extra_links:
                children = [*children, *extra_links[current]]
            for child in children:
                if child not in seen:
                    seen.add(child)
                    order.append((child, current, depth + 1))
        order.sort(key=lambda item: -item[2])
        return order

    async def register_child(self, parent_id: UUID, child_id: UUID) -> None:
        """Record ``child_id`` as a child of ``parent_id``. A checkpoint.

        Raises:
            TypeError: an id is not a UUID (a string id would never match the
                UUIDs the spawner records, so the link could not be found again).
        """
        _check_ids("register_child", parent_id, child_id)
        await trio.lowlevel.checkpoint()
        self._register(parent_id, child_id)

    async def unregister_child(self, parent_id: UUID, child_id: UUID) -> None:
        """Forget that ``child_id`` is a child of ``parent_id``. A checkpoint.

        Raises:
            TypeError: an id is not a UUID.
        """
        _check_ids("unregister_child", parent_id, child_id)
        await trio.lowlevel.checkpoint()
        self._unregister(parent_id, child_id)

    async def get_children(self, parent_id: UUID) -> set[UUID]:
        """A copy of the ids of ``parent_id``'s children. A checkpoint."""
        await trio.lowlevel.checkpoint()
        self._lookup_count += 1
        return set(self._children.get(parent_id, ()))

    async def get_parent(self, child_id: UUID) -> UUID | None:
        """The parent of ``child_id``, or None. A checkpoint."""
        await trio.lowlevel.checkpoint()
        self._lookup_count += 1
        return self._parents.get(child_id)

    async def get_all_descendants(self, run_id: UUID) -> set[UUID]:
        """Children, grandchildren and so on of ``run_id``. A checkpoint."""
        await trio.lowlevel.checkpoint()
        descendants: set[UUID] = set()
        to_visit = [run_id]
        while to_visit:
            for child in tuple(self._children.get(to_visit.pop(), ())):  # as in _subtree
                if child not in descendants:
                    descendants.add(child)
                    to_visit.append(child)
        self._tree_traversal_count += 1
        return descendants

    async def get_root_run(self, run_id: UUID) -> UUID:
        """The top-most ancestor of ``run_id`` (``run_id`` itself for a root). A checkpoint.

        Updates ``max_depth_seen`` with the number of links walked. A cycle of
        links (only possible through :meth:`register_child` misuse) stops the walk
        at the first run seen twice, where the reference looped forever.
        """
        await trio.lowlevel.checkpoint()
        current = run_id
        seen = {run_id}
        depth = 0
        while current in self._parents:
            parent = self._parents[current]
            if parent in seen:
                break
            seen.add(parent)
            current = parent
            depth += 1
        self._lookup_count += 1
        self._max_depth_seen = max(self._max_depth_seen, depth)
        return current

    async def cleanup_run(self, run_id: UUID) -> None:
        """Forget ``run_id``'s own link to its parent and its list of children. A checkpoint.

        As in the reference, the children keep their link to ``run_id``
        (:meth:`get_parent` still names it).
        """
        await trio.lowlevel.checkpoint()
        parent = self._parents.pop(run_id, None)
        if parent is not None:
            siblings = self._children.get(parent)
            if siblings is not None:
                siblings.pop(run_id, None)
                if not siblings:
                    del self._children[parent]
        self._children.pop(run_id, None)
        self._cleanup_count += 1

    async def get_metrics(self) -> dict[str, int]:
        """The counters, plus the current numbers of parents and children. A checkpoint.

        Keys: ``registration_count``, ``unregistration_count``, ``lookup_count``,
        ``tree_traversal_count``, ``cleanup_count``, ``max_concurrent_children``,
        ``max_depth_seen``, ``active_parents``, ``active_children``,
        ``total_relationships`` (registrations minus unregistrations).
        """
        await trio.lowlevel.checkpoint()
        return {
            "registration_count": self._registration_count,
            "unregistration_count": self._unregistration_count,
            "lookup_count": self._lookup_count,
            "tree_traversal_count": self._tree_traversal_count,
            "cleanup_count": self._cleanup_count,
            "max_concurrent_children": self._max_concurrent_children,
            "max_depth_seen": self._max_depth_seen,
            "active_parents": len(self._children),
            "active_children": len(self._parents),
            "total_relationships": self._registration_count - self._unregistration_count,
        }

    async def reset_metrics(self) -> None:
        """Set every counter to zero (the links are kept). A checkpoint."""
        await trio.lowlevel.checkpoint()
        self._registration_count = 0
        self._unregistration_count = 0
        self._lookup_count = 0
        self._tree_traversal_count = 0
        self._cleanup_count = 0
        self._max_concurrent_children = 0
        self._max_depth_seen = 0


# As with the global event sink, set_child_tracker binds a tracker for the current
# context (a trio task and the tasks it starts afterwards); without one,
# get_child_tracker returns a single process-wide tracker created on first use.
_tracker_var: ContextVar[ChildRunTracker | None] = ContextVar("child_tracker", default=None)
_default_tracker: ChildRunTracker | None = None


def get_child_tracker() -> ChildRunTracker:
    """The tracker set for this context, else the process-wide one (created on first use)."""
    tracker = _tracker_var.get()
    if tracker is not None:
        return tracker
    tracker = _default_tracker
    if tracker is None:
        # Two threads may get here at once: both get the one installed first.
        tracker = install_once(globals(), "_default_tracker", ChildRunTracker())
    return tracker


def set_child_tracker(tracker: ChildRunTracker) -> None:
    """Use ``tracker`` in the current context (and the tasks it starts afterwards).

    Raises:
        TypeError: ``tracker`` is not a ChildRunTracker.
    """
    if not isinstance(tracker, ChildRunTracker):
        raise TypeError(f"tracker must be a ChildRunTracker, got {type(tracker).__name__}")
    _tracker_var.set(tracker)


def clear_child_tracker() -> None:
    """Forget the tracker set here and the process-wide one; the next get creates a new one."""
    global _default_tracker
    _tracker_var.set(None)
    _default_tracker = None
