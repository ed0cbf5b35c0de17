"""The legacy ToolRegistry: registration, lazy factories, the global registry, @tool, parsing.

Acceptance criteria of CL54-56 (checklist 8.1b).
"""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import attrs
import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio.testing import reset_globals
from stageflow_trio.tools import registry as registry_module
from stageflow_trio.tools.base import BaseTool, ToolInput, ToolOutput
from stageflow_trio.tools.registry import (
    ResolvedToolCall,
    ToolRegistry,
    UnresolvedToolCall,
    clear_tool_registry,
    get_tool_registry,
    register_tool,
    tool,
)
from tests.fakes import python_output


@attrs.frozen
class Action:
    type: str
    payload: dict[str, Any] = attrs.field(factory=dict)


class Named(BaseTool):
    """A tool whose action type is given at construction; records its inputs."""

    def __init__(self, action_type: str, result: ToolOutput | None = None) -> None:
        self._action_type = action_type
        self.result = result or ToolOutput(success=True, data={"by": action_type})
        self.inputs: list[tuple[ToolInput, dict[str, Any]]] = []

    @property
    def name(self) -> str:
        return f"{self._action_type}_tool"

    @property
    def description(self) -> str:
        return ""

    @property
    def action_type(self) -> str:
        return self._action_type

    async def execute(self, input: ToolInput, ctx: dict[str, Any]) -> ToolOutput:  # noqa: A002
        self.inputs.append((input, ctx))
        return self.result


def openai_call(call_id: str, name: str, arguments: Any) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def test_all_matches_the_reference(reference: ModuleType) -> None:
    assert registry_module.__all__ == reference.tools.registry.__all__


# --- registration and lookup -------------------------------------------------------------


def test_register_get_can_execute_list_and_contains() -> None:
    registry = ToolRegistry()
    search, edit = Named("search"), Named("edit")
    assert registry.register(search) is None  # type: ignore[func-returns-value]
    registry.register(edit)
    assert registry.get_tool("search") is search
    assert registry.get_tool("missing") is None
    assert registry.can_execute("edit")
    assert not registry.can_execute("missing")
    assert registry.list_tools() == [search, edit]
    assert "search" in registry
    assert "missing" not in registry
    assert 3 not in registry  # a non-str is never an action type
    replacement = Named("search")
    registry.register(replacement)
    assert registry.get_tool("search") is replacement
    assert registry.list_tools() == [replacement, edit]


def test_a_factory_builds_the_tool_on_first_get_and_is_memoized() -> None:
    registry = ToolRegistry()
    built: list[Named] = []

    def factory() -> Named:
        built.append(Named("lazy"))
        return built[-1]

    registry.register_factory("lazy", factory)
    assert built == []
    assert registry.can_execute("lazy")
    assert "lazy" in registry
    assert registry.list_tools() == []  # not realized yet
    first = registry.get_tool("lazy")
    assert first is built[0]
    assert registry.get_tool("lazy") is first
    assert len(built) == 1
    assert registry.list_tools() == [first]


def test_an_instance_wins_over_a_factory_for_the_same_action_type() -> None:
    registry = ToolRegistry()
    instance = Named("x")
    registry.register(instance)
    registry.register_factory("x", lambda: Named("x"))
    assert registry.get_tool("x") is instance


def test_a_failing_factory_raises_from_get_tool_and_keeps_nothing() -> None:
    registry = ToolRegistry()
    calls: list[int] = []

    def factory() -> Named:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("not yet")
        return Named("flaky")

    registry.register_factory("flaky", factory)
    with pytest.raises(RuntimeError, match=r"^not yet$"):
        registry.get_tool("flaky")
    assert registry.list_tools() == []
    assert registry.get_tool("flaky") is not None
    assert len(calls) == 2


def test_aliases_of_stageflow_1_2() -> None:
    registry = ToolRegistry()
    one = Named("one")
    registry.register_tool(one)
    assert registry.get("one") is one
    assert registry.get_by_action_type("one") is one
    assert registry.has("one")
    assert not registry.has("two")
    assert registry.list() == [one]


# --- execute -----------------------------------------------------------------------------


async def test_execute_runs_the_tool_with_the_action_wrapped() -> None:
    registry = ToolRegistry()
    search = Named("search")
    registry.register(search)
    action = Action("search", {"q": "trio"})
    with trio.testing.assert_checkpoints():
        output = await registry.execute(action, {"user": "u"})
    assert output == ToolOutput(success=True, data={"by": "search"})
    assert search.inputs == [(ToolInput(action=action), {"user": "u"})]


async def test_execute_without_a_tool_is_a_failed_output_and_a_checkpoint() -> None:
    with trio.testing.assert_checkpoints():
        output = await ToolRegistry().execute(Action("nope"), {})
    assert output == ToolOutput(success=False, error="No tool registered for action type: nope")


async def test_execute_lets_a_tool_error_and_a_cancellation_through() -> None:
    class Boom(Named):
        async def execute(self, input: ToolInput, ctx: dict[str, Any]) -> ToolOutput:  # noqa: A002
            raise ValueError("tool failed")

    registry = ToolRegistry()
    registry.register(Boom("boom"))
    with pytest.raises(ValueError, match=r"^tool failed$"):
        await registry.execute(Action("boom"), {})
    registry.register(Named("fine"))
    with trio.CancelScope() as scope:
        scope.cancel()
        await registry.execute(Action("fine"), {})
        pytest.fail("not cancelled")  # pragma: no cover
    assert registry.get_tool("fine").inputs == []  # type: ignore[union-attr]


# --- the global registry -----------------------------------------------------------------


def test_the_global_registry_is_a_singleton_until_cleared() -> None:
    first = get_tool_registry()
    assert get_tool_registry() is first
    clear_tool_registry()
    second = get_tool_registry()
    assert second is not first
    assert isinstance(second, ToolRegistry)


def test_register_tool_registers_globally_and_returns_none() -> None:
    search = Named("search")
    assert register_tool(search) is None  # type: ignore[func-returns-value]
    assert get_tool_registry().get_tool("search") is search


def test_reset_globals_clears_the_global_registry() -> None:
    register_tool(Named("search"))
    reset_globals()
    assert "search" not in get_tool_registry()


def test_the_tool_decorator_stores_metadata_registers_a_factory_and_returns_the_class() -> None:
    @tool("store_memory", name="memory_store", description="Store a memory")
    class MemoryStore(BaseTool):
        pass

    assert MemoryStore._tool_action_type == "store_memory"  # type: ignore[attr-defined]
    assert MemoryStore._tool_name == "memory_store"  # type: ignore[attr-defined]
    assert MemoryStore._tool_description == "Store a memory"  # type: ignore[attr-defined]
    assert MemoryStore.__name__ == "MemoryStore"
    assert isinstance(MemoryStore(), MemoryStore)  # still instantiable
    registry = get_tool_registry()
    assert registry.can_execute("store_memory")
    assert registry.list_tools() == []  # built lazily
    built = registry.get_tool("store_memory")
    assert isinstance(built, MemoryStore)
    assert registry.get_tool("store_memory") is built


def test_the_tool_decorator_defaults() -> None:
    @tool("plain")
    class Plain:
        pass

    assert Plain._tool_name == "Plain"  # type: ignore[attr-defined]
    assert Plain._tool_description == ""  # type: ignore[attr-defined]


# --- parse_and_resolve -------------------------------------------------------------------


@pytest.fixture
def registry() -> ToolRegistry:
    registry = ToolRegistry()
    registry.register(Named("store_memory"))
    registry.register(Named("calculator"))
    return registry


def test_openai_style_calls_resolve_with_decoded_arguments(registry: ToolRegistry) -> None:
    call = openai_call("call_123", "store_memory", '{"content": "hello"}')
    resolved, unresolved = registry.parse_and_resolve([call])
    assert unresolved == []
    assert resolved == [
        ResolvedToolCall(
            tool=registry.get_tool("store_memory"),  # type: ignore[arg-type]
            call_id="call_123",
            name="store_memory",
            arguments={"content": "hello"},
            raw=call,
        )
    ]
    assert resolved[0].raw is call


def test_direct_format_without_a_wrapper(registry: ToolRegistry) -> None:
    arguments = {"x": 1}
    call = {"id": "1", "name": "calculator", "arguments": arguments}
    resolved, unresolved = registry.parse_and_resolve([call], function_wrapper=None)
    assert unresolved == []
    assert [(r.call_id, r.name, r.arguments) for r in resolved] == [("1", "calculator", {"x": 1})]
    assert resolved[0].arguments is arguments  # a dict is used as is


def test_a_call_without_the_wrapper_key_is_read_directly(registry: ToolRegistry) -> None:
    resolved, _ = registry.parse_and_resolve([{"id": "1", "name": "calculator", "arguments": "{}"}])
    assert [(r.name, r.arguments) for r in resolved] == [("calculator", {})]


def test_an_empty_wrapper_name_means_no_wrapper(registry: ToolRegistry) -> None:
    call = {"id": 7, "name": "calculator", "function": {"name": "store_memory"}}
    resolved, _ = registry.parse_and_resolve([call], function_wrapper="")
    assert [(r.call_id, r.name) for r in resolved] == [("7", "calculator")]


def test_custom_field_names(registry: ToolRegistry) -> None:
    call = {"call": "c1", "fn": {"tool": "calculator", "args": '{"n": 2}'}}
    resolved, unresolved = registry.parse_and_resolve(
        [call], id_field="call", name_field="tool", arguments_field="args", function_wrapper="fn"
    )
    assert unresolved == []
    assert [(r.call_id, r.name, r.arguments) for r in resolved] == [("c1", "calculator", {"n": 2})]


@pytest.mark.parametrize(
    ("raw_arguments", "expected"),
    [
        ("", {}),
        ('{"a": [1, 2]}', {"a": [1, 2]}),
        ({"b": 1}, {"b": 1}),
        (None, {}),
        (5, {}),
        (["x"], {}),
    ],
)
def test_argument_decoding(registry: ToolRegistry, raw_arguments: object, expected: object) -> None:
    resolved, unresolved = registry.parse_and_resolve(
        [openai_call("c", "calculator", raw_arguments)]
    )
    assert unresolved == []
    assert resolved[0].arguments == expected


def test_missing_arguments_and_id_default_to_empty(registry: ToolRegistry) -> None:
    resolved, _ = registry.parse_and_resolve([{"function": {"name": "calculator"}}])
    assert [(r.call_id, r.arguments) for r in resolved] == [("", {})]


def test_invalid_json_arguments_are_unresolved(registry: ToolRegistry) -> None:
    call = openai_call("c9", "calculator", '{"a":')
    resolved, unresolved = registry.parse_and_resolve([call])
    assert resolved == []
    assert unresolved == [
        UnresolvedToolCall(
            call_id="c9",
            name="calculator",
            arguments={},
            error="Invalid JSON arguments: Expecting value: line 1 column 6 (char 5)",
            raw=call,
        )
    ]
    assert unresolved[0].raw is call


@pytest.mark.parametrize(("text", "kind"), [("[1, 2]", "list"), ('"s"', "str"), ("3", "int")])
def test_json_arguments_that_are_not_an_object_are_unresolved(
    registry: ToolRegistry, text: str, kind: str
) -> None:
    resolved, unresolved = registry.parse_and_resolve([openai_call("c", "calculator", text)])
    assert resolved == []
    assert [(u.arguments, u.error) for u in unresolved] == [
        ({}, f"Invalid JSON arguments: expected a JSON object; got {kind}")
    ]


def test_an_unknown_tool_is_unresolved_with_its_arguments(registry: ToolRegistry) -> None:
    call = openai_call("c2", "teleport", '{"to": "mars"}')
    resolved, unresolved = registry.parse_and_resolve([call])
    assert resolved == []
    assert unresolved == [
        UnresolvedToolCall(
            call_id="c2",
            name="teleport",
            arguments={"to": "mars"},
            error="No tool registered for action type: teleport",
            raw=call,
        )
    ]


def test_results_keep_call_order_within_each_list(registry: ToolRegistry) -> None:
    calls = [
        openai_call("1", "calculator", "{}"),
        openai_call("2", "nope", "{}"),
        openai_call("3", "store_memory", "{}"),
        openai_call("4", "calculator", "{bad"),
    ]
    resolved, unresolved = registry.parse_and_resolve(calls)
    assert [r.call_id for r in resolved] == ["1", "3"]
    assert [u.call_id for u in unresolved] == ["2", "4"]


def test_a_wrapper_that_is_not_a_dict_fails_to_parse(registry: ToolRegistry) -> None:
    call = {"id": "c3", "function": "calculator"}
    resolved, unresolved = registry.parse_and_resolve([call])
    assert resolved == []
    assert unresolved == [
        UnresolvedToolCall(
            call_id="c3",
            name="unknown",
            arguments={},
            error="Failed to parse tool call: 'str' object has no attribute 'get'",
            raw=call,
        )
    ]


@pytest.mark.parametrize(("name", "kind"), [(5, "int"), (None, "NoneType"), (["a"], "list")])
def test_a_name_that_is_not_a_str_fails_to_parse(
    registry: ToolRegistry, name: object, kind: str
) -> None:
    call = {"id": "c", "name": name}
    resolved, unresolved = registry.parse_and_resolve([call], function_wrapper=None)
    assert resolved == []
    assert [(u.call_id, u.name, u.error) for u in unresolved] == [
        ("c", str(name), f"Failed to parse tool call: name must be a str; got {kind}")
    ]


def test_a_failing_factory_is_reported_and_the_next_call_still_resolves() -> None:
    registry = ToolRegistry()

    def broken() -> Named:
        raise RuntimeError("cannot build")

    registry.register_factory("broken", broken)
    registry.register(Named("ok"))
    resolved, unresolved = registry.parse_and_resolve(
        [{"id": "a", "name": "broken"}, {"id": "b", "name": "ok"}], function_wrapper=None
    )
    assert [u.error for u in unresolved] == ["Failed to parse tool call: cannot build"]
    assert [u.name for u in unresolved] == ["broken"]
    assert [r.call_id for r in resolved] == ["b"]


def test_a_factory_is_built_once_across_calls() -> None:
    registry = ToolRegistry()
    built: list[int] = []

    def factory() -> Named:
        built.append(1)
        return Named("lazy")

    registry.register_factory("lazy", factory)
    resolved, _ = registry.parse_and_resolve(
        [{"name": "lazy"}, {"name": "lazy"}], function_wrapper=None
    )
    assert resolved[0].tool is resolved[1].tool
    assert built == [1]


def test_an_empty_list_gives_two_empty_lists(registry: ToolRegistry) -> None:
    assert registry.parse_and_resolve([]) == ([], [])


def test_a_generator_of_calls_is_accepted(registry: ToolRegistry) -> None:
    resolved, _ = registry.parse_and_resolve(
        openai_call(str(i), "calculator", "{}") for i in range(2)
    )
    assert [r.call_id for r in resolved] == ["0", "1"]


def test_resolved_and_unresolved_calls_are_frozen(registry: ToolRegistry) -> None:
    resolved, unresolved = registry.parse_and_resolve(
        [openai_call("1", "calculator", "{}"), openai_call("2", "nope", "{}")]
    )
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        resolved[0].name = "x"  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        unresolved[0].error = "x"  # type: ignore[misc]
    assert ResolvedToolCall(Named("t"), "i", "t", {}).raw is None
    assert UnresolvedToolCall("i", "t", {}, "e").raw is None


# --- property: only the documented errors --------------------------------------------------

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(), children, max_size=3)
    ),
    max_leaves=8,
)
FIELD = st.sampled_from(["id", "name", "arguments", "function", "x"])
ARGUMENTS = (
    JSON_VALUES | JSON_VALUES.map(json.dumps) | st.sampled_from(["", "{", "[1", "nope", '{"a": 1}'])
)
CALL_VALUES = JSON_VALUES | ARGUMENTS | st.sampled_from(["calculator", "store_memory"])
CALLS = st.dictionaries(
    FIELD,
    CALL_VALUES | st.dictionaries(FIELD, CALL_VALUES, max_size=4),
    max_size=5,
)


@given(
    calls=st.lists(CALLS, max_size=5),
    wrapper=st.sampled_from(["function", None, ""]),
)
def test_parse_and_resolve_sorts_every_call_into_exactly_one_list(
    calls: list[dict[str, Any]], wrapper: str | None
) -> None:
    registry = ToolRegistry()
    registry.register(Named("calculator"))
    registry.register_factory("store_memory", lambda: Named("store_memory"))
    resolved, unresolved = registry.parse_and_resolve(calls, function_wrapper=wrapper)
    raws = [id(call) for call in calls]
    outcomes: list[ResolvedToolCall | UnresolvedToolCall] = [*resolved, *unresolved]
    assert sorted(id(outcome.raw) for outcome in outcomes) == sorted(raws)
    for item in resolved:
        assert isinstance(item.call_id, str)
        assert item.name in ("calculator", "store_memory")
        assert item.tool is registry.get_tool(item.name)
        assert isinstance(item.arguments, dict)
    for failed in unresolved:
        assert isinstance(failed.call_id, str)
        assert isinstance(failed.name, str)
        assert isinstance(failed.arguments, dict)
        assert failed.error.startswith(
            ("No tool registered for action type: ", "Invalid JSON arguments: ", "Failed to parse")
        )


@given(tool_calls=JSON_VALUES | st.lists(CALLS | JSON_VALUES, max_size=4))
def test_parse_and_resolve_raises_only_the_documented_type_error(tool_calls: Any) -> None:
    if isinstance(tool_calls, list) and all(isinstance(call, dict) for call in tool_calls):
        resolved, unresolved = ToolRegistry().parse_and_resolve(tool_calls)
        assert resolved == []
        assert len(unresolved) == len(tool_calls)
    else:
        with pytest.raises(TypeError, match=r"^ToolRegistry.parse_and_resolve: tool_calls"):
            ToolRegistry().parse_and_resolve(tool_calls)


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tool_calls", "message"),
    [
        ({"id": "1"}, "tool_calls must be a list of dicts; got dict"),
        ("calls", "tool_calls must be a list of dicts; got str"),
        (None, "tool_calls must be a list of dicts; got NoneType"),
        ([{"id": "1"}, ["id"]], r"tool_calls\[1\] must be a dict; got list"),
    ],
)
def test_parse_and_resolve_rejects_what_is_not_a_list_of_dicts(
    tool_calls: Any, message: str
) -> None:
    with pytest.raises(TypeError, match=rf"^ToolRegistry.parse_and_resolve: {message}$"):
        ToolRegistry().parse_and_resolve(tool_calls)


@pytest.mark.parametrize(
    ("field", "rule"),
    [
        ("id_field", "a str"),
        ("name_field", "a str"),
        ("arguments_field", "a str"),
        ("function_wrapper", "a str or None"),
    ],
)
def test_parse_and_resolve_field_names_must_be_str(field: str, rule: str) -> None:
    bad: dict[str, Any] = {field: 1}
    with pytest.raises(
        TypeError, match=rf"^ToolRegistry.parse_and_resolve: {field} must be {rule}; got int$"
    ):
        ToolRegistry().parse_and_resolve([], **bad)


def test_register_rejects_a_tool_without_a_str_action_type() -> None:
    with pytest.raises(
        TypeError,
        match=r"^ToolRegistry.register: tool must have an action_type attribute; got object$",
    ):
        ToolRegistry().register(object())  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"^ToolRegistry.register: tool.action_type must be a str; got int$"
    ):
        ToolRegistry().register(Named(5))  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"^register_tool: tool.action_type must be a str; got int$"
    ):
        register_tool(Named(5))  # type: ignore[arg-type]
    assert get_tool_registry().list_tools() == []


def test_register_factory_checks_its_arguments() -> None:
    with pytest.raises(
        TypeError, match=r"^ToolRegistry.register_factory: action_type must be a str; got int$"
    ):
        ToolRegistry().register_factory(1, Named)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^ToolRegistry.register_factory: factory must be"):
        ToolRegistry().register_factory("x", "Named")  # type: ignore[arg-type]


def test_the_tool_decorator_checks_its_arguments() -> None:
    with pytest.raises(TypeError, match=r"^tool: action_type must be a str; got int$"):
        tool(1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^tool: name must be a str or None; got int$"):
        tool("a", name=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^tool: description must be a str or None; got int$"):
        tool("a", description=1)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"^tool: the decorated object must be a class; got function$"
    ):
        tool("a")(lambda: None)  # type: ignore[type-var]
    assert "a" not in get_tool_registry()


# --- StageInputs.tool_registry (stageflow 1.2) -------------------------------------------


async def test_a_stage_reaches_the_global_registry_through_its_inputs() -> None:
    from stageflow_trio.api import Pipeline, StageContext

    register_tool(Named("search"))
    seen: list[object] = []

    async def find(ctx: StageContext) -> dict[str, Any]:
        registry = ctx.inputs.tool_registry
        seen.append(registry)
        return {"can": registry.can_execute("search")}

    results = await Pipeline().with_stage("find", find, "work").run()
    assert results.data("find") == {"can": True}
    assert seen == [get_tool_registry()]
    # It follows the global registry: a cleared one is replaced by a new, empty one.
    clear_tool_registry()
    results = await Pipeline().with_stage("find", find, "work").run()
    assert results.data("find") == {"can": False}
    assert seen[1] is get_tool_registry()
    assert seen[1] is not seen[0]


def test_the_stages_layer_loads_the_tools_only_when_asked() -> None:
    code = (
        "import sys; from stageflow_trio.stages.inputs import StageInputs; "
        "from stageflow_trio.context import ContextSnapshot; "
        "inputs = StageInputs(snapshot=ContextSnapshot()); "
        "before = 'stageflow_trio.tools.registry' in sys.modules; "
        "print(before, type(inputs.tool_registry).__name__)"
    )
    out = python_output(code)
    assert out.split() == ["False", "ToolRegistry"]


def test_without_a_provider_the_property_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    from stageflow_trio import _globals
    from stageflow_trio.context import ContextSnapshot
    from stageflow_trio.stages.inputs import StageInputs

    monkeypatch.setattr(_globals, "_tool_registry_provider", None)
    with pytest.raises(RuntimeError, match=r"^no tool registry provider is registered$"):
        _ = StageInputs(snapshot=ContextSnapshot()).tool_registry
