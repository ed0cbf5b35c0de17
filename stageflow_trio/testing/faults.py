"""Make a named stage misbehave on chosen attempts: raise, fail, cancel, hang or take time.

A :class:`FaultPlan` lists :class:`Fault` values. It injects them two ways:

- :meth:`FaultPlan.apply` wraps the runners of a :class:`~stageflow_trio.pipeline.Pipeline`
  (the unified graph), so every action is available: the wrapper raises, returns
  ``StageOutput.fail`` or ``StageOutput.cancel``, blocks until cancelled, or sleeps
  on the trio clock before calling the stage. :meth:`FaultPlan.wrap` wraps one runner.
- :meth:`FaultPlan.interceptor` gives a :class:`FaultInjectionInterceptor` for the
  graphs that run an interceptor chain (the legacy ``StageGraph``, and a
  ``UnifiedStageGraph`` built with ``interceptors=``). An interceptor runs before
  the stage and cannot make it return, so it offers ``raise`` (as a
  ``CriticalInterceptorError``, the one error a chain lets out), ``hang`` and
  ``delay``.

Attempts count the calls of each stage from 1 (a guard retry or a chain retry is
the next attempt). Inside an :func:`~stageflow_trio.testing.explore_cancellation`
run the count starts afresh for every run, so a plan made once serves every rerun.
"""

# ruff: noqa: ARG002
# (the interceptor hooks take the chain's arguments whether they use them or not)

from __future__ import annotations

import copy
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

import attrs
import trio

from stageflow_trio._args import check_number
from stageflow_trio._frozen import frozen_compat
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.pipeline.interceptors import (
    BaseInterceptor,
    CriticalInterceptorError,
    InterceptorResult,
)
from stageflow_trio.pipeline.pipeline import Pipeline, UnifiedStageSpec
from stageflow_trio.testing.explore import RunRecord, _current

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from stageflow_trio.core.stage_context import StageContext
    from stageflow_trio.stages.context import PipelineContext
    from stageflow_trio.stages.result import StageResult

__all__ = ["Fault", "FaultAction", "FaultInjectionInterceptor", "FaultPlan"]

FaultAction = Literal["raise", "fail", "cancel", "hang", "delay"]
"""What a fault does to the stage call it hits."""

_ACTIONS = ("raise", "fail", "cancel", "hang", "delay")
_INTERCEPTOR_ACTIONS = ("raise", "hang", "delay")


def _attempts(value: Iterable[int] | None) -> frozenset[int] | None:
    if value is None:
        return None
    if isinstance(value, int | str) or not isinstance(value, Iterable):
        raise TypeError(
            f"Fault: attempts must be an iterable of ints >= 1 or None; got {type(value).__name__}"
        )
    numbers = frozenset(value)
    for number in numbers:
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:  # type: ignore[redundant-expr]
            raise ValueError(f"Fault: attempts must hold ints >= 1; got {number!r}")
    return numbers


class _SameError:
    """How ``Fault.error`` takes part in ``==`` and ``hash``: by what a ``"raise"`` raises.

    The fault raises ``copy.copy(error)``, a new instance made from the error's
    type, ``args`` and attributes (its ``__dict__``), so two faults whose errors
    agree on those inject the same thing and are equal. (Exceptions compare by
    identity: two faults built alike were unequal, and so was a pickled fault
    to itself.) The hash takes the type only: ``args`` may be unhashable.
    """

    __slots__ = ("error",)

    def __init__(self, error: BaseException | None) -> None:
        self.error = error

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _SameError):
            return NotImplemented
        mine, theirs = self.error, other.error
        if mine is theirs:
            return True
        if mine is None or theirs is None or type(mine) is not type(theirs):
            return False
        return bool(
            mine.args == theirs.args
            and getattr(mine, "__dict__", None) == getattr(theirs, "__dict__", None)
        )

    def __hash__(self) -> int:
        return hash(type(self.error))


@frozen_compat
@attrs.frozen
class Fault:
    """One injected misbehaviour.

    Attributes:
        stage: The stage it hits.
        action: ``"raise"`` (``error``), ``"fail"`` (``StageOutput.fail(message)``),
            ``"cancel"`` (``StageOutput.cancel(message)``), ``"hang"`` (block until
            cancelled) or ``"delay"`` (sleep ``seconds`` on the trio clock, then run
            the stage).
        attempts: The attempts (from 1) it hits; ``None`` for every attempt.
        error: The exception ``"raise"`` raises (a copy of it each time). Faults
            compare it by type, ``args`` and attributes (what the copy is made
            of), not by identity: ``Fault("s", "raise", error=ValueError("x"))``
            built twice gives equal faults.
        message: The error or reason of ``"fail"`` and ``"cancel"``.
        seconds: How long ``"delay"`` sleeps.

    Raises:
        TypeError / ValueError: a field has the wrong type or value: ``error`` an
            exception instance or None (required for ``"raise"``), ``message`` a
            str, ``seconds`` a finite number >= 0.
    """

    stage: str = attrs.field()
    action: FaultAction = attrs.field()
    attempts: frozenset[int] | None = attrs.field(default=None, converter=_attempts)
    error: BaseException | None = attrs.field(default=None, eq=_SameError)
    message: str = "injected fault"
    seconds: float = 0.0

    @stage.validator
    def _check_stage(self, _: Any, value: object) -> None:
        if not isinstance(value, str) or not value:
            raise TypeError(f"Fault: stage must be a non-empty str; got {value!r}")

    @action.validator
    def _check_action(self, _: Any, value: object) -> None:
        if value not in _ACTIONS:
            raise ValueError(f"Fault: action must be one of {list(_ACTIONS)}; got {value!r}")

    def __attrs_post_init__(self) -> None:
        # Checked here, not when the stage runs: a "raise" fault without an error
        # failed the stage with an AssertionError that looked like the injected fault.
        if self.error is not None and not isinstance(self.error, BaseException):
            raise TypeError(
                f"Fault: error must be an exception instance or None; got {type(self.error).__name__}"
            )
        if self.action == "raise" and self.error is None:
            raise ValueError(f"Fault: a 'raise' fault needs an error (stage {self.stage!r})")
        if not isinstance(self.message, str):
            raise TypeError(f"Fault: message must be a str; got {type(self.message).__name__}")
        check_number("Fault", "seconds", self.seconds, minimum=0)

    def hits(self, attempt: int) -> bool:
        """Whether this fault applies to ``attempt`` (counted from 1)."""
        return self.attempts is None or attempt in self.attempts


class FaultPlan:
    """The faults to inject, by stage; build it with the chaining methods.

    Example: ``FaultPlan().raise_error("fetch", ConnectionError("down"),
    attempts=[1]).delay("save", 2.5)``. For one call of a stage the first fault
    added for it that hits the attempt applies.
    """

    def __init__(self, faults: Iterable[Fault] = ()) -> None:
        self._faults: list[Fault] = []
        for fault in faults:
            self.add(fault)
        self._counts: dict[str, int] = {}
        self._run_counts: weakref.WeakKeyDictionary[RunRecord, dict[str, int]] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def faults(self) -> tuple[Fault, ...]:
        """Every fault, in the order added."""
        return tuple(self._faults)

    def add(self, fault: Fault) -> FaultPlan:
        """Add ``fault``; returns the plan."""
        if not isinstance(fault, Fault):
            raise TypeError(f"FaultPlan.add: fault must be a Fault; got {type(fault).__name__}")
        self._faults.append(fault)
        return self

    def raise_error(
        self, stage: str, error: BaseException, *, attempts: Iterable[int] | None = None
    ) -> FaultPlan:
        """Make ``stage`` raise (a copy of) ``error``."""
        if not isinstance(error, BaseException):
            raise TypeError(
                f"FaultPlan.raise_error: error must be an exception instance; got {type(error).__name__}"
            )
        return self.add(Fault(stage, "raise", attempts, error=error))

    def fail(
        self, stage: str, error: str = "injected failure", *, attempts: Iterable[int] | None = None
    ) -> FaultPlan:
        """Make ``stage`` return ``StageOutput.fail(error=error)`` (stage wrapper only)."""
        return self.add(Fault(stage, "fail", attempts, message=_text("fail", "error", error)))

    def cancel(
        self, stage: str, reason: str = "injected cancel", *, attempts: Iterable[int] | None = None
    ) -> FaultPlan:
        """Make ``stage`` return ``StageOutput.cancel(reason)`` (stage wrapper only)."""
        return self.add(Fault(stage, "cancel", attempts, message=_text("cancel", "reason", reason)))

    def hang(self, stage: str, *, attempts: Iterable[int] | None = None) -> FaultPlan:
        """Make ``stage`` block until it is cancelled."""
        return self.add(Fault(stage, "hang", attempts))

    def delay(
        self, stage: str, seconds: float, *, attempts: Iterable[int] | None = None
    ) -> FaultPlan:
        """Make ``stage`` sleep ``seconds`` (trio clock) before it runs."""
        seconds = check_number("FaultPlan.delay", "seconds", seconds, minimum=0)
        return self.add(Fault(stage, "delay", attempts, seconds=seconds))

    def attempts(self) -> Mapping[str, int]:
        """How many times each stage was called so far (in the current exploration run, if any)."""
        return dict(self._counts_now())

    def _counts_now(self) -> dict[str, int]:
        record = _current.get()
        if record is None:
            return self._counts
        return self._run_counts.setdefault(record, {})

    def _next(self, stage: str, actions: Iterable[str] = _ACTIONS) -> Fault | None:
        counts = self._counts_now()
        attempt = counts[stage] = counts.get(stage, 0) + 1
        for fault in self._faults:
            if fault.stage == stage and fault.action in actions and fault.hits(attempt):
                return fault
        return None

    def wrap(self, stage: str, runner: Any) -> Callable[[StageContext], Awaitable[Any]]:
        """Wrap one unified-graph runner (async callable, stage instance or class) of ``stage``.

        A class is instantiated for every call, with no arguments.
        """
        if not isinstance(stage, str):
            raise TypeError(f"FaultPlan.wrap: stage must be a str; got {type(stage).__name__}")
        return self._wrap(stage, runner, {})

    def _wrap(
        self, stage: str, runner: Any, config: Mapping[str, Any]
    ) -> Callable[[StageContext], Awaitable[Any]]:
        if isinstance(runner, type):
            cls = runner

            def call(ctx: StageContext) -> Awaitable[Any]:
                return cls(**config).execute(ctx)  # type: ignore[no-any-return]

        elif callable(getattr(runner, "execute", None)):
            call = runner.execute
        elif callable(runner):
            call = runner
        else:
            raise TypeError(
                f"FaultPlan.wrap: runner must be a stage class, a stage or an async callable; got {type(runner).__name__}"
            )

        async def faulty(ctx: StageContext) -> Any:
            fault = self._next(stage)
            if fault is not None:
                if fault.action == "delay":
                    await trio.sleep(fault.seconds)
                else:
                    return await _strike(fault)
            return await call(ctx)

        faulty.__name__ = f"faulty_{stage}"
        return faulty

    def apply(self, pipeline: Pipeline) -> Pipeline:
        """A copy of ``pipeline`` whose faulted stages run through :meth:`wrap`.

        Raises:
            ValueError: a fault names a stage the pipeline does not have.
        """
        if not isinstance(pipeline, Pipeline):
            raise TypeError(
                f"FaultPlan.apply: pipeline must be a Pipeline; got {type(pipeline).__name__}"
            )
        stages = dict(pipeline.stages)
        unknown = sorted({f.stage for f in self._faults} - set(stages))
        if unknown:
            raise ValueError(f"FaultPlan.apply: the pipeline has no stage {unknown[0]!r}")
        for name in {f.stage for f in self._faults}:
            spec = stages[name]
            stages[name] = UnifiedStageSpec(
                name,
                self._wrap(name, spec.runner, spec.config),
                spec.kind,
                spec.dependencies,
                spec.conditional,
            )
        return Pipeline(pipeline.name, stages)

    def interceptor(self, *, priority: int = 0) -> FaultInjectionInterceptor:
        """An interceptor injecting this plan's faults (``raise``, ``hang``, ``delay``).

        Raises:
            ValueError: the plan holds a ``fail`` or ``cancel`` fault, which only the
                stage wrapper can inject.
        """
        for fault in self._faults:
            if fault.action not in _INTERCEPTOR_ACTIONS:
                raise ValueError(
                    f"FaultPlan.interceptor: a {fault.action!r} fault (stage {fault.stage!r})"
                    " needs the stage wrapper (FaultPlan.apply or wrap): an interceptor"
                    " cannot make a stage return"
                )
        return FaultInjectionInterceptor(self, priority=priority)


async def _strike(fault: Fault) -> StageOutput:
    if fault.action == "hang":
        await trio.sleep_forever()
    await trio.lowlevel.checkpoint()
    if fault.action == "fail":
        return StageOutput.fail(error=fault.message)
    if fault.action == "cancel":
        return StageOutput.cancel(reason=fault.message)
    assert fault.error is not None
    raise copy.copy(fault.error)


def _text(method: str, param: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"FaultPlan.{method}: {param} must be a str; got {type(value).__name__}")
    return value


class FaultInjectionInterceptor(BaseInterceptor):
    """Injects a :class:`FaultPlan`'s faults from ``before`` (see :meth:`FaultPlan.interceptor`).

    ``raise`` raises ``CriticalInterceptorError("injected fault in stage S: error")``
    with the plan's error as its ``__cause__``; the legacy graph reports it as a
    ``StageExecutionError`` of the stage.
    """

    name = "fault_injection"

    def __init__(self, plan: FaultPlan, *, priority: int = 0) -> None:
        if not isinstance(plan, FaultPlan):
            raise TypeError(
                f"FaultInjectionInterceptor: plan must be a FaultPlan; got {type(plan).__name__}"
            )
        self.plan = plan
        self.priority = priority

    async def before(self, stage_name: str, ctx: PipelineContext) -> InterceptorResult | None:
        """Apply the fault for this attempt of ``stage_name``, if any. A checkpoint."""
        fault = self.plan._next(stage_name, _INTERCEPTOR_ACTIONS)
        if fault is None or fault.action == "delay":
            await trio.sleep(0.0 if fault is None else fault.seconds)
            return None
        if fault.action == "hang":
            await trio.sleep_forever()
        await trio.lowlevel.checkpoint()
        raise CriticalInterceptorError(
            f"injected fault in stage {stage_name!r}: {fault.error}", self.name
        ) from fault.error

    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        """Nothing. A checkpoint."""
        await trio.lowlevel.checkpoint()
