"""What a UnifiedStageGraph run reports: lifecycle, guard and cancellation events, wide events."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import trio
from trio import current_time

from stageflow_trio._args import error_text
from stageflow_trio._groups import first_leaf
from stageflow_trio._time import ended_at, utc_now_iso
from stageflow_trio.context.identity import id_texts
from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.stages.context import StageEventTemplate, discards_events, stage_event_key
from stageflow_trio.stages.result import StageResult

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from datetime import datetime

    from stageflow_trio._engine._plan import UnifiedPlan
    from stageflow_trio.stages.context import PipelineContext
    from stageflow_trio.stages.result import LegacyStageStatus

logger: logging.Logger = logging.getLogger("stageflow_trio.dag")
# observability.wide_events' logger, by name (see log_wide_failure).
_wide_logger: logging.Logger = logging.getLogger("stageflow_trio.wide_events")


def cancel_reason(cancelled: BaseException) -> str:
    """What interrupted a stage or a run: the cancel scope's reason, else how it was cancelled."""
    reason = getattr(cancelled, "reason", None)
    if reason:
        return str(reason)
    if getattr(cancelled, "source", None) == "deadline":
        return "deadline exceeded"
    return "cancelled"


def terminal_event(
    exc: BaseException, run_reason: str | None = None
) -> tuple[str, dict[str, Any]] | None:
    """The status and payload of the event that ends a stage which raised ``exc``; both graphs.

    Interrupted (``trio.Cancelled``): ``"cancelled"`` with the reason, which is
    ``run_reason`` when the run cancelled its own stages (see
    ``DagRun.own_cancel_reason``), else the exception's; an error:
    ``"failed"`` with its message (its class name when the message is empty, as
    in ``pipeline_failed``). A stage with a nursery of its own is interrupted with a
    group of Cancelled (its tasks' and its body's): the same event. If a task
    also failed (a cleanup that raised while cancelled), that error is what the
    run reports, so the stage ends ``"failed"`` with it. None (no event) for a
    KeyboardInterrupt-like exception, alone or as a group's chosen leaf.
    """
    if isinstance(exc, BaseExceptionGroup) and not isinstance(exc, Exception):
        exc = first_leaf(exc)
    if isinstance(exc, trio.Cancelled):
        return "cancelled", {"reason": run_reason or cancel_reason(exc)}
    if isinstance(exc, Exception):
        # An error with an empty message is named by its class, as pipeline_failed
        # names it (the reference's str(exc) sends "").
        return "failed", {"error": error_text(exc) or type(exc).__name__}
    return None


def failure(error: BaseException, finalized: Iterable[str], duration_ms: int) -> dict[str, Any]:
    """The ``pipeline_failed`` payload for the error a run raises; both graphs use it.

    A stage's error (it has ``stage`` and ``original``) names that stage and the
    original error; anything else (``KeyboardInterrupt`` reaching the run) is
    ``"<external>"``, like a cancel from outside.
    """
    stage = getattr(error, "stage", None)
    original = getattr(error, "original", None)
    if isinstance(stage, str) and isinstance(original, BaseException):
        cause: BaseException = original
    else:
        stage, cause = "<external>", error
    return {
        "stage": stage,
        "error": error_text(cause) or type(cause).__name__,
        "stages_completed": sorted(finalized),
        "duration_ms": duration_ms,
    }


def log_wide_failure(event_type: str, stage: str | None, exc: Exception) -> None:
    """Log a wide event that could not be emitted, on the ``stageflow_trio.wide_events`` logger.

    The one writer of that record: :mod:`~stageflow_trio.observability.wide_events`
    calls it for a failing sink or payload, the graphs (through
    :func:`wide_event_failed`) for an emitter that raised. ``stage`` is None for
    ``pipeline.wide``. Here, in the engine, because the engine may not import
    the observability package (a layer above it).
    """
    text = error_text(exc)  # an error whose __str__ raises is still only logged
    extra = {"event_type": event_type, "stage": stage, "error": text}
    if stage is None:
        _wide_logger.warning("Failed to emit %s: %s", event_type, text, extra=extra)
    else:
        _wide_logger.warning(
            "Failed to emit %s for stage %s: %s", event_type, stage, text, extra=extra
        )


def wide_event_failed(emitter: object, stage: str | None, exc: Exception) -> None:
    """Log a wide-event emitter's ``emit_*`` that raised in a run; both graphs call it.

    ``WideEventEmitter``'s own methods log their failures; a subclass that
    overrides them may raise, and an observability failure must not fail the run
    (the reference's legacy graph lets it). Logged under the emitter's own event
    type (the default name when it has none that is a str).
    """
    if stage is None:
        attribute, default = "pipeline_event_type", "pipeline.wide"
    else:
        attribute, default = "stage_event_type", "stage.wide"
    event_type = getattr(emitter, attribute, default)
    log_wide_failure(event_type if type(event_type) is str else default, stage, exc)


def _id(value: object) -> str | None:
    return str(value) if value else None


_TRY_EMIT_EVENT = StageContext.try_emit_event


class RunReporter:
    """The events and wide events of one unified run; the run holds one.

    Every emit goes through the run's context (``try_emit``): a slow or broken
    sink never blocks or fails a stage. Nothing is built for a sink that discards
    every event (a :class:`~stageflow_trio.events.NoOpEventSink`). The stage
    lifecycle events are those of the view's ``record_stage_event``, made from a
    per-run template (the id strings come from the snapshot identity's cache),
    without making the view when nothing else needs it.

    Args:
        plan: The graph's plan (emitter and wide-event flags).
        ctx: The run's StageContext.
        view: The PipelineContext the run was started with, if any.
    """

    __slots__ = (
        "_completed_template",
        "_ids",
        "_started_template",
        "_view",
        "base_ctx",
        "emits",
        "ended",
        "events",
        "plan",
        "silent",
        "wide",
    )

    def __init__(
        self, plan: UnifiedPlan, ctx: StageContext, view: PipelineContext | None = None
    ) -> None:
        self.plan = plan
        self.base_ctx = ctx
        # Kept only when a wide event will need them: the stage results so far.
        self.wide: dict[str, StageResult] | None = (
            {} if plan.emit_stage_wide or plan.emit_pipeline_wide else None
        )
        # A run started with a PipelineContext hands that context to interceptors.
        self._view: PipelineContext | None = view
        # Set by the run's pipeline-level terminal event, so there is exactly one
        # (a stage's cancel and an outer deadline can both end the same run).
        self.ended = False
        sink = ctx.event_sink
        # Whether stage events are built at all: a sink that keeps them.
        self.emits = sink is not None and not discards_events(sink)
        # Whether every pipeline-level event would go nowhere (see _emit): a plain
        # StageContext whose sink keeps nothing.
        self.silent = not self.emits and type(ctx).try_emit_event is _TRY_EMIT_EVENT
        self.events = StageEventTemplate()
        # (pipeline_run_id, request_id) as strings, for try_emit_event's data.
        self._ids: tuple[str | None, str | None] | None = None
        # The started / completed events' templates (status and run id in place),
        # made with self.events' template on first use: the view's event fields
        # before there is a view (see view()). Two slots rather than a tuple with
        # the sink's bound try_emit: two objects less per run in flight for the
        # garbage collector to walk (the sink is read per event instead).
        self._started_template: dict[str, Any] | None = None
        self._completed_template: dict[str, Any] | None = None

    def view(self) -> PipelineContext:
        """The run's PipelineContext view (interceptors and wide events share it)."""
        view = self._view
        if view is None:
            # The snapshot goes into the view's data, where the hardening
            # interceptors look for it (a PipelineContext has no snapshot).
            ctx = self.base_ctx
            view = self._view = ctx.as_pipeline_context(data={"snapshot": ctx.snapshot})
        return view

    # -- wide events -----------------------------------------------------

    def record_wide(
        self,
        name: str,
        status: LegacyStageStatus,
        started_at: datetime,
        elapsed: float,
        data: Mapping[str, Any],
        error: str | None,
    ) -> None:
        """Keep stage ``name``'s result for ``pipeline.wide``; emit ``stage.wide`` if asked.

        ``elapsed``: the stage's seconds on the run's clock (see
        :func:`~stageflow_trio._time.ended_at`), so the wide event's duration is the
        clock's, as the stage's ``duration_ms`` is.
        """
        result = StageResult(
            name=name,
            status=status,
            started_at=started_at,
            ended_at=ended_at(started_at, elapsed),
            data=dict(data),
            error=error,
        )
        assert self.wide is not None
        self.wide[name] = result
        emitter = self.plan.emitter
        if self.plan.emit_stage_wide and emitter is not None:
            view = self.view()
            try:
                emitter.emit_stage_event(ctx=view, result=result)
            except Exception as exc:  # noqa: BLE001 - a wide event must not fail the stage
                wide_event_failed(emitter, name, exc)

    def emit_pipeline_wide(self, started_at: datetime, started: float, *, status: str) -> None:
        """``pipeline.wide`` for the run, whose ``status`` is completed, failed or cancelled.

        The status is passed, as 1.2.0's graph passes it: an emitter of one's own
        then need not derive it from the stage results as ``WideEventEmitter`` does.
        """
        emitter = self.plan.emitter
        wide = self.wide
        # Called only for a plan that emits pipeline.wide, and the graph gives such a
        # plan an emitter (a default one when none was passed), so the results are kept.
        assert emitter is not None
        assert wide is not None
        view = self.view()
        try:
            emitter.emit_pipeline_event(
                ctx=view,
                stage_results=wide,
                pipeline_name=self.plan.pipeline_name or view.topology,
                status=status,
                duration_ms=int((current_time() - started) * 1000),
                started_at=started_at,
            )
        except Exception as exc:  # noqa: BLE001 - a wide event must not fail the run
            wide_event_failed(emitter, None, exc)

    # -- events ----------------------------------------------------------

    def _emit(self, event_type: str, data: dict[str, Any]) -> None:
        """``base_ctx.try_emit_event``, with the id strings from the snapshot identity's cache.

        A context class's own ``try_emit_event`` that raises is only logged, as a
        broken sink is: a pipeline-level event must not fail the run or replace its
        outcome (the legacy graph's ``_emit`` does the same).
        """
        ctx = self.base_ctx
        if type(ctx).try_emit_event is not _TRY_EMIT_EVENT or ctx.event_sink is None:
            try:
                ctx.try_emit_event(type=event_type, data=data)
            except Exception as exc:  # noqa: BLE001 - emission is best-effort by contract
                logger.warning("Failed to emit event %s: %s", event_type, exc)
            return
        if not self.emits:
            return
        ids = self._ids
        if ids is None:
            texts = id_texts(ctx.snapshot.run_id)
            ids = self._ids = (texts["pipeline_run_id"], texts["request_id"])
        enriched = {
            "pipeline_run_id": ids[0],
            "request_id": ids[1],
            "execution_mode": ctx.snapshot.execution_mode,
            **data,
        }
        try:
            ctx.event_sink.try_emit(type=event_type, data=enriched)
        except Exception as exc:  # noqa: BLE001 - emission is best-effort by contract
            logger.warning("Failed to emit event %s: %s", event_type, exc)

    def guard(self, event: str, payload: dict[str, Any]) -> None:
        """``guard_retry.{event}``."""
        self._emit(f"guard_retry.{event}", payload)

    def pipeline_cancelled(
        self, stage: str, reason: str, finalized: Iterable[str], *, from_outside: bool = False
    ) -> None:
        """``pipeline_cancelled``, listing the stages that had finished.

        ``from_outside``: the caller's scope or deadline interrupted the run, which
        the log must not put down to a CancellationToken (both are ``"<external>"``).
        """
        if self.ended:
            return
        self.ended = True
        if from_outside:
            logger.info(
                "Pipeline cancelled from outside: %s",
                reason,
                extra={"event": "pipeline_cancelled_external", "reason": reason},
            )
        elif stage == "<external>":
            logger.info(
                "Pipeline cancelled via token: %s",
                reason,
                extra={"event": "pipeline_cancelled_token", "reason": reason},
            )
        elif logger.isEnabledFor(logging.INFO):
            logger.info(
                "Pipeline cancelled by stage %s: %s",
                stage,
                reason,
                extra={
                    "event": "pipeline_cancelled",
                    "stage": stage,
                    "reason": reason,
                    "stages_completed": sorted(finalized),
                },
            )
        self._emit(
            "pipeline_cancelled",
            {"stage": stage, "reason": reason, "stages_completed": sorted(finalized)},
        )

    def pipeline_completed(self, finalized: Iterable[str], started: float) -> None:
        """``pipeline_completed``; ``started`` is the run's start on the trio clock."""
        if self.ended:
            return
        self.ended = True
        self._emit(
            "pipeline_completed",
            {
                "stages_completed": sorted(finalized),
                "duration_ms": int((current_time() - started) * 1000),
            },
        )

    def pipeline_failed(
        self, error: BaseException, finalized: Iterable[str], started: float
    ) -> None:
        """``pipeline_failed`` for the error the run raises (a stage's, or one from outside)."""
        if self.ended:
            return
        self.ended = True
        duration_ms = int((current_time() - started) * 1000)
        self._emit("pipeline_failed", failure(error, finalized, duration_ms))

    def skipped(
        self, stage_ctx: StageContext, name: str, reason: Any, duration_ms: int | None
    ) -> None:
        """``stage.{name}.skipped`` (nothing without a sink that keeps events)."""
        sink = self.base_ctx.event_sink
        if sink is None or not self.emits:
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

    def _prime(self) -> None:
        """Prime :attr:`events` with the view's event fields, as as_pipeline_context makes them.

        The ids' strings come from the snapshot's identity, which keeps them: a
        snapshot run many times makes them once. Primed without a key: the events
        sent through a view later (:meth:`lifecycle`) prime it again from the
        view's fields, once.
        """
        snapshot = self.base_ctx.snapshot
        texts = id_texts(snapshot.run_id)
        self.events.prime_fields(
            "pipeline",
            snapshot.topology,
            snapshot.execution_mode,
            texts["request_id"],
            texts["session_id"],
            texts["user_id"],
            texts["org_id"],
            texts["pipeline_run_id"],
        )

    def _templates(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Prime the run's templates; its ``(started template, completed template)``.

        See :meth:`started`.
        """
        self._prime()
        events = self.events
        started = self._started_template = events.for_status("started", timed=False)
        completed = self._completed_template = events.for_status("completed", timed=True)
        return started, completed

    def started(self, name: str) -> None:
        """``stage.{name}.started``: what ``lifecycle(name, "started")`` sends.

        The events most runs send (this one and :meth:`completed`) are copies of
        templates made once per run, with the stage, the time and the duration
        written in. Once there is a view, :meth:`lifecycle` sends them (an
        interceptor may change the view's fields). Called only when :attr:`emits`.
        """
        if self._view is not None:
            self.lifecycle(name, "started")
            return
        try:
            data = (self._started_template or self._templates()[0]).copy()
            data["stage"] = name
            data["timestamp"] = utc_now_iso()
            sink = self.base_ctx.event_sink
            assert sink is not None  # emits: a sink that keeps events
            try_emit = sink.try_emit
            try_emit(type=self.plan.event_types[name][0], data=data)
        except Exception as exc:  # noqa: BLE001 - a broken sink must not fail the stage
            logger.warning("Failed to emit stage.%s.started: %s", name, exc)

    def completed(self, name: str, duration_ms: int) -> None:
        """``stage.{name}.completed``: what ``lifecycle(name, "completed", None, duration_ms)`` sends.

        See :meth:`started`. Called only when :attr:`emits`.
        """
        if self._view is not None:
            self.lifecycle(name, "completed", None, duration_ms)
            return
        try:
            data = (self._completed_template or self._templates()[1]).copy()
            data["stage"] = name
            data["timestamp"] = utc_now_iso()
            data["duration_ms"] = duration_ms
            sink = self.base_ctx.event_sink
            assert sink is not None  # emits: a sink that keeps events
            try_emit = sink.try_emit
            try_emit(type=self.plan.event_types[name][1], data=data)
        except Exception as exc:  # noqa: BLE001 - a broken sink must not fail the stage
            logger.warning("Failed to emit stage.%s.completed: %s", name, exc)

    def lifecycle(
        self,
        name: str,
        status: str,
        extra: dict[str, Any] | None = None,
        duration_ms: int | None = None,
    ) -> None:
        """``stage.{name}.{status}``: the data the view's ``record_stage_event`` would send.

        The payload is ``duration_ms`` (when given), then ``extra``. Sent to the
        view's sink once there is a view (an interceptor may change its fields),
        else to the run's sink with the fields the view would have. Called only
        when :attr:`emits`.
        """
        try:
            view = self._view
            if view is None:
                # The fields come from the run's frozen snapshot: primed once, they hold.
                if self._started_template is None:
                    self._templates()
                data = self.events.fill(name, status, extra, duration_ms)
                sink = self.base_ctx.event_sink
            else:
                data = self.events.data(stage_event_key(view), name, status, extra, duration_ms)
                sink = view.event_sink
            assert sink is not None
            sink.try_emit(type=f"stage.{name}.{status}", data=data)
        except Exception as exc:  # noqa: BLE001 - a broken sink must not fail the stage
            logger.warning("Failed to emit stage.%s.%s: %s", name, status, exc)
