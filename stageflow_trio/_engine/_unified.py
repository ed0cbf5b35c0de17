"""UnifiedStageGraph: StageContext in, ``dict[name, StageOutput]`` out.

The graph holds the validated specs and options and keeps no per-run state;
each :meth:`UnifiedStageGraph.run` drives a fresh ``_UnifiedRun``
(``_unified_run.py``), whose events and wide events live in
``_unified_events.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio
from trio import current_time

from stageflow_trio._engine._cleanup import CleanupRegistry
from stageflow_trio._engine._errors import unwrap_group
from stageflow_trio._engine._graph_types import UnifiedStageSpec
from stageflow_trio._engine._scheduler import Topology
from stageflow_trio._engine._token import CancellationToken
from stageflow_trio._engine._unified_run import _UnifiedRun
from stageflow_trio._time import utc_now
from stageflow_trio.core.stage_enums import StageKind
from stageflow_trio.pipeline._validation import validate_dependencies

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Sequence

    from stageflow_trio.core.stage_context import StageContext
    from stageflow_trio.core.stage_output import StageOutput
    from stageflow_trio.observability.wide_events import WideEventEmitter
    from stageflow_trio.pipeline.guard_retry import GuardRetryPolicy, GuardRetryStrategy
    from stageflow_trio.pipeline.interceptors import BaseInterceptor


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
