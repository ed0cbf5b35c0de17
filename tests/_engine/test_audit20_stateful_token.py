"""A stateful test of CancellationToken, alone and as the token graph runs follow.

Hypothesis draws one operation at a time and the test performs it inside one
``trio.run`` (MockClock, autojump): make a token; register an ``on_cancel``
callback (one that logs, one that raises, one that cancels a token, one that
registers another callback on its own token while it is being cancelled); start
a task that waits on a token, or one that binds a cancel scope around a blocked
wait, then ``unbind`` or release it; start a one-stage graph run, from a
StageContext or a PipelineContext, following a shared token (or none); cancel a
token from the test or from inside a stage; have a stage cancel its own run
(through ``graph.cancel_token``); release a stage; ``mark_canceled`` a run's
PipelineContext (also after the run ended).

After every step, once all tasks are blocked, the test compares with its model:

- each token's ``is_cancelled`` and first ``reason``;
- the callbacks that ran, each once, in the order the model says (registration
  order, nested cancels at the point they happen, late ones at once); a late
  callback's error reaches the caller;
- a bound scope is cancelled (with the token's reason) iff its token was cancelled
  while it was bound; a waiter has returned iff its token is cancelled;
- each run's end: ok when released, cancelled with the reason of whatever
  cancelled it first (its shared token, its own token, its context); a run's own
  cancellation never touches the shared token or other runs;
- the size of each token's callback table: the pending callbacks, live bindings
  and live runs that follow it (nothing of an ended run), and an ended run's own
  token and its PipelineContext hold nothing either;
- at the end, no task is left.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.pipeline.cancellation import CancellationToken
from stageflow_trio.pipeline.dag import UnifiedPipelineCancelled, UnifiedStageGraph
from stageflow_trio.stages.context import PipelineContext
from tests.pipeline.graph_helpers import spec, stage_ctx
from tests.trio_setups import TaskLedger

PENDING = "pending"


class Boom(Exception):
    """What a "boom" callback raises."""


@dataclass(eq=False)
class Tok:
    key: int
    token: CancellationToken = field(default_factory=CancellationToken)
    # The model.
    cancelled: bool = False
    reason: str | None = None
    pending: list[Cb] = field(default_factory=list)


@dataclass(eq=False)
class Cb:
    name: str
    tok: Tok
    kind: str  # "log", "boom", "chain" (cancels target), "reg" (registers name + "r")
    target: Tok | None = None
    reason: str = ""


@dataclass(eq=False)
class Bound:
    key: int
    tok: Tok
    release: trio.Event = field(default_factory=trio.Event)
    unbind: Any = None
    scope: trio.CancelScope | None = None
    seen_reason: Any = PENDING
    exited: bool = False
    # The model.
    alive: bool = True
    bound: bool = True
    cancelled: bool = False


@dataclass(eq=False)
class Waiter:
    tok: Tok
    done: bool = False


@dataclass(eq=False)
class Run:
    key: int
    tok: Tok | None
    pctx: PipelineContext | None
    send: Any
    recv: Any
    graph: Any = None
    own: CancellationToken | None = None  # the token graph.cancel_token gave the stage
    outcome: Any = PENDING
    # The model.
    alive: bool = True
    expected: Any = PENDING


class Model:
    def __init__(self) -> None:
        self.toks: list[Tok] = []
        self.bound: list[Bound] = []
        self.runs: list[Run] = []
        self.fired: list[str] = []  # the callbacks the model says ran, in order

    def end_run(self, run: Run, outcome: tuple[str, ...]) -> None:
        if run.alive:
            run.alive = False
            run.expected = outcome

    def cancel(self, tok: Tok, reason: str) -> None:
        if tok.cancelled:
            return
        tok.cancelled, tok.reason = True, reason
        pending, tok.pending = tok.pending, []
        # The real table holds callbacks, bindings and run links together, in
        # registration order; only the callbacks' order is observable, and the
        # others have no effect a callback could see (a run ends later, a bound
        # task exits later).
        for b in self.bound:
            if b.tok is tok and b.alive and b.bound:
                b.cancelled, b.alive, b.bound = True, False, False
        for run in self.runs:
            if run.tok is tok:
                self.end_run(run, ("cancelled", reason))
        for cb in pending:
            with contextlib.suppress(Boom):  # cancel() logs it
                self.fire(cb)

    def fire(self, cb: Cb) -> None:
        self.fired.append(cb.name)
        if cb.kind == "boom":
            raise Boom(cb.name)
        if cb.kind == "chain":
            assert cb.target is not None
            self.cancel(cb.target, cb.reason)
        elif cb.kind == "reg":
            self.register(Cb(cb.name + "r", cb.tok, "log"))

    def register(self, cb: Cb) -> None:
        if cb.tok.cancelled:
            self.fire(cb)  # a Boom propagates, as from on_cancel
        else:
            cb.tok.pending.append(cb)


def make_callback(cb: Cb, fired: list[str]) -> Any:
    def callback() -> None:
        fired.append(cb.name)
        if cb.kind == "boom":
            raise Boom(cb.name)
        if cb.kind == "chain":
            assert cb.target is not None
            cb.target.token.cancel(cb.reason)
        elif cb.kind == "reg":
            child = Cb(cb.name + "r", cb.tok, "log")
            cb.tok.token.on_cancel(make_callback(child, fired))

    return callback


def check(model: Model, fired: list[str], waiters: list[Waiter], step: str) -> None:
    assert fired == model.fired, step
    for tok in model.toks:
        assert tok.token.is_cancelled == tok.cancelled, (step, tok.key)
        assert tok.token.reason == tok.reason, (step, tok.key)
        live = (
            len(tok.pending)
            + sum(1 for b in model.bound if b.tok is tok and b.alive and b.bound)
            + sum(1 for r in model.runs if r.tok is tok and r.alive)
        )
        assert len(tok.token._callbacks) == (0 if tok.cancelled else live), (step, tok.key)
    for b in model.bound:
        assert b.scope is not None
        assert b.scope.cancel_called == b.cancelled, (step, b.key)
        assert b.exited == (not b.alive), (step, b.key)
        if b.cancelled:
            assert b.seen_reason == b.tok.reason, (step, b.key)
        elif not b.alive:
            assert b.seen_reason is None, (step, b.key)
    for w in waiters:
        assert w.done == w.tok.cancelled, step
    for run in model.runs:
        assert run.outcome == run.expected, (step, run.key)
        if run.own is not None:
            # The stage's token is the run's own, never the caller's.
            assert all(run.own is not t.token for t in model.toks), step
            if not run.alive:
                assert len(run.own._callbacks) == 0, (step, run.key)
        if run.pctx is not None and not run.alive:
            assert len(run.pctx._cancel_callbacks) == 0, (step, run.key)


def run_example(data: st.DataObject) -> None:
    steps = data.draw(st.integers(1, 40), label="steps")
    ledger = TaskLedger()
    model = Model()
    fired: list[str] = []
    waiters: list[Waiter] = []
    counter = iter(range(1_000_000))

    def reason() -> str:
        return f"why{next(counter)}"

    def new_tok() -> Tok:
        tok = Tok(next(counter))
        model.toks.append(tok)
        return tok

    async def bound_task(b: Bound) -> None:
        with trio.CancelScope() as scope:
            b.scope = scope
            b.unbind = b.tok.token.bind_scope(scope)
            try:
                await b.release.wait()
                b.seen_reason = None
            except trio.Cancelled as exc:
                b.seen_reason = exc.reason
                raise
            finally:
                b.unbind()
                b.exited = True

    async def waiter_task(w: Waiter) -> None:
        await w.tok.token.wait()
        w.done = True

    def make_graph(run: Run) -> UnifiedStageGraph:
        async def stage(ctx: StageContext) -> StageOutput:
            run.own = run.graph.cancel_token
            while True:
                command, *args = await run.recv.receive()
                if command == "release":
                    return StageOutput.ok()
                args[0].cancel(args[1])  # a token, a reason; Cancelled comes next

        return UnifiedStageGraph([spec("block", stage)])

    async def run_task(run: Run) -> None:
        ctx: Any = run.pctx if run.pctx is not None else stage_ctx()
        token = run.tok.token if run.tok is not None else None
        try:
            await run.graph.run(ctx, cancel_token=token)
        except UnifiedPipelineCancelled as exc:
            run.outcome = ("cancelled", exc.reason)
        else:
            run.outcome = ("ok",)

    async def main() -> None:
        baseline = set(ledger.alive)
        new_tok()
        async with trio.open_nursery() as nursery:
            for i in range(steps):
                ops = ["token", "on_cancel", "bind", "wait", "start", "cancel"]
                live_bound = [b for b in model.bound if b.alive]
                live_runs = [r for r in model.runs if r.alive and r.own is not None]
                ctx_runs = [r for r in model.runs if r.pctx is not None]
                if live_bound:
                    ops += ["unbind", "release_scope"]
                if live_runs:
                    ops += ["release_run", "stage_cancel_own", "stage_cancel_token"] * 2
                if ctx_runs:
                    ops += ["mark_canceled"]
                op = data.draw(st.sampled_from(ops), label=f"op{i}")
                tok = data.draw(st.sampled_from(model.toks), label="token")
                step = f"step {i}: {op} on token {tok.key}"
                if op == "token":
                    new_tok()
                elif op == "on_cancel":
                    kind = data.draw(st.sampled_from(["log", "boom", "chain", "reg"]))
                    target = data.draw(st.sampled_from(model.toks)) if kind == "chain" else None
                    cb = Cb(f"cb{next(counter)}", tok, kind, target, reason())
                    model_raised = real_raised = False
                    try:
                        model.register(cb)
                    except Boom:
                        model_raised = True
                    try:
                        tok.token.on_cancel(make_callback(cb, fired))
                    except Boom:
                        real_raised = True
                    assert real_raised == model_raised, step
                elif op == "bind":
                    b = Bound(next(counter), tok)
                    model.bound.append(b)
                    if tok.cancelled:  # cancelled at once: the task exits
                        b.cancelled, b.alive, b.bound = True, False, False
                    nursery.start_soon(bound_task, b)
                elif op == "wait":
                    w = Waiter(tok)
                    waiters.append(w)
                    nursery.start_soon(waiter_task, w)
                elif op == "unbind":
                    b = data.draw(st.sampled_from(live_bound))
                    b.unbind()
                    b.bound = False
                elif op == "release_scope":
                    b = data.draw(st.sampled_from(live_bound))
                    b.release.set()
                    b.alive = b.bound = False
                elif op == "start":
                    shared = data.draw(st.sampled_from([tok, None]), label="shared")
                    pctx = (
                        PipelineContext.create(topology="t", input_text="hi")
                        if data.draw(st.booleans(), label="pctx")
                        else None
                    )
                    send, recv = trio.open_memory_channel[Any](10)
                    run = Run(next(counter), shared, pctx, send, recv)
                    run.graph = make_graph(run)
                    model.runs.append(run)
                    if shared is not None and shared.cancelled:
                        assert shared.reason is not None
                        model.end_run(run, ("cancelled", shared.reason))
                    nursery.start_soon(run_task, run)
                elif op == "cancel":
                    why = reason()
                    model.cancel(tok, why)
                    tok.token.cancel(why)
                elif op == "release_run":
                    run = data.draw(st.sampled_from(live_runs))
                    model.end_run(run, ("ok",))
                    run.send.send_nowait(("release",))
                elif op == "stage_cancel_own":
                    run = data.draw(st.sampled_from(live_runs))
                    why = reason()
                    model.end_run(run, ("cancelled", why))
                    run.send.send_nowait(("cancel", run.own, why))
                elif op == "stage_cancel_token":
                    run = data.draw(st.sampled_from(live_runs))
                    why = reason()
                    model.cancel(tok, why)
                    run.send.send_nowait(("cancel", tok.token, why))
                elif op == "mark_canceled":
                    run = data.draw(st.sampled_from(ctx_runs))
                    assert run.pctx is not None
                    why = reason()
                    first = run.pctx.cancellation_reason or why
                    model.end_run(run, ("cancelled", first))
                    run.pctx.mark_canceled(why)
                await trio.testing.wait_all_tasks_blocked()
                check(model, fired, waiters, step)
            # Wind down: release every run and scope, cancel every token.
            for run in model.runs:
                if run.alive and run.own is not None:
                    model.end_run(run, ("ok",))
                    run.send.send_nowait(("release",))
            for b in model.bound:
                if b.alive:
                    b.release.set()
                    b.alive = b.bound = False
            await trio.testing.wait_all_tasks_blocked()
            check(model, fired, waiters, "released")
            for tok in model.toks:
                model.cancel(tok, "end")
                tok.token.cancel("end")
            await trio.testing.wait_all_tasks_blocked()
            check(model, fired, waiters, "end")
        assert ledger.alive - baseline == set()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0), instruments=[ledger])


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.data())
def test_tokens_and_the_runs_that_follow_them_match_the_model(data: st.DataObject) -> None:
    run_example(data)


@pytest.mark.parametrize("before", [False, True])
async def test_a_run_following_a_token_cancelled_with_an_empty_reason_reports_it_as_a_direct_run(
    autojump_clock: trio.abc.Clock, before: bool
) -> None:
    # The link turned "" into "Cancellation requested"; a run whose own token or
    # context is cancelled with "" says "Cancelled via token", as the reference does.
    async def forever(ctx: StageContext) -> StageOutput:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    graph = UnifiedStageGraph([spec("a", forever)])
    token = CancellationToken()
    if before:
        token.cancel("")
    async with trio.open_nursery() as nursery:

        async def run() -> None:
            with pytest.raises(UnifiedPipelineCancelled) as info:
                await graph.run(stage_ctx(), cancel_token=token)
            assert (info.value.stage, info.value.reason) == ("<external>", "Cancelled via token")

        nursery.start_soon(run)
        await trio.sleep(1)
        token.cancel("")
