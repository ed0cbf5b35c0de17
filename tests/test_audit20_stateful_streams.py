"""Stateful tests of ChunkQueue and BackpressureAwareEventSink: random operations, one model.

Hypothesis draws one operation at a time, from the state the run is in; the test
performs it inside one ``trio.run`` (MockClock, autojump), waits until every task
is blocked, and compares the component with a plain model of it.

ChunkQueue (drop-oldest or blocking, bounded or not): puts from three sequential
producers and gets from consumer tasks (each may park), ``get_nowait``, puts and
gets in an already cancelled scope, the cancellation of a parked put or get,
races (``get_nowait`` then at once cancel the put it unblocked; a put then at
once cancel the get it fed), ``close`` (also from a cancelled scope, and twice)
and the clock moving on. After every step:

- each call's outcome is the model's: a put's True/False/Cancelled, the item a
  get took (``None`` once closed and drained), ``QueueEmpty``;
- ``len(queue)`` is the model's buffer (the end marker included), the monitor's
  counters (total, dropped, blocked puts and their time, high-water mark), its
  fill percentage and throttle flag are the model's, and so is every telemetry
  event the step emitted, with its data;
- one task is alive per parked call (a trio Instrument counts them);
- every item put is taken exactly once, in its producer's order, or dropped as
  the oldest (counted), refused (put returned False), cancelled (never queued),
  or still waiting in the queue or in a parked put.

At the end the queue is closed and drained with ``async for``: nothing is left
waiting, no task is left, and every item is taken, dropped, refused or
cancelled.

BackpressureAwareEventSink (bounded or not): ``try_emit`` bursts, ``emit`` from
producer tasks (parking on a full queue) and their cancellation, a downstream
that delivers, raises, sleeps (1 s) or waits on a gate the test opens, starting
the worker in a nursery the test owns (also while it runs, or while a stop
drains) and cancelling that nursery (the worker cut without ``stop``), the clock
moving on, and ``stop`` with or without drain and with a timeout: in this task
(also from a cancelled caller, right after a burst handed an event to the idle
worker, and while another stop is in progress) or in a task of its own, which
may be cancelled meanwhile. After every step:

- the downstream has seen exactly the model's deliveries and cuts, in order, and
  ``on_drop`` exactly the model's events, in order; no event reached the
  downstream twice;
- the metrics (emitted, dropped, queue_full_count, undelivered,
  downstream_errors), ``queue_size`` and ``is_running`` are the model's;
- each ``try_emit`` / ``emit`` / ``stop`` returned (or raised ``Cancelled``)
  as the model says, a ``stop`` at the model's time (its drain, or its deadline);
- one task per parked emit, two for a running worker (it and its host) and one
  for a stop in its own task are alive;
- every event offered is delivered, rejected by the downstream, refused when
  the queue was full, given up, never accepted (a cancelled emit), or still on
  its way, and ``emitted`` counts exactly those accepted.

At the end a draining ``stop`` leaves nothing on the way and no task, and
``emitted == delivered + undelivered``.

A regression test at the end keeps the one bug the models found.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stageflow_trio.events import BackpressureAwareEventSink
from stageflow_trio.helpers.streaming import ChunkQueue, QueueEmpty
from tests.trio_setups import TaskLedger

PENDING = "pending"
CANCELLED = "cancelled"
EMPTY = "empty"  # get_nowait raised QueueEmpty
END = "<end marker>"  # the model's end marker in the buffer

# Deterministic and quick: about a second for each test.
SETTINGS = settings(
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# -- ChunkQueue -------------------------------------------------------------


@dataclass(eq=False)
class Call:
    """One put or get: its item (a put's), its scope, its outcome."""

    kind: str  # "put" or "get"
    item: Any = None
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    outcome: Any = PENDING  # what the call returned, or CANCELLED
    expected: Any = PENDING  # what the model says it returns
    parked_at: float = 0.0


class QueueModel:
    """ChunkQueue as documented: a FIFO buffer, parked puts and gets, the monitor's counters."""

    def __init__(self, max_size: int, drop: bool) -> None:
        self.max_size = max_size
        self.capacity = max_size if max_size > 0 else math.inf
        self.drop = drop
        self.buffer: deque[Any] = deque()
        self.parked_puts: deque[Call] = deque()
        self.parked_gets: deque[Call] = deque()
        self.closed = False
        self.total = 0
        self.dropped: list[Any] = []
        self.blocked = 0
        self.blocked_ms = 0.0
        self.high = 0
        self.fill = 0.0
        self.throttling = False  # the monitor's latch
        self.throttle_active = False  # the queue's last reported state
        self.events: list[tuple[str, dict[str, Any]]] = []

    def _after_put(self, call: Call) -> None:
        call.expected = True
        size = len(self.buffer)
        self.total += 1
        self.high = max(self.high, size)
        self.fill = (size / self.max_size) * 100 if self.max_size > 0 else 0
        if self.fill >= 80:
            self.throttling = True
        elif self.fill <= 20:
            self.throttling = False
        if self.throttling != self.throttle_active:
            self.throttle_active = self.throttling
            kind = "stream.throttle_started" if self.throttling else "stream.throttle_ended"
            self.events.append((kind, {"fill_percentage": self.fill, "queue_size": size}))

    def put(self, call: Call, now: float) -> None:
        if self.closed:
            call.expected = False
        elif self.parked_gets:
            # Handed straight to the first parked get: it never waits in the buffer.
            self.parked_gets.popleft().expected = call.item
            self._after_put(call)
        elif len(self.buffer) < self.capacity:
            self.buffer.append(call.item)
            self._after_put(call)
        elif self.drop:
            self.dropped.append(self.buffer.popleft())
            self.events.append(
                (
                    "stream.chunk_dropped",
                    {
                        "queue_size": len(self.buffer),
                        "max_size": self.max_size,
                        "reason": "overflow",
                    },
                )
            )
            self.buffer.append(call.item)
            self._after_put(call)
        else:
            call.parked_at = now
            self.parked_puts.append(call)

    def take(self, now: float) -> Any:
        """A get that finds an item: the first parked put's item moves into the room."""
        item = self.buffer.popleft()
        if self.parked_puts:
            put = self.parked_puts.popleft()
            self.buffer.append(put.item)
            elapsed_ms = (now - put.parked_at) * 1000
            if elapsed_ms > 1:
                self.blocked += 1
                self.blocked_ms += elapsed_ms
                self.events.append(
                    (
                        "stream.producer_blocked",
                        {"blocked_ms": elapsed_ms, "queue_size": len(self.buffer)},
                    )
                )
            self._after_put(put)
        return None if item == END else item

    def get(self, call: Call, now: float) -> None:
        if self.buffer:
            call.expected = self.take(now)
        elif self.closed:
            call.expected = None
        else:
            self.parked_gets.append(call)

    def get_nowait(self, now: float) -> Any:
        return self.take(now) if self.buffer else EMPTY

    def cancel(self, call: Call) -> None:
        (self.parked_puts if call.kind == "put" else self.parked_gets).remove(call)
        call.expected = CANCELLED

    def close(self) -> None:
        self.events.append(
            (
                "stream.queue_closed",
                {
                    "total_items": self.total,
                    "dropped_items": len(self.dropped),
                    "blocked_puts": self.blocked,
                    "max_queue_size": self.high,
                    "total_blocked_ms": self.blocked_ms,
                },
            )
        )
        if self.closed:
            return  # a second close only reports
        self.closed = True
        if self.parked_gets:
            # The end marker goes to the first parked get; the others see the end.
            for get in self.parked_gets:
                get.expected = None
            self.parked_gets.clear()
        elif len(self.buffer) < self.capacity:
            self.buffer.append(END)
        for put in self.parked_puts:
            put.expected = False
        self.parked_puts.clear()


def check_queue(
    model: QueueModel,
    queue: ChunkQueue[Any],
    calls: list[Call],
    events: list[tuple[str, dict[str, Any]]],
    step: str,
) -> None:
    for call in calls:
        assert call.outcome == call.expected, f"{step}: {call.kind} {call.item}"
    assert len(queue) == len(model.buffer), step
    stats = queue.monitor.stats
    assert (stats.total_items, stats.dropped_items, stats.blocked_puts) == (
        model.total,
        len(model.dropped),
        model.blocked,
    ), step
    assert (stats.max_queue_size, stats.total_blocked_ms) == (model.high, model.blocked_ms), step
    assert queue.monitor.fill_percentage == model.fill, step
    assert queue.monitor.should_throttle() == model.throttling, step
    assert queue.is_closed == model.closed, step
    assert events == model.events, step
    events.clear()
    model.events.clear()


def check_items(
    model: QueueModel, calls: list[Call], got: list[Any], *, final: bool = False
) -> None:
    """Every item put is taken once, in its producer's order, or accounted for."""
    taken = [c.outcome for c in calls if c.kind == "get" and isinstance(c.outcome, tuple)]
    taken += got
    assert len(taken) == len(set(taken))
    for producer in range(3):
        seqs = [seq for who, seq in taken if who == producer]
        assert seqs == sorted(seqs)
    puts = [c for c in calls if c.kind == "put"]
    refused = {c.item for c in puts if c.outcome is False}
    cancelled = {c.item for c in puts if c.outcome == CANCELLED}
    waiting = {item for item in model.buffer if item != END}
    waiting |= {c.item for c in model.parked_puts}
    parts = [set(taken), set(model.dropped), refused, cancelled, waiting]
    assert sum(map(len, parts)) == len(puts)
    assert set().union(*parts) == {c.item for c in puts}
    if final:
        assert not waiting


def run_queue_example(data: st.DataObject) -> None:
    max_size = data.draw(st.sampled_from([2, 1, 3, 0]), label="max_size")
    drop = data.draw(st.booleans(), label="drop_on_overflow")
    steps = data.draw(st.integers(1, 40), label="steps")
    events: list[tuple[str, dict[str, Any]]] = []
    queue: ChunkQueue[Any] = ChunkQueue(
        max_size, drop_on_overflow=drop, event_emitter=lambda t, d: events.append((t, d))
    )
    model = QueueModel(max_size, drop)
    counter = TaskLedger()
    calls: list[Call] = []
    next_seq = [0, 0, 0]
    closed_at = 0

    async def run_call(call: Call, task_status: trio.TaskStatus[None]) -> None:
        task_status.started()
        with call.scope:
            if call.kind == "put":
                call.outcome = await queue.put(call.item)
            else:
                call.outcome = await queue.get()
        if call.scope.cancelled_caught:
            call.outcome = CANCELLED

    async def main() -> None:
        nonlocal closed_at
        baseline = set(counter.alive)

        async with trio.open_nursery() as nursery:

            async def spawn(call: Call, *, cancelled: bool = False) -> None:
                calls.append(call)
                if cancelled:
                    call.scope.cancel()
                    call.expected = CANCELLED
                elif call.kind == "put":
                    model.put(call, trio.current_time())
                else:
                    model.get(call, trio.current_time())
                await nursery.start(run_call, call)

            def new_put() -> Call:
                busy = {c.item[0] for c in model.parked_puts}
                free = [p for p in range(3) if p not in busy]
                producer = data.draw(st.sampled_from(free), label="producer")
                next_seq[producer] += 1
                return Call("put", (producer, next_seq[producer]))

            for number in range(steps):
                if model.closed and number > closed_at + 4:
                    break  # a closed queue has little left to show
                # Weighted by repetition: puts outrun gets so that blocking puts
                # park and drop-oldest queues drop; close comes late, if at all.
                # A producer waits for its put to return before it puts again.
                # (Puts first: hypothesis often draws the first choice many times.)
                can_put = len(model.parked_puts) < 3
                kinds = ["put"] * 8 + ["put_cancelled"] if can_put else []
                kinds += ["get"] * 3 + ["get_nowait", "sleep"] * 3
                kinds += ["get_cancelled", "close"]
                if model.buffer:
                    kinds += ["get_here"] * 2
                if model.parked_puts:
                    kinds += ["cancel_put", "race_get_nowait_cancel_put"] * 2 + ["sleep"] * 4
                if model.parked_gets and can_put:
                    kinds += ["cancel_get", "race_put_cancel_get"] * 2
                elif model.parked_gets:
                    kinds += ["cancel_get"] * 2
                kind = data.draw(st.sampled_from(kinds), label="kind")
                step = f"step {number}: {kind}"
                if kind in ("put", "put_cancelled"):
                    await spawn(new_put(), cancelled=kind == "put_cancelled")
                elif kind in ("get", "get_cancelled"):
                    await spawn(Call("get"), cancelled=kind == "get_cancelled")
                elif kind == "get_nowait":
                    expected = model.get_nowait(trio.current_time())
                    try:
                        got = queue.get_nowait()
                    except QueueEmpty:
                        got = EMPTY
                    assert got == expected, step
                    # Before the put it unblocked runs: its item counts already.
                    assert len(queue) == len(model.buffer), step
                    if got not in (None, EMPTY):
                        calls.append(Call("get", outcome=got, expected=got))
                elif kind == "get_here":
                    # A get that need not wait, in this task (get's own fast path).
                    expected = model.get_nowait(trio.current_time())
                    got = await queue.get()
                    assert got == expected, step
                    assert len(queue) == len(model.buffer), step
                    if got is not None:
                        calls.append(Call("get", outcome=got, expected=got))
                elif kind in ("cancel_put", "cancel_get"):
                    parked = model.parked_puts if kind == "cancel_put" else model.parked_gets
                    call = data.draw(st.sampled_from(list(parked)), label="call")
                    model.cancel(call)
                    call.scope.cancel()
                elif kind == "race_get_nowait_cancel_put":
                    # The put is woken with its item queued; the cancel comes too late.
                    first = model.parked_puts[0]
                    expected = model.get_nowait(trio.current_time())
                    got = queue.get_nowait()
                    first.scope.cancel()
                    assert got == expected, step
                    calls.append(Call("get", outcome=got, expected=got))
                elif kind == "race_put_cancel_get":
                    # The get is woken with the item; the cancel comes too late.
                    first = model.parked_gets[0]
                    call = new_put()
                    calls.append(call)
                    model.put(call, trio.current_time())
                    call.outcome = await queue.put(call.item)
                    first.scope.cancel()
                elif kind == "close":
                    closed_at = closed_at if model.closed else number
                    model.close()
                    with trio.CancelScope() as scope:
                        if data.draw(st.booleans(), label="cancelled"):
                            scope.cancel()
                        await queue.close()
                    assert scope.cancelled_caught == scope.cancel_called, step
                else:
                    await trio.sleep(
                        data.draw(st.sampled_from([0.25, 0.0005, 0.002]), label="seconds")
                    )
                await trio.testing.wait_all_tasks_blocked()
                check_queue(model, queue, calls, events, step)
                waiting = len(model.parked_puts) + len(model.parked_gets)
                assert len(counter.alive - baseline) == waiting, step
                check_items(model, calls, [])
            if not model.closed:
                model.close()
                await queue.close()
            rest = [item async for item in queue]
            expected_rest = [item for item in model.buffer if item != END]
            assert rest == expected_rest
            model.buffer.clear()
            await trio.testing.wait_all_tasks_blocked()
            check_queue(model, queue, calls, events, "final")
            check_items(model, calls, rest, final=True)
            assert all(c.outcome != PENDING for c in calls)
        assert counter.alive == baseline

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0), instruments=[counter])


@settings(SETTINGS, max_examples=200)
@given(st.data())
def test_chunk_queue_follows_the_model_step_by_step(data: st.DataObject) -> None:
    run_queue_example(data)


# -- BackpressureAwareEventSink ----------------------------------------------

SLOW = 1.0  # how long a "slow" delivery sleeps
# Sleeps are multiples of 1/4 s and stop timeouts 1/8 s off them, so a stop's
# deadline never falls on the instant a slow delivery ends (no tie to break).
SLEEPS = [0.25, 1.5]
TIMEOUTS = [2.125, 0.625]


@dataclass(eq=False)
class Ev:
    """One event offered to the sink; ``mode`` says what the downstream does with it."""

    n: int
    mode: str  # "ok", "raise", "slow" (sleeps SLOW) or "gate" (waits for the test)
    gate: trio.Event = field(default_factory=trio.Event)
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)  # its emit's
    outcome: Any = PENDING  # try_emit's bool; an emit's "queued" or CANCELLED
    expected: Any = PENDING


@dataclass(eq=False)
class StopCall:
    """A stop() running in a task of its own."""

    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    outcome: Any = PENDING  # "stopped" or CANCELLED (raised at the end)
    returned_at: float | None = None
    expected_at: float | None = None  # when the model's stop ended


def waits(ev: Ev) -> bool:
    """Whether the downstream's emit waits for the clock or the test (not an open gate)."""
    return ev.mode == "slow" or (ev.mode == "gate" and not ev.gate.is_set())


class Downstream:
    """Delivers, raises, sleeps or waits on a gate, by the event's mode; records it all."""

    def __init__(self, events: dict[int, Ev]) -> None:
        self.events = events
        self.attempts: list[int] = []
        self.delivered: list[int] = []
        self.cut: list[int] = []

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        assert data is not None
        ev = self.events[data["n"]]
        assert type == f"e{ev.n}"
        self.attempts.append(ev.n)
        try:
            if ev.mode == "slow":
                await trio.sleep(SLOW)
            elif ev.mode == "gate":
                await ev.gate.wait()
            else:
                await trio.lowlevel.checkpoint()
        except trio.Cancelled:
            self.cut.append(ev.n)
            raise
        if ev.mode == "raise":
            raise ValueError(f"downstream rejects e{ev.n}")
        self.delivered.append(ev.n)


class SinkModel:
    """BackpressureAwareEventSink as docs/events.md describes it.

    One delivery at a time is in progress (``current``): the worker's, or, once
    a stop has let the worker exit, the stop's own (``draining``).
    """

    def __init__(self, max_queue_size: int) -> None:
        self.capacity = max_queue_size if max_queue_size > 0 else math.inf
        self.queue: deque[Ev] = deque()
        self.parked: deque[Ev] = deque()  # emits waiting for room
        self.running = False
        self.idle = False  # the running worker waits in receive()
        self.current: Ev | None = None  # a delivery in progress (gate or slow)
        self.current_end = 0.0  # when a slow one ends
        self.held: Ev | None = None  # handed to the worker, not yet started
        self.cut_pending: Ev | None = None  # cut without stop: counted by start/stop
        # A stop in progress: its deadline, what it set aside, whether it delivers.
        self.deadline: float | None = None
        self.draining = False
        self.leftovers: list[Ev] = []
        self.stopped_at = 0.0  # when the last stop ended
        self.delivered: list[int] = []
        self.cut: list[int] = []
        self.on_drop: list[int] = []
        self.refused: list[int] = []
        self.errors: list[int] = []
        self.given_up: list[int] = []
        self.emitted = 0

    # The producer side.

    def offer(self, ev: Ev) -> bool:
        """send_nowait: to the idle worker, else into the buffer; False when full."""
        if self.running and self.idle:
            # trio hands it straight to the parked worker: not in the buffer.
            self.idle = False
            self.held = ev
        elif len(self.queue) < self.capacity:
            self.queue.append(ev)
        else:
            return False
        self.emitted += 1
        return True

    def try_emit(self, ev: Ev) -> bool:
        if self.offer(ev):
            return True
        self.refused.append(ev.n)
        self.on_drop.append(ev.n)
        return False

    def emit(self, ev: Ev) -> None:
        if self.offer(ev):
            ev.expected = "queued"
        else:
            self.parked.append(ev)

    def cancel_emit(self, ev: Ev) -> None:
        self.parked.remove(ev)
        ev.expected = CANCELLED

    def receive(self) -> Ev | None:
        """receive_nowait: the held event first, then the buffer (a parked emit moves in)."""
        if self.held is not None:
            ev, self.held = self.held, None
            return ev
        if not self.queue:
            return None
        ev = self.queue.popleft()
        if self.parked:
            moved = self.parked.popleft()
            self.queue.append(moved)
            moved.expected = "queued"
            self.emitted += 1
        return ev

    # The delivery side.

    def work(self, now: float) -> None:
        """Deliver until a delivery waits (gate, sleep) or the queue is empty."""
        while self.current is None:
            if self.deadline is not None:
                if not self.draining:
                    # The worker has finished its delivery (or was idle): it
                    # exits, and the stop delivers the rest from its own task.
                    self.running = self.idle = False
                    self.draining = True
                    if self.cut_pending is not None:
                        self.leftovers.append(self.cut_pending)
                        self.cut_pending = None
            elif not self.running:
                return
            ev = self.receive()
            if ev is None:
                if self.deadline is not None:
                    self.finish_stop(now)
                else:
                    self.idle = True
                return
            if ev.mode == "raise":
                self.errors.append(ev.n)
                self.on_drop.append(ev.n)
            elif not waits(ev):
                self.delivered.append(ev.n)
            else:
                self.current = ev
                self.current_end = now + SLOW

    def advance(self, now: float, until: float) -> float:
        """The clock moves on to ``until``: slow deliveries end, a stop's deadline passes.

        Returns the time of the last thing that happened.
        """
        while True:
            end = (
                self.current_end
                if self.current is not None and self.current.mode == "slow"
                else math.inf
            )
            deadline = math.inf if self.deadline is None else self.deadline
            if min(end, deadline) > until or end == deadline == math.inf:
                return now
            assert end != deadline  # the timeouts are chosen so that it never happens
            if end < deadline:
                now = end
                self.release(now)
            else:
                now = deadline
                self.finish_stop(now)

    def release(self, now: float) -> None:
        """The delivery in progress returns."""
        assert self.current is not None
        self.delivered.append(self.current.n)
        self.current = None
        self.work(now)

    def start(self, now: float) -> None:
        if self.running:
            return  # a no-op while a worker runs (also one that a stop waits for)
        self.running = True
        if self.draining:
            return  # delivers nothing until that stop ends; the drain's event stays its
        if self.cut_pending is not None:
            self.give_up([self.cut_pending])
            self.cut_pending = None
        self.work(now)

    def cancel_owner(self, now: float) -> None:
        """The worker's nursery is cancelled: the delivery in progress is cut."""
        if self.current is not None and not self.draining:
            self.cut.append(self.current.n)
            if self.deadline is None:
                self.cut_pending = self.current  # counted by the next start or stop
            else:
                self.leftovers.append(self.current)  # the stop waiting for it counts it
            self.current = None
        self.running = self.idle = False
        if self.deadline is not None:
            self.work(now)

    def give_up(self, events: list[Ev]) -> None:
        self.given_up += [ev.n for ev in events]
        self.on_drop += [ev.n for ev in events]

    def begin_stop(self, now: float, drain: bool, timeout: float) -> None:
        assert self.deadline is None
        self.stopped_at = now
        if not (self.running or self.cut_pending or self.held or self.queue):
            return  # nothing to stop: only a checkpoint
        self.deadline = now + timeout
        if drain:
            self.work(now)
        else:
            if self.cut_pending is not None:
                self.leftovers.append(self.cut_pending)
                self.cut_pending = None
            self.finish_stop(now)

    def finish_stop(self, now: float) -> None:
        """The drain is done, or the deadline passed, or no drain: what is left is given up."""
        if self.current is not None:  # cut where it is
            self.cut.append(self.current.n)
            self.leftovers.append(self.current)
            self.current = None
        self.running = self.idle = False  # also a worker started during the drain
        while (ev := self.receive()) is not None:
            self.leftovers.append(ev)
        self.give_up(self.leftovers)
        self.leftovers = []
        self.deadline = None
        self.draining = False
        self.stopped_at = now


def check_sink(
    model: SinkModel,
    sink: BackpressureAwareEventSink,
    downstream: Downstream,
    on_drop: list[int],
    offered: list[Ev],
    step: str,
) -> None:
    assert downstream.delivered == model.delivered, step
    assert downstream.cut == model.cut, step
    assert on_drop == model.on_drop, step
    metrics = sink.metrics
    undelivered = len(model.errors) + len(model.given_up)
    assert metrics.emitted == model.emitted, step
    assert (metrics.queue_full_count, metrics.undelivered) == (len(model.refused), undelivered), (
        step
    )
    assert metrics.dropped == len(model.refused) + undelivered, step
    assert metrics.downstream_errors == len(model.errors), step
    assert sink.queue_size == len(model.queue), step
    assert sink.is_running == model.running, step
    for ev in offered:
        assert ev.outcome == ev.expected, f"{step}: e{ev.n}"
    # Nothing is delivered twice, nor delivered after it was given up.
    assert len(downstream.attempts) == len(set(downstream.attempts)), step
    # Every event offered is in exactly one place.
    on_the_way = [ev.n for ev in (*model.queue, *model.leftovers)]
    on_the_way += [ev.n for ev in (model.held, model.current, model.cut_pending) if ev is not None]
    parked = [ev.n for ev in model.parked]
    never = [ev.n for ev in offered if ev.outcome == CANCELLED]
    parts = [model.delivered, model.errors, model.refused, model.given_up, never, on_the_way]
    assert sorted(sum(parts, parked)) == [ev.n for ev in offered], step
    assert metrics.emitted == len(model.delivered) + undelivered + len(on_the_way), step


def run_sink_example(data: st.DataObject) -> None:
    max_queue_size = data.draw(st.sampled_from([2, 1, 3, 0]), label="max_queue_size")
    steps = data.draw(st.integers(1, 40), label="steps")
    events: dict[int, Ev] = {}
    downstream = Downstream(events)
    dropped: list[int] = []
    sink = BackpressureAwareEventSink(
        downstream,
        max_queue_size=max_queue_size,
        on_drop=lambda event_type, payload: dropped.append(int(event_type[1:])),
    )
    model = SinkModel(max_queue_size)
    counter = TaskLedger()
    offered: list[Ev] = []
    stops: list[StopCall] = []

    def new_event() -> Ev:
        mode = data.draw(st.sampled_from(["ok", "ok", "gate", "slow", "raise"]), label="mode")
        ev = Ev(len(offered), mode)
        events[ev.n] = ev
        offered.append(ev)
        return ev

    def burst() -> None:
        for _ in range(data.draw(st.integers(1, 4), label="burst")):
            ev = new_event()
            ev.expected = model.try_emit(ev)
            ev.outcome = sink.try_emit(type=f"e{ev.n}", data={"n": ev.n})

    async def run_emit(ev: Ev, task_status: trio.TaskStatus[None]) -> None:
        task_status.started()
        with ev.scope:
            await sink.emit(type=f"e{ev.n}", data={"n": ev.n})
            ev.outcome = "queued"
        if ev.scope.cancelled_caught:
            ev.outcome = CANCELLED

    async def run_stop(
        call: StopCall, drain: bool, timeout: float, task_status: trio.TaskStatus[None]
    ) -> None:
        task_status.started()
        with call.scope:
            await sink.stop(drain=drain, timeout=timeout)
            call.outcome = "stopped"
        if call.scope.cancelled_caught:
            call.outcome = CANCELLED
        call.returned_at = trio.current_time()

    async def host(task_status: trio.TaskStatus[trio.CancelScope]) -> None:
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                await sink.start(nursery)
                task_status.started(scope)

    async def main() -> None:
        baseline = set(counter.alive)
        owner: trio.CancelScope | None = None
        async with trio.open_nursery() as nursery:

            async def stop_here(step: str, *, drain: bool, timeout: float) -> None:
                """stop() in this task; with a stop in progress it waits for that one."""
                cancelled = data.draw(st.booleans(), label="cancelled")
                now = trio.current_time()
                if model.deadline is None:
                    model.begin_stop(now, drain, timeout)
                # Shielded, it ends when the stop ends, even for a cancelled caller.
                model.advance(now, math.inf)
                returns_at = model.stopped_at
                with trio.CancelScope() as scope:
                    if cancelled:
                        scope.cancel()
                    await sink.stop(drain=drain, timeout=timeout)
                assert scope.cancelled_caught == cancelled, step
                assert trio.current_time() == returns_at, step

            for number in range(steps):
                kinds = ["burst"] * 4 + ["emit"] * 2 + ["sleep", "stop", "emit_cancelled"]
                if not model.running:
                    kinds[:0] = ["start"] * 3
                else:
                    kinds += ["cancel_owner", "burst_cancel_owner", "start"]
                if model.parked:
                    kinds += ["cancel_emit"] * 2
                if model.current is not None and model.current.mode == "gate":
                    kinds += ["release"] * 4
                if model.running and model.idle:
                    kinds.append("burst_stop")
                if model.deadline is None:
                    kinds += ["stop_task"] * 2
                else:
                    # What can happen while a stop waits for a delivery: another
                    # stop (it waits too), the stop's caller cancelled, time.
                    kinds += ["stop", "sleep"] * 2
                    if not stops[-1].scope.cancel_called:
                        kinds += ["cancel_stop_task"] * 2
                kind = data.draw(st.sampled_from(kinds), label="kind")
                step = f"step {number}: {kind}"
                now = trio.current_time()
                if kind == "start":
                    starts = not model.running  # else a no-op: its host ends at once
                    model.start(now)
                    scope = await nursery.start(host)
                    owner = scope if starts else owner
                elif kind == "burst":
                    burst()
                    model.work(now)
                elif kind in ("emit", "emit_cancelled"):
                    ev = new_event()
                    if kind == "emit":
                        model.emit(ev)
                        model.work(now)
                    else:
                        ev.expected = CANCELLED
                        ev.scope.cancel()
                    await nursery.start(run_emit, ev)
                elif kind == "cancel_emit":
                    ev = data.draw(st.sampled_from(list(model.parked)), label="emit")
                    model.cancel_emit(ev)
                    ev.scope.cancel()
                elif kind == "release":
                    assert model.current is not None
                    model.current.gate.set()
                    model.release(now)
                elif kind in ("cancel_owner", "burst_cancel_owner"):
                    # With a burst first, an idle worker is handed an event and
                    # cancelled before it runs: the event is held for later.
                    if kind == "burst_cancel_owner":
                        burst()
                    model.cancel_owner(now)
                    assert owner is not None
                    owner.cancel()
                elif kind in ("stop", "burst_stop"):
                    if kind == "burst_stop":
                        burst()  # handed to the idle worker, which the stop wakes
                    await stop_here(
                        step,
                        drain=data.draw(st.booleans(), label="drain"),
                        timeout=data.draw(st.sampled_from(TIMEOUTS), label="timeout"),
                    )
                elif kind == "stop_task":
                    drain = data.draw(st.booleans(), label="drain")
                    timeout = data.draw(st.sampled_from(TIMEOUTS), label="timeout")
                    model.begin_stop(now, drain, timeout)
                    stops.append(StopCall())
                    await nursery.start(run_stop, stops[-1], drain, timeout)
                elif kind == "cancel_stop_task":
                    stops[-1].scope.cancel()  # shielded: the stop goes on
                else:
                    seconds = data.draw(st.sampled_from(SLEEPS), label="seconds")
                    model.advance(now, now + seconds)
                    await trio.sleep(seconds)
                await trio.testing.wait_all_tasks_blocked()
                check_sink(model, sink, downstream, dropped, offered, step)
                for call in stops:
                    if model.deadline is not None and call is stops[-1]:
                        assert call.outcome == PENDING, step
                        continue
                    if call.expected_at is None:
                        call.expected_at = model.stopped_at
                    assert call.returned_at == call.expected_at, step
                    cancelled = call.scope.cancel_called
                    assert call.outcome == (CANCELLED if cancelled else "stopped"), step
                expected_tasks = len(model.parked) + (2 if model.running else 0)
                expected_tasks += model.deadline is not None  # a stop's task
                assert len(counter.alive - baseline) == expected_tasks, step
            # Open the gates, then stop with drain: everything is delivered or counted.
            for ev in offered:
                ev.gate.set()
            if model.current is not None and model.current.mode == "gate":
                model.release(trio.current_time())
            await trio.testing.wait_all_tasks_blocked()
            await stop_here("final", drain=True, timeout=100.0)
            await trio.testing.wait_all_tasks_blocked()
            check_sink(model, sink, downstream, dropped, offered, "final")
            assert (len(model.queue), len(model.parked)) == (0, 0)
            assert (model.held, model.current, model.cut_pending, model.deadline) == (None,) * 4
            assert all(call.outcome != PENDING for call in stops)
            metrics = sink.metrics
            assert metrics.emitted == len(downstream.delivered) + metrics.undelivered
        assert counter.alive == baseline

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0), instruments=[counter])


@settings(SETTINGS, max_examples=100)
@given(st.data())
def test_backpressure_sink_follows_the_model_step_by_step(data: st.DataObject) -> None:
    run_sink_example(data)


# -- Regressions found by the models -------------------------------------------


class GatedSink:
    """A downstream whose emit waits until ``gate`` is set."""

    def __init__(self) -> None:
        self.gate = trio.Event()

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        await self.gate.wait()


async def test_a_cancelled_stop_waiting_for_another_stop_returns_once_the_sink_is_stopped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Before audit 20 the second stop raised Cancelled at once, while the first
    # was still draining: stop's "the sink is stopped by then" did not hold.
    sink = BackpressureAwareEventSink(GatedSink())
    sink.try_emit(type="a", data=None)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: sink.stop(timeout=2.0))  # drains "a": waits on the gate
        await trio.testing.wait_all_tasks_blocked()
        with trio.CancelScope() as scope:
            scope.cancel()
            await sink.stop()
        assert scope.cancelled_caught
        # It returned when the first stop's budget ran out and "a" was counted.
        assert trio.current_time() == 2.0
        assert (sink.metrics.undelivered, sink.queue_size) == (1, 0)
