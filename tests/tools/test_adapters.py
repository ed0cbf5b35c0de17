"""Tests for stageflow_trio.tools.adapters: DictContextAdapter and adapt_context."""

from __future__ import annotations

import logging
import uuid
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio.protocols import ExecutionContext
from stageflow_trio.testing import create_test_pipeline_context
from stageflow_trio.tools import adapters
from stageflow_trio.tools.adapters import DictContextAdapter, adapt_context
from tests.fakes import extra

RUN = uuid.UUID("11111111-1111-4111-8111-111111111111")
REQ = uuid.UUID("22222222-2222-4222-8222-222222222222")
LOGGER = "stageflow_trio.tools.adapters"


def test_all_matches_the_reference(reference: ModuleType) -> None:
    ref = reference.tools.adapters
    assert sorted(adapters.__all__) == sorted(ref.__all__)


def test_ids_are_parsed_from_strings_and_uuids() -> None:
    adapter = DictContextAdapter(
        {"pipeline_run_id": str(RUN), "request_id": REQ, "execution_mode": "practice"}
    )
    assert adapter.pipeline_run_id == RUN
    assert adapter.request_id == REQ
    assert adapter.execution_mode == "practice"
    assert isinstance(adapter, ExecutionContext)


@pytest.mark.parametrize("value", [None, "not-a-uuid", "", 42, 1.5, ["x"], object()])
def test_invalid_or_missing_ids_read_as_none(value: object) -> None:
    adapter = DictContextAdapter({"pipeline_run_id": value, "request_id": value})
    assert adapter.pipeline_run_id is None
    assert adapter.request_id is None
    assert DictContextAdapter({}).pipeline_run_id is None
    assert DictContextAdapter({}).execution_mode is None


def test_the_dict_is_kept_by_reference_and_to_dict_copies() -> None:
    source: dict[str, Any] = {"execution_mode": "a"}
    adapter = DictContextAdapter(source)
    source["execution_mode"] = "b"
    source["pipeline_run_id"] = str(RUN)
    assert adapter.execution_mode == "b"
    assert adapter.pipeline_run_id == RUN
    copy = adapter.to_dict()
    assert copy == source
    assert copy is not source
    copy["x"] = 1
    assert "x" not in source
    assert DictContextAdapter(_data=source) == adapter


_id_values = (
    st.none()
    | st.uuids()
    | st.uuids().map(str)
    | st.uuids().map(lambda u: u.hex)
    | st.uuids().map(lambda u: f"urn:uuid:{u}")
    | st.text(max_size=40)
    | st.integers()
)


@given(run_id=_id_values, request_id=_id_values)
def test_id_parsing_matches_the_reference(
    reference: ModuleType, run_id: object, request_id: object
) -> None:
    ref = reference.tools.adapters
    data = {"pipeline_run_id": run_id, "request_id": request_id}
    ours, theirs = DictContextAdapter(data), ref.DictContextAdapter(data)
    assert ours.pipeline_run_id == theirs.pipeline_run_id
    assert ours.request_id == theirs.request_id


# --- try_emit_event ----------------------------------------------------------------------------


def test_try_emit_event_logs_the_enriched_event_at_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    adapter = DictContextAdapter(
        {"pipeline_run_id": str(RUN), "request_id": "bad", "execution_mode": "practice"}
    )
    adapter.try_emit_event("tool.completed", {"tool": "t", "execution_mode": "mine"})
    [record] = caplog.records
    assert record.name == LOGGER
    assert record.levelno == logging.DEBUG
    assert record.getMessage() == "Event (dict context): tool.completed"
    assert extra(record, "pipeline_run_id") == str(RUN)
    assert extra(record, "request_id") is None
    assert extra(record, "execution_mode") == "mine"
    assert extra(record, "tool") == "t"


def test_try_emit_event_is_silent_above_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    DictContextAdapter({}).try_emit_event("e", {"x": 1})
    assert caplog.records == []


@pytest.mark.parametrize("level", [logging.DEBUG, logging.INFO])
def test_try_emit_event_never_raises(caplog: pytest.LogCaptureFixture, level: int) -> None:
    caplog.set_level(level, logger=LOGGER)
    adapter = DictContextAdapter({"pipeline_run_id": object()})
    # Reserved LogRecord keys make the reference raise KeyError under DEBUG logging.
    adapter.try_emit_event("e", {"name": "n", "msg": "m", "args": (), "tool": "t"})
    # A non-mapping payload makes the reference raise TypeError.
    adapter.try_emit_event("e", ["not", "a", "mapping"])  # type: ignore[arg-type]
    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    if level == logging.DEBUG:
        assert messages == [
            (logging.DEBUG, "Event (dict context): e"),
            (logging.WARNING, "Failed to log event e: 'list' object is not a mapping"),
        ]
        assert extra(caplog.records[0], "tool") == "t"
    else:
        assert messages == []


# --- adapt_context -----------------------------------------------------------------------------


def test_adapt_context_wraps_dicts() -> None:
    data = {"pipeline_run_id": str(RUN)}
    adapted = adapt_context(data)
    assert isinstance(adapted, DictContextAdapter)
    assert adapted.pipeline_run_id == RUN
    assert adapted.to_dict() == data


def test_adapt_context_passes_contexts_through() -> None:
    ctx = create_test_pipeline_context(pipeline_run_id=RUN)
    assert adapt_context(ctx) is ctx
    adapter = DictContextAdapter({})
    assert adapt_context(adapter) is adapter

    class DuckContext:
        pipeline_run_id = None

        def to_dict(self) -> dict[str, Any]:
            return {}

        def try_emit_event(self, type: str, data: dict[str, Any]) -> None:  # noqa: A002
            return None

    duck = DuckContext()
    adapted: object = adapt_context(duck)
    assert adapted is duck


@pytest.mark.parametrize(
    ("value", "name"), [(None, "NoneType"), ([("a", 1)], "list"), ("ctx", "str"), (3, "int")]
)
def test_adapt_context_rejects_other_types(value: object, name: str) -> None:
    with pytest.raises(TypeError, match=rf"^Unsupported context type: {name}$"):
        adapt_context(value)


@pytest.mark.parametrize("value", [None, [("a", 1)], "ctx", 3, object()])
def test_adapt_context_errors_match_the_reference(reference: ModuleType, value: object) -> None:
    ref = reference.tools.adapters
    with pytest.raises(TypeError) as ours:
        adapt_context(value)
    with pytest.raises(TypeError) as theirs:
        ref.adapt_context(value)
    assert str(ours.value) == str(theirs.value)


def test_logged_event_matches_the_reference(
    reference: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    ref = reference.tools.adapters
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    caplog.set_level(logging.DEBUG, logger="stageflow.tools.adapters")
    data = {"pipeline_run_id": RUN.hex, "request_id": str(REQ), "execution_mode": "m"}
    DictContextAdapter(data).try_emit_event("tool.invoked", {"tool": "t"})
    ref.DictContextAdapter(data).try_emit_event("tool.invoked", {"tool": "t"})
    ours, theirs = caplog.records
    assert ours.getMessage() == theirs.getMessage()
    keys = ["pipeline_run_id", "request_id", "execution_mode", "tool"]
    assert [getattr(ours, k) for k in keys] == [getattr(theirs, k) for k in keys]
    assert ours.pipeline_run_id == str(RUN)  # type: ignore[attr-defined]
