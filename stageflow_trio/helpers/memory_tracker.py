"""Memory growth tracking for pipelines and stages, on the standard library's ``tracemalloc``.

:class:`MemoryTracker` takes :class:`MemorySample` readings (current and peak
traced memory, in KiB) on demand; :func:`track_memory` wraps a sync or async
function so that a reading is taken when it starts and when it ends.

``tracemalloc`` traces every allocation of the process once started and makes
them slower; :meth:`MemoryTracker.start` starts it if it is off, and nothing in
this module stops it (call ``tracemalloc.stop()`` yourself when done).

Example::

    tracker = MemoryTracker()

    @track_memory(label="load", tracker=tracker)
    async def load() -> list[int]:
        return list(range(10_000))

    await load()
    [s.label for s in tracker.samples]  # ['load:start', 'load:end']
"""

from __future__ import annotations

import functools
import inspect
import logging
import tracemalloc
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, ParamSpec, TypeAlias, TypeVar, cast

import attrs
import trio

from stageflow_trio._args import check_callable, check_flag, check_int, type_of
from stageflow_trio._frozen import frozen_compat
from stageflow_trio._time import utc_now

__all__ = [
    "MemorySample",
    "MemoryTracker",
    "track_memory",
]

logger: logging.Logger = logging.getLogger("stageflow_trio.helpers.memory_tracker")

P = ParamSpec("P")
R = TypeVar("R")


@frozen_compat
@attrs.frozen
class MemorySample:
    """One reading of the traced memory.

    Attributes:
        timestamp: When it was taken (wall-clock UTC).
        current_kb: Memory traced now, in KiB (rounded down).
        peak_kb: The peak since tracing started, in KiB (rounded down).
        label: What the reading marks, e.g. ``"pipeline:start"``.
    """

    timestamp: datetime
    current_kb: int
    peak_kb: int
    label: str | None = None


Listener: TypeAlias = Callable[[MemorySample], None]


class MemoryTracker:
    """Takes :class:`MemorySample` readings and tells its listeners each one.

    Args:
        auto_start: Call :meth:`start` now.
        listeners: Callables told each sample (their errors propagate from
            :meth:`observe`).
        max_samples: How many samples :attr:`samples` keeps (10,000 by default;
            None keeps every one, as the reference). Once it is full each new
            sample drops the oldest, so a tracker that lives as long as its
            service (a runner's, sampling at each run's start and end) holds a
            bounded window instead of one sample per call for ever. Each
            sample's ``peak_kb`` is ``tracemalloc``'s and is not affected;
            listeners still see every sample.

    Attributes:
        samples: The samples kept, oldest first (a list).
        listeners: The listeners (a list; add to it or use :meth:`extend_listeners`).

    Raises:
        TypeError: an argument has the wrong type (``max_samples`` not an int or None).
        ValueError: ``max_samples`` is below 1.
    """

    # The class-level default, as on stageflow 1.2's dataclass; each tracker sets its own.
    auto_start: bool = True

    def __init__(
        self,
        auto_start: bool = True,
        listeners: list[Listener] | None = None,
        *,
        max_samples: int | None = 10_000,
    ) -> None:
        check_flag("MemoryTracker", "auto_start", auto_start)
        if max_samples is not None:
            check_int("MemoryTracker", "max_samples", max_samples, minimum=1)
        listener_list = [] if listeners is None else listeners
        if not isinstance(listener_list, list):
            raise TypeError(
                f"MemoryTracker: listeners must be a list or None; got {type_of(listeners)}"
            )
        for listener in listener_list:
            check_callable("MemoryTracker", "listeners", listener)
        self.auto_start = auto_start
        self.listeners: list[Listener] = listener_list
        self.samples: list[MemorySample] = []
        self._max_samples = max_samples
        self._active = False
        if auto_start:
            self.start()

    def __repr__(self) -> str:
        return (
            f"MemoryTracker(auto_start={self.auto_start!r}, active={self._active!r},"
            f" samples={len(self.samples)})"
        )

    @property
    def max_samples(self) -> int | None:
        """How many samples :attr:`samples` keeps (None: all)."""
        return self._max_samples

    @property
    def active(self) -> bool:
        """Whether :meth:`observe` may be called (between :meth:`start` and :meth:`stop`)."""
        return self._active

    def start(self) -> None:
        """Start ``tracemalloc`` if it is off, and allow :meth:`observe`."""
        if not tracemalloc.is_tracing():
            tracemalloc.start()
        self._active = True

    def stop(self) -> None:
        """Refuse further :meth:`observe` calls. Leaves ``tracemalloc`` running."""
        self._active = False

    def observe(self, *, label: str | None = None) -> MemorySample:
        """Take a sample, keep it in :attr:`samples` (dropping the oldest beyond
        ``max_samples``), tell the listeners and return it.

        Raises:
            RuntimeError: The tracker is not active ("call start() first").

        If ``tracemalloc`` was stopped since :meth:`start`, the sample reads 0 KiB.
        """
        if not self._active:
            raise RuntimeError("MemoryTracker is not active; call start() first")
        current, peak = tracemalloc.get_traced_memory()
        sample = MemorySample(
            timestamp=utc_now(), current_kb=current // 1024, peak_kb=peak // 1024, label=label
        )
        samples = self.samples
        samples.append(sample)
        limit = self._max_samples
        if limit is not None and len(samples) > limit:
            # A list, as the reference's (callers slice and compare it), not a deque:
            # dropping the front moves at most ``limit`` pointers.
            del samples[: len(samples) - limit]
        for listener in self.listeners:
            listener(sample)
        return sample

    def extend_listeners(self, extra: Iterable[Listener]) -> None:
        """Add listeners.

        Raises:
            TypeError: one of them is not callable (none is added then).
        """
        added = list(extra)
        for listener in added:
            check_callable("MemoryTracker.extend_listeners", "extra", listener)
        self.listeners.extend(added)


def track_memory(
    *,
    label: str | None = None,
    tracker: MemoryTracker | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a sync or async function to sample memory as it starts and ends.

    The samples are labelled ``"{label}:start"`` and ``"{label}:end"`` (the
    function's ``__name__`` when ``label`` is None); the end sample is taken
    even when the function raises (or, for a coroutine function, is cancelled).
    An error of the end sample (a stopped tracker, a listener's) propagates,
    except during cancellation: then it is logged as a warning and
    ``trio.Cancelled`` propagates.
    Without ``tracker`` each call makes a new :class:`MemoryTracker`, whose
    samples are not kept anywhere.

    Raises:
        TypeError: ``label`` is not a str or None, or ``tracker`` not a
            MemoryTracker or None.
    """
    if label is not None and not isinstance(label, str):
        raise TypeError(f"track_memory: label must be a str or None; got {type_of(label)}")
    if tracker is not None and not isinstance(tracker, MemoryTracker):
        raise TypeError(
            f"track_memory: tracker must be a MemoryTracker or None; got {type_of(tracker)}"
        )

    def decorator(func: Callable[P, R]) -> Callable[P, R]:
        check_callable("track_memory", "func", func)
        name = label or func.__name__
        start_label, end_label = f"{name}:start", f"{name}:end"

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                local = tracker or MemoryTracker()
                local.observe(label=start_label)
                try:
                    result = await func(*args, **kwargs)
                except trio.Cancelled:
                    # The end sample is still taken, but its failure (a stopped
                    # tracker, a listener's error) must not replace the Cancelled:
                    # the cancel scope would see an error instead and not stop there.
                    try:
                        local.observe(label=end_label)
                    except Exception:
                        logger.warning(
                            "track_memory: the %r sample failed during cancellation",
                            end_label,
                            exc_info=True,
                        )
                    raise
                except BaseException:
                    local.observe(label=end_label)
                    raise
                local.observe(label=end_label)
                return result

            return cast("Callable[P, R]", async_wrapper)

        @functools.wraps(func)
        def sync_wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            local = tracker or MemoryTracker()
            local.observe(label=start_label)
            try:
                return func(*args, **kwargs)
            finally:
                local.observe(label=end_label)

        return sync_wrapper

    return decorator
