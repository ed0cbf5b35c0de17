"""One run of a UnifiedStageGraph: stage contexts, outcomes, guard retries.

A run reads its graph's :class:`~stageflow_trio._engine._plan.UnifiedPlan` and
reports through a :class:`~stageflow_trio._engine._unified_events.RunReporter`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import trio

from stageflow_trio._args import error_text
from stageflow_trio._engine._graph_errors import (
    UnifiedPipelineCancelled,
    UnifiedStageExecutionError,
)
from stageflow_trio._engine._guard_retry import GuardRetries
from stageflow_trio._engine._hints import (
    add_stage_failure_note,
    note_not_under_trio,
    unsupported_result,
)
from stageflow_trio._engine._results import PipelineResults
from stageflow_trio._engine._scheduler import DagRun
from stageflow_trio._engine._stage_call import STAGE_ATTEMPT_KEY, mark_not_a_completion, run_chain
from stageflow_trio._engine._unified_events import RunReporter, terminal_event
from stageflow_trio._groups import first_leaf
from stageflow_trio._time import ended_at, utc_now
from stageflow_trio.core._stage_parts import _EMPTY_DATA
from stageflow_trio.core.stage_context import (
    StageCancellationRequested,
    StageContext,
    _engine_stage_context,
)
from stageflow_trio.core.stage_enums import StageKind, StageStatus
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.core.stage_output import _build as _build_output
from stageflow_trio.core.timer import PipelineTimer
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.stages.inputs import StageInputs
from stageflow_trio.stages.result import StageResult
from stageflow_trio.utils.frozen import _freeze_dict

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime

    from stageflow_trio._engine._cleanup import CleanupRegistry
    from stageflow_trio._engine._plan import UnifiedPlan, UnifiedStage
    from stageflow_trio._engine._token import CancellationToken
    from stageflow_trio.core.stage_context import CancellationSource
    from stageflow_trio.utils.frozen import FrozenDict

logger: logging.Logger = logging.getLogger("stageflow_trio.dag")

_OK = StageStatus.OK
_SKIP = StageStatus.SKIP
_FAIL = StageStatus.FAIL
_CANCEL = StageStatus.CANCEL
_NO_ATTEMPTS: dict[str, int] = {}  # never written: runs without a chain share it


def _as_output(name: str, raw: object) -> StageOutput:
    """What a runner returned, as a StageOutput (None and dicts are accepted)."""
    if isinstance(raw, StageOutput):
        return raw
    if raw is None:
        return StageOutput.ok()
    if isinstance(raw, dict):
        return StageOutput.ok(data=raw)
    raise unsupported_result(name, raw)


# The two helpers below are functions of their own, not comprehensions in
# run_stage: a comprehension that reads a local of run_stage (or a walrus in one)
# turns it into a cell, which every in-flight stage would then hold.


def _prior_outputs(
    completed: dict[str, StageOutput], dependencies: Sequence[str]
) -> FrozenDict[str, StageOutput]:
    """The frozen outputs of ``dependencies`` that have completed, in dependency order."""
    if not dependencies:
        return _EMPTY_DATA  # a root: the shared empty FrozenDict (read-only, so shareable)
    return _freeze_dict({dep: completed[dep] for dep in dependencies if dep in completed})


def _first_skip_reason(prior: Mapping[str, StageOutput]) -> Any:
    """The first input's truthy ``skip_reason``, in dependency order; None if none has one.

    An input whose skip_reason is "" or None does not hide a later one.
    """
    for out in prior.values():
        reason = out.data.get("skip_reason")
        if reason:
            return reason
    return None


def _log_started(spec: UnifiedStage) -> None:
    kind = getattr(spec, "kind", None)
    logger.info(
        "Running stage: %s",
        spec.name,
        extra={
            "event": "stage_started",
            "stage": spec.name,
            "kind": kind.value if isinstance(kind, StageKind) else kind,
        },
    )


def _log_ended(name: str, output: StageOutput, duration_ms: int, info: bool) -> None:
    """The records of a stage that returned: completed (INFO), and failed (ERROR) for a FAIL."""
    status = output.status
    if info:
        logger.info(
            "Stage %s completed with status=%s",
            name,
            status.value,
            extra={
                "event": "stage_completed",
                "stage": name,
                "status": status.value,
                "duration_ms": duration_ms,
            },
        )
    if status is _FAIL:
        logger.error(
            "Stage %s failed: %s",
            name,
            output.error,
            extra={
                "event": "stage_failed",
                "stage": name,
                "error": output.error,
                "duration_ms": duration_ms,
            },
        )


def _log_run_failed(error: UnifiedStageExecutionError) -> None:
    """The run-level record of a stage that raised: ERROR, without a traceback.

    The stage's own record (``stage_error``) carries the traceback; a second copy
    here would print it twice (the reference's record has none either).
    """
    text = error_text(error)
    logger.error(
        "Stage task execution failed: %s",
        text,
        extra={"event": "stage_failed", "error": text},
    )


class _RunCancellation:
    """What a stage's ``is_cancelled`` reads: the run's token, then the root context's source.

    A cancelled token also cancels the run's scope, so a stage sees it as
    ``trio.Cancelled`` at its next checkpoint; this lets code that polls (stageflow
    1.2's ``ctx.is_cancelled``) see it too.
    """

    __slots__ = ("_source", "_token")

    def __init__(self, token: CancellationToken, source: CancellationSource | None) -> None:
        self._token = token
        self._source = source

    @property
    def is_canceled(self) -> bool:
        source = self._source
        return self._token.is_cancelled or (source is not None and source.is_canceled)

    @property
    def cancellation_reason(self) -> str | None:
        source = self._source
        reason = source.cancellation_reason if source is not None else None
        return reason or self._token.reason


class UnifiedRun(DagRun):
    """One run of a plan: its stage outputs, guard-retry state and outcome."""

    __slots__ = (
        "attempts",
        "cancellation",
        "cancelled",
        "clock",
        "completed",
        "direct",
        "emits",
        "event_sink",
        "finalized",
        "log_info",
        "pipeline_ctx",
        "plan",
        "ports",
        "registry",
        "report",
        "retries",
        "snapshot",
        "timer",
        "token",
    )

    def __init__(
        self,
        plan: UnifiedPlan,
        ctx: StageContext,
        token: CancellationToken,
        registry: CleanupRegistry,
    ) -> None:
        # A guard retry reruns a stage while the one that released it goes on.
        super().__init__(plan.topology, sequential=plan.topology.chain and not plan.policies)
        self.plan = plan
        # The run's trio clock, read directly (a run's clock never changes): half
        # the cost of trio.current_time(), read twice per stage.
        try:
            self.clock: trio.abc.Clock = trio.lowlevel.current_clock()
        except RuntimeError as exc:  # not in a trio run (asyncio.run, say)
            note_not_under_trio(exc)
            raise
        self.token = token
        self.registry = registry
        # A run started with a PipelineContext (directly or through a context it
        # derived): its stages follow its cancellation, its hooks run before each
        # stage, and the interceptors see it.
        source = ctx.cancellation
        self.cancellation = _RunCancellation(token, source)
        self.pipeline_ctx = source if isinstance(source, PipelineContext) else None
        self.report = report = RunReporter(plan, ctx, self.pipeline_ctx)
        self.snapshot = ctx.snapshot
        # As the reference: a context without a timer gets one for the run.
        timer = getattr(ctx, "timer", None)  # typed as required, but None is accepted
        self.timer = timer if timer is not None else PipelineTimer()
        self.event_sink = ctx.event_sink
        self.ports = ctx.inputs.ports
        # PipelineResults, as 1.2.0's graph returns: a 1.2.0 service that keeps a built
        # graph reads its results with .data() / .require_ok(); a dict subclass with
        # dict's repr and equality, so 0.9.1 code sees the plain dict it had.
        self.completed = PipelineResults()
        # The stages with their final output, in the order they got it: a dict used
        # as a set, because a dict of str keys and None values is not tracked by the
        # garbage collector (a set always is).
        self.finalized: dict[str, None] = {}
        self.retries = GuardRetries(report.guard) if plan.policies else None
        self.cancelled: UnifiedPipelineCancelled | None = None
        # Whether the run's sink keeps events (a PipelineContext's default, the
        # global NoOpEventSink, keeps none): the stage lifecycle events are sent.
        self.emits = report.emits
        # No interceptors and no wide events: run_stage calls each stage itself,
        # without the further coroutine frame of _execute.
        self.direct = plan.interceptors is None and report.wide is None
        # How many times each stage has gone through the interceptor chain in this run
        # (only the chain reads it).
        self.attempts: dict[str, int] = {} if plan.interceptors is not None else _NO_ATTEMPTS
        # Whether the per-stage INFO records are wanted: read once per run, so a run
        # with INFO off pays one attribute read per stage for them (errors are
        # always logged).
        self.log_info = logger.isEnabledFor(logging.INFO)

    # -- lifecycle -------------------------------------------------------

    def on_started(self) -> None:
        assert self.scope is not None
        # Bound, not subscribed: the binding is undone when the run ends
        # (unbind_token), so a long-lived token passed to many runs keeps no
        # reference to old ones.
        self.token._bind_run_scope(self.scope)

    def unbind_token(self) -> None:
        """Undo :meth:`on_started`'s binding (harmless if it never happened)."""
        scope = self.scope
        if scope is not None:
            self.token._unbind_run_scope(scope)

    def unrecorded_cancel_reason(self) -> str | None:
        """The token's reason when it cancelled the run (it cancels the scope itself)."""
        token = self.token
        if token.is_cancelled:
            return token.reason or "cancelled"
        return super().unrecorded_cancel_reason()

    @property
    def finished(self) -> bool:
        """Every stage has its final output (a token cancelled after that changes nothing)."""
        return len(self.finalized) == len(self.topology.names)

    @property
    def was_cancelled(self) -> bool:
        """Stopped by a CANCEL output or the token (rather than failed or completed)."""
        if self.error is not None:
            return False
        return self.cancelled is not None or (self.token.is_cancelled and not self.finished)

    def outcome(self) -> PipelineResults:
        # Called once, at the run's end. The exception it raises has this run's
        # frames in its traceback: the run lets go of it first (no cycle).
        error = self.error
        if error is not None:
            self.error = None
            try:
                raise error
            finally:
                del error
        cancelled = self.cancelled
        if cancelled is not None:
            self.report.pipeline_cancelled(cancelled.stage, cancelled.reason, self.finalized)
            self.cancelled = None
            try:
                raise cancelled
            finally:
                del cancelled
        if self.finished:
            # Complete results stand, even if the token was cancelled during cleanup.
            return self.completed
        if self.token.is_cancelled:
            reason = self.token.reason or "Cancelled via token"
            self.report.pipeline_cancelled("<external>", reason, self.finalized)
            raise UnifiedPipelineCancelled(
                stage="<external>", reason=reason, results=self.completed
            )
        pending = sorted(set(self.topology.names) - set(self.completed))
        logger.error(
            "Deadlock detected in stage graph",
            extra={"event": "deadlock", "pending_stages": pending},
        )
        raise RuntimeError(f"Deadlocked stage graph; remaining stages: {pending}")

    def reported_outcome(self, started: float) -> PipelineResults:
        """:meth:`outcome`, after the run's pipeline-level terminal event.

        A cancelled run has had its ``pipeline_cancelled`` already; a completed
        one gets ``pipeline_completed``, a failed one ``pipeline_failed``.
        ``started`` is the run's start on the trio clock.
        """
        try:
            results = self.outcome()
        except UnifiedPipelineCancelled:
            raise
        except Exception as error:
            self.report.pipeline_failed(error, self.finalized, started)
            raise
        self.report.pipeline_completed(self.finalized, started)
        return results

    # -- one stage -------------------------------------------------------

    async def run_stage(self, name: str) -> Sequence[str]:
        spec = self.plan.specs[name]
        prior = _prior_outputs(self.completed, spec.dependencies)
        inputs = StageInputs._trusted(
            self.snapshot, prior, self.ports, self.topology.dep_sets[name], name
        )
        stage_ctx = _engine_stage_context(
            self.snapshot,
            inputs,
            name,
            self.timer,
            self.event_sink,
            self.registry,
            self.cancellation,
        )
        output: StageOutput | None = None
        pipeline_ctx = self.pipeline_ctx
        if pipeline_ctx is not None and (
            pipeline_ctx.canceled or pipeline_ctx.has_before_stage_start_hooks
        ):
            if pipeline_ctx.canceled:
                # Cancelled before this stage came up. mark_canceled has cancelled the
                # run's token and scope already, so no stage comes up after it; a flag
                # set by assignment has not: the token is cancelled here, with the
                # context's reason, so the stage does not start and the run ends
                # "<external>" as after a mark, not blamed on a stage that was only
                # queued (its before-stage-start hooks not run).
                self.token.cancel(pipeline_ctx.cancellation_reason or "Cancelled")
                await trio.lowlevel.checkpoint()
            output = await self._before_start(pipeline_ctx, spec, stage_ctx)
        if self.log_info:
            _log_started(spec)
        if output is None and spec.conditional:
            skip_reason = _first_skip_reason(prior)
            if skip_reason:
                if self.log_info:
                    logger.info(
                        "Skipping conditional stage: %s",
                        name,
                        extra={"event": "stage_skipped", "stage": name, "reason": skip_reason},
                    )
                output = StageOutput.skip(reason=skip_reason)
                if self.report.wide is not None:
                    # Counted in the wide events as a stage that returned skip is.
                    self.report.record_wide(name, "completed", utc_now(), 0.0, output.data, None)
                self.report.skipped(stage_ctx, name, skip_reason, None)
        if output is None:
            if self.direct:
                # The common case, without a further coroutine frame between the
                # stage task and the stage.
                emits = self.emits
                if emits:
                    self.report.started(name)
                started = self.clock.current_time()
                try:
                    raw = await spec.runner(stage_ctx)
                    # The exact type, what nearly every stage returns, skips the call.
                    output = raw if type(raw) is StageOutput else _as_output(name, raw)
                except StageCancellationRequested as exc:
                    output = StageOutput.cancel(reason=exc.reason)
                except BaseException as exc:
                    error = self._stage_raised(name, started, exc)
                    if error is None:
                        raise
                    try:
                        raise error from exc
                    finally:
                        del error  # this frame is in its traceback: no cycle
                duration_ms = int((self.clock.current_time() - started) * 1000)
                if type(output) is StageOutput:
                    # output.with_duration(duration_ms), without its check of a
                    # duration made here.
                    output = _build_output(
                        output.status,
                        output.data,
                        output.artifacts,
                        output.events,
                        output.error,
                        duration_ms,
                        output.version,
                    )
                else:
                    output = output.with_duration(duration_ms)
                if self.log_info or output.status is _FAIL:
                    _log_ended(name, output, duration_ms, self.log_info)
                if emits:
                    if output.status is _OK:  # the common event, without a further call
                        self.report.completed(name, duration_ms)
                    else:
                        self._report_ended(stage_ctx, name, output, duration_ms)
            else:
                output = await self._execute(spec, stage_ctx)
        return self._complete(name, output)

    async def _before_start(
        self, pipeline_ctx: PipelineContext, spec: UnifiedStage, stage_ctx: StageContext
    ) -> StageOutput | None:
        """Run the context's before-stage-start hooks; a cancel output if they cancelled."""
        try:
            await pipeline_ctx.run_before_stage_start_hooks(
                stage_name=spec.name, stage_kind=getattr(spec, "kind", None), stage_ctx=stage_ctx
            )
            stage_ctx.raise_if_cancelled()
        except StageCancellationRequested as exc:
            return StageOutput.cancel(reason=exc.reason)
        return None

    async def _execute(self, spec: UnifiedStage, stage_ctx: StageContext) -> StageOutput:
        """Run one stage through the chain and report it: lifecycle and wide events."""
        name = spec.name
        report = self.report
        emits = self.emits
        if emits:
            report.started(name)
        started = self.clock.current_time()
        started_at = utc_now() if report.wide is not None else None
        try:
            if self.plan.interceptors is None:
                try:
                    output = _as_output(name, await spec.runner(stage_ctx))
                except StageCancellationRequested as exc:
                    output = StageOutput.cancel(reason=exc.reason)
            else:
                output = await self._execute_intercepted(spec, stage_ctx, started_at, started)
        except BaseException as exc:
            error = self._stage_raised(name, started, exc, started_at)
            if error is None:
                raise
            try:
                raise error from exc
            finally:
                del error  # this frame is in its traceback: no cycle
        elapsed = self.clock.current_time() - started
        duration_ms = int(elapsed * 1000)
        output = output.with_duration(duration_ms)
        if self.log_info or output.status is _FAIL:
            _log_ended(name, output, duration_ms, self.log_info)
        if started_at is not None:
            failed = output.status is _FAIL
            report.record_wide(
                name,
                "failed" if failed else "completed",
                started_at,
                elapsed,
                output.data,
                output.error,
            )
        if emits:
            self._report_ended(stage_ctx, name, output, duration_ms)
        return output

    def _stage_raised(
        self,
        name: str,
        started: float,
        exc: BaseException,
        started_at: datetime | None = None,
    ) -> UnifiedStageExecutionError | None:
        """Report stage ``name``, which raised ``exc``; what to raise instead (None: ``exc``).

        An error becomes the stage's failed wide result (when ``started_at`` is
        given) and a :class:`UnifiedStageExecutionError`, except one that already
        is (a graph the stage ran failed), which propagates as it is, as in the
        reference. With a sink that keeps events, the stage's terminal event
        (:func:`terminal_event`) in every case. The emit is synchronous
        (try_emit), so it needs no shield and cannot block.
        """
        original = exc
        elapsed = self.clock.current_time() - started
        if isinstance(exc, BaseExceptionGroup) and not isinstance(exc, Exception):
            # Cancelled with an error (a task of the stage's own nursery failed while
            # the stage was interrupted): that error is the stage's, as it would be
            # for the same stage without a nursery.
            leaf = first_leaf(exc)
            if isinstance(leaf, Exception):
                exc = leaf
        if started_at is not None and isinstance(exc, Exception):
            self.report.record_wide(name, "failed", started_at, elapsed, {}, error_text(exc))
        if self.emits:
            event = terminal_event(exc, self.own_cancel_reason())
            if event is not None:
                status, extra = event
                self.report.lifecycle(name, status, extra, int(elapsed * 1000))
        if not isinstance(exc, Exception):
            return None
        if isinstance(exc, UnifiedStageExecutionError):
            # A graph the stage ran failed: as it is (raised in place of a group).
            _log_run_failed(exc)
            return exc if exc is not original else None
        add_stage_failure_note(exc)
        text = error_text(exc)
        logger.error(
            "Stage %s failed with error: %s",
            name,
            text,
            extra={"event": "stage_error", "stage": name, "error": text},
            exc_info=exc,
        )
        error = UnifiedStageExecutionError(name, exc)
        _log_run_failed(error)
        return error

    def _report_ended(
        self, stage_ctx: StageContext, name: str, output: StageOutput, duration_ms: int
    ) -> None:
        """The terminal lifecycle event of a stage that returned (called only when emitting)."""
        report = self.report
        status = output.status
        if status is _SKIP:
            report.skipped(
                stage_ctx, name, output.data.get("reason", "Stage returned skip"), duration_ms
            )
        elif status is _FAIL:
            report.lifecycle(name, "failed", {"error": output.error or "Stage failed"}, duration_ms)
        else:
            report.completed(name, duration_ms)

    async def _execute_intercepted(
        self,
        spec: UnifiedStage,
        stage_ctx: StageContext,
        started_at: datetime | None,
        started: float,
    ) -> StageOutput:
        """Run the stage through the interceptor chain with a PipelineContext view.

        The view is made once per run, so interceptors share its ``data`` across
        stages as they do in the legacy graph. ``started`` is the call's start on
        the run's clock, ``started_at`` on the wall clock (None: not read yet). The
        results the interceptors see span the call's start to the end of the
        attempt, as in the legacy graph, their ``ended_at`` from ``started``
        (see :func:`~stageflow_trio._time.ended_at`).

        Raises:
            Exception: the stage's own error when the chain turned it into a failed
                result (its last attempt raised it): the same object, with its
                traceback, as without interceptors (stageflow 1.2 keeps it too).
            RuntimeError: the call failed otherwise (a timeout, a short-circuit
                with an error such as an open circuit breaker), with its message;
                also for a graph the stage ran that failed, so the run names this
                stage (as stageflow 1.2 does with interceptors).
        """
        name = spec.name
        chain = self.plan.chain
        assert chain is not None
        produced: list[tuple[StageResult, StageOutput]] = []
        view = self.report.view()
        # A guard retry runs a stage again in this run: mark it as a new attempt for
        # the interceptors (the idempotency one keys on it, so it does not replay).
        attempt = self.attempts[name] = self.attempts.get(name, 0) + 1
        if attempt > 1:
            view.data[STAGE_ATTEMPT_KEY.format(stage=name)] = attempt
        # What the stage's last attempt raised (the chain keeps only its message).
        raised: Exception | None = None
        if started_at is None:
            started_at = utc_now()
        clock = self.clock

        async def stage_run() -> StageResult:
            nonlocal raised
            raised = None
            try:
                output = _as_output(name, await spec.runner(stage_ctx))
            except StageCancellationRequested as exc:
                output = StageOutput.cancel(reason=exc.reason)
            except Exception as exc:
                raised = exc
                raise
            if output.status is not _OK and output.status is not _FAIL:
                # Skip, cancel or retry: "completed" to the interceptors, but not an
                # answer to replay (a replayed cancel would let later stages run).
                mark_not_a_completion()
            result = StageResult(
                name=name,
                status="failed" if output.status is _FAIL else "completed",
                started_at=started_at,
                ended_at=ended_at(started_at, clock.current_time() - started),
                data=dict(output.data),
                error=output.error,
            )
            produced.append((result, output))
            return result

        # No timeout unless an interceptor sets one: the chain's 30 s fallback is the
        # legacy graph's (0.9.1) and would silently limit every stage here.
        # (A TimeoutInterceptor overwrites the 0 in ``before`` and puts it back in
        # ``after``.) Removed afterwards only when placed here: a caller's per-stage
        # timeout stays for the next run of the same context (a retried request).
        timeout_key = f"_timeout.{name}"
        data = view.data
        placed = timeout_key not in data
        if placed:
            data[timeout_key] = 0
        try:
            result = await run_chain(name, stage_run, view, chain, started_at, started)
        except BaseException:
            # The chain itself raised (an after hook's CriticalInterceptorError, a
            # cancellation) after the stage's last attempt raised: this frame, in the
            # traceback of what propagates, must not keep that error (no cycle).
            raised = None
            raise
        finally:
            if placed:
                data.pop(timeout_key, None)
        if produced and result is produced[-1][0]:
            return produced[-1][1]
        # A timeout or a stage error turned into a failed result, or a short-circuit
        # with an error (an open circuit breaker): the stage did not produce an OK.
        # _execute reports it as the stage's error: the stage's own exception when
        # its last attempt raised one, so its type and traceback reach the caller.
        if result.status == "failed" or result.error is not None:
            error, raised = raised, None  # no cycle through this frame
            try:
                if (
                    error is not None
                    and result.status == "failed"
                    and not isinstance(error, UnifiedStageExecutionError)
                ):
                    raise error
            finally:
                del error  # nor through this one, which is in its traceback
            raise RuntimeError(result.error or "Stage failed")
        return StageOutput.ok(data=dict(result.data or {}))

    def clear_attempt_marks(self) -> None:
        """Remove the guard-retry attempt marks this run left in its view's data.

        They last until the run ends: a later run of the same PipelineContext (a
        retried request) starts again at its first attempt. A mark another run of
        that context changed since is left to that run.
        """
        data = self.report.view().data
        for name, attempt in self.attempts.items():
            if attempt > 1:
                key = STAGE_ATTEMPT_KEY.format(stage=name)
                if data.get(key) == attempt:
                    del data[key]

    def _complete(self, name: str, output: StageOutput) -> Sequence[str]:
        self.completed[name] = output
        status = output.status
        if status is _FAIL:
            retries = self.retries
            if retries is not None:
                policy = self.plan.policies.get(name)
                if policy is not None:
                    retry = retries.failed(name, policy, output, self.clock.current_time())
                    if retry is not None:
                        return retry
                    self.finalized[name] = None
            raise UnifiedStageExecutionError(
                stage=name, original=RuntimeError(output.error or "Stage failed")
            )
        if status is _CANCEL:
            if self.cancelled is None:
                # The first cancel stops the run and is the one it reports: a stage
                # already spawned when the run stopped may still return a cancel of
                # its own, but the interrupted stages' reason names the first.
                reason = output.data.get("cancel_reason", "Pipeline cancelled")
                self.cancelled = UnifiedPipelineCancelled(
                    stage=name, reason=reason, results=self.completed
                )
                # pipeline_cancelled waits for the run's end (outcome), after the
                # interrupted stages' own terminal events. Only this run's scope
                # stops: the caller's token may be shared with other runs, and
                # cancelling it is the caller's decision (the reference owned a
                # token per run, so it could cancel it).
                self.stop(f"Cancelled by stage {name}")
            return ()
        # Guards waiting on this stage as their retry stage run again first.
        ready = self.retries.completed(name) if self.retries is not None else []
        if self.log_info:
            keys = list(output.data)
            logger.info(
                "Stage %s completed with status=%s, data_keys=%s",
                name,
                status.value,
                keys,
                extra={
                    "event": "stage_completed",
                    "stage": name,
                    "status": status.value,
                    "data_keys": keys,
                },
            )
        if name not in self.finalized:
            self.finalized[name] = None
            ready.extend(self.release_children(name))
        return ready
