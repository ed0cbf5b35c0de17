"""CleanupRegistry: LIFO, shielded, per-callback timeouts on the trio clock."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio.pipeline.cancellation import CleanupRegistry

LOGGER = "stageflow_trio.cancellation"


def recorder(log: list[str], name: str, *, delay: float = 0.0) -> Any:
    async def callback() -> None:
        await trio.sleep(delay)
        log.append(name)

    callback.__name__ = name
    return callback


async def blocked_forever() -> None:
    await trio.sleep_forever()


async def test_runs_last_registered_first_and_clears() -> None:
    registry = CleanupRegistry()
    log: list[str] = []
    for name in ("a", "b", "c"):
        registry.register(recorder(log, name))
    assert registry.pending_count == 3
    completed, failed = await registry.run_all()
    assert log == ["c", "b", "a"]
    assert completed == ["c", "b", "a"]
    assert failed == []
    assert registry.pending_count == 0
    assert await registry.run_all() == ([], [])


async def test_continues_after_an_error_and_reports_it(caplog: pytest.LogCaptureFixture) -> None:
    registry = CleanupRegistry()
    log: list[str] = []
    error = OSError("disk gone")

    async def broken() -> None:
        raise error

    registry.register(recorder(log, "first"))
    registry.register(broken, name="broken")
    registry.register(recorder(log, "last"))
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        completed, failed = await registry.run_all()
    assert log == ["last", "first"]
    assert completed == ["last", "first"]
    assert failed == [("broken", error)]
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert messages == [
        ("DEBUG", "Cleanup completed: last"),
        ("ERROR", "Cleanup failed: broken"),
        ("DEBUG", "Cleanup completed: first"),
    ]


async def test_each_callback_gets_its_share_of_the_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    registry = CleanupRegistry()
    log: list[str] = []
    registry.register(blocked_forever, name="stuck-1")
    registry.register(recorder(log, "quick", delay=0.25))
    registry.register(blocked_forever, name="stuck-2")
    registry.register(recorder(log, "slow", delay=0.75))
    start = trio.current_time()
    completed, failed = await registry.run_all(timeout=2.0)
    # Four callbacks, 0.5 s each: slow is cut, quick takes 0.25, the stuck ones 0.5.
    assert trio.current_time() - start == 0.5 + 0.5 + 0.25 + 0.5
    assert completed == ["quick"]
    assert [(name, type(exc), str(exc)) for name, exc in failed] == [
        ("slow", TimeoutError, "Cleanup timed out: slow"),
        ("stuck-2", TimeoutError, "Cleanup timed out: stuck-2"),
        ("stuck-1", TimeoutError, "Cleanup timed out: stuck-1"),
    ]
    assert log == ["quick"]


async def test_the_share_never_drops_below_ten_milliseconds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    registry = CleanupRegistry()
    registry.register(blocked_forever, name="a")
    registry.register(blocked_forever, name="b")
    _, failed = await registry.run_all(timeout=0.0)
    assert trio.current_time() == 0.02
    assert [name for name, _ in failed] == ["b", "a"]


async def test_a_timeout_is_logged_as_a_warning(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    registry = CleanupRegistry()
    registry.register(blocked_forever, name="stuck")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        await registry.run_all(timeout=1.0)
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "Cleanup timed out: stuck")
    ]


async def test_an_outer_cancel_waits_for_cleanup_then_propagates(
    autojump_clock: trio.testing.MockClock,
) -> None:
    registry = CleanupRegistry()
    log: list[str] = []
    for name in ("a", "b", "c"):
        registry.register(recorder(log, name, delay=1.0))
    returned = False
    with trio.move_on_after(1.5) as scope:
        await trio.sleep(1.0)
        # The deadline passes during the second callback: all three still run whole.
        await registry.run_all(timeout=30.0)
        returned = True
    assert scope.cancelled_caught
    assert not returned
    assert log == ["c", "b", "a"]
    assert trio.current_time() == 4.0
    assert registry.pending_count == 0


async def test_cleanup_in_an_already_cancelled_scope_runs_exactly_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    registry = CleanupRegistry()
    log: list[str] = []
    registry.register(recorder(log, "only", delay=1.0))
    registry.register(blocked_forever, name="stuck")
    with trio.CancelScope() as scope:
        scope.cancel()
        await registry.run_all(timeout=4.0)
    assert scope.cancelled_caught
    # The stuck one is cut at its 2 s share even though the scope is cancelled.
    assert trio.current_time() == 2.0 + 1.0
    assert log == ["only"]
    await registry.run_all()
    assert log == ["only"]


async def test_run_all_is_a_checkpoint_on_its_fast_paths() -> None:
    registry = CleanupRegistry()
    with trio.testing.assert_checkpoints():
        await registry.run_all()

    async def no_checkpoint() -> None:
        return None

    registry.register(no_checkpoint)
    with trio.testing.assert_checkpoints():
        await registry.run_all()


class Connection:
    def __init__(self) -> None:
        self.closed = 0

    async def close(self) -> None:
        self.closed += 1


async def test_names_live_beside_the_callback() -> None:
    conn = Connection()
    registry = CleanupRegistry()
    registry.register(conn.close, name="db")
    assert not hasattr(conn.close, "__cleanup_name__")
    assert registry.name_of(conn.close) == "db"
    completed, _ = await registry.run_all()
    assert completed == ["db"]
    assert conn.closed == 1


async def test_default_names() -> None:
    async def release(what: str) -> None:
        await trio.lowlevel.checkpoint()

    async def tagged() -> None:
        await trio.lowlevel.checkpoint()

    tagged.__cleanup_name__ = "tag"  # type: ignore[attr-defined]
    part = functools.partial(release, "x")
    registry = CleanupRegistry()
    registry.register(release_all)
    registry.register(part)
    registry.register(tagged, name="")
    assert registry.name_of(release_all) == "release_all"
    assert registry.name_of(part) == repr(part)
    assert registry.name_of(tagged) == "tag"
    completed, failed = await registry.run_all()
    assert completed == ["tag", repr(part), "release_all"]
    assert failed == []


async def release_all() -> None:
    await trio.lowlevel.checkpoint()


def test_name_of_an_unknown_callback() -> None:
    registry = CleanupRegistry()
    with pytest.raises(
        ValueError,
        match=r"^callback <function release_all at 0x[0-9a-f]+> is not registered in this CleanupRegistry$",
    ):
        registry.name_of(release_all)


async def test_unregister() -> None:
    conn = Connection()
    registry = CleanupRegistry()
    registry.register(conn.close)
    registry.register(release_all)
    # A fresh bound method compares equal to the registered one.
    assert registry.unregister(conn.close)
    assert not registry.unregister(conn.close)
    assert registry.pending_count == 1
    completed, _ = await registry.run_all()
    assert completed == ["release_all"]
    assert conn.closed == 0


def test_reference_cannot_name_a_bound_method(reference: ModuleType) -> None:
    """d23: the reference sets an attribute on the callback; a bound method refuses."""
    ref = reference.pipeline.cancellation
    with pytest.raises(AttributeError):
        ref.CleanupRegistry().register(Connection().close, name="db")
    CleanupRegistry().register(Connection().close, name="db")


def test_report_matches_the_reference(reference: ModuleType) -> None:
    ref = reference.pipeline.cancellation

    def build(registry: Any, sleep: Any) -> list[str]:
        log: list[str] = []

        async def ok_a() -> None:
            await sleep(0)
            log.append("ok_a")

        async def bad() -> None:
            raise ValueError("bad cleanup")

        async def ok_b() -> None:
            log.append("ok_b")

        registry.register(ok_a)
        registry.register(bad)
        registry.register(ok_b, name="named")
        return log

    def summary(result: Any) -> tuple[object, ...]:
        completed, failed = result
        return (completed, [(name, type(exc), str(exc)) for name, exc in failed])

    ref_registry = ref.CleanupRegistry()
    ref_log = build(ref_registry, asyncio.sleep)
    ref_result = summary(asyncio.run(ref_registry.run_all(timeout=1.0)))

    ours = CleanupRegistry()
    our_log = build(ours, trio.sleep)
    our_result = summary(trio.run(functools.partial(ours.run_all, timeout=1.0)))

    assert our_result == ref_result
    assert our_log == ref_log == ["ok_b", "ok_a"]
    assert ours.pending_count == ref_registry.pending_count == 0


async def test_a_callback_registered_during_run_all_runs_next(
    autojump_clock: trio.abc.Clock,
) -> None:
    registry = CleanupRegistry()
    log: list[str] = []

    async def registers_late() -> None:
        registry.register(recorder(log, "late", delay=1))
        log.append("first")

    registry.register(recorder(log, "last"))
    registry.register(registers_late)
    completed, failed = await registry.run_all(timeout=4)
    assert log == ["first", "late", "last"]
    assert (completed, failed) == (["registers_late", "late", "last"], [])
    assert registry.pending_count == 0
    assert trio.current_time() == 1


@pytest.mark.parametrize(
    ("timeout", "error", "message"),
    [
        ("10", TypeError, "timeout must be a number of seconds (int or float), got str"),
        (None, TypeError, "timeout must be a number of seconds (int or float), got NoneType"),
        (True, TypeError, "timeout must be a number of seconds (int or float), got bool"),
        (float("nan"), ValueError, "timeout must be a non-negative number of seconds, got nan"),
        (-1, ValueError, "timeout must be a non-negative number of seconds, got -1"),
    ],
)
async def test_a_bad_timeout_is_refused_before_any_callback_runs(
    timeout: Any, error: type[Exception], message: str
) -> None:
    registry = CleanupRegistry()
    log: list[str] = []
    registry.register(recorder(log, "a"))
    with pytest.raises(error) as info:
        await registry.run_all(timeout=timeout)
    assert str(info.value) == message
    assert (log, registry.pending_count) == ([], 1)


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
async def test_an_interrupted_callback_leaves_the_others_to_run(
    autojump_clock: trio.abc.Clock, exc_type: type[BaseException]
) -> None:
    # Audit 18: run_all ended at the first KeyboardInterrupt (trio delivers a Ctrl-C
    # even in the shielded scope), so the callbacks after it never ran.
    registry = CleanupRegistry()
    ran: list[str] = []
    first, second = exc_type(), exc_type()

    def callback(name: str, exc: BaseException | None = None) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            ran.append(name)
            await trio.sleep(0.1)
            if exc is not None:
                raise exc

        return run

    registry.register(callback("a"), name="a")
    registry.register(callback("b", second), name="b")
    registry.register(callback("c", first), name="c")
    with pytest.raises(exc_type) as caught:
        await registry.run_all()
    assert caught.value is first
    assert ran == ["c", "b", "a"]
    assert registry.pending_count == 0
