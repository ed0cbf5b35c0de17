"""BackpressureMetrics: the counters of a BackpressureAwareEventSink."""

from __future__ import annotations

import time
from typing import Any

import attrs


@attrs.define
class BackpressureMetrics:
    """Counters of a :class:`BackpressureAwareEventSink`.

    Attributes:
        emitted: Events accepted into the queue (delivered or not).
        dropped: Events that will never reach the downstream sink: refused
            because the queue was full, plus those given up at ``stop``.
        queue_full_count: Events refused because the queue was full.
        last_emit_time: ``time.monotonic()`` of the last accepted event, 0.0 if none.
        last_drop_time: ``time.monotonic()`` of the last dropped event, 0.0 if none.
        undelivered: Events accepted but not delivered: given up at ``stop``,
            cut mid-delivery by cancellation, or rejected by the downstream
            (``dropped - queue_full_count``).
        downstream_errors: Events the downstream rejected: its ``emit``
            raised (also counted in ``undelivered`` and ``dropped``).

    The times are ``time.monotonic()``, as in the reference, not the trio clock:
    users compare them with ``time.monotonic()`` to spot a stalled producer, and
    trio's clock has an arbitrary offset (and stands still under ``MockClock``).
    """

    emitted: int = 0
    dropped: int = 0
    queue_full_count: int = 0
    last_emit_time: float = 0.0
    last_drop_time: float = 0.0
    undelivered: int = 0
    downstream_errors: int = 0

    def record_emit(self) -> None:
        """Count one accepted event."""
        self.emitted += 1
        self.last_emit_time = time.monotonic()

    def record_drop(self) -> None:
        """Count one event refused because the queue was full."""
        self.dropped += 1
        self.queue_full_count += 1
        self.last_drop_time = time.monotonic()

    def record_undelivered(self, count: int = 1) -> None:
        """Count ``count`` accepted events that the sink gave up delivering."""
        self.dropped += count
        self.undelivered += count
        self.last_drop_time = time.monotonic()

    def record_downstream_error(self) -> None:
        """Count one accepted event whose delivery the downstream rejected."""
        self.downstream_errors += 1
        self.record_undelivered()

    @property
    def drop_rate(self) -> float:
        """The share of offered events that were lost, in percent; 0.0 before any event.

        ``dropped / (emitted + dropped - undelivered)``: the events offered are
        those accepted (``emitted``) plus those refused at the door; an
        undelivered event was accepted, so it is in ``emitted`` already and is
        not counted twice. With nothing undelivered this is the reference's
        ``dropped / (emitted + dropped)``.
        """
        total = self.emitted + self.dropped - self.undelivered
        if total <= 0:
            return 0.0
        return self.dropped / total * 100.0

    def to_dict(self) -> dict[str, Any]:
        """The counters as a dict (the reference's keys; ``drop_rate_percent`` to 2 decimals)."""
        return {
            "emitted": self.emitted,
            "dropped": self.dropped,
            "queue_full_count": self.queue_full_count,
            "drop_rate_percent": round(self.drop_rate, 2),
            "last_emit_time": self.last_emit_time,
            "last_drop_time": self.last_drop_time,
        }
