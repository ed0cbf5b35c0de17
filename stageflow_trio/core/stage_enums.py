"""What kind of work a stage does, and how a stage run ended."""

from __future__ import annotations

from ._stage_enums import StageKind as StageKind
from ._stage_enums import StageStatus as StageStatus

__all__ = ["StageKind", "StageStatus"]
