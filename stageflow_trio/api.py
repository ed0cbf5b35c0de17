"""The curated API: the names most applications need, in one import.

``Pipeline.run(...)`` is the way to run a pipeline (``Pipeline.invoke("text")`` is
its short form for scripts) and :func:`run_stage` runs a single stage. Everything
else stays where it was: :mod:`stageflow_trio.advanced` gathers the runtime's
customization points, and every name keeps its own module.
"""

from __future__ import annotations

from stageflow_trio.core import Stage as Stage
from stageflow_trio.core import StageArtifact as StageArtifact
from stageflow_trio.core import StageCancellationRequested as StageCancellationRequested
from stageflow_trio.core import StageContext as StageContext
from stageflow_trio.core import StageEvent as StageEvent
from stageflow_trio.core import StageKind as StageKind
from stageflow_trio.core import StageOutput as StageOutput
from stageflow_trio.core import StageReturn as StageReturn
from stageflow_trio.core import StageStatus as StageStatus
from stageflow_trio.core import stage_metadata as stage_metadata
from stageflow_trio.pipeline.pipeline import Pipeline as Pipeline
from stageflow_trio.pipeline.pipeline import run_stage as run_stage
from stageflow_trio.pipeline.pipeline import stage as stage
from stageflow_trio.pipeline.results import PipelineResults as PipelineResults
from stageflow_trio.stages.context import PipelineContext as PipelineContext
from stageflow_trio.stages.payloads import StagePayloadResult as StagePayloadResult
from stageflow_trio.stages.payloads import cancel_output as cancel_output
from stageflow_trio.stages.payloads import fail_output as fail_output
from stageflow_trio.stages.payloads import ok_output as ok_output
from stageflow_trio.stages.payloads import payload_from_inputs as payload_from_inputs
from stageflow_trio.stages.payloads import payload_from_results as payload_from_results
from stageflow_trio.stages.payloads import summary_from_output as summary_from_output

__all__ = [
    "Pipeline",
    "PipelineContext",
    "PipelineResults",
    "Stage",
    "StageArtifact",
    "StageCancellationRequested",
    "StageContext",
    "StageEvent",
    "StageKind",
    "StageOutput",
    "StagePayloadResult",
    "StageReturn",
    "StageStatus",
    "cancel_output",
    "fail_output",
    "ok_output",
    "payload_from_inputs",
    "payload_from_results",
    "run_stage",
    "stage",
    "stage_metadata",
    "summary_from_output",
]
