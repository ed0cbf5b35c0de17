"""Run utilities. So far: :class:`ObservableEventSink`, an event sink that prints and keeps events.

The reference module's other names (``PipelineRunner``, ``RunResult``,
``run_simple_pipeline``, ``setup_logging``, ``JsonLogFormatter``) are not
ported yet (docs/parity.md).
"""

from __future__ import annotations

import time
from typing import Any

import trio

from stageflow_trio._time import utc_now_iso

__all__ = ["ObservableEventSink"]

_RED, _GREEN, _BLUE, _YELLOW, _GRAY, _CYAN = (
    "\033[91m",
    "\033[92m",
    "\033[94m",
    "\033[93m",
    "\033[90m",
    "\033[96m",
)
_RESET = "\033[0m"

# The payload keys printed under an event, in this order.
_SHOWN_KEYS = (
    "stage",
    "action_type",
    "tool_name",
    "error",
    "result",
    "duration_ms",
    "execution_mode",
    "behavior",
    "reason",
)


def _color(event_type: str) -> str:
    if "error" in event_type or "failed" in event_type:
        return _RED
    if "completed" in event_type or "success" in event_type:
        return _GREEN
    if "started" in event_type:
        return _BLUE
    if "tool" in event_type:
        return _YELLOW
    if "skip" in event_type:
        return _GRAY
    return _CYAN


class ObservableEventSink:
    """An event sink that prints each event as it arrives and keeps them for later.

    Each event is recorded as ``{"type", "data", "timestamp", "elapsed_ms"}``:
    ``data`` is the payload (``{}`` for None), ``timestamp`` the UTC ISO time it
    arrived and ``elapsed_ms`` the milliseconds since the sink was created (or
    last cleared).

    Args:
        verbose: Print each event (its type, then a few known payload keys).
        colorize: Color the printed type with ANSI codes.
        capture: Keep the events in :attr:`events`.
    """

    def __init__(
        self, *, verbose: bool = True, colorize: bool = True, capture: bool = True
    ) -> None:
        self.verbose = verbose
        self.colorize = colorize
        self.capture = capture
        self.events: list[dict[str, Any]] = []
        self._start = time.perf_counter()

    def _elapsed_ms(self) -> float:
        return (time.perf_counter() - self._start) * 1000

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        """Record (and print) the event. A checkpoint; a call cancelled there records nothing."""
        await trio.lowlevel.checkpoint_if_cancelled()
        self._record(type, data)
        await trio.lowlevel.cancel_shielded_checkpoint()

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        """Record (and print) the event."""
        self._record(type, data)

    def _record(self, event_type: str, data: dict[str, Any] | None) -> None:
        event = {
            "type": event_type,
            "data": data or {},
            "timestamp": utc_now_iso(),
            "elapsed_ms": self._elapsed_ms(),
        }
        if self.capture:
            self.events.append(event)
        if self.verbose:
            self._print_event(event)

    def _print_event(self, event: dict[str, Any]) -> None:
        color, reset = (_color(event["type"]), _RESET) if self.colorize else ("", "")
        print(f"{color}[{event['elapsed_ms']:8.2f}ms] {event['type']}{reset}")
        data = event["data"]
        for key in _SHOWN_KEYS:
            if key in data:
                value = data[key]
                if isinstance(value, str) and len(value) > 80:
                    value = value[:80] + "..."
                print(f"           {key}: {value}")

    def print_summary(self) -> None:
        """Print the number of events, by category (the type up to the first dot), and the last 10."""
        if not self.events:
            print("\nNo events captured.")
            return
        print("\n" + "=" * 60)
        print("EVENT SUMMARY")
        print("=" * 60)
        print(f"Total events: {len(self.events)}")
        print(f"Total time: {self._elapsed_ms():.1f}ms")
        by_prefix: dict[str, int] = {}
        for event in self.events:
            prefix = event["type"].split(".")[0]
            by_prefix[prefix] = by_prefix.get(prefix, 0) + 1
        print("\nBy category:")
        for prefix, count in sorted(by_prefix.items()):
            print(f"  {prefix}: {count}")
        print("\nRecent events:")
        for event in self.events[-10:]:
            print(f"  [{event['elapsed_ms']:8.2f}ms] {event['type']}")

    def clear(self) -> None:
        """Forget the captured events and restart the elapsed-time clock."""
        self.events.clear()
        self._start = time.perf_counter()

    def get_events_by_type(self, event_type: str) -> list[dict[str, Any]]:
        """The captured events whose type contains ``event_type``."""
        return [event for event in self.events if event_type in event["type"]]

    def get_stage_events(self, stage_name: str) -> list[dict[str, Any]]:
        """The captured events whose payload's ``stage`` is ``stage_name``, or whose
        type contains it."""
        return [
            event
            for event in self.events
            if event.get("data", {}).get("stage") == stage_name or stage_name in event["type"]
        ]
