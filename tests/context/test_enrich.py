"""ENRICH helpers: token budgets, truncation tracking, version metadata, conflict resolution."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import attrs
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio.context import enrich
from stageflow_trio.context.enrich import (
    ConflictDetector,
    ConflictResolution,
    ContextUtilization,
    TruncationEvent,
    TruncationTracker,
    VersionMetadata,
)
from stageflow_trio.testing import RecordingEventSink
from stageflow_trio.utils.frozen import FrozenDict, FrozenList
from tests.fakes import FailingSink

T0 = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
LOGGER = "stageflow_trio.context.enrich"


@pytest.fixture
def frozen_now(monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    """Pin the module's wall clock; append to the list to move it."""
    now = [T0]
    monkeypatch.setattr(enrich, "utc_now", lambda: now[-1])
    return now


# --- ContextUtilization ---------------------------------------------------------------------


def test_utilization_numbers() -> None:
    window = ContextUtilization(max_tokens=1000, used_tokens=700, reserved_tokens=200)
    assert window.available_tokens == 100
    assert window.utilization == 0.7
    assert (window.is_near_limit, window.is_at_limit) == (False, False)
    assert window.can_fit(100) is True
    assert window.can_fit(101) is False
    assert window.add(101) is False
    assert window.used_tokens == 700
    assert window.add(100) is True
    assert window.to_dict() == {
        "max_tokens": 1000,
        "used_tokens": 800,
        "reserved_tokens": 200,
        "available_tokens": 0,
        "utilization": 0.8,
        "is_near_limit": False,
    }
    assert window.is_at_limit is True
    assert window.add(1) is False
    window.used_tokens = 801
    assert window.is_near_limit is True


def test_an_empty_window() -> None:
    window = ContextUtilization(max_tokens=0)
    assert (window.utilization, window.available_tokens, window.is_at_limit) == (0.0, 0, True)
    assert window.add(0) is True
    assert window.add(1) is False


def test_overfull_window_never_reports_negative_space() -> None:
    window = ContextUtilization(max_tokens=10, used_tokens=15)
    assert (window.available_tokens, window.utilization) == (0, 1.5)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: ContextUtilization(max_tokens="9"),  # type: ignore[arg-type]
            TypeError,
            "ContextUtilization: max_tokens must be an int; got str",
        ),
        (
            lambda: ContextUtilization(max_tokens=9, used_tokens=True),
            TypeError,
            "ContextUtilization: used_tokens must be an int; got bool",
        ),
        (
            lambda: ContextUtilization(max_tokens=9, reserved_tokens=-1),
            ValueError,
            "ContextUtilization: reserved_tokens must be at least 0; got -1",
        ),
        (
            lambda: ContextUtilization(max_tokens=9).add(-2),
            ValueError,
            "ContextUtilization.add: token_count must be at least 0; got -2",
        ),
        (
            lambda: ContextUtilization(max_tokens=9).can_fit(1.5),  # type: ignore[arg-type]
            TypeError,
            "ContextUtilization.can_fit: token_count must be an int; got float",
        ),
        (
            lambda: setattr(ContextUtilization(max_tokens=9), "used_tokens", -1),
            ValueError,
            "ContextUtilization: used_tokens must be at least 0; got -1",
        ),
    ],
)
def test_utilization_rejects_bad_counts(call: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=f"^{message}$"):
        call()


COUNTS = st.integers(min_value=0, max_value=5000)


@pytest.mark.usefixtures("reference")
@given(
    max_tokens=COUNTS,
    used=COUNTS,
    reserved=COUNTS,
    adds=st.lists(st.integers(min_value=0, max_value=2000), max_size=6),
)
def test_utilization_matches_the_reference(
    max_tokens: int, used: int, reserved: int, adds: list[int]
) -> None:
    from stageflow.context.enrich import ContextUtilization as RefUtilization

    ours = ContextUtilization(max_tokens, used, reserved)
    theirs = RefUtilization(max_tokens, used, reserved)
    for count in adds:
        assert ours.can_fit(count) == theirs.can_fit(count)
        assert ours.add(count) == theirs.add(count)
        assert ours.to_dict() == theirs.to_dict()
        assert ours.is_at_limit == theirs.is_at_limit
    assert ours.to_dict() == theirs.to_dict()


# --- TruncationEvent and TruncationTracker --------------------------------------------------


def test_truncation_event() -> None:
    event = TruncationEvent(T0, 100, 60, "tail", "document", "too long", 0.6, {"doc": "d1"})
    assert event.tokens_removed == 40
    assert event.to_dict() == {
        "timestamp": "2026-03-04T05:06:07+00:00",
        "original_tokens": 100,
        "truncated_tokens": 60,
        "tokens_removed": 40,
        "strategy": "tail",
        "content_type": "document",
        "reason": "too long",
        "preserved_ratio": 0.6,
        "metadata": {"doc": "d1"},
    }
    assert isinstance(event.metadata, FrozenDict)
    assert type(event.to_dict()["metadata"]) is dict
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.reason = "x"  # type: ignore[misc]
    same = TruncationEvent(T0, 100, 60, "tail", "document", "too long", 0.6)
    assert same.metadata == {}
    assert TruncationEvent(T0, 1, 1, "s", "c", "r", 1.0, metadata=event.metadata).metadata is (
        event.metadata
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"timestamp": "now"}, TypeError, "TruncationEvent: timestamp must be a datetime; got str"),
        ({"original_tokens": 1.0}, TypeError, "TruncationEvent: original_tokens must be an int; got float"),
        ({"truncated_tokens": -1}, ValueError, "TruncationEvent: truncated_tokens must be at least 0; got -1"),
        ({"strategy": None}, TypeError, "TruncationEvent: strategy must be a str; got NoneType"),
        ({"preserved_ratio": "1"}, TypeError, "TruncationEvent: preserved_ratio must be a number; got str"),
        ({"metadata": [1]}, TypeError, "TruncationEvent: metadata must be a mapping or None; got list"),
    ],
)  # fmt: skip
def test_truncation_event_checks_its_fields(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    fields: dict[str, Any] = {
        "timestamp": T0,
        "original_tokens": 2,
        "truncated_tokens": 1,
        "strategy": "head",
        "content_type": "document",
        "reason": "r",
        "preserved_ratio": 0.5,
    }
    with pytest.raises(error, match=f"^{message}$"):
        TruncationEvent(**(fields | kwargs))


def test_tracker_records_emits_and_logs(
    frozen_now: list[datetime], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    sink = RecordingEventSink()
    tracker = TruncationTracker(event_sink=sink)
    event = tracker.record_truncation(800, 200, "head", "conversation", "window", {"turns": 4})
    assert event == TruncationEvent(
        T0, 800, 200, "head", "conversation", "window", 0.25, {"turns": 4}
    )
    assert tracker.events == (event,)
    assert sink.events == [("context.truncation", event.to_dict())]
    [record] = [r for r in caplog.records if r.name == LOGGER]
    assert record.levelno == logging.INFO
    assert record.getMessage() == "Context truncated: 800 -> 200 tokens (head, 25.0% preserved)"
    assert record.__dict__["event"] == "context_truncation"
    assert {key: record.__dict__[key] for key in event.to_dict()} == event.to_dict()


def test_a_cut_of_nothing_preserves_everything() -> None:
    event = TruncationTracker().record_truncation(0, 0, "none", "document", "empty")
    assert (event.preserved_ratio, event.metadata) == (1.0, {})


def test_a_failing_sink_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    sink = FailingSink("context.truncation")
    tracker = TruncationTracker(sink)
    tracker.record_truncation(10, 5, "tail", "document", "r")
    assert tracker.event_count == 1
    messages = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == LOGGER]
    assert messages == [
        (logging.WARNING, "Failed to emit truncation event: sink down"),
        (logging.INFO, "Context truncated: 10 -> 5 tokens (tail, 50.0% preserved)"),
    ]


def test_tracker_summary() -> None:
    tracker = TruncationTracker()
    assert tracker.get_summary() == {
        "event_count": 0,
        "total_tokens_removed": 0,
        "strategies_used": [],
    }
    tracker.record_truncation(100, 50, "tail", "document", "r")
    tracker.record_truncation(10, 10, "head", "retrieval", "r")
    tracker.record_truncation(40, 10, "tail", "document", "r")
    assert tracker.total_tokens_removed == 80
    assert tracker.event_count == 3
    assert tracker.get_summary() == {
        "event_count": 3,
        "total_tokens_removed": 80,
        "strategies_used": ["tail", "head"],
        "content_types": ["document", "retrieval"],
        "avg_preserved_ratio": (0.5 + 1.0 + 0.25) / 3,
    }


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        ((1.5, 1, "s", "c", "r"), TypeError, "original_tokens must be an int; got float"),
        ((1, -1, "s", "c", "r"), ValueError, "truncated_tokens must be at least 0; got -1"),
        ((1, 1, 2, "c", "r"), TypeError, "strategy must be a str; got int"),
        ((1, 1, "s", None, "r"), TypeError, "content_type must be a str; got NoneType"),
        ((1, 1, "s", "c", b"r"), TypeError, "reason must be a str; got bytes"),
        ((1, 1, "s", "c", "r", "meta"), TypeError, "metadata must be a mapping or None; got str"),
    ],
)
def test_record_truncation_checks_its_arguments(
    args: tuple[Any, ...], error: type[Exception], message: str
) -> None:
    tracker = TruncationTracker()
    with pytest.raises(error, match=f"^TruncationTracker.record_truncation: {message}$"):
        tracker.record_truncation(*args)
    assert tracker.event_count == 0


def test_tracker_needs_a_sink_with_try_emit() -> None:
    with pytest.raises(
        TypeError,
        match=r"^TruncationTracker: event_sink must have a try_emit method or be None; got str$",
    ):
        TruncationTracker("sink")


async def test_concurrent_tasks_share_a_tracker(autojump_clock: trio.abc.Clock) -> None:
    tracker = TruncationTracker()
    window = ContextUtilization(max_tokens=100)

    added: list[bool] = []

    async def stage(n: int) -> None:
        await trio.sleep(n % 3)
        tracker.record_truncation(12, n, "tail", "document", f"task {n}")
        added.append(window.add(9))

    async with trio.open_nursery() as nursery:
        for n in range(12):
            nursery.start_soon(stage, n)
    assert tracker.event_count == 12
    assert tracker.total_tokens_removed == sum(12 - n for n in range(12))
    assert sorted(added) == [False] + [True] * 11  # eleven 9s fit in 100, the twelfth not
    assert window.used_tokens == 99
    assert sorted(event.reason for event in tracker.events) == sorted(
        f"task {n}" for n in range(12)
    )


def test_tracker_matches_the_reference(
    reference: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    ref_tracker = reference.context.enrich.TruncationTracker()
    tracker = TruncationTracker()
    calls = [
        (1000, 400, "middle", "document", "budget", {"doc": 1}),
        (300, 300, "semantic", "retrieval", "noop", None),
        (7, 3, "middle", "conversation", "r", {}),
    ]
    for call in calls:
        ours = tracker.record_truncation(*call).to_dict()
        theirs = ref_tracker.record_truncation(*call).to_dict()
        del ours["timestamp"], theirs["timestamp"]
        assert ours == theirs
    ours_summary, theirs_summary = tracker.get_summary(), ref_tracker.get_summary()
    for key in ("strategies_used", "content_types"):  # the reference's order is a set's
        assert sorted(ours_summary.pop(key)) == sorted(theirs_summary.pop(key))
    assert ours_summary == theirs_summary
    ours_logs = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    theirs_logs = [r.getMessage() for r in caplog.records if r.name == "stageflow.context.enrich"]
    assert ours_logs == theirs_logs
    assert len(ours_logs) == 3


def test_the_reference_cannot_emit_to_a_keyword_only_sink(
    reference: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    """Why the parity row exists: the reference calls ``try_emit`` positionally."""
    caplog.set_level(logging.WARNING)
    ref_sink = RecordingEventSink()
    reference.context.enrich.TruncationTracker(ref_sink).record_truncation(2, 1, "s", "c", "r")
    assert ref_sink.events == []
    assert any(
        r.getMessage().startswith("Failed to emit truncation event:") for r in caplog.records
    )
    sink = RecordingEventSink()
    TruncationTracker(sink).record_truncation(2, 1, "s", "c", "r")
    assert sink.types() == ["context.truncation"]


# --- VersionMetadata ------------------------------------------------------------------------


def test_version_metadata_age_and_staleness(frozen_now: list[datetime]) -> None:
    meta = VersionMetadata.create("doc-1", "v3", "vector_db", content="hello", ttl_seconds=60)
    assert meta.retrieved_at == T0
    assert meta.checksum == "2cf24dba5fb0a30e"
    assert meta.tags == []
    frozen_now.append(T0 + timedelta(seconds=60))
    assert (meta.age_seconds, meta.is_stale) == (60.0, False)
    frozen_now.append(T0 + timedelta(seconds=60.5))
    assert (meta.age_seconds, meta.is_stale) == (60.5, True)
    assert meta.to_dict() == {
        "content_id": "doc-1",
        "version": "v3",
        "retrieved_at": "2026-03-04T05:06:07+00:00",
        "source": "vector_db",
        "checksum": "2cf24dba5fb0a30e",
        "ttl_seconds": 60,
        "age_seconds": 60.5,
        "is_stale": True,
        "tags": [],
    }


def test_version_metadata_without_ttl_never_goes_stale(frozen_now: list[datetime]) -> None:
    meta = VersionMetadata("c", "1", T0 - timedelta(days=400), "api", tags=["a", "b"])
    assert meta.is_stale is False
    assert meta.checksum is None
    assert isinstance(meta.tags, FrozenList)
    assert type(meta.to_dict()["tags"]) is list
    assert meta.to_dict()["tags"] == ["a", "b"]
    assert VersionMetadata.create("c", "1", "api", content=b"hello").checksum == (
        VersionMetadata.create("c", "1", "api", content="hello").checksum
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"content_id": 1}, TypeError, "VersionMetadata: content_id must be a str; got int"),
        ({"retrieved_at": "t"}, TypeError, "VersionMetadata: retrieved_at must be a datetime; got str"),
        (
            {"retrieved_at": datetime(2026, 1, 1)},  # naive, on purpose
            ValueError,
            "VersionMetadata: retrieved_at must be timezone-aware; got a naive datetime",
        ),
        ({"checksum": 5}, TypeError, "VersionMetadata: checksum must be a str; got int"),
        ({"ttl_seconds": -1}, ValueError, r"VersionMetadata: ttl_seconds must be >= 0; got -1"),
        ({"ttl_seconds": "60"}, TypeError, "VersionMetadata: ttl_seconds must be a number; got str"),
        ({"tags": "ab"}, TypeError, "VersionMetadata: tags must be a list of str or None; got str"),
        ({"tags": ["a", 1]}, TypeError, r"VersionMetadata: tags\[\] must be a str; got int"),
    ],
)  # fmt: skip
def test_version_metadata_checks_its_fields(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    fields: dict[str, Any] = {
        "content_id": "c",
        "version": "1",
        "retrieved_at": T0,
        "source": "api",
    }
    with pytest.raises(error, match=f"^{message}$"):
        VersionMetadata(**(fields | kwargs))


def test_version_metadata_create_checks_the_content() -> None:
    with pytest.raises(
        TypeError, match=r"^VersionMetadata.create: content must be str, bytes or None; got int$"
    ):
        VersionMetadata.create("c", "1", "api", content=5)  # type: ignore[arg-type]


@pytest.mark.usefixtures("reference")
@given(
    content=st.one_of(st.none(), st.text(max_size=50), st.binary(max_size=50)),
    ttl=st.one_of(st.none(), st.integers(min_value=0, max_value=10**6)),
    tags=st.one_of(st.none(), st.lists(st.text(max_size=5), max_size=3)),
)
def test_version_metadata_matches_the_reference(
    content: str | bytes | None, ttl: int | None, tags: list[str] | None
) -> None:
    from stageflow.context.enrich import VersionMetadata as RefVersionMetadata

    ours = VersionMetadata.create("id", "v", "src", content=content, ttl_seconds=ttl, tags=tags)
    theirs = RefVersionMetadata.create(
        "id", "v", "src", content=content, ttl_seconds=ttl, tags=tags
    )
    theirs.retrieved_at = ours.retrieved_at
    ours_dict, theirs_dict = ours.to_dict(), theirs.to_dict()
    # age_seconds reads the clock twice; everything else is equal.
    assert abs(ours_dict.pop("age_seconds") - theirs_dict.pop("age_seconds")) < 5
    assert ours_dict == theirs_dict


# --- ConflictDetector -----------------------------------------------------------------------


def test_no_conflict_without_an_old_value_or_with_an_equal_one() -> None:
    detector = ConflictDetector()
    assert detector.check_and_resolve("f", None, 1) == ConflictResolution(
        has_conflict=False, field="f", new_value=1
    )
    assert detector.check_and_resolve("f", [1], [1]) == ConflictResolution(
        has_conflict=False, field="f", old_value=[1], new_value=[1]
    )


@pytest.mark.parametrize(
    ("strategy", "merged"),
    [("keep_old", "a"), ("keep_new", "b"), ("merge", "a\nb"), ("error", None)],
)
def test_each_strategy(strategy: str, merged: str | None) -> None:
    resolution = ConflictDetector(strategy).check_and_resolve("f", "a", "b")
    assert resolution == ConflictResolution(
        has_conflict=True,
        field="f",
        old_value="a",
        new_value="b",
        resolution=strategy,
        merged_value=merged,
    )


def test_per_field_strategies_are_copied() -> None:
    strategies = {"tags": "merge"}
    detector = ConflictDetector("keep_old", strategies)
    strategies["tags"] = "error"
    assert detector.check_and_resolve("tags", ["a"], ["b"]).merged_value == ["a", "b"]
    assert detector.check_and_resolve("name", "x", "y").merged_value == "x"


def test_a_strategy_assigned_later_that_is_unknown_keeps_the_new_value() -> None:
    detector = ConflictDetector()
    detector.default_strategy = "newest"
    resolution = detector.check_and_resolve("f", 1, 2)
    assert (resolution.resolution, resolution.merged_value) == ("keep_new", 2)


@pytest.mark.parametrize(
    ("old", "new", "merged"),
    [
        ([1, 2], [2, 3, 3], [1, 2, 3, 3]),  # repeats within the new list stay
        ([{"a": 1}], [{"a": 1}, {"b": 2}], [{"a": 1}, {"a": 1}, {"b": 2}]),  # unhashable: no dedup
        ([1], [[2]], [1, [2]]),  # an unhashable new item
        (
            {"a": [1], "b": {"c": "x"}, "d": 1},
            {"a": [2], "b": {"c": "y", "e": 2}, "d": 5, "f": 0},
            {"a": [1, 2], "b": {"c": "x\ny", "e": 2}, "d": 5, "f": 0},
        ),
        (1, 2, 2),
        ("a", 2, 2),
        ([1], (2,), (2,)),
    ],
)
def test_merge(old: Any, new: Any, merged: Any) -> None:
    resolution = ConflictDetector("merge").check_and_resolve("f", old, new)
    assert resolution.merged_value == merged
    assert resolution.resolution == "merge"


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: ConflictDetector("newest"), ValueError, "ConflictDetector: default_strategy must be one of 'error', 'keep_new', 'keep_old', 'merge'; got 'newest'"),
        (lambda: ConflictDetector(1), TypeError, "ConflictDetector: default_strategy must be a str; got int"),  # type: ignore[arg-type]
        (lambda: ConflictDetector("merge", [("a", "merge")]), TypeError, "ConflictDetector: merge_strategies must be a mapping or None; got list"),  # type: ignore[arg-type]
        (lambda: ConflictDetector("merge", {"a": "append"}), ValueError, "ConflictDetector: merge_strategies['a'] must be one of 'error', 'keep_new', 'keep_old', 'merge'; got 'append'"),
        (lambda: ConflictDetector().check_and_resolve(1, 1, 2), TypeError, "ConflictDetector.check_and_resolve: field must be a str; got int"),  # type: ignore[arg-type]
    ],
)  # fmt: skip
def test_detector_checks_its_arguments(call: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error) as raised:
        call()
    assert str(raised.value) == message


JSON = st.recursive(
    st.none() | st.integers(-3, 3) | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner, max_size=3),
    max_leaves=8,
)  # fmt: skip


@pytest.mark.usefixtures("reference")
@given(
    strategy=st.sampled_from(["keep_old", "keep_new", "merge", "error"]),
    old=JSON,
    new=JSON,
)
def test_resolutions_match_the_reference(strategy: str, old: Any, new: Any) -> None:
    from stageflow.context.enrich import ConflictDetector as RefConflictDetector

    ours = ConflictDetector(strategy).check_and_resolve("f", old, new)
    theirs = RefConflictDetector(strategy).check_and_resolve("f", old, new)
    assert attrs.asdict(ours, recurse=False) == vars(theirs)


def test_conflict_resolution_is_frozen() -> None:
    resolution = ConflictResolution(has_conflict=False)
    assert (resolution.field, resolution.resolution, resolution.merged_value) == (None,) * 3
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        resolution.has_conflict = True  # type: ignore[misc]
