"""ContextSnapshot.from_dict on hostile input: wrong types, deep nesting, reference cycles.

Whatever it is given, ``from_dict`` returns a hashable (so truly immutable)
snapshot or raises TypeError / ValueError naming the path of the bad value;
never RecursionError, never a mutable value stored inside the snapshot.
"""

from __future__ import annotations

import enum
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio.context.context_snapshot import ContextSnapshot
from stageflow_trio.context.conversation import Conversation
from stageflow_trio.context.enrichments import (
    DocumentEnrichment,
    Enrichments,
    MemoryEnrichment,
    ProfileEnrichment,
)
from stageflow_trio.context.identity import RunIdentity
from stageflow_trio.context.types import Message, RoutingDecision
from stageflow_trio.utils.frozen import FrozenDict

from .strategies import EXTENSION_TYPES, snapshots

# The documented bound (docs/context.md): a free-form value nests at most this
# many dicts and lists, its own included.
LIMIT = 100


def _message(**fields: Any) -> dict[str, Any]:
    return {"role": "user", "content": "hi", **fields}


def _error(call: Any, *args: Any) -> tuple[type[BaseException], str]:
    """The class and message of what ``call(*args)`` raises."""
    try:
        call(*args)
    except Exception as error:
        return type(error), str(error)
    raise AssertionError(f"{call.__qualname__} accepted {args!r}")


# --- wrong types ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        # The snapshot's own scalars.
        ({"input_text": 5}, TypeError, "input_text must be a str or None, got int"),
        ({"input_text": ["a"]}, TypeError, "input_text must be a str or None, got list"),
        ({"topology": {}}, TypeError, "topology must be a str or None, got dict"),
        ({"execution_mode": ["x"]}, TypeError, "execution_mode must be a str or None, got list"),
        (
            {"input_audio_duration_ms": "5"},
            TypeError,
            "input_audio_duration_ms must be an int or None, got str",
        ),
        (
            {"input_audio_duration_ms": True},
            TypeError,
            "input_audio_duration_ms must be an int or None, got bool",
        ),
        (
            {"input_audio_duration_ms": 1.5},
            TypeError,
            "input_audio_duration_ms must be an int or None, got float",
        ),
        ({"created_at": []}, TypeError, "created_at must be an ISO 8601 string or None, got list"),
        (
            {"extensions_type": ["x"], "extensions": {}},
            TypeError,
            "extensions_type must be a str or None, got list",
        ),
        (
            {"extensions_type": "dict", "extensions": [1]},
            TypeError,
            "extensions must be a mapping, got list",
        ),
        # The bundles: a mapping or None, never silently ignored.
        ({"run_id": "x"}, TypeError, "run_id must be a mapping, got str"),
        ({"conversation": [1]}, TypeError, "conversation must be a mapping, got list"),
        ({"conversation": []}, TypeError, "conversation must be a mapping, got list"),
        ({"enrichments": "e"}, TypeError, "enrichments must be a mapping, got str"),
        ({"enrichments": 0}, TypeError, "enrichments must be a mapping, got int"),
        # Ids and timestamps: a falsy value of the wrong type is not "absent".
        (
            {"run_id": {"user_id": []}},
            TypeError,
            "run_id.user_id must be a UUID, a UUID string or None, got list",
        ),
        (
            {"run_id": {"session_id": 0}},
            TypeError,
            "run_id.session_id must be a UUID, a UUID string or None, got int",
        ),
        ({"org_id": False}, TypeError, "org_id must be a UUID, a UUID string or None, got bool"),
        (
            {"run_id": {"created_at": {}}},
            TypeError,
            "run_id.created_at must be an ISO 8601 string or None, got dict",
        ),
        (
            {"enrichments": {"profile": {"user_id": []}}},
            TypeError,
            "enrichments.profile.user_id must be a UUID, a UUID string or None, got list",
        ),
        # Messages, composed and flat.
        (
            {"conversation": {"messages": [_message(), _message(), _message(content=7)]}},
            TypeError,
            "conversation.messages[2].content must be a str, got int",
        ),
        (
            {"conversation": {"messages": [_message(content=["a"])]}},
            TypeError,
            "conversation.messages[0].content must be a str, got list",
        ),
        (
            {"messages": [_message(role=None)]},
            TypeError,
            "messages[0].role must be a str, got NoneType",
        ),
        (
            {"conversation": {"messages": [_message(timestamp=[])]}},
            TypeError,
            "conversation.messages[0].timestamp must be an ISO 8601 string or None, got list",
        ),
        # Routing decisions, composed (keys required) and flat (keys optional).
        (
            {
                "conversation": {
                    "routing_decision": {"agent_id": ["a"], "pipeline_name": "p", "topology": "t"}
                }
            },
            TypeError,
            "conversation.routing_decision.agent_id must be a str, got list",
        ),
        (
            {
                "conversation": {
                    "routing_decision": {
                        "agent_id": "a",
                        "pipeline_name": "p",
                        "topology": "t",
                        "reason": 3,
                    }
                }
            },
            TypeError,
            "conversation.routing_decision.reason must be a str or None, got int",
        ),
        (
            {"conversation": {"routing_decision": []}},
            TypeError,
            "conversation.routing_decision must be a mapping, got list",
        ),
        ({"routing_decision": "r"}, TypeError, "routing_decision must be a mapping, got str"),
        (
            {"routing_decision": {"agent_id": ["a"]}},
            TypeError,
            "routing_decision.agent_id must be a str or None, got list",
        ),
        # Enrichments, composed and flat.
        (
            {"enrichments": {"profile": []}},
            TypeError,
            "enrichments.profile must be a mapping, got list",
        ),
        ({"memory": ""}, TypeError, "memory must be a mapping, got str"),
        (
            {"enrichments": {"profile": {"display_name": 1}}},
            TypeError,
            "enrichments.profile.display_name must be a str or None, got int",
        ),
        (
            {"enrichments": {"profile": {"goals": ["a", 2]}}},
            TypeError,
            "enrichments.profile.goals[1] must be a str, got int",
        ),
        (
            {"memory": {"key_facts": [None]}},
            TypeError,
            "memory.key_facts[0] must be a str, got NoneType",
        ),
        (
            {"enrichments": {"memory": {"recent_topics": [["t"]]}}},
            TypeError,
            "enrichments.memory.recent_topics[0] must be a str, got list",
        ),
        (
            {"enrichments": {"memory": {"interaction_history_summary": ["s"]}}},
            TypeError,
            "enrichments.memory.interaction_history_summary must be a str or None, got list",
        ),
        (
            {"enrichments": {"documents": [{}, {"document_id": 7}]}},
            TypeError,
            "enrichments.documents[1].document_id must be a str or None, got int",
        ),
        (
            {"documents": [{"document_type": []}]},
            TypeError,
            "documents[0].document_type must be a str or None, got list",
        ),
        (
            {"enrichments": {"documents": [{"blocks": ["text"]}]}},
            TypeError,
            "enrichments.documents[0].blocks[0] must be a mapping, got str",
        ),
        (
            {"enrichments": {"web_results": [{"u": 1}, 3]}},
            TypeError,
            "enrichments.web_results[1] must be a mapping, got int",
        ),
        # A deep value where a scalar belongs is refused by its type, not followed.
        (
            {"input_text": json.loads('{"a":' * 500 + "1" + "}" * 500)},
            TypeError,
            "input_text must be a str or None, got dict",
        ),
    ],
)
def test_wrong_types_are_refused_naming_the_path(
    data: dict[str, Any], error: type[Exception], message: str
) -> None:
    assert _error(ContextSnapshot.from_dict, data) == (error, message)


@pytest.mark.parametrize(
    ("parse", "data", "message"),
    [
        (Message.from_dict, {"role": "u", "content": 5}, "content must be a str, got int"),
        (
            RoutingDecision.from_dict,
            {"agent_id": "a", "pipeline_name": 1, "topology": "t"},
            "pipeline_name must be a str, got int",
        ),
        (
            Conversation.from_dict,
            {"messages": [_message(role=1)]},
            "messages[0].role must be a str, got int",
        ),
        (
            Enrichments.from_dict,
            {"web_results": ["w"]},
            "web_results[0] must be a mapping, got str",
        ),
        (ProfileEnrichment.from_dict, {"goals": [1]}, "goals[0] must be a str, got int"),
        (
            MemoryEnrichment.from_dict,
            {"interaction_history_summary": 1},
            "interaction_history_summary must be a str or None, got int",
        ),
        (
            DocumentEnrichment.from_dict,
            {"document_id": {}},
            "document_id must be a str or None, got dict",
        ),
        (
            RunIdentity.from_dict,
            {"request_id": []},
            "request_id must be a UUID, a UUID string or None, got list",
        ),
    ],
)
def test_every_from_dict_checks_its_fields(parse: Any, data: dict[str, Any], message: str) -> None:
    assert _error(parse, data) == (TypeError, message)


class Mode(enum.StrEnum):
    PRACTICE = "practice"


def test_str_subclasses_are_text() -> None:
    snapshot = ContextSnapshot.from_dict({"execution_mode": Mode.PRACTICE, "topology": ""})
    assert snapshot.execution_mode is Mode.PRACTICE
    assert snapshot.topology == ""
    hash(snapshot)


# --- deep nesting --------------------------------------------------------------------


def _nest(levels: int) -> Any:
    """A JSON value of ``levels`` nested objects and arrays (alternating), as json.loads makes it."""
    text = "1"
    for level in range(levels):
        text = f'{{"k{level}": {text}}}' if level % 2 == 0 else f"[{text}]"
    return json.loads(text)


def _nest_dicts(levels: int) -> Any:
    return json.loads('{"a":' * levels + "1" + "}" * levels)


# Where free-form values live; each place is given a value ``levels`` deep,
# counting a list field's own list (blocks, web_results) as the first level.
_PLACES: list[tuple[str, Any]] = [
    ("metadata", lambda v: {"metadata": v}),
    (
        "conversation.messages[0].metadata",
        lambda v: {"conversation": {"messages": [_message(metadata=v)]}},
    ),
    ("messages[0].metadata", lambda v: {"messages": [_message(metadata=v)]}),
    ("enrichments.profile.preferences", lambda v: {"enrichments": {"profile": {"preferences": v}}}),
    (
        "enrichments.documents[0].metadata",
        lambda v: {"enrichments": {"documents": [{"metadata": v}]}},
    ),
    (
        "enrichments.documents[0].blocks",
        lambda v: {"enrichments": {"documents": [{"blocks": [v]}]}},
    ),
    ("enrichments.web_results", lambda v: {"enrichments": {"web_results": [v]}}),
    ("web_results", lambda v: {"web_results": [v]}),
    ("extensions", lambda v: {"extensions_type": "dict", "extensions": v}),
]


def _place_value(path: str, levels: int) -> Any:
    # A list field's own list is the first level, so its item gets one fewer.
    if path.endswith(("blocks", "web_results")):
        levels -= 1
    return _nest(levels) if levels % 2 else _nest_dicts(levels)


@pytest.mark.parametrize(("path", "build"), _PLACES, ids=[p for p, _ in _PLACES])
def test_free_form_values_nest_up_to_the_limit(path: str, build: Any) -> None:
    snapshot = ContextSnapshot.from_dict(build(_place_value(path, LIMIT)))
    hash(snapshot)
    assert ContextSnapshot.from_dict(snapshot.to_dict()) == snapshot
    # The snapshot's own (already frozen) containers are checked against the same bound.
    assert ContextSnapshot.from_dict(json.loads(json.dumps(snapshot.to_dict()))) == snapshot


@pytest.mark.parametrize(("path", "build"), _PLACES, ids=[p for p, _ in _PLACES])
@pytest.mark.parametrize("levels", [LIMIT + 1, 450])
def test_deeper_values_are_refused_naming_the_field(path: str, build: Any, levels: int) -> None:
    assert _error(ContextSnapshot.from_dict, build(_place_value(path, levels))) == (
        ValueError,
        f"{path} nests deeper than {LIMIT} levels",
    )


def test_deep_frozen_values_are_refused_too() -> None:
    # FrozenDicts nested by hand: the round-trip fast path (sharing frozen
    # containers) is bounded like the copying one.
    value: Any = 1
    for _ in range(LIMIT + 1):
        value = FrozenDict({"a": value})
    expected = (ValueError, f"metadata nests deeper than {LIMIT} levels")
    assert _error(ContextSnapshot.from_dict, {"metadata": value}) == expected
    assert _error(lambda v: ContextSnapshot(metadata=v), value) == expected
    assert _error(lambda v: Message("user", "hi", metadata=v), value) == expected


def test_the_constructors_are_bounded_too() -> None:
    deep = _nest_dicts(400)
    assert _error(lambda v: ContextSnapshot(metadata=v), deep) == (
        ValueError,
        f"metadata nests deeper than {LIMIT} levels",
    )
    assert _error(lambda v: DocumentEnrichment(blocks=[v]), deep) == (
        ValueError,
        f"blocks nests deeper than {LIMIT} levels",
    )
    assert _error(lambda v: ContextSnapshot(extensions=v), deep) == (
        ValueError,
        f"extensions nests deeper than {LIMIT} levels",
    )


def test_deep_values_under_keys_that_are_not_read_are_ignored() -> None:
    snapshot = ContextSnapshot.from_dict({"unknown": _nest_dicts(450), "topology": "t"})
    assert snapshot.topology == "t"


# --- reference cycles ----------------------------------------------------------------


def test_a_self_referencing_dict_is_refused() -> None:
    loop: dict[str, Any] = {"x": 1}
    loop["self"] = loop
    assert _error(ContextSnapshot.from_dict, {"metadata": loop}) == (
        ValueError,
        "metadata contains a reference cycle",
    )
    assert _error(lambda v: ContextSnapshot(metadata=v), loop) == (
        ValueError,
        "metadata contains a reference cycle",
    )


def test_a_document_that_contains_itself_is_refused() -> None:
    data: dict[str, Any] = {"topology": "t"}
    data["metadata"] = data
    assert _error(ContextSnapshot.from_dict, data) == (
        ValueError,
        "metadata contains a reference cycle",
    )


def test_cycles_through_lists_and_frozen_containers_are_refused() -> None:
    items: list[Any] = []
    items.append({"again": items})
    assert _error(ContextSnapshot.from_dict, {"enrichments": {"web_results": items}}) == (
        ValueError,
        "enrichments.web_results contains a reference cycle",
    )
    inner: dict[str, Any] = {}
    frozen = FrozenDict({"inner": inner})
    inner["outer"] = frozen
    data = {"conversation": {"messages": [_message(metadata=frozen)]}}
    assert _error(ContextSnapshot.from_dict, data) == (
        ValueError,
        "conversation.messages[0].metadata contains a reference cycle",
    )


def test_a_cycle_beyond_the_limit_is_named_as_a_cycle() -> None:
    # The freezer gives up at the bound before it meets the cycle; the error still names it.
    loop: dict[str, Any] = {}
    loop["self"] = loop
    value = _nest_dicts(LIMIT + 5)
    innermost = value
    while isinstance(innermost["a"], dict):
        innermost = innermost["a"]
    innermost["a"] = loop
    assert _error(ContextSnapshot.from_dict, {"metadata": value}) == (
        ValueError,
        "metadata contains a reference cycle",
    )


def test_a_bundle_that_refers_to_the_document_is_read_once() -> None:
    # Structured parts are read key by key, never followed recursively.
    data: dict[str, Any] = {"topology": "t"}
    data["conversation"] = data
    snapshot = ContextSnapshot.from_dict(data)
    assert snapshot.conversation == Conversation()
    assert snapshot.topology == "t"


# --- any JSON-like input -------------------------------------------------------------

_json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every value inside a JSON tree (the root's is ``()``)."""
    paths = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            paths += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            paths += _paths(item, (*path, index))
    return paths


@st.composite
def _damaged_snapshot_dicts(draw: st.DrawFn) -> Any:
    """A real snapshot's JSON form with one to three values replaced by arbitrary JSON."""
    data = json.loads(json.dumps(draw(snapshots()).to_dict()))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(_paths(data)[1:]))
        parent = data
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = draw(_json_values)
    return data


_SNAPSHOT_KEYS = list(ContextSnapshot().to_dict())


@given(
    st.one_of(
        _damaged_snapshot_dicts(),
        st.dictionaries(st.sampled_from(_SNAPSHOT_KEYS), _json_values),
        _json_values,
    )
)
def test_any_json_gives_a_hashable_snapshot_or_a_type_or_value_error(data: Any) -> None:
    try:
        snapshot = ContextSnapshot.from_dict(data, EXTENSION_TYPES)
    except (TypeError, ValueError):
        return
    hash(snapshot)
    assert ContextSnapshot.from_dict(snapshot.to_dict(), EXTENSION_TYPES) == snapshot


def test_a_lenient_flat_routing_decision_reads_back_from_its_own_to_dict() -> None:
    """The flat shape turns missing routing keys into None; the bundle must read that back.

    (Found by the property above: the bundle reader refused the None it was given.)
    """
    snapshot = ContextSnapshot.from_dict({"routing_decision": {"reason": "r"}})
    assert snapshot.conversation is not None
    assert snapshot.conversation.routing_decision == RoutingDecision(None, None, None, "r")  # type: ignore[arg-type]
    assert ContextSnapshot.from_dict(snapshot.to_dict()) == snapshot
    assert RoutingDecision.from_dict(
        {"agent_id": None, "pipeline_name": "p", "topology": "t"}
    ) == RoutingDecision(None, "p", "t")  # type: ignore[arg-type]
