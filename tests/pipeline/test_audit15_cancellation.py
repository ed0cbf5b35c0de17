"""Audit 15: CancellationToken, CleanupRegistry and StructuredTaskGroup.

Regressions for the defects this audit fixed, differential checks against the
reference (``stageflow.pipeline.cancellation`` under asyncio) on the behaviours that
need no clock. A token callback raising a BaseException no longer skips the other
callbacks or leaves waiters asleep, and a cleanup registered under a non-str name is
refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest
import stageflow.pipeline.cancellation as ref
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stageflow_trio.pipeline.cancellation import (
    CancellationToken,
    CleanupRegistry,
    StructuredTaskGroup,
)

# --- StructuredTaskGroup: arguments checked at the call ------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"cancel_token": "stop"},
            r"^StructuredTaskGroup: cancel_token must be a CancellationToken or None; got str$",
        ),
        (
            {"cancel_token": ref.CancellationToken()},
            r"cancel_token must be a CancellationToken or None; got CancellationToken$",
        ),
        (
            {"cleanup_registry": []},
            r"^StructuredTaskGroup: cleanup_registry must be a CleanupRegistry or None; got list$",
        ),
    ],
)
async def test_group_constructor_rejects_wrong_token_or_registry(
    kwargs: dict[str, Any], message: str
) -> None:
    # Before: a wrong token failed with AttributeError inside __aenter__ after the
    # nursery was opened (left open: trio reported "Nursery stack corrupted"); a wrong
    # registry failed with AttributeError at exit, after the tasks, skipping cleanup.
    with pytest.raises(TypeError, match=message):
        StructuredTaskGroup(**kwargs)


async def test_group_constructor_accepts_none_and_real_objects() -> None:
    token, registry = CancellationToken(), CleanupRegistry()
    tg = StructuredTaskGroup(cancel_token=token, cleanup_registry=registry)
    assert tg.cancel_token is token
    assert tg.cleanup_registry is registry
    tg2 = StructuredTaskGroup(cancel_token=None, cleanup_registry=None)
    assert isinstance(tg2.cancel_token, CancellationToken)


async def _sleeper(log: list[str], name: str, seconds: float) -> str:
    await trio.sleep(seconds)
    log.append(name)
    return name


def _sync_function() -> int:
    return 3


async def _takes_one(value: int) -> int:
    await trio.lowlevel.checkpoint()
    return value


@pytest.mark.parametrize(
    ("bad_call", "message"),
    [
        (
            lambda tg: tg.create_task(5),
            r"^StructuredTaskGroup.create_task\(\): coro must be an async function or a "
            r"coroutine object; got int$",
        ),
        (
            lambda tg: tg.create_task(None),
            r"coro must be an async function or a coroutine object; got NoneType$",
        ),
        (
            lambda tg: tg.create_task(_sync_function),
            r"^StructuredTaskGroup.create_task\(\): _sync_function returned int, not an "
            r"awaitable: pass an async function \(async def\) or a coroutine object$",
        ),
        (
            lambda tg: tg.create_task(_takes_one, 1, 2),
            r"_takes_one\(\) takes 1 positional argument but 2 were given",
        ),
    ],
)
async def test_create_task_bad_call_fails_at_the_call_and_cancels_nothing(
    autojump_clock: trio.testing.MockClock,
    bad_call: Callable[[StructuredTaskGroup], object],
    message: str,
) -> None:
    # Before: the call returned a handle and the error surfaced inside the task, as a
    # task failure: the token was cancelled with "Task failed", the sibling and the body
    # were cancelled, and the TypeError escaped the whole block.
    log: list[str] = []
    async with StructuredTaskGroup() as tg:
        sibling = tg.create_task(_sleeper, log, "sibling", 1.0)
        with pytest.raises(TypeError, match=message):
            bad_call(tg)
        await trio.sleep(0.5)
        log.append("body")
    assert log == ["body", "sibling"]
    assert sibling.result() == "sibling"
    assert not tg.cancel_token.is_cancelled
    assert trio.current_time() == 1.0


async def test_create_task_still_takes_functions_partials_and_coroutines() -> None:
    import functools

    log: list[str] = []
    async with StructuredTaskGroup() as tg:
        a = tg.create_task(_sleeper, log, "a", 0)
        b = tg.create_task(functools.partial(_sleeper, log, "b", 0))
        c = tg.create_task(_sleeper(log, "c", 0))
    assert [a.result(), b.result(), c.result()] == ["a", "b", "c"]
    assert a.get_name().endswith("_sleeper")
    assert b.get_name().startswith("functools.partial(")


@pytest.mark.parametrize(("name", "expected"), [(5, "5"), ("job", "job"), ("", "_takes_one")])
async def test_create_task_name_is_a_str(name: object, expected: str) -> None:
    # Before: get_name() returned the object given (an int here); asyncio.create_task
    # turns a non-None name into a str.
    async with StructuredTaskGroup() as tg:
        handle = tg.create_task(_takes_one, 1, name=name)  # type: ignore[arg-type]
    assert handle.get_name() == expected
    assert repr(handle) == f"<TaskHandle {expected!r} finished>"


async def test_create_task_bad_call_outside_block_is_still_runtime_error() -> None:
    tg = StructuredTaskGroup()
    with pytest.raises(RuntimeError, match="needs an active group"):
        tg.create_task(5)  # type: ignore[arg-type]


async def test_group_exit_is_a_checkpoint_and_wait_too() -> None:
    async with StructuredTaskGroup() as tg:
        handle = tg.create_task(_takes_one, 7)
        with trio.testing.assert_checkpoints():
            assert await handle.wait() == 7
    with trio.testing.assert_checkpoints():
        assert await handle.wait() == 7


# --- Differential: the token against the reference ----------------------------------

_CALLBACK_KINDS = ("record", "raise", "cancel_again", "register_more")
_op = st.one_of(
    st.tuples(st.just("on_cancel"), st.sampled_from(_CALLBACK_KINDS)),
    st.tuples(st.just("cancel"), st.sampled_from(["a", "b", "", None])),
)


def _drive_token(token: Any, ops: list[tuple[str, str | None]]) -> tuple[object, ...]:
    log: list[object] = []

    def make(index: int, kind: str | None) -> Callable[[], None]:
        def callback() -> None:
            log.append(index)
            if kind == "raise":
                raise ValueError(f"callback {index}")
            if kind == "cancel_again":
                token.cancel(f"inner {index}")
            if kind == "register_more":
                token.on_cancel(lambda: log.append(("late", index)))

        return callback

    results: list[object] = []
    for index, (op, arg) in enumerate(ops):
        try:
            if op == "on_cancel":
                token.on_cancel(make(index, arg))
            elif arg is None:
                token.cancel()
            else:
                token.cancel(arg)
            results.append("ok")
        except Exception as exc:
            results.append((type(exc).__name__, str(exc)))
    return results, log, token.is_cancelled, token.reason


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_op, max_size=8))
def test_token_matches_the_reference(ops: list[tuple[str, str | None]]) -> None:
    logging.disable(logging.CRITICAL)  # "Error in cancellation callback", on both sides
    try:
        assert _drive_token(CancellationToken(), ops) == _drive_token(ref.CancellationToken(), ops)
    finally:
        logging.disable(logging.NOTSET)


# --- Differential: CleanupRegistry.run_all against the reference ---------------------

# Kinds that need no clock; a callback raising TimeoutError itself is left out (see
# test_cleanup_callback_raising_timeout_error_keeps_its_own_error).
_cleanup_spec = st.tuples(
    st.sampled_from(["ok", "value_error", "runtime_error"]),
    st.one_of(st.none(), st.sampled_from(["db", "cache", "db"])),
)


def _drive_cleanup(
    registry: Any,
    specs: list[tuple[str, str | None]],
    run: Callable[[Callable[[], Coroutine[Any, Any, Any]]], Any],
    pause: Callable[[], Awaitable[None]],
) -> tuple[object, ...]:
    order: list[int] = []

    def make(index: int, kind: str) -> Callable[[], Awaitable[None]]:
        async def callback() -> None:
            await pause()
            order.append(index)
            if kind == "value_error":
                raise ValueError(f"v{index}")
            if kind == "runtime_error":
                raise RuntimeError(f"r{index}")

        callback.__name__ = f"cb{index}"
        return callback

    for index, (kind, name) in enumerate(specs):
        registry.register(make(index, kind), name=name)

    async def go() -> tuple[object, ...]:
        completed, failed = await registry.run_all(timeout=10.0)
        again = await registry.run_all(timeout=10.0)
        return (
            completed,
            [(name, type(exc).__name__, str(exc)) for name, exc in failed],
            registry.pending_count,
            again,
        )

    return run(go), order


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_cleanup_spec, max_size=6))
def test_run_all_matches_the_reference(specs: list[tuple[str, str | None]]) -> None:
    logging.disable(logging.CRITICAL)
    try:
        ours = _drive_cleanup(
            CleanupRegistry(), specs, lambda go: trio.run(go), trio.lowlevel.checkpoint
        )
        theirs = _drive_cleanup(
            ref.CleanupRegistry(), specs, lambda go: asyncio.run(go()), lambda: asyncio.sleep(0)
        )
    finally:
        logging.disable(logging.NOTSET)
    assert ours == theirs


async def test_cleanup_callback_raising_timeout_error_keeps_its_own_error() -> None:
    # An undocumented divergence found by the differential above (proposed parity row):
    # 0.9.1 catches the callback's own TimeoutError as if wait_for had timed out and
    # reports TimeoutError("Cleanup timed out: name"); here it is reported as raised.
    registry = CleanupRegistry()

    async def slow_network() -> None:
        raise TimeoutError("socket read timed out")

    registry.register(slow_network, name="net")
    completed, failed = await registry.run_all(timeout=1.0)
    assert completed == []
    assert [(name, type(exc), str(exc)) for name, exc in failed] == [
        ("net", TimeoutError, "socket read timed out")
    ]


async def test_run_all_share_and_floor_on_the_trio_clock(
    autojump_clock: trio.testing.MockClock,
) -> None:
    registry = CleanupRegistry()
    starts: list[float] = []

    async def hangs() -> None:
        starts.append(trio.current_time())
        await trio.sleep_forever()

    for _ in range(4):
        registry.register(hangs)
    _, failed = await registry.run_all(timeout=0.02)  # 0.005 each: the 0.01 floor wins
    assert starts == pytest.approx([0.0, 0.01, 0.02, 0.03])
    assert len(failed) == 4

    async def sleeps_an_hour() -> None:
        await trio.sleep(3600)

    registry.register(sleeps_an_hour)
    start = trio.current_time()
    completed, _ = await registry.run_all(timeout=math.inf)  # no limit at all
    assert completed == ["sleeps_an_hour"]
    assert trio.current_time() - start == 3600


# --- The token's callbacks and the cleanup registry's names --------------------------


async def test_token_callback_raising_base_exception_still_wakes_waiters(
    autojump_clock: trio.testing.MockClock,
) -> None:
    token = CancellationToken()
    woke: list[float] = []

    def interrupt() -> None:
        raise KeyboardInterrupt

    async def waiter() -> None:
        await token.wait()
        woke.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        with trio.CancelScope() as bound:
            token.on_cancel(interrupt)
            unbind = token.bind_scope(bound)
            await trio.sleep(1)
            with contextlib.suppress(KeyboardInterrupt):
                token.cancel("stop")
            await trio.sleep(1)
        unbind()
        nursery.cancel_scope.deadline = trio.current_time() + 5
    assert bound.cancelled_caught
    assert woke == [1.0]


async def test_cleanup_register_rejects_a_non_str_name() -> None:
    registry = CleanupRegistry()

    async def close() -> None:
        await trio.lowlevel.checkpoint()

    with pytest.raises(TypeError, match="name must be a str or None; got int"):
        registry.register(close, name=5)  # type: ignore[arg-type]
