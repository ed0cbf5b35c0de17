"""A model-based fuzz of legacy StageGraph runs (the interceptor chain around every stage).

Random legacy graphs (1-8 stages, random dependencies), built directly as
``StageGraph`` or through ``PipelineBuilder``, with random runners (a stage class,
an instance with ``execute``, an async callable) and random behaviours (sleeps in
virtual time, bare checkpoints, ``ctx.data`` writes, ``ctx.mark_canceled()``,
then every way a legacy stage can end: ``StageOutput`` ok / skip / fail / cancel /
retry, a dict, None, a raised ``ValueError``, transient ``ConnectionError`` s).
The chain is the default one, optionally with a ``RetryInterceptor`` (or only
that one, or none at all); the stage timeouts come from ``ctx.data["_timeout_ms"]``
and per-stage ``ctx.data["_timeout.{stage}"]``. A recording sink is on the
context (sometimes one whose ``try_emit`` raises), wide events are on or off, an
interceptor may raise ``CriticalInterceptorError`` in one stage's ``before`` or
``after``, one or two runs of the graph go at once (sometimes sharing an
idempotency key), under the default checkpoint budget or a small one, and an
external cancellation may come (an outer cancel scope or deadline,
``mark_canceled`` from another task at a virtual time or from inside a stage, or
before the run).

Every example checks what docs/engine.md, docs/events.md, docs/interceptors.md and
docs/cancellation.md promise for the legacy graph:

- each ``stage.{name}.started`` is followed by exactly one terminal event
  (completed / failed / cancelled), and no stage starts twice;
- exactly one pipeline-level terminal event, the run's last, matching the
  outcome: results <-> ``pipeline_completed`` (failed stages do not fail a legacy
  run), a ``mark_canceled`` run returns with ``pipeline_cancelled`` ("Pipeline
  canceled", the unfinished stages failed with that error), an outer ``Cancelled``
  <-> ``pipeline_cancelled`` with stage ``"<external>"``;
- ``pipeline.wide`` (when on) agrees: ``cancelled`` for a cancelled run, else
  ``failed`` iff a stage result failed;
- ``trio.Cancelled`` from an outer scope propagates and that scope catches it;
- a run still going when the outer scope is cancelled raises ``Cancelled``;
- a ``CriticalInterceptorError`` fails the run with ``StageExecutionError`` naming
  the stage, ``pipeline_failed`` and no ``pipeline.wide`` (as in the reference);
- no task the run started outlives it, and nothing is emitted after it;
- once the run is stopped (mark_canceled) no stage starts;
- the chain leaves ``ctx.data`` as it found it (``_timeout.*`` restored or kept,
  ``_retry.*`` removed, also on cancellation);
- without external cancellation, the model predicts each stage's result (status
  and error), its number of calls (RetryInterceptor: ``max_attempts`` calls at
  most, only retryable errors, the chain timeout included), its
  ``stage.retry_scheduled`` delays (exponential, no jitter) and its
  ``duration_ms`` exactly in virtual time (sleeps, the stage timeout, the
  backoff sleeps); with a shared idempotency key, each replayable stage runs
  once over both runs and both get its data.

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

from stageflow_trio._time import utc_now
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.lowlevel import checkpoint_budget
from stageflow_trio.observability.wide_events import WideEventEmitter
from stageflow_trio.pipeline.builder import PipelineBuilder
from stageflow_trio.pipeline.dag import StageExecutionError, StageGraph, StageSpec
from stageflow_trio.pipeline.interceptors import (
    BaseInterceptor,
    CriticalInterceptorError,
    InterceptorResult,
    get_default_interceptors,
)
from stageflow_trio.pipeline.retry import JitterStrategy, RetryInterceptor
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.stages.result import StageResult
from stageflow_trio.testing import RecordingEventSink, reset_globals
from tests._engine.test_audit13_engine_fuzz import TaskWatch, per_stage

PIPELINE_TERMINAL = ("pipeline_completed", "pipeline_failed", "pipeline_cancelled")
ENDS = (
    "ok",
    "dict",
    "none",
    "skip",
    "cancel_out",
    "retry_out",
    "fail",
    "raise",
    "transient",
    "raise_timeout",  # the stage raises TimeoutError itself: the chain's timeout error
    "too_slow",  # trio.fail_after(TOO_SLOW) around a longer sleep: TooSlowError, retryable
    "bad_type",  # returns 42: TypeError from the graph, a failed result
    "result",  # returns a StageResult of its own
    "group",  # a child of the stage's own nursery raises: an ExceptionGroup, not retryable
)
TOO_SLOW = 0.3  # seconds; with SLEEPS, a stage never ends exactly at a TIMEOUTS deadline
SLEEPS = (0, 0.25, 0.5, 1, 2, 3)
# Stage timeouts (ms) no sum of SLEEPS can equal: a stage never ends at its deadline.
TIMEOUTS = (0, 1700, 2600, 30000)


@dataclass(frozen=True)
class Behaviour:
    # ("sleep", s) | ("yield", n) | ("write", 0) | ("mark", 0) | ("nursery", s): a nursery of
    # the stage's own with two children sleeping s and s / 2
    steps: tuple[tuple[str, float], ...]
    end: str
    transient_failures: int = 0


@dataclass(frozen=True)
class Scenario:
    deps: dict[str, tuple[str, ...]]
    behaviours: dict[str, Behaviour]
    runner_kinds: dict[str, str]  # "class" | "instance" | "function"
    chain: str  # "default" | "default+retry" | "retry" | "none"
    builder: bool  # through PipelineBuilder (default chain only)
    max_attempts: int
    base_delay_ms: int
    timeout_ms: int | None  # ctx.data["_timeout_ms"] (None: absent)
    stage_timeouts: dict[str, int]  # ctx.data["_timeout.{stage}"] set by the caller
    wide: bool
    runs: int  # concurrent runs of the one graph, each with its own context and sink
    # (stage, "before" | "after"): an interceptor raising CriticalInterceptorError there
    critical: tuple[str, str] | None
    # ctx.data["idempotency_key"] the same in every run: the default chain's idempotency
    # interceptor runs each stage once and replays its completed result to the other run
    idempotent: bool
    broken_sink: bool  # the sink records each event, then raises (logged, never fails a run)
    budget: int | None  # checkpoint_budget(calls=budget, seconds=inf) around the runs
    external: tuple[str, float]  # ("none"|"scope_at"|"deadline"|"mark_at"|"mark_before", when)


steps = st.one_of(
    st.tuples(st.just("sleep"), st.sampled_from(SLEEPS)),
    st.tuples(st.just("yield"), st.integers(1, 3).map(float)),
    st.tuples(st.just("write"), st.just(0.0)),
    st.tuples(st.just("nursery"), st.sampled_from(SLEEPS)),
)


@st.composite
def behaviours(draw: st.DrawFn) -> Behaviour:
    end = draw(st.sampled_from(ENDS))
    return Behaviour(
        steps=tuple(draw(st.lists(steps, max_size=3))),
        end=end,
        transient_failures=draw(st.integers(1, 3)) if end == "transient" else 0,
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
    stage_behaviours = {name: draw(behaviours()) for name in names}
    critical = (
        (draw(st.sampled_from(names)), draw(st.sampled_from(["before", "after"])))
        if draw(st.integers(0, 5)) == 0
        else None
    )
    external = draw(
        st.sampled_from(
            ["none", "none", "scope_at", "deadline", "mark_at", "mark_inside", "mark_before"]
        )
    )
    # Never a time a stage's sleeps, timeouts and backoffs can add up to (whole ms): a
    # cancel at the very moment a stage ends goes either way, as trio schedules.
    when = draw(st.sampled_from([0.0105, 0.2505, 0.5105, 1.0005, 1.3105, 2.0005, 3.2505]))
    if external == "mark_inside":
        # One stage marks the context canceled, after a random step.
        name = draw(st.sampled_from(names))
        behaviour = stage_behaviours[name]
        at = draw(st.integers(0, len(behaviour.steps)))
        marked = (*behaviour.steps[:at], ("mark", 0.0), *behaviour.steps[at:])
        stage_behaviours[name] = Behaviour(marked, behaviour.end, behaviour.transient_failures)
    chain = draw(st.sampled_from(["default", "default+retry", "retry", "none"]))
    return Scenario(
        deps=deps,
        behaviours=stage_behaviours,
        runner_kinds={n: draw(st.sampled_from(["class", "instance", "function"])) for n in names},
        chain=chain,
        builder=chain == "default" and critical is None and draw(st.booleans()),
        max_attempts=draw(st.integers(1, 4)),
        base_delay_ms=draw(st.sampled_from([0, 10, 250])),
        timeout_ms=draw(st.sampled_from((None, *TIMEOUTS))),
        stage_timeouts={
            n: t for n in names if (t := draw(st.sampled_from((None, None, *TIMEOUTS)))) is not None
        },
        wide=draw(st.booleans()),
        runs=draw(st.sampled_from([1, 1, 2])),
        critical=critical,
        idempotent=chain.startswith("default") and draw(st.booleans()),
        broken_sink=draw(st.integers(0, 4)) == 0,
        budget=draw(st.sampled_from([None, None, 1, 2, 64])),
        external=(external, when),
    )


# -- one run ------------------------------------------------------------------


class BrokenSink(RecordingEventSink):
    """Records every event, then raises: the graphs must only log it."""

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        super().try_emit(type=type, data=data)
        raise RuntimeError(f"sink broken at {type}")


@dataclass
class RunState:
    """What one run (one context) observed, besides the events."""

    sink: RecordingEventSink = field(default_factory=RecordingEventSink)
    calls: dict[str, int] = field(default_factory=dict)
    marked_at_event: int | None = None  # len(sink.events) when the run was stopped
    ended_at: float = math.inf  # the virtual time the run returned or raised


@dataclass
class Harness:
    scenario: Scenario
    states: dict[int, RunState] = field(default_factory=dict)  # by id(ctx)
    violations: list[str] = field(default_factory=list)

    def body(self, name: str) -> Any:
        behaviour = self.scenario.behaviours[name]

        async def run(ctx: Any) -> Any:
            if type(ctx) is not PipelineContext:
                self.violations.append(f"{name}: got {type(ctx).__name__}")
            state = self.states[id(ctx)]
            call = state.calls[name] = state.calls.get(name, 0) + 1
            for step, arg in behaviour.steps:
                if step == "sleep":
                    await trio.sleep(arg)
                elif step == "yield":
                    for _ in range(int(arg)):
                        await trio.lowlevel.checkpoint()
                elif step == "write":
                    ctx.data[f"w.{name}"] = call
                elif step == "nursery":
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(trio.sleep, arg)
                        nursery.start_soon(trio.sleep, arg / 2)
                else:
                    assert step == "mark"
                    if state.marked_at_event is None:
                        state.marked_at_event = len(state.sink.events)
                    ctx.mark_canceled("stage says stop")
            end = behaviour.end
            if end == "ok":
                return StageOutput.ok(stage=name, call=call)
            if end == "dict":
                return {"stage": name}
            if end == "none":
                return None
            if end == "skip":
                return StageOutput.skip(reason=f"{name} skipped")
            if end == "cancel_out":
                return StageOutput.cancel(reason=f"{name} cancelled")
            if end == "retry_out":
                return StageOutput.retry(error=f"{name} wants a retry")
            if end == "fail":
                return StageOutput.fail(error=f"{name} failed")
            if end == "raise":
                raise ValueError(f"{name} raised")
            if end == "raise_timeout":
                raise TimeoutError(f"{name} gave up")
            if end == "too_slow":
                with trio.fail_after(TOO_SLOW):
                    await trio.sleep(TOO_SLOW * 2)
            if end == "bad_type":
                return 42
            if end == "group":

                async def child() -> None:
                    raise ValueError(f"{name} child raised")

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(child)
            if end == "result":
                now = utc_now()
                return StageResult(
                    name=name, status="completed", started_at=now, ended_at=now, data={"r": 1}
                )
            assert end == "transient"
            if call <= behaviour.transient_failures:
                raise ConnectionError(f"{name} transient {call}")
            return StageOutput.ok(stage=name, call=call)

        return run

    def runner(self, name: str) -> Any:
        body = self.body(name)
        kind = self.scenario.runner_kinds[name]
        if kind == "function":
            return body

        class Stage:
            async def execute(self, ctx: PipelineContext) -> Any:
                return await body(ctx)

        return Stage if kind == "class" else Stage()


class Critical(BaseInterceptor):
    """Raises CriticalInterceptorError in one hook for one stage (priority 30: mid-chain)."""

    name = "critical"
    priority = 30

    def __init__(self, stage: str, hook: str) -> None:
        self.stage = stage
        self.hook = hook

    async def before(self, stage_name: str, ctx: PipelineContext) -> InterceptorResult | None:
        if (stage_name, "before") == (self.stage, self.hook):
            raise CriticalInterceptorError(f"critical before {stage_name}", self.name)
        return None

    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        if (stage_name, "after") == (self.stage, self.hook):
            raise CriticalInterceptorError(f"critical after {stage_name}", self.name)


def interceptors(scenario: Scenario) -> list[BaseInterceptor] | None:
    chain = chain_interceptors(scenario)
    if scenario.critical is None:
        return chain
    return [*(get_default_interceptors() if chain is None else chain), Critical(*scenario.critical)]


def chain_interceptors(scenario: Scenario) -> list[BaseInterceptor] | None:
    retry = RetryInterceptor(
        max_attempts=scenario.max_attempts,
        base_delay_ms=scenario.base_delay_ms,
        jitter_strategy=JitterStrategy.NONE,
        rng=random.Random(0),
    )
    if scenario.chain == "default":
        return None
    if scenario.chain == "default+retry":
        return [*get_default_interceptors(), retry]
    if scenario.chain == "retry":
        return [retry]
    return []


def build_graph(scenario: Scenario, harness: Harness, emitter: WideEventEmitter) -> StageGraph:
    if scenario.builder:
        builder = PipelineBuilder("fuzz")
        for name, deps in scenario.deps.items():
            builder = builder.with_stage(name, harness.runner(name), dependencies=deps)
        return builder.build(
            wide_event_emitter=emitter,
            emit_stage_wide_events=scenario.wide,
            emit_pipeline_wide_event=scenario.wide,
        )
    specs = [
        StageSpec(name=name, runner=harness.runner(name), dependencies=deps)
        for name, deps in scenario.deps.items()
    ]
    return StageGraph(
        specs,
        interceptors(scenario),
        wide_event_emitter=emitter,
        emit_stage_wide_events=scenario.wide,
        emit_pipeline_wide_event=scenario.wide,
    )


@dataclass
class Outcome:
    """One run's outcome (run 0 is the one a mark_canceled targets)."""

    kind: str  # "results" | "outer_cancelled" | "other"
    value: Any
    events: list[tuple[str, dict[str, Any]]]
    state: RunState
    harness: Harness
    caught: bool
    leaked_tasks: list[str]
    late_events: list[str]
    data_before: dict[str, Any]
    data_after: dict[str, Any]


def initial_data(scenario: Scenario) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if scenario.timeout_ms is not None:
        data["_timeout_ms"] = scenario.timeout_ms
    for name, value in scenario.stage_timeouts.items():
        data[f"_timeout.{name}"] = value
    if scenario.idempotent:
        data["idempotency_key"] = "order-1"
    return data


def run_scenario(scenario: Scenario) -> list[Outcome]:
    reset_globals()
    harness = Harness(scenario)
    result: dict[str, Any] = {}
    outcomes: dict[int, tuple[str, Any]] = {}

    async def main() -> None:
        graph = build_graph(scenario, harness, WideEventEmitter())
        contexts = []
        for _ in range(scenario.runs):
            state = RunState(sink=BrokenSink()) if scenario.broken_sink else RunState()
            ctx = PipelineContext.create(
                topology="fuzz", event_sink=state.sink, data=initial_data(scenario)
            )
            harness.states[id(ctx)] = state
            contexts.append((ctx, state))
        ctx, state = contexts[0]
        result["before"] = [dict(c.data) for c, _ in contexts]
        kind, when = scenario.external
        watch = TaskWatch()

        async def run(index: int) -> None:
            run_ctx, run_state = contexts[index]
            try:
                outcomes[index] = ("results", await graph.run(run_ctx))
            except trio.Cancelled as exc:
                outcomes[index] = ("outer_cancelled", exc)
                raise
            except StageExecutionError as exc:
                outcomes[index] = ("failed", exc)
            except Exception as exc:
                outcomes[index] = ("other", exc)
            finally:
                run_state.ended_at = trio.current_time()

        async with trio.open_nursery() as nursery:
            scope = trio.CancelScope()
            if kind == "deadline":
                scope.deadline = trio.current_time() + when
            if kind == "mark_before":
                state.marked_at_event = 0
                ctx.mark_canceled("caller says stop")
            if kind in ("scope_at", "mark_at"):

                async def canceller() -> None:
                    await trio.sleep(when)
                    if kind == "scope_at":
                        scope.cancel()
                    else:
                        if state.marked_at_event is None and state.ended_at == math.inf:
                            state.marked_at_event = len(state.sink.events)
                        ctx.mark_canceled("canceller says stop")  # after the run: a no-op

                nursery.start_soon(canceller)
            await trio.lowlevel.checkpoint()  # let the canceller start first
            trio.lowlevel.add_instrument(watch)
            try:
                with scope:
                    if scenario.runs == 1:
                        await run(0)
                    else:
                        async with trio.open_nursery() as runs:
                            for index in range(scenario.runs):
                                runs.start_soon(run, index)
            finally:
                trio.lowlevel.remove_instrument(watch)
            result["caught"] = scope.cancelled_caught
            result["leaked"] = sorted(watch.live.values())
            result["after"] = [dict(c.data) for c, _ in contexts]
            seen = [len(s.sink.events) for _, s in contexts]
            nursery.cancel_scope.cancel()
        await trio.sleep(100)
        result["late"] = [
            [t for t, _ in s.sink.events[n:]] for (_, s), n in zip(contexts, seen, strict=True)
        ]

    async def budgeted() -> None:
        if scenario.budget is None:
            await main()
        else:
            with checkpoint_budget(calls=scenario.budget, seconds=math.inf):
                await main()

    trio.run(budgeted, clock=trio.testing.MockClock(autojump_threshold=0))
    states = list(harness.states.values())
    return [
        Outcome(
            kind=outcomes[index][0],
            value=outcomes[index][1],
            events=[(event_type, data or {}) for event_type, data in states[index].sink.events],
            state=states[index],
            harness=harness,
            caught=result["caught"],
            leaked_tasks=result["leaked"],
            late_events=result["late"][index],
            data_before=result["before"][index],
            data_after=result["after"][index],
        )
        for index in range(scenario.runs)
    ]


# -- the model ----------------------------------------------------------------


def has_timeout_interceptor(scenario: Scenario) -> bool:
    return scenario.chain in ("default", "default+retry")


def has_retry(scenario: Scenario) -> bool:
    return scenario.chain in ("default+retry", "retry")


def stage_timeout_ms(scenario: Scenario, name: str) -> int:
    """The timeout the chain runs stage ``name`` under (docs/interceptors.md)."""
    own = scenario.stage_timeouts.get(name)
    if own is not None and own > 0:
        return own
    if has_timeout_interceptor(scenario):
        return 30000 if scenario.timeout_ms is None else scenario.timeout_ms
    return 30000 if own is None else own


@dataclass
class Expected:
    status: str
    error: str | None
    calls: int
    delays: list[int]
    duration_ms: float


def work_seconds(behaviour: Behaviour) -> float:
    """Virtual time one call of the stage takes when nothing interrupts it."""
    work = sum(arg for step, arg in behaviour.steps if step in ("sleep", "nursery"))
    return work + (TOO_SLOW if behaviour.end == "too_slow" else 0)


def times_out(scenario: Scenario, name: str) -> bool:
    timeout = stage_timeout_ms(scenario, name)
    return timeout > 0 and work_seconds(scenario.behaviours[name]) > timeout / 1000


def expected(scenario: Scenario, name: str) -> Expected:
    """A stage's result, calls, retry delays and duration, run without interruption."""
    behaviour = scenario.behaviours[name]
    timeout = stage_timeout_ms(scenario, name)
    work = work_seconds(behaviour)
    retries = has_retry(scenario)
    elapsed = 0.0
    delays: list[int] = []
    call = 0
    while True:
        call += 1
        error: str | None = None
        retryable = False
        end = behaviour.end
        if times_out(scenario, name):
            elapsed += timeout / 1000
            error, retryable = f"Stage timed out after {timeout}ms", True
        else:
            elapsed += work
            if end == "raise":
                error = f"{name} raised"
            elif end == "raise_timeout":
                error, retryable = f"Stage timed out after {timeout}ms", True
            elif end == "too_slow":
                error, retryable = "", True  # str(trio.TooSlowError())
            elif end == "bad_type":
                error = f"Stage {name} returned unsupported result type {int}"
            elif end == "group":
                error = "Exceptions from Trio nursery (1 sub-exception)"
            elif end == "transient" and call <= behaviour.transient_failures:
                error, retryable = f"{name} transient {call}", True
            elif end == "fail":
                return Expected("failed", f"{name} failed", call, delays, elapsed * 1000)
            else:
                # A legacy result keeps a non-failed output's error (retry carries one).
                error = f"{name} wants a retry" if end == "retry_out" else None
                return Expected("completed", error, call, delays, elapsed * 1000)
        if retries and retryable and call < scenario.max_attempts:
            delay = scenario.base_delay_ms * 2 ** (call - 1)
            delays.append(delay)
            elapsed += delay / 1000
            continue
        return Expected("failed", error, call, delays, elapsed * 1000)


# -- the invariants ------------------------------------------------------------


def assert_data_kept(scenario: Scenario, outcome: Outcome, sequences: dict[str, list[str]]) -> None:
    """The chain leaves ``ctx.data`` as it found it, besides the stages' own writes."""
    after = {k: v for k, v in outcome.data_after.items() if not k.startswith("w.")}
    before = dict(outcome.data_before)
    assert sequences is not None  # every stage, replayed ones included, is checked
    assert after == before, (outcome.data_before, outcome.data_after)


def check(scenario: Scenario, outcome: Outcome, first: bool) -> None:
    """``first``: run 0, the one a ``mark_canceled`` targets."""
    names = set(scenario.deps)
    events = outcome.events
    types = [t for t, _ in events]
    harness = outcome.harness
    state = outcome.state
    assert not harness.violations, harness.violations
    assert outcome.kind != "other", repr(outcome.value)
    assert not outcome.leaked_tasks, f"tasks outlived the run: {outcome.leaked_tasks}"
    assert not outcome.late_events, f"events after the run: {outcome.late_events}"

    # Stage lifecycle: started -> exactly one terminal; a legacy stage runs once.
    sequences = per_stage(events, names)
    for name, sequence in sequences.items():
        assert sequence in (
            [],
            ["started", "completed"],
            ["started", "failed"],
            ["started", "cancelled"],
        ), (name, sequence)
        for event_type, data in events:
            if event_type == f"stage.{name}.cancelled":
                assert data.get("reason"), data
            if event_type in (f"stage.{name}.completed", f"stage.{name}.failed"):
                assert isinstance(data.get("duration_ms"), int), data

    # Exactly one pipeline-level terminal event, the run's last one.
    terminals = [i for i, t in enumerate(types) if t in PIPELINE_TERMINAL]
    assert len(terminals) == 1, types
    wide = [data for t, data in events if t == "pipeline.wide"]
    # Every run ends with one pipeline.wide when it is on, a failed one too (status
    # "failed", checked below; the reference emits none for a failed run).
    assert len(wide) == (1 if scenario.wide else 0), types
    last_lifecycle = terminals[0]
    assert all(
        t in ("pipeline.wide", "stage.wide") or not t.startswith(("stage.", "pipeline"))
        for t in types[last_lifecycle + 1 :]
    ), types[last_lifecycle:]
    assert all(not t.startswith("stage.") for t in types[last_lifecycle + 1 :]), types
    terminal_type, terminal = events[last_lifecycle]
    if scenario.wide:
        # stage.wide for each stage that ended completed or failed.
        ended = sorted(n for n, seq in sequences.items() if seq[-1:] in (["completed"], ["failed"]))
        assert sorted(d["stage"] for t, d in events if t == "stage.wide") == ended, types
    # The stages with a result (a stage a CriticalInterceptorError ended has none).
    critical_stage = scenario.critical[0] if scenario.critical else None
    finished = sorted(
        n
        for n, seq in sequences.items()
        if seq[-1:] == ["completed"] or (seq[-1:] == ["failed"] and n != critical_stage)
    )
    external, _ = scenario.external
    if outcome.kind == "failed":
        # Only a CriticalInterceptorError fails a legacy run.
        assert scenario.critical is not None
        error = outcome.value
        assert error.stage == scenario.critical[0], (error.stage, scenario.critical)
        assert isinstance(error.original, CriticalInterceptorError), repr(error.original)
        assert terminal_type == "pipeline_failed", terminal_type
        assert terminal["stage"] == error.stage, terminal
        if scenario.wide:
            assert wide[0]["status"] == "failed", wide
        assert terminal["stages_completed"] == finished, (terminal, sequences)
        assert sequences[error.stage] == ["started", "failed"], sequences
        for name, sequence in sequences.items():
            if sequence[-1:] == ["cancelled"]:
                reason = next(d["reason"] for t, d in events if t == f"stage.{name}.cancelled")
                assert reason in ("another stage failed", "cancelled", "deadline exceeded") or (
                    reason.endswith("says stop")
                ), reason
        assert_data_kept(scenario, outcome, sequences)
        return
    assert terminal_type != "pipeline_failed", terminal
    if terminal_type == "pipeline_cancelled" or terminal_type == "pipeline_completed":
        assert terminal["stages_completed"] == finished, (terminal, sequences)

    # Once the run is stopped, no stage starts.
    if state.marked_at_event is not None:
        late_starts = [t for t in types[state.marked_at_event :] if t.endswith(".started")]
        marker = [n for n in names if ("mark", 0.0) in scenario.behaviours[n].steps]
        assert late_starts == [], (late_starts, marker)

    # The chain leaves ctx.data as it found it (besides the stages' own writes).
    assert_data_kept(scenario, outcome, sequences)

    external, when = scenario.external
    marked = state.marked_at_event is not None
    if external in ("scope_at", "deadline") and when < state.ended_at:
        # Still running when the outer scope was cancelled (never at the very moment a
        # stage ends): a stage was waiting, so Cancelled reached it and the caller.
        assert outcome.kind == "outer_cancelled", (outcome.kind, when, state.ended_at)
    if outcome.kind == "outer_cancelled":
        assert external in ("scope_at", "deadline"), scenario.external
        assert outcome.caught, "the outer scope did not catch its Cancelled"
        # A run never raises Cancelled once its stages are done (docs/engine.md).
        assert any(
            seq[-1:] != ["completed"] and seq[-1:] != ["failed"] for seq in sequences.values()
        ), sequences
        assert terminal_type == "pipeline_cancelled", terminal_type
        assert terminal["stage"] == "<external>", terminal
        assert terminal["reason"] in ("cancelled", "deadline exceeded"), terminal
        for name, sequence in sequences.items():
            if sequence and sequence[-1] == "cancelled":
                reason = next(d["reason"] for t, d in events if t == f"stage.{name}.cancelled")
                assert reason in ("cancelled", "deadline exceeded"), reason
        if wide:
            assert wide[0]["status"] == "cancelled", wide[0]
        return

    results = outcome.value
    assert set(results) == names, (sorted(results), sorted(names))
    if marked:
        assert terminal_type == "pipeline_cancelled", terminal_type
        assert terminal["reason"] == "Pipeline canceled", terminal
        assert terminal["stage"] in names | {"<external>"}, terminal
        if external == "mark_before" and first:
            assert terminal["stage"] == "<external>", terminal
            assert all(not seq for seq in sequences.values()), sequences
        for name, behaviour in scenario.behaviours.items():
            if (
                external == "mark_inside"
                and behaviour.steps[-1:] == (("mark", 0.0),)
                # (ends that do not await: a nursery or a retry's sleep would let others on)
                and behaviour.end not in ("raise_timeout", "transient", "too_slow", "group")
                and not times_out(scenario, name)
                and state.calls.get(name)
                # The idempotency interceptor's after hook awaits its store (a checkpoint):
                # there the stage's call is interrupted like any other (docs/events.md).
                and not scenario.idempotent
            ):
                # It marked and returned without a checkpoint: its completion saw the flag.
                assert terminal["stage"] == name, (terminal, sequences)
                assert sequences[name][-1] in ("completed", "failed"), sequences
        if wide:
            assert wide[0]["status"] == "cancelled", wide[0]
        for name, sequence in sequences.items():
            status = sequence[-1] if sequence else None
            result = results[name]
            if status in ("completed", "failed"):
                assert result.status == status, (name, sequence, result)
            else:
                assert (result.status, result.error) == ("failed", "Pipeline canceled"), (
                    name,
                    sequence,
                    result,
                )
            if status == "cancelled":
                reason = next(d["reason"] for t, d in events if t == f"stage.{name}.cancelled")
                assert reason.endswith("says stop"), reason
        return

    # mark_inside: the stage timed out before its mark step.
    assert not (first and external == "mark_before"), scenario.external
    assert terminal_type == "pipeline_completed", terminal_type
    assert terminal["stages_completed"] == sorted(names), terminal
    for name in names:
        assert sequences[name] == ["started", results[name].status], (name, sequences[name])
    if wide:
        failed = any(r.status == "failed" for r in results.values())
        assert wide[0]["status"] == ("failed" if failed else "completed"), wide[0]

    # Nothing interrupted the run: the model predicts every stage exactly (with a
    # shared idempotency key, its result; see check_idempotent for the rest).
    for name in names:
        if any(
            t == "stage.retry_exhausted" and d["stage"] == name and d["reason"] == "deadline"
            for t, d in events
        ):
            # The next retry could not start before the outer deadline (documented),
            # or the outer scope was cancelled as the last stages ended.
            assert external in ("deadline", "scope_at"), scenario.external
            continue
        want = expected(scenario, name)
        result = results[name]
        assert (result.status, result.error) == (want.status, want.error), (name, result, want)
        if scenario.idempotent and scenario.runs > 1:
            continue
        assert state.calls.get(name, 0) == want.calls, (name, state.calls, want)
        delays = [
            data["delay_ms"]
            for t, data in events
            if t == "stage.retry_scheduled" and data["stage"] == name
        ]
        assert delays == want.delays, (name, delays, want)
        done = next(d for t, d in events if t == f"stage.{name}.{result.status}")
        assert abs(done["duration_ms"] - want.duration_ms) < 2, (name, done, want)
        if ("write", 0.0) in scenario.behaviours[name].steps and not times_out(scenario, name):
            assert outcome.data_after.get(f"w.{name}") == want.calls


def replayable(want: Expected) -> bool:
    return want.status == "completed" and want.error is None


def check_idempotent(scenario: Scenario, outcomes: list[Outcome]) -> None:
    """Runs sharing an idempotency key, none interrupted: each replayable stage ran once."""
    if not (scenario.idempotent and len(outcomes) > 1):
        return
    if scenario.external[0] != "none" or any(o.kind != "results" for o in outcomes):
        return
    for name in scenario.deps:
        want = expected(scenario, name)
        calls = [o.state.calls.get(name, 0) for o in outcomes]
        if replayable(want):
            assert sorted(calls) == [0, want.calls], (name, calls, want)
            first, second = (dict(o.value[name].data) for o in outcomes)
            assert first == second, (name, first, second)
        else:
            assert calls == [want.calls] * len(outcomes), (name, calls, want)


@settings(
    # More while hunting: AUDIT14_EXAMPLES=20000 pytest tests/_engine/test_audit14_legacy_graph_fuzz.py
    max_examples=int(os.environ.get("AUDIT14_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scenarios())
def test_fuzz_legacy_runs_keep_the_documented_semantics(scenario: Scenario) -> None:
    outcomes = run_scenario(scenario)
    event(f"outcome: {outcomes[0].kind}")
    event(f"external: {scenario.external[0]}")
    event(f"chain: {scenario.chain}")
    for index, outcome in enumerate(outcomes):
        check(scenario, outcome, first=index == 0)
    check_idempotent(scenario, outcomes)


def test_timeout_interceptor_keeps_the_callers_stage_timeout_on_a_replay() -> None:
    """A caller's ``ctx.data["_timeout.{stage}"]`` stays after an idempotency replay.

    docs/interceptors.md (and parity.md): the per-stage timeout the caller set is kept,
    "a call leaves the pipeline data as it found it". The idempotency interceptor
    (priority 4) short-circuits a replay before TimeoutInterceptor's ``before`` (5) runs;
    its ``after`` still runs and, finding no record of the call, pops the key.
    """

    async def work(ctx: PipelineContext) -> StageOutput:
        return StageOutput.ok(x=1)

    async def main() -> None:
        graph = StageGraph([StageSpec(name="s", runner=work)])
        for _ in range(2):  # the second run replays "s"
            data = {"idempotency_key": "order-1", "_timeout.s": 2500}
            ctx = PipelineContext.create(topology="t", data=dict(data))
            await graph.run(ctx)
            assert ctx.data == data

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
