"""Audit 22, second pass: the branches coverage still showed after the first pass.

Some were reached only by Hypothesis's random examples (so the total drifted from
run to run); the rest nobody reached. Each test here names the lines it pins
and reaches them deterministically.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import uuid
from collections.abc import Iterator, Mapping
from types import MappingProxyType, SimpleNamespace
from typing import Any

import attrs
import pydantic
import pytest
import trio
import trio.testing

from stageflow_trio.cli.lint import _cycle_from
from stageflow_trio.context import ContextSnapshot, Conversation, Message
from stageflow_trio.context._codec import _MAX_DEPTH, _freeze_mapping
from stageflow_trio.context.extensions import _serialize_value
from stageflow_trio.contracts._models import validate
from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.core.stage_enums import StageKind
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.helpers.guardrails import ContentFilter
from stageflow_trio.helpers.streaming import ChunkQueue
from stageflow_trio.pipeline.cancellation import CancellationToken
from stageflow_trio.pipeline.dag import UnifiedStageExecutionError, UnifiedStageGraph
from stageflow_trio.pipeline.guard_retry import GuardRetryPolicy, GuardRetryStrategy
from stageflow_trio.testing import RecordingEventSink
from stageflow_trio.utils.frozen import FrozenDict, FrozenList
from tests.fakes import import_reference
from tests.pipeline.graph_helpers import spec, stage_ctx
from tests.tools.test_audit12_handler_output import run_ours, run_reference

# --- context/_codec.py: the freezers' error paths and sharing -------------------------------


def test_an_unhashable_leaf_is_named_by_its_path_past_a_shared_list() -> None:
    # _codec.py 117 (a node met twice on the path search), 121->112 (an atom is not
    # descended into), 182 (a Mapping that is not a dict), 184 (the set refused).
    shared = [1]
    value = {"first": MappingProxyType({"bad": {1, 2}}), "a": shared, "b": shared}
    with pytest.raises(TypeError, match=r"^metadata\.first\.bad must be a dict, a list"):
        ContextSnapshot(metadata=value)


class _FreshSets(Mapping[str, Any]):
    """A mapping that makes a new set on every read: the path search cannot find it again."""

    def __getitem__(self, key: str) -> Any:
        if key != "x":
            raise KeyError(key)
        return {1}

    def __iter__(self) -> Iterator[str]:
        return iter(["x"])

    def __len__(self) -> int:
        return 1


def test_an_unhashable_leaf_that_cannot_be_found_again_names_the_field() -> None:
    # _codec.py 126: the leaf is not in the value any more; the whole field is named,
    # and 296-299 (a non-dict Mapping as the field itself).
    with pytest.raises(TypeError, match=r"^metadata must be a dict, a list or an immutable"):
        _freeze_mapping(_FreshSets(), "metadata")


def test_a_cycle_past_a_non_container_leaf_is_reported_as_a_cycle() -> None:
    # _codec.py 137: an object that is no container is not descended into.
    value: dict[str, Any] = {"leaf": object()}
    value["self"] = value
    with pytest.raises(ValueError, match=r"^metadata contains a reference cycle$"):
        ContextSnapshot(metadata=value)


def _frozen_chain(levels: int) -> FrozenDict[str, Any]:
    value: FrozenDict[str, Any] = FrozenDict({"leaf": 1})
    for _ in range(levels - 1):
        value = FrozenDict({"x": value})
    return value


def test_a_frozen_mapping_nested_too_deep_is_refused_not_shared() -> None:
    # _codec.py 210: the sharing check counts depth as freezing does.
    assert _freeze_mapping(_frozen_chain(_MAX_DEPTH), "metadata")["x"] is not None
    with pytest.raises(ValueError, match=rf"^metadata nests deeper than {_MAX_DEPTH} levels$"):
        _freeze_mapping(_frozen_chain(_MAX_DEPTH + 1), "metadata")


def test_a_deep_frozen_mapping_inside_a_plain_dict_is_shared_not_copied() -> None:
    # _codec.py 221.
    inner = FrozenDict({"b": FrozenDict({"c": 1})})
    snapshot = ContextSnapshot(metadata={"a": inner, "n": 1})
    assert snapshot.metadata["a"] is inner


def test_a_frozen_mapping_holding_a_mutable_list_is_copied_and_the_list_frozen() -> None:
    # _codec.py 210: not deeply frozen, so not shared.
    given = FrozenDict({"a": FrozenDict({"b": [1]})})
    snapshot = ContextSnapshot(metadata={"x": given})
    assert snapshot.metadata["x"] is not given
    assert type(snapshot.metadata["x"]["a"]["b"]) is FrozenList


def test_a_conversation_names_the_message_that_cannot_be_frozen() -> None:
    # _codec.py 329-330.
    with pytest.raises(TypeError, match=r"^messages\[1\] must be a dict, a list or an immutable"):
        Conversation(messages=[Message(role="user", content="hi"), {1}])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"^messages must be a list, got int$"):
        Conversation(messages=5)  # type: ignore[arg-type]


# --- context/_parse.py -----------------------------------------------------------------------


class _Text(str):
    __slots__ = ()


def test_a_message_from_dict_takes_a_datetime_and_a_str_subclass() -> None:
    # _parse.py 159 (a datetime given as itself), 180 (a str subclass as role).
    when = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    message = Message.from_dict({"role": _Text("user"), "content": "hi", "timestamp": when})
    assert message.timestamp is when
    assert message.role == "user"
    with pytest.raises(TypeError, match=r"^timestamp must be an ISO 8601 string or None, got int"):
        Message.from_dict({"role": "user", "content": "hi", "timestamp": 0})


def test_a_snapshot_refuses_a_duration_that_is_not_an_int() -> None:
    # _parse.py 187.
    with pytest.raises(
        TypeError, match=r"^input_audio_duration_ms must be an int or None, got str"
    ):
        ContextSnapshot(input_audio_duration_ms="5")  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"^input_audio_duration_ms must be an int or None, got bool"
    ):
        ContextSnapshot(input_audio_duration_ms=True)
    # 187: an int subclass (not a bool) is a duration.
    assert ContextSnapshot(input_audio_duration_ms=_Int(5)).input_audio_duration_ms == 5


class _Int(int):
    __slots__ = ()


# --- contracts/_models.py: the lax hooks' refusals, as pydantic's ------------------------------


class _P(pydantic.BaseModel):
    a: int = 0


@attrs.frozen
class _Fields:
    d: dt.date = dt.date(2000, 1, 1)
    t: dt.time = dt.time(0)
    td: dt.timedelta = dt.timedelta(0)
    u: int | str = 0
    p: _P | None = None
    o: int | str | None = 0


_TYPES: dict[str, Any] = {"d": dt.date, "t": dt.time, "td": dt.timedelta, "u": int | str}


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("d", [1], "expected date, got list"),  # 162->167
        ("t", [1], "expected time, got list"),  # 174->179
        ("td", "abc", "expected timedelta, got str"),  # 188
        ("td", math.nan, "expected timedelta, got float"),  # 188
        ("u", None, "expected int | str, got NoneType"),  # 231-233
    ],
)
def test_lax_date_time_timedelta_and_union_refuse_what_pydantic_refuses(
    field: str, value: Any, expected: str
) -> None:
    definitions: dict[str, Any] = {field: (_TYPES[field], None)}
    with pytest.raises(pydantic.ValidationError):
        pydantic.create_model("Q", **definitions).model_validate({field: value})
    with pytest.raises(ValueError, match=rf"^_Fields validation failed: {expected}"):
        validate(_Fields, {field: value}, strict=False, context=None)


def test_an_optional_union_member_takes_none() -> None:
    # _models.py 232 (a union of one member and None is cattrs's own Optional).
    assert validate(_Fields, {"o": None}, strict=False, context=None).o is None
    assert validate(_Fields, {"o": "3"}, strict=False, context=None).o == "3"


def test_a_pydantic_model_field_of_an_attrs_model_is_validated_by_pydantic() -> None:
    # _models.py 280-283: lax or strict, as pydantic's own model_validate.
    lax = validate(_Fields, {"p": {"a": "2"}}, strict=False, context=None)
    assert lax.p == _P(a=2)
    with pytest.raises(ValueError, match="validation error for _P"):
        validate(_Fields, {"p": {"a": "2"}}, strict=True, context=None)


# --- _engine/_scheduler.py -------------------------------------------------------------------


async def test_a_stray_cancelled_before_the_other_roots_start_keeps_them_from_starting(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # _scheduler.py 290: the first root runs in the nursery's body and raises a saved
    # Cancelled before yielding; the stop it causes reaches the second root's task
    # before its first step, so that stage never starts (and sends nothing).
    with trio.move_on_after(1) as scope:
        try:
            await trio.sleep(2)
        except trio.Cancelled as exc:
            saved = exc
            raise
    assert scope.cancelled_caught
    ran: list[str] = []

    async def first(ctx: StageContext) -> StageOutput:
        raise saved

    async def second(ctx: StageContext) -> StageOutput:
        ran.append("second")
        return StageOutput.ok()

    sink = RecordingEventSink()
    graph = UnifiedStageGraph([spec("first", first), spec("second", second)])
    with pytest.raises(trio.Cancelled) as raised:
        await graph.run(stage_ctx(sink))
    assert raised.value is saved
    assert ran == []
    assert not any(t.startswith("stage.second.") for t in sink.types())
    assert sink.types()[-1] == "pipeline_cancelled"


# --- reached only by Hypothesis's examples before (the total drifted with them) ---------------


@pytest.mark.parametrize("key", ["pipeline_run_id", "request_id", "session_id", "user_id"])
def test_a_flat_snapshot_names_its_bad_id(key: str) -> None:
    # identity.py 217-220: each id of a legacy flat snapshot is checked in turn.
    with pytest.raises(ValueError, match=rf"^{key} must be a UUID string, got 'nope'$"):
        ContextSnapshot.from_dict({key: "nope"})


def test_an_upper_case_run_id_is_written_back_in_its_canonical_form() -> None:
    # _parse.py 98->101: the text read is kept only if it is str(uuid).
    run_id = uuid.uuid4()
    snapshot = ContextSnapshot.from_dict({"run_id": {"pipeline_run_id": str(run_id).upper()}})
    assert snapshot.to_dict()["run_id"]["pipeline_run_id"] == str(run_id)


@pytest.mark.parametrize(
    ("given", "written"),
    [
        ("2024-01-02T03:04:05.123456", "2024-01-02T03:04:05.123456"),
        ("2024-01-02T03:04:05", "2024-01-02T03:04:05"),
        ("2024-01-02T03:04:05.000000", "2024-01-02T03:04:05"),
        ("2024-01-02 03:04:05.123456", "2024-01-02T03:04:05.123456"),
        ("2024-01-02 03:04:05", "2024-01-02T03:04:05"),
    ],
)
def test_a_naive_message_timestamp_is_written_back_as_isoformat_gives_it(
    given: str, written: str
) -> None:
    # _parse.py 135-143: the naive forms (19 and 26 characters) of the canonical check.
    message = Message.from_dict({"role": "user", "content": "hi", "timestamp": given})
    assert message.to_dict()["timestamp"] == written


def test_an_extension_value_of_no_known_kind_is_kept_as_given() -> None:
    # extensions.py 76.
    value = decimal.Decimal("1.5")
    assert _serialize_value(value) is value
    assert _serialize_value([value, frozenset({1})]) == [value, frozenset({1})]


def test_lint_finds_only_the_cycles_through_the_start() -> None:
    # cli/lint.py 136-149: a dead end, a missing stage and a cycle elsewhere are walked past.
    depends_on = {"a": ["b", "x"], "b": ["c"], "c": ["b", "d"], "d": []}
    assert _cycle_from("a", depends_on) is None
    assert _cycle_from("b", depends_on) == ["b", "c", "b"]
    assert _cycle_from("a", {"a": ["d", "b"], "b": ["a"], "d": []}) == ["a", "b", "a"]


async def test_a_token_wakes_every_task_waiting_for_it() -> None:
    # _token.py 183->185: the second waiter shares the first one's event.
    token = CancellationToken()
    woken: list[int] = []

    async def waiter(n: int) -> None:
        await token.wait()
        woken.append(n)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter, 1)
        nursery.start_soon(waiter, 2)
        await trio.testing.wait_all_tasks_blocked()
        token.cancel("done")
    assert sorted(woken) == [1, 2]


def test_a_profane_word_inside_a_longer_word_is_not_reported() -> None:
    # guardrails.py 559->555.
    content_filter = ContentFilter(profanity_list={"hell"})
    assert content_filter.check("shell and shellfish").passed
    assert [v.metadata for v in content_filter.check("shell, hell").violations] == [
        {"word": "hell"}
    ]


async def test_every_consumer_parked_on_a_closing_queue_gets_the_end() -> None:
    # _chunk_queue.py 250: close() queues one end marker; the other parked get sees
    # the closed channel and ends the same way.
    queue: ChunkQueue[int] = ChunkQueue(max_size=4)
    got: list[int | None] = []

    async def consume() -> None:
        got.append(await queue.get())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consume)
        nursery.start_soon(consume)
        await trio.testing.wait_all_tasks_blocked()
        await queue.close()
    assert got == [None, None]


_SUMMARY_FIELDS = ("success", "data", "error", "artifacts", "undo_metadata")


@pytest.mark.parametrize(
    ("fields", "undoable", "emit", "missing"),
    [
        # 218, 219, 221, 222: the tool.completed summary reads them in this order.
        *[(_SUMMARY_FIELDS[:n], False, True, _SUMMARY_FIELDS[n]) for n in range(1, 5)],
        # 237: no summary; an undoable tool's undo data is read next.
        (("success",), True, False, "undo_metadata"),
    ],
    ids=str,
)
def test_a_handler_output_missing_a_field_fails_on_it_as_in_the_reference(
    fields: tuple[str, ...], undoable: bool, emit: bool, missing: str
) -> None:
    # executor_v2.py 218-222, 237: each attribute read in the reference's order.
    values: dict[str, Any] = {
        "success": True,
        "data": 1,
        "error": None,
        "artifacts": [],
        "undo_metadata": None,
    }
    output = SimpleNamespace(**{name: values[name] for name in fields})
    ours = run_ours(output, undoable=undoable, emit=emit)
    assert ours == run_reference(import_reference(), output, undoable=undoable, emit=emit)
    assert ours[0][0] == "ToolExecutionError"
    assert ours[0][3] == f"'types.SimpleNamespace' object has no attribute '{missing}'"


async def test_a_failing_stage_without_a_retry_policy_fails_a_run_that_has_retries(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # _unified_run.py 679->684: the guard retry strategy has no policy for "other".
    ran: list[str] = []

    async def draft(ctx: StageContext) -> StageOutput:
        ran.append("draft")
        return StageOutput.ok()

    async def other(ctx: StageContext) -> StageOutput:
        ran.append("other")
        return StageOutput.fail(error="other says no")

    policy = GuardRetryPolicy(retry_stage="draft", max_attempts=3)
    graph = UnifiedStageGraph(
        [
            spec("draft", draft),
            spec("guard", draft, ["draft"], kind=StageKind.GUARD),
            spec("other", other, ["draft"]),
        ],
        guard_retry_strategy=GuardRetryStrategy({"guard": policy}),
    )
    with pytest.raises(UnifiedStageExecutionError) as raised:
        await graph.run(stage_ctx())
    assert raised.value.stage == "other"
    assert str(raised.value.original) == "other says no"
    assert ran.count("other") == 1
