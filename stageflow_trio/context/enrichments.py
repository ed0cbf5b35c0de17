"""Enrichments: what the pipeline learned about the user, their history and their documents.

:class:`Enrichments` groups the optional profile, memory, documents and web
results that enrichment stages attach to a
:class:`~stageflow_trio.context.ContextSnapshot`. All containers are
deep-frozen; ``to_dict`` returns fresh plain dicts and lists.

``_enrichments_parse`` builds these classes, so it is imported at the end of this
module, once the classes exist, and the ``from_dict`` methods look it up when called.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping  # noqa: TC003 - signatures are resolved at runtime
from typing import Any

import attrs

from stageflow_trio._time import parse_uuid
from stageflow_trio.context._codec import (
    _blocks_field,
    _freeze_list,
    _goals_field,
    _key_facts_field,
    _metadata_field,
    _preferences_field,
    _recent_topics_field,
    _set,
    _web_results_field,
)
from stageflow_trio.context._parse import _uuid_text
from stageflow_trio.utils.frozen import FrozenDict, FrozenList

__all__ = ["DocumentEnrichment", "Enrichments", "MemoryEnrichment", "ProfileEnrichment"]

logger = logging.getLogger("stageflow_trio.context.enrichments")


def _to_user_id(value: uuid.UUID | str | None) -> uuid.UUID | None:
    """attrs converter: a UUID string is parsed; a malformed one names ``user_id``."""
    if value is None or type(value) is uuid.UUID:
        return value
    return parse_uuid(value, "user_id")


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
            ValueError: ``user_id`` is not a UUID string.
            TypeError: ``data`` or one of its containers has the wrong type.
        """
        return _parse._profile_from_dict(data, None)


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
            TypeError: An unknown keyword was given (the message lists them, sorted).
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
            TypeError: ``data`` or one of its lists has the wrong type.
        """
        return _parse._memory_from_dict(data, None)


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
            TypeError: An unknown keyword was given (the message lists them, sorted).
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
        resolved_metadata: dict[str, Any] = dict(metadata or {})
        if documents:
            logger.warning(
                "Passing 'documents' to DocumentEnrichment is deprecated; "
                "pass a single document via keyword arguments"
            )
            first = documents[0]
            document_id = document_id or first.get("id") or first.get("document_id")
            document_type = document_type or first.get("document_type")
            # Empty blocks count as "not given" here, as they did in stageflow.
            resolved_blocks = resolved_blocks or first.get("blocks")
            if resolved_blocks is None and "content" in first:
                resolved_blocks = [{"type": "text", "content": first["content"]}]
            resolved_metadata.update(first.get("metadata", {}))
        if content is not None and resolved_blocks is None:
            logger.warning(
                "DocumentEnrichment.content is deprecated; provide structured blocks instead"
            )
            resolved_blocks = [{"type": "text", "content": content}]
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
            TypeError: ``data`` or one of its containers has the wrong type.
        """
        return _parse._document_from_dict(data, None)


def _documents_field(
    value: Iterable[DocumentEnrichment] | None,
) -> FrozenList[DocumentEnrichment]:
    return _freeze_list(value, "documents")


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
            ValueError: A nested id is not a UUID string.
            TypeError: ``data`` or one of its parts has the wrong type.
        """
        return _parse._enrichments_from_dict(data, None)


# Last: the parsers import the classes above (a cycle resolved by import order).
from stageflow_trio.context import _enrichments_parse as _parse  # noqa: E402
