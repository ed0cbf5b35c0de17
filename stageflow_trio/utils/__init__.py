"""Small shared utilities: the read-only containers the library hands out."""

from __future__ import annotations

from .frozen import FrozenDict as FrozenDict
from .frozen import FrozenList as FrozenList

__all__ = ["FrozenDict", "FrozenList"]
