"""stageflow_trio: the stageflow pipeline framework, native on trio.

The names below are the reference's top-level ``stageflow`` names, including
those its ``__all__`` lists but cannot import (the wide-event helpers,
``create_test_pipeline_context``, and the aliases ``LinearPipeline`` and
``create_test_context``, defined as stageflow 1.2 defines them), plus stageflow
1.2's additions (``StageReturn``, ``StageCancellationRequested``, the payload
helpers, ``PipelineBuilder``, ``UnifiedStageGraph``, ``UnifiedStageExecutionError`` and
``BackpressureAwareEventSink``).

Every name loads on first use (PEP 562): ``import stageflow_trio.pipeline``
does not pay for the tools, the projector or the test helpers, and
``from stageflow_trio import Pipeline`` loads what ``Pipeline`` needs. The
subpackages are attributes too, loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stageflow_trio import _globals
from stageflow_trio._lazy import lazy_exports

if TYPE_CHECKING:
    from .cli.lint import DependencyIssue as DependencyIssue
    from .cli.lint import DependencyLintResult as DependencyLintResult
    from .cli.lint import IssueSeverity as IssueSeverity
    from .cli.lint import lint_pipeline as lint_pipeline
    from .cli.lint import lint_pipeline_file as lint_pipeline_file
    from .core.stage_context import StageCancellationRequested as StageCancellationRequested
    from .core.stage_context import StageContext as StageContext
    from .core.stage_context import create_stage_context as create_stage_context
    from .core.stage_enums import StageKind as StageKind
    from .core.stage_enums import StageStatus as StageStatus
    from .core.stage_metadata import stage_metadata as stage_metadata
    from .core.stage_output import StageArtifact as StageArtifact
    from .core.stage_output import StageEvent as StageEvent
    from .core.stage_output import StageOutput as StageOutput
    from .core.stage_output import StageReturn as StageReturn
    from .core.stage_protocol import Stage as Stage
    from .core.timer import PipelineTimer as PipelineTimer
    from .errors import StageflowError as StageflowError
    from .events.sink import BackpressureAwareEventSink as BackpressureAwareEventSink
    from .events.sink import EventSink as EventSink
    from .events.sink import LoggingEventSink as LoggingEventSink
    from .events.sink import NoOpEventSink as NoOpEventSink
    from .events.sink import clear_event_sink as clear_event_sink
    from .events.sink import get_event_sink as get_event_sink
    from .events.sink import set_event_sink as set_event_sink
    from .extensions import ExtensionHelper as ExtensionHelper
    from .extensions import ExtensionRegistry as ExtensionRegistry
    from .extensions import TypedExtension as TypedExtension
    from .observability import CircuitBreaker as CircuitBreaker
    from .observability import CircuitBreakerOpenError as CircuitBreakerOpenError
    from .observability import PipelineRunLogger as PipelineRunLogger
    from .observability import ProviderCallLogger as ProviderCallLogger
    from .observability import error_summary_to_stages_patch as error_summary_to_stages_patch
    from .observability import error_summary_to_string as error_summary_to_string
    from .observability import get_circuit_breaker as get_circuit_breaker
    from .observability import summarize_pipeline_error as summarize_pipeline_error
    from .observability.wide_events import WideEventEmitter as WideEventEmitter
    from .observability.wide_events import emit_pipeline_wide_event as emit_pipeline_wide_event
    from .observability.wide_events import emit_stage_wide_event as emit_stage_wide_event
    from .pipeline.builder import PipelineBuilder as PipelineBuilder
    from .pipeline.dag import StageExecutionError as StageExecutionError
    from .pipeline.dag import StageGraph as StageGraph
    from .pipeline.dag import StageSpec as StageSpec
    from .pipeline.dag import UnifiedStageExecutionError as UnifiedStageExecutionError
    from .pipeline.dag import UnifiedStageGraph as UnifiedStageGraph
    from .pipeline.interceptors import BaseInterceptor as BaseInterceptor
    from .pipeline.interceptors import (
        ChildTrackerMetricsInterceptor as ChildTrackerMetricsInterceptor,
    )
    from .pipeline.interceptors import CircuitBreakerInterceptor as CircuitBreakerInterceptor
    from .pipeline.interceptors import ErrorAction as ErrorAction
    from .pipeline.interceptors import InterceptorContext as InterceptorContext
    from .pipeline.interceptors import InterceptorResult as InterceptorResult
    from .pipeline.interceptors import LoggingInterceptor as LoggingInterceptor
    from .pipeline.interceptors import MetricsInterceptor as MetricsInterceptor
    from .pipeline.interceptors import TimeoutInterceptor as TimeoutInterceptor
    from .pipeline.interceptors import TracingInterceptor as TracingInterceptor
    from .pipeline.interceptors import get_default_interceptors as get_default_interceptors
    from .pipeline.interceptors import run_with_interceptors as run_with_interceptors
    from .pipeline.pipeline import Pipeline as LinearPipeline
    from .pipeline.pipeline import Pipeline as Pipeline
    from .pipeline.pipeline import UnifiedStageSpec as UnifiedStageSpec
    from .pipeline.pipeline import run_stage as run_stage
    from .pipeline.pipeline import stage as stage
    from .pipeline.registry import PipelineRegistry as PipelineRegistry
    from .pipeline.registry import pipeline_registry as pipeline_registry
    from .pipeline.results import PipelineResults as PipelineResults
    from .pipeline.spec import CycleDetectedError as CycleDetectedError
    from .pipeline.spec import PipelineValidationError as PipelineValidationError
    from .pipeline.subpipeline import ChildRunTracker as ChildRunTracker
    from .pipeline.subpipeline import MaxDepthExceededError as MaxDepthExceededError
    from .pipeline.subpipeline import SubpipelineResult as SubpipelineResult
    from .pipeline.subpipeline import SubpipelineSpawner as SubpipelineSpawner
    from .pipeline.subpipeline import get_child_tracker as get_child_tracker
    from .pipeline.subpipeline import get_subpipeline_spawner as get_subpipeline_spawner
    from .projector.service import ProjectorService as ProjectorService
    from .projector.service import WSMessageProjector as WSMessageProjector
    from .projector.service import WSMetadata as WSMetadata
    from .projector.service import WSOutboundMessage as WSOutboundMessage
    from .projector.service import WSStatusUpdatePayload as WSStatusUpdatePayload
    from .projector.service import _coerce_uuid_str as _coerce_uuid_str
    from .protocols import ConfigProvider as ConfigProvider
    from .protocols import CorrelationIds as CorrelationIds
    from .protocols import RunStore as RunStore
    from .stages.context import PipelineContext as PipelineContext
    from .stages.context import extract_service as extract_service
    from .stages.inputs import StageInputs as StageInputs
    from .stages.inputs import create_stage_inputs as create_stage_inputs
    from .stages.payloads import StagePayloadResult as StagePayloadResult
    from .stages.payloads import cancel_output as cancel_output
    from .stages.payloads import fail_output as fail_output
    from .stages.payloads import ok_output as ok_output
    from .stages.payloads import payload_from_inputs as payload_from_inputs
    from .stages.payloads import payload_from_results as payload_from_results
    from .stages.payloads import summary_from_output as summary_from_output
    from .stages.ports import AudioPorts as AudioPorts
    from .stages.ports import CorePorts as CorePorts
    from .stages.ports import LLMPorts as LLMPorts
    from .stages.ports import create_audio_ports as create_audio_ports
    from .stages.ports import create_core_ports as create_core_ports
    from .stages.ports import create_llm_ports as create_llm_ports
    from .stages.result import StageError as StageError
    from .stages.result import StageResult as StageResult
    from .testing import create_test_pipeline_context as create_test_pipeline_context
    from .testing import create_test_snapshot as create_test_snapshot
    from .testing import create_test_stage_context as create_test_context
    from .testing import create_test_stage_context as create_test_stage_context

__version__ = "0.1.0"

__all__ = [
    "AudioPorts",
    "BackpressureAwareEventSink",
    "BaseInterceptor",
    "ChildRunTracker",
    "ChildTrackerMetricsInterceptor",
    "CircuitBreaker",
    "CircuitBreakerInterceptor",
    "CircuitBreakerOpenError",
    "ConfigProvider",
    "CorePorts",
    "CorrelationIds",
    "CycleDetectedError",
    "DependencyIssue",
    "DependencyLintResult",
    "ErrorAction",
    "EventSink",
    "ExtensionHelper",
    "ExtensionRegistry",
    "InterceptorContext",
    "InterceptorResult",
    "IssueSeverity",
    "LLMPorts",
    "LinearPipeline",
    "LoggingEventSink",
    "LoggingInterceptor",
    "MaxDepthExceededError",
    "MetricsInterceptor",
    "NoOpEventSink",
    "Pipeline",
    "PipelineBuilder",
    "PipelineContext",
    "PipelineRegistry",
    "PipelineResults",
    "PipelineRunLogger",
    "PipelineTimer",
    "PipelineValidationError",
    "ProjectorService",
    "ProviderCallLogger",
    "RunStore",
    "Stage",
    "StageArtifact",
    "StageCancellationRequested",
    "StageContext",
    "StageError",
    "StageEvent",
    "StageExecutionError",
    "StageGraph",
    "StageInputs",
    "StageKind",
    "StageOutput",
    "StagePayloadResult",
    "StageResult",
    "StageReturn",
    "StageSpec",
    "StageStatus",
    "StageflowError",
    "SubpipelineResult",
    "SubpipelineSpawner",
    "TimeoutInterceptor",
    "TracingInterceptor",
    "TypedExtension",
    "UnifiedStageExecutionError",
    "UnifiedStageGraph",
    "UnifiedStageSpec",
    "WSMessageProjector",
    "WSMetadata",
    "WSOutboundMessage",
    "WSStatusUpdatePayload",
    "WideEventEmitter",
    "_coerce_uuid_str",
    "cancel_output",
    "clear_event_sink",
    "create_audio_ports",
    "create_core_ports",
    "create_llm_ports",
    "create_stage_context",
    "create_stage_inputs",
    "create_test_context",
    "create_test_pipeline_context",
    "create_test_snapshot",
    "create_test_stage_context",
    "emit_pipeline_wide_event",
    "emit_stage_wide_event",
    "error_summary_to_stages_patch",
    "error_summary_to_string",
    "extract_service",
    "fail_output",
    "get_child_tracker",
    "get_circuit_breaker",
    "get_default_interceptors",
    "get_event_sink",
    "get_subpipeline_spawner",
    "lint_pipeline",
    "lint_pipeline_file",
    "ok_output",
    "payload_from_inputs",
    "payload_from_results",
    "pipeline_registry",
    "run_stage",
    "run_with_interceptors",
    "set_event_sink",
    "stage",
    "stage_metadata",
    "summarize_pipeline_error",
    "summary_from_output",
]


def _tool_registry() -> object:
    # What StageInputs.tool_registry hands out: the stages layer cannot import the
    # tools layer, so the package, above both, wires it; tools load on first use.
    from stageflow_trio.tools.registry import get_tool_registry

    return get_tool_registry()


_globals.provide_tool_registry(_tool_registry)


# Hidden from type checkers, which read the imports above: a visible module
# __getattr__ would make every misspelt name `Any` instead of an error.
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            ".cli.lint": (
                "DependencyIssue DependencyLintResult IssueSeverity lint_pipeline lint_pipeline_file"
            ),
            ".core.stage_context": "StageCancellationRequested StageContext create_stage_context",
            ".core.stage_enums": "StageKind StageStatus",
            ".core.stage_metadata": "stage_metadata",
            ".core.stage_output": "StageArtifact StageEvent StageOutput StageReturn",
            ".core.stage_protocol": "Stage",
            ".core.timer": "PipelineTimer",
            ".errors": "StageflowError",
            ".events.sink": (
                "BackpressureAwareEventSink EventSink LoggingEventSink NoOpEventSink "
                "clear_event_sink get_event_sink set_event_sink"
            ),
            ".extensions": "ExtensionHelper ExtensionRegistry TypedExtension",
            ".observability": (
                "CircuitBreaker CircuitBreakerOpenError PipelineRunLogger ProviderCallLogger "
                "error_summary_to_stages_patch error_summary_to_string get_circuit_breaker "
                "summarize_pipeline_error"
            ),
            ".observability.wide_events": (
                "WideEventEmitter emit_pipeline_wide_event emit_stage_wide_event"
            ),
            ".pipeline.builder": "PipelineBuilder",
            ".pipeline.dag": (
                "StageExecutionError StageGraph StageSpec UnifiedStageExecutionError "
                "UnifiedStageGraph"
            ),
            ".pipeline.interceptors": (
                "BaseInterceptor ChildTrackerMetricsInterceptor CircuitBreakerInterceptor "
                "ErrorAction InterceptorContext InterceptorResult LoggingInterceptor "
                "MetricsInterceptor TimeoutInterceptor TracingInterceptor "
                "get_default_interceptors run_with_interceptors"
            ),
            ".pipeline.pipeline": "LinearPipeline=Pipeline Pipeline UnifiedStageSpec run_stage stage",
            ".pipeline.registry": "PipelineRegistry pipeline_registry",
            ".pipeline.results": "PipelineResults",
            ".pipeline.spec": "CycleDetectedError PipelineValidationError",
            ".pipeline.subpipeline": (
                "ChildRunTracker MaxDepthExceededError SubpipelineResult SubpipelineSpawner "
                "get_child_tracker get_subpipeline_spawner"
            ),
            ".projector.service": (
                "ProjectorService WSMessageProjector WSMetadata WSOutboundMessage "
                "WSStatusUpdatePayload _coerce_uuid_str"
            ),
            ".protocols": "ConfigProvider CorrelationIds RunStore",
            ".stages.context": "PipelineContext extract_service",
            ".stages.inputs": "StageInputs create_stage_inputs",
            ".stages.payloads": (
                "StagePayloadResult cancel_output fail_output ok_output payload_from_inputs "
                "payload_from_results summary_from_output"
            ),
            ".stages.ports": (
                "AudioPorts CorePorts LLMPorts create_audio_ports create_core_ports create_llm_ports"
            ),
            ".stages.result": "StageError StageResult",
            ".testing": (
                "create_test_pipeline_context create_test_snapshot "
                "create_test_context=create_test_stage_context create_test_stage_context"
            ),
        },
        # So that ``stageflow_trio.pipeline`` works after a bare ``import stageflow_trio``.
        submodules=(
            "advanced agent api auth cli compression context contracts core errors events "
            "examples extensions helpers lowlevel observability pipeline projector protocols "
            "route stages stores testing tools utils websearch"
        ),
    )
