"""The context snapshot and the types an agent reads from it (re-exported from :mod:`stageflow_trio.context`)."""

from __future__ import annotations

from stageflow_trio.context import ContextSnapshot as ContextSnapshot
from stageflow_trio.context import DocumentEnrichment as DocumentEnrichment
from stageflow_trio.context import MemoryEnrichment as MemoryEnrichment
from stageflow_trio.context import Message as Message
from stageflow_trio.context import ProfileEnrichment as ProfileEnrichment
from stageflow_trio.context import RoutingDecision as RoutingDecision

__all__ = [
    "ContextSnapshot",
    "DocumentEnrichment",
    "MemoryEnrichment",
    "Message",
    "ProfileEnrichment",
    "RoutingDecision",
]
