"""The per-run registry of sink work owned by a nursery, and wait_for_event_sink_tasks."""

from __future__ import annotations

from typing import Protocol

import trio


class _OwnedWork(Protocol):
    """Anything with background emit work owned by a nursery (a backpressure sink's worker, an AnalyticsSink)."""

    def _has_owned_pending(self) -> bool: ...


class _Registry:
    """Per trio run: the sinks with owned background work, and tasks waiting for it.

    wait_for_event_sink_tasks waits until none of the registered objects has
    queued, held or in-flight events. Backpressure workers register while they
    run; an AnalyticsSink while it has exports in flight. Each wakes the waiters
    when it goes idle or exits, so no per-event bookkeeping is needed.
    """

    __slots__ = ("idle_waiters", "sinks")

    def __init__(self) -> None:
        self.sinks: set[_OwnedWork] = set()
        self.idle_waiters = trio.lowlevel.ParkingLot()

    def wake_waiters(self) -> None:
        if self.idle_waiters:
            self.idle_waiters.unpark_all()


_registry_var: trio.lowlevel.RunVar[_Registry] = trio.lowlevel.RunVar("stageflow_event_sinks")


def _run_registry() -> _Registry:
    try:
        return _registry_var.get()
    except LookupError:
        registry = _Registry()
        _registry_var.set(registry)
        return registry


async def wait_for_event_sink_tasks() -> None:
    """Wait until every running backpressure worker has delivered what it has queued.

    Only owned work counts: events queued in a sink with no running worker
    would never finish, so they are not waited for. A checkpoint, also when
    nothing is pending.
    """
    await trio.lowlevel.checkpoint()
    registry = _run_registry()
    while any(sink._has_owned_pending() for sink in registry.sinks):
        await registry.idle_waiters.park()
