"""Enrichments: what the pipeline learned about the user, their history and their documents.

:class:`Enrichments` groups the optional profile, memory, documents and web
results that enrichment stages attach to a
:class:`~stageflow_trio.context.ContextSnapshot`. All containers are
deep-frozen; ``to_dict`` returns fresh plain dicts and lists.
"""

from __future__ import annotations

from ._enrichments import DocumentEnrichment as DocumentEnrichment
from ._enrichments import Enrichments as Enrichments
from ._enrichments import MemoryEnrichment as MemoryEnrichment
from ._enrichments import ProfileEnrichment as ProfileEnrichment

__all__ = ["DocumentEnrichment", "Enrichments", "MemoryEnrichment", "ProfileEnrichment"]
