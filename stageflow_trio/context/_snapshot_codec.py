"""The bodies of ContextSnapshot's ``to_dict`` and ``from_dict``: its dict form, both ways."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from stageflow_trio._time import utc_now
from stageflow_trio.context._codec import _EMPTY_LIST, _freeze_mapping, _set
from stageflow_trio.context._parse import (
    _absent,
    _check_mapping,
    _datetime_or_none,
    _fromisoformat,
    _iso_text,
    _optional_int,
    _optional_str,
)
from stageflow_trio.context.conversation import _conversation_from_dict, _conversation_from_flat
from stageflow_trio.context.enrichments import (
    _enrichments_from_dict,
    _enrichments_from_flat,
)
from stageflow_trio.context.extensions import _normalize_extensions, _serialize_value
from stageflow_trio.context.identity import _run_identity_from_dict, _run_identity_from_flat

if TYPE_CHECKING:
    from datetime import datetime

    from stageflow_trio.context.context_snapshot import ContextSnapshot
    from stageflow_trio.context.conversation import Conversation
    from stageflow_trio.context.enrichments import Enrichments
    from stageflow_trio.context.identity import RunIdentity
    from stageflow_trio.utils.frozen import FrozenDict, FrozenList

# The ``extensions_type`` written for mapping extensions (what type(x).__name__
# gives for a plain dict); ``from_dict`` restores them without a registry.
_MAPPING_EXTENSIONS_TYPE = "dict"


def _snapshot_to_dict(snapshot: ContextSnapshot[Any]) -> dict[str, Any]:
    """What ``ContextSnapshot.to_dict`` returns (see its docstring)."""
    run_id = snapshot.run_id.to_dict()
    enrichments = snapshot.enrichments
    conversation = snapshot.conversation
    extensions = snapshot.extensions
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
    created_at = snapshot._created_at_iso
    if type(created_at) is not str:
        created_at = _iso_text(snapshot.created_at, created_at[0] if created_at else None)
        _set(snapshot, "_created_at_iso", created_at)
    return {
        "run_id": run_id,
        "enrichments": enrichments_data,
        "conversation": conversation_data,
        "extensions": extensions_data,
        "extensions_type": extensions_type,
        "input_text": snapshot.input_text,
        "input_audio_duration_ms": snapshot.input_audio_duration_ms,
        "topology": snapshot.topology,
        "execution_mode": snapshot.execution_mode,
        "created_at": created_at,
        "metadata": snapshot.metadata,
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


class _SnapshotFields(NamedTuple):
    """What ``ContextSnapshot.from_dict`` builds a snapshot from: its fields, in order, then a cache."""

    run_id: RunIdentity
    enrichments: Enrichments | None
    conversation: Conversation | None
    extensions: Any
    input_text: str | None
    input_audio_duration_ms: int | None
    topology: str | None
    execution_mode: str | None
    created_at: datetime
    metadata: FrozenDict[str, Any]
    # The text created_at was parsed from, in a 1-tuple, or None (see ContextSnapshot).
    created_at_iso: tuple[str] | None


def _snapshot_fields_from_dict(
    data: Mapping[str, Any], extension_types: Mapping[str, type[Any]] | None
) -> _SnapshotFields:
    """The values ``ContextSnapshot.from_dict`` builds a snapshot from; its errors are raised here."""
    if not isinstance(data, dict):
        _check_mapping(data, None)
    get = data.get

    # Each bundle: the composed key if it holds a non-empty mapping, else the
    # flat keys; anything but a mapping or None there is an error.
    run_data = get("run_id")
    if run_data:
        run_id = _run_identity_from_dict(run_data, None, "run_id")
    else:
        _absent(run_data, "run_id")
        run_id = _run_identity_from_flat(data)
    enrichments_data = get("enrichments")
    enrichments: Enrichments | None
    if enrichments_data:
        enrichments = _enrichments_from_dict(enrichments_data, "enrichments")
    else:
        _absent(enrichments_data, "enrichments")
        enrichments = _enrichments_from_flat(get)
    conversation_data = get("conversation")
    conversation: Conversation | None
    if conversation_data:
        conversation = _conversation_from_dict(conversation_data, "conversation")
    else:
        _absent(conversation_data, "conversation")
        conversation = _conversation_from_flat(get)

    extensions = None
    extensions_type = get("extensions_type")
    if type(extensions_type) is not str and extensions_type is not None:
        extensions_type = _optional_str(extensions_type, "extensions_type")
    if extensions_type:
        extensions_data = get("extensions")
        if extensions_data is None:
            pass
        elif extension_types and extensions_type in extension_types:
            extensions = _normalize_extensions(
                extension_types[extensions_type].from_dict(extensions_data)
            )
        elif extensions_type == _MAPPING_EXTENSIONS_TYPE:
            extensions = _freeze_mapping(extensions_data, "extensions")
        # Any other extension type is dropped, as stageflow does.

    text = get("created_at")
    iso = None
    if text and type(text) is str:
        try:
            created_at = _fromisoformat(text)
        except ValueError:
            _datetime_or_none(text, "created_at")  # raises, naming the field
            raise
        iso = (text,)  # checked on first to_dict(), if any
    else:  # None or "" means now; a datetime is kept; anything else is an error
        created_at = _datetime_or_none(text, "created_at") or utc_now()

    # The scalars: the common case (a str, or None) checked inline.
    input_text = get("input_text")
    if type(input_text) is not str and input_text is not None:
        input_text = _optional_str(input_text, "input_text")
    duration = get("input_audio_duration_ms")
    if type(duration) is not int and duration is not None:
        duration = _optional_int(duration, "input_audio_duration_ms")
    topology = get("topology")
    if type(topology) is not str and topology is not None:
        topology = _optional_str(topology, "topology")
    execution_mode = get("execution_mode")
    if type(execution_mode) is not str and execution_mode is not None:
        execution_mode = _optional_str(execution_mode, "execution_mode")

    return _SnapshotFields(
        run_id,
        enrichments,
        conversation,
        extensions,
        input_text,
        duration,
        topology,
        execution_mode,
        created_at,
        _freeze_mapping(get("metadata"), "metadata"),
        iso,
    )
