"""StageExecutionError (public at :mod:`stageflow_trio.pipeline.dag`).

Defined with the stage errors, below the engine, because both the legacy graph
and :mod:`stageflow_trio.stages.errors` raise it.
"""

from __future__ import annotations

from stageflow_trio.stages.result import StageError


class StageExecutionError(StageError):
    """A stage of a legacy :class:`StageGraph` failed in a way that stops the run."""

    def __init__(self, stage: str, original: Exception, recoverable: bool = False) -> None:
        super().__init__(stage=stage, original=original)
        self.recoverable = recoverable
