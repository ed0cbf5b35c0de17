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

from ._context_snapshot import ContextSnapshot as ContextSnapshot
from ._context_snapshot import T as T

__all__ = ["ContextSnapshot", "T"]
