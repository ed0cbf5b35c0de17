"""PipelineContext: the mutable context of one pipeline run (and of its subpipelines).

A :class:`PipelineContext` holds the run's ids, topology and execution mode, a
mutable ``data`` dict, artifacts, per-stage metadata, the event sink, a
cancellation flag and, for child runs, the link to the parent run.
:meth:`PipelineContext.fork` (also spelled :meth:`PipelineContext.fork_for_subpipeline`)
derives the context of a subpipeline run.

Since stageflow 1.2 a PipelineContext is also the preferred way to start a run:
it carries the snapshot's payload (input text, conversation, enrichments,
extensions, metadata), :meth:`PipelineContext.to_snapshot` /
:meth:`PipelineContext.from_snapshot` convert both ways, and graphs take it
directly. Cooperative cancellation (:meth:`PipelineContext.mark_canceled` with a
reason) is mapped onto trio cancel scopes: a graph run started with this context
binds its cancel scope to it, so a cancellation interrupts running stages at
their next checkpoint.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeAlias
from uuid import UUID

import attrs
import trio

from stageflow_trio._lazy import lazy_exports
from stageflow_trio._time import parse_uuid, utc_now, utc_now_iso
from stageflow_trio.core._stage_parts import _EMPTY_DATA
from stageflow_trio.core.stage_output import StageArtifact
from stageflow_trio.events.sink import EventSink, NoOpEventSink, get_event_sink
from stageflow_trio.stages.ports import AudioPorts, CorePorts, LLMPorts
from stageflow_trio.utils.frozen import FrozenDict, _freeze_dict

if TYPE_CHECKING:
    from stageflow_trio.context.context_snapshot import ContextSnapshot

    # Lazy on purpose (attrs never evaluates these annotations): at runtime they
    # would pull the context package (and cattrs) into `import stageflow_trio`.
    from stageflow_trio.context.conversation import Conversation  # noqa: TC004
    from stageflow_trio.context.enrichments import Enrichments  # noqa: TC004
    from stageflow_trio.context.identity import RunIdentity
    from stageflow_trio.context.output_bag import OutputBag
    from stageflow_trio.core.stage_context import StageContext as StageContext
    from stageflow_trio.core.timer import PipelineTimer
    from stageflow_trio.protocols import ExecutionContext
    from stageflow_trio.stages.inputs import StageInputs

    # PipelineContext is an ExecutionContext by declaration, for type checkers only (at run
    # time the base is object: the protocol class has no __slots__). Structurally it already
    # is one for mypy, but pyright types each field with a converter as a descriptor it
    # synthesizes, which it never matches against a protocol's property: without the
    # declaration, pyright (and Pylance) reject a PipelineContext wherever an
    # ExecutionContext is asked for (tests/typing/pyright_shapes.py).
    _ExecutionContextBase: TypeAlias = ExecutionContext
else:
    _ExecutionContextBase = object

Ports: TypeAlias = CorePorts | LLMPorts | AudioPorts
"""The ports a stage context may carry."""

BeforeStageStartHook: TypeAlias = Callable[
    [str, Any, "StageContext", "PipelineContext"], Awaitable[None] | None
]
"""``hook(stage_name, stage_kind, stage_ctx, pipeline_ctx)``, sync or async."""

__all__ = ["PipelineContext", "StageContext", "extract_service"]

# The cancellation logger, which CancellationToken logs its callbacks' errors to.
_cancel_logger: logging.Logger = logging.getLogger("stageflow_trio.cancellation")


def discards_events(sink: object) -> bool:
    """Whether ``sink`` is exactly a :class:`NoOpEventSink`: nothing need be built for it.

    A subclass may override ``try_emit``, so only the class itself counts.
    """
    return type(sink) is NoOpEventSink


def _mapping_copy(owner: str, param: str, value: object) -> dict[str, Any]:
    """A new dict of ``value``'s items (empty for None), for :meth:`PipelineContext.create`.

    Raises:
        TypeError: ``value`` is neither a mapping nor None.
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{owner}: {param} must be a mapping or None; got {type(value).__name__}")
    return dict(value)


def _artifacts_copy(owner: str, value: object) -> list[StageArtifact]:
    """A new list of ``value``'s items (empty for None), for :meth:`PipelineContext.create`.

    Raises:
        TypeError: ``value`` is a str, bytes or mapping, or not iterable (and not None).
    """
    if value is None:
        return []
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise TypeError(
            f"{owner}: artifacts must be a list of StageArtifact or None; "
            f"got {type(value).__name__}"
        )
    return list(value)


# The constructor's checks of its container fields and sink. A field holding what it
# should costs one type test (PipelineContext.__attrs_post_init__); these run only
# for None (the field's default, as PipelineContext.create gives it) and bad values.


def _dict_field(param: str, value: object) -> dict[str, Any]:
    """``value`` when it is a dict, a new empty dict for None.

    Raises:
        TypeError: anything else (a mapping too: the context shares the dict it is given).
    """
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    hint = " (PipelineContext.create copies any mapping)" if isinstance(value, Mapping) else ""
    raise TypeError(
        f"PipelineContext: {param} must be a dict or None; got {type(value).__name__}{hint}"
    )


def _artifacts_field(value: object) -> list[StageArtifact]:
    """``value`` when it is a list, a new empty list for None.

    Raises:
        TypeError: anything else.
    """
    if value is None:
        return []
    if isinstance(value, list):
        return value
    raise TypeError(
        "PipelineContext: artifacts must be a list of StageArtifact or None; "
        f"got {type(value).__name__}"
    )


def _set_dict_field(_ctx: object, attribute: attrs.Attribute[Any], value: object) -> object:
    """The check of an assignment to ``data``, ``configuration`` or ``metadata``."""
    return value if type(value) is dict else _dict_field(attribute.name, value)


def _set_artifacts(_ctx: object, _attribute: attrs.Attribute[Any], value: object) -> object:
    """The check of an assignment to ``artifacts``."""
    return value if type(value) is list else _artifacts_field(value)


def _set_event_sink(_ctx: object, _attribute: attrs.Attribute[Any], value: object) -> object:
    """An assignment of None to ``event_sink`` sets the global sink, as the constructor does."""
    return get_event_sink() if value is None else value


def extract_service(topology: str | None) -> str | None:
    """The service a topology name encodes, e.g. ``"chat"`` for ``"chat_fast"``.

    Returns None for None and for kernel names (ending in ``"_kernel"``), which
    are service-agnostic. Otherwise returns the part before the last
    underscore, or the whole name when that part is empty.
    """
    if topology is not None and not isinstance(topology, str):
        raise TypeError(
            f"extract_service: topology must be a str or None; got {type(topology).__name__}"
        )
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


@functools.cache
def _snapshot_classes() -> tuple[type[ContextSnapshot[Any]], type[RunIdentity]]:
    """ContextSnapshot and RunIdentity, imported on first use.

    The context package pulls in the codec (cattrs), so it is not imported with
    this module; cached, since an import statement in a function costs about as
    much as a small object (every ``Pipeline.run(**keywords)`` makes a snapshot).
    """
    from stageflow_trio.context.context_snapshot import ContextSnapshot
    from stageflow_trio.context.identity import RunIdentity

    return ContextSnapshot, RunIdentity


@functools.cache
def _root_context_classes() -> tuple[type[StageContext], type[PipelineTimer], type[StageInputs]]:
    """StageContext, PipelineTimer and StageInputs, imported on first use.

    core.stage_context imports this module lazily, and stages.inputs imports
    stages.ports: imported here, the import graph stays acyclic.
    """
    from stageflow_trio.core.stage_context import StageContext
    from stageflow_trio.core.timer import PipelineTimer
    from stageflow_trio.stages.inputs import StageInputs

    return StageContext, PipelineTimer, StageInputs


def _noop() -> None:
    """The unsubscribe function of a callback that already ran."""


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
        self.prime_fields(service, topology, mode, request_id, session_id, user_id, org_id, run_id)
        self._key = key

    def prime_fields(
        self,
        service: object,
        topology: object,
        mode: object,
        request_id: str | None,
        session_id: str | None,
        user_id: str | None,
        org_id: str | None,
        run_id: str | None,
    ) -> None:
        """:meth:`prime` without a key, for a caller that calls only :meth:`fill`.

        The template's key is unknown afterwards: the first :meth:`data` call makes
        the template again from its own key. (Not keeping the key tuple, which holds
        the ids, spares the garbage collector one object per run in flight.)
        """
        self._key = None
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

    def data(
        self,
        key: tuple[object, ...],
        stage: str,
        status: str,
        payload: dict[str, Any] | None,
        duration_ms: int | None = None,
    ) -> dict[str, Any]:
        """The event data of ``record_stage_event`` for the fields ``key``.

        ``key`` is ``(request_id, session_id, user_id, org_id, service,
        topology, execution_mode, pipeline_run_id)``; see
        :meth:`PipelineContext.record_stage_event` for the data's keys and order.
        ``duration_ms``, when given, comes first among the payload's keys.
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
        return self.fill(stage, status, payload, duration_ms)

    def for_status(self, status: str, *, timed: bool) -> dict[str, Any]:
        """The current template with ``status`` and the run id in place.

        A copy of it needs only ``stage``, ``timestamp`` and (when ``timed``)
        ``duration_ms`` to be the data :meth:`fill` makes without a payload: the
        caller makes it once per run, for the events it sends most.
        """
        data = self._template.copy()
        data["status"] = status
        if timed:
            data["duration_ms"] = None
        if self._run_id is not None:
            data["pipeline_run_id"] = self._run_id
        return data

    def fill(
        self,
        stage: str,
        status: str,
        payload: dict[str, Any] | None,
        duration_ms: int | None = None,
    ) -> dict[str, Any]:
        """The event data from the current template (for a caller whose fields cannot change)."""
        data = self._template.copy()
        data["stage"] = stage
        data["status"] = status
        data["timestamp"] = utc_now_iso()
        # Set directly, without a payload dict to build and merge: most stage events
        # carry only their duration.
        if duration_ms is not None:
            data["duration_ms"] = duration_ms
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


_SECRET_DATA_KEYS = frozenset({"_auth_token", "auth_token"})
"""``ctx.data`` keys whose values a repr shows as ``'***'`` (the bearer token)."""


def _data_repr(data: object) -> str:
    """``repr(data)`` with the values of :data:`_SECRET_DATA_KEYS` masked.

    For ``data`` (a dict) and a fork's ``_parent_data`` (a FrozenDict copy of it).
    """
    if not isinstance(data, Mapping) or _SECRET_DATA_KEYS.isdisjoint(data):
        return repr(data)
    masked = {key: "***" if key in _SECRET_DATA_KEYS else value for key, value in data.items()}
    return repr(masked) if type(data) is dict else f"{type(data).__name__}({masked!r})"


@attrs.define(kw_only=True)
class PipelineContext(_ExecutionContextBase):
    """The mutable execution context of a pipeline run.

    All arguments are keyword-only; the six ids default to None (stageflow 1.2;
    0.9.1 required them).
    UUID fields accept a ``UUID``, a UUID string (parsed, also on assignment)
    or None; anything else raises ``ValueError``/``TypeError`` naming the field.
    ``data``, ``configuration`` and ``metadata`` must be dicts (the context keeps the
    dict it is given; :meth:`create` copies any mapping) and ``artifacts`` a list;
    None gives the field's default (a new empty dict or list), as :meth:`create` does,
    and so does ``event_sink=None`` (the global sink). Anything else raises
    ``TypeError`` naming the field, on construction and on assignment.

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
        input_text: The user's input text (a snapshot field).
        input_audio_duration_ms: The input audio's length (a snapshot field).
        conversation: The conversation (a snapshot field).
        enrichments: Profile, memory and documents (a snapshot field).
        extensions: The extension bundle or dict (a snapshot field).
        metadata: Free-form metadata (a snapshot field).
        created_at: When the run's identity was created (UTC; default now).
        service: The service label put on events; default ``"pipeline"``.
        event_sink: Where events go; defaults to the global sink at construction time.
        data: Mutable run data shared by stages.
        ports: The ports stages get (``derive_*`` fall back to core ports around ``db``).
        db: A database session, of whatever type the application uses.
        canceled: Set by :meth:`mark_canceled`.
        cancellation_reason: The reason given to the first :meth:`mark_canceled`.
        artifacts: Artifacts produced by stages.
        parent_run_id: For a child run, the parent's run id.
        parent_stage_id: For a child run, the parent stage that spawned it.
        correlation_id: For a child run, the action that triggered the spawn.

    The constructor also takes ``_stage_metadata`` and ``_parent_data`` (used by
    :meth:`fork`); read them through :meth:`get_stage_metadata` and
    :meth:`get_parent_data`.
    """

    pipeline_run_id: UUID | None = attrs.field(default=None, converter=_pipeline_run_id)
    request_id: UUID | None = attrs.field(default=None, converter=_request_id)
    session_id: UUID | None = attrs.field(default=None, converter=_session_id)
    user_id: UUID | None = attrs.field(default=None, converter=_user_id)
    org_id: UUID | None = attrs.field(default=None, converter=_org_id)
    interaction_id: UUID | None = attrs.field(default=None, converter=_interaction_id)
    topology: str | None = None
    configuration: dict[str, Any] = attrs.field(factory=dict, on_setattr=_set_dict_field)
    execution_mode: str | None = None
    input_text: str | None = None
    input_audio_duration_ms: int | None = None
    conversation: Conversation | None = None
    enrichments: Enrichments | None = None
    extensions: Any = None
    metadata: dict[str, Any] = attrs.field(factory=dict, on_setattr=_set_dict_field)
    created_at: datetime = attrs.field(factory=utc_now)
    service: str = "pipeline"
    event_sink: EventSink = attrs.field(factory=get_event_sink, on_setattr=_set_event_sink)
    # The repr masks the bearer token AuthInterceptor reads: a logged or raised context
    # must not carry a credential. The data itself is unchanged.
    data: dict[str, Any] = attrs.field(factory=dict, repr=_data_repr, on_setattr=_set_dict_field)
    ports: Ports | None = None
    db: Any = None
    canceled: bool = False
    cancellation_reason: str | None = None
    artifacts: list[StageArtifact] = attrs.field(factory=list, on_setattr=_set_artifacts)
    _stage_metadata: dict[str, dict[str, Any]] = attrs.field(factory=dict, alias="_stage_metadata")
    parent_run_id: UUID | None = attrs.field(default=None, converter=_parent_run_id)
    parent_stage_id: str | None = None
    correlation_id: UUID | None = attrs.field(default=None, converter=_correlation_id)
    _parent_data: FrozenDict[str, Any] | None = attrs.field(
        default=None, alias="_parent_data", repr=_data_repr
    )
    _before_stage_start_hooks: list[BeforeStageStartHook] = attrs.field(
        factory=list, alias="_before_stage_start_hooks"
    )
    # Who to tell when mark_canceled() is first called: the cancel tokens of the
    # graph runs started with this context (not a reference field).
    # Keyed by a token per subscription, in subscription order: a run's unsubscribe
    # is O(1) however many runs share the context.
    _cancel_callbacks: dict[object, Callable[[str], object]] = attrs.field(
        factory=dict, init=False, eq=False, repr=False
    )

    def __attrs_post_init__(self) -> None:
        # One type test per field when each holds what it should (every context the
        # library builds): the checks cost next to nothing there.
        if (
            type(self.data) is not dict
            or type(self.configuration) is not dict
            or type(self.metadata) is not dict
            or type(self.artifacts) is not list
            or self.event_sink is None
        ):
            self._check_fields()

    def _check_fields(self) -> None:
        """The slow path of the constructor's checks: None gives the default, else TypeError."""
        put = _PUT
        put["data"](self, _dict_field("data", self.data))
        put["configuration"](self, _dict_field("configuration", self.configuration))
        put["metadata"](self, _dict_field("metadata", self.metadata))
        put["artifacts"](self, _artifacts_field(self.artifacts))
        sink: object = self.event_sink  # the annotation is a promise the caller may break
        if sink is None:
            put["event_sink"](self, get_event_sink())

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

        Keys: the six ids, ``topology``, ``execution_mode``, ``input_text``,
        ``input_audio_duration_ms``, ``metadata`` (a copy), ``service``, ``data``
        (the live dict, not a copy), ``canceled``, ``cancellation_reason``,
        ``artifacts_count``;
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
            "input_text": self.input_text,
            "input_audio_duration_ms": self.input_audio_duration_ms,
            "metadata": self.metadata.copy(),
            "service": self.service,
            "data": self.data,
            "canceled": self.canceled,
            "cancellation_reason": self.cancellation_reason,
            "artifacts_count": len(self.artifacts),
        }
        if self.parent_run_id:
            result["parent_run_id"] = str(self.parent_run_id)
        if self.parent_stage_id:
            result["parent_stage_id"] = self.parent_stage_id
        if self.correlation_id:
            result["correlation_id"] = str(self.correlation_id)
        return result

    def to_snapshot(self) -> ContextSnapshot[Any]:
        """The immutable :class:`~stageflow_trio.context.context_snapshot.ContextSnapshot` of this context.

        Its identity holds the six ids and :attr:`created_at`; its payload the
        topology, execution mode, input, conversation, enrichments, extensions and
        a copy of :attr:`metadata`. A new snapshot on every call.
        """
        ContextSnapshot, RunIdentity = _snapshot_classes()
        return ContextSnapshot(
            run_id=RunIdentity(
                pipeline_run_id=self.pipeline_run_id,
                request_id=self.request_id,
                session_id=self.session_id,
                user_id=self.user_id,
                org_id=self.org_id,
                interaction_id=self.interaction_id,
                created_at=self.created_at,
            ),
            enrichments=self.enrichments,
            conversation=self.conversation,
            extensions=self.extensions,
            input_text=self.input_text,
            input_audio_duration_ms=self.input_audio_duration_ms,
            topology=self.topology,
            execution_mode=self.execution_mode,
            created_at=self.created_at,
            metadata=self.metadata.copy(),
        )

    @property
    def snapshot(self) -> ContextSnapshot[Any]:
        """:meth:`to_snapshot` (for code that reads ``ctx.snapshot``)."""
        return self.to_snapshot()

    @classmethod
    def create(
        cls,
        *,
        pipeline_run_id: UUID | str | None = None,
        request_id: UUID | str | None = None,
        session_id: UUID | str | None = None,
        user_id: UUID | str | None = None,
        org_id: UUID | str | None = None,
        interaction_id: UUID | str | None = None,
        topology: str | None = None,
        configuration: Mapping[str, Any] | None = None,
        execution_mode: str | None = None,
        input_text: str | None = None,
        input_audio_duration_ms: int | None = None,
        conversation: Conversation | None = None,
        enrichments: Enrichments | None = None,
        extensions: Any = None,
        metadata: Mapping[str, Any] | None = None,
        created_at: datetime | None = None,
        service: str = "pipeline",
        event_sink: EventSink | None = None,
        data: Mapping[str, Any] | None = None,
        ports: Ports | None = None,
        db: Any = None,
        canceled: bool = False,
        artifacts: list[StageArtifact] | None = None,
    ) -> PipelineContext:
        """A PipelineContext from keyword arguments, copying the given dicts and list.

        ``created_at`` defaults to now and ``event_sink`` to the global sink.

        Raises:
            TypeError: ``configuration``, ``metadata`` or ``data`` is not a mapping
                or None, or ``artifacts`` not a list (or other iterable) or None;
                the constructor's own errors for the other fields.
        """
        owner = "PipelineContext.create"
        configuration = _mapping_copy(owner, "configuration", configuration)
        metadata = _mapping_copy(owner, "metadata", metadata)
        data = _mapping_copy(owner, "data", data)
        artifact_list = _artifacts_copy(owner, artifacts)
        return cls(
            pipeline_run_id=pipeline_run_id,
            request_id=request_id,
            session_id=session_id,
            user_id=user_id,
            org_id=org_id,
            interaction_id=interaction_id,
            topology=topology,
            configuration=configuration,
            execution_mode=execution_mode,
            input_text=input_text,
            input_audio_duration_ms=input_audio_duration_ms,
            conversation=conversation,
            enrichments=enrichments,
            extensions=extensions,
            metadata=metadata,
            created_at=created_at if created_at is not None else utc_now(),
            service=service,
            event_sink=event_sink if event_sink is not None else get_event_sink(),
            data=data,
            ports=ports,
            db=db,
            canceled=canceled,
            artifacts=artifact_list,
        )

    @classmethod
    def from_snapshot(
        cls,
        snapshot: ContextSnapshot[Any],
        *,
        configuration: dict[str, Any] | None = None,
        service: str = "pipeline",
        event_sink: EventSink | None = None,
        data: dict[str, Any] | None = None,
        ports: Ports | None = None,
        db: Any = None,
        canceled: bool = False,
        artifacts: list[StageArtifact] | None = None,
    ) -> PipelineContext:
        """A PipelineContext carrying ``snapshot``'s ids, payload and ``created_at``.

        The other arguments are as for :meth:`create`.

        Raises:
            TypeError: ``snapshot`` is not a ContextSnapshot (a dict must be read
                with ``ContextSnapshot.from_dict`` first); as :meth:`create`.
        """
        from stageflow_trio.context.context_snapshot import ContextSnapshot

        given: object = snapshot  # the annotation is a promise the caller may break
        if not isinstance(given, ContextSnapshot):
            hint = (
                " (read a dict with ContextSnapshot.from_dict first)"
                if isinstance(given, Mapping)
                else ""
            )
            raise TypeError(
                f"PipelineContext.from_snapshot: snapshot must be a ContextSnapshot; "
                f"got {type(given).__name__}{hint}"
            )
        return cls.create(
            pipeline_run_id=snapshot.pipeline_run_id,
            request_id=snapshot.request_id,
            session_id=snapshot.session_id,
            user_id=snapshot.user_id,
            org_id=snapshot.org_id,
            interaction_id=snapshot.interaction_id,
            topology=snapshot.topology,
            configuration=configuration,
            execution_mode=snapshot.execution_mode,
            input_text=snapshot.input_text,
            input_audio_duration_ms=snapshot.input_audio_duration_ms,
            conversation=snapshot.conversation,
            enrichments=snapshot.enrichments,
            extensions=snapshot.extensions,
            metadata=dict(snapshot.metadata),
            created_at=snapshot.created_at,
            service=service,
            event_sink=event_sink,
            data=data,
            ports=ports,
            db=db,
            canceled=canceled,
            artifacts=artifacts,
        )

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

    def _effective_ports(self) -> Ports | None:
        """The ports derived stage contexts get: :attr:`ports`, else core ports around :attr:`db`."""
        if self.ports is not None or self.db is None:
            return self.ports
        from stageflow_trio.stages.ports import create_core_ports

        return create_core_ports(db=self.db)

    def fork(
        self,
        child_run_id: UUID,
        parent_stage_id: str,
        correlation_id: UUID,
        *,
        topology: str | None = None,
        execution_mode: str | None = None,
        inherit_data: bool | Iterable[str] = False,
        data_overrides: Mapping[str, Any] | None = None,
    ) -> PipelineContext:
        """The context of a child (subpipeline) run spawned by ``parent_stage_id``.

        The child has run id ``child_run_id`` and keeps this run's request,
        session, user, org and interaction ids, snapshot payload (input,
        conversation, enrichments, extensions, a copy of metadata, created_at),
        service, event sink, ports, db and before-stage-start hooks. It gets a
        shallow copy of ``configuration``, fresh artifacts and stage metadata,
        ``canceled=False``, ``parent_run_id`` set to this run's id, and a
        read-only shallow copy of this run's ``data`` (:meth:`get_parent_data`).
        ``topology`` and ``execution_mode`` default to this run's when not given
        (or empty).

        Args:
            inherit_data: What the child's own ``data`` starts with: ``False`` (the
                default) nothing, ``True`` a shallow copy of this run's data, or an
                iterable of keys (those present are copied).
            data_overrides: Merged into the child's data after the inherited keys.

        Raises:
            TypeError: ``inherit_data`` is a str (a key list was meant), neither a
                bool nor an iterable, or holds a key that cannot be hashed;
                ``data_overrides`` is neither a mapping nor None.
        """
        if isinstance(inherit_data, str) or not (isinstance(inherit_data, (bool, Iterable))):
            raise TypeError(
                "PipelineContext.fork: inherit_data must be a bool or an iterable of keys;"
                f" got {type(inherit_data).__name__}"
            )
        if data_overrides is not None and not isinstance(data_overrides, Mapping):
            raise TypeError(
                "PipelineContext.fork: data_overrides must be a mapping or None;"
                f" got {type(data_overrides).__name__}"
            )
        parent_data = self.data
        child_data: dict[str, Any]
        if inherit_data is True:
            child_data = parent_data.copy()
        elif inherit_data is False:
            child_data = {}
        else:
            try:
                child_data = {key: parent_data[key] for key in inherit_data if key in parent_data}
            except TypeError as exc:  # a key that cannot be hashed (a list)
                raise TypeError(
                    f"PipelineContext.fork: inherit_data must hold data keys (str); {exc}"
                ) from None
        if data_overrides:
            child_data.update(data_overrides)
        # Every field written through its slot: the generated __init__ would run the
        # id converters again on the ids this context already holds, and set each
        # field through object.__setattr__ (5.8 against 2.2 us a fork). The two ids
        # from the caller go through their converters, as the constructor's would.
        child: PipelineContext = _new(PipelineContext)
        put = _PUT
        put["pipeline_run_id"](child, _pipeline_run_id(child_run_id))
        put["request_id"](child, self.request_id)
        put["session_id"](child, self.session_id)
        put["user_id"](child, self.user_id)
        put["org_id"](child, self.org_id)
        put["interaction_id"](child, self.interaction_id)
        put["topology"](child, topology or self.topology)
        put["configuration"](child, self.configuration.copy())
        put["execution_mode"](child, execution_mode or self.execution_mode)
        put["input_text"](child, self.input_text)
        put["input_audio_duration_ms"](child, self.input_audio_duration_ms)
        put["conversation"](child, self.conversation)
        put["enrichments"](child, self.enrichments)
        put["extensions"](child, self.extensions)
        put["metadata"](child, self.metadata.copy())
        put["created_at"](child, self.created_at)
        put["service"](child, self.service)
        put["event_sink"](child, self.event_sink)
        put["data"](child, child_data)
        put["ports"](child, self.ports)
        put["db"](child, self.db)
        put["canceled"](child, False)
        put["cancellation_reason"](child, None)
        put["artifacts"](child, [])
        put["_stage_metadata"](child, {})
        put["parent_run_id"](child, self.pipeline_run_id)
        put["parent_stage_id"](child, parent_stage_id)
        put["correlation_id"](child, _correlation_id(correlation_id))
        put["_parent_data"](
            child,
            # An empty one is the shared empty FrozenDict: read-only, so shareable,
            # and one object less per child in flight for the garbage collector.
            (_freeze_dict(parent_data) if parent_data else _EMPTY_DATA)
            if type(parent_data) is dict
            else FrozenDict(parent_data),
        )
        put["_before_stage_start_hooks"](child, list(self._before_stage_start_hooks))
        put["_cancel_callbacks"](child, {})
        return child

    # The name the stageflow docs use for fork; the same method.
    fork_for_subpipeline = fork

    def mark_canceled(self, reason: str = "Cancellation requested") -> None:
        """Request cooperative cancellation; the first reason is kept.

        Sets :attr:`canceled` and (once) :attr:`cancellation_reason`, then cancels
        every graph run in progress that was started with this context: their
        running stages are interrupted at their next checkpoint (``trio.Cancelled``
        carrying the reason) and the run ends as cancelled. Each :meth:`on_cancel`
        callback runs once, in registration order (also when :attr:`canceled` was
        set by assignment first); an ``Exception`` from one is logged (logger
        ``stageflow_trio.cancellation``) and the rest still run. Not a checkpoint;
        safe to call from sync code, e.g. a stage or a hook.

        Raises:
            TypeError: ``reason`` is not a str.
        """
        if not isinstance(reason, str):
            raise TypeError(
                f"PipelineContext.mark_canceled: reason must be a str; got {type(reason).__name__}"
            )
        self.canceled = True
        if self.cancellation_reason is None:
            self.cancellation_reason = reason
        # Not "if this is the first call": `canceled` is a plain field, and a flag set
        # by assignment must not keep the subscribed runs from being cancelled here.
        if self._cancel_callbacks:
            callbacks, self._cancel_callbacks = self._cancel_callbacks, {}
            reason = self.cancellation_reason
            for callback in callbacks.values():
                # One failing callback must not keep the others (the cancel tokens
                # of the runs started with this context) from being told.
                try:
                    callback(reason)
                except Exception:
                    _cancel_logger.exception("Error in PipelineContext cancellation callback")

    def on_cancel(self, callback: Callable[[str], object]) -> Callable[[], None]:
        """Call ``callback(reason)`` on the first :meth:`mark_canceled`; at once if canceled.

        The graphs use it to bind a run's cancel token to this context. When the
        context is already cancelled, an error from ``callback`` reaches the
        caller; later, :meth:`mark_canceled` logs it.

        Returns:
            A function that removes the callback (harmless to call twice).

        Raises:
            TypeError: ``callback`` is not callable.
        """
        if not callable(callback):
            raise TypeError(
                "PipelineContext.on_cancel: callback must be callable;"
                f" got {type(callback).__name__}"
            )
        if self.canceled:
            callback(self.cancellation_reason or "Cancellation requested")
            return _noop
        key = object()
        callbacks = self._cancel_callbacks
        callbacks[key] = callback

        def unsubscribe() -> None:
            # Gone already when removed before, or when mark_canceled ran (it
            # replaced the dict).
            callbacks.pop(key, None)

        return unsubscribe

    @property
    def is_canceled(self) -> bool:
        """The :attr:`canceled` flag."""
        return self.canceled

    def raise_if_cancelled(self) -> None:
        """Raise ``StageCancellationRequested`` if :meth:`mark_canceled` was called.

        Not a checkpoint. The reason is :attr:`cancellation_reason`, else
        ``"Pipeline cancelled"``.
        """
        if self.canceled:
            from stageflow_trio.core.stage_context import StageCancellationRequested

            raise StageCancellationRequested(self.cancellation_reason or "Pipeline cancelled")

    async def cancellation_checkpoint(self) -> None:
        """A trio checkpoint, then :meth:`raise_if_cancelled`.

        Inside a graph run started with this context a cancellation has already
        cancelled the run's scope, so the checkpoint raises ``trio.Cancelled``.
        """
        await trio.lowlevel.checkpoint()
        self.raise_if_cancelled()

    def add_before_stage_start_hook(self, hook: BeforeStageStartHook) -> None:
        """Register ``hook(stage_name, stage_kind, stage_ctx, pipeline_ctx)``.

        A ``UnifiedStageGraph`` run started with this context calls the hooks, in
        registration order, before each stage starts (before its conditional
        check and its interceptors); a hook may be sync or async. A hook that
        calls :meth:`mark_canceled` makes that stage's output a cancel. Forked
        child contexts get a copy of the list.

        Raises:
            TypeError: ``hook`` is not callable.
        """
        if not callable(hook):
            raise TypeError(
                "PipelineContext.add_before_stage_start_hook: hook must be callable;"
                f" got {type(hook).__name__}"
            )
        self._before_stage_start_hooks.append(hook)

    @property
    def has_before_stage_start_hooks(self) -> bool:
        """Whether any hook is registered (a graph skips the call per stage when not)."""
        return bool(self._before_stage_start_hooks)

    async def run_before_stage_start_hooks(
        self, *, stage_name: str, stage_kind: Any, stage_ctx: StageContext
    ) -> None:
        """Run the registered hooks in order, awaiting those that return an awaitable.

        A checkpoint when a hook is async; errors from a hook propagate.
        """
        for hook in self._before_stage_start_hooks:
            outcome = hook(stage_name, stage_kind, stage_ctx, self)
            if inspect.isawaitable(outcome):
                await outcome

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
        output_bag: OutputBag | ContextSnapshot[Any],
        snapshot: ContextSnapshot[Any] | OutputBag | None = None,
        *,
        declared_deps: frozenset[str] | set[str] | list[str] | None = None,
        ports: Ports | None = None,
        strict: bool = True,
    ) -> StageContext:
        """A :class:`~stageflow_trio.core.stage_context.StageContext` for running ``stage_name``.

        Takes stageflow 1.2's ``(stage_name, output_bag, snapshot=None)`` and
        0.9.1's ``(stage_name, snapshot, output_bag)``: the arguments are told
        apart by type. Without a snapshot, :meth:`to_snapshot` is used.

        Its inputs see the outputs currently in ``output_bag`` (checked against
        ``declared_deps`` when ``strict``), ``ports`` (default: this context's,
        see :meth:`_effective_ports`), a fresh timer and this context's event
        sink; its cancellation follows this context.

        Raises:
            TypeError: ``output_bag`` has no ``outputs()`` method, or ``snapshot`` is
                neither a ContextSnapshot nor None.
        """
        # Imported here: core.stage_context imports this module lazily, and
        # stages.inputs imports stages.ports, keeping the import graph acyclic.
        from stageflow_trio.context.context_snapshot import ContextSnapshot
        from stageflow_trio.core.stage_context import StageContext
        from stageflow_trio.core.timer import PipelineTimer
        from stageflow_trio.stages.inputs import create_stage_inputs

        bag: Any = output_bag
        if isinstance(bag, ContextSnapshot):
            bag, snapshot = snapshot, bag  # the 0.9.1 argument order
        if not callable(getattr(bag, "outputs", None)):
            raise TypeError(
                "PipelineContext.derive_for_stage: output_bag must be an OutputBag"
                f" (anything with outputs()); got {type(bag).__name__}"
            )
        if snapshot is None:
            snapshot = self.to_snapshot()
        elif not isinstance(snapshot, ContextSnapshot):
            raise TypeError(
                "PipelineContext.derive_for_stage: snapshot must be a ContextSnapshot or None;"
                f" got {type(snapshot).__name__}"
            )
        inputs = create_stage_inputs(
            snapshot,
            prior_outputs=bag.outputs(),
            ports=ports or self._effective_ports(),
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
            cancellation=self,
        )

    def derive_root_stage_context(self, *, stage_name: str = "__pipeline_root__") -> StageContext:
        """The root StageContext of a run started with this context.

        Its snapshot is :meth:`to_snapshot`, its inputs are empty (ports from
        this context), it has a fresh timer, this context's event sink, and its
        cancellation follows this context. ``UnifiedStageGraph.run`` derives it
        when given a PipelineContext.
        """
        StageContext, PipelineTimer, StageInputs = _root_context_classes()
        snapshot = self.to_snapshot()
        return StageContext(
            snapshot=snapshot,
            inputs=StageInputs(snapshot, {}, self._effective_ports(), None, stage_name),
            stage_name=stage_name,
            timer=PipelineTimer(),
            event_sink=self.event_sink,
            cancellation=self,
        )


# Each field's slot writer, for PipelineContext.fork (which must write them all:
# tests/stages checks it against attrs.fields).
_PUT: dict[str, Callable[[PipelineContext, Any], None]] = {
    field.name: PipelineContext.__dict__[field.name].__set__
    for field in attrs.fields(PipelineContext)
}
_new = object.__new__


if not TYPE_CHECKING:
    # StageContext is listed here as in stageflow 1.2 and lives in core.stage_context,
    # which imports this module: it loads on first use.
    __getattr__, __dir__ = lazy_exports(
        __name__, {"stageflow_trio.core.stage_context": "StageContext"}
    )
