"""The legacy ToolRegistry against the reference 0.9.1: the same tool calls, the same outcomes.

Where the reference returns ill-typed values (a non-str tool name, JSON arguments
that are not an object) stageflow_trio reports the call as unresolved instead
(docs/parity.md, "Tools (registry, parsing, diff)"); everything else must match
field for field.
"""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio.tools.registry import ResolvedToolCall, ToolRegistry, UnresolvedToolCall
from tests.fakes import import_reference

TOOLS = ("calculator", "store_memory", "lazy")


class OurTool:
    def __init__(self, action_type: str) -> None:
        self.name = self.action_type = action_type
        self.description = ""


class RefTool:
    def __init__(self, action_type: str) -> None:
        self.name = self.action_type = action_type
        self.description = ""


def registries(reference: ModuleType) -> tuple[ToolRegistry, Any]:
    ours = ToolRegistry()
    theirs = reference.tools.registry.ToolRegistry()
    for name in TOOLS[:2]:
        ours.register(OurTool(name))  # type: ignore[arg-type]
        theirs.register(RefTool(name))
    ours.register_factory("lazy", lambda: OurTool("lazy"))  # type: ignore[arg-type, return-value]
    theirs.register_factory("lazy", lambda: RefTool("lazy"))
    return ours, theirs


def outcome(item: Any) -> tuple[Any, ...]:
    """A parse result without the tool object (compared by its action type)."""
    if hasattr(item, "tool"):
        return (
            "resolved",
            item.call_id,
            item.name,
            item.arguments,
            item.tool.action_type,
            item.raw,
        )
    return ("unresolved", item.call_id, item.name, item.arguments, item.error, item.raw)


def parse_one(registry: Any, call: dict[str, Any], **options: Any) -> tuple[Any, ...]:
    resolved, unresolved = registry.parse_and_resolve([call], **options)
    items: list[Any] = [*resolved, *unresolved]
    assert len(items) == 1
    return outcome(items[0])


def effective_name(call: dict[str, Any], wrapper: str | None) -> object:
    """The name the reference reads, or a str when it never gets that far."""
    if wrapper and wrapper in call:
        inner = call[wrapper]
        if not isinstance(inner, dict):
            return ""  # both fail on inner.get(...) with the same AttributeError
        return inner.get("name", "")
    return call.get("name", "")


def assert_same_or_documented(
    reference: ModuleType, call: dict[str, Any], wrapper: str | None
) -> None:
    ours_registry, ref_registry = registries(reference)
    ours = parse_one(ours_registry, call, function_wrapper=wrapper)
    theirs = parse_one(ref_registry, call, function_wrapper=wrapper)
    name = effective_name(call, wrapper)
    if not isinstance(name, str):
        assert ours[0] == "unresolved"
        assert (
            ours[4] == f"Failed to parse tool call: name must be a str; got {type(name).__name__}"
        )
        assert ours[2] == str(call.get("name", "unknown"))
    elif not isinstance(theirs[3], dict):
        # The reference keeps a decoded non-object as the arguments.
        assert ours[:4] == ("unresolved", theirs[1], theirs[2], {})
        kind = type(theirs[3]).__name__
        assert ours[4] == f"Invalid JSON arguments: expected a JSON object; got {kind}"
    else:
        assert ours == theirs


@pytest.mark.parametrize(
    ("call", "wrapper"),
    [
        (
            {"id": "call_1", "function": {"name": "store_memory", "arguments": '{"c": "hi"}'}},
            "function",
        ),
        ({"id": "1", "name": "calculator", "arguments": {"x": 1}}, None),
        ({"id": "1", "name": "calculator", "arguments": "{}"}, "function"),
        ({"function": {"name": "lazy"}}, "function"),
        ({"id": 3, "function": {"name": "calculator", "arguments": ""}}, "function"),
        ({"id": None, "function": {"name": "calculator", "arguments": 7}}, "function"),
        ({"id": "2", "function": {"name": "calculator", "arguments": '{"a":'}}, "function"),
        ({"id": "2", "function": {"name": "teleport", "arguments": '{"to": 1}'}}, "function"),
        ({"id": "3", "function": "calculator"}, "function"),
        ({"id": "3", "function": None, "name": "x"}, "function"),
        ({"id": "4", "name": "calculator", "function": {"name": "lazy"}}, ""),
        ({}, "function"),
    ],
)
def test_known_calls_match(
    reference: ModuleType, call: dict[str, Any], wrapper: str | None
) -> None:
    ours_registry, ref_registry = registries(reference)
    assert parse_one(ours_registry, call, function_wrapper=wrapper) == parse_one(
        ref_registry, call, function_wrapper=wrapper
    )


def test_custom_fields_match(reference: ModuleType) -> None:
    options = {"id_field": "cid", "name_field": "tool", "arguments_field": "args"}
    call = {"cid": "c", "fn": {"tool": "calculator", "args": '{"n": 2}'}}
    ours_registry, ref_registry = registries(reference)
    ours = parse_one(ours_registry, call, function_wrapper="fn", **options)
    assert ours == parse_one(ref_registry, call, function_wrapper="fn", **options)
    assert ours[:4] == ("resolved", "c", "calculator", {"n": 2})


@pytest.mark.parametrize(
    ("call", "reference_name"),
    [
        ({"id": "5", "name": 5}, 5),
        ({"id": "5", "name": None}, None),
    ],
)
def test_a_non_str_name_is_unresolved_here_and_kept_by_the_reference(
    reference: ModuleType, call: dict[str, Any], reference_name: object
) -> None:
    ours_registry, ref_registry = registries(reference)
    theirs = parse_one(ref_registry, call, function_wrapper=None)
    assert theirs[:3] == ("unresolved", "5", reference_name)
    ours = parse_one(ours_registry, call, function_wrapper=None)
    assert ours[:3] == ("unresolved", "5", str(reference_name))


def test_json_arguments_that_are_not_an_object(reference: ModuleType) -> None:
    call = {"id": "6", "function": {"name": "calculator", "arguments": "[1, 2]"}}
    ours_registry, ref_registry = registries(reference)
    assert parse_one(ref_registry, call)[:4] == ("resolved", "6", "calculator", [1, 2])
    assert parse_one(ours_registry, call)[:5] == (
        "unresolved",
        "6",
        "calculator",
        {},
        "Invalid JSON arguments: expected a JSON object; got list",
    )


def test_a_call_that_is_not_a_dict(reference: ModuleType) -> None:
    ours_registry, ref_registry = registries(reference)
    with pytest.raises(AttributeError):
        ref_registry.parse_and_resolve(["call"])
    with pytest.raises(TypeError, match=r"tool_calls\[0\] must be a dict; got str$"):
        ours_registry.parse_and_resolve(["call"])  # type: ignore[list-item]


SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5)
)
VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=6,
)
ARGUMENTS = VALUES | VALUES.map(json.dumps) | st.sampled_from(["", "{", "nope", '{"a": [1]}'])
NAMES = st.sampled_from([*TOOLS, "teleport", ""]) | VALUES
INNER = st.fixed_dictionaries({}, optional={"name": NAMES, "arguments": ARGUMENTS, "id": VALUES})
CALLS = st.fixed_dictionaries(
    {},
    optional={
        "id": VALUES,
        "name": NAMES,
        "arguments": ARGUMENTS,
        "function": INNER | VALUES,
    },
)


@given(call=CALLS, wrapper=st.sampled_from(["function", None, ""]))
def test_random_calls_match_or_differ_only_as_documented(
    call: dict[str, Any], wrapper: str | None
) -> None:
    assert_same_or_documented(import_reference(), call, wrapper)


def test_the_result_types_have_the_reference_fields(reference: ModuleType) -> None:
    ref = reference.tools.registry
    for ours, theirs in (
        (ResolvedToolCall, ref.ResolvedToolCall),
        (UnresolvedToolCall, ref.UnresolvedToolCall),
    ):
        assert [f.name for f in ours.__attrs_attrs__] == list(theirs.__dataclass_fields__)
