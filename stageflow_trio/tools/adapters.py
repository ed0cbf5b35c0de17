"""Use a plain dict where an ExecutionContext is expected (legacy tool code).

:class:`DictContextAdapter` wraps a dict such as
``{"pipeline_run_id": "...", "execution_mode": "practice"}`` so that tools
written against :class:`~stageflow_trio.protocols.ExecutionContext` accept it;
:func:`adapt_context` wraps dicts and passes real contexts through.
"""

from __future__ import annotations

from ._adapters import DictContextAdapter as DictContextAdapter
from ._adapters import adapt_context as adapt_context

__all__ = ["DictContextAdapter", "adapt_context"]
