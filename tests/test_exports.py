"""Pin the public surface: every ``__all__`` name imports, and checklist names match the reference.

For every module that exists both here and in stageflow-core 0.9.1, the set of
checklist names it exports equals the reference's, except names defined in a
reference module that stageflow_trio has not ported yet (those appear with
their module).
"""

from __future__ import annotations

import importlib
import pkgutil
import typing
from types import ModuleType

import attrs
import pytest

import stageflow_trio

CHECKLIST_NAMES = frozenset(
    """
    StageKind StageStatus StageOutput StageArtifact StageEvent StageContext PipelineTimer
    create_stage_context Stage
    RunIdentity Conversation Message RoutingDecision Enrichments ProfileEnrichment
    MemoryEnrichment DocumentEnrichment ExtensionBundle ContextSnapshot ContextBag
    DataConflictError OutputBag OutputEntry OutputConflictError
    PipelineContext StageInputs UndeclaredDependencyError create_stage_inputs CorePorts LLMPorts
    AudioPorts create_core_ports create_llm_ports create_audio_ports StageError StageResult
    PipelineSpec StageRunner PipelineValidationError PipelineBuilder CycleDetectedError
    with_linear_chain with_parallel_stages with_fan_out_fan_in with_conditional_branch
    FluentPipelineBuilder StageGraph StageSpec StageExecutionError Pipeline UnifiedStageSpec
    GuardRetryPolicy GuardRetryStrategy hash_retry_payload RetryInterceptor BackoffStrategy
    JitterStrategy TransientError RateLimitError ServiceUnavailableError ChildRunTracker
    get_child_tracker set_child_tracker clear_child_tracker DEFAULT_MAX_SUBPIPELINE_DEPTH
    MaxDepthExceededError SubpipelineSpawner PipelineSpawnedChildEvent
    PipelineChildCompletedEvent PipelineChildFailedEvent PipelineCanceledEvent
    get_subpipeline_spawner set_subpipeline_spawner clear_subpipeline_spawner SubpipelineResult
    UnifiedStageGraph UnifiedStageExecutionError UnifiedPipelineCancelled
    CancellationToken CleanupRegistry StructuredTaskGroup cleanup_on_cancel run_with_cleanup
    IdempotencyInterceptor IdempotencyStore InMemoryIdempotencyStore CachedStageResult
    IdempotencyParamMismatch
    BaseInterceptor InterceptorResult InterceptorContext InterceptorError
    CriticalInterceptorError ErrorAction get_default_interceptors run_with_interceptors
    TimeoutInterceptor CircuitBreakerInterceptor TracingInterceptor MetricsInterceptor
    ChildTrackerMetricsInterceptor LoggingInterceptor
    ImmutabilityInterceptor ContextSizeInterceptor
    EventSink get_event_sink set_event_sink clear_event_sink emit_event register_event_sink
    NoOpEventSink LoggingEventSink BackpressureMetrics BackpressureAwareEventSink
    wait_for_event_sink_tasks
    WideEventEmitter emit_stage_wide_event emit_pipeline_wide_event
    DictContextAdapter adapt_context
    Tool BaseTool ToolRegistry get_tool_registry clear_tool_registry register_tool tool
    ResolvedToolCall UnresolvedToolCall
    ToolDefinition ToolHandler UndoHandler Action ToolInput ToolOutput UndoMetadata ToolError
    ToolNotFoundError ToolDeniedError ToolApprovalDeniedError ToolApprovalTimeoutError
    ToolUndoError ToolExecutionError ApprovalStatus ApprovalRequest ApprovalDecision
    ApprovalService get_approval_service set_approval_service clear_approval_service UndoStore
    get_undo_store set_undo_store clear_undo_store AdvancedToolExecutor ToolExecutorConfig
    ExecutionResult ToolEventBase ToolInvokedEvent ToolStartedEvent ToolCompletedEvent
    ToolFailedEvent ToolDeniedEvent ApprovalRequestedEvent ApprovalDecidedEvent ToolUndoneEvent
    ToolUndoFailedEvent
    AnalyticsEvent AnalyticsExporter JSONFileExporter ConsoleExporter BufferedExporter
    CompositeExporter AnalyticsSink AudioChunk AudioFormat BackpressureMonitor BackpressureStats
    ChunkQueue StreamingBuffer encode_audio_for_logging calculate_audio_duration_ms
    ContractErrorInfo ContractSuggestion get_contract_suggestion register_suggestion
    FrozenDict FrozenList ExtensionRegistry ExtensionHelper TypedExtension ExecutionContext
    """.split()
)


def _our_modules() -> list[ModuleType]:
    modules = [stageflow_trio]
    for info in pkgutil.walk_packages(stageflow_trio.__path__, "stageflow_trio."):
        if any(part.startswith("_") for part in info.name.split(".")[1:]):
            continue
        modules.append(importlib.import_module(info.name))
    return modules


MODULES = _our_modules()


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_every_name_in_all_imports(module: ModuleType) -> None:
    names = getattr(module, "__all__", None)
    assert names is not None, f"{module.__name__} has no __all__"
    assert len(names) == len(set(names)), f"{module.__name__}.__all__ repeats a name"
    missing = [name for name in names if not hasattr(module, name)]
    assert missing == []


def _all_modules() -> list[ModuleType]:
    """Every module of the package, private ones included."""
    names = [
        info.name for info in pkgutil.walk_packages(stageflow_trio.__path__, "stageflow_trio.")
    ]
    return [stageflow_trio, *(importlib.import_module(name) for name in names)]


def _is_private(module_name: str) -> bool:
    return any(part.startswith("_") for part in module_name.split(".")[1:])


def _exported_objects() -> list[tuple[str, object]]:
    found: dict[int, tuple[str, object]] = {}
    for module in MODULES:
        for name in getattr(module, "__all__", ()):
            value = getattr(module, name)
            home = getattr(value, "__module__", None)
            if (
                (isinstance(value, type) or callable(value))
                and isinstance(home, str)
                and home.startswith("stageflow_trio")
            ):
                found.setdefault(id(value), (f"{module.__name__}.{name}", value))
    return sorted(found.values(), key=lambda item: item[0])


@pytest.mark.parametrize(("path", "value"), _exported_objects(), ids=lambda value: str(value))
def test_module_is_the_public_path(path: str, value: object) -> None:
    """STYLE rule 1: ``__module__`` names a public module that exports the object.

    So reprs, tracebacks and pickles show the path users import, never a private one.
    """
    home = value.__module__
    assert not _is_private(home), f"{path} reports the private module {home}"
    module = importlib.import_module(home)
    name = value.__name__  # type: ignore[attr-defined]  # a class or function (see above)
    assert name in module.__all__
    assert getattr(module, name) is value


def test_no_module_repeats_another_modules_all() -> None:
    """A one-to-one re-export pair (``x.py`` over ``_x.py``) would show as two equal lists.

    A package may gather exactly what its one ported submodule exports.
    """
    seen: dict[frozenset[str], str] = {}
    for module in _all_modules():
        names = getattr(module, "__all__", None)
        if not names:
            continue
        key = frozenset(names)
        other = seen.get(key)
        assert (
            other is None
            or other.startswith(f"{module.__name__}.")
            or module.__name__.startswith(f"{other}.")
        ), f"{module.__name__} repeats the __all__ of {other}"
        seen[key] = module.__name__


# Constants carry no __module__ of their own: where the reference defines them.
_CONSTANT_HOMES = {"DEFAULT_MAX_SUBPIPELINE_DEPTH": "stageflow.pipeline.subpipeline"}


def _home(reference: ModuleType, name: str) -> str:
    if name in _CONSTANT_HOMES:
        return _CONSTANT_HOMES[name]
    module = getattr(getattr(reference, name), "__module__", None)
    return module if isinstance(module, str) else reference.__name__


def _ported(reference_module: str) -> bool:
    ours = reference_module.replace("stageflow", "stageflow_trio", 1)
    try:
        importlib.import_module(ours)
    except ImportError:
        return False
    return True


@pytest.mark.usefixtures("reference")
@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_checklist_names_match_the_reference(module: ModuleType) -> None:
    reference_name = module.__name__.replace("stageflow_trio", "stageflow", 1)
    try:
        theirs = importlib.import_module(reference_name)
    except ImportError:
        pytest.skip(f"{reference_name} does not exist in the reference")
    ref_all = getattr(theirs, "__all__", None)
    if ref_all is None:  # a reference module without __all__ exports its public names
        ref_all = [
            name
            for name in dir(theirs)
            if not name.startswith("_")
            and getattr(getattr(theirs, name), "__module__", None) == reference_name
        ]
    ref_names = {
        name
        for name in ref_all
        if name in CHECKLIST_NAMES and hasattr(theirs, name) and _ported(_home(theirs, name))
    }
    our_names = set(getattr(module, "__all__", ())) & CHECKLIST_NAMES
    assert our_names >= ref_names, (
        f"missing from {module.__name__}: {sorted(ref_names - our_names)}"
    )
    extra = our_names - set(ref_all)
    assert extra <= _ALLOWED_EXTRA.get(module.__name__, set())


# Names stageflow_trio exports where the reference's __all__ does not (each a parity row).
_ALLOWED_EXTRA: dict[str, set[str]] = {
    # d1: the reference lists the wide-event names in stageflow.__all__ but cannot import them.
    # stageflow 1.2.0 adds these to its top level (tests/test_reference_surface_12.py).
    "stageflow_trio": {
        "BackpressureAwareEventSink",
        "PipelineBuilder",
        "UnifiedStageExecutionError",
        "UnifiedStageGraph",
    },
    # stageflow 1.2.0's additions to these two (tests/ref12_surface.json).
    "stageflow_trio.helpers": {
        "AnalyticsSink",
        "AudioFormat",
        "ContentLengthCheck",
        "GuardrailCheck",
        "InjectionDetector",
        "ViolationType",
        "encode_audio_for_logging",
    },
    "stageflow_trio.stages.context": {"StageContext"},
    "stageflow_trio.pipeline": {
        "UnifiedStageGraph",
        "UnifiedStageExecutionError",
        "UnifiedPipelineCancelled",
        "CancellationToken",
        "CleanupRegistry",
        "StructuredTaskGroup",
        "cleanup_on_cancel",
        "run_with_cleanup",
        "BaseInterceptor",
        "InterceptorResult",
        "InterceptorContext",
        "InterceptorError",
        "CriticalInterceptorError",
        "ErrorAction",
        "get_default_interceptors",
        "run_with_interceptors",
    },
}


def test_star_import_works() -> None:
    namespace: dict[str, object] = {}
    exec("from stageflow_trio import *", namespace)
    assert "StageflowError" in namespace


@pytest.mark.parametrize(
    "path",
    [
        "stageflow_trio.core.StageOutput",
        "stageflow_trio.core.StageArtifact",
        "stageflow_trio.core.StageEvent",
        "stageflow_trio.stages.StageResult",
        "stageflow_trio.context.ContextSnapshot",
        "stageflow_trio.context.RunIdentity",
        "stageflow_trio.context.Conversation",
        "stageflow_trio.context.Enrichments",
        "stageflow_trio.context.Message",
        "stageflow_trio.helpers.analytics.AnalyticsEvent",
        "stageflow_trio.protocols.CorrelationIds",
        "stageflow_trio.helpers.streaming.AudioChunk",
        "stageflow_trio.helpers.streaming.StreamConfig",
        "stageflow_trio.helpers.streaming.BackpressureStats",
        "stageflow_trio.events.BackpressureMetrics",
        "stageflow_trio.pipeline.GuardRetryPolicy",
        "stageflow_trio.pipeline.PipelineSpec",
        "stageflow_trio.contracts.ContractErrorInfo",
    ],
)
def test_annotations_of_exported_values_resolve(path: str) -> None:
    """Values users may hand to cattrs or typing.get_type_hints resolve their hints.

    Classes a gathering facade publishes report the facade as ``__module__``;
    their annotations were resolved against the defining module first.
    """
    module, _, name = path.rpartition(".")
    assert typing.get_type_hints(getattr(importlib.import_module(module), name))


def _exported_classes() -> list[tuple[str, type]]:
    found: dict[type, str] = {}
    for module in _our_modules():
        for name in getattr(module, "__all__", ()):
            value = getattr(module, name)
            if isinstance(value, type) and value.__module__.startswith("stageflow_trio"):
                found.setdefault(value, f"{module.__name__}.{name}")
    return sorted(((path, cls) for cls, path in found.items()), key=lambda item: item[0])


# Their modules keep ContextSnapshot under TYPE_CHECKING: importing it for real
# would pull the context package and cattrs into `import stageflow_trio` (about
# 30 ms, the import-time target). Their hints resolve with it passed in.
# PipelineContext's snapshot-payload fields and its hook type are lazy for the same reason
# (and core.stage_context imports stages, so StageContext cannot be imported back).
_LAZY_HINTS = {
    "StageContext": ("ContextSnapshot",),
    "StageInputs": ("ContextSnapshot",),
    "PipelineContext": ("Conversation", "Enrichments", "StageContext"),
}
_LAZY_HOMES = {
    "ContextSnapshot": "stageflow_trio.context",
    "Conversation": "stageflow_trio.context",
    "Enrichments": "stageflow_trio.context",
    "StageContext": "stageflow_trio.core",
}


@pytest.mark.parametrize(("path", "cls"), _exported_classes(), ids=lambda value: str(value))
def test_every_exported_class_resolves_its_type_hints(path: str, cls: type) -> None:
    """No exported class keeps an annotation that only resolves under TYPE_CHECKING.

    ruff's TC rules would move such imports out of the runtime; pyproject names
    attrs' decorators as runtime-evaluated, and plain classes carry a noqa. The
    exceptions are listed in _LAZY_HINTS, and must fail without their name.
    """
    local_names = None
    lazy = _LAZY_HINTS.get(cls.__name__)
    if lazy is not None:
        with pytest.raises(NameError, match=rf"^name '({'|'.join(lazy)})' is not defined$"):
            typing.get_type_hints(cls)
        local_names = {
            name: getattr(importlib.import_module(_LAZY_HOMES[name]), name) for name in lazy
        }
    hints = typing.get_type_hints(cls, localns=local_names)  # NameError if one does not resolve
    if attrs.has(cls):
        attrs.resolve_types(cls, localns=local_names)
        assert all(not isinstance(field.type, str) for field in attrs.fields(cls))
        assert {field.name for field in attrs.fields(cls)} <= set(hints)
