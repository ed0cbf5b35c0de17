"""Audit 16: contexts, stages, core values and contracts under long use, many tasks and failure.

Each test here failed on the code before its fix.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import attrs
import pytest

from stageflow_trio.context import (
    ContextSnapshot,
    Conversation,
    ExtensionBundle,
    Message,
    TruncationEvent,
    TruncationTracker,
)
from stageflow_trio.events.sink import NoOpEventSink
from stageflow_trio.stages import PipelineContext
from stageflow_trio.stages.errors import with_error_handling


def _assert_no_stray_context(error: BaseException) -> None:
    """The traceback a user sees holds only ``error``: no "During handling of ..." above it."""
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__


@pytest.mark.parametrize(
    ("parse", "message"),
    [
        (
            lambda: ContextSnapshot.from_dict({"conversation": {"messages": ["hi"]}}),
            "conversation.messages[0] must be a mapping, got str",
        ),
        (
            lambda: Conversation.from_dict({"messages": [5]}),
            "messages[0] must be a mapping, got int",
        ),
        (lambda: Message.from_dict(None), "data must be a mapping, got NoneType"),  # type: ignore[arg-type]
        (
            # The legacy flat shape goes through the same message parser.
            lambda: ContextSnapshot.from_dict({"messages": [["user", "hi"]]}),
            "messages[0] must be a mapping, got list",
        ),
    ],
)
def test_a_message_that_is_not_a_mapping_is_reported_without_the_failed_lookup(
    parse: Any, message: str
) -> None:
    # Before: the TypeError came chained to the parser's own failed lookup
    # ("During handling of the above exception ... string indices must be integers").
    with pytest.raises(TypeError) as caught:
        parse()
    assert str(caught.value) == message
    _assert_no_stray_context(caught.value)


@attrs.frozen
class _Unresolvable(ExtensionBundle):
    # An annotation naming a type that cannot be resolved: from_dict falls back to
    # cls(**data), the reference's behaviour.
    level: NotImportableHere  # type: ignore[name-defined] # noqa: F821


def test_extension_fallback_error_is_not_chained_to_the_annotation_name_error() -> None:
    assert _Unresolvable.from_dict({"level": "b2"}) == _Unresolvable(level="b2")
    # Before: the class's own TypeError came "during handling of" a NameError about
    # `NotImportableHere`, which says nothing about the user's mistake (the key).
    with pytest.raises(TypeError, match="unexpected keyword argument 'lvl'") as caught:
        _Unresolvable.from_dict({"lvl": "b2"})
    _assert_no_stray_context(caught.value)


def test_truncation_total_is_a_running_total_not_a_scan_of_the_history(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A tracker lives as long as its ENRICH stage's service; a stage that reads the
    # total after each cut used to rescan every event so far (quadratic overall).
    tracker = TruncationTracker()
    for index in range(2_000):
        tracker.record_truncation(
            original_tokens=100 + index % 7,
            truncated_tokens=40,
            strategy="tail",
            content_type="document",
            reason="window",
        )
    expected = sum(event.tokens_removed for event in tracker.events)
    reads = 0

    def counted(event: TruncationEvent) -> int:
        nonlocal reads
        reads += 1
        return event.original_tokens - event.truncated_tokens

    monkeypatch.setattr(TruncationEvent, "tokens_removed", property(counted))
    assert tracker.total_tokens_removed == expected
    assert tracker.get_summary()["total_tokens_removed"] == expected
    assert reads == 0


async def test_with_error_handling_keeps_the_decorated_signature() -> None:
    class Summarize:
        @with_error_handling(stage_name="summarize")
        async def run(self, ctx: PipelineContext) -> dict[str, str]:
            return {"summary": "short"}

    ctx = PipelineContext.create(event_sink=NoOpEventSink())
    result = await Summarize().run(ctx)
    assert result.data == {"summary": "short"}
    if TYPE_CHECKING:
        # The package's mypy run checks this file (strict: an unused ignore is an
        # error). Before, the wrapper took (*Any, **Any): this call type-checked,
        # so the ignore was unused; now the wrong argument is caught.
        await Summarize().run("not a context")  # type: ignore[arg-type]


def test_unsubscribing_a_run_from_a_shared_context_does_not_scan_the_others() -> None:
    """Each graph run started with a PipelineContext subscribes to its cancellation and
    unsubscribes when it ends: with many concurrent runs on one context, a removal that
    compared the callback with every earlier one made their ends quadratic."""
    from stageflow_trio.stages import PipelineContext

    compared = 0

    class Callback:
        def __init__(self, seen: list[int], ident: int) -> None:
            self.seen, self.ident = seen, ident

        def __call__(self, reason: str) -> None:
            self.seen.append(self.ident)

        def __eq__(self, other: object) -> bool:
            nonlocal compared
            compared += 1
            return self is other

        __hash__ = object.__hash__

    ctx = PipelineContext.create(topology="t")
    seen: list[int] = []
    removers = [ctx.on_cancel(Callback(seen, i)) for i in range(500)]
    for remove in reversed(removers[100:]):  # the newest runs end first
        remove()
        remove()  # harmless twice
    assert compared == 0
    ctx.mark_canceled("stop")
    assert seen == list(range(100))  # the rest told once, in subscription order


def test_fork_with_an_unhashable_inherited_key_names_inherit_data() -> None:
    from stageflow_trio.stages import PipelineContext

    ctx = PipelineContext.create(topology="t", data={"a": 1})
    with pytest.raises(TypeError, match=r"^PipelineContext\.fork: inherit_data must hold") as info:
        ctx.fork(uuid.uuid4(), "stage", uuid.uuid4(), inherit_data=[["a"]])  # type: ignore[list-item]
    assert "unhashable type: 'list'" in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__
