"""Wide events: one structured event per stage (``stage.wide``) or per run (``pipeline.wide``).

Both are emitted with the context's ``event_sink.try_emit``, so they never
block a stage. Ids are strings or ``None``; timestamps ISO 8601.
"""

from __future__ import annotations

from ._wide_events import WideEventEmitter as WideEventEmitter
from ._wide_events import emit_pipeline_wide_event as emit_pipeline_wide_event
from ._wide_events import emit_stage_wide_event as emit_stage_wide_event

__all__ = ["WideEventEmitter", "emit_pipeline_wide_event", "emit_stage_wide_event"]
