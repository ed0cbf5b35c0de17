"""Fakes and helpers for testing code built on stageflow_trio (and for its own tests).

- :class:`RecordingEventSink`: a sink that records every event, for assertions.
- :func:`create_test_snapshot`, :func:`create_test_stage_context`,
  :func:`create_test_pipeline_context`: contexts with sensible defaults (the
  reference's ``stageflow.testing`` helpers).
- :func:`validate_snapshot`, :func:`validate_snapshot_strict`,
  :func:`snapshot_from_dict_strict`: check a snapshot's ids and conversation.
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
from ._testing import SnapshotValidationError as SnapshotValidationError
from ._testing import SnapshotValidationResult as SnapshotValidationResult
from ._testing import create_test_pipeline_context as create_test_pipeline_context
from ._testing import create_test_snapshot as create_test_snapshot
from ._testing import create_test_stage_context as create_test_stage_context
from ._testing import snapshot_from_dict_strict as snapshot_from_dict_strict
from ._testing import validate_snapshot as validate_snapshot
from ._testing import validate_snapshot_strict as validate_snapshot_strict

__all__ = [
    "RecordingEventSink",
    "SnapshotValidationError",
    "SnapshotValidationResult",
    "create_test_pipeline_context",
    "create_test_snapshot",
    "create_test_stage_context",
    "register_global_reset",
    "reset_globals",
    "snapshot_from_dict_strict",
    "validate_snapshot",
    "validate_snapshot_strict",
]

publish(__name__)
