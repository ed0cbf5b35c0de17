"""Reusable helpers for common pipeline patterns (streaming, analytics, ...).

The reference's ``stageflow.helpers`` also re-exports names from its mocks,
uuid_utils and memory_tracker modules, and the rest of run_utils; those are
added here as their modules land.
"""

from __future__ import annotations

from stageflow_trio._exports import publish
from stageflow_trio.helpers.analytics import AnalyticsEvent as AnalyticsEvent
from stageflow_trio.helpers.analytics import AnalyticsExporter as AnalyticsExporter
from stageflow_trio.helpers.analytics import BufferedExporter as BufferedExporter
from stageflow_trio.helpers.analytics import ConsoleExporter as ConsoleExporter
from stageflow_trio.helpers.analytics import JSONFileExporter as JSONFileExporter
from stageflow_trio.helpers.guardrails import ContentFilter as ContentFilter
from stageflow_trio.helpers.guardrails import GuardrailConfig as GuardrailConfig
from stageflow_trio.helpers.guardrails import GuardrailResult as GuardrailResult
from stageflow_trio.helpers.guardrails import GuardrailStage as GuardrailStage
from stageflow_trio.helpers.guardrails import PIIDetector as PIIDetector
from stageflow_trio.helpers.guardrails import PolicyViolation as PolicyViolation
from stageflow_trio.helpers.memory import InMemoryStore as InMemoryStore
from stageflow_trio.helpers.memory import MemoryConfig as MemoryConfig
from stageflow_trio.helpers.memory import MemoryEntry as MemoryEntry
from stageflow_trio.helpers.memory import MemoryFetchStage as MemoryFetchStage
from stageflow_trio.helpers.memory import MemoryStore as MemoryStore
from stageflow_trio.helpers.memory import MemoryWriteStage as MemoryWriteStage
from stageflow_trio.helpers.providers import LLMResponse as LLMResponse
from stageflow_trio.helpers.providers import STTResponse as STTResponse
from stageflow_trio.helpers.providers import TTSResponse as TTSResponse
from stageflow_trio.helpers.run_utils import ObservableEventSink as ObservableEventSink
from stageflow_trio.helpers.streaming import AudioChunk as AudioChunk
from stageflow_trio.helpers.streaming import BackpressureMonitor as BackpressureMonitor
from stageflow_trio.helpers.streaming import ChunkQueue as ChunkQueue
from stageflow_trio.helpers.streaming import StreamConfig as StreamConfig
from stageflow_trio.helpers.streaming import StreamingBuffer as StreamingBuffer
from stageflow_trio.helpers.timestamps import detect_unix_precision as detect_unix_precision
from stageflow_trio.helpers.timestamps import normalize_to_utc as normalize_to_utc
from stageflow_trio.helpers.timestamps import parse_timestamp as parse_timestamp

# The mocks and runtime helper names (and the rest of run_utils) come with their modules.
__all__ = [
    "AnalyticsEvent",
    "AnalyticsExporter",
    "AudioChunk",
    "BackpressureMonitor",
    "BufferedExporter",
    "ChunkQueue",
    "ConsoleExporter",
    "ContentFilter",
    "GuardrailConfig",
    "GuardrailResult",
    "GuardrailStage",
    "InMemoryStore",
    "JSONFileExporter",
    "LLMResponse",
    "MemoryConfig",
    "MemoryEntry",
    "MemoryFetchStage",
    "MemoryStore",
    "MemoryWriteStage",
    "ObservableEventSink",
    "PIIDetector",
    "PolicyViolation",
    "STTResponse",
    "StreamConfig",
    "StreamingBuffer",
    "TTSResponse",
    "detect_unix_precision",
    "normalize_to_utc",
    "parse_timestamp",
]

publish(__name__)
