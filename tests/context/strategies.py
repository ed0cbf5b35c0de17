"""Hypothesis strategies for the serializable context values.

Other test modules import these: ``snapshots()`` for a ContextSnapshot with
every part populated or not, and one strategy per component type. Values stay
JSON-compatible, so every generated object survives ``json.dumps``.
"""

from __future__ import annotations

from datetime import UTC, timedelta, timezone
from typing import Any

import attrs
from hypothesis import strategies as st

from stageflow_trio.context.context_snapshot import ContextSnapshot
from stageflow_trio.context.conversation import Conversation
from stageflow_trio.context.enrichments import (
    DocumentEnrichment,
    Enrichments,
    MemoryEnrichment,
    ProfileEnrichment,
)
from stageflow_trio.context.extensions import ExtensionBundle
from stageflow_trio.context.identity import RunIdentity
from stageflow_trio.context.types import Message, RoutingDecision

__all__ = [
    "EXTENSION_TYPES",
    "SampleExtensions",
    "bundles",
    "conversations",
    "datetimes",
    "documents",
    "enrichments",
    "json_objects",
    "json_values",
    "memories",
    "messages",
    "profiles",
    "routing_decisions",
    "run_identities",
    "snapshots",
]


@attrs.frozen
class SampleExtensions(ExtensionBundle):
    """A typed extension with scalar fields (``from_dict`` is ``cls(**data)``)."""

    deal_id: str | None = None
    stage: int = 0


EXTENSION_TYPES: dict[str, type[Any]] = {"SampleExtensions": SampleExtensions}

_offsets = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)

#: Naive, UTC (the common case) and fixed-offset datetimes, with and without microseconds.
datetimes = st.one_of(
    st.datetimes(),
    st.datetimes(timezones=st.just(UTC)),
    st.datetimes(timezones=_offsets),
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.replace(microsecond=0)),
)

_text = st.text(max_size=12)

#: JSON scalars and nested lists/objects.
json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_text, children, max_size=3),
    max_leaves=8,
)
json_objects = st.dictionaries(_text, json_values, max_size=4)

messages = st.builds(
    Message,
    role=st.sampled_from(["user", "assistant", "system"]) | _text,
    content=_text,
    timestamp=st.none() | datetimes,
    metadata=json_objects,
)
routing_decisions = st.builds(
    RoutingDecision,
    agent_id=_text,
    pipeline_name=_text,
    topology=_text,
    reason=st.none() | _text,
)
conversations = st.builds(
    Conversation,
    messages=st.lists(messages, max_size=4),
    routing_decision=st.none() | routing_decisions,
)
profiles = st.builds(
    ProfileEnrichment,
    user_id=st.none() | st.uuids(),
    display_name=st.none() | _text,
    preferences=json_objects,
    goals=st.lists(_text, max_size=3),
)
memories = st.builds(
    MemoryEnrichment,
    recent_topics=st.lists(_text, max_size=3),
    key_facts=st.lists(_text, max_size=3),
    interaction_history_summary=st.none() | _text,
)
documents = st.builds(
    DocumentEnrichment,
    document_id=st.none() | _text,
    document_type=st.none() | _text,
    blocks=st.lists(json_objects, max_size=3),
    metadata=json_objects,
)
enrichments = st.builds(
    Enrichments,
    profile=st.none() | profiles,
    memory=st.none() | memories,
    documents=st.lists(documents, max_size=2),
    web_results=st.lists(json_objects, max_size=2),
)
run_identities = st.builds(
    RunIdentity,
    pipeline_run_id=st.none() | st.uuids(),
    request_id=st.none() | st.uuids(),
    session_id=st.none() | st.uuids(),
    user_id=st.none() | st.uuids(),
    org_id=st.none() | st.uuids(),
    interaction_id=st.none() | st.uuids(),
    created_at=datetimes,
)
_bundles = st.builds(SampleExtensions, deal_id=st.none() | _text, stage=st.integers())


def snapshots(
    extensions: st.SearchStrategy[Any] | None = None,
) -> st.SearchStrategy[ContextSnapshot[Any]]:
    """Snapshots; ``extensions`` defaults to None, a SampleExtensions or a JSON mapping."""
    if extensions is None:
        extensions = st.none() | _bundles | json_objects
    return st.builds(
        ContextSnapshot,
        run_id=run_identities,
        enrichments=st.none() | enrichments,
        conversation=st.none() | conversations,
        extensions=extensions,
        input_text=st.none() | _text,
        input_audio_duration_ms=st.none() | st.integers(min_value=0),
        topology=st.none() | _text,
        execution_mode=st.none() | _text,
        created_at=datetimes,
        metadata=json_objects,
    )


#: SampleExtensions bundles only (for comparisons with stageflow, which has no mapping extensions).
bundles = _bundles
