"""Soak: memory of the legacy StageGraph with the default interceptors over many runs.

``python -m benchmarks.soak_legacy_memory [--smoke] [--runs N] [--every K] [--max-entries M]``

One graph (three stages, a -> b -> c) built with ``get_default_interceptors()``
runs N times (20,000 by default) in one ``trio.run``, each run with its own
idempotency key, as requests carry. Every K runs it prints the traced Python
memory (``tracemalloc``), the process RSS and how many results the default
idempotency store holds. With a bounded store the traced memory stops growing
once the store is full (10,000 results by default); an unbounded one grows
by every run's results. The last line compares the second half with the
first. ``--max-entries`` gives the default chain a store of that size (the
smoke run uses 600, so that 500 runs reach the plateau).

Not a ``bench_*`` module: ``python -m benchmarks`` and CI do not run it.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import trio

from stageflow_trio.pipeline.dag import StageGraph, StageSpec
from stageflow_trio.pipeline.idempotency import IdempotencyInterceptor, InMemoryIdempotencyStore
from stageflow_trio.pipeline.interceptors import get_default_interceptors
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.testing import RecordingEventSink


def _rss_mb() -> float:
    """Resident set size in MB (Linux /proc), or NaN elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


async def _stage_a(ctx: PipelineContext) -> dict[str, Any]:
    return {"text": "hello " * 8, "n": len(ctx.data)}


async def _stage_b(ctx: PipelineContext) -> dict[str, Any]:
    return {"tokens": list(range(16))}


async def _stage_c(ctx: PipelineContext) -> dict[str, Any]:
    return {"ok": True}


class _DiscardingSink(RecordingEventSink):
    """Keeps nothing: the soak measures the graph, not a growing event list."""

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        return None


def _context(n: int, sink: _DiscardingSink) -> PipelineContext:
    ctx = PipelineContext(
        pipeline_run_id=None,
        request_id=None,
        session_id=None,
        user_id=None,
        org_id=None,
        interaction_id=None,
        event_sink=sink,
    )
    ctx.data["idempotency_key"] = f"request-{n}"
    return ctx


async def soak(
    runs: int, every: int, max_entries: int | None = None
) -> list[tuple[int, float, float, int]]:
    """Run the graph ``runs`` times; a sample (runs, traced MB, RSS MB, stored results) every ``every``."""
    if max_entries is None:
        interceptors = get_default_interceptors()
    else:
        interceptors = get_default_interceptors(
            idempotency_store=InMemoryIdempotencyStore(max_entries=max_entries)
        )
    first = interceptors[0]  # the default chain starts with the IdempotencyInterceptor
    assert isinstance(first, IdempotencyInterceptor)
    store = first.store
    assert isinstance(store, InMemoryIdempotencyStore)
    graph = StageGraph(
        [
            StageSpec(name="a", runner=_stage_a),
            StageSpec(name="b", runner=_stage_b, dependencies=("a",)),
            StageSpec(name="c", runner=_stage_c, dependencies=("b",)),
        ],
        interceptors,
    )
    sink = _DiscardingSink()
    samples: list[tuple[int, float, float, int]] = []

    def sample(done: int) -> None:
        gc.collect()
        traced, _peak = tracemalloc.get_traced_memory()
        held = len(store)
        samples.append((done, traced / 1e6, _rss_mb(), held))
        print(
            f"{done:>8,} runs  traced {traced / 1e6:8.2f} MB  RSS {samples[-1][2]:8.1f} MB"
            f"  stored results {held:>7,}",
            flush=True,
        )

    sample(0)
    for n in range(1, runs + 1):
        await graph.run(_context(n, sink))
        if n % every == 0:
            sample(n)
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak_legacy_memory")
    parser.add_argument("--smoke", action="store_true", help="500 runs, a sample every 100")
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--every", type=int, default=2_000)
    parser.add_argument("--max-entries", type=int, default=None)
    args = parser.parse_args(argv)
    runs, every, max_entries = (
        (500, 100, 600) if args.smoke else (args.runs, args.every, args.max_entries)
    )
    tracemalloc.start()
    started = time.perf_counter()
    samples = trio.run(soak, runs, every, max_entries)
    elapsed = time.perf_counter() - started
    tracemalloc.stop()
    half = samples[len(samples) // 2]
    last = samples[-1]
    print(
        f"# {runs:,} runs in {elapsed:.1f} s (tracemalloc on); from run {half[0]:,} to"
        f" {last[0]:,}: traced {last[1] - half[1]:+.2f} MB, RSS {last[2] - half[2]:+.1f} MB",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
