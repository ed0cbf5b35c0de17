"""Running a UnifiedPlan: StageContext in, ``PipelineResults`` (name to StageOutput) out.

:class:`~stageflow_trio.pipeline.dag.UnifiedStageGraph` builds the plan once
and calls :func:`run_unified` for each run; each call drives a fresh
:class:`~stageflow_trio._engine._unified_run.UnifiedRun`, whose events and
wide events go through its ``RunReporter`` (``_unified_events.py``).
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import TYPE_CHECKING

import trio

from stageflow_trio._engine._cleanup import CleanupRegistry
from stageflow_trio._engine._unified_events import cancel_reason
from stageflow_trio._engine._unified_run import UnifiedRun
from stageflow_trio._groups import unwrap_group
from stageflow_trio._time import utc_now

logger: logging.Logger = logging.getLogger("stageflow_trio.dag")

if TYPE_CHECKING:
    from stageflow_trio._engine._plan import UnifiedPlan
    from stageflow_trio._engine._results import PipelineResults
    from stageflow_trio._engine._token import CancellationToken
    from stageflow_trio.core.stage_context import StageContext


# The unified runs the current task is inside, innermost last: a stage's tasks inherit
# it, so a graph finds the run a stage belongs to even with several runs in progress.
_active_runs: ContextVar[tuple[UnifiedRun, ...]] = ContextVar(
    "stageflow_trio_active_runs", default=()
)


def current_run(plan: UnifiedPlan, in_progress: dict[UnifiedRun, None]) -> UnifiedRun | None:
    """The innermost run of ``plan`` the calling task belongs to, or ``None``.

    Only a run still in ``in_progress`` counts: a task that outlived its run (started
    by a stage in an outside nursery) still sees it in its context, but its cleanup
    callbacks have run. ``in_progress`` is a dict (used as an ordered set): the test
    and a run's removal cost the same however many runs of the graph are in progress.
    """
    for run in reversed(_active_runs.get()):
        if run.plan is plan and run in in_progress:
            return run
    return None


async def run_unified(
    plan: UnifiedPlan,
    ctx: StageContext,
    token: CancellationToken,
    in_progress: dict[UnifiedRun, None],
) -> PipelineResults:
    """Run ``plan`` once; see ``UnifiedStageGraph.run``. A checkpoint.

    Args:
        plan: The graph's plan.
        ctx: The run's StageContext.
        token: Cancelling it stops the run.
        in_progress: The graph's runs in progress, oldest first (a dict used as an
            ordered set); this run is in it from its start until its cleanup
            callbacks have run.

    Raises:
        UnifiedStageExecutionError: a stage raised or returned FAIL.
        UnifiedPipelineCancelled: a stage returned CANCEL, or the token was cancelled.
    """
    # The wall-clock start is read only for pipeline.wide, its one reader.
    started_at = utc_now() if plan.emit_pipeline_wide else None
    run = UnifiedRun(plan, ctx, token, CleanupRegistry())
    if run.log_info:
        names = list(run.topology.names)
        logger.info(
            "UnifiedStageGraph execution started",
            extra={"event": "graph_started", "stage_count": len(names), "stages": names},
        )
    started = run.clock.current_time()
    in_progress[run] = None
    # Restored with set(), not reset(token): the token would be one more object per
    # run in flight for the garbage collector to walk; ``outer`` is the caller's own
    # value (usually the shared empty tuple), and the runs nest, so set() restores it.
    outer = _active_runs.get()
    _active_runs.set((*outer, run))
    try:
        try:
            await run.drive()
        except BaseExceptionGroup as group:
            unwrap_group(group)
    except trio.Cancelled as cancelled:
        # Interrupted from outside (an outer deadline or scope): the run still gets
        # its terminal events. Both emits are synchronous, so they cannot block.
        by_stage = run.cancelled  # a stage's cancel, then the scope: the stage's is the cause
        if by_stage is not None:
            run.report.pipeline_cancelled(by_stage.stage, by_stage.reason, run.finalized)
        else:
            run.report.pipeline_cancelled(
                "<external>", cancel_reason(cancelled), run.finalized, from_outside=True
            )
        if started_at is not None:
            run.report.emit_pipeline_wide(started_at, started, status="cancelled")
        raise
    except BaseException as error:
        # Not a stage's error (those are recorded on the run): KeyboardInterrupt
        # or SystemExit reaching the run.
        if run.event_sink is not None:
            run.report.pipeline_failed(error, run.finalized, started)
        raise
    finally:
        run.unbind_token()
        if run.retries is not None and run.attempts:
            run.clear_attempt_marks()  # guard retries marked re-runs for the chain
        try:
            if run.registry.pending_count:
                # Shielded as a whole (each callback is bounded by its share of the
                # timeout), so a pending outer cancel cannot replace the run's outcome.
                with trio.CancelScope(shield=True):
                    await run.registry.run_all(timeout=plan.cleanup_timeout)
        finally:
            # Only now: a cleanup callback may still register another one.
            del in_progress[run]
            _active_runs.set(outer)
    if started_at is not None:
        if run.was_cancelled:
            status = "cancelled"
        elif run.error is None and run.finished:
            status = "completed"
        else:  # a stage's error, or a deadlock
            status = "failed"
        run.report.emit_pipeline_wide(started_at, started, status=status)
    if run.event_sink is None or run.report.silent:
        # Nothing was reported per stage, so no pipeline-level terminal event either
        # (with a sink that keeps nothing, none is built).
        results = run.outcome()
    else:
        results = run.reported_outcome(started)
    if run.log_info:
        logger.info(
            "UnifiedStageGraph execution completed",
            extra={
                "event": "graph_completed",
                "stages_completed": list(results),
                "stage_count": len(results),
            },
        )
    return results
