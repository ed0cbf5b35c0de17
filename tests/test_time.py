"""The clock seam and the id helpers."""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio import _time


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
