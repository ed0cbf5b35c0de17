"""Analytics exporters: ship pipeline events to files, the console or your own backend.

- :class:`AnalyticsEvent`: the exported record.
- :class:`AnalyticsExporter`: the protocol (``export``, ``export_batch``, ``flush``,
  ``close``, all async) to implement for Snowflake, BigQuery, ...
- :class:`JSONFileExporter`, :class:`ConsoleExporter`: ready-made exporters.
- :class:`BufferedExporter`: batches events in front of another exporter.
- :class:`CompositeExporter`: fans out to several exporters concurrently.
- :class:`AnalyticsSink`: an event sink (``emit`` / ``try_emit``) that exports.

Background work has a visible owner. ``BufferedExporter``'s timed flush and
``AnalyticsSink.try_emit``'s exports run in a nursery: the one opened by
``async with`` or the one passed as ``nursery=``. Without one there is no timed
flush, and ``try_emit`` holds events until :meth:`AnalyticsSink.flush_pending`.

Example::

    async with BufferedExporter(JSONFileExporter("events.jsonl"), batch_size=100) as out:
        await out.export(AnalyticsEvent(event_type="stage.completed", stage_name="llm"))
"""

from __future__ import annotations

from stageflow_trio._exports import publish

from ._analytics_sink import AnalyticsSink as AnalyticsSink
from ._analytics_sink import CompositeExporter as CompositeExporter
from ._buffered import BufferedExporter as BufferedExporter
from ._exporters import AnalyticsEvent as AnalyticsEvent
from ._exporters import AnalyticsExporter as AnalyticsExporter
from ._exporters import ConsoleExporter as ConsoleExporter
from ._exporters import JSONFileExporter as JSONFileExporter
from ._exporters import OverflowCallback as OverflowCallback

__all__ = [
    "AnalyticsEvent",
    "AnalyticsExporter",
    "AnalyticsSink",
    "BufferedExporter",
    "CompositeExporter",
    "ConsoleExporter",
    "JSONFileExporter",
]

publish(__name__)
