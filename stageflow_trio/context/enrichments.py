"""Enrichments: what the pipeline learned about the user, their history and their documents.

:class:`Enrichments` groups the optional profile, memory, documents and web
results that enrichment stages attach to a
:class:`~stageflow_trio.context.ContextSnapshot`. All containers are
deep-frozen; ``to_dict`` returns fresh plain dicts and lists.

The parsers at the end of the module serve both the classes' ``from_dict`` and
:class:`~stageflow_trio.context.ContextSnapshot`'s, which also reads the
legacy flat keys.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping  # noqa: TC003 - signatures are resolved at runtime
from typing import Any

import attrs

from stageflow_trio._frozen import frozen_compat
from stageflow_trio._time import parse_uuid
from stageflow_trio.context._codec import (
    _freeze_mapping,
    _metadata_field,
    _new,
    _path,
    _preferences_field,
    _set,
    _slot_setters,
)
from stageflow_trio.context._parse import (
    _absent,
    _blocks_field,
    _check_mapping,
    _goals_field,
    _instance_list,
    _key_facts_field,
    _mapping_list,
    _mapping_or_none,
    _optional_instance,
    _optional_str,
    _parse_uuid,
    _parsed_list,
    _recent_topics_field,
    _str_list,
    _uuid_or_none,
    _uuid_text,
    _web_results_field,
)
from stageflow_trio.utils.frozen import FrozenDict, FrozenList

__all__ = ["DocumentEnrichment", "Enrichments", "MemoryEnrichment", "ProfileEnrichment"]

logger: logging.Logger = logging.getLogger("stageflow_trio.context.enrichments")


def _to_user_id(value: uuid.UUID | str | None) -> uuid.UUID | None:
    """attrs converter: a UUID string is parsed; a malformed one names ``user_id``."""
    if value is None or type(value) is uuid.UUID:
        return value
    return parse_uuid(value, "user_id")


@frozen_compat
@attrs.frozen
class ProfileEnrichment:
    """What the pipeline knows about the user.

    Attributes:
        user_id: The user's id.
        display_name: How to address the user.
        preferences: Free-form preferences, e.g. ``{"theme": "dark"}``.
        goals: The user's goals.
    """

    user_id: uuid.UUID | None = attrs.field(default=None, converter=_to_user_id)
    display_name: str | None = None
    preferences: FrozenDict[str, Any] = attrs.field(
        factory=FrozenDict, converter=_preferences_field
    )
    goals: FrozenList[str] = attrs.field(factory=FrozenList, converter=_goals_field)
    # str(user_id) once computed; before that, possibly a 1-tuple holding the
    # text it was parsed from, to be checked on first use.
    _user_id_str: str | tuple[str] | None = attrs.field(
        default=None, init=False, repr=False, eq=False, hash=False
    )

    def __attrs_post_init__(self) -> None:
        # from_dict's check and message (from_dict itself skips __init__).
        display_name = self.display_name
        if type(display_name) is not str and display_name is not None:
            _optional_str(display_name, "display_name")

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form: ``user_id`` (str or None), ``display_name``, ``preferences``, ``goals``.

        ``preferences`` and ``goals`` are the profile's own read-only containers
        (stageflow hands out its own there too); copy them before changing them.
        """
        user_id = self._user_id_str
        if type(user_id) is not str:
            user_id = None
            if self.user_id is not None:
                cached = self._user_id_str
                user_id = _uuid_text(self.user_id, cached[0] if cached is not None else None)
                _set(self, "_user_id_str", user_id)
        return {
            "user_id": user_id,
            "display_name": self.display_name,
            "preferences": self.preferences,
            "goals": self.goals,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProfileEnrichment:
        """Build a profile from :meth:`to_dict` output.

        Raises:
            ValueError: ``user_id`` is not a UUID string, or ``preferences`` nests
                too deep or contains itself.
            TypeError: ``data`` or one of its fields has the wrong type.
        """
        return _profile_from_dict(data, None)


@frozen_compat
@attrs.frozen(init=False)
class MemoryEnrichment:
    """What the pipeline remembers from earlier interactions.

    The legacy keyword names ``short_term``, ``long_term`` and ``summary`` are
    still accepted (with a logged deprecation warning) for ``recent_topics``,
    ``key_facts`` and ``interaction_history_summary``.

    Attributes:
        recent_topics: Topics of recent interactions.
        key_facts: Facts learned about the user.
        interaction_history_summary: A prose summary of the history.
    """

    recent_topics: FrozenList[str] = attrs.field(converter=_recent_topics_field)
    key_facts: FrozenList[str] = attrs.field(converter=_key_facts_field)
    interaction_history_summary: str | None

    def __init__(
        self,
        *,
        recent_topics: Iterable[str] | None = None,
        key_facts: Iterable[str] | None = None,
        interaction_history_summary: str | None = None,
        short_term: Iterable[str] | None = None,
        long_term: Iterable[str] | None = None,
        summary: str | None = None,
        **extra: Any,
    ) -> None:
        """Build a memory enrichment; see the class docstring for the legacy names.

        Raises:
            TypeError: An unknown keyword was given (the message lists them, sorted),
                a list is not a list of str, or the summary is not a str or None.
        """
        if extra:
            raise TypeError(f"Unexpected MemoryEnrichment arguments: {', '.join(sorted(extra))}")
        if short_term is not None and recent_topics is None:
            logger.warning("MemoryEnrichment.short_term is deprecated; use recent_topics instead")
            recent_topics = short_term
        if long_term is not None and key_facts is None:
            logger.warning("MemoryEnrichment.long_term is deprecated; use key_facts instead")
            key_facts = long_term
        if summary is not None and interaction_history_summary is None:
            logger.warning(
                "MemoryEnrichment.summary is deprecated; use interaction_history_summary instead"
            )
            interaction_history_summary = summary
        if type(interaction_history_summary) is not str and interaction_history_summary is not None:
            _optional_str(interaction_history_summary, "interaction_history_summary")
        self.__attrs_init__(recent_topics, key_facts, interaction_history_summary)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form: ``recent_topics``, ``key_facts``, ``interaction_history_summary``."""
        return {
            "recent_topics": self.recent_topics,
            "key_facts": self.key_facts,
            "interaction_history_summary": self.interaction_history_summary,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MemoryEnrichment:
        """Build a memory enrichment from :meth:`to_dict` output.

        Raises:
            TypeError: ``data`` or one of its fields has the wrong type (the lists
                hold str).
        """
        return _memory_from_dict(data, None)


@frozen_compat
@attrs.frozen(init=False)
class DocumentEnrichment:
    """One document the pipeline is working with.

    Legacy keywords still accepted (each with a logged deprecation warning):
    ``doc_id`` and ``doc_type`` for ``document_id`` and ``document_type``;
    ``content`` (a single text block) when no ``blocks`` are given; and
    ``documents``, a list whose first entry fills in the id (``id`` or
    ``document_id``), type, blocks (or a text block from ``content``) and
    metadata that were not given directly.

    Attributes:
        document_id: The document's id.
        document_type: Its type, e.g. ``"pdf"`` or ``"markdown"``.
        blocks: Structured content blocks, deep-frozen.
        metadata: Free-form document metadata, deep-frozen.
    """

    document_id: str | None
    document_type: str | None
    blocks: FrozenList[FrozenDict[str, Any]] = attrs.field(converter=_blocks_field)
    metadata: FrozenDict[str, Any] = attrs.field(converter=_metadata_field)

    def __init__(
        self,
        *,
        document_id: str | None = None,
        document_type: str | None = None,
        blocks: Iterable[Mapping[str, Any]] | None = None,
        metadata: Mapping[str, Any] | None = None,
        doc_id: str | None = None,
        doc_type: str | None = None,
        documents: list[Mapping[str, Any]] | None = None,
        content: str | None = None,
        **extra: Any,
    ) -> None:
        """Build a document enrichment; see the class docstring for the legacy names.

        Raises:
            TypeError: An unknown keyword was given (the message lists them, sorted),
                the id or type is not a str or None, ``blocks`` is not a list of
                mappings, ``metadata`` not a mapping, ``documents`` not a list of
                mappings.
        """
        if extra:
            raise TypeError(f"Unexpected DocumentEnrichment arguments: {', '.join(sorted(extra))}")
        if doc_id is not None and document_id is None:
            logger.warning("DocumentEnrichment.doc_id is deprecated; use document_id instead")
            document_id = doc_id
        if doc_type is not None and document_type is None:
            logger.warning("DocumentEnrichment.doc_type is deprecated; use document_type instead")
            document_type = doc_type
        resolved_blocks: Any = blocks
        # Checked before dict(): it would turn a list of pairs into a mapping.
        resolved_metadata: dict[str, Any] = dict(_mapping_or_none(metadata, "metadata") or {})
        if documents:
            if not isinstance(documents, (list, tuple)):
                raise TypeError(f"documents must be a list, got {type(documents).__name__}")
            logger.warning(
                "Passing 'documents' to DocumentEnrichment is deprecated; "
                "pass a single document via keyword arguments"
            )
            first = _check_mapping(documents[0], "documents[0]")
            document_id = document_id or first.get("id") or first.get("document_id")
            document_type = document_type or first.get("document_type")
            # Empty blocks count as "not given" here, as they did in stageflow.
            resolved_blocks = resolved_blocks or first.get("blocks")
            if resolved_blocks is None and "content" in first:
                resolved_blocks = [{"type": "text", "content": first["content"]}]
            extra_metadata = first.get("metadata", {})
            resolved_metadata.update(
                _mapping_or_none(extra_metadata, "documents[0].metadata") or {}
            )
        if content is not None and resolved_blocks is None:
            logger.warning(
                "DocumentEnrichment.content is deprecated; provide structured blocks instead"
            )
            resolved_blocks = [{"type": "text", "content": content}]
        if type(document_id) is not str and document_id is not None:
            _optional_str(document_id, "document_id")
        if type(document_type) is not str and document_type is not None:
            _optional_str(document_type, "document_type")
        self.__attrs_init__(document_id, document_type, resolved_blocks, resolved_metadata)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form: ``document_id``, ``document_type``, ``blocks``, ``metadata``."""
        return {
            "document_id": self.document_id,
            "document_type": self.document_type,
            "blocks": self.blocks,
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DocumentEnrichment:
        """Build a document enrichment from :meth:`to_dict` output.

        Raises:
            ValueError: ``blocks`` or ``metadata`` nests too deep or contains itself.
            TypeError: ``data`` or one of its fields has the wrong type (``blocks``
                holds mappings).
        """
        return _document_from_dict(data, None)


def _documents_field(
    value: Iterable[DocumentEnrichment] | None,
) -> FrozenList[DocumentEnrichment]:
    return _instance_list(value, "documents", DocumentEnrichment)


@frozen_compat
@attrs.frozen
class Enrichments:
    """The enrichment bundle of a snapshot: profile, memory, documents and web results.

    Attributes:
        profile: The user profile, if one was loaded.
        memory: The memory view, if one was loaded.
        documents: Document enrichments.
        web_results: Web search results (deep-frozen mappings).
    """

    profile: ProfileEnrichment | None = None
    memory: MemoryEnrichment | None = None
    documents: FrozenList[DocumentEnrichment] = attrs.field(
        factory=FrozenList, converter=_documents_field
    )
    web_results: FrozenList[FrozenDict[str, Any]] = attrs.field(
        factory=FrozenList, converter=_web_results_field
    )

    def __attrs_post_init__(self) -> None:
        # from_dict builds these itself and skips __init__; a wrong type here
        # used to fail later, in to_dict (AttributeError).
        _optional_instance(self.profile, "profile", ProfileEnrichment)
        _optional_instance(self.memory, "memory", MemoryEnrichment)

    @property
    def has_any(self) -> bool:
        """Whether any enrichment is present."""
        return (
            self.profile is not None
            or self.memory is not None
            or len(self.documents) > 0
            or len(self.web_results) > 0
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form: ``profile``, ``memory`` (dicts or None), ``documents``, ``web_results``."""
        profile = self.profile
        memory = self.memory
        return {
            "profile": None if profile is None else profile.to_dict(),
            "memory": None if memory is None else memory.to_dict(),
            "documents": [d.to_dict() for d in self.documents],
            "web_results": self.web_results,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Enrichments:
        """Build enrichments from :meth:`to_dict` output; an empty profile or memory counts as absent.

        Raises:
            ValueError: A nested id is not a UUID string, or a free-form value nests
                too deep or contains itself.
            TypeError: ``data`` or one of its parts has the wrong type.
        """
        return _enrichments_from_dict(data, None)


# The parsers below carry ``where``, the path of the value in the document
# being read, so that errors name e.g. ``enrichments.documents[0].blocks``.
# They check each field's type (the common case inline), and build objects
# slot by slot from values they have parsed and frozen themselves (see
# _codec._slot_setters).

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


def _profile_from_dict(data: Any, where: str | None, key: str | None = None) -> ProfileEnrichment:
    if not isinstance(data, dict):
        _check_mapping(data, _path(where, key))
    get = data.get
    value = get("user_id")
    user_id_str = None
    if not value:
        user_id = _uuid_or_none(value, "user_id", where, key)  # None, or an error
    else:
        user_id = _parse_uuid(value, "user_id", where, key)
        user_id_str = (value,)  # checked on first to_dict(), if any
    display_name = get("display_name")
    if type(display_name) is not str and display_name is not None:
        display_name = _optional_str(display_name, "display_name", where, key)
    profile: ProfileEnrichment = _new(ProfileEnrichment)
    _set_profile_user_id(profile, user_id)
    _set_profile_display_name(profile, display_name)
    _set_profile_preferences(
        profile, _freeze_mapping(get("preferences"), "preferences", where, key)
    )
    _set_profile_goals(profile, _str_list(get("goals"), "goals", where, key))
    _set_profile_user_id_str(profile, user_id_str)
    return profile


def _memory_from_dict(data: Any, where: str | None, key: str | None = None) -> MemoryEnrichment:
    if not isinstance(data, dict):
        _check_mapping(data, _path(where, key))
    get = data.get
    summary = get("interaction_history_summary")
    if type(summary) is not str and summary is not None:
        summary = _optional_str(summary, "interaction_history_summary", where, key)
    memory: MemoryEnrichment = _new(MemoryEnrichment)
    _set_memory_recent_topics(memory, _str_list(get("recent_topics"), "recent_topics", where, key))
    _set_memory_key_facts(memory, _str_list(get("key_facts"), "key_facts", where, key))
    _set_memory_summary(memory, summary)
    return memory


def _document_from_dict(
    data: Any, where: str | None, index: int | None = None
) -> DocumentEnrichment:
    if not isinstance(data, dict):
        _check_mapping(data, _path(where, index))
    get = data.get
    document_id = get("document_id")
    if type(document_id) is not str and document_id is not None:
        document_id = _optional_str(document_id, "document_id", where, index)
    document_type = get("document_type")
    if type(document_type) is not str and document_type is not None:
        document_type = _optional_str(document_type, "document_type", where, index)
    document: DocumentEnrichment = _new(DocumentEnrichment)
    _set_document_id(document, document_id)
    _set_document_type(document, document_type)
    _set_document_blocks(document, _mapping_list(get("blocks"), "blocks", where, index))
    _set_document_metadata(document, _freeze_mapping(get("metadata"), "metadata", where, index))
    return document


def _enrichments_from_dict(data: Any, where: str | None) -> Enrichments:
    if not isinstance(data, dict):
        _check_mapping(data, where)
    get = data.get
    profile = get("profile")
    memory = get("memory")
    return _make_enrichments(
        _profile_from_dict(profile, where, "profile")
        if profile
        else _absent(profile, "profile", where),
        _memory_from_dict(memory, where, "memory") if memory else _absent(memory, "memory", where),
        _parsed_list(get("documents"), "documents", where, _document_from_dict),
        _mapping_list(get("web_results"), "web_results", where),
    )


def _make_enrichments(
    profile: ProfileEnrichment | None,
    memory: MemoryEnrichment | None,
    documents: FrozenList[DocumentEnrichment],
    web_results: FrozenList[FrozenDict[str, Any]],
) -> Enrichments:
    enrichments: Enrichments = _new(Enrichments)
    _set_enrichments_profile(enrichments, profile)
    _set_enrichments_memory(enrichments, memory)
    _set_enrichments_documents(enrichments, documents)
    _set_enrichments_web_results(enrichments, web_results)
    return enrichments


def _enrichments_from_flat(get: Any) -> Enrichments | None:
    """The enrichments spelled out in the flat keys, or None if there are none."""
    profile = get("profile")
    profile = (
        _profile_from_dict(profile, None, "profile") if profile else _absent(profile, "profile")
    )
    memory = get("memory")
    memory = _memory_from_dict(memory, None, "memory") if memory else _absent(memory, "memory")
    documents = _parsed_list(get("documents"), "documents", None, _document_from_dict)
    web_results = _mapping_list(get("web_results"), "web_results", None)
    if profile is None and memory is None and not documents and not web_results:
        return None
    return _make_enrichments(profile, memory, documents, web_results)
