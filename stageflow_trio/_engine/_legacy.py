"""Running a LegacyPlan: PipelineContext in, ``dict[name, StageResult]`` out.

:class:`~stageflow_trio.pipeline.dag.StageGraph` builds the plan once (with
:func:`legacy_invoker` for each stage) and calls :func:`run_legacy` for each run.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import trio

from stageflow_trio._args import error_text
from stageflow_trio._engine._graph_errors import StageExecutionError
from stageflow_trio._engine._hints import note_not_under_trio, unsupported_result
from stageflow_trio._engine._scheduler import DagRun
from stageflow_trio._engine._stage_call import run_chain
from stageflow_trio._engine._unified_events import (
    cancel_reason,
    failure,
    terminal_event,
    wide_event_failed,
)
from stageflow_trio._groups import first_leaf, unwrap_group
from stageflow_trio._time import ended_at, monotonic, utc_now
from stageflow_trio.core.stage_enums import StageStatus
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.stages.context import (
    PipelineContext,
    StageEventTemplate,
    discards_events,
    stage_event_key,
)
from stageflow_trio.stages.result import StageResult

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from stageflow_trio._engine._plan import LegacyInvoke, LegacyPlan

logger: logging.Logger = logging.getLogger("stageflow_trio.dag")


def legacy_invoker(name: str, runner: Any) -> LegacyInvoke:
    """How to call a legacy runner: a class, an object with ``execute``, or a callable.

    Raises:
        TypeError: ``runner`` is none of these.
    """
    if isinstance(runner, type):
        return lambda ctx: runner().execute(ctx)
    execute = getattr(runner, "execute", None)
    if execute is not None and callable(execute):
        return execute  # type: ignore[no-any-return]
    if callable(runner):
        return runner  # type: ignore[no-any-return]
    raise TypeError(
        f"stage '{name}': runner must be a stage class, an object with async execute(ctx)"
        f" or an async callable, got {type(runner).__name__}"
    )


def _normalize(name: str, raw: Any, started_at: datetime, elapsed: float) -> StageResult:
    """What a legacy runner returned, as a StageResult; ``elapsed``: seconds on the run's clock.

    A StageResult the runner made is kept as it is; any other ends at
    :func:`~stageflow_trio._time.ended_at`.
    """
    if isinstance(raw, StageResult):
        return raw
    end = ended_at(started_at, elapsed)
    if isinstance(raw, StageOutput):
        return StageResult(
            name=name,
            status="failed" if raw.status is StageStatus.FAIL else "completed",
            started_at=started_at,
            ended_at=end,
            data=raw.data,
            error=raw.error,
        )
    data = raw or {}
    if not isinstance(data, dict):
        raise unsupported_result(name, raw)
    return StageResult(
        name=name,
        status="completed",
        started_at=started_at,
        ended_at=end,
        data=data,
    )


async def run_legacy(plan: LegacyPlan, ctx: PipelineContext) -> dict[str, StageResult]:
    """Run ``plan`` once; see ``StageGraph.run``. A checkpoint.

    Raises:
        StageExecutionError: an interceptor raised CriticalInterceptorError;
            the running stages are cancelled first.
    """
    started_at = utc_now()
    started = monotonic()
    run = _LegacyRun(plan, ctx)
    # ctx.mark_canceled() stops the run at once: running stages are interrupted at
    # their next checkpoint (the reference waited for the next stage to complete).
    unsubscribe = ctx.on_cancel(run.stop)
    try:
        try:
            await run.drive()
        except BaseExceptionGroup as group:
            unwrap_group(group)
    except trio.Cancelled as cancelled:
        # Interrupted from outside: record that the run ended (synchronous emits).
        _emit(
            ctx,
            "pipeline_cancelled",
            {
                "stage": "<external>",
                "reason": cancel_reason(cancelled),
                "stages_completed": sorted(run.completed),
            },
        )
        if plan.emit_pipeline_wide and plan.emitter is not None:
            _emit_pipeline_wide(plan, ctx, run.completed, started, started_at, "cancelled")
        raise
    except BaseException as error:
        # Not a stage's error (those are recorded on the run): KeyboardInterrupt
        # or SystemExit reaching the run.
        _emit(ctx, "pipeline_failed", failure(error, run.completed, _ms_since(started)))
        raise
    finally:
        unsubscribe()
    if ctx.canceled and not run.canceled:
        run.canceled = True  # canceled while its stages were running: "<external>"
    run_error = run.error
    if run_error is not None:
        # The run's frames are in the error's traceback: the run lets go of it, and
        # so does this frame once it is raised (no cycle).
        run.error = None
        try:
            _emit(ctx, "pipeline_failed", failure(run_error, run.completed, _ms_since(started)))
            if plan.emit_pipeline_wide and plan.emitter is not None:
                # As the unified graph does (the reference emits none for a failed run).
                _emit_pipeline_wide(plan, ctx, run.completed, started, started_at, "failed")
            raise run_error
        finally:
            del run_error
    completed = run.completed
    if run.canceled:
        # ctx.mark_canceled(): the run ends normally, the stages not run count as failed.
        _emit(
            ctx,
            "pipeline_cancelled",
            {
                "stage": run.canceled_after or "<external>",
                "reason": "Pipeline canceled",
                "stages_completed": sorted(completed),
            },
        )
        now = utc_now()
        for name in plan.topology.names:
            if name not in completed:
                completed[name] = StageResult(
                    name=name,
                    status="failed",
                    started_at=now,
                    ended_at=now,
                    error="Pipeline canceled",
                )
    else:
        _emit(
            ctx,
            "pipeline_completed",
            {
                "stages_completed": sorted(completed),
                "duration_ms": _ms_since(started),
            },
        )
    if plan.emit_pipeline_wide and plan.emitter is not None:
        # Cancelled, as its pipeline_cancelled says (the reference derives
        # "failed" from the stages marked failed above).
        status = "cancelled" if run.canceled else None
        _emit_pipeline_wide(plan, ctx, completed, started, started_at, status)
    return completed


def _ms_since(started: float) -> int:
    return int((monotonic() - started) * 1000)


def _emit_pipeline_wide(
    plan: LegacyPlan,
    ctx: PipelineContext,
    completed: dict[str, StageResult],
    started: float,
    started_at: datetime,
    status: str | None,
) -> None:
    emitter = plan.emitter
    assert emitter is not None
    try:
        emitter.emit_pipeline_event(
            ctx=ctx,
            stage_results=completed,
            pipeline_name=ctx.topology,
            status=status,
            duration_ms=int((monotonic() - started) * 1000),
            started_at=started_at,
        )
    except Exception as exc:  # noqa: BLE001 - a wide event must not fail the run
        wide_event_failed(emitter, None, exc)


def _emit(ctx: PipelineContext, event_type: str, data: dict[str, Any]) -> None:
    """``ctx.try_emit_event``; a broken sink is only logged.

    ``PipelineContext.try_emit_event`` lets sink errors through (as in the
    reference); here they must never fail the run or replace its outcome. Nothing is
    built for a sink that discards every event (unless the context's class has its
    own ``try_emit_event``).
    """
    if (
        discards_events(getattr(ctx, "event_sink", None))
        and getattr(type(ctx), "try_emit_event", None) is _TRY_EMIT_EVENT
    ):
        return
    try:
        ctx.try_emit_event(type=event_type, data=data)
    except Exception as exc:  # noqa: BLE001 - a broken sink must not fail the run
        logger.warning("Failed to emit %s: %s", event_type, exc)


_TRY_EMIT_EVENT = PipelineContext.try_emit_event
_RECORD_STAGE_EVENT = PipelineContext.record_stage_event


class _LegacyRun(DagRun):
    __slots__ = ("canceled", "canceled_after", "clock", "completed", "ctx", "events", "plan")

    def __init__(self, plan: LegacyPlan, ctx: PipelineContext) -> None:
        super().__init__(plan.topology, sequential=plan.topology.chain)
        # The run's trio clock, read directly (a run's clock never changes): half
        # the cost of trio.current_time(), read twice per stage.
        try:
            self.clock: trio.abc.Clock = trio.lowlevel.current_clock()
        except RuntimeError as exc:  # not in a trio run (asyncio.run, say)
            note_not_under_trio(exc)
            raise
        self.plan = plan
        self.ctx = ctx
        self.completed: dict[str, StageResult] = {}
        self.canceled = False
        # The stage after which ctx.canceled was seen (None: before any stage ran).
        self.canceled_after: str | None = None
        # The run's stage events share their ids' strings; a context class with its
        # own record_stage_event gets every event through it instead.
        self.events = (
            StageEventTemplate()
            if getattr(type(ctx), "record_stage_event", None) is _RECORD_STAGE_EVENT
            else None
        )

    def _record(self, name: str, status: str, payload: dict[str, Any] | None = None) -> None:
        """``stage.{name}.{status}``, as ``record_stage_event``; a broken sink is only logged.

        ``record_stage_event`` lets sink errors through (as in the reference); here they
        must never fail the run or lose its results. Nothing is built for a sink that
        discards every event.
        """
        ctx = self.ctx
        try:
            events = self.events
            if events is None:
                ctx.record_stage_event(stage=name, status=status, payload=payload)
                return
            sink = ctx.event_sink
            if discards_events(sink):
                return
            sink.try_emit(
                type=f"stage.{name}.{status}",
                data=events.data(stage_event_key(ctx), name, status, payload),
            )
        except Exception as exc:  # noqa: BLE001 - a broken sink must not fail the run
            logger.warning("Failed to emit stage.%s.%s: %s", name, status, exc)

    def on_started(self) -> None:
        if self.ctx.canceled:
            self.canceled = True
            self.stop()

    async def run_stage(self, name: str) -> Sequence[str]:
        ctx = self.ctx
        self.completed[name] = await self._call(name, ctx)
        if ctx.canceled:
            if not self.canceled:
                self.canceled = True
                self.canceled_after = name
            self.stop()
            return ()
        return self.release_children(name)

    async def _call(self, name: str, ctx: PipelineContext) -> StageResult:
        plan = self.plan
        # The result's started_at is the wall-clock start; its ended_at that plus the
        # time on the run's clock (see ended_at), so its duration is the clock's.
        started_at = utc_now()
        clock = self.clock
        started = clock.current_time()
        self._record(name, "started")
        invoke = plan.invokers[name]

        async def stage_run() -> StageResult:
            try:
                raw = await invoke(ctx)
            except BaseExceptionGroup as group:
                # Cancelled with an error (a task of the stage's own nursery failed
                # while it was interrupted): the error, for the chain to record, as
                # for the same stage without a nursery.
                leaf = first_leaf(group)
                if isinstance(group, Exception) or not isinstance(leaf, Exception):
                    raise
                raise leaf from group
            return _normalize(name, raw, started_at, clock.current_time() - started)

        emitter = plan.emitter if plan.emit_stage_wide else None
        try:
            result = await run_chain(name, stage_run, ctx, plan.chain, started_at, started)
        except BaseException as exc:
            elapsed = clock.current_time() - started
            event = terminal_event(exc, self.own_cancel_reason())
            if event is not None:
                status, extra = event
                self._record(name, status, {"duration_ms": int(elapsed * 1000), **extra})
            if not isinstance(exc, Exception):
                raise
            if emitter is not None:
                failed = StageResult(
                    name=name,
                    status="failed",
                    started_at=started_at,
                    ended_at=ended_at(started_at, elapsed),
                    error=error_text(exc),
                )
                try:
                    emitter.emit_stage_event(ctx=ctx, result=failed)
                except Exception as wide_exc:  # noqa: BLE001 - the stage's error is the run's
                    wide_event_failed(emitter, name, wide_exc)
            raise StageExecutionError(name, exc) from exc
        duration_ms = int((clock.current_time() - started) * 1000)
        if result.status == "failed":
            self._record(
                name,
                "failed",
                {
                    "duration_ms": duration_ms,
                    "error": result.error or "Stage returned failed status",
                },
            )
        else:
            self._record(name, "completed", {"duration_ms": duration_ms})
        if emitter is not None:
            try:
                emitter.emit_stage_event(ctx=ctx, result=result)
            except Exception as exc:  # noqa: BLE001 - a wide event must not fail the stage
                wide_event_failed(emitter, name, exc)
        return result
