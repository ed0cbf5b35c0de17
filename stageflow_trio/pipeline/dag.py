"""The DAG executors: the legacy :class:`StageGraph` and :class:`UnifiedStageGraph`."""

from __future__ import annotations

from stageflow_trio._engine._graph_types import (
    StageExecutionError as StageExecutionError,
)
from stageflow_trio._engine._graph_types import (
    StageSpec as StageSpec,
)
from stageflow_trio._engine._graph_types import (
    UnifiedPipelineCancelled as UnifiedPipelineCancelled,
)
from stageflow_trio._engine._graph_types import (
    UnifiedStageExecutionError as UnifiedStageExecutionError,
)
from stageflow_trio._engine._graph_types import (
    UnifiedStageSpec as UnifiedStageSpec,
)
from stageflow_trio._engine._legacy import StageGraph as StageGraph
from stageflow_trio._engine._unified import UnifiedStageGraph as UnifiedStageGraph
from stageflow_trio._exports import publish

__all__ = [
    "StageExecutionError",
    "StageGraph",
    "StageSpec",
    "UnifiedPipelineCancelled",
    "UnifiedStageExecutionError",
    "UnifiedStageGraph",
    "UnifiedStageSpec",
]

publish(__name__)
