"""The Stage protocol: what every stage implementation provides."""

from __future__ import annotations

from ._stage_protocol import Stage as Stage

__all__ = ["Stage"]
