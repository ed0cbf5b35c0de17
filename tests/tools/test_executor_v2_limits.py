"""Tests for the optional concurrency limits of AdvancedToolExecutor (an addition to the reference).

All in virtual time: the tools sleep on the trio clock and the asserts give exact instants.
"""

from __future__ import annotations

import uuid
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from stageflow_trio.events import set_event_sink
from stageflow_trio.testing import RecordingEventSink
from stageflow_trio.tools.adapters import DictContextAdapter
from stageflow_trio.tools.approval import ApprovalService
from stageflow_trio.tools.definitions import ToolDefinition, ToolInput, ToolOutput
from stageflow_trio.tools.errors import ToolExecutionError
from stageflow_trio.tools.executor_v2 import AdvancedToolExecutor, ToolExecutorConfig
from stageflow_trio.tools.undo import UndoStore


@attrs.frozen
class Act:
    id: uuid.UUID
    type: str
    payload: dict[str, Any]


CTX = DictContextAdapter({"pipeline_run_id": str(uuid.uuid4()), "execution_mode": "agent"})


class Clockwork:
    """Tools that sleep on the trio clock and record when each call starts and ends."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str, float]] = []

    def tool(self, action_type: str, seconds: float = 1.0, **kwargs: Any) -> ToolDefinition:
        async def handler(tool_input: ToolInput) -> ToolOutput:
            label = tool_input.payload["label"]
            self.log.append((label, "start", trio.current_time()))
            await trio.sleep(seconds)
            if tool_input.payload.get("fail"):
                raise RuntimeError("boom")
            self.log.append((label, "end", trio.current_time()))
            return ToolOutput.ok(data=label)

        return ToolDefinition(
            name=action_type.lower(), action_type=action_type, handler=handler, **kwargs
        )

    def times(self, what: str) -> dict[str, float]:
        return {label: t for label, kind, t in self.log if kind == what}


@pytest.fixture
def sink() -> RecordingEventSink:
    recorder = RecordingEventSink()
    set_event_sink(recorder)
    return recorder


def make_executor(
    *tools: ToolDefinition, approvals: ApprovalService | None = None, **config: Any
) -> AdvancedToolExecutor:
    executor = AdvancedToolExecutor(
        ToolExecutorConfig(**config),
        undo_store=UndoStore(),
        approval_service=ApprovalService() if approvals is None else approvals,
    )
    for tool in tools:
        executor.register(tool)
    return executor


async def call(executor: AdvancedToolExecutor, action_type: str, label: str, **extra: Any) -> None:
    await executor.execute(Act(uuid.uuid4(), action_type, {"label": label, **extra}), CTX)


async def run_in_order(executor: AdvancedToolExecutor, calls: list[tuple[str, str]]) -> None:
    """Start the calls in list order (each reaches its first wait before the next starts)."""
    async with trio.open_nursery() as nursery:
        for action_type, label in calls:
            nursery.start_soon(call, executor, action_type, label)
            await trio.testing.wait_all_tasks_blocked()


async def test_without_limits_every_call_runs_at_once(
    autojump_clock: trio.testing.MockClock, sink: RecordingEventSink
) -> None:
    work = Clockwork()
    executor = make_executor(work.tool("SLEEP"))
    await run_in_order(executor, [("SLEEP", str(i)) for i in range(5)])
    assert list(work.times("end").values()) == [1.0] * 5


async def test_max_concurrent_two_runs_five_calls_in_three_waves(
    autojump_clock: trio.testing.MockClock, sink: RecordingEventSink
) -> None:
    work = Clockwork()
    executor = make_executor(work.tool("SLEEP"), max_concurrent=2)
    await run_in_order(executor, [("SLEEP", str(i)) for i in range(5)])
    assert work.times("start") == {"0": 0.0, "1": 0.0, "2": 1.0, "3": 1.0, "4": 2.0}
    assert work.times("end") == {"0": 1.0, "1": 1.0, "2": 2.0, "3": 2.0, "4": 3.0}
    # The wait for a slot comes before tool.started, so durations are the tool's own.
    durations = [
        data["duration_ms"]
        for kind, data in sink.events
        if kind == "tool.completed" and data is not None
    ]
    assert durations == [1000.0] * 5


async def test_max_concurrent_counts_calls_of_every_tool(
    autojump_clock: trio.testing.MockClock, sink: RecordingEventSink
) -> None:
    work = Clockwork()
    executor = make_executor(work.tool("A"), work.tool("B"), max_concurrent=1)
    await run_in_order(executor, [("A", "a"), ("B", "b")])
    assert work.times("end") == {"a": 1.0, "b": 2.0}


async def test_per_tool_limit_does_not_block_other_tools(
    autojump_clock: trio.testing.MockClock, sink: RecordingEventSink
) -> None:
    work = Clockwork()
    executor = make_executor(work.tool("A"), work.tool("B"), max_concurrent_per_tool=1)
    await run_in_order(executor, [("A", "a1"), ("A", "a2"), ("B", "b1"), ("B", "b2")])
    assert work.times("end") == {"a1": 1.0, "a2": 2.0, "b1": 1.0, "b2": 2.0}


async def test_a_call_waiting_for_its_tool_holds_no_executor_slot(
    autojump_clock: trio.testing.MockClock, sink: RecordingEventSink
) -> None:
    # a2 waits for A's only slot; if it took an executor-wide slot first, b would wait too.
    work = Clockwork()
    executor = make_executor(
        work.tool("A"), work.tool("B"), max_concurrent=2, max_concurrent_per_tool=1
    )
    await run_in_order(executor, [("A", "a1"), ("A", "a2"), ("B", "b")])
    assert work.times("end") == {"a1": 1.0, "b": 1.0, "a2": 2.0}


async def test_a_cancelled_waiter_leaves_no_slot_taken(
    autojump_clock: trio.testing.MockClock, sink: RecordingEventSink
) -> None:
    work = Clockwork()
    executor = make_executor(work.tool("A"), max_concurrent=1, max_concurrent_per_tool=1)

    async def gives_up(label: str) -> None:
        with trio.move_on_after(0.5):
            await call(executor, "A", label)

    with trio.fail_after(10):  # a leaked slot would block "after" for ever
        async with trio.open_nursery() as nursery:
            nursery.start_soon(call, executor, "A", "first")
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(gives_up, "quitter")
            await trio.sleep(0.75)
            nursery.start_soon(call, executor, "A", "after")
    assert work.times("start") == {"first": 0.0, "after": 1.0}
    assert work.times("end") == {"first": 1.0, "after": 2.0}
    # The quitter never started: tool.invoked only.
    assert [kind for kind, _ in sink.events].count("tool.started") == 2
    assert [kind for kind, _ in sink.events].count("tool.invoked") == 3


async def test_slots_are_released_when_the_tool_fails_or_is_cancelled(
    autojump_clock: trio.testing.MockClock, sink: RecordingEventSink
) -> None:
    work = Clockwork()
    executor = make_executor(work.tool("A"), max_concurrent=1, max_concurrent_per_tool=1)
    with pytest.raises(ToolExecutionError):
        await call(executor, "A", "fails", fail=True)
    with trio.move_on_after(0.5):
        await call(executor, "A", "cancelled")
    with trio.fail_after(10):
        await call(executor, "A", "last")
    assert work.times("start") == {"fails": 0.0, "cancelled": 1.0, "last": 1.5}
    assert work.times("end") == {"last": 2.5}


async def test_an_approval_wait_holds_no_slot(
    autojump_clock: trio.testing.MockClock, sink: RecordingEventSink
) -> None:
    work = Clockwork()
    approvals = ApprovalService()
    executor = make_executor(
        work.tool("GATED", requires_approval=True),
        work.tool("FREE"),
        approvals=approvals,
        max_concurrent=1,
        max_concurrent_per_tool=1,
    )

    async def approve(label: str) -> None:
        [request] = [
            r for r in await approvals.get_pending_requests() if r.payload_summary["label"] == label
        ]
        await approvals.record_decision(request.id, granted=True)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(call, executor, "GATED", "g1")
        nursery.start_soon(call, executor, "GATED", "g2")
        await trio.testing.wait_all_tasks_blocked()
        # Both gated calls wait for a human: neither the executor's nor GATED's slot is taken.
        await call(executor, "FREE", "free")
        assert trio.current_time() == 1.0
        await approve("g2")
        await trio.sleep(0.5)
        await approve("g1")  # g2 runs until 2.0; g1 waits for the slot
    assert work.times("start") == {"free": 0.0, "g2": 1.0, "g1": 2.0}
    assert work.times("end") == {"free": 1.0, "g2": 2.0, "g1": 3.0}


def test_limits_default_to_none_after_the_reference_fields() -> None:
    config = ToolExecutorConfig(30.0, 60.0, False, 10)
    assert (config.approval_timeout_seconds, config.log_level) == (30.0, 10)
    assert (config.max_concurrent, config.max_concurrent_per_tool) == (None, None)
    assert ToolExecutorConfig(max_concurrent=1, max_concurrent_per_tool=3).max_concurrent == 1


@pytest.mark.parametrize("field", ["max_concurrent", "max_concurrent_per_tool"])
@pytest.mark.parametrize(
    ("value", "error", "rule"),
    [
        ("2", TypeError, "must be an int or None; got str"),
        (True, TypeError, "must be an int or None; got bool"),
        (1.5, TypeError, "must be an int or None; got float"),
        (0, ValueError, "must be at least 1; got 0"),
        (-3, ValueError, "must be at least 1; got -3"),
    ],
)
def test_bad_limits_are_rejected(
    field: str, value: object, error: type[Exception], rule: str
) -> None:
    kwargs: dict[str, Any] = {field: value}
    with pytest.raises(error, match=rf"^ToolExecutorConfig: {field} {rule}$"):
        ToolExecutorConfig(**kwargs)


async def test_a_tool_that_calls_its_own_executor_needs_a_free_slot(
    autojump_clock: trio.testing.MockClock, sink: RecordingEventSink
) -> None:
    # Documented (docs/tools_execution.md): slots are not reentrant. With one slot, the
    # outer call holds it while its inner call waits for it; with two, both run.
    work = Clockwork()
    for limit, finishes in [(2, True), (1, False)]:
        executor = make_executor(work.tool("INNER"), max_concurrent=limit)

        async def outer(tool_input: ToolInput, executor: AdvancedToolExecutor = executor) -> Any:
            await call(executor, "INNER", "inner")
            return ToolOutput.ok(data={"label": "outer"})

        executor.register(ToolDefinition(name="outer", action_type="OUTER", handler=outer))
        with trio.move_on_after(60) as scope:
            await call(executor, "OUTER", "outer")
        assert scope.cancelled_caught is not finishes, limit
