"""Micro-benchmarks of the core value types against the reference stageflow.

Workloads run interleaved in one process (reference, then stageflow_trio, per
repeat) and report the median seconds per operation:

- ``OutputBag.write``: the async write, awaited in a loop by one task (trio for
  stageflow_trio, asyncio for the reference), and by 50 concurrent tasks.
- ``OutputBag.write_sync``: the same store without the async layer.
- A floor for the async write: the least any write that checks cancellation on
  every call can do (:class:`_WriteFloor`), against the reference's ``write``.
- ``StageOutput`` factories and ``with_duration``.
- Two floors for reading the async rows: one scheduling point
  (``trio.lowlevel.checkpoint()`` against ``asyncio.sleep(0)``), and one budgeted
  checkpoint (``cooperative_checkpoint()``, what ``OutputBag.write`` pays on top of
  the store, against awaiting an empty coroutine, what the reference's
  uncontended ``async with asyncio.Lock()`` costs).

Run ``python benchmarks/bench_values.py`` (add ``--smoke`` for a quick pass).
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import sys
import time
from typing import TYPE_CHECKING, Any

import trio

from stageflow_trio.context.output_bag import OutputBag
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.lowlevel import cooperative_checkpoint

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["run"]

_CONCURRENT_TASKS = 50
_CHECKPOINT_NOTE = (
    "trio: a cancellation check every call, a schedule point every 64 (the checkpoint "
    "budget); the reference's uncontended asyncio.Lock never yields"
)
_NOTES = {
    "OutputBag.write (1 task)": _CHECKPOINT_NOTE,
    f"OutputBag.write ({_CONCURRENT_TASKS} tasks)": _CHECKPOINT_NOTE,
    "OutputBag.write_sync": "the store itself, no async layer on either side",
    "floor: async write with a cancellation check, 1 task": (
        "a lower bound for any async write that checks cancellation on every call"
    ),
    "schedule point (asyncio.sleep(0) vs trio checkpoint)": "the floor of one yield",
    "budgeted checkpoint (an empty coroutine vs cooperative_checkpoint)": (
        "the floor of a budgeted call: what asyncio pays nothing for"
    ),
}


def _timed(fn: Callable[[], float]) -> float:
    """Run one measurement with the garbage collector paused (as timeit does)."""
    gc.collect()
    gc.disable()
    try:
        return fn()
    finally:
        gc.enable()


# --- OutputBag.write ------------------------------------------------------------


class _WriteFloor:
    """A lower bound for any async write that checks cancellation on every call.

    It checks no arguments, counts calls for its schedule points (no clock read),
    stores a tuple with a float timestamp instead of an OutputEntry, and keeps the
    conflict rule. A real ``OutputBag.write`` does all this and more, so it
    cannot beat this row.
    """

    def __init__(self) -> None:
        self._entries: dict[str, tuple[Any, int, float, str]] = {}
        self._calls_left = 0

    async def write(self, stage_name: str, output: Any, *, allow_overwrite: bool = False) -> Any:
        left = self._calls_left
        if left <= 1:
            self._calls_left = 64
            await trio.lowlevel.checkpoint()
        else:
            self._calls_left = left - 1
            await trio.lowlevel.checkpoint_if_cancelled()
        existing = self._entries.get(stage_name)
        if existing is not None and not allow_overwrite:
            raise RuntimeError(stage_name)
        entry = (output, 1 if existing is None else existing[1] + 1, time.time(), stage_name)
        self._entries[stage_name] = entry
        return entry


def _trio_write_sequential(names: list[str], bag_cls: Callable[[], Any] = OutputBag) -> float:
    output = StageOutput.ok({"a": 1})

    async def main() -> float:
        bag = bag_cls()
        start = time.perf_counter()
        for name in names:
            await bag.write(name, output)
        return (time.perf_counter() - start) / len(names)

    return trio.run(main)


def _ref_write_sequential(ref: Any, names: list[str]) -> float:
    output = ref.StageOutput.ok({"a": 1})

    async def main() -> float:
        bag = ref.OutputBag()
        start = time.perf_counter()
        for name in names:
            await bag.write(name, output)
        return (time.perf_counter() - start) / len(names)

    return asyncio.run(main())


def _chunks(names: list[str]) -> list[list[str]]:
    return [names[i::_CONCURRENT_TASKS] for i in range(_CONCURRENT_TASKS)]


def _trio_write_concurrent(names: list[str]) -> float:
    output = StageOutput.ok({"a": 1})
    chunks = _chunks(names)

    async def writer(bag: OutputBag, mine: list[str]) -> None:
        for name in mine:
            await bag.write(name, output)

    async def main() -> float:
        bag = OutputBag()
        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for mine in chunks:
                nursery.start_soon(writer, bag, mine)
        return (time.perf_counter() - start) / len(names)

    return trio.run(main)


def _ref_write_concurrent(ref: Any, names: list[str]) -> float:
    output = ref.StageOutput.ok({"a": 1})
    chunks = _chunks(names)

    async def writer(bag: Any, mine: list[str]) -> None:
        for name in mine:
            await bag.write(name, output)

    async def main() -> float:
        bag = ref.OutputBag()
        start = time.perf_counter()
        await asyncio.gather(*(writer(bag, mine) for mine in chunks))
        return (time.perf_counter() - start) / len(names)

    return asyncio.run(main())


def _write_sync(bag_cls: Any, output: Any, names: list[str]) -> float:
    bag = bag_cls()
    write = bag.write_sync
    start = time.perf_counter()
    for name in names:
        write(name, output)
    return (time.perf_counter() - start) / len(names)


# --- StageOutput ----------------------------------------------------------------


def _loop(call: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - start) / n


def _factories(cls: Any) -> dict[str, Callable[[], object]]:
    data = {"text": "hello", "tokens": 12}
    done = cls.ok(data)
    return {
        "StageOutput.ok(dict)": lambda: cls.ok(data),
        "StageOutput.ok(**kwargs)": lambda: cls.ok(text="hello", tokens=12),
        "StageOutput.ok()": lambda: cls.ok(),
        "StageOutput.fail(error)": lambda: cls.fail("boom"),
        "StageOutput.skip(reason)": lambda: cls.skip("not needed"),
        "StageOutput.with_duration": lambda: done.with_duration(15),
    }


# --- scheduling point -----------------------------------------------------------


async def _awaits(call: Callable[[], Awaitable[object]], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        await call()
    return (time.perf_counter() - start) / n


async def _nothing() -> None:
    pass


def _trio_checkpoint(n: int) -> float:
    return trio.run(_awaits, trio.lowlevel.checkpoint, n)


def _trio_budgeted(n: int) -> float:
    return trio.run(_awaits, cooperative_checkpoint, n)


def _asyncio_yield(n: int) -> float:
    return asyncio.run(_awaits(lambda: asyncio.sleep(0), n))


def _asyncio_nothing(n: int) -> float:
    return asyncio.run(_awaits(_nothing, n))


def run(smoke: bool = False) -> list[dict[str, object]]:
    """Measure every workload; return rows ``{workload, reference_s, trio_s}``.

    Args:
        smoke: Tiny sizes and a single repeat (to check that the benchmark runs).

    Returns:
        One row per workload: median seconds per operation for the reference
        (``reference_s``) and for stageflow_trio (``trio_s``).
    """
    from stageflow.context import output_bag as ref_bag
    from stageflow.core import stage_output as ref_output

    class _Ref:
        OutputBag = ref_bag.OutputBag
        StageOutput = ref_output.StageOutput

    repeats = 1 if smoke else 7
    n_writes = 200 if smoke else 20_000
    n_calls = 500 if smoke else 100_000
    names = [f"stage_{i}" for i in range(n_writes)]

    pairs: dict[str, tuple[Callable[[], float], Callable[[], float]]] = {
        "OutputBag.write (1 task)": (
            lambda: _ref_write_sequential(_Ref, names),
            lambda: _trio_write_sequential(names),
        ),
        f"OutputBag.write ({_CONCURRENT_TASKS} tasks)": (
            lambda: _ref_write_concurrent(_Ref, names),
            lambda: _trio_write_concurrent(names),
        ),
        "floor: async write with a cancellation check, 1 task": (
            lambda: _ref_write_sequential(_Ref, names),
            lambda: _trio_write_sequential(names, _WriteFloor),
        ),
        "OutputBag.write_sync": (
            lambda: _write_sync(_Ref.OutputBag, _Ref.StageOutput.ok({"a": 1}), names),
            lambda: _write_sync(OutputBag, StageOutput.ok({"a": 1}), names),
        ),
    }
    ours = _factories(StageOutput)
    theirs = _factories(_Ref.StageOutput)
    for label, our_call in ours.items():
        ref_call = theirs[label]
        pairs[label] = (
            lambda c=ref_call: _loop(c, n_calls),  # type: ignore[misc]
            lambda c=our_call: _loop(c, n_calls),  # type: ignore[misc]
        )
    pairs["schedule point (asyncio.sleep(0) vs trio checkpoint)"] = (
        lambda: _asyncio_yield(n_writes),
        lambda: _trio_checkpoint(n_writes),
    )
    pairs["budgeted checkpoint (an empty coroutine vs cooperative_checkpoint)"] = (
        lambda: _asyncio_nothing(n_writes),
        lambda: _trio_budgeted(n_writes),
    )

    samples: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in pairs}
    for _ in range(repeats):
        for label, (ref_fn, trio_fn) in pairs.items():
            samples[label][0].append(_timed(ref_fn))
            samples[label][1].append(_timed(trio_fn))
    rows: list[dict[str, object]] = []
    for label, (ref_times, trio_times) in samples.items():
        row: dict[str, object] = {
            "workload": label,
            "reference_s": statistics.median(ref_times),
            "trio_s": statistics.median(trio_times),
        }
        if label in _NOTES:
            row["note"] = _NOTES[label]
        rows.append(row)
    return rows


def _main(argv: list[str]) -> None:
    rows = run(smoke="--smoke" in argv)
    width = max(len(str(row["workload"])) for row in rows)
    print(f"{'workload':<{width}}  {'reference':>11}  {'trio':>11}  {'ratio':>6}  note")
    for row in rows:
        ref_s, trio_s = row["reference_s"], row["trio_s"]
        assert isinstance(ref_s, float)
        assert isinstance(trio_s, float)
        print(
            f"{row['workload']!s:<{width}}  {ref_s * 1e6:>9.3f}us  {trio_s * 1e6:>9.3f}us  "
            f"{trio_s / ref_s:>6.2f}  {row.get('note', '')}"
        )
    print("ratio = trio / reference: below 1.0 means stageflow_trio is faster")


if __name__ == "__main__":
    _main(sys.argv[1:])
