"""What a UnifiedStageGraph run reports: lifecycle, guard and cancellation events, wide events."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from trio import current_time

from stageflow_trio._engine._scheduler import DagRun
from stageflow_trio._time import utc_now
from stageflow_trio.stages.result import StageResult

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from stageflow_trio._engine._graph_types import UnifiedPipelineCancelled
    from stageflow_trio._engine._token import CancellationToken
    from stageflow_trio._engine._unified import UnifiedStageGraph
    from stageflow_trio.context.context_snapshot import ContextSnapshot
    from stageflow_trio.core.stage_context import StageContext
    from stageflow_trio.core.stage_output import StageOutput
    from stageflow_trio.events.sink import EventSink
    from stageflow_trio.stages.context import PipelineContext
    from stageflow_trio.stages.result import LegacyStageStatus

logger = logging.getLogger("stageflow_trio.dag")


def _id(value: object) -> str | None:
    return str(value) if value else None


class _RunEvents(DagRun):
    """The reporting half of a unified run; ``_UnifiedRun`` holds the state below."""

    # The view is built here on first use; the rest belongs to _UnifiedRun.
    __slots__ = ("pipeline_ctx",)

    graph: UnifiedStageGraph
    base_ctx: StageContext
    snapshot: ContextSnapshot[Any]
    event_sink: EventSink | None
    token: CancellationToken
    cancelled: UnifiedPipelineCancelled | None
    completed: dict[str, StageOutput]
    finalized: set[str]
    pipeline_ctx: PipelineContext | None
    wide_results: dict[str, StageResult] | None

    # -- wide events -----------------------------------------------------

    def _view(self) -> PipelineContext:
        """The run's PipelineContext view (interceptors and wide events share it)."""
        view = self.pipeline_ctx
        if view is None:
            # The snapshot goes into the view's data, where the hardening
            # interceptors look for it (a PipelineContext has no snapshot).
            view = self.pipeline_ctx = self.base_ctx.as_pipeline_context(
                data={"snapshot": self.snapshot}
            )
        return view

    def _record_wide(
        self,
        name: str,
        status: LegacyStageStatus,
        started_at: datetime,
        data: Mapping[str, Any],
        error: str | None,
    ) -> None:
        result = StageResult(
            name=name,
            status=status,
            started_at=started_at,
            ended_at=utc_now(),
            data=dict(data),
            error=error,
        )
        assert self.wide_results is not None
        self.wide_results[name] = result
        emitter = self.graph._wide_event_emitter
        if self.graph._emit_stage_wide and emitter is not None:
            emitter.emit_stage_event(ctx=self._view(), result=result)

    def emit_pipeline_wide(self, started_at: datetime, started: float) -> None:
        """``pipeline.wide`` for this run: ``cancelled`` when a stage or the token stopped it."""
        emitter = self.graph._wide_event_emitter
        if emitter is None or self.wide_results is None:
            return
        cancelled = self.error is None and (self.cancelled is not None or self.token.is_cancelled)
        view = self._view()
        emitter.emit_pipeline_event(
            ctx=view,
            stage_results=self.wide_results,
            pipeline_name=view.topology,
            status="cancelled" if cancelled else None,
            duration_ms=int((current_time() - started) * 1000),
            started_at=started_at,
        )

    # -- events ----------------------------------------------------------

    def _emit_guard(self, event: str, payload: dict[str, Any]) -> None:
        self.base_ctx.try_emit_event(type=f"guard_retry.{event}", data=payload)

    def _emit_pipeline_cancelled(self, stage: str, reason: str) -> None:
        logger.info("Pipeline cancelled by %s: %s", stage, reason)
        self.base_ctx.try_emit_event(
            type="pipeline_cancelled",
            data={"stage": stage, "reason": reason, "stages_completed": sorted(self.finalized)},
        )

    def _emit_skipped(
        self, stage_ctx: StageContext, name: str, reason: Any, duration_ms: int | None
    ) -> None:
        sink = self.event_sink
        if sink is None:
            return
        data: dict[str, Any] = {"stage": name, "reason": reason}
        if duration_ms is not None:
            data["duration_ms"] = duration_ms
        data["pipeline_run_id"] = _id(stage_ctx.pipeline_run_id)
        data["request_id"] = _id(stage_ctx.request_id)
        try:
            sink.try_emit(type=f"stage.{name}.skipped", data=data)
        except Exception as exc:  # noqa: BLE001 - a broken sink must not fail the stage
            logger.warning("Failed to emit stage.%s.skipped: %s", name, exc)

    def _emit_lifecycle(self, name: str, status: str, extra: Mapping[str, Any] | None) -> None:
        """``stage.{name}.{status}``, built by the legacy graph's own ``record_stage_event``."""
        if self.event_sink is None:
            return
        try:
            self._view().record_stage_event(
                stage=name, status=status, payload=dict(extra) if extra else None
            )
        except Exception as exc:  # noqa: BLE001 - a broken sink must not fail the stage
            logger.warning("Failed to emit stage.%s.%s: %s", name, status, exc)
