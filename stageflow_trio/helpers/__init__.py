"""Reusable helpers for common pipeline patterns (streaming, analytics, ...).

The reference's ``stageflow.helpers`` also re-exports names from its memory,
guardrails, providers and timestamps modules; those are added here as their
modules land.
"""

from __future__ import annotations

from stageflow_trio._exports import publish
from stageflow_trio.helpers.analytics import AnalyticsEvent as AnalyticsEvent
from stageflow_trio.helpers.analytics import AnalyticsExporter as AnalyticsExporter
from stageflow_trio.helpers.analytics import BufferedExporter as BufferedExporter
from stageflow_trio.helpers.analytics import ConsoleExporter as ConsoleExporter
from stageflow_trio.helpers.analytics import JSONFileExporter as JSONFileExporter
from stageflow_trio.helpers.memory_tracker import MemorySample as MemorySample
from stageflow_trio.helpers.memory_tracker import MemoryTracker as MemoryTracker
from stageflow_trio.helpers.memory_tracker import track_memory as track_memory
from stageflow_trio.helpers.mocks import MockAuthProvider as MockAuthProvider
from stageflow_trio.helpers.mocks import MockLLMProvider as MockLLMProvider
from stageflow_trio.helpers.mocks import MockSTTProvider as MockSTTProvider
from stageflow_trio.helpers.mocks import MockToolExecutor as MockToolExecutor
from stageflow_trio.helpers.mocks import MockTTSProvider as MockTTSProvider
from stageflow_trio.helpers.run_utils import ObservableEventSink as ObservableEventSink
from stageflow_trio.helpers.run_utils import PipelineRunner as PipelineRunner
from stageflow_trio.helpers.run_utils import RunResult as RunResult
from stageflow_trio.helpers.run_utils import run_simple_pipeline as run_simple_pipeline
from stageflow_trio.helpers.run_utils import setup_logging as setup_logging
from stageflow_trio.helpers.streaming import AudioChunk as AudioChunk
from stageflow_trio.helpers.streaming import BackpressureMonitor as BackpressureMonitor
from stageflow_trio.helpers.streaming import ChunkQueue as ChunkQueue
from stageflow_trio.helpers.streaming import StreamConfig as StreamConfig
from stageflow_trio.helpers.streaming import StreamingBuffer as StreamingBuffer
from stageflow_trio.helpers.uuid_utils import ClockSkewDetector as ClockSkewDetector
from stageflow_trio.helpers.uuid_utils import UuidCollisionMonitor as UuidCollisionMonitor
from stageflow_trio.helpers.uuid_utils import UuidEvent as UuidEvent
from stageflow_trio.helpers.uuid_utils import UuidEventListener as UuidEventListener
from stageflow_trio.helpers.uuid_utils import generate_uuid7 as generate_uuid7

# The memory, guardrails, providers and timestamp names come with their modules.
__all__ = [
    "AnalyticsEvent",
    "AnalyticsExporter",
    "AudioChunk",
    "BackpressureMonitor",
    "BufferedExporter",
    "ChunkQueue",
    "ClockSkewDetector",
    "ConsoleExporter",
    "JSONFileExporter",
    "MemorySample",
    "MemoryTracker",
    "MockAuthProvider",
    "MockLLMProvider",
    "MockSTTProvider",
    "MockTTSProvider",
    "MockToolExecutor",
    "ObservableEventSink",
    "PipelineRunner",
    "RunResult",
    "StreamConfig",
    "StreamingBuffer",
    "UuidCollisionMonitor",
    "UuidEvent",
    "UuidEventListener",
    "generate_uuid7",
    "run_simple_pipeline",
    "setup_logging",
    "track_memory",
]

publish(__name__)
