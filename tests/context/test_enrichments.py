"""Enrichments and its profile, memory and document parts."""

from __future__ import annotations

import json
import logging
import uuid
from types import ModuleType
from typing import Any

import attrs
import pytest
from hypothesis import given

from stageflow_trio.context import enrichments as enrichments_module
from stageflow_trio.context.enrichments import (
    DocumentEnrichment,
    Enrichments,
    MemoryEnrichment,
    ProfileEnrichment,
)
from tests.fakes import import_reference

from .strategies import documents, enrichments, memories, profiles


def _plain(value: object) -> Any:
    return json.loads(json.dumps(value))


def _to_reference(bundle: Enrichments) -> Any:
    """The same enrichments built with stageflow's classes (plain containers)."""
    ref = import_reference().context.enrichments
    profile, memory = bundle.profile, bundle.memory
    return ref.Enrichments(
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
            for d in bundle.documents
        ],
        web_results=_plain(bundle.web_results),
    )


def test_all_matches_the_reference(reference: ModuleType) -> None:
    ref = reference.context.enrichments
    assert sorted(enrichments_module.__all__) == sorted(
        name for name in dir(ref) if name.endswith("Enrichment") or name == "Enrichments"
    )


@given(enrichments)
def test_from_dict_inverts_to_dict(bundle: Enrichments) -> None:
    assert Enrichments.from_dict(bundle.to_dict()) == bundle


@given(enrichments)
def test_from_dict_inverts_to_dict_through_json(bundle: Enrichments) -> None:
    restored = Enrichments.from_dict(_plain(bundle.to_dict()))
    assert restored == bundle
    assert restored.to_dict() == bundle.to_dict()


@given(profiles)
def test_profile_round_trip(profile: ProfileEnrichment) -> None:
    assert ProfileEnrichment.from_dict(_plain(profile.to_dict())) == profile


@given(memories)
def test_memory_round_trip(memory: MemoryEnrichment) -> None:
    assert MemoryEnrichment.from_dict(_plain(memory.to_dict())) == memory


@given(documents)
def test_document_round_trip(document: DocumentEnrichment) -> None:
    assert DocumentEnrichment.from_dict(_plain(document.to_dict())) == document


@given(enrichments)
def test_matches_stageflow(reference: ModuleType, bundle: Enrichments) -> None:
    ref = reference.context.enrichments
    converted = _to_reference(bundle)
    assert bundle.to_dict() == converted.to_dict()
    theirs = ref.Enrichments.from_dict(bundle.to_dict())
    assert Enrichments.from_dict(converted.to_dict()).to_dict() == theirs.to_dict()
    assert bundle.has_any == converted.has_any


def test_profile_to_dict_shape() -> None:
    user_id = uuid.UUID("12345678-1234-5678-1234-567812345678")
    profile = ProfileEnrichment(user_id=user_id, display_name="Al", goals=["fluency"])
    assert profile.to_dict() == {
        "user_id": "12345678-1234-5678-1234-567812345678",
        "display_name": "Al",
        "preferences": {},
        "goals": ["fluency"],
    }
    assert ProfileEnrichment().to_dict()["user_id"] is None


def test_profile_user_id_serializes_canonically_whatever_its_input_spelling() -> None:
    text = "12345678-1234-5678-1234-567812345678"
    profile = ProfileEnrichment.from_dict({"user_id": text.upper()})
    assert profile.to_dict()["user_id"] == text
    assert ProfileEnrichment(user_id=text).user_id == uuid.UUID(text)


def test_has_any() -> None:
    assert not Enrichments().has_any
    assert Enrichments(profile=ProfileEnrichment()).has_any
    assert Enrichments(memory=MemoryEnrichment()).has_any
    assert Enrichments(documents=[DocumentEnrichment()]).has_any
    assert Enrichments(web_results=[{"url": "u"}]).has_any


def test_memory_accepts_the_legacy_names_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="stageflow_trio.context.enrichments"):
        memory = MemoryEnrichment(short_term=["a"], long_term=["b"], summary="s")
    assert memory == MemoryEnrichment(
        recent_topics=["a"], key_facts=["b"], interaction_history_summary="s"
    )
    assert [r.getMessage() for r in caplog.records] == [
        "MemoryEnrichment.short_term is deprecated; use recent_topics instead",
        "MemoryEnrichment.long_term is deprecated; use key_facts instead",
        "MemoryEnrichment.summary is deprecated; use interaction_history_summary instead",
    ]


def test_memory_prefers_the_current_names() -> None:
    memory = MemoryEnrichment(recent_topics=["new"], short_term=["old"])
    assert memory.recent_topics == ["new"]


def test_document_accepts_the_legacy_names_like_stageflow(reference: ModuleType) -> None:
    ref = reference.context.enrichments
    cases: list[dict[str, object]] = [
        {"doc_id": "d", "doc_type": "pdf"},
        {"content": "text"},
        {"documents": [{"id": "x", "content": "body", "metadata": {"a": 1}}], "metadata": {"b": 2}},
        {"documents": [{"document_id": "y", "document_type": "md", "blocks": [{"k": 1}]}]},
        {"documents": [{"id": "z"}], "blocks": [], "content": "fallback"},
        {"document_id": "keep", "doc_id": "ignored"},
    ]
    for kwargs in cases:
        assert DocumentEnrichment(**kwargs).to_dict() == ref.DocumentEnrichment(**kwargs).to_dict()  # type: ignore[arg-type]


def test_unknown_keywords_are_rejected_like_stageflow() -> None:
    with pytest.raises(TypeError, match=r"^Unexpected MemoryEnrichment arguments: bar, foo$"):
        MemoryEnrichment(foo=1, bar=2)
    with pytest.raises(TypeError, match=r"^Unexpected DocumentEnrichment arguments: title$"):
        DocumentEnrichment(title="t")


def test_containers_are_immutable() -> None:
    bundle = Enrichments(
        profile=ProfileEnrichment(preferences={"nested": {"a": 1}}, goals=["g"]),
        memory=MemoryEnrichment(recent_topics=["t"]),
        documents=[DocumentEnrichment(blocks=[{"type": "text"}])],
        web_results=[{"url": "u"}],
    )
    profile, memory = bundle.profile, bundle.memory
    assert profile is not None
    assert memory is not None
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        bundle.profile = None  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        bundle.documents[0].document_id = "x"  # type: ignore[misc]
    with pytest.raises(TypeError, match=r"^FrozenList is immutable: 'append'"):
        profile.goals.append("h")
    with pytest.raises(TypeError, match=r"^FrozenDict is immutable: item assignment"):
        profile.preferences["nested"]["a"] = 2
    with pytest.raises(TypeError, match=r"^FrozenList is immutable: 'clear'"):
        memory.recent_topics.clear()
    with pytest.raises(TypeError, match=r"^FrozenDict is immutable: item assignment"):
        bundle.documents[0].blocks[0]["type"] = "image"
    with pytest.raises(TypeError, match=r"^FrozenDict is immutable: item assignment"):
        bundle.web_results[0]["url"] = "v"
    with pytest.raises(TypeError, match=r"^FrozenList is immutable: 'append'"):
        bundle.documents.append(DocumentEnrichment())


def test_from_dict_does_not_share_the_input() -> None:
    data = {"profile": {"preferences": {"a": [1]}, "goals": ["g"]}, "web_results": [{"u": 1}]}
    bundle = Enrichments.from_dict(data)
    data["profile"]["preferences"]["a"].append(2)  # type: ignore[index]
    data["profile"]["goals"].append("h")  # type: ignore[index]
    data["web_results"][0]["u"] = 2  # type: ignore[index]
    assert bundle.profile == ProfileEnrichment(preferences={"a": [1]}, goals=["g"])
    assert bundle.web_results == [{"u": 1}]


def test_from_dict_treats_an_empty_profile_or_memory_as_absent() -> None:
    bundle = Enrichments.from_dict({"profile": {}, "memory": None})
    assert bundle.profile is None
    assert bundle.memory is None


def test_bad_shapes_name_the_path() -> None:
    with pytest.raises(ValueError, match=r"^profile\.user_id must be a UUID string, got 'x'$"):
        Enrichments.from_dict({"profile": {"user_id": "x"}})
    with pytest.raises(TypeError, match=r"^documents\[1\]\.blocks must be a list, got int$"):
        Enrichments.from_dict({"documents": [{}, {"blocks": 3}]})
    with pytest.raises(TypeError, match=r"^documents\[0\] must be a mapping, got str$"):
        Enrichments.from_dict({"documents": ["doc"]})
    with pytest.raises(TypeError, match=r"^memory\.key_facts must be a list, got str$"):
        Enrichments.from_dict({"memory": {"key_facts": "fact"}})
    with pytest.raises(TypeError, match=r"^profile\.preferences must be a mapping, got list$"):
        Enrichments.from_dict({"profile": {"preferences": [1]}})
    with pytest.raises(TypeError, match=r"^web_results must be a list, got dict$"):
        Enrichments.from_dict({"web_results": {"url": "u"}})
    with pytest.raises(TypeError, match=r"^data must be a mapping, got str$"):
        ProfileEnrichment.from_dict("profile")  # type: ignore[arg-type]


def test_constructor_rejects_non_container_fields() -> None:
    with pytest.raises(TypeError, match=r"^goals must be a list, got str$"):
        ProfileEnrichment(goals="fluency")
    with pytest.raises(TypeError, match=r"^preferences must be a mapping, got int$"):
        ProfileEnrichment(preferences=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^blocks must be a list, got int$"):
        DocumentEnrichment(blocks=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^web_results must be a list, got dict$"):
        Enrichments(web_results={"u": 1})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match=r"^user_id must be a UUID string, got 'me'$"):
        ProfileEnrichment(user_id="me")
