"""Audit 24: the reference's subpipeline, tools, events and tracing tests, run on this port.

stageflow-core 0.9.1's own tests for these areas were translated (imports, asyncio ->
trio, ``start()`` -> ``start(nursery)``, virtual time; assertions unchanged) and run
against this port. Outcome per reference file (273 tests, 272 run: 265 pass, 7 fail):

- unit/test_subpipeline.py: 17 tests, 17 pass.
- integration/test_subpipelines.py: 11 tests, 10 pass; 1 fails:
  ``test_max_depth_exceeded_raises`` writes the reference's private
  ``SubpipelineSpawner._run_depths`` (d; the depth limit itself is checked in
  tests/pipeline/test_subpipeline.py).
- unit/tools/test_spawn_subpipeline.py: 18 tests, 18 pass after the fix below; before
  it 9 failed: a registry handing out a test double of a Pipeline (``MagicMock(spec=
  Pipeline)``) made ``ToolExecutor.spawn_subpipeline`` raise AttributeError (fixed).
- unit/tools/test_undo.py 11, test_errors.py 14, test_definitions.py 16,
  test_approval.py 14, test_registry.py 19, test_diff.py 39: all pass.
- unit/test_advanced_tool_executor.py: 13 tests, 13 pass.
- unit/test_tool_registry_parse.py: 15 tests, 15 pass.
- unit/test_child_tracker_metrics.py: 18 tests, 16 pass; 2 fail: they patch
  ``stageflow.pipeline.subpipeline.get_child_tracker``, the name the reference's
  interceptor imports lazily; ours binds it at import (d; with the patch aimed at our
  module both pass, and tests/pipeline/test_subpipeline.py checks the same log lines).
- unit/events/test_backpressure_sink.py: 19 tests, 15 pass; 4 fail:
  ``test_try_emit_backpressure`` and ``test_on_drop_callback`` (an idle worker takes one
  event straight away, so the first drop comes one event later: parity row
  'Capacity'), ``test_auto_start_on_emit`` (parity row 'Worker start (C1)'),
  ``test_default_downstream_is_logging_sink`` (reads the private ``_downstream``: d).
- unit/test_events.py: 25 tests; ``test_clears_completed_tasks`` not run (an asyncio
  task put in the reference's private ``_pending_emit_tasks``: d); the other 24 pass.
- unit/observability/test_tracing.py: 24 tests, 24 pass.

The subpipeline cancellation cascade stops children here (docs/subpipelines.md); no
reference test in these files depended on it only setting flags.

The tests below: the fix, and what the reference suite checks that no test of ours
asserted yet (an AdvancedToolExecutor gated on a StageContext's or a PipelineContext's
execution mode, and ToolInput.from_action reading those two contexts).
"""

from __future__ import annotations

import types
import uuid
from typing import Any

import attrs
import pytest
import trio

from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.core.stage_enums import StageKind
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.pipeline.pipeline import Pipeline
from stageflow_trio.pipeline.registry import PipelineRegistry
from stageflow_trio.pipeline.subpipeline import ChildRunTracker, SubpipelineSpawner
from stageflow_trio.testing import create_test_pipeline_context, create_test_stage_context
from stageflow_trio.tools import (
    AdvancedToolExecutor,
    ToolDefinition,
    ToolDeniedError,
    ToolExecutorConfig,
    ToolInput,
    ToolOutput,
)
from stageflow_trio.tools.executor import ToolExecutor

CORRELATION = uuid.UUID("cccccccc-0000-4000-8000-000000000024")
RUN = uuid.UUID("aaaaaaaa-0000-4000-8000-000000000024")
REQUEST = uuid.UUID("bbbbbbbb-0000-4000-8000-000000000024")


# --- ToolExecutor.spawn_subpipeline with a pipeline that is not a Pipeline ------------


def child_pipeline() -> Pipeline:
    async def work(ctx: StageContext) -> StageOutput:
        await trio.sleep(1)
        return StageOutput.ok(topology=ctx.snapshot.topology)

    return Pipeline().with_stage("work", work, StageKind.WORK)


class StandInRegistry(PipelineRegistry):
    """Hands out whatever object was put under a name (a lazy proxy, a test double)."""

    def __init__(self, entries: dict[str, Any]) -> None:
        super().__init__()
        self.entries = entries

    def get(self, name: str) -> Any:
        return self.entries[name]


async def test_spawn_subpipeline_runs_an_object_whose_build_is_its_own_attribute(
    autojump_clock: trio.abc.Clock,
) -> None:
    # The class of such an object has no ``build`` (an instance attribute, as on a
    # ``MagicMock(spec=Pipeline)``): the executor used to look it up on the class and
    # raised AttributeError. It is built on every call, since nothing says its graph
    # stays the same.
    real = child_pipeline()
    builds: list[int] = []

    def build() -> Any:
        builds.append(1)
        return real.build()

    stand_in = types.SimpleNamespace(build=build)
    executor = ToolExecutor(
        spawner=SubpipelineSpawner(child_tracker=ChildRunTracker()),
        registry=StandInRegistry({"child": stand_in}),
    )
    parent = create_test_pipeline_context()
    for _ in range(2):
        result = await executor.spawn_subpipeline(
            "child", parent, CORRELATION, topology_override="child_topology"
        )
        assert result.success
        assert result.data == {"work": {"topology": "child_topology"}}
    assert len(builds) == 2


# --- AdvancedToolExecutor gated on the execution mode of each kind of context ---------


@attrs.frozen
class Act:
    id: uuid.UUID
    type: str
    payload: dict[str, Any] = attrs.field(factory=dict)


async def echo(tool_input: ToolInput) -> ToolOutput:
    await trio.lowlevel.checkpoint()
    return ToolOutput.ok(data={"behavior": tool_input.behavior})


def practice_only_executor() -> AdvancedToolExecutor:
    executor = AdvancedToolExecutor(config=ToolExecutorConfig(emit_events=False))
    executor.register(
        ToolDefinition(
            name="drill",
            action_type="DRILL",
            handler=echo,
            allowed_behaviors=("practice",),
        )
    )
    return executor


def stage_context(mode: str) -> Any:
    return create_test_stage_context(pipeline_run_id=RUN, request_id=REQUEST, execution_mode=mode)


def pipeline_context(mode: str) -> Any:
    return create_test_pipeline_context(
        pipeline_run_id=RUN, request_id=REQUEST, execution_mode=mode
    )


@pytest.mark.parametrize("make_ctx", [stage_context, pipeline_context])
async def test_advanced_executor_reads_the_mode_of_a_stage_or_pipeline_context(
    make_ctx: Any,
) -> None:
    executor = practice_only_executor()
    output = await executor.execute(Act(uuid.uuid4(), "DRILL"), make_ctx("practice"))
    assert output.success
    assert output.data == {"behavior": "practice"}
    with pytest.raises(ToolDeniedError) as denied:
        await executor.execute(Act(uuid.uuid4(), "DRILL"), make_ctx("roleplay"))
    assert (denied.value.behavior, denied.value.allowed_behaviors) == ("roleplay", ("practice",))


async def test_advanced_executor_with_no_allowed_behaviors_runs_in_any_mode() -> None:
    executor = AdvancedToolExecutor(config=ToolExecutorConfig(emit_events=False))
    executor.register(ToolDefinition(name="any", action_type="ANY", handler=echo))
    for mode in ("practice", "roleplay", "doc_edit"):
        output = await executor.execute(Act(uuid.uuid4(), "ANY"), stage_context(mode))
        assert output.data == {"behavior": mode}


@pytest.mark.parametrize("make_ctx", [stage_context, pipeline_context])
def test_tool_input_from_action_reads_a_stage_or_pipeline_context(make_ctx: Any) -> None:
    action = Act(uuid.uuid4(), "DRILL", {"k": 1})
    tool_input = ToolInput.from_action(action, "drill", make_ctx("doc_edit"))
    assert tool_input == ToolInput(action.id, "drill", {"k": 1}, "doc_edit", RUN, REQUEST)
