"""Audit 18, values (2): what the first values pass left out.

1. The value classes stageflow 1.2.0 added and we port (agent runtime, prompts,
   typed output, payload helpers, ``PipelineResults``), against 1.2.0's observations
   for the same operations (1.2.0 cannot import trio, so its answers are recorded
   here as constants: ``/tmp/ref12`` ran the same values), and our own extra classes
   (testing faults, duplex specs, lint issues, ...) for soundness: a pickle round trip
   under every protocol and a deep copy give an equal value, equal values hash equal,
   a frozen value refuses assignment, ``repr`` never raises nor shows a secret.
2. ``copy.replace`` (the ``__replace__`` protocol of Python 3.13): it works on the
   value classes with the reference's field names and runs the constructor's checks
   again (only on 3.13 and later).
3. Objects users copy and pickle in practice: ``Pipeline`` and ``PipelineBuilder``
   (0.9.1 and 1.2.0 pickle and deep-copy both), results, tool definitions.
"""

from __future__ import annotations

import copy
import datetime as dt
import pickle
import uuid
from collections.abc import Callable
from typing import Any

import attrs
import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio.agent import (
    AgentConfig,
    AgentRunResult,
    AgentToolCall,
    AgentToolResult,
    AgentTurn,
    PromptSecurityReport,
    PromptTemplate,
    RenderedPrompt,
    TypedLLMResult,
)
from stageflow_trio.cli.graph import StageNode
from stageflow_trio.cli.lint import ContractIssue
from stageflow_trio.cli.timeline import Attempt
from stageflow_trio.core import StageKind, StageOutput
from stageflow_trio.helpers import GuardrailResult, LLMResponse, MemoryEntry, RunResult
from stageflow_trio.pipeline import DuplexLaneSpec, DuplexSystemSpec, PipelineBuilder
from stageflow_trio.pipeline.interceptors_hardening import ContextSizeMetric
from stageflow_trio.pipeline.pipeline import Pipeline
from stageflow_trio.pipeline.results import PipelineResults
from stageflow_trio.stages import CorePorts
from stageflow_trio.stages.payloads import StagePayloadResult
from stageflow_trio.stores._redis_url import parse_redis_url
from stageflow_trio.testing import (
    ExplorationReport,
    Fault,
    SnapshotValidationError,
    SnapshotValidationResult,
)
from stageflow_trio.tools import ApprovalRequest, ToolDefinition
from stageflow_trio.tools.executor import ToolExecutorResult
from stageflow_trio.utils import FrozenDict
from tests.test_audit18_values import OURS, REF, VALUES, _hashable

PROTOCOLS = range(pickle.HIGHEST_PROTOCOL + 1)
U1 = uuid.UUID(int=1)
U2 = uuid.UUID(int=2)
T = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)

# ``copy.replace`` exists from Python 3.13 on.
_REPLACE: Callable[..., Any] | None = getattr(copy, "replace", None)
needs_replace = pytest.mark.skipif(
    _REPLACE is None, reason="copy.replace (the __replace__ protocol) is new in Python 3.13"
)


def _replace(value: Any, **changes: Any) -> Any:
    assert _REPLACE is not None
    return _REPLACE(value, **changes)


async def _handler(tool_input: Any) -> Any:
    return None


async def _runner(ctx: Any) -> StageOutput:
    return StageOutput.ok(ran=True)


class _Stage:
    async def execute(self, ctx: Any) -> StageOutput:
        return StageOutput.ok(stage=True)


class _Parsed:
    """What a TypedLLMResult holds as ``parsed`` (a module-level class, so it pickles)."""

    def __init__(self, a: int = 1) -> None:
        self.a = a

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Parsed) and other.a == self.a

    def __hash__(self) -> int:
        return hash(self.a)


def _llm() -> LLMResponse:
    return LLMResponse("c", "m", "p")


# --- 1. the 1.2.0 value classes, against 1.2.0 ------------------------------------

Make = Callable[[], Any]

# name -> (a value, a different value), built with the arguments /tmp/ref12 used.
NEW12: dict[str, tuple[Make, Make]] = {
    "AgentConfig": (lambda: AgentConfig(model="m", max_turns=2), AgentConfig),
    "AgentToolCall": (
        lambda: AgentToolCall(name="t", arguments={"a": 1}, call_id="c"),
        lambda: AgentToolCall(name="u"),
    ),
    "AgentTurn": (
        lambda: AgentTurn(thought="x", final_answer="done"),
        lambda: AgentTurn(tool_calls=[AgentToolCall(name="t")]),
    ),
    "AgentToolResult": (
        lambda: AgentToolResult(call_id="c", name="t", success=True, data={"a": 1}),
        lambda: AgentToolResult(call_id="c", name="t", success=False, error="e"),
    ),
    "AgentRunResult": (
        lambda: AgentRunResult(
            response="r",
            iterations=1,
            prompt_name="p",
            prompt_version="v",
            llm={"content": "c"},
            tool_results=[AgentToolResult(call_id="c", name="t", success=True)],
            security=[{"source": "user"}],
        ),
        lambda: AgentRunResult(
            response="s", iterations=1, prompt_name="p", prompt_version="v", llm={}
        ),
    ),
    "PromptTemplate": (
        lambda: PromptTemplate("n", "v1", "Hi {x}", metadata={"a": 1}),
        lambda: PromptTemplate("n", "v2", "Hi"),
    ),
    "RenderedPrompt": (
        lambda: PromptTemplate("n", "v1", "Hi {x}", metadata={"a": 1}).render({"x": "y"}),
        lambda: RenderedPrompt("n", "v", "c"),
    ),
    "PromptSecurityReport": (
        lambda: PromptSecurityReport("user", True, "t", GuardrailResult(True)),
        lambda: PromptSecurityReport("tool", True, "t", GuardrailResult(True)),
    ),
    "TypedLLMResult": (
        lambda: TypedLLMResult(_llm(), _Parsed(), 1, ("e",)),
        lambda: TypedLLMResult(_llm(), _Parsed(2), 2),
    ),
    "StagePayloadResult": (
        lambda: StagePayloadResult([1, 2], {"n": 2}),
        lambda: StagePayloadResult(3),
    ),
    "CorePorts(realtime_bus=)": (lambda: CorePorts(realtime_bus=None), lambda: CorePorts(db=1)),
    # Objects users keep, copy and pickle (service-ish, 1.2.0 shapes).
    "ToolExecutorResult": (
        lambda: ToolExecutorResult(1, 0, [{"a": 1}], True),
        ToolExecutorResult,
    ),
    "ToolDefinition": (
        lambda: ToolDefinition("n", "a", _handler, "d", {"type": "object"}, ("x",)),
        lambda: ToolDefinition("m", "a", _handler),
    ),
    "ApprovalRequest": (
        lambda: ApprovalRequest(U1, U2, "t", created_at="2024"),
        lambda: ApprovalRequest(U2, U2, "t", created_at="2024"),
    ),
    "RunResult": (lambda: RunResult(True, stages={"a": {"x": 1}}), lambda: RunResult(False)),
    "MemoryEntry": (
        lambda: MemoryEntry(id="i", session_id=U1, role="user", content="c", timestamp=T),
        lambda: MemoryEntry(id="j", session_id=U1, role="user", content="c", timestamp=T),
    ),
    "GuardrailResult": (lambda: GuardrailResult(True), lambda: GuardrailResult(False)),
    "LLMResponse": (_llm, lambda: LLMResponse("d", "m", "p")),
}

# stageflow 1.2.0's answers for the same values (recorded with /tmp/ref12/bin/python):
# every one pickles under protocols 0-5, copies and deep-copies to an equal value,
# equals a twin built alike and differs from the other value. These were frozen there
# (assignment raised dataclasses.FrozenInstanceError) ...
REF12_FROZEN = {
    "AgentConfig",
    "CorePorts(realtime_bus=)",
    "LLMResponse",
    "MemoryEntry",
    "PromptSecurityReport",
    "PromptTemplate",
    "RenderedPrompt",
    "StagePayloadResult",
    "ToolDefinition",
    "TypedLLMResult",
}
# ... and these hashable (the rest raised TypeError: a dict or list field, or a
# pydantic model or mutable dataclass with ``__hash__ = None``).
REF12_HASHABLE = {"AgentConfig", "CorePorts(realtime_bus=)"}
# Ours: frozen everywhere except the still-mutable ApprovalRequest (parity rows
# "AgentToolCall, ...", "RunResult", "Guardrail values", "ToolExecutorResult"), and
# hashable when the contents are; these hold a dict (summary, input_schema, stages)
# or are mutable, as in 1.2.0.
OURS_UNHASHABLE = {
    "ApprovalRequest",
    "RunResult",
    "StagePayloadResult",
    "ToolDefinition",
    "ToolExecutorResult",
}
NEW12_NAMES = sorted(NEW12)


@pytest.mark.parametrize("name", NEW12_NAMES)
def test_new_values_pickle_and_copy_equal_as_in_1_2_0(name: str) -> None:
    make, other = NEW12[name]
    value = make()
    copies = [pickle.loads(pickle.dumps(value, protocol)) for protocol in PROTOCOLS]
    copies += [copy.copy(value), copy.deepcopy(value)]
    for back in copies:
        assert type(back) is type(value)
        assert back == value
        if _hashable(value):
            assert hash(back) == hash(value)
    assert make() == value
    assert value != other()
    assert value.__eq__(object()) is NotImplemented


@pytest.mark.parametrize("name", NEW12_NAMES)
def test_new_values_frozen_and_hashable_where_1_2_0_is(name: str) -> None:
    make, _ = NEW12[name]
    value = make()
    assert _hashable(value) == (name not in OURS_UNHASHABLE)
    if name in REF12_HASHABLE:
        assert _hashable(value)
    if _hashable(value):
        assert hash(make()) == hash(value)
        assert {value: 1}[make()] == 1
    first = attrs.fields(type(value))[0].name
    if name == "ApprovalRequest":  # mutable in both
        setattr(value, first, getattr(value, first))
        return
    with pytest.raises(AttributeError) as info:
        setattr(value, first, getattr(value, first))
    if name in REF12_FROZEN:
        # What code written against 1.2.0 catches.
        import dataclasses

        assert isinstance(info.value, dataclasses.FrozenInstanceError)


@pytest.mark.parametrize("name", NEW12_NAMES)
def test_new_values_repr_and_evolve(name: str) -> None:
    make, _ = NEW12[name]
    value = make()
    assert repr(value).startswith(type(value).__name__)
    str(value)
    assert attrs.evolve(value) == value


def test_pipeline_results_copy_and_pickle_as_in_1_2_0() -> None:
    results = PipelineResults({"a": StageOutput.ok(x=1), "b": StageOutput.fail(error="e")})
    # 1.2.0: copy, deepcopy and every pickle protocol keep the class; .copy(), | and
    # the reflected | give a plain dict; fromkeys keeps the class; no hash; == a dict.
    for back in (
        copy.copy(results),
        copy.deepcopy(results),
        *(pickle.loads(pickle.dumps(results, protocol)) for protocol in PROTOCOLS),
    ):
        assert type(back) is PipelineResults
        assert back == results
        assert back.require_ok("a") == results["a"]
    assert type(results.copy()) is dict
    assert type(results | {}) is dict
    assert type({} | results) is dict
    assert type(PipelineResults.fromkeys(["a"])) is PipelineResults
    assert results == dict(results)
    assert not _hashable(results)
    shallow = copy.copy(results)
    shallow["c"] = StageOutput.ok()
    assert "c" not in results


# --- our own value classes: soundness ---------------------------------------------

OWN: dict[str, Make] = {
    "Fault": lambda: Fault("s", "fail", [1, 2], message="m"),
    "Fault(delay)": lambda: Fault("s", "delay", None, seconds=0.5),
    "DuplexLaneSpec": lambda: DuplexLaneSpec([("a", _runner), ("b", _Stage)], depends_on=["x"]),
    "DuplexSystemSpec": lambda: DuplexSystemSpec(
        DuplexLaneSpec([("a", _runner)]), DuplexLaneSpec([("b", _Stage)]), ("j", _runner), ["a"]
    ),
    "ContractIssue": lambda: ContractIssue("p", "CONTRACT-004-CYCLE", "s", "f", "u"),
    "ExplorationReport": lambda: ExplorationReport(3, (1, 2), (0.5,), FrozenDict({"ok": 2}), 7),
    "SnapshotValidationError": lambda: SnapshotValidationError("f", "m", 3),
    "SnapshotValidationResult": lambda: SnapshotValidationResult(
        False, [SnapshotValidationError("f", "m")], [SnapshotValidationError("g", "w", "v")]
    ),
    "StageNode": lambda: StageNode("a", None, ("b",), False),
    "Attempt": lambda: Attempt("a", 1, 0.0, 1.0, "completed", ({"x": 1},)),
    "ContextSizeMetric": lambda: ContextSizeMetric("a", 1, 2),
}
# Frozen, but holding a dict: unhashable, like a tuple holding a list.
OWN_UNHASHABLE = {"Attempt"}


@pytest.mark.parametrize("name", sorted(OWN))
def test_own_values_are_sound(name: str) -> None:
    make = OWN[name]
    value = make()
    copies = [pickle.loads(pickle.dumps(value, protocol)) for protocol in PROTOCOLS]
    copies += [copy.copy(value), copy.deepcopy(value), attrs.evolve(value)]
    for back in copies:
        assert type(back) is type(value)
        assert back == value
    twin = make()
    assert twin == value
    assert _hashable(value) == (name not in OWN_UNHASHABLE)
    if _hashable(value):
        assert hash(twin) == hash(value)
        assert all(hash(back) == hash(value) for back in copies)
    first = attrs.fields(type(value))[0].name
    with pytest.raises(AttributeError):
        setattr(value, first, getattr(value, first))
    assert repr(value).startswith(type(value).__name__)
    str(value)


def test_fault_with_an_error_keeps_it_through_a_copy() -> None:
    # Its error comes back with the same type and arguments; faults compare errors
    # by those (audit 26: exceptions compare by identity, and a pickled fault was
    # not == the original).
    fault = Fault("s", "raise", [1], error=ValueError("down"))
    for back in (pickle.loads(pickle.dumps(fault)), copy.deepcopy(fault)):
        assert back == fault
        assert hash(back) == hash(fault)
        assert isinstance(back.error, ValueError)
        assert back.error.args == ("down",)
        assert (back.stage, back.action, back.attempts) == ("s", "raise", frozenset({1}))
    assert copy.copy(fault) == fault


def test_redis_target_repr_hides_the_password_and_pickles() -> None:
    target = parse_redis_url("redis://user:SECRET-PW@host:7000/2", "STAGEFLOW_REDIS_URL")
    assert "SECRET" not in repr(target)
    assert "SECRET" not in str(target)
    for protocol in PROTOCOLS:
        back = pickle.loads(pickle.dumps(target, protocol))
        assert back == target
        assert back.password == "SECRET-PW"
        assert hash(back) == hash(target)


def test_contract_issue_str_and_dict() -> None:
    issue = ContractIssue("p", None, "s")
    assert str(issue) == "[CONTRACT] p: s"
    assert pickle.loads(pickle.dumps(issue)).to_dict() == issue.to_dict()


# --- Hypothesis: equal values hash equal (mapping fields in any order) -------------

_scalar = st.one_of(st.none(), st.booleans(), st.integers(-2, 2), st.text(max_size=3))
_mapping = st.dictionaries(st.text(max_size=3), _scalar, max_size=4)


def _reordered(data: dict[str, Any]) -> dict[str, Any]:
    return {key: data[key] for key in reversed(list(data))}


@given(_mapping, _mapping)
def test_agent_values_equal_means_hash_equal(first: dict[str, Any], second: dict[str, Any]) -> None:
    pairs = [
        (
            AgentToolCall(name="t", arguments=first),
            AgentToolCall(name="t", arguments=_reordered(first)),
        ),
        (
            AgentToolResult(call_id="c", name="t", success=True, data=first),
            AgentToolResult(call_id="c", name="t", success=True, data=_reordered(first)),
        ),
        (
            PromptTemplate("n", "v", "t", metadata=first),
            PromptTemplate("n", "v", "t", metadata=_reordered(first)),
        ),
        (
            RenderedPrompt("n", "v", "c", variables=first, metadata=second),
            RenderedPrompt("n", "v", "c", variables=_reordered(first), metadata=second),
        ),
        (
            AgentRunResult(
                response="r",
                iterations=1,
                prompt_name="p",
                prompt_version="v",
                llm=first,
                security=[second],
            ),
            AgentRunResult(
                response="r",
                iterations=1,
                prompt_name="p",
                prompt_version="v",
                llm=_reordered(first),
                security=[_reordered(second)],
            ),
        ),
    ]
    for a, b in pairs:
        assert a == b
        assert hash(a) == hash(b)
        back = pickle.loads(pickle.dumps(a))
        assert back == b
        assert hash(back) == hash(b)


# --- 2. copy.replace (Python 3.13) -------------------------------------------------


@needs_replace
@pytest.mark.parametrize("name", sorted(VALUES))
def test_copy_replace_takes_the_reference_field_names(name: str, reference: Any) -> None:
    import dataclasses

    make, _ = VALUES[name]
    ref, ours = make(REF), make(OURS)
    if not dataclasses.is_dataclass(ref):  # FrozenDict: neither supports it
        with pytest.raises(TypeError):
            _replace(ours)
        return
    assert _replace(ours) == ours
    for field in dataclasses.fields(ref):
        if field.init:
            # The reference's name for every constructor field works here too.
            assert _replace(ours, **{field.name: getattr(ours, field.name)}) == ours


@needs_replace
@pytest.mark.parametrize("name", NEW12_NAMES + sorted(OWN))
def test_copy_replace_on_the_new_and_own_values(name: str) -> None:
    make = NEW12[name][0] if name in NEW12 else OWN[name]
    value = make()
    assert _replace(value) == value


# value, the changes, the error: copy.replace runs the constructor's checks again.
BAD_REPLACEMENTS: list[tuple[str, Make, dict[str, Any], type[Exception]]] = [
    ("StageOutput.data", lambda: StageOutput.ok(a=1), {"data": 5}, TypeError),
    ("StageOutput unknown field", lambda: StageOutput.ok(a=1), {"nonsense": 1}, TypeError),
    ("AgentConfig.max_turns", AgentConfig, {"max_turns": 0}, ValueError),
    (
        "AgentTurn both empty",
        lambda: AgentTurn(final_answer="x"),
        {"final_answer": None},
        ValueError,
    ),
    ("AgentToolCall.arguments", lambda: AgentToolCall(name="t"), {"arguments": 5}, ValueError),
    ("PromptTemplate.name", lambda: PromptTemplate("n", "v", "t"), {"name": 5}, TypeError),
    ("StagePayloadResult.summary", lambda: StagePayloadResult(1), {"summary": 5}, TypeError),
    ("TypedLLMResult.attempts", lambda: TypedLLMResult(_llm(), 1, 1), {"attempts": 0}, ValueError),
    ("Fault.seconds", lambda: Fault("s", "delay", seconds=1.0), {"seconds": -1.0}, ValueError),
    ("DuplexLaneSpec.stages", lambda: DuplexLaneSpec([("a", _runner)]), {"stages": []}, ValueError),
]


@needs_replace
@pytest.mark.parametrize(
    ("make", "changes", "error"),
    [case[1:] for case in BAD_REPLACEMENTS],
    ids=[case[0] for case in BAD_REPLACEMENTS],
)
def test_copy_replace_checks_the_new_fields(
    make: Make, changes: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        _replace(make(), **changes)


@needs_replace
def test_copy_replace_converts_as_the_constructor_does() -> None:
    changed = _replace(StageOutput.ok(a=1), data={"b": [1]})
    assert isinstance(changed.data, FrozenDict)
    assert changed.data == {"b": [1]}
    turn = _replace(AgentTurn(final_answer="x"), final_answer=None, tool_calls=[AgentToolCall("t")])
    assert turn.tool_calls == (AgentToolCall("t"),)
    result = _replace(StagePayloadResult(1, {"a": 1}), summary=FrozenDict({"b": 2}))
    assert type(result.summary) is dict


# --- 3. Pipeline and PipelineBuilder through pickle and deepcopy ------------------


def _pipeline(root: str) -> Any:
    module = __import__(f"{root}.pipeline.pipeline", fromlist=["Pipeline"])
    kind = __import__(f"{root}.core", fromlist=["StageKind"]).StageKind
    return (
        module.Pipeline("p")
        .with_stage("a", _runner, kind.TRANSFORM)
        .with_stage("b", _Stage, kind.WORK, dependencies=("a",))
    )


def _builder(root: str) -> Any:
    module = __import__(f"{root}.pipeline", fromlist=["PipelineBuilder"])
    return module.PipelineBuilder("p").with_stage("a", _Stage).with_stage("b", _Stage, ("a",))


def _copies(value: Any) -> list[Any]:
    return [
        copy.copy(value),
        copy.deepcopy(value),
        *(pickle.loads(pickle.dumps(value, protocol)) for protocol in PROTOCOLS),
    ]


@pytest.mark.parametrize("make", [_pipeline, _builder], ids=["Pipeline", "PipelineBuilder"])
def test_pipelines_pickle_and_deepcopy_as_the_references(make: Any, reference: Any) -> None:
    # 0.9.1 (live) and 1.2.0 (recorded: the same for every protocol) round-trip both.
    for back in _copies(make(REF)):
        assert list(back.stages) == ["a", "b"]
    ours = make(OURS)
    for back in _copies(ours):
        assert type(back) is type(ours)
        assert back == ours
        assert list(back.stages) == ["a", "b"]
        assert back.stages["b"].dependencies == ("a",)


def test_a_pickled_pipeline_runs_and_stays_independent() -> None:
    pipeline = _pipeline(OURS)
    assert isinstance(pipeline, Pipeline)

    async def main() -> None:
        first = await pipeline.run()  # the pipeline now keeps its built graph
        for back in (pickle.loads(pickle.dumps(pipeline)), copy.deepcopy(pipeline)):
            assert await back.run() == first
            grown = back.with_stage("c", _runner, StageKind.TRANSFORM, dependencies=("b",))
            assert list(grown.stages) == ["a", "b", "c"]
        assert list(pipeline.stages) == ["a", "b"]
        assert await pipeline.run() == first

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))  # durations 0
    # The stage table alone round-trips as a mapping.
    stages = pickle.loads(pickle.dumps(pipeline.stages))
    assert dict(stages) == dict(pipeline.stages)
    builder = pickle.loads(pickle.dumps(_builder(OURS)))
    assert isinstance(builder, PipelineBuilder)
    assert list(builder.with_stage("c", _Stage, ("b",)).stages) == ["a", "b", "c"]
