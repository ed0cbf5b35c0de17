"""PipelineResults: the ``{stage name: StageOutput}`` dict that ``UnifiedStageGraph.run``
and ``Pipeline.run`` return.

A plain ``dict`` subclass, so code written against 0.9.1's dict keeps working; the
helpers (1.2.0's ``data()``, ``require_ok()``, ...) only read it.
"""

from __future__ import annotations

from stageflow_trio._engine._results import PipelineResults as PipelineResults
from stageflow_trio._exports import publish

__all__ = ["PipelineResults"]

publish(__name__)
