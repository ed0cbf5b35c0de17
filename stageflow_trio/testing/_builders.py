"""The test fakes and context builders that :mod:`stageflow_trio.testing` gathers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

from stageflow_trio._time import uuid4
from stageflow_trio.context.context_snapshot import ContextSnapshot
from stageflow_trio.context.conversation import Conversation
from stageflow_trio.context.identity import RunIdentity
from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.core.timer import PipelineTimer
from stageflow_trio.stages.context import PipelineContext, _artifacts_copy, _mapping_copy
from stageflow_trio.stages.inputs import create_stage_inputs

if TYPE_CHECKING:
    import uuid
    from collections.abc import Iterable, Mapping

    from stageflow_trio.context.types import Message
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
    ports: CorePorts | LLMPorts | AudioPorts | None = None,
    **kwargs: Any,
) -> PipelineContext:
    """A PipelineContext with test defaults, for the legacy StageGraph and interceptors.

    Every id but ``org_id`` defaults to a new random UUID; the event sink to a
    :class:`RecordingEventSink`. ``ports`` is named, as in stageflow 1.2.0, so that
    signature tools and editors show it; other keyword arguments go to PipelineContext.
    As :meth:`PipelineContext.create` (stageflow 1.2.0's builder calls it), the
    context gets its own copy of ``data``, and of ``configuration``, ``metadata``
    and ``artifacts`` if given: the caller's dict or list is never the context's.

    Raises:
        TypeError: ``data``, ``configuration`` or ``metadata`` is neither a mapping nor
            None, or ``artifacts`` not a list (or other iterable) or None; the
            constructor's own errors for the other fields.
    """
    owner = "create_test_pipeline_context"
    for key in ("configuration", "metadata"):
        if key in kwargs:
            kwargs[key] = _mapping_copy(owner, key, kwargs[key])
    if "artifacts" in kwargs:
        kwargs["artifacts"] = _artifacts_copy(owner, kwargs["artifacts"])

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
        # A copy (an empty dict too: 0.9.1 replaced only that one).
        data=_mapping_copy(owner, "data", data),
        event_sink=event_sink if event_sink is not None else RecordingEventSink(),
        ports=ports,
        **kwargs,
    )
