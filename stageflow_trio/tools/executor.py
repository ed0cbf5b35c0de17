"""ToolExecutor (v1): run a plan's actions through a tool registry; spawn subpipelines.

The reference's legacy executor. Its :meth:`ToolExecutor.spawn_subpipeline` is
how tools run a registered pipeline as a child run: it looks the pipeline up in
a :class:`~stageflow_trio.pipeline.registry.PipelineRegistry`, builds it, and runs
it through a :class:`~stageflow_trio.pipeline.subpipeline.SubpipelineSpawner`.

:meth:`ToolExecutor.execute` runs each action of a plan through
:attr:`ToolExecutor.tool_registry`: the process-wide
:func:`~stageflow_trio.tools.registry.get_tool_registry` as it is when the
executor is made. Assign any object with ``async execute(action, ctx_dict)``
returning an output with ``success``, ``error`` and ``artifacts`` (or None) to
use another.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import trio

from stageflow_trio._frozen import frozen_compat
from stageflow_trio._time import monotonic
from stageflow_trio.pipeline._spawner import _check_ctx
from stageflow_trio.pipeline.pipeline import Pipeline
from stageflow_trio.pipeline.registry import PipelineRegistry
from stageflow_trio.pipeline.subpipeline import (
    MaxDepthExceededError,
    SubpipelineResult,
    SubpipelineSpawner,
    get_subpipeline_spawner,
)
from stageflow_trio.tools._action import ActionProtocol as ActionProtocol  # noqa: TC001 - importable here, as in the reference
from stageflow_trio.tools.registry import get_tool_registry
from stageflow_trio.utils.frozen import FrozenList

if TYPE_CHECKING:
    from collections.abc import Sequence
    from uuid import UUID

    from stageflow_trio.pipeline.dag import UnifiedStageGraph
    from stageflow_trio.stages.context import PipelineContext


__all__ = ["ToolExecutor", "ToolExecutorResult"]

logger: logging.Logger = logging.getLogger("stageflow_trio.tools.executor")


def _id_text(run_id: UUID | None) -> str | None:
    """A run id as the log records carry it: its string, or None."""
    return str(run_id) if run_id else None


class PlanProtocol(Protocol):
    """A plan: the actions to execute, in order."""

    @property
    def actions(self) -> Sequence[ActionProtocol]: ...


class ToolOutputLike(Protocol):
    """What a tool registry returns for an action."""

    @property
    def success(self) -> bool: ...

    @property
    def error(self) -> str | None: ...

    @property
    def artifacts(self) -> list[dict[str, Any]] | None: ...


class ToolRegistryLike(Protocol):
    """What :class:`ToolExecutor` needs of a tool registry."""

    async def execute(
        self, action: ActionProtocol, ctx: dict[str, Any]
    ) -> ToolOutputLike | None: ...


class _Observer(Protocol):
    """The UUID collision monitor and the memory tracker, as the executor uses them."""

    def observe(self, *args: Any, **kwargs: Any) -> Any: ...


def _dict_list(value: Iterable[dict[str, Any]]) -> FrozenList[dict[str, Any]]:
    return value if isinstance(value, FrozenList) else FrozenList(value)


@frozen_compat
@attrs.frozen
class ToolExecutorResult:
    """What :meth:`ToolExecutor.execute` did with a plan.

    Attributes:
        actions_executed: Actions whose tool succeeded.
        actions_failed: Actions with no tool, a failed output, or an error.
        artifacts_produced: The artifacts of the successful actions, in order.
        requires_reentry: An action asked for re-entry, or one failed.
        error: Not set by ``execute`` (kept for parity).
        subpipeline_runs: Not filled by ``execute`` (kept for parity).
    """

    actions_executed: int = 0
    actions_failed: int = 0
    artifacts_produced: FrozenList[dict[str, Any]] = attrs.field(
        factory=FrozenList, converter=_dict_list
    )
    requires_reentry: bool = False
    error: str | None = None
    subpipeline_runs: FrozenList[dict[str, Any]] = attrs.field(
        factory=FrozenList, converter=_dict_list
    )


def _check_execute_args(ctx: object, plan: object) -> None:
    """``execute``'s checks, made before any action runs."""
    if not callable(getattr(ctx, "to_dict", None)):
        raise TypeError(
            f"ctx must be a PipelineContext (anything with to_dict()), got {type(ctx).__name__}"
        )
    if plan is None:
        return
    if not hasattr(plan, "actions"):
        raise TypeError(
            f"plan must be a plan (with an actions sequence) or None, got {type(plan).__name__}"
        )
    actions: object = plan.actions
    if isinstance(actions, str | bytes) or not isinstance(actions, Iterable):
        raise TypeError(f"plan.actions must be a sequence of actions, got {type(actions).__name__}")


def _check_spawn_args(
    pipeline_name: object, ctx: object, topology: object, execution_mode: object
) -> None:
    """``spawn_subpipeline``'s checks, in the spawner's words, made before the lookup."""
    if not isinstance(pipeline_name, str):
        raise TypeError(f"pipeline_name must be a str, got {type(pipeline_name).__name__}")
    _check_ctx(ctx)
    if topology is not None and type(topology) is not str:
        raise TypeError(f"topology_override must be a str or None, got {type(topology).__name__}")
    if execution_mode is not None and type(execution_mode) is not str:
        raise TypeError(
            f"execution_mode_override must be a str or None, got {type(execution_mode).__name__}"
        )


def _check_observer(name: str, value: object) -> None:
    if value is not None and not callable(getattr(value, "observe", None)):
        raise TypeError(
            f"{name} must have an observe() method or be None, got {type(value).__name__}"
        )


class ToolExecutor:
    """A stage-like executor of agent plans that can also spawn subpipelines.

    Args:
        spawner: The spawner for :meth:`spawn_subpipeline`; the global one
            (:func:`~stageflow_trio.pipeline.subpipeline.get_subpipeline_spawner`)
            when None, looked up on first use.
        registry: Where :meth:`spawn_subpipeline` finds pipelines; the global
            :data:`~stageflow_trio.pipeline.registry.pipeline_registry` when None.
        uuid_monitor: Anything with ``observe(uuid)``, told each correlation id,
            e.g. a :class:`~stageflow_trio.helpers.uuid_utils.UuidCollisionMonitor`.
        memory_tracker: Anything with ``observe(label=...)``, told when a
            subpipeline starts and how it ends, e.g. a
            :class:`~stageflow_trio.helpers.memory_tracker.MemoryTracker`.

    Raises:
        TypeError: an argument has the wrong type.
    """

    id = "stage.tool_executor"

    def __init__(
        self,
        *,
        spawner: SubpipelineSpawner | None = None,
        registry: PipelineRegistry | None = None,
        uuid_monitor: _Observer | None = None,
        memory_tracker: _Observer | None = None,
    ) -> None:
        if spawner is not None and not isinstance(spawner, SubpipelineSpawner):
            raise TypeError(
                f"spawner must be a SubpipelineSpawner or None, got {type(spawner).__name__}"
            )
        if registry is not None and not isinstance(registry, PipelineRegistry):
            raise TypeError(
                f"registry must be a PipelineRegistry or None, got {type(registry).__name__}"
            )
        _check_observer("uuid_monitor", uuid_monitor)
        _check_observer("memory_tracker", memory_tracker)
        self.tool_registry: ToolRegistryLike = get_tool_registry()
        self._spawner = spawner
        self._pipeline_registry = registry
        self._uuid_monitor = uuid_monitor
        self._memory_tracker = memory_tracker
        # The graph each registered pipeline last built, by name: a Pipeline is
        # immutable and its graph keeps no state between runs, so it is built again
        # only when the registry holds another Pipeline under that name. A pipeline
        # whose class overrides build() is built on every call, as in the reference.
        self._graphs: dict[str, tuple[Pipeline, UnifiedStageGraph]] = {}

    @property
    def spawner(self) -> SubpipelineSpawner:
        """The subpipeline spawner (the global one unless one was given)."""
        if self._spawner is None:
            self._spawner = get_subpipeline_spawner()
        return self._spawner

    @property
    def pipeline_registry(self) -> PipelineRegistry:
        """The pipeline registry (the global one unless one was given)."""
        if self._pipeline_registry is None:
            from stageflow_trio.pipeline.registry import pipeline_registry

            self._pipeline_registry = pipeline_registry
        return self._pipeline_registry

    async def execute(
        self, ctx: PipelineContext, plan: PlanProtocol | None = None
    ) -> ToolExecutorResult:
        """Execute each action of ``plan`` through :attr:`tool_registry`, in order.

        A checkpoint. An action fails when no tool handles it, when its output
        is not successful, or when executing it raises an ``Exception`` (logged;
        the next action still runs). Any failure sets ``requires_reentry``, as
        does a successful action whose payload has a truthy ``"requires_reentry"``.

        Returns:
            The counts and artifacts; an empty result when ``plan`` is None.

        Raises:
            TypeError: ``ctx`` has no ``to_dict()`` (not a PipelineContext), or
                ``plan`` is neither None nor an object whose ``actions`` is an
                iterable (not a str); raised before any action runs.
        """
        _check_execute_args(ctx, plan)
        await trio.lowlevel.checkpoint()
        if plan is None:
            return ToolExecutorResult()
        executed = failed = 0
        artifacts: list[dict[str, Any]] = []
        reentry = False
        for action in plan.actions:
            try:
                output = await self.tool_registry.execute(action, ctx.to_dict())
                if output is None:
                    failed += 1
                    logger.warning("No tool available for action type: %s", action.type)
                elif output.success:
                    executed += 1
                    if output.artifacts:
                        artifacts.extend(output.artifacts)
                    if action.payload.get("requires_reentry"):
                        reentry = True
                else:
                    failed += 1
                    logger.error("Action %s failed: %s", action.type, output.error)
            except Exception as exc:  # one failing tool must not stop the plan
                failed += 1
                # The reference's message repeats the error; kept.
                logger.exception("Error executing action %s: %s", action.type, exc)  # noqa: TRY401
        return ToolExecutorResult(
            actions_executed=executed,
            actions_failed=failed,
            artifacts_produced=artifacts,
            requires_reentry=reentry or failed > 0,
        )

    async def spawn_subpipeline(
        self,
        pipeline_name: str,
        ctx: PipelineContext,
        correlation_id: UUID,
        *,
        topology_override: str | None = None,
        execution_mode_override: str | None = None,
    ) -> SubpipelineResult:
        """Run the registered pipeline ``pipeline_name`` as a child run of ``ctx``'s run.

        A checkpoint. The pipeline is built (once per registered Pipeline object: the graph is
        kept for the next call, unless the pipeline's class overrides ``build`` or the registry
        handed out another object with a ``build``, such as a test double) and run, through
        :meth:`SubpipelineSpawner.spawn
        <stageflow_trio.pipeline.subpipeline.SubpipelineSpawner.spawn>` (parent
        stage ``"stage.tool_executor"``), with the child PipelineContext the spawner
        forked (as stageflow 1.2.0; 0.9.1 gave it a StageContext holding only the
        child's ids, topology and execution mode). The child's stages' failures come
        back in the result.

        Returns:
            The spawner's result; on success ``data`` maps each stage to its
            output data.

        Raises:
            KeyError: no pipeline is registered as ``pipeline_name``.
            MaxDepthExceededError: spawning would exceed the nesting limit.
            TypeError: ``pipeline_name`` is not a str, ``ctx`` not a
                PipelineContext, or an override not a str or None; raised before
                the lookup, the monitors or any log.
        """
        _check_spawn_args(pipeline_name, ctx, topology_override, execution_mode_override)
        started = monotonic()
        parent_run_id = ctx.pipeline_run_id
        if self._uuid_monitor is not None:
            self._uuid_monitor.observe(correlation_id)
        if self._memory_tracker is not None:
            self._memory_tracker.observe(label="subpipeline:start")
        # The INFO records' extras (ids as strings) are made only when INFO is on.
        info = logger.isEnabledFor(logging.INFO)
        if info:
            logger.info(
                "Spawning subpipeline",
                extra={
                    "pipeline_name": pipeline_name,
                    "parent_run_id": _id_text(parent_run_id),
                    "correlation_id": str(correlation_id),
                    "parent_stage_id": self.id,
                    "topology_override": topology_override,
                    "execution_mode_override": execution_mode_override,
                },
            )
        try:
            pipeline = self.pipeline_registry.get(pipeline_name)
        except KeyError:
            # Re-raised: the traceback is the caller's to log.
            logger.error(  # noqa: TRY400
                "Pipeline '%s' not found in registry",
                pipeline_name,
                extra={
                    "pipeline_name": pipeline_name,
                    "parent_run_id": _id_text(parent_run_id),
                    "correlation_id": str(correlation_id),
                },
            )
            await trio.lowlevel.checkpoint()  # a checkpoint on this path too (spawn is one)
            raise
        cached = self._graphs.get(pipeline_name)
        if cached is not None and cached[0] is pipeline:
            graph = cached[1]
        else:
            build = pipeline.build
            graph = build()
            # Only Pipeline's own build is known to give the same graph each time
            # (a subclass may build from state of its own): others build per call.
            # Read from the bound method, not the class: a registry may hold any
            # object with a build() (a proxy or a test double), whose class need
            # not have the attribute at all.
            if getattr(build, "__func__", None) is Pipeline.build:
                self._graphs[pipeline_name] = (pipeline, graph)

        async def runner(child_ctx: PipelineContext) -> dict[str, Any]:
            # The forked context itself, as stageflow 1.2.0 runs it, so the child's
            # stages see the parent's input text, payload and ports.
            results = await graph.run(child_ctx)
            return {name: output.data for name, output in results.items()}

        try:
            result = await self.spawner.spawn(
                pipeline_name=pipeline_name,
                ctx=ctx,
                correlation_id=correlation_id,
                parent_stage_id=self.id,
                runner=runner,
                topology=topology_override,
                execution_mode=execution_mode_override,
            )
        except MaxDepthExceededError:
            if self._memory_tracker is not None:
                self._memory_tracker.observe(label="subpipeline:depth_exceeded")
            logger.error(  # noqa: TRY400 - re-raised; the caller logs the traceback
                "Subpipeline spawn rejected: max depth exceeded",
                extra={
                    "pipeline_name": pipeline_name,
                    "parent_run_id": _id_text(parent_run_id),
                    "correlation_id": str(correlation_id),
                    "duration_ms": (monotonic() - started) * 1000,
                },
            )
            raise
        except Exception as exc:
            if self._memory_tracker is not None:
                self._memory_tracker.observe(label="subpipeline:error")
            logger.exception(
                "Subpipeline spawn failed: %s",
                exc,  # noqa: TRY401 - the reference's message repeats the error
                extra={
                    "pipeline_name": pipeline_name,
                    "parent_run_id": _id_text(parent_run_id),
                    "correlation_id": str(correlation_id),
                    "duration_ms": (monotonic() - started) * 1000,
                    "error_type": type(exc).__name__,
                },
            )
            raise
        if self._memory_tracker is not None:
            self._memory_tracker.observe(label="subpipeline:end")
        if info:
            logger.info(
                "Subpipeline completed",
                extra={
                    "pipeline_name": pipeline_name,
                    "child_run_id": str(result.child_run_id),
                    "parent_run_id": _id_text(parent_run_id),
                    "correlation_id": str(correlation_id),
                    "success": result.success,
                    "duration_ms": (monotonic() - started) * 1000,
                },
            )
        return result
