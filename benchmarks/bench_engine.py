"""Engine workloads, stageflow_trio under trio vs stageflow-core 0.9.1 under asyncio.

Workloads (issue 7): a chain of N no-op stages, a fan-out of W stages plus a fan-in,
a realistic 5-stage pipeline (guard, two parallel enrich, transform, work) run
sequentially and concurrently, next to a hand-written trio version of the same
five stages, the bare-trio floors, memory per run and the import time.

Each workload is written once and run on two :class:`Side` objects (the library
plus its event loop). Measurements alternate reference and trio runs in this one
process and report the median, so a noisy shared machine affects both alike.
"""

from __future__ import annotations

import asyncio
import importlib
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

import trio

Row = dict[str, object]
Deps = dict[str, tuple[str, ...]]


class Side:
    """One implementation: its package, its event loop and its yield."""

    def __init__(self, package: str, loop: Callable[[Any], Any], yield_: Any) -> None:
        self.core = importlib.import_module(f"{package}.core")
        self.dag = importlib.import_module(f"{package}.pipeline.dag")
        self.context = importlib.import_module(f"{package}.context")
        self.stages = importlib.import_module(f"{package}.stages")
        self.loop = loop
        self.yield_ = yield_

    def run(self, main: Callable[[], Awaitable[Any]]) -> Any:
        """Run ``main`` in a fresh event loop of this side."""
        return self.loop(main)

    def ctx(self) -> Any:
        snap = self.context.ContextSnapshot(topology="bench", execution_mode="bench")
        return self.core.StageContext(
            snapshot=snap,
            inputs=self.stages.StageInputs(snapshot=snap),
            stage_name="bench",
            timer=self.core.PipelineTimer(),
        )

    def graph(self, deps: Deps, runners: dict[str, Any] | None = None) -> Any:
        core = self.core

        async def noop(ctx: Any) -> Any:
            return core.StageOutput.ok()

        runners = runners or {}
        return self.dag.UnifiedStageGraph(
            [
                self.dag.UnifiedStageSpec(
                    name=name,
                    runner=runners.get(name, noop),
                    kind=core.StageKind.TRANSFORM,
                    dependencies=d,
                )
                for name, d in deps.items()
            ]
        )

    def concurrently(
        self, fn: Callable[[], Awaitable[Any]], n: int
    ) -> Callable[[], Awaitable[None]]:
        if self.yield_ is trio.lowlevel.checkpoint:

            async def many_trio() -> None:
                async with trio.open_nursery() as nursery:
                    for _ in range(n):
                        nursery.start_soon(fn)

            return many_trio

        async def many_asyncio() -> None:
            await asyncio.gather(*(fn() for _ in range(n)))

        return many_asyncio


REF = Side("stageflow", lambda main: asyncio.run(main()), lambda: asyncio.sleep(0))
OURS = Side("stageflow_trio", trio.run, trio.lowlevel.checkpoint)


def _per_call(side: Side, fn: Callable[[], Awaitable[Any]], reps: int) -> float:
    async def main() -> float:
        start = time.perf_counter()
        for _ in range(reps):
            await fn()
        return (time.perf_counter() - start) / reps

    return float(side.run(main))


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
            ref_times.append(_per_call(REF, ref, reps))
        trio_times.append(_per_call(OURS, ours, reps))
    return (statistics.median(ref_times) if ref_times else None, statistics.median(trio_times))


def _chain(n: int) -> Deps:
    return {f"s{i}": ((f"s{i - 1}",) if i else ()) for i in range(n)}


def _fan(w: int) -> Deps:
    deps: Deps = {"root": ()}
    for i in range(w):
        deps[f"w{i}"] = ("root",)
    deps["join"] = tuple(f"w{i}" for i in range(w))
    return deps


def _runs(side: Side, deps: Deps) -> Callable[[], Awaitable[Any]]:
    graph, ctx = side.graph(deps), side.ctx()
    return lambda: graph.run(ctx)


def _graph_rows(smoke: bool) -> list[Row]:
    rows: list[Row] = []
    rounds = 1 if smoke else 5
    for n in [10, 100] if smoke else [10, 100, 1000, 10000]:
        deps = _chain(n)
        reps = max(1, (2 if smoke else 2000) // n)
        ref_s, trio_s = _interleaved(
            _runs(REF, deps), _runs(OURS, deps), reps, rounds if n < 10000 else 3
        )
        assert ref_s is not None
        rows.append(
            {"workload": f"chain N={n} (per stage)", "reference_s": ref_s / n, "trio_s": trio_s / n}
        )
    for w in [10, 100] if smoke else [10, 100, 1000]:
        deps = _fan(w)
        reps = max(1, (2 if smoke else 2000) // w)
        ref_s, trio_s = _interleaved(_runs(REF, deps), _runs(OURS, deps), reps, rounds)
        rows.append(
            {"workload": f"fan-out W={w} (per run)", "reference_s": ref_s, "trio_s": trio_s}
        )
    return rows


# -- the realistic pipeline -------------------------------------------------------

REALISTIC: Deps = {
    "guard": (),
    "enrich_profile": ("guard",),
    "enrich_memory": ("guard",),
    "transform": ("enrich_profile", "enrich_memory"),
    "work": ("transform",),
}


def _realistic_runners(side: Side) -> dict[str, Any]:
    """Five stages that each yield once, as real stages awaiting I/O would."""
    ok = side.core.StageOutput.ok
    pause = side.yield_

    async def guard(ctx: Any) -> Any:
        await pause()
        return ok(allowed=True)

    async def enrich_profile(ctx: Any) -> Any:
        await pause()
        return ok(profile={"name": "Ada", "tier": "gold"})

    async def enrich_memory(ctx: Any) -> Any:
        await pause()
        return ok(memory=["hello", "again"])

    async def transform(ctx: Any) -> Any:
        profile = ctx.inputs.get_from("enrich_profile", "profile")
        memory = ctx.inputs.get_from("enrich_memory", "memory")
        await pause()
        return ok(text=f"{profile['name']}:{len(memory)}")

    async def work(ctx: Any) -> Any:
        await pause()
        return ok(saved=ctx.inputs.get_from("transform", "text"))

    return {
        "guard": guard,
        "enrich_profile": enrich_profile,
        "enrich_memory": enrich_memory,
        "transform": transform,
        "work": work,
    }


def _realistic(side: Side) -> Callable[[], Awaitable[Any]]:
    graph, ctx = side.graph(REALISTIC, _realistic_runners(side)), side.ctx()
    return lambda: graph.run(ctx)


def _hand_written_same_stages() -> Callable[[], Awaitable[Any]]:
    """The same five stage functions, orchestrated by hand with a nursery.

    Each stage still gets a StageContext with strict StageInputs of its
    dependencies, as the stage code needs: the difference from the engine run
    is only the scheduling and bookkeeping.
    """
    from stageflow_trio.context import ContextSnapshot
    from stageflow_trio.core import PipelineTimer, StageContext
    from stageflow_trio.stages import StageInputs

    runners = _realistic_runners(OURS)
    snap: ContextSnapshot[Any] = ContextSnapshot(topology="bench", execution_mode="bench")
    timer = PipelineTimer()

    def ctx_for(name: str, outputs: dict[str, Any]) -> Any:
        deps = REALISTIC[name]
        inputs = StageInputs(
            snapshot=snap,
            prior_outputs={d: outputs[d] for d in deps},
            declared_deps=deps,
            stage_name=name,
        )
        return StageContext(snapshot=snap, inputs=inputs, stage_name=name, timer=timer)

    async def run() -> dict[str, Any]:
        outputs: dict[str, Any] = {}
        outputs["guard"] = await runners["guard"](ctx_for("guard", outputs))

        async def one(name: str) -> None:
            outputs[name] = await runners[name](ctx_for(name, outputs))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(one, "enrich_profile")
            nursery.start_soon(one, "enrich_memory")
        outputs["transform"] = await runners["transform"](ctx_for("transform", outputs))
        outputs["work"] = await runners["work"](ctx_for("work", outputs))
        return outputs

    return run


async def _hand_written_trio() -> dict[str, Any]:
    """Five stages' worth of yields with plain dicts and a nursery: trio's floor."""
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


def _latencies(side: Side, fn: Callable[[], Awaitable[Any]], n: int) -> list[float]:
    async def main() -> list[float]:
        out = []
        for _ in range(n):
            start = time.perf_counter()
            await fn()
            out.append(time.perf_counter() - start)
        return out

    return list(side.run(main))


def _peak(side: Side, fn: Callable[[], Awaitable[Any]]) -> float:
    """tracemalloc peak of one run, after a warm-up run."""

    async def main() -> float:
        await fn()
        tracemalloc.start()
        await fn()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return float(peak)

    return float(side.run(main))


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _realistic_rows(smoke: bool) -> list[Row]:
    ref, ours = _realistic(REF), _realistic(OURS)
    rounds = 1 if smoke else 5
    runs = 20 if smoke else 2000
    ref_s, trio_s = _interleaved(ref, ours, runs, rounds)
    _, hand_s = _interleaved(None, _hand_written_trio, runs, rounds)
    _, same_s = _interleaved(None, _hand_written_same_stages(), runs, rounds)
    assert ref_s is not None
    rows: list[Row] = [
        {
            "workload": "realistic 5-stage, sequential (per run)",
            "reference_s": ref_s,
            "trio_s": trio_s,
            "note": f"runs/s: {1 / ref_s:,.0f} vs {1 / trio_s:,.0f}",
        },
        {
            "workload": "realistic 5-stage, hand-written trio (per run)",
            "reference_s": None,
            "trio_s": hand_s,
            "note": f"engine / hand-written = {trio_s / hand_s:.2f}",
        },
        {
            "workload": "realistic 5-stage, same stage functions by hand (per run)",
            "reference_s": None,
            "trio_s": same_s,
            "note": f"engine / hand-orchestrated = {trio_s / same_s:.2f}",
        },
    ]
    conc = 10 if smoke else 100
    ref_c, trio_c = _interleaved(
        REF.concurrently(ref, conc), OURS.concurrently(ours, conc), 1 if smoke else 20, rounds
    )
    assert ref_c is not None
    rows.append(
        {
            "workload": f"realistic 5-stage, {conc} concurrent (per run)",
            "reference_s": ref_c / conc,
            "trio_s": trio_c / conc,
        }
    )
    lat_ref, lat_trio = _latencies(REF, ref, runs), _latencies(OURS, ours, runs)
    for q, label in ((0.5, "p50"), (0.99, "p99")):
        rows.append(
            {
                "workload": f"realistic 5-stage latency {label}",
                "reference_s": _pct(lat_ref, q),
                "trio_s": _pct(lat_trio, q),
            }
        )
    rows.append(
        {
            "workload": "realistic 5-stage memory peak per run",
            "reference_s": _peak(REF, ref),
            "trio_s": _peak(OURS, ours),
            "unit": "B",
            "note": "tracemalloc peak",
        }
    )
    return rows


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
    def import_time(statement: str) -> float:
        times = []
        # One untimed run first: it writes the bytecode caches.
        subprocess.run([sys.executable, "-c", statement], check=True)
        for _ in range(1 if smoke else 7):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", statement], check=True)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    base = import_time("import sys")
    # The package's names load on first use, so a bare import measures little: the
    # second row is what a program pays for the names of a quickstart.
    names = "Pipeline, PipelineContext, StageKind, StageOutput"
    return [
        {
            "workload": "import time (minus bare interpreter)",
            "reference_s": import_time("import stageflow") - base,
            "trio_s": import_time("import stageflow_trio") - base,
            "note": "import trio alone: {:.1f} ms".format(
                (import_time("import trio") - base) * 1e3
            ),
        },
        {
            "workload": f"import time of {names} (minus bare interpreter)",
            "reference_s": import_time(f"from stageflow import {names}") - base,
            "trio_s": import_time(f"from stageflow_trio import {names}") - base,
            "note": "trio and attrs alone: {:.1f} ms".format(
                (import_time("import trio, attrs") - base) * 1e3
            ),
        },
    ]


def run(smoke: bool = False) -> list[Row]:
    """Every engine workload; ``smoke`` uses tiny sizes and one repetition."""
    return _graph_rows(smoke) + _realistic_rows(smoke) + _floor_rows(smoke) + _import_rows(smoke)


if __name__ == "__main__":
    from benchmarks.__main__ import main

    sys.exit(main(["engine", *sys.argv[1:]]))
