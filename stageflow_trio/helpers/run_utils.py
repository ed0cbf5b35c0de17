"""Run utilities: run a pipeline with one call and get a :class:`RunResult`.

- :class:`PipelineRunner`: builds the snapshot and the root StageContext, runs
  the graph with an :class:`ObservableEventSink` installed as the global event
  sink (the previous one is put back when the run returns), and turns the
  outcome into a :class:`RunResult`: completed, cancelled by a stage or token
  (``success=True, cancelled=True``), or failed.
- :func:`run_simple_pipeline`: the same, in one call.
- :class:`ObservableEventSink`: prints events as they arrive and keeps them.
- :func:`setup_logging`, :class:`JsonLogFormatter`: console (and file) logging.

Example::

    result = await run_simple_pipeline(pipeline, "Hello!")
    if result.success:
        print(result.stages)

``trio.Cancelled`` (a cancel scope around the call) is never turned into a
result: it propagates, after the previous global sink is back.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import attrs
import trio

from stageflow_trio._args import check_flag, check_int, check_number, error_text, type_of
from stageflow_trio._frozen import frozen_compat
from stageflow_trio._time import RunClock, utc_now_iso, uuid4
from stageflow_trio.context import ContextSnapshot
from stageflow_trio.context.identity import RunIdentity
from stageflow_trio.core import PipelineTimer, StageContext
from stageflow_trio.events._global_sink import swap_event_sink
from stageflow_trio.helpers.memory_tracker import MemoryTracker
from stageflow_trio.helpers.uuid_utils import UuidCollisionMonitor
from stageflow_trio.pipeline.cancellation import CancellationToken
from stageflow_trio.pipeline.dag import UnifiedPipelineCancelled, UnifiedStageGraph
from stageflow_trio.pipeline.interceptors_hardening import (
    ContextSizeInterceptor,
    ImmutabilityInterceptor,
)
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.stages.inputs import create_stage_inputs
from stageflow_trio.utils.frozen import FrozenDict, FrozenList

if TYPE_CHECKING:
    from stageflow_trio.pipeline.interceptors import BaseInterceptor

__all__ = [
    "JsonLogFormatter",
    "ObservableEventSink",
    "PipelineRunner",
    "RunResult",
    "run_simple_pipeline",
    "setup_logging",
]


def setup_logging(
    *,
    verbose: bool = False,
    json_format: bool = False,
    log_file: str | None = None,
) -> None:
    """Configure the root logger for a script: level, format, stdout and an optional file.

    Replaces the root logger's handlers with one writing to ``sys.stdout`` (and
    one appending to ``log_file`` when given), at DEBUG with ``verbose`` else
    INFO, formatted as ``HH:MM:SS [LEVEL] name: message`` or, with
    ``json_format``, by :class:`JsonLogFormatter`. The ``asyncio`` and
    ``urllib3`` loggers are set to WARNING, as in the reference.

    Raises:
        TypeError: an argument has the wrong type.
    """
    check_flag("setup_logging", "verbose", verbose)
    check_flag("setup_logging", "json_format", json_format)
    if log_file is not None and not isinstance(log_file, str):
        raise TypeError(f"setup_logging: log_file must be a str or None; got {type_of(log_file)}")
    level = logging.DEBUG if verbose else logging.INFO
    formatter: logging.Formatter = (
        JsonLogFormatter()
        if json_format
        else logging.Formatter("%(asctime)s [%(levelname)s] %(name)s: %(message)s", "%H:%M:%S")
    )
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if log_file:
        handlers.append(logging.FileHandler(log_file))
    root = logging.getLogger()
    root.setLevel(level)
    root.handlers.clear()
    for handler in handlers:
        handler.setLevel(level)
        handler.setFormatter(formatter)
        root.addHandler(handler)
    for noisy in ("asyncio", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class JsonLogFormatter(logging.Formatter):
    """Formats each record as one JSON object per line.

    Keys: ``timestamp`` (UTC ISO, when the record was made), ``level``,
    ``logger``, ``message``, then ``event``, ``stage`` and ``duration_ms`` when
    the record has them (``extra=``), and ``exception`` (the formatted
    traceback) when it carries one. Values JSON cannot hold are written with ``str``.
    """

    def format(self, record: logging.LogRecord) -> str:
        if not isinstance(record, logging.LogRecord):
            raise TypeError(
                f"JsonLogFormatter.format: record must be a logging.LogRecord; got {type_of(record)}"
            )
        data: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("event", "stage", "duration_ms"):
            if hasattr(record, key):
                data[key] = getattr(record, key)
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


_RED, _GREEN, _BLUE, _YELLOW, _GRAY, _CYAN = (
    "\033[91m",
    "\033[92m",
    "\033[94m",
    "\033[93m",
    "\033[90m",
    "\033[96m",
)
_RESET = "\033[0m"

# The payload keys printed under an event, in this order.
_SHOWN_KEYS = (
    "stage",
    "action_type",
    "tool_name",
    "error",
    "result",
    "duration_ms",
    "execution_mode",
    "behavior",
    "reason",
)


def _color(event_type: str) -> str:
    if "error" in event_type or "failed" in event_type:
        return _RED
    if "completed" in event_type or "success" in event_type:
        return _GREEN
    if "started" in event_type:
        return _BLUE
    if "tool" in event_type:
        return _YELLOW
    if "skip" in event_type:
        return _GRAY
    return _CYAN


class ObservableEventSink:
    """An event sink that prints each event as it arrives and keeps them for later.

    Each event is recorded as ``{"type", "data", "timestamp", "elapsed_ms"}``:
    ``data`` is the payload (``{}`` for None), ``timestamp`` the UTC ISO time it
    arrived and ``elapsed_ms`` the milliseconds since the sink was created (or
    last cleared), on trio's clock (that of the run the sink is made or first
    used in), so under ``MockClock`` it agrees with the run's ``duration_ms``.

    Args:
        verbose: Print each event (its type, then a few known payload keys).
        colorize: Color the printed type with ANSI codes.
        capture: Keep the events in :attr:`events`.
    """

    def __init__(
        self, *, verbose: bool = True, colorize: bool = True, capture: bool = True
    ) -> None:
        self.verbose = verbose
        self.colorize = colorize
        self.capture = capture
        self.events: list[dict[str, Any]] = []
        self._clock = RunClock()
        self._start = self._clock()

    def _elapsed_ms(self) -> float:
        return (self._clock() - self._start) * 1000

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        """Record (and print) the event. A checkpoint; a call cancelled there records nothing."""
        await trio.lowlevel.checkpoint_if_cancelled()
        self._record(type, data)
        await trio.lowlevel.cancel_shielded_checkpoint()

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        """Record (and print) the event."""
        self._record(type, data)

    def _record(self, event_type: str, data: dict[str, Any] | None) -> None:
        event = {
            "type": event_type,
            "data": data or {},
            "timestamp": utc_now_iso(),
            "elapsed_ms": self._elapsed_ms(),
        }
        if self.capture:
            self.events.append(event)
        if self.verbose:
            self._print_event(event)

    def _print_event(self, event: dict[str, Any]) -> None:
        color, reset = (_color(event["type"]), _RESET) if self.colorize else ("", "")
        print(f"{color}[{event['elapsed_ms']:8.2f}ms] {event['type']}{reset}")
        data = event["data"]
        for key in _SHOWN_KEYS:
            if key in data:
                value = data[key]
                if isinstance(value, str) and len(value) > 80:
                    value = value[:80] + "..."
                print(f"           {key}: {value}")

    def print_summary(self) -> None:
        """Print the number of events, by category (the type up to the first dot), and the last 10."""
        if not self.events:
            print("\nNo events captured.")
            return
        print("\n" + "=" * 60)
        print("EVENT SUMMARY")
        print("=" * 60)
        print(f"Total events: {len(self.events)}")
        print(f"Total time: {self._elapsed_ms():.1f}ms")
        by_prefix: dict[str, int] = {}
        for event in self.events:
            prefix = event["type"].split(".")[0]
            by_prefix[prefix] = by_prefix.get(prefix, 0) + 1
        print("\nBy category:")
        for prefix, count in sorted(by_prefix.items()):
            print(f"  {prefix}: {count}")
        print("\nRecent events:")
        for event in self.events[-10:]:
            print(f"  [{event['elapsed_ms']:8.2f}ms] {event['type']}")

    def clear(self) -> None:
        """Forget the captured events and restart the elapsed-time clock."""
        self.events.clear()
        self._start = self._clock()

    def get_events_by_type(self, event_type: str) -> list[dict[str, Any]]:
        """The captured events whose type contains ``event_type``."""
        return [event for event in self.events if event_type in event["type"]]

    def get_stage_events(self, stage_name: str) -> list[dict[str, Any]]:
        """The captured events whose payload's ``stage`` is ``stage_name``, or whose
        type contains it."""
        return [
            event
            for event in self.events
            if event.get("data", {}).get("stage") == stage_name or stage_name in event["type"]
        ]


def _stages(value: Mapping[str, Any]) -> FrozenDict[str, Any]:
    return value if isinstance(value, FrozenDict) else FrozenDict(value)


def _events(value: Iterable[dict[str, Any]]) -> FrozenList[dict[str, Any]]:
    return value if isinstance(value, FrozenList) else FrozenList(value)


@frozen_compat
@attrs.frozen
class RunResult:
    """The outcome of a :class:`PipelineRunner` run.

    Attributes:
        success: True when the run completed or was cancelled by a stage or
            token; False when it failed.
        stages: Each stage's output data by name (read-only); for a cancelled
            run, the stages that had completed; empty for a failed run.
        duration_ms: The run's duration, on trio's clock.
        error: The failure's message (``str(exc)``).
        error_type: The failure's exception class name.
        cancelled: The run was cancelled (by a stage's CANCEL output or a token).
        cancel_reason: Why.
        events: The events the run emitted, as :class:`ObservableEventSink`
            recorded them (empty when the runner does not capture events).
        pipeline_run_id: The run's id.
    """

    success: bool
    stages: FrozenDict[str, Any] = attrs.field(factory=FrozenDict, converter=_stages)
    duration_ms: float = 0.0
    error: str | None = None
    error_type: str | None = None
    cancelled: bool = False
    cancel_reason: str | None = None
    events: FrozenList[dict[str, Any]] = attrs.field(factory=FrozenList, converter=_events)
    pipeline_run_id: UUID | None = None

    def to_dict(self) -> dict[str, Any]:
        """``success``, ``stages``, ``duration_ms``; then ``error`` and ``error_type``
        when there is an error, ``cancelled`` and ``cancel_reason`` when cancelled, and
        ``pipeline_run_id`` (a string) when set. Events are not included."""
        result: dict[str, Any] = {
            "success": self.success,
            "stages": self.stages.to_dict(),
            "duration_ms": self.duration_ms,
        }
        if self.error:
            result["error"] = self.error
            result["error_type"] = self.error_type
        if self.cancelled:
            result["cancelled"] = self.cancelled
            result["cancel_reason"] = self.cancel_reason
        if self.pipeline_run_id:
            result["pipeline_run_id"] = str(self.pipeline_run_id)
        return result

    def get_stage_data(self, stage_name: str, key: str, default: Any = None) -> Any:
        """``stages[stage_name][key]``, or ``default`` when either is missing."""
        stage_data = self.stages.get(stage_name) or {}
        return stage_data.get(key, default)


_ROOT_STAGE = "__pipeline_root__"

# The contexts PipelineRunner runs in progress have lent their event sink to: by
# id() (a PipelineContext is not hashable), ``[context, its own sink, the sinks of
# those runs, oldest first]``. An entry lasts only while such a run is in progress.
_LENT_SINKS: dict[int, list[Any]] = {}


def _lend_sink(ctx: PipelineContext, sink: ObservableEventSink) -> None:
    """Make ``sink`` ``ctx``'s event sink for a run, keeping the context's own sink."""
    entry = _LENT_SINKS.get(id(ctx))
    if entry is None:
        entry = _LENT_SINKS[id(ctx)] = [ctx, ctx.event_sink, []]
    entry[2].append(sink)
    ctx.event_sink = sink


def _return_sink(ctx: PipelineContext, sink: ObservableEventSink) -> None:
    """Undo :func:`_lend_sink` when the run ends.

    The context gets its own sink back when the last of the runs lent it ends (not
    the sink of another run that was in progress when this one started).
    """
    entry = _LENT_SINKS[id(ctx)]
    sinks: list[ObservableEventSink] = entry[2]
    sinks.remove(sink)
    if not sinks:
        del _LENT_SINKS[id(ctx)]
        ctx.event_sink = entry[1]
    elif ctx.event_sink is sink:
        ctx.event_sink = sinks[-1]  # a run still in progress


def _check_text(owner: str, param: str, value: object, *, optional: bool = False) -> None:
    """Raise TypeError unless ``value`` is a str (or None, with ``optional=True``)."""
    if isinstance(value, str) or (optional and value is None):
        return
    rule = "a str or None" if optional else "a str"
    raise TypeError(f"{owner}: {param} must be {rule}; got {type_of(value)}")


def _check_run_arguments(
    input_text: object, execution_mode: object, snapshot: object, cancel_token: object
) -> None:
    """``PipelineRunner.run``'s own argument checks, before anything starts."""
    owner = "PipelineRunner.run"
    _check_text(owner, "input_text", input_text, optional=True)
    _check_text(owner, "execution_mode", execution_mode)
    if snapshot is not None and not isinstance(snapshot, ContextSnapshot):
        raise TypeError(
            f"{owner}: snapshot must be a ContextSnapshot or None; got {type_of(snapshot)}"
        )
    if cancel_token is not None and not isinstance(cancel_token, CancellationToken):
        raise TypeError(
            f"{owner}: cancel_token must be a CancellationToken or None;"
            f" got {type_of(cancel_token)}"
        )


def _check_pipeline_ctx(
    pipeline_ctx: object, snapshot: object, snapshot_kwargs: Mapping[str, Any]
) -> None:
    """``PipelineRunner.run``'s checks of a ``pipeline_ctx`` entry, before anything starts."""
    if not isinstance(pipeline_ctx, PipelineContext):
        raise TypeError(
            f"PipelineRunner.run: pipeline_ctx must be a PipelineContext or None;"
            f" got {type_of(pipeline_ctx)}"
        )
    if snapshot is not None:
        raise ValueError("PipelineRunner.run: pass either pipeline_ctx or snapshot, not both")
    if snapshot_kwargs:
        raise ValueError(
            f"PipelineRunner.run: {', '.join(sorted(snapshot_kwargs))} would make a snapshot;"
            " a pipeline_ctx run takes its data from the context"
        )


class PipelineRunner:
    """Runs pipelines with one call: snapshot, event capture, timing, a :class:`RunResult`.

    Args:
        verbose: Print a header and each event as the run goes.
        colorize: Color the printed events and results.
        capture_events: Keep the run's events in :attr:`RunResult.events`.
        enable_uuid_monitor: Observe each run id with a :class:`UuidCollisionMonitor`
            (category ``"pipeline"``), available as :attr:`uuid_monitor`.
        enable_memory_tracker: Sample memory at each run's start and end with a
            :class:`MemoryTracker`, available as :attr:`memory_tracker`.
        uuid_monitor_ttl_seconds: The monitor's window.
        memory_tracker_auto_start: Start the tracker now (if False, call
            ``runner.memory_tracker.start()`` before a run, or the run raises
            RuntimeError).
        memory_tracker_max_samples: The tracker's ``max_samples``: it keeps the
            newest this many samples, two per run (None keeps all, as the
            reference's tracker does). An int >= 1 or None, checked at the call
            also without ``enable_memory_tracker``.
        enable_immutability_check: Run the stages under an
            :class:`~stageflow_trio.pipeline.interceptors_hardening.ImmutabilityInterceptor`.
        enable_context_size_monitor: Run the stages under a
            :class:`~stageflow_trio.pipeline.interceptors_hardening.ContextSizeInterceptor`.

    The runner starts no task of its own: the graph's run owns the stage tasks,
    and all of them have ended when :meth:`run` returns.

    Raises:
        TypeError / ValueError: an argument has the wrong type or value.
    """

    def __init__(
        self,
        *,
        verbose: bool = True,
        colorize: bool = True,
        capture_events: bool = True,
        enable_uuid_monitor: bool = False,
        enable_memory_tracker: bool = False,
        uuid_monitor_ttl_seconds: float = 300.0,
        memory_tracker_auto_start: bool = True,
        enable_immutability_check: bool = False,
        enable_context_size_monitor: bool = False,
        memory_tracker_max_samples: int | None = 10_000,
    ) -> None:
        owner = "PipelineRunner"
        for param, value in (
            ("verbose", verbose),
            ("colorize", colorize),
            ("capture_events", capture_events),
            ("enable_uuid_monitor", enable_uuid_monitor),
            ("enable_memory_tracker", enable_memory_tracker),
            ("memory_tracker_auto_start", memory_tracker_auto_start),
            ("enable_immutability_check", enable_immutability_check),
            ("enable_context_size_monitor", enable_context_size_monitor),
        ):
            check_flag(owner, param, value)
        check_number(owner, "uuid_monitor_ttl_seconds", uuid_monitor_ttl_seconds)
        if memory_tracker_max_samples is not None:
            check_int(owner, "memory_tracker_max_samples", memory_tracker_max_samples, minimum=1)
        self._verbose = verbose
        self._colorize = colorize
        self._capture_events = capture_events
        self._enable_immutability_check = enable_immutability_check
        self._enable_context_size_monitor = enable_context_size_monitor
        self._uuid_monitor = (
            UuidCollisionMonitor(ttl_seconds=uuid_monitor_ttl_seconds, category="pipeline")
            if enable_uuid_monitor
            else None
        )
        self._memory_tracker = (
            MemoryTracker(
                auto_start=memory_tracker_auto_start, max_samples=memory_tracker_max_samples
            )
            if enable_memory_tracker
            else None
        )

    @property
    def uuid_monitor(self) -> UuidCollisionMonitor | None:
        """The run-id collision monitor (None unless ``enable_uuid_monitor``)."""
        return self._uuid_monitor

    @property
    def memory_tracker(self) -> MemoryTracker | None:
        """The memory tracker (None unless ``enable_memory_tracker``)."""
        return self._memory_tracker

    def create_snapshot(
        self,
        *,
        input_text: str | None = None,
        execution_mode: str = "practice",
        topology: str = "pipeline",
        pipeline_run_id: UUID | None = None,
        request_id: UUID | None = None,
        session_id: UUID | None = None,
        user_id: UUID | None = None,
        org_id: UUID | None = None,
        interaction_id: UUID | None = None,
        channel: str = "cli",
        metadata: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> ContextSnapshot[Any]:
        """A snapshot for a run, with new ``uuid4`` ids for those not given (except ``org_id``).

        Its metadata is ``{"channel": channel}`` updated with ``metadata``; other
        keywords go to :class:`ContextSnapshot` unchanged.

        Raises:
            TypeError / ValueError: as ContextSnapshot and RunIdentity raise for
                their fields; ``metadata`` is not a mapping; ``input_text`` is not
                a str or None; ``execution_mode``, ``topology`` or ``channel`` is
                not a str.
        """
        owner = "PipelineRunner.create_snapshot"
        _check_text(owner, "input_text", input_text, optional=True)
        _check_text(owner, "execution_mode", execution_mode)
        _check_text(owner, "topology", topology)
        _check_text(owner, "channel", channel)
        if metadata is not None and not isinstance(metadata, Mapping):
            raise TypeError(
                "PipelineRunner.create_snapshot: metadata must be a mapping or None;"
                f" got {type_of(metadata)}"
            )
        run_id = RunIdentity(
            pipeline_run_id=pipeline_run_id or uuid4(),
            request_id=request_id or uuid4(),
            session_id=session_id or uuid4(),
            user_id=user_id or uuid4(),
            org_id=org_id,
            interaction_id=interaction_id or uuid4(),
        )
        return ContextSnapshot(
            run_id=run_id,
            topology=topology,
            execution_mode=execution_mode,
            input_text=input_text,
            metadata={"channel": channel, **(metadata or {})},
            **kwargs,
        )

    def _graph(self, pipeline: Any) -> UnifiedStageGraph:
        hardening: list[BaseInterceptor] = []
        if self._enable_immutability_check:
            hardening.append(ImmutabilityInterceptor())
        if self._enable_context_size_monitor:
            hardening.append(ContextSizeInterceptor())
        if isinstance(pipeline, UnifiedStageGraph):
            if hardening:
                raise ValueError(
                    "PipelineRunner.run: enable_immutability_check and"
                    " enable_context_size_monitor need a Pipeline or stage specs, whose graph"
                    " the runner builds; for a UnifiedStageGraph, pass the interceptors to it"
                    " (UnifiedStageGraph(specs, interceptors=[ImmutabilityInterceptor()]))"
                )
            return pipeline
        if hasattr(pipeline, "build"):
            graph = pipeline.build(interceptors=hardening) if hardening else pipeline.build()
        else:
            graph = UnifiedStageGraph(pipeline, interceptors=hardening or None)
        if not isinstance(graph, UnifiedStageGraph):
            raise TypeError(
                "PipelineRunner.run: pipeline.build() must return a UnifiedStageGraph;"
                f" got {type_of(graph)}"
            )
        return graph

    def _print_header(self, topology: str | None, text: str | None, execution_mode: str) -> None:
        print("\n" + "=" * 60)
        print(f"RUNNING PIPELINE: {topology}")
        print("=" * 60)
        if text:
            print(f"Input: {text[:60] + '...' if len(text) > 60 else text}")
        print(f"Mode: {execution_mode}")
        print("-" * 60)

    async def run(
        self,
        pipeline: Any,
        *,
        input_text: str | None = None,
        execution_mode: str = "practice",
        pipeline_ctx: PipelineContext | None = None,
        snapshot: ContextSnapshot[Any] | None = None,
        _config: dict[str, Any] | None = None,
        cancel_token: CancellationToken | None = None,
        **snapshot_kwargs: Any,
    ) -> RunResult:
        """Run ``pipeline`` once and describe the outcome. A checkpoint.

        Args:
            pipeline: A :class:`~stageflow_trio.pipeline.pipeline.Pipeline` (or
                anything whose ``build()`` returns a UnifiedStageGraph), a
                UnifiedStageGraph, or an iterable of UnifiedStageSpec.
            input_text: The snapshot's input text (when the runner makes it), or
                the ``pipeline_ctx``'s when that has none.
            execution_mode: The snapshot's execution mode (when the runner makes
                it), or the ``pipeline_ctx``'s when that has none.
            pipeline_ctx: Run from this PipelineContext (stageflow 1.2's entry)
                instead of a snapshot: its interceptors see it, its hooks run. The
                run's events go to the runner's sink, through
                ``pipeline_ctx.event_sink`` while the run lasts (the context's own
                sink is put back after). Runs that share one context at once share
                its sink: while they overlap, each run's stage events go to the
                newest one's sink, and the context's own sink is put back when
                the last one ends. Give each concurrent run a context of its own.
            snapshot: The run's snapshot; made by :meth:`create_snapshot` with
                ``input_text``, ``execution_mode`` and ``snapshot_kwargs`` when
                neither it nor ``pipeline_ctx`` is given.
            _config: Ignored (as in the reference).
            cancel_token: Cancelling it ends the run as cancelled.
            **snapshot_kwargs: More :meth:`create_snapshot` keywords
                (``metadata=``, ``channel=``, ids, ...).

        Returns:
            ``success=True`` when the graph completed, ``success=True,
            cancelled=True`` (with the reason and the completed stages) when a
            stage or the token cancelled it, ``success=False`` with
            ``error``/``error_type`` when it raised any other Exception.

        Raises:
            ValueError: both ``pipeline_ctx`` and ``snapshot`` are given, or
                snapshot keywords with ``pipeline_ctx`` (which has its own data).
            TypeError: ``pipeline_ctx`` is not a PipelineContext, ``snapshot`` not
                a ContextSnapshot, ``cancel_token`` not a CancellationToken (each
                or None), ``input_text`` not a str or None, or ``execution_mode``
                not a str; raised at the call, before anything is installed.
            trio.Cancelled: the caller's scope was cancelled (never a result).
            Exception: the snapshot, the graph or the memory tracker could not
                be set up (before the run starts).

        While the run goes, the global event sink (:func:`~stageflow_trio.events.get_event_sink`)
        is the run's :class:`ObservableEventSink`; the previous one is put back
        when ``run`` returns or raises.
        """
        _check_run_arguments(input_text, execution_mode, snapshot, cancel_token)
        if pipeline_ctx is not None:
            _check_pipeline_ctx(pipeline_ctx, snapshot, snapshot_kwargs)
        start = trio.current_time()
        sink = ObservableEventSink(
            verbose=self._verbose, colorize=self._colorize, capture=self._capture_events
        )
        previous = swap_event_sink(sink)
        lent = False
        try:
            ctx: StageContext | PipelineContext
            if pipeline_ctx is not None:
                # The context's own sink is put back when the run ends.
                _lend_sink(pipeline_ctx, sink)
                lent = True
                if input_text is not None and pipeline_ctx.input_text is None:
                    pipeline_ctx.input_text = input_text
                if pipeline_ctx.execution_mode is None:
                    pipeline_ctx.execution_mode = execution_mode
                ctx = pipeline_ctx
                run_id = pipeline_ctx.pipeline_run_id
                header = (pipeline_ctx.topology, pipeline_ctx.input_text, execution_mode)
            else:
                if snapshot is None:
                    snapshot = self.create_snapshot(
                        input_text=input_text, execution_mode=execution_mode, **snapshot_kwargs
                    )
                ctx = StageContext(
                    snapshot=snapshot,
                    inputs=create_stage_inputs(
                        snapshot,
                        prior_outputs={},
                        declared_deps=frozenset(),
                        stage_name=_ROOT_STAGE,
                    ),
                    stage_name=_ROOT_STAGE,
                    timer=PipelineTimer(),
                    event_sink=sink,
                )
                run_id = snapshot.pipeline_run_id
                header = (snapshot.topology, snapshot.input_text, execution_mode)
            if self._uuid_monitor is not None and run_id is not None:
                self._uuid_monitor.observe(run_id)
            tracker = self._memory_tracker
            if tracker is not None:
                tracker.observe(label="pipeline:start")
            graph = self._graph(pipeline)
            if self._verbose:
                self._print_header(*header)
            try:
                results = await graph.run(ctx, cancel_token=cancel_token)
            except UnifiedPipelineCancelled as exc:
                label = "pipeline:cancelled"
                outcome = RunResult(
                    success=True,
                    stages={name: output.data for name, output in exc.results.items()},
                    cancelled=True,
                    cancel_reason=exc.reason,
                )
            except Exception as exc:  # noqa: BLE001 - every failure becomes the result
                label = "pipeline:error"
                outcome = RunResult(
                    success=False, error=error_text(exc), error_type=type(exc).__name__
                )
            else:
                label = "pipeline:end"
                outcome = RunResult(
                    success=True, stages={name: output.data for name, output in results.items()}
                )
            duration_ms = (trio.current_time() - start) * 1000
            if tracker is not None:
                tracker.observe(label=label)
            return attrs.evolve(
                outcome,
                duration_ms=duration_ms,
                events=sink.events if self._capture_events else (),
                pipeline_run_id=run_id,
            )
        finally:
            if lent:
                assert pipeline_ctx is not None
                _return_sink(pipeline_ctx, sink)
            swap_event_sink(previous)

    def print_result(self, result: RunResult, *, show_data: bool = True) -> None:
        """Print a summary of ``result``: outcome, duration, stages (and their data)."""
        if not isinstance(result, RunResult):
            raise TypeError(
                f"PipelineRunner.print_result: result must be a RunResult; got {type_of(result)}"
            )
        green, red, reset = ("\033[92m", "\033[91m", "\033[0m") if self._colorize else ("", "", "")
        print("\n" + "=" * 60)
        print("RESULTS")
        print("=" * 60)
        if not result.success:
            print(f"{red}Pipeline failed: {result.error}{reset}")
            print(f"  Error type: {result.error_type}")
            print(f"  Duration: {result.duration_ms:.1f}ms")
            return
        print(f"{green}Pipeline completed successfully!{reset}")
        if result.cancelled:
            print(f"  (Cancelled: {result.cancel_reason})")
        print(f"  Duration: {result.duration_ms:.1f}ms")
        print(f"  Stages: {len(result.stages)}")
        if show_data:
            for stage_name, stage_data in result.stages.items():
                print(f"\n  Stage: {stage_name}")
                if isinstance(stage_data, dict):
                    for key, value in stage_data.items():
                        if isinstance(value, str) and len(value) > 100:
                            print(f"    {key}: {value[:100]}...")
                        else:
                            print(f"    {key}: {value}")


async def run_simple_pipeline(
    pipeline: Any,
    input_text: str,
    *,
    execution_mode: str = "practice",
    metadata: dict[str, Any] | None = None,
    verbose: bool = False,
    colorize: bool = False,
) -> RunResult:
    """Run ``pipeline`` on ``input_text`` with a quiet :class:`PipelineRunner`. A checkpoint.

    ``metadata`` is added to the snapshot's metadata (beside ``"channel": "cli"``).
    Returns and raises as :meth:`PipelineRunner.run`.

    Raises:
        TypeError: ``input_text`` is not a str or None, or ``execution_mode`` not a str.
    """
    _check_text("run_simple_pipeline", "input_text", input_text, optional=True)
    _check_text("run_simple_pipeline", "execution_mode", execution_mode)
    runner = PipelineRunner(verbose=verbose, colorize=colorize, capture_events=True)
    return await runner.run(
        pipeline, input_text=input_text, execution_mode=execution_mode, metadata=metadata
    )
