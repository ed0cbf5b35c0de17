"""Shortcuts for common DAG shapes on top of :class:`PipelineBuilder`.

Every helper returns a new builder (builders are immutable).
"""

from __future__ import annotations

from ._builder_helpers import FluentPipelineBuilder as FluentPipelineBuilder
from ._builder_helpers import with_conditional_branch as with_conditional_branch
from ._builder_helpers import with_fan_out_fan_in as with_fan_out_fan_in
from ._builder_helpers import with_linear_chain as with_linear_chain
from ._builder_helpers import with_parallel_stages as with_parallel_stages

__all__ = [
    "FluentPipelineBuilder",
    "with_conditional_branch",
    "with_fan_out_fan_in",
    "with_linear_chain",
    "with_parallel_stages",
]
