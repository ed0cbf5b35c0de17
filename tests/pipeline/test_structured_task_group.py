"""StructuredTaskGroup: a nursery shim with a token, shielded cleanup and unwrapped errors."""

from __future__ import annotations

import asyncio
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest
import trio
import trio.testing

from stageflow_trio.pipeline.cancellation import (
    CancellationToken,
    CleanupRegistry,
    StructuredTaskGroup,
    TaskHandle,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine


class Journal:
    """What happened, and when on the virtual clock."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, float]] = []

    def note(self, what: str) -> None:
        self.entries.append((what, trio.current_time()))

    async def cleanup(self) -> None:
        self.note("cleanup")

    async def sleeper(self, name: str, seconds: float) -> str:
        try:
            await trio.sleep(seconds)
        finally:
            self.note(f"{name} ended")
        return name


async def fail_after(seconds: float, error: BaseException) -> None:
    await trio.sleep(seconds)
    raise error


async def test_success_waits_for_every_task_and_still_cleans_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    async with StructuredTaskGroup() as tg:
        tg.cleanup_registry.register(journal.cleanup)
        a = tg.create_task(journal.sleeper, "a", 1.0)
        b = tg.create_task(journal.sleeper("b", 2.0))
    assert journal.entries == [("a ended", 1.0), ("b ended", 2.0), ("cleanup", 2.0)]
    assert (a.result(), b.result()) == ("a", "b")
    assert a.exception() is None
    assert not tg.cancel_token.is_cancelled


async def test_a_failing_task_cancels_its_siblings_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    error = ValueError("stage broke")
    tg = StructuredTaskGroup()
    tg.cleanup_registry.register(journal.cleanup)

    async def run() -> None:
        async with tg:
            handles.append(tg.create_task(journal.sleeper, "slow", 100.0))
            handles.append(tg.create_task(fail_after, 1.0, error))
            await trio.sleep_forever()

    handles: list[TaskHandle[Any]] = []
    with pytest.raises(ValueError, match=r"^stage broke$") as info:
        await run()
    slow, broken = handles
    assert info.value is error
    assert journal.entries == [("slow ended", 1.0), ("cleanup", 1.0)]
    assert tg.cancel_token.reason == "Task failed"
    assert slow.cancelled()
    assert broken.exception() is error
    with pytest.raises(ValueError, match=r"^stage broke$"):
        broken.result()


async def test_an_error_in_the_body_cancels_the_tasks(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    error = KeyError("body")
    tg = StructuredTaskGroup()
    tg.cleanup_registry.register(journal.cleanup)

    async def run() -> None:
        async with tg:
            tg.create_task(journal.sleeper, "task", 100.0)
            await trio.sleep(2.0)
            raise error

    with pytest.raises(KeyError) as info:
        await run()
    assert info.value is error
    assert journal.entries == [("task ended", 2.0), ("cleanup", 2.0)]
    assert tg.cancel_token.reason == "Exception in task group"


async def test_keyboard_interrupt_in_a_task_still_runs_cleanup(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    interrupt = KeyboardInterrupt()
    tg = StructuredTaskGroup()
    tg.cleanup_registry.register(journal.cleanup)

    async def run() -> None:
        async with tg:
            tg.create_task(journal.sleeper, "other", 100.0)
            tg.create_task(fail_after, 3.0, interrupt)

    with pytest.raises(KeyboardInterrupt) as info:
        await run()
    assert info.value is interrupt
    assert journal.entries == [("other ended", 3.0), ("cleanup", 3.0)]
    assert tg.cancel_token.reason == "Task failed"


async def test_an_outer_cancel_propagates_after_shielded_cleanup(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()

    async def slow_cleanup() -> None:
        await trio.sleep(2.0)
        journal.note("slow cleanup")

    after_block = False
    with trio.move_on_after(1.0) as outer:
        async with StructuredTaskGroup() as tg:
            tg.cleanup_registry.register(slow_cleanup)
            tg.create_task(journal.sleeper, "task", 100.0)
            await trio.sleep_forever()
        after_block = True
    assert outer.cancelled_caught
    assert not after_block
    assert journal.entries == [("task ended", 1.0), ("slow cleanup", 3.0)]
    assert tg.cancel_token.reason == "Exception in task group"


async def test_an_error_during_an_outer_cancel_is_not_replaced_by_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    error = ValueError("failed while being cancelled")

    async def fails_on_cancel() -> None:
        try:
            await trio.sleep_forever()
        finally:
            raise error

    async def run() -> None:
        with trio.move_on_after(1.0):
            async with StructuredTaskGroup() as tg:
                tg.cleanup_registry.register(journal.cleanup)
                tg.create_task(fails_on_cancel)
                await trio.sleep_forever()

    with pytest.raises(ValueError, match=r"^failed while being cancelled$") as info:
        await run()
    assert info.value is error
    assert journal.entries == [("cleanup", 1.0)]


async def test_the_first_failure_wins_over_later_ones(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def fail_while_cancelled() -> None:
        try:
            await trio.sleep_forever()
        finally:
            raise RuntimeError("during cancel")

    first = ValueError("first")

    async def run() -> None:
        async with StructuredTaskGroup() as tg:
            tg.create_task(fail_while_cancelled)
            tg.create_task(fail_after, 1.0, first)

    with pytest.raises(ValueError, match=r"^first$") as info:
        await run()
    assert info.value is first
    # Both failures are kept for debugging on the context.
    assert isinstance(first.__context__, BaseExceptionGroup)


async def test_cancelling_the_token_cancels_tasks_and_body(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    body_finished = False
    async with StructuredTaskGroup() as tg:
        tg.cleanup_registry.register(journal.cleanup)
        task = tg.create_task(journal.sleeper, "task", 100.0)
        await trio.sleep(1.5)
        tg.cancel_token.cancel("user abort")
        await trio.sleep(1.0)
        body_finished = True
    assert not body_finished
    assert task.cancelled()
    assert journal.entries == [("task ended", 1.5), ("cleanup", 1.5)]
    assert tg.cancel_token.reason == "user abort"


async def test_a_shared_token_and_registry_are_used(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    token, registry = CancellationToken(), CleanupRegistry()
    registry.register(journal.cleanup)
    tg = StructuredTaskGroup(cancel_token=token, cleanup_registry=registry)

    async def run() -> None:
        async with tg:
            tg.create_task(fail_after, 0.5, OSError("io"))

    with pytest.raises(OSError, match=r"^io$"):
        await run()
    assert tg.cancel_token is token
    assert tg.cleanup_registry is registry
    assert token.reason == "Task failed"
    assert journal.entries == [("cleanup", 0.5)]
    assert registry.pending_count == 0


async def test_an_already_cancelled_token_stops_the_group_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    token = CancellationToken()
    token.cancel("before start")
    async with StructuredTaskGroup(cancel_token=token) as tg:
        task = tg.create_task(journal.sleeper, "task", 5.0)
        await trio.sleep(5.0)
    assert trio.current_time() == 0.0
    assert task.cancelled()


async def test_cleanup_is_bounded_by_cleanup_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def stuck() -> None:
        await trio.sleep_forever()

    async with StructuredTaskGroup(cleanup_timeout=4.0) as tg:
        tg.cleanup_registry.register(stuck, name="stuck")
        tg.cleanup_registry.register(stuck, name="stuck-too")
    assert trio.current_time() == 4.0
    assert tg.cleanup_registry.pending_count == 0


async def test_nothing_started_outlives_the_block(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    handles: list[TaskHandle[Any]] = []
    with trio.move_on_after(1.0):
        async with StructuredTaskGroup() as tg:

            async def spawner() -> None:
                handles.append(tg.create_task(journal.sleeper, "grandchild", 50.0))
                await trio.sleep(50.0)

            handles.append(tg.create_task(spawner))
    assert len(handles) == 2
    assert all(handle.done() for handle in handles)
    await trio.sleep(100.0)
    assert journal.entries == [("grandchild ended", 1.0)]


async def test_a_handle_can_cancel_one_task(autojump_clock: trio.testing.MockClock) -> None:
    journal = Journal()
    async with StructuredTaskGroup() as tg:
        victim = tg.create_task(journal.sleeper, "victim", 10.0, name="victim")
        survivor = tg.create_task(journal.sleeper, "survivor", 2.0)
        assert not victim.done()
        await trio.sleep(1.0)
        victim.cancel()
        assert await survivor.wait() == "survivor"
    assert victim.cancelled()
    assert victim.get_name() == "victim"
    assert repr(victim) == "<TaskHandle 'victim' cancelled>"
    assert not tg.cancel_token.is_cancelled
    with pytest.raises(RuntimeError, match=r"^task 'victim' has no result: it is cancelled$"):
        victim.result()
    with pytest.raises(RuntimeError, match=r"^task 'victim' has no exception: it is cancelled$"):
        victim.exception()
    assert journal.entries == [("victim ended", 1.0), ("survivor ended", 2.0)]


async def test_waiting_on_a_finished_handle_is_a_checkpoint() -> None:
    async def value() -> int:
        return 7

    async with StructuredTaskGroup() as tg:
        handle = tg.create_task(value)
        with pytest.raises(RuntimeError, match=r"^task '.*value' has no result: it is pending$"):
            handle.result()
    with trio.testing.assert_checkpoints():
        assert await handle.wait() == 7


async def test_an_empty_group_is_a_checkpoint() -> None:
    with trio.testing.assert_checkpoints():
        async with StructuredTaskGroup():
            pass


async def test_create_task_outside_the_block() -> None:
    tg = StructuredTaskGroup()

    async def work() -> None:
        await trio.lowlevel.checkpoint()

    message = (
        r"^StructuredTaskGroup.create_task\(\) needs an active group: "
        r"call it inside 'async with StructuredTaskGroup\(\) as tg:'$"
    )
    with pytest.raises(RuntimeError, match=message):
        tg.create_task(work())  # the coroutine is closed, so no "never awaited" warning
    async with tg:
        pass
    with pytest.raises(RuntimeError, match=message):
        tg.create_task(work)


async def test_a_coroutine_with_arguments_is_refused() -> None:
    async def work(n: int) -> int:
        return n

    async with StructuredTaskGroup() as tg:
        with pytest.raises(
            TypeError,
            match=r"^StructuredTaskGroup.create_task\(\) takes either a coroutine object or "
            r"an async function and its arguments, not a coroutine and arguments$",
        ):
            tg.create_task(work(1), 2)


async def test_a_group_cannot_be_entered_twice() -> None:
    tg = StructuredTaskGroup()
    async with tg:
        pass
    with pytest.raises(
        RuntimeError, match=r"^StructuredTaskGroup cannot be entered twice: create a new one$"
    ):
        async with tg:
            pass


def test_reasons_and_error_match_the_reference(reference: ModuleType) -> None:
    ref = reference.pipeline.cancellation

    def scenario(
        group: Any, sleep: Callable[[float], Awaitable[None]], body_error: bool
    ) -> Callable[[], Coroutine[Any, Any, tuple[object, ...]]]:
        async def boom() -> None:
            await sleep(0.01)
            raise ValueError("task boom")

        async def main() -> tuple[object, ...]:
            try:
                async with group as tg:
                    tg.create_task(boom())
                    if body_error:
                        raise LookupError("body boom")
            except Exception as exc:
                return (type(exc), str(exc), group.cancel_token.reason)
            return ("no error",)

        return main

    for body_error in (False, True):
        expected = asyncio.run(scenario(ref.StructuredTaskGroup(), asyncio.sleep, body_error)())
        actual = trio.run(
            scenario(StructuredTaskGroup(), trio.sleep, body_error),
            clock=trio.testing.MockClock(autojump_threshold=0),
        )
        assert actual == expected
        assert actual[0] is (LookupError if body_error else ValueError)
