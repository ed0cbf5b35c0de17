"""One run of a UnifiedStageGraph: stage contexts, outcomes, guard retries."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from trio import current_time

from stageflow_trio._engine._graph_types import (
    UnifiedPipelineCancelled,
    UnifiedStageExecutionError,
    UnifiedStageSpec,
)
from stageflow_trio._engine._guard_retry import GuardRetryState
from stageflow_trio._engine._stage_call import run_with_interceptors
from stageflow_trio._engine._unified_events import _RunEvents
from stageflow_trio._time import utc_now
from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.core.stage_enums import StageStatus
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.core.timer import PipelineTimer
from stageflow_trio.stages.inputs import StageInputs
from stageflow_trio.stages.result import StageResult
from stageflow_trio.utils.frozen import _freeze_dict

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from stageflow_trio._engine._cleanup import CleanupRegistry
    from stageflow_trio._engine._token import CancellationToken
    from stageflow_trio._engine._unified import UnifiedStageGraph
    from stageflow_trio.pipeline.guard_retry import GuardRetryPolicy
    from stageflow_trio.stages.context import PipelineContext

logger = logging.getLogger("stageflow_trio.dag")

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


class _UnifiedRun(_RunEvents):
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
