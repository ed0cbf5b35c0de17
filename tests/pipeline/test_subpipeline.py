"""Subpipelines: the tracker, the spawner, results, events, nesting depth and the globals."""

from __future__ import annotations

import logging
import pickle
import uuid
from datetime import datetime
from types import MappingProxyType
from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.events import set_event_sink
from stageflow_trio.lowlevel import checkpoint_budget
from stageflow_trio.pipeline.dag import StageGraph, StageSpec
from stageflow_trio.pipeline.interceptors import ChildTrackerMetricsInterceptor
from stageflow_trio.pipeline.subpipeline import (
    DEFAULT_MAX_SUBPIPELINE_DEPTH,
    ChildRunTracker,
    MaxDepthExceededError,
    PipelineCanceledEvent,
    PipelineChildCompletedEvent,
    PipelineChildFailedEvent,
    PipelineSpawnedChildEvent,
    SubpipelineResult,
    SubpipelineSpawner,
    clear_child_tracker,
    clear_subpipeline_spawner,
    get_child_tracker,
    get_subpipeline_spawner,
    set_child_tracker,
    set_subpipeline_spawner,
)
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.testing import (
    RecordingEventSink,
    create_test_pipeline_context,
    create_test_stage_context,
    reset_globals,
)
from tests.fakes import FailingSink

PARENT = uuid.UUID("aaaaaaaa-0000-4000-8000-000000000001")
CORRELATION = uuid.UUID("cccccccc-0000-4000-8000-000000000002")
A, B, C, D, E = (uuid.UUID(int=i) for i in range(1, 6))


def parent_ctx(**kwargs: Any) -> PipelineContext:
    kwargs.setdefault("pipeline_run_id", PARENT)
    return create_test_pipeline_context(**kwargs)


@pytest.fixture
def sink() -> RecordingEventSink:
    recording = RecordingEventSink()
    set_event_sink(recording)
    return recording


def spawner(**kwargs: Any) -> SubpipelineSpawner:
    kwargs.setdefault("child_tracker", ChildRunTracker())
    return SubpipelineSpawner(**kwargs)


def is_iso_utc(value: object) -> bool:
    return isinstance(value, str) and datetime.fromisoformat(value).utcoffset() is not None


# -- ChildRunTracker ---------------------------------------------------------


async def test_tracker_links_lookups_and_metrics() -> None:
    tracker = ChildRunTracker()
    await tracker.register_child(A, B)
    await tracker.register_child(A, C)
    await tracker.register_child(B, D)
    assert await tracker.get_children(A) == {B, C}
    assert await tracker.get_children(E) == set()
    assert await tracker.get_parent(D) == B
    assert await tracker.get_parent(A) is None
    assert await tracker.get_all_descendants(A) == {B, C, D}
    assert await tracker.get_all_descendants(D) == set()
    assert await tracker.get_root_run(D) == A
    assert await tracker.get_root_run(A) == A
    await tracker.unregister_child(B, D)
    assert await tracker.get_children(B) == set()
    assert await tracker.get_metrics() == {
        "registration_count": 3,
        "unregistration_count": 1,
        "lookup_count": 7,
        "tree_traversal_count": 2,
        "cleanup_count": 0,
        "max_concurrent_children": 2,
        "max_depth_seen": 2,
        "active_parents": 1,
        "active_children": 2,
        "total_relationships": 2,
    }
    await tracker.reset_metrics()
    metrics = await tracker.get_metrics()
    assert [metrics[k] for k in ("registration_count", "lookup_count", "max_depth_seen")] == [
        0,
        0,
        0,
    ]
    assert (metrics["active_parents"], metrics["active_children"]) == (1, 2)


async def test_tracker_children_copy_is_independent() -> None:
    tracker = ChildRunTracker()
    await tracker.register_child(A, B)
    children = await tracker.get_children(A)
    children.add(C)
    assert await tracker.get_children(A) == {B}


async def test_tracker_cleanup_run_keeps_the_childrens_link_as_the_reference() -> None:
    tracker = ChildRunTracker()
    await tracker.register_child(A, B)
    await tracker.register_child(B, C)
    await tracker.cleanup_run(B)
    assert await tracker.get_children(A) == set()
    assert await tracker.get_children(B) == set()
    assert await tracker.get_parent(B) is None
    assert await tracker.get_parent(C) == B
    assert (await tracker.get_metrics())["cleanup_count"] == 1


async def test_tracker_root_lookup_stops_on_a_cycle() -> None:
    tracker = ChildRunTracker()
    await tracker.register_child(A, B)
    await tracker.register_child(B, A)
    assert await tracker.get_root_run(A) == B
    assert await tracker.get_all_descendants(A) == {A, B}


class _LinksOnHash(uuid.UUID):
    """A run id whose first hash links another child to a run: a stand-in for a run in
    another thread changing the tracker at that moment of a walk (audit 18)."""

    tracker: ChildRunTracker
    parent: uuid.UUID
    armed = 0  # the id of the child to link on the next hash; 0: none

    def __hash__(self) -> int:
        if self.armed:
            self.tracker._register(self.parent, uuid.UUID(int=self.armed))
            object.__setattr__(self, "armed", 0)
        return super().__hash__()


async def test_tracker_walks_survive_a_link_made_while_they_run() -> None:
    # A cascade read the children in a Python loop over the tracker's own dict: a
    # child linked meanwhile (by a run in another thread of the process-wide
    # tracker) raised "dictionary changed size during iteration".
    tracker = ChildRunTracker()
    odd = _LinksOnHash(int=7)
    object.__setattr__(odd, "tracker", tracker)
    object.__setattr__(odd, "parent", A)
    await tracker.register_child(A, odd)
    await tracker.register_child(A, B)
    object.__setattr__(odd, "armed", 998)
    assert [run for run, _, _ in tracker._subtree(A)] == [odd, B, A]  # as it was read
    object.__setattr__(odd, "armed", 999)
    assert await tracker.get_all_descendants(A) == {odd, B, uuid.UUID(int=998)}
    assert await tracker.get_children(A) == {odd, B, uuid.UUID(int=998), uuid.UUID(int=999)}


async def test_tracker_concurrent_register_and_unregister_stay_consistent() -> None:
    """Many tasks register and unregister with checkpoints interleaved: no lost update."""
    tracker = ChildRunTracker()
    parents = [uuid.UUID(int=1000 + p) for p in range(4)]
    children = [uuid.UUID(int=2000 + c) for c in range(200)]
    registered = trio.Event()
    checked = trio.Event()
    count = 0

    async def one(index: int) -> None:
        nonlocal count
        parent = parents[index % 4]
        await tracker.register_child(parent, children[index])
        count += 1
        if count == len(children):
            registered.set()
        await registered.wait()
        assert await tracker.get_parent(children[index]) == parent
        await checked.wait()
        await tracker.unregister_child(parent, children[index])

    async with trio.open_nursery() as nursery:
        for index in range(len(children)):
            nursery.start_soon(one, index)
        await registered.wait()
        assert {p: len(await tracker.get_children(p)) for p in parents} == dict.fromkeys(
            parents, 50
        )
        checked.set()
    metrics = await tracker.get_metrics()
    assert metrics["registration_count"] == 200
    assert metrics["unregistration_count"] == 200
    assert metrics["max_concurrent_children"] == 50
    assert (metrics["active_parents"], metrics["active_children"]) == (0, 0)


async def test_tracker_methods_are_checkpoints_and_a_cancelled_call_changes_nothing() -> None:
    tracker = ChildRunTracker()
    calls = [
        tracker.register_child(A, B),
        tracker.get_children(A),
        tracker.get_parent(B),
        tracker.get_all_descendants(A),
        tracker.get_root_run(B),
        tracker.get_metrics(),
        tracker.reset_metrics(),
        tracker.unregister_child(A, B),
        tracker.cleanup_run(A),
    ]
    for call in calls:
        with trio.testing.assert_checkpoints():
            await call
    with trio.CancelScope() as scope:
        scope.cancel()
        await tracker.register_child(A, C)
    assert await tracker.get_children(A) == set()


# -- SubpipelineSpawner.spawn ------------------------------------------------


async def test_spawn_runs_the_child_on_a_fork_and_reports_success(
    autojump_clock: trio.abc.Clock, sink: RecordingEventSink
) -> None:
    tracker = ChildRunTracker()
    spawn = SubpipelineSpawner(child_tracker=tracker)
    parent = parent_ctx(data={"k": "v"}, topology="parent_topo", execution_mode="parent_mode")
    seen: dict[str, Any] = {}

    async def runner(child: PipelineContext) -> dict[str, Any]:
        seen["ctx"] = child
        seen["children"] = await tracker.get_children(PARENT)
        await trio.sleep(2.5)
        return {"answer": 42}

    result = await spawn.spawn(
        "child_pipe", parent, CORRELATION, "tool_stage", runner, execution_mode="child_mode"
    )
    child = seen["ctx"]
    assert result == SubpipelineResult(
        success=True, child_run_id=child.pipeline_run_id, data={"answer": 42}, duration_ms=2500.0
    )
    assert child.pipeline_run_id not in (None, PARENT)
    assert seen["children"] == {child.pipeline_run_id}
    assert (child.parent_run_id, child.parent_stage_id, child.correlation_id) == (
        PARENT,
        "tool_stage",
        CORRELATION,
    )
    assert (child.topology, child.execution_mode) == ("parent_topo", "child_mode")
    assert child.is_child_run
    assert child.data == {}
    assert child.get_parent_data("k") == "v"
    assert child.canceled is False
    assert await tracker.get_children(PARENT) == set()
    assert spawn.running_children == frozenset()
    assert sink.types() == ["pipeline.spawned_child", "pipeline.child_completed"]


async def test_events_carry_each_childs_own_parent_and_correlation_ids(
    sink: RecordingEventSink,
) -> None:
    # The spawner keeps the last parent / correlation id's string: children of
    # other parents, equal but distinct UUID objects and no correlation id must
    # still carry their own.
    async def runner(child: PipelineContext) -> dict[str, Any]:
        return {}

    spawn = spawner()
    cases = [
        (PARENT, CORRELATION),
        (A, CORRELATION),
        (uuid.UUID(str(A)), uuid.UUID(str(B))),
        (PARENT, None),
        (A, B),
        (PARENT, CORRELATION),
    ]
    for parent_id, correlation in cases:
        await spawn.spawn(
            "p",
            parent_ctx(pipeline_run_id=parent_id),
            correlation,  # type: ignore[arg-type]
            "s",
            runner,
        )
    spawned = sink.of_type("pipeline.spawned_child")
    completed = sink.of_type("pipeline.child_completed")
    assert [(e["parent_run_id"], e["correlation_id"]) for e in spawned] == [  # type: ignore[index]
        (str(parent_id), None if correlation is None else str(correlation))
        for parent_id, correlation in cases
    ]
    assert [e["parent_run_id"] for e in completed] == [str(p) for p, _ in cases]  # type: ignore[index]
    assert [e["child_run_id"] for e in completed] == [e["child_run_id"] for e in spawned]  # type: ignore[index]


async def test_spawn_wraps_a_non_dict_return(sink: RecordingEventSink) -> None:
    async def runner(child: PipelineContext) -> list[int]:
        return [1, 2]

    result = await spawner().spawn("p", parent_ctx(), CORRELATION, "s", runner)
    assert result.success
    assert result.data == {"result": [1, 2]}


async def test_a_failing_child_comes_back_as_a_result(
    autojump_clock: trio.abc.Clock, sink: RecordingEventSink, caplog: pytest.LogCaptureFixture
) -> None:
    async def runner(child: PipelineContext) -> None:
        await trio.sleep(1)
        raise ValueError("bad input")

    result = await spawner().spawn("p", parent_ctx(), CORRELATION, "s", runner)
    assert (result.success, result.data, result.error, result.duration_ms) == (
        False,
        None,
        "bad input",
        1000.0,
    )
    assert sink.types() == ["pipeline.spawned_child", "pipeline.child_failed"]
    assert f"Child pipeline {result.child_run_id} failed: bad input" in caplog.messages


async def test_an_exception_group_from_the_child_is_reported_by_its_leaf(
    sink: RecordingEventSink,
) -> None:
    async def runner(child: PipelineContext) -> None:
        async def fail() -> None:
            raise KeyError("nope")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(fail)

    result = await spawner().spawn("p", parent_ctx(), CORRELATION, "s", runner)
    assert result.error == "'nope'"
    assert sink.of_type("pipeline.child_failed")[0]["error_message"] == "'nope'"  # type: ignore[index]


async def test_inherit_data_and_overrides_seed_the_childs_data() -> None:
    parent = parent_ctx(data={"a": 1, "b": 2, "c": 3})
    seen: list[dict[str, Any]] = []

    async def runner(child: PipelineContext) -> None:
        seen.append(dict(child.data))

    spawn = spawner(emit_events=False)
    await spawn.spawn("p", parent, CORRELATION, "s", runner, inherit_data=True)
    await spawn.spawn("p", parent, CORRELATION, "s", runner, inherit_data=["a", "zz"])
    await spawn.spawn(
        "p", parent, CORRELATION, "s", runner, inherit_data=("b",), data_overrides={"b": 9, "d": 4}
    )
    # A generator of keys is read once, and any mapping overrides.
    await spawn.spawn(
        "p",
        parent,
        CORRELATION,
        "s",
        runner,
        inherit_data=(key for key in ("a", "c")),
        data_overrides=MappingProxyType({"c": 0}),
    )
    assert seen == [{"a": 1, "b": 2, "c": 3}, {"a": 1}, {"b": 9, "d": 4}, {"a": 1, "c": 0}]
    with pytest.raises(
        TypeError, match=r"^inherit_data must be a bool or an iterable of keys, got str$"
    ):
        await spawn.spawn("p", parent, CORRELATION, "s", runner, inherit_data="a")


async def test_no_events_and_no_registration_without_a_parent_run_id(
    sink: RecordingEventSink,
) -> None:
    tracker = ChildRunTracker()

    async def runner(child: PipelineContext) -> dict[str, Any]:
        return {"children": await tracker.get_metrics()}

    ctx = create_test_pipeline_context()
    ctx.pipeline_run_id = None
    result = await SubpipelineSpawner(child_tracker=tracker).spawn(
        "p", ctx, CORRELATION, "s", runner
    )
    assert result.success
    assert result.data is not None
    assert result.data["children"]["registration_count"] == 0
    assert sink.events == []


async def test_emit_events_false_keeps_the_sink_quiet(sink: RecordingEventSink) -> None:
    async def runner(child: PipelineContext) -> None:
        raise RuntimeError("x")

    await spawner(emit_events=False).spawn("p", parent_ctx(), CORRELATION, "s", runner)
    assert sink.events == []


async def test_spawn_is_a_checkpoint_under_the_budget() -> None:
    """A cancellation point on every call (see the cancelled-scope test), a schedule point
    when the checkpoint budget says one is due: with ``calls=1``, on every call."""

    async def runner(child: PipelineContext) -> int:
        return 1

    spawn = spawner(emit_events=False)
    with checkpoint_budget(calls=1):
        for _ in range(3):
            with trio.testing.assert_checkpoints():
                await spawn.spawn("p", parent_ctx(), CORRELATION, "s", runner)


async def test_a_sink_error_on_spawned_child_leaves_nothing_registered() -> None:
    set_event_sink(FailingSink(error=OSError))
    tracker = ChildRunTracker()
    spawn = SubpipelineSpawner(child_tracker=tracker)
    called = []

    async def runner(child: PipelineContext) -> None:
        called.append(child)

    with pytest.raises(OSError, match=r"^sink down$"):
        await spawn.spawn("p", parent_ctx(), CORRELATION, "s", runner)
    assert called == []
    assert await tracker.get_children(PARENT) == set()
    assert spawn.running_children == frozenset()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"pipeline_name": 1}, TypeError, r"^pipeline_name must be a str, got int$"),
        ({"ctx": {}}, TypeError, r"^ctx must be a PipelineContext, got dict$"),
        ({"parent_stage_id": None}, TypeError, r"^parent_stage_id must be a str, got NoneType$"),
        (
            {"runner": "run"},
            TypeError,
            r"^runner must be an async callable taking the child PipelineContext, got str$",
        ),
        (
            {"data_overrides": [1]},
            TypeError,
            r"^data_overrides must be a mapping or None, got list$",
        ),
        ({"correlation_id": "not-a-uuid"}, ValueError, r"^correlation_id must be a UUID string"),
    ],
)
async def test_spawn_rejects_bad_arguments(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    async def runner(child: PipelineContext) -> None:
        raise AssertionError("must not run")

    arguments: dict[str, Any] = {
        "pipeline_name": "p",
        "ctx": parent_ctx(),
        "correlation_id": CORRELATION,
        "parent_stage_id": "s",
        "runner": runner,
    }
    data_overrides = kwargs.pop("data_overrides", None)
    arguments.update(kwargs)
    spawn = spawner()
    with pytest.raises(error, match=message):
        await spawn.spawn(**arguments, data_overrides=data_overrides)
    assert spawn.running_children == frozenset()
    assert (await spawn.child_tracker.get_metrics())["registration_count"] == 0


async def test_spawn_from_a_stage_context_names_the_fix() -> None:
    async def runner(child: PipelineContext) -> None:
        return None

    with pytest.raises(
        TypeError,
        match=r"^ctx must be a PipelineContext \(a StageContext gives one with "
        r"ctx\.as_pipeline_context\(\)\), got StageContext$",
    ):
        await spawner().spawn("p", create_test_stage_context(), CORRELATION, "s", runner)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"child_tracker": {}},
            TypeError,
            r"^child_tracker must be a ChildRunTracker or None, got dict$",
        ),
        ({"emit_events": 1}, TypeError, r"^emit_events must be a bool, got int$"),
        ({"max_depth": 2.0}, TypeError, r"^max_depth must be an int, got float$"),
        ({"max_depth": True}, TypeError, r"^max_depth must be an int, got bool$"),
        ({"max_depth": -1}, ValueError, r"^max_depth must be >= 0, got -1$"),
    ],
)
def test_spawner_rejects_bad_arguments(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        SubpipelineSpawner(**kwargs)


# -- nesting depth -----------------------------------------------------------


def nesting_runner(spawn: SubpipelineSpawner, calls: list[str]) -> Any:
    """A runner that spawns the next level from inside itself, without end."""

    async def runner(child: PipelineContext) -> dict[str, Any]:
        calls.append(f"level{len(calls) + 1}")
        inner = await spawn.spawn("nested", child, CORRELATION, f"stage{len(calls)}", runner)
        return inner.to_dict()

    return runner


async def test_the_default_limit_is_five_and_a_sixth_level_fails_fast(
    sink: RecordingEventSink,
) -> None:
    assert DEFAULT_MAX_SUBPIPELINE_DEPTH == 5
    spawn = spawner()
    assert spawn.max_depth == 5
    captured: dict[str, Any] = {}
    calls: list[str] = []

    async def deepest(child: PipelineContext) -> None:
        calls.append("level6")

    async def level(child: PipelineContext) -> Any:
        calls.append(f"level{len(calls) + 1}")
        if len(calls) < 5:
            return (await spawn.spawn("nested", child, CORRELATION, "s", level)).to_dict()
        captured["depth5"] = child.pipeline_run_id
        captured["metrics"] = await spawn.child_tracker.get_metrics()
        with pytest.raises(MaxDepthExceededError) as info:
            await spawn.spawn("too_deep", child, CORRELATION, "s", deepest)
        captured["error"] = info.value
        captured["metrics_after"] = await spawn.child_tracker.get_metrics()
        return {"ok": True}

    result = await spawn.spawn("nested", parent_ctx(), CORRELATION, "s", level)
    assert result.success
    assert calls == ["level1", "level2", "level3", "level4", "level5"]
    error = captured["error"]
    assert str(error) == (
        f"Subpipeline depth 5 exceeds maximum allowed depth 5. Parent run: {captured['depth5']}"
    )
    assert (error.current_depth, error.max_depth, error.parent_run_id) == (
        5,
        5,
        captured["depth5"],
    )
    assert captured["metrics_after"] == captured["metrics"]
    assert captured["metrics"]["active_children"] == 5
    assert [data["pipeline_name"] for data in sink.of_type("pipeline.spawned_child")] == [  # type: ignore[index]
        "nested"
    ] * 5
    assert spawn.running_children == frozenset()


async def test_max_depth_zero_allows_no_child() -> None:
    spawn = spawner(max_depth=0, emit_events=False)
    calls: list[str] = []
    with pytest.raises(
        MaxDepthExceededError,
        match=rf"^Subpipeline depth 0 exceeds maximum allowed depth 0\. Parent run: {PARENT}$",
    ):
        await spawn.spawn("p", parent_ctx(), CORRELATION, "s", nesting_runner(spawn, calls))
    assert calls == []


@pytest.mark.parametrize("max_depth", [1, 3])
async def test_a_custom_limit_stops_nesting_at_that_depth(max_depth: int) -> None:
    spawn = spawner(max_depth=max_depth, emit_events=False)
    calls: list[str] = []
    result = await spawn.spawn("p", parent_ctx(), CORRELATION, "s", nesting_runner(spawn, calls))
    assert len(calls) == max_depth
    # The deepest child's attempt to go one level further fails that child; its
    # parent gets the failure as a result and returns it as data.
    innermost = result.to_dict()
    for _ in range(max_depth - 1):
        innermost = innermost["data"]
    assert innermost["success"] is False
    assert innermost["error"].startswith(
        f"Subpipeline depth {max_depth} exceeds maximum allowed depth {max_depth}. Parent run: "
    )


def test_max_depth_error_pickles() -> None:
    error = MaxDepthExceededError(5, 5, PARENT)
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), str(copy), copy.current_depth, copy.parent_run_id) == (
        MaxDepthExceededError,
        str(error),
        5,
        PARENT,
    )


# -- spawn under a cancelled parent, detached spawns -------------------------


async def test_spawn_under_a_parent_marked_canceled_starts_nothing(
    sink: RecordingEventSink,
) -> None:
    spawn = spawner()
    parent = parent_ctx()
    parent.mark_canceled()
    called = []

    async def runner(child: PipelineContext) -> None:
        called.append(child)

    result = await spawn.spawn("p", parent, CORRELATION, "s", runner)
    assert (result.success, result.error, result.duration_ms) == (
        False,
        f"Parent run {PARENT} was canceled; the child pipeline was not started",
        0.0,
    )
    assert called == []
    assert sink.events == []
    assert (await spawn.child_tracker.get_metrics())["registration_count"] == 0


async def test_spawn_under_a_run_cancelled_with_children_starts_nothing(
    sink: RecordingEventSink,
) -> None:
    spawn = spawner()
    assert await spawn.cancel_with_children(PARENT) == [PARENT]
    sink.clear()
    called = []

    async def runner(child: PipelineContext) -> None:
        called.append(child)

    result = await spawn.spawn("p", parent_ctx(), CORRELATION, "s", runner)
    assert result.success is False
    assert result.error == f"Parent run {PARENT} was canceled; the child pipeline was not started"
    assert called == []
    assert sink.events == []


async def test_spawn_in_a_cancelled_scope_raises_cancelled_and_starts_nothing(
    sink: RecordingEventSink,
) -> None:
    spawn = spawner()
    called = []

    async def runner(child: PipelineContext) -> None:
        called.append(child)

    with trio.CancelScope() as scope:
        scope.cancel()
        await spawn.spawn("p", parent_ctx(), CORRELATION, "s", runner)
    assert scope.cancelled_caught
    assert called == []
    assert sink.events == []


async def test_spawn_detached_needs_a_nursery_and_says_so() -> None:
    async def runner(child: PipelineContext) -> None:
        return None

    spawn = spawner()
    with pytest.raises(
        TypeError,
        match=r"^spawn_detached\(\) needs nursery=: a detached child run must be owned by a "
        r"nursery the caller opens \(async with trio\.open_nursery\(\) as nursery\); to run "
        r"the child in this task, await spawn\(\.\.\.\) instead$",
    ):
        await spawn.spawn_detached("p", parent_ctx(), CORRELATION, "s", runner)
    with pytest.raises(TypeError, match=r"^nursery must be a trio\.Nursery, got object$"):
        await spawn.spawn_detached(
            "p",
            parent_ctx(),
            CORRELATION,
            "s",
            runner,
            nursery=object(),  # type: ignore[arg-type]
        )


async def test_spawn_detached_registers_before_returning_and_the_nursery_owns_the_child(
    autojump_clock: trio.abc.Clock, sink: RecordingEventSink
) -> None:
    spawn = spawner()
    finished: list[float] = []

    async def runner(child: PipelineContext) -> dict[str, Any]:
        await trio.sleep(3)
        finished.append(trio.current_time())
        return {"done": True}

    async with trio.open_nursery() as nursery:
        child_id = await spawn.spawn_detached(
            "p", parent_ctx(), CORRELATION, "s", runner, nursery=nursery
        )
        assert child_id is not None
        assert await spawn.child_tracker.get_children(PARENT) == {child_id}
        assert spawn.running_children == {child_id}
        assert sink.types() == ["pipeline.spawned_child"]
    assert finished == [3.0]
    assert sink.types() == ["pipeline.spawned_child", "pipeline.child_completed"]
    completed = sink.of_type("pipeline.child_completed")[0]
    assert completed is not None
    assert (completed["child_run_id"], completed["duration_ms"]) == (str(child_id), 3000.0)
    assert spawn.running_children == frozenset()


async def test_spawn_detached_under_a_canceled_parent_returns_none() -> None:
    spawn = spawner()
    parent = parent_ctx()
    parent.mark_canceled()

    async def runner(child: PipelineContext) -> None:
        raise AssertionError("must not run")

    async with trio.open_nursery() as nursery:
        assert (
            await spawn.spawn_detached("p", parent, CORRELATION, "s", runner, nursery=nursery)
            is None
        )


async def test_spawn_detached_raises_the_depth_error_to_the_caller() -> None:
    spawn = spawner(max_depth=0)

    async def runner(child: PipelineContext) -> None:
        raise AssertionError("must not run")

    async with trio.open_nursery() as nursery:
        with pytest.raises(MaxDepthExceededError):
            await spawn.spawn_detached("p", parent_ctx(), CORRELATION, "s", runner, nursery=nursery)


async def test_spawn_detached_into_a_closed_nursery_emits_and_registers_nothing(
    sink: RecordingEventSink,
) -> None:
    tracker = ChildRunTracker()
    spawn = SubpipelineSpawner(child_tracker=tracker)
    called = []

    async def runner(child: PipelineContext) -> None:
        called.append(child)

    async with trio.open_nursery() as closed:
        pass
    with pytest.raises(
        RuntimeError,
        match=r"^spawn_detached\(\): nursery is closed to new arrivals \(its async with block "
        r"has exited\); pass a nursery whose block is still running$",
    ):
        await spawn.spawn_detached("p", parent_ctx(), CORRELATION, "s", runner, nursery=closed)
    assert sink.events == []
    assert called == []
    assert spawn.running_children == frozenset()
    assert await tracker.get_children(PARENT) == set()
    metrics = await tracker.get_metrics()
    assert (metrics["registration_count"], metrics["unregistration_count"]) == (0, 0)


async def test_spawn_detached_passes_a_runtime_error_from_the_sink_through() -> None:
    """Only trio's refusal becomes the closed-nursery error; the sink's own error is kept."""

    set_event_sink(FailingSink())
    tracker = ChildRunTracker()
    spawn = SubpipelineSpawner(child_tracker=tracker)
    called = []

    async def runner(child: PipelineContext) -> None:
        called.append(child)

    async with trio.open_nursery() as nursery:
        with pytest.raises(RuntimeError, match=r"^sink down$"):
            await spawn.spawn_detached("p", parent_ctx(), CORRELATION, "s", runner, nursery=nursery)
    assert called == []
    assert spawn.running_children == frozenset()
    assert await tracker.get_children(PARENT) == set()


async def test_spawn_detached_announces_the_child_before_the_child_emits_anything(
    sink: RecordingEventSink,
) -> None:
    spawn = spawner()

    async def runner(child: PipelineContext) -> None:
        sink.try_emit(type="child.first", data=None)  # no checkpoint before it

    async with trio.open_nursery() as nursery:
        await spawn.spawn_detached("p", parent_ctx(), CORRELATION, "s", runner, nursery=nursery)
    assert sink.types() == ["pipeline.spawned_child", "child.first", "pipeline.child_completed"]


async def test_spawn_detached_is_a_checkpoint() -> None:
    async def runner(child: PipelineContext) -> None:
        return None

    spawn = spawner(emit_events=False)
    async with trio.open_nursery() as nursery:
        with trio.testing.assert_checkpoints():
            await spawn.spawn_detached("p", parent_ctx(), CORRELATION, "s", runner, nursery=nursery)


# -- SubpipelineResult and the event payloads --------------------------------


def test_result_to_dict_omits_empty_data_and_error() -> None:
    assert SubpipelineResult(True, A, {"x": 1}, None, 1.5).to_dict() == {
        "success": True,
        "child_run_id": str(A),
        "duration_ms": 1.5,
        "data": {"x": 1},
    }
    assert SubpipelineResult(False, A, {}, "", 0.0).to_dict() == {
        "success": False,
        "child_run_id": str(A),
        "duration_ms": 0.0,
    }
    assert SubpipelineResult(False, A, error="e").to_dict() == {
        "success": False,
        "child_run_id": str(A),
        "duration_ms": 0.0,
        "error": "e",
    }
    assert type(SubpipelineResult(True, A, {"x": 1}).to_dict()["data"]) is dict


def test_result_is_frozen_and_read_only() -> None:
    result = SubpipelineResult(True, A, {"x": 1})
    with pytest.raises(AttributeError):
        result.success = False  # type: ignore[misc]
    with pytest.raises(TypeError):
        result.data["y"] = 2  # type: ignore[index]
    with pytest.raises(TypeError, match=r"^data must be a mapping or None, got list$"):
        SubpipelineResult(True, A, [1])  # type: ignore[arg-type]


async def test_event_payloads_golden(
    autojump_clock: trio.abc.Clock, sink: RecordingEventSink
) -> None:
    """The four payloads: exact keys in order, ids as str or None, ISO UTC timestamps."""
    spawn = spawner()
    ids: list[uuid.UUID] = []

    async def ok(child: PipelineContext) -> None:
        assert child.pipeline_run_id is not None
        ids.append(child.pipeline_run_id)
        await trio.sleep(0.25)

    async def bad(child: PipelineContext) -> None:
        assert child.pipeline_run_id is not None
        ids.append(child.pipeline_run_id)
        await trio.sleep(0.5)
        raise RuntimeError("broken tool")

    await spawn.spawn("good", parent_ctx(), CORRELATION, "tool_stage", ok)
    await spawn.spawn("bad", parent_ctx(), CORRELATION, "tool_stage", bad)
    await spawn.cancel_with_children(PARENT, reason="timeout")
    stripped = []
    for event_type, data in sink.events:
        assert data is not None
        assert is_iso_utc(data.pop("timestamp"))
        stripped.append((event_type, data))
    good, bad_id = (str(i) for i in ids)
    expected: list[tuple[str, dict[str, Any]]] = [
        (
            "pipeline.spawned_child",
            {
                "parent_run_id": str(PARENT),
                "child_run_id": good,
                "parent_stage_id": "tool_stage",
                "pipeline_name": "good",
                "correlation_id": str(CORRELATION),
            },
        ),
        (
            "pipeline.child_completed",
            {
                "parent_run_id": str(PARENT),
                "child_run_id": good,
                "pipeline_name": "good",
                "duration_ms": 250.0,
            },
        ),
        (
            "pipeline.spawned_child",
            {
                "parent_run_id": str(PARENT),
                "child_run_id": bad_id,
                "parent_stage_id": "tool_stage",
                "pipeline_name": "bad",
                "correlation_id": str(CORRELATION),
            },
        ),
        (
            "pipeline.child_failed",
            {
                "parent_run_id": str(PARENT),
                "child_run_id": bad_id,
                "pipeline_name": "bad",
                "error_message": "broken tool",
                "duration_ms": 500.0,
            },
        ),
        (
            "pipeline.canceled",
            {
                "pipeline_run_id": str(PARENT),
                "parent_run_id": None,
                "reason": "timeout",
                "cascade_depth": 0,
            },
        ),
    ]
    assert stripped == expected
    assert [list(data) for _, data in stripped] == [list(data) for _, data in expected]


def test_event_classes_to_dict_and_defaults() -> None:
    spawned = PipelineSpawnedChildEvent(A, B, "s", "p", C)
    assert list(spawned.to_dict()) == [
        "parent_run_id",
        "child_run_id",
        "parent_stage_id",
        "pipeline_name",
        "correlation_id",
        "timestamp",
    ]
    assert is_iso_utc(spawned.timestamp)
    completed = PipelineChildCompletedEvent(A, B, "p")
    assert completed.to_dict()["duration_ms"] == 0.0
    assert list(completed.to_dict()) == [
        "parent_run_id",
        "child_run_id",
        "pipeline_name",
        "duration_ms",
        "timestamp",
    ]
    failed = PipelineChildFailedEvent(A, B, "p", "err")
    assert list(failed.to_dict()) == [
        "parent_run_id",
        "child_run_id",
        "pipeline_name",
        "error_message",
        "duration_ms",
        "timestamp",
    ]
    canceled = PipelineCanceledEvent(A)
    assert {k: v for k, v in canceled.to_dict().items() if k != "timestamp"} == {
        "pipeline_run_id": str(A),
        "parent_run_id": None,
        "reason": "user_requested",
        "cascade_depth": 0,
    }
    assert PipelineCanceledEvent(A, B, "r", 2).to_dict()["parent_run_id"] == str(B)
    with pytest.raises(AttributeError):
        canceled.reason = "x"  # type: ignore[misc]


# -- the global instances ----------------------------------------------------


async def test_the_global_spawner_and_tracker_are_shared_by_all_tasks() -> None:
    seen: list[tuple[SubpipelineSpawner, ChildRunTracker]] = []

    async def look() -> None:
        seen.append((get_subpipeline_spawner(), get_child_tracker()))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(look)
        nursery.start_soon(look)
    assert seen[0][0] is seen[1][0]
    assert seen[0][1] is seen[1][1]
    assert seen[0][0].child_tracker is seen[0][1]
    assert get_subpipeline_spawner() is seen[0][0]


async def test_set_binds_for_this_context_and_the_tasks_it_starts() -> None:
    default = get_subpipeline_spawner()
    mine = SubpipelineSpawner()
    tracker = ChildRunTracker()
    seen: list[object] = []

    async def inner() -> None:
        set_subpipeline_spawner(SubpipelineSpawner())  # this task only
        seen.append(get_subpipeline_spawner())

    async def look() -> None:
        seen.append((get_subpipeline_spawner(), get_child_tracker()))

    set_subpipeline_spawner(mine)
    set_child_tracker(tracker)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(inner)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(look)
    assert seen[0] is not mine
    assert seen[1] == (mine, tracker)
    assert get_subpipeline_spawner() is mine
    clear_subpipeline_spawner()
    clear_child_tracker()
    fresh = get_subpipeline_spawner()
    assert fresh is not default
    assert fresh is not mine
    assert get_child_tracker() is not tracker


def test_reset_globals_restores_fresh_instances() -> None:
    spawner_before = get_subpipeline_spawner()
    tracker_before = get_child_tracker()
    assert get_subpipeline_spawner() is spawner_before
    reset_globals()
    assert get_subpipeline_spawner() is not spawner_before
    assert get_child_tracker() is not tracker_before


def test_setters_reject_other_types() -> None:
    with pytest.raises(TypeError, match=r"^spawner must be a SubpipelineSpawner, got object$"):
        set_subpipeline_spawner(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^tracker must be a ChildRunTracker, got object$"):
        set_child_tracker(object())  # type: ignore[arg-type]


# -- ChildTrackerMetricsInterceptor ------------------------------------------


async def test_child_tracker_metrics_are_logged_for_stages_of_child_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The interceptor awaits the global tracker's metrics after each stage of a child run."""
    caplog.set_level(logging.INFO, logger="stageflow_trio.child_tracker_metrics")
    spawn = SubpipelineSpawner()  # the global tracker, which the interceptor reads

    async def stage(ctx: PipelineContext) -> StageOutput:
        return StageOutput.ok(seen=True)

    graph = StageGraph([StageSpec(name="work", runner=stage)], [ChildTrackerMetricsInterceptor()])
    child_ids: list[uuid.UUID | None] = []

    async def runner(child: PipelineContext) -> dict[str, Any]:
        child_ids.append(child.pipeline_run_id)
        results = await graph.run(child)
        return {name: result.status for name, result in results.items()}

    await graph.run(parent_ctx())  # a root run: nothing logged
    assert [r for r in caplog.records if r.name == "stageflow_trio.child_tracker_metrics"] == []
    result = await spawn.spawn("child", parent_ctx(), CORRELATION, "s", runner)
    assert result.data == {"work": "completed"}
    (record,) = [r for r in caplog.records if r.name == "stageflow_trio.child_tracker_metrics"]
    assert record.getMessage() == "ChildRunTracker metrics"
    extras = {
        key: getattr(record, key)
        for key in (
            "component",
            "pipeline_run_id",
            "is_child_run",
            "registration_count",
            "unregistration_count",
            "active_children",
            "active_parents",
            "total_relationships",
        )
    }
    assert extras == {
        "component": "ChildRunTracker",
        "pipeline_run_id": str(child_ids[0]),
        "is_child_run": True,
        "registration_count": 1,
        "unregistration_count": 0,
        "active_children": 1,
        "active_parents": 1,
        "total_relationships": 1,
    }


async def test_child_tracker_metrics_failure_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class BrokenTracker(ChildRunTracker):
        async def get_metrics(self) -> dict[str, Any]:
            raise RuntimeError("metrics store down")

    set_child_tracker(BrokenTracker())
    child = parent_ctx().fork(A, "s", CORRELATION)
    interceptor = ChildTrackerMetricsInterceptor()
    await interceptor.after("work", None, child)  # type: ignore[arg-type]
    assert "Failed to log ChildRunTracker metrics: metrics store down" in caplog.messages
