"""The clock seam and the id helpers every other module uses.

Engine timing within a run (timeouts, backoff, guard-retry windows, durations)
reads :func:`monotonic`, which is ``trio.current_time()`` inside a trio run, so
``trio.testing.MockClock`` drives it in tests, and ``time.monotonic()``
outside one. An object that keeps times beyond one run (an in-memory store's
expiries, a breaker's last failure, a cache's last fetch) reads a
:class:`RunClock` instead, so that it never compares readings of two clocks.
Timestamps that get serialized stay wall-clock UTC, in exactly the form of
``datetime.now(UTC).isoformat()``; the end of a stage's result is the one
derived instant (see :func:`ended_at`).
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from datetime import UTC, datetime, timedelta

import trio


def monotonic() -> float:
    """Seconds on the engine clock: trio's clock inside a run, else ``time.monotonic()``."""
    try:
        return trio.current_time()
    except RuntimeError:
        return time.monotonic()


class RunClock:
    """Seconds on one time line for the whole life of an object that may outlive a trio run.

    Each ``trio.run`` has its own clock with its own origin: the default
    ``SystemClock`` starts at a random offset (10,000 to 200,000 s), a
    ``MockClock`` at 0. An object that keeps times and compares them later (an
    in-memory store's expiries, say) and reads whichever clock is current sees
    time jump by up to two days, either way, when it is used in another
    ``trio.run`` (a service that calls ``trio.run`` per request or per job), and
    outside a run it read ``time.monotonic()``, another origin again.

    A ``RunClock`` reads the clock of the trio run it is made in, or else of the
    first run it is called in, and keeps it when used in later runs: a trio clock
    keeps working after its run ends (a ``SystemClock`` goes on with real time).
    First called outside any run, it reads ``time.monotonic()`` for good.

    Test clocks are the exception: when the current run's clock is a
    ``trio.testing.MockClock`` other than the one held, that clock is taken
    instead. A ``MockClock`` stands still once its run is over, and each test
    has its own, so an object shared by several tests (made at import time, or
    in a module-scoped fixture) is driven by the test using it, as
    ``trio.current_time()`` would be.
    """

    __slots__ = ("_clock",)

    def __init__(self) -> None:
        self._clock: trio.abc.Clock | _Monotonic | None = None
        with contextlib.suppress(RuntimeError):  # outside a run: bound at the first call in one
            self._clock = trio.lowlevel.current_clock()

    def __call__(self) -> float:
        """Seconds on this object's clock."""
        try:
            current = trio.lowlevel.current_clock()
        except RuntimeError:
            current = None
        held = self._clock
        if held is None:
            held = self._clock = current or _MONOTONIC
        elif current is not None and current is not held and _is_mock(current):
            held = self._clock = current
        return held.current_time()


class _Monotonic:
    """``time.monotonic()`` as a clock, for an object first used outside any run."""

    @staticmethod
    def current_time() -> float:
        return time.monotonic()


_MONOTONIC = _Monotonic()


def _is_mock(clock: trio.abc.Clock) -> bool:
    import trio.testing  # here: only when a run's clock differs from the held one

    return isinstance(clock, trio.testing.MockClock)


def utc_now() -> datetime:
    """The current wall-clock time as a timezone-aware UTC datetime."""
    return datetime.now(UTC)


def ended_at(started_at: datetime, elapsed: float) -> datetime:
    """``started_at`` plus ``elapsed`` seconds: the ``ended_at`` of a StageResult.

    ``started_at`` is the wall-clock start; ``elapsed`` is measured on the
    engine clock (:func:`monotonic`). A StageResult's consumers (interceptors,
    wide events) take its duration as ``ended_at - started_at``; with the end
    built this way rather than read from the wall clock again, that difference
    is the engine clock's: exact under ``MockClock``, and never negative when
    the wall clock steps back during the stage. The price is that ``ended_at``
    differs from the wall time at the end by the wall clock's own steps (or
    slewing) during the interval; under ``MockClock`` it is the start plus
    virtual time. Nothing compares it with a fresh wall-clock reading.
    """
    return started_at + timedelta(0, elapsed)


# The last whole second formatted and its ISO text, and the last millisecond and
# its text (the second's, a point, three digits), each in one tuple so that
# threads replacing it never pair one instant with another's text: events come
# many per millisecond, and only the microseconds change between them.
_iso_second: tuple[int, str] = (-1, "")
_iso_milli: tuple[int, str] = (-1, "")

# "000" to "999": the milliseconds and microseconds are table lookups, not a
# number format. Joined from the digits: half the import-time cost of
# formatting 1,000 numbers.
_DIGITS3: tuple[str, ...] = tuple(
    a + b + c for a in "0123456789" for b in "0123456789" for c in "0123456789"
)

# The wall clock utc_now_iso reads, in integer nanoseconds (a seam for tests).
_wall_ns = time.time_ns


def _milli_text(milliseconds: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS.mmm`` of a Unix time in milliseconds (the second's text cached)."""
    global _iso_second  # a one-entry cache, replaced whole
    seconds, milli = divmod(milliseconds, 1000)
    cached_seconds, text = _iso_second
    if cached_seconds != seconds:
        text = datetime.fromtimestamp(seconds, UTC).isoformat()[:-6]
        _iso_second = (seconds, text)
    return f"{text}.{_DIGITS3[milli]}"


def utc_now_iso() -> str:
    """``datetime.now(UTC).isoformat()``: e.g. ``2026-11-26T14:04:50.123456+00:00``.

    One clock read (``time.time_ns()``, floored to the microsecond as
    ``datetime.now`` does). The text up to the milliseconds is made once per
    millisecond (the date and time of day once per second), the last three
    digits per call; a time with no microseconds has no fraction, as
    ``isoformat`` writes it.
    """
    global _iso_milli  # a one-entry cache, replaced whole
    milliseconds, nanoseconds = divmod(_wall_ns(), 1_000_000)
    cached, text = _iso_milli
    if cached != milliseconds:
        text = _milli_text(milliseconds)
        _iso_milli = (milliseconds, text)
    if nanoseconds < 1000 and milliseconds % 1000 == 0:
        return text[:-4] + "+00:00"  # a whole second
    return f"{text}{_DIGITS3[nanoseconds // 1000]}+00:00"


# Version 4 and the RFC 4122 variant, as uuid.UUID(bytes=..., version=4) sets them.
_V4_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_V4_SET = (0x8000 << 48) | (4 << 76)
_SAFE_UNKNOWN = uuid.SafeUUID.unknown


def uuid4() -> uuid.UUID:
    """A random (version 4) UUID, as ``uuid.uuid4()`` makes it.

    Built from its integer directly: ``uuid.UUID.__init__`` checks and converts
    its arguments in Python, and a subpipeline spawn makes one per child.
    """
    value = (int.from_bytes(os.urandom(16)) & _V4_CLEAR) | _V4_SET
    made = object.__new__(uuid.UUID)
    object.__setattr__(made, "int", value)
    object.__setattr__(made, "is_safe", _SAFE_UNKNOWN)
    return made


def parse_uuid(value: object, field: str) -> uuid.UUID | None:
    """Coerce ``value`` to a UUID for the field named ``field``.

    ``None`` stays ``None``; a ``UUID`` passes through; a string must be a valid
    UUID. Anything else raises ``ValueError``/``TypeError`` naming the field.
    """
    if value is None or isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            raise ValueError(f"{field} must be a UUID string, got {value!r}") from None
    raise TypeError(f"{field} must be a UUID, a UUID string or None, got {type(value).__name__}")
