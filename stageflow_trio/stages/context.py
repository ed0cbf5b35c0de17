"""PipelineContext: the mutable context of one pipeline run (and of its subpipelines).

A :class:`PipelineContext` holds the run's ids, topology and execution mode, a
mutable ``data`` dict, artifacts, per-stage metadata, the event sink, a
cancellation flag and, for child runs, the link to the parent run.
:meth:`PipelineContext.fork` (also spelled :meth:`PipelineContext.fork_for_subpipeline`)
derives the context of a subpipeline run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import attrs

from stageflow_trio._time import parse_uuid, utc_now_iso
from stageflow_trio.core.stage_output import StageArtifact
from stageflow_trio.events.sink import EventSink, NoOpEventSink, get_event_sink
from stageflow_trio.utils.frozen import FrozenDict

if TYPE_CHECKING:
    from stageflow_trio.context.context_snapshot import ContextSnapshot
    from stageflow_trio.context.output_bag import OutputBag
    from stageflow_trio.core.stage_context import StageContext
    from stageflow_trio.stages.ports import AudioPorts, CorePorts, LLMPorts

__all__ = ["PipelineContext", "extract_service"]


def discards_events(sink: object) -> bool:
    """Whether ``sink`` is exactly a :class:`NoOpEventSink`: nothing need be built for it.

    A subclass may override ``try_emit``, so only the class itself counts.
    """
    return type(sink) is NoOpEventSink


def extract_service(topology: str | None) -> str | None:
    """The service a topology name encodes, e.g. ``"chat"`` for ``"chat_fast"``.

    Returns None for None and for kernel names (ending in ``"_kernel"``), which
    are service-agnostic. Otherwise returns the part before the last
    underscore, or the whole name when that part is empty.
    """
    if topology is None or topology.endswith("_kernel"):
        return None
    head = topology.rpartition("_")[0]
    return head or topology


# attrs' mypy plugin only understands converters that are named functions, hence one per
# field. The inline fast path skips a call for the common None/UUID case.
def _pipeline_run_id(value: UUID | str | None) -> UUID | None:
    if value is None or value.__class__ is UUID:
        return value
    return parse_uuid(value, "pipeline_run_id")


def _request_id(value: UUID | str | None) -> UUID | None:
    if value is None or value.__class__ is UUID:
        return value
    return parse_uuid(value, "request_id")


def _session_id(value: UUID | str | None) -> UUID | None:
    if value is None or value.__class__ is UUID:
        return value
    return parse_uuid(value, "session_id")


def _user_id(value: UUID | str | None) -> UUID | None:
    if value is None or value.__class__ is UUID:
        return value
    return parse_uuid(value, "user_id")


def _org_id(value: UUID | str | None) -> UUID | None:
    if value is None or value.__class__ is UUID:
        return value
    return parse_uuid(value, "org_id")


def _interaction_id(value: UUID | str | None) -> UUID | None:
    if value is None or value.__class__ is UUID:
        return value
    return parse_uuid(value, "interaction_id")


def _parent_run_id(value: UUID | str | None) -> UUID | None:
    if value is None or value.__class__ is UUID:
        return value
    return parse_uuid(value, "parent_run_id")


def _correlation_id(value: UUID | str | None) -> UUID | None:
    if value is None or value.__class__ is UUID:
        return value
    return parse_uuid(value, "correlation_id")


def _id_str(value: UUID | None) -> str | None:
    return str(value) if value else None


class StageEventTemplate:
    """The ``stage.{stage}.{status}`` event data one run's events share, ids stringified once.

    :meth:`PipelineContext.record_stage_event` turns the same UUIDs into
    strings for every event; a graph run holds one of these instead and copies
    its template per event. The template belongs to the fields it was made
    from (the four ids, the run id, service, topology and execution mode): when
    one of them no longer equals what it was (a stage may assign to its
    context), :meth:`data` makes a new one, so the events always carry the
    context's current values.
    """

    __slots__ = ("_key", "_run_id", "_template")

    def __init__(self) -> None:
        self._key: tuple[object, ...] | None = None
        self._template: dict[str, Any] = {}
        self._run_id: str | None = None

    def prime(
        self,
        key: tuple[object, ...],
        request_id: str | None,
        session_id: str | None,
        user_id: str | None,
        org_id: str | None,
        run_id: str | None,
    ) -> None:
        """Make the template of ``key`` from its ids' strings, made elsewhere already."""
        _, _, _, _, service, topology, mode, _ = key
        self._template = {
            "request_id": request_id,
            "session_id": session_id,
            "user_id": user_id,
            "org_id": org_id,
            "service": service,
            "stage": None,
            "status": None,
            "timestamp": None,
            "topology": topology,
            "execution_mode": mode,
        }
        self._run_id = run_id
        self._key = key

    def data(
        self,
        key: tuple[object, ...],
        stage: str,
        status: str,
        payload: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """The event data of ``record_stage_event`` for the fields ``key``.

        ``key`` is ``(request_id, session_id, user_id, org_id, service,
        topology, execution_mode, pipeline_run_id)``; see
        :meth:`PipelineContext.record_stage_event` for the data's keys and order.
        """
        # The tuple comparison checks identity first, so the same objects compare
        # without calling UUID.__eq__.
        if key != self._key:
            request_id, session_id, user_id, org_id, _, _, _, run_id = key
            self.prime(
                key,
                _id_str(request_id),  # type: ignore[arg-type]
                _id_str(session_id),  # type: ignore[arg-type]
                _id_str(user_id),  # type: ignore[arg-type]
                _id_str(org_id),  # type: ignore[arg-type]
                str(run_id) if run_id else None,
            )
        data = self._template.copy()
        data["stage"] = stage
        data["status"] = status
        data["timestamp"] = utc_now_iso()
        if payload:
            data.update(payload)
        run_id_str = self._run_id
        if run_id_str is not None:
            data["pipeline_run_id"] = run_id_str
        return data


def stage_event_key(ctx: PipelineContext) -> tuple[object, ...]:
    """The fields of ``ctx`` a :class:`StageEventTemplate` is made from, in its order."""
    return (
        ctx.request_id,
        ctx.session_id,
        ctx.user_id,
        ctx.org_id,
        ctx.service,
        ctx.topology,
        ctx.execution_mode,
        ctx.pipeline_run_id,
    )


@attrs.define(kw_only=True)
class PipelineContext:
    """The mutable execution context of a pipeline run.

    All arguments are keyword-only; the six ids are required (None allowed).
    UUID fields accept a ``UUID``, a UUID string (parsed, also on assignment)
    or None; anything else raises ``ValueError``/``TypeError`` naming the field.

    Implements :class:`~stageflow_trio.protocols.ExecutionContext`.

    Attributes:
        pipeline_run_id: This run's id.
        request_id: The id of the request that started the run.
        session_id: The user session id.
        user_id: The user id.
        org_id: The organization (tenant) id.
        interaction_id: The interaction within the session.
        topology: The pipeline topology name (e.g. ``"chat_fast"``).
        configuration: Static configuration of the topology.
        execution_mode: The execution mode label (e.g. ``"practice"``).
        service: The service label put on events; default ``"pipeline"``.
        event_sink: Where events go; defaults to the global sink at construction time.
        data: Mutable run data shared by stages.
        db: A database session, of whatever type the application uses.
        canceled: Set by :meth:`mark_canceled`.
        artifacts: Artifacts produced by stages.
        parent_run_id: For a child run, the parent's run id.
        parent_stage_id: For a child run, the parent stage that spawned it.
        correlation_id: For a child run, the action that triggered the spawn.

    The constructor also takes ``_stage_metadata`` and ``_parent_data`` (used by
    :meth:`fork`); read them through :meth:`get_stage_metadata` and
    :meth:`get_parent_data`.
    """

    pipeline_run_id: UUID | None = attrs.field(converter=_pipeline_run_id)
    request_id: UUID | None = attrs.field(converter=_request_id)
    session_id: UUID | None = attrs.field(converter=_session_id)
    user_id: UUID | None = attrs.field(converter=_user_id)
    org_id: UUID | None = attrs.field(converter=_org_id)
    interaction_id: UUID | None = attrs.field(converter=_interaction_id)
    topology: str | None = None
    configuration: dict[str, Any] = attrs.field(factory=dict)
    execution_mode: str | None = None
    service: str = "pipeline"
    event_sink: EventSink = attrs.field(factory=get_event_sink)
    data: dict[str, Any] = attrs.field(factory=dict)
    db: Any = None
    canceled: bool = False
    artifacts: list[StageArtifact] = attrs.field(factory=list)
    _stage_metadata: dict[str, dict[str, Any]] = attrs.field(factory=dict, alias="_stage_metadata")
    parent_run_id: UUID | None = attrs.field(default=None, converter=_parent_run_id)
    parent_stage_id: str | None = None
    correlation_id: UUID | None = attrs.field(default=None, converter=_correlation_id)
    _parent_data: FrozenDict[str, Any] | None = attrs.field(default=None, alias="_parent_data")

    def record_stage_event(
        self,
        *,
        stage: str,
        status: str,
        payload: dict[str, Any] | None = None,
    ) -> None:
        """Emit the legacy ``stage.{stage}.{status}`` event through the event sink.

        The data is, in this order: ``request_id``, ``session_id``, ``user_id``,
        ``org_id`` (strings or None), ``service``, ``stage``, ``status``,
        ``timestamp`` (UTC ISO), ``topology``, ``execution_mode``, then the keys
        of ``payload`` (which override all of the above), then
        ``pipeline_run_id`` when this run has one (overriding ``payload``).
        Sink errors propagate.
        """
        data: dict[str, Any] = {
            "request_id": _id_str(self.request_id),
            "session_id": _id_str(self.session_id),
            "user_id": _id_str(self.user_id),
            "org_id": _id_str(self.org_id),
            "service": self.service,
            "stage": stage,
            "status": status,
            "timestamp": utc_now_iso(),
            "topology": self.topology,
            "execution_mode": self.execution_mode,
        }
        if payload:
            data.update(payload)
        if self.pipeline_run_id:
            data["pipeline_run_id"] = str(self.pipeline_run_id)
        self.event_sink.try_emit(type=f"stage.{stage}.{status}", data=data)

    def set_stage_metadata(self, stage: str, metadata: dict[str, Any]) -> None:
        """Store ``metadata`` for ``stage`` (replacing what was there)."""
        self._stage_metadata[stage] = metadata

    def get_stage_metadata(self, stage: str) -> dict[str, Any] | None:
        """The metadata stored for ``stage``, or None."""
        return self._stage_metadata.get(stage)

    def to_dict(self) -> dict[str, Any]:
        """A dict view for tools: ids as strings or None, labels, ``data``, flags.

        Keys: the six ids, ``topology``, ``execution_mode``, ``service``,
        ``data`` (the live dict, not a copy), ``canceled``, ``artifacts_count``;
        child runs add ``parent_run_id``, ``parent_stage_id`` and
        ``correlation_id`` when set.
        """
        result: dict[str, Any] = {
            "pipeline_run_id": _id_str(self.pipeline_run_id),
            "request_id": _id_str(self.request_id),
            "session_id": _id_str(self.session_id),
            "user_id": _id_str(self.user_id),
            "org_id": _id_str(self.org_id),
            "interaction_id": _id_str(self.interaction_id),
            "topology": self.topology,
            "execution_mode": self.execution_mode,
            "service": self.service,
            "data": self.data,
            "canceled": self.canceled,
            "artifacts_count": len(self.artifacts),
        }
        if self.parent_run_id:
            result["parent_run_id"] = str(self.parent_run_id)
        if self.parent_stage_id:
            result["parent_stage_id"] = self.parent_stage_id
        if self.correlation_id:
            result["correlation_id"] = str(self.correlation_id)
        return result

    @classmethod
    def now(cls) -> datetime:
        """The current UTC time (a timezone-aware datetime)."""
        return datetime.now(UTC)

    @property
    def is_child_run(self) -> bool:
        """True when this context belongs to a subpipeline run (it has a parent run id)."""
        return self.parent_run_id is not None

    def get_parent_data(self, key: str, default: Any = None) -> Any:
        """The value of ``key`` in the parent's data as frozen at fork time, else ``default``."""
        if self._parent_data is None:
            return default
        return self._parent_data.get(key, default)

    def fork(
        self,
        child_run_id: UUID,
        parent_stage_id: str,
        correlation_id: UUID,
        *,
        topology: str | None = None,
        execution_mode: str | None = None,
    ) -> PipelineContext:
        """The context of a child (subpipeline) run spawned by ``parent_stage_id``.

        The child has run id ``child_run_id`` and keeps this run's request,
        session, user, org and interaction ids, service, event sink and db.
        It gets a shallow copy of ``configuration``, empty ``data``, artifacts
        and stage metadata, ``canceled=False``, ``parent_run_id`` set to this
        run's id, and a read-only shallow copy of this run's ``data``
        (:meth:`get_parent_data`). ``topology`` and ``execution_mode`` default
        to this run's when not given (or empty).
        """
        return PipelineContext(
            pipeline_run_id=child_run_id,
            request_id=self.request_id,
            session_id=self.session_id,
            user_id=self.user_id,
            org_id=self.org_id,
            interaction_id=self.interaction_id,
            topology=topology or self.topology,
            configuration=self.configuration.copy(),
            execution_mode=execution_mode or self.execution_mode,
            service=self.service,
            event_sink=self.event_sink,
            data={},
            db=self.db,
            canceled=False,
            artifacts=[],
            _stage_metadata={},
            parent_run_id=self.pipeline_run_id,
            parent_stage_id=parent_stage_id,
            correlation_id=correlation_id,
            _parent_data=FrozenDict(self.data),
        )

    # The name the stageflow docs use for fork; the same method.
    fork_for_subpipeline = fork

    def mark_canceled(self) -> None:
        """Set :attr:`canceled`; nothing else happens (running stages are not interrupted)."""
        self.canceled = True

    @property
    def is_canceled(self) -> bool:
        """The :attr:`canceled` flag."""
        return self.canceled

    def try_emit_event(self, type: str, data: dict[str, Any]) -> None:  # noqa: A002
        """Emit ``type`` through the event sink, fire-and-forget.

        The payload is ``{"pipeline_run_id", "request_id", "execution_mode",
        "topology", "service", **data}`` (ids as strings or None; keys in
        ``data`` win). Unlike :meth:`StageContext.try_emit_event
        <stageflow_trio.core.stage_context.StageContext.try_emit_event>`, an
        exception from the sink propagates (as in the reference).
        """
        enriched = {
            "pipeline_run_id": _id_str(self.pipeline_run_id),
            "request_id": _id_str(self.request_id),
            "execution_mode": self.execution_mode,
            "topology": self.topology,
            "service": self.service,
            **data,
        }
        self.event_sink.try_emit(type=type, data=enriched)

    def derive_for_stage(
        self,
        stage_name: str,
        snapshot: ContextSnapshot[Any],
        output_bag: OutputBag,
        *,
        declared_deps: frozenset[str] | set[str] | list[str] | None = None,
        ports: CorePorts | LLMPorts | AudioPorts | None = None,
        strict: bool = True,
    ) -> StageContext:
        """A :class:`~stageflow_trio.core.stage_context.StageContext` for running ``stage_name``.

        Its inputs see the outputs currently in ``output_bag`` (checked against
        ``declared_deps`` when ``strict``), ``ports``, a fresh timer and this
        context's event sink.
        """
        # Imported here: core.stage_context imports this module lazily, and
        # stages.inputs imports stages.ports, keeping the import graph acyclic.
        from stageflow_trio.core.stage_context import StageContext
        from stageflow_trio.core.timer import PipelineTimer
        from stageflow_trio.stages.inputs import create_stage_inputs

        inputs = create_stage_inputs(
            snapshot,
            prior_outputs=output_bag.outputs(),
            ports=ports,
            declared_deps=declared_deps,
            stage_name=stage_name,
            strict=strict,
        )
        return StageContext(
            snapshot=snapshot,
            inputs=inputs,
            stage_name=stage_name,
            timer=PipelineTimer(),
            event_sink=self.event_sink,
        )
