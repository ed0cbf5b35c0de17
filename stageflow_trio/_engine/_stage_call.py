"""The interceptor chain around one legacy stage call.

Order of a call:

1. ``before`` on each interceptor in ascending priority. The first result with
   ``stage_ran=False`` short-circuits: the stage counts as "completed" with the
   result's data (even when it carries an error: parity with the reference).
   When that data is a :class:`StageResult` (a cached result), its ``data``
   and ``error`` are used; any other value that is not a mapping is wrapped as
   ``{"result": value}`` (a falsy one gives ``{}``, as in the reference).
2. The stage, under a cancel scope of ``ctx.data["_timeout.{stage}"]`` ms
   (default 30000; ``<= 0`` means none). A timeout, or a ``TimeoutError`` the
   stage raises itself, becomes the builtin ``TimeoutError("Stage timed out
   after {ms}ms")``. A value that is not an int or float (or is a bool or
   NaN) raises TypeError / ValueError out of the chain, naming the key (or
   ``_timeout_ms`` when a TimeoutInterceptor copied it from there).
3. On an exception (a timeout included), ``on_error`` in descending priority:
   the first action other than FAIL wins. RETRY runs the stage again (without
   the before hooks) and asks again if it fails again, up to
   :data:`MAX_CHAIN_RETRIES` times; FALLBACK counts as FAIL.
4. ``after`` on every interceptor, in descending priority. After a
   short-circuit, :func:`stage_short_circuited` is True while they run.

The results the chain builds itself (a short-circuit, a failure) start at the
call's wall-clock start and end :func:`~stageflow_trio._time.ended_at` that
start plus the time elapsed on trio's clock, so ``ended_at - started_at`` is the
call's duration on the run's clock (exact under ``MockClock``).

Interceptor errors are logged and swallowed, except
:class:`CriticalInterceptorError` from ``before``/``after``, which escapes.

Aborted calls. ``trio.Cancelled`` is never caught, so a cancelled call skips
``after`` (as in the reference). So that interceptors holding per-call
resources (the idempotency in-flight claim, a tracing span, the retry state)
can release them, the chain calls the optional hook ``on_abort(stage_name,
ctx)`` whenever the call ends by an exception (cancellation, a
CriticalInterceptorError, anything else) on every interceptor whose ``before``
returned and whose ``after`` has not been called, in descending priority.
When the cancellation came after the stage completed (an ``after`` hook
awaited), :func:`completed_before_abort` gives those hooks the stage's result.
Each hook runs shielded from cancellation in a slot of its own of at most
:data:`ABORT_HOOK_TIMEOUT` seconds, so a slow hook cannot starve the ones after
it (the idempotency interceptor's release among them); their own errors are
logged and swallowed; then the original exception propagates unchanged. An interceptor whose ``before`` is interrupted
must clean up after itself. The abort path, hooks included, is protected from
Ctrl-C (``trio.lowlevel.enable_ki_protection``): a KeyboardInterrupt arriving
meanwhile is raised at the next checkpoint, so it cannot skip a hook.
"""

from __future__ import annotations

import logging
import re
import reprlib
from collections.abc import Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import trio
from trio import current_time

from stageflow_trio._args import error_text
from stageflow_trio._budget import checkpoint_due
from stageflow_trio._engine._hints import ASYNCIO_NOTE, from_asyncio, log_stage_mistake
from stageflow_trio._engine._interceptors import CriticalInterceptorError, ErrorAction
from stageflow_trio._time import ended_at, utc_now
from stageflow_trio.stages.result import StageResult

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence
    from contextvars import Token
    from datetime import datetime

    from stageflow_trio._engine._interceptors import BaseInterceptor, InterceptorResult
    from stageflow_trio.stages.context import PipelineContext

logger: logging.Logger = logging.getLogger("stageflow_trio.interceptors")

DEFAULT_TIMEOUT_MS = 30000
"""Stage timeout used when no TimeoutInterceptor set one (milliseconds)."""

MAX_CHAIN_RETRIES = 100
"""How many times one call re-runs a stage on RETRY before treating it as FAIL."""

ABORT_HOOK_TIMEOUT = 5.0
"""Seconds each ``on_abort`` hook of an aborted call may take (every hook has its own slot)."""

STAGE_ATTEMPT_KEY = "_stage_attempt.{stage}"
"""``ctx.data`` key (format with ``stage=``) of the number of this run of a stage within one
pipeline run: 2 for the first re-run, and so on; absent for the first run.

The unified graph sets it when it runs a stage again in the same run (a guard
retry re-runs the retry stage and the guard), so interceptors can tell a new
attempt from a repeat (``pipeline.idempotency`` makes it part of its store key).
"""

# While the after hooks of a short-circuited call run (set only on that rare path):
# the interceptors whose before hook ran for the call, in order. None otherwise.
_short_circuited: ContextVar[tuple[BaseInterceptor, ...] | None] = ContextVar(
    "stageflow_trio_short_circuited", default=None
)


# True from a stage's return to the end of its call's after hooks when the stage's
# outcome is more than its StageResult says (a unified stage that returned skip,
# cancel or retry: "completed" to the interceptors).
_not_a_completion: ContextVar[bool] = ContextVar("stageflow_trio_not_a_completion", default=False)


def stage_short_circuited() -> bool:
    """Whether the ``after`` hook calling this belongs to a call whose stage did not run.

    True when a ``before`` hook short-circuited the call, so the result handed
    to ``after`` is that interceptor's, not the stage's.
    """
    return _short_circuited.get() is not None


def before_ran(interceptor: BaseInterceptor) -> bool:
    """Whether ``interceptor``'s ``before`` hook ran for the call whose ``after`` calls this.

    False only in the ``after`` of a call that an interceptor earlier in the chain
    short-circuited (every ``after`` runs, also those whose ``before`` did not).
    """
    entered = _short_circuited.get()
    return entered is None or interceptor in entered


def stage_result_replayable() -> bool:
    """Whether the result handed to the calling ``after`` hook can stand for the stage's outcome.

    False for a short-circuited call (the result is the interceptor's) and for
    a stage whose outcome the result cannot carry (:func:`mark_not_a_completion`):
    replaying either as the stage's answer would change what a run does (the
    idempotency interceptor caches only what this allows).
    """
    return _short_circuited.get() is None and not _not_a_completion.get()


# Set only while an aborted call's on_abort hooks run, when the call was cancelled
# after its stage completed (an after hook was interrupted): that result.
_aborted_result: ContextVar[StageResult | None] = ContextVar(
    "stageflow_trio_aborted_result", default=None
)


def completed_before_abort() -> StageResult | None:
    """In an ``on_abort`` hook: the stage's result if the call was cancelled after it.

    A call cancelled while its ``after`` hooks ran (one of them awaited) had a
    stage that completed: its side effects happened. The hooks whose ``after``
    was skipped get this result in ``on_abort``, so that an interceptor that
    records completions (the idempotency interceptor) can still record it. None
    for every other abort: a cancelled or failed stage, a short-circuited call
    or one whose result cannot stand for the stage's outcome (see
    :func:`stage_result_replayable`), or an abort by another exception.
    """
    return _aborted_result.get()


def _end_completion(completion: Token[bool] | None) -> None:
    """Undo this call's effect on the mark (after its after hooks)."""
    if completion is not None:
        _not_a_completion.reset(completion)
    elif _not_a_completion.get():  # its stage marked it: back to the call's start
        _not_a_completion.set(False)


def mark_not_a_completion() -> None:
    """Called by a ``stage_run`` whose stage ended otherwise than its "completed" result says.

    Lasts until the call's after hooks have run (the chain resets it).
    """
    _not_a_completion.set(True)


def _sorted(interceptors: Sequence[BaseInterceptor]) -> Sequence[BaseInterceptor]:
    # The graphs pass lists sorted once at construction; checking is cheaper than sorting.
    for i in range(1, len(interceptors)):
        if interceptors[i - 1].priority > interceptors[i].priority:
            return sorted(interceptors, key=_priority)
    return interceptors


def _priority(interceptor: BaseInterceptor) -> int:
    return interceptor.priority


def _log_hook_error(interceptor: BaseInterceptor, hook: str, exc: Exception) -> None:
    text = error_text(exc)  # an error whose __str__ raises is still only logged
    extra = {"interceptor": interceptor.name, "error": text}
    if from_asyncio(exc):
        # Only logged, and the run goes on without the hook: say why it failed here.
        logger.error(
            "Interceptor %s %s() failed: %s; %s",
            interceptor.name,
            hook,
            text,
            ASYNCIO_NOTE,
            extra=extra,
        )
        return
    logger.error("Interceptor %s %s() failed: %s", interceptor.name, hook, text, extra=extra)


class InterceptorChain:
    """Interceptors sorted by priority, with their hooks looked up once.

    A graph makes one when it is built, so a stage call neither sorts nor looks
    up a hook. ``mistakes``: where to log the note of a usual mistake
    (:func:`~stageflow_trio._engine._hints.log_stage_mistake`) when a stage's error
    becomes a failed result, for callers that keep only the error's text (the
    legacy graph, :func:`run_with_interceptors`); None for the unified graph,
    which raises the error with its note.
    """

    __slots__ = ("afters", "befores", "mistakes", "ordered")

    def __init__(
        self,
        interceptors: Sequence[BaseInterceptor],
        *,
        mistakes: logging.Logger | None = None,
    ) -> None:
        ordered = tuple(_sorted(interceptors))
        self.ordered = ordered
        self.mistakes = mistakes
        self.befores = tuple((interceptor, interceptor.before) for interceptor in ordered)
        # The after hooks run in descending priority; each with its index in ordered.
        self.afters = tuple(
            (index, ordered[index], ordered[index].after)
            for index in range(len(ordered) - 1, -1, -1)
        )


async def run_with_interceptors(
    stage_name: str,
    stage_run: Callable[[], Awaitable[StageResult]],
    ctx: PipelineContext,
    interceptors: Sequence[BaseInterceptor],
) -> StageResult:
    """Run ``stage_run`` wrapped by ``interceptors`` (see the module docstring).

    A checkpoint (also when every hook and the stage return without awaiting).

    Raises:
        CriticalInterceptorError: raised by a ``before`` or ``after`` hook.
        trio.Cancelled: the enclosing scope was cancelled.
    """
    await trio.lowlevel.checkpoint()
    chain = InterceptorChain(interceptors, mistakes=logger)
    return await _run_chain(stage_name, stage_run, ctx, chain, utc_now(), current_time())


async def run_chain(
    stage_name: str,
    stage_run: Callable[[], Awaitable[StageResult]],
    ctx: PipelineContext,
    chain: InterceptorChain,
    started_at: datetime,
    started: float,
) -> StageResult:
    """:func:`run_with_interceptors` for the graphs: a checkpoint under the checkpoint budget.

    The graphs pass a checkpoint of their own between two stages; here the
    chain is always a cancellation point, and a schedule point when the budget
    says one is due. ``started_at`` (wall clock) and ``started`` (trio clock)
    are the call's start, which the graph has read already.
    """
    if checkpoint_due():
        await trio.lowlevel.checkpoint()
    return await _run_chain(stage_name, stage_run, ctx, chain, started_at, started)


async def _run_chain(
    stage_name: str,
    stage_run: Callable[[], Awaitable[StageResult]],
    ctx: PipelineContext,
    chain: InterceptorChain,
    started_at: datetime,
    started: float,
) -> StageResult:
    ordered = chain.ordered
    # entered: how many befores returned; after_from: after has been called on
    # ordered[after_from:]. On an abort, ordered[:min(entered, after_from)] get on_abort.
    entered = 0
    after_from = len(ordered)
    marked: Token[tuple[BaseInterceptor, ...] | None] | None = None
    # Set only when this call runs inside the after hooks of a marked call (rare):
    # the common path reads the variable instead of setting and resetting it.
    completion: Token[bool] | None = None
    if _not_a_completion.get():
        completion = _not_a_completion.set(False)
    result: StageResult | None = None
    try:
        short_circuit: InterceptorResult | None = None
        for interceptor, before in chain.befores:
            try:
                outcome = await before(stage_name, ctx)
            except CriticalInterceptorError:
                raise
            except Exception as exc:  # noqa: BLE001 - hook errors are isolated
                _log_hook_error(interceptor, "before", exc)
                entered += 1
                continue
            entered += 1
            if outcome is not None and not outcome.stage_ran:
                short_circuit = outcome
                if logger.isEnabledFor(logging.INFO):
                    logger.info(
                        "Interceptor %s short-circuited stage %s",
                        interceptor.name,
                        stage_name,
                        extra={"interceptor": interceptor.name, "stage": stage_name},
                    )
                break

        if short_circuit is not None:
            result = _short_circuit_result(stage_name, short_circuit, started_at, started)
            marked = _short_circuited.set(ordered[:entered])
        else:
            result = await _run_stage(stage_name, stage_run, ctx, chain, started_at, started)
            if _short_circuited.get() is not None:  # a chain run inside such an after
                marked = _short_circuited.set(None)

        for index, interceptor, after in chain.afters:
            after_from = index
            try:
                await after(stage_name, result, ctx)
            except CriticalInterceptorError:
                raise
            except Exception as exc:  # noqa: BLE001 - hook errors are isolated
                _log_hook_error(interceptor, "after", exc)
    except BaseException as exc:
        # Nothing before this call (no signal check): a Ctrl-C cannot skip it.
        await _aborted(
            exc, result, completion, marked, ordered, entered, after_from, stage_name, ctx
        )
        raise
    _end_completion(completion)
    if marked is not None:
        _short_circuited.reset(marked)
    return result


@trio.lowlevel.enable_ki_protection
async def _aborted(
    exc: BaseException,
    result: StageResult | None,
    completion: Token[bool] | None,
    marked: Token[tuple[BaseInterceptor, ...] | None] | None,
    ordered: Sequence[BaseInterceptor],
    entered: int,
    after_from: int,
    stage_name: str,
    ctx: PipelineContext,
) -> None:
    """The abort path of a call ended by ``exc``: undo its marks, then run the ``on_abort``
    hooks of ``ordered[:min(entered, after_from)]``.

    Protected from Ctrl-C (the hooks too): a KeyboardInterrupt coming meanwhile (a second
    Ctrl-C, or one during a cancellation) is raised at the next checkpoint, in a hook
    (which :func:`_abort` defers past the others) or after; raised here, it would skip the
    hooks, the idempotency claim's release among them.
    """
    # Read before the marks are undone: the stage's own, replayable result.
    completed = (
        result
        if result is not None and isinstance(exc, trio.Cancelled) and stage_result_replayable()
        else None
    )
    _end_completion(completion)
    if marked is not None:
        _short_circuited.reset(marked)
    pending = min(entered, after_from)
    if pending:
        aborted = _aborted_result.set(completed)
        try:
            await _abort(ordered[:pending], stage_name, ctx)
        finally:
            _aborted_result.reset(aborted)


def _short_circuit_result(
    stage_name: str, short_circuit: InterceptorResult, started_at: datetime, started: float
) -> StageResult:
    data = short_circuit.result
    error = short_circuit.error
    if isinstance(data, StageResult):
        # A replayed result: use its payload (the reference put the object itself in data).
        if error is None:
            error = data.error
        data = data.data
    elif not data:
        data = {}
    elif not isinstance(data, Mapping):
        # The reference puts any value in data; ours holds mappings, so the value is kept
        # under a key instead of failing the call after the interceptor's decision.
        data = {"result": data}
    return StageResult(
        name=stage_name,
        status="completed",
        started_at=started_at,
        ended_at=ended_at(started_at, current_time() - started),
        data=data,
        error=error,
    )


async def _run_stage(
    stage_name: str,
    stage_run: Callable[[], Awaitable[StageResult]],
    ctx: PipelineContext,
    chain: InterceptorChain,
    started_at: datetime,
    started: float,
) -> StageResult:
    timeout_ms = ctx.data.get(f"_timeout.{stage_name}", DEFAULT_TIMEOUT_MS)
    if type(timeout_ms) is not int:
        _check_timeout_ms(stage_name, ctx, timeout_ms)
    timeout_s = timeout_ms / 1000.0
    retries = 0
    while True:
        error: Exception
        try:
            if timeout_s <= 0:
                return await stage_run()
            # move_on_after(timeout_s), with the deadline computed here: trio's
            # relative deadline costs another clock read and check per stage.
            with trio.CancelScope(deadline=current_time() + timeout_s):
                return await stage_run()
            # Only reached when the cancel scope fired.
            error = _timed_out(stage_name, timeout_ms)
        except TimeoutError:
            error = _timed_out(stage_name, timeout_ms)
        except Exception as exc:  # noqa: BLE001 - any stage error goes to on_error
            error = exc
        try:
            action = await _ask_on_error(chain.ordered, stage_name, error, ctx)
            if action is ErrorAction.RETRY and retries < MAX_CHAIN_RETRIES:
                retries += 1
                continue
            if chain.mistakes is not None:
                # The result keeps only the error's text: say what to change here.
                log_stage_mistake(chain.mistakes, stage_name, error)
            return StageResult(
                name=stage_name,
                status="failed",
                started_at=started_at,
                ended_at=ended_at(started_at, current_time() - started),
                error=error_text(error),
            )
        finally:
            del error  # this frame is in the stage error's traceback: no cycle


_ABSENT = object()


def _check_timeout_ms(stage_name: str, ctx: PipelineContext, value: object) -> None:
    """Raise TypeError / ValueError unless ``value`` is an int or float (not a bool, not NaN).

    The message names the key the value came from: ``_timeout_ms`` when it is
    that key's value (a TimeoutInterceptor copies it), else ``_timeout.{stage}``.
    """
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if number and value == value:  # value != value: NaN
        return
    key = f"_timeout.{stage_name}"
    if ctx.data.get("_timeout_ms", _ABSENT) is value:
        key = "_timeout_ms"
    where = f"Stage {stage_name!r}: ctx.data[{key!r}]"
    if number:
        raise ValueError(f"{where} must be a number of milliseconds, not NaN")
    raise TypeError(
        f"{where} must be a number of milliseconds (int or float; <= 0: no timeout); "
        f"got {type(value).__name__} {reprlib.repr(value)}"
    )


# What the error text of a stage the chain timed out carries. A graph keeps only a
# failed stage's error text, so ``summarize_pipeline_error`` finds the timeout by it;
# kept beside the message made below, so the two cannot drift apart.
TIMEOUT_TEXT = re.compile(r"\bStage timed out after \d+(?:\.\d+)?ms\b")


def _timed_out(stage_name: str, timeout_ms: Any) -> TimeoutError:
    logger.warning(
        "Stage %s timed out after %sms",
        stage_name,
        timeout_ms,
        extra={"stage": stage_name, "timeout_ms": timeout_ms},
    )
    return TimeoutError(f"Stage timed out after {timeout_ms}ms")


async def _ask_on_error(
    ordered: Sequence[BaseInterceptor], stage_name: str, error: Exception, ctx: PipelineContext
) -> ErrorAction:
    for interceptor in reversed(ordered):
        try:
            action = await interceptor.on_error(stage_name, error, ctx)
        except Exception as exc:  # noqa: BLE001 - hook errors are isolated
            _log_hook_error(interceptor, "on_error", exc)
            continue
        if action is not ErrorAction.FAIL:
            return action
    return ErrorAction.FAIL


async def _abort(pending: Sequence[BaseInterceptor], stage_name: str, ctx: PipelineContext) -> None:
    # A KeyboardInterrupt or SystemExit in one hook (trio delivers a Ctrl-C even in
    # a shielded scope), or a stray Cancelled it raises, must not keep the next hooks
    # from running, the idempotency claim's release among them: it is raised once
    # they all ran, as CancellationToken.cancel does with its callbacks.
    interrupt: BaseException | None = None
    for interceptor in reversed(pending):
        hook = getattr(interceptor, "on_abort", None)
        if hook is None:
            continue
        # Shielded: the call is usually being cancelled, yet each hook must run to
        # its end. Bounded one by one: a hook that overruns loses only its own slot.
        with trio.CancelScope(shield=True), trio.move_on_after(ABORT_HOOK_TIMEOUT) as bound:
            try:
                await hook(stage_name, ctx)
            except Exception as exc:  # noqa: BLE001 - hook errors are isolated
                _log_hook_error(interceptor, "on_abort", exc)
            except BaseException as exc:  # raised below, once all ran
                if isinstance(exc, trio.Cancelled) and bound.cancel_called:
                    raise  # the slot's own deadline: caught by move_on_after
                # Any other Cancelled is a stray one the hook raised (the slot is
                # shielded): deferred too (audit 22: it ended the loop, so the later
                # hooks, the idempotency claim's release among them, never ran).
                if interrupt is None:
                    interrupt = exc
        if bound.cancelled_caught:
            logger.warning(
                "Interceptor %s on_abort() for stage %s did not finish within %ss",
                interceptor.name,
                stage_name,
                ABORT_HOOK_TIMEOUT,
            )
    if interrupt is not None:
        try:
            raise interrupt
        finally:
            del interrupt  # no reference cycle through this frame
