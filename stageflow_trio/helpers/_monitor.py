"""BackpressureMonitor and its BackpressureStats snapshot (used by ChunkQueue)."""

from __future__ import annotations

import math
from typing import Any

import attrs

from stageflow_trio._args import check_int, check_number
from stageflow_trio._frozen import frozen_compat


@frozen_compat
@attrs.frozen
class BackpressureStats:
    """A snapshot of a :class:`BackpressureMonitor`'s counters.

    Attributes:
        total_items: Items put.
        dropped_items: Items dropped on overflow.
        blocked_puts: Puts that waited for room more than 1 ms.
        max_queue_size: Largest queue size seen after a put.
        total_blocked_ms: Milliseconds spent waiting in blocked puts.
    """

    total_items: int = 0
    dropped_items: int = 0
    blocked_puts: int = 0
    max_queue_size: int = 0
    total_blocked_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The counters plus ``drop_rate = dropped_items / max(total_items, 1)``."""
        return {
            "total_items": self.total_items,
            "dropped_items": self.dropped_items,
            "blocked_puts": self.blocked_puts,
            "max_queue_size": self.max_queue_size,
            "total_blocked_ms": self.total_blocked_ms,
            "drop_rate": self.dropped_items / max(self.total_items, 1),
        }


class BackpressureMonitor:
    """Counts puts, drops and blocked time, and latches a throttle flag on fill level.

    The throttle turns on when a put leaves the queue at least ``high_water_mark``
    percent full and off again only when a put leaves it at most
    ``low_water_mark`` percent full.

    Args:
        high_water_mark: Fill percentage that starts throttling.
        low_water_mark: Fill percentage that ends throttling.
        threshold: stageflow 1.2's other way to set the high-water mark, as a fill
            ratio (0-1): ``high_water_mark`` becomes ``threshold * 100`` and
            ``low_water_mark`` at most half of that.

    Raises:
        TypeError: a mark or ``threshold`` is not a number.
        ValueError: a mark is negative or not finite, ``threshold`` is outside
            [0, 1], or ``low_water_mark`` is above ``high_water_mark``.
    """

    __slots__ = (
        "_blocked_puts",
        "_dropped_items",
        "_fill_pct",
        "_high_water",
        "_low_water",
        "_max_queue_size",
        "_throttling",
        "_total_blocked_ms",
        "_total_items",
    )

    def __init__(
        self,
        *,
        high_water_mark: float = 80,
        low_water_mark: float = 20,
        threshold: float | None = None,
    ) -> None:
        if threshold is not None:
            check_number("BackpressureMonitor", "threshold", threshold, minimum=0)
            if threshold > 1:
                raise ValueError(
                    f"BackpressureMonitor: threshold must be a fill ratio <= 1; got {threshold!r}"
                )
            high_water_mark = threshold * 100
            # Keeps a gap between the marks, as stageflow 1.2 does.
            low_water_mark = min(low_water_mark, high_water_mark / 2)
        check_number("BackpressureMonitor", "high_water_mark", high_water_mark, minimum=0)
        check_number("BackpressureMonitor", "low_water_mark", low_water_mark, minimum=0)
        if low_water_mark > high_water_mark:
            raise ValueError(
                "BackpressureMonitor: low_water_mark must be <= high_water_mark; "
                f"got {low_water_mark!r} > {high_water_mark!r}"
            )
        self._high_water = high_water_mark
        self._low_water = low_water_mark
        self._total_items = 0
        self._dropped_items = 0
        self._blocked_puts = 0
        self._max_queue_size = 0
        self._total_blocked_ms = 0.0
        self._fill_pct: float = 0.0
        self._throttling = False

    @property
    def stats(self) -> BackpressureStats:
        """A snapshot of the counters (a new frozen object on every read)."""
        return BackpressureStats(
            total_items=self._total_items,
            dropped_items=self._dropped_items,
            blocked_puts=self._blocked_puts,
            max_queue_size=self._max_queue_size,
            total_blocked_ms=self._total_blocked_ms,
        )

    def record_put(self, queue_size: int, max_size: int = 100) -> None:
        """Count a put that left ``queue_size`` items in a queue of ``max_size``.

        ``max_size <= 0`` (unbounded) gives a fill of 0.

        Raises:
            TypeError: ``queue_size`` or ``max_size`` is not an int.
            ValueError: ``queue_size`` is negative. Nothing is counted then.
        """
        # The usual call passes on identity tests alone; anything else is checked.
        if not (type(queue_size) is int and type(max_size) is int and queue_size >= 0):
            check_int("BackpressureMonitor.record_put", "queue_size", queue_size, minimum=0)
            check_int("BackpressureMonitor.record_put", "max_size", max_size)
        self._record_put(queue_size, max_size)

    def _record_put(self, queue_size: int, max_size: int) -> None:
        # record_put without the argument checks: ChunkQueue's hot path.
        self._total_items += 1
        if queue_size > self._max_queue_size:
            self._max_queue_size = queue_size
        self._fill_pct = (queue_size / max_size) * 100 if max_size > 0 else 0
        if self._fill_pct >= self._high_water:
            self._throttling = True
        elif self._fill_pct <= self._low_water:
            self._throttling = False

    def record_blocked(self, blocked_ms: float) -> None:
        """Count a put that waited ``blocked_ms`` milliseconds for room.

        Raises:
            TypeError: ``blocked_ms`` is not an int or float.
            ValueError: ``blocked_ms`` is negative, NaN or infinite. Nothing is counted then.
        """
        if not (
            (type(blocked_ms) is float or type(blocked_ms) is int) and 0 <= blocked_ms < math.inf
        ):
            check_number("BackpressureMonitor.record_blocked", "blocked_ms", blocked_ms, minimum=0)
        self._blocked_puts += 1
        self._total_blocked_ms += blocked_ms

    def record_drop(self) -> None:
        """Count a dropped item."""
        self._dropped_items += 1

    def should_throttle(self) -> bool:
        """Whether the producer should slow down (the latched throttle flag)."""
        return self._throttling

    @property
    def fill_percentage(self) -> float:
        """Fill percentage recorded by the last put."""
        return self._fill_pct
