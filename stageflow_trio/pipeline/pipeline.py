"""Pipeline: the immutable builder of unified stage graphs (``Stage`` classes and StageKind).

``Pipeline().with_stage("a", StageA, StageKind.TRANSFORM).build()`` returns a
:class:`~stageflow_trio.pipeline.dag.UnifiedStageGraph`. Unlike
:class:`~stageflow_trio.pipeline.builder.PipelineBuilder`, stages may be added in
any order; the dependencies are validated once, by :meth:`Pipeline.build`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._pipeline import Pipeline as Pipeline
from ._pipeline import UnifiedStageSpec as UnifiedStageSpec

if TYPE_CHECKING:
    from stageflow_trio.pipeline.dag import UnifiedStageGraph as UnifiedStageGraph

__all__ = ["Pipeline", "UnifiedStageGraph", "UnifiedStageSpec"]


def __getattr__(name: str) -> Any:
    # The graph class lives in the engine module, which imports this package's
    # validation code; resolve it on first use instead of at import time.
    if name == "UnifiedStageGraph":
        from stageflow_trio.pipeline.dag import UnifiedStageGraph

        return UnifiedStageGraph
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
