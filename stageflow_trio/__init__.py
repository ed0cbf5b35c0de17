"""stageflow_trio: the stageflow pipeline framework, native on trio."""

from __future__ import annotations

from .errors import StageflowError as StageflowError

__version__ = "0.1.0"

__all__ = ["StageflowError", "__version__"]
