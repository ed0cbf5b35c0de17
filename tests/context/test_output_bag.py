"""OutputBag and OutputEntry: attempt tracking, conflicts, checkpoints, parity."""

from __future__ import annotations

import copy
import json
import math
import pickle
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import attrs
import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio._serialization import converter
from stageflow_trio.context import output_bag as output_bag_impl
from stageflow_trio.context import output_bag as output_bag_module
from stageflow_trio.context.output_bag import OutputBag, OutputConflictError, OutputEntry
from stageflow_trio.core.stage_enums import StageStatus
from stageflow_trio.core.stage_output import StageArtifact, StageOutput
from stageflow_trio.errors import StageflowError
from stageflow_trio.lowlevel import DEFAULT_CALLS, checkpoint_budget

_CONFLICT = r"^Stage 's' already has output \(attempt {n}\)\. Use allow_overwrite=True for retry scenarios\.$"


def test_exports() -> None:
    assert sorted(output_bag_module.__all__) == ["OutputBag", "OutputConflictError", "OutputEntry"]


async def test_first_write_is_attempt_one() -> None:
    bag = OutputBag()
    out = StageOutput.ok({"a": 1})
    before = datetime.now(UTC)
    entry = await bag.write("s", out)
    after = datetime.now(UTC)
    assert entry.output is out
    assert entry.attempt == 1
    assert entry.stage_name == "s"
    assert before <= entry.timestamp <= after
    assert entry.timestamp.tzinfo is UTC
    assert bag.get("s") is entry


async def test_conflict_without_allow_overwrite() -> None:
    bag = OutputBag()
    first = await bag.write("s", StageOutput.ok())
    with pytest.raises(OutputConflictError, match=_CONFLICT.format(n=1)) as info:
        await bag.write("s", StageOutput.fail("x"))
    assert info.value.stage_name == "s"
    assert info.value.existing_attempt == 1
    assert bag.get("s") is first
    await bag.write("s", StageOutput.ok(), allow_overwrite=True)
    with pytest.raises(OutputConflictError, match=_CONFLICT.format(n=2)):
        bag.write_sync("s", StageOutput.ok())


async def test_overwrite_bumps_the_attempt() -> None:
    bag = OutputBag()
    assert (await bag.write("s", StageOutput.retry("e"), allow_overwrite=True)).attempt == 1
    assert (await bag.write("s", StageOutput.retry("e"), allow_overwrite=True)).attempt == 2
    last = await bag.write("s", StageOutput.ok({"v": 3}), allow_overwrite=True)
    assert last.attempt == 3
    assert bag.get_attempt_count("s") == 3
    assert bag.get_output("s") is last.output
    assert bag.get_retry_stages() == ["s"]


async def test_a_stored_timestamp_is_a_datetime_in_every_view() -> None:
    # The bag stores time.time() and the first read converts it (_RecordedAt):
    # nothing a user can reach may see the float.
    bag = OutputBag()
    written = [await bag.write("a", StageOutput.ok()), bag.write_sync("b", StageOutput.ok())]
    for entry in written:
        dumped = attrs.asdict(entry, recurse=False)
        assert type(dumped["timestamp"]) is datetime
        assert dumped["timestamp"].tzinfo is UTC
        assert entry.timestamp is entry.timestamp  # converted once, then kept
        assert "timestamp=datetime.datetime(" in repr(entry)
        clone = pickle.loads(pickle.dumps(entry))
        assert type(clone.timestamp) is datetime
        assert clone == entry
        public = OutputEntry(entry.output, entry.attempt, entry.timestamp, entry.stage_name)
        assert public == entry
        assert hash(public) == hash(entry)
        assert attrs.evolve(entry, attempt=2).timestamp == entry.timestamp
    for fresh_view in (
        lambda e: copy.deepcopy(e).timestamp,
        lambda e: attrs.astuple(e, recurse=False)[2],
        lambda e: datetime.fromisoformat(converter.unstructure(e)["timestamp"]),
    ):
        entry = bag.write_sync("v", StageOutput.ok(), allow_overwrite=True)
        assert type(fresh_view(entry)) is datetime
    # A fresh entry compares and hashes by its datetime before anything read it.
    fresh = bag.write_sync("c", StageOutput.ok())
    twin = bag.write_sync("c", StageOutput.ok(), allow_overwrite=True)
    assert (fresh == twin) is False  # attempts differ
    assert attrs.evolve(fresh, attempt=2, timestamp=twin.timestamp) == twin
    json.dumps(fresh.to_dict())


async def test_stored_timestamps_are_utc_to_the_microsecond() -> None:
    bag = OutputBag()
    stamps = []
    for i in range(50):
        before = datetime.now(UTC)
        entry = await bag.write(f"s{i}", StageOutput.ok())
        after = datetime.now(UTC)
        stamps.append(entry.timestamp)
        assert before <= entry.timestamp <= after
        assert entry.timestamp.isoformat().endswith("+00:00")
    assert stamps == sorted(stamps)


async def test_a_write_that_yields_is_stamped_when_it_stores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Other tasks run during a write's schedule point (one may even store an
    # earlier attempt), so the reading taken before it must not stamp the entry.
    readings = iter(range(1_000_000_000, 10**12, 1_000_000_000))  # 1 s, 2 s, 3 s, ...
    monkeypatch.setattr(output_bag_impl, "_wall_clock", lambda: next(readings))
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    bag = OutputBag()
    with checkpoint_budget(calls=1):
        yielded = await bag.write("a", StageOutput.ok())  # reads 1 s, yields, reads 2 s
    with checkpoint_budget(calls=2, seconds=math.inf):
        await bag.write("b", StageOutput.ok())  # a fresh budget's first call yields: 3 s, 4 s
        plain = await bag.write("c", StageOutput.ok())  # no yield: one reading, 5 s
    assert yielded.timestamp == epoch + timedelta(seconds=2)
    assert plain.timestamp == epoch + timedelta(seconds=5)


def test_a_subclass_that_redeclares_timestamp_keeps_its_values() -> None:
    @attrs.frozen
    class EpochEntry(OutputEntry):
        timestamp: int = attrs.field(default=0)  # type: ignore[assignment]

    entry = EpochEntry(output=StageOutput.ok(), attempt=1, stage_name="x", timestamp=17)
    assert entry.timestamp == 17


def test_output_entry_timestamp_descriptor_on_the_class() -> None:
    # Class access gives the descriptor (as a member slot would), not a crash.
    assert OutputEntry.timestamp is not None
    now = datetime.now(UTC)
    entry = OutputEntry(StageOutput.ok(), 1, now, "s")
    assert entry.timestamp is now


def test_write_sync_matches_write() -> None:
    bag = OutputBag()
    entry = bag.write_sync("a", StageOutput.ok())
    assert entry.attempt == 1
    with pytest.raises(OutputConflictError, match=r"^Stage 'a' already has output \(attempt 1\)"):
        bag.write_sync("a", StageOutput.ok())
    assert bag.write_sync("a", StageOutput.ok(), allow_overwrite=True).attempt == 2


async def test_queries() -> None:
    bag = OutputBag()
    assert len(bag) == 0
    assert bag.get("a") is None
    assert bag.get_output("a") is None
    assert bag.get_value("a", "k", "dflt") == "dflt"
    assert bag.get_attempt_count("a") == 0
    assert not bag.has("a")
    assert "a" not in bag
    out_a = StageOutput.ok({"k": 1})
    out_b = StageOutput.fail("boom")
    await bag.write("a", out_a)
    await bag.write("b", out_b)
    await bag.write("a", out_a, allow_overwrite=True)
    assert len(bag) == 2
    assert bag.has("a")
    assert "b" in bag
    assert bag.keys() == ["a", "b"]
    assert [e.stage_name for e in bag.entries()] == ["a", "b"]
    assert bag.outputs() == {"a": out_a, "b": out_b}
    assert bag.get_value("a", "k") == 1
    assert bag.get_value("a", "missing", 7) == 7
    assert bag.get_value("b", "k") is None
    assert bag.get_retry_stages() == ["a"]
    assert repr(bag) == "OutputBag(stages=['a', 'b'])"
    # The lists and dicts handed out are fresh copies.
    bag.keys().append("x")
    bag.outputs()["x"] = out_a
    assert bag.keys() == ["a", "b"]


async def test_to_dict() -> None:
    bag = OutputBag()
    art = StageArtifact("t", {})
    await bag.write("a", StageOutput.ok({"k": 1}, artifacts=[art]).with_duration(5))
    await bag.write("a", StageOutput.ok({"k": 2}).with_duration(6), allow_overwrite=True)
    entry = await bag.write("b", StageOutput.fail("boom"))
    dumped = bag.to_dict()
    assert dumped["stage_count"] == 2
    assert dumped["total_attempts"] == 3
    assert dumped["entries"]["b"] == {
        "stage_name": "b",
        "attempt": 1,
        "timestamp": entry.timestamp.isoformat(),
        "status": "fail",
        "data": {},
        "error": "boom",
        "duration_ms": None,
        "artifacts_count": 0,
        "events_count": 0,
    }
    assert dumped["entries"]["a"]["attempt"] == 2
    assert dumped["entries"]["a"]["data"] == {"k": 2}
    assert type(dumped["entries"]["a"]["data"]) is dict
    assert dumped["entries"]["a"]["duration_ms"] == 6
    assert json.loads(json.dumps(dumped)) == dumped


async def test_write_is_a_checkpoint_under_a_one_call_budget() -> None:
    bag = OutputBag()
    with checkpoint_budget(calls=1):
        for name in ("a", "b", "c"):
            with trio.testing.assert_checkpoints():
                await bag.write(name, StageOutput.ok())
    with trio.testing.assert_no_checkpoints():
        bag.write_sync("t", StageOutput.ok())


async def test_every_write_is_a_cancellation_point_under_the_default_budget() -> None:
    bag = OutputBag()
    for i in range(2 * DEFAULT_CALLS):
        with trio.CancelScope() as scope:
            scope.cancel()
            await bag.write(f"cancelled{i}", StageOutput.ok())
        assert scope.cancelled_caught
        await bag.write(f"s{i}", StageOutput.ok())
    assert bag.keys() == [f"s{i}" for i in range(2 * DEFAULT_CALLS)]


async def test_cancelled_write_stores_nothing() -> None:
    bag = OutputBag()
    with trio.CancelScope() as scope:
        scope.cancel()
        await bag.write("s", StageOutput.ok())
    assert scope.cancelled_caught
    assert len(bag) == 0


async def test_concurrent_first_writes_one_wins() -> None:
    bag = OutputBag()
    results: list[int | str] = []

    async def writer(i: int) -> None:
        try:
            entry = await bag.write("s", StageOutput.ok({"i": i}))
        except OutputConflictError as exc:
            results.append(f"conflict@{exc.existing_attempt}")
        else:
            results.append(entry.attempt)

    async with trio.open_nursery() as nursery:
        for i in range(8):
            nursery.start_soon(writer, i)
    assert sorted(results, key=str) == [1] + ["conflict@1"] * 7


async def test_concurrent_overwrites_number_attempts_consecutively() -> None:
    bag = OutputBag()
    attempts: list[int] = []

    async def writer() -> None:
        attempts.append((await bag.write("s", StageOutput.ok(), allow_overwrite=True)).attempt)

    async with trio.open_nursery() as nursery:
        for _ in range(8):
            nursery.start_soon(writer)
    assert sorted(attempts) == list(range(1, 9))
    assert bag.get_attempt_count("s") == 8


@pytest.mark.parametrize(
    ("stage_name", "output", "error", "message"),
    [
        (None, StageOutput.ok(), TypeError, r"^stage_name must be a str, got NoneType$"),
        (3, StageOutput.ok(), TypeError, r"^stage_name must be a str, got int$"),
        ("", StageOutput.ok(), ValueError, r"^stage_name must not be empty or blank$"),
        ("\t ", StageOutput.ok(), ValueError, r"^stage_name must not be empty or blank$"),
        ("s", {"status": "ok"}, TypeError, r"^output must be a StageOutput, got dict$"),
    ],
)
async def test_bad_input(
    stage_name: object, output: object, error: type[Exception], message: str
) -> None:
    bag = OutputBag()
    with pytest.raises(error, match=message):
        await bag.write(stage_name, output)  # type: ignore[arg-type]
    with pytest.raises(error, match=message):
        bag.write_sync(stage_name, output)  # type: ignore[arg-type]
    assert len(bag) == 0


def test_output_entry_is_frozen_and_validated() -> None:
    now = datetime.now(UTC)
    entry = OutputEntry(StageOutput.ok(), 1, now, "s")
    assert [a.name for a in attrs.fields(OutputEntry)] == [
        "output",
        "attempt",
        "timestamp",
        "stage_name",
    ]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        entry.attempt = 2  # type: ignore[misc]
    with pytest.raises(TypeError, match=r"^output must be a StageOutput, got NoneType$"):
        OutputEntry(None, 1, now, "s")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^attempt must be >= 1, got 0$"):
        OutputEntry(StageOutput.ok(), 0, now, "s")
    with pytest.raises(TypeError, match=r"^attempt must be an int, got str$"):
        OutputEntry(StageOutput.ok(), "1", now, "s")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^timestamp must be a datetime, got str$"):
        OutputEntry(StageOutput.ok(), 1, "now", "s")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^stage_name must not be empty or blank$"):
        OutputEntry(StageOutput.ok(), 1, now, "")


def test_conflict_error_class_and_pickling() -> None:
    err = OutputConflictError("s", 4)
    assert isinstance(err, StageflowError)
    clone = pickle.loads(pickle.dumps(err))
    assert str(clone) == str(err)
    assert (clone.stage_name, clone.existing_attempt) == ("s", 4)


# --- properties and differential tests ------------------------------------------

_ops = st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.booleans()), max_size=25)


def _model(ops: list[tuple[str, bool]]) -> list[int | str]:
    """The expected outcome of each write: its attempt number, or the conflict message."""
    attempts: dict[str, int] = {}
    outcomes: list[int | str] = []
    for stage, overwrite in ops:
        current = attempts.get(stage)
        if current is not None and not overwrite:
            outcomes.append(
                f"Stage '{stage}' already has output (attempt {current}). "
                "Use allow_overwrite=True for retry scenarios."
            )
        else:
            attempts[stage] = (current or 0) + 1
            outcomes.append(attempts[stage])
    return outcomes


def _apply_sync(
    bag: Any, output: Any, ops: list[tuple[str, bool]], conflict: type[Exception]
) -> list[int | str]:
    outcomes: list[int | str] = []
    for stage, overwrite in ops:
        try:
            outcomes.append(bag.write_sync(stage, output, allow_overwrite=overwrite).attempt)
        except conflict as exc:
            outcomes.append(str(exc))
    return outcomes


@given(_ops)
def test_attempt_sequences_follow_the_model(ops: list[tuple[str, bool]]) -> None:
    async def main() -> list[int | str]:
        bag = OutputBag()
        outcomes: list[int | str] = []
        for stage, overwrite in ops:
            try:
                outcomes.append(
                    (await bag.write(stage, StageOutput.ok(), allow_overwrite=overwrite)).attempt
                )
            except OutputConflictError as exc:
                outcomes.append(str(exc))
        assert bag.to_dict()["total_attempts"] == sum(bag.get_attempt_count(s) for s in "abc")
        assert bag.get_retry_stages() == [e.stage_name for e in bag.entries() if e.attempt > 1]
        return outcomes

    assert trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0)) == _model(ops)


@given(_ops)
def test_attempt_sequences_match_reference(
    reference: ModuleType, ops: list[tuple[str, bool]]
) -> None:
    ref_bag = reference.context.output_bag
    ref_core = reference.core
    ours = _apply_sync(OutputBag(), StageOutput.ok(), ops, OutputConflictError)
    theirs = _apply_sync(
        ref_bag.OutputBag(), ref_core.StageOutput.ok(), ops, ref_bag.OutputConflictError
    )
    assert ours == theirs


async def test_async_write_matches_reference(reference: ModuleType) -> None:
    ref_bag = reference.context.output_bag
    ref_core = reference.core
    ours, theirs = OutputBag(), ref_bag.OutputBag()
    our_out = StageOutput.fail("boom", {"k": [1]}).with_duration(3)
    their_out = ref_core.StageOutput.fail("boom", {"k": [1]}).with_duration(3)
    plan = [("a", False), ("a", True), ("b", False), ("a", True)]
    for stage, overwrite in plan:
        mine = await ours.write(stage, our_out, allow_overwrite=overwrite)
        other = _drive(theirs.write(stage, their_out, allow_overwrite=overwrite))
        assert mine.attempt == other.attempt
    with pytest.raises(OutputConflictError) as mine_err:
        await ours.write("a", our_out)
    with pytest.raises(ref_bag.OutputConflictError) as other_err:
        _drive(theirs.write("a", their_out))
    assert str(mine_err.value) == str(other_err.value)
    assert _strip_timestamps(ours.to_dict()) == _strip_timestamps(theirs.to_dict())
    assert ours.keys() == theirs.keys()
    assert ours.get_retry_stages() == theirs.get_retry_stages()
    assert repr(ours) == repr(theirs)
    assert ours.get_value("a", "k") == theirs.get_value("a", "k")
    assert ours.get_attempt_count("a") == theirs.get_attempt_count("a") == 3
    assert ours.get_attempt_count("zz") == theirs.get_attempt_count("zz") == 0
    assert ("a" in ours) == ("a" in theirs)
    assert len(ours) == len(theirs)


def _strip_timestamps(dumped: dict[str, Any]) -> dict[str, Any]:
    for entry in dumped["entries"].values():
        assert isinstance(datetime.fromisoformat(entry.pop("timestamp")), datetime)
    return dumped


def _drive(coro: Any) -> Any:
    """Run a coroutine that never suspends (an uncontended asyncio.Lock) to completion."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    raise AssertionError("the reference coroutine suspended")


def test_status_enum_in_dump_is_the_value() -> None:
    bag = OutputBag()
    bag.write_sync("s", StageOutput(StageStatus.CANCEL))
    assert bag.to_dict()["entries"]["s"]["status"] == "cancel"
