"""Shortcuts for common DAG shapes on top of :class:`PipelineBuilder`.

Every helper returns a new builder (builders are immutable). Besides chains,
parallel stages, fan-out/fan-in and conditional branches, a duplex system
(:class:`DuplexSystemSpec`, :func:`with_duplex_system`) adds two directional lanes,
e.g. listen and speak, optionally joined by one stage (see docs/duplex.md).

Stages are added in dependency order, so each ``with_stage`` call validates
only the new stage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

import attrs

from stageflow_trio._frozen import frozen_compat
from stageflow_trio.pipeline._checks import StageDefinitionError, StageDefinitionTypeError
from stageflow_trio.pipeline.builder import PipelineBuilder
from stageflow_trio.pipeline.spec import LegacyRunnerLike

if TYPE_CHECKING:
    from stageflow_trio.observability.wide_events import WideEventEmitter
    from stageflow_trio.pipeline.dag import StageGraph

__all__ = [
    "DuplexLaneSpec",
    "DuplexSystemSpec",
    "FluentPipelineBuilder",
    "with_conditional_branch",
    "with_duplex_system",
    "with_fan_out_fan_in",
    "with_linear_chain",
    "with_parallel_stages",
]

StageFactory = Callable[[int], tuple[str, "LegacyRunnerLike"]]
"""``factory(index) -> (stage name, runner)``."""


def _check_count(helper: str, param: str, count: object) -> int:
    if isinstance(count, bool) or not isinstance(count, int):
        raise StageDefinitionTypeError(f"{helper}: {param} must be an int; got {count!r}")
    return count


def _check_builder(helper: str, builder: object) -> None:
    # Without this, a wrong builder fails deep inside as an AttributeError (with_stage).
    if not isinstance(builder, PipelineBuilder):
        raise StageDefinitionTypeError(
            f"{helper}: builder must be a PipelineBuilder; got {type(builder).__name__}"
        )


def _check_factory(helper: str, param: str, factory: object) -> None:
    if not callable(factory):
        raise StageDefinitionTypeError(
            f"{helper}: {param} must be a callable index -> (name, runner); "
            f"got {type(factory).__name__}"
        )


def _pair(helper: str, what: str, value: object) -> tuple[str, LegacyRunnerLike]:
    # The reference unpacks blindly; a wrong shape should say which argument it was.
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise StageDefinitionTypeError(
            f"{helper}: {what} must be a (name, runner) pair; got {value!r}"
        )
    name, runner = value
    return name, runner


def _chain(
    helper: str,
    builder: PipelineBuilder,
    count: int,
    stage_factory: StageFactory,
    first_depends_on: tuple[str, ...] | None,
) -> tuple[PipelineBuilder, str | None]:
    _check_builder(helper, builder)
    count = _check_count(helper, "count", count)
    if count <= 0:
        return builder, None
    _check_factory(helper, "stage_factory", stage_factory)
    result = builder
    previous: str | None = None
    for index in range(count):
        name, runner = _pair(helper, f"stage_factory({index})", stage_factory(index))
        deps = (first_depends_on or ()) if previous is None else (previous,)
        result = result.with_stage(name=name, runner=runner, dependencies=deps)
        previous = name
    return result, previous


def with_linear_chain(
    builder: PipelineBuilder,
    count: int,
    stage_factory: StageFactory,
    *,
    first_depends_on: tuple[str, ...] | None = None,
) -> PipelineBuilder:
    """Add ``count`` stages where each depends on the one before it.

    The first stage depends on ``first_depends_on`` (or nothing). ``count <= 0``
    returns ``builder`` unchanged.

    Raises:
        StageDefinitionTypeError: ``builder`` is not a PipelineBuilder, ``count`` is not an int, the factory is not callable
            or returns something other than a ``(name, runner)`` pair.
        PipelineValidationError: a dependency is missing (``CONTRACT-004-MISSING_DEP``).
    """
    result, _ = _chain("with_linear_chain", builder, count, stage_factory, first_depends_on)
    return result


def with_parallel_stages(
    builder: PipelineBuilder,
    count: int,
    stage_factory: StageFactory,
    *,
    depends_on: tuple[str, ...] | None = None,
    _prefix: str = "parallel",
) -> PipelineBuilder:
    """Add ``count`` independent stages that all depend on ``depends_on`` (or nothing).

    ``count <= 0`` returns ``builder`` unchanged. ``_prefix`` is accepted for
    compatibility and unused (the factory names the stages).

    Raises:
        StageDefinitionTypeError: as :func:`with_linear_chain`.
        PipelineValidationError: a dependency is missing (``CONTRACT-004-MISSING_DEP``).
    """
    helper = "with_parallel_stages"
    _check_builder(helper, builder)
    count = _check_count(helper, "count", count)
    if count <= 0:
        return builder
    _check_factory(helper, "stage_factory", stage_factory)
    deps = depends_on or ()
    result = builder
    for index in range(count):
        name, runner = _pair(helper, f"stage_factory({index})", stage_factory(index))
        result = result.with_stage(name=name, runner=runner, dependencies=deps)
    return result


def with_fan_out_fan_in(
    builder: PipelineBuilder,
    fan_out_stage: tuple[str, LegacyRunnerLike],
    parallel_count: int,
    parallel_factory: StageFactory,
    fan_in_stage: tuple[str, LegacyRunnerLike],
    *,
    fan_out_depends_on: tuple[str, ...] | None = None,
) -> PipelineBuilder:
    """Add a fan-out stage, ``parallel_count`` workers depending on it, and a fan-in stage.

    The fan-out stage depends on ``fan_out_depends_on`` (or nothing); the fan-in stage
    depends on every worker (on nothing when ``parallel_count <= 0``).

    Raises:
        StageDefinitionTypeError: ``builder`` is not a PipelineBuilder, a stage
            argument is not a ``(name, runner)`` pair, ``parallel_count`` is not an int, or the factory is not callable.
        PipelineValidationError: a dependency is missing (``CONTRACT-004-MISSING_DEP``).
    """
    helper = "with_fan_out_fan_in"
    _check_builder(helper, builder)
    fan_out_name, fan_out_runner = _pair(helper, "fan_out_stage", fan_out_stage)
    fan_in_name, fan_in_runner = _pair(helper, "fan_in_stage", fan_in_stage)
    count = _check_count(helper, "parallel_count", parallel_count)
    if count > 0:
        _check_factory(helper, "parallel_factory", parallel_factory)
    result = builder.with_stage(
        name=fan_out_name, runner=fan_out_runner, dependencies=fan_out_depends_on or ()
    )
    workers: list[str] = []
    for index in range(count):
        name, runner = _pair(helper, f"parallel_factory({index})", parallel_factory(index))
        workers.append(name)
        result = result.with_stage(name=name, runner=runner, dependencies=(fan_out_name,))
    return result.with_stage(name=fan_in_name, runner=fan_in_runner, dependencies=tuple(workers))


def with_conditional_branch(
    builder: PipelineBuilder,
    router_stage: tuple[str, LegacyRunnerLike],
    branches: dict[str, tuple[str, LegacyRunnerLike]],
    merge_stage: tuple[str, LegacyRunnerLike] | None = None,
    *,
    router_depends_on: tuple[str, ...] | None = None,
) -> PipelineBuilder:
    """Add a router, one conditional stage per branch depending on it, and an optional merge.

    ``branches`` maps a branch label to its ``(stage name, runner)``; each branch stage
    is ``conditional=True``. The merge stage, if given, depends on every branch stage.

    Raises:
        StageDefinitionTypeError: ``builder`` is not a PipelineBuilder, a stage
            argument is not a ``(name, runner)`` pair, or ``branches`` is not a mapping.
        PipelineValidationError: a dependency is missing (``CONTRACT-004-MISSING_DEP``).
    """
    helper = "with_conditional_branch"
    _check_builder(helper, builder)
    router_name, router_runner = _pair(helper, "router_stage", router_stage)
    if not isinstance(branches, Mapping):
        raise StageDefinitionTypeError(
            f"{helper}: branches must be a mapping of branch label to (name, runner); "
            f"got {type(branches).__name__}"
        )
    result = builder.with_stage(
        name=router_name, runner=router_runner, dependencies=router_depends_on or ()
    )
    branch_names: list[str] = []
    for label, branch in branches.items():
        name, runner = _pair(helper, f"branches[{label!r}]", branch)
        branch_names.append(name)
        result = result.with_stage(
            name=name, runner=runner, dependencies=(router_name,), conditional=True
        )
    if merge_stage:
        merge_name, merge_runner = _pair(helper, "merge_stage", merge_stage)
        result = result.with_stage(
            name=merge_name, runner=merge_runner, dependencies=tuple(branch_names)
        )
    return result


DuplexStage = tuple[str, LegacyRunnerLike]
"""One duplex stage: ``(name, runner)``."""


def _lane_stages(value: object) -> tuple[DuplexStage, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise StageDefinitionTypeError(
            f"DuplexLaneSpec: stages must be a sequence of (name, runner) pairs; got {value!r}"
        )
    stages = tuple(
        _pair("DuplexLaneSpec", f"stages[{index}]", item) for index, item in enumerate(value)
    )
    if not stages:
        raise StageDefinitionError("DuplexLaneSpec: stages must hold at least one stage")
    return stages


def _names(owner: str, param: str, value: Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise StageDefinitionTypeError(
            f"{owner}: {param} must be a sequence of stage names; got {value!r}"
        )
    names = tuple(value)
    for name in names:
        if not isinstance(name, str):
            raise StageDefinitionTypeError(
                f"{owner}: {param} must hold stage names (str); got {name!r}"
            )
    return names


def _lane_depends_on(value: Iterable[str] | None) -> tuple[str, ...]:
    return _names("DuplexLaneSpec", "depends_on", value)


def _join_depends_on(value: Iterable[str] | None) -> tuple[str, ...]:
    return _names("DuplexSystemSpec", "join_depends_on", value)


def _join_stage(value: DuplexStage | None) -> DuplexStage | None:
    return None if value is None else _pair("DuplexSystemSpec", "join_stage", value)


def _check_lane(
    _instance: object, attribute: attrs.Attribute[DuplexLaneSpec], value: object
) -> None:
    if not isinstance(value, DuplexLaneSpec):
        raise StageDefinitionTypeError(
            f"DuplexSystemSpec: {attribute.name} must be a DuplexLaneSpec; got {type(value).__name__}"
        )


@frozen_compat
@attrs.frozen
class DuplexLaneSpec:
    """One direction of a duplex system: a linear chain of stages.

    The first stage depends on ``depends_on``; each later stage on the one before it.

    Attributes:
        stages: ``(name, runner)`` pairs, at least one (a list is kept as a tuple).
        depends_on: The first stage's dependencies (stages already in the builder).

    Raises:
        StageDefinitionError: ``stages`` is empty (a ValueError).
        StageDefinitionTypeError: a stage is not a ``(name, runner)`` pair, or
            ``depends_on`` is not a sequence of names (a TypeError).
    """

    stages: tuple[DuplexStage, ...] = attrs.field(converter=_lane_stages)
    depends_on: tuple[str, ...] = attrs.field(default=(), converter=_lane_depends_on)


@frozen_compat
@attrs.frozen
class DuplexSystemSpec:
    """Two lanes (``forward``, e.g. listen, and ``reverse``, e.g. speak) and an optional join.

    Attributes:
        forward: One direction.
        reverse: The other direction.
        join_stage: ``(name, runner)`` of a stage that depends on both lanes' last
            stages (then on ``join_depends_on``); None: the lanes stay independent.
        join_depends_on: Extra dependencies of the join stage.
    """

    forward: DuplexLaneSpec = attrs.field(validator=_check_lane)
    reverse: DuplexLaneSpec = attrs.field(validator=_check_lane)
    join_stage: DuplexStage | None = attrs.field(default=None, converter=_join_stage)
    join_depends_on: tuple[str, ...] = attrs.field(default=(), converter=_join_depends_on)

    def stage_names(self) -> list[str]:
        """Every stage name the system adds, lanes first, then the join stage."""
        names = [name for lane in (self.forward, self.reverse) for name, _ in lane.stages]
        if self.join_stage is not None:
            names.append(self.join_stage[0])
        return names


def with_duplex_system(builder: PipelineBuilder, system: DuplexSystemSpec) -> PipelineBuilder:
    """Add both lanes of ``system`` (and its join stage) to ``builder``.

    Lane stages are chained as :class:`DuplexLaneSpec` says; the join stage
    depends on the forward lane's last stage, the reverse lane's last stage and
    ``join_depends_on``, each once, in that order.

    Raises:
        StageDefinitionTypeError: ``builder`` or ``system`` has the wrong type.
        StageDefinitionError: a stage name appears twice in the system, or is
            already a stage of ``builder`` (nothing is added).
        PipelineValidationError: a lane or join dependency names no stage.
    """
    if not isinstance(builder, PipelineBuilder):
        raise StageDefinitionTypeError(
            f"with_duplex_system: builder must be a PipelineBuilder; got {type(builder).__name__}"
        )
    if not isinstance(system, DuplexSystemSpec):
        raise StageDefinitionTypeError(
            f"with_duplex_system: system must be a DuplexSystemSpec; got {type(system).__name__}"
        )
    names = system.stage_names()
    seen = set(names)
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise StageDefinitionError(
            f"with_duplex_system: duplicate stage names in the system: {', '.join(duplicates)}"
        )
    collisions = sorted(seen.intersection(builder.stages))
    if collisions:
        raise StageDefinitionError(
            "with_duplex_system: stage names already in the builder: " + ", ".join(collisions)
        )
    result = builder
    tails: list[str] = []
    for lane in (system.forward, system.reverse):
        deps = lane.depends_on
        for name, runner in lane.stages:
            result = result.with_stage(name=name, runner=runner, dependencies=deps)
            deps = (name,)
        tails.append(deps[0])
    if system.join_stage is not None:
        join_name, join_runner = system.join_stage
        join_deps = tuple(dict.fromkeys((*tails, *system.join_depends_on)))
        result = result.with_stage(name=join_name, runner=join_runner, dependencies=join_deps)
    return result


class FluentPipelineBuilder:
    """A mutable, chainable front end to :class:`PipelineBuilder` and the helpers.

    It remembers the last stage added (``_last_stage``): ``linear_chain``,
    ``parallel`` and ``fan_out_fan_in`` hang off it when no dependencies are given.
    ``stage()`` adds exactly the dependencies it is given, none by default.
    After ``parallel`` there is no single last stage, so it is cleared.
    """

    def __init__(self, name: str) -> None:
        self._builder = PipelineBuilder(name=name)
        self._last_stage: str | None = None

    def stage(
        self,
        name: str,
        runner: LegacyRunnerLike,
        *,
        depends_on: tuple[str, ...] | list[str] | None = None,
        conditional: bool = False,
    ) -> FluentPipelineBuilder:
        """Add one stage depending on ``depends_on`` only; it becomes the last stage."""
        self._builder = self._builder.with_stage(
            name=name, runner=runner, dependencies=depends_on, conditional=conditional
        )
        self._last_stage = name
        return self

    def linear_chain(
        self,
        count: int,
        factory: StageFactory,
        *,
        first_depends_on: tuple[str, ...] | None = None,
    ) -> FluentPipelineBuilder:
        """Add a chain; without ``first_depends_on`` it starts after the last stage."""
        deps = first_depends_on
        if deps is None and self._last_stage:
            deps = (self._last_stage,)
        builder, last = _chain("linear_chain", self._builder, count, factory, deps)
        self._builder = builder
        if last is not None:
            self._last_stage = last
        return self

    def parallel(
        self,
        count: int,
        factory: StageFactory,
        *,
        depends_on: tuple[str, ...] | None = None,
    ) -> FluentPipelineBuilder:
        """Add parallel stages; without ``depends_on`` they depend on the last stage."""
        deps = depends_on
        if deps is None and self._last_stage:
            deps = (self._last_stage,)
        self._builder = with_parallel_stages(
            self._builder, count=count, stage_factory=factory, depends_on=deps
        )
        self._last_stage = None
        return self

    def fan_out_fan_in(
        self,
        fan_out: tuple[str, LegacyRunnerLike],
        parallel_count: int,
        parallel_factory: StageFactory,
        fan_in: tuple[str, LegacyRunnerLike],
    ) -> FluentPipelineBuilder:
        """Add fan-out/fan-in after the last stage; the fan-in stage becomes the last."""
        deps = (self._last_stage,) if self._last_stage else None
        self._builder = with_fan_out_fan_in(
            self._builder,
            fan_out_stage=fan_out,
            parallel_count=parallel_count,
            parallel_factory=parallel_factory,
            fan_in_stage=fan_in,
            fan_out_depends_on=deps,
        )
        self._last_stage = fan_in[0]
        return self

    def duplex(
        self,
        *,
        forward: Iterable[DuplexStage],
        reverse: Iterable[DuplexStage],
        forward_depends_on: tuple[str, ...] | list[str] | None = None,
        reverse_depends_on: tuple[str, ...] | list[str] | None = None,
        join_stage: DuplexStage | None = None,
        join_depends_on: tuple[str, ...] | list[str] | None = None,
    ) -> FluentPipelineBuilder:
        """Add a duplex system (:func:`with_duplex_system`).

        A lane whose dependencies are not given (None) starts after the last stage,
        if there is one; ``()`` makes it a root. The join stage becomes the last
        stage; without one there is no single last stage, so it is cleared.
        """
        auto = (self._last_stage,) if self._last_stage else ()
        system = DuplexSystemSpec(
            forward=DuplexLaneSpec(
                stages=forward,
                depends_on=auto if forward_depends_on is None else forward_depends_on,
            ),
            reverse=DuplexLaneSpec(
                stages=reverse,
                depends_on=auto if reverse_depends_on is None else reverse_depends_on,
            ),
            join_stage=join_stage,
            join_depends_on=join_depends_on,
        )
        self._builder = with_duplex_system(self._builder, system)
        self._last_stage = system.join_stage[0] if system.join_stage is not None else None
        return self

    def build(
        self,
        *,
        emit_stage_wide_events: bool = False,
        emit_pipeline_wide_event: bool = False,
        wide_event_emitter: WideEventEmitter | None = None,
    ) -> StageGraph:
        """Build the graph (:meth:`PipelineBuilder.build` with the same keywords)."""
        return self._builder.build(
            emit_stage_wide_events=emit_stage_wide_events,
            emit_pipeline_wide_event=emit_pipeline_wide_event,
            wide_event_emitter=wide_event_emitter,
        )

    @property
    def builder(self) -> PipelineBuilder:
        """The immutable builder accumulated so far."""
        return self._builder
