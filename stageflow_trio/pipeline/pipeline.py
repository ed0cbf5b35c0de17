"""Pipeline: the immutable builder of unified stage graphs (``Stage`` classes and StageKind).

``Pipeline().with_stage("a", StageA, StageKind.TRANSFORM).build()`` returns a
:class:`~stageflow_trio.pipeline.dag.UnifiedStageGraph`. Unlike
:class:`~stageflow_trio.pipeline.builder.PipelineBuilder`, stages may be added in
any order; the dependencies are validated once, by :meth:`Pipeline.build`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Never, overload

import attrs

from stageflow_trio._frozen import frozen_compat
from stageflow_trio.core.stage_enums import StageKind
from stageflow_trio.pipeline._checks import (
    StageDefinitionError,
    StageDefinitionTypeError,
    check_bool,
    check_kind,
    check_kwargs,
    check_name,
    check_names,
    check_runner,
)
from stageflow_trio.pipeline.builder import StageTable
from stageflow_trio.pipeline.dag import UnifiedStageGraph as UnifiedStageGraph
from stageflow_trio.pipeline.dag import UnifiedStageSpec as GraphStageSpec
from stageflow_trio.pipeline.spec import (
    PipelineConfigError,
    UnifiedRunnerLike,
    UnifiedStageResult,
    UnifiedStageRunner,
    as_async_runner,
)

if TYPE_CHECKING:
    from stageflow_trio.core.stage_context import StageContext
    from stageflow_trio.observability.wide_events import WideEventEmitter
    from stageflow_trio.pipeline.guard_retry import GuardRetryStrategy
    from stageflow_trio.pipeline.interceptors import BaseInterceptor

__all__ = ["Pipeline", "UnifiedStageGraph", "UnifiedStageSpec"]

_CONFIG_NEEDS_CLASS = "config can only be used with stage classes"


class EmptyPipelineError(StageDefinitionError):
    """``Pipeline.build()`` was called with no stages (a ValueError)."""


@frozen_compat
@attrs.frozen(init=False)
class UnifiedStageSpec:
    """One stage of a :class:`Pipeline`.

    Attributes:
        name: Stage name, unique within the pipeline.
        runner: A stage class (instantiated with ``config`` for every execution), a
            stage instance (its ``execute`` is called), or an async callable taking a
            StageContext.
        kind: The stage's StageKind (a kind's string value is converted).
        dependencies: Names of the stages that must finish first.
        conditional: Whether the stage may be skipped.
        config: Keyword arguments for a class runner's constructor (read-only).

    Raises:
        StageDefinitionError: (a ValueError) empty or whitespace-only name, or
            ``config`` with a runner that is not a class.
        StageDefinitionTypeError: (a TypeError) a field has the wrong type.
    """

    name: str
    runner: UnifiedRunnerLike
    kind: StageKind
    dependencies: tuple[str, ...]
    conditional: bool
    config: Mapping[str, Any]

    def __init__(
        self,
        name: str,
        runner: UnifiedRunnerLike,
        kind: StageKind,
        dependencies: Iterable[str] | None = (),
        conditional: bool = False,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        owner = "UnifiedStageSpec"
        name = check_name(owner, name)
        check_runner(owner, name, runner)
        settings = check_kwargs(owner, name, "config", config)
        if settings and not isinstance(runner, type):
            raise PipelineConfigError(_CONFIG_NEEDS_CLASS)
        self.__attrs_init__(
            name,
            runner,
            check_kind(owner, name, kind),
            check_names(owner, name, "dependencies", dependencies),
            check_bool(owner, name, "conditional", conditional),
            settings,
        )


class Pipeline:
    """An immutable set of :class:`UnifiedStageSpec` stages that builds a UnifiedStageGraph.

    ``with_stage`` and ``compose`` return new pipelines. Nothing is checked about
    dependencies until :meth:`build`, so stages may be added in any order; a stage
    that depends on itself is accepted too (a later ``with_stage`` may replace it)
    and :meth:`build` reports it as the cycle ``a -> a``, as 1.2.0 does.

    Args:
        name: Pipeline name.
        stages: Optional ``{name: UnifiedStageSpec}`` to start from.

    Raises:
        StageDefinitionTypeError: ``name`` is not a str or ``stages`` is not a mapping
            of UnifiedStageSpec.
        StageDefinitionError: a key of ``stages`` differs from its spec's name.
    """

    __slots__ = ("_name", "_stages")
    __hash__: ClassVar[None] = None  # type: ignore[assignment]

    def __init__(
        self, name: str = "pipeline", stages: Mapping[str, UnifiedStageSpec] | None = None
    ) -> None:
        if not isinstance(name, str):
            raise StageDefinitionTypeError(
                f"Pipeline name must be a str; got {type(name).__name__}"
            )
        self._name = name
        self._stages: StageTable[UnifiedStageSpec] = StageTable.from_mapping(
            stages, "Pipeline", UnifiedStageSpec
        )

    @classmethod
    def _from_table(cls, name: str, stages: StageTable[UnifiedStageSpec]) -> Pipeline:
        pipeline = cls.__new__(cls)
        pipeline._name = name
        pipeline._stages = stages
        return pipeline

    @property
    def name(self) -> str:
        """The pipeline name."""
        return self._name

    @property
    def stages(self) -> Mapping[str, UnifiedStageSpec]:
        """Read-only ``{stage name: UnifiedStageSpec}`` in insertion order."""
        return self._stages

    # A class may take ``config`` (its constructor's keywords); an instance or a
    # callable may not, which the second overload states: only an empty mapping (the
    # runtime accepts ``{}``) or None.
    @overload
    def with_stage(
        self,
        name: str,
        runner: type[UnifiedStageRunner],
        kind: StageKind,
        dependencies: tuple[str, ...] | None = None,
        conditional: bool = False,
        config: Mapping[str, Any] | None = None,
    ) -> Pipeline: ...

    @overload
    def with_stage(
        self,
        name: str,
        runner: UnifiedStageRunner | Callable[[StageContext], Awaitable[UnifiedStageResult]],
        kind: StageKind,
        dependencies: tuple[str, ...] | None = None,
        conditional: bool = False,
        config: Mapping[str, Never] | None = None,
    ) -> Pipeline: ...

    def with_stage(
        self,
        name: str,
        runner: UnifiedRunnerLike,
        kind: StageKind,
        dependencies: tuple[str, ...] | None = None,
        conditional: bool = False,
        config: Mapping[str, Any] | None = None,
    ) -> Pipeline:
        """Return a new pipeline with this stage added (or replaced in place, if it exists).

        ``runner`` is a stage class (instantiated with ``config`` for every execution),
        a stage instance, or an async callable; its ``execute`` (or the callable) takes a
        :class:`~stageflow_trio.core.StageContext`. A PipelineContext stage belongs to
        :class:`~stageflow_trio.pipeline.builder.PipelineBuilder` instead.

        Raises:
            PipelineConfigError: (a ValueError) "config can only be used with stage
                classes".
            StageDefinitionError / StageDefinitionTypeError: see :class:`UnifiedStageSpec`.
        """
        # Checked first, as the reference does, so this message wins over the others.
        if config and not isinstance(runner, type):
            raise PipelineConfigError(_CONFIG_NEEDS_CLASS)
        spec = UnifiedStageSpec(name, runner, kind, dependencies, conditional, config)
        return Pipeline._from_table(self._name, self._stages.with_entry(name, spec))

    def compose(self, other: Pipeline) -> Pipeline:
        """Merge ``other``'s stages into a new pipeline that keeps this one's name.

        A stage both define takes ``other``'s spec at this pipeline's position.

        Raises:
            StageDefinitionTypeError: ``other`` is not a Pipeline.
        """
        if not isinstance(other, Pipeline):
            raise StageDefinitionTypeError(
                f"Pipeline.compose expects a Pipeline; got {type(other).__name__}"
            )
        merged = dict(self._stages.items())
        merged.update(other._stages.items())
        return Pipeline._from_table(self._name, StageTable.from_items(merged.items()))

    def build(
        self,
        *,
        guard_retry_strategy: GuardRetryStrategy | None = None,
        cleanup_timeout: float = 10.0,
        interceptors: Sequence[BaseInterceptor] | None = None,
        wide_event_emitter: WideEventEmitter | None = None,
        emit_stage_wide_events: bool = False,
        emit_pipeline_wide_event: bool = False,
    ) -> UnifiedStageGraph:
        """Validate the stages and return a UnifiedStageGraph that runs them.

        Each runner becomes ``async (ctx) -> output``: a class is instantiated with its
        ``config`` for every execution, an instance's ``execute(ctx)`` is awaited, and
        an async callable is used as is. The keywords go to the graph unchanged (an
        unknown one is a TypeError naming it, as for any Python call).

        Args:
            guard_retry_strategy: Guard-retry policies for GUARD stages.
            cleanup_timeout: Seconds that a run's cleanup callbacks share.
            interceptors: The interceptor chain; none when omitted (unlike the legacy
                graph, the unified graph has no default chain).
            wide_event_emitter: Emitter for ``stage.wide`` / ``pipeline.wide`` (a default
                one when either flag below is set).
            emit_stage_wide_events: Emit ``stage.wide`` after each stage.
            emit_pipeline_wide_event: Emit ``pipeline.wide`` when a run ends.

        Raises:
            EmptyPipelineError: (a ValueError) "UnifiedStageGraph requires at least one
                UnifiedStageSpec".
            PipelineValidationError: a dependency is missing (``CONTRACT-004-MISSING_DEP``).
            CycleDetectedError: the dependencies form a cycle (``CONTRACT-004-CYCLE``).
        """
        if not self._stages:
            raise EmptyPipelineError("UnifiedStageGraph requires at least one UnifiedStageSpec")
        # The graph validates the dependencies (missing ones, then cycles) itself.
        specs = [
            GraphStageSpec(
                name=spec.name,
                runner=as_async_runner(spec.runner, spec.config),
                kind=spec.kind,
                dependencies=spec.dependencies,
                conditional=spec.conditional,
            )
            for spec in self._stages.values()
        ]
        return UnifiedStageGraph(
            specs,
            cleanup_timeout=cleanup_timeout,
            guard_retry_strategy=guard_retry_strategy,
            interceptors=interceptors,
            wide_event_emitter=wide_event_emitter,
            emit_stage_wide_events=emit_stage_wide_events,
            emit_pipeline_wide_event=emit_pipeline_wide_event,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Pipeline) or type(other) is not type(self):
            return NotImplemented
        return self._name == other._name and self._stages == other._stages

    def __repr__(self) -> str:
        return f"Pipeline(name={self._name!r}, stages={list(self._stages)})"
