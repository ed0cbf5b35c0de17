"""Audit 15 of the tools: parsing against the reference, approval and undo lifecycles.

- ``parse_and_resolve``: JSON arguments that are valid JSON but that Python cannot decode (an
  integer over 4300 digits, nesting past the recursion limit) fail as in the reference ("Failed
  to parse tool call", the name read from the call itself), not as "Invalid JSON arguments".
- ``diff_structured``: an ``ignore_keys`` list holding an unhashable item works as in the
  reference (it used to raise ``TypeError: unhashable type``).
- ``ApprovalService.await_decision`` called in a scope already cancelled cancels its request
  (it used to leave it PENDING for ever); the waiters' lifecycle matches the reference.
- ``UndoStore.store`` takes a ready ``UndoMetadata`` (stageflow 1.2) and gives 1.2's messages.
- ``AdvancedToolExecutor.undo_action``: two tasks undoing one action run its undo handler once.
- ``AdvancedToolExecutor``: cancelled at each of its steps, a call leaves no PENDING request, no
  change without undo data (nor data without a change), no slot held; so does ``undo_action``.
"""

from __future__ import annotations

import json
import re
import sys
import uuid
from typing import TYPE_CHECKING, Any

import attrs
import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio.events import set_event_sink
from stageflow_trio.testing import RecordingEventSink
from stageflow_trio.tools.adapters import DictContextAdapter
from stageflow_trio.tools.approval import (
    ApprovalRequest,
    ApprovalService,
    ApprovalStatus,
    InMemoryApprovalBackend,
)
from stageflow_trio.tools.definitions import ToolDefinition, ToolInput, ToolOutput, UndoMetadata
from stageflow_trio.tools.diff import diff_structured
from stageflow_trio.tools.errors import ToolUndoError
from stageflow_trio.tools.executor_v2 import AdvancedToolExecutor, ToolExecutorConfig
from stageflow_trio.tools.registry import ToolRegistry
from stageflow_trio.tools.undo import UndoStore
from tests.fakes import import_reference

if TYPE_CHECKING:
    from types import ModuleType

ACTION = uuid.UUID("aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa")


# --- parse_and_resolve against the reference ------------------------------------------


class NamedTool:
    def __init__(self, action_type: str) -> None:
        self.name = self.action_type = action_type
        self.description = ""


def parse_both(
    reference: ModuleType, call: dict[str, Any], wrapper: str | None
) -> tuple[list[Any], list[Any]]:
    """The one result of ``call`` from each registry, without the tool object."""
    results = []
    for registry in (ToolRegistry(), reference.tools.registry.ToolRegistry()):
        registry.register(NamedTool("calc"))  # type: ignore[arg-type]
        resolved, unresolved = registry.parse_and_resolve([call], function_wrapper=wrapper)
        # Arguments by repr: a decoded NaN is not equal to another.
        results.append(
            [("resolved", r.call_id, r.name, repr(r.arguments), r.raw) for r in resolved]
            + [
                ("unresolved", u.call_id, u.name, repr(u.arguments), u.error, u.raw)
                for u in unresolved
            ]
        )
    return results[0], results[1]


HUGE_INT = '{"n": ' + "7" * 5000 + "}"
TOO_DEEP = "[" * (sys.getrecursionlimit() * 4)


@pytest.mark.parametrize("arguments", [HUGE_INT, TOO_DEEP, '{"n": [' + "9" * 4301 + "]}"])
@pytest.mark.parametrize("wrapper", ["function", None])
def test_json_python_cannot_decode_fails_as_in_the_reference(
    reference: ModuleType, arguments: str, wrapper: str | None
) -> None:
    call: dict[str, Any] = {"id": "c1", "name": "calc", "arguments": arguments}
    if wrapper:
        call = {"id": "c1", wrapper: {"name": "calc", "arguments": arguments}}
    ours, theirs = parse_both(reference, call, wrapper)
    assert ours == theirs
    (result,) = ours
    assert result[0] == "unresolved"
    try:
        json.loads(arguments)
    except json.JSONDecodeError:
        # Python 3.13's decoder reports deep nesting as invalid JSON, not RecursionError:
        # the registry's own "invalid arguments" result, with the call's name.
        assert result[4].startswith("Invalid JSON arguments: ")
        assert result[2] == "calc"
        return
    except (ValueError, RecursionError):
        pass
    assert result[4].startswith("Failed to parse tool call: ")
    # The catch-all reads the name from the call itself, so OpenAI's shape loses it.
    assert result[2] == ("unknown" if wrapper else "calc")


# Argument strings built from JSON fragments, valid or not, that Python may fail to decode.
FRAGMENTS = st.sampled_from(
    ['{"a": ', "}", "[", "]", ", ", "1", "7" * 4400, "NaN", "-Infinity", '"x"', "null", "1e999"]
)
ARGUMENT_TEXTS = st.lists(FRAGMENTS, max_size=8).map("".join) | st.builds(
    lambda depth, inner: "[" * depth + inner + "]" * depth,
    st.integers(0, 3000),
    st.sampled_from(["", "1", "{}"]),
)


@given(arguments=ARGUMENT_TEXTS, wrapper=st.sampled_from(["function", None]))
def test_random_argument_texts_match_or_differ_only_as_documented(
    arguments: str, wrapper: str | None
) -> None:
    reference = import_reference()
    call: dict[str, Any] = {"id": 1, "name": "calc", "arguments": arguments}
    if wrapper:
        call = {"id": 1, wrapper: {"name": "calc", "arguments": arguments}}
    ours, theirs = parse_both(reference, call, wrapper)
    decoded = json.loads(arguments) if theirs[0][0] == "resolved" and arguments else {}
    if not isinstance(decoded, dict):
        # Documented (parity.md): JSON that decodes to a non-object is refused here.
        kind = type(decoded).__name__
        assert ours == [
            (
                "unresolved",
                "1",
                "calc",
                "{}",
                f"Invalid JSON arguments: expected a JSON object; got {kind}",
                call,
            )
        ]
    else:
        assert ours == theirs


# --- diff_structured --------------------------------------------------------------------


@pytest.mark.parametrize(
    "ignore_keys", [[["x"], "b"], [(["x"],), "b"], [{"k": 1}], ({"b"}.union({"c"}))]
)
def test_diff_structured_ignore_keys_with_unhashable_items(
    reference: ModuleType, ignore_keys: Any
) -> None:
    old, new = {"a": 1, "b": 2, "c": 3}, {"a": 2, "b": 3, "d": 4}
    ours = diff_structured(old, new, ignore_keys=ignore_keys).to_dict()
    assert ours == reference.tools.diff.diff_structured(old, new, ignore_keys=ignore_keys).to_dict()


# --- the approval lifecycle -----------------------------------------------------------------


async def test_a_waiter_cancelled_at_its_first_checkpoint_cancels_the_request() -> None:
    service = ApprovalService()
    request = await service.request_approval(ACTION, "delete")
    woken: list[Any] = []

    async def other_waiter() -> None:
        woken.append(await service.await_decision(request.id, timeout_seconds=100))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(other_waiter)
        await trio.testing.wait_all_tasks_blocked()
        with trio.CancelScope() as scope:
            scope.cancel()
            await service.await_decision(request.id)
        assert scope.cancelled_caught
    assert request.status is ApprovalStatus.CANCELLED
    assert await service.get_pending_requests() == []
    assert [(d.granted, d.reason) for d in woken] == [(False, "cancelled")]


async def test_a_deadline_already_passed_cancels_an_unknown_id_quietly() -> None:
    service = ApprovalService()
    with trio.move_on_after(0) as scope:  # cancelled before the lookup: no KeyError
        await service.await_decision(uuid.uuid4())
    assert scope.cancelled_caught
    with pytest.raises(KeyError, match="not found"):
        await service.await_decision(uuid.uuid4())


async def test_a_decided_request_is_left_alone_by_a_cancelled_waiter() -> None:
    service = ApprovalService()
    request = await service.request_approval(ACTION, "delete")
    await service.record_decision(request.id, granted=True)
    with trio.CancelScope() as scope:
        scope.cancel()
        await service.await_decision(request.id)
    assert request.status is ApprovalStatus.APPROVED
    assert (await service.await_decision(request.id)).granted is True


async def test_concurrent_waiters_expire_and_decide_as_in_the_reference(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The reference (asyncio): the short waiter times out and the request is EXPIRED; the
    # long one keeps waiting and wakes at a decision; the last decision is the request's; a
    # later waiter returns it at once; after cleanup the id is unknown. (In the reference two
    # decisions in a row both land before the waiter runs, since an uncontended lock does not
    # yield; here each record_decision is a checkpoint, so the waiter may run in between.)
    service = ApprovalService()
    request = await service.request_approval(ACTION, "delete")
    results: dict[str, Any] = {}

    async def wait(name: str, timeout: float) -> None:
        try:
            results[name] = await service.await_decision(request.id, timeout_seconds=timeout)
        except TimeoutError:
            results[name] = "timeout"

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait, "short", 1)
        nursery.start_soon(wait, "long", 10)
        await trio.sleep(2)
        assert results == {"short": "timeout"}
        assert await service.get_status(request.id) is ApprovalStatus.EXPIRED
        await service.record_decision(request.id, granted=True)
        await service.record_decision(request.id, granted=False, reason="no")
    assert (results["long"].granted, results["long"].reason) in ((True, None), (False, "no"))
    assert request.status is ApprovalStatus.DENIED
    with trio.fail_after(0.001):
        assert (await service.await_decision(request.id)).reason == "no"
    await service.cleanup(request.id)
    with pytest.raises(KeyError, match=re.escape(f"Approval request {request.id} not found")):
        await service.await_decision(request.id)


class BrokenBackend(InMemoryApprovalBackend):
    """A shared backend whose connection dropped after the request was stored."""

    async def get(self, request_id: uuid.UUID) -> ApprovalRequest | None:
        raise ConnectionError("lost the store")

    async def close_pending(self, *args: Any) -> bool:
        raise ConnectionError("still lost")


async def test_a_backend_error_while_waiting_is_raised_not_the_cancel_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    service = ApprovalService(backend=BrokenBackend())
    request = await service.request_approval(ACTION, "delete")
    with pytest.raises(ConnectionError, match=r"^lost the store$"):
        await service.await_decision(request.id)
    assert [r.getMessage() for r in caplog.records] == [
        f"Failed to cancel approval request {request.id}: still lost"
    ]


# --- the undo store: stageflow 1.2's store(UndoMetadata) -------------------------------


async def test_store_takes_an_undo_metadata_as_stageflow_1_2() -> None:
    store = UndoStore()
    metadata = UndoMetadata(
        action_id=ACTION,
        tool_name="edit",
        undo_data={"before": "x"},
        created_at="2026-01-01T00:00:00+00:00",
    )
    assert await store.store(metadata, ttl_seconds=5) is metadata
    assert await store.get(ACTION) is metadata  # created_at kept
    # 1.2 reads neither tool_name nor undo_data when given a metadata.
    assert await store.store(metadata, "other", {"ignored": 1}) is metadata
    assert (await store.get(ACTION)) is metadata


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((ACTION,), "tool_name is required when storing by action_id"),
        ((ACTION, "edit"), "undo_data is required when storing by action_id"),
        (
            (UndoMetadata(action_id="a", tool_name="edit", undo_data={}),),  # type: ignore[arg-type]
            "UndoStore.store: action_id.action_id must be a UUID; got str",
        ),
        (
            (UndoMetadata(action_id=ACTION, tool_name="edit", undo_data=5),),  # type: ignore[arg-type]
            "UndoStore.store: action_id.undo_data must be a dict; got int",
        ),
        ((5, "edit", {}), "UndoStore.store: action_id must be a UUID or an UndoMetadata; got int"),
    ],
)
async def test_store_refuses_incomplete_arguments(args: tuple[Any, ...], message: str) -> None:
    store = UndoStore()
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        await store.store(*args)
    assert len(store) == 0


# --- the v2 executor --------------------------------------------------------------------


@attrs.frozen
class Act:
    id: uuid.UUID
    type: str
    payload: dict[str, Any]


def ctx() -> DictContextAdapter:
    return DictContextAdapter({"pipeline_run_id": None, "request_id": None, "execution_mode": None})


class Counter:
    """A tool whose action adds one and whose undo takes it away; each yields first."""

    def __init__(self, *, fail_undos: int = 0) -> None:
        self.value = 0
        self.undo_calls = 0
        self.fail_undos = fail_undos

    async def add(self, tool_input: ToolInput) -> ToolOutput:
        await trio.lowlevel.checkpoint()
        self.value += 1
        return ToolOutput.ok(undo_metadata={"before": self.value - 1})

    async def undo(self, metadata: UndoMetadata) -> None:
        self.undo_calls += 1
        await trio.sleep(1)
        if self.fail_undos:
            self.fail_undos -= 1
            raise RuntimeError("disk full")
        self.value -= 1


def make_executor(
    counter: Counter,
    *,
    approval: bool = False,
    emit_events: bool = False,
    limits: bool = False,
) -> tuple[AdvancedToolExecutor, UndoStore, ApprovalService]:
    store, service = UndoStore(), ApprovalService()
    config = ToolExecutorConfig(
        emit_events=emit_events,
        max_concurrent=1 if limits else None,
        max_concurrent_per_tool=1 if limits else None,
    )
    executor = AdvancedToolExecutor(config, undo_store=store, approval_service=service)
    executor.register(
        ToolDefinition(
            "add",
            "ADD",
            counter.add,
            requires_approval=approval,
            undoable=True,
            undo_handler=counter.undo,
        )
    )
    return executor, store, service


async def test_concurrent_undos_of_one_action_run_the_handler_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    counter = Counter()
    executor, store, _ = make_executor(counter)
    await executor.execute(Act(ACTION, "ADD", {}), ctx())
    results: list[bool] = []

    async def undo() -> None:
        results.append(await executor.undo_action(ACTION, ctx()))

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(undo)
    assert sorted(results) == [False, False, True]
    assert (counter.value, counter.undo_calls) == (0, 1)
    assert await store.get(ACTION) is None


async def test_a_waiting_undo_retries_when_the_first_fails(
    autojump_clock: trio.testing.MockClock,
) -> None:
    counter = Counter(fail_undos=1)
    executor, store, _ = make_executor(counter)
    await executor.execute(Act(ACTION, "ADD", {}), ctx())
    outcomes: list[object] = []

    async def undo() -> None:
        try:
            outcomes.append(await executor.undo_action(ACTION, ctx()))
        except ToolUndoError as exc:
            outcomes.append(type(exc))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(undo)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(undo)
    assert outcomes == [ToolUndoError, True]  # the second ran after the first, one at a time
    assert (counter.value, counter.undo_calls) == (0, 2)
    assert trio.current_time() == 2
    assert await store.get(ACTION) is None


async def test_undos_of_different_actions_run_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    counter = Counter()
    executor, _, _ = make_executor(counter)
    other = uuid.uuid4()
    await executor.execute(Act(ACTION, "ADD", {}), ctx())
    await executor.execute(Act(other, "ADD", {}), ctx())
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(executor.undo_action, ACTION, ctx())
        nursery.start_soon(executor.undo_action, other, ctx())
    assert trio.current_time() - start == 1
    assert counter.value == 0


async def test_a_cancelled_waiting_undo_leaves_the_first_alone(
    autojump_clock: trio.testing.MockClock,
) -> None:
    counter = Counter()
    executor, store, _ = make_executor(counter)
    await executor.execute(Act(ACTION, "ADD", {}), ctx())
    async with trio.open_nursery() as nursery:
        nursery.start_soon(executor.undo_action, ACTION, ctx())
        await trio.testing.wait_all_tasks_blocked()
        with trio.move_on_after(0.5) as scope:
            await executor.undo_action(ACTION, ctx())
        assert scope.cancelled_caught
    assert (counter.value, counter.undo_calls) == (0, 1)
    assert await store.get(ACTION) is None
    assert executor._undoing == {}


class CancelAtStep(trio.abc.Instrument):
    """Cancels ``scope`` as ``task`` takes its ``k``-th step, so at the checkpoint that ends it."""

    def __init__(self, task: trio.lowlevel.Task, k: int, scope: trio.CancelScope) -> None:
        self.task, self.k, self.scope, self.steps = task, k, scope, 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task is self.task:
            self.steps += 1
            if self.steps == self.k:
                self.scope.cancel()


async def cancelled_at_step(k: int, call: Any) -> bool:
    """Run ``call()`` cancelled at its ``k``-th step; True if it ran to the end first."""
    with trio.CancelScope() as scope:
        instrument = CancelAtStep(trio.lowlevel.current_task(), k, scope)
        trio.lowlevel.add_instrument(instrument)
        try:
            await call()
        finally:
            trio.lowlevel.remove_instrument(instrument)
    return not scope.cancelled_caught


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"approval": True},
        {"emit_events": True},
        {"approval": True, "emit_events": True, "limits": True},
        {"limits": True},
    ],
)
async def test_a_call_cancelled_at_any_step_leaves_nothing_half_done(
    autojump_clock: trio.testing.MockClock, options: dict[str, bool]
) -> None:
    for k in range(1, 100):
        set_event_sink(RecordingEventSink())
        counter = Counter()
        executor, store, service = make_executor(counter, **options)
        async with trio.open_nursery() as nursery:

            async def approver(service: ApprovalService = service) -> None:
                while True:
                    for request in await service.get_pending_requests():
                        await service.record_decision(request.id, granted=True)
                    await trio.sleep(0.01)

            nursery.start_soon(approver)
            finished = await cancelled_at_step(
                k,
                lambda executor=executor: executor.execute(Act(ACTION, "ADD", {}), ctx()),
            )
            nursery.cancel_scope.cancel()
        assert await service.get_pending_requests() == [], k
        stored = await store.get(ACTION)
        assert (stored is not None) == (counter.value == 1), k
        if options.get("limits"):
            assert executor._slots is not None
            assert executor._slots.value == 1, k
            assert [s.value for s in executor._tool_slots.values()] in ([], [1]), k
        if finished:
            assert counter.value == 1
            break
    else:
        pytest.fail("the call never finished")


@pytest.mark.parametrize("emit_events", [False, True])
async def test_an_undo_cancelled_at_any_step_undoes_and_deletes_together(
    autojump_clock: trio.testing.MockClock, emit_events: bool
) -> None:
    for k in range(1, 100):
        set_event_sink(RecordingEventSink())
        counter = Counter()
        executor, store, _ = make_executor(counter, emit_events=emit_events)
        await executor.execute(Act(ACTION, "ADD", {}), ctx())
        finished = await cancelled_at_step(
            k, lambda executor=executor: executor.undo_action(ACTION, ctx())
        )
        stored = await store.get(ACTION)
        assert (stored is not None) == (counter.value == 1), k
        assert executor._undoing == {}, k
        if counter.value == 1:  # not undone: a later undo still can
            assert await executor.undo_action(ACTION, ctx()) is True
        if finished:
            break
    else:
        pytest.fail("the undo never finished")


def test_parse_and_resolve_keeps_valid_big_json_as_the_reference(reference: ModuleType) -> None:
    # Under the digit limit both decode; a float overflow is inf in both.
    arguments = json.dumps({"n": int("9" * 4000)})
    ours, theirs = parse_both(reference, {"name": "calc", "arguments": arguments}, None)
    assert ours == theirs
    assert ours[0][0] == "resolved"


class _SlowAckBackend(InMemoryApprovalBackend):
    """Stores the request, then takes a second to acknowledge (a shared store's write)."""

    async def add(self, request: ApprovalRequest) -> None:
        await super().add(request)
        await trio.sleep(1)


async def test_a_request_stored_by_a_cancelled_call_does_not_stay_pending(
    autojump_clock: trio.abc.Clock,
) -> None:
    backend = _SlowAckBackend()
    service = ApprovalService(backend=backend)
    with trio.move_on_after(0.5) as scope:
        await service.request_approval(ACTION, "edit", None, "ok?")
    assert scope.cancelled_caught
    # The backend kept it, but nobody has its id: it must not wait for approvers.
    assert await service.get_pending_requests() == []
    request = await backend.latest_for_action(ACTION)
    assert request is not None
    assert request.status is ApprovalStatus.CANCELLED
