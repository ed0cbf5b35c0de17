"""Differential tests: the same subpipeline scenarios on stageflow-core 0.9.1 (asyncio) and here.

Each scenario runs on both sides with the same parent ids; the ``pipeline.*``
events, the results and what the child saw must match. Child run ids are random
on both sides, so every id not given by the test is renamed in order of first
appearance (``child0``, ``child1``, ...); timestamps must be ISO UTC and
durations floats, then both are dropped.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
import trio

ref_sub = pytest.importorskip("stageflow.pipeline.subpipeline")
ref_context = pytest.importorskip("stageflow.stages.context")
ref_events = pytest.importorskip("stageflow.events")
ref_registry = pytest.importorskip("stageflow.pipeline.registry")
ref_pipeline = pytest.importorskip("stageflow.pipeline.pipeline")
ref_core = pytest.importorskip("stageflow.core")
ref_executor = pytest.importorskip("stageflow.tools.executor")
ref_tools_registry = pytest.importorskip("stageflow.tools.registry")

from stageflow_trio import core as our_core  # noqa: E402
from stageflow_trio import events as our_events  # noqa: E402
from stageflow_trio.pipeline import pipeline as our_pipeline  # noqa: E402
from stageflow_trio.pipeline import registry as our_registry  # noqa: E402
from stageflow_trio.pipeline import subpipeline as our_sub  # noqa: E402
from stageflow_trio.stages import context as our_context  # noqa: E402
from stageflow_trio.tools import executor as our_executor  # noqa: E402

PARENT = uuid.UUID("aaaaaaaa-0000-4000-8000-000000000001")
REQUEST = uuid.UUID("bbbbbbbb-0000-4000-8000-000000000003")
CORRELATION = uuid.UUID("cccccccc-0000-4000-8000-000000000002")
KNOWN = {str(PARENT): "parent", str(REQUEST): "request", str(CORRELATION): "correlation"}
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class Sink:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    async def emit(self, *, type: str, data: dict[str, Any]) -> None:  # noqa: A002
        self.events.append((type, dict(data)))

    def try_emit(self, *, type: str, data: dict[str, Any]) -> None:  # noqa: A002
        self.events.append((type, dict(data)))


class Side:
    """One implementation: its modules, checkpoint and loop."""

    def __init__(self, name: str) -> None:
        self.name = name
        ref = name == "ref"
        self.sub = ref_sub if ref else our_sub
        self.context = ref_context if ref else our_context
        self.events = ref_events if ref else our_events
        self.registry = ref_registry if ref else our_registry
        self.pipeline = ref_pipeline if ref else our_pipeline
        self.core = ref_core if ref else our_core
        self.executor = ref_executor if ref else our_executor
        self.checkpoint: Callable[[], Any] = (
            (lambda: asyncio.sleep(0)) if ref else trio.lowlevel.checkpoint
        )
        self.ref = ref

    def run(self, main: Callable[[], Any]) -> Any:
        return asyncio.run(main()) if self.ref else trio.run(main)

    def parent(self, run_id: uuid.UUID | None = PARENT, **kwargs: Any) -> Any:
        return self.context.PipelineContext(
            pipeline_run_id=run_id,
            request_id=REQUEST,
            session_id=None,
            user_id=None,
            org_id=None,
            interaction_id=None,
            topology="parent_topology",
            execution_mode="parent_mode",
            **kwargs,
        )


SIDES = [Side("ref"), Side("ours")]


class Names:
    """Renames unknown ids in order of first appearance."""

    def __init__(self) -> None:
        self.names: dict[str, str] = dict(KNOWN)

    def __call__(self, value: Any) -> Any:
        if isinstance(value, uuid.UUID):
            value = str(value)
        if isinstance(value, str):
            return UUID_RE.sub(self._name, value)
        if isinstance(value, dict):
            return {key: self(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self(item) for item in value]
        return value

    def _name(self, match: re.Match[str]) -> str:
        return self.names.setdefault(match.group(0), f"child{len(self.names) - len(KNOWN)}")


def normalized_events(sink: Sink, names: Names) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for event_type, data in sink.events:
        if not event_type.startswith("pipeline."):
            continue
        data = dict(data)
        stamp = data.pop("timestamp")
        assert datetime.fromisoformat(stamp).utcoffset() is not None
        if "duration_ms" in data:
            assert type(data.pop("duration_ms")) is float
        out.append((event_type, names(data)))
    return out


def run_scenario(side: Side, scenario: Callable[[Side, Any], Any]) -> dict[str, Any]:
    sink = Sink()
    names = Names()

    async def main() -> dict[str, Any]:
        side.events.set_event_sink(sink)
        tracker = side.sub.ChildRunTracker()
        outcome = await scenario(side, tracker)
        return {"outcome": outcome, "metrics": await tracker.get_metrics()}

    result = side.run(main)
    return {
        "outcome": names(result["outcome"]),
        "metrics": result["metrics"],
        "events": normalized_events(sink, names),
    }


def result_dict(result: Any) -> dict[str, Any]:
    data: dict[str, Any] = result.to_dict()
    assert type(data.pop("duration_ms")) is float
    return data


def assert_same(scenario: Callable[[Side, Any], Any]) -> dict[str, Any]:
    ref, ours = (run_scenario(side, scenario) for side in SIDES)
    assert ours["events"] == ref["events"]
    assert ours["outcome"] == ref["outcome"]
    assert ours["metrics"] == ref["metrics"]
    return ours


def seen(child: Any) -> dict[str, Any]:
    return {
        "run_id": child.pipeline_run_id,
        "parent_run_id": child.parent_run_id,
        "parent_stage_id": child.parent_stage_id,
        "correlation_id": child.correlation_id,
        "request_id": child.request_id,
        "topology": child.topology,
        "execution_mode": child.execution_mode,
        "data": dict(child.data),
        "parent_k": child.get_parent_data("k"),
        "is_child_run": child.is_child_run,
    }


async def scenario_success_failure_and_values(side: Side, tracker: Any) -> Any:
    spawner = side.sub.SubpipelineSpawner(child_tracker=tracker)
    parent = side.parent(data={"k": "v"})
    children: list[dict[str, Any]] = []

    def runner(value: Any = None, error: Exception | None = None) -> Any:
        async def run(child: Any) -> Any:
            children.append(seen(child))
            await side.checkpoint()
            if error is not None:
                raise error
            return value

        return run

    results = [
        await spawner.spawn("dict", parent, CORRELATION, "stage_a", runner({"x": 1})),
        await spawner.spawn("int", parent, CORRELATION, "stage_b", runner(7)),
        await spawner.spawn("none", parent, CORRELATION, "stage_c", runner(None)),
        await spawner.spawn(
            "fails", parent, CORRELATION, "stage_d", runner(error=ValueError("bad input"))
        ),
        await spawner.spawn(
            "override", parent, CORRELATION, "s", runner({}), topology="t2", execution_mode="m2"
        ),
    ]
    return {"results": [result_dict(r) for r in results], "children": children}


def test_spawn_complete_and_fail_events_and_results_match() -> None:
    ours = assert_same(scenario_success_failure_and_values)
    assert [event_type for event_type, _ in ours["events"]] == [
        "pipeline.spawned_child",
        "pipeline.child_completed",
    ] * 3 + ["pipeline.spawned_child", "pipeline.child_failed"] + [
        "pipeline.spawned_child",
        "pipeline.child_completed",
    ]


async def scenario_nested(side: Side, tracker: Any) -> Any:
    spawner = side.sub.SubpipelineSpawner(child_tracker=tracker)

    async def grandchild(child: Any) -> Any:
        await side.checkpoint()
        if child.parent_stage_id == "fail_here":
            raise RuntimeError("grandchild broke")
        return {"depth": 2}

    async def child(ctx: Any) -> Any:
        ok = await spawner.spawn("gc_ok", ctx, CORRELATION, "inner", grandchild)
        bad = await spawner.spawn("gc_bad", ctx, CORRELATION, "fail_here", grandchild)
        return {"ok": result_dict(ok), "bad": result_dict(bad)}

    result = await spawner.spawn("child", side.parent(), CORRELATION, "outer", child)
    return result_dict(result)


def test_nested_spawn_events_match() -> None:
    ours = assert_same(scenario_nested)
    assert [(t, d.get("pipeline_name")) for t, d in ours["events"]] == [
        ("pipeline.spawned_child", "child"),
        ("pipeline.spawned_child", "gc_ok"),
        ("pipeline.child_completed", "gc_ok"),
        ("pipeline.spawned_child", "gc_bad"),
        ("pipeline.child_failed", "gc_bad"),
        ("pipeline.child_completed", "child"),
    ]


async def scenario_depth(side: Side, tracker: Any) -> Any:
    outcome: dict[str, Any] = {}
    spawner = side.sub.SubpipelineSpawner(child_tracker=tracker, max_depth=2)

    async def nest(child: Any) -> Any:
        return result_dict(await spawner.spawn("nest", child, CORRELATION, "s", nest))

    outcome["nested"] = result_dict(
        await spawner.spawn("nest", side.parent(), CORRELATION, "s", nest)
    )
    zero = side.sub.SubpipelineSpawner(child_tracker=tracker, max_depth=0)
    try:
        await zero.spawn("p", side.parent(), CORRELATION, "s", nest)
    except side.sub.MaxDepthExceededError as exc:
        outcome["zero"] = (str(exc), exc.current_depth, exc.max_depth, exc.parent_run_id)
    return outcome


def test_depth_limit_messages_and_events_match() -> None:
    ours = assert_same(scenario_depth)
    assert ours["outcome"]["zero"][0] == (
        "Subpipeline depth 0 exceeds maximum allowed depth 0. Parent run: parent"
    )


async def scenario_quiet(side: Side, tracker: Any) -> Any:
    async def ok(child: Any) -> Any:
        return {"parent": child.parent_run_id}

    no_id = await side.sub.SubpipelineSpawner(child_tracker=tracker).spawn(
        "p", side.parent(run_id=None), CORRELATION, "s", ok
    )
    quiet = await side.sub.SubpipelineSpawner(child_tracker=tracker, emit_events=False).spawn(
        "p", side.parent(), CORRELATION, "s", ok
    )
    return [result_dict(no_id), result_dict(quiet)]


def test_no_events_without_parent_id_or_with_events_off() -> None:
    ours = assert_same(scenario_quiet)
    assert ours["events"] == []


async def scenario_cancel_registered_chain(side: Side, tracker: Any) -> Any:
    a, b, c = (uuid.UUID(int=n) for n in (1, 2, 3))
    await tracker.register_child(a, b)
    await tracker.register_child(b, c)
    spawner = side.sub.SubpipelineSpawner(child_tracker=tracker)
    contexts = {run: side.parent(run_id=run) for run in (a, c)}
    first = await spawner.cancel_with_children(a, reason="timeout", contexts=contexts)
    again = await spawner.cancel_with_children(b)
    return {
        "first": first,
        "again": again,
        "marked": [contexts[a].canceled, contexts[c].canceled],
        "is_canceled": [await spawner.is_canceled(run) for run in (a, b, c, PARENT)],
    }


def test_cancel_with_children_events_on_a_chain_match() -> None:
    ours = assert_same(scenario_cancel_registered_chain)
    assert [d["cascade_depth"] for _, d in ours["events"]] == [2, 1, 0]


async def scenario_tracker(side: Side, tracker: Any) -> Any:
    a, b, c, d = (uuid.UUID(int=n) for n in (1, 2, 3, 4))
    await tracker.register_child(a, b)
    await tracker.register_child(a, c)
    await tracker.register_child(c, d)
    out = {
        "children": sorted(map(str, await tracker.get_children(a))),
        "parent": await tracker.get_parent(d),
        "descendants": sorted(map(str, await tracker.get_all_descendants(a))),
        "root": await tracker.get_root_run(d),
    }
    await tracker.cleanup_run(c)
    out["after_cleanup"] = [
        await tracker.get_parent(d),
        sorted(map(str, await tracker.get_children(a))),
    ]
    await tracker.unregister_child(a, b)
    return out


def test_tracker_lookups_and_metrics_match() -> None:
    assert_same(scenario_tracker)


class WorkStage:
    name = "work"

    def __init__(self, side_core: Any) -> None:
        self.core = side_core

    async def execute(self, ctx: Any) -> Any:
        return self.core.StageOutput.ok(value=1, run=str(ctx.snapshot.pipeline_run_id))


def executor_scenario(kind: str) -> Callable[[Side, Any], Any]:
    async def scenario(side: Side, tracker: Any) -> Any:
        spawner = side.sub.SubpipelineSpawner(child_tracker=tracker)
        registry = side.registry.PipelineRegistry()
        registry.register(
            "child",
            side.pipeline.Pipeline().with_stage(
                "work", WorkStage(side.core), side.core.StageKind.WORK
            ),
        )
        executor = side.executor.ToolExecutor(spawner=spawner, registry=registry)
        if kind == "spawn":
            result = await executor.spawn_subpipeline(
                "child", side.parent(), CORRELATION, execution_mode_override="tool_mode"
            )
            return result_dict(result)
        if kind == "missing":
            try:
                await executor.spawn_subpipeline("nope", side.parent(), CORRELATION)
            except KeyError as exc:
                return str(exc)
            raise AssertionError("no KeyError")

        class Action:
            type = "search"
            payload: dict[str, Any] = {}  # noqa: RUF012

        class Plan:
            actions = (Action(), Action())

        if side.name == "ref":
            ref_tools_registry.clear_tool_registry()
            executor.tool_registry = ref_tools_registry.get_tool_registry()
        result = await executor.execute(side.parent(), Plan())
        return {
            "executed": result.actions_executed,
            "failed": result.actions_failed,
            "artifacts": list(result.artifacts_produced),
            "reentry": result.requires_reentry,
            "error": result.error,
            "runs": list(result.subpipeline_runs),
        }

    return scenario


def test_tool_executor_spawn_subpipeline_matches() -> None:
    ours = assert_same(executor_scenario("spawn"))
    assert ours["outcome"] == {
        "success": True,
        "child_run_id": "child0",
        "data": {"work": {"value": 1, "run": "child0"}},
    }
    assert [t for t, _ in ours["events"]] == ["pipeline.spawned_child", "pipeline.child_completed"]
    assert ours["events"][0][1]["parent_stage_id"] == "stage.tool_executor"


def test_tool_executor_unknown_pipeline_matches() -> None:
    ours = assert_same(executor_scenario("missing"))
    assert ours["outcome"] == "\"Pipeline 'nope' not found. Available: ['child']\""


def test_tool_executor_execute_with_no_tools_matches() -> None:
    ours = assert_same(executor_scenario("execute"))
    assert ours["outcome"] == {
        "executed": 0,
        "failed": 2,
        "artifacts": [],
        "reentry": True,
        "error": None,
        "runs": [],
    }
