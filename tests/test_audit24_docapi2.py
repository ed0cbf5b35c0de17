"""Audit 24: the reference's API pages, run against the port.

Every ```python block of seven pages of stageflow-core 0.9.1's docs (``docs/api/``) was
translated to trio (imports, ``asyncio.run`` -> ``trio.run`` under a MockClock, undefined
names completed with stub stages and ``stageflow_trio.testing`` contexts) and run against
this port and, untranslated, against the reference. Classes: (a) our defect, fixed here;
(b) a divergence docs/parity.md already lists; (c) a divergence right for us that had no
row, added; (d) the page is wrong for the reference too.

- pipeline.md: 34 blocks (imports and signatures included) in 18 programs; 15 pass on
  ours, 15 on the reference (where the cleanups registered before the run never run).
  (d) ``PipelineBuilder().with_stage("a", ..., dependencies=("c",))`` raises
  PipelineValidationError at that call, so the cycle example never reaches
  CycleDetectedError; an empty ``PipelineBuilder().build()`` raises
  PipelineValidationError, not the ValueError the page names (both as the reference);
  a failing stage raises UnifiedStageExecutionError, not StageExecutionError, and the
  legacy StageGraph returns a failed result instead of raising; ``PipelineTimer`` and
  ``StageInputs`` come from the top level, not from the usage example's imports.
  (b) ``Pipeline.build(emit_stage_wide_events=..., wide_event_emitter=...)``: the
  reference's build takes no such keywords, ours does ("`Pipeline.build` options");
  ``graph.register_cleanup`` before ``run`` is a RuntimeError here, a no-op there;
  ``pipeline_completed`` next to ``pipeline.wide``; results' data is a FrozenDict.
- interceptors.md: 23 blocks in 11 programs; 10 pass on ours, 11 on the reference (its
  usage example builds, and then every stage fails).
  (d) ``AuthInterceptor(validator=...)`` (the keyword is ``jwt_validator``),
  ``BufferedExporter(sink=...)`` (the exporter is the first parameter); a short-circuit
  with ``error=`` reports the call "completed" through ``run_with_interceptors``, as in
  the reference. (c) The usage example hands ``Pipeline.build().stage_specs`` to a legacy
  ``StageGraph``: the reference accepts it and every stage then fails; ours refused it
  with a bare TypeError, and now names ``Pipeline.build(interceptors=...)``, the way that
  works (parity row and test from the advanced guides' audit, tests/test_audit24_docadv.py). (b) CircuitBreaker opens after 5 failed calls (the reference
  counts a failure twice).
- tools.md: 35 blocks in 14 programs; 11 pass on ours, 9 on the reference.
  (d) ``ToolInput(action=...)`` is the v1 class of ``tools.base``, not the
  ``tools.ToolInput`` the page imports (``action_id``/``tool_name``/``payload``);
  ``ToolExecutor.execute(action, ctx)`` (it is ``execute(ctx, plan)``);
  ``ToolExecutorConfig.store_undo_data`` / ``require_approval_for_risky``,
  ``ExecutionResult.events``, ``ApprovalService.decide``, the ``"+5 -3"`` summary (a
  change without deletions reads ``"+1"``) exist in neither.
  (c) ``@register_tool`` on a class (the page's usage example): the reference keeps the
  class as the tool and replaces the name with None, so ``registry.execute`` fails with
  "missing ... 'ctx'"; ours now raises TypeError at the decorator (parity row added).
  (b) ``StageContext.emit_event``, the registry's ``get``/``list``/``has``,
  ``UndoStore.store(metadata)``: stageflow 1.2.0 names this port has.
- testing.md: 29 blocks in 6 programs; 5 pass on ours, 4 on the reference; the blocks
  using the eight helpers below cannot run on either.
  (d) ``create_test_context``, ``MockStage``, ``TestPipelineBuilder``, ``TestFixtures``,
  ``assert_stage_output``, ``assert_pipeline_success``, ``run_stage_test``,
  ``run_pipeline_test`` are not in ``stageflow.testing``; ``session_id`` defaults to None;
  ``last_user_message`` is the last user message given, not ``input_text``.
  (b) ``create_test_pipeline_context(input_text=...)`` (1.2.0's PipelineContext fields),
  a RecordingEventSink by default instead of NoOpEventSink.
- observability.md: 21 blocks in 9 programs; 9 pass on both.
  (d) ``BufferedExporter.stats`` has no ``queued``/``dropped``/``flushes``; a stage's
  TimeoutError reaches ``summarize_pipeline_error`` wrapped, so its code is UNKNOWN.
  (b) ``get_circuit_breaker()``'s class is one private module-level class.
- auth.md: 36 blocks in 11 programs; 9 pass on both.
  (d) ``AuthInterceptor(validator=...)``; ``InvalidTokenError.message`` and friends;
  ``graph.run(ctx, interceptors=...)``; ``AuthInterceptor()`` has no default validator
  object (MockJwtValidator behaviour is built in); ``PlanTier`` is not exported.
- cli.md: 14 blocks in 6 programs, and the shell examples; 4 pass on both.
  (d) ``IssueSeverity`` and ``analyze_stage_source`` live in ``cli.lint``, not ``cli``;
  the accessed line is 4, not 3; the CI example lints a directory, which both refuse.
  (c) ``python -m stageflow.cli.lint`` printed runpy's RuntimeWarning first, in both
  (the package imported the module it then ran); ours no longer does (parity row added).
  (b) the contract errors section after the report.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
import stageflow.context as reference_context
import stageflow.testing as reference_testing
import stageflow.tools as reference_tools

import stageflow_trio
from stageflow_trio import (
    BaseInterceptor,
    InterceptorResult,
    Pipeline,
    StageKind,
    StageOutput,
    get_default_interceptors,
)
from stageflow_trio.context import Message
from stageflow_trio.pipeline.dag import UnifiedStageExecutionError
from stageflow_trio.testing import (
    RecordingEventSink,
    create_test_snapshot,
    create_test_stage_context,
)
from stageflow_trio.tools import BaseTool, ToolRegistry, get_tool_registry, register_tool
from stageflow_trio.tools.base import ToolInput, ToolOutput


class _Greet(BaseTool):
    name = "greet"
    description = "Greet a user"
    action_type = "GREET"

    async def execute(self, input: ToolInput, ctx: dict[str, Any]) -> ToolOutput:  # noqa: A002
        return ToolOutput(success=True, data={"message": "hi"})


# --- fixes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("owner", "register"),
    [
        ("register_tool", register_tool),
        ("ToolRegistry.register", lambda tool: ToolRegistry().register(tool)),
    ],
)
def test_a_tool_class_is_refused_where_it_is_registered(owner: str, register: Any) -> None:
    with pytest.raises(TypeError) as caught:
        register(_Greet)
    assert str(caught.value) == (
        f"{owner}: tool must be a tool instance, not the class _Greet; register _Greet(), "
        "or decorate the class with @tool(action_type) to have it built on first use"
    )


def test_register_tool_as_a_class_decorator_fails_at_the_decorator() -> None:
    # The reference keeps the class as the tool: the mistake shows only when it is called.
    reference_registry = reference_tools.ToolRegistry()

    class ReferenceGreet(reference_tools.BaseTool):
        name = "greet"
        description = "Greet a user"
        action_type = "GREET"

    reference_registry.register(ReferenceGreet)  # type: ignore[arg-type]
    kept: object = reference_registry.get_tool("GREET")
    assert kept is ReferenceGreet

    with pytest.raises(TypeError, match=r"^register_tool: tool must be a tool instance"):

        @register_tool  # type: ignore[arg-type]
        class GreetTool(_Greet):
            pass

    assert get_tool_registry().get_tool("GREET") is None
    register_tool(_Greet())
    assert isinstance(get_tool_registry().get_tool("GREET"), _Greet)


class _Upper:
    name = "my_stage"
    kind = StageKind.TRANSFORM

    async def execute(self, ctx: Any) -> StageOutput:
        return StageOutput.ok(v=1)


def test_the_documented_lint_command_runs_without_a_runpy_warning(tmp_path: Path) -> None:
    target = tmp_path / "chat.py"
    target.write_text(
        "from stageflow_trio import Pipeline, StageKind, StageOutput\n"
        "async def chat(ctx):\n"
        "    return StageOutput.ok()\n"
        "pipeline = Pipeline().with_stage('chat', chat, StageKind.TRANSFORM)\n"
    )
    root = str(Path(stageflow_trio.__file__).parent.parent)
    done = subprocess.run(
        [
            sys.executable,
            "-W",
            "error::RuntimeWarning",
            "-m",
            "stageflow_trio.cli.lint",
            str(target),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": root},
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("\u2713 Pipeline dependencies are valid\n  Stages: 1\n")


# --- page claims ---------------------------------------------------------------------


class _RateLimitInterceptor(BaseInterceptor):
    """The interceptors page's usage example, counting per user."""

    name = "rate_limit"
    priority = 15

    def __init__(self, max_per_minute: int = 60) -> None:
        self.max_per_minute = max_per_minute
        self._counts: dict[str, int] = {}

    async def before(self, stage_name: str, ctx: Any) -> InterceptorResult | None:
        user_id = str(ctx.user_id)
        count = self._counts.get(user_id, 0)
        if count >= self.max_per_minute:
            return InterceptorResult(stage_ran=False, error="Rate limit exceeded")
        self._counts[user_id] = count + 1
        return None

    async def after(self, stage_name: str, result: Any, ctx: Any) -> None:
        pass


async def test_the_interceptors_usage_example_runs_through_build_interceptors() -> None:
    limiter = _RateLimitInterceptor(max_per_minute=1)
    graph = (
        Pipeline()
        .with_stage("my_stage", _Upper, StageKind.TRANSFORM)
        .build(interceptors=[limiter, *get_default_interceptors()])
    )
    user = uuid4()
    results = await graph.run(create_test_stage_context(user_id=user))
    assert results["my_stage"].data == {"v": 1}
    assert limiter._counts == {str(user): 1}
    # Over the limit, the short-circuit's error fails the run (parity: short-circuit with
    # an error); the stage does not run.
    with pytest.raises(UnifiedStageExecutionError) as caught:
        await graph.run(create_test_stage_context(user_id=user))
    assert caught.value.stage == "my_stage"
    assert str(caught.value.original) == "Rate limit exceeded"


async def test_the_tool_call_resolution_example_of_the_tools_page() -> None:
    seen: list[tuple[object, dict[str, Any]]] = []

    class StoreMemory(BaseTool):
        name = "store_memory"
        description = "Store a memory"
        action_type = "store_memory"

        async def execute(self, input: ToolInput, ctx: dict[str, Any]) -> ToolOutput:  # noqa: A002
            seen.append((input.action, ctx))
            return ToolOutput(success=True, data={"stored": True})

    registry = ToolRegistry()
    registry.register(StoreMemory())
    tool_calls = [
        {
            "id": "call_123",
            "function": {"name": "store_memory", "arguments": '{"content": "hello"}'},
        },
        {"id": "call_456", "function": {"name": "forget", "arguments": "{}"}},
    ]
    sink = RecordingEventSink()
    ctx = create_test_stage_context(event_sink=sink)

    resolved, unresolved = registry.parse_and_resolve(tool_calls)
    for missing in unresolved:
        ctx.emit_event("tools.unresolved", {"call_id": missing.call_id, "error": missing.error})
    for call in resolved:
        # The page's ToolInput(action=...) is the v1 one, of tools.base (the tools
        # package exports the definitions' ToolInput, which has no ``action``).
        tool_input = ToolInput(action=call.arguments)  # type: ignore[arg-type]
        result = await call.tool.execute(tool_input, ctx={"call_id": call.call_id})
        assert result.data == {"stored": True}

    assert seen == [({"content": "hello"}, {"call_id": "call_123"})]
    [data] = sink.of_type("tools.unresolved")
    assert data is not None
    assert data["call_id"] == "call_456"
    assert data["error"] == "No tool registered for action type: forget"


def test_input_text_is_not_a_message_of_the_test_snapshot() -> None:
    # The testing page expects last_user_message to be the input text; in both it is the
    # last user message given.
    texts = [("user", "What's Python?"), ("assistant", "Python is a programming language...")]
    ours = create_test_snapshot(
        input_text="Can you give me an example?",
        messages=[Message(role=r, content=c) for r, c in texts],
    )
    theirs = reference_testing.create_test_snapshot(
        input_text="Can you give me an example?",
        messages=[reference_context.Message(role=r, content=c) for r, c in texts],
    )
    for snapshot in (ours, theirs):
        assert snapshot.conversation is not None
        assert snapshot.conversation.message_count == 2
        assert snapshot.conversation.last_user_message is not None
        assert snapshot.conversation.last_user_message.content == "What's Python?"
        assert snapshot.input_text == "Can you give me an example?"
