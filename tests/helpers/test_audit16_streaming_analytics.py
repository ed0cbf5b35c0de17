"""Audit 16: long-running use and failure paths of the exporters and timestamps."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
import trio

from stageflow_trio.helpers.analytics import AnalyticsEvent, JSONFileExporter
from stageflow_trio.helpers.timestamps import detect_unix_precision, parse_timestamp

if TYPE_CHECKING:
    from pathlib import Path


def _lines(path: Path) -> list[str]:
    return [json.loads(line)["event_type"] for line in path.read_text().splitlines()]


async def test_overwrite_mode_keeps_what_it_wrote_before_a_close(tmp_path: Path) -> None:
    # append=False overwrites the file found at the first open; a reopen after
    # close() used to truncate the lines this exporter had written and counted.
    path = tmp_path / "events.jsonl"
    path.write_text('{"event_type": "stale"}\n')
    exporter = JSONFileExporter(path, append=False)
    await exporter.export(AnalyticsEvent(event_type="one"))
    await exporter.close()
    await exporter.export_batch([AnalyticsEvent(event_type="two")])
    await exporter.close()
    assert _lines(path) == ["one", "two"]
    assert exporter.event_count == 2


async def test_overwrite_mode_loses_nothing_when_closes_race_exports(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    exporter = JSONFileExporter(path, append=False)

    async def writer(name: str) -> None:
        for index in range(20):
            await exporter.export(AnalyticsEvent(event_type=f"{name}{index}"))
            if index % 7 == 3:
                await exporter.close()  # a rotation-style close between exports

    async with trio.open_nursery() as nursery:
        for name in "abc":
            nursery.start_soon(writer, name)
    await exporter.close()
    written = _lines(path)
    assert sorted(written) == sorted(f"{name}{index}" for name in "abc" for index in range(20))
    assert len(written) == exporter.event_count == 60


@pytest.mark.parametrize(
    "value",
    [10**400, -(10**400), "9" * 400, " 1" + "0" * 320 + " "],
    ids=["int", "negative-int", "numeric-str", "padded-str"],
)
def test_an_epoch_past_the_float_range_is_a_value_error(value: int | str) -> None:
    # It used to escape as OverflowError ("int too large to convert to float"),
    # where docs/helpers.md promises a ValueError, never an OverflowError.
    with pytest.raises(ValueError, match="Unsupported Unix timestamp precision") as info:
        parse_timestamp(value)
    assert isinstance(info.value.__cause__, OverflowError)
    assert len(str(info.value)) < 120


def test_detect_unix_precision_of_a_huge_int_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"for <an int of about 401 digits>$"):
        detect_unix_precision(10**400)
    # A value of ordinary size is still quoted whole.
    with pytest.raises(ValueError, match=r"precision for 100000000000000000$"):
        detect_unix_precision(10**17)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("a" * 100_000, "Unsupported timestamp format: 'aaaa"),
        ("1" * 100_000, "timestamp must be a finite number; got '1111"),
        ("Thu, 05 Oct " + "9" * 1000 + " 14:48:00 GMT" + " " * 100_000, "outside the supported"),
    ],
    ids=["unknown-format", "infinite", "out-of-range"],
)
def test_a_100_kb_payload_makes_a_short_error_message(value: str, message: str) -> None:
    # The message quoted the whole value: a 100 KB string gave a 100 KB message.
    with pytest.raises(ValueError, match=message) as info:
        parse_timestamp(value)
    text = str(info.value)
    assert len(text) < 200
    assert f"({len(value)} characters)" in text


async def test_an_event_json_cannot_write_names_the_event_and_writes_nothing(
    tmp_path: Path,
) -> None:
    # json's bare "keys must be str, int, float, bool or None, not tuple" named
    # neither the exporter nor the event.
    path = tmp_path / "events.jsonl"
    exporter = JSONFileExporter(path)
    bad = AnalyticsEvent(event_type="tool.result", data={"scores": {(1, 2): 0.5}})
    with pytest.raises(TypeError, match=r"^JSONFileExporter.export: event 'tool.result'") as info:
        await exporter.export(bad)
    assert isinstance(info.value.__cause__, TypeError)
    looped: dict[str, object] = {}
    looped["self"] = looped
    circular = AnalyticsEvent(event_type="loop", metadata=looped)
    good = AnalyticsEvent(event_type="ok")
    with pytest.raises(ValueError, match=r"^JSONFileExporter.export_batch: event 'loop'"):
        await exporter.export_batch([good, circular])
    await exporter.export(good)
    await exporter.close()
    assert _lines(path) == ["ok"]
    assert exporter.event_count == 1
