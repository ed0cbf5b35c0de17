"""Stage specifications for code-defined pipelines, and the errors validation raises.

The errors, the field checks' errors and :func:`validate_dependencies` are
defined in the private validation modules, which the graphs share, and are
public here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Protocol, TypeAlias, runtime_checkable

import attrs

from stageflow_trio._exports import publish
from stageflow_trio._frozen import frozen_compat

# Imported at runtime (not under TYPE_CHECKING): the runner aliases below are real
# objects, which typing.get_type_hints and the docs can resolve.
from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.pipeline._checks import StageDefinitionError as StageDefinitionError
from stageflow_trio.pipeline._checks import StageDefinitionTypeError as StageDefinitionTypeError
from stageflow_trio.pipeline._checks import (
    check_bool,
    check_kwargs,
    check_name,
    check_names,
    check_runner,
)
from stageflow_trio.pipeline._validation import CycleDetectedError as CycleDetectedError
from stageflow_trio.pipeline._validation import PipelineValidationError as PipelineValidationError
from stageflow_trio.pipeline._validation import validate_dependencies as validate_dependencies
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.stages.result import StageResult

__all__ = [
    "CycleDetectedError",
    "LegacyRunnerLike",
    "LegacyStageResult",
    "PipelineConfigError",
    "PipelineSpec",
    "PipelineValidationError",
    "StageDefinitionError",
    "StageDefinitionTypeError",
    "StageRunner",
    "StageRunnerCallable",
    "UnifiedRunnerLike",
    "UnifiedStageResult",
    "UnifiedStageRunner",
    "validate_dependencies",
]


class PipelineConfigError(StageDefinitionError):
    """``config`` was given for a runner that is not a class (a ValueError)."""


UnifiedStageResult: TypeAlias = StageOutput | Mapping[str, Any] | None
"""What a unified stage returns: a StageOutput, a mapping (its data, status ok) or None."""

LegacyStageResult: TypeAlias = StageResult | StageOutput | dict[str, Any] | None
"""What a legacy stage returns: a StageResult, a StageOutput, a dict (its data) or None."""


class UnifiedStageRunner(Protocol):
    """A stage for :class:`~stageflow_trio.pipeline.pipeline.Pipeline`: ``execute`` takes a StageContext.

    Any class with this method matches (``name`` and ``kind`` attributes, which
    :class:`~stageflow_trio.core.Stage` also declares, are not required); an ``async def
    execute`` returning a StageOutput is the usual shape.
    """

    def execute(self, ctx: StageContext, /) -> Awaitable[UnifiedStageResult]:
        """Run the stage against ``ctx`` and report its outcome."""
        ...


@runtime_checkable
class StageRunner(Protocol):
    """A stage for :class:`~stageflow_trio.pipeline.builder.PipelineBuilder`: ``execute`` takes a PipelineContext.

    An ``async def execute(self, ctx: PipelineContext)`` returning a StageResult, a
    StageOutput, a dict or None matches.
    """

    def execute(self, ctx: PipelineContext, /) -> Awaitable[LegacyStageResult]:
        """Run the stage against ``ctx`` and report its outcome."""
        ...


StageRunnerCallable: TypeAlias = Callable[
    [PipelineContext], Awaitable[StageOutput | dict[str, Any] | None]
]
"""A plain async function used as a legacy stage: ``async (PipelineContext) -> result``."""

AsyncRunner: TypeAlias = Callable[[Any], Awaitable[Any]]
"""A plain async callable used directly as a stage runner."""

UnifiedRunnerLike: TypeAlias = (
    type[UnifiedStageRunner]
    | UnifiedStageRunner
    | Callable[[StageContext], Awaitable[UnifiedStageResult]]
)
"""What :meth:`Pipeline.with_stage <stageflow_trio.pipeline.pipeline.Pipeline.with_stage>` accepts:
a stage class, a stage instance, or an async callable, each taking a StageContext."""

LegacyRunnerLike: TypeAlias = (
    type[StageRunner] | StageRunner | Callable[[PipelineContext], Awaitable[LegacyStageResult]]
)
"""What :meth:`PipelineBuilder.with_stage <stageflow_trio.pipeline.builder.PipelineBuilder.with_stage>`
accepts: a stage class, a stage instance, or an async callable, each taking a PipelineContext."""

RunnerLike: TypeAlias = UnifiedRunnerLike | LegacyRunnerLike
"""Either builder's runner (what a spec stores; the builders take the precise aliases)."""


@frozen_compat
@attrs.frozen(init=False, hash=False)
class PipelineSpec:
    """One stage of a :class:`~stageflow_trio.pipeline.builder.PipelineBuilder` pipeline.

    Immutable; the collections are normalized to tuples and a read-only ``args``.

    Attributes:
        name: Stage name, unique within the pipeline.
        runner: A stage class (instantiated with ``args`` for every execution), a stage
            instance (its ``execute`` is called), or an async callable taking the context.
        dependencies: Names of the stages that must finish first.
        inputs: Context keys the stage reads (informational).
        outputs: Context keys the stage writes (informational).
        conditional: Whether the stage may be skipped.
        args: Keyword arguments for a class runner's constructor.

    Raises:
        StageDefinitionError: (a ValueError) the name is empty or whitespace-only, or
            the stage depends on itself.
        StageDefinitionTypeError: (a TypeError) a field has the wrong type.
    """

    name: str
    runner: LegacyRunnerLike
    dependencies: tuple[str, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    conditional: bool
    args: Mapping[str, Any]

    def __init__(
        self,
        name: str,
        runner: LegacyRunnerLike,
        dependencies: Iterable[str] | None = (),
        inputs: Iterable[str] | None = (),
        outputs: Iterable[str] | None = (),
        conditional: bool = False,
        args: Mapping[str, Any] | None = None,
    ) -> None:
        name = check_name("PipelineSpec", name)
        deps = check_names("PipelineSpec", name, "dependencies", dependencies)
        if name in deps:
            raise StageDefinitionError(f"PipelineSpec '{name}' cannot depend on itself")
        check_runner("PipelineSpec", name, runner)
        self.__attrs_init__(
            name,
            runner,
            deps,
            check_names("PipelineSpec", name, "inputs", inputs),
            check_names("PipelineSpec", name, "outputs", outputs),
            check_bool("PipelineSpec", name, "conditional", conditional),
            check_kwargs("PipelineSpec", name, "args", args),
        )

    def __hash__(self) -> int:
        # By runner identity and without args, as the reference does: runners and
        # args need not be hashable.
        return hash(
            (
                self.name,
                id(self.runner),
                self.dependencies,
                self.inputs,
                self.outputs,
                self.conditional,
            )
        )


@frozen_compat
@attrs.frozen
class _ClassRunner:
    """Instantiates a stage class (with its config) for every execution, then runs it."""

    stage_class: type[Any]
    config: Mapping[str, Any]

    async def __call__(self, ctx: Any) -> Any:
        stage = self.stage_class(**self.config)
        return await stage.execute(ctx)


@frozen_compat
@attrs.frozen
class _InstanceRunner:
    """Runs the same stage instance's ``execute`` for every execution."""

    stage: Any

    async def __call__(self, ctx: Any) -> Any:
        return await self.stage.execute(ctx)


def as_async_runner(runner: object, config: Mapping[str, Any]) -> AsyncRunner:
    """Turn a checked runner (class, instance or async callable) into ``async (ctx) -> out``."""
    if isinstance(runner, type):
        return _ClassRunner(runner, config)
    if callable(getattr(runner, "execute", None)):
        return _InstanceRunner(runner)
    # check_runner let it through, so it is callable.
    return runner  # type: ignore[return-value]


publish(__name__)
