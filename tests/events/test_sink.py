"""The EventSink protocol, the global sink, NoOp/Logging sinks, metrics and emit_event."""

from __future__ import annotations

import asyncio
import functools
import logging
import pathlib
import time
from types import ModuleType
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

import stageflow_trio.events
import stageflow_trio.events.sink
from stageflow_trio.events import (
    BackpressureAwareEventSink,
    BackpressureMetrics,
    EventSink,
    LoggingEventSink,
    NoOpEventSink,
    clear_event_sink,
    emit_event,
    get_event_sink,
    register_event_sink,
    set_event_sink,
)
from stageflow_trio.testing import RecordingEventSink, reset_globals
from tests.doc_blocks import python_blocks
from tests.fakes import EmptyIsFalsy, FailingSink, RefRecorder, TryEmitOnlySink, extra, extras

# -- public surface -----------------------------------------------------------


def test_events_all_matches_reference(reference: ModuleType) -> None:
    ref = reference.events
    assert sorted(stageflow_trio.events.__all__) == sorted(ref.__all__)
    for name in stageflow_trio.events.__all__:
        assert hasattr(stageflow_trio.events, name), name


def test_sink_module_all_matches_reference(reference: ModuleType) -> None:
    ref = reference.events.sink
    assert sorted(stageflow_trio.events.sink.__all__) == sorted(ref.__all__)
    for name in stageflow_trio.events.sink.__all__:
        assert hasattr(stageflow_trio.events.sink, name), name


def test_register_event_sink_is_set_event_sink() -> None:
    assert register_event_sink is set_event_sink


@pytest.mark.parametrize(
    "sink",
    [NoOpEventSink(), LoggingEventSink(), BackpressureAwareEventSink(), RecordingEventSink()],
    ids=["noop", "logging", "backpressure", "recording"],
)
def test_builtin_sinks_satisfy_the_protocol(sink: object) -> None:
    assert isinstance(sink, EventSink)


def test_object_without_try_emit_is_not_a_sink() -> None:
    class OnlyEmit:
        async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
            pass

    assert not isinstance(OnlyEmit(), EventSink)


# -- the global sink ----------------------------------------------------------


def test_get_event_sink_without_a_sink_returns_a_fresh_noop() -> None:
    first = get_event_sink()
    second = get_event_sink()
    assert isinstance(first, NoOpEventSink)
    assert isinstance(second, NoOpEventSink)
    assert first is not second


def test_set_get_and_clear_event_sink() -> None:
    sink = RecordingEventSink()
    set_event_sink(sink)
    assert get_event_sink() is sink
    clear_event_sink()
    assert isinstance(get_event_sink(), NoOpEventSink)


def test_a_falsy_sink_is_still_returned() -> None:
    sink = EmptyIsFalsy()
    set_event_sink(sink)
    assert get_event_sink() is sink


def test_reset_globals_clears_the_sink() -> None:
    set_event_sink(RecordingEventSink())
    reset_globals()
    assert isinstance(get_event_sink(), NoOpEventSink)


async def test_child_tasks_inherit_the_sink_and_do_not_leak_theirs_back() -> None:
    parent_sink = RecordingEventSink()
    child_sink = RecordingEventSink()
    set_event_sink(parent_sink)
    seen: list[EventSink] = []

    async def child() -> None:
        seen.append(get_event_sink())
        set_event_sink(child_sink)
        seen.append(get_event_sink())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(child)
    assert seen == [parent_sink, child_sink]
    assert get_event_sink() is parent_sink


# -- NoOpEventSink ------------------------------------------------------------


async def test_noop_emit_returns_none_and_checkpoints() -> None:
    sink = NoOpEventSink()
    with trio.testing.assert_checkpoints():
        result = await sink.emit(type=None, data=None)  # type: ignore[arg-type,func-returns-value]
    assert result is None
    assert sink.try_emit(type=None, data=None) is None  # type: ignore[arg-type,func-returns-value]


# -- LoggingEventSink ---------------------------------------------------------


def _records(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == name]


def test_logging_try_emit_record_fields(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="stageflow_trio.events")
    LoggingEventSink().try_emit(type="stage.a.started", data={"k": 1})
    [record] = _records(caplog, "stageflow_trio.events")
    assert record.levelno == logging.INFO
    assert record.msg == "Event: %s"
    assert record.getMessage() == "Event: stage.a.started"
    assert extra(record, "event_type") == "stage.a.started"
    assert extra(record, "event_data") == {"k": 1}


async def test_logging_emit_uses_the_given_level_and_accepts_none(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="stageflow_trio.events")
    sink = LoggingEventSink(level=logging.DEBUG)
    with trio.testing.assert_checkpoints():
        await sink.emit(type="x", data=None)
    [record] = _records(caplog, "stageflow_trio.events")
    assert (record.levelno, record.getMessage(), *extras(record, "event_type", "event_data")) == (
        logging.DEBUG,
        "Event: x",
        "x",
        None,
    )


async def test_logging_emit_cancelled_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="stageflow_trio.events")
    with trio.CancelScope() as scope:
        scope.cancel()
        await LoggingEventSink().emit(type="x", data=None)
    assert scope.cancelled_caught
    assert _records(caplog, "stageflow_trio.events") == []


def test_logging_record_matches_reference(
    reference: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    ref = reference.events.sink
    caplog.set_level(logging.DEBUG, logger="stageflow.events")
    caplog.set_level(logging.DEBUG, logger="stageflow_trio.events")
    ref.LoggingEventSink(level=logging.WARNING).try_emit(type="t", data={"a": [1]})
    LoggingEventSink(level=logging.WARNING).try_emit(type="t", data={"a": [1]})
    # Same record under the renamed logger (docs/parity.md: logger names).
    [theirs] = _records(caplog, "stageflow.events")
    [ours] = _records(caplog, "stageflow_trio.events")
    for attr in ("levelno", "msg", "args", "event_type", "event_data"):
        assert getattr(ours, attr) == getattr(theirs, attr), attr


# -- BackpressureMetrics ------------------------------------------------------


def test_metrics_defaults() -> None:
    assert BackpressureMetrics().to_dict() == {
        "emitted": 0,
        "dropped": 0,
        "queue_full_count": 0,
        "drop_rate_percent": 0.0,
        "last_emit_time": 0.0,
        "last_drop_time": 0.0,
    }
    assert BackpressureMetrics().drop_rate == 0.0
    assert BackpressureMetrics().undelivered == 0


def test_metrics_times_are_time_monotonic() -> None:
    metrics = BackpressureMetrics()
    before = time.monotonic()
    metrics.record_emit()
    middle = time.monotonic()
    metrics.record_drop()
    after = time.monotonic()
    assert (metrics.emitted, metrics.dropped, metrics.queue_full_count) == (1, 1, 1)
    assert before <= metrics.last_emit_time <= middle <= metrics.last_drop_time <= after


def test_record_undelivered_counts_as_dropped_not_queue_full() -> None:
    metrics = BackpressureMetrics()
    before = time.monotonic()
    metrics.record_undelivered(3)
    assert (metrics.dropped, metrics.undelivered, metrics.queue_full_count) == (3, 3, 0)
    assert before <= metrics.last_drop_time <= time.monotonic()
    assert metrics.last_emit_time == 0.0


def test_record_downstream_error_counts_as_undelivered() -> None:
    metrics = BackpressureMetrics()
    metrics.record_downstream_error()
    assert (metrics.dropped, metrics.undelivered, metrics.downstream_errors) == (1, 1, 1)
    assert metrics.queue_full_count == 0
    assert metrics.last_drop_time > 0.0
    assert "downstream_errors" not in metrics.to_dict()


def test_drop_rate_is_a_rounded_percentage() -> None:
    metrics = BackpressureMetrics(emitted=2, dropped=1)
    assert metrics.drop_rate == pytest.approx(100 / 3)
    assert metrics.to_dict()["drop_rate_percent"] == 33.33


@given(
    emitted=st.integers(min_value=0, max_value=10**6),
    dropped=st.integers(min_value=0, max_value=10**6),
    full=st.integers(min_value=0, max_value=10**6),
)
def test_metrics_to_dict_matches_reference(
    reference: ModuleType, emitted: int, dropped: int, full: int
) -> None:
    ref = reference.events.sink
    theirs = ref.BackpressureMetrics(
        emitted=emitted, dropped=dropped, queue_full_count=full, last_emit_time=1.0
    )
    ours = BackpressureMetrics(
        emitted=emitted, dropped=dropped, queue_full_count=full, last_emit_time=1.0
    )
    assert ours.to_dict() == theirs.to_dict()
    assert ours.drop_rate == theirs.drop_rate


# -- emit_event ---------------------------------------------------------------


async def test_emit_event_goes_to_the_global_sink() -> None:
    sink = RecordingEventSink()
    set_event_sink(sink)
    await emit_event(type="a", data={"x": 1})
    await emit_event(type="b", data=None)
    assert sink.events == [("a", {"x": 1}), ("b", None)]


async def test_emit_event_without_a_sink_checkpoints() -> None:
    with trio.testing.assert_checkpoints():
        await emit_event(type="a", data=None)


async def test_emit_event_skips_a_sink_without_emit() -> None:
    sink = TryEmitOnlySink()
    set_event_sink(sink)  # type: ignore[arg-type]
    with trio.testing.assert_checkpoints():
        await emit_event(type="a", data=None)
    assert sink.events == []


async def test_emit_event_propagates_sink_errors() -> None:
    set_event_sink(FailingSink(message="sink is down"))
    with pytest.raises(RuntimeError, match=r"^sink is down$"):
        await emit_event(type="a", data=None)


def test_emit_event_signature_matches_reference(reference: ModuleType) -> None:
    ref = reference.events

    async def main() -> list[tuple[str, dict[str, Any] | None]]:
        recorder = RefRecorder()
        ref.set_event_sink(recorder)
        await ref.emit_event(type="a", data={"k": "v"})
        return recorder.events

    theirs = asyncio.run(main())
    ours = RecordingEventSink()
    set_event_sink(ours)
    trio.run(functools.partial(emit_event, type="a", data={"k": "v"}))
    assert ours.events == theirs


# -- RecordingEventSink -------------------------------------------------------


async def test_recording_sink_keeps_order_and_filters() -> None:
    sink = RecordingEventSink()
    await sink.emit(type="a", data={"n": 1})
    sink.try_emit(type="b", data=None)
    await sink.emit(type="a", data={"n": 2})
    assert sink.types() == ["a", "b", "a"]
    assert sink.of_type("a") == [{"n": 1}, {"n": 2}]
    assert sink.of_type("missing") == []
    sink.clear()
    assert sink.events == []


async def test_recording_sink_cancelled_emit_records_nothing() -> None:
    sink = RecordingEventSink()
    with trio.CancelScope() as scope:
        scope.cancel()
        await sink.emit(type="a", data=None)
    assert scope.cancelled_caught
    assert sink.events == []
    with trio.testing.assert_checkpoints():
        await sink.emit(type="b", data=None)
    assert sink.types() == ["b"]


# -- docs/events.md -----------------------------------------------------------

_DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs" / "events.md"


def _doc_examples() -> list[str]:
    return python_blocks(_DOCS)


def test_docs_have_examples() -> None:
    assert len(_doc_examples()) == 3


@pytest.mark.parametrize("index", range(3))
def test_docs_example_runs(index: int) -> None:
    exec(compile(_doc_examples()[index], f"{_DOCS}#example{index}", "exec"), {})
