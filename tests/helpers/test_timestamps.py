"""parse_timestamp, detect_unix_precision, normalize_to_utc."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio.helpers.timestamps import (
    detect_unix_precision,
    normalize_to_utc,
    parse_timestamp,
)

# Whole seconds between 1970 and 2286 (10 digits at most).
unix_seconds = st.integers(min_value=0, max_value=9_999_999_999)
moments = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
EST = timezone(timedelta(hours=-5))


@pytest.fixture(scope="module")
def ref_timestamps(reference: ModuleType) -> ModuleType:
    return importlib.import_module("stageflow.helpers.timestamps")


# --- detect_unix_precision --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "seconds"),
        (9_999_999_999, "seconds"),
        (-9_999_999_999, "seconds"),
        (1_696_517_280.75, "seconds"),
        (10_000_000_000, "milliseconds"),
        (9_999_999_999_999, "milliseconds"),
        (10_000_000_000_000, "microseconds"),
        (9_999_999_999_999_998, "microseconds"),
    ],
)
def test_detect_unix_precision(value: float, expected: str) -> None:
    assert detect_unix_precision(value) == expected


def test_nanoseconds_are_refused() -> None:
    with pytest.raises(
        ValueError, match=r"^Unsupported Unix timestamp precision for 1696517280000000000$"
    ):
        detect_unix_precision(1_696_517_280_000_000_000)


# --- numbers ----------------------------------------------------------------------------


@given(unix_seconds)
def test_every_precision_gives_the_same_moment(seconds: int) -> None:
    expected = datetime.fromtimestamp(seconds, tz=UTC)
    assert parse_timestamp(seconds) == expected
    if seconds >= 1_000_000_000:  # 10 digits: ms and us are then 13 and 16 digits
        assert parse_timestamp(seconds * 1_000) == expected
        assert parse_timestamp(seconds * 1_000_000) == expected
        assert parse_timestamp(str(seconds * 1_000)) == expected
    assert parse_timestamp(str(seconds)) == expected
    assert parse_timestamp(float(seconds)) == expected
    assert parse_timestamp(seconds).tzinfo is UTC


def test_fractional_floats_are_seconds() -> None:
    # 13 digits, but a fractional part means seconds (year 55 000 is out of range).
    assert parse_timestamp(1_696_517_280.5) == datetime(2023, 10, 5, 14, 48, 0, 500000, tzinfo=UTC)
    with pytest.raises(
        ValueError, match=r"^parse_timestamp: timestamp 1696517280000\.5 is outside"
    ):
        parse_timestamp(1_696_517_280_000.5)


def test_numeric_strings() -> None:
    assert parse_timestamp(" 1696517280000 ") == datetime(2023, 10, 5, 14, 48, tzinfo=UTC)
    assert parse_timestamp("1e9") == datetime(2001, 9, 9, 1, 46, 40, tzinfo=UTC)
    assert parse_timestamp("-1.5") == datetime(1969, 12, 31, 23, 59, 58, 500000, tzinfo=UTC)


# --- strings ----------------------------------------------------------------------------


@given(moments.map(lambda moment: moment.replace(microsecond=0)), offsets)
def test_rfc_2822(moment: datetime, zone: timezone) -> None:
    text = format_datetime(moment.astimezone(zone))
    parsed = parse_timestamp(text)
    assert parsed == moment
    assert parsed.tzinfo is UTC


@given(moments, offsets)
def test_iso_8601(moment: datetime, zone: timezone) -> None:
    parsed = parse_timestamp(moment.astimezone(zone).isoformat())
    assert parsed == moment
    assert parsed.tzinfo is UTC
    assert parse_timestamp(moment.replace(tzinfo=None).isoformat() + "Z") == moment


def test_rfc_2822_and_iso_examples() -> None:
    expected = datetime(2023, 10, 5, 14, 48, tzinfo=UTC)
    assert parse_timestamp("Thu, 05 Oct 2023 14:48:00 GMT") == expected
    assert parse_timestamp("Thu, 05 Oct 2023 09:48:00 -0500") == expected
    assert parse_timestamp("2023-10-05T14:48:00Z") == expected
    assert parse_timestamp("2023-10-05T16:48:00+02:00") == expected


@pytest.mark.parametrize(
    "text",
    [
        "October 5, 2023",
        "Oct 5, 2023",
        "05 October 2023",
        "05 Oct 2023",
        "2023/10/05 00:00:00",
        "2023-10-05 00:00:00",
    ],
)
def test_human_readable_formats(text: str) -> None:
    assert parse_timestamp(text) == datetime(2023, 10, 5, tzinfo=UTC)
    assert parse_timestamp(text, default_timezone=EST) == datetime(2023, 10, 5, 5, tzinfo=UTC)
    naive = parse_timestamp(text, default_timezone=None)
    assert naive == datetime(2023, 10, 5)
    assert naive.tzinfo is None


def test_default_timezone_applies_to_naive_strings_only() -> None:
    assert parse_timestamp("2023-10-05T00:00:00", default_timezone=EST) == datetime(
        2023, 10, 5, 5, tzinfo=UTC
    )
    aware = parse_timestamp("2023-10-05T00:00:00+01:00", default_timezone=None)
    assert aware.utcoffset() == timedelta(hours=1)
    # Epochs are UTC whatever the default.
    assert parse_timestamp(0, default_timezone=EST) == datetime(1970, 1, 1, tzinfo=UTC)


def test_unknown_formats_and_empty_strings() -> None:
    with pytest.raises(ValueError, match=r"^Unsupported timestamp format: 'next tuesday'$"):
        parse_timestamp("next tuesday")
    with pytest.raises(ValueError, match=r"^Timestamp string cannot be empty$"):
        parse_timestamp("  ")


@pytest.mark.parametrize(
    ("value", "exception", "message"),
    [
        (None, TypeError, r"^Unsupported timestamp input type: NoneType$"),
        (True, TypeError, r"^Unsupported timestamp input type: bool$"),
        (b"1", TypeError, r"^Unsupported timestamp input type: bytes$"),
        (
            float("nan"),
            ValueError,
            r"^parse_timestamp: timestamp must be a finite number; got nan$",
        ),
        ("inf", ValueError, r"^parse_timestamp: timestamp must be a finite number; got 'inf'$"),
        (10**17, ValueError, r"^Unsupported Unix timestamp precision"),
    ],
)
def test_parse_bad_input(value: Any, exception: type[Exception], message: str) -> None:
    with pytest.raises(exception, match=message):
        parse_timestamp(value)


@pytest.mark.parametrize(
    ("value", "exception", "message"),
    [
        (True, TypeError, r"^detect_unix_precision: timestamp must be an int or float; got bool$"),
        ("1", TypeError, r"^detect_unix_precision: timestamp must be an int or float; got str$"),
        (
            float("inf"),
            ValueError,
            r"^detect_unix_precision: timestamp must be a finite number; got inf$",
        ),
    ],
)
def test_detect_bad_input(value: Any, exception: type[Exception], message: str) -> None:
    with pytest.raises(exception, match=message):
        detect_unix_precision(value)


# --- normalize_to_utc -------------------------------------------------------------------


def test_normalize_to_utc() -> None:
    naive = datetime(2023, 10, 5, 12)
    assert normalize_to_utc(naive) == datetime(2023, 10, 5, 12, tzinfo=UTC)
    assert normalize_to_utc(naive).tzinfo is UTC
    assert normalize_to_utc(naive, default_timezone=EST) == datetime(2023, 10, 5, 17, tzinfo=UTC)
    assert normalize_to_utc(naive, default_timezone=None) is naive
    aware = datetime(2023, 10, 5, 12, tzinfo=EST)
    assert normalize_to_utc(aware, default_timezone=None) is aware
    converted = normalize_to_utc(aware)
    assert (converted, converted.tzinfo) == (datetime(2023, 10, 5, 17, tzinfo=UTC), UTC)


def test_normalize_bad_input() -> None:
    with pytest.raises(TypeError, match=r"^normalize_to_utc: dt must be a datetime; got str$"):
        normalize_to_utc("2023-10-05")  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"^normalize_to_utc: default_timezone must be a tzinfo or None; got str$"
    ):
        normalize_to_utc(datetime(2023, 1, 1), default_timezone="UTC")  # type: ignore[arg-type]


# --- the reference ----------------------------------------------------------------------


def _same(ours: datetime, theirs: datetime) -> None:
    assert ours == theirs
    assert ours.utcoffset() == theirs.utcoffset()


@given(
    st.one_of(
        unix_seconds,
        unix_seconds.map(lambda s: s * 1_000 + 7),
        unix_seconds.map(lambda s: s * 1_000_000 + 7),
        st.floats(min_value=-1e9, max_value=1e10, allow_nan=False),
    )
)
def test_numbers_match_reference(ref_timestamps: ModuleType, value: float) -> None:
    _same(parse_timestamp(value), ref_timestamps.parse_timestamp(value))
    _same(parse_timestamp(str(value)), ref_timestamps.parse_timestamp(str(value)))
    assert detect_unix_precision(value) == ref_timestamps.detect_unix_precision(value)


@given(moments, offsets, st.sampled_from(["iso", "rfc", "human"]))
def test_strings_match_reference(
    ref_timestamps: ModuleType, moment: datetime, zone: timezone, form: str
) -> None:
    local = moment.astimezone(zone)
    if form == "iso":
        text = local.isoformat()
    elif form == "rfc":
        text = format_datetime(local.replace(microsecond=0))
    else:
        text = local.strftime("%B %d, %Y")
    for default in (UTC, EST, None):
        _same(
            parse_timestamp(text, default_timezone=default),
            ref_timestamps.parse_timestamp(text, default_timezone=default),
        )
