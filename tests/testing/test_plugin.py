"""The pytest plugin's fixtures (the project's conftest enables it as users would)."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio.context import ContextSnapshot
from stageflow_trio.core import StageContext
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.testing import RecordingEventSink


def test_reset_is_autouse(request: pytest.FixtureRequest) -> None:
    assert "reset_stageflow_globals" in request.fixturenames


async def test_virtual_clock_runs_the_test_in_virtual_time(
    virtual_clock: trio.testing.MockClock,
) -> None:
    start = trio.current_time()
    with trio.move_on_after(3600):
        await trio.sleep_forever()
    assert trio.current_time() - start == 3600
    assert virtual_clock.autojump_threshold == 0


def test_builders_record_into_the_recording_sink(
    recording_sink: RecordingEventSink,
    make_snapshot: Any,
    make_stage_context: Any,
    make_pipeline_context: Any,
) -> None:
    snapshot = make_snapshot(input_text="hi")
    assert isinstance(snapshot, ContextSnapshot)
    assert snapshot.input_text == "hi"
    stage_ctx = make_stage_context(snapshot=snapshot)
    assert isinstance(stage_ctx, StageContext)
    assert stage_ctx.event_sink is recording_sink
    pipeline_ctx = make_pipeline_context()
    assert isinstance(pipeline_ctx, PipelineContext)
    assert pipeline_ctx.event_sink is recording_sink
    other = RecordingEventSink()
    assert make_stage_context(event_sink=other).event_sink is other
    assert make_pipeline_context(event_sink=other).event_sink is other


def test_one_line_enables_it_in_a_project(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    pytester.makeconftest('pytest_plugins = ["stageflow_trio.testing.plugin"]\n')
    pytester.makepyfile(
        test_user="""
        import trio
        from stageflow_trio.events import get_event_sink, set_event_sink
        from stageflow_trio.events.sink import NoOpEventSink

        def test_first(recording_sink):
            set_event_sink(recording_sink)

        def test_second_starts_clean():
            assert isinstance(get_event_sink(), NoOpEventSink)

        async def test_a_day_passes_at_once(virtual_clock, make_stage_context):
            await trio.sleep(86400)
            assert trio.current_time() == 86400
            assert make_stage_context().event_sink is not None
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_a_stray_cancelled_fails_the_test_instead_of_passing_it(
    pytester: pytest.Pytester,
) -> None:
    # Under pytest-trio alone a spent Cancelled escaping the body ended the test as
    # passed, the assertions after it never run (audit 18, found by a mutation pass).
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    pytester.makeconftest('pytest_plugins = ["stageflow_trio.testing.plugin"]\n')
    pytester.makepyfile(
        test_user="""
        import pytest
        import trio
        from hypothesis import given, strategies as st

        def spent():
            with trio.CancelScope() as scope:
                scope.cancel()
                try:
                    trio.lowlevel.current_task()  # in a task
                    raise trio.Cancelled._create()
                except trio.Cancelled as exc:
                    return exc

        async def test_stray():
            raise spent()

        @given(st.integers())
        async def test_stray_in_hypothesis(n):
            raise spent()

        async def test_cancelled_by_its_own_scope_passes(autojump_clock):
            with trio.move_on_after(1) as scope:
                await trio.sleep_forever()
            assert scope.cancelled_caught

        @pytest.fixture
        async def broken():
            raise RuntimeError("fixture broke")

        async def test_cancelled_by_a_failing_fixture_reports_the_fixture(broken):
            await trio.sleep_forever()
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-rf")
    result.assert_outcomes(passed=1, failed=3)
    summary = [line for line in result.stdout.lines if line.startswith("FAILED")]
    assert [line.split(" - ")[0] for line in summary] == [
        "FAILED test_user.py::test_stray",
        "FAILED test_user.py::test_stray_in_hypothesis",
        "FAILED test_user.py::test_cancelled_by_a_failing_fixture_reports_the_fixture",
    ]
    # The test a failing fixture cancelled shows the fixture's error, not the guard's.
    assert [("AssertionError(" in line) for line in summary] == [True, True, False]
    result.stdout.fnmatch_lines(["*RuntimeError: fixture broke*"])
