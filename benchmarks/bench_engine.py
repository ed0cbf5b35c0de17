"""Engine workloads, stageflow_trio under trio vs stageflow-core 0.9.1 under asyncio.

Workloads (issue 7): a chain of N no-op stages, a fan-out of W stages plus a fan-in,
a realistic 5-stage pipeline (guard, two parallel enrich, transform, work) run
sequentially and concurrently, next to a hand-written trio version of the same
five stages, the bare-trio floors, memory per run and the import time.

Each measurement alternates reference and trio runs in this one process and
reports the median, so a noisy shared machine affects both sides alike.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

import trio

Row = dict[str, object]


# -- stageflow_trio side --------------------------------------------------------


def _trio_graph(deps: dict[str, tuple[str, ...]], kinds: dict[str, Any] | None = None) -> Any:
    from stageflow_trio.core import StageKind, StageOutput
    from stageflow_trio.pipeline.dag import UnifiedStageGraph, UnifiedStageSpec

    async def noop(ctx: Any) -> Any:
        return StageOutput.ok()

    kinds = kinds or {}
    return UnifiedStageGraph(
        [
            UnifiedStageSpec(
                name=name, runner=noop, kind=kinds.get(name, StageKind.TRANSFORM), dependencies=d
            )
            for name, d in deps.items()
        ]
    )


def _trio_ctx() -> Any:
    from stageflow_trio.context import ContextSnapshot
    from stageflow_trio.core import PipelineTimer, StageContext
    from stageflow_trio.stages import StageInputs

    snap = ContextSnapshot(topology="bench", execution_mode="bench")
    return StageContext(
        snapshot=snap, inputs=StageInputs(snapshot=snap), stage_name="bench", timer=PipelineTimer()
    )


# -- reference side ---------------------------------------------------------------


def _ref_graph(deps: dict[str, tuple[str, ...]]) -> Any:
    from stageflow.core import StageKind, StageOutput
    from stageflow.pipeline.dag import UnifiedStageGraph, UnifiedStageSpec

    async def noop(ctx: Any) -> Any:
        return StageOutput.ok()

    return UnifiedStageGraph(
        [
            UnifiedStageSpec(name=name, runner=noop, kind=StageKind.TRANSFORM, dependencies=d)
            for name, d in deps.items()
        ]
    )


def _ref_ctx() -> Any:
    from stageflow.context import ContextSnapshot
    from stageflow.core import PipelineTimer, StageContext
    from stageflow.stages import StageInputs

    snap = ContextSnapshot(topology="bench", execution_mode="bench")
    return StageContext(
        snapshot=snap, inputs=StageInputs(snapshot=snap), stage_name="bench", timer=PipelineTimer()
    )


# -- measurement ------------------------------------------------------------------


def _time_trio(fn: Callable[[], Awaitable[Any]], reps: int) -> float:
    async def main() -> float:
        start = time.perf_counter()
        for _ in range(reps):
            await fn()
        return (time.perf_counter() - start) / reps

    return trio.run(main)


def _time_asyncio(fn: Callable[[], Awaitable[Any]], reps: int) -> float:
    async def main() -> float:
        start = time.perf_counter()
        for _ in range(reps):
            await fn()
        return (time.perf_counter() - start) / reps

    return asyncio.run(main())


def _interleaved(
    ref: Callable[[], Awaitable[Any]] | None,
    ours: Callable[[], Awaitable[Any]],
    reps: int,
    rounds: int,
) -> tuple[float | None, float]:
    ref_times: list[float] = []
    trio_times: list[float] = []
    for _ in range(rounds):
        if ref is not None:
            ref_times.append(_time_asyncio(ref, reps))
        trio_times.append(_time_trio(ours, reps))
    return (statistics.median(ref_times) if ref_times else None, statistics.median(trio_times))


def _chain(n: int) -> dict[str, tuple[str, ...]]:
    return {f"s{i}": ((f"s{i - 1}",) if i else ()) for i in range(n)}


def _fan(w: int) -> dict[str, tuple[str, ...]]:
    deps: dict[str, tuple[str, ...]] = {"root": ()}
    for i in range(w):
        deps[f"w{i}"] = ("root",)
    deps["join"] = tuple(f"w{i}" for i in range(w))
    return deps


def _graph_rows(smoke: bool) -> list[Row]:
    rows: list[Row] = []
    rounds = 1 if smoke else 5
    chain_sizes = [10, 100] if smoke else [10, 100, 1000, 10000]
    for n in chain_sizes:
        deps = _chain(n)
        ours, tctx = _trio_graph(deps), _trio_ctx()
        ref = _ref_graph(deps) if n <= 1000 or not smoke else None
        rctx = _ref_ctx()
        reps = max(1, (200 if not smoke else 2) * 10 // n) if n < 10000 else 1
        ref_s, trio_s = _interleaved(
            (lambda r=ref, c=rctx: r.run(c)) if ref is not None else None,
            lambda g=ours, c=tctx: g.run(c),
            reps,
            rounds if n < 10000 else max(1, rounds // 2),
        )
        rows.append(
            {
                "workload": f"chain N={n} (per stage)",
                "reference_s": ref_s / n if ref_s is not None else None,
                "trio_s": trio_s / n,
            }
        )
    for w in [10, 100] if smoke else [10, 100, 1000]:
        deps = _fan(w)
        ours, tctx = _trio_graph(deps), _trio_ctx()
        ref, rctx = _ref_graph(deps), _ref_ctx()
        reps = max(1, (2 if smoke else 200) * 10 // w)
        ref_s, trio_s = _interleaved(
            lambda r=ref, c=rctx: r.run(c), lambda g=ours, c=tctx: g.run(c), reps, rounds
        )
        rows.append(
            {"workload": f"fan-out W={w} (per run)", "reference_s": ref_s, "trio_s": trio_s}
        )
    return rows


# -- the realistic pipeline -------------------------------------------------------


def _realistic_trio() -> tuple[Any, Callable[[], Any]]:
    from stageflow_trio.core import StageKind, StageOutput
    from stageflow_trio.pipeline.dag import UnifiedStageGraph, UnifiedStageSpec

    async def guard(ctx: Any) -> Any:
        await trio.lowlevel.checkpoint()
        return StageOutput.ok(allowed=True)

    async def enrich_profile(ctx: Any) -> Any:
        await trio.lowlevel.checkpoint()
        return StageOutput.ok(profile={"name": "Ada", "tier": "gold"})

    async def enrich_memory(ctx: Any) -> Any:
        await trio.lowlevel.checkpoint()
        return StageOutput.ok(memory=["hello", "again"])

    async def transform(ctx: Any) -> Any:
        profile = ctx.inputs.get_from("enrich_profile", "profile")
        memory = ctx.inputs.get_from("enrich_memory", "memory")
        await trio.lowlevel.checkpoint()
        return StageOutput.ok(text=f"{profile['name']}:{len(memory)}")

    async def work(ctx: Any) -> Any:
        await trio.lowlevel.checkpoint()
        return StageOutput.ok(saved=ctx.inputs.get_from("transform", "text"))

    graph = UnifiedStageGraph(
        [
            UnifiedStageSpec(name="guard", runner=guard, kind=StageKind.GUARD),
            UnifiedStageSpec(
                name="enrich_profile",
                runner=enrich_profile,
                kind=StageKind.ENRICH,
                dependencies=("guard",),
            ),
            UnifiedStageSpec(
                name="enrich_memory",
                runner=enrich_memory,
                kind=StageKind.ENRICH,
                dependencies=("guard",),
            ),
            UnifiedStageSpec(
                name="transform",
                runner=transform,
                kind=StageKind.TRANSFORM,
                dependencies=("enrich_profile", "enrich_memory"),
            ),
            UnifiedStageSpec(
                name="work", runner=work, kind=StageKind.WORK, dependencies=("transform",)
            ),
        ]
    )
    ctx = _trio_ctx()
    return graph, lambda: graph.run(ctx)


def _realistic_ref() -> Callable[[], Any]:
    from stageflow.core import StageKind, StageOutput
    from stageflow.pipeline.dag import UnifiedStageGraph, UnifiedStageSpec

    async def guard(ctx: Any) -> Any:
        await asyncio.sleep(0)
        return StageOutput.ok(allowed=True)

    async def enrich_profile(ctx: Any) -> Any:
        await asyncio.sleep(0)
        return StageOutput.ok(profile={"name": "Ada", "tier": "gold"})

    async def enrich_memory(ctx: Any) -> Any:
        await asyncio.sleep(0)
        return StageOutput.ok(memory=["hello", "again"])

    async def transform(ctx: Any) -> Any:
        profile = ctx.inputs.get_from("enrich_profile", "profile")
        memory = ctx.inputs.get_from("enrich_memory", "memory")
        await asyncio.sleep(0)
        return StageOutput.ok(text=f"{profile['name']}:{len(memory)}")

    async def work(ctx: Any) -> Any:
        await asyncio.sleep(0)
        return StageOutput.ok(saved=ctx.inputs.get_from("transform", "text"))

    graph = UnifiedStageGraph(
        [
            UnifiedStageSpec(name="guard", runner=guard, kind=StageKind.GUARD),
            UnifiedStageSpec(
                name="enrich_profile",
                runner=enrich_profile,
                kind=StageKind.ENRICH,
                dependencies=("guard",),
            ),
            UnifiedStageSpec(
                name="enrich_memory",
                runner=enrich_memory,
                kind=StageKind.ENRICH,
                dependencies=("guard",),
            ),
            UnifiedStageSpec(
                name="transform",
                runner=transform,
                kind=StageKind.TRANSFORM,
                dependencies=("enrich_profile", "enrich_memory"),
            ),
            UnifiedStageSpec(
                name="work", runner=work, kind=StageKind.WORK, dependencies=("transform",)
            ),
        ]
    )
    ctx = _ref_ctx()
    return lambda: graph.run(ctx)


async def _hand_written_trio() -> dict[str, Any]:
    """The same five stages written directly with a nursery: the floor for the realistic run."""
    out: dict[str, Any] = {}
    await trio.lowlevel.checkpoint()
    out["guard"] = {"allowed": True}

    async def profile() -> None:
        await trio.lowlevel.checkpoint()
        out["enrich_profile"] = {"profile": {"name": "Ada", "tier": "gold"}}

    async def memory() -> None:
        await trio.lowlevel.checkpoint()
        out["enrich_memory"] = {"memory": ["hello", "again"]}

    async with trio.open_nursery() as nursery:
        nursery.start_soon(profile)
        nursery.start_soon(memory)
    await trio.lowlevel.checkpoint()
    out["transform"] = {"text": f"{out['enrich_profile']['profile']['name']}:2"}
    await trio.lowlevel.checkpoint()
    out["work"] = {"saved": out["transform"]["text"]}
    return out


def _concurrent_trio(run: Callable[[], Any], n: int) -> Callable[[], Awaitable[None]]:
    async def many() -> None:
        async with trio.open_nursery() as nursery:
            for _ in range(n):
                nursery.start_soon(run)

    return many


def _concurrent_asyncio(run: Callable[[], Any], n: int) -> Callable[[], Awaitable[None]]:
    async def many() -> None:
        await asyncio.gather(*(run() for _ in range(n)))

    return many


def _latencies_trio(run: Callable[[], Any], n: int) -> list[float]:
    async def main() -> list[float]:
        out = []
        for _ in range(n):
            t = time.perf_counter()
            await run()
            out.append(time.perf_counter() - t)
        return out

    return trio.run(main)


def _latencies_asyncio(run: Callable[[], Any], n: int) -> list[float]:
    async def main() -> list[float]:
        out = []
        for _ in range(n):
            t = time.perf_counter()
            await run()
            out.append(time.perf_counter() - t)
        return out

    return asyncio.run(main())


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _realistic_rows(smoke: bool) -> list[Row]:
    _, ours = _realistic_trio()
    ref = _realistic_ref()
    rounds = 1 if smoke else 5
    runs = 20 if smoke else 2000
    ref_s, trio_s = _interleaved(ref, ours, runs, rounds)
    _, hand_s = _interleaved(None, _hand_written_trio, runs, rounds)
    rows: list[Row] = [
        {
            "workload": "realistic 5-stage, sequential (per run)",
            "reference_s": ref_s,
            "trio_s": trio_s,
        },
        {
            "workload": "realistic 5-stage, hand-written trio (per run)",
            "reference_s": None,
            "trio_s": hand_s,
            "note": f"engine / hand-written = {trio_s / hand_s:.2f}",
        },
    ]
    conc = 10 if smoke else 100
    ref_c, trio_c = _interleaved(
        _concurrent_asyncio(ref, conc), _concurrent_trio(ours, conc), 1 if smoke else 20, rounds
    )
    rows.append(
        {
            "workload": f"realistic 5-stage, {conc} concurrent (per run)",
            "reference_s": ref_c / conc if ref_c else None,
            "trio_s": trio_c / conc,
        }
    )
    lat_ref = _latencies_asyncio(ref, runs)
    lat_trio = _latencies_trio(ours, runs)
    for q, label in ((0.5, "p50"), (0.99, "p99")):
        rows.append(
            {
                "workload": f"realistic 5-stage latency {label}",
                "reference_s": _pct(lat_ref, q),
                "trio_s": _pct(lat_trio, q),
            }
        )
    # Memory per run (tracemalloc peak of one run, after a warm-up run).
    rows.append(
        {
            "workload": "realistic 5-stage memory peak (bytes, not s)",
            "reference_s": _peak_asyncio(ref),
            "trio_s": _peak_trio(ours),
            "note": "tracemalloc peak in bytes",
        }
    )
    return rows


def _peak_trio(run: Callable[[], Any]) -> float:
    async def main() -> float:
        await run()
        tracemalloc.start()
        await run()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return float(peak)

    return trio.run(main)


def _peak_asyncio(run: Callable[[], Any]) -> float:
    async def main() -> float:
        await run()
        tracemalloc.start()
        await run()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return float(peak)

    return asyncio.run(main())


def _floor_rows(smoke: bool) -> list[Row]:
    n = 200 if smoke else 20000

    async def noop() -> None:
        pass

    async def spawn() -> None:
        async with trio.open_nursery() as nursery:
            for _ in range(n):
                nursery.start_soon(noop)

    async def checkpoints() -> None:
        for _ in range(n):
            await trio.lowlevel.checkpoint()

    _, spawn_s = _interleaved(None, spawn, 1, 1 if smoke else 5)
    _, cp_s = _interleaved(None, checkpoints, 1, 1 if smoke else 5)
    return [
        {"workload": "floor: trio start_soon per task", "reference_s": None, "trio_s": spawn_s / n},
        {"workload": "floor: trio checkpoint", "reference_s": None, "trio_s": cp_s / n},
    ]


def _import_rows(smoke: bool) -> list[Row]:
    def import_time(module: str) -> float:
        times = []
        for _ in range(1 if smoke else 5):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", f"import {module}"], check=True)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    base = import_time("sys")
    return [
        {
            "workload": "import time (minus bare interpreter)",
            "reference_s": import_time("stageflow") - base,
            "trio_s": import_time("stageflow_trio") - base,
        }
    ]


def run(smoke: bool = False) -> list[Row]:
    """Every engine workload; ``smoke`` uses tiny sizes and one repetition."""
    return _graph_rows(smoke) + _realistic_rows(smoke) + _floor_rows(smoke) + _import_rows(smoke)


if __name__ == "__main__":
    from benchmarks.__main__ import main

    sys.exit(main(["engine", *sys.argv[1:]]))
