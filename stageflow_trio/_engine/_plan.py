"""What a graph hands the engine: one frozen plan, built once per graph.

The graph classes (:mod:`stageflow_trio.pipeline.dag`) check their specs and
options and resolve the defaults that belong to the layers above the engine
(the default interceptor chain, a default ``WideEventEmitter``, the guard-retry
strategy); a plan holds the result. A run reads only its plan, never the graph,
so one graph can run many times concurrently and the engine imports nothing
from ``pipeline/`` or ``observability/``: what it needs of their objects is
spelled out by the protocols here and in ``_guard_retry.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from stageflow_trio._engine._cleanup import check_cleanup_timeout
from stageflow_trio._engine._guard_retry import GuardPolicy
from stageflow_trio._engine._interceptors import BaseInterceptor
from stageflow_trio._engine._scheduler import Topology
from stageflow_trio._engine._stage_call import InterceptorChain
from stageflow_trio._frozen import frozen_compat

if TYPE_CHECKING:
    from datetime import datetime

    from stageflow_trio.core.stage_context import StageContext
    from stageflow_trio.core.stage_output import StageOutput
    from stageflow_trio.stages.context import PipelineContext
    from stageflow_trio.stages.result import StageResult


# The legacy run's logger (``_legacy.logger``), where its chain logs a stage's mistake.
_LEGACY_LOGGER = logging.getLogger("stageflow_trio.dag")


class UnifiedStage(Protocol):
    """What a unified run reads of a stage (``pipeline.dag.UnifiedStageSpec`` has it)."""

    @property
    def name(self) -> str: ...
    @property
    def runner(
        self,
    ) -> Callable[[StageContext], Awaitable[StageOutput | Mapping[str, Any] | None]]: ...
    @property
    def dependencies(self) -> tuple[str, ...]: ...
    @property
    def conditional(self) -> bool: ...


class WideEvents(Protocol):
    """What a run calls on its wide-event emitter (``WideEventEmitter`` has it)."""

    def emit_stage_event(self, *, ctx: PipelineContext, result: StageResult) -> None: ...

    def emit_pipeline_event(
        self,
        *,
        ctx: PipelineContext,
        stage_results: Mapping[str, StageResult],
        pipeline_name: str | None,
        status: str | None,
        duration_ms: int | None,
        started_at: datetime | None,
    ) -> None: ...


LegacyInvoke = Callable[["PipelineContext"], Awaitable[Any]]
"""How a legacy run calls one stage: ``await invoke(ctx)``."""


def _by_priority(interceptors: Sequence[BaseInterceptor]) -> tuple[BaseInterceptor, ...]:
    return tuple(sorted(interceptors, key=lambda i: i.priority))


def _optional_by_priority(
    interceptors: Sequence[BaseInterceptor] | None,
) -> tuple[BaseInterceptor, ...] | None:
    # None and an empty chain both mean "no chain": the run's fast path.
    return _by_priority(interceptors) if interceptors else None


# Read-only views of private copies. A mappingproxy, not a FrozenDict: runs look
# a stage up in these on every stage, and subscripting a dict subclass misses
# the interpreter's fast path for exact dicts.


def _frozen_specs(specs: Mapping[str, UnifiedStage]) -> Mapping[str, UnifiedStage]:
    return MappingProxyType(dict(specs))


def _frozen_policies(policies: Mapping[str, GuardPolicy]) -> Mapping[str, GuardPolicy]:
    return MappingProxyType(dict(policies))


def _frozen_invokers(invokers: Mapping[str, LegacyInvoke]) -> Mapping[str, LegacyInvoke]:
    return MappingProxyType(dict(invokers))


def _cleanup_timeout(value: object) -> float:
    return check_cleanup_timeout("cleanup_timeout", value)


@frozen_compat
@attrs.frozen(kw_only=True)
class UnifiedPlan:
    """Everything a ``UnifiedStageGraph`` run needs, checked and resolved.

    Attributes:
        specs: The stages by name, in insertion order.
        topology: Their dependency structure.
        policies: Guard-retry policies of the GUARD stages that have one.
        interceptors: The chain sorted by priority, or ``None`` for none.
        emitter: The wide-event emitter (``None`` unless wide events are on).
        emit_stage_wide: Emit ``stage.wide`` after each stage.
        emit_pipeline_wide: Emit ``pipeline.wide`` when a run ends.
        cleanup_timeout: Seconds a run's cleanup callbacks share.
        pipeline_name: The ``pipeline.wide`` event's pipeline name (``None``: the
            run context's topology).
        chain: ``interceptors`` with their hooks looked up (derived; ``None`` for none).
        event_types: Each stage's ``stage.{name}.started`` and
            ``stage.{name}.completed`` event types (derived).
    """

    specs: Mapping[str, UnifiedStage] = attrs.field(converter=_frozen_specs)
    topology: Topology
    policies: Mapping[str, GuardPolicy] = attrs.field(converter=_frozen_policies, factory=dict)
    interceptors: tuple[BaseInterceptor, ...] | None = attrs.field(
        default=None, converter=_optional_by_priority
    )
    emitter: WideEvents | None = None
    emit_stage_wide: bool = False
    emit_pipeline_wide: bool = False
    cleanup_timeout: float = attrs.field(default=10.0, converter=_cleanup_timeout)
    pipeline_name: str | None = None
    chain: InterceptorChain | None = attrs.field(init=False, eq=False, repr=False)

    event_types: Mapping[str, tuple[str, str]] = attrs.field(init=False, eq=False, repr=False)

    @chain.default
    def _chain(self) -> InterceptorChain | None:
        return None if self.interceptors is None else InterceptorChain(self.interceptors)

    @event_types.default
    def _event_types(self) -> Mapping[str, tuple[str, str]]:
        return MappingProxyType(
            {name: (f"stage.{name}.started", f"stage.{name}.completed") for name in self.specs}
        )


@frozen_compat
@attrs.frozen(kw_only=True)
class LegacyPlan:
    """Everything a legacy ``StageGraph`` run needs, checked and resolved.

    Attributes:
        invokers: How to call each stage, by name, in insertion order.
        topology: The stages' dependency structure.
        interceptors: The chain every stage call goes through, sorted by priority.
        emitter: The wide-event emitter, or ``None``.
        emit_stage_wide: Emit ``stage.wide`` after each stage (needs an emitter).
        emit_pipeline_wide: Emit ``pipeline.wide`` at the end of a run (needs an emitter).
        chain: ``interceptors`` with their hooks looked up (derived).
    """

    invokers: Mapping[str, LegacyInvoke] = attrs.field(converter=_frozen_invokers)
    topology: Topology
    interceptors: tuple[BaseInterceptor, ...] = attrs.field(converter=_by_priority)
    emitter: WideEvents | None = None
    emit_stage_wide: bool = False
    emit_pipeline_wide: bool = False
    chain: InterceptorChain = attrs.field(init=False, eq=False, repr=False)

    @chain.default
    def _chain(self) -> InterceptorChain:
        # A stage's error becomes a failed result with its text only: its mistake
        # note is logged where the graph logs.
        return InterceptorChain(self.interceptors, mistakes=_LEGACY_LOGGER)
