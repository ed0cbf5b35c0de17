"""A write-once key/value store that refuses to let two stages write one key.

Legacy: neither graph uses it, as in the reference.
"""

from __future__ import annotations

from ._bag import ContextBag as ContextBag
from ._bag import DataConflictError as DataConflictError

__all__ = ["ContextBag", "DataConflictError"]
