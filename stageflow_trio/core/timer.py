"""One clock reading shared by every stage of a pipeline run."""

from __future__ import annotations

from ._timer import PipelineTimer as PipelineTimer

__all__ = ["PipelineTimer"]
