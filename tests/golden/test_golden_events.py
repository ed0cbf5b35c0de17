"""Golden payloads of every event type the package emits (tests/golden/events/*.json).

Fails when a payload changes (keys, key order, value types, exact values other than ids,
timestamps and durations), when an emit site in the package sends a type that has no golden
file, or when a golden file is left without a producer. After an intended change, run
``python -m tests.golden --update`` and review the diff.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest

from tests.golden import golden
from tests.golden.producers import SOURCES


@functools.cache
def records() -> dict[str, dict[str, Any]]:
    """Every golden record, produced once per session (a producer error fails the tests
    that need it, not the collection)."""
    return golden.produce_all()


@pytest.mark.parametrize("golden_type", sorted(SOURCES))
def test_payload_matches_its_golden_file(golden_type: str) -> None:
    path = golden.path_of(golden_type)
    assert path.is_file(), f"no golden file for {golden_type}: run python -m tests.golden --update"
    assert json.loads(path.read_text(encoding="utf-8")) == records()[golden_type]
    # Byte for byte too, so the files stay in the form --update writes.
    assert path.read_text(encoding="utf-8") == golden.dump(records()[golden_type])


def test_every_golden_file_has_a_producer() -> None:
    on_disk = {p.name.removesuffix(".json") for p in golden.EVENTS_DIR.glob("*.json")}
    assert on_disk == set(SOURCES)


def test_every_emitted_event_type_has_a_golden_file() -> None:
    typed, dynamic = golden.emit_sites()
    missing = []
    for text, where in sorted(typed.items()):
        covers = (text,) if text in SOURCES else golden.PATTERN_SITES.get(text, ())
        if not covers or not set(covers) <= set(SOURCES):
            missing.append((text, where))
    assert missing == [], (
        "event types without a golden file: add a producer to SOURCES in"
        " tests/golden/producers.py, run python -m tests.golden --update, review the new file"
    )
    assert set(dynamic) == set(golden.DYNAMIC_SITES), (
        "an emit site whose type is not written at the call: list it in DYNAMIC_SITES"
        " (tests/golden/golden.py) with the golden types it emits, or FORWARDS"
    )
    for covers in golden.DYNAMIC_SITES.values():
        assert set(covers) <= set(SOURCES)
    assert set(golden.PATTERN_SITES) <= set(typed)


def test_ids_are_str_or_null_and_timestamps_iso() -> None:
    for golden_type, record in records().items():
        payload: dict[str, Any] = record["payload"]
        for key, value in payload.items():
            if key.endswith("_id"):
                assert record["value_types"][key] in ("str", "null"), (golden_type, key)
            if key in ("timestamp", "started_at", "ended_at"):
                assert value == "<timestamp>", (golden_type, key)


def test_data_keys_are_sorted() -> None:
    payload = records()["stage.wide"]["payload"]
    assert payload["data_keys"] == sorted(payload["data_keys"]) == ["a", "z"]


def test_pick_skips_types_with_their_own_file() -> None:
    events = [("stage.retry_scheduled", {}), ("stage.checkpoint", {"n": 1})]
    assert golden.pick("stage.{status}", events) == ("stage.checkpoint", {"n": 1})
    with pytest.raises(AssertionError, match="emitted no such event"):
        golden.pick("stage.{status}", events[:1])


def test_update_rewrites_the_files(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(golden, "EVENTS_DIR", tmp_path)
    (tmp_path / "gone.event.json").write_text("{}", encoding="utf-8")
    written = golden.write_all()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written)
    assert len(written) == len(SOURCES)


def test_the_scanner_finds_every_kind_of_emit_site() -> None:
    source = (
        "sink.try_emit(type='thing.happened', data={})\n"
        "ctx.try_emit_event(f'job.{job.name}.done', {})\n"
        "_record(ctx, name, 'paused')\n"
        "ctx.record_stage_event(stage=s, status='resumed')\n"
        "_emit('a.b' if x else 'a.c', {})\n"
        "sink.emit(type=event_type, data=data)\n"
        "logger.info('not.an.event')\n"
    )
    typed: dict[str, list[str]] = {}
    dynamic: dict[str, list[str]] = {}
    golden.sites_in(source, "m.py", typed, dynamic)
    assert typed == {
        "thing.happened": ["m.py:1"],
        "job.{job_name}.done": ["m.py:2"],
        "stage.{stage}.paused": ["m.py:3"],
        "stage.{stage}.resumed": ["m.py:4"],
        "a.b": ["m.py:5"],
        "a.c": ["m.py:5"],
    }
    assert dynamic == {"m.py:sink.emit": ["m.py:6"]}
