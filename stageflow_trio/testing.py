"""Fakes and helpers for testing code built on stageflow_trio (and for its own tests)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["RecordingEventSink", "register_global_reset", "reset_globals"]

_resets: list[Callable[[], None]] = []


def register_global_reset(reset: Callable[[], None]) -> None:
    """Register a function that puts one of the library's singletons back to its default."""
    _resets.append(reset)


def reset_globals() -> None:
    """Reset every process-wide singleton the library keeps (event sink, registries, ...)."""
    for reset in _resets:
        reset()


class RecordingEventSink:
    """An event sink that records every event, in arrival order, for assertions.

    ``events`` holds ``(type, data)`` tuples exactly as received (``data`` is
    not copied). Use it as the global sink (``set_event_sink``) or pass it to a
    context or ``BackpressureAwareEventSink``.
    """

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any] | None]] = []

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        """Record the event. A checkpoint; a call cancelled there records nothing."""
        await trio.lowlevel.checkpoint_if_cancelled()
        self.events.append((type, data))
        await trio.lowlevel.cancel_shielded_checkpoint()

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        """Record the event."""
        self.events.append((type, data))

    def types(self) -> list[str]:
        """The recorded event types, in order."""
        return [event_type for event_type, _ in self.events]

    def of_type(self, type: str) -> list[dict[str, Any] | None]:  # noqa: A002
        """The payloads of the recorded events whose type is ``type``, in order."""
        return [data for event_type, data in self.events if event_type == type]

    def clear(self) -> None:
        """Forget every recorded event."""
        self.events.clear()
