"""StageContext: what a stage's ``execute`` receives.

A :class:`StageContext` is a frozen per-stage view of a run: the immutable
:class:`~stageflow_trio.context.context_snapshot.ContextSnapshot`, the stage's
:class:`~stageflow_trio.stages.inputs.StageInputs` (the outputs of its declared
dependencies), its name, the run's timer and an optional event sink. Stages do
not mutate it; they return a ``StageOutput``.

A context derived from a :class:`~stageflow_trio.stages.context.PipelineContext`
also sees that context's cooperative cancellation (:attr:`StageContext.is_cancelled`,
:meth:`StageContext.raise_if_cancelled`, :meth:`StageContext.cancellation_checkpoint`).

The engine builds one per stage run, so construction only stores five
references: no copies and no validation (it costs the same as the reference's
frozen dataclass).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import trio

from stageflow_trio._errors import StageflowError
from stageflow_trio._frozen import frozen_compat
from stageflow_trio.core.timer import PipelineTimer
from stageflow_trio.events.sink import EventSink
from stageflow_trio.stages.inputs import StageInputs

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping
    from uuid import UUID

    # Lazy on purpose: at runtime it would pull the context package (and
    # cattrs) into `import stageflow_trio`, about 30 ms; see test_exports.
    from stageflow_trio.context.context_snapshot import ContextSnapshot  # noqa: TC004
    from stageflow_trio.stages.context import PipelineContext

__all__ = ["StageCancellationRequested", "StageContext", "create_stage_context"]

logger: logging.Logger = logging.getLogger("stageflow_trio.core.stage_context")

# Attributes every LogRecord has (plus the two that logging reserves); an
# ``extra=`` key equal to one of them makes Logger.makeRecord raise KeyError.
_RESERVED_LOG_KEYS = frozenset(
    logging.LogRecord("", logging.DEBUG, "", 0, "", None, None).__dict__
) | {"message", "asctime"}


def _log_extra(payload: Mapping[str, Any]) -> dict[str, Any]:
    """``payload`` without the keys that ``logging`` refuses in ``extra=``.

    The reference passes event payloads straight to ``extra=``, so a payload
    key such as ``"name"`` makes ``try_emit_event`` raise KeyError whenever
    DEBUG logging is on. Dropping those keys from the log record keeps the
    event methods from raising.
    """
    if _RESERVED_LOG_KEYS.isdisjoint(payload):
        return dict(payload)
    return {k: v for k, v in payload.items() if k not in _RESERVED_LOG_KEYS}


class StageCancellationRequested(StageflowError):
    """Cooperative cancellation was requested for the stage (``raise_if_cancelled``).

    A graph run turns it into the stage's ``StageOutput.cancel(reason=...)``.

    Attributes:
        reason: Why the stage was cancelled.
    """

    def __init__(self, reason: str = "Stage execution cancelled") -> None:
        super().__init__(reason)
        self.reason = reason


class CancellationSource(Protocol):
    """What a StageContext asks about cancellation (a ``PipelineContext`` is one)."""

    @property
    def is_canceled(self) -> bool:
        """Whether cancellation was requested."""

    @property
    def cancellation_reason(self) -> str | None:
        """Why, when known."""


class CleanupTarget(Protocol):
    """Where a run keeps its cleanup callbacks (a ``CleanupRegistry``)."""

    def register(self, callback: Callable[[], Awaitable[None]], *, name: str | None = None) -> None:
        """Add ``callback``, run when the run ends."""


@frozen_compat
@attrs.frozen
class StageContext:
    """The frozen execution context of one stage run.

    Implements :class:`~stageflow_trio.protocols.ExecutionContext`.

    Args:
        snapshot: The run's immutable input snapshot.
        inputs: The stage's view of prior outputs and ports.
        stage_name: The name of the stage being run.
        timer: The run's shared timer.
        event_sink: Where :meth:`try_emit_event` sends events; None logs them at DEBUG.
        cleanup_registry: The cleanup registry of the run this stage belongs to (set by
            ``UnifiedStageGraph``; ``None`` outside a graph run). Not in the
            reference; left out of equality and the repr.
        cancellation: Where :attr:`is_cancelled` looks (the PipelineContext the run was
            started with; set by ``PipelineContext.derive_for_stage`` /
            ``derive_root_stage_context`` and copied by the graph onto every stage's
            context). ``None``: never cancelled. Left out of equality and the repr.
    """

    # No field checks, on purpose: the engine builds one per stage run (a hot path)
    # from values it has already checked, and the reference checks none either.
    snapshot: ContextSnapshot[Any]
    inputs: StageInputs
    stage_name: str
    timer: PipelineTimer
    event_sink: EventSink | None = None
    cleanup_registry: CleanupTarget | None = attrs.field(
        default=None, eq=False, repr=False, kw_only=True
    )
    cancellation: CancellationSource | None = attrs.field(
        default=None, eq=False, repr=False, kw_only=True
    )

    @property
    def pipeline_run_id(self) -> UUID | None:
        """The snapshot's pipeline run id."""
        return self.snapshot.pipeline_run_id

    @property
    def request_id(self) -> UUID | None:
        """The snapshot's request id."""
        return self.snapshot.request_id

    @property
    def execution_mode(self) -> str | None:
        """The snapshot's execution mode."""
        return self.snapshot.execution_mode

    @property
    def started_at(self) -> datetime:
        """When the run's timer started (UTC)."""
        return self.timer.started_at

    @property
    def is_cancelled(self) -> bool:
        """Whether cooperative cancellation was requested for this stage's run."""
        source = self.cancellation
        return source is not None and source.is_canceled

    @property
    def cancellation_reason(self) -> str | None:
        """The reason given with the cancellation request, when known."""
        source = self.cancellation
        return source.cancellation_reason if source is not None else None

    def raise_if_cancelled(self) -> None:
        """Raise :class:`StageCancellationRequested` if cancellation was requested.

        Not a checkpoint. The reason is :attr:`cancellation_reason`, else
        ``"Stage '<name>' was cancelled"``.
        """
        if self.is_cancelled:
            raise StageCancellationRequested(
                self.cancellation_reason or f"Stage {self.stage_name!r} was cancelled"
            )

    async def cancellation_checkpoint(self) -> None:
        """A trio checkpoint, then :meth:`raise_if_cancelled`.

        Inside a graph run started with a PipelineContext, ``mark_canceled`` has
        already cancelled the run's scope, so the checkpoint raises ``trio.Cancelled``
        (carrying the reason); outside a run it raises
        :class:`StageCancellationRequested`.
        """
        await trio.lowlevel.checkpoint()
        self.raise_if_cancelled()

    def to_dict(self) -> dict[str, Any]:
        """The snapshot's ``to_dict()`` plus ``stage_name`` and ``started_at`` (ISO string)."""
        result = self.snapshot.to_dict()
        result["stage_name"] = self.stage_name
        result["started_at"] = self.started_at.isoformat()
        return result

    def try_emit_event(self, type: str, data: dict[str, Any]) -> None:  # noqa: A002
        """Emit ``type`` through the event sink, fire-and-forget; never raises for sink errors.

        The payload is ``{"pipeline_run_id", "request_id", "execution_mode", **data}``
        (ids as strings or None; keys in ``data`` win). An exception from the
        sink's ``try_emit`` is logged as a warning and suppressed. Without a
        sink the event is logged at DEBUG.
        """
        run_id = self.snapshot.pipeline_run_id
        request_id = self.snapshot.request_id
        enriched = {
            "pipeline_run_id": str(run_id) if run_id else None,
            "request_id": str(request_id) if request_id else None,
            "execution_mode": self.snapshot.execution_mode,
            **data,
        }
        sink = self.event_sink
        if sink is None:
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("Event (no sink): %s", type, extra=_log_extra(enriched))
            return
        try:
            sink.try_emit(type=type, data=enriched)
        except Exception as exc:  # noqa: BLE001 - emission is best-effort by contract
            logger.warning("Failed to emit event %s: %s", type, exc)

    def emit_event(self, type: str, data: dict[str, Any]) -> None:  # noqa: A002
        """The same as :meth:`try_emit_event` (the name stageflow 1.2 added)."""
        self.try_emit_event(type=type, data=data)

    def register_cleanup(
        self, callback: Callable[[], Awaitable[None]], *, name: str | None = None
    ) -> None:
        """Register ``callback`` with this stage's run; it runs when the run ends.

        Raises:
            RuntimeError: This context belongs to no graph run (no ``cleanup_registry``).
        """
        registry = self.cleanup_registry
        if registry is None:
            raise RuntimeError(
                f"StageContext for stage {self.stage_name!r} has no cleanup_registry:"
                " register_cleanup() needs a context made by a UnifiedStageGraph run"
            )
        registry.register(callback, name=name)

    def record_stage_event(self, stage: str, status: str, **kwargs: Any) -> None:
        """Emit ``stage.{status}`` with ``{stage, status, stage_name, **kwargs}`` via :meth:`try_emit_event`."""
        self.try_emit_event(
            f"stage.{status}",
            {"stage": stage, "status": status, "stage_name": self.stage_name, **kwargs},
        )

    def as_pipeline_context(
        self,
        *,
        data: dict[str, Any] | None = None,
        configuration: dict[str, Any] | None = None,
        service: str | None = None,
        db: Any = None,
    ) -> PipelineContext:
        """A new mutable :class:`~stageflow_trio.stages.context.PipelineContext` for this run.

        It is ``PipelineContext.from_snapshot(self.snapshot, ...)``: the snapshot's
        ids, payload and ``created_at``, shallow copies of ``data`` and
        ``configuration`` (empty when not given), ``service`` (default
        ``"pipeline"``), this context's ports, ``db`` (default: the ports' ``db``),
        and this context's event sink (the global sink when this context has
        none). Use it to call APIs that need the orchestration context, such as
        spawning a subpipeline. (stageflow 1.2 deprecates it in favour of starting
        runs with a PipelineContext; it does not warn here.)
        """
        # Imported here: stages.context imports this module.
        from stageflow_trio.stages.context import PipelineContext

        ports = getattr(self.inputs, "ports", None)  # inputs may be None, as in the reference
        return PipelineContext.from_snapshot(
            self.snapshot,
            configuration=configuration,
            service=service or "pipeline",
            data=data,
            ports=ports,
            db=db if db is not None else getattr(ports, "db", None),
            event_sink=self.event_sink,
        )

    @classmethod
    def now(cls) -> datetime:
        """The current UTC time (a timezone-aware datetime)."""
        return datetime.now(UTC)


def create_stage_context(
    snapshot: ContextSnapshot[Any],
    inputs: StageInputs,
    stage_name: str,
    timer: PipelineTimer,
    event_sink: EventSink | None = None,
) -> StageContext:
    """Build a :class:`StageContext` (same arguments as the constructor)."""
    return StageContext(
        snapshot=snapshot,
        inputs=inputs,
        stage_name=stage_name,
        timer=timer,
        event_sink=event_sink,
    )


_fields = StageContext.__dict__
_set_snapshot = _fields["snapshot"].__set__
_set_inputs = _fields["inputs"].__set__
_set_stage_name = _fields["stage_name"].__set__
_set_timer = _fields["timer"].__set__
_set_event_sink = _fields["event_sink"].__set__
_set_cleanup_registry = _fields["cleanup_registry"].__set__
_set_cancellation = _fields["cancellation"].__set__
del _fields
_new = object.__new__


def _engine_stage_context(
    snapshot: ContextSnapshot[Any],
    inputs: StageInputs,
    stage_name: str,
    timer: PipelineTimer,
    event_sink: EventSink | None,
    cleanup_registry: CleanupTarget | None,
    cancellation: CancellationSource | None,
) -> StageContext:
    """``StageContext(...)`` with every field given, for the engine's one context per stage.

    The same object the constructor makes (the class checks no field), built by
    writing its slots through their descriptors: the generated ``__init__`` of a
    frozen class sets each field through ``object.__setattr__``, which costs
    twice as much (0.81 against 0.35 us a context).
    """
    ctx: StageContext = _new(StageContext)
    _set_snapshot(ctx, snapshot)
    _set_inputs(ctx, inputs)
    _set_stage_name(ctx, stage_name)
    _set_timer(ctx, timer)
    _set_event_sink(ctx, event_sink)
    _set_cleanup_registry(ctx, cleanup_registry)
    _set_cancellation(ctx, cancellation)
    return ctx
