"""Stage specs and the errors the graphs raise."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import attrs

from stageflow_trio.errors import StageflowError
from stageflow_trio.stages.result import StageError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Mapping

    from stageflow_trio.core.stage_context import StageContext
    from stageflow_trio.core.stage_enums import StageKind
    from stageflow_trio.core.stage_output import StageOutput

__all__ = [
    "StageExecutionError",
    "StageSpec",
    "UnifiedPipelineCancelled",
    "UnifiedStageExecutionError",
    "UnifiedStageSpec",
]


def _to_dependencies(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        # A bare string is one dependency, not its characters.
        return (value,)
    try:
        return tuple(cast("Iterable[str]", value))
    except TypeError:
        raise TypeError(
            f"dependencies must be a sequence of stage names, got {type(value).__name__}"
        ) from None


def _check_name(_: object, attribute: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"stage {attribute.name} must be a non-blank str, got {value!r}")


def _check_dependencies(
    instance: Any, _: attrs.Attribute[tuple[str, ...]], value: tuple[str, ...]
) -> None:
    for dep in value:
        if not isinstance(dep, str):
            raise TypeError(
                f"stage '{instance.name}': dependencies must be stage names (str), got {dep!r}"
            )


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
    dependencies: tuple[str, ...] = attrs.field(
        default=(), converter=_to_dependencies, validator=_check_dependencies
    )
    conditional: bool = False


@attrs.frozen(kw_only=True)
class UnifiedStageSpec:
    """A stage of :class:`UnifiedStageGraph`: ``runner`` is ``async (StageContext) -> StageOutput``."""

    name: str = attrs.field(validator=_check_name)
    runner: Callable[[StageContext], Awaitable[StageOutput | Mapping[str, Any] | None]]
    kind: StageKind | None = None
    dependencies: tuple[str, ...] = attrs.field(
        default=(), converter=_to_dependencies, validator=_check_dependencies
    )
    conditional: bool = False


class StageExecutionError(StageError):
    """A stage of a legacy :class:`StageGraph` failed in a way that stops the run."""

    def __init__(self, stage: str, original: Exception, recoverable: bool = False) -> None:
        super().__init__(stage=stage, original=original)
        self.recoverable = recoverable


class UnifiedStageExecutionError(StageflowError):
    """A stage of a :class:`UnifiedStageGraph` raised or returned FAIL."""

    def __init__(self, stage: str, original: Exception, recoverable: bool = False) -> None:
        super().__init__(f"Stage '{stage}' failed: {original}")
        self.stage = stage
        self.original = original
        self.recoverable = recoverable


class UnifiedPipelineCancelled(StageflowError):
    """A stage returned CANCEL or the run's token was cancelled: a graceful stop.

    ``results`` holds the outputs of the stages that completed.
    """

    def __init__(self, stage: str, reason: str, results: dict[str, StageOutput]) -> None:
        super().__init__(f"Pipeline cancelled by stage '{stage}': {reason}")
        self.stage = stage
        self.reason = reason
        self.results = results
