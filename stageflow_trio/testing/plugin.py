"""A pytest plugin: fixtures for testing pipelines built on stageflow_trio.

Enable it in your top-level ``conftest.py`` with one line::

    pytest_plugins = ["stageflow_trio.testing.plugin"]

(or ``-p stageflow_trio.testing.plugin`` on the command line). With pytest-trio
(``trio_mode = true``) it gives:

- ``reset_stageflow_globals`` (autouse): :func:`~stageflow_trio.testing.reset_globals`
  before and after every test, so no global sink, registry or tracker leaks
  from one test into the next.
- ``virtual_clock``: a ``trio.testing.MockClock`` with ``autojump_threshold=0``.
  pytest-trio runs a test on any ``Clock`` a fixture returns, so taking it puts
  the test in virtual time. Every timeout, backoff, TTL, guard-retry window and
  stage duration in stageflow_trio reads trio's clock (``trio.current_time()``),
  so on this clock they all pass instantly and exactly. pytest-trio's own
  ``autojump_clock`` fixture does the same.
- ``recording_sink``: a :class:`~stageflow_trio.testing.RecordingEventSink`.
- ``make_snapshot``, ``make_stage_context``, ``make_pipeline_context``: the
  ``create_test_*`` builders; the two context builders default ``event_sink`` to
  the test's ``recording_sink``.

The plugin is not registered as a ``pytest11`` entry point, so installing
stageflow_trio changes no other project's test run: its autouse fixture only
runs where it was asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import trio.testing

from stageflow_trio._globals import reset_globals
from stageflow_trio.testing._builders import (
    RecordingEventSink,
    create_test_pipeline_context,
    create_test_snapshot,
    create_test_stage_context,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from stageflow_trio.context.context_snapshot import ContextSnapshot
    from stageflow_trio.core.stage_context import StageContext
    from stageflow_trio.stages.context import PipelineContext

__all__ = [
    "make_pipeline_context",
    "make_snapshot",
    "make_stage_context",
    "recording_sink",
    "reset_stageflow_globals",
    "virtual_clock",
]


@pytest.fixture(autouse=True)
def reset_stageflow_globals() -> Iterator[None]:
    """Reset stageflow_trio's process-wide singletons before and after each test."""
    reset_globals()
    yield
    reset_globals()


@pytest.fixture
def virtual_clock() -> trio.testing.MockClock:
    """A MockClock that jumps ahead whenever every task is blocked (virtual time)."""
    return trio.testing.MockClock(autojump_threshold=0)


@pytest.fixture
def recording_sink() -> RecordingEventSink:
    """A fresh RecordingEventSink."""
    return RecordingEventSink()


@pytest.fixture
def make_snapshot() -> Callable[..., ContextSnapshot[Any]]:
    """:func:`~stageflow_trio.testing.create_test_snapshot`."""
    return create_test_snapshot


@pytest.fixture
def make_stage_context(recording_sink: RecordingEventSink) -> Callable[..., StageContext]:
    """:func:`~stageflow_trio.testing.create_test_stage_context`, recording into ``recording_sink``."""

    def make(**kwargs: Any) -> StageContext:
        kwargs.setdefault("event_sink", recording_sink)
        return create_test_stage_context(**kwargs)

    return make


@pytest.fixture
def make_pipeline_context(recording_sink: RecordingEventSink) -> Callable[..., PipelineContext]:
    """:func:`~stageflow_trio.testing.create_test_pipeline_context`, recording into ``recording_sink``."""

    def make(**kwargs: Any) -> PipelineContext:
        kwargs.setdefault("event_sink", recording_sink)
        return create_test_pipeline_context(**kwargs)

    return make
