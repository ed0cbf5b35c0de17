"""The DAG executors: the legacy :class:`StageGraph` and :class:`UnifiedStageGraph`.

A graph checks its specs and options once, resolves the defaults that live in
this layer (the default interceptor chain, a default ``WideEventEmitter``, the
guard-retry policies) and freezes them into a plan; the engine
(:mod:`stageflow_trio._engine`) runs the plan and never sees the graph.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import attrs

from stageflow_trio._args import check_flag
from stageflow_trio._engine._graph_errors import StageExecutionError as StageExecutionError
from stageflow_trio._engine._graph_errors import (
    UnifiedPipelineCancelled as UnifiedPipelineCancelled,
)
from stageflow_trio._engine._graph_errors import (
    UnifiedStageExecutionError as UnifiedStageExecutionError,
)
from stageflow_trio._engine._legacy import legacy_invoker, run_legacy
from stageflow_trio._engine._plan import LegacyPlan, UnifiedPlan
from stageflow_trio._engine._scheduler import Topology
from stageflow_trio._engine._token import CancellationToken
from stageflow_trio._engine._unified import current_run, run_unified
from stageflow_trio._exports import publish
from stageflow_trio._frozen import frozen_compat
from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.core.stage_enums import StageKind
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.pipeline._checks import (
    StageDefinitionTypeError,
    check_bool,
    check_kind,
    check_name,
    check_names,
    check_runner,
)
from stageflow_trio.pipeline._entry_checks import (
    check_cancel_token,
    check_instance,
    check_interceptors,
    check_optional,
    check_specs,
    expected_name,
    type_name,
)
from stageflow_trio.pipeline._validation import validate_dependencies
from stageflow_trio.pipeline.interceptors import BaseInterceptor, get_default_interceptors
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.stages.inputs import StageInputs

if TYPE_CHECKING:
    from stageflow_trio._engine._cleanup import CleanupRegistry
    from stageflow_trio._engine._unified_run import UnifiedRun
    from stageflow_trio.observability.wide_events import WideEventEmitter
    from stageflow_trio.pipeline.guard_retry import GuardRetryPolicy, GuardRetryStrategy
    from stageflow_trio.pipeline.results import PipelineResults
    from stageflow_trio.stages.result import StageResult

__all__ = [
    "StageExecutionError",
    "StageGraph",
    "StageSpec",
    "UnifiedPipelineCancelled",
    "UnifiedStageExecutionError",
    "UnifiedStageGraph",
    "UnifiedStageSpec",
]


def _check_name(instance: object, _: attrs.Attribute[str], value: object) -> None:
    check_name(type(instance).__name__, value)


def _normalize_dependencies(spec: Any) -> None:
    # Runs after the name is checked, so errors can name the stage.
    names = check_names(type(spec).__name__, spec.name, "dependencies", spec.dependencies)
    object.__setattr__(spec, "dependencies", names)


@frozen_compat
@attrs.frozen(kw_only=True)
class StageSpec:
    """A stage of the legacy :class:`StageGraph`.

    ``runner`` is a stage class (instantiated for each run, then
    ``execute(ctx)`` is awaited), an object with an async ``execute(ctx)``, or an
    async callable ``runner(ctx)``; it returns a StageResult, a StageOutput, a
    dict or None.
    """

    name: str = attrs.field(validator=_check_name)
    runner: Any
    dependencies: tuple[str, ...] = ()
    conditional: bool = False

    def __attrs_post_init__(self) -> None:
        _normalize_dependencies(self)
        check_runner(type(self).__name__, self.name, self.runner)
        check_bool(type(self).__name__, self.name, "conditional", self.conditional)


@frozen_compat
@attrs.frozen(kw_only=True)
class UnifiedStageSpec:
    """A stage of :class:`UnifiedStageGraph`: ``runner`` is ``async (StageContext) -> StageOutput``."""

    name: str = attrs.field(validator=_check_name)
    runner: Callable[[StageContext], Awaitable[StageOutput | Mapping[str, Any] | None]]
    kind: StageKind | None = None
    dependencies: tuple[str, ...] = ()
    conditional: bool = False

    def __attrs_post_init__(self) -> None:
        _normalize_dependencies(self)
        if not callable(self.runner):
            raise StageDefinitionTypeError(
                f"UnifiedStageSpec {self.name!r}: runner must be an async callable"
                f" (StageContext) -> StageOutput; got {type(self.runner).__name__}"
            )
        if self.kind is not None:
            object.__setattr__(self, "kind", check_kind("UnifiedStageSpec", self.name, self.kind))
        check_bool("UnifiedStageSpec", self.name, "conditional", self.conditional)

    @classmethod
    def _checked(
        cls,
        name: str,
        runner: Callable[[StageContext], Awaitable[StageOutput | Mapping[str, Any] | None]],
        kind: StageKind,
        dependencies: tuple[str, ...],
        conditional: bool,
    ) -> UnifiedStageSpec:
        """A spec from fields a :class:`~stageflow_trio.pipeline.pipeline.Pipeline` checked.

        ``Pipeline.build`` makes one per stage from its own specs, whose fields went
        through the same checks: checking them again cost more than the rest of
        the build.
        """
        spec = object.__new__(cls)
        object.__setattr__(spec, "name", name)
        object.__setattr__(spec, "runner", runner)
        object.__setattr__(spec, "kind", kind)
        object.__setattr__(spec, "dependencies", dependencies)
        object.__setattr__(spec, "conditional", conditional)
        return spec


def _by_name(specs: Iterable[Any], spec_type: type[Any], graph: str) -> dict[str, Any]:
    """``{name: spec}``, after checking the specs' type, that there is one, and the dependencies."""
    check_specs(graph, specs)
    by_name: dict[str, Any] = {}
    for index, spec in enumerate(specs):
        if not isinstance(spec, spec_type):
            raise TypeError(
                f"{graph}: specs[{index}] must be a {expected_name(spec, spec_type)}; "
                f"got {type_name(spec, spec_type)}{_hint(spec, spec_type)}"
            )
        by_name[spec.name] = spec
    if not by_name:
        raise ValueError(f"{graph} requires at least one {spec_type.__name__}")
    validate_dependencies({name: spec.dependencies for name, spec in by_name.items()})
    return by_name


def _check_options(
    graph: str,
    interceptors: object,
    wide_event_emitter: object,
    emit_stage_wide_events: object,
    emit_pipeline_wide_event: object,
) -> WideEventEmitter | None:
    """The options both graphs take: TypeError naming the parameter, at construction.

    Returns the graph's wide-event emitter: the one given, a default one when
    either flag is set without one, else None. An emitter need not be a
    ``WideEventEmitter``: the runs call only its ``emit_stage_event`` (with
    ``emit_stage_wide_events``) and ``emit_pipeline_event`` (with
    ``emit_pipeline_wide_event``), as the reference's graphs do, so test doubles and
    emitters written for it work. It needs the methods its flags will call (both
    when no flag is set, as nothing then says which it is for); a class is
    refused, as its methods are unbound.
    """
    check_interceptors(graph, interceptors)
    check_flag(graph, "emit_stage_wide_events", emit_stage_wide_events)
    check_flag(graph, "emit_pipeline_wide_event", emit_pipeline_wide_event)
    if wide_event_emitter is None and not (emit_stage_wide_events or emit_pipeline_wide_event):
        return None
    # Loaded with the first graph that has wide events, not with the graphs.
    from stageflow_trio.observability.wide_events import WideEventEmitter

    if wide_event_emitter is None:
        return WideEventEmitter()
    if isinstance(wide_event_emitter, WideEventEmitter):
        return wide_event_emitter
    if isinstance(wide_event_emitter, type):
        name = wide_event_emitter.__name__
        raise TypeError(
            f"{graph}: wide_event_emitter must be an instance; got the class {name} (pass {name}())"
        )
    needed = [
        method
        for method, flag in (
            ("emit_stage_event", emit_stage_wide_events),
            ("emit_pipeline_event", emit_pipeline_wide_event),
        )
        if flag
    ] or ["emit_stage_event", "emit_pipeline_event"]
    if not all(callable(getattr(wide_event_emitter, method, None)) for method in needed):
        raise TypeError(
            f"{graph}: wide_event_emitter must be a WideEventEmitter (or have "
            f"{' and '.join(f'{method}()' for method in needed)}) or None; "
            f"got {type_name(wide_event_emitter, WideEventEmitter)}"
        )
    return cast("WideEventEmitter", wide_event_emitter)


def _checked_context(ctx: object) -> StageContext:
    """``UnifiedStageGraph.run``'s ctx, checked; one without inputs gets empty ones.

    The reference runs a context whose ``inputs`` is None (its stages see no
    ports), so this does too, instead of failing on ``None.ports``.
    """
    if isinstance(ctx, PipelineContext):  # a subclass
        return ctx.derive_root_stage_context()
    check_instance("UnifiedStageGraph.run", "ctx", ctx, StageContext)
    assert isinstance(ctx, StageContext)
    inputs: StageInputs | None = (
        ctx.inputs
    )  # typed as required; None is accepted, as in the reference
    if inputs is None:
        return attrs.evolve(ctx, inputs=StageInputs(snapshot=ctx.snapshot))
    return ctx


def _hint(spec: object, spec_type: type[Any]) -> str:
    # The Pipeline's spec shares the graph spec's name; say how to get from one to the other.
    if type(spec).__module__ == "stageflow_trio.pipeline.pipeline":
        return " (a Pipeline stage: build the graph with Pipeline.build())"
    # The reference's interceptor guide builds StageGraph(specs=pipeline.build().stage_specs,
    # interceptors=...); the unified graph takes the interceptors itself.
    if spec_type is StageSpec and isinstance(spec, UnifiedStageSpec):
        return (
            " (a UnifiedStageGraph stage, as in Pipeline.build().stage_specs: pass the"
            " interceptors to Pipeline.build(interceptors=...) instead)"
        )
    return ""


def _topology(specs: Mapping[str, Any]) -> Topology:
    return Topology({name: spec.dependencies for name, spec in specs.items()})


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
        wide_event_emitter: Emitter for ``stage.wide`` / ``pipeline.wide`` (a
            ``WideEventEmitter``, or an object with the ``emit_stage_event`` /
            ``emit_pipeline_event`` the flags below call).
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
        wide_event_emitter = _check_options(
            "StageGraph",
            interceptors,
            wide_event_emitter,
            emit_stage_wide_events,
            emit_pipeline_wide_event,
        )
        by_name: dict[str, StageSpec] = _by_name(specs, StageSpec, "StageGraph")
        self._specs = by_name
        self._plan = LegacyPlan(
            invokers={name: legacy_invoker(name, spec.runner) for name, spec in by_name.items()},
            topology=_topology(by_name),
            interceptors=get_default_interceptors() if interceptors is None else interceptors,
            emitter=wide_event_emitter,
            emit_stage_wide=emit_stage_wide_events and wide_event_emitter is not None,
            emit_pipeline_wide=emit_pipeline_wide_event and wide_event_emitter is not None,
        )

    @property
    def stage_specs(self) -> list[StageSpec]:
        """The stage specs, in insertion order."""
        return list(self._specs.values())

    async def run(self, ctx: PipelineContext) -> dict[str, StageResult]:
        """Run the graph once. A checkpoint.

        A cancellation point as it starts, a schedule point as it ends (for a chain,
        when the checkpoint budget says one is due; see docs/engine.md).

        Returns:
            Each stage's StageResult by name ("completed" or "failed").

        Raises:
            StageExecutionError: an interceptor raised CriticalInterceptorError;
                the running stages are cancelled first.
        """
        if type(ctx) is not PipelineContext:
            check_instance("StageGraph.run", "ctx", ctx, PipelineContext)
        return await run_legacy(self._plan, ctx)


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
            (a default one when either flag is set; any object with the
            ``emit_stage_event`` / ``emit_pipeline_event`` the flags below call
            will do).
        emit_stage_wide_events: Emit ``stage.wide`` after each stage.
        emit_pipeline_wide_event: Emit ``pipeline.wide`` when the run ends
            (completed, failed or cancelled by a stage or token).
        pipeline_name: The name ``pipeline.wide`` reports (stageflow 1.2;
            ``Pipeline.build`` passes the pipeline's name); the run context's
            topology when None or empty.
    """

    def __init__(
        self,
        specs: Iterable[UnifiedStageSpec],
        *,
        pipeline_name: str | None = None,
        cleanup_timeout: float = 10.0,
        guard_retry_strategy: GuardRetryStrategy | None = None,
        interceptors: Sequence[BaseInterceptor] | None = None,
        wide_event_emitter: WideEventEmitter | None = None,
        emit_stage_wide_events: bool = False,
        emit_pipeline_wide_event: bool = False,
    ) -> None:
        wide_event_emitter = _check_options(
            "UnifiedStageGraph",
            interceptors,
            wide_event_emitter,
            emit_stage_wide_events,
            emit_pipeline_wide_event,
        )
        # Imported here: guard_retry imports nothing of the graphs, but its policies
        # are only needed by graphs that use them.
        from stageflow_trio.pipeline.guard_retry import GuardRetryStrategy

        check_optional(
            "UnifiedStageGraph", "guard_retry_strategy", guard_retry_strategy, GuardRetryStrategy
        )
        check_optional("UnifiedStageGraph", "pipeline_name", pipeline_name, str)
        by_name: dict[str, UnifiedStageSpec] = _by_name(
            specs, UnifiedStageSpec, "UnifiedStageGraph"
        )
        policies: dict[str, GuardRetryPolicy] = {}
        if guard_retry_strategy is not None:
            guard_retry_strategy.validate(by_name)
            for name, spec in by_name.items():
                policy = guard_retry_strategy.get_policy(name)
                if policy is not None and spec.kind == StageKind.GUARD:
                    policies[name] = policy
        self._specs = by_name
        self._plan = UnifiedPlan(
            specs=by_name,
            topology=_topology(by_name),
            policies=policies,
            interceptors=interceptors,
            emitter=wide_event_emitter,
            emit_stage_wide=emit_stage_wide_events,
            emit_pipeline_wide=emit_pipeline_wide_event,
            cleanup_timeout=cleanup_timeout,
            pipeline_name=pipeline_name,
        )
        # The runs in progress, oldest first: a dict used as an ordered set, so a run
        # ends in O(1) however many runs of this graph overlap.
        self._runs: dict[UnifiedRun, None] = {}

    @property
    def stage_specs(self) -> list[UnifiedStageSpec]:
        """The stage specs, in insertion order."""
        return list(self._specs.values())

    def _run_here(self) -> UnifiedRun | None:
        """The caller's run of this graph, else the most recently started one in progress."""
        run = current_run(self._plan, self._runs)
        if run is None and self._runs:
            run = next(reversed(self._runs))
        return run

    @property
    def cancel_token(self) -> CancellationToken | None:
        """The token of the run the caller belongs to.

        Called from a stage (or a task it started): that stage's run. Elsewhere: the
        most recently started run still in progress, else ``None``.
        """
        run = self._run_here()
        return run.token if run is not None else None

    @property
    def cleanup_registry(self) -> CleanupRegistry | None:
        """The cleanup registry of the run the caller belongs to (as :attr:`cancel_token`)."""
        run = self._run_here()
        return run.registry if run is not None else None

    def register_cleanup(
        self, callback: Callable[[], Awaitable[Any]], *, name: str | None = None
    ) -> None:
        """Register ``callback`` with the run of this graph the caller belongs to.

        Call it from a stage (or a task the stage started, or a cleanup callback of
        the run): the callback runs when that run ends, even with other runs of the
        graph in progress. ``StageContext.register_cleanup`` does the same from the
        stage's context.

        Raises:
            RuntimeError: The caller is in no run of this graph.
        """
        run = current_run(self._plan, self._runs)
        if run is None:
            raise RuntimeError(
                "UnifiedStageGraph.register_cleanup() was called outside any run of this"
                " graph; call it from one of its stages, or use ctx.register_cleanup()"
            )
        run.registry.register(callback, name=name)

    async def run(
        self,
        ctx: StageContext | PipelineContext,
        *,
        cancel_token: CancellationToken | None = None,
    ) -> PipelineResults:
        """Run the graph once. A checkpoint.

        A cancellation point as it starts, a schedule point as it ends (for a chain,
        when the checkpoint budget says one is due; see docs/engine.md).

        Args:
            ctx: The run's context. A :class:`PipelineContext` (stageflow 1.2's
                preferred entry) is turned into the root StageContext with
                ``derive_root_stage_context()``; its interceptors see that
                PipelineContext, its before-stage-start hooks run before each stage,
                and ``ctx.mark_canceled(reason)`` cancels the run (as the token
                does). A StageContext (0.9.1's entry) works as before; one derived
                from a PipelineContext follows that context the same way.
            cancel_token: Cancelling it stops the run: running stages are
                interrupted at their next checkpoint and
                :class:`UnifiedPipelineCancelled` is raised with stage
                ``"<external>"``. A fresh token is used when omitted. The run
                never cancels it (it may be shared by other runs): the run gets
                a token of its own linked to this one (the one
                :attr:`cancel_token` gives its stages), which the run's
                PipelineContext and its stages' task groups cancel instead.

        Returns:
            Each stage's output by name: a :class:`PipelineResults` (a dict, with
            1.2.0's ``data()`` / ``require_ok()`` helpers), as 1.2.0's graph returns.

        Raises:
            UnifiedStageExecutionError: a stage raised or returned FAIL (also
                when guard retries are exhausted). Its running siblings are
                cancelled first.
            UnifiedPipelineCancelled: a stage returned CANCEL (or raised
                ``StageCancellationRequested``), or the token or the
                PipelineContext was cancelled.
        """
        if type(ctx) is PipelineContext:
            ctx = ctx.derive_root_stage_context()
        elif type(ctx) is not StageContext or ctx.inputs is None:
            ctx = _checked_context(ctx)
        unlink = None
        if cancel_token is None:
            cancel_token = CancellationToken()
        else:
            if type(cancel_token) is not CancellationToken:
                check_cancel_token("UnifiedStageGraph.run", cancel_token)
            # The caller's token may be shared with other runs (a service's shutdown
            # token): nothing this run does may cancel it (marking its PipelineContext
            # cancelled, a stage's StructuredTaskGroup given graph.cancel_token). The
            # run gets a token of its own that follows the caller's.
            caller_token = cancel_token
            cancel_token = CancellationToken()
            unlink = caller_token._link(cancel_token)
        try:
            source = ctx.cancellation
            if not isinstance(source, PipelineContext):
                return await run_unified(self._plan, ctx, cancel_token, self._runs)
            if source.canceled and source.cancellation_reason is None:
                # Made with canceled=True and no reason (mark_canceled always gives
                # one): the run ends with 1.2.0's reason for that case.
                cancel_token.cancel("Cancelled")
            # The context's cancellation cancels the run's token, which cancels the
            # run's scope: running stages stop at their next checkpoint.
            unsubscribe = source.on_cancel(cancel_token.cancel)
            try:
                return await run_unified(self._plan, ctx, cancel_token, self._runs)
            finally:
                unsubscribe()
        finally:
            if unlink is not None:
                unlink()


publish(__name__)
