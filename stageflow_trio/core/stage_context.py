"""StageContext: what a stage's ``execute`` receives.

A :class:`StageContext` is a frozen per-stage view of a run: the immutable
:class:`~stageflow_trio.context.context_snapshot.ContextSnapshot`, the stage's
:class:`~stageflow_trio.stages.inputs.StageInputs` (the outputs of its declared
dependencies), its name, the run's timer and an optional event sink. Stages do
not mutate it; they return a ``StageOutput``.
"""

from __future__ import annotations

from ._stage_context import StageContext as StageContext
from ._stage_context import create_stage_context as create_stage_context

__all__ = ["StageContext", "create_stage_context"]
