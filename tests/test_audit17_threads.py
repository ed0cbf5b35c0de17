"""Audit 17: several trio runs in one process, one after another and in several threads.

A test suite calls ``trio.run`` thousands of times in one thread; a service runs one
trio run per worker thread (or ``trio.run`` inside ``asyncio.to_thread``); a run
calls the library's synchronous API from ``trio.to_thread.run_sync``. These tests
reuse the library's process-wide state (the global sink, the sink worker's run
registry, the default spawner and child tracker, the tool registry, the approval
service, ChunkQueue, the curated API's pipeline cache, the CLI's run helper) across
many sequential runs, overlap runs in threads with a ``threading.Barrier``, and
reproduce each first-use and cross-thread race that was found, deterministically
(the interleaving is forced with ``threading.Event``; nothing sleeps for real).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import math
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from typing import Any, cast

import attrs
import pytest
import trio
import trio.testing

from stageflow_trio.api import Pipeline, run_stage, stage
from stageflow_trio.core import StageOutput
from stageflow_trio.events import (
    BackpressureAwareEventSink,
    get_event_sink,
    set_event_sink,
    wait_for_event_sink_tasks,
)
from stageflow_trio.helpers.streaming import ChunkQueue
from stageflow_trio.pipeline.subpipeline import (
    get_child_tracker,
    get_subpipeline_spawner,
)
from stageflow_trio.testing import RecordingEventSink, create_test_pipeline_context
from stageflow_trio.tools.approval import get_approval_service

JOIN_SECONDS = 30.0


def run_in_threads(*targets: Callable[[], object], timeout: float = JOIN_SECONDS) -> list[object]:
    """Run each target in a thread of its own; their results, or the first error raised.

    A thread still alive after ``timeout`` seconds fails the test (it hangs).
    """
    results: list[object] = [None] * len(targets)
    errors: list[BaseException] = []

    def body(index: int, target: Callable[[], object]) -> None:
        try:
            results[index] = target()
        except BaseException as exc:  # handed to the test's thread
            errors.append(exc)

    threads = [
        threading.Thread(target=body, args=(index, target), daemon=True, name=f"audit17-{index}")
        for index, target in enumerate(targets)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    hung = [thread.name for thread in threads if thread.is_alive()]
    assert not hung, f"threads still running after {timeout}s (a hang): {hung}"
    if errors:
        raise errors[0]
    return results


def mock_run(fn: Callable[..., Any], *args: Any) -> Any:
    """``trio.run`` on a MockClock that jumps whenever every task is blocked."""
    return trio.run(fn, *args, clock=trio.testing.MockClock(autojump_threshold=0))


async def _work(ctx: Any) -> StageOutput:
    await trio.sleep(1)  # virtual time: the MockClock jumps
    return StageOutput.ok(run=str(ctx.pipeline_run_id))


# -- sequential runs ------------------------------------------------------------


def test_one_backpressure_sink_serves_many_sequential_runs() -> None:
    downstream = RecordingEventSink()
    sink = BackpressureAwareEventSink(downstream, max_queue_size=4)

    async def one_run(index: int) -> None:
        async with sink:
            for event in range(3):
                sink.try_emit(type=f"run{index}", data={"n": event})
            await wait_for_event_sink_tasks()
        assert not sink.is_running

    for index in range(200):
        trio.run(one_run, index)
    assert len(downstream.events) == 600
    assert sink.metrics.emitted == 600
    assert sink.metrics.dropped == 0


def test_a_sink_whose_run_was_cancelled_starts_again_in_the_next_run() -> None:
    delivered: list[str] = []

    class Slow:
        async def emit(self, *, type: str, data: Any) -> None:  # noqa: A002
            await trio.sleep(10)
            delivered.append(type)

        def try_emit(self, *, type: str, data: Any) -> None:  # noqa: A002
            raise AssertionError("not used")

    sink = BackpressureAwareEventSink(Slow())

    async def cut_mid_delivery() -> None:
        with trio.move_on_after(1):
            async with trio.open_nursery() as nursery:
                await sink.start(nursery)
                sink.try_emit(type="a", data=None)
                sink.try_emit(type="b", data=None)
                await trio.sleep_forever()

    mock_run(cut_mid_delivery)
    assert not sink.is_running

    async def next_run() -> None:
        async with sink:
            await wait_for_event_sink_tasks()

    mock_run(next_run)
    # "a" was cut mid-delivery (given up at the restart), "b" waited and is delivered.
    assert delivered == ["b"]
    assert sink.metrics.undelivered == 1


def test_default_spawner_and_tracker_are_clean_after_each_of_many_runs() -> None:
    sink = RecordingEventSink()

    async def one_run() -> None:
        set_event_sink(sink)
        spawner = get_subpipeline_spawner()
        parent = create_test_pipeline_context(pipeline_run_id=uuid.uuid4())

        async def child(ctx: Any) -> dict[str, Any]:
            await trio.sleep(1)
            return {"child": str(ctx.pipeline_run_id)}

        async with trio.open_nursery() as nursery:
            await spawner.spawn_detached("c", parent, uuid.uuid4(), "s", child, nursery=nursery)
            result = await spawner.spawn("c", parent, uuid.uuid4(), "s", child)
            assert result.success
        assert not spawner.running_children

    spawner = get_subpipeline_spawner()
    for _ in range(100):
        mock_run(one_run)
    assert get_subpipeline_spawner() is spawner
    metrics = trio.run(get_child_tracker().get_metrics)
    assert metrics["active_parents"] == metrics["active_children"] == 0
    assert metrics["registration_count"] == metrics["unregistration_count"] == 200
    assert sink.types().count("pipeline.child_completed") == 200


def test_a_chunk_queue_outlives_the_run_that_filled_it() -> None:
    queue: ChunkQueue[int] = ChunkQueue(max_size=3)

    async def fill() -> None:
        for item in range(3):
            assert await queue.put(item)

    async def drain() -> list[int | None]:
        return [await queue.get() for _ in range(3)]

    for _ in range(50):
        trio.run(fill)
        assert len(queue) == 3
        assert trio.run(drain) == [0, 1, 2]


def test_curated_api_and_kept_graphs_across_many_runs() -> None:
    pipeline = Pipeline("p").with_stages(stage("work", _work, "work"))

    async def one_run() -> tuple[str, str]:
        results = await pipeline.run(input_text="x", pipeline_run_id=uuid.uuid4())
        output = await run_stage("one", _work, "work", pipeline_run_id=uuid.uuid4())
        return results["work"].data["run"], output.data["run"]

    seen = {mock_run(one_run) for _ in range(100)}
    assert len(seen) == 100  # a fresh run id every time: nothing carried over


def test_cli_run_graph_in_many_runs() -> None:
    from stageflow_trio.cli.run import JsonView, RunOptions, run_graph

    graph = Pipeline("p").with_stages(stage("work", _work, "work")).build()
    for _ in range(20):
        out = io.StringIO()
        code = mock_run(
            lambda out=out: run_graph(graph, RunOptions(), JsonView(out), handle_sigint=False)
        )
        assert code == 0
        assert '"status": "completed"' in out.getvalue().splitlines()[-1]


# -- concurrent runs in threads ---------------------------------------------------


def test_pipelines_with_events_in_overlapping_threads() -> None:
    threads = 4
    barrier = threading.Barrier(threads)
    pipeline = Pipeline("shared").with_stages(
        stage("a", _work, "work"), stage("b", _work, "work", dependencies=("a",))
    )

    def worker() -> tuple[set[str], list[str], int]:
        recording = RecordingEventSink()

        async def main() -> tuple[set[str], list[str], int]:
            set_event_sink(recording)
            run_ids: list[str] = []
            async with BackpressureAwareEventSink(recording) as sink:
                # Every thread is inside its run before any starts its pipelines.
                await trio.to_thread.run_sync(barrier.wait, JOIN_SECONDS)
                for _ in range(20):
                    results = await pipeline.run(event_sink=sink, pipeline_run_id=uuid.uuid4())
                    run_ids.append(results["a"].data["run"])
                    spawned = await get_subpipeline_spawner().spawn(
                        "child",
                        create_test_pipeline_context(pipeline_run_id=uuid.uuid4()),
                        uuid.uuid4(),
                        "b",
                        _work,
                    )
                    assert spawned.success
                await wait_for_event_sink_tasks()
                # A second rendezvous: every run is still in progress here.
                await trio.to_thread.run_sync(barrier.wait, JOIN_SECONDS)
            # The worker thread sees this run's sink (trio copies the context).
            assert await trio.to_thread.run_sync(get_event_sink) is recording
            seen = {
                str(data["pipeline_run_id"])
                for event_type, data in recording.events
                if event_type.startswith("stage.") and data
            }
            return seen, run_ids, len(recording.of_type("pipeline.child_completed"))

        outcome: tuple[set[str], list[str], int] = mock_run(main)
        return outcome

    results = run_in_threads(*[worker for _ in range(threads)])
    all_ids: set[str] = set()
    for result in results:
        seen, run_ids, children = cast("tuple[set[str], list[str], int]", result)
        assert seen == set(run_ids)  # its own runs' events, and no other thread's
        assert children == 20
        all_ids.update(run_ids)
    assert len(all_ids) == threads * 20
    assert not get_subpipeline_spawner().running_children


def test_sync_api_from_worker_threads_during_a_run() -> None:
    from stageflow_trio._time import monotonic, utc_now_iso
    from stageflow_trio.tools.registry import get_tool_registry

    recording = RecordingEventSink()

    async def main() -> None:
        set_event_sink(recording)
        registry = get_tool_registry()
        # Worker threads see the run's context (trio copies it), read the engine
        # clock as time.monotonic() (no trio run in that thread) and share the
        # process-wide registry.
        assert await trio.to_thread.run_sync(get_event_sink) is recording
        assert await trio.to_thread.run_sync(get_tool_registry) is registry
        assert isinstance(await trio.to_thread.run_sync(monotonic), float)
        assert await trio.to_thread.run_sync(utc_now_iso)
        # A sink set in the worker thread stays there.
        await trio.to_thread.run_sync(set_event_sink, RecordingEventSink())
        assert get_event_sink() is recording

    trio.run(main)


# -- races found by the audit ------------------------------------------------------


def test_approval_decided_in_another_threads_run_wakes_the_waiter() -> None:
    """The process-wide approval service, waited on in one thread's run, decided in another's.

    Before the fix the deciding run set the waiter's trio.Event from its own thread:
    trio's reschedule asserted (``task._runner is self``) in the decider, and the
    waiter, already taken off the event's parking lot, hung.
    """
    service = get_approval_service()
    waiting = threading.Event()
    box: dict[str, Any] = {}

    def waiter() -> object:
        async def main() -> object:
            box["token"] = trio.lowlevel.current_trio_token()
            with trio.CancelScope() as scope:
                box["scope"] = scope
                request = await service.request_approval(uuid.uuid4(), "tool")
                box["request"] = request.id
                async with trio.open_nursery() as nursery:

                    async def announce() -> None:
                        await trio.testing.wait_all_tasks_blocked()
                        waiting.set()

                    nursery.start_soon(announce)
                    return await service.await_decision(request.id, timeout_seconds=math.inf)
            return "cancelled by the test's clean-up"

        return trio.run(main)

    def decider() -> object:
        assert waiting.wait(JOIN_SECONDS)
        return trio.run(service.record_decision, box["request"], True)

    thread_results: list[object] = []
    try:
        thread_results = run_in_threads(waiter, decider, timeout=10)
    finally:
        if not thread_results and "token" in box:  # unstick a hung waiter
            with contextlib.suppress(trio.RunFinishedError):
                box["token"].run_sync_soon(box["scope"].cancel)
    decision = thread_results[0]
    assert getattr(decision, "granted", None) is True, decision


@pytest.mark.parametrize(
    ("module", "factory", "getter"),
    [
        ("stageflow_trio.tools.registry", "ToolRegistry", "get_tool_registry"),
        ("stageflow_trio.tools.approval", "ApprovalService", "get_approval_service"),
        ("stageflow_trio.tools.undo", "UndoStore", "get_undo_store"),
        ("stageflow_trio.pipeline.subpipeline", "SubpipelineSpawner", "get_subpipeline_spawner"),
        ("stageflow_trio.pipeline._child_tracker", "ChildRunTracker", "get_child_tracker"),
    ],
)
def test_first_use_of_a_process_wide_instance_from_two_threads(
    monkeypatch: pytest.MonkeyPatch, module: str, factory: str, getter: str
) -> None:
    """Both threads find no instance and build one; both must get the same one.

    Before the fix each thread kept the instance it built, and the last to assign
    won: a tool registered in the other one (by the other thread) was lost.
    """
    namespace = importlib.import_module(module)
    real = getattr(namespace, factory)
    both_inside = threading.Barrier(2)

    def gated(*args: Any, **kwargs: Any) -> Any:
        both_inside.wait(JOIN_SECONDS)  # each thread has seen "no instance yet"
        return real(*args, **kwargs)

    monkeypatch.setattr(namespace, factory, gated)
    get = getattr(namespace, getter)
    first, second = run_in_threads(get, get)
    assert first is second
    monkeypatch.setattr(namespace, factory, real)
    assert get() is first


def test_collection_hooks_built_in_two_threads_at_once_refuse_strings() -> None:
    """cattrs builds a list hook in two threads at once; both must refuse a string.

    ``_serialization._building`` (the collection types whose hook is being built)
    was one set for the process: a thread asking for ``list[X]`` while another
    built it got cattrs's own hook, which iterates ``"ab"`` into ``["a", "b"]``
    (and cattrs caches that hook for good).
    """
    from stageflow_trio._serialization import converter

    @attrs.frozen
    class Item:
        value: str

    building = threading.Event()
    release = threading.Event()

    def item_hook_factory(_: Any) -> Any:
        if threading.current_thread().name == "audit17-0":
            building.set()  # thread 0 is inside list[Item]'s hook build
            assert release.wait(JOIN_SECONDS)
        return lambda value, _: Item(value)

    converter.register_structure_hook_factory(lambda kind: kind is Item, item_hook_factory)

    def first() -> Any:
        return converter.get_structure_hook(list[Item], cache_result=False)

    def second() -> Any:
        assert building.wait(JOIN_SECONDS)
        try:
            return converter.get_structure_hook(list[Item], cache_result=False)
        finally:
            release.set()

    for hook in run_in_threads(first, second):
        with pytest.raises(TypeError, match="expected a list"):
            hook("ab", list[Item])  # type: ignore[operator]


def test_an_identity_serialized_by_two_threads_at_once() -> None:
    """A thread that found the to_dict() cache empty serializes after another filled it.

    (A snapshot parsed once and run in several threads.) ``_serialize`` read the
    cache again and took the other thread's dict for the parsed texts: KeyError 0.
    """
    from stageflow_trio.context.identity import RunIdentity, _serialize, id_texts

    data = RunIdentity(pipeline_run_id=uuid.uuid4()).to_dict()
    identity = RunIdentity.from_dict(data)
    filled = id_texts(identity)  # the other thread, first
    assert _serialize(identity) == filled == data  # this thread, second


class _EvictingIterator:
    """Hands out the oldest key, which "another thread" evicts as it is handed out."""

    def __init__(self, cache: dict[Any, Any], keys: list[Any]) -> None:
        self._cache, self._keys = cache, keys

    def __iter__(self) -> _EvictingIterator:
        return self

    def __next__(self) -> Any:
        if not self._keys:
            raise StopIteration
        key = self._keys.pop(0)
        self._cache.pop(key, None)
        return key


def test_run_stage_cache_evicted_by_two_threads_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two threads evict the oldest one-stage pipeline at once: the second found it gone.

    ``del cache[oldest]`` raised KeyError from run_stage when another thread had
    deleted the same oldest entry between this thread's look and its delete.
    """
    from stageflow_trio.pipeline import pipeline as pipeline_module

    class EvictedMeanwhile(dict[Any, Any]):
        def __iter__(self) -> Any:
            return _EvictingIterator(self, list(super().__iter__()))

    cache = EvictedMeanwhile()
    monkeypatch.setattr(pipeline_module, "_ONE_STAGE_PIPELINES", cache)
    monkeypatch.setattr(pipeline_module, "_ONE_STAGE_PIPELINES_MAX", 2)

    async def main() -> None:
        for index in range(4):
            output = await run_stage(f"s{index}", _work, "work")
            assert output.data["run"] == "None"

    mock_run(main)
    assert len(cache) <= 2


def test_cli_run_graph_from_a_worker_thread() -> None:
    """``run_graph`` with its default ``handle_sigint=True`` in a thread that is not the main one.

    A trio run per worker thread is allowed; ``signal.signal`` there raises
    ValueError, so the helper must leave SIGINT alone off the main thread (what
    ``cli.main`` already does for its own handler).
    """
    from stageflow_trio.cli.run import JsonView, RunOptions, run_graph

    graph = Pipeline("p").with_stages(stage("work", _work, "work")).build()
    out = io.StringIO()

    def worker() -> object:
        return mock_run(lambda: run_graph(graph, RunOptions(), JsonView(out)))

    assert run_in_threads(worker) == [0]


def test_lazy_names_loaded_by_many_threads_at_once_in_a_fresh_interpreter() -> None:
    """The first use of lazily exported names, from eight threads at once."""
    script = """
import threading
import stageflow_trio, stageflow_trio.events, stageflow_trio.pipeline, stageflow_trio.tools
names = [
    (stageflow_trio, "Pipeline"), (stageflow_trio.events, "BackpressureAwareEventSink"),
    (stageflow_trio.events, "emit_event"), (stageflow_trio.pipeline, "SubpipelineSpawner"),
    (stageflow_trio.tools, "ToolExecutor"), (stageflow_trio, "run_stage"),
    (stageflow_trio.events, "get_event_sink"), (stageflow_trio.tools, "get_tool_registry"),
]
barrier = threading.Barrier(len(names))
errors, values = [], {}
def load(module, name):
    barrier.wait(30)
    try:
        values[name] = getattr(module, name)
    except BaseException as exc:
        errors.append(repr(exc))
threads = [threading.Thread(target=load, args=pair) for pair in names]
for thread in threads: thread.start()
for thread in threads: thread.join(30)
assert not any(thread.is_alive() for thread in threads), "hung"
assert not errors, errors
assert all(not value.__module__.split(".")[-1].startswith("_") for value in values.values())
print("ok", len(values))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok 8"
