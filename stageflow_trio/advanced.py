"""The runtime's customization points in one import: interceptors, graphs, contexts.

:mod:`stageflow_trio.api` covers the common path; this module adds what a caller
needs to change how runs execute (interceptor chains, guard retries, wide events)
or to drive the graphs directly.
"""

from __future__ import annotations

from stageflow_trio.context import ContextSnapshot as ContextSnapshot
from stageflow_trio.context import Conversation as Conversation
from stageflow_trio.context import Enrichments as Enrichments
from stageflow_trio.context import ExtensionBundle as ExtensionBundle
from stageflow_trio.context import RunIdentity as RunIdentity
from stageflow_trio.core import Stage as Stage
from stageflow_trio.core import StageCancellationRequested as StageCancellationRequested
from stageflow_trio.core import StageContext as StageContext
from stageflow_trio.core import StageKind as StageKind
from stageflow_trio.core import StageOutput as StageOutput
from stageflow_trio.core import StageReturn as StageReturn
from stageflow_trio.core import StageStatus as StageStatus
from stageflow_trio.core import stage_metadata as stage_metadata
from stageflow_trio.observability import WideEventEmitter as WideEventEmitter
from stageflow_trio.observability import emit_pipeline_wide_event as emit_pipeline_wide_event
from stageflow_trio.observability import emit_stage_wide_event as emit_stage_wide_event
from stageflow_trio.pipeline import GuardRetryPolicy as GuardRetryPolicy
from stageflow_trio.pipeline import GuardRetryStrategy as GuardRetryStrategy
from stageflow_trio.pipeline import PipelineBuilder as PipelineBuilder
from stageflow_trio.pipeline import hash_retry_payload as hash_retry_payload
from stageflow_trio.pipeline.dag import StageExecutionError as StageExecutionError
from stageflow_trio.pipeline.dag import StageGraph as StageGraph
from stageflow_trio.pipeline.dag import StageSpec as StageSpec
from stageflow_trio.pipeline.dag import UnifiedStageExecutionError as UnifiedStageExecutionError
from stageflow_trio.pipeline.dag import UnifiedStageGraph as UnifiedStageGraph
from stageflow_trio.pipeline.interceptors import BaseInterceptor as BaseInterceptor
from stageflow_trio.pipeline.interceptors import (
    ChildTrackerMetricsInterceptor as ChildTrackerMetricsInterceptor,
)
from stageflow_trio.pipeline.interceptors import (
    CircuitBreakerInterceptor as CircuitBreakerInterceptor,
)
from stageflow_trio.pipeline.interceptors import ErrorAction as ErrorAction
from stageflow_trio.pipeline.interceptors import InterceptorContext as InterceptorContext
from stageflow_trio.pipeline.interceptors import InterceptorResult as InterceptorResult
from stageflow_trio.pipeline.interceptors import LoggingInterceptor as LoggingInterceptor
from stageflow_trio.pipeline.interceptors import MetricsInterceptor as MetricsInterceptor
from stageflow_trio.pipeline.interceptors import TimeoutInterceptor as TimeoutInterceptor
from stageflow_trio.pipeline.interceptors import TracingInterceptor as TracingInterceptor
from stageflow_trio.pipeline.interceptors import (
    get_default_interceptors as get_default_interceptors,
)
from stageflow_trio.pipeline.interceptors import run_with_interceptors as run_with_interceptors
from stageflow_trio.pipeline.interceptors_hardening import (
    ContextSizeInterceptor as ContextSizeInterceptor,
)
from stageflow_trio.pipeline.interceptors_hardening import (
    ImmutabilityInterceptor as ImmutabilityInterceptor,
)
from stageflow_trio.pipeline.pipeline import Pipeline as Pipeline
from stageflow_trio.pipeline.pipeline import UnifiedStageSpec as UnifiedStageSpec
from stageflow_trio.pipeline.pipeline import run_stage as run_stage
from stageflow_trio.pipeline.pipeline import stage as stage
from stageflow_trio.pipeline.results import PipelineResults as PipelineResults
from stageflow_trio.pipeline.spec import CycleDetectedError as CycleDetectedError
from stageflow_trio.pipeline.spec import PipelineValidationError as PipelineValidationError
from stageflow_trio.stages.context import PipelineContext as PipelineContext
from stageflow_trio.stages.payloads import StagePayloadResult as StagePayloadResult
from stageflow_trio.stages.payloads import cancel_output as cancel_output
from stageflow_trio.stages.payloads import fail_output as fail_output
from stageflow_trio.stages.payloads import ok_output as ok_output
from stageflow_trio.stages.payloads import payload_from_inputs as payload_from_inputs
from stageflow_trio.stages.payloads import payload_from_results as payload_from_results
from stageflow_trio.stages.payloads import summary_from_output as summary_from_output
from stageflow_trio.stages.result import StageError as StageError
from stageflow_trio.stages.result import StageResult as StageResult

__all__ = [
    "BaseInterceptor",
    "ChildTrackerMetricsInterceptor",
    "CircuitBreakerInterceptor",
    "ContextSizeInterceptor",
    "ContextSnapshot",
    "Conversation",
    "CycleDetectedError",
    "Enrichments",
    "ErrorAction",
    "ExtensionBundle",
    "GuardRetryPolicy",
    "GuardRetryStrategy",
    "ImmutabilityInterceptor",
    "InterceptorContext",
    "InterceptorResult",
    "LoggingInterceptor",
    "MetricsInterceptor",
    "Pipeline",
    "PipelineBuilder",
    "PipelineContext",
    "PipelineResults",
    "PipelineValidationError",
    "RunIdentity",
    "Stage",
    "StageCancellationRequested",
    "StageContext",
    "StageError",
    "StageExecutionError",
    "StageGraph",
    "StageKind",
    "StageOutput",
    "StagePayloadResult",
    "StageResult",
    "StageReturn",
    "StageSpec",
    "StageStatus",
    "TimeoutInterceptor",
    "TracingInterceptor",
    "UnifiedStageExecutionError",
    "UnifiedStageGraph",
    "UnifiedStageSpec",
    "WideEventEmitter",
    "cancel_output",
    "emit_pipeline_wide_event",
    "emit_stage_wide_event",
    "fail_output",
    "get_default_interceptors",
    "hash_retry_payload",
    "ok_output",
    "payload_from_inputs",
    "payload_from_results",
    "run_stage",
    "run_with_interceptors",
    "stage",
    "stage_metadata",
    "summary_from_output",
]
