"""Audit 26 (smallc): three items.

1. ``PipelineContext(data=5)`` (and ``configuration=`` / ``metadata=`` that are not
   mappings, ``artifacts=5``) was stored as given, directly and through
   ``create_test_pipeline_context``'s keyword arguments; the run failed later (a
   ``metadata=5`` run with AttributeError ``'int' object has no attribute 'copy'``, a
   ``data=5`` or ``configuration=5`` run went through with the bad value). Both
   references' dataclasses check nothing (0.9.1 and 1.2.0 store None or 5 as given);
   their ``create`` maps None to an empty dict. Fixed: ``data``, ``configuration`` and
   ``metadata`` must be dicts (the context keeps the dict it is given, so a read-only
   mapping is refused, with a pointer to ``create``, which copies any mapping),
   ``artifacts`` a list; None gives the field's default, and so does
   ``event_sink=None`` (the global sink), as ``create`` gives them; anything else is a
   ``TypeError`` naming the field, on construction and on assignment.
   ``create_test_pipeline_context`` checks ``configuration`` / ``metadata`` /
   ``artifacts`` as ``PipelineContext.create`` does, naming itself (None gives the
   default, as 1.2.0's builder, which calls ``create``). Cost: one type test per field
   in ``__attrs_post_init__`` (~0.1 us per context, measured; ``fork`` writes the slots
   and is untouched; a run builds one or two contexts); ``python -m benchmarks engine
   subpipeline`` before/after shows no change beyond noise. Kept as they are: the ids
   (checked already), ``topology`` / ``execution_mode`` / ``input_text`` /
   ``input_audio_duration_ms`` / ``extensions`` / ``created_at`` (the snapshot checks
   them, naming the field, when a run derives it), ``event_sink`` values other than
   None (``set_event_sink`` takes any object and the graphs log a sink whose
   ``try_emit`` fails: refusing one would make ``PipelineContext()`` fail on a global
   setting). No existing test passes odd values on purpose (scan of every
   ``PipelineContext(`` / ``create_test_pipeline_context(`` call in tests, docs, code).
2. ``BackpressureAwareEventSink``'s ``on_drop`` raising a stray ``trio.Cancelled``
   (sync code never receives a real one). Reproduced wrong: from the worker it ended the
   worker's task and the nursery took it as its own cancellation (the neighbour task
   cancelled, the block ending normally, no log); from ``try_emit`` it escaped to the
   producer (a stage); in a stop's give-up it cut the loop, so the later events never
   reached ``on_drop``. Fixed as the downstream's stray is (audit 26, smalla): logged at
   ERROR with its traceback, the first kept and raised at the end of the next ``stop()``
   from another task. An ``on_drop`` raising an ``Exception`` was already logged
   (``tests/events/test_backpressure_sink.py``).
3. ``stage.X.failed`` of a stage raising an error with an empty message
   (``raise ValueError()``) carried ``error: ""`` in a UnifiedStageGraph run, while the
   same run's ``pipeline_failed`` said ``"ValueError"``. Ran both references: their
   unified graph sends no lifecycle events (ours are an addition, parity "Lifecycle
   events from UnifiedStageGraph"); their legacy graph sends ``"Stage returned failed
   status"`` for a stage's ``ValueError()`` (the interceptor chain turns it into a
   failed result; ours the same) and ``""`` only when an error escapes the chain (a
   ``CriticalInterceptorError("")``). Fixed: the event names the error's class when its
   message is empty, in both graphs (parity row for the legacy escape path); the
   success path is untouched.
"""

from __future__ import annotations

import logging
from types import MappingProxyType
from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio import Pipeline, StageKind
from stageflow_trio.core.stage_output import StageArtifact
from stageflow_trio.events import (
    BackpressureAwareEventSink,
    clear_event_sink,
    set_event_sink,
)
from stageflow_trio.pipeline.dag import StageExecutionError, StageGraph, StageSpec
from stageflow_trio.pipeline.interceptors import (
    BaseInterceptor,
    CriticalInterceptorError,
    InterceptorResult,
)
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.testing import RecordingEventSink, create_test_pipeline_context
from stageflow_trio.utils.frozen import FrozenDict
from tests.trio_setups import saved_cancelled

# --- 1. PipelineContext checks its containers and sink -------------------------------

DICT_FIELDS = ["data", "configuration", "metadata"]


def _context(field: str, value: object) -> PipelineContext:
    kwargs: dict[str, Any] = {field: value}
    return PipelineContext(**kwargs)


def _test_context(field: str, value: object) -> PipelineContext:
    kwargs: dict[str, Any] = {field: value}
    return create_test_pipeline_context(**kwargs)


@pytest.mark.parametrize("field", DICT_FIELDS)
@pytest.mark.parametrize(("value", "kind"), [(5, "int"), ("ab", "str"), ([("a", 1)], "list")])
def test_dict_fields_refuse_what_is_not_a_dict(field: str, value: Any, kind: str) -> None:
    message = rf"^PipelineContext: {field} must be a dict or None; got {kind}$"
    with pytest.raises(TypeError, match=message):
        _context(field, value)
    ctx = PipelineContext()
    with pytest.raises(TypeError, match=message):
        setattr(ctx, field, value)
    assert getattr(ctx, field) == {}


@pytest.mark.parametrize("field", DICT_FIELDS)
def test_a_read_only_mapping_is_refused_with_a_pointer_to_create(field: str) -> None:
    # The context keeps the dict it is given (stages write into data): a proxy would
    # fail at the first write, far from here.
    with pytest.raises(
        TypeError,
        match=rf"^PipelineContext: {field} must be a dict or None; got mappingproxy "
        r"\(PipelineContext.create copies any mapping\)$",
    ):
        _context(field, MappingProxyType({"a": 1}))


@pytest.mark.parametrize("field", DICT_FIELDS)
def test_dict_fields_keep_the_given_dict_and_take_none_as_the_default(field: str) -> None:
    given: dict[str, Any] = {"a": 1}
    assert getattr(_context(field, given), field) is given
    frozen = FrozenDict({"b": 2})  # a dict subclass: kept as given
    assert getattr(_context(field, frozen), field) is frozen
    ctx = _context(field, None)  # was stored as None
    assert getattr(ctx, field) == {}
    setattr(ctx, field, None)
    assert getattr(ctx, field) == {}
    other = _context(field, None)
    assert getattr(other, field) is not getattr(ctx, field)


def test_artifacts_must_be_a_list() -> None:
    for value, kind in [(5, "int"), ((), "tuple"), ("x", "str")]:
        message = (
            rf"^PipelineContext: artifacts must be a list of StageArtifact or None; got {kind}$"
        )
        with pytest.raises(TypeError, match=message):
            PipelineContext(artifacts=value)  # type: ignore[arg-type]
        ctx = PipelineContext()
        with pytest.raises(TypeError, match=message):
            ctx.artifacts = value  # type: ignore[assignment]
    given = [StageArtifact(type="t", payload={})]
    assert PipelineContext(artifacts=given).artifacts is given
    assert PipelineContext(artifacts=None).artifacts == []  # type: ignore[arg-type]


def test_event_sink_none_is_the_global_sink() -> None:
    sink = RecordingEventSink()
    set_event_sink(sink)
    try:
        ctx = PipelineContext(event_sink=None)  # type: ignore[arg-type]  # was stored as None
        assert ctx.event_sink is sink
        ctx.event_sink = RecordingEventSink()
        ctx.event_sink = None  # type: ignore[assignment]
        assert ctx.event_sink is sink
    finally:
        clear_event_sink()
    ctx.try_emit_event("x", {})
    assert sink.types() == ["x"]


def test_the_first_bad_field_is_named_and_good_ones_pass_untouched() -> None:
    data: dict[str, Any] = {}
    with pytest.raises(TypeError, match=r"^PipelineContext: metadata must be"):
        PipelineContext(data=data, configuration={}, metadata=5)  # type: ignore[arg-type]
    ctx = PipelineContext(data=data, artifacts=[])
    assert ctx.data is data


async def test_a_run_is_refused_at_the_call_not_in_the_engine() -> None:
    class Stage:
        name = "s"
        kind = StageKind.TRANSFORM

        async def execute(self, ctx: Any) -> None:
            await trio.lowlevel.checkpoint()

    graph = Pipeline().with_stage("s", Stage).build()
    # Was AttributeError "'int' object has no attribute 'copy'" from inside the run.
    with pytest.raises(TypeError, match=r"^PipelineContext: metadata must be a dict"):
        await graph.run(PipelineContext(metadata=5))  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["configuration", "metadata"])
def test_test_pipeline_context_checks_configuration_and_metadata(field: str) -> None:
    with pytest.raises(
        TypeError,
        match=rf"^create_test_pipeline_context: {field} must be a mapping or None; got int$",
    ):
        _test_context(field, 5)
    # None gives the default, as 1.2.0's builder (it calls PipelineContext.create);
    # any mapping is copied into a dict.
    assert getattr(_test_context(field, None), field) == {}
    copied = getattr(_test_context(field, MappingProxyType({"a": 1})), field)
    assert (type(copied), copied) == (dict, {"a": 1})


def test_test_pipeline_context_checks_artifacts() -> None:
    with pytest.raises(
        TypeError,
        match=r"^create_test_pipeline_context: artifacts must be a list of StageArtifact "
        r"or None; got int$",
    ):
        create_test_pipeline_context(artifacts=5)
    artifact = StageArtifact(type="t", payload={})
    assert create_test_pipeline_context(artifacts=(artifact,)).artifacts == [artifact]
    assert create_test_pipeline_context(artifacts=None).artifacts == []


# --- 2. BackpressureAwareEventSink: on_drop raising a stray Cancelled ----------------


class _Rejecting:
    """Delivers every event but ``"bad"``, which it rejects with ValueError."""

    def __init__(self) -> None:
        self.got: list[str] = []

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        await trio.lowlevel.checkpoint()
        if type == "bad":
            raise ValueError("rejected")
        self.got.append(type)


def _on_drop_raising(stray: trio.Cancelled, calls: list[str]) -> Any:
    def on_drop(event_type: str, data: dict[str, Any] | None) -> None:
        calls.append(event_type)
        raise stray

    return on_drop


def _stray_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.name == "stageflow_trio.events.backpressure"
        and record.getMessage().startswith("on_drop callback raised trio.Cancelled")
    ]


async def test_on_drop_stray_cancelled_in_the_worker_leaves_the_nursery_running(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    stray = await saved_cancelled()
    downstream = _Rejecting()
    calls: list[str] = []
    sink = BackpressureAwareEventSink(downstream, on_drop=_on_drop_raising(stray, calls))
    ticks: list[float] = []

    async def neighbour() -> None:
        for _ in range(3):
            await trio.sleep(1)
            ticks.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(neighbour)
        await sink.start(nursery)
        for event_type in ("a", "bad", "c"):
            assert sink.try_emit(type=event_type, data=None)
        await trio.sleep(3)  # was cut at once: the worker's death cancelled the nursery
        assert sink.is_running
        assert downstream.got == ["a", "c"]
        with pytest.raises(trio.Cancelled) as raised:
            await sink.stop()
        assert raised.value is stray
    assert len(ticks) == 3
    assert calls == ["bad"]
    metrics = sink.metrics
    assert (metrics.emitted, metrics.undelivered, metrics.downstream_errors) == (3, 1, 1)
    [record] = _stray_records(caplog)
    assert record.levelno == logging.ERROR
    assert record.event_type == "bad"  # type: ignore[attr-defined]
    assert record.exc_info is not None
    assert record.exc_info[1] is stray


async def test_on_drop_stray_cancelled_does_not_escape_try_emit(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    stray = await saved_cancelled()
    calls: list[str] = []
    sink = BackpressureAwareEventSink(
        RecordingEventSink(), max_queue_size=1, on_drop=_on_drop_raising(stray, calls)
    )
    assert sink.try_emit(type="a", data=None)
    # Was raised to the producer (a stage, the engine's event path).
    assert sink.try_emit(type="b", data=None) is False
    assert calls == ["b"]
    assert sink.metrics.dropped == 1
    with pytest.raises(trio.Cancelled) as raised:
        await sink.stop()  # delivers "a", then raises what on_drop raised
    assert raised.value is stray
    assert len(_stray_records(caplog)) == 1
    await sink.stop()  # raised once


async def test_on_drop_stray_cancelled_in_a_stops_give_up_reaches_every_event(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    stray = await saved_cancelled()
    calls: list[str] = []
    sink = BackpressureAwareEventSink(RecordingEventSink(), on_drop=_on_drop_raising(stray, calls))
    for event_type in ("a", "b", "c"):
        sink.try_emit(type=event_type, data=None)
    with pytest.raises(trio.Cancelled) as raised:
        await sink.stop(drain=False)
    assert raised.value is stray
    assert calls == ["a", "b", "c"]  # was ["a"]: the loop ended with the raise
    assert (sink.metrics.undelivered, sink.queue_size) == (3, 0)
    assert len(_stray_records(caplog)) == 3  # each logged; the first is raised


# --- 3. stage.X.failed names an error with an empty message by its class --------------


async def test_unified_stage_failed_names_an_empty_error_as_pipeline_failed_does() -> None:
    class Boom:
        name = "s"
        kind = StageKind.TRANSFORM

        async def execute(self, ctx: Any) -> None:
            await trio.lowlevel.checkpoint()
            raise ValueError()

    sink = RecordingEventSink()
    with pytest.raises(Exception, match=r"^Stage 's' failed: $"):  # the reference's message
        await Pipeline().with_stage("s", Boom).build().run(PipelineContext(event_sink=sink))
    [failed] = sink.of_type("stage.s.failed")
    [run_failed] = sink.of_type("pipeline_failed")
    assert failed is not None
    assert run_failed is not None
    assert (failed["error"], run_failed["error"]) == ("ValueError", "ValueError")  # was ""


async def test_unified_stage_failed_keeps_a_message() -> None:
    class Boom:
        name = "s"
        kind = StageKind.TRANSFORM

        async def execute(self, ctx: Any) -> None:
            await trio.lowlevel.checkpoint()
            raise ValueError("bad input")

    sink = RecordingEventSink()
    with pytest.raises(Exception, match="bad input"):
        await Pipeline().with_stage("s", Boom).build().run(PipelineContext(event_sink=sink))
    [failed] = sink.of_type("stage.s.failed")
    assert failed is not None
    assert failed["error"] == "bad input"


class _Ok:
    async def execute(self, ctx: Any) -> None:
        await trio.lowlevel.checkpoint()


async def test_legacy_stage_failed_of_an_error_escaping_the_chain() -> None:
    # Both references send "" here (str(exc)); a stage's own ValueError() is turned
    # into a failed result by the chain, "Stage returned failed status" in both.
    class Gate(BaseInterceptor):
        name = "gate"

        async def before(self, stage_name: str, ctx: PipelineContext) -> InterceptorResult | None:
            await trio.lowlevel.checkpoint()
            raise CriticalInterceptorError("", self.name)

        async def after(self, stage_name: str, result: Any, ctx: PipelineContext) -> None:
            await trio.lowlevel.checkpoint()

    sink = RecordingEventSink()
    graph = StageGraph([StageSpec(name="s", runner=_Ok)], interceptors=[Gate()])
    with pytest.raises(StageExecutionError):
        await graph.run(PipelineContext(event_sink=sink))
    [failed] = sink.of_type("stage.s.failed")
    [run_failed] = sink.of_type("pipeline_failed")
    assert failed is not None
    assert run_failed is not None
    assert failed["error"] == run_failed["error"] == "CriticalInterceptorError"


async def test_legacy_stage_raising_an_empty_error_is_unchanged() -> None:
    class Boom:
        async def execute(self, ctx: Any) -> None:
            await trio.lowlevel.checkpoint()
            raise ValueError()

    sink = RecordingEventSink()
    results = await StageGraph([StageSpec(name="s", runner=Boom)]).run(
        PipelineContext(event_sink=sink)
    )
    assert (results["s"].status, results["s"].error) == ("failed", "")
    [failed] = sink.of_type("stage.s.failed")
    assert failed is not None
    assert failed["error"] == "Stage returned failed status"  # as both references
