"""Tests for stageflow_trio.stages.result: the legacy StageResult and StageError."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any, get_args

import attrs
import pytest

from stageflow_trio.errors import StageflowError
from stageflow_trio.stages import result as result_module
from stageflow_trio.stages.result import LegacyStageStatus, StageError, StageResult
from stageflow_trio.utils.frozen import FrozenDict

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
T1 = T0 + timedelta(milliseconds=250)


def test_all_matches_the_reference(reference: ModuleType) -> None:
    ref = reference.stages.result
    assert sorted(result_module.__all__) == sorted(ref.__all__)
    assert get_args(LegacyStageStatus) == get_args(ref.LegacyStageStatus)


def test_fields_match_the_reference_in_order(reference: ModuleType) -> None:
    ref = reference.stages.result
    assert [f.name for f in attrs.fields(StageResult)] == [
        f.name for f in dataclasses.fields(ref.StageResult)
    ]


def test_positional_construction_and_defaults() -> None:
    result = StageResult("stt", "completed", T0, T1)
    assert result.name == "stt"
    assert result.status == "completed"
    assert result.started_at == T0
    assert result.ended_at == T1
    assert result.data == {}
    assert isinstance(result.data, FrozenDict)
    assert result.error is None
    failed = StageResult("stt", "failed", T0, T1, {"partial": 1}, "boom")
    assert failed.data == {"partial": 1}
    assert failed.error == "boom"


def test_result_is_frozen_and_its_data_is_a_frozen_copy() -> None:
    source: dict[str, Any] = {"transcript": "hi"}
    result = StageResult(name="stt", status="completed", started_at=T0, ended_at=T1, data=source)
    source["transcript"] = "changed"
    assert result.data == {"transcript": "hi"}
    with pytest.raises(TypeError):
        result.data["transcript"] = "x"
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        result.status = "failed"  # type: ignore[misc]
    assert attrs.evolve(result, status="failed").status == "failed"
    assert StageResult("a", "started", T0, T1, None).data == {}


def test_equal_results_compare_equal() -> None:
    assert StageResult("a", "completed", T0, T1, {"x": 1}) == StageResult(
        "a", "completed", T0, T1, FrozenDict({"x": 1})
    )
    assert StageResult("a", "completed", T0, T1) != StageResult("a", "failed", T0, T1)


def test_bad_fields_raise_naming_the_field() -> None:
    with pytest.raises(
        ValueError,
        match=r"^status must be one of \['started', 'completed', 'failed'\], got 'skipped'$",
    ):
        StageResult("a", "skipped", T0, T1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^started_at must be a datetime, got str$"):
        StageResult("a", "completed", "2026-01-01", T1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^ended_at must be a datetime, got NoneType$"):
        StageResult("a", "completed", T0, None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^data must be a mapping, got list$"):
        StageResult("a", "completed", T0, T1, [1])  # type: ignore[arg-type]


def test_stage_error_message_and_attributes_match_the_reference(reference: ModuleType) -> None:
    ref = reference.stages.result
    original = ValueError("bad input")
    error = StageError("llm", original)
    assert str(error) == "Stage llm failed: bad input"
    assert str(error) == str(ref.StageError("llm", original))
    assert error.stage == "llm"
    assert error.original is original
    assert isinstance(error, StageflowError)
    with pytest.raises(StageError, match=r"^Stage llm failed: bad input$"):
        raise error
