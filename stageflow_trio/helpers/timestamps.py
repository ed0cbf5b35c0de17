"""Parse the timestamps that reach a pipeline: Unix epochs, RFC 2822, ISO 8601, a few others.

- :func:`detect_unix_precision`: seconds, milliseconds or microseconds, by the
  number of digits of the integer part (up to 10, 13 and 16).
- :func:`normalize_to_utc`: give a naive datetime a default zone, convert to UTC.
- :func:`parse_timestamp`: a string or number to a timezone-aware UTC datetime.

Example::

    assert parse_timestamp(1696517280000) == parse_timestamp("2023-10-05T14:48:00Z")
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, tzinfo
from email.utils import parsedate_to_datetime
from typing import Literal

from stageflow_trio._args import type_of

__all__ = ["detect_unix_precision", "normalize_to_utc", "parse_timestamp"]

UnixPrecision = Literal["seconds", "milliseconds", "microseconds"]

# Tried in this order after RFC 2822 and ISO 8601.
_HUMAN_READABLE_FORMATS: tuple[str, ...] = (
    "%B %d, %Y",  # October 5, 2023
    "%b %d, %Y",  # Oct 5, 2023
    "%d %B %Y",  # 05 October 2023
    "%d %b %Y",  # 05 Oct 2023
    "%Y/%m/%d %H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
)

_DIVISORS: dict[UnixPrecision, int] = {
    "seconds": 1,
    "milliseconds": 1_000,
    "microseconds": 1_000_000,
}


# Longest repr an error message quotes: a 100 KB payload makes no 100 KB message.
_SHOWN_CHARS = 80


def _shown(value: object) -> str:
    """``repr(value)`` for an error message, cut short for a long str or a huge int."""
    if isinstance(value, int) and value.bit_length() > 256:
        digits = int(value.bit_length() * math.log10(2)) + 1
        return f"<an int of about {digits} digits>"
    if isinstance(value, str) and len(value) > _SHOWN_CHARS:
        return f"{value[:_SHOWN_CHARS]!r}... ({len(value)} characters)"
    return repr(value)


def _check_number(owner: str, value: object) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{owner}: timestamp must be an int or float; got {type_of(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{owner}: timestamp must be a finite number; got {_shown(value)}")
    return value


def detect_unix_precision(timestamp: int | float) -> UnixPrecision:
    """The unit of a Unix timestamp, by the digit count of ``int(abs(float(timestamp)))``.

    Up to 10 digits is seconds, up to 13 milliseconds, up to 16 microseconds.

    Raises:
        TypeError: ``timestamp`` is not an int or float (a bool is refused).
        ValueError: more than 16 digits (nanoseconds are not supported; an int past
            the float range too, where the reference raised OverflowError), NaN or
            infinite.
    """
    _check_number("detect_unix_precision", timestamp)
    try:
        integer_part = int(abs(float(timestamp)))
    except OverflowError as exc:
        # An int past the float range (over 308 digits): far more than 16.
        raise ValueError(f"Unsupported Unix timestamp precision for {_shown(timestamp)}") from exc
    digits = len(str(integer_part))
    if digits <= 10:
        return "seconds"
    if digits <= 13:
        return "milliseconds"
    if digits <= 16:
        return "microseconds"
    raise ValueError(f"Unsupported Unix timestamp precision for {_shown(timestamp)}")


def normalize_to_utc(dt: datetime, *, default_timezone: tzinfo | None = UTC) -> datetime:
    """``dt`` in UTC; a naive ``dt`` is first taken to be in ``default_timezone``.

    With ``default_timezone=None`` nothing is converted: ``dt`` comes back as given,
    naive or not.

    Raises:
        TypeError: ``dt`` is not a datetime or ``default_timezone`` not a tzinfo.
    """
    if not isinstance(dt, datetime):
        raise TypeError(f"normalize_to_utc: dt must be a datetime; got {type_of(dt)}")
    if default_timezone is None:
        return dt
    if not isinstance(default_timezone, tzinfo):
        raise TypeError(
            "normalize_to_utc: default_timezone must be a tzinfo or None; "
            f"got {type_of(default_timezone)}"
        )
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=default_timezone)
    return dt.astimezone(UTC)


def parse_timestamp(value: str | int | float, *, default_timezone: tzinfo | None = UTC) -> datetime:
    """A timestamp string or number as a timezone-aware UTC datetime.

    Numbers (and numeric strings) are Unix epochs in the unit
    :func:`detect_unix_precision` finds; a float with a fractional part is
    always seconds. Other strings are tried, stripped, as RFC 2822
    (``Thu, 05 Oct 2023 14:48:00 GMT``), ISO 8601 (a trailing ``Z`` means UTC),
    then ``October 5, 2023``, ``Oct 5, 2023``, ``05 October 2023``, ``05 Oct 2023``,
    ``2023/10/05 14:48:00`` and ``2023-10-05 14:48:00``.

    Args:
        value: The timestamp.
        default_timezone: The zone of a string without one. None keeps such a
            string's datetime naive and any other in its own zone (epochs are
            UTC regardless).

    Raises:
        TypeError: ``value`` is not a str, int or float (a bool is refused).
        ValueError: empty string, unknown format, NaN or infinite, an epoch of
            more than 16 digits (never an OverflowError, however many), or outside
            the years datetime supports (also a string whose date leaves years
            1-9999 when converted to UTC, e.g. ``9999-12-31T23:59:59-01:00``).
            The message quotes at most 80 characters of a long string.
    """
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise ValueError("Timestamp string cannot be empty")
        number = _as_number(text)
        if number is not None:
            return _parse_unix_timestamp(number, value)
        return _parse_text(text, value, default_timezone)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"Unsupported timestamp input type: {type_of(value)}")
    return _parse_unix_timestamp(value, value)


def _as_number(text: str) -> int | float | None:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return None


def _parse_text(text: str, value: str, default_timezone: tzinfo | None) -> datetime:
    # A year datetime cannot hold (RFC 2822 reads any number of digits) or a
    # date whose conversion to UTC leaves years 1-9999 raises OverflowError.
    try:
        return _parse_text_in_range(text, value, default_timezone)
    except OverflowError as exc:
        raise ValueError(
            f"parse_timestamp: timestamp {_shown(value)} is outside the supported range"
        ) from exc


def _parse_text_in_range(text: str, value: str, default_timezone: tzinfo | None) -> datetime:
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        pass
    else:
        return normalize_to_utc(parsed, default_timezone=default_timezone)
    iso_candidate = text.replace("Z", "+00:00") if text.endswith("Z") else text
    try:
        parsed = datetime.fromisoformat(iso_candidate)
    except ValueError:
        pass
    else:
        return normalize_to_utc(parsed, default_timezone=default_timezone)
    for fmt in _HUMAN_READABLE_FORMATS:
        try:
            parsed = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return normalize_to_utc(parsed, default_timezone=default_timezone)
    raise ValueError(f"Unsupported timestamp format: {_shown(value)}")


def _parse_unix_timestamp(number: int | float, value: str | int | float) -> datetime:
    if isinstance(number, float) and not math.isfinite(number):
        raise ValueError(f"parse_timestamp: timestamp must be a finite number; got {_shown(value)}")
    if isinstance(number, float) and not number.is_integer():
        seconds: float = number
    else:
        seconds = int(number) / _DIVISORS[detect_unix_precision(number)]
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise ValueError(
            f"parse_timestamp: timestamp {_shown(value)} is outside the supported range"
        ) from exc
