"""Pipelines: specs and builders, the DAG executors, guard retries, cancellation, interceptors.

Beyond the reference's ``stageflow.pipeline``, this facade also exports the
unified graph and its errors, the cancellation primitives and the interceptor
base classes, so ``from stageflow_trio.pipeline import ...`` reaches everything a
pipeline author needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stageflow_trio._lazy import lazy_exports

if TYPE_CHECKING:
    from stageflow_trio.core.stage_protocol import Stage as Stage
    from stageflow_trio.stages.context import PipelineContext as PipelineContext
    from stageflow_trio.stages.result import StageError as StageError
    from stageflow_trio.stages.result import StageResult as StageResult

    from .builder import PipelineBuilder as PipelineBuilder
    from .builder_helpers import DuplexLaneSpec as DuplexLaneSpec
    from .builder_helpers import DuplexSystemSpec as DuplexSystemSpec
    from .builder_helpers import FluentPipelineBuilder as FluentPipelineBuilder
    from .builder_helpers import with_conditional_branch as with_conditional_branch
    from .builder_helpers import with_duplex_system as with_duplex_system
    from .builder_helpers import with_fan_out_fan_in as with_fan_out_fan_in
    from .builder_helpers import with_linear_chain as with_linear_chain
    from .builder_helpers import with_parallel_stages as with_parallel_stages
    from .cancellation import CancellationToken as CancellationToken
    from .cancellation import CleanupRegistry as CleanupRegistry
    from .cancellation import StructuredTaskGroup as StructuredTaskGroup
    from .cancellation import cleanup_on_cancel as cleanup_on_cancel
    from .cancellation import run_with_cleanup as run_with_cleanup
    from .dag import StageExecutionError as StageExecutionError
    from .dag import StageGraph as StageGraph
    from .dag import StageSpec as StageSpec
    from .dag import UnifiedPipelineCancelled as UnifiedPipelineCancelled
    from .dag import UnifiedStageExecutionError as UnifiedStageExecutionError
    from .dag import UnifiedStageGraph as UnifiedStageGraph
    from .failure_tolerance import BackpressureConfig as BackpressureConfig
    from .failure_tolerance import BackpressureMonitor as BackpressureMonitor
    from .failure_tolerance import ConditionalDependency as ConditionalDependency
    from .failure_tolerance import FailureCollector as FailureCollector
    from .failure_tolerance import FailureMode as FailureMode
    from .failure_tolerance import FailureRecord as FailureRecord
    from .failure_tolerance import FailureSummary as FailureSummary
    from .guard_retry import GuardRetryPolicy as GuardRetryPolicy
    from .guard_retry import GuardRetryStrategy as GuardRetryStrategy
    from .guard_retry import hash_retry_payload as hash_retry_payload
    from .interceptors import BaseInterceptor as BaseInterceptor
    from .interceptors import CriticalInterceptorError as CriticalInterceptorError
    from .interceptors import ErrorAction as ErrorAction
    from .interceptors import InterceptorContext as InterceptorContext
    from .interceptors import InterceptorError as InterceptorError
    from .interceptors import InterceptorResult as InterceptorResult
    from .interceptors import get_default_interceptors as get_default_interceptors
    from .interceptors import run_with_interceptors as run_with_interceptors
    from .pipeline import Pipeline as Pipeline
    from .pipeline import UnifiedStageSpec as UnifiedStageSpec
    from .pipeline import run_stage as run_stage
    from .pipeline import stage as stage
    from .registry import PipelineRegistry as PipelineRegistry
    from .registry import pipeline_registry as pipeline_registry
    from .results import PipelineResults as PipelineResults
    from .retry import BackoffStrategy as BackoffStrategy
    from .retry import JitterStrategy as JitterStrategy
    from .retry import RateLimitError as RateLimitError
    from .retry import RetryInterceptor as RetryInterceptor
    from .retry import ServiceUnavailableError as ServiceUnavailableError
    from .retry import TransientError as TransientError
    from .spec import CycleDetectedError as CycleDetectedError
    from .spec import PipelineSpec as PipelineSpec
    from .spec import PipelineValidationError as PipelineValidationError
    from .spec import StageRunner as StageRunner
    from .subpipeline import DEFAULT_MAX_SUBPIPELINE_DEPTH as DEFAULT_MAX_SUBPIPELINE_DEPTH
    from .subpipeline import ChildRunTracker as ChildRunTracker
    from .subpipeline import MaxDepthExceededError as MaxDepthExceededError
    from .subpipeline import PipelineCanceledEvent as PipelineCanceledEvent
    from .subpipeline import PipelineChildCompletedEvent as PipelineChildCompletedEvent
    from .subpipeline import PipelineChildFailedEvent as PipelineChildFailedEvent
    from .subpipeline import PipelineSpawnedChildEvent as PipelineSpawnedChildEvent
    from .subpipeline import SubpipelineResult as SubpipelineResult
    from .subpipeline import SubpipelineSpawner as SubpipelineSpawner
    from .subpipeline import clear_child_tracker as clear_child_tracker
    from .subpipeline import clear_subpipeline_spawner as clear_subpipeline_spawner
    from .subpipeline import get_child_tracker as get_child_tracker
    from .subpipeline import get_subpipeline_spawner as get_subpipeline_spawner
    from .subpipeline import set_child_tracker as set_child_tracker
    from .subpipeline import set_subpipeline_spawner as set_subpipeline_spawner

__all__ = [
    "DEFAULT_MAX_SUBPIPELINE_DEPTH",
    "BackoffStrategy",
    "BackpressureConfig",
    "BackpressureMonitor",
    "BaseInterceptor",
    "CancellationToken",
    "ChildRunTracker",
    "CleanupRegistry",
    "ConditionalDependency",
    "CriticalInterceptorError",
    "CycleDetectedError",
    "DuplexLaneSpec",
    "DuplexSystemSpec",
    "ErrorAction",
    "FailureCollector",
    "FailureMode",
    "FailureRecord",
    "FailureSummary",
    "FluentPipelineBuilder",
    "GuardRetryPolicy",
    "GuardRetryStrategy",
    "InterceptorContext",
    "InterceptorError",
    "InterceptorResult",
    "JitterStrategy",
    "MaxDepthExceededError",
    "Pipeline",
    "PipelineBuilder",
    "PipelineCanceledEvent",
    "PipelineChildCompletedEvent",
    "PipelineChildFailedEvent",
    "PipelineContext",
    "PipelineRegistry",
    "PipelineResults",
    "PipelineSpawnedChildEvent",
    "PipelineSpec",
    "PipelineValidationError",
    "RateLimitError",
    "RetryInterceptor",
    "ServiceUnavailableError",
    "Stage",
    "StageError",
    "StageExecutionError",
    "StageGraph",
    "StageResult",
    "StageRunner",
    "StageSpec",
    "StructuredTaskGroup",
    "SubpipelineResult",
    "SubpipelineSpawner",
    "TransientError",
    "UnifiedPipelineCancelled",
    "UnifiedStageExecutionError",
    "UnifiedStageGraph",
    "UnifiedStageSpec",
    "cleanup_on_cancel",
    "clear_child_tracker",
    "clear_subpipeline_spawner",
    "get_child_tracker",
    "get_default_interceptors",
    "get_subpipeline_spawner",
    "hash_retry_payload",
    "pipeline_registry",
    "run_stage",
    "run_with_cleanup",
    "run_with_interceptors",
    "set_child_tracker",
    "set_subpipeline_spawner",
    "stage",
    "with_conditional_branch",
    "with_duplex_system",
    "with_fan_out_fan_in",
    "with_linear_chain",
    "with_parallel_stages",
]

# Hidden from type checkers, which read the imports above: a visible module
# __getattr__ would make every misspelt name `Any` instead of an error.
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "stageflow_trio.core.stage_protocol": "Stage",
            "stageflow_trio.stages.context": "PipelineContext",
            "stageflow_trio.stages.result": "StageError StageResult",
            ".builder": "PipelineBuilder",
            ".builder_helpers": (
                "DuplexLaneSpec DuplexSystemSpec FluentPipelineBuilder with_conditional_branch "
                "with_duplex_system with_fan_out_fan_in with_linear_chain with_parallel_stages"
            ),
            ".cancellation": (
                "CancellationToken CleanupRegistry StructuredTaskGroup cleanup_on_cancel "
                "run_with_cleanup"
            ),
            ".dag": (
                "StageExecutionError StageGraph StageSpec UnifiedPipelineCancelled "
                "UnifiedStageExecutionError UnifiedStageGraph"
            ),
            ".failure_tolerance": (
                "BackpressureConfig BackpressureMonitor ConditionalDependency FailureCollector "
                "FailureMode FailureRecord FailureSummary"
            ),
            ".guard_retry": "GuardRetryPolicy GuardRetryStrategy hash_retry_payload",
            ".interceptors": (
                "BaseInterceptor CriticalInterceptorError ErrorAction InterceptorContext "
                "InterceptorError InterceptorResult get_default_interceptors "
                "run_with_interceptors"
            ),
            ".pipeline": "Pipeline UnifiedStageSpec run_stage stage",
            ".registry": "PipelineRegistry pipeline_registry",
            ".results": "PipelineResults",
            ".retry": (
                "BackoffStrategy JitterStrategy RateLimitError RetryInterceptor "
                "ServiceUnavailableError TransientError"
            ),
            ".spec": "CycleDetectedError PipelineSpec PipelineValidationError StageRunner",
            ".subpipeline": (
                "DEFAULT_MAX_SUBPIPELINE_DEPTH ChildRunTracker MaxDepthExceededError "
                "PipelineCanceledEvent PipelineChildCompletedEvent PipelineChildFailedEvent "
                "PipelineSpawnedChildEvent SubpipelineResult SubpipelineSpawner "
                "clear_child_tracker clear_subpipeline_spawner get_child_tracker "
                "get_subpipeline_spawner set_child_tracker set_subpipeline_spawner"
            ),
        },
    )
