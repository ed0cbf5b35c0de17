"""Audit 26 (smalla): five items left by earlier sessions' notes.

1. ``AnalyticsSink`` events cut by a shutdown deadline went back to ``pending_count``
   without a word. Fixed: leaving ``async with AnalyticsSink(...)`` with events pending
   (a deadline cut the exports in flight or the final flush, the exporter or the body
   raised) logs ``AnalyticsSink closed before exporting N events ...``, as
   ``BufferedExporter.close`` logs its give-up (parity row, docs/analytics.md,
   docs/deployment.md).
2. ``BackpressureAwareEventSink`` and a stray ``trio.Cancelled`` from the downstream's
   ``emit`` (one saved from another scope and raised again). Reproduced wrong: in the
   worker it ended the worker's task, and the nursery it ran in took it as its own
   cancellation (with ``start(nursery)``: the nursery's other tasks cancelled, the block
   ending normally, the events in flight and queued neither delivered nor counted; with
   ``async with``: the body cancelled). In ``stop()``'s drain it left the event in
   flight and the queue uncounted, with no log. Fixed: the event counts as rejected by
   the downstream (logged at ERROR with its traceback), the worker or drain goes on, and
   ``stop()`` raises that ``Cancelled`` once the sink is stopped (``async with`` after
   closing its nursery, unless the body raised) (parity row, docs/events.md).
   ``_stop_shielded``'s "a Cancelled is not an interruption" branch was reachable only
   by that stray (the stop is shielded); it is gone.
3. ``Fault`` equality. Fixed: a ``"raise"`` fault's error compares by type, ``args`` and
   attributes (what the raised copy is made of), hashed by type; the reference has no
   fault plans (parity row, docs/testing.md). ``test_audit18_values_2``'s pickling test,
   which noted the identity comparison, now checks the equality.
4. ``BaseTool().name`` reads ``Any`` to checkers. Kept, with the reason in
   ``tools/base.py`` and docs/tools.md: no declaration gives ``str`` on ``BaseTool``
   itself and still passes both a class-attribute and a property override in mypy and
   pyright strict with ``BaseTool()`` / an ``@tool`` subclass as a ``Tool`` (tried with
   mypy 2.4.1 and pyright 1.1.414: a ``str``-returning descriptor, declared or decorating
   a def, passes mypy but pyright rejects both overrides and does not match it against
   ``Tool``'s properties; an undeclared copied property passes both in a checked file
   but reads Unknown to pyright in a py.typed package). The existing shapes in
   ``tests/typing/pyright_shapes.py`` pin those constraints.
5. ``create_test_pipeline_context(data={})`` kept the caller's dict, and ``Pipeline``'s
   repr showed a list of names. Fixed to 1.2.0: the context gets its own copy of ``data``
   (and of ``configuration``, ``metadata``, ``artifacts``), as 1.2.0's builder does
   through ``PipelineContext.create`` (0.9.1 replaced only an empty dict; parity row);
   ``Pipeline(name='x', stages={})`` as both references show it
   (``tests/pipeline/test_pipeline.py``'s repr test updated).
"""

from __future__ import annotations

import copy
import logging
import pickle
from types import ModuleType
from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio.core.stage_enums import StageKind
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.events import BackpressureAwareEventSink
from stageflow_trio.helpers.analytics import AnalyticsEvent, AnalyticsSink
from stageflow_trio.pipeline.pipeline import Pipeline
from stageflow_trio.testing import create_test_pipeline_context
from stageflow_trio.testing.faults import Fault
from tests.trio_setups import saved_cancelled

# --- 1. AnalyticsSink: events left unexported at exit are logged ----------------------


class _Exporter:
    """Exports after ``delay`` seconds (for ever if None); raises ``error`` if set."""

    def __init__(self, delay: float | None = 0, error: Exception | None = None) -> None:
        self.delay = delay
        self.error = error
        self.exported: list[str] = []

    async def export(self, event: AnalyticsEvent) -> None:
        if self.delay is None:
            await trio.sleep_forever()
        await trio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        self.exported.append(event.event_type)

    async def export_batch(self, events: list[AnalyticsEvent]) -> None:
        for event in events:
            await self.export(event)

    async def flush(self) -> None:
        await trio.lowlevel.checkpoint()

    async def close(self) -> None:
        await trio.lowlevel.checkpoint()


def _left(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "stageflow_trio.helpers.analytics"
        and record.levelno == logging.WARNING
        and "closed before exporting" in record.getMessage()
    ]


_THREE_LEFT = (
    "AnalyticsSink closed before exporting 3 events (still in pending_count; "
    "flush_pending() exports them)"
)


async def test_analytics_sink_exports_cut_by_a_deadline_are_logged(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    sink = AnalyticsSink(_Exporter(delay=None))
    with trio.move_on_after(1) as deadline:
        async with sink:
            for i in range(3):
                assert sink.try_emit(type=f"e{i}", data=None)
            await trio.sleep_forever()
    assert deadline.cancelled_caught
    assert sink.pending_count == 3
    assert _left(caplog) == [_THREE_LEFT]


async def test_analytics_sink_final_flush_cut_by_a_deadline_is_logged(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    # Held before the block (no nursery then): the exit's flush_pending exports them.
    sink = AnalyticsSink(_Exporter(delay=None))
    for i in range(3):
        assert not sink.try_emit(type=f"e{i}", data=None)
    with trio.move_on_after(1) as deadline:
        async with sink:
            pass
    assert deadline.cancelled_caught
    assert sink.pending_count == 3
    assert _left(caplog) == [_THREE_LEFT]


async def test_analytics_sink_exporter_error_in_the_final_flush_is_logged(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    sink = AnalyticsSink(_Exporter(error=OSError("backend down")))
    for i in range(3):
        sink.try_emit(type=f"e{i}", data=None)
    with pytest.raises(OSError, match="backend down"):
        async with sink:
            pass
    assert _left(caplog) == [_THREE_LEFT]


async def test_analytics_sink_body_error_logs_the_exports_it_cut(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    sink = AnalyticsSink(_Exporter(delay=5))

    async def block() -> None:
        async with sink:
            for i in range(3):
                sink.try_emit(type=f"e{i}", data=None)
            await trio.sleep(1)
            raise ValueError("body")

    with pytest.raises(ValueError, match="body"):
        await block()
    assert sink.pending_count == 3
    assert _left(caplog) == [_THREE_LEFT]


async def test_analytics_sink_that_exported_everything_says_nothing(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    exporter = _Exporter(delay=1)
    sink = AnalyticsSink(exporter)
    sink.try_emit(type="held", data=None)
    async with sink:
        sink.try_emit(type="owned", data=None)
    assert sorted(exporter.exported) == ["held", "owned"]
    assert sink.pending_count == 0
    assert _left(caplog) == []


# --- 2. BackpressureAwareEventSink: a stray Cancelled from the downstream ------------


class _StrayDownstream:
    """Delivers every event but ``"bad"``, for which it raises the saved Cancelled."""

    def __init__(self, stray: trio.Cancelled) -> None:
        self.stray = stray
        self.got: list[str] = []

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        await trio.lowlevel.checkpoint()
        if type == "bad":
            raise self.stray
        self.got.append(type)


def _stray_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.name == "stageflow_trio.events.backpressure"
        and "outside a cancelled scope" in record.getMessage()
    ]


def _accounted(sink: BackpressureAwareEventSink, delivered: int) -> None:
    metrics = sink.metrics
    assert (metrics.emitted, metrics.undelivered, metrics.downstream_errors) == (3, 1, 1)
    assert metrics.emitted == delivered + metrics.undelivered
    assert sink.queue_size == 0


async def test_stray_cancelled_in_the_worker_leaves_the_nursery_running(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    stray = await saved_cancelled()
    downstream = _StrayDownstream(stray)
    dropped: list[str] = []
    sink = BackpressureAwareEventSink(downstream, on_drop=lambda t, _: dropped.append(t))
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
        await trio.sleep(2)
        # The worker went on after the stray (it used to die with it, and the
        # nursery's cancellation cut this sleep and the neighbour).
        assert sink.is_running
        assert downstream.got == ["a", "c"]
        _accounted(sink, delivered=2)
        # Raised here, in this nursery's body, trio would take it as the nursery's
        # own cancellation, as any stray Cancelled: the caller decides.
        with pytest.raises(trio.Cancelled) as raised:
            await sink.stop()
        assert raised.value is stray
    assert len(ticks) == 3
    assert dropped == ["bad"]
    [record] = _stray_records(caplog)
    assert record.levelno == logging.ERROR
    assert record.event_type == "bad"  # type: ignore[attr-defined]
    assert record.exc_info is not None
    assert record.exc_info[1] is stray


async def test_stray_cancelled_in_the_worker_reaches_the_async_with_caller(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    stray = await saved_cancelled()
    downstream = _StrayDownstream(stray)
    sink = BackpressureAwareEventSink(downstream)
    body_done: list[bool] = []

    async def block() -> None:
        async with sink:
            for event_type in ("a", "bad", "c"):
                sink.try_emit(type=event_type, data=None)
            await trio.sleep(1)  # was cut: the worker's death cancelled the body
            body_done.append(True)

    with pytest.raises(trio.Cancelled) as raised:
        await block()
    assert raised.value is stray
    assert body_done == [True]
    assert downstream.got == ["a", "c"]
    _accounted(sink, delivered=2)
    assert len(_stray_records(caplog)) == 1


async def test_stray_cancelled_with_a_body_error_lets_the_body_error_through(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    sink = BackpressureAwareEventSink(_StrayDownstream(await saved_cancelled()))

    async def block() -> None:
        async with sink:
            for event_type in ("a", "bad", "c"):
                sink.try_emit(type=event_type, data=None)
            await trio.sleep(1)
            raise ValueError("body")

    with pytest.raises(ValueError, match="body"):
        await block()
    _accounted(sink, delivered=2)
    assert len(_stray_records(caplog)) == 1  # its record is what is left of it
    await sink.stop()  # and it is not raised later


async def test_stray_cancelled_in_stops_drain_is_counted_then_raised(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    stray = await saved_cancelled()
    downstream = _StrayDownstream(stray)
    sink = BackpressureAwareEventSink(downstream)  # no worker: stop() drains
    for event_type in ("a", "bad", "c"):
        sink.try_emit(type=event_type, data=None)
    with pytest.raises(trio.Cancelled) as raised:
        await sink.stop()
    assert raised.value is stray
    # Before: "c" stayed queued and "bad" in flight, neither counted nor logged.
    assert downstream.got == ["a", "c"]
    _accounted(sink, delivered=2)
    assert len(_stray_records(caplog)) == 1
    await sink.stop()  # raised once


async def test_a_real_cancellation_of_the_worker_is_not_taken_for_a_stray(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    class Slow:
        async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
            await trio.sleep(10)

    sink = BackpressureAwareEventSink(Slow())
    with trio.move_on_after(1):
        async with trio.open_nursery() as nursery:
            await sink.start(nursery)
            sink.try_emit(type="a", data=None)
            await trio.sleep_forever()
    await sink.stop()  # counts the cut delivery; nothing stray to raise
    assert sink.metrics.downstream_errors == 0
    assert sink.metrics.undelivered == 1
    assert _stray_records(caplog) == []


# --- 3. Fault equality ------------------------------------------------------------------


def test_faults_built_alike_with_an_error_are_equal() -> None:
    fault = Fault("s", "raise", [1], error=ValueError("down"))
    twin = Fault("s", "raise", [1], error=ValueError("down"))
    assert fault == twin
    assert hash(fault) == hash(twin)
    for back in (pickle.loads(pickle.dumps(fault)), copy.deepcopy(fault), copy.copy(fault)):
        assert back == fault
        assert hash(back) == hash(fault)
    assert len({fault, twin}) == 1


def test_faults_with_different_errors_differ() -> None:
    fault = Fault("s", "raise", error=ValueError("down"))
    assert fault != Fault("s", "raise", error=ValueError("up"))
    assert fault != Fault("s", "raise", error=KeyError("down"))
    assert fault != Fault("s", "raise", error=ValueError("down", 2))
    # What the raised copy carries besides args: its attributes.
    first, second = ValueError("down"), ValueError("down")
    first.status = 503  # type: ignore[attr-defined]
    second.status = 500  # type: ignore[attr-defined]
    assert Fault("s", "raise", error=first) != Fault("s", "raise", error=second)
    assert Fault("s", "fail") != Fault("s", "raise", error=ValueError("x"))


def test_a_fault_whose_error_has_unhashable_args_is_hashable() -> None:
    fault = Fault("s", "raise", error=ValueError(["a"]))
    assert fault == Fault("s", "raise", error=ValueError(["a"]))
    assert hash(fault) == hash(Fault("s", "raise", error=ValueError(["a"])))


# --- 5. create_test_pipeline_context copies; Pipeline's repr -----------------------------


@pytest.mark.parametrize("given", [{}, {"k": "v"}])
def test_test_pipeline_context_gets_its_own_data(given: dict[str, Any]) -> None:
    ctx = create_test_pipeline_context(data=given)
    assert ctx.data == given
    assert ctx.data is not given
    ctx.data["new"] = 1
    assert "new" not in given


def test_test_pipeline_context_refuses_data_that_is_not_a_mapping() -> None:
    # Was stored as given (1.2.0: AttributeError from ``.copy()``).
    with pytest.raises(
        TypeError, match=r"^create_test_pipeline_context: data must be a mapping or None; got int$"
    ):
        create_test_pipeline_context(data=5)  # type: ignore[arg-type]


def test_test_pipeline_context_copies_configuration_metadata_and_artifacts() -> None:
    configuration: dict[str, Any] = {"c": 1}
    metadata: dict[str, Any] = {}
    artifacts: list[Any] = []
    ctx = create_test_pipeline_context(
        configuration=configuration, metadata=metadata, artifacts=artifacts
    )
    assert (ctx.configuration, ctx.metadata, ctx.artifacts) == ({"c": 1}, {}, [])
    assert ctx.configuration is not configuration
    assert ctx.metadata is not metadata
    assert ctx.artifacts is not artifacts
    assert create_test_pipeline_context().data == {}


async def _noop(ctx: Any) -> StageOutput:
    await trio.lowlevel.checkpoint()
    return StageOutput.ok()


def test_pipeline_repr_shows_its_stages_as_a_dict(reference: ModuleType) -> None:
    assert repr(Pipeline(name="x")) == repr(reference.Pipeline(name="x"))
    assert repr(Pipeline(name="x")) == "Pipeline(name='x', stages={})"
    pipeline = Pipeline(name="x").with_stage("a", _noop, StageKind.TRANSFORM)
    spec = pipeline.stages["a"]
    assert repr(pipeline) == f"Pipeline(name='x', stages={{'a': {spec!r}}})"
