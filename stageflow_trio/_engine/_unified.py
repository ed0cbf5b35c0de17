"""UnifiedStageGraph: StageContext in, ``dict[name, StageOutput]`` out."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import trio
from trio import current_time

from stageflow_trio._engine._cleanup import CleanupRegistry
from stageflow_trio._engine._errors import unwrap_group
from stageflow_trio._engine._graph_types import (
    UnifiedPipelineCancelled,
    UnifiedStageExecutionError,
    UnifiedStageSpec,
)
from stageflow_trio._engine._guard_retry import GuardRetryState
from stageflow_trio._engine._scheduler import DagRun, Topology
from stageflow_trio._engine._stage_call import run_with_interceptors
from stageflow_trio._engine._token import CancellationToken
from stageflow_trio._time import utc_now
from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.core.stage_enums import StageKind, StageStatus
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.core.timer import PipelineTimer
from stageflow_trio.pipeline._validation import validate_dependencies
from stageflow_trio.stages.inputs import StageInputs
from stageflow_trio.stages.result import StageResult
from stageflow_trio.utils.frozen import _freeze_dict

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
    from datetime import datetime

    from stageflow_trio.observability.wide_events import WideEventEmitter
    from stageflow_trio.pipeline.guard_retry import GuardRetryPolicy, GuardRetryStrategy
    from stageflow_trio.pipeline.interceptors import BaseInterceptor
    from stageflow_trio.stages.context import PipelineContext
    from stageflow_trio.stages.result import LegacyStageStatus

__all__ = ["UnifiedStageGraph"]

logger = logging.getLogger("stageflow_trio.dag")

_OK = StageStatus.OK
_SKIP = StageStatus.SKIP
_FAIL = StageStatus.FAIL
_CANCEL = StageStatus.CANCEL


def _normalize(name: str, raw: object) -> StageOutput:
    if isinstance(raw, StageOutput):
        return raw
    if raw is None:
        return StageOutput.ok()
    if isinstance(raw, dict):
        return StageOutput.ok(data=raw)
    raise TypeError(f"Stage {name} returned unsupported result type {type(raw)}")


def _id(value: object) -> str | None:
    return str(value) if value else None


class UnifiedStageGraph:
    """Runs :class:`UnifiedStageSpec` stages as a DAG under trio.

    Each stage starts as soon as all its dependencies have completed and
    receives a :class:`StageContext` whose inputs hold exactly the outputs of its
    declared dependencies (strict). The graph keeps no per-run state, so one
    graph may run many times concurrently.

    Args:
        specs: The stages. Names must be unique; every dependency must name a
            stage of the graph and the graph must be acyclic (checked here,
            raising the builder's contract errors).
        cleanup_timeout: Seconds that the run's cleanup callbacks share.
        guard_retry_strategy: Guard-retry policies (validated here).
        interceptors: Optional interceptors; when given, each stage call goes
            through the chain with a PipelineContext view of the run.
        wide_event_emitter: Emitter for ``stage.wide`` / ``pipeline.wide``
            (a default one when either flag is set).
        emit_stage_wide_events: Emit ``stage.wide`` after each stage.
        emit_pipeline_wide_event: Emit ``pipeline.wide`` when the run ends
            (completed, failed or cancelled by a stage or token).
    """

    def __init__(
        self,
        specs: Iterable[UnifiedStageSpec],
        *,
        cleanup_timeout: float = 10.0,
        guard_retry_strategy: GuardRetryStrategy | None = None,
        interceptors: Sequence[BaseInterceptor] | None = None,
        wide_event_emitter: WideEventEmitter | None = None,
        emit_stage_wide_events: bool = False,
        emit_pipeline_wide_event: bool = False,
    ) -> None:
        self._specs: dict[str, UnifiedStageSpec] = {}
        for spec in specs:
            if not isinstance(spec, UnifiedStageSpec):
                raise TypeError(
                    f"specs must be UnifiedStageSpec instances, got {type(spec).__name__}"
                )
            self._specs[spec.name] = spec
        if not self._specs:
            raise ValueError("UnifiedStageGraph requires at least one UnifiedStageSpec")
        deps = {name: spec.dependencies for name, spec in self._specs.items()}
        validate_dependencies(deps)
        self._topology = Topology(deps)
        self._cleanup_timeout = cleanup_timeout
        self._guard_retry_strategy = guard_retry_strategy
        self._policies: dict[str, GuardRetryPolicy] = {}
        if guard_retry_strategy is not None:
            guard_retry_strategy.validate(self._specs)
            for name, spec in self._specs.items():
                policy = guard_retry_strategy.get_policy(name)
                if policy is not None and spec.kind == StageKind.GUARD:
                    self._policies[name] = policy
        self._interceptors = (
            sorted(interceptors, key=lambda i: i.priority) if interceptors else None
        )
        if wide_event_emitter is None and (emit_stage_wide_events or emit_pipeline_wide_event):
            from stageflow_trio.observability.wide_events import WideEventEmitter

            wide_event_emitter = WideEventEmitter()
        self._wide_event_emitter = wide_event_emitter
        self._emit_stage_wide = emit_stage_wide_events
        self._emit_pipeline_wide = emit_pipeline_wide_event
        self._runs: list[_UnifiedRun] = []

    @property
    def stage_specs(self) -> list[UnifiedStageSpec]:
        """The stage specs, in insertion order."""
        return list(self._specs.values())

    @property
    def cancel_token(self) -> CancellationToken | None:
        """The token of the most recently started run still in progress, else ``None``."""
        return self._runs[-1].token if self._runs else None

    @property
    def cleanup_registry(self) -> CleanupRegistry | None:
        """The cleanup registry of the most recently started run still in progress."""
        return self._runs[-1].registry if self._runs else None

    def register_cleanup(
        self, callback: Callable[[], Awaitable[Any]], *, name: str | None = None
    ) -> None:
        """Register ``callback`` with the most recent run in progress (no-op when idle)."""
        if self._runs:
            self._runs[-1].registry.register(callback, name=name)

    async def run(
        self, ctx: StageContext, *, cancel_token: CancellationToken | None = None
    ) -> dict[str, StageOutput]:
        """Run the graph once. A checkpoint.

        Args:
            ctx: The run's StageContext (snapshot, timer, event sink).
            cancel_token: Cancelling it stops the run: running stages are
                interrupted at their next checkpoint and
                :class:`UnifiedPipelineCancelled` is raised with stage
                ``"<external>"``. A fresh token is used when omitted.

        Returns:
            Each stage's output by name.

        Raises:
            UnifiedStageExecutionError: a stage raised or returned FAIL (also
                when guard retries are exhausted). Its running siblings are
                cancelled first.
            UnifiedPipelineCancelled: a stage returned CANCEL, or the token was
                cancelled.
        """
        started_at, started = utc_now(), current_time()
        run = _UnifiedRun(self, ctx, cancel_token or CancellationToken(), CleanupRegistry())
        self._runs.append(run)
        try:
            try:
                await run.drive()
            except BaseExceptionGroup as group:
                unwrap_group(group)
        finally:
            self._runs.remove(run)
            if run.unbind_token is not None:
                run.unbind_token()
            if run.registry.pending_count:
                # Shielded as a whole (each callback is bounded by its share of the
                # timeout), so a pending outer cancel cannot replace the run's outcome.
                with trio.CancelScope(shield=True):
                    await run.registry.run_all(timeout=self._cleanup_timeout)
        if self._emit_pipeline_wide:
            run.emit_pipeline_wide(started_at, started)
        return run.outcome()


class _UnifiedRun(DagRun):
    __slots__ = (
        "active_retry_targets",
        "base_ctx",
        "cancelled",
        "completed",
        "event_sink",
        "finalized",
        "graph",
        "guard_states",
        "pending_guards",
        "pipeline_ctx",
        "plain",
        "ports",
        "registry",
        "snapshot",
        "timer",
        "token",
        "unbind_token",
        "wide_results",
    )

    def __init__(
        self,
        graph: UnifiedStageGraph,
        ctx: StageContext,
        token: CancellationToken,
        registry: CleanupRegistry,
    ) -> None:
        super().__init__(graph._topology)
        self.graph = graph
        self.base_ctx = ctx
        self.token = token
        self.registry = registry
        self.snapshot = ctx.snapshot
        # As the reference: a context without a timer gets one for the run.
        timer = getattr(ctx, "timer", None)  # typed as required, but None is accepted
        self.timer = timer if timer is not None else PipelineTimer()
        self.event_sink = ctx.event_sink
        self.ports = ctx.inputs.ports
        self.completed: dict[str, StageOutput] = {}
        self.finalized: set[str] = set()
        self.guard_states: dict[str, GuardRetryState] = {}
        self.pending_guards: dict[str, list[str]] = {}
        self.active_retry_targets: set[str] = set()
        self.cancelled: UnifiedPipelineCancelled | None = None
        self.pipeline_ctx: PipelineContext | None = None
        wide = graph._emit_stage_wide or graph._emit_pipeline_wide
        self.wide_results: dict[str, StageResult] | None = {} if wide else None
        self.plain = self.event_sink is None and graph._interceptors is None and not wide
        self.unbind_token: Callable[[], None] | None = None

    # -- lifecycle -------------------------------------------------------

    def on_started(self) -> None:
        assert self.nursery is not None
        # Bound, not subscribed: the binding is undone when the run ends, so a
        # long-lived token passed to many runs keeps no reference to old ones.
        self.unbind_token = self.token.bind_scope(self.nursery.cancel_scope)

    def outcome(self) -> dict[str, StageOutput]:
        if self.error is not None:
            raise self.error
        if self.cancelled is not None:
            raise self.cancelled
        if self.token.is_cancelled:
            reason = self.token.reason or "Cancelled via token"
            self._emit_pipeline_cancelled("<external>", reason)
            raise UnifiedPipelineCancelled(
                stage="<external>", reason=reason, results=self.completed
            )
        if len(self.finalized) < len(self.topology.names):
            pending = sorted(set(self.topology.names) - set(self.completed))
            raise RuntimeError(f"Deadlocked stage graph; remaining stages: {pending}")
        return self.completed

    # -- one stage -------------------------------------------------------

    async def run_stage(self, name: str) -> Sequence[str]:
        spec = self.graph._specs[name]
        completed = self.completed
        prior = _freeze_dict({dep: completed[dep] for dep in spec.dependencies if dep in completed})
        inputs = StageInputs._trusted(
            self.snapshot, prior, self.ports, self.topology.dep_sets[name], name
        )
        stage_ctx = StageContext(
            snapshot=self.snapshot,
            inputs=inputs,
            stage_name=name,
            timer=self.timer,
            event_sink=self.event_sink,
        )
        output: StageOutput | None = None
        if spec.conditional:
            skip_reason = inputs.get("skip_reason")
            if skip_reason:
                self._emit_skipped(stage_ctx, name, skip_reason, None)
                output = StageOutput.skip(reason=skip_reason)
        if output is None:
            if self.plain:
                # The common case (no sink, no interceptors), without a further
                # coroutine frame between the stage task and the stage.
                started = current_time()
                try:
                    raw = await spec.runner(stage_ctx)
                    output = raw if type(raw) is StageOutput else _normalize(name, raw)
                except UnifiedStageExecutionError:
                    raise
                except Exception as exc:
                    raise UnifiedStageExecutionError(name, exc) from exc
                output = output.with_duration(int((current_time() - started) * 1000))
            else:
                output = await self._execute(spec, stage_ctx)
        return self._complete(spec, output)

    async def _execute(self, spec: UnifiedStageSpec, stage_ctx: StageContext) -> StageOutput:
        name = spec.name
        sink = self.event_sink
        if sink is not None:
            self._emit_lifecycle(name, "started", None)
        started = current_time()
        started_at = utc_now() if self.wide_results is not None else None
        try:
            if self.graph._interceptors is None:
                output = _normalize(name, await spec.runner(stage_ctx))
            else:
                output = await self._execute_intercepted(spec, stage_ctx)
        except UnifiedStageExecutionError:
            raise
        except Exception as exc:
            if started_at is not None:
                self._record_wide(name, "failed", started_at, {}, str(exc))
            if sink is not None:
                self._emit_lifecycle(
                    name,
                    "failed",
                    {"duration_ms": int((current_time() - started) * 1000), "error": str(exc)},
                )
            logger.debug("Stage %s raised %r", name, exc)
            raise UnifiedStageExecutionError(name, exc) from exc
        duration_ms = int((current_time() - started) * 1000)
        output = output.with_duration(duration_ms)
        if started_at is not None:
            failed = output.status is _FAIL
            self._record_wide(
                name, "failed" if failed else "completed", started_at, output.data, output.error
            )
        if sink is not None:
            status = output.status
            if status is _SKIP:
                self._emit_skipped(
                    stage_ctx, name, output.data.get("reason", "Stage returned skip"), duration_ms
                )
            elif status is _FAIL:
                self._emit_lifecycle(
                    name,
                    "failed",
                    {"duration_ms": duration_ms, "error": output.error or "Stage failed"},
                )
            else:
                self._emit_lifecycle(name, "completed", {"duration_ms": duration_ms})
        return output

    async def _execute_intercepted(
        self, spec: UnifiedStageSpec, stage_ctx: StageContext
    ) -> StageOutput:
        """Run the stage through the interceptor chain with a PipelineContext view.

        The view is made once per run, so interceptors share its ``data`` across
        stages as they do in the legacy graph.
        """
        name = spec.name
        pipeline_ctx = self._view()
        produced: list[tuple[StageResult, StageOutput]] = []

        async def stage_run() -> StageResult:
            started_at = utc_now()
            output = _normalize(name, await spec.runner(stage_ctx))
            result = StageResult(
                name=name,
                status="failed" if output.status is _FAIL else "completed",
                started_at=started_at,
                ended_at=utc_now(),
                data=dict(output.data),
                error=output.error,
            )
            produced.append((result, output))
            return result

        assert self.graph._interceptors is not None
        result = await run_with_interceptors(
            name, stage_run, pipeline_ctx, self.graph._interceptors
        )
        if produced and result is produced[-1][0]:
            return produced[-1][1]
        # A short-circuit, a timeout or a stage error turned into a failed result.
        if result.status == "failed":
            raise UnifiedStageExecutionError(name, RuntimeError(result.error or "Stage failed"))
        return StageOutput.ok(data=dict(result.data or {}))

    def _complete(self, spec: UnifiedStageSpec, output: StageOutput) -> Sequence[str]:
        name = spec.name
        self.completed[name] = output
        status = output.status
        if status is _FAIL:
            policy = self.graph._policies.get(name)
            if policy is not None and self._guard_failed(name, policy, output):
                return self._schedule_retry(name, policy)
            raise UnifiedStageExecutionError(
                stage=name, original=RuntimeError(output.error or "Stage failed")
            )
        if status is _CANCEL:
            reason = output.data.get("cancel_reason", "Pipeline cancelled")
            self.cancelled = UnifiedPipelineCancelled(
                stage=name, reason=reason, results=self.completed
            )
            self._emit_pipeline_cancelled(name, reason)
            self.token.cancel(f"Cancelled by stage {name}")
            self.stop()
            return ()
        if self.guard_states:
            state = self.guard_states.pop(name, None)
            if state is not None and state.attempts:
                self._emit_guard("recovered", {"guard": name, "attempts": state.attempts})
        ready: list[str] = []
        if self.active_retry_targets:
            self.active_retry_targets.discard(name)
            ready.extend(self.pending_guards.pop(name, ()))
        if name not in self.finalized:
            self.finalized.add(name)
            ready.extend(self.release_children(name))
        return ready

    # -- guard retries ---------------------------------------------------

    def _guard_failed(self, name: str, policy: GuardRetryPolicy, output: StageOutput) -> bool:
        """Record a guard failure; True when a retry is to be scheduled."""
        state = self.guard_states.get(name)
        if state is None:
            state = self.guard_states[name] = GuardRetryState()
        reason = state.record_failure(policy, output, current_time())
        self._emit_guard(
            "attempt",
            {
                "guard": name,
                "attempt": state.attempts,
                "retry_stage": policy.retry_stage,
                "max_attempts": policy.max_attempts,
                "stagnation_hits": state.stagnation_hits,
                "timeout_seconds": policy.timeout_seconds,
            },
        )
        if reason is None:
            return True
        logger.error(
            "Guard retry limits exceeded for %s after %d attempts (%s)",
            name,
            state.attempts,
            reason,
        )
        self._emit_guard(
            "exhausted",
            {
                "guard": name,
                "attempts": state.attempts,
                "stagnation_hits": state.stagnation_hits,
                "retry_stage": policy.retry_stage,
                "timeout_seconds": policy.timeout_seconds,
                "reason": reason,
            },
        )
        self.finalized.add(name)
        return False

    def _schedule_retry(self, name: str, policy: GuardRetryPolicy) -> Sequence[str]:
        state = self.guard_states[name]
        self._emit_guard(
            "scheduled",
            {
                "guard": name,
                "attempt": state.attempts,
                "retry_stage": policy.retry_stage,
                "stagnation_hits": state.stagnation_hits,
                "timeout_seconds": policy.timeout_seconds,
            },
        )
        target = policy.retry_stage
        self.pending_guards.setdefault(target, []).append(name)
        if target in self.active_retry_targets:
            return ()
        self.active_retry_targets.add(target)
        return (target,)

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
