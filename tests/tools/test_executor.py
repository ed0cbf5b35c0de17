"""The v1 ToolExecutor: executing plans through a tool registry, and spawn_subpipeline."""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.core.stage_enums import StageKind
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.events import set_event_sink
from stageflow_trio.pipeline.pipeline import Pipeline
from stageflow_trio.pipeline.registry import PipelineRegistry, pipeline_registry
from stageflow_trio.pipeline.subpipeline import (
    ChildRunTracker,
    MaxDepthExceededError,
    SubpipelineSpawner,
    get_subpipeline_spawner,
)
from stageflow_trio.testing import (
    RecordingEventSink,
    create_test_pipeline_context,
    create_test_stage_context,
)
from stageflow_trio.tools import ToolExecutor as FacadeToolExecutor
from stageflow_trio.tools.base import BaseTool, ToolInput, ToolOutput
from stageflow_trio.tools.executor import ActionProtocol, ToolExecutor, ToolExecutorResult
from stageflow_trio.tools.registry import clear_tool_registry, get_tool_registry, tool
from stageflow_trio.utils.frozen import FrozenList

CORRELATION = uuid.UUID("cccccccc-0000-4000-8000-000000000002")


@attrs.frozen
class Action:
    type: str
    payload: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class Plan:
    actions: tuple[Action, ...]


@attrs.frozen
class Output:
    success: bool
    error: str | None = None
    artifacts: list[dict[str, Any]] | None = None


class FakeRegistry:
    """Tools keyed by action type; records what it was asked."""

    def __init__(self, tools: dict[str, Any]) -> None:
        self.tools = tools
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def execute(self, action: ActionProtocol, ctx: dict[str, Any]) -> Output | None:
        self.calls.append((action.type, ctx))
        await trio.lowlevel.checkpoint()
        tool = self.tools.get(action.type)
        if tool is None:
            return None
        if isinstance(tool, Exception):
            raise tool
        return tool  # type: ignore[no-any-return]


def test_the_tools_package_exports_the_executor() -> None:
    assert FacadeToolExecutor is ToolExecutor
    assert ToolExecutor.id == "stage.tool_executor"


async def test_execute_counts_collects_artifacts_and_decides_reentry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = FakeRegistry(
        {
            "search": Output(True, artifacts=[{"kind": "doc", "id": 1}]),
            "edit": Output(True, artifacts=[{"kind": "diff"}]),
            "deny": Output(False, error="not allowed"),
            "boom": RuntimeError("tool crashed"),
        }
    )
    executor = ToolExecutor()
    executor.tool_registry = registry
    ctx = create_test_pipeline_context()
    plan = Plan(
        (
            Action("search"),
            Action("edit", {"requires_reentry": True}),
            Action("deny"),
            Action("missing"),
            Action("boom"),
        )
    )
    result = await executor.execute(ctx, plan)
    assert result == ToolExecutorResult(
        actions_executed=2,
        actions_failed=3,
        artifacts_produced=[{"kind": "doc", "id": 1}, {"kind": "diff"}],
        requires_reentry=True,
    )
    assert [call[0] for call in registry.calls] == ["search", "edit", "deny", "missing", "boom"]
    assert registry.calls[0][1]["pipeline_run_id"] == str(ctx.pipeline_run_id)
    assert "Action deny failed: not allowed" in caplog.messages
    assert "No tool available for action type: missing" in caplog.messages
    assert "Error executing action boom: tool crashed" in caplog.messages


async def test_reentry_only_when_asked_or_on_failure() -> None:
    executor = ToolExecutor()
    executor.tool_registry = FakeRegistry({"search": Output(True)})
    result = await executor.execute(create_test_pipeline_context(), Plan((Action("search"),)))
    assert (result.actions_executed, result.requires_reentry) == (1, False)


async def test_execute_with_the_empty_global_registry_fails_every_action(
    caplog: pytest.LogCaptureFixture,
) -> None:
    executor = ToolExecutor()
    assert executor.tool_registry is get_tool_registry()
    result = await executor.execute(create_test_pipeline_context(), Plan((Action("a"),)))
    assert (result.actions_executed, result.actions_failed, result.requires_reentry) == (0, 1, True)
    assert "Action a failed: No tool registered for action type: a" in caplog.messages


async def test_execute_runs_the_tools_of_the_global_registry() -> None:
    seen: list[tuple[str, dict[str, Any], str | None]] = []

    @tool("echo")
    class Echo(BaseTool):
        async def execute(self, input: ToolInput, ctx: dict[str, Any]) -> ToolOutput:  # noqa: A002
            await trio.lowlevel.checkpoint()
            seen.append((input.action.type, dict(input.action.payload), ctx["execution_mode"]))
            return ToolOutput(success=True, artifacts=[{"echo": input.action.payload["x"]}])

    executor = ToolExecutor()
    ctx = create_test_pipeline_context(execution_mode="practice")
    plan = Plan((Action("echo", {"x": 1}), Action("echo", {"x": 2, "requires_reentry": True})))
    result = await executor.execute(ctx, plan)
    assert result == ToolExecutorResult(
        actions_executed=2, artifacts_produced=[{"echo": 1}, {"echo": 2}], requires_reentry=True
    )
    assert seen == [
        ("echo", {"x": 1}, "practice"),
        ("echo", {"x": 2, "requires_reentry": True}, "practice"),
    ]


def test_the_executor_takes_the_global_registry_as_it_is_when_made() -> None:
    executor = ToolExecutor()
    clear_tool_registry()
    assert executor.tool_registry is not get_tool_registry()
    assert ToolExecutor().tool_registry is get_tool_registry()


async def test_execute_without_a_plan_is_an_empty_result_and_a_checkpoint() -> None:
    with trio.testing.assert_checkpoints():
        result = await ToolExecutor().execute(create_test_pipeline_context())
    assert result == ToolExecutorResult()
    assert result.artifacts_produced == []
    assert result.subpipeline_runs == []


async def test_execute_does_not_swallow_cancellation(autojump_clock: trio.abc.Clock) -> None:
    class Blocking:
        async def execute(self, action: ActionProtocol, ctx: dict[str, Any]) -> Output:
            await trio.sleep_forever()
            raise AssertionError("unreachable")

    executor = ToolExecutor()
    executor.tool_registry = Blocking()
    with trio.move_on_after(1) as scope:
        await executor.execute(create_test_pipeline_context(), Plan((Action("a"), Action("b"))))
    assert scope.cancelled_caught


def test_result_is_frozen_with_read_only_lists() -> None:
    result = ToolExecutorResult(artifacts_produced=[{"a": 1}])
    assert type(result.artifacts_produced) is FrozenList
    with pytest.raises(TypeError):
        result.artifacts_produced.append({})
    with pytest.raises(AttributeError):
        result.actions_executed = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"spawner": object()}, r"^spawner must be a SubpipelineSpawner or None, got object$"),
        ({"registry": {}}, r"^registry must be a PipelineRegistry or None, got dict$"),
        (
            {"uuid_monitor": 1},
            r"^uuid_monitor must have an observe\(\) method or be None, got int$",
        ),
        (
            {"memory_tracker": "x"},
            r"^memory_tracker must have an observe\(\) method or be None, got str$",
        ),
    ],
)
def test_constructor_rejects_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        ToolExecutor(**kwargs)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def observe(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append((args, kwargs))


def one_stage(value: int, fail: bool = False) -> Pipeline:
    async def work(ctx: StageContext) -> StageOutput:
        await trio.sleep(0.5)
        if fail:
            return StageOutput.fail(error="child stage failed")
        return StageOutput.ok(value=value, mode=ctx.snapshot.execution_mode)

    return Pipeline().with_stage("work", work, StageKind.WORK)


async def test_spawn_subpipeline_runs_the_registered_pipeline_as_a_child(
    autojump_clock: trio.abc.Clock,
) -> None:
    sink = RecordingEventSink()
    set_event_sink(sink)
    registry = PipelineRegistry()
    registry.register("child", one_stage(3))
    monitor, memory = Recorder(), Recorder()
    spawner = SubpipelineSpawner(child_tracker=ChildRunTracker())
    executor = ToolExecutor(
        spawner=spawner, registry=registry, uuid_monitor=monitor, memory_tracker=memory
    )
    parent = create_test_pipeline_context()
    result = await executor.spawn_subpipeline(
        "child", parent, CORRELATION, execution_mode_override="tool_mode"
    )
    assert result.success
    assert result.data == {"work": {"value": 3, "mode": "tool_mode"}}
    assert result.duration_ms == 500.0
    assert monitor.calls == [((CORRELATION,), {})]
    assert memory.calls == [
        ((), {"label": "subpipeline:start"}),
        ((), {"label": "subpipeline:end"}),
    ]
    spawned = sink.of_type("pipeline.spawned_child")[0]
    assert spawned is not None
    assert (spawned["parent_stage_id"], spawned["pipeline_name"]) == (
        "stage.tool_executor",
        "child",
    )


async def test_spawn_subpipeline_builds_a_registered_pipeline_once(
    autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Pipeline is immutable, so its graph is kept for the next call; a pipeline
    # registered again under the name is built (and run) instead.
    builds: list[Pipeline] = []
    build = Pipeline.build

    def counting_build(self: Pipeline, **kwargs: Any) -> Any:
        builds.append(self)
        return build(self, **kwargs)

    monkeypatch.setattr(Pipeline, "build", counting_build)
    registry = PipelineRegistry()
    first = one_stage(1)
    registry.register("child", first)
    executor = ToolExecutor(
        spawner=SubpipelineSpawner(child_tracker=ChildRunTracker()), registry=registry
    )
    parent = create_test_pipeline_context()
    for _ in range(3):
        result = await executor.spawn_subpipeline("child", parent, CORRELATION)
        assert result.data == {"work": {"value": 1, "mode": parent.execution_mode}}
    assert builds == [first]
    second = one_stage(2)
    registry.register("child", second)
    result = await executor.spawn_subpipeline("child", parent, CORRELATION)
    assert result.data == {"work": {"value": 2, "mode": parent.execution_mode}}
    assert builds == [first, second]


async def test_spawn_subpipeline_builds_a_pipeline_whose_class_overrides_build_every_call(
    autojump_clock: trio.abc.Clock,
) -> None:
    # Such a build may make its graph from state of its own: the executor must not
    # keep the first graph (it used to, so later calls ran the first build's stage).
    class Versioned(Pipeline):
        __slots__ = ()
        version = 0

        def build(self, **kwargs: Any) -> Any:
            type(self).version += 1
            return one_stage(type(self).version).build(**kwargs)

    registry = PipelineRegistry()
    registry.register("child", Versioned("child"))
    executor = ToolExecutor(
        spawner=SubpipelineSpawner(child_tracker=ChildRunTracker()), registry=registry
    )
    parent = create_test_pipeline_context()
    values = []
    for _ in range(3):
        result = await executor.spawn_subpipeline("child", parent, CORRELATION)
        assert result.data is not None
        values.append(result.data["work"]["value"])
    assert values == [1, 2, 3]


async def test_spawn_subpipeline_reports_a_failing_child_stage_in_the_result(
    autojump_clock: trio.abc.Clock,
) -> None:
    registry = PipelineRegistry()
    registry.register("child", one_stage(1, fail=True))
    executor = ToolExecutor(
        spawner=SubpipelineSpawner(child_tracker=ChildRunTracker()), registry=registry
    )
    result = await executor.spawn_subpipeline("child", create_test_pipeline_context(), CORRELATION)
    assert (result.success, result.error) == (False, "Stage 'work' failed: child stage failed")


async def test_spawn_subpipeline_unknown_name_raises_key_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = PipelineRegistry()
    executor = ToolExecutor(registry=registry)
    with pytest.raises(KeyError) as info:
        await executor.spawn_subpipeline("nope", create_test_pipeline_context(), CORRELATION)
    assert info.value.args == ("Pipeline 'nope' not found. Available: []",)
    assert "Pipeline 'nope' not found in registry" in caplog.messages


async def test_spawn_subpipeline_depth_error_is_raised_and_observed(
    autojump_clock: trio.abc.Clock,
) -> None:
    registry = PipelineRegistry()
    registry.register("child", one_stage(1))
    memory = Recorder()
    executor = ToolExecutor(
        spawner=SubpipelineSpawner(child_tracker=ChildRunTracker(), max_depth=0),
        registry=registry,
        memory_tracker=memory,
    )
    with pytest.raises(MaxDepthExceededError):
        await executor.spawn_subpipeline("child", create_test_pipeline_context(), CORRELATION)
    assert memory.calls[-1] == ((), {"label": "subpipeline:depth_exceeded"})


async def test_spawn_subpipeline_other_errors_are_raised_and_observed(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    registry = PipelineRegistry()
    registry.register("child", one_stage(1))
    memory = Recorder()
    executor = ToolExecutor(
        spawner=SubpipelineSpawner(child_tracker=ChildRunTracker()),
        registry=registry,
        memory_tracker=memory,
    )
    with pytest.raises(ValueError, match=r"^correlation_id must be a UUID string, got 'x'$"):
        await executor.spawn_subpipeline("child", create_test_pipeline_context(), "x")  # type: ignore[arg-type]
    assert memory.calls[-1] == ((), {"label": "subpipeline:error"})
    (record,) = [r for r in caplog.records if r.getMessage().startswith("Subpipeline spawn failed")]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert record.error_type == "ValueError"  # type: ignore[attr-defined]


async def test_the_defaults_are_the_global_spawner_and_registry(
    autojump_clock: trio.abc.Clock,
) -> None:
    executor = ToolExecutor()
    assert executor.spawner is get_subpipeline_spawner()
    assert executor.pipeline_registry is pipeline_registry
    pipeline_registry.register("global_child", one_stage(5))
    result = await executor.spawn_subpipeline(
        "global_child", create_test_pipeline_context(), CORRELATION
    )
    assert result.data == {"work": {"value": 5, "mode": "test"}}


async def test_spawn_subpipeline_is_a_checkpoint_on_both_paths() -> None:
    registry = PipelineRegistry()
    registry.register("child", Pipeline().with_stage("work", _instant, StageKind.WORK))
    executor = ToolExecutor(
        spawner=SubpipelineSpawner(child_tracker=ChildRunTracker(), emit_events=False),
        registry=registry,
    )
    with trio.testing.assert_checkpoints():
        await executor.spawn_subpipeline("child", create_test_pipeline_context(), CORRELATION)
    with trio.testing.assert_checkpoints(), pytest.raises(KeyError):
        await executor.spawn_subpipeline("nope", create_test_pipeline_context(), CORRELATION)


async def _instant(ctx: StageContext) -> StageOutput:
    return StageOutput.ok()


@pytest.mark.parametrize(
    ("ctx", "plan", "message"),
    [
        (None, Plan((Action("t"),)), "ctx must be a PipelineContext (anything with to_dict()), got NoneType"),
        ({}, Plan((Action("t"),)), "ctx must be a PipelineContext (anything with to_dict()), got dict"),
        (None, None, "ctx must be a PipelineContext (anything with to_dict()), got NoneType"),
        (create_test_pipeline_context(), "abc", "plan must be a plan (with an actions sequence) or None, got str"),
        (create_test_pipeline_context(), Plan(None), "plan.actions must be a sequence of actions, got NoneType"),  # type: ignore[arg-type]
        (create_test_pipeline_context(), Plan("t"), "plan.actions must be a sequence of actions, got str"),  # type: ignore[arg-type]
    ],
)  # fmt: skip
async def test_execute_rejects_a_bad_ctx_or_plan_before_any_action(
    ctx: Any, plan: Any, message: str
) -> None:
    executor = ToolExecutor()
    tools = FakeRegistry({"t": Output(success=True)})
    executor.tool_registry = tools
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        await executor.execute(ctx, plan)
    assert tools.calls == []


async def test_execute_takes_any_iterable_of_actions() -> None:
    executor = ToolExecutor()
    executor.tool_registry = FakeRegistry({"t": Output(success=True)})

    @attrs.frozen
    class ListPlan:
        actions: list[Action]

    result = await executor.execute(create_test_pipeline_context(), ListPlan([Action("t")]))
    assert (result.actions_executed, result.actions_failed) == (1, 0)


@pytest.mark.parametrize(
    ("name", "ctx", "kwargs", "message"),
    [
        (5, create_test_pipeline_context(), {}, "pipeline_name must be a str, got int"),
        ("child", None, {}, "ctx must be a PipelineContext, got NoneType"),
        ("child", {}, {}, "ctx must be a PipelineContext, got dict"),
        ("child", create_test_stage_context(), {}, "ctx must be a PipelineContext (a StageContext gives one with ctx.as_pipeline_context()), got StageContext"),
        ("child", create_test_pipeline_context(), {"topology_override": 5}, "topology_override must be a str or None, got int"),
        ("child", create_test_pipeline_context(), {"execution_mode_override": b"m"}, "execution_mode_override must be a str or None, got bytes"),
    ],
)  # fmt: skip
async def test_spawn_subpipeline_rejects_bad_input_before_the_lookup(
    caplog: pytest.LogCaptureFixture, name: Any, ctx: Any, kwargs: dict[str, Any], message: str
) -> None:
    sink = RecordingEventSink()
    set_event_sink(sink)
    registry = PipelineRegistry()
    registry.register("child", one_stage(1))
    monitor, memory = Recorder(), Recorder()
    executor = ToolExecutor(
        spawner=SubpipelineSpawner(child_tracker=ChildRunTracker()),
        registry=registry,
        uuid_monitor=monitor,
        memory_tracker=memory,
    )
    with caplog.at_level(logging.DEBUG), pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        await executor.spawn_subpipeline(name, ctx, CORRELATION, **kwargs)
    assert (monitor.calls, memory.calls, sink.events, caplog.records) == ([], [], [], [])
