"""Audit 19: unusual exceptions raised by user code.

Stages (in the unified graph, with and without interceptors, and in the legacy graph),
tool handlers and undo handlers, mock tool handlers, agents and the agent's tools, and
the helpers that describe an error: exception groups from a stage's own nursery, a
custom ``BaseException``, ``GeneratorExit``, ``StopIteration`` / ``StopAsyncIteration``,
a ``trio.Cancelled`` raised again outside the scope it belonged to (a "stray" one),
``trio.TooSlowError`` from a user's own ``fail_after`` next to the engine's timeout, a
user ``move_on_after`` around a stage's wait, and errors whose ``__str__`` raises.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.pipeline import Pipeline
from stageflow_trio.pipeline.dag import (
    StageGraph,
    StageSpec,
    UnifiedStageExecutionError,
    UnifiedStageGraph,
    UnifiedStageSpec,
)
from stageflow_trio.pipeline.interceptors import get_default_interceptors
from stageflow_trio.stages import PipelineContext
from stageflow_trio.testing import (
    RecordingEventSink,
    create_test_pipeline_context,
    create_test_stage_context,
)


async def _saved_cancelled() -> trio.Cancelled:
    """A real ``trio.Cancelled``, caught from a scope that is over (user code saving one)."""
    saved: list[trio.Cancelled] = []
    with trio.move_on_after(0.5):
        try:
            await trio.sleep(1)
        except trio.Cancelled as exc:
            saved.append(exc)
            raise
    return saved[0]


def _types(sink: RecordingEventSink) -> list[str]:
    return [event_type for event_type, _ in sink.events]


def _data(sink: RecordingEventSink, event_type: str) -> dict[str, Any]:
    (data,) = [d for t, d in sink.events if t == event_type]
    return dict(data or {})


# --------------------------------------------------------------------------- stray Cancelled


@pytest.mark.parametrize("interceptors", [False, True], ids=["plain", "interceptors"])
@pytest.mark.parametrize("chain", [False, True], ids=["fan_out", "chain"])
async def test_unified_stray_cancelled_from_a_stage_reaches_the_caller(
    autojump_clock: trio.testing.MockClock, chain: bool, interceptors: bool
) -> None:
    """A stage raising a saved ``trio.Cancelled`` (nothing around the run cancelled):
    the reference 0.9.1 lets its ``CancelledError`` out of ``run``; ours did in a chain,
    but in a fan-out the run's nursery (whose scope trio cancels because a task raised)
    caught it, and the run raised ``RuntimeError("Deadlocked stage graph; ...")`` with a
    ``pipeline_failed`` naming "<external>". Now the Cancelled reaches the caller in both
    shapes (as pytest's stray-Cancelled guard expects), the sibling is cancelled, its
    cleanup runs, and the run ends with ``pipeline_cancelled``."""
    log: list[str] = []

    async def bad(ctx: StageContext) -> StageOutput:
        async def cleanup() -> None:
            log.append("bad cleanup")

        ctx.register_cleanup(cleanup, name="bad")
        stray = await _saved_cancelled()
        raise stray

    async def slow(ctx: StageContext) -> StageOutput:
        try:
            await trio.sleep(100)
        finally:
            log.append("slow finally")
        return StageOutput.ok()

    pipeline = Pipeline(name="stray").with_stage("bad", bad, StageKind.WORK)
    if chain:
        pipeline = pipeline.with_stage("slow", slow, StageKind.WORK, dependencies=("bad",))
    else:
        pipeline = pipeline.with_stage("slow", slow, StageKind.WORK)
    graph = pipeline.build(interceptors=get_default_interceptors() if interceptors else None)
    sink = RecordingEventSink()
    with trio.CancelScope() as outer:
        with pytest.raises(trio.Cancelled):
            await graph.run(create_test_stage_context(event_sink=sink))
    assert not outer.cancelled_caught
    assert trio.current_time() == 0.5
    assert log == (["bad cleanup"] if chain else ["slow finally", "bad cleanup"])
    types = _types(sink)
    assert "stage.bad.cancelled" in types
    assert types[-1] == "pipeline_cancelled"
    assert "pipeline_failed" not in types
    if not chain:
        reason = _data(sink, "stage.slow.cancelled")["reason"]
        assert reason == "stage bad raised trio.Cancelled outside a cancelled scope"


@pytest.mark.parametrize("chain", [False, True], ids=["fan_out", "chain"])
async def test_legacy_stray_cancelled_from_a_stage_reaches_the_caller(
    autojump_clock: trio.testing.MockClock, chain: bool
) -> None:
    """The legacy graph's fan-out caught the stray Cancelled the same way, and returned
    ``{}`` with a ``pipeline_completed`` event: a run that lost every result and said
    it succeeded. Now it raises the Cancelled, as in a chain."""
    log: list[str] = []

    async def bad(ctx: PipelineContext) -> None:
        stray = await _saved_cancelled()
        raise stray

    async def slow(ctx: PipelineContext) -> None:
        try:
            await trio.sleep(100)
        finally:
            log.append("slow finally")

    deps = ("bad",) if chain else ()
    graph = StageGraph(
        [StageSpec(name="bad", runner=bad), StageSpec(name="slow", runner=slow, dependencies=deps)]
    )
    sink = RecordingEventSink()
    with pytest.raises(trio.Cancelled):
        await graph.run(create_test_pipeline_context(event_sink=sink))
    assert log == ([] if chain else ["slow finally"])
    types = _types(sink)
    assert "pipeline_completed" not in types
    assert types[-1] == "pipeline_cancelled"


async def test_a_real_cancel_from_outside_is_still_caught_by_its_scope(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The stray check looks only at a Cancelled raised while nothing around the stage is
    cancelled: the caller's own deadline still stops a fan-out quietly at its scope."""

    async def waits(ctx: StageContext) -> StageOutput:
        await trio.sleep(100)
        return StageOutput.ok()

    graph = UnifiedStageGraph(
        [UnifiedStageSpec(name="a", runner=waits), UnifiedStageSpec(name="b", runner=waits)]
    )
    sink = RecordingEventSink()
    with trio.move_on_after(3) as scope:
        await graph.run(create_test_stage_context(event_sink=sink))
    assert scope.cancelled_caught
    assert _data(sink, "pipeline_cancelled")["reason"] == "deadline exceeded"
    assert trio.current_effective_deadline() == math.inf


# --------------------------------------------------------------------------- unprintable errors

PLACEHOLDER = "<_Unprintable (str() failed)>"


class _Unprintable(Exception):
    """An error whose ``__str__`` raises (a proxy object, a broken third-party error)."""

    def __str__(self) -> str:
        raise RuntimeError("__str__ broke")


async def test_tool_handler_error_that_cannot_be_printed_is_the_tools_failure(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``AdvancedToolExecutor.execute``: a handler's error becomes ``ToolExecutionError``
    (its ``cause``) after a ``tool.failed`` event. Both took ``str(exc)``: with an error
    whose ``__str__`` raises, that RuntimeError escaped instead, with no ``tool.failed``
    event (parity.md: a failure being reported must not become another one)."""
    from stageflow_trio.events import clear_event_sink, set_event_sink
    from stageflow_trio.tools import (
        AdvancedToolExecutor,
        ToolDefinition,
        ToolExecutionError,
        ToolExecutorConfig,
        UndoStore,
    )
    from stageflow_trio.tools.adapters import DictContextAdapter
    from tests.differential.scenarios_tools_helpers import Act

    async def handler(tool_input: Any) -> Any:
        raise _Unprintable

    executor = AdvancedToolExecutor(ToolExecutorConfig(), undo_store=UndoStore())
    executor.register(ToolDefinition(name="EDIT", action_type="EDIT", handler=handler))
    sink = RecordingEventSink()
    set_event_sink(sink)
    try:
        ctx = DictContextAdapter({"pipeline_run_id": str(uuid.uuid4()), "execution_mode": "x"})
        with pytest.raises(ToolExecutionError) as caught:
            await executor.execute(Act(uuid.uuid4(), "EDIT", {}), ctx)
    finally:
        clear_event_sink()
    assert str(caught.value) == f"Tool 'EDIT' execution failed: {PLACEHOLDER}"
    assert isinstance(caught.value.cause, _Unprintable)
    assert caught.value.__cause__ is caught.value.cause
    assert caught.value.to_dict()["cause"] == PLACEHOLDER
    failed = _data(sink, "tool.failed")
    assert (failed["error_code"], failed["error_message"]) == ("_Unprintable", PLACEHOLDER)


async def test_undo_handler_error_that_cannot_be_printed_is_the_undo_failure(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``undo_action``: an undo handler's error becomes ``ToolUndoError`` after a
    ``tool.undo_failed`` event; ``str(exc)`` raised there too, so the undo failed with
    the ``__str__`` error and no event."""
    from stageflow_trio.events import clear_event_sink, set_event_sink
    from stageflow_trio.tools import (
        AdvancedToolExecutor,
        ToolDefinition,
        ToolExecutorConfig,
        ToolOutput,
        ToolUndoError,
        UndoStore,
    )
    from stageflow_trio.tools.adapters import DictContextAdapter
    from tests.differential.scenarios_tools_helpers import Act

    async def handler(tool_input: Any) -> Any:
        return ToolOutput.ok(data={}, undo_metadata={"before": 1})

    async def undo(metadata: Any) -> None:
        raise _Unprintable

    executor = AdvancedToolExecutor(ToolExecutorConfig(), undo_store=UndoStore())
    executor.register(
        ToolDefinition(
            name="EDIT", action_type="EDIT", handler=handler, undoable=True, undo_handler=undo
        )
    )
    sink = RecordingEventSink()
    set_event_sink(sink)
    action = uuid.uuid4()
    try:
        ctx = DictContextAdapter({"pipeline_run_id": str(uuid.uuid4()), "execution_mode": "x"})
        await executor.execute(Act(action, "EDIT", {}), ctx)
        with pytest.raises(ToolUndoError) as caught:
            await executor.undo_action(action, ctx)
    finally:
        clear_event_sink()
    assert caught.value.reason == PLACEHOLDER
    assert isinstance(caught.value.__cause__, _Unprintable)
    failed = _data(sink, "tool.undo_failed")
    assert (failed["reason"], failed["error_message"]) == ("_Unprintable", PLACEHOLDER)


async def test_mock_tool_handler_error_that_cannot_be_printed_is_a_failed_result(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``MockToolExecutor``: a handler's error is a failed ``MockToolResult``, not an
    exception out of ``execute`` (which ``str(exc)`` made it)."""
    from stageflow_trio.helpers.mocks import MockToolExecutor

    def handler(arguments: dict[str, Any]) -> Any:
        raise _Unprintable

    result = await MockToolExecutor(tools={"t": handler}).execute("t", {})
    assert (result.success, result.error) == (False, PLACEHOLDER)


async def test_agent_tool_error_that_cannot_be_printed_is_a_failed_tool_result(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``Agent.run``: a tool that raises is a failed tool result the model sees (1.2.0
    and ours); an error whose ``__str__`` raised ended the whole run with that error."""
    from stageflow_trio import agent, tools
    from tests.agent.agent_harness import ScriptedClient

    class Raising(tools.BaseTool):
        name = "raises"
        description = "Explodes"
        action_type = "raises"

        async def execute(self, input: Any, ctx: dict[str, Any]) -> Any:  # noqa: A002
            raise _Unprintable

    registry = tools.ToolRegistry()
    registry.register(Raising())
    client = ScriptedClient(
        [
            '{"tool_calls": [{"name": "raises", "call_id": "b"}]}',
            '{"final_answer": "it failed"}',
        ]
    )
    built = agent.Agent(llm_client=client, config=agent.AgentConfig(), tool_registry=registry)
    result = await built.run("go")
    assert result.response == "it failed"
    (tool_result,) = result.tool_results
    assert (tool_result.success, tool_result.error) == (False, PLACEHOLDER)


async def test_agent_stage_error_that_cannot_be_printed_is_its_failed_output(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``AgentStage``: the agent's error is the stage's FAIL output ("Agent execution
    failed: ..."); the f-string raised the ``__str__`` error out of the stage instead."""
    from stageflow_trio import agent
    from tests.agent.agent_harness import ScriptedClient

    class Broken(agent.Agent):
        async def run(self, *args: Any, **kwargs: Any) -> Any:
            await trio.lowlevel.checkpoint()
            raise _Unprintable

    stage = agent.AgentStage(Broken(llm_client=ScriptedClient([])))
    output = await stage.execute(create_test_stage_context(input_text="hi"))
    assert output.status.value == "fail"
    assert output.error == f"Agent execution failed: {PLACEHOLDER}"


# --------------------------------------------------------------------------- user timeouts


@pytest.mark.parametrize(
    ("user_after", "expected"),
    [(5, "user"), (50, "engine"), (30, "engine")],
    ids=["user_first", "engine_first", "same_instant"],
)
async def test_a_users_fail_after_is_never_taken_for_the_stage_timeout(
    autojump_clock: trio.testing.MockClock, user_after: float, expected: str
) -> None:
    """A stage's own ``trio.fail_after`` under the default TimeoutInterceptor (30 s):
    ``trio.TooSlowError`` is not the builtin ``TimeoutError``, so the chain does not
    turn it into "Stage timed out" (the reference's chain did so with a user's
    ``asyncio.wait_for`` timeout); the engine's own deadline, first or at the same
    instant, is reported as the stage timeout and the user's scope does not catch it."""
    inner: list[bool] = []

    async def slow(ctx: StageContext) -> StageOutput:
        with trio.move_on_after(1000) as scope:  # a user scope that must not catch ours
            with trio.fail_after(user_after):
                await trio.sleep(100)
        inner.append(scope.cancelled_caught)
        return StageOutput.ok()

    graph = (
        Pipeline(name="t")
        .with_stage("s", slow, StageKind.WORK)
        .build(interceptors=get_default_interceptors())
    )
    sink = RecordingEventSink()
    with pytest.raises(UnifiedStageExecutionError) as caught:
        await graph.run(create_test_stage_context(event_sink=sink))
    assert inner == []
    if expected == "user":
        assert type(caught.value.original) is trio.TooSlowError
        assert trio.current_time() == user_after
    else:
        assert type(caught.value.original) is RuntimeError
        assert str(caught.value) == "Stage 's' failed: Stage timed out after 30000ms"
        assert trio.current_time() == 30
    assert _data(sink, "pipeline_failed")["stage"] == "s"


async def test_a_users_move_on_after_cannot_keep_a_stage_running_after_a_failure(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A sibling fails at t=1 while a stage waits inside its own ``move_on_after(5)``
    and then goes on waiting: the run's cancellation is not the user's scope's, so it
    is not caught there; the stage ends at t=1, ``cancelled``, never reaching the code
    after its scope."""
    after_scope: list[float] = []

    async def waits(ctx: StageContext) -> StageOutput:
        with trio.move_on_after(1):  # expires at the same instant as the failure
            await trio.sleep(100)
        after_scope.append(trio.current_time())
        await trio.sleep(100)
        return StageOutput.ok()

    async def fails(ctx: StageContext) -> StageOutput:
        await trio.sleep(1)
        raise ValueError("boom")

    graph = UnifiedStageGraph(
        [UnifiedStageSpec(name="w", runner=waits), UnifiedStageSpec(name="f", runner=fails)]
    )
    sink = RecordingEventSink()
    with pytest.raises(UnifiedStageExecutionError):
        await graph.run(create_test_stage_context(event_sink=sink))
    assert trio.current_time() == 1
    assert after_scope in ([], [1.0])  # the user's scope may win the instant, not the wait
    assert _data(sink, "stage.w.cancelled")["reason"] == "another stage failed"


# The other places that describe a user's error (found after the first pass).


async def test_runner_result_of_a_graph_error_that_cannot_be_printed() -> None:
    from stageflow_trio.helpers.run_utils import PipelineRunner

    class Broken(UnifiedStageGraph):
        async def run(self, ctx: Any, **kwargs: Any) -> Any:
            await trio.lowlevel.checkpoint()
            raise _Unprintable

    async def ok(ctx: StageContext) -> StageOutput:
        return StageOutput.ok()

    graph = Broken([UnifiedStageSpec(name="a", runner=ok)])
    result = await PipelineRunner(verbose=False).run(graph, input_text="hi")
    assert (result.success, result.error, result.error_type) == (False, PLACEHOLDER, "_Unprintable")


def test_error_summary_and_span_of_an_error_that_cannot_be_printed() -> None:
    from stageflow_trio.observability import summarize_pipeline_error
    from stageflow_trio.observability.tracing import NoOpSpan

    summary = summarize_pipeline_error(_Unprintable())
    assert (summary["message"], summary["type"], summary["code"]) == (
        PLACEHOLDER,
        "_Unprintable",
        "UNKNOWN",
    )
    span = NoOpSpan("s")
    span.record_exception(_Unprintable())
    assert span.events == (
        ("exception", {"exception.type": "_Unprintable", "exception.message": PLACEHOLDER}),
    )


async def test_typed_output_validator_error_that_cannot_be_printed_is_fed_back() -> None:
    import attrs

    from stageflow_trio.agent.validation import LLMOutputValidationError, TypedLLMOutput

    def refuse(_: object, __: object, value: str) -> None:
        raise _Unprintable

    @attrs.frozen
    class Verdict:
        label: str = attrs.field(validator=refuse)

    class Chat:
        async def chat(self, *, messages: list[dict[str, Any]], model: str, **kw: Any) -> str:
            await trio.lowlevel.checkpoint()
            return '{"label": "ok"}'

    with pytest.raises(LLMOutputValidationError) as info:
        await TypedLLMOutput(Verdict).generate(Chat(), [], model="m", max_retries=1)
    # Each attempt's error names the model and the validator's error (it was the
    # RuntimeError of its __str__, "__str__ broke", with the model's name lost).
    assert info.value.errors == (f"Verdict validation failed: {PLACEHOLDER} @ $",) * 2


def test_cli_target_whose_import_raises_an_error_that_cannot_be_printed(tmp_path: Any) -> None:
    from stageflow_trio.cli.targets import TargetError, load_module

    source = tmp_path / "broken_target.py"
    source.write_text(
        "class Unprintable(Exception):\n"
        "    def __str__(self):\n"
        "        raise RuntimeError('__str__ broke')\n"
        "raise Unprintable\n"
    )
    with pytest.raises(TargetError) as info:
        load_module(str(source))
    assert str(info.value).endswith("<Unprintable (str() failed)>")
