"""The clock seam and the id helpers."""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio import _time


def test_uuid7_has_version_variant_and_millisecond_timestamp() -> None:
    before = time.time_ns() // 1_000_000
    value = _time.uuid7()
    after = time.time_ns() // 1_000_000
    assert value.version == 7
    assert value.variant == uuid.RFC_4122
    assert before <= value.int >> 80 <= after


def test_uuid7_values_sort_by_creation_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # A fake wall clock two milliseconds apart, instead of sleeping for real.
    wall_ns = iter([1_700_000_000_000_000_000, 1_700_000_000_002_000_000])
    monkeypatch.setattr(_time, "time", SimpleNamespace(time_ns=lambda: next(wall_ns)))
    first = _time.uuid7()
    second = _time.uuid7()
    assert (first.int >> 80, second.int >> 80) == (1_700_000_000_000, 1_700_000_000_002)
    assert first < second
    assert str(first) < str(second)


def test_uuid7_values_are_unique() -> None:
    values = {_time.uuid7() for _ in range(10_000)}
    assert len(values) == 10_000


def test_uuid4() -> None:
    assert _time.uuid4().version == 4


def test_utc_now_iso_has_the_form_of_datetime_isoformat() -> None:
    text = _time.utc_now_iso()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00", text)
    parsed = datetime.fromisoformat(text)
    assert parsed.tzinfo is not None
    assert abs((datetime.now(UTC) - parsed).total_seconds()) < 5


def test_utc_now_is_aware_utc() -> None:
    assert _time.utc_now().utcoffset() is not None
    assert _time.utc_now().tzinfo is UTC


async def test_monotonic_is_the_trio_clock_inside_a_run(autojump_clock: trio.abc.Clock) -> None:
    start = _time.monotonic()
    assert start == trio.current_time()
    await trio.sleep(12.5)
    assert _time.monotonic() - start == 12.5


def test_monotonic_outside_trio_is_time_monotonic() -> None:
    before = time.monotonic()
    value = _time.monotonic()
    assert before <= value <= time.monotonic()


@given(st.uuids())
def test_parse_uuid_accepts_uuids_and_their_strings(value: uuid.UUID) -> None:
    assert _time.parse_uuid(value, "x") is value
    assert _time.parse_uuid(str(value), "x") == value
    assert _time.parse_uuid(None, "x") is None


def test_parse_uuid_errors_name_the_field() -> None:
    with pytest.raises(ValueError, match=r"^request_id must be a UUID string, got 'abc'$"):
        _time.parse_uuid("abc", "request_id")
    with pytest.raises(
        TypeError, match=r"^user_id must be a UUID, a UUID string or None, got int$"
    ):
        _time.parse_uuid(5, "user_id")
