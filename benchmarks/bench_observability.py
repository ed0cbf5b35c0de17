"""Production shapes with observability on, stageflow_trio vs stageflow-core 0.9.1.

Every workload runs on both libraries, alternating round by round in this one
process, and each row is the median CPU seconds per operation (``process_time``:
the machine is shared, and no workload sleeps or waits on I/O):

- ``realistic 5-stage + collecting sink``: the realistic pipeline of
  ``bench_engine`` (guard, two parallel enrichers, transform, work; every stage
  yields once) whose StageContext carries a sink that keeps every event. The
  reference's unified graph emits no stage lifecycle events; ours emits
  ``stage.*.started`` / ``completed`` and ``pipeline_completed`` (about 11
  events a run), and the row counts that work.
- ``realistic 5-stage + BackpressureAwareEventSink``: the same with each
  library's queueing sink in front of the collector, its worker running.
- ``realistic 5-stage + collecting sink, 1,000 concurrent``: per run, with
  1,000 runs of one graph at once (a nursery / ``gather``).
- ``ContextBag.write``: a fresh key per write, one task.
- ``snapshot round trip, 10 messages``: ``from_dict(s.to_dict())`` of
  ``bench_snapshot``'s realistic snapshot (ids, enrichments, routing, metadata)
  with a 10-message conversation.

The legacy StageGraph with the default interceptors and the default sink is
``bench_interceptors``; subpipelines are ``bench_subpipeline``.

Run ``python -m benchmarks observability`` (``--smoke`` for a quick pass).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import trio

from benchmarks.bench_engine import OURS, REALISTIC, REF, Side, _realistic_runners
from benchmarks.bench_snapshot import _build as _build_snapshot
from benchmarks.bench_snapshot import _modules as _snapshot_modules

Row = dict[str, object]
_IDS = {
    "pipeline_run_id": uuid.UUID(int=1),
    "request_id": uuid.UUID(int=2),
    "session_id": uuid.UUID(int=3),
    "user_id": uuid.UUID(int=4),
    "org_id": uuid.UUID(int=5),
    "interaction_id": uuid.UUID(int=6),
}


class _Collector:
    """Keeps every event, as a test or an in-memory exporter would."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any] | None]] = []

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        self.events.append((type, data))

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        self.events.append((type, data))


def _ctx(side: Side, sink: Any) -> Any:
    identity = side.context.RunIdentity(**_IDS)
    snap = side.context.ContextSnapshot(run_id=identity, topology="bench", execution_mode="bench")
    return side.core.StageContext(
        snapshot=snap,
        inputs=side.stages.StageInputs(snapshot=snap),
        stage_name="bench",
        timer=side.core.PipelineTimer(),
        event_sink=sink,
    )


def _per_run(side: Side, body: Callable[[], Awaitable[None]], runs: int) -> float:
    async def main() -> float:
        start = time.process_time()
        for _ in range(runs):
            await body()
        return (time.process_time() - start) / runs

    return float(side.run(main))


def _realistic_with(side: Side, sink: Any) -> Callable[[], Awaitable[Any]]:
    graph = side.graph(REALISTIC, _realistic_runners(side))
    ctx = _ctx(side, sink)
    return lambda: graph.run(ctx)


def _collecting(side: Side, runs: int) -> float:
    sink = _Collector()
    run = _realistic_with(side, sink)

    async def body() -> None:
        await run()
        sink.events.clear()

    return _per_run(side, body, runs)


def _backpressure(side: Side, runs: int) -> float:
    """Runs with a queueing sink whose worker delivers to a collector meanwhile.

    The time ends when every event has reached the collector (``stop`` drains).
    """
    collector = _Collector()
    if side is REF:
        from stageflow.events.sink import BackpressureAwareEventSink as RefSink

        async def ref_main() -> float:
            sink = RefSink(collector, max_queue_size=100_000)
            await sink.start()
            run = _realistic_with(side, sink)
            start = time.process_time()
            for _ in range(runs):
                await run()
            await sink.stop()  # drains what the worker has not delivered yet
            elapsed = time.process_time() - start
            assert len(collector.events) == sink.metrics.emitted
            return elapsed / runs

        return float(asyncio.run(ref_main()))

    from stageflow_trio.events import BackpressureAwareEventSink

    async def trio_main() -> float:
        async with BackpressureAwareEventSink(collector, max_queue_size=100_000) as sink:
            run = _realistic_with(side, sink)
            start = time.process_time()
            for _ in range(runs):
                await run()
            await sink.stop()  # drains what the worker has not delivered yet
            elapsed = time.process_time() - start
        assert len(collector.events) == sink.metrics.emitted
        return elapsed / runs

    return float(trio.run(trio_main))


def _concurrent(side: Side, n: int) -> float:
    sink = _Collector()
    run = _realistic_with(side, sink)
    many = side.concurrently(run, n)

    async def main() -> float:
        start = time.process_time()
        await many()
        return (time.process_time() - start) / n

    return float(side.run(main))


def _bag_writes(side: Side, n: int) -> float:
    keys = [f"k{i}" for i in range(n)]
    if side is REF:
        from stageflow.context.bag import ContextBag as RefBag

        bag_cls: Any = RefBag
    else:
        from stageflow_trio.context.bag import ContextBag

        bag_cls = ContextBag

    async def main() -> float:
        bag = bag_cls()
        write = bag.write
        start = time.process_time()
        for key in keys:
            await write(key, 1, "stage")
        return (time.process_time() - start) / n

    return float(side.run(main))


def _snapshot_timer(modules: Any, messages: int, loops: int) -> float:
    """CPU seconds per ``from_dict(s.to_dict())`` of bench_snapshot's realistic snapshot."""
    ids = [uuid.UUID(int=0x1234_5678_9ABC_DEF0 * (i + 1)) for i in range(6)]
    now = datetime(2026, 12, 6, 7, 0, 0, 123456, tzinfo=UTC)
    snapshot_mod, context_mod, types_mod = modules
    snap = _build_snapshot(snapshot_mod, context_mod, types_mod, ids, now, messages)
    cls = type(snap)
    start = time.process_time()
    for _ in range(loops):
        cls.from_dict(snap.to_dict())
    return (time.process_time() - start) / loops


def _pair(ref: Callable[[], float], ours: Callable[[], float], rounds: int) -> tuple[float, float]:
    ref_times: list[float] = []
    trio_times: list[float] = []
    for _ in range(rounds):
        ref_times.append(ref())
        trio_times.append(ours())
    return statistics.median(ref_times), statistics.median(trio_times)


def run(smoke: bool = False) -> list[Row]:
    """Every workload; ``smoke`` uses tiny sizes and one round."""
    rounds = 1 if smoke else 7
    runs = 20 if smoke else 2_000
    conc = 20 if smoke else 1_000
    writes = 200 if smoke else 20_000
    loops = 20 if smoke else 2_000
    rows: list[Row] = []
    ref_s, trio_s = _pair(lambda: _collecting(REF, runs), lambda: _collecting(OURS, runs), rounds)
    rows.append(
        {
            "workload": "realistic 5-stage + collecting sink (per run)",
            "reference_s": ref_s,
            "trio_s": trio_s,
            "note": f"runs/s: {1 / ref_s:,.0f} vs {1 / trio_s:,.0f} ({ref_s / trio_s:.2f}x)",
        }
    )
    ref_s, trio_s = _pair(
        lambda: _backpressure(REF, runs), lambda: _backpressure(OURS, runs), rounds
    )
    rows.append(
        {
            "workload": "realistic 5-stage + BackpressureAwareEventSink (per run)",
            "reference_s": ref_s,
            "trio_s": trio_s,
            "note": f"runs/s: {1 / ref_s:,.0f} vs {1 / trio_s:,.0f} ({ref_s / trio_s:.2f}x)",
        }
    )
    ref_s, trio_s = _pair(lambda: _concurrent(REF, conc), lambda: _concurrent(OURS, conc), rounds)
    rows.append(
        {
            "workload": f"realistic 5-stage + collecting sink, {conc:,} concurrent (per run)",
            "reference_s": ref_s,
            "trio_s": trio_s,
            "note": f"runs/s: {1 / ref_s:,.0f} vs {1 / trio_s:,.0f} ({ref_s / trio_s:.2f}x)",
        }
    )
    ref_s, trio_s = _pair(
        lambda: _bag_writes(REF, writes), lambda: _bag_writes(OURS, writes), rounds
    )
    rows.append({"workload": "ContextBag.write (1 task)", "reference_s": ref_s, "trio_s": trio_s})
    ref_mods, trio_mods = _snapshot_modules()
    ref_s, trio_s = _pair(
        lambda: _snapshot_timer(ref_mods, 10, loops),
        lambda: _snapshot_timer(trio_mods, 10, loops),
        rounds,
    )
    rows.append(
        {
            "workload": "snapshot round trip, 10 messages",
            "reference_s": ref_s,
            "trio_s": trio_s,
        }
    )
    return rows


if __name__ == "__main__":
    from benchmarks.__main__ import main

    sys.exit(main(["observability", *sys.argv[1:]]))
