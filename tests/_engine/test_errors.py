"""Unwrapping trio's exception groups at the library's boundaries."""

from __future__ import annotations

import traceback

import pytest
import trio
import trio.testing

from stageflow_trio._groups import first_leaf, unwrap_group, unwrapping_groups


async def a_cancelled() -> trio.Cancelled:
    """A real ``trio.Cancelled`` (its constructor is private)."""
    with trio.CancelScope() as scope:
        scope.cancel()
        try:
            await trio.lowlevel.checkpoint()
        except trio.Cancelled as exc:
            caught = exc
            raise
    return caught


class CustomGroup(ExceptionGroup[Exception]):
    """A user-defined group type: must be treated as a leaf."""


def raise_value_error() -> None:
    raise ValueError("boom")


def unwrap_caught(eg: BaseExceptionGroup[BaseException]) -> BaseException:
    try:
        unwrap_group(eg)
    except BaseException as exc:  # the test inspects whatever escaped
        return exc
    raise AssertionError("unwrap_group returned")


def test_first_leaf_of_a_plain_exception_is_itself() -> None:
    exc = ValueError("x")
    assert first_leaf(exc) is exc


async def test_first_leaf_skips_cancelled_and_looks_into_nested_groups() -> None:
    cancelled = await a_cancelled()
    wanted = KeyError("k")
    later = ValueError("v")
    eg = BaseExceptionGroup("outer", [cancelled, BaseExceptionGroup("inner", [wanted]), later])
    assert first_leaf(eg) is wanted


def test_first_leaf_prefers_keyboard_interrupt_over_an_earlier_error() -> None:
    interrupt = KeyboardInterrupt()
    eg = BaseExceptionGroup(
        "g", [ValueError("first"), ExceptionGroup("n", [TypeError()]), interrupt]
    )
    assert first_leaf(eg) is interrupt


async def test_first_leaf_of_an_all_cancelled_group_is_cancelled() -> None:
    first, second = await a_cancelled(), await a_cancelled()
    eg = BaseExceptionGroup("g", [BaseExceptionGroup("n", [first]), second])
    assert first_leaf(eg) is first


def test_a_user_defined_group_subclass_is_a_leaf() -> None:
    custom = CustomGroup("mine", [ValueError("a"), ValueError("b")])
    assert first_leaf(ExceptionGroup("trio", [custom])) is custom
    assert first_leaf(custom) is custom


def test_unwrap_group_reraises_the_same_object_with_its_traceback() -> None:
    try:
        raise_value_error()
    except ValueError as exc:
        original = exc
    escaped = unwrap_caught(ExceptionGroup("g", [original]))
    assert escaped is original
    assert type(escaped) is ValueError
    frames = [frame.name for frame in traceback.extract_tb(escaped.__traceback__)]
    assert "raise_value_error" in frames


async def test_a_lone_leaf_keeps_its_own_context() -> None:
    try:
        try:
            raise KeyError("cause")
        except KeyError:
            raise_value_error()
    except ValueError as exc:
        leaf = exc
    own_context = leaf.__context__
    assert isinstance(own_context, KeyError)
    escaped = unwrap_caught(BaseExceptionGroup("g", [await a_cancelled(), leaf]))
    assert escaped is leaf
    assert escaped.__context__ is own_context


def test_a_lone_leaf_without_context_gets_none() -> None:
    leaf = ValueError("x")
    escaped = unwrap_caught(ExceptionGroup("g", [leaf]))
    assert escaped.__context__ is None


def test_several_real_errors_keep_the_group_as_context() -> None:
    first, second = ValueError("first"), TypeError("second")
    eg = ExceptionGroup("g", [first, second])
    escaped = unwrap_caught(eg)
    assert escaped is first
    assert escaped.__context__ is eg


async def test_an_all_cancelled_group_is_caught_by_the_cancelled_scope() -> None:
    async def sleeper() -> None:
        await trio.sleep_forever()

    escaped: list[BaseException] = []
    with trio.CancelScope() as outer:
        try:
            with unwrapping_groups():
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(sleeper)
                    nursery.start_soon(sleeper)
                    await trio.testing.wait_all_tasks_blocked()
                    outer.cancel()
                    # The nursery's own body: its Cancelled joins the group too.
                    await trio.sleep_forever()
        except BaseException as exc:  # recorded, then re-raised to the scope
            escaped.append(exc)
            raise
    assert outer.cancelled_caught
    assert len(escaped) == 1
    assert type(escaped[0]) is trio.Cancelled


async def test_unwrapping_groups_unwraps_a_failing_nursery(
    autojump_clock: trio.abc.Clock,
) -> None:
    async def fail() -> None:
        await trio.sleep(1)
        raise ValueError("task failed")

    async def run() -> None:
        with unwrapping_groups():
            async with trio.open_nursery() as nursery:
                nursery.start_soon(fail)
                await trio.sleep_forever()

    with pytest.raises(ValueError, match=r"^task failed$") as info:
        await run()
    assert info.value.__context__ is None
    assert trio.current_time() == 1.0  # virtual: the task failed after its one-second sleep


def test_unwrapping_groups_passes_other_exceptions_through() -> None:
    custom = CustomGroup("mine", [ValueError("a")])
    with pytest.raises(CustomGroup) as info, unwrapping_groups():
        raise custom
    assert info.value is custom
    with pytest.raises(KeyError, match=r"^'plain'$"), unwrapping_groups():
        raise KeyError("plain")


def test_unwrapping_groups_is_silent_without_an_error() -> None:
    ran = []
    with unwrapping_groups():
        ran.append(1)
    assert ran == [1]
