"""A model-based fuzz of UnifiedStageGraph runs: cancellation and event semantics.

Random DAGs (1-8 stages, random dependencies, GUARD stages with retry policies,
conditional stages), random stage behaviours (sleeps in virtual time, bare
checkpoints, budgeted bag writes, every way a stage can end), random built-in
interceptors (timeout, retry), a recording sink and a random external
cancellation (an outer cancel scope or deadline, the run's token,
``PipelineContext.mark_canceled``; at a virtual time, or from inside a stage after
a number of checkpoints). Every example checks what docs/engine.md,
docs/events.md and docs/cancellation.md promise:

- each ``stage.{name}.started`` is followed by exactly one terminal event
  (completed / failed / skipped / cancelled) before the stage starts again;
  only a skipped conditional stage ends without starting;
- exactly one pipeline-level terminal event, the run's last event, matching the
  outcome (results <-> ``pipeline_completed``, ``UnifiedStageExecutionError``
  <-> ``pipeline_failed`` naming the stage, ``UnifiedPipelineCancelled`` <->
  ``pipeline_cancelled`` with the same stage and reason, outer ``Cancelled`` <->
  ``pipeline_cancelled``), and an outcome the stages' behaviours and the external
  cancellation can explain;
- ``trio.Cancelled`` from an outer scope propagates and the scope catches it;
- no task the run started outlives it, and nothing is emitted after it;
- a cancelled budgeted write stores nothing, a completed one is stored, and a
  write right after an explicit ``cancel()`` raises ``Cancelled``;
- no stage starts in a task after that task cancelled the run from inside a
  stage (the engine's budgeted checkpoint between two inline stages sees it);
- polling code sees a token's or a context's cancel (``ctx.is_cancelled``);
- each stage's context is the one ``StageContext(...)`` makes (equal, same hash
  and repr), as ``_engine_stage_context`` promises;
- cleanup callbacks all ran once, last registered first, before the run ended;
- a stage interrupted because the run stopped itself reports the run's reason,
  and a run cancelled by a stage names the stage that stopped it;
- without external cancellation or failing stages, the budget in use (the
  default, or ``calls`` of 2, 3 or 64 with ``seconds=inf``, entered at a random
  position of the budget) and ``checkpoint_budget(calls=1)`` give the same
  results and the same per-stage event sequences.

Runs on trio's MockClock (autojump), so it is deterministic and fast.
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass, field
from typing import Any

import trio
import trio.testing
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from stageflow_trio.context import ContextBag, OutputBag
from stageflow_trio.core import StageKind
from stageflow_trio.core.stage_context import StageCancellationRequested, StageContext
from stageflow_trio.core.stage_enums import StageStatus
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.lowlevel import checkpoint_budget, cooperative_checkpoint
from stageflow_trio.pipeline import GuardRetryPolicy, GuardRetryStrategy
from stageflow_trio.pipeline.cancellation import CancellationToken
from stageflow_trio.pipeline.dag import (
    UnifiedPipelineCancelled,
    UnifiedStageExecutionError,
    UnifiedStageGraph,
    UnifiedStageSpec,
)
from stageflow_trio.pipeline.interceptors import BaseInterceptor, TimeoutInterceptor
from stageflow_trio.pipeline.retry import JitterStrategy, RetryInterceptor
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.testing import RecordingEventSink, reset_globals
from tests.pipeline.graph_helpers import stage_ctx

TERMINAL = ("completed", "failed", "skipped", "cancelled")
PIPELINE_TERMINAL = ("pipeline_completed", "pipeline_failed", "pipeline_cancelled")
# Ends a stage can have; those in FAILING may make the run fail or cancel.
ENDS = ("ok", "dict", "none", "skip", "cancel", "fail", "raise", "request_cancel", "transient")
FAILING = {"cancel", "fail", "raise", "request_cancel", "transient", "bad_type"}


# -- the model --------------------------------------------------------------


@dataclass(frozen=True)
class Behaviour:
    """What one stage does each time it runs."""

    # ("sleep", s) | ("yield", n) | ("write", 0) | ("cleanup", s) | ("nursery", s)
    # | ("fail_after", s): see the ``steps`` strategy
    steps: tuple[tuple[str, float], ...]
    end: str
    transient_failures: int = 0  # "transient": raise ConnectionError this many times first
    guard_failures: int = 0  # a GUARD with a policy: return fail this many times first


@dataclass(frozen=True)
class Scenario:
    deps: dict[str, tuple[str, ...]]
    kinds: dict[str, StageKind]
    conditional: dict[str, bool]
    behaviours: dict[str, Behaviour]
    policies: dict[str, GuardRetryPolicy]
    interceptors: str  # "none" | "timeout" | "retry" | "both"
    timeout_ms: int  # ctx.data["_timeout_ms"] (PipelineContext runs)
    pipeline_ctx: bool
    external: tuple[str, float]  # (kind, when)


sleeps = st.sampled_from([0, 0.25, 0.5, 1, 2, 3, 5])
steps = st.one_of(
    st.tuples(st.just("sleep"), sleeps),
    st.tuples(st.just("yield"), st.integers(1, 4).map(float)),
    st.tuples(st.just("write"), st.just(0.0)),
    # a cleanup callback that takes this long (shielded, bounded by cleanup_timeout)
    st.tuples(st.just("cleanup"), sleeps),
    # a nursery of the stage's own: two children sleeping this long
    st.tuples(st.just("nursery"), sleeps),
    # trio.fail_after(1) around a sleep this long (TooSlowError fails the stage)
    st.tuples(st.just("fail_after"), sleeps),
)


@st.composite
def behaviours(draw: st.DrawFn) -> Behaviour:
    if draw(st.integers(0, 5)):
        end = draw(st.sampled_from([e for e in ENDS if e not in FAILING]))
    else:
        end = draw(st.sampled_from([*sorted(FAILING)]))
    return Behaviour(
        steps=tuple(draw(st.lists(steps, max_size=4))),
        end=end,
        transient_failures=draw(st.integers(1, 2)) if end == "transient" else 0,
    )


EXTERNAL_KINDS = (
    "none",
    "scope_at",
    "deadline",
    "scope_after_checkpoints",
    "token_at",
    "token_after_checkpoints",
    "mark_at",
    "mark_after_checkpoints",
)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    count = draw(st.integers(1, 8))
    names = [f"s{i}" for i in range(count)]
    deps: dict[str, tuple[str, ...]] = {}
    for index, name in enumerate(names):
        earlier = names[:index]
        deps[name] = tuple(
            draw(st.lists(st.sampled_from(earlier), unique=True, max_size=3)) if earlier else []
        )
    kinds = {
        name: draw(st.sampled_from([StageKind.TRANSFORM, StageKind.GUARD, StageKind.WORK]))
        for name in names
    }
    conditional = {name: draw(st.booleans()) for name in names}
    stage_behaviours = {name: draw(behaviours()) for name in names}
    policies: dict[str, GuardRetryPolicy] = {}
    for name in names:
        if kinds[name] is StageKind.GUARD and deps[name] and draw(st.booleans()):
            policy = GuardRetryPolicy(
                retry_stage=draw(st.sampled_from(deps[name])),
                max_attempts=draw(st.integers(1, 3)),
                stagnation_limit=draw(st.integers(1, 3)),
            )
            policies[name] = policy
            stage_behaviours[name] = Behaviour(
                steps=stage_behaviours[name].steps,
                end=stage_behaviours[name].end,
                transient_failures=stage_behaviours[name].transient_failures,
                guard_failures=draw(st.integers(0, 3)),
            )
    pipeline_ctx = draw(st.booleans())
    # From inside a stage twice as often: it probes the budgeted calls right after a cancel.
    kind = draw(
        st.sampled_from(EXTERNAL_KINDS)
        | st.sampled_from([k for k in EXTERNAL_KINDS if k.endswith("checkpoints")])
    )
    if kind.startswith("mark") and not pipeline_ctx:
        kind = "token" + kind[4:]
    when = float(draw(st.integers(1, 4))) if kind.endswith("checkpoints") else draw(sleeps)
    return Scenario(
        deps=deps,
        kinds=kinds,
        conditional=conditional,
        behaviours=stage_behaviours,
        policies=policies,
        interceptors=draw(st.sampled_from(["none", "timeout", "retry", "both"])),
        timeout_ms=draw(st.sampled_from([0, 1500, 30000])),
        pipeline_ctx=pipeline_ctx,
        external=(kind, when),
    )


# -- one run ------------------------------------------------------------------


@dataclass
class Harness:
    """What a run observed, besides the events."""

    scenario: Scenario
    output_bag: OutputBag = field(default_factory=OutputBag)
    context_bag: ContextBag = field(default_factory=ContextBag)
    calls: dict[str, int] = field(default_factory=dict)
    checkpoints: int = 0
    written: list[str] = field(default_factory=list)
    write_cancelled: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    external_fired: bool = False
    cleanups_registered: list[str] = field(default_factory=list)
    cleanups_run: list[str] = field(default_factory=list)
    cancelled_in: Any = None  # the task that cancelled from inside a stage
    cancel_external: Any = None  # set per run: cancels the way the scenario says

    async def write(self, key: str) -> None:
        """A budgeted write to both bags; record whether it stored."""
        try:
            await self.output_bag.write(key, StageOutput.ok(key=key))
        except trio.Cancelled:
            self.write_cancelled.append(key)
            raise
        self.written.append(key)
        await self.context_bag.write(key, 1, key)

    def runner(self, name: str) -> Any:
        behaviour = self.scenario.behaviours[name]

        async def run(ctx: StageContext) -> Any:
            call = self.calls[name] = self.calls.get(name, 0) + 1
            if self.cancelled_in is trio.lowlevel.current_task():
                self.violations.append(f"{name} started in a task after its cancel()")
            # The engine's context is the one the constructor makes.
            rebuilt = StageContext(
                snapshot=ctx.snapshot,
                inputs=ctx.inputs,
                stage_name=name,
                timer=ctx.timer,
                event_sink=ctx.event_sink,
                cleanup_registry=ctx.cleanup_registry,
                cancellation=ctx.cancellation,
            )
            if (rebuilt, hash(rebuilt), repr(rebuilt)) != (ctx, hash(ctx), repr(ctx)):
                self.violations.append(f"{name}: engine context differs from the constructor's")
            if ctx.stage_name != name or ctx.cleanup_registry is None:
                self.violations.append(f"{name}: context fields {ctx!r}")
            for index, (step, arg) in enumerate(behaviour.steps):
                if self.cancelled_in is trio.lowlevel.current_task():
                    break
                if step == "sleep":
                    await trio.sleep(arg)
                elif step == "yield":
                    for _ in range(int(arg)):
                        await trio.lowlevel.checkpoint()
                        self.checkpoints += 1
                        kind, when = self.scenario.external
                        if kind.endswith("checkpoints") and self.checkpoints == when:
                            self.external_fired = True
                            self.cancel_external()
                            self.cancelled_in = trio.lowlevel.current_task()
                            if not kind.startswith("scope"):
                                # Polling code sees the token's or the context's cancel.
                                expected = "context says stop" if kind.startswith("mark") else None
                                if not ctx.is_cancelled or (
                                    expected and ctx.cancellation_reason != expected
                                ):
                                    self.violations.append(
                                        f"{name}: is_cancelled {ctx.is_cancelled},"
                                        f" reason {ctx.cancellation_reason!r}"
                                    )
                            if int(when) % 2:
                                # The stage returns without another checkpoint; a stage
                                # it releases must not start in this task.
                                break
                            # An explicit cancel is seen by the very next budgeted call.
                            key = f"{name}#{call}@after-cancel"
                            await self.write(key)
                            self.violations.append(f"write after cancel() stored {key}")
                elif step == "write":
                    await self.write(f"{name}#{call}.{index}")
                elif step == "cleanup":
                    label = f"{name}#{call}.{index}"
                    self.cleanups_registered.append(label)

                    async def cleanup(label: str = label, seconds: float = arg) -> None:
                        self.cleanups_run.append(label)
                        await trio.sleep(seconds)

                    ctx.register_cleanup(cleanup, name=label)
                elif step == "nursery":
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(trio.sleep, arg)
                        nursery.start_soon(trio.sleep, arg / 2)
                else:
                    assert step == "fail_after"
                    with trio.fail_after(1):
                        await trio.sleep(arg)
            if behaviour.guard_failures >= call:
                return StageOutput.fail(
                    error=f"guard {name} attempt {call}", data={"attempt": call}
                )
            end = behaviour.end
            if end == "ok":
                return StageOutput.ok(stage=name, call=call)
            if end == "dict":
                return {"stage": name}
            if end == "none":
                return None
            if end == "skip":
                return StageOutput.skip(reason=f"{name} skipped")
            if end == "cancel":
                return StageOutput.cancel(reason=f"{name} cancelled")
            if end == "fail":
                return StageOutput.fail(error=f"{name} failed")
            if end == "raise":
                raise ValueError(f"{name} raised")
            if end == "request_cancel":
                raise StageCancellationRequested(f"{name} requested")
            if end == "transient":
                if call <= behaviour.transient_failures:
                    raise ConnectionError(f"{name} transient {call}")
                return StageOutput.ok(stage=name, call=call)
            assert end == "bad_type"
            return 42

        return run


def build_graph(scenario: Scenario, harness: Harness) -> UnifiedStageGraph:
    interceptors: list[BaseInterceptor] | None = None
    if scenario.interceptors != "none":
        interceptors = []
        if scenario.interceptors in ("timeout", "both"):
            interceptors.append(TimeoutInterceptor())
        if scenario.interceptors in ("retry", "both"):
            interceptors.append(
                RetryInterceptor(
                    max_attempts=2,
                    base_delay_ms=10,
                    jitter_strategy=JitterStrategy.NONE,
                    rng=random.Random(0),
                )
            )
    specs = [
        UnifiedStageSpec(
            name=name,
            runner=harness.runner(name),
            kind=scenario.kinds[name],
            dependencies=scenario.deps[name],
            conditional=scenario.conditional[name],
        )
        for name in scenario.deps
    ]
    return UnifiedStageGraph(
        specs,
        interceptors=interceptors,
        guard_retry_strategy=GuardRetryStrategy(dict(scenario.policies))
        if scenario.policies
        else None,
    )


@dataclass
class Outcome:
    kind: str  # "results" | "failed" | "cancelled" | "outer_cancelled" | "other"
    value: Any
    events: list[tuple[str, dict[str, Any]]]
    harness: Harness
    caught: bool
    cleanups_at_end: list[str]
    leaked_tasks: list[str]
    late_events: list[str]


class TaskWatch(trio.abc.Instrument):
    """The tasks spawned while it is installed, and which of them have exited."""

    def __init__(self) -> None:
        self.live: dict[trio.lowlevel.Task, str] = {}

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        self.live[task] = task.name

    def task_exited(self, task: trio.lowlevel.Task) -> None:
        self.live.pop(task, None)


Budget = tuple[int | None, int]
"""(calls, primes): ``checkpoint_budget(calls, seconds=inf)`` (None: the default budget,
64 calls or 1 ms of real time), and how many budgeted calls to spend just before the run,
so that the run's calls fall at every position of the budget."""


def run_scenario(scenario: Scenario, budget: Budget) -> Outcome:
    reset_globals()
    harness = Harness(scenario)
    sink = RecordingEventSink()
    result: dict[str, Any] = {}

    async def main() -> None:
        graph = build_graph(scenario, harness)
        token = CancellationToken()
        if scenario.pipeline_ctx:
            ctx: Any = PipelineContext.create(
                topology="fuzz", event_sink=sink, data={"_timeout_ms": scenario.timeout_ms}
            )
        else:
            ctx = stage_ctx(event_sink=sink)
        kind, when = scenario.external
        watch = TaskWatch()
        async with trio.open_nursery() as nursery:
            scope = trio.CancelScope()
            if kind == "deadline":
                scope.deadline = trio.current_time() + when

            def cancel_external() -> None:
                if kind.startswith("scope"):
                    scope.cancel()
                elif kind.startswith("token"):
                    token.cancel("token says stop")
                elif kind.startswith("mark"):
                    ctx.mark_canceled("context says stop")

            harness.cancel_external = cancel_external
            if kind.endswith("_at"):

                async def canceller() -> None:
                    await trio.sleep(when)
                    harness.external_fired = True
                    cancel_external()

                nursery.start_soon(canceller)
            await trio.lowlevel.checkpoint()  # let the canceller start first
            trio.lowlevel.add_instrument(watch)
            for _ in range(budget[1]):
                await cooperative_checkpoint()
            try:
                with scope:
                    try:
                        value = await graph.run(ctx, cancel_token=token)
                        result["outcome"] = ("results", value)
                    except UnifiedStageExecutionError as exc:
                        result["outcome"] = ("failed", exc)
                    except UnifiedPipelineCancelled as exc:
                        result["outcome"] = ("cancelled", exc)
                    except trio.Cancelled as exc:
                        result["outcome"] = ("outer_cancelled", exc)
                        raise
                    except Exception as exc:
                        result["outcome"] = ("other", exc)
            finally:
                trio.lowlevel.remove_instrument(watch)
            result["caught"] = scope.cancelled_caught
            result["cleanups"] = list(harness.cleanups_run)
            result["leaked"] = sorted(watch.live.values())
            seen = len(sink.events)
            nursery.cancel_scope.cancel()
        await trio.sleep(100)
        result["late"] = [t for t, _ in sink.events[seen:]]

    calls, _ = budget

    async def wrapped() -> None:
        if calls is None:
            await main()
        else:
            with checkpoint_budget(calls=calls, seconds=math.inf):
                await main()

    trio.run(wrapped, clock=trio.testing.MockClock(autojump_threshold=0))
    kind, value = result["outcome"]
    return Outcome(
        kind=kind,
        value=value,
        events=[(event_type, data or {}) for event_type, data in sink.events],
        harness=harness,
        caught=result["caught"],
        cleanups_at_end=result["cleanups"],
        leaked_tasks=result["leaked"],
        late_events=result["late"],
    )


# -- the invariants ------------------------------------------------------------


def stage_of(event_type: str, names: set[str]) -> tuple[str, str] | None:
    """``(stage, status)`` of a ``stage.{name}.{status}`` lifecycle event, else None."""
    if not event_type.startswith("stage."):
        return None
    rest = event_type[len("stage.") :]
    name, _, status = rest.rpartition(".")
    if name in names and status in ("started", *TERMINAL):
        return name, status
    return None


def per_stage(events: list[tuple[str, dict[str, Any]]], names: set[str]) -> dict[str, list[str]]:
    sequences: dict[str, list[str]] = {name: [] for name in names}
    for event_type, _ in events:
        parsed = stage_of(event_type, names)
        if parsed is not None:
            sequences[parsed[0]].append(parsed[1])
    return sequences


def check(scenario: Scenario, outcome: Outcome) -> None:
    names = set(scenario.deps)
    events = outcome.events
    types = [t for t, _ in events]
    harness = outcome.harness
    assert not harness.violations, harness.violations
    assert outcome.kind != "other", repr(outcome.value)
    assert not outcome.leaked_tasks, f"tasks outlived the run: {outcome.leaked_tasks}"
    assert not outcome.late_events, f"events after the run: {outcome.late_events}"

    # Stage lifecycle: started -> exactly one terminal, again for each re-run.
    sequences = per_stage(events, names)
    for name, sequence in sequences.items():
        open_start = False
        for status in sequence:
            if status == "started":
                assert not open_start, f"{name} started twice without ending: {sequence}"
                open_start = True
            elif open_start:
                open_start = False
            else:
                message = f"{name} ended ({status}) without starting: {sequence}"
                assert status == "skipped", message
                assert scenario.conditional[name], message
        assert not open_start, f"{name} started but never ended: {sequence}"
        for event_type, data in events:
            if event_type == f"stage.{name}.cancelled":
                assert data.get("reason"), data

    # Exactly one pipeline-level terminal event, the run's last one.
    terminals = [i for i, t in enumerate(types) if t in PIPELINE_TERMINAL]
    assert len(terminals) == 1, types
    assert terminals[0] == len(types) - 1, types
    terminal_type, terminal = events[-1]

    # The writes: a cancelled write stored nothing, a completed one is stored.
    stored = set(harness.output_bag.keys())
    for key in harness.write_cancelled:
        assert key not in stored, key
    for key in harness.written:
        assert key in stored, key

    external, _ = scenario.external
    fired = harness.external_fired or external == "deadline"
    kind = outcome.kind
    if kind == "results":
        assert terminal_type == "pipeline_completed", terminal_type
        results = outcome.value
        assert set(results) == names
        assert terminal["stages_completed"] == sorted(names)
        for name, output in results.items():
            assert output.status in (StageStatus.OK, StageStatus.SKIP), (name, output)
            last = [s for s in sequences[name] if s != "started"][-1]
            assert last == ("skipped" if output.status is StageStatus.SKIP else "completed"), (
                name,
                sequences[name],
            )
    elif kind == "failed":
        assert terminal_type == "pipeline_failed", terminal_type
        stage = outcome.value.stage
        assert terminal["stage"] == stage
        assert stage in names
        assert can_fail(scenario, stage), (stage, scenario.behaviours[stage])
        assert sequences[stage][-1] == "failed", (stage, sequences[stage])
    elif kind == "cancelled":
        assert terminal_type == "pipeline_cancelled", terminal_type
        exc = outcome.value
        assert (terminal["stage"], terminal["reason"]) == (exc.stage, exc.reason)
        if exc.stage == "<external>":
            assert external.startswith(("token", "mark")), scenario.external
            assert fired, scenario.external
        else:
            assert scenario.behaviours[exc.stage].end in ("cancel", "request_cancel")
        assert set(exc.results) <= names
    else:
        assert kind == "outer_cancelled"
        assert external.startswith("scope") or external == "deadline", scenario.external
        assert fired
        assert outcome.caught, "the outer scope did not catch its Cancelled"
        assert terminal_type == "pipeline_cancelled", terminal_type
    if external == "none" or not fired:
        assert kind != "outer_cancelled"
        if kind == "cancelled":
            assert outcome.value.stage != "<external>"
    if not fired and not any(can_fail(scenario, name) for name in names):
        assert kind == "results", (kind, outcome.value)

    # Cleanup callbacks: each ran once, last registered first, before the run ended.
    assert outcome.cleanups_at_end == list(reversed(harness.cleanups_registered))

    # The reasons the interrupted stages report.
    reasons = {
        data.get("reason")
        for t, data in events
        if stage_of(t, names) is not None and t.endswith(".cancelled")
    }
    allowed = {
        "another stage failed",
        "cancelled",
        "deadline exceeded",
        "token says stop",
        "context says stop",
    }
    allowed |= {f"Cancelled by stage {n}" for n in names}
    assert reasons <= allowed, reasons
    if kind == "cancelled" and outcome.value.stage != "<external>" and not fired:
        # Only that stage's cancel stopped the run.
        assert reasons <= {f"Cancelled by stage {outcome.value.stage}"}, (
            reasons,
            outcome.value.stage,
        )


def can_fail(scenario: Scenario, name: str) -> bool:
    """Whether stage ``name`` may fail or cancel the run."""
    behaviour = scenario.behaviours[name]
    return bool(
        behaviour.end in FAILING
        or behaviour.guard_failures
        or any(step == "fail_after" and arg >= 1 for step, arg in behaviour.steps)
        or (scenario.timeout_ms and scenario.pipeline_ctx and scenario.interceptors != "none")
    )


def deterministic(scenario: Scenario) -> bool:
    """No stage can fail or cancel the run, and nothing cancels it from outside."""
    return scenario.external[0] == "none" and not any(
        can_fail(scenario, name) for name in scenario.deps
    )


def compare_budgets(scenario: Scenario, default: Outcome, calls_1: Outcome) -> None:
    names = set(scenario.deps)
    assert default.kind == calls_1.kind
    assert per_stage(default.events, names) == per_stage(calls_1.events, names)
    assert default.events[-1][0] == calls_1.events[-1][0]
    if default.kind == "results":
        assert {k: (v.status, dict(v.data)) for k, v in default.value.items()} == {
            k: (v.status, dict(v.data)) for k, v in calls_1.value.items()
        }


@settings(
    # More while hunting: AUDIT13_EXAMPLES=20000 pytest tests/_engine/test_audit13_engine_fuzz.py
    max_examples=int(os.environ.get("AUDIT13_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scenarios(), st.tuples(st.sampled_from([None, 1, 2, 3, 64]), st.integers(0, 3)))
def test_fuzz_unified_runs_keep_the_documented_cancellation_and_event_semantics(
    scenario: Scenario, budget: Budget
) -> None:
    outcome = run_scenario(scenario, budget)
    event(f"outcome: {outcome.kind}")
    event(f"external: {scenario.external[0]} fired={outcome.harness.external_fired}")
    check(scenario, outcome)
    if deterministic(scenario):
        other = run_scenario(scenario, (1, 0))
        check(scenario, other)
        compare_budgets(scenario, outcome, other)
