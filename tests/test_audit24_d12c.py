"""Audit 24: what stageflow 1.2.0 changed in sixteen of its documentation pages, run on this port.

The 0.9.1 pages were run in an earlier pass; here each 1.2.0 page was diffed against its 0.9.1
copy and the blocks it added or changed were run twice: as printed on the 1.2.0 reference
(``import stageflow``, asyncio), and translated to this port (``stageflow_trio``, ``trio.run``
on a ``MockClock``). Fragments were completed with stub stages and contexts from
``stageflow_trio.testing``. Classes: (a) our defect (fixed here), (b) a documented divergence
(a docs/parity.md row), (c) an undocumented divergence (row added), (d) the page is wrong for
the reference too, or relies on asyncio.

- api/pipeline.md: 21 blocks (12 signatures), all run, 20 pass. ``pipeline.build(
  interceptors=get_default_interceptors(include_auth=True))`` raises our ValueError; 1.2.0
  adds ``AuthInterceptor()`` and ``OrgEnforcementInterceptor()``, the first with a mock
  validator that accepts any token: kept refused, the message now says why (parity row). (b) ``compose`` of a
  conflicting same-named stage keeps the right-hand spec ("Pipeline.compose" row); data are
  FrozenDicts. The duplex helpers are not in the 1.2.0 package (d); ours run as the page says.
- api/wide-events.md: 6 run, 6 pass; stage and pipeline payload keys, ``stage_details`` keys,
  custom event types and ``extra`` equal the reference's.
- api/projector.md: 3 run, 3 pass.
- api/observability.md: 4 run, 4 pass.
- api/protocols.md: 7 run, 7 pass.
- guides/tools-approval.md: 8 run, 8 pass.
- advanced/extensions.md: 2 run, 2 pass here; (c) ``ContextSnapshot[SkillsExtension](...)``
  raises TypeError on the reference (0.9.1 and 1.2.0: typing sets ``__orig_class__`` on a
  frozen slots dataclass) and works here (row added).
- guides/governance.md: 16 of 20 run (the rest are prose fragments), 13 pass on both. (d)
  ``AuthContext.to_dict()`` / ``OrgContext.to_dict()`` do not exist, ``ContextSnapshot(
  user_id=...)`` takes no flat ids, the PII redaction has 16 stars where the page shows 20.
- advanced/subpipelines.md: 5 changed blocks run, 3 pass. (a) ``ToolExecutor.
  spawn_subpipeline`` ran the child with a StageContext of ids only, so the child's stages
  lost the parent's input text, payload and ports; 1.2.0 runs the forked PipelineContext
  (fixed). (b) ``fork(correlation_id=call.call_id)`` with a non-UUID id is a ValueError here
  ("PipelineContext / CorrelationIds UUID fields" row). (d) ``spawn_subpipeline(topology=)``
  (the keyword is ``topology_override``); the cancellation block is asyncio.
- guides/tools.md: 10 changed blocks run, 8 pass on both. (d) ``registry.get("calculator")``
  by name gives None and ``registry.has`` is False; ``ToolInput.payload`` and
  ``ToolOutput.fail`` from ``stageflow.tools.base`` do not exist.
- advanced/composition.md: 4 changed blocks run, 3 pass. (d) the telemetry test asserts a drop
  that a default ``ChunkQueue`` never has (fails on the reference too); duplex as above.
- guides/authentication.md: 8 changed blocks run, 6 pass. ``include_auth=True`` (above, kept refused).
  (b) an auth failure fails the run (``UnifiedStageExecutionError``) where 1.2.0 reports the
  stage OK ("An interceptor's short-circuit with an error" row). (d) the page's
  ``AuthErrorHandlerInterceptor`` defines neither ``before`` nor ``after`` (abstract).
- api/interceptors.md: 6 changed blocks run, 5 pass. (b) the rate-limit short-circuit, as above.
- guides/interceptors.md: 5 changed blocks run, 4 pass; the ``include_auth=True`` chain is
  refused (above). (d) ``AnalyticsInterceptor`` is abstract.
- advanced/testing.md: 7 changed blocks run, 4 pass on both. (d) ``ChunkQueue(maxsize=)``,
  ``StreamingBuffer(capacity_ms=)``, ``BufferedExporter(exporter=None)`` (a TypeError on both).
- advanced/hardening.md: 7 run, 7 pass. (b) our ``PipelineRunner`` prints the stage
  lifecycle events ("Lifecycle events from UnifiedStageGraph" row).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
import trio

from stageflow_trio import (
    Pipeline,
    PipelineContext,
    StageContext,
    StageKind,
    StageOutput,
    get_default_interceptors,
)
from stageflow_trio.auth import (
    AuthContext,
    AuthInterceptor,
    MockJwtValidator,
    OrgEnforcementInterceptor,
)
from stageflow_trio.context import ContextSnapshot, ExtensionBundle, RunIdentity
from stageflow_trio.pipeline import PipelineRegistry
from stageflow_trio.pipeline.dag import UnifiedStageExecutionError
from stageflow_trio.tools.executor import ToolExecutor

# --- kept: get_default_interceptors(include_auth=True) is refused --------------------------


def test_include_auth_stays_refused_and_says_why() -> None:
    with pytest.raises(ValueError, match=r"MockJwtValidator, which accepts any token") as caught:
        get_default_interceptors(include_auth=True)
    assert "AuthInterceptor(jwt_validator=<your validator>)" in str(caught.value)


def test_the_1_2_0_chain_would_have_authenticated_a_made_up_token() -> None:
    # Why it stays refused: 1.2.0's chain puts AuthInterceptor() first, whose default
    # validator (the same mock here) turns any token without a known prefix into a user.
    claims = trio.run(MockJwtValidator().validate, "not-a-real-token")
    assert claims["user_id"]


async def test_the_chain_the_error_names_authenticates_each_stage_of_a_run() -> None:
    user, org = uuid.uuid4(), uuid.uuid4()

    async def whoami(ctx: StageContext) -> StageOutput:
        return StageOutput.ok(done=True)

    chain = [
        AuthInterceptor(jwt_validator=MockJwtValidator()),
        OrgEnforcementInterceptor(),
        *get_default_interceptors(),
    ]
    graph = Pipeline().with_stage("whoami", whoami, StageKind.TRANSFORM).build(interceptors=chain)
    ctx = PipelineContext(data={"_auth_token": f"valid_{user}_{org}_admin"})
    results = await graph.run(ctx)
    assert results["whoami"].data == {"done": True}
    auth = ctx.data.get("_auth_context")
    assert isinstance(auth, AuthContext)
    assert (auth.user_id, auth.org_id, auth.roles) == (user, org, ("admin",))

    with pytest.raises(UnifiedStageExecutionError, match="Missing authentication token"):
        await graph.run(PipelineContext())


# --- fix: ToolExecutor.spawn_subpipeline runs the forked PipelineContext -----------------


async def test_spawned_child_sees_the_parents_input_and_payload_under_its_own_ids() -> None:
    async def echo(ctx: StageContext) -> StageOutput:
        snapshot = ctx.snapshot
        return StageOutput.ok(
            text=snapshot.input_text,
            metadata=dict(snapshot.metadata),
            topology=snapshot.topology,
            run=str(snapshot.pipeline_run_id),
        )

    registry = PipelineRegistry()
    registry.register("echo", Pipeline().with_stage("echo", echo, StageKind.TRANSFORM))
    executor = ToolExecutor(registry=registry)
    parent = PipelineContext(
        pipeline_run_id=uuid.uuid4(), input_text="hello", metadata={"tier": "pro"}
    )

    result = await executor.spawn_subpipeline(
        "echo", parent, uuid.uuid4(), topology_override="child_topology"
    )

    assert result.success, result.error
    assert result.data == {
        "echo": {
            "text": "hello",
            "metadata": {"tier": "pro"},
            "topology": "child_topology",
            "run": str(result.child_run_id),
        }
    }
    assert result.child_run_id != parent.pipeline_run_id


async def test_stage_bridging_back_with_from_snapshot_reaches_the_child() -> None:
    # The subpipelines page's "Bridging StageContext Back to PipelineContext" block.
    async def child(ctx: StageContext) -> StageOutput:
        return StageOutput.ok(text=ctx.snapshot.input_text, topology=ctx.snapshot.topology)

    registry = PipelineRegistry()
    registry.register("general_chat", Pipeline().with_stage("child", child, StageKind.WORK))
    executor = ToolExecutor(registry=registry)

    async def bridge(ctx: StageContext) -> StageOutput:
        pipeline_ctx = PipelineContext.from_snapshot(
            ctx.snapshot,
            data={"invoked_by": ctx.stage_name},
            event_sink=ctx.event_sink,
            ports=ctx.inputs.ports,
        )
        pipeline_ctx.topology = "subpipeline_general"
        result = await executor.spawn_subpipeline(
            pipeline_name="general_chat", ctx=pipeline_ctx, correlation_id=uuid.uuid4()
        )
        return StageOutput.ok(child=result.data)

    results = (
        await Pipeline().with_stage("bridge", bridge, StageKind.TRANSFORM).run(input_text="hi")
    )
    assert results.data("bridge")["child"] == {
        "child": {"text": "hi", "topology": "subpipeline_general"}
    }


# --- page claims no test of ours asserted yet ------------------------------------------------


@dataclass(frozen=True)
class _Skills(ExtensionBundle):
    active_skill_ids: list[str]
    current_level: str | None = None


def test_subscripted_context_snapshot_call_builds_the_snapshot() -> None:
    # advanced/extensions.md: a TypeError on the reference (docs/parity.md row).
    run_id = uuid.uuid4()
    snapshot = ContextSnapshot[_Skills](
        run_id=RunIdentity(pipeline_run_id=run_id),
        extensions=_Skills(active_skill_ids=["python"], current_level="intermediate"),
    )
    assert snapshot.pipeline_run_id == run_id
    assert snapshot.extensions is not None
    assert "python" in snapshot.extensions.active_skill_ids


def test_fork_keeps_input_and_parent_data_and_sets_the_child_fields() -> None:
    # advanced/subpipelines.md: from_snapshot, then fork(child_run_id, parent_stage_id, ...).
    parent = PipelineContext.from_snapshot(
        ContextSnapshot(input_text="hi", topology="main"), data={"invoked_by": "dispatcher"}
    )
    child_run_id, correlation_id = uuid.uuid4(), uuid.uuid4()
    child = parent.fork(
        child_run_id=child_run_id,
        parent_stage_id="tool_dispatcher",
        correlation_id=correlation_id,
        topology="tool_calc",
        execution_mode="tool_execution",
    )
    assert (child.pipeline_run_id, child.parent_run_id) == (child_run_id, parent.pipeline_run_id)
    assert (child.parent_stage_id, child.correlation_id) == ("tool_dispatcher", correlation_id)
    assert (child.topology, child.execution_mode, child.input_text) == (
        "tool_calc",
        "tool_execution",
        "hi",
    )
    assert child.get_parent_data("invoked_by") == "dispatcher"
