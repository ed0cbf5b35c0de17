"""Reusable helpers for common pipeline patterns: streaming, analytics, guardrails,
memory, mock providers, provider responses, timestamps, runners and runtime monitors.

The same names as the reference's ``stageflow.helpers`` (stageflow 1.2's, which adds
the guardrail checks, ``AnalyticsSink``, ``AudioFormat`` and ``encode_audio_for_logging``).
"""

from __future__ import annotations

from stageflow_trio._exports import publish
from stageflow_trio.helpers.analytics import AnalyticsEvent as AnalyticsEvent
from stageflow_trio.helpers.analytics import AnalyticsExporter as AnalyticsExporter
from stageflow_trio.helpers.analytics import AnalyticsSink as AnalyticsSink
from stageflow_trio.helpers.analytics import BufferedExporter as BufferedExporter
from stageflow_trio.helpers.analytics import ConsoleExporter as ConsoleExporter
from stageflow_trio.helpers.analytics import JSONFileExporter as JSONFileExporter
from stageflow_trio.helpers.guardrails import ContentFilter as ContentFilter
from stageflow_trio.helpers.guardrails import ContentLengthCheck as ContentLengthCheck
from stageflow_trio.helpers.guardrails import GuardrailCheck as GuardrailCheck
from stageflow_trio.helpers.guardrails import GuardrailConfig as GuardrailConfig
from stageflow_trio.helpers.guardrails import GuardrailResult as GuardrailResult
from stageflow_trio.helpers.guardrails import GuardrailStage as GuardrailStage
from stageflow_trio.helpers.guardrails import InjectionDetector as InjectionDetector
from stageflow_trio.helpers.guardrails import PIIDetector as PIIDetector
from stageflow_trio.helpers.guardrails import PolicyViolation as PolicyViolation
from stageflow_trio.helpers.guardrails import ViolationType as ViolationType
from stageflow_trio.helpers.memory import InMemoryStore as InMemoryStore
from stageflow_trio.helpers.memory import MemoryConfig as MemoryConfig
from stageflow_trio.helpers.memory import MemoryEntry as MemoryEntry
from stageflow_trio.helpers.memory import MemoryFetchStage as MemoryFetchStage
from stageflow_trio.helpers.memory import MemoryStore as MemoryStore
from stageflow_trio.helpers.memory import MemoryWriteStage as MemoryWriteStage
from stageflow_trio.helpers.memory_tracker import MemorySample as MemorySample
from stageflow_trio.helpers.memory_tracker import MemoryTracker as MemoryTracker
from stageflow_trio.helpers.memory_tracker import track_memory as track_memory
from stageflow_trio.helpers.mocks import MockAuthProvider as MockAuthProvider
from stageflow_trio.helpers.mocks import MockLLMProvider as MockLLMProvider
from stageflow_trio.helpers.mocks import MockSTTProvider as MockSTTProvider
from stageflow_trio.helpers.mocks import MockToolExecutor as MockToolExecutor
from stageflow_trio.helpers.mocks import MockTTSProvider as MockTTSProvider
from stageflow_trio.helpers.providers import LLMResponse as LLMResponse
from stageflow_trio.helpers.providers import STTResponse as STTResponse
from stageflow_trio.helpers.providers import TTSResponse as TTSResponse
from stageflow_trio.helpers.run_utils import ObservableEventSink as ObservableEventSink
from stageflow_trio.helpers.run_utils import PipelineRunner as PipelineRunner
from stageflow_trio.helpers.run_utils import RunResult as RunResult
from stageflow_trio.helpers.run_utils import run_simple_pipeline as run_simple_pipeline
from stageflow_trio.helpers.run_utils import setup_logging as setup_logging
from stageflow_trio.helpers.streaming import AudioChunk as AudioChunk
from stageflow_trio.helpers.streaming import AudioFormat as AudioFormat
from stageflow_trio.helpers.streaming import BackpressureMonitor as BackpressureMonitor
from stageflow_trio.helpers.streaming import ChunkQueue as ChunkQueue
from stageflow_trio.helpers.streaming import RealtimeStageBus as RealtimeStageBus
from stageflow_trio.helpers.streaming import StreamConfig as StreamConfig
from stageflow_trio.helpers.streaming import StreamingBuffer as StreamingBuffer
from stageflow_trio.helpers.streaming import (
    create_realtime_stage_context as create_realtime_stage_context,
)
from stageflow_trio.helpers.streaming import encode_audio_for_logging as encode_audio_for_logging
from stageflow_trio.helpers.timestamps import detect_unix_precision as detect_unix_precision
from stageflow_trio.helpers.timestamps import normalize_to_utc as normalize_to_utc
from stageflow_trio.helpers.timestamps import parse_timestamp as parse_timestamp
from stageflow_trio.helpers.uuid_utils import ClockSkewDetector as ClockSkewDetector
from stageflow_trio.helpers.uuid_utils import UuidCollisionMonitor as UuidCollisionMonitor
from stageflow_trio.helpers.uuid_utils import UuidEvent as UuidEvent
from stageflow_trio.helpers.uuid_utils import UuidEventListener as UuidEventListener
from stageflow_trio.helpers.uuid_utils import generate_uuid7 as generate_uuid7

__all__ = [
    "AnalyticsEvent",
    "AnalyticsExporter",
    "AnalyticsSink",
    "AudioChunk",
    "AudioFormat",
    "BackpressureMonitor",
    "BufferedExporter",
    "ChunkQueue",
    "ClockSkewDetector",
    "ConsoleExporter",
    "ContentFilter",
    "ContentLengthCheck",
    "GuardrailCheck",
    "GuardrailConfig",
    "GuardrailResult",
    "GuardrailStage",
    "InMemoryStore",
    "InjectionDetector",
    "JSONFileExporter",
    "LLMResponse",
    "MemoryConfig",
    "MemoryEntry",
    "MemoryFetchStage",
    "MemorySample",
    "MemoryStore",
    "MemoryTracker",
    "MemoryWriteStage",
    "MockAuthProvider",
    "MockLLMProvider",
    "MockSTTProvider",
    "MockTTSProvider",
    "MockToolExecutor",
    "ObservableEventSink",
    "PIIDetector",
    "PipelineRunner",
    "PolicyViolation",
    "RealtimeStageBus",
    "RunResult",
    "STTResponse",
    "StreamConfig",
    "StreamingBuffer",
    "TTSResponse",
    "UuidCollisionMonitor",
    "UuidEvent",
    "UuidEventListener",
    "ViolationType",
    "create_realtime_stage_context",
    "detect_unix_precision",
    "encode_audio_for_logging",
    "generate_uuid7",
    "normalize_to_utc",
    "parse_timestamp",
    "run_simple_pipeline",
    "setup_logging",
    "track_memory",
]

publish(__name__)
