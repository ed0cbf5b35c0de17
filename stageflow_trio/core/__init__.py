"""Stage primitives: kinds, statuses, outputs, the stage context and protocol, the timer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stageflow_trio._lazy import lazy_exports

if TYPE_CHECKING:
    from .stage_context import StageCancellationRequested as StageCancellationRequested
    from .stage_context import StageContext as StageContext
    from .stage_context import create_stage_context as create_stage_context
    from .stage_enums import StageKind as StageKind
    from .stage_enums import StageStatus as StageStatus
    from .stage_metadata import stage_metadata as stage_metadata
    from .stage_output import StageArtifact as StageArtifact
    from .stage_output import StageEvent as StageEvent
    from .stage_output import StageOutput as StageOutput
    from .stage_output import StageReturn as StageReturn
    from .stage_protocol import Stage as Stage
    from .timer import PipelineTimer as PipelineTimer

__all__ = [
    "PipelineTimer",
    "Stage",
    "StageArtifact",
    "StageCancellationRequested",
    "StageContext",
    "StageEvent",
    "StageKind",
    "StageOutput",
    "StageReturn",
    "StageStatus",
    "create_stage_context",
    "stage_metadata",
]

# Hidden from type checkers, which read the imports above: a visible module
# __getattr__ would make every misspelt name `Any` instead of an error.
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            ".stage_context": "StageCancellationRequested StageContext create_stage_context",
            ".stage_enums": "StageKind StageStatus",
            ".stage_metadata": "stage_metadata",
            ".stage_output": "StageArtifact StageEvent StageOutput StageReturn",
            ".stage_protocol": "Stage",
            ".timer": "PipelineTimer",
        },
        eager="stage_metadata",  # also a submodule's name
    )
