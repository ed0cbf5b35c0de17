"""One clock reading shared by every stage of a pipeline run."""

from __future__ import annotations

import time
from datetime import UTC, datetime

__all__ = ["PipelineTimer"]


def _wall_clock() -> float:
    # A module-level seam so tests can substitute the wall clock.
    return time.time()


class PipelineTimer:
    """Records when a pipeline run started, so all stages time against one origin.

    Times are wall-clock epoch milliseconds, as in the reference: :meth:`now_ms`
    returns the current epoch time in milliseconds (not an offset), and
    :meth:`elapsed_ms` is the difference from the start. Because this is wall
    time, ``trio.testing.MockClock`` does not drive it; the engine measures stage
    durations with :func:`stageflow_trio._time.monotonic` instead.

    Example::

        timer = PipelineTimer()
        start = timer.now_ms()
        ...
        took = timer.now_ms() - start
    """

    __slots__ = ("_pipeline_start_ms",)

    def __init__(self) -> None:
        self._pipeline_start_ms: int = int(_wall_clock() * 1000)

    @property
    def pipeline_start_ms(self) -> int:
        """The run's start, in epoch milliseconds."""
        return self._pipeline_start_ms

    def now_ms(self) -> int:
        """The current wall-clock time in epoch milliseconds."""
        return int(_wall_clock() * 1000)

    def elapsed_ms(self) -> int:
        """Milliseconds since the run started."""
        return self.now_ms() - self._pipeline_start_ms

    @property
    def started_at(self) -> datetime:
        """The run's start as a timezone-aware UTC datetime (millisecond precision)."""
        return datetime.fromtimestamp(self._pipeline_start_ms / 1000.0, tz=UTC)
