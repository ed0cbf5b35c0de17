"""ContextSnapshot: the immutable, serializable view of a run that stages receive.

A snapshot composes a :class:`RunIdentity`, optional :class:`Enrichments`
and :class:`Conversation` bundles, an optional extension (a typed
:class:`ExtensionBundle` or a plain mapping), the input, the topology and
execution mode, and free-form metadata. Its containers are deep-frozen.

``to_dict`` gives the 23 keys stageflow gives: the composed bundles and, for
older readers, flat copies of the ids, messages, routing decision and
enrichments. ``from_dict`` reads either shape, preferring the composed one.
"""

from __future__ import annotations

from collections.abc import Mapping  # noqa: TC003 - annotations are resolved at runtime
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, Protocol

import attrs
from typing_extensions import TypeVar

from stageflow_trio._frozen import frozen_compat
from stageflow_trio._time import utc_now
from stageflow_trio.context._codec import _EMPTY_LIST, _metadata_field, _new, _set, _slot_setters
from stageflow_trio.context._parse import _optional_int, _optional_str
from stageflow_trio.context._snapshot_codec import _snapshot_fields_from_dict, _snapshot_to_dict
from stageflow_trio.context.conversation import Conversation
from stageflow_trio.context.enrichments import (
    DocumentEnrichment,
    Enrichments,
    MemoryEnrichment,
    ProfileEnrichment,
)
from stageflow_trio.context.extensions import ExtensionBundle, _normalize_extensions
from stageflow_trio.context.identity import RunIdentity
from stageflow_trio.context.types import RoutingDecision  # noqa: TC001 - as above
from stageflow_trio.utils.frozen import FrozenDict, FrozenList

if TYPE_CHECKING:
    import uuid

    from stageflow_trio.context.types import Message

__all__ = ["ContextSnapshot", "T"]


class _SupportsToDict(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


# The default lets `ContextSnapshot(...)` and `from_dict(...)` type-check without an
# annotation when the extension type cannot be inferred (strict mypy asked for one).
T = TypeVar(
    "T", bound="_SupportsToDict | Mapping[str, Any]", default="_SupportsToDict | Mapping[str, Any]"
)

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


@frozen_compat
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
        TypeError: On construction, a field of the wrong type (the bundles must be
            their classes, the text fields str or None, ``input_audio_duration_ms``
            an int, ``created_at`` a datetime), with the message ``from_dict``
            gives, e.g. ``input_text must be a str or None, got int``; or
            ``extensions`` is none of the accepted kinds, or free-form metadata
            holds an unhashable value.
        ValueError: ``metadata`` nests too deep or contains itself.
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
        # The field checks from_dict makes, with its messages, so that a snapshot
        # built here serializes and reads back; the common case costs one type() each.
        run_id = self.run_id
        if type(run_id) is not RunIdentity and not isinstance(run_id, RunIdentity):
            raise TypeError(f"run_id must be a RunIdentity, got {type(run_id).__name__}")
        enrichments = self.enrichments
        if (
            enrichments is not None
            and type(enrichments) is not Enrichments
            and not isinstance(enrichments, Enrichments)
        ):
            raise TypeError(
                f"enrichments must be an Enrichments or None, got {type(enrichments).__name__}"
            )
        conversation = self.conversation
        if (
            conversation is not None
            and type(conversation) is not Conversation
            and not isinstance(conversation, Conversation)
        ):
            raise TypeError(
                f"conversation must be a Conversation or None, got {type(conversation).__name__}"
            )
        if type(self.input_text) is not str and self.input_text is not None:
            _optional_str(self.input_text, "input_text")
        duration = self.input_audio_duration_ms
        if type(duration) is not int and duration is not None:
            _optional_int(duration, "input_audio_duration_ms")
        if type(self.topology) is not str and self.topology is not None:
            _optional_str(self.topology, "topology")
        if type(self.execution_mode) is not str and self.execution_mode is not None:
            _optional_str(self.execution_mode, "execution_mode")
        created_at = self.created_at
        if type(created_at) is not datetime and not isinstance(created_at, datetime):
            raise TypeError(f"created_at must be a datetime, got {type(created_at).__name__}")
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
        return _snapshot_to_dict(self)

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

        Every field is checked against its type, and free-form values (metadata,
        preferences, blocks, web results, a mapping extension) may nest at most
        100 levels of dicts and lists: the result is immutable throughout, so it
        hashes (see docs/context.md for the rules).

        Raises:
            ValueError: An id is not a UUID string, a timestamp is not ISO 8601, a
                message or routing decision lacks a required key, or a free-form
                value nests too deep or contains itself (the message names the
                path, e.g. ``run_id.user_id``).
            TypeError: ``data`` or one of its parts has the wrong type, e.g.
                ``conversation.messages[2].content must be a str, got int``.
        """
        fields = _snapshot_fields_from_dict(data, extension_types)
        snapshot: ContextSnapshot[T]
        if cls is not ContextSnapshot:
            # A subclass may add fields or validation: go through its __init__.
            snapshot = cls(
                run_id=fields.run_id,
                enrichments=fields.enrichments,
                conversation=fields.conversation,
                extensions=fields.extensions,
                input_text=fields.input_text,
                input_audio_duration_ms=fields.input_audio_duration_ms,
                topology=fields.topology,
                execution_mode=fields.execution_mode,
                created_at=fields.created_at,
                metadata=fields.metadata,
            )
        else:
            snapshot = _new(ContextSnapshot)
            _set_run_id(snapshot, fields.run_id)
            _set_enrichments(snapshot, fields.enrichments)
            _set_conversation(snapshot, fields.conversation)
            _set_extensions(snapshot, fields.extensions)
            _set_input_text(snapshot, fields.input_text)
            _set_input_audio_duration_ms(snapshot, fields.input_audio_duration_ms)
            _set_topology(snapshot, fields.topology)
            _set_execution_mode(snapshot, fields.execution_mode)
            _set_created_at(snapshot, fields.created_at)
            _set_metadata(snapshot, fields.metadata)
        _set_created_at_iso(snapshot, fields.created_at_iso)
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
