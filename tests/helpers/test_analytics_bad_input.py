"""Analytics arguments refused at the call (naming the parameter), and the reference's
behaviour that the parity rows describe."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from stageflow_trio.helpers.analytics import (
    AnalyticsEvent,
    AnalyticsSink,
    BufferedExporter,
    CompositeExporter,
    ConsoleExporter,
    JSONFileExporter,
)
from tests.fakes import RecordingExporter, ev

EXPORTER_RULE = "must be an AnalyticsExporter \\(with async export\\(\\), export_batch\\(\\), flush\\(\\) and close\\(\\)\\)"


def untyped(value: Any) -> Any:
    """``value`` as Any: these calls break the annotations on purpose."""
    return value


class ExportOnly:
    async def export(self, event: Any) -> None:
        pass


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: untyped(AnalyticsSink)(None), r"^AnalyticsSink: exporter must be an AnalyticsExporter \(with async export\(\)\); got NoneType$"),
        (lambda: untyped(AnalyticsSink)(42), r"^AnalyticsSink: exporter must be an AnalyticsExporter \(with async export\(\)\); got int$"),
        (lambda: untyped(AnalyticsSink)(RecordingExporter(), exclude_patterns="debug"), r"^AnalyticsSink: exclude_patterns must be a list of str or None; got str$"),
        (lambda: untyped(AnalyticsSink)(RecordingExporter(), include_patterns="llm"), r"^AnalyticsSink: include_patterns must be a list of str or None; got str$"),
        (lambda: untyped(AnalyticsSink)(RecordingExporter(), include_patterns=5), r"^AnalyticsSink: include_patterns must be a list of str or None; got int$"),
        (lambda: untyped(AnalyticsSink)(RecordingExporter(), exclude_patterns=["ok", 1]), r"^AnalyticsSink: exclude_patterns\[1\] must be a str; got int$"),
        (lambda: untyped(AnalyticsSink)(RecordingExporter(), nursery="n"), r"^AnalyticsSink: nursery must be a trio\.Nursery or None; got str$"),
        (lambda: untyped(CompositeExporter)(None), r"^CompositeExporter: exporters must be a list of AnalyticsExporter; got NoneType$"),
        (lambda: untyped(CompositeExporter)(42), r"^CompositeExporter: exporters must be a list of AnalyticsExporter; got int$"),
        (lambda: untyped(CompositeExporter)("abc"), r"^CompositeExporter: exporters must be a list of AnalyticsExporter; got str$"),
        (lambda: untyped(CompositeExporter)([RecordingExporter(), 42]), rf"^CompositeExporter: exporters\[1\] {EXPORTER_RULE}; got int$"),
        (lambda: untyped(CompositeExporter)([ExportOnly()]), rf"^CompositeExporter: exporters\[0\] {EXPORTER_RULE}; got ExportOnly$"),
    ],
)  # fmt: skip
def test_constructors_refuse_bad_arguments(make: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        make()


def test_sink_takes_any_exporter_with_export_and_iterables_of_patterns() -> None:
    sink = untyped(AnalyticsSink)(
        ExportOnly(), include_patterns=("stage.",), exclude_patterns=iter(["x"])
    )
    assert sink._should_export("stage.started")
    assert not sink._should_export("stage.x")
    composite = untyped(CompositeExporter)(iter([RecordingExporter()]))
    assert len(composite._exporters) == 1


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda tmp: untyped(ConsoleExporter)().export("x"), r"^ConsoleExporter\.export: event must be an AnalyticsEvent; got str$"),
        (lambda tmp: untyped(ConsoleExporter)().export_batch("xy"), r"^ConsoleExporter\.export_batch: events must be a list of AnalyticsEvent; got str$"),
        (lambda tmp: untyped(ConsoleExporter)().export_batch([ev(1), None]), r"^ConsoleExporter\.export_batch: events\[1\] must be an AnalyticsEvent; got NoneType$"),
        (lambda tmp: untyped(JSONFileExporter)(tmp / "o.jsonl").export("x"), r"^JSONFileExporter\.export: event must be an AnalyticsEvent; got str$"),
        (lambda tmp: untyped(JSONFileExporter)(tmp / "o.jsonl").export_batch(None), r"^JSONFileExporter\.export_batch: events must be a list of AnalyticsEvent; got NoneType$"),
        (lambda tmp: untyped(JSONFileExporter)(tmp / "o.jsonl").export_batch([{"event_type": "x"}]), r"^JSONFileExporter\.export_batch: events\[0\] must be an AnalyticsEvent; got dict$"),
        (lambda tmp: untyped(BufferedExporter)(RecordingExporter()).export("x"), r"^BufferedExporter\.export: event must be an AnalyticsEvent; got str$"),
    ],
)  # fmt: skip
async def test_exports_refuse_what_is_not_an_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], call: Any, message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        await call(tmp_path)
    assert capsys.readouterr().out == ""
    assert not (tmp_path / "o.jsonl").exists()  # refused before the file was opened


def test_the_reference_accepts_them_and_fails_later(reference: ModuleType) -> None:
    """The parity row's evidence (stageflow-core 0.9.1)."""
    analytics = reference.helpers.analytics
    sink = analytics.AnalyticsSink(None, exclude_patterns="debug")  # accepted
    assert not sink._should_export("stage.started")  # "debug" excludes every type with an "e"
    event = analytics.AnalyticsEvent(event_type="x")
    with pytest.raises(TypeError, match=r"^'NoneType' object is not iterable$"):
        asyncio.run(analytics.CompositeExporter(None).export(event))
    with pytest.raises(AttributeError):
        asyncio.run(analytics.ConsoleExporter().export("x"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"event_type": 5}, r"^AnalyticsEvent: event_type must be a str; got int$"),
        (
            {"event_type": "x", "timestamp": "2026-01-01"},
            r"^AnalyticsEvent: timestamp must be a datetime; got str$",
        ),
    ],
)
def test_an_event_needs_a_str_type_and_a_datetime(kwargs: dict[str, Any], message: str) -> None:
    # to_dict needs both (the reference fails there, on isoformat()).
    with pytest.raises(TypeError, match=message):
        AnalyticsEvent(**kwargs)
