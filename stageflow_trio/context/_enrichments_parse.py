"""The enrichments' dict parsers, shared by their ``from_dict`` and ContextSnapshot's."""

from __future__ import annotations

from typing import Any

from stageflow_trio.context._codec import (
    _EMPTY_LIST,
    _fill_list,
    _freeze_list,
    _freeze_mapping,
    _new,
    _new_list,
    _slot_setters,
)
from stageflow_trio.context._parse import (
    _check_mapping,
    _list_or_empty,
    _mapping_or_none,
    _name,
    _parse_uuid,
    _path,
)
from stageflow_trio.context.enrichments import (
    DocumentEnrichment,
    Enrichments,
    MemoryEnrichment,
    ProfileEnrichment,
)
from stageflow_trio.utils.frozen import FrozenDict, FrozenList

# The parsers below carry ``where``, the path of the value in the document
# being read, so that errors name e.g. ``enrichments.documents[0].blocks``.
# They build objects slot by slot from values they have parsed and frozen
# themselves (see _codec._slot_setters).

(
    _set_profile_user_id,
    _set_profile_display_name,
    _set_profile_preferences,
    _set_profile_goals,
    _set_profile_user_id_str,
) = _slot_setters(
    ProfileEnrichment, "user_id", "display_name", "preferences", "goals", "_user_id_str"
)
_set_memory_recent_topics, _set_memory_key_facts, _set_memory_summary = _slot_setters(
    MemoryEnrichment, "recent_topics", "key_facts", "interaction_history_summary"
)
_set_document_id, _set_document_type, _set_document_blocks, _set_document_metadata = _slot_setters(
    DocumentEnrichment, "document_id", "document_type", "blocks", "metadata"
)
(
    _set_enrichments_profile,
    _set_enrichments_memory,
    _set_enrichments_documents,
    _set_enrichments_web_results,
) = _slot_setters(Enrichments, "profile", "memory", "documents", "web_results")


def _frozen_list_field(value: Any, key: str, where: str | None) -> FrozenList[Any]:
    """A serialized list field, checked (errors name ``where.key``) and deep-frozen."""
    if isinstance(value, list):
        return _freeze_list(value)
    return _freeze_list(_list_or_empty(value, key, where))


def _frozen_mapping_field(value: Any, key: str, where: str | None) -> FrozenDict[Any, Any]:
    """A serialized mapping field, checked (errors name ``where.key``) and deep-frozen."""
    if isinstance(value, dict):
        return _freeze_mapping(value)
    return _freeze_mapping(_mapping_or_none(value, key, where))


def _profile_from_dict(data: Any, where: str | None, key: str | None = None) -> ProfileEnrichment:
    if not isinstance(data, dict):
        _check_mapping(data, _path(where, key))
    get = data.get
    value = get("user_id")
    user_id_str = None
    if not value:
        user_id = None
    else:
        user_id = _parse_uuid(value, "user_id", _path(where, key))
        user_id_str = (value,)  # checked on first to_dict(), if any
    preferences = get("preferences")
    goals = get("goals")
    profile: ProfileEnrichment = _new(ProfileEnrichment)
    _set_profile_user_id(profile, user_id)
    _set_profile_display_name(profile, get("display_name"))
    _set_profile_preferences(
        profile,
        _freeze_mapping(preferences)
        if isinstance(preferences, dict)
        else _frozen_mapping_field(preferences, "preferences", _path(where, key)),
    )
    _set_profile_goals(
        profile,
        _freeze_list(goals)
        if isinstance(goals, list)
        else _frozen_list_field(goals, "goals", _path(where, key)),
    )
    _set_profile_user_id_str(profile, user_id_str)
    return profile


def _memory_from_dict(data: Any, where: str | None, key: str | None = None) -> MemoryEnrichment:
    if not isinstance(data, dict):
        _check_mapping(data, _path(where, key))
    get = data.get
    recent_topics = get("recent_topics")
    key_facts = get("key_facts")
    memory: MemoryEnrichment = _new(MemoryEnrichment)
    _set_memory_recent_topics(
        memory,
        _freeze_list(recent_topics)
        if isinstance(recent_topics, list)
        else _frozen_list_field(recent_topics, "recent_topics", _path(where, key)),
    )
    _set_memory_key_facts(
        memory,
        _freeze_list(key_facts)
        if isinstance(key_facts, list)
        else _frozen_list_field(key_facts, "key_facts", _path(where, key)),
    )
    _set_memory_summary(memory, get("interaction_history_summary"))
    return memory


def _document_from_dict(
    data: Any, where: str | None, index: int | None = None
) -> DocumentEnrichment:
    if not isinstance(data, dict):
        _check_mapping(data, _path(where, index))
    get = data.get
    blocks = get("blocks")
    metadata = get("metadata")
    document: DocumentEnrichment = _new(DocumentEnrichment)
    _set_document_id(document, get("document_id"))
    _set_document_type(document, get("document_type"))
    _set_document_blocks(
        document,
        _freeze_list(blocks)
        if isinstance(blocks, list)
        else _frozen_list_field(blocks, "blocks", _path(where, index)),
    )
    _set_document_metadata(
        document,
        _freeze_mapping(metadata)
        if isinstance(metadata, dict)
        else _frozen_mapping_field(metadata, "metadata", _path(where, index)),
    )
    return document


def _documents_from_list(value: Any, key: str, where: str | None) -> FrozenList[DocumentEnrichment]:
    if not value:
        _list_or_empty(value, key, where)  # rejects e.g. "" or {}
        return _EMPTY_LIST
    prefix = _name(key, where)
    if not isinstance(value, list):
        value = _list_or_empty(value, key, where)
    documents: FrozenList[DocumentEnrichment] = _new_list(FrozenList)
    _fill_list(documents, [_document_from_dict(d, prefix, i) for i, d in enumerate(value)])
    return documents


def _enrichments_from_dict(data: Any, where: str | None) -> Enrichments:
    if not isinstance(data, dict):
        _check_mapping(data, where)
    get = data.get
    profile = get("profile")
    memory = get("memory")
    web_results = get("web_results")
    return _make_enrichments(
        _profile_from_dict(profile, where, "profile") if profile else None,
        _memory_from_dict(memory, where, "memory") if memory else None,
        _documents_from_list(get("documents"), "documents", where),
        _freeze_list(web_results)
        if isinstance(web_results, list)
        else _frozen_list_field(web_results, "web_results", where),
    )


def _make_enrichments(
    profile: ProfileEnrichment | None,
    memory: MemoryEnrichment | None,
    documents: FrozenList[DocumentEnrichment],
    web_results: FrozenList[Any],
) -> Enrichments:
    enrichments: Enrichments = _new(Enrichments)
    _set_enrichments_profile(enrichments, profile)
    _set_enrichments_memory(enrichments, memory)
    _set_enrichments_documents(enrichments, documents)
    _set_enrichments_web_results(enrichments, web_results)
    return enrichments


def _enrichments_from_flat(get: Any) -> Enrichments | None:
    """The enrichments spelled out in the flat keys, or None if there are none."""
    profile_data = get("profile")
    memory_data = get("memory")
    profile = _profile_from_dict(profile_data, None, "profile") if profile_data else None
    memory = _memory_from_dict(memory_data, None, "memory") if memory_data else None
    documents = _documents_from_list(get("documents"), "documents", None)
    web_results = _frozen_list_field(get("web_results"), "web_results", None)
    if profile is None and memory is None and not documents and not web_results:
        return None
    return _make_enrichments(profile, memory, documents, web_results)
