"""Streaming primitives for audio and other real-time pipelines, on trio.

- :class:`ChunkQueue`: a bounded queue over a trio memory channel, with
  drop-oldest or blocking overflow, backpressure statistics and ``stream.*``
  telemetry events.
- :class:`StreamingBuffer`: a jitter buffer for PCM audio that drops the oldest
  audio in 50 ms steps when full and reports underruns.
- :class:`AudioChunk`, :class:`AudioFormat`, :class:`StreamConfig`: values.
- :class:`BackpressureMonitor` / :class:`BackpressureStats`: fill-level latch and
  counters.
- :class:`RealtimeStageBus`: named ChunkQueue channels for stage-to-stage
  streaming (an LLM stage publishing tokens, a TTS stage subscribing), and
  :func:`create_realtime_stage_context`, a stage context whose ports carry one.

Telemetry goes through an optional ``event_emitter(event_type, data)`` callback.
An emitter that raises is logged and ignored: telemetry never breaks a stream.

Example::

    queue: ChunkQueue[AudioChunk] = ChunkQueue(max_size=100)

    async def produce() -> None:
        await queue.put(AudioChunk(data=b"\\x00\\x00" * 160))
        await queue.close()

    async def consume() -> None:
        async for chunk in queue:
            handle(chunk.data)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

from stageflow_trio._args import check_flag, check_int, type_of
from stageflow_trio._exports import publish
from stageflow_trio.context.context_snapshot import ContextSnapshot
from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.core.timer import PipelineTimer
from stageflow_trio.stages.inputs import create_stage_inputs
from stageflow_trio.stages.ports import create_core_ports

from ._audio import AudioChunk as AudioChunk
from ._audio import AudioFormat as AudioFormat
from ._audio import EventEmitter as EventEmitter
from ._audio import StreamConfig as StreamConfig
from ._audio import StreamingBuffer as StreamingBuffer
from ._audio import calculate_audio_duration_ms as calculate_audio_duration_ms
from ._audio import encode_audio_for_logging as encode_audio_for_logging
from ._chunk_queue import ChunkQueue as ChunkQueue
from ._chunk_queue import QueueEmpty as QueueEmpty
from ._monitor import BackpressureMonitor as BackpressureMonitor
from ._monitor import BackpressureStats as BackpressureStats

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable
    from types import TracebackType


__all__ = [
    "AudioChunk",
    "AudioFormat",
    "BackpressureMonitor",
    "BackpressureStats",
    "ChunkQueue",
    "EventEmitter",
    "QueueEmpty",
    "RealtimeStageBus",
    "StreamConfig",
    "StreamingBuffer",
    "calculate_audio_duration_ms",
    "create_realtime_stage_context",
    "encode_audio_for_logging",
]


class RealtimeStageBus:
    """Named :class:`ChunkQueue` channels, for stages that stream to each other.

    A channel is created on first use (by :meth:`channel`, :meth:`publish` or
    :meth:`subscribe`) with the bus's defaults, and lives until the bus is
    dropped, closed or not: a closed channel's name keeps answering (publish
    False, subscribers drain it and end). A long-lived bus that names a channel
    per request therefore grows by one closed channel per request; end such a
    channel with ``close_channel(name, remove=True)`` once its producers and
    consumers have taken their first step, or give each session its own bus.
    Each channel is one queue: several subscribers share its items, they do not
    each get a copy.

    The bus starts no task. Producers and consumers are the caller's own tasks,
    in a nursery the caller opens; ``async with bus:`` closes every channel on
    exit, which ends the consumers' ``async for`` loops. Open the bus inside the
    nursery, so it closes before the nursery waits for its consumers.

    :meth:`close_all` (and so leaving ``async with bus:``) closes the bus for
    good: a channel first named after that is created already closed, so a
    subscriber that had not taken its first step yet ends at once instead of
    waiting forever, and :meth:`publish` returns False.

    Args:
        default_max_size: Capacity of new channels (``<= 0``: unbounded).
        default_drop_on_overflow: Whether new channels drop their oldest item when full.
        event_emitter: Telemetry callback handed to every channel.

    Raises:
        TypeError: an argument has the wrong type.

    Example::

        async with trio.open_nursery() as nursery, RealtimeStageBus() as bus:
            nursery.start_soon(speak, bus)  # async for token in bus.subscribe("tokens")
            await bus.publish("tokens", "Hello")
        # Leaving the bus closed "tokens"; speak() ended; the nursery is done.
    """

    def __init__(
        self,
        *,
        default_max_size: int = 100,
        default_drop_on_overflow: bool = False,
        event_emitter: EventEmitter | None = None,
    ) -> None:
        owner = "RealtimeStageBus"
        check_int(owner, "default_max_size", default_max_size)
        check_flag(owner, "default_drop_on_overflow", default_drop_on_overflow)
        if event_emitter is not None and not callable(event_emitter):
            raise TypeError(
                f"{owner}: event_emitter must be a callable or None; got {type_of(event_emitter)}"
            )
        self._default_max_size = default_max_size
        self._default_drop_on_overflow = default_drop_on_overflow
        self._event_emitter = event_emitter
        # No lock: lookups and inserts never await, so no other task runs between them.
        self._channels: dict[str, ChunkQueue[Any]] = {}
        self._closed = False

    def _get_or_create(
        self, name: str, max_size: int | None, drop_on_overflow: bool | None
    ) -> ChunkQueue[Any]:
        _check_name(name)
        queue = self._channels.get(name)
        if queue is None:
            queue = ChunkQueue(
                max_size=self._default_max_size if max_size is None else max_size,
                drop_on_overflow=self._default_drop_on_overflow
                if drop_on_overflow is None
                else drop_on_overflow,
                event_emitter=self._event_emitter,
            )
            self._channels[name] = queue
        return queue

    async def _resolve(
        self, name: str, max_size: int | None, drop_on_overflow: bool | None
    ) -> ChunkQueue[Any]:
        """The channel ``name``; on a closed bus a new one is closed before anyone uses it."""
        queue = self._get_or_create(name, max_size, drop_on_overflow)
        if self._closed and not queue.is_closed:
            # close() marks the queue closed before it first yields: no put or
            # get can reach it open in between.
            await queue.close()
        return queue

    async def channel(
        self, name: str, *, max_size: int | None = None, drop_on_overflow: bool | None = None
    ) -> ChunkQueue[Any]:
        """The channel ``name``, created with these settings if it does not exist yet.

        A checkpoint. Settings given for an existing channel are ignored. After
        :meth:`close_all` a new channel is returned already closed.

        Raises:
            ValueError: ``name`` is empty.
            TypeError: ``name`` is not a str, or a setting has the wrong type.
        """
        queue = await self._resolve(name, max_size, drop_on_overflow)
        await trio.lowlevel.checkpoint()
        return queue

    async def publish(self, channel: str, item: Any) -> bool:
        """Put ``item`` on ``channel``: :meth:`ChunkQueue.put`'s result.

        A checkpoint; waits for room on a full blocking channel.

        Returns:
            True if the item was queued; False if the channel is closed (every
            channel is, after :meth:`close_all`, including one first named
            then), closes while this waits for room, or dropped the item.

        Raises:
            ValueError: ``channel`` is empty.
            TypeError: ``channel`` is not a str.
        """
        queue = await self._resolve(channel, None, None)
        # A full checkpoint, as the bus's other calls: put alone only spends the
        # checkpoint budget, so a publish loop would rarely let other tasks run.
        await trio.lowlevel.checkpoint()
        return await queue.put(item)

    async def close_channel(self, channel: str, *, remove: bool = False) -> None:
        """Close ``channel`` if it exists; its subscribers end after draining it. A checkpoint.

        Without ``remove`` the closed channel stays on the bus: publishing to
        its name returns False, and a subscriber that starts later drains what
        is left and ends. With ``remove=True`` the bus forgets it at once
        (:meth:`stats` no longer lists it): the tasks that already hold it (a
        subscriber past its first step, a publisher waiting for room) see it
        closed as above, but the name is free, so a later :meth:`publish`,
        :meth:`subscribe` or :meth:`channel` starts a new channel, open unless
        the bus is closed. Use it when a channel's use is over, so that a bus
        that outlives its channels does not keep every one.

        Raises:
            ValueError: ``channel`` is empty.
            TypeError: ``channel`` is not a str, or ``remove`` not a bool.
        """
        _check_name(channel)
        check_flag("RealtimeStageBus.close_channel", "remove", remove)
        # No await between the lookup and the removal: nobody re-creates the name
        # in between, and close() marks the queue closed before it first yields.
        queue = self._channels.pop(channel, None) if remove else self._channels.get(channel)
        if queue is None:
            await trio.lowlevel.checkpoint()
            return
        await queue.close()

    async def close_all(self) -> None:
        """Close every channel, and the bus: channels named later start closed. A checkpoint.

        Every channel is closed even if the caller is cancelled meanwhile;
        ``Cancelled`` is raised afterwards.
        """
        # Before the first await: a channel created while the closes below
        # yield is closed by _resolve, not left open.
        self._closed = True
        with trio.CancelScope(shield=True):
            for queue in list(self._channels.values()):
                await queue.close()
        await trio.lowlevel.checkpoint()

    def subscribe(self, channel: str) -> AsyncIterator[Any]:
        """Iterate ``channel``'s items until it is closed and drained.

        ``async for item in bus.subscribe("tokens")``; each step is a full checkpoint
        (a bare ``ChunkQueue``'s ``get`` only spends the checkpoint budget).
        The channel is created on the first step if needed; if the bus is
        closed by then, it is created closed and the loop ends at once.

        Raises:
            ValueError: ``channel`` is empty (on the first step).
            TypeError: ``channel`` is not a str (on the first step).
        """
        return _Subscription(lambda: self._resolve(channel, None, None))

    async def stats(self) -> dict[str, dict[str, Any]]:
        """``{name: {"size", "closed", "backpressure"}}`` for every channel. A checkpoint."""
        await trio.lowlevel.checkpoint()
        return {
            name: {
                "size": len(queue),
                "closed": queue.is_closed,
                "backpressure": queue.monitor.stats.to_dict(),
            }
            for name, queue in self._channels.items()
        }

    async def __aenter__(self) -> RealtimeStageBus:
        await trio.lowlevel.checkpoint()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close_all()


def _check_name(name: object) -> None:
    if type(name) is not str:
        raise TypeError(f"RealtimeStageBus: channel name must be a str; got {type_of(name)}")
    if not name:
        raise ValueError("RealtimeStageBus channel name cannot be empty")


class _Subscription:
    """``RealtimeStageBus.subscribe``'s iterator: no async generator, so nothing to finalize."""

    def __init__(self, resolve: Callable[[], Awaitable[ChunkQueue[Any]]]) -> None:
        self._resolve = resolve
        self._queue: ChunkQueue[Any] | None = None

    def __aiter__(self) -> _Subscription:
        return self

    async def __anext__(self) -> Any:
        queue = self._queue
        if queue is None:
            queue = self._queue = await self._resolve()
        # A full checkpoint on every step; the queue's get alone is budgeted.
        await trio.lowlevel.checkpoint()
        return await queue.__anext__()


def create_realtime_stage_context(
    snapshot: ContextSnapshot[Any],
    *,
    bus: RealtimeStageBus | None = None,
    bus_max_size: int = 100,
    bus_drop_on_overflow: bool = False,
) -> tuple[StageContext, RealtimeStageBus]:
    """A stage context whose ``inputs.ports.realtime_bus`` is a bus, and that bus.

    The context is named ``"pipeline_entry"``, with non-strict inputs and a new
    timer. Without ``bus`` a new one is made with the given defaults.

    Returns:
        ``(ctx, bus)``: a stage publishes with
        ``await ctx.inputs.ports.realtime_bus.publish("llm_to_tts", token)``.

    Raises:
        TypeError: ``snapshot`` is not a ContextSnapshot, ``bus`` is not a
            RealtimeStageBus, or a default has the wrong type (checked also
            when ``bus`` is given).
    """
    owner = "create_realtime_stage_context"
    if not isinstance(snapshot, ContextSnapshot):
        raise TypeError(f"{owner}: snapshot must be a ContextSnapshot; got {type_of(snapshot)}")
    check_int(owner, "bus_max_size", bus_max_size)
    check_flag(owner, "bus_drop_on_overflow", bus_drop_on_overflow)
    if bus is None:
        bus = RealtimeStageBus(
            default_max_size=bus_max_size, default_drop_on_overflow=bus_drop_on_overflow
        )
    elif not isinstance(bus, RealtimeStageBus):
        raise TypeError(f"{owner}: bus must be a RealtimeStageBus or None; got {type_of(bus)}")
    inputs = create_stage_inputs(snapshot, ports=create_core_ports(realtime_bus=bus), strict=False)
    ctx = StageContext(
        snapshot=snapshot, inputs=inputs, stage_name="pipeline_entry", timer=PipelineTimer()
    )
    return ctx, bus


publish(__name__)
