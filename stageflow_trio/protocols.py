"""The extension-point protocols of stageflow_trio.

Code that only needs "some execution context" (tools, interceptors, helpers)
depends on :class:`ExecutionContext`, which :class:`~stageflow_trio.stages.context.PipelineContext`,
:class:`~stageflow_trio.core.stage_context.StageContext` and
:class:`~stageflow_trio.tools.adapters.DictContextAdapter` all satisfy.
:class:`RunStore` and :class:`ConfigProvider` describe persistence and
configuration back ends an application plugs in; :class:`CorrelationIds` is a
small value carrying tracing ids.

``EventSink`` is the one event-sink protocol of the package, re-exported from
:mod:`stageflow_trio.events.sink` (the reference defines a second, identical
protocol here; this package keeps a single class under both names).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

import attrs

from stageflow_trio._frozen import frozen_compat
from stageflow_trio._time import parse_uuid
from stageflow_trio.events.sink import EventSink as EventSink
from stageflow_trio.utils.frozen import FrozenDict

__all__ = [
    "ConfigProvider",
    "CorrelationIds",
    "EventSink",
    "ExecutionContext",
    "RunStore",
]


@runtime_checkable
class ExecutionContext(Protocol):
    """What every execution context offers: run ids, mode, a dict view and event emission.

    ``isinstance(obj, ExecutionContext)`` only checks that the five members
    exist; static type checkers check their types.
    """

    @property
    def pipeline_run_id(self) -> UUID | None:
        """The id of the pipeline run, or None."""
        ...

    @property
    def request_id(self) -> UUID | None:
        """The id of the request that started the run, or None."""
        ...

    @property
    def execution_mode(self) -> str | None:
        """The execution mode label (e.g. ``"practice"``), or None."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """A plain-dict view of the context."""
        ...

    def try_emit_event(self, type: str, data: dict[str, Any]) -> None:  # noqa: A002
        """Emit an event, fire-and-forget, enriched with the context's ids.

        Implementations should not raise when no sink is available (they log
        or discard instead).
        """
        ...


@runtime_checkable
class RunStore(Protocol):
    """Persistence of pipeline-run records (a database, a service, memory, ...)."""

    async def create_run(
        self,
        run_id: UUID,
        *,
        service: str,
        topology: str | None = None,
        execution_mode: str | None = None,
        status: str = "created",
        **metadata: Any,
    ) -> Any:
        """Create the record of run ``run_id`` and return it."""
        ...

    async def update_status(
        self,
        run_id: UUID,
        status: str,
        *,
        error: str | None = None,
        duration_ms: int | None = None,
        **data: Any,
    ) -> None:
        """Set the status (and optional error, duration and extra data) of run ``run_id``."""
        ...

    async def get_run(self, run_id: UUID) -> Any | None:
        """Return the record of run ``run_id``, or None if there is none."""
        ...


@runtime_checkable
class ConfigProvider(Protocol):
    """Read access to configuration values (environment, files, a service, ...)."""

    def get(self, key: str, default: Any = None) -> Any:
        """Return the value of ``key``, or ``default`` when it is not set."""
        ...


# attrs' mypy plugin only understands converters that are named functions, hence one per field.
def _run_id(value: UUID | str | None) -> UUID | None:
    return parse_uuid(value, "run_id")


def _request_id(value: UUID | str | None) -> UUID | None:
    return parse_uuid(value, "request_id")


def _session_id(value: UUID | str | None) -> UUID | None:
    return parse_uuid(value, "session_id")


def _user_id(value: UUID | str | None) -> UUID | None:
    return parse_uuid(value, "user_id")


def _org_id(value: UUID | str | None) -> UUID | None:
    return parse_uuid(value, "org_id")


def _frozen_extra(value: Mapping[str, Any] | None) -> FrozenDict[str, Any]:
    if isinstance(value, FrozenDict):
        return value
    if value is None:
        return FrozenDict()
    if not isinstance(value, Mapping):
        raise TypeError(f"extra must be a mapping, got {type(value).__name__}")
    return FrozenDict(value)


@frozen_compat
@attrs.frozen
class CorrelationIds:
    """Ids that correlate logs, traces and events of one run across services.

    Args:
        run_id: The pipeline run id.
        request_id: The HTTP/WebSocket request id.
        trace_id: A distributed-tracing id (e.g. OpenTelemetry), kept as a string.
        session_id: The user session id.
        user_id: The user id.
        org_id: The organization (tenant) id.
        extra: Application-specific ids, merged last into :meth:`to_dict`.

    UUID fields accept a ``UUID``, a UUID string (parsed) or None; anything
    else raises ``ValueError``/``TypeError`` naming the field.
    """

    run_id: UUID | None = attrs.field(default=None, converter=_run_id)
    request_id: UUID | None = attrs.field(default=None, converter=_request_id)
    trace_id: str | None = None
    session_id: UUID | None = attrs.field(default=None, converter=_session_id)
    user_id: UUID | None = attrs.field(default=None, converter=_user_id)
    org_id: UUID | None = attrs.field(default=None, converter=_org_id)
    extra: FrozenDict[str, Any] = attrs.field(factory=FrozenDict, converter=_frozen_extra)

    def to_dict(self) -> dict[str, Any]:
        """The set ids as strings (``run_id`` under ``"pipeline_run_id"``), then ``extra``.

        Unset (falsy) ids are left out; ``extra`` keys override the ids.
        """
        result: dict[str, Any] = {}
        if self.run_id:
            result["pipeline_run_id"] = str(self.run_id)
        if self.request_id:
            result["request_id"] = str(self.request_id)
        if self.trace_id:
            result["trace_id"] = self.trace_id
        if self.session_id:
            result["session_id"] = str(self.session_id)
        if self.user_id:
            result["user_id"] = str(self.user_id)
        if self.org_id:
            result["org_id"] = str(self.org_id)
        result.update(self.extra)
        return result
