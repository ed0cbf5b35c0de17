"""cleanup_on_cancel and run_with_cleanup: one cleanup, always, shielded."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import trio
import trio.testing

from stageflow_trio.pipeline.cancellation import cleanup_on_cancel, run_with_cleanup
from tests.doc_blocks import python_blocks, run_in_virtual_time

LOGGER = "stageflow_trio.cancellation"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "cancellation.md"


class Resource:
    def __init__(self, cleanup_seconds: float = 0.0) -> None:
        self.cleanup_seconds = cleanup_seconds
        self.closed_at: list[float] = []

    async def close(self) -> None:
        await trio.sleep(self.cleanup_seconds)
        self.closed_at.append(trio.current_time())


# cleanup_on_cancel


async def test_cleanup_on_normal_exit_is_a_checkpoint() -> None:
    resource = Resource()
    with trio.testing.assert_checkpoints():
        async with cleanup_on_cancel(resource.close):
            pass
    assert len(resource.closed_at) == 1


async def test_cleanup_on_an_error_keeps_the_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    resource = Resource(cleanup_seconds=1.0)
    error = ValueError("work failed")
    with pytest.raises(ValueError, match=r"^work failed$") as info:
        async with cleanup_on_cancel(resource.close):
            raise error
    assert info.value is error
    assert resource.closed_at == [1.0]


async def test_cleanup_on_cancel_is_shielded(autojump_clock: trio.testing.MockClock) -> None:
    resource = Resource(cleanup_seconds=2.0)
    reached = False
    with trio.move_on_after(1.0) as scope:
        async with cleanup_on_cancel(resource.close, name="conn"):
            await trio.sleep_forever()
        # mypy knows this is unreachable; the test checks cleanup_on_cancel agrees.
        reached = True  # type: ignore[unreachable]
    assert scope.cancelled_caught
    assert not reached
    assert resource.closed_at == [3.0]


async def test_a_failing_cleanup_propagates_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken() -> None:
        raise OSError("close failed")

    body_error = KeyError("body")
    with pytest.raises(OSError, match=r"^close failed$") as info:
        async with cleanup_on_cancel(broken, name="conn"):
            raise body_error
    assert info.value.__context__ is body_error
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("ERROR", "Cleanup failed: conn")
    ]


async def test_success_is_logged_only_with_a_name(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        async with cleanup_on_cancel(Resource().close):
            pass
        async with cleanup_on_cancel(Resource().close, name="named"):
            pass
    assert [r.getMessage() for r in caplog.records] == ["Cleanup completed: named"]


# run_with_cleanup


async def test_run_with_cleanup_returns_after_cleanup(
    autojump_clock: trio.testing.MockClock,
) -> None:
    resource = Resource(cleanup_seconds=1.0)

    async def work() -> str:
        await trio.sleep(2.0)
        return "result"

    assert await run_with_cleanup(work(), resource.close) == "result"
    assert resource.closed_at == [3.0]
    assert trio.current_time() == 3.0


async def test_run_with_cleanup_is_a_checkpoint_on_its_fast_path() -> None:
    async def instant() -> int:
        return 1

    async def no_op() -> None:
        return None

    with trio.testing.assert_checkpoints():
        assert await run_with_cleanup(instant(), no_op) == 1


async def test_a_slow_cleanup_is_cut_and_not_raised(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    async def work() -> int:
        return 5

    resource = Resource(cleanup_seconds=60.0)
    assert await run_with_cleanup(work(), resource.close, cleanup_timeout=2.5) == 5
    assert trio.current_time() == 2.5
    assert resource.closed_at == []
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "Cleanup timed out")
    ]


async def test_a_timeout_raised_by_the_cleanup_itself_is_suppressed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def work() -> int:
        return 5

    async def times_out() -> None:
        raise TimeoutError("inner")

    assert await run_with_cleanup(work(), times_out) == 5
    assert [r.getMessage() for r in caplog.records] == ["Cleanup timed out"]


async def test_a_failing_cleanup_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    async def work() -> int:
        return 5

    async def broken() -> None:
        raise OSError("close failed")

    assert await run_with_cleanup(work(), broken) == 5
    [record] = caplog.records
    assert (record.levelname, record.getMessage()) == ("ERROR", "Cleanup failed")
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], OSError)


async def test_the_work_error_escapes_after_cleanup(
    autojump_clock: trio.testing.MockClock,
) -> None:
    resource = Resource(cleanup_seconds=1.0)
    error = ValueError("work failed")

    async def work() -> None:
        await trio.sleep(1.0)
        raise error

    with pytest.raises(ValueError, match=r"^work failed$") as info:
        await run_with_cleanup(work(), resource.close)
    assert info.value is error
    assert resource.closed_at == [2.0]


async def test_cancelled_work_is_cleaned_up_and_stays_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    resource = Resource(cleanup_seconds=1.0)

    async def forever() -> None:
        await trio.sleep_forever()

    returned = False
    with trio.move_on_after(2.0) as scope:
        await run_with_cleanup(forever(), resource.close)
        returned = True
    assert scope.cancelled_caught
    assert not returned
    assert resource.closed_at == [3.0]


# docs/cancellation.md


def _doc_examples() -> list[str]:
    return python_blocks(DOCS)


def test_the_docs_have_examples() -> None:
    assert len(_doc_examples()) >= 4


@pytest.mark.parametrize("example", _doc_examples())
def test_docs_example_runs(example: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each example ends with ``trio.run(main)``; it runs here on a virtual clock."""
    assert run_in_virtual_time(example, str(DOCS), monkeypatch) == 1
