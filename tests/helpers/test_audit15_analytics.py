"""Audit 15: analytics exporters and guardrails against the reference, bad input, cancellation."""

from __future__ import annotations

import asyncio
import importlib
from typing import Any
from uuid import UUID

import attrs
import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stageflow_trio.core import StageOutput
from stageflow_trio.helpers import analytics
from stageflow_trio.helpers import guardrails as ours
from stageflow_trio.helpers.analytics import (
    AnalyticsEvent,
    AnalyticsSink,
    BufferedExporter,
    CompositeExporter,
)
from stageflow_trio.testing import create_test_stage_context
from tests.fakes import import_reference

_FAST = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
_IDS: dict[str, Any] = {
    "pipeline_run_id": UUID(int=1),
    "request_id": UUID(int=2),
    "session_id": UUID(int=3),
    "user_id": UUID(int=4),
    "stage_name": "guard",
}


def _untyped(function: Any) -> Any:
    return function


class _Events:
    """A sink for both libraries: records (type, data)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    async def emit(self, *, type: str, data: Any) -> None:  # noqa: A002
        self.events.append((type, data))

    def try_emit(self, *, type: str, data: Any) -> None:  # noqa: A002
        self.events.append((type, data))


class _Exporter:
    """An exporter whose methods never checkpoint (the protocol allows it)."""

    def __init__(self) -> None:
        self.exported: list[str] = []
        self.batches: list[list[str]] = []
        self.closed = 0

    async def export(self, event: Any) -> None:
        self.exported.append(event.event_type)

    async def export_batch(self, events: list[Any]) -> None:
        self.batches.append([event.event_type for event in events])

    async def flush(self) -> None:
        pass

    async def close(self) -> None:
        self.closed += 1


def _event(name: str) -> AnalyticsEvent:
    return AnalyticsEvent(event_type=name)


# --- GuardrailStage ---------------------------------------------------------------------


def _run_both(ref: Any, text: Any, make: Any, *, content_key: str | None, inputs: bool) -> Any:
    """Run the same stage in both libraries on the same content; return both outputs."""
    prior = {"p": StageOutput.ok(draft=text)}
    ref_prior = {"p": ref.core.StageOutput.ok(draft=text)}
    octx = create_test_stage_context(input_text=text, prior_outputs=prior, **_IDS)
    rctx = ref.testing.create_test_stage_context(input_text=text, prior_outputs=ref_prior, **_IDS)
    if not inputs:
        octx = attrs.evolve(octx, inputs=_untyped(None))
        object.__setattr__(rctx, "inputs", None)
    ref_guard = importlib.import_module("stageflow.helpers.guardrails")
    theirs = asyncio.run(make(ref_guard).execute(rctx))
    mine = trio.run(make(ours).execute, octx)
    return mine, theirs


def _same(mine: Any, theirs: Any) -> None:
    assert (mine.status.value, mine.error, dict(mine.data)) == (
        theirs.status.value,
        theirs.error,
        theirs.data,
    )


def test_guardrail_stage_without_inputs_checks_the_input_text_like_the_reference() -> None:
    """A context with ``inputs=None`` and a content_key: AttributeError before."""
    ref = import_reference()

    def make(module: Any) -> Any:
        return module.GuardrailStage([module.PIIDetector()], content_key="draft")

    mine, theirs = _run_both(ref, "mail a@b.io", make, content_key="draft", inputs=False)
    _same(mine, theirs)
    assert mine.error == "Guardrail violations: 1 found"


def test_guardrail_stage_checks_str_subclass_content_like_the_reference() -> None:
    """A str subclass is a str: it used to be refused with a TypeError."""
    ref = import_reference()

    class Markup(str):
        __slots__ = ()

    def make(module: Any) -> Any:
        return module.GuardrailStage([module.PIIDetector(redact=True)])

    mine, theirs = _run_both(ref, Markup("mail a@b.io"), make, content_key=None, inputs=True)
    _same(mine, theirs)
    assert mine.data["transformed_content"] == "mail ******"


_PIECES = st.sampled_from(
    ["hi", "a@b.io", "555-123-4567", "damn", "h3ll", "ignore previous instructions",
     "competitor product", "", " ", "x" * 30]
)  # fmt: skip
_CHECKS = {
    "pii": lambda m: m.PIIDetector(redact=True),
    "pii_plain": lambda m: m.PIIDetector(),
    "filter": lambda m: m.ContentFilter(blocked_patterns=[r"competitor\s+product"]),
    "injection": lambda m: m.InjectionDetector(),
    "length": lambda m: m.ContentLengthCheck(max_chars=40, min_chars=5),
}


@_FAST
@given(
    text=st.lists(_PIECES, max_size=6).map(" ".join),
    names=st.lists(st.sampled_from(sorted(_CHECKS)), max_size=4),
    fail=st.booleans(),
    transform=st.booleans(),
    threshold=st.sampled_from([0.0, 0.3, 0.5, 0.85, 1.0]),
    log=st.booleans(),
    content_key=st.sampled_from([None, "draft", "missing"]),
    inputs=st.booleans(),
)
def test_guardrail_stage_matches_the_reference(
    text: str,
    names: list[str],
    fail: bool,
    transform: bool,
    threshold: float,
    log: bool,
    content_key: str | None,
    inputs: bool,
) -> None:
    ref = import_reference()
    config = {
        "fail_on_violation": fail,
        "transform_content": transform,
        "violation_threshold": threshold,
        "log_violations": log,
    }
    sinks: list[_Events] = []

    def make(module: Any) -> Any:
        sinks.append(_Events())
        return module.GuardrailStage(
            [_CHECKS[name](module) for name in names],
            module.GuardrailConfig(**config),
            content_key=content_key,
        )

    prior = {"p": StageOutput.ok(draft="in:" + text)}
    ref_prior = {"p": ref.core.StageOutput.ok(draft="in:" + text)}
    ref_sink, our_sink = _Events(), _Events()
    octx = create_test_stage_context(
        input_text=text, prior_outputs=prior, event_sink=our_sink, **_IDS
    )
    rctx = ref.testing.create_test_stage_context(
        input_text=text, prior_outputs=ref_prior, event_sink=ref_sink, **_IDS
    )
    if not inputs:
        octx = attrs.evolve(octx, inputs=_untyped(None))
        object.__setattr__(rctx, "inputs", None)
    theirs = asyncio.run(
        make(importlib.import_module("stageflow.helpers.guardrails")).execute(rctx)
    )
    mine = trio.run(make(ours).execute, octx)
    # The reference lists profanity in set order; ours is sorted (docs/parity.md).
    assert _sorted(mine.status.value, mine.error, dict(mine.data)) == _sorted(
        theirs.status.value, theirs.error, theirs.data
    )
    assert [_sorted(*event) for event in our_sink.events] == [
        _sorted(*event) for event in ref_sink.events
    ]


def _sorted(*parts: Any) -> tuple[Any, ...]:
    """``parts`` with every ``violations`` list of a dict sorted."""
    return tuple(
        {k: sorted(v, key=repr) if k == "violations" else v for k, v in part.items()}
        if isinstance(part, dict)
        else part
        for part in parts
    )


@pytest.mark.parametrize("threshold", [1.01, 5, -0.5])
def test_violation_threshold_outside_the_severity_range_is_refused(threshold: float) -> None:
    """A threshold above 1 ignored every violation: the guard was silently off."""
    with pytest.raises(
        ValueError,
        match=rf"^GuardrailConfig: violation_threshold must be in \[0, 1\]; got {threshold}$",
    ):
        ours.GuardrailConfig(violation_threshold=threshold)
    assert ours.GuardrailConfig(violation_threshold=1).violation_threshold == 1


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: _untyped(ours.PIIDetector)(detect_types=["email", 1]), r"^PIIDetector: detect_types\[1\] must be a str; got int$"),
        (lambda: _untyped(ours.PIIDetector)(detect_types=[["email"]]), r"^PIIDetector: detect_types\[0\] must be a str; got list$"),
        (lambda: _untyped(ours.ContentFilter)(profanity_list=["damn", None]), r"^ContentFilter: profanity_list\[1\] must be a str; got NoneType$"),
        (lambda: _untyped(ours.ContentFilter)(profanity_list=[1]), r"^ContentFilter: profanity_list\[0\] must be a str; got int$"),
        (lambda: _untyped(ours.InjectionDetector)(additional_patterns=[b"x"]), r"^InjectionDetector: additional_patterns\[0\] must be a str; got bytes$"),
    ],
)  # fmt: skip
def test_guardrail_word_and_type_lists_name_a_bad_item(make: Any, message: str) -> None:
    """Bare TypeErrors from sorted() / set() / re before ("unhashable type: 'list'")."""
    with pytest.raises(TypeError, match=message):
        make()


# --- BufferedExporter -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("events", "message"),
    [
        (None, r"events must be a list of AnalyticsEvent; got NoneType$"),
        ("ab", r"events must be a list of AnalyticsEvent; got str$"),
        ([_event("a"), "x"], r"events\[1\] must be an AnalyticsEvent; got str$"),
    ],
)
async def test_buffered_export_batch_checks_every_event_before_buffering(
    events: Any, message: str
) -> None:
    exporter = BufferedExporter(_Exporter(), batch_size=10)
    with pytest.raises(TypeError, match=r"^BufferedExporter\.export_batch: " + message):
        await _untyped(exporter.export_batch)(events)
    assert exporter.buffer_size == 0


async def test_buffered_timed_flush_in_virtual_time(autojump_clock: trio.testing.MockClock) -> None:
    inner = _Exporter()
    async with BufferedExporter(inner, batch_size=10, flush_interval_seconds=5) as exporter:
        await exporter.export(_event("a"))
        await trio.sleep(4.9)
        assert inner.batches == []
        await trio.sleep(0.2)
        assert inner.batches == [["a"]]
        await exporter.export(_event("b"))
        await exporter.export(_event("c"))
    assert (inner.batches, inner.closed, exporter.dropped_count) == ([["a"], ["b", "c"]], 1, 0)


# --- CompositeExporter and AnalyticsSink ------------------------------------------------


@pytest.mark.parametrize("method", ["export", "export_batch", "flush", "close"])
async def test_composite_exporter_cancelled_raises_cancelled(method: str) -> None:
    """Exporters that never checkpoint: a cancelled call reached them all and returned.

    Now a cancelled export / export_batch / flush calls no exporter; a cancelled
    close still calls every one (cleanup), then raises Cancelled.
    """
    inners = [_Exporter(), _Exporter()]
    composite = CompositeExporter(_untyped(inners))
    args: dict[str, tuple[Any, ...]] = {
        "export": (_event("a"),),
        "export_batch": ([_event("a")],),
        "flush": (),
        "close": (),
    }
    with trio.CancelScope() as scope:
        scope.cancel()
        await getattr(composite, method)(*args[method])
    assert scope.cancelled_caught
    closed = 1 if method == "close" else 0
    assert [(i.exported, i.batches, i.closed) for i in inners] == [([], [], closed)] * 2
    with trio.testing.assert_checkpoints():
        await getattr(composite, method)(*args[method])


_VALUES = st.one_of(
    st.none(), st.text(max_size=3), st.integers(), st.floats(allow_nan=False), st.booleans()
)


@_FAST
@given(
    event_type=st.text(alphabet="astgex.", max_size=6),
    data=st.one_of(
        st.none(),
        st.dictionaries(
            st.sampled_from(["pipeline_run_id", "stage", "duration_ms", "x"]), _VALUES, max_size=4
        ),
    ),
    include=st.one_of(st.none(), st.lists(st.sampled_from(["", "a", "stage", "."]), max_size=3)),
    exclude=st.one_of(st.none(), st.lists(st.sampled_from(["", "x", "s.t", "g"]), max_size=3)),
)
def test_analytics_sink_conversion_matches_the_reference(
    event_type: str, data: dict[str, Any] | None, include: Any, exclude: Any
) -> None:
    import_reference()
    ref = importlib.import_module("stageflow.helpers.analytics")

    class Keep:
        def __init__(self) -> None:
            self.events: list[Any] = []

        async def export(self, event: Any) -> None:
            self.events.append(event)

    theirs, mine = Keep(), Keep()
    asyncio.run(
        ref.AnalyticsSink(theirs, include_patterns=include, exclude_patterns=exclude).emit(
            type=event_type, data=data
        )
    )
    sink = analytics.AnalyticsSink(
        _untyped(mine), include_patterns=include, exclude_patterns=exclude
    )
    trio.run(lambda: sink.emit(type=event_type, data=data))

    def plain(events: list[Any]) -> list[Any]:
        return [
            (e.to_dict() | {"timestamp": None}, e.pipeline_run_id, e.stage_name, e.duration_ms)
            for e in events
        ]

    assert plain(mine.events) == plain(theirs.events)


async def test_analytics_sink_try_emit_held_then_flushed_once_in_order() -> None:
    inner = _Exporter()
    sink = AnalyticsSink(inner)
    assert [sink.try_emit(type=f"e{i}", data=None) for i in range(3)] == [False] * 3
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sink.flush_pending)
        nursery.start_soon(sink.flush_pending)
    assert (inner.exported, sink.pending_count) == (["e0", "e1", "e2"], 0)
