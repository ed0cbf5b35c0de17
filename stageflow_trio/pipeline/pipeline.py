"""Pipeline: the immutable builder of unified stage graphs (``Stage`` classes and StageKind).

``Pipeline().with_stage("a", StageA, StageKind.TRANSFORM).build()`` returns a
:class:`~stageflow_trio.pipeline.dag.UnifiedStageGraph`; ``await pipeline.run(input_text=...)``
builds and runs it in one step and returns :class:`PipelineResults`, and
:func:`run_stage` does the same for a single stage. Unlike
:class:`~stageflow_trio.pipeline.builder.PipelineBuilder`, stages may be added in
any order; the dependencies are validated once, by :meth:`Pipeline.build`.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import reprlib
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from types import FunctionType, MethodType
from typing import TYPE_CHECKING, Any, ClassVar, Never, overload

import attrs

from stageflow_trio._args import type_of
from stageflow_trio._frozen import frozen_compat
from stageflow_trio._globals import register_global_reset
from stageflow_trio.core.stage_context import StageContext
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
from stageflow_trio.pipeline._entry_checks import check_instance
from stageflow_trio.pipeline.builder import StageTable
from stageflow_trio.pipeline.dag import UnifiedStageGraph as UnifiedStageGraph
from stageflow_trio.pipeline.dag import UnifiedStageSpec as GraphStageSpec
from stageflow_trio.pipeline.interceptors import (
    ChildTrackerMetricsInterceptor,
    LoggingInterceptor,
    MetricsInterceptor,
    TimeoutInterceptor,
    TracingInterceptor,
)
from stageflow_trio.pipeline.results import PipelineResults
from stageflow_trio.pipeline.spec import (
    PipelineConfigError,
    UnifiedRunnerLike,
    UnifiedStageResult,
    UnifiedStageRunner,
    as_async_runner,
)
from stageflow_trio.pipeline.validation import topologically_sorted_stage_names
from stageflow_trio.stages.context import PipelineContext

if TYPE_CHECKING:
    from stageflow_trio.core.stage_output import StageOutput
    from stageflow_trio.observability.wide_events import WideEventEmitter
    from stageflow_trio.pipeline.cancellation import CancellationToken
    from stageflow_trio.pipeline.guard_retry import GuardRetryStrategy
    from stageflow_trio.pipeline.interceptors import BaseInterceptor

__all__ = [
    "Pipeline",
    "PipelineResults",
    "UnifiedStageGraph",
    "UnifiedStageSpec",
    "run_stage",
    "stage",
]

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

    # _run_graph: the graph run() builds for its default options, kept because the
    # pipeline never changes (a graph holds no per-run state).
    __slots__ = ("_name", "_run_graph", "_stages")
    __hash__: ClassVar[None] = None  # type: ignore[assignment]

    def __init__(
        self, name: str = "pipeline", stages: Mapping[str, UnifiedStageSpec] | None = None
    ) -> None:
        if not isinstance(name, str):
            raise StageDefinitionTypeError(
                f"Pipeline name must be a str; got {type(name).__name__}"
            )
        self._name = name
        self._run_graph: UnifiedStageGraph | None = None
        self._stages: StageTable[UnifiedStageSpec] = StageTable.from_mapping(
            stages, "Pipeline", UnifiedStageSpec
        )

    @classmethod
    def _from_table(cls, name: str, stages: StageTable[UnifiedStageSpec]) -> Pipeline:
        pipeline = cls.__new__(cls)
        pipeline._name = name
        pipeline._stages = stages
        pipeline._run_graph = None
        return pipeline

    def __reduce__(self) -> tuple[Any, ...]:
        # The name and stages only: the kept run graph is rebuilt on the copy's first
        # run, and every pickle protocol works (0 and 1 refuse a slotted class).
        return (Pipeline._from_table, (self._name, self._stages))

    @property
    def name(self) -> str:
        """The pipeline name."""
        return self._name

    @property
    def stages(self) -> Mapping[str, UnifiedStageSpec]:
        """Read-only ``{stage name: UnifiedStageSpec}`` in insertion order."""
        return self._stages

    @classmethod
    def from_stages(cls, *specs: UnifiedStageSpec, name: str = "pipeline") -> Pipeline:
        """A pipeline named ``name`` holding ``specs`` (made by :func:`stage`), in order.

        Raises:
            StageDefinitionTypeError: a spec is not a UnifiedStageSpec, or ``name`` is
                not a str.
        """
        return cls(name).with_stages(*specs)

    def with_stages(self, *specs: UnifiedStageSpec) -> Pipeline:
        """A new pipeline with ``specs`` (made by :func:`stage`) added in order.

        Raises:
            StageDefinitionTypeError: a spec is not a UnifiedStageSpec.
        """
        stages = self._stages
        for index, spec in enumerate(specs):
            if not isinstance(spec, UnifiedStageSpec):
                raise StageDefinitionTypeError(
                    f"Pipeline.with_stages: specs[{index}] must be a UnifiedStageSpec "
                    f"(made by stage(...)); got {type_of(spec)}"
                )
            stages = stages.with_entry(spec.name, spec)
        return Pipeline._from_table(self._name, stages)

    # The typed forms are 1.2.0's: ``kind`` optional (read from the runner's ``kind``),
    # ``after=`` for dependencies, ``conditional`` and ``config`` by keyword. A class
    # may take ``config`` (its constructor's keywords); an instance or a callable may
    # not (only an empty mapping, which the runtime accepts, or None). The last
    # overload is 0.9.1's positional form, which keeps working.
    @overload
    def with_stage(
        self,
        name: str,
        runner: type[UnifiedStageRunner],
        kind: StageKind | str | None = None,
        dependencies: tuple[str, ...] | list[str] | None = None,
        *,
        after: str | tuple[str, ...] | list[str] | None = None,
        conditional: bool = False,
        config: Mapping[str, Any] | None = None,
    ) -> Pipeline: ...

    @overload
    def with_stage(
        self,
        name: str,
        runner: UnifiedStageRunner | Callable[[StageContext], Awaitable[UnifiedStageResult]],
        kind: StageKind | str | None = None,
        dependencies: tuple[str, ...] | list[str] | None = None,
        *,
        after: str | tuple[str, ...] | list[str] | None = None,
        conditional: bool = False,
        config: Mapping[str, Never] | None = None,
    ) -> Pipeline: ...

    @overload
    def with_stage(
        self,
        name: str,
        runner: UnifiedRunnerLike,
        kind: StageKind | str | None,
        dependencies: tuple[str, ...] | list[str] | None,
        conditional: bool,
        config: Mapping[str, Any] | None = None,
    ) -> Pipeline: ...

    def with_stage(
        self,
        name: str,
        runner: UnifiedRunnerLike,
        kind: StageKind | str | None = None,
        dependencies: tuple[str, ...] | list[str] | None = None,
        conditional: bool = False,
        config: Mapping[str, Any] | None = None,
        *,
        after: str | tuple[str, ...] | list[str] | None = None,
    ) -> Pipeline:
        """Return a new pipeline with this stage added (or replaced in place, if it exists).

        ``runner`` is a stage class (instantiated with ``config`` for every execution),
        a stage instance, or an async callable; its ``execute`` (or the callable) takes a
        :class:`~stageflow_trio.core.StageContext`. A PipelineContext stage belongs to
        :class:`~stageflow_trio.pipeline.builder.PipelineBuilder` instead. Arguments are
        those of :func:`stage`; ``conditional`` and ``config`` may also be passed
        positionally, as in 0.9.1.

        Raises:
            PipelineConfigError: (a ValueError) "config can only be used with stage
                classes".
            StageDefinitionError / StageDefinitionTypeError: see :func:`stage`.
        """
        spec = stage(
            name,
            runner,
            kind,
            dependencies,
            after=after,
            conditional=conditional,
            config=config,
        )
        return Pipeline._from_table(self._name, self._stages.with_entry(spec.name, spec))

    def get_stage(self, name: str) -> UnifiedStageSpec | None:
        """The spec of stage ``name``, or None when the pipeline has no such stage.

        Raises:
            TypeError: ``name`` is not a str.
        """
        if type(name) is not str:
            check_instance("Pipeline.get_stage", "name", name, str)
        return self._stages.get(name)

    def has_stage(self, name: str) -> bool:
        """Whether the pipeline has a stage called ``name``.

        Raises:
            TypeError: ``name`` is not a str.
        """
        if type(name) is not str:
            check_instance("Pipeline.has_stage", "name", name, str)
        return name in self._stages

    def stage_names(self) -> list[str]:
        """The stage names, each after its dependencies (ties in insertion order).

        A stage that could never run, in a cycle or after a dependency the
        pipeline lacks, is left out; :meth:`build` reports those.
        """
        return topologically_sorted_stage_names(self._stages)

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
        checked = GraphStageSpec._checked
        specs = [
            checked(
                spec.name,
                as_async_runner(spec.runner, spec.config),
                spec.kind,
                spec.dependencies,
                spec.conditional,
            )
            for spec in self._stages.values()
        ]
        return UnifiedStageGraph(
            specs,
            pipeline_name=self._name,
            cleanup_timeout=cleanup_timeout,
            guard_retry_strategy=guard_retry_strategy,
            interceptors=interceptors,
            wide_event_emitter=wide_event_emitter,
            emit_stage_wide_events=emit_stage_wide_events,
            emit_pipeline_wide_event=emit_pipeline_wide_event,
        )

    async def run(
        self,
        ctx: StageContext | PipelineContext | None = None,
        /,
        *,
        interceptors: Sequence[BaseInterceptor] | None = None,
        guard_retry_strategy: GuardRetryStrategy | None = None,
        emit_stage_wide_events: bool = False,
        emit_pipeline_wide_event: bool = False,
        wide_event_emitter: WideEventEmitter | None = None,
        cleanup_timeout: float = 10.0,
        cancel_token: CancellationToken | None = None,
        **context_kwargs: Any,
    ) -> PipelineResults:
        """Build this pipeline and run it once; a checkpoint.

        Pass a context as ``ctx``, or the keywords of
        :meth:`PipelineContext.create <stageflow_trio.stages.context.PipelineContext.create>`
        (``input_text=``, ``topology=`` (default: the pipeline's name), the run ids
        such as ``pipeline_run_id=``, ``execution_mode=``, ``data=``,
        ``configuration=``, ``service=``, ``db=``, ``event_sink=`` (default: the
        global sink), ``ports=``, ``canceled=``, ``artifacts=``, ...), not both: as
        stageflow 1.2.0, the run starts with that PipelineContext, which the
        interceptors see (so ``data={"_timeout_ms": 2500}`` sets a stage timeout).

        ``interceptors=None`` uses the default interceptors that act within one run
        (timeout, tracing, metrics, child-tracker metrics, logging) and sets no
        stage timeout unless one is configured (``ctx.data["_timeout_ms"]`` or a
        TimeoutInterceptor passed in ``interceptors``); ``interceptors=[]`` runs
        the stages with no chain. With the default options the built graph is
        kept and reused by later runs of this pipeline. The other keywords go to :meth:`build` and
        ``UnifiedStageGraph.run``.

        Returns:
            The stages' outputs by name (every stage that finished).

        Raises:
            TypeError: an unknown keyword, or a bad argument type (``data``,
                ``configuration`` and ``metadata`` must be mappings, ``artifacts``
                a list); the run's ``data["_timeout_ms"]`` is not an int or float while
                a TimeoutInterceptor is in the chain (the default chain has one).
            ValueError: both ``ctx`` and context keywords; ``data["_timeout_ms"]`` is NaN.
            UnifiedStageExecutionError: a stage failed.
            UnifiedPipelineCancelled: a stage asked to cancel the run (its
                ``results`` a PipelineResults).
            EmptyPipelineError, PipelineValidationError, CycleDetectedError: see
                :meth:`build`.
        """
        if ctx is None:
            context_kwargs.setdefault("topology", self._name)
            ctx = _context_from_kwargs("Pipeline.run", context_kwargs)
        elif context_kwargs:
            raise ValueError("Pass either ctx or PipelineContext keyword fields, not both")
        if (
            interceptors is None
            and guard_retry_strategy is None
            and wide_event_emitter is None
            and cleanup_timeout == 10.0
            and emit_stage_wide_events is False
            and emit_pipeline_wide_event is False
        ):
            graph = self._run_graph
            if graph is None:
                graph = self._run_graph = self.build(interceptors=_default_chain())
        else:
            graph = self.build(
                guard_retry_strategy=guard_retry_strategy,
                cleanup_timeout=cleanup_timeout,
                interceptors=_default_chain() if interceptors is None else interceptors,
                wide_event_emitter=wide_event_emitter,
                emit_stage_wide_events=emit_stage_wide_events,
                emit_pipeline_wide_event=emit_pipeline_wide_event,
            )
        _check_run_timeout(ctx, interceptors)
        # PipelineResults, and so is a UnifiedPipelineCancelled's results (as 1.2.0).
        return await graph.run(ctx, cancel_token=cancel_token)

    async def invoke(
        self,
        input_text_or_ctx: str | StageContext | PipelineContext | None = None,
        /,
        *,
        interceptors: Sequence[BaseInterceptor] | None = None,
        guard_retry_strategy: GuardRetryStrategy | None = None,
        emit_stage_wide_events: bool = False,
        emit_pipeline_wide_event: bool = False,
        wide_event_emitter: WideEventEmitter | None = None,
        cleanup_timeout: float = 10.0,
        cancel_token: CancellationToken | None = None,
        **context_kwargs: Any,
    ) -> PipelineResults:
        """:meth:`run`, with the input text (or the context) as the positional argument.

        Raises:
            TypeError: the positional argument is neither a str, a context nor None;
                or as :meth:`run`.
            ValueError: ``input_text`` twice, or a context with context keywords.
        """
        if isinstance(input_text_or_ctx, str):
            if "input_text" in context_kwargs:
                raise ValueError("input_text provided twice")
            context_kwargs["input_text"] = input_text_or_ctx
            ctx = None
        elif input_text_or_ctx is None or isinstance(
            input_text_or_ctx, StageContext | PipelineContext
        ):
            if input_text_or_ctx is not None and "input_text" in context_kwargs:
                raise ValueError("Do not pass input_text when invoke() receives a context object")
            ctx = input_text_or_ctx
        else:
            raise TypeError(
                "Pipeline.invoke: input_text_or_ctx must be a str, a StageContext, a "
                f"PipelineContext or None; got {type_of(input_text_or_ctx)}"
            )
        return await self.run(
            ctx,
            interceptors=interceptors,
            guard_retry_strategy=guard_retry_strategy,
            emit_stage_wide_events=emit_stage_wide_events,
            emit_pipeline_wide_event=emit_pipeline_wide_event,
            wide_event_emitter=wide_event_emitter,
            cleanup_timeout=cleanup_timeout,
            cancel_token=cancel_token,
            **context_kwargs,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Pipeline) or type(other) is not type(self):
            return NotImplemented
        return self._name == other._name and self._stages == other._stages

    def __repr__(self) -> str:
        # The reference's dataclass repr: the stages as a {name: spec} dict (a list of
        # names before audit 26; PipelineBuilder's repr is the list, as the reference's).
        return f"Pipeline(name={self._name!r}, stages={self._stages!r})"


def _resolve_kind(name: str, runner: object, kind: object) -> StageKind:
    if kind is not None:
        return check_kind("UnifiedStageSpec", name, kind)
    # Read from the runner: a class or instance attribute (``@stage_metadata`` sets it).
    candidate = getattr(runner, "kind", None)
    if isinstance(candidate, StageKind):
        return candidate
    if isinstance(candidate, str):
        try:
            return StageKind(candidate)
        except ValueError:
            raise StageDefinitionError(
                f"Unsupported stage kind value on runner: {candidate!r}"
            ) from None
    raise StageDefinitionError(
        "kind is required unless the runner exposes a valid `.kind` attribute"
    )


def _resolve_dependencies(
    name: str,
    dependencies: tuple[str, ...] | list[str] | None,
    after: str | tuple[str, ...] | list[str] | None,
) -> tuple[str, ...] | list[str] | None:
    if after is None:
        return dependencies
    if dependencies is not None:
        raise StageDefinitionError("Use either dependencies=... or after=..., not both")
    if isinstance(after, str):
        return (after,)
    if isinstance(after, tuple | list):
        return after
    raise StageDefinitionTypeError(
        f"Pipeline {name!r}: after must be a stage name or a tuple or list of them; "
        f"got {type_of(after)}"
    )


def stage(
    name: str,
    runner: UnifiedRunnerLike,
    kind: StageKind | str | None = None,
    dependencies: tuple[str, ...] | list[str] | None = None,
    *,
    after: str | tuple[str, ...] | list[str] | None = None,
    conditional: bool = False,
    config: Mapping[str, Any] | None = None,
) -> UnifiedStageSpec:
    """A stage for :meth:`Pipeline.from_stages` / :meth:`Pipeline.with_stages`.

    Args:
        name: Stage name, unique within the pipeline.
        runner: A stage class, a stage instance or an async callable taking a
            StageContext.
        kind: The StageKind (or its value); when omitted, the runner's ``kind``
            attribute (a class decorated with ``@stage_metadata`` has one).
        dependencies: Names of the stages that must finish first.
        after: The same as ``dependencies``, as one name or several; not both.
        conditional: Whether the stage may be skipped.
        config: Keyword arguments for a class runner's constructor.

    Raises:
        PipelineConfigError: (a ValueError) ``config`` with a runner that is not a class.
        StageDefinitionError: (a ValueError) no ``kind`` and no usable ``runner.kind``,
            both ``dependencies`` and ``after``, or a blank name.
        StageDefinitionTypeError: (a TypeError) an argument has the wrong type.
    """
    # Checked first, as the reference does, so this message wins over the others.
    if config and not isinstance(runner, type):
        raise PipelineConfigError(_CONFIG_NEEDS_CLASS)
    name = check_name("UnifiedStageSpec", name)
    return UnifiedStageSpec(
        name,
        runner,
        _resolve_kind(name, runner, kind),
        _resolve_dependencies(name, dependencies, after),
        conditional,
        config,
    )


async def run_stage(
    name: str,
    runner: UnifiedRunnerLike,
    kind: StageKind | str | None = None,
    /,
    *,
    interceptors: Sequence[BaseInterceptor] | None = None,
    guard_retry_strategy: GuardRetryStrategy | None = None,
    emit_stage_wide_events: bool = False,
    emit_pipeline_wide_event: bool = False,
    wide_event_emitter: WideEventEmitter | None = None,
    cleanup_timeout: float = 10.0,
    cancel_token: CancellationToken | None = None,
    conditional: bool = False,
    config: Mapping[str, Any] | None = None,
    **context_kwargs: Any,
) -> StageOutput:
    """Run one stage as a pipeline of its own and return its output; a checkpoint.

    The pipeline is named after ``topology=`` when given, else ``"{name}_pipeline"``
    (also the run's topology). The other arguments are those of :func:`stage` and
    :meth:`Pipeline.run`.

    Raises:
        UnifiedStageExecutionError: the stage failed (also when it returns a FAIL
            output). Otherwise as :func:`stage` and :meth:`Pipeline.run`.
    """
    topology = context_kwargs.get("topology")
    pipeline = _one_stage_pipeline(
        str(topology or f"{name}_pipeline"), name, runner, kind, conditional, config
    )
    results = await pipeline.run(
        interceptors=interceptors,
        guard_retry_strategy=guard_retry_strategy,
        emit_stage_wide_events=emit_stage_wide_events,
        emit_pipeline_wide_event=emit_pipeline_wide_event,
        wide_event_emitter=wide_event_emitter,
        cleanup_timeout=cleanup_timeout,
        cancel_token=cancel_token,
        **context_kwargs,
    )
    return results.require(name)


# run_stage's one-stage pipelines, so that repeated calls reuse the built graph
# (Pipeline.run keeps it). Only for function, method and class runners without
# config: their equality is identity (a method: the same function of the same
# object), so an entry can never stand for a different stage. Bounded; the
# oldest entry goes first.
_ONE_STAGE_PIPELINES: dict[tuple[Any, ...], Pipeline] = {}
_ONE_STAGE_PIPELINES_MAX = 256
register_global_reset(_ONE_STAGE_PIPELINES.clear)


def _one_stage_pipeline(
    pipeline_name: str,
    name: str,
    runner: UnifiedRunnerLike,
    kind: StageKind | str | None,
    conditional: bool,
    config: Mapping[str, Any] | None,
) -> Pipeline:
    if (
        config
        or not isinstance(runner, type | FunctionType | MethodType)
        or not _well_typed(name, kind, conditional)
    ):
        return Pipeline(pipeline_name).with_stages(
            stage(name, runner, kind, conditional=conditional, config=config)
        )
    # The types are part of the key: True == 1 and "work" == StageKind.WORK, but only
    # a bool is a valid conditional (the kinds resolve to the same member).
    key = (pipeline_name, name, runner, kind, conditional, type(conditional))
    pipeline = _ONE_STAGE_PIPELINES.get(key)
    if pipeline is None:
        pipeline = Pipeline(pipeline_name).with_stages(
            stage(name, runner, kind, conditional=conditional)
        )
        if len(_ONE_STAGE_PIPELINES) >= _ONE_STAGE_PIPELINES_MAX:
            _evict_oldest_one_stage_pipeline()
        _ONE_STAGE_PIPELINES[key] = pipeline
    return pipeline


def _evict_oldest_one_stage_pipeline() -> None:
    """Drop the oldest entry of the run_stage cache, tolerating other threads.

    Several threads (a trio run in each) may evict at once: the oldest key one
    of them reads may be gone, or the dict may change while it is read, by the
    time it deletes. Either way an entry has gone, which is all this is for.
    """
    # StopIteration: emptied meanwhile; RuntimeError: changed size while read.
    with contextlib.suppress(StopIteration, RuntimeError):
        _ONE_STAGE_PIPELINES.pop(next(iter(_ONE_STAGE_PIPELINES)), None)


def _well_typed(name: object, kind: object, conditional: object) -> bool:
    # Anything else is refused by stage(), with the message with_stage gives; an
    # unhashable name, kind or conditional would fail in the cache look-up instead.
    return isinstance(name, str) and isinstance(kind, str | None) and type(conditional) is bool


@functools.cache
def _default_chain() -> tuple[BaseInterceptor, ...]:
    """The chain of ``run(interceptors=None)``: the default interceptors that act within a run.

    These hold no state between calls, so one chain serves every run. Two members
    of ``get_default_interceptors()`` are left out: a circuit breaker and an
    idempotency store made for one run (as 1.2.0 makes them) can never act, since
    their state would last a single run in which each stage runs once; pass
    long-lived instances in ``interceptors`` to use them. The timeout interceptor
    sets no limit unless ``ctx.data["_timeout_ms"]`` asks for one: 1.2.0 gives
    every stage a silent 30 s limit here, and a limit is the caller's decision.
    """
    timeout = TimeoutInterceptor()
    timeout.DEFAULT_TIMEOUT_MS = 0  # 0: no timeout
    return (
        timeout,
        TracingInterceptor(),
        MetricsInterceptor(),
        ChildTrackerMetricsInterceptor(),
        LoggingInterceptor(),
    )


_NO_VALUE: Any = object()


def _check_run_timeout(ctx: object, interceptors: Sequence[BaseInterceptor] | None) -> None:
    """Refuse a bad ``data["_timeout_ms"]`` before the run starts (one look-up per run).

    The run's TimeoutInterceptor copies it into each stage's timeout, where a bad
    value would otherwise fail the first stage (a UnifiedStageExecutionError).
    Checked only where it is read: the run's PipelineContext (``ctx`` or the one a
    StageContext was derived from), with a TimeoutInterceptor in the chain.

    Raises:
        TypeError: not an int or float (a bool, a str, None, ...).
        ValueError: NaN.
    """
    source = ctx if type(ctx) is PipelineContext else getattr(ctx, "cancellation", None)
    if not isinstance(source, PipelineContext):
        return
    value = source.data.get("_timeout_ms", _NO_VALUE)
    if value is _NO_VALUE or type(value) is int:
        return
    if isinstance(value, int | float) and not isinstance(value, bool) and value == value:
        return  # a float (inf included) or an int subclass; <= 0: no timeout
    if interceptors is not None and not any(
        isinstance(interceptor, TimeoutInterceptor) for interceptor in interceptors
    ):
        return  # nothing reads it
    where = "Pipeline.run: data['_timeout_ms']"
    if isinstance(value, float):  # NaN: the right type, a meaningless value
        raise ValueError(f"{where} must be a number of milliseconds, not NaN")  # noqa: TRY004
    raise TypeError(
        f"{where} must be a number of milliseconds (int or float; <= 0: no timeout); "
        f"got {type_of(value)} {reprlib.repr(value)}"
    )


# The keywords Pipeline.run / invoke / run_stage take for the run's context: those
# of PipelineContext.create, read from its signature so the two cannot drift.
_CONTEXT_KEYWORDS = frozenset(inspect.signature(PipelineContext.create).parameters)
# PipelineContext.create copies these (``x.copy()``, ``list(x)``): checked first,
# so a wrong type is a TypeError naming the keyword, not an AttributeError from
# inside create. Any Mapping is taken (as a dict), as a snapshot's metadata is.
_CONTEXT_MAPPINGS = ("configuration", "metadata", "data")


def _context_from_kwargs(owner: str, kwargs: dict[str, Any]) -> PipelineContext:
    """The run's root context: ``PipelineContext.create(**kwargs)``, as stageflow 1.2.0 makes it."""
    for key in kwargs:
        if key not in _CONTEXT_KEYWORDS:
            raise TypeError(f"{owner}() got an unexpected keyword argument {key!r}")
    for key in _CONTEXT_MAPPINGS:
        value = kwargs.get(key)
        if value is not None and type(value) is not dict:
            if not isinstance(value, Mapping):
                raise TypeError(f"{owner}: {key} must be a mapping or None; got {type_of(value)}")
            kwargs[key] = dict(value)
    artifacts = kwargs.get("artifacts")
    if artifacts is not None and (
        isinstance(artifacts, str | bytes | Mapping) or not isinstance(artifacts, Iterable)
    ):
        raise TypeError(
            f"{owner}: artifacts must be a list of StageArtifact or None; got {type_of(artifacts)}"
        )
    return PipelineContext.create(**kwargs)
