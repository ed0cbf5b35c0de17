"""Wide events: one structured event per stage (``stage.wide``) or per run (``pipeline.wide``).

Both are emitted with the context's ``event_sink.try_emit``, so they never
block a stage, and never fail one: an error while building or emitting a wide
event (a sink whose ``try_emit`` raises) is logged as a warning on the
``stageflow_trio.wide_events`` logger and the run goes on. The graphs log a
subclass's ``emit_*`` override that raises the same way (one writer of that
record: the engine's ``log_wide_failure``). Ids are
strings or ``None``; timestamps ISO 8601.

Arguments of the wrong type are a caller's bug, not a sink failure: every
function here raises TypeError naming the parameter, at the call, before
anything is built or emitted.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from stageflow_trio._args import type_of
from stageflow_trio._engine._unified_events import log_wide_failure
from stageflow_trio._time import utc_now
from stageflow_trio.stages.result import StageResult

if TYPE_CHECKING:
    from stageflow_trio.stages.context import PipelineContext

__all__ = ["WideEventEmitter", "emit_pipeline_wide_event", "emit_stage_wide_event"]

logger: logging.Logger = logging.getLogger("stageflow_trio.wide_events")


def _str_or_none(value: object) -> str | None:
    return str(value) if value else None


def _context_metadata(ctx: PipelineContext) -> dict[str, Any]:
    return {
        "pipeline_run_id": _str_or_none(ctx.pipeline_run_id),
        "request_id": _str_or_none(ctx.request_id),
        "session_id": _str_or_none(ctx.session_id),
        "user_id": _str_or_none(ctx.user_id),
        "org_id": _str_or_none(ctx.org_id),
        "topology": ctx.topology,
        "execution_mode": ctx.execution_mode,
        "service": ctx.service,
    }


def _millis(started_at: datetime, ended_at: datetime) -> int:
    return int((ended_at - started_at).total_seconds() * 1000)


def _summary(result: StageResult) -> dict[str, Any]:
    return {
        "stage": result.name,
        "status": result.status,
        "started_at": result.started_at.isoformat(),
        "ended_at": result.ended_at.isoformat(),
        "duration_ms": _millis(result.started_at, result.ended_at),
        "error": result.error,
        "data_keys": sorted(result.data.keys()),
    }


_MISSING: Any = object()


def _check_common(where: str, ctx: object, extra: object) -> None:
    # ctx is duck-typed (the reference accepts any object with the context's ids and
    # an event_sink), so only the attribute every payload needs is checked.
    if getattr(ctx, "event_sink", _MISSING) is _MISSING:
        raise TypeError(f"{where}: ctx must be a PipelineContext; got {type_of(ctx)}")
    if extra is not None and not isinstance(extra, Mapping):
        raise TypeError(f"{where}: extra must be a mapping or None; got {type_of(extra)}")


def _check_stage_args(where: str, ctx: object, result: object, extra: object) -> None:
    _check_common(where, ctx, extra)
    if not isinstance(result, StageResult):
        raise TypeError(f"{where}: result must be a StageResult; got {type_of(result)}")


def _check_pipeline_args(
    where: str,
    ctx: object,
    stage_results: object,
    pipeline_name: object,
    status: object,
    duration_ms: object,
    started_at: object,
    extra: object,
) -> None:
    _check_common(where, ctx, extra)
    if not isinstance(stage_results, Mapping):
        raise TypeError(
            f"{where}: stage_results must be a mapping of stage name to StageResult; "
            f"got {type_of(stage_results)}"
        )
    for name, result in stage_results.items():
        if not isinstance(result, StageResult):
            raise TypeError(
                f"{where}: stage_results[{name!r}] must be a StageResult; got {type_of(result)}"
            )
    for param, value in (("pipeline_name", pipeline_name), ("status", status)):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{where}: {param} must be a str or None; got {type_of(value)}")
    if duration_ms is not None and (type(duration_ms) is bool or not isinstance(duration_ms, int)):
        raise TypeError(f"{where}: duration_ms must be an int or None; got {type_of(duration_ms)}")
    if started_at is not None:
        if not isinstance(started_at, datetime):
            raise TypeError(
                f"{where}: started_at must be a datetime or None; got {type_of(started_at)}"
            )
        if started_at.utcoffset() is None:
            # It is subtracted from the current UTC time.
            raise ValueError(f"{where}: started_at must be timezone-aware; got a naive datetime")


def _check_emitter(where: str, emitter: object) -> None:
    if emitter is not None and not isinstance(emitter, WideEventEmitter):
        raise TypeError(
            f"{where}: emitter must be a WideEventEmitter or None; got {type_of(emitter)}"
        )


def _event_type(_: object, attribute: attrs.Attribute[str], value: object) -> None:
    # Checked at construction and on assignment: a sink sees it only at the first event.
    if type(value) is not str:
        raise TypeError(
            f"WideEventEmitter: {attribute.name} must be a str; got {type(value).__name__}"
        )
    if not value:
        raise ValueError(f"WideEventEmitter: {attribute.name} must not be empty")


@attrs.define
class WideEventEmitter:
    """Builds and emits wide events; one instance may be shared by many graphs.

    Args:
        stage_event_type: Event type of per-stage events.
        pipeline_event_type: Event type of per-run events.

    Raises:
        TypeError: an event type is not a str.
        ValueError: an event type is empty.

    The ``emit_*`` and ``build_*`` methods raise TypeError (``ValueError`` for a
    naive ``started_at``) naming the parameter when an argument has the wrong type.
    """

    stage_event_type: str = attrs.field(default="stage.wide", validator=_event_type)
    pipeline_event_type: str = attrs.field(default="pipeline.wide", validator=_event_type)

    def emit_stage_event(
        self,
        *,
        ctx: PipelineContext,
        result: StageResult,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Emit ``stage.wide`` for ``result`` through ``ctx.event_sink.try_emit``.

        A failure to build or emit is logged, never raised (see the module
        docstring); only arguments of the wrong type raise TypeError.
        """
        _check_stage_args("emit_stage_event", ctx, result, extra)
        try:
            if type(self).build_stage_payload is WideEventEmitter.build_stage_payload:
                payload = _stage_payload(ctx, result, extra)  # checked above, not again
            else:  # a subclass's own payload
                payload = self.build_stage_payload(ctx=ctx, result=result, extra=extra)
            ctx.event_sink.try_emit(type=self.stage_event_type, data=payload)
        except Exception as exc:  # noqa: BLE001 - observability must not fail the run
            log_wide_failure(self.stage_event_type, result.name, exc)

    def emit_pipeline_event(
        self,
        *,
        ctx: PipelineContext,
        stage_results: Mapping[str, StageResult],
        pipeline_name: str | None = None,
        status: str | None = None,
        duration_ms: int | None = None,
        started_at: datetime | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Emit ``pipeline.wide`` summarizing ``stage_results``.

        A failure to build or emit is logged, never raised (see the module
        docstring); only arguments of the wrong type raise TypeError (ValueError
        for a naive ``started_at``). Without ``duration_ms``, the duration is
        measured from ``started_at`` on the wall clock (see
        :meth:`build_pipeline_payload`).
        """
        _check_pipeline_args(
            "emit_pipeline_event",
            ctx,
            stage_results,
            pipeline_name,
            status,
            duration_ms,
            started_at,
            extra,
        )
        try:
            if type(self).build_pipeline_payload is WideEventEmitter.build_pipeline_payload:
                # Checked above, not again.
                payload = _pipeline_payload(
                    ctx, stage_results, pipeline_name, status, duration_ms, started_at, extra
                )
            else:  # a subclass's own payload
                payload = self.build_pipeline_payload(
                    ctx=ctx,
                    stage_results=stage_results,
                    pipeline_name=pipeline_name,
                    status=status,
                    duration_ms=duration_ms,
                    started_at=started_at,
                    extra=extra,
                )
            ctx.event_sink.try_emit(type=self.pipeline_event_type, data=payload)
        except Exception as exc:  # noqa: BLE001 - observability must not fail the run
            log_wide_failure(self.pipeline_event_type, None, exc)

    @staticmethod
    def build_stage_payload(
        *,
        ctx: PipelineContext,
        result: StageResult,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The ``stage.wide`` payload: context metadata, the stage summary, ``extra``."""
        _check_stage_args("build_stage_payload", ctx, result, extra)
        return _stage_payload(ctx, result, extra)

    @staticmethod
    def build_pipeline_payload(
        *,
        ctx: PipelineContext,
        stage_results: Mapping[str, StageResult],
        pipeline_name: str | None = None,
        status: str | None = None,
        duration_ms: int | None = None,
        started_at: datetime | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The ``pipeline.wide`` payload.

        ``pipeline_name`` falls back to ``ctx.topology``, then ``"pipeline"``;
        ``status`` to ``"failed"`` when any stage failed, else ``"completed"``.

        ``duration_ms`` is written as given; the graphs give the run's time on
        trio's clock (exact under ``MockClock``). When it is None and
        ``started_at`` is given, it is measured here, as in the reference, on
        the wall clock: ``datetime.now(UTC) - started_at`` in milliseconds,
        rounded toward zero. That is the only clock a bare datetime can be read
        against, so it follows the wall clock's steps (negative if it steps back
        past ``started_at``) and does not move under ``MockClock``; pass
        ``duration_ms`` (e.g. ``int((trio.current_time() - start) * 1000)``) for
        the graphs' measure. Neither given: None.
        """
        _check_pipeline_args(
            "build_pipeline_payload",
            ctx,
            stage_results,
            pipeline_name,
            status,
            duration_ms,
            started_at,
            extra,
        )
        return _pipeline_payload(
            ctx, stage_results, pipeline_name, status, duration_ms, started_at, extra
        )


def _stage_payload(
    ctx: PipelineContext, result: StageResult, extra: Mapping[str, Any] | None
) -> dict[str, Any]:
    """``build_stage_payload`` for arguments already checked."""
    payload = {**_context_metadata(ctx), **_summary(result)}
    if extra:
        payload["extra"] = dict(extra)
    return payload


def _pipeline_payload(
    ctx: PipelineContext,
    stage_results: Mapping[str, StageResult],
    pipeline_name: str | None,
    status: str | None,
    duration_ms: int | None,
    started_at: datetime | None,
    extra: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """``build_pipeline_payload`` for arguments already checked."""
    if duration_ms is None and started_at is not None:
        duration_ms = _millis(started_at, utc_now())
    details = [_summary(result) for result in stage_results.values()]
    if not status:
        status = "failed" if any(d["status"] == "failed" for d in details) else "completed"
    payload: dict[str, Any] = {
        **_context_metadata(ctx),
        "pipeline_name": pipeline_name or ctx.topology or "pipeline",
        "status": status,
        "duration_ms": duration_ms,
        "stage_counts": dict(Counter(result.status for result in stage_results.values())),
        "stage_details": details,
    }
    if extra:
        payload["extra"] = dict(extra)
    return payload


def emit_stage_wide_event(
    *,
    ctx: PipelineContext,
    result: StageResult,
    emitter: WideEventEmitter | None = None,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Emit ``stage.wide`` with ``emitter`` (a default one when omitted)."""
    _check_emitter("emit_stage_wide_event", emitter)
    (emitter or WideEventEmitter()).emit_stage_event(ctx=ctx, result=result, extra=extra)


def emit_pipeline_wide_event(
    *,
    ctx: PipelineContext,
    stage_results: Mapping[str, StageResult],
    emitter: WideEventEmitter | None = None,
    pipeline_name: str | None = None,
    status: str | None = None,
    duration_ms: int | None = None,
    started_at: datetime | None = None,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Emit ``pipeline.wide`` with ``emitter`` (a default one when omitted).

    Without ``duration_ms``, the duration is measured from ``started_at`` on the
    wall clock (see :meth:`WideEventEmitter.build_pipeline_payload`); the graphs
    pass one measured on trio's clock.
    """
    _check_emitter("emit_pipeline_wide_event", emitter)
    (emitter or WideEventEmitter()).emit_pipeline_event(
        ctx=ctx,
        stage_results=stage_results,
        pipeline_name=pipeline_name,
        status=status,
        duration_ms=duration_ms,
        started_at=started_at,
        extra=extra,
    )
