"""Observability: wide events, back-end protocols with no-op defaults, error summaries."""

from __future__ import annotations

from stageflow_trio._exports import publish

from ._protocols import CircuitBreaker as CircuitBreaker
from ._protocols import CircuitBreakerOpenError as CircuitBreakerOpenError
from ._protocols import NoOpPipelineRunLogger as NoOpPipelineRunLogger
from ._protocols import NoOpProviderCallLogger as NoOpProviderCallLogger
from ._protocols import PipelineRunLogger as PipelineRunLogger
from ._protocols import ProviderCallLogger as ProviderCallLogger
from ._protocols import error_summary_to_stages_patch as error_summary_to_stages_patch
from ._protocols import error_summary_to_string as error_summary_to_string
from ._protocols import get_circuit_breaker as get_circuit_breaker
from ._protocols import pipeline_run_logger as pipeline_run_logger
from ._protocols import provider_call_logger as provider_call_logger
from ._protocols import summarize_pipeline_error as summarize_pipeline_error
from .wide_events import WideEventEmitter as WideEventEmitter
from .wide_events import emit_pipeline_wide_event as emit_pipeline_wide_event
from .wide_events import emit_stage_wide_event as emit_stage_wide_event

__all__ = [
    "CircuitBreaker",
    "CircuitBreakerOpenError",
    "NoOpPipelineRunLogger",
    "NoOpProviderCallLogger",
    "PipelineRunLogger",
    "ProviderCallLogger",
    "WideEventEmitter",
    "emit_pipeline_wide_event",
    "emit_stage_wide_event",
    "error_summary_to_stages_patch",
    "error_summary_to_string",
    "get_circuit_breaker",
    "pipeline_run_logger",
    "provider_call_logger",
    "summarize_pipeline_error",
]

publish(__name__)
