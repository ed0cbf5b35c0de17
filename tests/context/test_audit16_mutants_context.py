"""Audit 16, mutation pass: contexts, bags, stage outputs and PipelineContext.

Each test here kills a mutant of the package (named in its docstring) that the
rest of tests/context, tests/core and tests/stages let survive.
"""

from __future__ import annotations

import dataclasses
import enum
import uuid
from datetime import datetime
from typing import Any

import attrs
import pytest

from stageflow_trio._frozen import frozen_compat
from stageflow_trio.context import ContextBag, ContextSnapshot, DocumentEnrichment, RunIdentity
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.events.sink import NoOpEventSink
from stageflow_trio.stages.context import PipelineContext, StageEventTemplate, stage_event_key
from stageflow_trio.utils.frozen import FrozenDict, FrozenList


class _Key(enum.StrEnum):
    TRANSCRIPT = "transcript"


def test_a_frozen_exception_refuses_deleting_a_field() -> None:
    """Kills ``_frozen_delattr``: ``and`` -> ``or`` (any attribute of an exception deletable)."""

    @frozen_compat
    @attrs.frozen(auto_exc=True)
    class Boom(Exception):
        code: int

    error = Boom(3)
    with pytest.raises(dataclasses.FrozenInstanceError, match=r"^cannot delete field 'code'$"):
        del error.code
    assert error.code == 3


async def test_context_bag_takes_a_str_subclass_key() -> None:
    """Kills ``ContextBag.write``: the key check's ``and`` -> ``or`` (a StrEnum key refused)."""
    bag = ContextBag()
    await bag.write(_Key.TRANSCRIPT, "hello", "stt")
    assert bag.read("transcript") == "hello"
    assert bag.get_writer("transcript") == "stt"


def _recorded(ctx: PipelineContext, **kwargs: Any) -> dict[str, Any]:
    sink = _ListSink()
    ctx.event_sink = sink
    ctx.record_stage_event(**kwargs)
    ((_, data),) = sink.events
    return data


class _ListSink(NoOpEventSink):
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        self.events.append((type, dict(data or {})))


def test_stage_event_template_gives_record_stage_events_data_and_follows_the_fields() -> None:
    """Kills ``StageEventTemplate.data``: the key check negated, and ``return None``."""
    ctx = PipelineContext(
        pipeline_run_id=uuid.UUID(int=1),
        request_id=uuid.UUID(int=2),
        user_id=uuid.UUID(int=3),
        topology="chat_fast",
        execution_mode="practice",
        event_sink=NoOpEventSink(),
    )
    template = StageEventTemplate()
    first = template.data(stage_event_key(ctx), "stt", "completed", {"n": 1}, 7)
    expected = _recorded(ctx, stage="stt", status="completed", payload={"duration_ms": 7, "n": 1})
    assert datetime.fromisoformat(first.pop("timestamp")).tzinfo is not None
    expected.pop("timestamp")
    assert first == expected
    assert list(first) == list(expected)
    # A stage assigns to its context: the next event carries the new values.
    ctx.topology = "voice_fast"
    ctx.request_id = uuid.UUID(int=9)
    second = template.data(stage_event_key(ctx), "llm", "started", None)
    assert second["topology"] == "voice_fast"
    assert second["request_id"] == str(uuid.UUID(int=9))
    assert second["stage"] == "llm"
    assert "duration_ms" not in second


def test_stage_event_template_for_status_is_the_fill_data_without_the_per_event_keys() -> None:
    """Kills ``StageEventTemplate.for_status``: status not set, ``timed`` negated, run id dropped."""
    ctx = PipelineContext(pipeline_run_id=uuid.UUID(int=1), event_sink=NoOpEventSink())
    template = StageEventTemplate()
    template.data(stage_event_key(ctx), "stt", "started", None)
    filled = template.fill("stt", "completed", None, 5)
    timed = template.for_status("completed", timed=True)
    assert timed == {**filled, "stage": None, "timestamp": None, "duration_ms": None}
    assert timed["pipeline_run_id"] == str(uuid.UUID(int=1))
    untimed = template.for_status("skipped", timed=False)
    assert "duration_ms" not in untimed
    assert untimed["status"] == "skipped"
    # Without a run id there is no pipeline_run_id key at all.
    bare = StageEventTemplate()
    bare.data(stage_event_key(PipelineContext(event_sink=NoOpEventSink())), "s", "ok", None)
    assert "pipeline_run_id" not in bare.for_status("ok", timed=False)
    assert "pipeline_run_id" not in bare.fill("s", "ok", None)


def test_an_id_read_with_hyphens_out_of_place_is_written_back_canonical() -> None:
    """Kills ``_uuid_text``: the hyphen-position check ``==`` -> ``!=`` (the odd text reused)."""
    odd = "1234-5678-1234-5678-1234567812345678"  # 36 characters, 4 hyphens, wrong places
    identity = RunIdentity.from_dict({"request_id": odd})
    expected = str(uuid.UUID(odd))
    assert identity.to_dict()["request_id"] == expected
    assert ContextSnapshot.from_dict({"run_id": {"user_id": odd}}).to_dict()["user_id"] == expected


def test_callbacks_get_the_kept_reason_not_the_latest() -> None:
    """Kills ``PipelineContext.mark_canceled``: the kept reason not passed to the callbacks."""
    ctx = PipelineContext(cancellation_reason="preset", event_sink=NoOpEventSink())
    told: list[str] = []
    ctx.on_cancel(told.append)
    ctx.mark_canceled("later")
    assert ctx.cancellation_reason == "preset"
    assert told == ["preset"]


def _nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels):
        value = {"a": value}
    return value


def test_blocks_given_as_a_tuple_have_the_nesting_limit_of_a_list() -> None:
    """Kills ``_mapping_list``'s slow path: the depth budget ``_MAX_DEPTH - 1`` -> ``_MAX_DEPTH``."""
    deepest = max(
        levels
        for levels in range(95, 101)
        if _accepts(lambda levels=levels: DocumentEnrichment(blocks=[_nested(levels)]))
    )
    assert _accepts(lambda: DocumentEnrichment(blocks=(_nested(deepest),)))
    with pytest.raises(ValueError, match="nest"):
        DocumentEnrichment(blocks=(_nested(deepest + 1),))


def _accepts(build: Any) -> bool:
    try:
        build()
    except ValueError:
        return False
    return True


def test_a_frozen_list_of_shallow_frozen_dicts_is_frozen_deeply() -> None:
    """Kills ``_mapping_list``'s shared fast path: ``or`` -> ``and`` (a mutable inner list kept)."""
    blocks = FrozenList([FrozenDict({"lines": ["a", "b"]})])
    document = DocumentEnrichment(blocks=blocks)
    assert document.blocks == [{"lines": ["a", "b"]}]
    assert isinstance(document.blocks[0]["lines"], FrozenList)
    hash(document)


class _TaggedSnapshot(ContextSnapshot[Any]):
    pass


def test_from_dict_on_a_subclass_builds_the_subclass() -> None:
    """Kills ``ContextSnapshot.from_dict``: the subclass test negated (a base instance returned)."""
    data = ContextSnapshot(input_text="hi", topology="chat_fast").to_dict()
    snapshot = _TaggedSnapshot.from_dict(data)
    assert type(snapshot) is _TaggedSnapshot
    assert snapshot.input_text == "hi"
    assert type(ContextSnapshot.from_dict(data)) is ContextSnapshot
    assert snapshot.to_dict()["created_at"] == data["created_at"]


def test_register_cleanup_hands_the_callback_to_the_runs_registry() -> None:
    """Kills ``StageContext.register_cleanup``: ``is None`` -> ``is not None``."""
    registered: list[tuple[object, str | None]] = []

    class _Registry:
        def register(self, callback: Any, *, name: str | None = None) -> None:
            registered.append((callback, name))

    async def cleanup() -> None:
        pass

    base = PipelineContext(event_sink=NoOpEventSink()).derive_root_stage_context()
    with pytest.raises(RuntimeError, match="no cleanup_registry"):
        base.register_cleanup(cleanup)
    attached = attrs.evolve(base, cleanup_registry=_Registry())
    attached.register_cleanup(cleanup, name="close")
    assert registered == [(cleanup, "close")]


@pytest.mark.parametrize("factory", [StageOutput.skip, StageOutput.cancel])
def test_skip_and_cancel_refuse_a_version_that_is_not_text(factory: Any) -> None:
    """Kills ``StageOutput._with_reason``: the ``version`` check dropped."""
    with pytest.raises(TypeError, match="version"):
        factory("why", version=2)
    assert factory("why", version="v2").version == "v2"
