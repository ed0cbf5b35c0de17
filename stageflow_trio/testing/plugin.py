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

It also fails an async test that a stray ``trio.Cancelled`` ends: one that escapes
the test although nothing around the test was cancelled (a cancellation carried
past the scope it belonged to, or a saved one raised again). pytest-trio reports
such a test as passed, although its body stopped at that line, so the assertions
after it never ran.

The plugin is not registered as a ``pytest11`` entry point, so installing
stageflow_trio changes no other project's test run: its autouse fixture only
runs where it was asked for.
"""

from __future__ import annotations

import functools
import math
from inspect import iscoroutinefunction
from typing import TYPE_CHECKING, Any

import pytest
import trio
import trio.testing

from stageflow_trio._globals import reset_globals
from stageflow_trio.testing._builders import (
    RecordingEventSink,
    create_test_pipeline_context,
    create_test_snapshot,
    create_test_stage_context,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

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


_GUARDED = "_stageflow_trio_stray_cancelled_guard"


def _failing_on_a_stray_cancelled(
    test: Callable[..., Awaitable[Any]],
) -> Callable[..., Awaitable[Any]]:
    """``test``, failing instead of ending quietly when a stray ``Cancelled`` escapes it."""

    @functools.wraps(test)
    async def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return await test(*args, **kwargs)
        except trio.Cancelled as exc:
            if trio.current_effective_deadline() == -math.inf:
                raise  # the test was cancelled (a fixture failed, say): as it is
            raise AssertionError(
                "trio.Cancelled escaped the test, though nothing around the test was "
                "cancelled: a cancellation went past the cancel scope it belonged to "
                "(pytest-trio would report the test as passed)"
            ) from exc

    setattr(guarded, _GUARDED, True)
    return guarded


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put every async test (Hypothesis's included) behind the stray-``Cancelled`` check."""
    for item in items:
        test = getattr(item, "obj", None)
        if test is None or getattr(test, _GUARDED, False):
            continue
        hypothesis = getattr(test, "hypothesis", None)
        if hypothesis is not None:
            inner = getattr(hypothesis, "inner_test", None)
            if iscoroutinefunction(inner) and not getattr(inner, _GUARDED, False):
                hypothesis.inner_test = _failing_on_a_stray_cancelled(inner)
        elif iscoroutinefunction(test):
            item.obj = _failing_on_a_stray_cancelled(test)  # type: ignore[attr-defined]
