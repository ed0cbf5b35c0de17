"""Audit 15 (core values and contexts): each test failed before its fix.

Frozen containers refilled through ``__init__``, ``PipelineContext.on_cancel`` /
``mark_canceled`` with a callback that is not callable or that raises, and
``StageError`` pickling.
"""

from __future__ import annotations

import copy
import logging
import pickle
from typing import Any

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from stageflow_trio.context.output_bag import OutputBag
from stageflow_trio.core.stage_context import StageContext
from stageflow_trio.core.stage_enums import StageKind
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.pipeline.dag import (
    UnifiedPipelineCancelled,
    UnifiedStageGraph,
    UnifiedStageSpec,
)
from stageflow_trio.stages._execution_error import StageExecutionError
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.stages.result import StageError
from stageflow_trio.testing import RecordingEventSink
from stageflow_trio.utils.frozen import FrozenDict, FrozenList

# --- Frozen containers: construction ---------------------------------------------


def test_frozen_init_none_stays_a_no_op() -> None:
    fd = FrozenDict({"a": 1})
    fd.__init__(None)  # type: ignore[misc]
    fl = FrozenList([1])
    fl.__init__()  # type: ignore[misc]
    assert (fd, fl) == ({"a": 1}, [1])


class _Upper(FrozenDict[str, Any]):
    """A subclass that transforms its input before handing it to FrozenDict."""

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__({key.upper(): value for key, value in data.items()})


def test_frozen_subclasses_still_construct_through_their_own_init() -> None:
    made = _Upper({"a": 1})
    assert made == {"A": 1}
    assert type(made) is _Upper
    assert pickle.loads(pickle.dumps(FrozenDict({"a": [1]}))) == {"a": [1]}
    assert copy.deepcopy(FrozenList([[1]])) == [[1]]


@settings(max_examples=30, deadline=None)
@given(
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=4),
    st.lists(st.integers(), max_size=4),
)
def test_frozen_containers_construct_like_dict_and_list(
    items: dict[str, int], values: list[int]
) -> None:
    assert FrozenDict(items) == items
    assert FrozenDict(list(items.items())) == items
    assert FrozenDict(iter(items.items())) == items
    assert FrozenList(values) == values
    assert FrozenList(iter(values)) == values
    assert FrozenDict.fromkeys(values) == dict.fromkeys(values)


# --- PipelineContext.on_cancel / mark_canceled -----------------------------------------


def test_on_cancel_rejects_a_callback_that_is_not_callable() -> None:
    ctx = PipelineContext()
    with pytest.raises(
        TypeError, match=r"^PipelineContext.on_cancel: callback must be callable; got NoneType$"
    ):
        ctx.on_cancel(None)  # type: ignore[arg-type]
    # Nothing was registered: cancelling still works.
    ctx.mark_canceled("stop")
    assert ctx.cancellation_reason == "stop"


def test_mark_canceled_runs_every_callback_when_one_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ctx = PipelineContext()
    calls: list[str] = []

    def broken(reason: str) -> None:
        raise RuntimeError("callback bug")

    ctx.on_cancel(broken)
    ctx.on_cancel(calls.append)
    with caplog.at_level(logging.ERROR):
        ctx.mark_canceled("user left")
    assert calls == ["user left"]
    assert (ctx.canceled, ctx.cancellation_reason) == (True, "user left")
    assert "callback bug" in caplog.text


async def test_a_raising_cancel_callback_does_not_keep_a_run_going(
    autojump_clock: trio.abc.Clock,
) -> None:
    ctx = PipelineContext.create(event_sink=RecordingEventSink())

    def broken(reason: str) -> None:
        raise RuntimeError("callback bug")

    ctx.on_cancel(broken)  # registered before the run subscribes its token

    async def slow(stage: StageContext) -> StageOutput:
        await trio.sleep(60)
        return StageOutput.ok()

    async def canceller(stage: StageContext) -> StageOutput:
        await trio.sleep(1)
        ctx.mark_canceled("user left")
        return StageOutput.ok()

    graph = UnifiedStageGraph(
        [
            UnifiedStageSpec(name="slow", runner=slow, kind=StageKind.WORK),
            UnifiedStageSpec(name="canceller", runner=canceller, kind=StageKind.WORK),
        ]
    )
    with pytest.raises(UnifiedPipelineCancelled) as info:
        await graph.run(ctx)
    assert info.value.reason == "user left"
    assert trio.current_time() == 1


# --- StageError pickling (parity.md: error classes are picklable) ---------------------


def test_stage_error_pickles_and_copies() -> None:
    err = StageError("stt", ValueError("boom"))
    for clone in (pickle.loads(pickle.dumps(err)), copy.copy(err), copy.deepcopy(err)):
        assert type(clone) is StageError
        assert str(clone) == "Stage stt failed: boom"
        assert clone.stage == "stt"
        assert type(clone.original) is ValueError
        assert str(clone.original) == "boom"


def test_stage_execution_error_pickles_with_its_recoverable_flag() -> None:
    err = StageExecutionError("llm", KeyError("k"), recoverable=True)
    clone = pickle.loads(pickle.dumps(err))
    assert type(clone) is StageExecutionError
    assert (clone.stage, clone.recoverable, str(clone)) == ("llm", True, str(err))


# --- PipelineContext.derive_for_stage argument checks ----------------------------------


@pytest.mark.parametrize("bag", [{}, None, [1]])
def test_derive_for_stage_names_a_bag_that_is_not_an_output_bag(bag: object) -> None:
    with pytest.raises(
        TypeError,
        match=r"^PipelineContext.derive_for_stage: output_bag must be an OutputBag"
        rf" \(anything with outputs\(\)\); got {type(bag).__name__}$",
    ):
        PipelineContext().derive_for_stage("s", bag)  # type: ignore[arg-type]


def test_derive_for_stage_names_a_snapshot_that_is_not_a_snapshot() -> None:
    # It used to be a bare AssertionError (and nothing at all under python -O).
    with pytest.raises(
        TypeError,
        match=r"^PipelineContext.derive_for_stage: snapshot must be a ContextSnapshot"
        r" or None; got dict$",
    ):
        PipelineContext().derive_for_stage("s", OutputBag(), {"a": 1})  # type: ignore[arg-type]


def test_derive_for_stage_still_takes_both_argument_orders() -> None:
    ctx = PipelineContext.create(input_text="hi")
    snap = ctx.to_snapshot()
    bag = OutputBag()
    bag.write_sync("a", StageOutput.ok(x=1))
    new_order = ctx.derive_for_stage("b", bag, snap, declared_deps={"a"})
    old_order = ctx.derive_for_stage("b", snap, bag, declared_deps={"a"})
    for derived in (new_order, old_order):
        assert derived.snapshot is snap
        assert derived.inputs.get_from("a", "x") == 1
    assert ctx.derive_for_stage("b", bag).snapshot.input_text == "hi"


# --- deepcopy of frozen containers that refer back to themselves -----------------------


def test_deepcopy_of_a_self_referring_frozen_list_keeps_the_cycle() -> None:
    inner: list[Any] = []
    outer: FrozenList[Any] = FrozenList([inner, inner])
    inner.append(outer)
    clone = copy.deepcopy(outer)
    assert type(clone) is FrozenList
    assert clone[0] is clone[1]
    assert clone[0][0] is clone  # a plain list's deepcopy keeps the cycle too
    assert clone[0] is not inner


def test_deepcopy_of_a_self_referring_frozen_dict_keeps_the_cycle() -> None:
    inner: dict[str, Any] = {}
    outer: FrozenDict[str, Any] = FrozenDict({"k": inner, "n": [1]})
    inner["back"] = outer
    clone = copy.deepcopy(outer)
    assert type(clone) is FrozenDict
    assert clone["k"]["back"] is clone
    assert clone["n"] == [1]
    assert clone["n"] is not outer["n"]
    with pytest.raises(TypeError, match="FrozenDict is immutable"):
        clone["x"] = 1


def test_deepcopy_shares_one_copy_of_a_repeated_frozen_container() -> None:
    shared = FrozenDict({"a": [1]})
    pair: list[Any] = copy.deepcopy([shared, shared, FrozenList([shared])])
    assert pair[0] is pair[1] is pair[2][0]
    assert pair[0] == {"a": [1]}
    assert pair[0] is not shared


def test_mark_canceled_tells_subscribers_when_the_flag_was_set_by_assignment() -> None:
    ctx = PipelineContext()
    told: list[str] = []
    ctx.on_cancel(told.append)
    ctx.canceled = True  # a plain field: assigning it used to swallow the next mark
    ctx.mark_canceled("shutdown")
    assert told == ["shutdown"]
    ctx.mark_canceled("again")
    assert told == ["shutdown"]
    assert ctx.cancellation_reason == "shutdown"
