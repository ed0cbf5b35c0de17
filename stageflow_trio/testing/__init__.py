"""Fakes, builders and a cancellation harness for testing code built on stageflow_trio.

- :class:`RecordingEventSink`: a sink that records every event, for assertions.
- :func:`create_test_snapshot`, :func:`create_test_stage_context`,
  :func:`create_test_pipeline_context`: contexts with sensible defaults, and
  :func:`validate_snapshot` and its strict forms (the reference's ``stageflow.testing``).
- :func:`reset_globals`: put every process-wide singleton back to its default.
- :func:`explore_cancellation`: cancel a run at each of its checkpoints and check
  invariants after each (:mod:`stageflow_trio.testing.explore`).
- :func:`assert_no_orphans`: fail if a task outlives the run that started it.
- :class:`FaultPlan`: make a named stage raise, fail, cancel, hang or take time
  (:mod:`stageflow_trio.testing.faults`).
- :mod:`stageflow_trio.testing.plugin`: pytest fixtures (``pytest_plugins =
  ["stageflow_trio.testing.plugin"]``).

Graph runs are deterministic under ``trio.testing.MockClock``: stage durations,
guard-retry windows, retry backoff, timeouts and TTLs all read the trio clock, so
a test with pytest-trio's ``autojump_clock`` fixture can assert exact times.
"""

from __future__ import annotations

from stageflow_trio._exports import publish
from stageflow_trio._globals import register_global_reset as register_global_reset
from stageflow_trio._globals import reset_globals as reset_globals

from ._builders import RecordingEventSink as RecordingEventSink
from ._builders import create_test_pipeline_context as create_test_pipeline_context
from ._builders import create_test_snapshot as create_test_snapshot
from ._builders import create_test_stage_context as create_test_stage_context
from ._validation import SnapshotValidationError as SnapshotValidationError
from ._validation import SnapshotValidationResult as SnapshotValidationResult
from ._validation import snapshot_from_dict_strict as snapshot_from_dict_strict
from ._validation import validate_snapshot as validate_snapshot
from ._validation import validate_snapshot_strict as validate_snapshot_strict
from .explore import DEFAULT_INVARIANTS as DEFAULT_INVARIANTS
from .explore import ExplorationReport as ExplorationReport
from .explore import Invariant as Invariant
from .explore import RunRecord as RunRecord
from .explore import current_run as current_run
from .explore import explore_cancellation as explore_cancellation
from .explore import invariant as invariant
from .explore import tracked_cleanup as tracked_cleanup
from .faults import Fault as Fault
from .faults import FaultInjectionInterceptor as FaultInjectionInterceptor
from .faults import FaultPlan as FaultPlan
from .orphans import assert_no_orphans as assert_no_orphans

__all__ = [
    "DEFAULT_INVARIANTS",
    "ExplorationReport",
    "Fault",
    "FaultInjectionInterceptor",
    "FaultPlan",
    "Invariant",
    "RecordingEventSink",
    "RunRecord",
    "SnapshotValidationError",
    "SnapshotValidationResult",
    "assert_no_orphans",
    "create_test_pipeline_context",
    "create_test_snapshot",
    "create_test_stage_context",
    "current_run",
    "explore_cancellation",
    "invariant",
    "register_global_reset",
    "reset_globals",
    "snapshot_from_dict_strict",
    "tracked_cleanup",
    "validate_snapshot",
    "validate_snapshot_strict",
]

publish(__name__)
