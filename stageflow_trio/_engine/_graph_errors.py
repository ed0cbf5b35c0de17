"""The errors the graph runs raise (public at :mod:`stageflow_trio.pipeline.dag`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stageflow_trio._args import error_text
from stageflow_trio._engine._results import PipelineResults
from stageflow_trio.errors import StageflowError
from stageflow_trio.stages._execution_error import StageExecutionError as StageExecutionError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from stageflow_trio.core.stage_output import StageOutput


class UnifiedStageExecutionError(StageflowError):
    """A stage of a :class:`UnifiedStageGraph` raised or returned FAIL."""

    def __init__(self, stage: str, original: Exception, recoverable: bool = False) -> None:
        # error_text: an error whose __str__ raises is still this stage's failure.
        super().__init__(f"Stage '{stage}' failed: {error_text(original)}")
        self.stage = stage
        self.original = original
        self.recoverable = recoverable

    def __reduce__(self) -> tuple[Any, ...]:
        # The default reduction rebuilds from the message alone, which this
        # constructor does not take: pickle, copy and deepcopy failed.
        return (type(self), (self.stage, self.original, self.recoverable), self.__dict__)


class UnifiedPipelineCancelled(StageflowError):
    """A stage returned CANCEL or the run's token was cancelled: a graceful stop.

    ``results`` holds the outputs of the stages that completed: a
    :class:`~stageflow_trio.pipeline.results.PipelineResults`, as ``run`` returns
    (a plain mapping given is copied into one), so that code handling both, as in
    ``results = stopped.results``, keeps one type.
    """

    def __init__(self, stage: str, reason: str, results: Mapping[str, StageOutput]) -> None:
        super().__init__(f"Pipeline cancelled by stage '{stage}': {reason}")
        self.stage = stage
        self.reason = reason
        self.results: PipelineResults = (
            results if isinstance(results, PipelineResults) else PipelineResults(results)
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.stage, self.reason, self.results), self.__dict__)
