"""Stage specs and the errors the graphs raise."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import attrs

from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.core.stage_enums import StageKind
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.errors import StageflowError
from stageflow_trio.pipeline._validation import (
    StageDefinitionTypeError,
    check_name,
    check_names,
    check_runner,
)
from stageflow_trio.stages.result import StageError


def _check_name(instance: object, _: attrs.Attribute[str], value: object) -> None:
    check_name(type(instance).__name__, value)


def _normalize_dependencies(spec: Any) -> None:
    # Runs after the name is checked, so errors can name the stage.
    names = check_names(type(spec).__name__, spec.name, "dependencies", spec.dependencies)
    object.__setattr__(spec, "dependencies", names)


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
