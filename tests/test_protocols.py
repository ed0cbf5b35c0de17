"""Tests for stageflow_trio.protocols: ExecutionContext, RunStore, ConfigProvider, CorrelationIds."""

from __future__ import annotations

import uuid
from types import ModuleType
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio import protocols
from stageflow_trio.events import sink as sink_module
from stageflow_trio.protocols import (
    ConfigProvider,
    CorrelationIds,
    EventSink,
    ExecutionContext,
    RunStore,
)
from stageflow_trio.testing import create_test_pipeline_context, create_test_stage_context
from stageflow_trio.tools.adapters import DictContextAdapter
from stageflow_trio.utils.frozen import FrozenDict

RUN = uuid.UUID("11111111-1111-4111-8111-111111111111")
REQ = uuid.UUID("22222222-2222-4222-8222-222222222222")


# --- mypy checks these assignments (run mypy on this file): every context satisfies the protocol.
def _as_execution_contexts() -> list[ExecutionContext]:
    pipeline_ctx: ExecutionContext = create_test_pipeline_context(
        pipeline_run_id=RUN, request_id=REQ, execution_mode="practice"
    )
    stage_ctx: ExecutionContext = create_test_stage_context(
        pipeline_run_id=RUN, request_id=REQ, execution_mode="practice", stage_name="s"
    )
    dict_ctx: ExecutionContext = DictContextAdapter({"pipeline_run_id": str(RUN)})
    return [pipeline_ctx, stage_ctx, dict_ctx]


def test_all_matches_the_reference(reference: ModuleType) -> None:
    ref = reference.protocols
    assert sorted(protocols.__all__) == sorted(ref.__all__)
    for name in protocols.__all__:
        assert getattr(protocols, name) is not None


def test_event_sink_is_the_events_sink_protocol() -> None:
    assert EventSink is sink_module.EventSink


@pytest.mark.parametrize("ctx", _as_execution_contexts(), ids=["pipeline", "stage", "dict"])
def test_every_context_is_an_execution_context(ctx: ExecutionContext) -> None:
    assert isinstance(ctx, ExecutionContext)
    assert ctx.pipeline_run_id == RUN
    # The protocol's methods are usable through the protocol type.
    assert isinstance(ctx.to_dict(), dict)
    ctx.try_emit_event("custom.event", {"k": "v"})


def test_objects_missing_a_member_are_not_execution_contexts() -> None:
    class NoEmit:
        pipeline_run_id = None
        request_id = None
        execution_mode = None

        def to_dict(self) -> dict[str, Any]:
            return {}

    class Complete(NoEmit):
        def try_emit_event(self, type: str, data: dict[str, Any]) -> None:  # noqa: A002
            return None

    assert not isinstance(NoEmit(), ExecutionContext)
    assert not isinstance({"pipeline_run_id": None}, ExecutionContext)
    assert isinstance(Complete(), ExecutionContext)


def test_run_store_and_config_provider_are_runtime_checkable() -> None:
    class Store:
        async def create_run(self, run_id: uuid.UUID, *, service: str, **metadata: Any) -> Any:
            return None

        async def update_status(self, run_id: uuid.UUID, status: str, **data: Any) -> None:
            return None

        async def get_run(self, run_id: uuid.UUID) -> Any:
            return None

    class NoGet:
        async def create_run(self, run_id: uuid.UUID, *, service: str, **metadata: Any) -> Any:
            return None

        async def update_status(self, run_id: uuid.UUID, status: str, **data: Any) -> None:
            return None

    class Env:
        def get(self, key: str, default: Any = None) -> Any:
            return default

    assert isinstance(Store(), RunStore)
    assert not isinstance(NoGet(), RunStore)
    assert isinstance(Env(), ConfigProvider)
    assert not isinstance(object(), ConfigProvider)


def test_protocol_members_match_the_reference(reference: ModuleType) -> None:
    ref = reference.protocols
    import inspect

    for name, members in [
        (
            "ExecutionContext",
            ["pipeline_run_id", "request_id", "execution_mode", "to_dict", "try_emit_event"],
        ),
        ("RunStore", ["create_run", "update_status", "get_run"]),
        ("ConfigProvider", ["get"]),
    ]:
        ours, theirs = getattr(protocols, name), getattr(ref, name)
        for member in members:
            mine, ref_member = getattr(ours, member), getattr(theirs, member)
            if isinstance(mine, property):
                assert isinstance(ref_member, property)
                continue
            assert inspect.signature(mine) == inspect.signature(ref_member), (name, member)
            assert inspect.iscoroutinefunction(mine) == inspect.iscoroutinefunction(ref_member)


# --- CorrelationIds ---------------------------------------------------------------------------


def test_correlation_ids_defaults_and_to_dict() -> None:
    assert CorrelationIds().to_dict() == {}
    ids = CorrelationIds(
        run_id=RUN,
        request_id=str(REQ),
        trace_id="abc",
        session_id=RUN,
        user_id=REQ,
        org_id=RUN,
        extra={"interaction_id": "i-1", "pipeline_run_id": "override"},
    )
    assert ids.request_id == REQ
    assert ids.to_dict() == {
        "pipeline_run_id": "override",
        "request_id": str(REQ),
        "trace_id": "abc",
        "session_id": str(RUN),
        "user_id": str(REQ),
        "org_id": str(RUN),
        "interaction_id": "i-1",
    }
    assert list(ids.to_dict()) == [
        "pipeline_run_id",
        "request_id",
        "trace_id",
        "session_id",
        "user_id",
        "org_id",
        "interaction_id",
    ]


def test_correlation_ids_is_frozen_with_a_frozen_extra() -> None:
    source = {"a": 1}
    ids = CorrelationIds(extra=source)
    source["a"] = 2
    assert ids.extra == {"a": 1}
    assert isinstance(ids.extra, FrozenDict)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        ids.run_id = RUN  # type: ignore[misc]
    with pytest.raises(TypeError):
        ids.extra["b"] = 2
    assert CorrelationIds(run_id=RUN) == CorrelationIds(run_id=str(RUN))
    assert hash(CorrelationIds(run_id=RUN)) == hash(CorrelationIds(run_id=RUN))


@pytest.mark.parametrize("field", ["run_id", "request_id", "session_id", "user_id", "org_id"])
def test_correlation_ids_reject_bad_ids_naming_the_field(field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field} must be a UUID string, got 'nope'$"):
        CorrelationIds(**{field: "nope"})  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=rf"^{field} must be a UUID, a UUID string or None, got int$"
    ):
        CorrelationIds(**{field: 7})  # type: ignore[arg-type]


def test_correlation_ids_reject_a_non_mapping_extra() -> None:
    with pytest.raises(TypeError, match=r"^extra must be a mapping, got list$"):
        CorrelationIds(extra=[("a", 1)])  # type: ignore[arg-type]


_maybe_uuid = st.none() | st.uuids()


@given(
    run_id=_maybe_uuid,
    request_id=_maybe_uuid,
    trace_id=st.none() | st.text(max_size=5),
    session_id=_maybe_uuid,
    user_id=_maybe_uuid,
    org_id=_maybe_uuid,
    extra=st.dictionaries(
        st.sampled_from(["pipeline_run_id", "trace_id", "x", "y"]), st.integers(), max_size=3
    ),
)
def test_correlation_ids_to_dict_matches_the_reference(
    reference: ModuleType,
    run_id: uuid.UUID | None,
    request_id: uuid.UUID | None,
    trace_id: str | None,
    session_id: uuid.UUID | None,
    user_id: uuid.UUID | None,
    org_id: uuid.UUID | None,
    extra: dict[str, int],
) -> None:
    ref = reference.protocols
    kwargs: dict[str, Any] = {
        "run_id": run_id,
        "request_id": request_id,
        "trace_id": trace_id,
        "session_id": session_id,
        "user_id": user_id,
        "org_id": org_id,
        "extra": extra,
    }
    ours = CorrelationIds(**kwargs).to_dict()
    theirs = ref.CorrelationIds(**kwargs).to_dict()
    assert ours == theirs
    assert list(ours) == list(theirs)


_TYPING_SNIPPET = """\
from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.protocols import ExecutionContext
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.tools.adapters import DictContextAdapter, adapt_context


def accept(a: PipelineContext, b: StageContext, c: DictContextAdapter) -> list[ExecutionContext]:
    first: ExecutionContext = a
    second: ExecutionContext = b
    third: ExecutionContext = c
    fourth: ExecutionContext = adapt_context({})
    return [first, second, third, fourth]


class NoEmit:
    pipeline_run_id = None
    request_id = None
    execution_mode = None

    def to_dict(self) -> dict[str, object]:
        return {}


rejected: ExecutionContext = NoEmit()
"""


def test_mypy_accepts_every_context_as_an_execution_context(tmp_path: Any) -> None:
    pytest.importorskip("mypy")
    import subprocess
    import sys
    from pathlib import Path

    snippet = Path(tmp_path) / "snippet.py"
    snippet.write_text(_TYPING_SNIPPET)
    root = Path(__file__).resolve().parent.parent
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--cache-dir",
            str(Path(tmp_path) / "cache"),
            "--no-error-summary",
            "--show-error-codes",
            str(snippet),
        ],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    errors = [
        line
        for line in completed.stdout.splitlines()
        if line.startswith(str(snippet)) and ": error: " in line
    ]
    last_line = len(_TYPING_SNIPPET.splitlines())
    assert len(errors) == 1, completed.stdout
    assert errors[0].startswith(f"{snippet}:{last_line}: error: Incompatible types in assignment")


def test_our_contexts_satisfy_the_reference_protocol_too(reference: ModuleType) -> None:
    ref = reference.protocols
    for ctx in _as_execution_contexts():
        assert isinstance(ctx, ref.ExecutionContext)
