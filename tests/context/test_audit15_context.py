"""Audit 15 of the context values and StageInputs: construction checks and differential fuzz.

Defects pinned here (each test failed before its fix):

- The enrichment, conversation and routing constructors stored fields of the
  wrong type (``ProfileEnrichment(display_name=5)``, ``goals=[1]``,
  ``Enrichments(profile="x")``, ``documents=[{...}]``, ``web_results=[1]``,
  ``Conversation(routing_decision="x")``, ``RoutingDecision(agent_id=5)``): the
  value then failed later, in ``to_dict`` (AttributeError) or when read back
  (``from_dict(x.to_dict())`` raising), as ContextSnapshot and Message no longer do.
- ``DocumentEnrichment(metadata=[("k", 1)])`` turned a list of pairs into a
  mapping; ``metadata=5`` and a ``documents`` entry that is not a mapping raised
  bare errors from inside (``'int' object is not iterable``, AttributeError).
- ``StageInputs`` accepted a ``prior_outputs`` value that is not a StageOutput
  (AttributeError at the first ``get``) and non-str ``declared_deps`` (the
  UndeclaredDependencyError listing then raised ``'<' not supported``).
- A nesting or unhashable-leaf error in a ``web_results`` / ``blocks`` given as
  a non-list iterable named the whole field instead of the leaf's path.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stageflow_trio.context import (
    ContextSnapshot,
    Conversation,
    DocumentEnrichment,
    Enrichments,
    MemoryEnrichment,
    Message,
    ProfileEnrichment,
    RoutingDecision,
)
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.stages.inputs import (
    StageInputs,
    UndeclaredDependencyError,
    create_stage_inputs,
)

SNAPSHOT: ContextSnapshot[Any] = ContextSnapshot()
RULE = "must be a dict, a list or an immutable value (free-form data is frozen and hashable)"

# --- constructors check what from_dict checks -------------------------------------------


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (ProfileEnrichment, {"display_name": 5}, "display_name must be a str or None, got int"),
        (ProfileEnrichment, {"goals": ["a", 1]}, r"goals\[1\] must be a str, got int"),
        (ProfileEnrichment, {"goals": [["a"]]}, r"goals\[0\] must be a str, got list"),
        (MemoryEnrichment, {"recent_topics": [1]}, r"recent_topics\[0\] must be a str, got int"),
        (MemoryEnrichment, {"key_facts": (b"x",)}, r"key_facts\[0\] must be a str, got bytes"),
        (MemoryEnrichment, {"long_term": [None]}, r"key_facts\[0\] must be a str, got NoneType"),
        (
            MemoryEnrichment,
            {"interaction_history_summary": 5},
            "interaction_history_summary must be a str or None, got int",
        ),
        (
            MemoryEnrichment,
            {"summary": ["s"]},
            "interaction_history_summary must be a str or None, got list",
        ),
        (DocumentEnrichment, {"document_id": 5}, "document_id must be a str or None, got int"),
        (
            DocumentEnrichment,
            {"doc_type": 1.5},
            "document_type must be a str or None, got float",
        ),
        (DocumentEnrichment, {"blocks": [1]}, r"blocks\[0\] must be a mapping, got int"),
        (DocumentEnrichment, {"metadata": [("k", 1)]}, "metadata must be a mapping, got list"),
        (DocumentEnrichment, {"metadata": 5}, "metadata must be a mapping, got int"),
        (DocumentEnrichment, {"documents": "abc"}, "documents must be a list, got str"),
        (DocumentEnrichment, {"documents": [5]}, r"documents\[0\] must be a mapping, got int"),
        (
            DocumentEnrichment,
            {"documents": [{"id": 7}]},
            "document_id must be a str or None, got int",
        ),
        (
            DocumentEnrichment,
            {"documents": [{"metadata": [("k", 1)]}]},
            r"documents\[0\]\.metadata must be a mapping, got list",
        ),
        (
            Enrichments,
            {"profile": "x"},
            "profile must be a ProfileEnrichment or None, got str",
        ),
        (
            Enrichments,
            {"memory": {"key_facts": []}},
            "memory must be a MemoryEnrichment or None, got dict",
        ),
        (
            Enrichments,
            {"documents": [{"document_id": "d"}]},
            r"documents\[0\] must be a DocumentEnrichment, got dict",
        ),
        (Enrichments, {"documents": "d"}, "documents must be a list, got str"),
        (Enrichments, {"web_results": [{}, 1]}, r"web_results\[1\] must be a mapping, got int"),
        (
            Conversation,
            {"routing_decision": {"agent_id": "a"}},
            "routing_decision must be a RoutingDecision or None, got dict",
        ),
        (
            RoutingDecision,
            {"agent_id": 5, "pipeline_name": "p", "topology": "t"},
            "agent_id must be a str or None, got int",
        ),
        (
            RoutingDecision,
            {"agent_id": "a", "pipeline_name": "p", "topology": "t", "reason": b"r"},
            "reason must be a str or None, got bytes",
        ),
    ],
)
def test_constructors_refuse_wrong_field_types(
    cls: type[Any], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(TypeError, match=rf"^{message}$"):
        cls(**kwargs)


# A field value of any of these types: the right one for some fields, wrong for others.
_anything = st.one_of(
    st.none(),
    st.text(max_size=3),
    st.integers(),
    st.booleans(),
    st.lists(st.text(max_size=2), max_size=2),
    st.lists(st.integers(), min_size=1, max_size=2),
    st.lists(st.dictionaries(st.text(max_size=2), st.integers(), max_size=2), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)


def _builds_or_refuses(build: Any) -> None:
    """What a constructor accepts serializes, reads back equal and survives JSON; else TypeError."""
    try:
        value = build()
    except TypeError:
        return
    data = value.to_dict()
    again = type(value).from_dict(data)
    assert again == value
    assert type(value).from_dict(json.loads(json.dumps(data))) == value


@settings(max_examples=60, deadline=None)
@given(
    display_name=_anything,
    goals=_anything,
    recent_topics=_anything,
    key_facts=_anything,
    summary=_anything,
    document_id=_anything,
    blocks=_anything,
    web_results=_anything,
)
def test_what_a_constructor_accepts_reads_back(
    display_name: Any,
    goals: Any,
    recent_topics: Any,
    key_facts: Any,
    summary: Any,
    document_id: Any,
    blocks: Any,
    web_results: Any,
) -> None:
    _builds_or_refuses(lambda: ProfileEnrichment(display_name=display_name, goals=goals))
    _builds_or_refuses(
        lambda: MemoryEnrichment(
            recent_topics=recent_topics, key_facts=key_facts, interaction_history_summary=summary
        )
    )
    _builds_or_refuses(lambda: DocumentEnrichment(document_id=document_id, blocks=blocks))
    _builds_or_refuses(lambda: Enrichments(web_results=web_results))
    _builds_or_refuses(
        lambda: RoutingDecision(agent_id=display_name, pipeline_name="p", topology=summary)
    )


def test_well_typed_constructions_are_unchanged() -> None:
    """The checks refuse nothing from_dict accepts: subclasses, tuples, None fields."""
    profile = ProfileEnrichment(display_name="Ann", goals=("a", "b"), preferences={"k": [1]})
    memory = MemoryEnrichment(short_term=iter(["t"]), key_facts=None, summary="s")
    document = DocumentEnrichment(
        doc_id="d",
        blocks=({"type": "text"},),
        metadata={"a": 1},
        documents=[{"metadata": {"b": 2}}],
    )
    enrichments = Enrichments(
        profile=profile, memory=memory, documents=(document,), web_results=[{"u": 1}]
    )
    assert enrichments.documents == [document]
    assert document.metadata == {"a": 1, "b": 2}
    assert memory.recent_topics == ["t"]
    routing = RoutingDecision(agent_id=None, pipeline_name=None, topology=None)  # type: ignore[arg-type]
    conversation = Conversation(routing_decision=routing)
    snapshot: ContextSnapshot[Any] = ContextSnapshot(
        enrichments=enrichments, conversation=conversation
    )
    assert ContextSnapshot.from_dict(snapshot.to_dict()) == snapshot
    hash(snapshot)


def test_the_flat_legacy_routing_decision_still_reads_with_missing_keys() -> None:
    snapshot = ContextSnapshot.from_dict({"routing_decision": {"agent_id": "a"}})
    assert snapshot.conversation is not None
    assert snapshot.conversation.routing_decision == RoutingDecision("a", None, None)  # type: ignore[arg-type]
    assert ContextSnapshot.from_dict(snapshot.to_dict()) == snapshot


# --- free-form lists given as other iterables name the leaf -----------------------------


def test_an_unhashable_leaf_in_a_non_list_iterable_is_named_by_its_path() -> None:
    with pytest.raises(TypeError) as read:
        Enrichments.from_dict({"web_results": iter([{"a": {1}}])})
    assert str(read.value) == f"web_results[0].a {RULE}, got set"
    with pytest.raises(TypeError) as built:
        DocumentEnrichment(blocks=(b for b in [{}, {"k": [bytearray()]}]))
    assert str(built.value) == f"blocks[1].k[0] {RULE}, got bytearray"


# --- StageInputs ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prior_outputs": {"stt": 5}}, r"prior_outputs\['stt'\] must be a StageOutput, got int"),
        (
            {"prior_outputs": {"stt": {"transcript": "hi"}}},
            r"prior_outputs\['stt'\] must be a StageOutput, got dict",
        ),
        (
            {"prior_outputs": {1: StageOutput.ok()}},
            r"prior_outputs keys must be stage names \(str\), got int",
        ),
        ({"declared_deps": [1, "a"]}, r"declared_deps must hold stage names \(str\), got int"),
        (
            {"declared_deps": frozenset({None})},
            r"declared_deps must hold stage names \(str\), got NoneType",
        ),
    ],
)
def test_stage_inputs_refuse_bad_outputs_and_dependency_names(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(TypeError, match=rf"^{message}$"):
        create_stage_inputs(SNAPSHOT, **kwargs)
    with pytest.raises(TypeError, match=rf"^{message}$"):
        StageInputs(SNAPSHOT, **kwargs)


def test_stage_inputs_still_accept_frozen_and_plain_outputs() -> None:
    output = StageOutput.ok(transcript="hi")
    inputs = create_stage_inputs(
        SNAPSHOT, prior_outputs={"stt": output}, declared_deps=frozenset({"stt"}), stage_name="me"
    )
    again = StageInputs(SNAPSHOT, inputs.prior_outputs, None, inputs.declared_deps, "me")
    assert again.prior_outputs is inputs.prior_outputs
    assert again.get_from("stt", "transcript") == "hi"
    with pytest.raises(UndeclaredDependencyError, match=r"Declared dependencies: \['stt'\]"):
        again.get_from("nlu", "x")


# --- differential: ContextSnapshot.from_dict / to_dict against the reference ------------

_ID_KEYS = ("pipeline_run_id", "request_id", "session_id", "user_id", "org_id", "interaction_id")
_ids = st.one_of(
    st.none(),
    st.just(""),
    st.uuids().map(str),
    st.uuids().map(lambda u: str(u).upper()),
    st.uuids().map(lambda u: u.hex),
    st.uuids().map(lambda u: f"{{{u}}}"),
    st.uuids().map(lambda u: f"urn:uuid:{u}"),
)
_zones = st.sampled_from([None, UTC, timezone(timedelta(hours=5, minutes=30))])
_times = st.one_of(
    st.none(),
    st.just(""),
    st.datetimes(timezones=_zones).map(datetime.isoformat),
    st.sampled_from(
        [
            "2024-01-01",
            "2024-01-01T00:00:00Z",
            "2024-01-01 10:00",
            "2024-01-01T00:00:00.5+00:00",
            "2024-01-01T10:00:00.123+00:00",
            "2024-01-01T10:00:00.000000+00:00",
        ]
    ),
)
_text = st.none() | st.text(max_size=4)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)
_meta = st.dictionaries(st.text(max_size=3), _json, max_size=3)
_strs = st.lists(st.text(max_size=3), max_size=3)
_message = st.fixed_dictionaries(
    {"role": st.text(max_size=4), "content": st.text(max_size=4)},
    optional={"timestamp": _times, "metadata": _meta},
)
_routing = st.fixed_dictionaries(
    {}, optional=dict.fromkeys(("agent_id", "pipeline_name", "topology", "reason"), _text)
)
_profile = st.fixed_dictionaries(
    {}, optional={"user_id": _ids, "display_name": _text, "preferences": _meta, "goals": _strs}
)
_memory = st.fixed_dictionaries(
    {},
    optional={"recent_topics": _strs, "key_facts": _strs, "interaction_history_summary": _text},
)
_document = st.fixed_dictionaries(
    {},
    optional={
        "document_id": _text,
        "document_type": _text,
        "blocks": st.lists(_meta, max_size=2),
        "metadata": _meta,
    },
)
_enrichments = st.fixed_dictionaries(
    {},
    optional={
        "profile": st.none() | _profile,
        "memory": st.none() | _memory,
        "documents": st.lists(_document, max_size=2),
        "web_results": st.lists(_meta, max_size=2),
    },
)
_conversation = st.fixed_dictionaries(
    {},
    optional={
        "messages": st.lists(_message, max_size=2),
        "routing_decision": st.none()
        | st.fixed_dictionaries(dict.fromkeys(("agent_id", "pipeline_name", "topology"), _text)),
    },
)
_run_id = st.fixed_dictionaries(
    {}, optional={**dict.fromkeys(_ID_KEYS, _ids), "created_at": _times}
)
_snapshot_dicts = st.fixed_dictionaries(
    {},
    optional={
        "run_id": st.none() | _run_id,
        "enrichments": st.none() | _enrichments,
        "conversation": st.none() | _conversation,
        "input_text": _text,
        "input_audio_duration_ms": st.none() | st.integers(),
        "topology": _text,
        "execution_mode": _text,
        "created_at": _times,
        "metadata": _meta,
        "messages": st.lists(_message, max_size=2),
        "routing_decision": st.none() | _routing,
        "profile": st.none() | _profile,
        "memory": st.none() | _memory,
        "documents": st.lists(_document, max_size=2),
        "web_results": st.lists(_meta, max_size=2),
        **dict.fromkeys(_ID_KEYS, _ids),
    },
)


def _comparable(data: dict[str, Any], source: dict[str, Any]) -> Any:
    """``data`` through JSON, without the timestamps that are "now" (absent in ``source``)."""
    plain = json.loads(json.dumps(data))
    if not source.get("created_at"):
        del plain["created_at"]
    run_source = source.get("run_id")
    if not (isinstance(run_source, dict) and run_source and run_source.get("created_at")):
        del plain["run_id"]["created_at"]
    return plain


@settings(max_examples=80, deadline=None)
@given(data=_snapshot_dicts)
def test_snapshot_dicts_read_and_write_like_the_reference(
    reference: ModuleType, data: dict[str, Any]
) -> None:
    try:
        theirs = reference.context.ContextSnapshot.from_dict(data).to_dict()
    except Exception:
        return  # bad input for the reference: ours may be stricter or more lenient
    snapshot = ContextSnapshot.from_dict(data)
    ours = snapshot.to_dict()
    assert _comparable(ours, data) == _comparable(theirs, data)
    again = ContextSnapshot.from_dict(ours)
    assert again == snapshot
    assert again.to_dict() == ours
    assert ContextSnapshot.from_dict(json.loads(json.dumps(ours))) == snapshot


@settings(max_examples=60, deadline=None)
@given(ids=st.lists(st.none() | st.uuids(), min_size=6, max_size=6))
def test_uuid_objects_in_the_flat_keys_serialize_as_their_canonical_text(
    ids: list[uuid.UUID | None],
) -> None:
    snapshot = ContextSnapshot.from_dict(dict(zip(_ID_KEYS, ids, strict=True)))
    out = snapshot.to_dict()
    assert [out[k] for k in _ID_KEYS] == [None if u is None else str(u) for u in ids]
    assert ContextSnapshot.from_dict(out) == snapshot


def test_messages_of_a_conversation_keep_their_types() -> None:
    message = Message(role="user", content="hi", timestamp=datetime(2024, 1, 1, tzinfo=UTC))
    conversation = Conversation(messages=(message,))
    assert conversation.messages == [message]
    assert Conversation.from_dict(conversation.to_dict()) == conversation
