"""Interceptor base types: the hook result and action, the errors, the context view, the ABC.

They live in the engine because the chain (``_stage_call.py``) needs them;
:mod:`stageflow_trio.pipeline.interceptors` is their public path.
"""

# Hooks implement a fixed interface, so unused hook arguments are expected.
# ruff: noqa: ARG002

from __future__ import annotations

from abc import ABC, abstractmethod
from enum import Enum, auto
from typing import TYPE_CHECKING, Any

import attrs
import trio

from stageflow_trio.errors import StageflowError
from stageflow_trio.stages.context import PipelineContext

if TYPE_CHECKING:
    from stageflow_trio.stages.result import StageResult


class ErrorAction(Enum):
    """What ``on_error`` asks the chain to do with a failed stage."""

    RETRY = auto()
    FALLBACK = auto()
    FAIL = auto()


@attrs.define(kw_only=True)
class InterceptorResult:
    """What ``before`` returns to change the call; ``stage_ran=False`` short-circuits."""

    stage_ran: bool = True
    result: Any = None
    error: str | None = None


class InterceptorError(StageflowError):
    """An interceptor failed."""

    def __init__(self, message: str, interceptor_name: str) -> None:
        super().__init__(message)
        self.interceptor_name = interceptor_name

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from both constructor arguments (the default passes the message
        # alone, a TypeError on unpickling). A subclass with a constructor of its
        # own keeps what the default gives: a call with ``args``, then the __dict__.
        if type(self).__init__ is not InterceptorError.__init__:
            return (type(self), self.args, self.__dict__)
        message = self.args[0] if self.args else ""
        return (type(self), (message, self.interceptor_name), self.__dict__)


class CriticalInterceptorError(InterceptorError):
    """An interceptor error that aborts the stage instead of being logged."""


_UNSET: Any = object()


@attrs.define(init=False)
class InterceptorContext:
    """A read-only view of a PipelineContext, namespaced for one interceptor.

    Built as ``InterceptorContext(ctx, interceptor_name)``, or with the keywords
    ``ctx``, ``interceptor_name`` and ``observations``. The reference's dataclass
    keywords (``_ctx=``, ``_interceptor_name=``, ``_observations=``, which its
    interceptor guide writes) are taken too, so code written for it runs here.

    Raises:
        TypeError: a field is missing, or given both ways.
    """

    _ctx: PipelineContext
    _interceptor_name: str
    _observations: dict[str, Any]

    def __init__(
        self,
        ctx: PipelineContext = _UNSET,
        interceptor_name: str = _UNSET,
        observations: dict[str, Any] | None = None,
        *,
        _ctx: PipelineContext = _UNSET,
        _interceptor_name: str = _UNSET,
        _observations: dict[str, Any] | None = None,
    ) -> None:
        self._ctx = _one_of("ctx", ctx, _ctx)
        self._interceptor_name = _one_of("interceptor_name", interceptor_name, _interceptor_name)
        if observations is not None and _observations is not None:
            raise TypeError(
                "InterceptorContext: give observations or _observations (the reference's "
                "keyword), not both"
            )
        chosen = observations if observations is not None else _observations
        self._observations = {} if chosen is None else chosen

    @property
    def name(self) -> str:
        """The owning interceptor's name."""
        return self._interceptor_name

    @property
    def data(self) -> dict[str, Any]:
        """A copy of the pipeline data."""
        return dict(self._ctx.data)

    @property
    def pipeline_run_id(self) -> Any:
        return self._ctx.pipeline_run_id

    @property
    def request_id(self) -> Any:
        return self._ctx.request_id

    @property
    def session_id(self) -> Any:
        return self._ctx.session_id

    @property
    def user_id(self) -> Any:
        return self._ctx.user_id

    @property
    def org_id(self) -> Any:
        return self._ctx.org_id

    @property
    def topology(self) -> str | None:
        return self._ctx.topology

    @property
    def execution_mode(self) -> str | None:
        return self._ctx.execution_mode

    def add_observation(self, key: str, value: Any) -> None:
        """Record ``value`` under this interceptor's namespace in the pipeline data."""
        self._ctx.data.setdefault(f"_interceptor.{self._interceptor_name}", {})[key] = value

    def get_observation(self, key: str) -> Any:
        """Read an observation recorded under this interceptor's namespace."""
        return self._ctx.data.get(f"_interceptor.{self._interceptor_name}", {}).get(key)


def _one_of(name: str, value: Any, reference_value: Any) -> Any:
    """The field given as ``name`` or as the reference's ``_name``: exactly one of them."""
    if value is _UNSET:
        if reference_value is _UNSET:
            raise TypeError(f"InterceptorContext: missing required argument {name!r}")
        return reference_value
    if reference_value is not _UNSET:
        raise TypeError(
            f"InterceptorContext: give {name} or _{name} (the reference's keyword), not both"
        )
    return value


class BaseInterceptor(ABC):
    """Base class of stage interceptors; lower ``priority`` wraps further out.

    Hooks are called by :func:`run_with_interceptors`; see its module
    docstring for the exact order. Besides the reference's three hooks there
    is :meth:`on_abort`, for interceptors that hold per-call resources.
    """

    name: str = "base_interceptor"
    priority: int = 100

    @abstractmethod
    async def before(self, stage_name: str, ctx: PipelineContext) -> InterceptorResult | None:
        """Before the stage: ``None`` to go on, ``InterceptorResult(stage_ran=False)`` to skip it."""

    @abstractmethod
    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        """After the stage finished (completed or failed)."""

    async def on_error(
        self, stage_name: str, error: Exception, ctx: PipelineContext
    ) -> ErrorAction:
        """When the stage raised: FAIL (the default) passes the error on."""
        return ErrorAction.FAIL

    async def on_abort(self, stage_name: str, ctx: PipelineContext) -> None:  # noqa: B027 - optional hook
        """The call ended by an exception after :meth:`before` returned, so :meth:`after` won't run.

        Called for a cancelled call, or when a CriticalInterceptorError or
        another exception escapes the chain. It runs shielded from
        cancellation (under a short time bound), so it may await to release
        what :meth:`before` acquired. Errors it raises are logged and
        swallowed. The default does nothing. Not in the reference, whose
        interceptors leak per-call state on cancellation.
        """


# Helpers the built-in interceptors share.


def call_key(stage_name: str, ctx: object) -> tuple[int, str, trio.lowlevel.Task]:
    """The key of one interceptor call's state: its context, its stage and its task.

    The chain runs all of a call's hooks in that call's task, so state kept under
    this key in ``before`` is found again in ``after`` / ``on_abort``, also when two
    calls of one stage on one context overlap.
    """
    return (id(ctx), stage_name, trio.lowlevel.current_task())


def _run_id(ctx: PipelineContext) -> str | None:
    return str(ctx.pipeline_run_id) if ctx.pipeline_run_id else None


def _duration_ms(result: StageResult) -> int:
    return int((result.ended_at - result.started_at).total_seconds() * 1000)
