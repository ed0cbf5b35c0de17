"""More cross-cutting fuzz: the callables ``test_audit15_public_api_fuzz`` had to skip.

That fuzz skips a callable when it cannot build a valid baseline call for it (no
sample for a parameter, or the baseline call fails: ``from_dict`` with ``{}``, an
empty Pipeline, a tool type). Here each of those gets hand-written valid arguments
(``SPECS``); then, as there, every argument in turn gets each of ``HOSTILE`` while
the others stay valid. For each ``from_dict``/``model_validate`` the dict itself is
also fuzzed: each key of a valid dict (``to_dict()`` of a valid instance) in turn
gets each of ``KEY_HOSTILE``. A finding is an escape of a "deep" exception type
(``DEEP``) that is not also a TypeError/ValueError, or a call that does not finish
within 5 s of virtual time. The last test asserts the findings are exactly the
commented ``ALLOWED`` cases.

Deterministic: fixed values, fresh instances for each call, ``reset_globals()`` after
each call (the helpers of the first fuzz).
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest
import trio

from stageflow_trio.core.stage_enums import StageKind
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.testing import (
    create_test_pipeline_context,
    create_test_snapshot,
    create_test_stage_context,
    reset_globals,
)
from tests.test_audit15_public_api_fuzz import (
    HOSTILE,
    Plan,
    _async_callback,
    _attempt,
    _is_finding,
    _sample,
    _settle,
)

KEY_HOSTILE: tuple[Any, ...] = (None, True, 5, "x", [], {}, object(), math.nan)

_UUID = uuid.UUID("12345678-1234-5678-1234-567812345678")
_UUID2 = uuid.UUID("87654321-4321-8765-4321-876543218765")
_WHEN = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


async def _ok(ctx: object = None) -> StageOutput:
    return StageOutput.ok()


def _v(value: Any) -> Callable[[], Any]:
    """A factory returning ``value`` (for immutable sample values)."""
    return functools.partial(_identity, value)


def _identity(value: Any) -> Any:
    return value


# --- valid instances ---------------------------------------------------------------------


def _pipeline() -> Any:
    from stageflow_trio.pipeline.pipeline import Pipeline

    return Pipeline().with_stage("a", _ok, StageKind.TRANSFORM)


def _builder() -> Any:
    from stageflow_trio.pipeline.builder import PipelineBuilder

    return PipelineBuilder("p").with_stage("a", _ok)


def _fluent() -> Any:
    from stageflow_trio.pipeline.builder_helpers import FluentPipelineBuilder

    return FluentPipelineBuilder("p").stage("a", _ok)


def _factory(index: int) -> tuple[str, Any]:
    return (f"s{index}", _ok)


def _duplex_system() -> Any:
    from stageflow_trio.pipeline.builder_helpers import DuplexLaneSpec, DuplexSystemSpec

    return DuplexSystemSpec(
        forward=DuplexLaneSpec(stages=[("f", _ok)]),
        reverse=DuplexLaneSpec(stages=[("r", _ok)]),
    )


@attrs.frozen
class _Action:
    id: uuid.UUID = _UUID
    type: str = "echo"
    payload: dict[str, Any] = attrs.field(factory=dict)


def _tool() -> Any:
    from stageflow_trio.tools.base import BaseTool, ToolOutput

    class EchoTool(BaseTool):
        name = "echo"
        description = "echo"
        action_type = "echo"

        async def execute(self, input: Any, ctx: dict[str, Any]) -> ToolOutput:  # noqa: A002
            await trio.lowlevel.checkpoint()
            return ToolOutput(success=True)

    return EchoTool()


def _tool_registry() -> Any:
    from stageflow_trio.tools.registry import ToolRegistry

    registry = ToolRegistry()
    registry.register(_tool())
    return registry


def _llm() -> Any:
    from stageflow_trio.helpers.mocks import MockLLMProvider

    return MockLLMProvider()


def _agent() -> Any:
    from stageflow_trio.agent.runtime import Agent

    return Agent(llm_client=_llm())


def _prompt_library() -> Any:
    from stageflow_trio.agent.prompts import PromptLibrary, PromptTemplate

    library = PromptLibrary()
    library.register(PromptTemplate(name="a", version="v1", template="hi {who}"))
    return library


def _memory_store() -> Any:
    from stageflow_trio.helpers.memory import InMemoryStore

    return InMemoryStore()


def _exporter() -> Any:
    from tests.fakes import RecordingExporter

    return RecordingExporter()


@attrs.frozen
class _Model:
    a: int = 1


def _chunk_queue() -> Any:
    from stageflow_trio.helpers.streaming import ChunkQueue

    return ChunkQueue()


async def _queue_get() -> Any:
    """``get`` takes no argument: only its valid call, on a non-empty queue."""
    queue = _chunk_queue()
    await queue.put("a")
    return await queue.get()


async def _queue_get_nowait() -> Any:
    """``get_nowait`` takes no argument: only its valid call, on a non-empty queue."""
    queue = _chunk_queue()
    await queue.put("a")
    return queue.get_nowait()


async def _approval_service(*, decided: bool) -> Any:
    from stageflow_trio.tools.approval import ApprovalRequest, ApprovalService

    service = ApprovalService()
    await service.backend.add(ApprovalRequest(id=_UUID, action_id=_UUID2, tool_name="t"))
    if decided:
        await service.record_decision(_UUID, True)
    return service


async def _await_decision(request_id: Any, timeout_seconds: Any = None) -> Any:
    """``ApprovalService.await_decision`` on a service holding a decided request ``_UUID``."""
    service = await _approval_service(decided=True)
    return await service.await_decision(request_id, timeout_seconds)


async def _record_decision(
    request_id: Any, granted: Any, decided_by: Any = None, reason: Any = None
) -> Any:
    """``ApprovalService.record_decision`` on a service holding a pending request ``_UUID``."""
    service = await _approval_service(decided=False)
    return await service.record_decision(request_id, granted, decided_by, reason)


def _log_record() -> logging.LogRecord:
    return logging.LogRecord("n", logging.INFO, "p", 1, "msg %s", ("a",), None)


def _contract_registry() -> Any:
    from stageflow_trio.contracts.registry import ContractRegistry

    registry = ContractRegistry()
    registry.register(stage="a", version="1", model=_Model)
    registry.register(stage="a", version="2", model=_Model)
    return registry


# --- the specs: qualified name -> (callable to call, valid arguments) --------------------


@attrs.frozen
class Spec:
    target: Callable[[], Any]  # returns the callable (a fresh one per call)
    valid: dict[str, Callable[[], Any]] = attrs.field(factory=dict)


def _m(owner: Callable[[], Any], method: str) -> Callable[[], Any]:
    return functools.partial(_bound_method, owner, method)


def _bound_method(owner: Callable[[], Any], method: str) -> Any:
    return getattr(owner(), method)


def _new(path: str) -> Callable[[], Any]:
    """A factory of fresh instances of the class at ``path`` (no arguments)."""
    return functools.partial(_instantiate, path)


def _instantiate(path: str) -> Any:
    return _import(path)()


def _imp(path: str) -> Callable[[], Any]:
    return functools.partial(_import, path)


def _import(path: str) -> Any:
    import importlib

    module, _, attr = path.rpartition(".")
    obj: Any = importlib.import_module(module)
    for part in attr.split("/"):
        obj = getattr(obj, part)
    return obj


_TRIO = "stageflow_trio."


def _specs() -> dict[str, Spec]:
    from stageflow_trio.agent.prompts import PromptLibrary
    from stageflow_trio.pipeline.cancellation import CancellationToken, CleanupRegistry
    from stageflow_trio.pipeline.registry import PipelineRegistry
    from stageflow_trio.stages.inputs import create_stage_inputs
    from stageflow_trio.stages.payloads import StagePayloadResult
    from stageflow_trio.testing.faults import Fault, FaultPlan
    from stageflow_trio.tools.undo import UndoStore

    def registry_with_pipeline() -> PipelineRegistry:
        registry = PipelineRegistry()
        registry.register("a", _pipeline())
        return registry

    def cleanup_registry() -> CleanupRegistry:
        registry = CleanupRegistry()
        registry.register(_async_callback)
        return registry

    def inputs_with_a() -> Any:
        return create_stage_inputs(
            create_test_snapshot(),
            prior_outputs={"a": StageOutput.ok(data={"a": 1})},
            declared_deps=frozenset({"a"}),
        )

    def payload_result() -> StagePayloadResult[Any]:
        return StagePayloadResult(payload={"a": 1})

    specs: dict[str, Spec] = {
        "agent.prompts.PromptLibrary.get": Spec(_m(_prompt_library, "get"), {"name": _v("a")}),
        "agent.prompts.PromptLibrary.render": Spec(
            _m(_prompt_library, "render"), {"name": _v("a"), "variables": lambda: {"who": "b"}}
        ),
        "agent.runtime.Agent": Spec(_imp(_TRIO + "agent.runtime.Agent"), {"llm_client": _llm}),
        "agent.runtime.AgentTurn": Spec(
            _imp(_TRIO + "agent.runtime.AgentTurn"), {"final_answer": _v("done")}
        ),
        "agent.stage.AgentStage": Spec(_imp(_TRIO + "agent.stage.AgentStage"), {"agent": _agent}),
        "agent.validation.TypedLLMOutput": Spec(
            _imp(_TRIO + "agent.validation.TypedLLMOutput"), {"model": _v(_Model)}
        ),
        "auth.jwt.SignedJwtValidator": Spec(
            _imp(_TRIO + "auth.jwt.SignedJwtValidator"),
            {"algorithms": _v(("HS256",)), "key": _v("secret-key-of-enough-length-32b!")},
        ),
        "context.context_snapshot.ContextSnapshot.with_extensions": Spec(
            _m(create_test_snapshot, "with_extensions"), {"extensions": dict}
        ),
        "contracts.registry.ContractMetadata": Spec(
            _imp(_TRIO + "contracts.registry.ContractMetadata"),
            {"stage": _v("a"), "version": _v("1"), "model": _v(_Model), "schema": dict},
        ),
        "contracts.registry.ContractRegistry.diff": Spec(
            _m(_contract_registry, "diff"),
            {"stage": _v("a"), "from_version": _v("1"), "to_version": _v("2")},
        ),
        "contracts.registry.ContractRegistry.register": Spec(
            _m(_new(_TRIO + "contracts.registry.ContractRegistry"), "register"),
            {"stage": _v("a"), "version": _v("1"), "model": _v(_Model)},
        ),
        "contracts.typed_output.TypedStageOutput": Spec(
            _imp(_TRIO + "contracts.typed_output.TypedStageOutput"), {"model": _v(_Model)}
        ),
        "core.stage_output.StageOutput.retry": Spec(
            _imp(_TRIO + "core.stage_output.StageOutput/retry"), {"error": _v("boom")}
        ),
        "extensions.ExtensionHelper.get": Spec(
            _imp(_TRIO + "extensions.ExtensionHelper/get"),
            {"data": lambda: {"k": {"a": 2}}, "key": _v("k"), "ext_type": _v(_Model)},
        ),
        "extensions.ExtensionRegistry.register": Spec(
            _imp(_TRIO + "extensions.ExtensionRegistry/register"),
            {"key": _v("k"), "extension_type": _v(_Model)},
        ),
        "helpers.analytics.AnalyticsSink": Spec(
            _imp(_TRIO + "helpers.analytics.AnalyticsSink"), {"exporter": _exporter}
        ),
        "helpers.analytics.BufferedExporter": Spec(
            _imp(_TRIO + "helpers.analytics.BufferedExporter"), {"exporter": _exporter}
        ),
        "helpers.memory.MemoryFetchStage": Spec(
            _imp(_TRIO + "helpers.memory.MemoryFetchStage"), {"store": _memory_store}
        ),
        "helpers.memory.MemoryWriteStage": Spec(
            _imp(_TRIO + "helpers.memory.MemoryWriteStage"), {"store": _memory_store}
        ),
        "helpers.run_utils.JsonLogFormatter.format": Spec(
            _m(_new(_TRIO + "helpers.run_utils.JsonLogFormatter"), "format"),
            {"record": _log_record},
        ),
        "helpers.run_utils.PipelineRunner.run": Spec(
            _m(functools.partial(_runner_quiet), "run"), {"pipeline": _pipeline}
        ),
        "helpers.run_utils.run_simple_pipeline": Spec(
            _imp(_TRIO + "helpers.run_utils.run_simple_pipeline"),
            {"pipeline": _pipeline, "input_text": _v("hi")},
        ),
        "helpers.streaming.ChunkQueue.get": Spec(_v(_queue_get)),
        "helpers.streaming.ChunkQueue.get_nowait": Spec(_v(_queue_get_nowait)),
        "helpers.streaming.ChunkQueue.put": Spec(_m(_chunk_queue, "put"), {"item": _v("b")}),
        "observability.tracing.StageflowTracer.inject_context": Spec(
            _m(_new(_TRIO + "observability.tracing.StageflowTracer"), "inject_context"),
            {"carrier": dict},
        ),
        "pipeline.builder.PipelineBuilder.build": Spec(_m(_builder, "build")),
        "pipeline.builder_helpers.FluentPipelineBuilder.build": Spec(_m(_fluent, "build")),
        "pipeline.builder_helpers.FluentPipelineBuilder.duplex": Spec(
            _m(_fluent, "duplex"),
            {"forward": lambda: [("f", _ok)], "reverse": lambda: [("r", _ok)]},
        ),
        "pipeline.builder_helpers.FluentPipelineBuilder.fan_out_fan_in": Spec(
            _m(_fluent, "fan_out_fan_in"),
            {
                "fan_out": lambda: ("fo", _ok),
                "parallel_count": _v(2),
                "parallel_factory": _v(_factory),
                "fan_in": lambda: ("fi", _ok),
            },
        ),
        "pipeline.builder_helpers.FluentPipelineBuilder.linear_chain": Spec(
            _m(_fluent, "linear_chain"), {"count": _v(2), "factory": _v(_factory)}
        ),
        "pipeline.builder_helpers.FluentPipelineBuilder.parallel": Spec(
            _m(_fluent, "parallel"), {"count": _v(2), "factory": _v(_factory)}
        ),
        "pipeline.builder_helpers.with_conditional_branch": Spec(
            _imp(_TRIO + "pipeline.builder_helpers.with_conditional_branch"),
            {
                "builder": _builder,
                "router_stage": lambda: ("router", _ok),
                "branches": lambda: {"x": ("bx", _ok)},
            },
        ),
        "pipeline.builder_helpers.with_duplex_system": Spec(
            _imp(_TRIO + "pipeline.builder_helpers.with_duplex_system"),
            {"builder": _builder, "system": _duplex_system},
        ),
        "pipeline.builder_helpers.with_fan_out_fan_in": Spec(
            _imp(_TRIO + "pipeline.builder_helpers.with_fan_out_fan_in"),
            {
                "builder": _builder,
                "fan_out_stage": lambda: ("fo", _ok),
                "parallel_count": _v(2),
                "parallel_factory": _v(_factory),
                "fan_in_stage": lambda: ("fi", _ok),
            },
        ),
        "pipeline.builder_helpers.with_linear_chain": Spec(
            _imp(_TRIO + "pipeline.builder_helpers.with_linear_chain"),
            {"builder": _builder, "count": _v(2), "stage_factory": _v(_factory)},
        ),
        "pipeline.builder_helpers.with_parallel_stages": Spec(
            _imp(_TRIO + "pipeline.builder_helpers.with_parallel_stages"),
            {"builder": _builder, "count": _v(2), "stage_factory": _v(_factory)},
        ),
        "pipeline.cancellation.CancellationToken.bind_scope": Spec(
            _m(CancellationToken, "bind_scope"), {"scope": trio.CancelScope}
        ),
        "pipeline.cancellation.CleanupRegistry.name_of": Spec(
            _m(cleanup_registry, "name_of"), {"callback": _v(_async_callback)}
        ),
        "pipeline.cancellation.run_with_cleanup": Spec(
            _imp(_TRIO + "pipeline.cancellation.run_with_cleanup"),
            {"coro": lambda: _async_callback(), "cleanup": _v(_async_callback)},
        ),
        "pipeline.pipeline.Pipeline.build": Spec(_m(_pipeline, "build")),
        "pipeline.pipeline.Pipeline.invoke": Spec(_m(_pipeline, "invoke")),
        "pipeline.pipeline.Pipeline.run": Spec(_m(_pipeline, "run")),
        "pipeline.pipeline.Pipeline.with_stage": Spec(
            _m(_pipeline, "with_stage"),
            {"name": _v("b"), "runner": _v(_ok), "kind": _v(StageKind.TRANSFORM)},
        ),
        "pipeline.pipeline.run_stage": Spec(
            _imp(_TRIO + "pipeline.pipeline.run_stage"),
            {"name": _v("a"), "runner": _v(_ok), "kind": _v(StageKind.TRANSFORM)},
        ),
        "pipeline.pipeline.stage": Spec(
            _imp(_TRIO + "pipeline.pipeline.stage"),
            {"name": _v("a"), "runner": _v(_ok), "kind": _v(StageKind.TRANSFORM)},
        ),
        "pipeline.registry.PipelineRegistry.get": Spec(
            _m(registry_with_pipeline, "get"), {"name": _v("a")}
        ),
        "pipeline.validation.ensure_non_empty": Spec(
            _imp(_TRIO + "pipeline.validation.ensure_non_empty"),
            {"stages": lambda: {"a": _builder().stages["a"]}, "message": _v("empty")},
        ),
        "stages.inputs.StageInputs.require_from": Spec(
            _m(inputs_with_a, "require_from"), {"stage_name": _v("a"), "key": _v("a")}
        ),
        "stages.inputs.UndeclaredDependencyError": Spec(
            _imp(_TRIO + "stages.inputs.UndeclaredDependencyError"),
            {"stage_name": _v("a"), "declared_deps": _v(frozenset({"b"}))},
        ),
        "stages.payloads.StagePayloadResult": Spec(
            _imp(_TRIO + "stages.payloads.StagePayloadResult"), {"payload": dict}
        ),
        "stages.payloads.cancel_output": Spec(
            _imp(_TRIO + "stages.payloads.cancel_output"), {"result": payload_result}
        ),
        "stages.payloads.ok_output": Spec(
            _imp(_TRIO + "stages.payloads.ok_output"), {"result": payload_result}
        ),
        "stages.payloads.payload_from_inputs": Spec(
            _imp(_TRIO + "stages.payloads.payload_from_inputs"),
            {"ctx_or_inputs": _payload_inputs, "stage_name": _v("a")},
        ),
        "stages.payloads.payload_from_results": Spec(
            _imp(_TRIO + "stages.payloads.payload_from_results"),
            {"results": lambda: {"a": _payload_output()}, "stage_name": _v("a")},
        ),
        "testing.faults.Fault": Spec(
            _imp(_TRIO + "testing.faults.Fault"),
            {"stage": _v("a"), "action": _v("raise"), "error": lambda: ValueError("boom")},
        ),
        "testing.faults.FaultPlan.add": Spec(
            _m(FaultPlan, "add"), {"fault": lambda: Fault("a", "raise", error=ValueError("boom"))}
        ),
        "tools.approval.ApprovalService.await_decision": Spec(
            _v(_await_decision), {"request_id": _v(_UUID)}
        ),
        "tools.approval.ApprovalService.record_decision": Spec(
            _v(_record_decision), {"request_id": _v(_UUID), "granted": _v(True)}
        ),
        "tools.base.ToolInput": Spec(_imp(_TRIO + "tools.base.ToolInput"), {"action": _Action}),
        "tools.definitions.ToolInput.from_action": Spec(
            _imp(_TRIO + "tools.definitions.ToolInput/from_action"),
            {"action": _Action, "tool_name": _v("echo")},
        ),
        "tools.diff.diff_json": Spec(
            _imp(_TRIO + "tools.diff.diff_json"), {"old": lambda: {"a": 1}, "new": lambda: {"a": 2}}
        ),
        "tools.executor.ToolExecutor.spawn_subpipeline": Spec(
            _m(_executor_with_pipeline, "spawn_subpipeline"),
            {
                "pipeline_name": _v("a"),
                "ctx": create_test_pipeline_context,
                "correlation_id": _v(_UUID),
            },
        ),
        "tools.registry.ResolvedToolCall": Spec(
            _imp(_TRIO + "tools.registry.ResolvedToolCall"),
            {"tool": _tool, "call_id": _v("c"), "name": _v("echo"), "arguments": dict},
        ),
        "tools.registry.ToolRegistry.execute": Spec(
            _m(_tool_registry, "execute"), {"action": _Action, "ctx": dict}
        ),
        "tools.registry.ToolRegistry.register": Spec(
            _m(_new(_TRIO + "tools.registry.ToolRegistry"), "register"), {"tool": _tool}
        ),
        "tools.registry.ToolRegistry.register_tool": Spec(
            _m(_new(_TRIO + "tools.registry.ToolRegistry"), "register_tool"), {"tool": _tool}
        ),
        "tools.registry.register_tool": Spec(
            _imp(_TRIO + "tools.registry.register_tool"), {"tool_instance": _tool}
        ),
        "tools.undo.UndoStore.store": Spec(
            _m(UndoStore, "store"),
            {"action_id": _v(_UUID), "tool_name": _v("t"), "undo_data": lambda: {"a": 1}},
        ),
        "core.stage_context.StageContext.register_cleanup": Spec(
            _m(_ctx_with_cleanup, "register_cleanup"), {"callback": _v(_async_callback)}
        ),
    }
    del PromptLibrary
    return {_TRIO + name: spec for name, spec in specs.items()}


def _executor_with_pipeline() -> Any:
    from stageflow_trio.pipeline.registry import PipelineRegistry
    from stageflow_trio.tools.executor import ToolExecutor

    registry = PipelineRegistry()
    registry.register("a", _pipeline())
    return ToolExecutor(registry=registry)


def _runner_quiet() -> Any:
    from stageflow_trio.helpers.run_utils import PipelineRunner

    return PipelineRunner(verbose=False)


def _payload_output() -> StageOutput:
    from stageflow_trio.stages.payloads import StagePayloadResult, ok_output

    return ok_output(StagePayloadResult(payload={"a": 1}))


def _payload_inputs() -> Any:
    from stageflow_trio.stages.inputs import create_stage_inputs

    return create_stage_inputs(
        create_test_snapshot(),
        prior_outputs={"a": _payload_output()},
        declared_deps=frozenset({"a"}),
    )


def _ctx_with_cleanup() -> Any:
    from stageflow_trio.pipeline.cancellation import CleanupRegistry

    ctx = create_test_stage_context()
    return attrs.evolve(ctx, cleanup_registry=CleanupRegistry()) if attrs.has(type(ctx)) else ctx


# --- from_dict: a valid dict per type ------------------------------------------------------


def _valid_dicts() -> dict[str, tuple[Callable[[], Any], Callable[[], dict[str, Any]]]]:
    from stageflow_trio.context.conversation import Conversation
    from stageflow_trio.context.enrichments import (
        DocumentEnrichment,
        Enrichments,
        MemoryEnrichment,
        ProfileEnrichment,
    )
    from stageflow_trio.context.identity import RunIdentity
    from stageflow_trio.context.types import Message, RoutingDecision
    from stageflow_trio.contracts.errors import ContractErrorInfo
    from stageflow_trio.helpers.analytics import AnalyticsEvent
    from stageflow_trio.helpers.memory import MemoryEntry
    from stageflow_trio.helpers.streaming import AudioChunk
    from stageflow_trio.projector.service import (
        WSMetadata,
        WSOutboundMessage,
        WSStatusUpdatePayload,
    )
    from stageflow_trio.tools.definitions import UndoMetadata

    def message() -> Message:
        return Message(role="user", content="hi", timestamp=_WHEN, metadata={"a": 1})

    instances: dict[Any, Callable[[], Any]] = {
        Message: message,
        RoutingDecision: lambda: RoutingDecision(agent_id="a", pipeline_name="p", topology="t"),
        ContractErrorInfo: lambda: ContractErrorInfo(code="C1", summary="s", fix_hint="f"),
        AnalyticsEvent: lambda: AnalyticsEvent(
            event_type="e",
            timestamp=_WHEN,
            data={"a": 1},
            pipeline_run_id=_UUID,
            stage_name="s",
            duration_ms=1.0,
            metadata={"m": 1},
        ),
        MemoryEntry: lambda: MemoryEntry(
            id="m1", session_id=_UUID, role="user", content="c", timestamp=_WHEN
        ),
        AudioChunk: lambda: AudioChunk(data=b"\x00\x00", metadata={"a": 1}),
        UndoMetadata: lambda: UndoMetadata(
            action_id=_UUID, tool_name="t", undo_data={"a": 1}, created_at=_WHEN.isoformat()
        ),
        Conversation: lambda: Conversation(messages=[message()]),
        RunIdentity: lambda: RunIdentity(pipeline_run_id=_UUID, request_id=_UUID2),
        ProfileEnrichment: lambda: ProfileEnrichment(user_id=_UUID, display_name="d"),
        MemoryEnrichment: lambda: MemoryEnrichment(recent_topics=["t"], key_facts=["f"]),
        DocumentEnrichment: lambda: DocumentEnrichment(document_id="d", document_type="t"),
        Enrichments: lambda: Enrichments(
            profile=ProfileEnrichment(user_id=_UUID), memory=MemoryEnrichment()
        ),
    }
    table: dict[str, tuple[Callable[[], Any], Callable[[], dict[str, Any]]]] = {}
    for cls, make in instances.items():
        name = f"{cls.__module__}.{cls.__qualname__}.from_dict"
        table[name] = (_v(cls.from_dict), functools.partial(_to_dict, make))
    snapshot_dict = functools.partial(_to_dict, create_test_snapshot)
    table[_TRIO + "context.context_snapshot.ContextSnapshot.from_dict"] = (
        _imp(_TRIO + "context.context_snapshot.ContextSnapshot/from_dict"),
        snapshot_dict,
    )
    table[_TRIO + "projector.service.WSMetadata.model_validate"] = (
        _v(WSMetadata.model_validate),
        lambda: {"request_id": str(_UUID), "pipeline_run_id": str(_UUID2)},
    )
    table[_TRIO + "projector.service.WSOutboundMessage.model_validate"] = (
        _v(WSOutboundMessage.model_validate),
        lambda: {
            "type": "t",
            "payload": {"a": 1},
            "metadata": {"request_id": str(_UUID), "pipeline_run_id": str(_UUID2)},
        },
    )
    table[_TRIO + "projector.service.WSStatusUpdatePayload.model_validate"] = (
        _v(WSStatusUpdatePayload.model_validate),
        lambda: {"service": "s", "status": "ok"},
    )
    return table


def _to_dict(make: Callable[[], Any]) -> dict[str, Any]:
    return dict(make().to_dict())


# --- the run ------------------------------------------------------------------------------


class SpecPlan(Plan):
    """A :class:`Plan` whose required arguments come from a :class:`Spec` first."""

    def __init__(self, name: str, spec: Spec) -> None:
        super().__init__(name, spec.target)
        self.spec = spec

    def build(self) -> bool:
        try:
            sig = inspect.signature(self.target())
        except (TypeError, ValueError) as exc:
            self.why = f"no signature: {exc}"
            return False
        for param in sig.parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            self.params.append(param)
            if param.name in self.spec.valid:
                self.valid[param.name] = self.spec.valid[param.name]
                continue
            if param.default is not param.empty:
                continue
            factory = _sample(self.name, param)
            if not callable(factory):
                self.why = f"no sample for {param.name}: {param.annotation}"
                return False
            self.valid[param.name] = factory
        return True


Finding = tuple[str, str, str]  # (callable, parameter or dict key, exception type)


async def _attempt_dict(func: Callable[[], Any], data: dict[str, Any]) -> BaseException | None:
    try:
        with trio.fail_after(5):
            await _settle(func()(data))
    except Exception as exc:
        return exc
    finally:
        reset_globals()
    return None


async def collect() -> tuple[dict[Finding, list[str]], list[str], int]:
    """(findings with the hostile values that hit them, callables skipped, calls made)."""
    findings: dict[Finding, list[str]] = {}
    skipped: list[str] = []
    calls = 0
    for name, spec in sorted(_specs().items()):
        plan = SpecPlan(name, spec)
        if not plan.build() or (await _attempt(plan, None)) is not None:
            skipped.append(f"{name}: {plan.why}")
            continue
        for param in plan.params:
            for bad in HOSTILE:
                calls += 1
                exc = await _attempt(plan, (param.name, bad))
                if _is_finding(exc):
                    key = (name, param.name, type(exc).__name__)
                    findings.setdefault(key, []).append(repr(bad))
    for name, (func, make) in sorted(_valid_dicts().items()):
        baseline = await _attempt_dict(func, make())
        if baseline is not None:
            skipped.append(f"{name}: baseline raised {type(baseline).__name__}: {baseline}")
            continue
        for field in make():
            for bad in KEY_HOSTILE:
                calls += 1
                data = make()
                data[field] = bad
                exc = await _attempt_dict(func, data)
                if _is_finding(exc):
                    finding = (name, f"data[{field!r}]", type(exc).__name__)
                    findings.setdefault(finding, []).append(repr(bad))
    return findings, skipped, calls


# --- the fixes this fuzz led to (each failed before its fix) ----------------------------


@pytest.mark.parametrize("bad", [None, 5, "x", object()])
async def test_approval_service_refuses_a_non_uuid_request_id(
    bad: object, autojump_clock: trio.abc.Clock
) -> None:
    with pytest.raises(
        TypeError, match=r"^ApprovalService.await_decision: request_id must be a UUID; got "
    ):
        await _await_decision(bad)
    with pytest.raises(
        TypeError, match=r"^ApprovalService.record_decision: request_id must be a UUID; got "
    ):
        await _record_decision(bad, True)


@pytest.mark.parametrize("bad", [5, True, [], {}, object(), math.nan])
def test_undo_metadata_from_dict_refuses_a_non_str_action_id(bad: object) -> None:
    from stageflow_trio.tools.definitions import UndoMetadata

    data = {"action_id": bad, "tool_name": "t", "undo_data": {}}
    with pytest.raises(
        TypeError, match=r"^UndoMetadata.from_dict: action_id must be a UUID string; got "
    ):
        UndoMetadata.from_dict(data)


@pytest.mark.parametrize("bad", [None, 5, "x", {}, object()])
def test_tool_input_from_action_refuses_a_non_action(bad: object) -> None:
    from stageflow_trio.tools.definitions import ToolInput

    with pytest.raises(TypeError, match=r"^ToolInput.from_action: action must be an Action "):
        ToolInput.from_action(bad, "echo")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [5, "x", {}, object()])
def test_tool_input_from_action_refuses_a_non_context(bad: object) -> None:
    from stageflow_trio.tools.definitions import ToolInput

    with pytest.raises(
        TypeError, match=r"^ToolInput.from_action: ctx must be an ExecutionContext "
    ):
        ToolInput.from_action(_Action(), "echo", bad)  # type: ignore[arg-type]
    assert ToolInput.from_action(_Action(), "echo", create_test_pipeline_context()).tool_name == (
        "echo"
    )


@pytest.mark.parametrize("bad", [None, 5, "x", {}, object()])
async def test_tool_registry_execute_refuses_a_non_action(bad: object) -> None:
    with pytest.raises(
        TypeError, match=r"^ToolRegistry.execute: action must be an action with a str type; got "
    ):
        await _tool_registry().execute(bad, {})


@pytest.mark.parametrize("bad", [None, "x", {}, object()])
def test_json_log_formatter_refuses_a_non_record(bad: object) -> None:
    from stageflow_trio.helpers.run_utils import JsonLogFormatter

    with pytest.raises(
        TypeError, match=r"^JsonLogFormatter.format: record must be a logging.LogRecord; got "
    ):
        JsonLogFormatter().format(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [None, 5, b"x", object()])
def test_pipeline_registry_get_refuses_a_non_str_name(bad: object) -> None:
    from stageflow_trio.pipeline.registry import PipelineRegistry

    with pytest.raises(TypeError, match=r"^name must be a str, got "):
        PipelineRegistry().get(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [None, 5, "x", [], {}, object()])
def test_payload_from_inputs_refuses_a_non_context(bad: object) -> None:
    from stageflow_trio.stages.payloads import payload_from_inputs

    with pytest.raises(
        TypeError,
        match=r"^payload_from_inputs: ctx_or_inputs must be a StageContext or StageInputs; got ",
    ):
        payload_from_inputs(bad, "a")  # type: ignore[arg-type]
    assert payload_from_inputs(_payload_inputs(), "a") == {"a": 1}


@pytest.mark.parametrize("bad", [None, 5, b"x", object()])
def test_payload_from_results_refuses_a_non_str_stage_name(bad: object) -> None:
    from stageflow_trio.stages.payloads import payload_from_results

    with pytest.raises(TypeError, match=r"^payload_from_results: stage_name must be a str; got "):
        payload_from_results({"a": _payload_output()}, bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [None, 5, "x", [], object()])
def test_payload_from_results_refuses_a_non_mapping(bad: object) -> None:
    from stageflow_trio.stages.payloads import payload_from_results

    with pytest.raises(
        TypeError, match=r"^payload_from_results: results must be a mapping of stage outputs "
    ):
        payload_from_results(bad, "a")  # type: ignore[arg-type]
    assert payload_from_results({"a": _payload_output()}, "a") == {"a": 1}


_MISS = "a str naming nothing: the documented lookup KeyError ('not found'), as the reference"

# (callable, parameter, escaping exception type) -> (the hostile values allowed to hit it,
# why it stays). Every other hostile value must not escape that way.
ALLOWED: dict[Finding, tuple[frozenset[str], str]] = {
    (f"{_TRIO}agent.prompts.PromptLibrary.get", "name", "KeyError"): (
        frozenset({"''", "'x'"}),
        _MISS,
    ),
    (f"{_TRIO}agent.prompts.PromptLibrary.get", "version", "KeyError"): (
        frozenset({"'x'"}),
        _MISS,
    ),
    (f"{_TRIO}agent.prompts.PromptLibrary.render", "name", "KeyError"): (
        frozenset({"''", "'x'"}),
        _MISS,
    ),
    (f"{_TRIO}agent.prompts.PromptLibrary.render", "version", "KeyError"): (
        frozenset({"'x'"}),
        _MISS,
    ),
    (f"{_TRIO}pipeline.registry.PipelineRegistry.get", "name", "KeyError"): (
        frozenset({"''", "'x'"}),
        _MISS,
    ),
    (f"{_TRIO}tools.executor.ToolExecutor.spawn_subpipeline", "pipeline_name", "KeyError"): (
        frozenset({"''", "'x'"}),
        _MISS + " (PipelineRegistry.get's)",
    ),
    (f"{_TRIO}stages.inputs.StageInputs.require_from", "key", "KeyError"): (
        frozenset({"'x'"}),
        "documented: KeyError when the dependency's output has no such key (as the reference)",
    ),
    (f"{_TRIO}stages.payloads.payload_from_results", "stage_name", "KeyError"): (
        frozenset({"''", "'x'"}),
        "documented: KeyError 'Stage ... not found in pipeline results' (as require_ok)",
    ),
    (f"{_TRIO}stages.payloads.payload_from_results", "results", "KeyError"): (
        frozenset({"{}"}),
        "an empty mapping holds no such stage: the documented 'not found' KeyError",
    ),
}


async def test_more_public_api_fuzz_finds_only_allowed_escapes(
    autojump_clock: trio.abc.Clock,
) -> None:
    findings, skipped, calls = await collect()
    assert skipped == []  # every spec has a valid baseline call
    assert calls > 3_000
    unexpected = {
        key: values
        for key, values in findings.items()
        if key not in ALLOWED or not set(values) <= ALLOWED[key][0]
    }
    assert unexpected == {}
    assert set(ALLOWED) <= set(findings), "an allowlisted case no longer escapes"
