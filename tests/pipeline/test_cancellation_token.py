"""CancellationToken: the reference's flag API plus wait() and cancel-scope binding."""

from __future__ import annotations

import logging
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest
import trio
import trio.testing

from stageflow_trio.pipeline.cancellation import CancellationToken

if TYPE_CHECKING:
    from collections.abc import Callable

LOGGER = "stageflow_trio.cancellation"


def test_a_new_token_is_not_cancelled() -> None:
    token = CancellationToken()
    assert not token.is_cancelled
    assert token.reason is None


def test_cancel_uses_the_default_reason() -> None:
    token = CancellationToken()
    token.cancel()
    assert token.is_cancelled
    assert token.reason == "Cancellation requested"


def test_the_first_reason_wins_and_callbacks_run_once() -> None:
    token = CancellationToken()
    calls: list[str] = []
    token.on_cancel(lambda: calls.append("a"))
    token.on_cancel(lambda: calls.append("b"))
    token.cancel("first")
    token.cancel("second")
    assert token.reason == "first"
    assert calls == ["a", "b"]


def test_on_cancel_runs_at_once_when_already_cancelled() -> None:
    token = CancellationToken()
    token.cancel("done")
    calls: list[str] = []
    token.on_cancel(lambda: calls.append("late"))
    assert calls == ["late"]


def test_callback_errors_are_logged_and_the_rest_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = CancellationToken()
    calls: list[str] = []

    def broken() -> None:
        raise RuntimeError("callback broke")

    token.on_cancel(broken)
    token.on_cancel(lambda: calls.append("after"))
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        token.cancel("stop")
    assert calls == ["after"]
    [record] = caplog.records
    assert record.name == LOGGER
    assert record.getMessage() == "Error in cancellation callback"
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)


def test_an_immediate_callback_error_reaches_the_caller() -> None:
    token = CancellationToken()
    token.cancel()

    def broken() -> None:
        raise RuntimeError("immediate")

    with pytest.raises(RuntimeError, match=r"^immediate$"):
        token.on_cancel(broken)


def _drive(token: Any, calls: list[str]) -> tuple[object, ...]:
    """One call sequence, applied to either implementation."""
    outcome: list[object] = []
    token.on_cancel(lambda: calls.append("early"))
    outcome.append((token.is_cancelled, token.reason))
    token.cancel("why")
    token.cancel("again")
    token.on_cancel(lambda: calls.append("late"))

    def broken() -> None:
        raise RuntimeError("x")

    try:
        token.on_cancel(broken)
    except RuntimeError as exc:
        outcome.append(str(exc))
    outcome.append((token.is_cancelled, token.reason))
    return tuple(outcome)


def test_matches_the_reference(reference: ModuleType) -> None:
    ref = reference.pipeline.cancellation
    ours_calls: list[str] = []
    ref_calls: list[str] = []
    assert _drive(CancellationToken(), ours_calls) == _drive(ref.CancellationToken(), ref_calls)
    assert ours_calls == ref_calls == ["early", "late"]


async def test_wait_returns_when_cancelled(autojump_clock: trio.testing.MockClock) -> None:
    token = CancellationToken()

    async def cancel_later() -> None:
        await trio.sleep(2.5)
        token.cancel("late")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(cancel_later)
        with trio.fail_after(10):  # a broken wait() fails instead of hanging
            await token.wait()
        assert trio.current_time() == 2.5
    assert token.reason == "late"


async def test_wait_on_a_cancelled_token_is_a_checkpoint() -> None:
    token = CancellationToken()
    token.cancel()
    with trio.testing.assert_checkpoints():
        await token.wait()


async def test_wait_is_interrupted_by_an_outer_cancel(
    autojump_clock: trio.testing.MockClock,
) -> None:
    token = CancellationToken()
    with trio.move_on_after(1) as scope:
        await token.wait()
    assert scope.cancelled_caught
    assert trio.current_time() == 1
    assert not token.is_cancelled


async def test_a_bound_scope_is_cancelled_with_the_token_reason(
    autojump_clock: trio.testing.MockClock,
) -> None:
    token = CancellationToken()
    reasons: list[str | None] = []

    async def stage() -> None:
        with trio.CancelScope() as scope:
            token.bind_scope(scope)
            try:
                await trio.sleep(100)
            except trio.Cancelled as exc:
                reasons.append(exc.reason)
                raise
        assert scope.cancelled_caught

    async with trio.open_nursery() as nursery:
        nursery.start_soon(stage)
        await trio.sleep(3)
        token.cancel("user abort")
    assert trio.current_time() == 3
    assert reasons == ["user abort"]


async def test_binding_an_already_cancelled_token_cancels_at_once() -> None:
    token = CancellationToken()
    token.cancel("gone")
    with trio.CancelScope() as scope:
        unbind = token.bind_scope(scope)
        assert scope.cancel_called
        await trio.lowlevel.checkpoint()
    assert scope.cancelled_caught
    unbind()  # harmless


async def test_unbind_detaches_the_scope() -> None:
    token = CancellationToken()
    scope = trio.CancelScope()
    unbind: Callable[[], None] = token.bind_scope(scope)
    unbind()
    unbind()  # twice is harmless
    token.cancel()
    assert not scope.cancel_called


async def test_unbind_leaves_other_callbacks_in_place() -> None:
    token = CancellationToken()
    first, second = trio.CancelScope(), trio.CancelScope()
    token.bind_scope(first)
    unbind_second = token.bind_scope(second)
    calls: list[str] = []
    token.on_cancel(lambda: calls.append("cb"))
    unbind_second()
    token.cancel()
    assert first.cancel_called
    assert not second.cancel_called
    assert calls == ["cb"]
