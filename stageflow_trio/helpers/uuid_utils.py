"""UUID telemetry: spot reused ids in a sliding window, and UUIDv7 clock skew.

:class:`UuidCollisionMonitor` remembers the ids it was shown for a while
(``ttl_seconds``, at most ``max_entries`` of them) and reports an id seen again
within that window as a collision, to its listeners and in its return value.
A monitor measures its window on one clock for its whole life, chosen when it
is made: the clock of the trio run it is made in (so ``trio.testing.MockClock``
drives it in tests), or ``time.monotonic()`` when it is made outside a run.
The event's ``observed_at`` is wall-clock UTC.

Example::

    monitor = UuidCollisionMonitor(category="pipeline", listeners=[print])
    run_id = generate_uuid7()
    assert monitor.observe(run_id) is False
    assert monitor.observe(run_id) is True  # a collision
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TypeAlias

import attrs
import trio

from stageflow_trio._args import check_callable, check_flag, check_number, type_of
from stageflow_trio._frozen import frozen_compat
from stageflow_trio._time import utc_now

__all__ = [
    "ClockSkewDetector",
    "UuidCollisionMonitor",
    "UuidEvent",
    "UuidEventListener",
    "generate_uuid7",
]

logger: logging.Logger = logging.getLogger("stageflow_trio.helpers.uuid")

HAS_UUID7 = True
"""Whether UUIDv7s can be made and checked. Always True here: the reference needs the
``uuid6`` package for it, this module does it itself."""


@frozen_compat
@attrs.frozen
class UuidEvent:
    """One observation of a UUID by a :class:`UuidCollisionMonitor`.

    Attributes:
        value: The UUID observed.
        collision: Whether it was already in the monitor's window.
        category: The monitor's category (``"pipeline"``, ``"tool"``, ...).
        observed_at: When it was observed (wall-clock UTC).
        skew_ms: For a UUIDv7 checked for clock skew, the skew in milliseconds
            when it exceeded the detector's limit; else None.
    """

    value: uuid.UUID
    collision: bool
    category: str
    observed_at: datetime
    skew_ms: float | None = None


UuidEventListener: TypeAlias = Callable[[UuidEvent], None]
"""A callable told each :class:`UuidEvent`."""

# The clock of a monitor made outside a trio run (a seam for tests).
_system_clock: Callable[[], float] = time.monotonic


def _construction_clock() -> Callable[[], float]:
    """The current trio run's clock, else :data:`_system_clock`.

    A trio clock object keeps working after its run ends (a ``SystemClock`` goes
    on with real time, a ``MockClock`` stays where its run left it), so one
    monitor never compares times from two clocks: ``trio.current_time()`` has a
    random offset in each run (0 on a ``MockClock``) and is unavailable outside one.
    """
    try:
        return trio.lowlevel.current_clock().current_time
    except RuntimeError:
        return _system_clock


# generate_uuid7's clock, in ticks of 1/4096 ms: the 48-bit millisecond and the 12
# bits after it (RFC 9562, section 6.2, method 3: sub-millisecond precision in
# rand_a). The last tick given out, so that ids made in one process sort in the
# order they were made; the lock makes that hold across threads.
_TICKS_PER_MS = 4096
_last_uuid7_tick = 0
_uuid7_lock = threading.Lock()


def generate_uuid7() -> uuid.UUID:
    """A time-ordered UUID (version 7, RFC 9562): Unix milliseconds, sub-milliseconds, random bits.

    48 bits of Unix milliseconds, then 12 bits of the fraction of the millisecond
    (RFC 9562's method 3), then 62 random bits. Ids from one process, in any
    thread, are strictly increasing: an id that would not sort after the
    previous one (two in one 1/4096 ms, or the wall clock stepped back) takes
    the previous one's time plus 1/4096 ms. So the embedded time runs ahead of
    the clock only past 4,096 ids a millisecond (the ``uuid6`` package's
    ``uuid7`` moves a whole millisecond ahead for each id in the same millisecond).
    """
    global _last_uuid7_tick
    ms, rest = divmod(time.time_ns(), 1_000_000)
    tick = ms * _TICKS_PER_MS + rest * _TICKS_PER_MS // 1_000_000
    with _uuid7_lock:
        if tick <= _last_uuid7_tick:
            tick = _last_uuid7_tick + 1
        _last_uuid7_tick = tick
    rand_b = int.from_bytes(os.urandom(8), "big") & 0x3FFF_FFFF_FFFF_FFFF
    # Layout: 48 bits of ms, version 7, 12 bits of sub-ms, variant 0b10, 62 random
    # bits (Python before 3.14 refuses UUID(version=7), so the bits are set here).
    value = (tick >> 12 & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | (tick & 0xFFF) << 64
    return uuid.UUID(int=value | 0b10 << 62 | rand_b)


# The first Unix millisecond after 9999-12-31T23:59:59.999 UTC, past what datetime holds.
_DATETIME_MAX_MS = 253_402_300_800_000


class ClockSkewDetector:
    """Tells how far a UUIDv7's timestamp is from the wall clock, when that is too far.

    Args:
        max_skew_ms: The largest distance (in either direction) not reported.

    Raises:
        TypeError / ValueError: ``max_skew_ms`` is not a number >= 0.
    """

    def __init__(self, max_skew_ms: float = 5000.0) -> None:
        check_number("ClockSkewDetector", "max_skew_ms", max_skew_ms, minimum=0)
        self.max_skew_ms = max_skew_ms

    def check(self, uid: uuid.UUID) -> float | None:
        """The skew in milliseconds if ``uid`` is a UUIDv7 more than ``max_skew_ms`` off, else None.

        A timestamp past what ``datetime`` holds (after year 9999, which 48 bits of
        milliseconds reach) is measured in plain milliseconds: it is skew, not an error.

        Raises:
            TypeError: ``uid`` is not a UUID.
        """
        if not isinstance(uid, uuid.UUID):
            raise TypeError(f"ClockSkewDetector.check: uid must be a UUID; got {type_of(uid)}")
        if uid.version != 7:
            return None
        uuid_ms = uid.int >> 80
        now = utc_now()
        if uuid_ms < _DATETIME_MAX_MS:
            uuid_time = datetime.fromtimestamp(uuid_ms / 1000.0, tz=UTC)
            skew = abs((now - uuid_time).total_seconds() * 1000)
        else:
            skew = uuid_ms - now.timestamp() * 1000
        return skew if skew > self.max_skew_ms else None


class UuidCollisionMonitor:
    """Reports a UUID observed twice within a sliding window.

    Args:
        ttl_seconds: How long an observed id stays in the window (at least 1.0;
            smaller values are raised to 1.0, as in the reference).
        max_entries: The most observations kept (at least 1); the oldest go first.
        category: A label copied into every event.
        listeners: Callables told each :class:`UuidEvent` (their errors propagate).
        check_skew: Also check UUIDv7s against the wall clock
            (:class:`ClockSkewDetector`'s default limit) and log a warning on skew.

    The window is measured on one clock for the monitor's whole life, chosen
    here: the clock of the trio run the monitor is made in (a ``MockClock`` in
    tests, so virtual time moves the window), or ``time.monotonic()`` when it is
    made outside a run (e.g. at import time in a service). Observations inside
    and outside runs, or in several ``trio.run`` calls, are then on one time line.

    Raises:
        TypeError / ValueError: an argument has the wrong type or value.
    """

    def __init__(
        self,
        *,
        ttl_seconds: float = 300.0,
        max_entries: int = 50_000,
        category: str = "default",
        listeners: Iterable[UuidEventListener] | None = None,
        check_skew: bool = False,
    ) -> None:
        owner = "UuidCollisionMonitor"
        check_number(owner, "ttl_seconds", ttl_seconds)
        if isinstance(max_entries, bool) or not isinstance(max_entries, int):
            raise TypeError(f"{owner}: max_entries must be an int; got {type_of(max_entries)}")
        if not isinstance(category, str):
            raise TypeError(f"{owner}: category must be a str; got {type_of(category)}")
        check_flag(owner, "check_skew", check_skew)
        listener_list = list(listeners or ())
        for listener in listener_list:
            check_callable(owner, "listeners", listener)
        self._ttl = max(float(ttl_seconds), 1.0)
        self._max_entries = max(1, max_entries)
        self._category = category
        # (monitor-clock time, id) in observation order, and how many of each id it holds.
        self._entries: deque[tuple[float, str]] = deque()
        self._counts: dict[str, int] = {}
        self._listeners: list[UuidEventListener] = listener_list
        self._skew_detector = ClockSkewDetector() if check_skew else None
        self._now = _construction_clock()

    @property
    def category(self) -> str:
        """The label copied into every event."""
        return self._category

    def add_listener(self, listener: UuidEventListener) -> None:
        """Register a callable told each :class:`UuidEvent`."""
        check_callable("UuidCollisionMonitor.add_listener", "listener", listener)
        self._listeners.append(listener)

    def observe(self, value: uuid.UUID) -> bool:
        """Record ``value``; return True if it was already in the window (a collision).

        Raises:
            TypeError: ``value`` is not a UUID.
        """
        if not isinstance(value, uuid.UUID):
            raise TypeError(
                f"UuidCollisionMonitor.observe: value must be a UUID; got {type_of(value)}"
            )
        now = self._now()
        key = str(value)
        # Expired ids leave before the check: an id seen ttl_seconds ago is no collision.
        self._trim(now - self._ttl)
        counts = self._counts
        collision = key in counts
        self._entries.append((now, key))
        counts[key] = counts.get(key, 0) + 1
        self._trim(None)

        skew_ms = None
        if self._skew_detector is not None:
            skew_ms = self._skew_detector.check(value)
            if skew_ms is not None:
                logger.warning(
                    "Clock skew detected for UUID %s: %.1fms",
                    value,
                    skew_ms,
                    extra={"uuid": key, "skew_ms": skew_ms},
                )
        if self._listeners:
            event = UuidEvent(
                value=value,
                collision=collision,
                category=self._category,
                observed_at=utc_now(),
                skew_ms=skew_ms,
            )
            for listener in self._listeners:
                listener(event)
        return collision

    def _trim(self, cutoff: float | None) -> None:
        """Drop entries older than ``cutoff`` (None: only those over ``max_entries``)."""
        entries, counts = self._entries, self._counts
        while entries and (
            len(entries) > self._max_entries or (cutoff is not None and entries[0][0] < cutoff)
        ):
            _, old = entries.popleft()
            # An id observed several times stays in the window until its last entry leaves.
            left = counts[old] - 1
            if left:
                counts[old] = left
            else:
                del counts[old]
