"""StageflowError, behind :mod:`stageflow_trio.errors`."""

from __future__ import annotations


class StageflowError(Exception):
    """Base class of every error stageflow_trio raises on purpose."""
