"""Immutable run context (snapshot, identity, conversation, enrichments), output bags, ENRICH helpers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stageflow_trio._lazy import lazy_exports

if TYPE_CHECKING:
    from .bag import ContextBag as ContextBag
    from .bag import DataConflictError as DataConflictError
    from .context_snapshot import ContextSnapshot as ContextSnapshot
    from .conversation import Conversation as Conversation
    from .enrich import ConflictDetector as ConflictDetector
    from .enrich import ConflictResolution as ConflictResolution
    from .enrich import ContextUtilization as ContextUtilization
    from .enrich import TruncationEvent as TruncationEvent
    from .enrich import TruncationTracker as TruncationTracker
    from .enrich import VersionMetadata as VersionMetadata
    from .enrichments import DocumentEnrichment as DocumentEnrichment
    from .enrichments import Enrichments as Enrichments
    from .enrichments import MemoryEnrichment as MemoryEnrichment
    from .enrichments import ProfileEnrichment as ProfileEnrichment
    from .extensions import ExtensionBundle as ExtensionBundle
    from .identity import RunIdentity as RunIdentity
    from .output_bag import OutputBag as OutputBag
    from .output_bag import OutputConflictError as OutputConflictError
    from .output_bag import OutputEntry as OutputEntry
    from .types import Message as Message
    from .types import RoutingDecision as RoutingDecision

__all__ = [
    "ConflictDetector",
    "ConflictResolution",
    "ContextBag",
    "ContextSnapshot",
    "ContextUtilization",
    "Conversation",
    "DataConflictError",
    "DocumentEnrichment",
    "Enrichments",
    "ExtensionBundle",
    "MemoryEnrichment",
    "Message",
    "OutputBag",
    "OutputConflictError",
    "OutputEntry",
    "ProfileEnrichment",
    "RoutingDecision",
    "RunIdentity",
    "TruncationEvent",
    "TruncationTracker",
    "VersionMetadata",
]

# Hidden from type checkers, which read the imports above: a visible module
# __getattr__ would make every misspelt name `Any` instead of an error.
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            ".bag": "ContextBag DataConflictError",
            ".context_snapshot": "ContextSnapshot",
            ".conversation": "Conversation",
            ".enrich": (
                "ConflictDetector ConflictResolution ContextUtilization TruncationEvent "
                "TruncationTracker VersionMetadata"
            ),
            ".enrichments": "DocumentEnrichment Enrichments MemoryEnrichment ProfileEnrichment",
            ".extensions": "ExtensionBundle",
            ".identity": "RunIdentity",
            ".output_bag": "OutputBag OutputConflictError OutputEntry",
            ".types": "Message RoutingDecision",
        },
    )
