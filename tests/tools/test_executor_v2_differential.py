"""The v2 executor against the reference 0.9.1: the same calls give the same events and errors.

Each scenario runs once through stageflow_trio (``trio.run`` on a MockClock) and once
through the reference (``asyncio.run``), with a recording sink as the global sink.
Timestamps, durations and approval request ids differ between runs; they are checked
for type and replaced by placeholders before comparing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from types import ModuleType, SimpleNamespace
from typing import Any

import attrs
import outcome
import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

import stageflow_trio.events
import stageflow_trio.tools
from stageflow_trio.tools import executor_v2
from stageflow_trio.tools.adapters import DictContextAdapter
from stageflow_trio.tools.approval import ApprovalService, InMemoryApprovalBackend
from tests.fakes import RefRecorder

ACTION = uuid.UUID("aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa")
RUN = uuid.UUID("11111111-1111-4111-8111-111111111111")
REQ = uuid.UUID("22222222-2222-4222-8222-222222222222")


@attrs.frozen
class Act:
    id: uuid.UUID
    type: str
    payload: dict[str, Any]


def _normalize(data: dict[str, Any]) -> dict[str, Any]:
    result = dict(data)
    assert isinstance(result.pop("timestamp"), str)
    if "duration_ms" in result:
        assert isinstance(result["duration_ms"], float)
        result["duration_ms"] = "<ms>"
    if "original_action_timestamp" in result:
        assert isinstance(result["original_action_timestamp"], str)
        result["original_action_timestamp"] = "<created_at>"
    if "approval_message" in result or "decision" in result:  # an approval event
        uuid.UUID(result["request_id"])
        result["request_id"] = "<approval request>"
    return result


def _outcome(error: BaseException | None) -> Any:
    if error is None:
        return None
    data = error.to_dict() if hasattr(error, "to_dict") else {"error": repr(error)}
    if data.get("request_id") is not None:
        data["request_id"] = "<approval request>"
    return data


Concurrently = Callable[
    [Callable[[], Awaitable[Any]], Callable[[], Awaitable[None]]], Awaitable[Any]
]


async def scenario(
    name: str, ns: Any, concurrently: Concurrently, pause: Callable[[], Awaitable[None]]
) -> list[Any]:
    """Run scenario ``name`` with the names in ``ns`` (ours or the reference's)."""
    state = {"text": "draft"}

    async def edit(tool_input: Any) -> Any:
        before = state["text"]
        state["text"] = tool_input.payload["text"]
        return ns.ToolOutput.ok(
            data={"text": state["text"]},
            artifacts=[{"kind": "doc"}],
            undo_metadata={"before": before},
        )

    async def broken(tool_input: Any) -> Any:
        raise ValueError("disk full")

    async def undo(metadata: Any) -> None:
        state["text"] = metadata.undo_data["before"]

    async def broken_undo(metadata: Any) -> None:
        raise OSError("read-only")

    service = ns.ApprovalService()
    store = ns.UndoStore()
    await store.store(
        uuid.UUID(int=1), "seed", {}
    )  # non-empty: the reference ignores an empty store
    config = ns.ToolExecutorConfig(approval_timeout_seconds=0 if name == "timeout" else 60)
    tools = ns.AdvancedToolExecutor(config, undo_store=store, approval_service=service)
    # Name equal to the action type: the reference finds such a tool for undo.
    common: dict[str, Any] = {"name": "EDIT", "action_type": "EDIT", "undoable": True}
    if name == "gated":
        tools.register(ns.ToolDefinition(handler=edit, allowed_behaviors=("review",), **common))
    elif name == "broken":
        tools.register(ns.ToolDefinition(handler=broken, **common))
    elif name == "broken_undo":
        tools.register(ns.ToolDefinition(handler=edit, undo_handler=broken_undo, **common))
    else:
        tools.register(
            ns.ToolDefinition(
                handler=edit,
                undo_handler=undo,
                requires_approval=name in ("approved", "denied", "timeout"),
                **common,
            )
        )
    ctx = DictContextAdapter(
        {"pipeline_run_id": str(RUN), "request_id": str(REQ), "execution_mode": "doc_edit"}
    )
    action = Act(ACTION, "UNKNOWN" if name == "unknown" else "EDIT", {"text": "final"})

    async def decide() -> None:
        if name not in ("approved", "denied"):
            return
        while not (pending := await service.get_pending_requests()):
            await pause()
        await service.record_decision(pending[0].id, name == "approved")

    async def run() -> Any:
        return await tools.execute(action, ctx)

    seen: list[Any] = []
    try:
        output = await concurrently(run, decide)
        seen.append(output.to_dict())
    except Exception as exc:
        seen.append(_outcome(exc))
    try:
        seen.append(await tools.undo_action(ACTION, ctx))
    except Exception as exc:
        seen.append(_outcome(exc))
    seen.append(state["text"])
    seen.append([r.status.value for r in _requests_of(service).values()])
    return seen


SCENARIOS = [
    "success",
    "gated",
    "approved",
    "denied",
    "timeout",
    "broken",
    "broken_undo",
    "unknown",
]


async def outcome_of(run: Any) -> Any:
    try:
        return outcome.Value(await run())
    except Exception as exc:  # re-raised by unwrap()
        return outcome.Error(exc)


def _ours(name: str) -> tuple[list[Any], list[Any]]:
    recorder = RefRecorder()

    async def concurrently(run: Any, other: Any) -> Any:
        # The error is raised after the nursery, so it comes out as itself, not in a group.
        results: list[Any] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(other)
            results.append(await outcome_of(run))
        return results[0].unwrap()

    async def main() -> list[Any]:
        stageflow_trio.events.set_event_sink(recorder)
        return await scenario(name, stageflow_trio.tools, concurrently, trio.lowlevel.checkpoint)

    seen = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    return seen, recorder.events


def _theirs(reference: ModuleType, name: str) -> tuple[list[Any], list[Any]]:
    recorder = RefRecorder()
    tools = reference.tools
    ns = SimpleNamespace(
        **{n: getattr(tools, n) for n in tools.__all__},
    )

    async def concurrently(run: Any, other: Any) -> Any:
        task = asyncio.ensure_future(other())
        try:
            return await run()
        finally:
            await task

    async def main() -> list[Any]:
        reference.events.set_event_sink(recorder)
        return await scenario(name, ns, concurrently, lambda: asyncio.sleep(0))

    return asyncio.run(main()), recorder.events


@pytest.mark.parametrize("name", SCENARIOS)
def test_same_events_and_outcomes_as_the_reference(reference: ModuleType, name: str) -> None:
    ours, our_events = _ours(name)
    theirs, their_events = _theirs(reference, name)
    assert ours == theirs
    assert [(t, _normalize(d)) for t, d in our_events] == [
        (t, _normalize(d)) for t, d in their_events
    ]


EXPECTED_TYPES = {
    "success": ["tool.invoked", "tool.started", "tool.completed", "tool.undone"],
    "gated": ["tool.invoked", "tool.denied"],
    "approved": [
        "tool.invoked",
        "approval.requested",
        "approval.decided",
        "tool.started",
        "tool.completed",
        "tool.undone",
    ],
    "denied": ["tool.invoked", "approval.requested", "approval.decided"],
    "timeout": ["tool.invoked", "approval.requested", "tool.denied"],
    "broken": ["tool.invoked", "tool.started", "tool.failed"],
    "broken_undo": ["tool.invoked", "tool.started", "tool.completed", "tool.undo_failed"],
    "unknown": [],
}


@pytest.mark.parametrize("name", SCENARIOS)
def test_event_sequences(name: str) -> None:
    _, events = _ours(name)
    assert [t for t, _ in events] == EXPECTED_TYPES[name]


def test_undo_of_a_tool_named_unlike_its_action_type_diverges(reference: ModuleType) -> None:
    """d21: the reference looks the tool up by name in a map keyed by action type."""

    async def run(ns: Any) -> tuple[bool, str]:
        state = {"text": "draft"}

        async def edit(tool_input: Any) -> Any:
            state["text"] = "final"
            return ns.ToolOutput.ok(undo_metadata={"before": "draft"})

        async def undo(metadata: Any) -> None:
            state["text"] = metadata.undo_data["before"]

        store = ns.UndoStore()
        await store.store(uuid.UUID(int=1), "seed", {})
        tools = ns.AdvancedToolExecutor(undo_store=store, approval_service=ns.ApprovalService())
        tools.register(
            ns.ToolDefinition(
                name="edit_document",
                action_type="EDIT_DOCUMENT",
                handler=edit,
                undoable=True,
                undo_handler=undo,
            )
        )
        ctx = DictContextAdapter({"execution_mode": "m"})
        await tools.execute(Act(ACTION, "EDIT_DOCUMENT", {}), ctx)
        return await tools.undo_action(ACTION, ctx), state["text"]

    assert asyncio.run(run(reference.tools)) == (False, "final")
    assert trio.run(run, stageflow_trio.tools) == (True, "draft")


# Strings and containers on both sides of the 200-character summary limit.
_strings = st.integers(0, 260).map(lambda n: "x" * n) | st.text(max_size=5)
_values = (
    st.none()
    | st.integers()
    | _strings
    | st.lists(st.integers(0, 10**12), max_size=40)
    | st.dictionaries(st.text(max_size=3), st.integers(0, 10**6), max_size=30)
)


@given(payload=st.dictionaries(st.text(max_size=10), _values, max_size=6))
def test_payload_summary_matches_the_reference(
    reference: ModuleType, payload: dict[str, Any]
) -> None:
    theirs = reference.tools.executor_v2._summarize_payload(payload)
    assert executor_v2._summarize_payload(payload) == theirs


def _requests_of(service: Any) -> dict[Any, Any]:
    """The requests of the reference's service, or of our service's default backend."""
    if isinstance(service, ApprovalService):
        backend = service.backend
        assert isinstance(backend, InMemoryApprovalBackend)
        return backend._requests
    requests: dict[Any, Any] = service._requests
    return requests
