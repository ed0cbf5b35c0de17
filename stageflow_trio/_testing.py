"""The test fakes and context builders that :mod:`stageflow_trio.testing` gathers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
import trio

from stageflow_trio._frozen import frozen_compat
from stageflow_trio._time import uuid4
from stageflow_trio.context.context_snapshot import ContextSnapshot
from stageflow_trio.context.conversation import Conversation
from stageflow_trio.context.identity import RunIdentity
from stageflow_trio.context.types import Message
from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.core.timer import PipelineTimer
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.stages.inputs import create_stage_inputs
from stageflow_trio.utils.frozen import FrozenList

if TYPE_CHECKING:
    import uuid
    from collections.abc import Iterable, Mapping

    from stageflow_trio.core.stage_output import StageOutput
    from stageflow_trio.stages.inputs import StageInputs
    from stageflow_trio.stages.ports import AudioPorts, CorePorts, LLMPorts


class RecordingEventSink:
    """An event sink that records every event, in arrival order, for assertions.

    ``events`` holds ``(type, data)`` tuples exactly as received (``data`` is
    not copied). Use it as the global sink (``set_event_sink``) or pass it to a
    context or ``BackpressureAwareEventSink``.
    """

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any] | None]] = []

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        """Record the event. A checkpoint; a call cancelled there records nothing."""
        await trio.lowlevel.checkpoint_if_cancelled()
        self.events.append((type, data))
        await trio.lowlevel.cancel_shielded_checkpoint()

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        """Record the event."""
        self.events.append((type, data))

    def types(self) -> list[str]:
        """The recorded event types, in order."""
        return [event_type for event_type, _ in self.events]

    def of_type(self, type: str) -> list[dict[str, Any] | None]:  # noqa: A002
        """The payloads of the recorded events whose type is ``type``, in order."""
        return [data for event_type, data in self.events if event_type == type]

    def clear(self) -> None:
        """Forget every recorded event."""
        self.events.clear()


def create_test_snapshot(
    *,
    pipeline_run_id: uuid.UUID | None = None,
    request_id: uuid.UUID | None = None,
    session_id: uuid.UUID | None = None,
    user_id: uuid.UUID | None = None,
    org_id: uuid.UUID | None = None,
    interaction_id: uuid.UUID | None = None,
    topology: str | None = "test",
    execution_mode: str | None = "test",
    input_text: str | None = None,
    messages: Iterable[Message] | None = None,
    extensions: Any = None,
    **kwargs: Any,
) -> ContextSnapshot[Any]:
    """A ContextSnapshot with test defaults.

    The pipeline run, request, user and interaction ids default to new random
    UUIDs; ``session_id`` and ``org_id`` stay ``None`` unless given. Messages,
    when given, become the snapshot's conversation. Other keyword arguments go
    to ``ContextSnapshot``.
    """

    run_id = RunIdentity(
        pipeline_run_id=pipeline_run_id or uuid4(),
        request_id=request_id or uuid4(),
        session_id=session_id,
        user_id=user_id or uuid4(),
        org_id=org_id,
        interaction_id=interaction_id or uuid4(),
    )
    conversation = Conversation(messages=list(messages)) if messages else None
    return ContextSnapshot(
        run_id=run_id,
        conversation=conversation,
        topology=topology,
        execution_mode=execution_mode,
        input_text=input_text,
        extensions=extensions,
        **kwargs,
    )


def create_test_stage_context(
    *,
    snapshot: ContextSnapshot[Any] | None = None,
    inputs: StageInputs | None = None,
    prior_outputs: Mapping[str, StageOutput] | None = None,
    ports: CorePorts | LLMPorts | AudioPorts | None = None,
    stage_name: str = "test_stage",
    event_sink: Any = None,
    declared_deps: Iterable[str] | None = None,
    **snapshot_kwargs: Any,
) -> StageContext:
    """A StageContext with test defaults, for calling a stage directly.

    Without ``inputs``, the inputs hold ``prior_outputs`` and are not strict
    (``declared_deps`` defaults to the prior outputs' names). The event sink
    defaults to a :class:`RecordingEventSink`, so a test can read what the
    stage emitted from ``ctx.event_sink.events``. Other keyword arguments go
    to :func:`create_test_snapshot` when no ``snapshot`` is given.
    """

    if snapshot is None:
        snapshot = create_test_snapshot(**snapshot_kwargs)
    elif snapshot_kwargs:
        raise TypeError(
            "create_test_stage_context: snapshot fields "
            f"({', '.join(sorted(snapshot_kwargs))}) cannot be combined with snapshot="
        )
    if inputs is None:
        if declared_deps is None and prior_outputs:
            declared_deps = frozenset(prior_outputs)
        inputs = create_stage_inputs(
            snapshot=snapshot,
            prior_outputs=dict(prior_outputs or {}),
            ports=ports,
            declared_deps=frozenset(declared_deps) if declared_deps is not None else None,
            stage_name=stage_name,
            strict=False,
        )
    return StageContext(
        snapshot=snapshot,
        inputs=inputs,
        stage_name=stage_name,
        timer=PipelineTimer(),
        event_sink=event_sink if event_sink is not None else RecordingEventSink(),
    )


def create_test_pipeline_context(
    *,
    pipeline_run_id: uuid.UUID | None = None,
    request_id: uuid.UUID | None = None,
    session_id: uuid.UUID | None = None,
    user_id: uuid.UUID | None = None,
    org_id: uuid.UUID | None = None,
    interaction_id: uuid.UUID | None = None,
    topology: str | None = "test",
    execution_mode: str | None = "test",
    service: str = "test",
    data: dict[str, Any] | None = None,
    event_sink: Any = None,
    **kwargs: Any,
) -> PipelineContext:
    """A PipelineContext with test defaults, for the legacy StageGraph and interceptors.

    Every id but ``org_id`` defaults to a new random UUID; the event sink to a
    :class:`RecordingEventSink`. Other keyword arguments go to PipelineContext.
    """

    return PipelineContext(
        pipeline_run_id=pipeline_run_id or uuid4(),
        request_id=request_id or uuid4(),
        session_id=session_id or uuid4(),
        user_id=user_id or uuid4(),
        org_id=org_id,
        interaction_id=interaction_id or uuid4(),
        topology=topology,
        execution_mode=execution_mode,
        service=service,
        data=data if data is not None else {},
        event_sink=event_sink if event_sink is not None else RecordingEventSink(),
        **kwargs,
    )


# --- snapshot validation ------------------------------------------------------------------


def _problems(value: Iterable[SnapshotValidationError]) -> FrozenList[SnapshotValidationError]:
    return value if isinstance(value, FrozenList) else FrozenList(value)


@frozen_compat
@attrs.frozen
class SnapshotValidationError:
    """One problem :func:`validate_snapshot` found: the field, a message, the offending value."""

    field: str
    message: str
    value: Any = None


@frozen_compat
@attrs.frozen
class SnapshotValidationResult:
    """What :func:`validate_snapshot` found; true when ``valid``.

    Attributes:
        valid: No errors.
        errors: The errors (read-only list).
        warnings: The warnings (read-only list).
    """

    valid: bool
    errors: FrozenList[SnapshotValidationError] = attrs.field(
        factory=FrozenList, converter=_problems
    )
    warnings: FrozenList[SnapshotValidationError] = attrs.field(
        factory=FrozenList, converter=_problems
    )

    def __bool__(self) -> bool:
        return self.valid


def validate_snapshot(
    snapshot: ContextSnapshot[Any],
    *,
    require_user_id: bool = False,
    require_org_id: bool = False,
    require_pipeline_run_id: bool = True,
    require_request_id: bool = False,
    strict: bool = False,
) -> SnapshotValidationResult:
    """Check a snapshot for missing ids and suspicious content.

    Errors: a required id that is None (``pipeline_run_id`` by default), a
    conversation entry that is not a :class:`~stageflow_trio.context.types.Message`.
    Warnings: a message with an empty role, an ``execution_mode`` without a
    ``topology``. With ``strict``, warnings count as errors.
    """
    errors: list[SnapshotValidationError] = []
    warnings: list[SnapshotValidationError] = []
    for name, required in (
        ("pipeline_run_id", require_pipeline_run_id),
        ("request_id", require_request_id),
        ("user_id", require_user_id),
        ("org_id", require_org_id),
    ):
        if required and getattr(snapshot, name) is None:
            errors.append(
                SnapshotValidationError(field=name, message=f"{name} is required but not set")
            )
    # Typed as Messages, but a Conversation also keeps plain dicts as they are.
    entries: Iterable[object] = snapshot.messages
    for index, message in enumerate(entries):
        if not isinstance(message, Message):
            errors.append(
                SnapshotValidationError(
                    field=f"messages[{index}]",
                    message=f"Expected Message, got {type(message).__name__}",
                    value=message,
                )
            )
        elif not message.role:
            warnings.append(
                SnapshotValidationError(
                    field=f"messages[{index}].role",
                    message="Message role is empty",
                    value=message,
                )
            )
    if snapshot.topology is None and snapshot.execution_mode is not None:
        warnings.append(
            SnapshotValidationError(
                field="topology", message="execution_mode is set but topology is None"
            )
        )
    if strict:
        errors.extend(warnings)
        warnings = []
    return SnapshotValidationResult(valid=not errors, errors=errors, warnings=warnings)


def validate_snapshot_strict(snapshot: ContextSnapshot[Any], **kwargs: Any) -> ContextSnapshot[Any]:
    """Return ``snapshot`` if :func:`validate_snapshot` (strict) finds nothing.

    Raises:
        ValueError: ``"ContextSnapshot validation failed: {field}: {message}; ..."``.
    """
    result = validate_snapshot(snapshot, strict=True, **kwargs)
    if not result:
        details = "; ".join(f"{error.field}: {error.message}" for error in result.errors)
        raise ValueError(f"ContextSnapshot validation failed: {details}")
    return snapshot


def snapshot_from_dict_strict(
    data: dict[str, Any], **validation_kwargs: Any
) -> ContextSnapshot[Any]:
    """``ContextSnapshot.from_dict(data)``, checked by :func:`validate_snapshot_strict`."""
    return validate_snapshot_strict(ContextSnapshot.from_dict(data), **validation_kwargs)
