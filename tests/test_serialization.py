"""The package's cattrs converter and its hooks."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime

import attrs
import cattrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio._serialization import converter


class Mode(enum.Enum):
    FAST = "fast"
    SLOW = "slow"


@attrs.frozen
class Record:
    id: uuid.UUID
    at: datetime
    mode: Mode
    parent: uuid.UUID | None = None


records = st.builds(
    Record,
    id=st.uuids(),
    at=st.datetimes(timezones=st.just(UTC)),
    mode=st.sampled_from(Mode),
    parent=st.none() | st.uuids(),
)


@given(records)
def test_round_trip(record: Record) -> None:
    data = converter.unstructure(record)
    assert data["id"] == str(record.id)
    assert data["at"] == record.at.isoformat()
    assert data["mode"] == record.mode.value
    assert converter.structure(data, Record) == record


def test_str_of_a_datetime_is_accepted_too() -> None:
    when = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)
    record = converter.structure(
        {"id": str(uuid.UUID(int=1)), "at": str(when), "mode": "fast"}, Record
    )
    assert record.at == when


def test_bad_values_and_unknown_keys_are_errors() -> None:
    with pytest.raises(cattrs.ClassValidationError) as info:
        converter.structure({"id": "nope", "at": 3, "mode": "x", "extra": 1}, Record)
    messages = cattrs.transform_error(info.value)
    assert any("$.id" in m for m in messages)
    assert any("$.at" in m for m in messages)
    assert any("extra fields found (extra)" in m for m in messages)


def test_live_values_pass_through_and_wrong_types_name_what_they_got() -> None:
    ident, when = uuid.UUID(int=7), datetime(2026, 11, 26, 14, 0, tzinfo=UTC)
    assert converter.structure(ident, uuid.UUID) is ident
    assert converter.structure(when, datetime) is when
    with pytest.raises(TypeError, match=r"^expected a UUID string, got int$"):
        converter.structure(7, uuid.UUID)
    with pytest.raises(TypeError, match=r"^expected an ISO 8601 string, got float$"):
        converter.structure(1.5, datetime)
