"""Audit 25 of the agent runtime: cancellation everywhere, failures, one agent shared by many runs.

Scenarios tried, and what came out:

Cancellation (``explore_cancellation``: every checkpoint and every in-between deadline of a
four-call run: a slow lookup tool and an approval-gated, undoable transfer tool run through an
``AdvancedToolExecutor`` in turn 1, an invalid reply and its retry, a transfer and an unknown
tool in turn 2, then the answer), both through ``AgentStage`` in a pipeline and through
``Agent.run`` directly:

- no task left, cleanups once, the cancellation comes out (never a returned run or a failed
  stage output after a task got ``Cancelled``): held (the default invariants);
- no approval request left PENDING: held (the waiting call cancels its own request; runs
  cancelled while waiting were among those explored);
- every transfer whose effect was made has its undo data stored, and no other: held;
- the agent's events: turns numbered 1..n, ``agent.tool.executed`` in call order with none
  skipped or repeated, at most one effect made but not reported (the call in flight), and
  ``agent.completed`` only after every call: held. The loop has no "tool started" event (nor
  has 1.2.0), so no tool event is left open; the executor's own ``tool.started`` has no end
  event when cancelled, as in 1.2.0 (the executor's business, not the agent's);
- the conversation: the agent keeps none between runs (history is read from the snapshot,
  never written), so a cancelled run cannot leave half a turn anywhere.

1.2.0 runs the tool calls of one turn one after another, and so does the port; it has no
approval, undo, streaming or tool timeout of its own (a tool brings its own: the executor
here, ``trio.fail_after`` in a tool, whose ``TooSlowError`` becomes a failed result as any
error does).

Failures, run in 1.2.0 (asyncio) and here on the same scripts: unknown tool, tool name
``""`` / int / null / list / missing, arguments as a JSON string / list / null, call id int /
``""`` / repeated, a missing argument (the tool's KeyError), ``tool_calls`` not a list or
holding strings, an ExceptionGroup from a tool, a tool returning a dict or bytes / NaN data,
a reply that is None / an int / a native tool call with bad JSON arguments or no name, a
client raising, ``max_turns`` reached, retries exhausted, a missing prompt variable, user and
tool text past the limits (an injection past the cut included): the same outcome as 1.2.0 in
every case, or a difference docs/parity.md already lists (the empty tool name's header, data
JSON cannot encode, the schema's descriptions). One defect: a streaming client (``chat`` an
async generator, or returning an iterator) was read as a reply with no content, failed
validation on every retry (three paid calls by default) and ended in
``LLMOutputValidationError`` hiding the cause; 1.2.0 fails at once with a ``TypeError``. Now a
``TypeError`` naming the client, after one call; an iterable reply that holds a reply (a
``MagicMock`` double with a content) is read as before. A tool timing out by itself
(``trio.fail_after`` inside it) is a failed result with error ``""``, as 1.2.0's asyncio
``TimeoutError``, and the run goes on.

Concurrency: one ``Agent`` and one ``AgentStage`` shared by 50 concurrent pipeline runs, a
new default prompt version registered halfway: every run got its own answer, tool results,
history, tool context, events and prompt version (the one it started with, for every turn).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any
from unittest.mock import AsyncMock, MagicMock

import pytest
import trio
import trio.testing

from stageflow_trio.agent import (
    Agent,
    AgentConfig,
    AgentStage,
    LLMOutputValidationError,
    PromptLibrary,
    PromptTemplate,
)
from stageflow_trio.context.types import Message
from stageflow_trio.core import StageKind
from stageflow_trio.core.stage_enums import StageStatus
from stageflow_trio.pipeline.pipeline import Pipeline
from stageflow_trio.testing import (
    DEFAULT_INVARIANTS,
    RunRecord,
    create_test_stage_context,
    current_run,
    explore_cancellation,
    invariant,
    tracked_cleanup,
)
from stageflow_trio.testing.explore import CANCELLED, RETURNED
from stageflow_trio.tools import ToolRegistry
from stageflow_trio.tools.adapters import adapt_context
from stageflow_trio.tools.approval import ApprovalService, ApprovalStatus
from stageflow_trio.tools.base import ToolInput, ToolOutput
from stageflow_trio.tools.definitions import ToolDefinition
from stageflow_trio.tools.definitions import ToolInput as DefinitionInput
from stageflow_trio.tools.definitions import ToolOutput as DefinitionOutput
from stageflow_trio.tools.executor_v2 import AdvancedToolExecutor
from stageflow_trio.tools.undo import UndoStore

from .fakes import ScriptedChat, answer

# --- cancellation at every checkpoint --------------------------------------------------------

# The uncancelled run's tool calls, and whether each succeeded (the ghost tool is unknown).
CALL_ORDER = [("l1", True), ("t1", True), ("t2", True), ("g", False)]


def _script() -> list[str]:
    return [
        json.dumps(
            {
                "tool_calls": [
                    {"name": "lookup", "call_id": "l1"},
                    {"name": "transfer", "arguments": {"amount": 5}, "call_id": "t1"},
                ]
            }
        ),
        "not json",  # a validation retry inside turn 2
        json.dumps(
            {
                "tool_calls": [
                    {"name": "transfer", "arguments": {"amount": 7}, "call_id": "t2"},
                    {"name": "ghost", "call_id": "g"},
                ]
            }
        ),
        answer("paid"),
    ]


class Lookup:
    name = description = action_type = "lookup"

    async def execute(self, input: ToolInput, ctx: dict[str, Any]) -> ToolOutput:  # noqa: A002
        release = tracked_cleanup(self._release, name="lookup connection")
        try:
            await trio.sleep(1)
            return ToolOutput(success=True, data={"rows": 3})
        finally:
            await release()

    async def _release(self) -> None:
        pass


class World:
    """One run's agent, approvals, undo store and ledger of effects made."""

    def __init__(self) -> None:
        self.approvals = ApprovalService(default_timeout_seconds=600)
        self.undo_store = UndoStore()
        self.ledger: list[uuid.UUID] = []  # transfers whose effect was made
        self.actions: list[uuid.UUID] = []  # transfers handed to the executor
        executor = AdvancedToolExecutor(undo_store=self.undo_store, approval_service=self.approvals)
        executor.register(
            ToolDefinition(
                name="transfer",
                action_type="transfer",
                handler=self._transfer,
                requires_approval=True,
                undoable=True,
                undo_handler=self._undo,
            )
        )
        world = self

        class Transfer:
            name = description = action_type = "transfer"

            async def execute(self, input: ToolInput, ctx: dict[str, Any]) -> Any:  # noqa: A002
                action: Any = input.action  # the agent's action: an id, a type, a payload
                world.actions.append(action.id)
                return await executor.execute(action, adapt_context(ctx))

        registry = ToolRegistry()
        registry.register(Lookup())
        registry.register(Transfer())
        self.client = ScriptedChat(*_script(), delay=1)
        self.agent = Agent(llm_client=self.client, tool_registry=registry)
        # Filled after the run, shielded.
        self.pending = -1
        self.undoable: set[uuid.UUID] = set()
        self.stored = -1
        self.statuses: list[ApprovalStatus | None] = []

    async def _transfer(self, tool_input: DefinitionInput) -> DefinitionOutput:
        await trio.sleep(0.5)
        self.ledger.append(tool_input.action_id)  # the effect, made at once
        amount = tool_input.payload["amount"]
        return DefinitionOutput(
            success=True, data={"moved": amount}, undo_metadata={"amount": amount}
        )

    async def _undo(self, metadata: Any) -> None:
        await trio.lowlevel.checkpoint()

    async def approve_all(self) -> None:
        while True:
            for request in await self.approvals.get_pending_requests():
                await self.approvals.record_decision(request.id, granted=True)
            await trio.sleep(0.25)

    async def take_stock(self) -> None:
        self.pending = len(await self.approvals.get_pending_requests())
        for action_id in self.ledger:
            if await self.undo_store.get(action_id) is not None:
                self.undoable.add(action_id)
        self.stored = len(self.undo_store)
        self.statuses = [await self.approvals.get_status(a) for a in self.actions]


def _explore_setup(*, through_stage: bool) -> tuple[Any, dict[str, World]]:
    worlds: dict[str, World] = {}

    async def run() -> Any:
        world = worlds[current_run().label] = World()
        ctx = create_test_stage_context(event_sink=current_run().sink, input_text="pay")
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(world.approve_all)
                try:
                    if through_stage:
                        graph = (
                            Pipeline("assistant")
                            .with_stage("agent", AgentStage(world.agent), StageKind.AGENT)
                            .build()
                        )
                        return await graph.run(ctx)
                    return await world.agent.run("pay", stage_context=ctx)
                finally:
                    nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await world.take_stock()

    return run, worlds


def _agent_invariants(worlds: dict[str, World]) -> list[Any]:
    @invariant("no approval request left pending")
    def nothing_pending(run: RunRecord) -> str | None:
        left = worlds[run.label].pending
        return f"{left} approval request(s) left PENDING" if left else None

    @invariant("every effect made can be undone, and only those")
    def undo_follows_effects(run: RunRecord) -> str | None:
        world = worlds[run.label]
        if world.undoable != set(world.ledger) or world.stored != len(world.ledger):
            return (
                f"{len(world.ledger)} effect(s) made, {len(world.undoable)} with undo data, "
                f"{world.stored} entries stored"
            )
        return None

    @invariant("the agent's events are consistent")
    def agent_events(run: RunRecord) -> str | None:
        events = [(e["type"], e["data"]) for e in _events(run)]
        turns = [data["turn"] for kind, data in events if kind == "agent.turn.started"]
        executed = [data for kind, data in events if kind == "agent.tool.executed"]
        completed = [data for kind, data in events if kind == "agent.completed"]
        # A cancelled call is not reported at all: a failed report would mean the loop
        # caught the cancellation as a tool error.
        call_ids = [(data["call_id"], data["success"]) for data in executed]
        if turns != list(range(1, len(turns) + 1)):
            return f"turns started {turns}"
        if call_ids != CALL_ORDER[: len(call_ids)]:
            return f"tools reported {call_ids}"
        if completed and (call_ids != CALL_ORDER or completed != [{**completed[0], "turns": 3}]):
            return f"completed after {call_ids}: {completed}"
        if run.outcome == RETURNED and not completed:
            return "the run returned without agent.completed"
        reported = sum(1 for d in executed if d["tool"] == "transfer" and d["success"])
        made = len(worlds[run.label].ledger)
        if made not in (reported, reported + 1):
            return f"{made} transfer(s) made, {reported} reported"
        return None

    @invariant("no failed output for a cancellation")
    def no_failure(run: RunRecord) -> str | None:
        failed = [e for e in _events(run) if e["type"].endswith(".failed")]
        return f"failure events {failed}" if failed else None

    return [*DEFAULT_INVARIANTS, nothing_pending, undo_follows_effects, agent_events, no_failure]


def _events(run: RunRecord) -> list[dict[str, Any]]:
    return [{"type": kind, "data": data or {}} for kind, data in run.sink.events]


@pytest.mark.parametrize("through_stage", [True, False], ids=["agent_stage", "agent_run"])
async def test_cancelled_anywhere_the_agent_leaves_nothing_behind(
    autojump_clock: trio.testing.MockClock, through_stage: bool
) -> None:
    run, worlds = _explore_setup(through_stage=through_stage)
    report = await explore_cancellation(run, invariants=_agent_invariants(worlds))

    assert report.outcomes[RETURNED] >= 1
    assert report.outcomes[CANCELLED] >= report.checkpoints // 2
    baseline = worlds["the uncancelled run"]
    assert len(baseline.ledger) == 2
    assert len(baseline.client.messages) == 4
    # Among the explored runs: one cancelled while a transfer waited for its approval
    # (its request closed as cancelled) and one cancelled after an effect was made but
    # before the agent reported it (its undo data kept).
    statuses = [w.statuses for w in worlds.values()]
    assert any(ApprovalStatus.CANCELLED in s for s in statuses)
    assert any(len(w.ledger) == 1 and len(w.actions) == 1 for w in worlds.values())


# --- failures ---------------------------------------------------------------------------------


class Echo:
    name = description = action_type = "echo"

    async def execute(self, input: ToolInput, ctx: dict[str, Any]) -> ToolOutput:  # noqa: A002
        await trio.lowlevel.checkpoint()
        return ToolOutput(success=True, data={"echo": dict(input.action.payload)})


class NeedsNumber:
    name = description = action_type = "need"

    async def execute(self, input: ToolInput, ctx: dict[str, Any]) -> ToolOutput:  # noqa: A002
        await trio.lowlevel.checkpoint()
        return ToolOutput(success=True, data={"n": input.action.payload["number"]})


class RaisesGroup:
    name = description = action_type = "group"

    async def execute(self, input: ToolInput, ctx: dict[str, Any]) -> ToolOutput:  # noqa: A002
        await trio.lowlevel.checkpoint()
        raise ExceptionGroup("many", [ValueError("a"), KeyError("b")])


def _calls(*calls: dict[str, Any]) -> str:
    return json.dumps({"tool_calls": list(calls)})


# Each: the first reply; then (as recorded from 1.2.0 on the same script) whether the
# reply was retried as invalid (no tool ran, the second reply answered in turn 1) or the
# tool results the model saw.
FAILURES: list[tuple[str, Any, list[tuple[str, bool, str | None]] | None]] = [
    ("name_int", _calls({"name": 5, "call_id": "x"}), None),
    ("name_null", _calls({"name": None, "call_id": "x"}), None),
    ("name_list", _calls({"name": ["echo"], "call_id": "x"}), None),
    ("name_missing", _calls({"call_id": "x"}), None),
    ("arguments_json_string", _calls({"name": "echo", "arguments": '{"a": 1}'}), None),
    ("arguments_list", _calls({"name": "echo", "arguments": [1]}), None),
    ("arguments_null", _calls({"name": "echo", "arguments": None}), None),
    ("call_id_int", _calls({"name": "echo", "call_id": 7}), None),
    ("tool_calls_not_a_list", json.dumps({"tool_calls": {"name": "echo"}}), None),
    ("tool_calls_of_str", json.dumps({"tool_calls": ["echo"]}), None),
    ("reply_none", None, None),
    ("reply_int", 5, None),
    (
        "name_empty",
        _calls({"name": "", "call_id": "x"}),
        [("x", False, "No tool registered for action type: ")],
    ),
    ("missing_argument", _calls({"name": "need", "call_id": "x"}), [("x", False, "'number'")]),
    (
        "tool_raises_a_group",
        _calls({"name": "group", "call_id": "x"}),
        [("x", False, "many (2 sub-exceptions)")],
    ),
    (
        "repeated_call_id",
        _calls({"name": "echo", "call_id": "d"}, {"name": "echo", "call_id": "d"}),
        [("d", True, None), ("d", True, None)],
    ),
    (
        "native_call_bad_json_arguments",
        {
            "choices": [
                {
                    "message": {
                        "content": None,
                        "tool_calls": [
                            {"id": "c1", "function": {"name": "echo", "arguments": "{bad"}}
                        ],
                    }
                }
            ]
        },
        [("c1", True, None)],
    ),
]


@pytest.mark.parametrize(
    ("first", "results"), [(f, r) for _, f, r in FAILURES], ids=[n for n, _, _ in FAILURES]
)
async def test_malformed_turns_and_failing_tools_as_in_1_2_0(
    first: Any, results: list[tuple[str, bool, str | None]] | None
) -> None:
    class Client:
        def __init__(self) -> None:
            self.replies = [first, answer("done"), answer("done")]
            self.calls = 0

        async def chat(self, *, messages: list[dict[str, Any]], model: str, **kw: Any) -> Any:
            await trio.lowlevel.checkpoint()
            self.calls += 1
            return self.replies.pop(0)

    registry = ToolRegistry()
    for tool in (Echo(), NeedsNumber(), RaisesGroup()):
        registry.register(tool)
    client = Client()
    result = await Agent(llm_client=client, tool_registry=registry).run("go")
    assert result.response == "done"
    assert client.calls == 2
    if results is None:
        assert (result.iterations, result.tool_results) == (1, ())
    else:
        assert result.iterations == 2
        seen = [(r.call_id, r.success, r.error) for r in result.tool_results]
        assert seen == results


async def test_a_tool_timing_out_by_itself_is_a_failed_result_and_the_run_goes_on(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The tool's own deadline is its business: TooSlowError is an error like any other
    # (1.2.0: asyncio's TimeoutError, whose str() is "" too); the run's scopes are untouched.
    class Impatient:
        name = description = action_type = "impatient"

        async def execute(self, input: ToolInput, ctx: dict[str, Any]) -> ToolOutput:  # noqa: A002
            with trio.fail_after(1):
                await trio.sleep(5)
            return ToolOutput(success=True)  # pragma: no cover

    registry = ToolRegistry()
    registry.register(Impatient())
    client = ScriptedChat(_calls({"name": "impatient", "call_id": "i"}), answer("gave up"))
    start = trio.current_time()
    result = await Agent(llm_client=client, tool_registry=registry).run("go")
    assert trio.current_time() - start == 1
    assert [(r.success, r.error) for r in result.tool_results] == [(False, "")]
    assert result.response == "gave up"


async def test_an_empty_call_id_gets_a_fresh_one_as_in_1_2_0() -> None:
    registry = ToolRegistry()
    registry.register(Echo())
    client = ScriptedChat(_calls({"name": "echo", "call_id": ""}), answer("done"))
    result = await Agent(llm_client=client, tool_registry=registry).run("go")
    (only,) = result.tool_results
    assert uuid.UUID(only.call_id).version == 4


# --- a streaming client ---------------------------------------------------------------------


class StreamingChat:
    """An async generator ``chat``: a streaming client, which the agent cannot read."""

    def __init__(self) -> None:
        self.calls = 0

    async def chat(
        self, *, messages: list[dict[str, Any]], model: str, **kw: Any
    ) -> AsyncIterator[str]:
        self.calls += 1
        yield '{"final_'
        yield 'answer": "hi"}'


class IteratorChat:
    """A sync ``chat`` returning an iterator of chunks (an SDK's stream object)."""

    def __init__(self) -> None:
        self.calls = 0

    def chat(self, *, messages: list[dict[str, Any]], model: str, **kw: Any) -> Iterator[str]:
        self.calls += 1
        return iter(['{"final_', 'answer": "hi"}'])


@pytest.mark.parametrize("client_class", [StreamingChat, IteratorChat])
async def test_a_streaming_client_is_a_type_error_after_one_call(client_class: type) -> None:
    # 1.2.0: TypeError "object async_generator can't be used in 'await' expression" at
    # the first call. Before this audit: three calls, then LLMOutputValidationError
    # "Could not find structured content", which hid the cause.
    client = client_class()
    agent = Agent(llm_client=client, tool_registry=ToolRegistry())
    with pytest.raises(TypeError, match=f"LLM client {client_class.__name__} returned a stream"):
        await agent.run("hi")
    # The generator of an async ``chat`` only counts once iterated: the iterator one
    # counts every call.
    assert client.calls == (1 if client_class is IteratorChat else 0)


async def test_a_streaming_client_fails_the_agent_stage_naming_the_stream() -> None:
    stage = AgentStage(Agent(llm_client=IteratorChat(), tool_registry=ToolRegistry()))
    output = await stage.execute(create_test_stage_context(input_text="hi"))
    assert output.status is StageStatus.FAIL
    assert output.error is not None
    assert output.error.startswith("Agent execution failed: LLM client IteratorChat returned")


async def test_an_iterable_reply_holding_content_is_still_read() -> None:
    # A MagicMock is an (async) iterator too; as a reply double with a content it is
    # read as before (and as in 1.2.0).
    reply = MagicMock(content=answer("from a double"))
    client = MagicMock(spec=["chat"])
    client.chat = AsyncMock(return_value=reply)
    result = await Agent(llm_client=client, tool_registry=ToolRegistry()).run("hi")
    assert result.response == "from a double"


async def test_a_list_of_content_parts_is_still_read_as_a_reply() -> None:
    # Not a stream: a list reply goes through normalisation as before (as 1.2.0, it
    # holds no content at the top level, so it does not validate).
    class ListChat:
        async def chat(self, *, messages: list[dict[str, Any]], model: str, **kw: Any) -> Any:
            await trio.lowlevel.checkpoint()
            return ['{"final_answer": "hi"}']

    agent = Agent(
        llm_client=ListChat(),
        tool_registry=ToolRegistry(),
        config=AgentConfig(max_validation_retries=0),
    )
    with pytest.raises(LLMOutputValidationError):
        await agent.run("hi")


# --- one agent shared by 50 concurrent runs ---------------------------------------------------


class NumberTool:
    name = description = action_type = "number"

    def __init__(self) -> None:
        self.contexts: dict[int, str | None] = {}

    async def execute(self, input: ToolInput, ctx: dict[str, Any]) -> ToolOutput:  # noqa: A002
        n = input.action.payload["n"]
        await trio.sleep((n % 7) / 10)
        self.contexts[n] = ctx.get("pipeline_run_id")
        return ToolOutput(success=True, data={"n": n, "square": n * n})


class RequestReader:
    """Answers each run from what that run sent: its request number and its tool result."""

    def __init__(self) -> None:
        self.systems: dict[int, list[str]] = {}
        self.histories: dict[int, list[str]] = {}

    async def chat(self, *, messages: list[dict[str, Any]], model: str, **kw: Any) -> str:
        user = next(m["content"] for m in messages if "<user_input>" in m["content"])
        n = int(user.split("request ")[1].split("\n")[0])
        self.systems.setdefault(n, []).append(messages[0]["content"].split(":")[0])
        self.histories[n] = [m["content"] for m in messages[1:] if m["content"].startswith("hi")]
        await trio.sleep((n % 5) / 10)
        results = [m["content"] for m in messages if m["content"].startswith("Tool result")]
        if not results:
            return _calls({"name": "number", "arguments": {"n": n}, "call_id": f"c{n}"})
        data = json.loads(results[-1].split("<tool_result>\n")[1].split("\n</tool_result>")[0])
        return answer(f"{n} squared is {data['data']['square']}")


async def test_one_agent_stage_shared_by_50_concurrent_runs(
    autojump_clock: trio.testing.MockClock,
) -> None:
    library = PromptLibrary()
    library.register(PromptTemplate(name="p", version="v1", template="V1: {tool_descriptions}"))
    tool = NumberTool()
    client = RequestReader()
    agent = Agent(
        llm_client=client, tool_registry=_registry(tool), prompt_library=library, prompt_name="p"
    )
    stage = AgentStage(agent)
    graph = Pipeline("shared").with_stage("agent", stage, StageKind.AGENT).build()
    outputs: dict[int, Any] = {}
    contexts: dict[int, Any] = {}

    async def one(n: int) -> None:
        ctx = contexts[n] = create_test_stage_context(
            input_text=f"request {n}", messages=[Message(role="user", content=f"hi from {n}")]
        )
        outputs[n] = (await graph.run(ctx))["agent"]

    async with trio.open_nursery() as nursery:
        for n in range(25):
            nursery.start_soon(one, n)
        await trio.sleep(0.05)  # every early run is past its first render
        library.register(
            PromptTemplate(name="p", version="v2", template="V2: {tool_descriptions}"),
            make_default=True,
        )
        for n in range(25, 50):
            nursery.start_soon(one, n)

    for n in range(50):
        version = "v1" if n < 25 else "v2"
        data = outputs[n].data
        assert data["response"] == f"{n} squared is {n * n}"
        assert (data["iterations"], data["prompt_version"]) == (2, version)
        assert [(r["call_id"], r["data"]) for r in data["tool_results"]] == [
            (f"c{n}", {"n": n, "square": n * n})
        ]
        assert len(data["security"]) == 2
        assert client.systems[n] == [version.upper()] * 2
        assert client.histories[n] == [f"hi from {n}"]
        run_id = str(contexts[n].pipeline_run_id)
        assert tool.contexts[n] == run_id
        agent_events = [
            (kind, data or {})
            for kind, data in contexts[n].event_sink.events
            if kind.startswith("agent.")
        ]
        assert [kind for kind, _ in agent_events] == [
            "agent.turn.started",
            "agent.tool.executed",
            "agent.turn.started",
            "agent.completed",
        ]
        assert {data["pipeline_run_id"] for _, data in agent_events} == {run_id}
        assert agent_events[1][1]["call_id"] == f"c{n}"


def _registry(tool: NumberTool) -> ToolRegistry:
    registry = ToolRegistry()
    registry.register(tool)
    return registry
