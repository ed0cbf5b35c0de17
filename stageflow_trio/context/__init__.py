"""Immutable run context (snapshot, identity, conversation, enrichments) and output bags."""

from __future__ import annotations

from .bag import ContextBag as ContextBag
from .bag import DataConflictError as DataConflictError
from .context_snapshot import ContextSnapshot as ContextSnapshot
from .conversation import Conversation as Conversation
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
    "ContextBag",
    "ContextSnapshot",
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
]
