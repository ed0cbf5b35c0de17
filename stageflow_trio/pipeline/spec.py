"""Stage specifications for code-defined pipelines, and the errors validation raises."""

from __future__ import annotations

from ._spec import CycleDetectedError as CycleDetectedError
from ._spec import PipelineSpec as PipelineSpec
from ._spec import PipelineValidationError as PipelineValidationError
from ._spec import StageRunner as StageRunner

__all__ = [
    "CycleDetectedError",
    "PipelineSpec",
    "PipelineValidationError",
    "StageRunner",
]
