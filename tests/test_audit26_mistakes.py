"""Audit 26: the mistake notes where the error reaches the user as text only.

Audit 25 (``tests/test_audit25_mistakes.py``) put a note naming the mistake on the
exception a unified run raises. Two places kept only the error's text, so the note
never reached anyone. Each mistake was run on the old code; "before" is what the user saw.

== ============================================== ===================================== ==========
#  Mistake                                        Before                                Outcome
== ============================================== ===================================== ==========
1  legacy ``StageGraph`` / ``PipelineBuilder``:   a failed ``StageResult``, error "no   fixed: a
   ``await asyncio.sleep(1)`` in a stage          running event loop"; nothing logged   WARNING
                                                  (the unified graph raises with the    with the
                                                  note and logs ``stage_error``)        note
2  legacy: a sync ``def`` stage, a class with a   failed result "object dict can't be   fixed: as 1
   sync ``execute`` (through ``PipelineBuilder``  used in 'await' expression"; nothing
   too)                                           logged
3  legacy: ``return helper(ctx)`` (no ``await``)  failed result "Stage s returned       fixed: as 1
                                                  unsupported result type <class
                                                  'coroutine'>"; nothing logged
4  legacy: a tuple returned                       failed result "... <class 'tuple'>"   fixed: as 1
5  legacy: a stage's own error, a success         nothing logged                        kept
6  legacy: the stage retried by ``on_error``      (one record per failed stage, not     fixed: once
   and failing each time                          per attempt)
7  ``run_with_interceptors`` by hand (0.9.1's     failed result with the text only      fixed: as 1
   way to run the chain)                                                                (its own
                                                                                        logger)
8  the unified graph                              note on ``original``, ``stage_error``  kept (no
                                                  record                                second
                                                                                        record)
9  ``await asyncio.sleep`` / ``sleep(0)`` in a    the model gets the error's text as    fixed: a
   tool an ``Agent`` calls                        the tool's error; nothing logged      WARNING on
                                                                                        the agent
                                                                                        logger; the
                                                                                        model's
                                                                                        message as
                                                                                        1.2.0
10 the same in a tool handler run by an           the model gets "Tool 't' execution    fixed: as 9
   ``AdvancedToolExecutor`` (its                  failed: no running event loop"; no    (the cause
   ``ToolExecutionError`` wraps the error)        log                                   is read)
11 a tool's own error                             the model gets its text               kept (no
                                                                                        record)
== ============================================== ===================================== ==========

Everything a result, an event or the model carries is unchanged: the note is only logged
(the legacy graph also adds it to the stage's exception, which an ``on_error`` hook may
keep), and only on a failure path, once the chain has decided the stage failed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
import trio

from stageflow_trio import tools
from stageflow_trio._engine._hints import (
    ASYNCIO_NOTE,
    MISSING_AWAIT_NOTE,
    RESULT_NOTE,
    SYNC_STAGE_NOTE,
)
from stageflow_trio.agent import Agent
from stageflow_trio.api import Pipeline, StageContext
from stageflow_trio.pipeline.builder import PipelineBuilder
from stageflow_trio.pipeline.dag import StageGraph, StageSpec, UnifiedStageExecutionError
from stageflow_trio.pipeline.interceptors import (
    BaseInterceptor,
    ErrorAction,
    run_with_interceptors,
)
from stageflow_trio.stages.result import StageResult
from stageflow_trio.testing import RecordingEventSink
from stageflow_trio.tools.errors import ToolExecutionError
from tests.fakes import extras, pipeline_context


def _mistakes(caplog: pytest.LogCaptureFixture, logger: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == logger and r.levelno == logging.WARNING]


async def _legacy(runner: Any, interceptors: list[BaseInterceptor] | None = None) -> StageResult:
    graph = StageGraph([StageSpec(name="s", runner=runner)], interceptors=interceptors)
    return (await graph.run(pipeline_context()))["s"]


async def _asyncio_sleep(ctx: Any) -> None:
    await asyncio.sleep(1)


def _sync(ctx: Any) -> dict[str, int]:
    return {"x": 1}


class _SyncExecute:
    def execute(self, ctx: Any) -> dict[str, int]:
        return {"x": 1}


async def _helper(ctx: Any) -> dict[str, int]:
    return {"x": 1}


async def _no_await(ctx: Any) -> Any:
    coroutine = _helper(ctx)
    coroutine.close()  # no "never awaited" warning in the test run
    return coroutine


async def _tuple(ctx: Any) -> Any:
    return ("a", 1)


@pytest.mark.parametrize(
    ("runner", "error", "note"),
    [
        (_asyncio_sleep, "no running event loop", ASYNCIO_NOTE),
        (_sync, "object dict can't be used in 'await' expression", SYNC_STAGE_NOTE),
        (_SyncExecute, "object dict can't be used in 'await' expression", SYNC_STAGE_NOTE),
        (_SyncExecute(), "object dict can't be used in 'await' expression", SYNC_STAGE_NOTE),
        (
            _no_await,
            "Stage s returned unsupported result type <class 'coroutine'>",
            MISSING_AWAIT_NOTE,
        ),
        (_tuple, "Stage s returned unsupported result type <class 'tuple'>", RESULT_NOTE),
    ],
)
@pytest.mark.parametrize("interceptors", [None, []], ids=["default-chain", "no-chain"])
async def test_a_legacy_stage_s_mistake_is_logged_with_its_note(
    caplog: pytest.LogCaptureFixture,
    runner: Any,
    error: str,
    note: str,
    interceptors: list[BaseInterceptor] | None,
) -> None:
    caplog.set_level(logging.WARNING)
    result = await _legacy(runner, interceptors)
    # The result as before (and as the reference's): failed, with the error's text.
    assert (result.status, result.error) == ("failed", error)
    (record,) = _mistakes(caplog, "stageflow_trio.dag")
    assert record.getMessage() == f"Stage s failed: {error}; {note}"
    assert extras(record, "event", "stage", "error") == ("stage_mistake", "s", error)


async def test_the_pipeline_builder_s_graph_logs_the_note_too(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    builder = PipelineBuilder().with_stage("s", _SyncExecute)  # type: ignore[arg-type]  # the mistake
    graph = builder.with_stage("t", _asyncio_sleep).build()
    results = await graph.run(pipeline_context())
    assert [results[n].status for n in ("s", "t")] == ["failed", "failed"]
    messages = {r.getMessage() for r in _mistakes(caplog, "stageflow_trio.dag")}
    assert messages == {
        f"Stage s failed: object dict can't be used in 'await' expression; {SYNC_STAGE_NOTE}",
        f"Stage t failed: no running event loop; {ASYNCIO_NOTE}",
    }


async def test_the_legacy_events_are_unchanged(caplog: pytest.LogCaptureFixture) -> None:
    sink = RecordingEventSink()
    graph = StageGraph([StageSpec(name="s", runner=_asyncio_sleep)], interceptors=[])
    await graph.run(pipeline_context(event_sink=sink))
    (failed,) = sink.of_type("stage.s.failed")
    assert failed is not None
    assert failed["error"] == "no running event loop"  # the text only, as before


class _Keeps(BaseInterceptor):
    """Keeps what ``on_error`` got; asks for ``retries`` re-runs first."""

    name = "keeps"

    def __init__(self, retries: int = 0) -> None:
        self.retries = retries
        self.errors: list[Exception] = []

    async def before(self, stage_name: str, ctx: Any) -> None:
        await trio.lowlevel.checkpoint()

    async def after(self, stage_name: str, result: Any, ctx: Any) -> None:
        await trio.lowlevel.checkpoint()

    async def on_error(self, stage_name: str, error: Exception, ctx: Any) -> ErrorAction:
        await trio.lowlevel.checkpoint()
        self.errors.append(error)
        return ErrorAction.RETRY if len(self.errors) <= self.retries else ErrorAction.FAIL


async def test_a_retried_stage_s_mistake_is_logged_once_and_noted_on_its_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    keeps = _Keeps(retries=2)
    result = await _legacy(_asyncio_sleep, [keeps])
    assert result.status == "failed"
    assert len(keeps.errors) == 3
    assert len(_mistakes(caplog, "stageflow_trio.dag")) == 1  # for the failure, not each attempt
    # The error the result was made of carries the note, as a unified stage's does.
    assert keeps.errors[-1].__notes__ == [ASYNCIO_NOTE]


async def test_a_legacy_stage_s_own_error_or_success_logs_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def raises(ctx: Any) -> None:
        raise RuntimeError("event loop is closed elsewhere")

    async def awaits_a_dict(ctx: Any) -> None:
        await {}  # type: ignore[misc]  # the mistake is the stage's own

    caplog.set_level(logging.WARNING)
    for runner in (raises, awaits_a_dict, _helper):
        await _legacy(runner, [])
    assert _mistakes(caplog, "stageflow_trio.dag") == []


async def test_run_with_interceptors_logs_the_note(caplog: pytest.LogCaptureFixture) -> None:
    async def stage_run() -> StageResult:
        await asyncio.sleep(1)
        raise AssertionError("unreachable")

    caplog.set_level(logging.WARNING)
    result = await run_with_interceptors("s", stage_run, pipeline_context(), [])
    assert (result.status, result.error) == ("failed", "no running event loop")
    (record,) = _mistakes(caplog, "stageflow_trio.interceptors")
    assert record.getMessage() == f"Stage s failed: no running event loop; {ASYNCIO_NOTE}"


async def test_the_unified_graph_logs_no_second_record(caplog: pytest.LogCaptureFixture) -> None:
    async def stage(ctx: StageContext) -> None:
        await asyncio.sleep(1)

    caplog.set_level(logging.DEBUG)
    with pytest.raises(UnifiedStageExecutionError) as info:
        await Pipeline().with_stage("s", stage, "work").run(interceptors=[_Keeps()])
    assert info.value.original.__notes__ == [ASYNCIO_NOTE]
    assert not [r for r in caplog.records if getattr(r, "event", None) == "stage_mistake"]


# --- a tool an Agent calls -------------------------------------------------------------


class _Client:
    """Calls tool "t" once, then answers; keeps the last message it was sent."""

    def __init__(self) -> None:
        self.replies = [
            json.dumps({"tool_calls": [{"name": "t", "arguments": {}, "call_id": "c1"}]}),
            json.dumps({"final_answer": "done"}),
        ]
        self.last: dict[str, Any] = {}

    async def chat(self, *, messages: list[dict[str, Any]], model: str, **kwargs: Any) -> Any:
        await trio.lowlevel.checkpoint()
        self.last = messages[-1]
        return {"content": self.replies.pop(0)}


async def _run_tool(body: Any) -> tuple[str | None, str]:
    class _Tool(tools.BaseTool):
        name = "t"
        description = "a tool"
        action_type = "t"

        async def execute(self, input: Any, ctx: dict[str, Any]) -> Any:  # noqa: A002
            await body()
            return tools.ToolOutput(success=True, data={})

    registry = tools.ToolRegistry()
    registry.register(_Tool())
    client = _Client()
    result = await Agent(llm_client=client, tool_registry=registry).run("hi")
    (tool_result,) = result.tool_results
    assert tool_result.success is False
    return tool_result.error, client.last["content"]


async def _sleep_1() -> None:
    await asyncio.sleep(1)


async def _sleep_0() -> None:
    await asyncio.sleep(0)


async def _in_a_nursery() -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_sleep_1)


async def _wrapped() -> None:
    try:
        await _sleep_1()
    except RuntimeError as exc:  # as AdvancedToolExecutor wraps a handler's error
        raise ToolExecutionError("t", cause=exc) from exc


@pytest.mark.parametrize("body", [_sleep_1, _sleep_0, _in_a_nursery, _wrapped])
async def test_asyncio_in_an_agent_s_tool_is_logged_for_the_developer(
    caplog: pytest.LogCaptureFixture, body: Any
) -> None:
    caplog.set_level(logging.WARNING)
    error, seen_by_model = await _run_tool(body)
    assert error is not None
    # The model sees the tool's error as before (as 1.2.0 gives it); no note there.
    assert json.dumps(error)[1:-1] in seen_by_model
    assert "docs/migration.md" not in seen_by_model
    (record,) = _mistakes(caplog, "stageflow_trio.agent")
    assert record.getMessage() == f"Tool t failed: {error}; {ASYNCIO_NOTE}"
    assert extras(record, "tool", "call_id", "error") == ("t", "c1", error)


async def test_a_tool_s_own_error_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def raises() -> None:
        raise RuntimeError("lookup failed")

    caplog.set_level(logging.WARNING)
    error, _ = await _run_tool(raises)
    assert error == "lookup failed"
    assert _mistakes(caplog, "stageflow_trio.agent") == []
