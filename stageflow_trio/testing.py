"""Fakes and helpers for testing code built on stageflow_trio (and for its own tests).

- :class:`RecordingEventSink`: a sink that records every event, for assertions.
- :func:`create_test_snapshot`, :func:`create_test_stage_context`,
  :func:`create_test_pipeline_context`: contexts with sensible defaults (the
  reference's ``stageflow.testing`` helpers).
- :func:`reset_globals`: put every process-wide singleton back to its default.

Graph runs are deterministic under ``trio.testing.MockClock``: stage durations,
guard-retry windows, retry backoff and timeouts all read the trio clock, so a
test with pytest-trio's ``autojump_clock`` fixture can assert exact times.
"""

from __future__ import annotations

from ._exports import publish
from ._globals import register_global_reset as register_global_reset
from ._globals import reset_globals as reset_globals
from ._testing import RecordingEventSink as RecordingEventSink
from ._testing import create_test_pipeline_context as create_test_pipeline_context
from ._testing import create_test_snapshot as create_test_snapshot
from ._testing import create_test_stage_context as create_test_stage_context

__all__ = [
    "RecordingEventSink",
    "create_test_pipeline_context",
    "create_test_snapshot",
    "create_test_stage_context",
    "register_global_reset",
    "reset_globals",
]

publish(__name__)
