"""PipelineBuilder: an immutable, validating builder of legacy stage graphs."""

from __future__ import annotations

from ._builder import PipelineBuilder as PipelineBuilder

__all__ = ["PipelineBuilder"]
