"""Reusable helpers for common pipeline patterns (streaming, analytics, ...).

The reference's ``stageflow.helpers`` also re-exports names from its memory,
guardrails, mocks, providers, timestamps, uuid_utils and memory_tracker modules,
and the rest of run_utils; those are added here as their modules land.
"""

from __future__ import annotations

from stageflow_trio._exports import publish
from stageflow_trio.helpers.analytics import AnalyticsEvent as AnalyticsEvent
from stageflow_trio.helpers.analytics import AnalyticsExporter as AnalyticsExporter
from stageflow_trio.helpers.analytics import BufferedExporter as BufferedExporter
from stageflow_trio.helpers.analytics import ConsoleExporter as ConsoleExporter
from stageflow_trio.helpers.analytics import JSONFileExporter as JSONFileExporter
from stageflow_trio.helpers.run_utils import ObservableEventSink as ObservableEventSink
from stageflow_trio.helpers.streaming import AudioChunk as AudioChunk
from stageflow_trio.helpers.streaming import BackpressureMonitor as BackpressureMonitor
from stageflow_trio.helpers.streaming import ChunkQueue as ChunkQueue
from stageflow_trio.helpers.streaming import StreamConfig as StreamConfig
from stageflow_trio.helpers.streaming import StreamingBuffer as StreamingBuffer

# The memory, guardrails, mocks, providers, timestamp and runtime helper names (and
# the rest of run_utils) come with their modules.
__all__ = [
    "AnalyticsEvent",
    "AnalyticsExporter",
    "AudioChunk",
    "BackpressureMonitor",
    "BufferedExporter",
    "ChunkQueue",
    "ConsoleExporter",
    "JSONFileExporter",
    "ObservableEventSink",
    "StreamConfig",
    "StreamingBuffer",
]

publish(__name__)
