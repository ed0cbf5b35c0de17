"""PipelineContext: the mutable context of one pipeline run (and of its subpipelines).

A :class:`PipelineContext` holds the run's ids, topology and execution mode, a
mutable ``data`` dict, artifacts, per-stage metadata, the event sink, a
cancellation flag and, for child runs, the link to the parent run.
:meth:`PipelineContext.fork` (also spelled :meth:`PipelineContext.fork_for_subpipeline`)
derives the context of a subpipeline run.
"""

from __future__ import annotations

from ._context import PipelineContext as PipelineContext
from ._context import extract_service as extract_service

__all__ = ["PipelineContext", "extract_service"]
