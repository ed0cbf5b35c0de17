"""The extension-point protocols of stageflow_trio.

Code that only needs "some execution context" (tools, interceptors, helpers)
depends on :class:`ExecutionContext`, which :class:`~stageflow_trio.stages.context.PipelineContext`,
:class:`~stageflow_trio.core.stage_context.StageContext` and
:class:`~stageflow_trio.tools.adapters.DictContextAdapter` all satisfy.
:class:`RunStore` and :class:`ConfigProvider` describe persistence and
configuration back ends an application plugs in; :class:`CorrelationIds` is a
small value carrying tracing ids.

``EventSink`` is the one event-sink protocol of the package, re-exported from
:mod:`stageflow_trio.events.sink` (the reference defines a second, identical
protocol here; this package keeps a single class under both names).
"""

from __future__ import annotations

from ._protocols import ConfigProvider as ConfigProvider
from ._protocols import CorrelationIds as CorrelationIds
from ._protocols import EventSink as EventSink
from ._protocols import ExecutionContext as ExecutionContext
from ._protocols import RunStore as RunStore

__all__ = [
    "ConfigProvider",
    "CorrelationIds",
    "EventSink",
    "ExecutionContext",
    "RunStore",
]
