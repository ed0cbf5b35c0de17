"""ContextSnapshot, behind :mod:`stageflow_trio.context.context_snapshot`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime  # noqa: TC003 - field annotations are resolved at runtime
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import attrs

from stageflow_trio._time import utc_now
from stageflow_trio.context._codec import (
    _EMPTY_DICT,
    _EMPTY_LIST,
    _check_mapping,
    _datetime_or_none,
    _freeze_mapping,
    _is_mapping,
    _iso_text,
    _mapping_or_none,
    _metadata_field,
    _new,
    _set,
    _slot_setters,
)
from stageflow_trio.context._conversation import (
    Conversation,
    _conversation_from_dict,
    _make_conversation,
    _messages_from_list,
)
from stageflow_trio.context._enrichments import (
    DocumentEnrichment,
    Enrichments,
    MemoryEnrichment,
    ProfileEnrichment,
    _documents_from_list,
    _enrichments_from_dict,
    _frozen_list_field,
    _make_enrichments,
    _memory_from_dict,
    _profile_from_dict,
)
from stageflow_trio.context._extensions import ExtensionBundle, _serialize_value
from stageflow_trio.context._identity import (
    RunIdentity,
    _run_identity_from_dict,
    _run_identity_from_flat,
)
from stageflow_trio.context.types import (
    RoutingDecision,
)
from stageflow_trio.utils.frozen import FrozenDict, FrozenList

if TYPE_CHECKING:
    import uuid

    from stageflow_trio.context.types import Message

__all__ = ["ContextSnapshot", "T"]


class _SupportsToDict(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


T = TypeVar("T", bound="_SupportsToDict | Mapping[str, Any]")

# The ``extensions_type`` written for mapping extensions (what type(x).__name__
# gives for a plain dict); ``from_dict`` restores them without a registry.
_MAPPING_EXTENSIONS_TYPE = "dict"

_FIELDS = (
    "run_id",
    "enrichments",
    "conversation",
    "extensions",
    "input_text",
    "input_audio_duration_ms",
    "topology",
    "execution_mode",
    "created_at",
    "metadata",
)


@attrs.frozen
class ContextSnapshot(Generic[T]):
    """The immutable view of a run that stages and agents receive.

    Every field has a default, so ``ContextSnapshot()`` is a valid (empty) snapshot.

    Attributes:
        run_id: The run's correlation ids.
        enrichments: Profile, memory, documents and web results; None if no
            enrichment ran.
        conversation: Messages and routing decision; None if the run is not
            conversational.
        extensions: Application data: an :class:`ExtensionBundle` (or any object
            with ``to_dict()``), or a mapping, which is deep-frozen.
        input_text: The raw user input (text or transcript).
        input_audio_duration_ms: The duration of the input audio.
        topology: The pipeline topology, e.g. ``"fast_kernel"``.
        execution_mode: The execution mode, e.g. ``"practice"``.
        created_at: When the snapshot was made (timezone-aware UTC by default).
        metadata: Free-form metadata, deep-frozen.

    Raises:
        TypeError: On construction, if ``extensions`` is none of the accepted kinds.
    """

    run_id: RunIdentity = attrs.field(factory=RunIdentity)
    enrichments: Enrichments | None = None
    conversation: Conversation | None = None
    extensions: T | None = None
    input_text: str | None = None
    input_audio_duration_ms: int | None = None
    topology: str | None = None
    execution_mode: str | None = None
    created_at: datetime = attrs.field(factory=utc_now)
    metadata: FrozenDict[str, Any] = attrs.field(factory=FrozenDict, converter=_metadata_field)
    # isoformat() of created_at once computed; before that, possibly a 1-tuple
    # holding the text it was parsed from, to be checked on first use.
    _created_at_iso: str | tuple[str] | None = attrs.field(
        default=None, init=False, repr=False, eq=False, hash=False
    )

    def __attrs_post_init__(self) -> None:
        extensions = self.extensions
        if extensions is not None and not isinstance(extensions, ExtensionBundle):
            _set(self, "extensions", _normalize_extensions(extensions))

    # Flat accessors kept from the pre-composition snapshot.

    @property
    def pipeline_run_id(self) -> uuid.UUID | None:
        """``run_id.pipeline_run_id``."""
        return self.run_id.pipeline_run_id

    @property
    def request_id(self) -> uuid.UUID | None:
        """``run_id.request_id``."""
        return self.run_id.request_id

    @property
    def session_id(self) -> uuid.UUID | None:
        """``run_id.session_id``."""
        return self.run_id.session_id

    @property
    def user_id(self) -> uuid.UUID | None:
        """``run_id.user_id``."""
        return self.run_id.user_id

    @property
    def org_id(self) -> uuid.UUID | None:
        """``run_id.org_id``."""
        return self.run_id.org_id

    @property
    def interaction_id(self) -> uuid.UUID | None:
        """``run_id.interaction_id``."""
        return self.run_id.interaction_id

    @property
    def messages(self) -> FrozenList[Message]:
        """The conversation's messages (empty without a conversation)."""
        if self.conversation is None:
            return _EMPTY_LIST
        return self.conversation.messages

    @property
    def routing_decision(self) -> RoutingDecision | None:
        """The conversation's routing decision (None without a conversation)."""
        if self.conversation is None:
            return None
        return self.conversation.routing_decision

    @property
    def profile(self) -> ProfileEnrichment | None:
        """The profile enrichment (None without enrichments)."""
        if self.enrichments is None:
            return None
        return self.enrichments.profile

    @property
    def memory(self) -> MemoryEnrichment | None:
        """The memory enrichment (None without enrichments)."""
        if self.enrichments is None:
            return None
        return self.enrichments.memory

    @property
    def documents(self) -> FrozenList[DocumentEnrichment]:
        """The document enrichments (empty without enrichments)."""
        if self.enrichments is None:
            return _EMPTY_LIST
        return self.enrichments.documents

    @property
    def web_results(self) -> FrozenList[FrozenDict[str, Any]]:
        """The web results (empty without enrichments)."""
        if self.enrichments is None:
            return _EMPTY_LIST
        return self.enrichments.web_results

    # Copies with one bundle replaced.

    def with_run_id(self, run_id: RunIdentity) -> ContextSnapshot[T]:
        """A copy with ``run_id`` replaced."""
        return attrs.evolve(self, run_id=run_id)

    def with_enrichments(self, enrichments: Enrichments) -> ContextSnapshot[T]:
        """A copy with ``enrichments`` replaced."""
        return attrs.evolve(self, enrichments=enrichments)

    def with_conversation(self, conversation: Conversation) -> ContextSnapshot[T]:
        """A copy with ``conversation`` replaced."""
        return attrs.evolve(self, conversation=conversation)

    def with_extensions(self, extensions: T) -> ContextSnapshot[T]:
        """A copy with ``extensions`` replaced.

        Raises:
            TypeError: ``extensions`` is none of the accepted kinds.
        """
        return attrs.evolve(self, extensions=extensions)

    # Serialization.

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form, with stageflow's 23 keys in stageflow's order.

        Composed: ``run_id``, ``enrichments``, ``conversation``, ``extensions``,
        ``extensions_type`` (the extension's class name, ``"dict"`` for a mapping);
        then ``input_text``, ``input_audio_duration_ms``, ``topology``,
        ``execution_mode``, ``created_at`` (ISO 8601), ``metadata``; then flat
        copies: the six ids, ``messages``, ``routing_decision``, ``profile``,
        ``memory``, ``documents``, ``web_results``.

        The per-object dicts and lists are new on every call. The free-form
        containers (``metadata``, ``preferences``, ``goals``, ``recent_topics``,
        ``key_facts``, ``blocks``, ``web_results``) are the snapshot's own
        read-only FrozenDicts and FrozenLists (dict and list subclasses, so
        ``json.dumps`` and ``==`` treat them as plain ones), shared by the
        composed and flat keys, as stageflow shares its own (mutable) ones.
        Copy one before changing it. A mapping extension is serialized into new
        plain containers.
        """
        run_id = self.run_id.to_dict()
        enrichments = self.enrichments
        conversation = self.conversation
        extensions = self.extensions
        if extensions is None:
            extensions_data = extensions_type = None
        elif isinstance(extensions, Mapping):
            extensions_data = _serialize_value(extensions)
            extensions_type = _MAPPING_EXTENSIONS_TYPE
        else:
            extensions_data = extensions.to_dict()
            extensions_type = type(extensions).__name__
        # As in stageflow, the flat legacy keys get their own object-level dicts
        # and lists but share the free-form containers (metadata, preferences,
        # blocks, web results, ...) with the composed ones; here those are the
        # snapshot's own read-only FrozenDicts/FrozenLists, so sharing is safe.
        if conversation is None:
            conversation_data = routing_data = None
            messages: list[dict[str, Any]] = []
        else:
            conversation_data = conversation.to_dict()
            messages = [m.to_dict() for m in conversation.messages]
            routing = conversation.routing_decision
            routing_data = None if routing is None else routing.to_dict()
        if enrichments is None:
            enrichments_data = profile_data = memory_data = None
            documents: list[dict[str, Any]] = []
            web_results: FrozenList[Any] = _EMPTY_LIST
        else:
            enrichments_data = enrichments.to_dict()
            profile = enrichments.profile
            profile_data = None if profile is None else profile.to_dict()
            memory = enrichments.memory
            memory_data = None if memory is None else memory.to_dict()
            documents = [d.to_dict() for d in enrichments.documents]
            web_results = enrichments.web_results
        created_at = self._created_at_iso
        if type(created_at) is not str:
            created_at = _iso_text(self.created_at, created_at[0] if created_at else None)
            _set(self, "_created_at_iso", created_at)
        return {
            "run_id": run_id,
            "enrichments": enrichments_data,
            "conversation": conversation_data,
            "extensions": extensions_data,
            "extensions_type": extensions_type,
            "input_text": self.input_text,
            "input_audio_duration_ms": self.input_audio_duration_ms,
            "topology": self.topology,
            "execution_mode": self.execution_mode,
            "created_at": created_at,
            "metadata": self.metadata,
            # Id strings are immutable, so the flat copies can share them.
            "pipeline_run_id": run_id["pipeline_run_id"],
            "request_id": run_id["request_id"],
            "session_id": run_id["session_id"],
            "user_id": run_id["user_id"],
            "org_id": run_id["org_id"],
            "interaction_id": run_id["interaction_id"],
            "messages": messages,
            "routing_decision": routing_data,
            "profile": profile_data,
            "memory": memory_data,
            "documents": documents,
            "web_results": web_results,
        }

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        extension_types: Mapping[str, type[Any]] | None = None,
    ) -> ContextSnapshot[T]:
        """Build a snapshot from :meth:`to_dict` output, or from the older flat shape.

        Each bundle is read from its composed key when that holds a non-empty
        mapping, else from the flat keys (a bundle with nothing in its flat keys
        stays None; flat ids get a fresh ``created_at``). The extension is
        rebuilt with ``extension_types[extensions_type].from_dict`` when the name
        is registered; ``"dict"`` extensions come back as mappings; any other
        extension type is dropped without error, as in stageflow. A missing
        ``created_at`` becomes now.

        Raises:
            ValueError: An id is not a UUID string, a timestamp is not ISO 8601, or
                a message or routing decision lacks a required key (the message
                names the path, e.g. ``run_id.user_id``).
            TypeError: ``data`` or one of its parts has the wrong type.
        """
        if not isinstance(data, dict):
            _check_mapping(data, None)
        get = data.get

        # Each bundle: the composed key if it holds a non-empty mapping, else the flat keys.
        run_data = get("run_id")
        if run_data and (isinstance(run_data, dict) or _is_mapping(run_data)):
            run_id = _run_identity_from_dict(run_data, None, "run_id")
        else:
            run_id = _run_identity_from_flat(data)
        enrichments_data = get("enrichments")
        enrichments: Enrichments | None
        if enrichments_data and (
            isinstance(enrichments_data, dict) or _is_mapping(enrichments_data)
        ):
            enrichments = _enrichments_from_dict(enrichments_data, "enrichments")
        else:
            enrichments = _enrichments_from_flat(get)
        conversation_data = get("conversation")
        conversation: Conversation | None
        if conversation_data and (
            isinstance(conversation_data, dict) or _is_mapping(conversation_data)
        ):
            conversation = _conversation_from_dict(conversation_data, "conversation")
        else:
            conversation = _conversation_from_flat(get)

        extensions = None
        extensions_type = get("extensions_type")
        if extensions_type:
            extensions_data = get("extensions")
            if extensions_data is None:
                pass
            elif extension_types and extensions_type in extension_types:
                extensions = _normalize_extensions(
                    extension_types[extensions_type].from_dict(extensions_data)
                )
            elif extensions_type == _MAPPING_EXTENSIONS_TYPE and _is_mapping(extensions_data):
                extensions = _freeze_mapping(extensions_data)
            # Any other extension type is dropped, as stageflow does.

        text = get("created_at")
        iso = None
        if not text:
            created_at = utc_now()
        else:
            created_at = _datetime_or_none(text, "created_at")  # type: ignore[assignment]
            iso = (text,)  # checked on first to_dict(), if any
        metadata = get("metadata")
        if metadata is None:
            metadata = _EMPTY_DICT
        elif isinstance(metadata, dict):
            metadata = _freeze_mapping(metadata)
        else:
            metadata = _freeze_mapping(_mapping_or_none(metadata, "metadata"))

        snapshot: ContextSnapshot[T]
        if cls is not ContextSnapshot:
            # A subclass may add fields or validation: go through its __init__.
            snapshot = cls(
                run_id,
                enrichments,
                conversation,
                extensions,
                get("input_text"),
                get("input_audio_duration_ms"),
                get("topology"),
                get("execution_mode"),
                created_at,
                metadata,
            )
        else:
            snapshot = _new(ContextSnapshot)
            _set_run_id(snapshot, run_id)
            _set_enrichments(snapshot, enrichments)
            _set_conversation(snapshot, conversation)
            _set_extensions(snapshot, extensions)
            _set_input_text(snapshot, get("input_text"))
            _set_input_audio_duration_ms(snapshot, get("input_audio_duration_ms"))
            _set_topology(snapshot, get("topology"))
            _set_execution_mode(snapshot, get("execution_mode"))
            _set_created_at(snapshot, created_at)
            _set_metadata(snapshot, metadata)
        _set_created_at_iso(snapshot, iso)
        return snapshot


(
    _set_run_id,
    _set_enrichments,
    _set_conversation,
    _set_extensions,
    _set_input_text,
    _set_input_audio_duration_ms,
    _set_topology,
    _set_execution_mode,
    _set_created_at,
    _set_metadata,
    _set_created_at_iso,
) = _slot_setters(ContextSnapshot, *_FIELDS, "_created_at_iso")


def _normalize_extensions(extensions: Any) -> Any:
    """The stored form of an extension: bundles as given, mappings deep-frozen.

    Raises:
        TypeError: ``extensions`` is neither a mapping nor has ``to_dict()``.
    """
    if extensions is None or isinstance(extensions, ExtensionBundle):
        return extensions
    if _is_mapping(extensions):
        # Checked before to_dict: a mapping type with a to_dict method is still a mapping.
        return _freeze_mapping(extensions)
    if callable(getattr(extensions, "to_dict", None)):
        return extensions
    raise TypeError(
        "extensions must be an ExtensionBundle (or an object with to_dict()), "
        f"a mapping or None, got {type(extensions).__name__}"
    )


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


def _conversation_from_flat(get: Any) -> Conversation | None:
    """The conversation spelled out in the flat keys, or None if there is none."""
    messages = _messages_from_list(get("messages"), "messages", None)
    routing_data = get("routing_decision")
    routing = None
    if routing_data and _is_mapping(routing_data):
        # The flat shape is lenient: missing routing keys become None, as in stageflow.
        routing = RoutingDecision(
            routing_data.get("agent_id"),
            routing_data.get("pipeline_name"),
            routing_data.get("topology"),
            routing_data.get("reason"),
        )
    if not messages and routing is None:
        return None
    return _make_conversation(messages, routing)
