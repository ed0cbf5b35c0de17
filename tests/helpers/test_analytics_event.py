"""AnalyticsEvent: defaults, dict round trips, immutability, and the reference's to_dict."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import ModuleType

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio.helpers.analytics import AnalyticsEvent, AnalyticsSink
from tests.fakes import EVENT_RUN_ID, EVENT_TIME, ev


def test_event_defaults() -> None:
    before = datetime.now(UTC)
    event = AnalyticsEvent(event_type="x")
    assert before <= event.timestamp <= datetime.now(UTC)
    assert event.timestamp.tzinfo is UTC
    assert (event.data, event.metadata) == ({}, {})
    assert (event.pipeline_run_id, event.stage_name, event.duration_ms) == (None, None, None)


def test_event_to_dict_minimal_and_full() -> None:
    assert ev(1).to_dict() == {"event_type": "e1", "timestamp": EVENT_TIME.isoformat(), "data": {}}
    full = ev(
        2,
        data={"k": 1},
        pipeline_run_id=EVENT_RUN_ID,
        stage_name="llm",
        duration_ms=0.0,
        metadata={"m": True},
    ).to_dict()
    assert full == {
        "event_type": "e2",
        "timestamp": "2026-03-04T05:06:07.891234+00:00",
        "data": {"k": 1},
        "pipeline_run_id": str(EVENT_RUN_ID),
        "stage_name": "llm",
        "duration_ms": 0.0,
        "metadata": {"m": True},
    }
    assert type(full["data"]) is dict
    assert type(full["metadata"]) is dict
    # Falsy optional values are left out.
    assert list(ev(3, stage_name="", metadata={}).to_dict()) == ["event_type", "timestamp", "data"]


def test_event_from_dict() -> None:
    event = AnalyticsEvent.from_dict(
        {
            "event_type": "stage.completed",
            "timestamp": "2026-03-04T05:06:07.891234+00:00",
            "pipeline_run_id": str(EVENT_RUN_ID),
            "stage_name": "llm",
            "duration_ms": 12.5,
        }
    )
    assert event == AnalyticsEvent(
        event_type="stage.completed",
        timestamp=EVENT_TIME,
        pipeline_run_id=EVENT_RUN_ID,
        stage_name="llm",
        duration_ms=12.5,
    )
    assert (
        AnalyticsEvent.from_dict({"event_type": "x", "timestamp": EVENT_TIME}).timestamp
        is EVENT_TIME
    )


def test_event_from_dict_errors() -> None:
    with pytest.raises(
        KeyError, match=r"^\"AnalyticsEvent.from_dict: missing required key 'timestamp'\"$"
    ):
        AnalyticsEvent.from_dict({"event_type": "x"})
    with pytest.raises(
        KeyError, match=r"^\"AnalyticsEvent.from_dict: missing required key 'event_type'\"$"
    ):
        AnalyticsEvent.from_dict({"timestamp": EVENT_TIME.isoformat()})
    with pytest.raises(ValueError, match=r"^pipeline_run_id must be a UUID string, got 'nope'$"):
        AnalyticsEvent.from_dict(
            {"event_type": "x", "timestamp": EVENT_TIME.isoformat(), "pipeline_run_id": "nope"}
        )


def test_event_is_frozen_and_read_only() -> None:
    event = ev(1, data={"a": 1})
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.stage_name = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        event.data["a"] = 2


json_values = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5))
events = st.builds(
    AnalyticsEvent,
    event_type=st.text(max_size=20),
    timestamp=st.datetimes(timezones=st.just(UTC)),
    data=st.dictionaries(st.text(max_size=5), json_values, max_size=3),
    pipeline_run_id=st.none() | st.uuids(),
    stage_name=st.none() | st.text(min_size=1, max_size=10),
    duration_ms=st.none() | st.floats(allow_nan=False),
    metadata=st.dictionaries(st.text(max_size=5), json_values, max_size=3),
)


@given(events)
def test_event_round_trip(event: AnalyticsEvent) -> None:
    assert AnalyticsEvent.from_dict(event.to_dict()) == event
    assert AnalyticsEvent.from_dict(json.loads(json.dumps(event.to_dict()))) == event


@given(events)
def test_event_to_dict_matches_reference(reference: ModuleType, event: AnalyticsEvent) -> None:
    ref = reference.helpers.analytics
    theirs = ref.AnalyticsEvent(
        event_type=event.event_type,
        timestamp=event.timestamp,
        data=dict(event.data),
        pipeline_run_id=event.pipeline_run_id,
        stage_name=event.stage_name,
        duration_ms=event.duration_ms,
        metadata=dict(event.metadata),
    )
    assert event.to_dict() == theirs.to_dict()
    assert AnalyticsEvent.from_dict(theirs.to_dict()) == event


def test_event_timestamp_is_close_to_now() -> None:
    event = AnalyticsSink._to_event("x", None)
    assert abs(event.timestamp - datetime.now(UTC)) < timedelta(seconds=5)
