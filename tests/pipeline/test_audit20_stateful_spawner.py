"""A stateful test of SubpipelineSpawner and ChildRunTracker: random operations, one model.

Hypothesis draws one operation at a time, from the state the run is in, and the
test performs it inside one ``trio.run`` (MockClock, autojump): spawn a child under
a live run (one of two roots or a running child) with ``spawn`` in a task of the
parent's own nursery or with ``spawn_detached`` into a nursery the test owns;
release a blocked child's runner to return (it then waits for the children it
spawned in its task) or to raise (which cancels them); ``cancel_with_children`` on
a root, a running or ended child (cancelled before or not), or an unknown id;
spawn under a cancelled parent. Spawns under runs at ``max_depth`` come up on
their own. A runner that is cancelled tries one more (shielded) spawn from its
cleanup, the way a stage's cleanup might. Choices are weighted so that trees grow
deep and ended children keep detached descendants running (``_retained``).

After every step, once all tasks are blocked, and again when everything has been
released and the nurseries have closed, the test checks against its model:

- the tracker's links (``_parents``, ``_children``) are the model's running
  children and their parents; ``running_children`` is the model's running set,
  ``_retained`` the ended children that still have a running descendant;
- one live task per running child (a trio Instrument counts them);
- each runner was called once, or never when the spawn was refused;
- each spawn's outcome: the runner's data, its error, ``Child pipeline canceled:
  {reason}`` for the topmost run a ``cancel_with_children`` stopped (the runs
  below it raise ``trio.Cancelled`` out of their spawns), ``trio.Cancelled``
  for a child whose parent's runner raised, ``MaxDepthExceededError`` exactly
  when the parent is at ``max_depth`` (with its depth), and a not-started result
  (no runner, no event, nothing registered) under a cancelled parent;
- every run a ``cancel_with_children`` cancelled while it ran saw
  ``trio.Cancelled`` and its context says cancelled; ``is_canceled`` agrees with
  the model for every id;
- the events of the step: ``spawned_child``, ``child_completed``,
  ``child_failed`` exactly as the model says, and ``pipeline.canceled`` once per
  newly cancelled run, deepest first, with the model's ``cascade_depth``,
  parent and reason, in the order ``cancel_with_children`` returned them;
- at the end nothing is registered, retained or running, no task is left, and
  ``_canceled_runs`` holds exactly the ids ever cancelled (fewer than its
  ``max_canceled_runs`` bound here, so none was forgotten).
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stageflow_trio.events import set_event_sink
from stageflow_trio.pipeline import ChildRunTracker, MaxDepthExceededError, SubpipelineSpawner
from stageflow_trio.pipeline.subpipeline import SubpipelineResult
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.testing import RecordingEventSink, create_test_pipeline_context
from tests.trio_setups import TaskLedger

CORRELATION = uuid.UUID("cccccccc-0000-4000-8000-000000000020")
UNKNOWN = uuid.UUID("dddddddd-0000-4000-8000-000000000020")
PENDING = "pending"  # a spawn that has not returned yet
CANCELLED = "cancelled"  # a spawn that raised trio.Cancelled
CANCEL_ENDS = frozenset({"canceled", "canceled_raise", "killed"})


def only_cancelled(exc: BaseException) -> bool:
    """A bare Cancelled, or a group of nothing but Cancelled (a nursery's)."""
    if isinstance(exc, trio.Cancelled):
        return True
    return isinstance(exc, BaseExceptionGroup) and exc.split(trio.Cancelled)[1] is None


@dataclass(eq=False)
class Run:
    """A spawn attempt (or the root): what the model expects, and what was seen."""

    key: int
    parent: Run | None
    mode: str  # "root", "task" (spawn in a task) or "detached" (spawn_detached)
    depth: int
    # The model.
    started: bool = False  # the runner is to be called
    alive: bool = False
    released: str | None = None  # "ok" or "fail", once the test released it
    # "ok", "fail", "canceled" (topmost run stopped by cancel_with_children: a
    # canceled result), "canceled_raise" (stopped with its parent: its spawn raises
    # Cancelled), "killed" (its parent's runner raised), "depth", "not_started".
    end: str | None = None
    reason: str | None = None
    # What was seen.
    release: trio.Event = field(default_factory=trio.Event)
    ctx: PipelineContext | None = None
    run_id: uuid.UUID | None = None
    nursery: trio.Nursery | None = None
    entered: int = 0
    exited: bool = False
    saw_cancelled: bool = False
    canceled_when_seen: bool | None = None  # ctx.canceled when the runner saw Cancelled
    probe: Any = None  # what the cleanup spawn gave
    probe_id: uuid.UUID | None = None
    outcome: Any = PENDING  # the spawn's result / exception, or spawn_detached's id

    @property
    def parent_id(self) -> uuid.UUID | None:
        return None if self.parent is None else self.parent.run_id


class Model:
    """The runs, the cancelled ids, and the events expected from the current step."""

    def __init__(self, max_depth: int, roots: list[Run]) -> None:
        self.max_depth = max_depth
        self.runs: list[Run] = list(roots)
        self.canceled: dict[uuid.UUID, str] = {}
        self.events: list[tuple[Any, ...]] = []
        self.cancel_events: list[tuple[Any, ...]] = []
        self.returned: list[uuid.UUID] = []  # what cancel_with_children returned this step

    def children(self, run: Run) -> list[Run]:
        return [r for r in self.runs if r.parent is run and r.started]

    def running_below(self, run: Run) -> int:
        return sum(c.alive + self.running_below(c) for c in self.children(run))

    def has_running_descendant(self, run: Run) -> bool:
        return any(c.alive or self.has_running_descendant(c) for c in self.children(run))

    def retained(self, run: Run) -> bool:
        """An ended child the spawner keeps, for the cancel walk, while runs below it go on."""
        return (
            run.mode != "root"
            and run.started
            and not run.alive
            and self.has_running_descendant(run)
        )

    def spawn(self, parent: Run, mode: str) -> Run:
        child = Run(key=len(self.runs), parent=parent, mode=mode, depth=parent.depth + 1)
        self.runs.append(child)
        # A run the spawner is not running (the root, an ended child) counts as depth 0.
        parent_depth = parent.depth if parent.alive and parent.mode != "root" else 0
        if parent_depth >= self.max_depth:
            child.end = "depth"
            child.depth = parent_depth  # the depth the error reports
        elif parent.run_id in self.canceled or (parent.ctx is not None and parent.ctx.canceled):
            child.end = "not_started"
        else:
            child.started = child.alive = True
            self.events.append(("spawned_child", child, parent.run_id))
        return child

    def end(self, run: Run, kind: str) -> None:
        run.alive = False
        run.end = kind
        if kind == "ok":
            self.events.append(("child_completed", run, run.parent_id))
        elif kind == "fail":
            self.events.append(("child_failed", run, run.parent_id, f"fail {run.key}"))
        elif kind == "killed" and run.depth < self.max_depth:
            # Its cleanup spawn starts: the run is neither ended nor cancelled yet.
            self.events.append(("spawned_child", ("probe", run.key), run.run_id))
            self.events.append(("child_completed", ("probe", run.key), run.run_id))

    def settle(self) -> None:
        """A released runner returns once the children it spawned in its task have ended."""
        changed = True
        while changed:
            changed = False
            for run in self.runs:
                if (
                    run.alive
                    and run.released == "ok"
                    and not any(c.alive and c.mode == "task" for c in self.children(run))
                ):
                    self.end(run, "ok")
                    changed = True

    def release(self, run: Run, action: str) -> None:
        run.released = action
        if action == "fail":
            # Raising inside its nursery cancels what it spawned in its task, and theirs.
            todo = [c for c in self.children(run) if c.alive and c.mode == "task"]
            while todo:
                victim = todo.pop()
                todo += [c for c in self.children(victim) if c.alive and c.mode == "task"]
                self.end(victim, "killed")
            self.end(run, "fail")
        self.settle()

    def cancel(self, target_id: uuid.UUID, reason: str) -> list[uuid.UUID]:
        """What cancel_with_children(target_id) does; returns the ids it reports."""
        node = next((r for r in self.runs if r.started and r.run_id == target_id), None)
        parent_id = node.parent_id if node is not None and node.alive else None
        order: list[tuple[Run | None, uuid.UUID, uuid.UUID | None, int]] = [
            (node, target_id, parent_id, 0)
        ]
        index = 0
        while index < len(order):
            current, current_id, _, depth = order[index]
            index += 1
            if current is None:
                continue
            for child in self.children(current):
                if child.alive or self.retained(child):
                    assert child.run_id is not None
                    order.append((child, child.run_id, current_id, depth + 1))
        listed = [
            (run, run_id, parent, depth)
            for run, run_id, parent, depth in order
            if run_id not in self.canceled
            and not (depth and run is not None and self.retained(run))
        ]
        stopped = [
            run for run, *_ in listed if run is not None and run.alive and run.mode != "root"
        ]
        for _, run_id, parent, depth in listed:
            self.canceled[run_id] = reason
            self.cancel_events.append((run_id, parent, depth, reason))
        for run in stopped:
            run.reason = reason
            # Only the outermost cancelled scope catches the Cancelled.
            raises = run.mode == "task" and run.parent in stopped
            self.end(run, "canceled_raise" if raises else "canceled")
        self.settle()
        return [run_id for _, run_id, _, _ in listed]


def check_step(
    model: Model,
    spawner: SubpipelineSpawner,
    tracker: ChildRunTracker,
    sink: RecordingEventSink,
    mark: int,
    step: str,
) -> None:
    """The synchronous invariants, after all tasks have blocked."""
    running = [r for r in model.runs if r.alive and r.mode != "root"]
    assert tracker._parents == {r.run_id: r.parent_id for r in running}, step
    expected_children: dict[uuid.UUID | None, set[uuid.UUID | None]] = {}
    for r in running:
        expected_children.setdefault(r.parent_id, set()).add(r.run_id)
    assert {p: set(c) for p, c in tracker._children.items()} == expected_children, step
    assert spawner.running_children == {r.run_id for r in running}, step
    assert set(spawner._retained) == {r.run_id for r in model.runs if model.retained(r)}, step
    for run in model.runs:
        if run.mode != "root":
            check_run(model, run, step)
    check_events(model, sink, mark, step)


def check_run(model: Model, run: Run, step: str) -> None:
    where = f"{step}: run {run.key} ({run.mode}, end {run.end})"
    assert run.entered == (1 if run.started else 0), where
    if run.started:
        assert run.run_id is not None, where
        assert run.exited == (not run.alive), where
    if run.alive:
        assert not run.saw_cancelled, where
    elif run.started:
        assert run.ctx is not None, where
        assert run.saw_cancelled == (run.end in CANCEL_ENDS), where
        assert run.ctx.canceled == (run.end in CANCEL_ENDS), where
    outcome = run.outcome
    if run.end == "depth":
        assert isinstance(outcome, MaxDepthExceededError), where
        assert (outcome.current_depth, outcome.max_depth) == (run.depth, model.max_depth), where
        assert outcome.parent_run_id == run.parent_id, where
    elif run.mode == "detached":
        assert outcome == (None if run.end == "not_started" else run.run_id), where
    elif run.end == "not_started":
        assert isinstance(outcome, SubpipelineResult), where
        assert not outcome.success, where
        assert outcome.error == (
            f"Parent run {run.parent_id} was canceled; the child pipeline was not started"
        ), where
    elif run.alive:
        assert outcome == PENDING, where
    elif run.end in ("canceled_raise", "killed"):
        assert outcome == CANCELLED, where
    else:
        assert isinstance(outcome, SubpipelineResult), where
        assert outcome.child_run_id == run.run_id, where
        if run.end == "ok":
            assert (outcome.success, outcome.data) == (True, {"key": run.key}), where
        elif run.end == "fail":
            assert (outcome.success, outcome.error) == (False, f"fail {run.key}"), where
        else:
            assert run.end == "canceled", where
            assert not outcome.success, where
            assert outcome.error == f"Child pipeline canceled: {run.reason}", where
    if run.saw_cancelled:
        # cancel_with_children marks the context before the runner can see the
        # Cancelled; a runner cancelled by its parent's failure is marked after it.
        assert run.canceled_when_seen == (run.end != "killed"), where
        # The cleanup spawn: refused at max depth, not started under a cancelled
        # run, started when only the trio scope of its parent's runner was cancelled.
        probe = run.probe
        if run.depth >= model.max_depth:
            assert isinstance(probe, MaxDepthExceededError), where
            assert probe.current_depth == run.depth, where
        elif run.end == "killed":
            assert isinstance(probe, SubpipelineResult), where
            assert (probe.success, probe.data) == (True, {"probe": run.key}), where
        else:
            assert isinstance(probe, SubpipelineResult), where
            assert not probe.success, where
            assert probe.error == (
                f"Parent run {run.run_id} was canceled; the child pipeline was not started"
            ), where
            assert run.probe_id is None, where  # its runner was never called


def check_events(model: Model, sink: RecordingEventSink, mark: int, step: str) -> None:
    probes = {r.probe_id: ("probe", r.key) for r in model.runs if r.probe_id is not None}
    runs = {r.run_id: r for r in model.runs if r.mode != "root" and r.run_id is not None}
    got: Counter[tuple[Any, ...]] = Counter()
    got_canceled: list[tuple[Any, ...]] = []
    for event_type, data in sink.events[mark:]:
        assert data is not None
        short = event_type.removeprefix("pipeline.")
        if short == "canceled":
            parent = data["parent_run_id"]
            got_canceled.append(
                (
                    uuid.UUID(data["pipeline_run_id"]),
                    None if parent is None else uuid.UUID(parent),
                    data["cascade_depth"],
                    data["reason"],
                )
            )
            continue
        child_id = uuid.UUID(data["child_run_id"])
        who: Any = probes.get(child_id) or runs.get(child_id) or child_id
        item: tuple[Any, ...] = (short, who, uuid.UUID(data["parent_run_id"]))
        if short == "child_failed":
            item += (data["error_message"],)
        got[item] += 1
    assert got == Counter(model.events), step
    assert sorted(got_canceled, key=repr) == sorted(model.cancel_events, key=repr), step
    assert [run_id for run_id, *_ in got_canceled] == model.returned, step
    depths = [depth for _, _, depth, _ in got_canceled]
    assert depths == sorted(depths, reverse=True), f"{step}: not deepest first: {depths}"


def run_example(data: st.DataObject) -> None:
    max_depth = data.draw(st.sampled_from([3, 2, 4, 1]), label="max_depth")
    steps = data.draw(st.integers(1, 50), label="steps")
    sink = RecordingEventSink()
    tracker = ChildRunTracker()
    spawner = SubpipelineSpawner(child_tracker=tracker, max_depth=max_depth)
    counter = TaskLedger()

    def make_runner(run: Run) -> Any:
        async def probe_runner(ctx: PipelineContext) -> dict[str, int]:
            run.probe_id = ctx.pipeline_run_id
            await trio.lowlevel.checkpoint()
            return {"probe": run.key}

        async def runner(ctx: PipelineContext) -> dict[str, int]:
            run.entered += 1
            run.ctx = ctx
            run.run_id = ctx.pipeline_run_id
            try:
                async with trio.open_nursery() as nursery:
                    run.nursery = nursery
                    await run.release.wait()
                    if run.released == "fail":
                        raise ValueError(f"fail {run.key}")
            except BaseException as exc:
                if only_cancelled(exc):
                    run.saw_cancelled = True
                    run.canceled_when_seen = ctx.canceled
                    with trio.CancelScope(shield=True):
                        try:
                            run.probe = await spawner.spawn(
                                "probe", ctx, CORRELATION, "cleanup", probe_runner
                            )
                        except MaxDepthExceededError as error:
                            run.probe = error
                raise
            finally:
                run.exited = True
            return {"key": run.key}

        return runner

    async def spawn_in_task(run: Run, parent_ctx: PipelineContext) -> None:
        try:
            run.outcome = await spawner.spawn(
                f"p{run.key}", parent_ctx, CORRELATION, f"s{run.key}", make_runner(run)
            )
        except MaxDepthExceededError as error:
            run.outcome = error
        except BaseException as exc:
            if only_cancelled(exc):
                run.outcome = CANCELLED
            raise

    async def main() -> None:
        set_event_sink(sink)
        baseline = set(counter.alive)
        # Two roots: cancelling one leaves the other to grow.
        roots = [
            Run(key=key, parent=None, mode="root", depth=0, started=True, alive=True)
            for key in (0, 1)
        ]
        for root in roots:
            root.ctx = create_test_pipeline_context()
            root.run_id = root.ctx.pipeline_run_id
        model = Model(max_depth, roots)

        async def check(step: str, mark: int) -> None:
            await trio.testing.wait_all_tasks_blocked()
            check_step(model, spawner, tracker, sink, mark, step)
            running = sum(1 for r in model.runs if r.alive and r.mode != "root")
            assert len(counter.alive - baseline) == running, step
            ids = {r.run_id for r in model.runs if r.run_id is not None} | {UNKNOWN}
            for run_id in ids:
                assert await spawner.is_canceled(run_id) == (run_id in model.canceled), step
            model.events.clear()
            model.cancel_events.clear()
            model.returned = []

        async def spawn(parent: Run, mode: str, root_nursery: trio.Nursery) -> None:
            assert parent.ctx is not None
            run = model.spawn(parent, mode)
            if mode == "detached":
                try:
                    run.outcome = await spawner.spawn_detached(
                        f"p{run.key}",
                        parent.ctx,
                        CORRELATION,
                        f"s{run.key}",
                        make_runner(run),
                        nursery=detached,
                    )
                except MaxDepthExceededError as error:
                    run.outcome = error
            else:
                # In the parent's own task tree, as a stage would; the root and
                # ended runs have no runner nursery: the test's stands in.
                host = parent.nursery if parent.alive and parent.nursery else root_nursery
                host.start_soon(spawn_in_task, run, parent.ctx)

        async with trio.open_nursery() as detached, trio.open_nursery() as root_nursery:
            for number in range(steps):
                mark = len(sink.events)
                live = [r for r in model.runs if r.alive]
                releasable = [r for r in live if r.mode != "root" and r.released is None]
                canceled_parents = [
                    r
                    for r in model.runs
                    if r.started
                    and not r.alive
                    and (r.run_id in model.canceled or (r.ctx is not None and r.ctx.canceled))
                ]
                canceled_parents[:0] = [r for r in roots if r.run_id in model.canceled]
                # Weighted by repetition: trees grow before they are cut down, and
                # the root (which ends every later spawn) is cancelled only now and then.
                kinds = ["spawn"] * 8 + ["cancel"] * 3 + ["cancel_root"]
                if releasable:
                    kinds += ["release"] * 4
                if canceled_parents:
                    kinds.append("spawn_under_canceled")
                kind = data.draw(st.sampled_from(kinds), label="kind")
                if kind in ("spawn", "spawn_under_canceled"):
                    # Deeper runs are drawn more often, to reach max_depth.
                    parents = (
                        [r for r in live for _ in range(r.depth + 1)]
                        if kind == "spawn"
                        else canceled_parents
                    )
                    parent = data.draw(st.sampled_from(parents), label="parent")
                    mode = data.draw(st.sampled_from(["task", "detached"]), label="mode")
                    step = f"step {number}: {kind} {mode} under run {parent.key}"
                    await spawn(parent, mode, root_nursery)
                elif kind == "release":
                    # Parents more often than leaves: a released parent waits for the
                    # children in its task, and leaves its detached ones running.
                    run = data.draw(
                        st.sampled_from(
                            [r for r in releasable for _ in range(1 + 2 * model.running_below(r))]
                        ),
                        label="run",
                    )
                    action = data.draw(st.sampled_from(["ok", "ok", "fail"]), label="action")
                    step = f"step {number}: release run {run.key} ({action})"
                    model.release(run, action)
                    run.release.set()
                else:
                    # Runs with more running below them more often (ended ones still
                    # holding a detached descendant among them); an unknown id.
                    children = [r for r in model.runs if r.mode != "root" and r.started]
                    targets = [
                        *(
                            r
                            for r in (roots if kind == "cancel_root" else children)
                            for _ in range(1 + r.alive + model.running_below(r))
                        ),
                        None,
                    ]
                    target = data.draw(st.sampled_from(targets), label="target")
                    target_id = UNKNOWN if target is None else target.run_id
                    assert target_id is not None
                    step = f"step {number}: cancel {'unknown' if target is None else target.key}"
                    expected = model.cancel(target_id, f"reason{number}")
                    returned = await spawner.cancel_with_children(target_id, f"reason{number}")
                    # Within a level the order is the spawner's (registration order);
                    # check_events checks the events come in this order, deepest first.
                    assert sorted(returned) == sorted(expected), step
                    model.returned = returned
                await check(step, mark)
            # Release everything still running, one run at a time.
            while releasable := [
                r for r in model.runs if r.alive and r.mode != "root" and r.released is None
            ]:
                mark = len(sink.events)
                model.release(releasable[-1], "ok")
                releasable[-1].release.set()
                await check(f"final release of run {releasable[-1].key}", mark)
        # Both nurseries have closed.
        assert counter.alive - baseline == set()
        assert tracker._parents == {}
        assert tracker._children == {}
        assert spawner.running_children == frozenset()
        assert spawner._retained == {}
        metrics = await tracker.get_metrics()
        assert (metrics["active_parents"], metrics["active_children"]) == (0, 0)
        assert metrics["total_relationships"] == 0
        # Never pruned: every id ever cancelled stays (docs/subpipelines.md says so).
        assert spawner._canceled_runs == model.canceled

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0), instruments=[counter])


@settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_spawner_and_tracker_follow_the_model_step_by_step(data: st.DataObject) -> None:
    run_example(data)
