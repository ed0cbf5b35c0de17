"""The legacy StageGraph: PipelineContext in, ``dict[name, StageResult]`` out."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from stageflow_trio._engine._errors import unwrap_group
from stageflow_trio._engine._graph_types import StageExecutionError, StageSpec
from stageflow_trio._engine._scheduler import DagRun, Topology
from stageflow_trio._engine._stage_call import run_with_interceptors
from stageflow_trio._time import monotonic, utc_now
from stageflow_trio.core.stage_enums import StageStatus
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.pipeline._validation import validate_dependencies
from stageflow_trio.stages.result import StageResult

if TYPE_CHECKING:
    from datetime import datetime

    from stageflow_trio.observability.wide_events import WideEventEmitter
    from stageflow_trio.pipeline.interceptors import BaseInterceptor
    from stageflow_trio.stages.context import PipelineContext

logger = logging.getLogger("stageflow_trio.dag")

_Invoke = Callable[["PipelineContext"], Awaitable[Any]]


def _invoker(spec: StageSpec) -> _Invoke:
    """How to call a legacy runner: a class, an object with ``execute``, or a callable."""
    runner = spec.runner
    if isinstance(runner, type):
        return lambda ctx: runner().execute(ctx)
    execute = getattr(runner, "execute", None)
    if execute is not None and callable(execute):
        return execute  # type: ignore[no-any-return]
    if callable(runner):
        return runner  # type: ignore[no-any-return]
    raise TypeError(
        f"stage '{spec.name}': runner must be a stage class, an object with async execute(ctx)"
        f" or an async callable, got {type(runner).__name__}"
    )


def _normalize(name: str, raw: Any, started_at: datetime) -> StageResult:
    if isinstance(raw, StageResult):
        return raw
    if isinstance(raw, StageOutput):
        return StageResult(
            name=name,
            status="failed" if raw.status is StageStatus.FAIL else "completed",
            started_at=started_at,
            ended_at=utc_now(),
            data=raw.data,
            error=raw.error,
        )
    data = raw or {}
    if not isinstance(data, dict):
        raise TypeError(f"Stage {name} returned unsupported result type {type(raw)}")
    return StageResult(
        name=name, status="completed", started_at=started_at, ended_at=utc_now(), data=data
    )


class StageGraph:
    """Runs legacy :class:`StageSpec` stages as a DAG, each through the interceptor chain.

    Legacy semantics (kept for parity): ``conditional`` is ignored; a stage that
    fails produces a "failed" StageResult and the other stages go on; only a
    :class:`CriticalInterceptorError` stops the run, as
    :class:`StageExecutionError`. Setting ``ctx.canceled`` (``mark_canceled``)
    stops the run at the next stage completion: the stages that did not
    complete get a "failed" result with the error "Pipeline canceled", and
    ``run`` returns normally.

    Args:
        specs: The stages (dependencies checked here, with the builder's errors).
        interceptors: The chain; ``get_default_interceptors()`` when omitted.
        wide_event_emitter: Emitter for ``stage.wide`` / ``pipeline.wide``.
        emit_stage_wide_events: Emit ``stage.wide`` after each stage.
        emit_pipeline_wide_event: Emit ``pipeline.wide`` at the end of a run.
    """

    def __init__(
        self,
        specs: Iterable[StageSpec],
        interceptors: Sequence[BaseInterceptor] | None = None,
        *,
        wide_event_emitter: WideEventEmitter | None = None,
        emit_stage_wide_events: bool = False,
        emit_pipeline_wide_event: bool = False,
    ) -> None:
        self._specs: dict[str, StageSpec] = {}
        for spec in specs:
            if not isinstance(spec, StageSpec):
                raise TypeError(f"specs must be StageSpec instances, got {type(spec).__name__}")
            self._specs[spec.name] = spec
        if not self._specs:
            raise ValueError("StageGraph requires at least one StageSpec")
        deps = {name: spec.dependencies for name, spec in self._specs.items()}
        validate_dependencies(deps)
        self._topology = Topology(deps)
        self._invokers = {name: _invoker(spec) for name, spec in self._specs.items()}
        if interceptors is None:
            from stageflow_trio.pipeline.interceptors import get_default_interceptors

            interceptors = get_default_interceptors()
        self._interceptors = sorted(interceptors, key=lambda i: i.priority)
        if wide_event_emitter is None and (emit_stage_wide_events or emit_pipeline_wide_event):
            from stageflow_trio.observability.wide_events import WideEventEmitter

            wide_event_emitter = WideEventEmitter()
        self._wide_event_emitter = wide_event_emitter
        self._emit_stage_wide = emit_stage_wide_events and wide_event_emitter is not None
        self._emit_pipeline_wide = emit_pipeline_wide_event and wide_event_emitter is not None

    @property
    def stage_specs(self) -> list[StageSpec]:
        """The stage specs, in insertion order."""
        return list(self._specs.values())

    async def run(self, ctx: PipelineContext) -> dict[str, StageResult]:
        """Run the graph once. A checkpoint.

        Returns:
            Each stage's StageResult by name ("completed" or "failed").

        Raises:
            StageExecutionError: an interceptor raised CriticalInterceptorError;
                the running stages are cancelled first.
        """
        started_at = utc_now()
        started = monotonic()
        run = _LegacyRun(self, ctx)
        try:
            await run.drive()
        except BaseExceptionGroup as group:
            unwrap_group(group)
        if run.error is not None:
            raise run.error
        completed = run.completed
        if run.canceled:
            now = utc_now()
            for name in self._topology.names:
                if name not in completed:
                    completed[name] = StageResult(
                        name=name,
                        status="failed",
                        started_at=now,
                        ended_at=now,
                        error="Pipeline canceled",
                    )
        if self._emit_pipeline_wide and self._wide_event_emitter is not None:
            self._wide_event_emitter.emit_pipeline_event(
                ctx=ctx,
                stage_results=completed,
                pipeline_name=ctx.topology,
                status=None,
                duration_ms=int((monotonic() - started) * 1000),
                started_at=started_at,
            )
        return completed

    async def _run_stage(self, name: str, ctx: PipelineContext) -> StageResult:
        started_at = utc_now()
        started = monotonic()
        ctx.record_stage_event(stage=name, status="started")
        invoke = self._invokers[name]

        async def stage_run() -> StageResult:
            return _normalize(name, await invoke(ctx), started_at)

        try:
            result = await run_with_interceptors(name, stage_run, ctx, self._interceptors)
        except Exception as exc:
            ctx.record_stage_event(
                stage=name,
                status="failed",
                payload={"duration_ms": int((monotonic() - started) * 1000), "error": str(exc)},
            )
            if self._emit_stage_wide and self._wide_event_emitter is not None:
                self._wide_event_emitter.emit_stage_event(
                    ctx=ctx,
                    result=StageResult(
                        name=name,
                        status="failed",
                        started_at=started_at,
                        ended_at=utc_now(),
                        error=str(exc),
                    ),
                )
            raise StageExecutionError(name, exc) from exc
        duration_ms = int((monotonic() - started) * 1000)
        if result.status == "failed":
            ctx.record_stage_event(
                stage=name,
                status="failed",
                payload={
                    "duration_ms": duration_ms,
                    "error": result.error or "Stage returned failed status",
                },
            )
        else:
            ctx.record_stage_event(
                stage=name, status="completed", payload={"duration_ms": duration_ms}
            )
        if self._emit_stage_wide and self._wide_event_emitter is not None:
            self._wide_event_emitter.emit_stage_event(ctx=ctx, result=result)
        return result


class _LegacyRun(DagRun):
    __slots__ = ("canceled", "completed", "ctx", "graph")

    def __init__(self, graph: StageGraph, ctx: PipelineContext) -> None:
        super().__init__(graph._topology)
        self.graph = graph
        self.ctx = ctx
        self.completed: dict[str, StageResult] = {}
        self.canceled = False

    def on_started(self) -> None:
        if self.ctx.canceled:
            self.canceled = True
            self.stop()

    async def run_stage(self, name: str) -> Sequence[str]:
        self.completed[name] = await self.graph._run_stage(name, self.ctx)
        if self.ctx.canceled:
            self.canceled = True
            self.stop()
            return ()
        return self.release_children(name)
