"""ContextSnapshot: the 23-key serialization, parity with stageflow, immutability, bad input."""

from __future__ import annotations

import functools
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from types import ModuleType
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio.context import context_snapshot as snapshot_module
from stageflow_trio.context._parse import _iso_is_canonical, _parse_uuid, _uuid_text
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
from tests.fakes import import_reference

from .strategies import EXTENSION_TYPES, SampleExtensions, bundles, datetimes, snapshots

WHEN = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
IDS = [uuid.UUID(int=n * 0x1111_2222_3333_4444) for n in range(1, 7)]

KEYS = [
    "run_id",
    "enrichments",
    "conversation",
    "extensions",
    "extensions_type",
    "input_text",
    "input_audio_duration_ms",
    "topology",
    "execution_mode",
    "created_at",
    "metadata",
    "pipeline_run_id",
    "request_id",
    "session_id",
    "user_id",
    "org_id",
    "interaction_id",
    "messages",
    "routing_decision",
    "profile",
    "memory",
    "documents",
    "web_results",
]


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _full_snapshot() -> ContextSnapshot[Any]:
    return ContextSnapshot(
        run_id=RunIdentity(
            pipeline_run_id=IDS[0],
            request_id=IDS[1],
            session_id=IDS[2],
            user_id=IDS[3],
            org_id=IDS[4],
            interaction_id=IDS[5],
            created_at=WHEN,
        ),
        enrichments=Enrichments(
            profile=ProfileEnrichment(user_id=IDS[3], display_name="Al", goals=["g"]),
            memory=MemoryEnrichment(recent_topics=["t"]),
            documents=[DocumentEnrichment(document_id="d", blocks=[{"type": "text"}])],
            web_results=[{"url": "u"}],
        ),
        conversation=Conversation(
            messages=[Message(role="user", content="hi", timestamp=WHEN, metadata={"n": 1})],
            routing_decision=RoutingDecision(agent_id="a", pipeline_name="p", topology="t"),
        ),
        extensions=SampleExtensions(deal_id="D-1", stage=2),
        input_text="hello",
        input_audio_duration_ms=1500,
        topology="fast_kernel",
        execution_mode="practice",
        created_at=WHEN,
        metadata={"channel": "web", "trace": {"span": "s"}},
    )


# --- stageflow's classes, built from ours (for the differential tests) -------------


@functools.cache
def _reference_extension_class() -> type[Any]:
    ref = import_reference().context.extensions
    # Named like ours, so that extensions_type matches.
    namespace = {"__annotations__": {"deal_id": "str | None", "stage": "int"}, "stage": 0}
    namespace["deal_id"] = None
    return dataclass(frozen=True)(type("SampleExtensions", (ref.ExtensionBundle,), namespace))


def _to_reference(snapshot: ContextSnapshot[Any]) -> Any:
    """The same snapshot built with stageflow's classes and plain containers."""
    ref = import_reference().context
    ref_types = ref.types
    run = snapshot.run_id
    enrichments, conversation = snapshot.enrichments, snapshot.conversation
    ref_enrichments = None
    if enrichments is not None:
        profile, memory = enrichments.profile, enrichments.memory
        ref_enrichments = ref.Enrichments(
            profile=None
            if profile is None
            else ref.ProfileEnrichment(
                user_id=profile.user_id,
                display_name=profile.display_name,
                preferences=_plain(profile.preferences),
                goals=_plain(profile.goals),
            ),
            memory=None
            if memory is None
            else ref.MemoryEnrichment(
                recent_topics=_plain(memory.recent_topics),
                key_facts=_plain(memory.key_facts),
                interaction_history_summary=memory.interaction_history_summary,
            ),
            documents=[
                ref.DocumentEnrichment(
                    document_id=d.document_id,
                    document_type=d.document_type,
                    blocks=_plain(d.blocks),
                    metadata=_plain(d.metadata),
                )
                for d in enrichments.documents
            ],
            web_results=_plain(enrichments.web_results),
        )
    ref_conversation = None
    if conversation is not None:
        routing = conversation.routing_decision
        ref_conversation = ref.Conversation(
            messages=[
                ref_types.Message(
                    role=m.role,
                    content=m.content,
                    timestamp=m.timestamp,
                    metadata=_plain(m.metadata),
                )
                for m in conversation.messages
            ],
            routing_decision=None
            if routing is None
            else ref_types.RoutingDecision(
                agent_id=routing.agent_id,
                pipeline_name=routing.pipeline_name,
                topology=routing.topology,
                reason=routing.reason,
            ),
        )
    extensions = snapshot.extensions
    ref_extensions = None
    if extensions is not None:
        ref_extensions = _reference_extension_class()(**attrs.asdict(extensions))
    return ref.ContextSnapshot(
        run_id=ref.RunIdentity(
            pipeline_run_id=run.pipeline_run_id,
            request_id=run.request_id,
            session_id=run.session_id,
            user_id=run.user_id,
            org_id=run.org_id,
            interaction_id=run.interaction_id,
            created_at=run.created_at,
        ),
        enrichments=ref_enrichments,
        conversation=ref_conversation,
        extensions=ref_extensions,
        input_text=snapshot.input_text,
        input_audio_duration_ms=snapshot.input_audio_duration_ms,
        topology=snapshot.topology,
        execution_mode=snapshot.execution_mode,
        created_at=snapshot.created_at,
        metadata=_plain(snapshot.metadata),
    )


def _freeze_created_at(data: dict[str, Any]) -> dict[str, Any]:
    """Flat-shape input gets a fresh run_id.created_at; drop it from the comparison."""
    data = dict(data)
    data["run_id"] = {k: v for k, v in data["run_id"].items() if k != "created_at"}
    return data


# --- the module ----------------------------------------------------------------------


def test_all_matches_the_reference(reference: ModuleType) -> None:
    ref = reference.context.context_snapshot
    assert snapshot_module.__all__ == ref.__all__


# --- to_dict -------------------------------------------------------------------------


def test_to_dict_has_stageflows_23_keys_in_order() -> None:
    assert list(_full_snapshot().to_dict()) == KEYS
    assert list(ContextSnapshot().to_dict()) == KEYS


def test_to_dict_values() -> None:
    data = _full_snapshot().to_dict()
    assert data["extensions"] == {"deal_id": "D-1", "stage": 2}
    assert data["extensions_type"] == "SampleExtensions"
    assert data["created_at"] == "2026-01-02T03:04:05.678901+00:00"
    assert data["pipeline_run_id"] == str(IDS[0])
    assert data["interaction_id"] == str(IDS[5])
    assert data["run_id"]["org_id"] == str(IDS[4])
    assert data["messages"] == data["conversation"]["messages"]
    assert data["profile"] == data["enrichments"]["profile"]
    assert data["documents"] == data["enrichments"]["documents"]
    assert data["web_results"] == [{"url": "u"}]
    assert data["metadata"] == {"channel": "web", "trace": {"span": "s"}}
    json.dumps(data)  # JSON-ready


def test_empty_snapshot_to_dict() -> None:
    data = ContextSnapshot(created_at=WHEN).to_dict()
    assert data["run_id"]["user_id"] is None
    assert data["enrichments"] is None
    assert data["conversation"] is None
    assert (data["extensions"], data["extensions_type"]) == (None, None)
    assert data["messages"] == []
    assert data["routing_decision"] is None
    assert (data["profile"], data["memory"]) == (None, None)
    assert data["documents"] == []
    assert data["web_results"] == []
    assert data["metadata"] == {}


def test_to_dict_gives_new_object_level_containers_each_call() -> None:
    snapshot = _full_snapshot()
    data = snapshot.to_dict()
    data["run_id"]["user_id"] = "changed"
    data["messages"].append({})
    data["conversation"]["messages"][0]["content"] = "changed"
    data["profile"]["display_name"] = "changed"
    assert snapshot.to_dict() == _full_snapshot().to_dict()
    # The flat keys have their own object-level containers.
    fresh = snapshot.to_dict()
    assert fresh["messages"] is not fresh["conversation"]["messages"]
    assert fresh["profile"] is not fresh["enrichments"]["profile"]


def test_to_dict_free_form_containers_are_the_snapshots_read_only_ones() -> None:
    snapshot = _full_snapshot()
    data = snapshot.to_dict()
    assert data["metadata"] is snapshot.metadata
    with pytest.raises(TypeError, match=r"^FrozenDict is immutable: item assignment"):
        data["metadata"]["channel"] = "cli"
    with pytest.raises(TypeError, match=r"^FrozenList is immutable: 'append'"):
        data["web_results"].append({})
    assert isinstance(data["metadata"], dict)
    assert isinstance(data["web_results"], list)


# --- round trips ---------------------------------------------------------------------


@given(snapshots())
def test_from_dict_inverts_to_dict(snapshot: ContextSnapshot[Any]) -> None:
    assert ContextSnapshot.from_dict(snapshot.to_dict(), EXTENSION_TYPES) == snapshot


@given(snapshots())
def test_from_dict_inverts_to_dict_through_json(snapshot: ContextSnapshot[Any]) -> None:
    restored: ContextSnapshot[Any] = ContextSnapshot.from_dict(
        _plain(snapshot.to_dict()), EXTENSION_TYPES
    )
    assert restored == snapshot
    assert restored.to_dict() == snapshot.to_dict()


@given(snapshots())
def test_to_dict_is_stable_across_calls_and_round_trips(snapshot: ContextSnapshot[Any]) -> None:
    first = snapshot.to_dict()
    assert snapshot.to_dict() == first
    again: ContextSnapshot[Any] = ContextSnapshot.from_dict(first, EXTENSION_TYPES)
    assert again.to_dict() == first
    assert ContextSnapshot.from_dict(again.to_dict(), EXTENSION_TYPES).to_dict() == first


# --- stageflow parity ----------------------------------------------------------------


@given(snapshots(extensions=st.none() | bundles))
def test_to_dict_matches_stageflow(snapshot: ContextSnapshot[Any]) -> None:
    converted = _to_reference(snapshot)
    assert snapshot.to_dict() == converted.to_dict()


@given(snapshots(extensions=st.none() | bundles))
def test_reads_stageflows_output_back_to_the_same_output(
    reference: ModuleType, snapshot: ContextSnapshot[Any]
) -> None:
    ref = reference.context
    converted = _to_reference(snapshot)
    ref_types = {"SampleExtensions": type(converted.extensions)} if converted.extensions else None
    theirs = ref.ContextSnapshot.from_dict(converted.to_dict(), ref_types)
    mine: ContextSnapshot[Any] = ContextSnapshot.from_dict(converted.to_dict(), EXTENSION_TYPES)
    assert mine.to_dict() == converted.to_dict()
    assert mine.to_dict() == theirs.to_dict()


@given(snapshots(extensions=st.none() | bundles), st.data())
def test_reads_the_flat_legacy_shape_like_stageflow(
    reference: ModuleType, snapshot: ContextSnapshot[Any], data: st.DataObject
) -> None:
    ref = reference.context
    full = snapshot.to_dict()
    # Drop some composed keys, so those bundles come from the flat keys.
    dropped = data.draw(st.sets(st.sampled_from(["run_id", "enrichments", "conversation"])))
    legacy = {k: (None if k in dropped else v) for k, v in _plain(full).items()}
    theirs = ref.ContextSnapshot.from_dict(legacy).to_dict()
    mine = ContextSnapshot.from_dict(legacy).to_dict()
    assert _freeze_created_at(mine) == _freeze_created_at(theirs)


def test_legacy_flat_routing_decision_may_lack_keys_like_stageflow(reference: ModuleType) -> None:
    ref = reference.context
    legacy = {"routing_decision": {"agent_id": "a"}, "created_at": WHEN.isoformat()}
    mine: ContextSnapshot[Any] = ContextSnapshot.from_dict(legacy)
    assert mine.routing_decision == RoutingDecision("a", None, None)  # type: ignore[arg-type]
    theirs = ref.ContextSnapshot.from_dict(legacy)
    assert _freeze_created_at(mine.to_dict()) == _freeze_created_at(theirs.to_dict())


def test_odd_spellings_serialize_like_stageflow(reference: ModuleType) -> None:
    ref = reference.context
    data = {
        "run_id": {
            "pipeline_run_id": str(IDS[0]).upper(),
            "user_id": "{" + str(IDS[1]) + "}",
            "org_id": "urn:uuid:" + str(IDS[2]),
            "created_at": "2026-01-02T03:04:05Z",
        },
        "conversation": {
            "messages": [
                {"role": "user", "content": "a", "timestamp": "2026-01-02T03:04:05.000000+00:00"},
                {"role": "user", "content": "b", "timestamp": "2026-01-02 03:04:05+05:30"},
            ]
        },
        "created_at": "2026-01-02T03:04:05.1+00:00",
    }
    assert (
        ContextSnapshot.from_dict(data).to_dict() == ref.ContextSnapshot.from_dict(data).to_dict()
    )


def test_unknown_extension_types_are_dropped_like_stageflow(reference: ModuleType) -> None:
    ref = reference.context
    data = _full_snapshot().to_dict()
    assert ContextSnapshot.from_dict(data).extensions is None
    assert ContextSnapshot.from_dict(data, {"Other": SampleExtensions}).extensions is None
    assert ref.ContextSnapshot.from_dict(_plain(data)).extensions is None


def test_registered_extension_types_are_rebuilt() -> None:
    snapshot: ContextSnapshot[Any] = ContextSnapshot.from_dict(
        _full_snapshot().to_dict(), EXTENSION_TYPES
    )
    assert snapshot.extensions == SampleExtensions(deal_id="D-1", stage=2)


def test_from_dict_with_a_missing_created_at_uses_now() -> None:
    before = datetime.now(UTC)
    snapshot: ContextSnapshot[Any] = ContextSnapshot.from_dict({})
    assert snapshot.created_at >= before
    assert snapshot.created_at.tzinfo is UTC
    assert snapshot == ContextSnapshot(run_id=snapshot.run_id, created_at=snapshot.created_at)


# --- d15: mapping extensions ---------------------------------------------------------


def test_mapping_extensions_serialize_where_stageflow_crashes(reference: ModuleType) -> None:
    ref = reference.context
    extensions = {"skills": {"ids": ["python"], "level": 2}}
    with pytest.raises(AttributeError):
        ref.ContextSnapshot(extensions=extensions).to_dict()
    snapshot = ContextSnapshot(extensions=extensions)
    data = snapshot.to_dict()
    assert data["extensions"] == extensions
    assert data["extensions_type"] == "dict"
    assert type(data["extensions"]) is dict
    assert type(data["extensions"]["skills"]["ids"]) is list


def test_mapping_extensions_are_frozen_copies() -> None:
    extensions = {"skills": {"ids": ["python"]}}
    snapshot = ContextSnapshot(extensions=extensions)
    extensions["skills"]["ids"].append("rust")
    assert snapshot.extensions == {"skills": {"ids": ["python"]}}
    with pytest.raises(TypeError, match=r"^FrozenList is immutable: 'append'"):
        snapshot.extensions["skills"]["ids"].append("go")


@given(st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3))
def test_mapping_extensions_round_trip(extensions: dict[str, Any]) -> None:
    snapshot = ContextSnapshot(extensions=extensions, created_at=WHEN)
    assert ContextSnapshot.from_dict(_plain(snapshot.to_dict())) == snapshot


def test_mapping_extensions_stringify_ids_and_times_like_bundles() -> None:
    value = uuid.uuid4()
    data = ContextSnapshot(extensions={"id": value, "at": WHEN}).to_dict()
    assert data["extensions"] == {"id": str(value), "at": str(WHEN)}


def test_extensions_of_another_kind_are_rejected_early() -> None:
    message = (
        r"^extensions must be an ExtensionBundle \(or an object with to_dict\(\)\), "
        r"a mapping or None, got int$"
    )
    with pytest.raises(TypeError, match=message):
        ContextSnapshot(extensions=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=message):
        ContextSnapshot().with_extensions(5)  # type: ignore[arg-type]


def test_duck_typed_extensions_with_to_dict_are_kept() -> None:
    @dataclass(frozen=True)
    class Duck:
        def to_dict(self) -> dict[str, Any]:
            return {"quack": True}

    data = ContextSnapshot(extensions=Duck()).to_dict()
    assert (data["extensions"], data["extensions_type"]) == ({"quack": True}, "Duck")


# --- with_* --------------------------------------------------------------------------


def test_with_methods_return_new_snapshots() -> None:
    snapshot = _full_snapshot()
    new_run = RunIdentity(user_id=uuid.uuid4())
    new_enrichments = Enrichments(web_results=[{"x": 1}])
    new_conversation = Conversation(messages=[Message(role="user", content="other")])
    new_extensions = SampleExtensions(deal_id="D-2")
    assert snapshot.with_run_id(new_run).run_id is new_run
    assert snapshot.with_enrichments(new_enrichments).enrichments is new_enrichments
    assert snapshot.with_conversation(new_conversation).conversation is new_conversation
    changed = snapshot.with_extensions(new_extensions)
    assert changed.extensions is new_extensions
    assert changed.metadata == snapshot.metadata
    assert changed.created_at == snapshot.created_at
    assert snapshot == _full_snapshot()


def test_with_methods_serialize_the_new_values() -> None:
    snapshot: ContextSnapshot[Any] = ContextSnapshot.from_dict(
        _full_snapshot().to_dict(), EXTENSION_TYPES
    )
    new_run = RunIdentity(user_id=IDS[0], created_at=WHEN + timedelta(days=1))
    data = snapshot.with_run_id(new_run).to_dict()
    assert data["user_id"] == str(IDS[0])
    assert data["run_id"]["created_at"] == "2026-01-03T03:04:05.678901+00:00"
    assert data["created_at"] == "2026-01-02T03:04:05.678901+00:00"


# --- flat accessors ------------------------------------------------------------------


def test_flat_accessors() -> None:
    snapshot = _full_snapshot()
    assert snapshot.pipeline_run_id == IDS[0]
    assert snapshot.request_id == IDS[1]
    assert snapshot.session_id == IDS[2]
    assert snapshot.user_id == IDS[3]
    assert snapshot.org_id == IDS[4]
    assert snapshot.interaction_id == IDS[5]
    assert snapshot.conversation is not None
    assert snapshot.enrichments is not None
    assert snapshot.messages == snapshot.conversation.messages
    assert snapshot.routing_decision == snapshot.conversation.routing_decision
    assert snapshot.profile == snapshot.enrichments.profile
    assert snapshot.memory == snapshot.enrichments.memory
    assert snapshot.documents == snapshot.enrichments.documents
    assert snapshot.web_results == [{"url": "u"}]
    empty: ContextSnapshot[Any] = ContextSnapshot()
    assert (empty.messages, empty.documents, empty.web_results) == ([], [], [])
    assert (empty.routing_decision, empty.profile, empty.memory) == (None, None, None)


# --- immutability --------------------------------------------------------------------


def test_is_immutable() -> None:
    snapshot = _full_snapshot()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        snapshot.input_text = "changed"  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        snapshot.run_id.user_id = None  # type: ignore[misc]
    with pytest.raises(TypeError, match=r"^FrozenDict is immutable: item assignment"):
        snapshot.metadata["channel"] = "cli"
    with pytest.raises(TypeError, match=r"^FrozenDict is immutable: item assignment"):
        snapshot.metadata["trace"]["span"] = "t"
    with pytest.raises(TypeError, match=r"^FrozenList is immutable: 'append'"):
        snapshot.messages.append(Message(role="user", content="x"))


def test_from_dict_does_not_share_the_input() -> None:
    data = _plain(_full_snapshot().to_dict())
    snapshot: ContextSnapshot[Any] = ContextSnapshot.from_dict(data, EXTENSION_TYPES)
    data["metadata"]["trace"]["span"] = "changed"
    data["conversation"]["messages"][0]["metadata"]["n"] = 2
    data["enrichments"]["web_results"].append({"url": "v"})
    assert snapshot == _full_snapshot()


# --- bad input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        ([1], TypeError, r"^data must be a mapping, got list$"),
        (
            {"run_id": {"user_id": "x"}},
            ValueError,
            r"^run_id\.user_id must be a UUID string, got 'x'$",
        ),
        ({"org_id": "bad"}, ValueError, r"^org_id must be a UUID string, got 'bad'$"),
        (
            {"run_id": {"created_at": "noon"}},
            ValueError,
            r"^run_id\.created_at must be an ISO 8601 string, got 'noon'$",
        ),
        (
            {"created_at": "yesterday"},
            ValueError,
            r"^created_at must be an ISO 8601 string, got 'yesterday'$",
        ),
        (
            {"created_at": 12},
            TypeError,
            r"^created_at must be an ISO 8601 string or None, got int$",
        ),
        ({"metadata": [1]}, TypeError, r"^metadata must be a mapping, got list$"),
        (
            {"conversation": {"messages": [{"content": "hi"}]}},
            ValueError,
            r"^conversation\.messages\[0\] is missing the required key 'role'$",
        ),
        (
            {"conversation": {"messages": [{"role": "u", "content": "c"}, 5]}},
            TypeError,
            r"^conversation\.messages\[1\] must be a mapping, got int$",
        ),
        (
            {"conversation": {"messages": "hi"}},
            TypeError,
            r"^conversation\.messages must be a list, got str$",
        ),
        (
            {"conversation": {"routing_decision": {"agent_id": "a", "pipeline_name": "p"}}},
            ValueError,
            r"^conversation\.routing_decision is missing the required key 'topology'$",
        ),
        (
            {"enrichments": {"profile": {"user_id": "me"}}},
            ValueError,
            r"^enrichments\.profile\.user_id must be a UUID string, got 'me'$",
        ),
        (
            {"enrichments": {"documents": [{"metadata": "m"}]}},
            TypeError,
            r"^enrichments\.documents\[0\]\.metadata must be a mapping, got str$",
        ),
        (
            {"messages": [{"role": "u"}]},
            ValueError,
            r"^messages\[0\] is missing the required key 'content'$",
        ),
        ({"profile": {"goals": 1}}, TypeError, r"^profile\.goals must be a list, got int$"),
        (
            {"enrichments": {"memory": 5}},
            TypeError,
            r"^enrichments\.memory must be a mapping, got int$",
        ),
        (
            {"enrichments": {"documents": "d"}},
            TypeError,
            r"^enrichments\.documents must be a list, got str$",
        ),
        (
            {"enrichments": {"profile": {"preferences": [1]}}},
            TypeError,
            r"^enrichments\.profile\.preferences must be a mapping, got list$",
        ),
        (
            {"conversation": {"routing_decision": "r"}},
            TypeError,
            r"^conversation\.routing_decision must be a mapping, got str$",
        ),
        (
            {"conversation": {"messages": ["hi"]}},
            TypeError,
            r"^conversation\.messages\[0\] must be a mapping, got str$",
        ),
        (
            {"conversation": {"messages": [{"role": "u", "content": "c", "timestamp": "noon"}]}},
            ValueError,
            r"^conversation\.messages\[0\]\.timestamp must be an ISO 8601 string, got 'noon'$",
        ),
        (
            {"conversation": {"messages": [{"role": "u", "content": "c", "timestamp": 5}]}},
            TypeError,
            r"^conversation\.messages\[0\]\.timestamp must be an ISO 8601 string or None, got int$",
        ),
        (
            {"run_id": {"user_id": "g" * 32}},  # the right length, not hex
            ValueError,
            r"^run_id\.user_id must be a UUID string, got 'g{32}'$",
        ),
        (
            {"memory": {"recent_topics": {"a": 1}}},
            TypeError,
            r"^memory\.recent_topics must be a list, got dict$",
        ),
        ({"web_results": 3}, TypeError, r"^web_results must be a list, got int$"),
    ],
)
def test_bad_input_names_the_path(data: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        ContextSnapshot.from_dict(data)


def test_constructor_rejects_a_non_mapping_metadata() -> None:
    with pytest.raises(TypeError, match=r"^metadata must be a mapping, got str$"):
        ContextSnapshot(metadata="m")  # type: ignore[arg-type]


# --- the private helpers' contracts (the fast paths must equal the stdlib) -----------


_id_spellings = st.sampled_from(
    [
        str,
        lambda u: str(u).upper(),
        lambda u: u.hex,
        lambda u: "{" + str(u) + "}",
        lambda u: u.urn,
        lambda u: str(u).replace("-", "_", 1),
        lambda u: "0x" + str(u)[2:],
        lambda u: " " + str(u)[1:],
        lambda u: str(u)[:35] + "g",
    ]
)


@given(st.uuids(), _id_spellings)
def test_parse_uuid_agrees_with_the_stdlib(value: uuid.UUID, spell: Any) -> None:
    text = spell(value)
    try:
        expected = uuid.UUID(text)
    except ValueError:
        with pytest.raises(ValueError, match=r"^x must be a UUID string, got "):
            _parse_uuid(text, "x")
    else:
        assert _parse_uuid(text, "x") == expected
        assert _uuid_text(expected, text) == str(expected)


@given(
    datetimes, st.sampled_from(["auto", "microseconds", "seconds", "milliseconds"]), st.booleans()
)
def test_iso_is_canonical_only_for_isoformats_own_output(
    when: datetime, timespec: str, zulu: bool
) -> None:
    text = when.isoformat(timespec=timespec)
    if zulu and text.endswith("+00:00"):
        text = text[:-6] + "Z"
    parsed = datetime.fromisoformat(text)
    if _iso_is_canonical(text, parsed):
        assert parsed.isoformat() == text
    if timespec == "auto" and not zulu and when.utcoffset() in (None, timedelta(0)):
        # The forms stageflow writes are recognized, so they are never re-formatted.
        assert _iso_is_canonical(text, parsed)


def test_iso_is_canonical_rejects_look_alikes() -> None:
    for text in [
        "2026-01-02T03:04:05.000000+00:00",
        "2026-01-02 03:04:05.123456+00:00",
        "2026-W01-5T03:04:05.123456+00:00",
        "2026-01-02T03:04:05.123456-00:00",
        "2026-01-02T03:04:05+01:00",
    ]:
        assert not _iso_is_canonical(text, datetime.fromisoformat(text))
    when = datetime(2026, 1, 2, tzinfo=timezone(timedelta(hours=1)))
    assert not _iso_is_canonical(when.isoformat(), when)
