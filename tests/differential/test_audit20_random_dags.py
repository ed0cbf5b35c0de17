"""Random stage DAGs on the reference 0.9.1 (asyncio) and on stageflow_trio (trio) (audit 20).

Hypothesis draws a DAG of 1-8 stages, each depending only on earlier ones (so it is acyclic),
given to the graph in a shuffled order. Each stage has a kind, an outcome (see ``GOES_ON`` and
``STOPS_RUN``), may sleep before returning, and may be ``conditional`` (skipped when an input
carries a truthy ``skip_reason``, which ok stages may set). One stage may be a guard with a
retry policy that fails a drawn number of times. The same DAG runs on both
``UnifiedStageGraph``s and on both legacy ``StageGraph``s through the differential harness's
sides (``tests/differential/harness.py``); the outcomes (results, or the error with its stage,
message and cause), what each stage read from its inputs and the sink's events are compared,
minus the divergences parity.md documents (each bridged where it is named).

Time is virtual on both sides: ours runs under trio's MockClock, the reference under an asyncio
loop whose clock jumps to its next timer when nothing is ready. Stage ``i`` sleeps ``2**i / 8``
seconds or not at all, so two stages that do not wait on each other seldom end at the same
moment. When they do, it is a genuine race (asyncio hands back finished tasks as a set, trio
shuffles its run batches): :func:`timeline` computes when every stage starts and completes on
the virtual clock, and the comparison leaves open exactly what such a tie leaves open: which
stage stopped the run first, and what happened to a stage that started or completed at that
very moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import selectors
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stageflow_trio.lowlevel import DEFAULT_CALLS, checkpoint_budget
from tests.differential.harness import Side, normalize
from tests.differential.scenarios_core import (
    CANCEL_EVENT,
    ENGINE,
    LIFECYCLE_EVENTS,
    TERMINAL_EVENTS,
    pipeline_ctx,
    stage_ctx,
)
from tests.fakes import import_reference

import_reference()  # skips the module when the reference is not installed

KINDS = ("transform", "enrich", "route", "guard", "work", "agent")
# Outcomes that let the run go on, and outcomes that stop it; at most two stages of a graph
# get one of the latter, so that graphs often run to the end. "retry" returns
# StageOutput.retry (a completion to both graphs); "peek" reads a stage it does not depend on
# (UndeclaredDependencyError, except in a root stage, whose inputs are not strict); "bad"
# returns an int.
GOES_ON = ("ok", "ok", "dict", "none", "skip", "retry")
STOPS_RUN = ("fail", "cancel", "cancel", "raise", "peek", "bad")
ERRORS = {"ValueError": ValueError, "RuntimeError": RuntimeError, "KeyError": KeyError}
TEXTS = ("", "boom", "no route", "ünïcode")
UNIT = 1 / 8  # seconds: sums of powers of two times it are exact in floats

# Derandomized, so every run tries the same graphs; about 1.5 s per test here (the legacy
# graph's default interceptor chain makes its runs slower).
UNIFIED = settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
LEGACY = settings(UNIFIED, max_examples=150)


# --- the drawn graph ------------------------------------------------------------------------


@attrs.frozen
class StageDraw:
    name: str
    deps: tuple[str, ...]
    kind: str
    outcome: str  # one of GOES_ON or STOPS_RUN, or "guard" (see GuardDraw)
    delay: float  # virtual seconds slept before returning; 0: one checkpoint only
    conditional: bool
    text: str  # the skip / cancel reason, the failure's error, the exception's message
    skip_reason: str | None  # carried by the data of an ok stage (a router)
    error: str  # the exception class, for outcome "raise"

    @property
    def stops(self) -> bool:
        """Whether the stage, once it runs, stops a unified run (a guard: see GuardDraw)."""
        return self.outcome in STOPS_RUN and (self.outcome != "peek" or bool(self.deps))


@attrs.frozen
class GuardDraw:
    """The graph's guard: it fails its first ``failures`` runs, then returns ok."""

    name: str
    retry_stage: str  # one of its dependencies, run again after each failure
    failures: int
    same_failure: bool  # each failure has the same data: the retries stagnate
    max_attempts: int
    stagnation_limit: int


@attrs.frozen
class Dag:
    stages: tuple[StageDraw, ...]  # in dependency order: each depends on earlier ones only
    order: tuple[int, ...]  # the order of the specs given to the graph
    guard: GuardDraw | None
    # Our checkpoint budget (stageflow_trio.lowlevel.checkpoint_budget) for the run: how
    # often a task running stages one after another lets the others run; 1 is trio's own
    # switch at every checkpoint. Only the order of what happens at one moment depends on it.
    budget: int

    def spec_order(self) -> list[StageDraw]:
        return [self.stages[i] for i in self.order]


# What a stage does, one draw each (a draw costs about the same whatever the number of
# options, and drawing was most of these tests' time under coverage): the outcome with what
# it uses (an ok stage's skip_reason, a raising stage's error), and the kind, whether it
# sleeps, whether it is conditional and its text. Each part as likely as when drawn alone.
GOING_ON = [
    (outcome, skip_reason if outcome in ("ok", "dict") else None, "")
    for outcome in GOES_ON
    # Truthy only: with an empty one, which input decides depends on the completion
    # order in the reference (parity.md, "Engine", "Conditional stage whose inputs carry
    # `skip_reason` (audit 15)").
    for skip_reason in (None, None, "no route")
]
STOPPING = [
    (outcome, None, error if outcome == "raise" else "")
    for outcome in STOPS_RUN
    for error in sorted(ERRORS)
]
STYLES = [
    (kind, sleeps, conditional, text)
    for kind in KINDS
    for sleeps in (False, True, True)
    for conditional in (False, True)
    for text in TEXTS
]


@st.composite
def dags(draw: st.DrawFn) -> Dag:
    count = draw(st.integers(1, 8))
    stoppers = draw(st.sets(st.integers(0, count - 1), max_size=2))
    stages: list[StageDraw] = []
    for index in range(count):
        earlier = [s.name for s in stages]
        # Its dependencies one by one (not a permutation of every earlier stage).
        size = draw(st.integers(0, min(3, len(earlier))))
        deps: list[str] = []
        if size:
            deps = draw(
                st.lists(st.sampled_from(earlier), min_size=size, max_size=size, unique=True)
            )
        repeat = draw(st.booleans()) if deps else False
        if repeat:
            deps.append(deps[0])  # both graphs count a dependency once
        outcome, skip_reason, error = draw(
            st.sampled_from(STOPPING if index in stoppers else GOING_ON)
        )
        kind, sleeps, conditional, text = draw(st.sampled_from(STYLES))
        stages.append(
            StageDraw(
                name=f"s{index}",
                deps=tuple(deps),
                kind=kind,
                outcome=outcome,
                delay=2**index * UNIT if sleeps else 0.0,
                conditional=conditional,
                text=text,
                skip_reason=skip_reason,
                error=error,
            )
        )
    guard = None
    candidates = [i for i, s in enumerate(stages) if s.deps and i not in stoppers]
    with_guard = draw(st.booleans())
    if candidates and with_guard:
        index = draw(st.sampled_from(candidates))
        stage = stages[index] = attrs.evolve(stages[index], kind="guard", outcome="guard")
        guard = GuardDraw(
            name=stage.name,
            retry_stage=draw(st.sampled_from(stage.deps)),
            failures=draw(st.integers(0, 3)),
            same_failure=draw(st.booleans()),
            max_attempts=draw(st.integers(1, 3)),
            stagnation_limit=draw(st.integers(1, 2)),
        )
    order = draw(st.permutations(range(count)))
    budget = draw(st.sampled_from((DEFAULT_CALLS, 1, 2)))
    return Dag(tuple(stages), tuple(order), guard, budget)


# --- running a side on a virtual clock ------------------------------------------------------


class _JumpingSelector(selectors.DefaultSelector):
    """Never waits for a timer: moves its loop's clock to the timer instead."""

    def __init__(self) -> None:
        super().__init__()
        self.loop: VirtualTimeLoop | None = None

    def select(self, timeout: float | None = None) -> list[Any]:
        ready = super().select(0)
        if ready or timeout is None or timeout <= 0:
            # Nothing scheduled at all (timeout None): wait for real, as only another
            # thread (through the loop's self-pipe) can wake the loop then.
            return ready if ready or timeout is not None else super().select(None)
        assert self.loop is not None
        self.loop.now += timeout
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An asyncio loop on a virtual clock: the reference's sleeps end at once, in order."""

    def __init__(self) -> None:
        selector = _JumpingSelector()
        super().__init__(selector=selector)
        selector.loop = self
        self.now = 0.0

    def time(self) -> float:
        return self.now


Body = Callable[[Side], Awaitable[Any]]


@attrs.define
class Ran:
    """One side's run: what the body returned (or the error it raised), the sink's events."""

    outcome: Any
    events: list[Any]


def run(side_name: str, body: Body) -> Ran:
    side = Side(side_name)

    async def main() -> Any:
        try:
            return await body(side)
        except Exception as exc:  # the error is the run's outcome
            return exc

    if side_name == "ref":
        with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
            outcome = runner.run(main())
    else:
        outcome = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    return Ran(outcome, normalize([list(e) for e in side.sink.events]))


def without(divergences: Any, events: list[Any]) -> list[Any]:
    """``events`` without what the harness's divergences drop from our side."""
    result: dict[str, Any] = {"outcome": None, "events": events}
    for divergence in divergences:
        result = divergence.adjust(result)
    return list(result["events"])


def view(results: Any) -> dict[str, Any]:
    """A results dict as plain data: name -> [status, data, error]."""
    return {
        name: normalize([getattr(r.status, "value", r.status), dict(r.data), r.error])
        for name, r in results.items()
    }


def returned(
    out: Any, stage: StageDraw, data: dict[str, Any], inputs: Any, attempt: int, dag: Dag
) -> Any:
    """What ``stage`` returns (or raises) on its ``attempt``-th run; ``out`` is StageOutput."""
    outcome = stage.outcome
    if outcome == "guard":
        guard = dag.guard
        assert guard is not None
        if attempt <= guard.failures:
            failure = {} if guard.same_failure else {"attempt": attempt}
            return out.fail(error=stage.text or None, data=failure)
        outcome = "ok"
    if outcome == "ok":
        return out.ok(**data)
    if outcome == "dict":
        return data
    if outcome == "none":
        return None
    if outcome == "skip":
        return out.skip(reason=stage.text)
    if outcome == "retry":
        return out.retry(error=stage.text)
    if outcome == "fail":
        return out.fail(error=stage.text or None)
    if outcome == "cancel":
        return out.cancel(reason=stage.text)
    if outcome == "peek":
        return out.ok(ghost=inputs.get_from("ghost", "v") if inputs is not None else None)
    if outcome == "bad":
        return 42
    raise ERRORS[stage.error](stage.text)


# --- the unified graph ----------------------------------------------------------------------


def stage_runner(side: Side, dag: Dag, stage: StageDraw, seen: dict[str, Any]) -> Any:
    out = side.mod("core").StageOutput
    attempts = 0

    async def runner(ctx: Any) -> Any:
        nonlocal attempts
        attempts += 1
        inputs = ctx.inputs
        values = [inputs.get_from(dep, "v") for dep in stage.deps]
        # A guard's retries see the same inputs each time: the last run's record stays.
        seen[stage.name] = {
            "inputs": sorted(inputs.prior_outputs),
            "v": values,
            "has": [inputs.has_output(dep) for dep in stage.deps],
            "first_v": inputs.get("v"),
        }
        if stage.delay:
            await side.sleep(stage.delay)
        else:
            await side.checkpoint()
        data: dict[str, Any] = {"v": f"{stage.name}({','.join(map(str, values))})"}
        if stage.skip_reason is not None:
            data["skip_reason"] = stage.skip_reason
        return returned(out, stage, data, inputs, attempts, dag)

    return runner


def unified_body(dag: Dag, seen: dict[str, Any]) -> Body:
    async def body(side: Side) -> Any:
        graph_mod, core = side.mod("pipeline.dag"), side.mod("core")
        specs = [
            graph_mod.UnifiedStageSpec(
                name=stage.name,
                runner=stage_runner(side, dag, stage, seen),
                kind=core.StageKind(stage.kind),
                dependencies=stage.deps,
                conditional=stage.conditional,
            )
            for stage in dag.spec_order()
        ]
        strategy = None
        if dag.guard is not None:
            retry = side.mod("pipeline.guard_retry")
            policy = retry.GuardRetryPolicy(
                retry_stage=dag.guard.retry_stage,
                max_attempts=dag.guard.max_attempts,
                stagnation_limit=dag.guard.stagnation_limit,
            )
            strategy = retry.GuardRetryStrategy({dag.guard.name: policy})
        graph = graph_mod.UnifiedStageGraph(specs, guard_retry_strategy=strategy)
        budget = (
            checkpoint_budget(calls=dag.budget, seconds=math.inf)
            if side.name == "ours"
            else contextlib.nullcontext()
        )
        try:
            with budget:
                results = await graph.run(stage_ctx(side))
            return {"results": view(results)}
        except graph_mod.UnifiedPipelineCancelled as exc:
            return {
                "raised": type(exc).__name__,
                "stage": exc.stage,
                "message": normalize(str(exc)),
                "reason": exc.reason,
                "results": view(exc.results),
            }
        except graph_mod.UnifiedStageExecutionError as exc:
            return {
                "raised": type(exc).__name__,
                "stage": exc.stage,
                "message": normalize(str(exc)),
                "original": [type(exc.original).__name__, str(exc.original)],
                # A raised error is the cause; a FAIL output's RuntimeError has none.
                "cause_is_original": exc.__cause__ is exc.original,
            }

    return body


@attrs.frozen
class Timeline:
    """When each stage starts and completes on the virtual clock, as far as the run goes."""

    starts: dict[str, list[float]]  # each run of its body (none for a skipped conditional)
    completions: dict[str, list[float]]  # each output it gives (a guard's retries: several)
    ancestors: dict[str, frozenset[str]]
    stop: float | None  # when the first stage that stops the run completes (None: none does)
    first: frozenset[str]  # the stages that may be the one to stop it (two or more: a tie)

    def started_by_stop(self, name: str) -> bool:
        starts = self.starts[name]
        return bool(starts) and self.stop is not None and starts[0] <= self.stop

    def completed_by_stop(self, name: str) -> bool:
        return self.stop is not None and self.completions[name][0] <= self.stop

    def moments(self, name: str) -> set[float]:
        return {*self.starts[name], *self.completions[name]}

    def open_at_stop(self, name: str, first: str | None) -> bool:
        """Whether what ``name`` did is left to a race: it starts or completes at the stop.

        Not for the stage that stopped the run (``first``, when both sides agree on it),
        nor for the first run of its ancestors, which came before it.
        """
        at = self.moments(name)
        if name == first:
            return False
        if first is not None and name in self.ancestors[first]:
            at -= {*self.starts[name][:1], *self.completions[name][:1]}
        return self.stop in at


def timeline(dag: Dag) -> Timeline:
    """Start and completion times of every stage, and the stages that stop the run first.

    Times are computed as if no stage stopped the run; only those up to the stop are read.
    """
    by_name = {s.name: s for s in dag.stages}
    release: dict[str, float] = {}  # when a stage's dependants may start
    starts: dict[str, list[float]] = defaultdict(list)
    completions: dict[str, list[float]] = defaultdict(list)
    ancestors: dict[str, frozenset[str]] = {}
    skipped: set[str] = set()
    routes: set[str] = set()  # stages whose output carries a skip_reason
    stops: dict[str, float] = {}
    for stage in dag.stages:
        name = stage.name
        begin = max((release[d] for d in stage.deps), default=0.0)
        ancestors[name] = frozenset(stage.deps).union(*(ancestors[d] for d in stage.deps))
        if stage.conditional and routes.intersection(stage.deps):
            skipped.add(name)  # skipped at once, without running its body
            completions[name].append(begin)
            release[name] = begin
            continue
        now = begin
        attempt = 0
        while True:
            attempt += 1
            starts[name].append(now)
            now += stage.delay
            completions[name].append(now)
            guard = dag.guard
            if guard is None or guard.name != name or attempt > guard.failures:
                break
            # Failure number ``attempt``: the retries are exhausted (stagnation needs two
            # equal failures in a row, so its count starts at the second), else the retry
            # stage runs again (a skipped conditional one at once), then the guard.
            hits = attempt - 1 if guard.same_failure else 0
            if attempt >= guard.max_attempts or hits >= guard.stagnation_limit:
                stops[name] = now
                break
            retry = guard.retry_stage
            if retry not in skipped:
                starts[retry].append(now)
                now += by_name[retry].delay
            completions[retry].append(now)
        release[name] = now
        if stage.skip_reason is not None:
            routes.add(name)
        if stage.stops:
            stops[name] = now
    if not stops:
        return Timeline(starts, completions, ancestors, None, frozenset())
    stop = min(stops.values())
    # A stage behind another one that stops the run at the same moment never runs.
    first = {name for name, at in stops.items() if at == stop}
    first = {name for name in first if not ancestors[name] & first}
    return Timeline(starts, completions, ancestors, stop, frozenset(first))


def event_stage(event: list[Any]) -> str:
    """The stage an event is about: ``stage.<name>.<what>``, a guard_retry event's guard."""
    parts = str(event[0]).split(".")
    if parts[0] == "guard_retry":
        return str(event[1]["guard"])
    return parts[1] if len(parts) == 3 and parts[0] == "stage" else ""


# ``ctx.inputs.get(key)`` with several inputs carrying the key: the reference answers with the
# input that completed first, ours with the first dependency in declared order (parity.md,
# "Engine", "`StageInputs.get(key)` and `prior_outputs` order in UnifiedStageGraph stages
# (audit 20)"). Each side is checked against its own rule, then the answer is left out.


def first_input_in_dependency_order(seen: dict[str, Any]) -> None:
    for record in seen.values():
        found = [v for v in record["v"] if v is not None]
        assert record.pop("first_v") == (found[0] if found else None), record


def first_input_to_complete(seen: dict[str, Any], dag: Dag, time: Timeline) -> None:
    deps = {s.name: s.deps for s in dag.stages}
    for name, record in seen.items():
        # The reference's inputs are in the order they first completed; inputs that
        # completed at the same moment may come in either order.
        ends = {
            v: time.completions[dep][0]
            for dep, v in zip(deps[name], record["v"], strict=True)
            if v is not None
        }
        firsts = {v for v, end in ends.items() if end == min(ends.values())}
        assert record.pop("first_v") in (firsts or {None}), (name, record, ends)


def ended_with(ran: Ran, dag: Dag) -> str:
    """The error a stage's outcome ends a unified run with."""
    stage = next(s for s in dag.stages if s.name == ran.outcome["stage"])
    return "UnifiedPipelineCancelled" if stage.outcome == "cancel" else "UnifiedStageExecutionError"


def compare_unified(dag: Dag) -> None:
    ref_seen: dict[str, Any] = {}
    our_seen: dict[str, Any] = {}
    ref = run("ref", unified_body(dag, ref_seen))
    ours = run("ours", unified_body(dag, our_seen))
    # Our extra lifecycle events (started / completed / failed / cancelled) and the
    # pipeline-level ones: parity.md, "Engine", "Lifecycle events from UnifiedStageGraph",
    # "Pipeline-level terminal events (issue 13, defect 10)", "Pipeline cancellation event".
    our_events = without((LIFECYCLE_EVENTS, TERMINAL_EVENTS, CANCEL_EVENT), ours.events)
    time = timeline(dag)
    first_input_in_dependency_order(our_seen)
    first_input_to_complete(ref_seen, dag, time)

    if time.stop is None:
        # Nothing stops the run: everything is fixed, up to the order of the events of
        # stages that run side by side.
        assert ours.outcome == ref.outcome
        assert set(ref.outcome["results"]) == {s.name for s in dag.stages}
        assert our_seen == ref_seen
        assert sorted(our_events, key=repr) == sorted(ref.events, key=repr)
        return

    for ran in (ref, ours):
        assert isinstance(ran.outcome, dict), ran.outcome
        assert ran.outcome.get("stage") in time.first, (ran.outcome, time.first)
        assert ran.outcome["raised"] == ended_with(ran, dag), ran.outcome
    # Both sides stopped for the same stage, or for two that completed at the same moment.
    agreed = ref.outcome["stage"] if ours.outcome["stage"] == ref.outcome["stage"] else None
    fixed = {s.name for s in dag.stages if not time.open_at_stop(s.name, agreed)}

    ref_outcome, our_outcome = dict(ref.outcome), dict(ours.outcome)
    ref_results = ref_outcome.pop("results", None)
    our_results = our_outcome.pop("results", None)
    if agreed is not None:
        assert our_outcome == ref_outcome
    # A cancelled run's results: the stages that completed before the stop, and the one
    # that stopped it (it completed too).
    for results in (ref_results, our_results):
        if results is None:
            continue
        got = set(results) & fixed
        assert got == {n for n in fixed if time.completed_by_stop(n)}, (got, results)
    if ref_results is not None and our_results is not None:
        both = set(ref_results) & set(our_results) & fixed
        assert {n: our_results[n] for n in both} == {n: ref_results[n] for n in both}

    # What each stage read from its inputs: the same for each stage both sides started.
    for seen in (ref_seen, our_seen):
        assert set(seen) & fixed == {n for n in fixed if time.started_by_stop(n)}, seen
    both = set(ref_seen) & set(our_seen)
    assert {n: our_seen[n] for n in both} == {n: ref_seen[n] for n in both}

    def settled(events: list[Any]) -> list[Any]:
        return sorted((e for e in events if event_stage(e) in fixed), key=repr)

    assert settled(our_events) == settled(ref.events)


@UNIFIED
@given(dag=dags())
def test_unified_graphs_agree_on_random_dags(dag: Dag) -> None:
    compare_unified(dag)


# --- the legacy graph -----------------------------------------------------------------------


def legacy_body(dag: Dag) -> Body:
    """The same stages as legacy stage classes (they read no inputs: the graph has none).

    A guard has no retries here: it fails once if it fails at all.
    """

    async def body(side: Side) -> Any:
        graph_mod, out = side.mod("pipeline.dag"), side.mod("core").StageOutput

        def stage_class(stage: StageDraw) -> type:
            class Stage:
                async def execute(self, ctx: Any) -> Any:
                    if stage.delay:
                        await side.sleep(stage.delay)
                    else:
                        await side.checkpoint()
                    return returned(out, stage, {"v": stage.name}, None, 1, dag)

            return Stage

        specs = [
            graph_mod.StageSpec(
                name=stage.name,
                runner=stage_class(stage),
                dependencies=stage.deps,
                conditional=stage.conditional,  # ignored by both legacy graphs
            )
            for stage in dag.spec_order()
        ]
        return view(await graph_mod.StageGraph(specs).run(pipeline_ctx(side)))

    return body


@LEGACY
@given(dag=dags())
def test_legacy_graphs_agree_on_random_dags(dag: Dag) -> None:
    # A failed stage does not stop a legacy run: every stage runs, nothing is left to a race.
    ref = run("ref", legacy_body(dag))
    ours = run("ours", legacy_body(dag))
    assert ours.outcome == ref.outcome
    assert set(ref.outcome) == {s.name for s in dag.stages}
    # Our pipeline_completed: parity.md, "Engine", "Pipeline-level terminal events
    # (issue 13, defect 10)".
    our_events = without((TERMINAL_EVENTS,), ours.events)
    assert sorted(our_events, key=repr) == sorted(ref.events, key=repr)


# --- the divergence the random graphs found, and the virtual asyncio clock ------------------


def fan_in_reading_get() -> Body:
    """``slow`` and ``fast`` feed ``join``, which reads ``v`` with ``ctx.inputs.get``."""

    async def body(side: Side) -> Any:
        graph_mod, out = side.mod("pipeline.dag"), side.mod("core").StageOutput

        async def slow(ctx: Any) -> Any:
            await side.sleep(2)
            return out.ok(v="slow")

        async def fast(ctx: Any) -> Any:
            await side.sleep(1)
            return out.ok(v="fast")

        async def join(ctx: Any) -> Any:
            return out.ok(v=ctx.inputs.get("v"), order=list(ctx.inputs.prior_outputs))

        specs = [
            graph_mod.UnifiedStageSpec(name="slow", runner=slow),
            graph_mod.UnifiedStageSpec(name="fast", runner=fast),
            graph_mod.UnifiedStageSpec(name="join", runner=join, dependencies=("slow", "fast")),
        ]
        results = await graph_mod.UnifiedStageGraph(specs).run(stage_ctx(side))
        return dict(results["join"].data)

    return body


def test_inputs_get_takes_the_first_dependency_not_the_first_to_complete() -> None:
    # parity.md, "Engine", "`StageInputs.get(key)` and `prior_outputs` order in
    # UnifiedStageGraph stages (audit 20)".
    assert run("ref", fan_in_reading_get()).outcome == {
        "v": "fast",
        "order": ["fast", "slow"],
    }
    assert run("ours", fan_in_reading_get()).outcome == {
        "v": "slow",
        "order": ["slow", "fast"],
    }


def test_the_parity_rows_this_file_bridges_exist() -> None:
    # The rows named in comments above (the harness's own test checks its Divergences').
    parity = (Path(__file__).resolve().parents[2] / "docs" / "parity.md").read_text("utf-8")
    engine = parity.split(f"## {ENGINE}\n", 1)[1].split("\n## ", 1)[0]
    for row in (
        "Conditional stage whose inputs carry `skip_reason` (audit 15)",
        "`StageInputs.get(key)` and `prior_outputs` order in UnifiedStageGraph stages (audit 20)",
    ):
        assert f"\n| {row} |" in engine, row


def test_virtual_time_loop_runs_timers_in_order_without_waiting() -> None:
    async def main() -> Any:
        loop = asyncio.get_running_loop()
        order: list[tuple[str, float]] = []

        async def sleeper(name: str, seconds: float) -> None:
            await asyncio.sleep(seconds)
            order.append((name, loop.time()))

        await asyncio.gather(sleeper("late", 16.0), sleeper("early", 0.125), sleeper("now", 0))
        try:
            await asyncio.wait_for(asyncio.sleep(60), timeout=30)
        except TimeoutError:
            order.append(("timeout", loop.time()))
        return order

    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        assert runner.run(main()) == [
            ("now", 0.0),
            ("early", 0.125),
            ("late", 16.0),
            ("timeout", 46.0),
        ]
