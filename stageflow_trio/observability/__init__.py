"""Observability: wide events (one structured event per stage or per run)."""

from __future__ import annotations

from .wide_events import WideEventEmitter as WideEventEmitter
from .wide_events import emit_pipeline_wide_event as emit_pipeline_wide_event
from .wide_events import emit_stage_wide_event as emit_stage_wide_event

__all__ = ["WideEventEmitter", "emit_pipeline_wide_event", "emit_stage_wide_event"]
