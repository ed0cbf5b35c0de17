"""Memory helpers: MemoryEntry, MemoryConfig, InMemoryStore's filtering, the two stages."""

from __future__ import annotations

import asyncio
import importlib
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any
from uuid import UUID, uuid4

import attrs
import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio.context import ContextSnapshot, RunIdentity
from stageflow_trio.core import StageKind, StageOutput, StageStatus
from stageflow_trio.helpers.memory import (
    InMemoryStore,
    MemoryConfig,
    MemoryEntry,
    MemoryFetchStage,
    MemoryWriteStage,
)
from stageflow_trio.testing import create_test_stage_context

SESSION = UUID("00000000-0000-4000-8000-000000000001")
OTHER = UUID("00000000-0000-4000-8000-000000000002")
T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def ref_memory(reference: ModuleType) -> ModuleType:
    return importlib.import_module("stageflow.helpers.memory")


def entry(n: int, content: str = "x" * 8, role: str = "user", **kwargs: Any) -> MemoryEntry:
    kwargs.setdefault("timestamp", T0 + timedelta(seconds=n))
    return MemoryEntry(id=f"e{n}", session_id=SESSION, role=role, content=content, **kwargs)


async def filled(entries: list[MemoryEntry]) -> InMemoryStore:
    store = InMemoryStore()
    for item in entries:
        await store.write(item)
    return store


def ids(entries: list[MemoryEntry]) -> list[str]:
    return [item.id for item in entries]


# --- MemoryEntry / MemoryConfig ---------------------------------------------------------


def test_entry_round_trip_and_dict_shape() -> None:
    item = MemoryEntry(
        id="a", session_id=SESSION, role="user", content="hi", timestamp=T0, metadata={"k": 1}
    )
    assert item.to_dict() == {
        "id": "a",
        "session_id": "00000000-0000-4000-8000-000000000001",
        "role": "user",
        "content": "hi",
        "timestamp": "2024-01-01T00:00:00+00:00",
        "metadata": {"k": 1},
    }
    assert MemoryEntry.from_dict(item.to_dict()) == item
    raw = {"id": "a", "session_id": SESSION, "role": "user", "content": "hi", "timestamp": T0}
    assert MemoryEntry.from_dict(raw) == attrs.evolve(item, metadata={})


def test_entry_timestamp_defaults_to_now_utc() -> None:
    before = datetime.now(UTC)
    item = MemoryEntry(id="a", session_id=SESSION, role="user", content="hi")
    assert before <= item.timestamp <= datetime.now(UTC)
    assert item.timestamp.tzinfo is UTC


def test_entry_is_frozen_with_read_only_metadata() -> None:
    item = entry(1, metadata={"k": 1})
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        item.content = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        item.metadata["k"] = 2
    assert type(item.to_dict()["metadata"]) is dict


def test_config_defaults() -> None:
    assert MemoryConfig() == MemoryConfig(
        max_entries=20, max_tokens=4000, include_system=True, recency_window_seconds=0
    )


def _untyped(function: Any) -> Any:
    return function


@pytest.mark.parametrize(
    ("make", "exception", "message"),
    [
        (
            lambda: _untyped(MemoryEntry)(id=1, session_id=SESSION, role="u", content="c"),
            TypeError,
            r"^MemoryEntry: id must be a str; got int$",
        ),
        (
            lambda: _untyped(MemoryEntry)(id="a", session_id=str(SESSION), role="u", content="c"),
            TypeError,
            r"^MemoryEntry: session_id must be a UUID; got str$",
        ),
        (
            lambda: _untyped(MemoryEntry)(id="a", session_id=SESSION, role=None, content="c"),
            TypeError,
            r"^MemoryEntry: role must be a str; got NoneType$",
        ),
        (
            lambda: _untyped(MemoryEntry)(id="a", session_id=SESSION, role="u", content=5),
            TypeError,
            r"^MemoryEntry: content must be a str; got int$",
        ),
        (
            lambda: _untyped(MemoryEntry)(
                id="a", session_id=SESSION, role="u", content="c", timestamp="x"
            ),
            TypeError,
            r"^MemoryEntry: timestamp must be a datetime; got str$",
        ),
        (
            lambda: _untyped(MemoryEntry.from_dict)({**entry(1).to_dict(), "session_id": "nope"}),
            ValueError,
            r"^MemoryEntry.from_dict: session_id must be a UUID string, got 'nope'$",
        ),
        (
            lambda: _untyped(MemoryConfig)(max_entries=-1),
            ValueError,
            r"^MemoryConfig: max_entries must be at least 0; got -1$",
        ),
        (
            lambda: _untyped(MemoryConfig)(max_tokens=1.5),
            TypeError,
            r"^MemoryConfig: max_tokens must be an int; got float$",
        ),
        (
            lambda: _untyped(MemoryConfig)(include_system="no"),
            TypeError,
            r"^MemoryConfig: include_system must be a bool; got str$",
        ),
        (
            lambda: _untyped(MemoryConfig)(recency_window_seconds=True),
            TypeError,
            r"^MemoryConfig: recency_window_seconds must be an int; got bool$",
        ),
        (
            lambda: _untyped(MemoryFetchStage)(object()),
            TypeError,
            r"^MemoryFetchStage: store must be a MemoryStore \(async fetch, write, clear\); got object$",
        ),
        (
            lambda: _untyped(MemoryFetchStage)(InMemoryStore(), {"max_entries": 1}),
            TypeError,
            r"^MemoryFetchStage: config must be a MemoryConfig or None; got dict$",
        ),
        (
            lambda: _untyped(MemoryWriteStage)(None),
            TypeError,
            r"^MemoryWriteStage: store must be a MemoryStore \(async fetch, write, clear\); got NoneType$",
        ),
        (
            lambda: _untyped(MemoryWriteStage)(InMemoryStore(), response_key=1),
            TypeError,
            r"^MemoryWriteStage: response_key must be a str; got int$",
        ),
    ],
)
def test_bad_input(make: Any, exception: type[Exception], message: str) -> None:
    with pytest.raises(exception, match=message):
        make()


async def test_store_bad_input() -> None:
    store = InMemoryStore()
    with pytest.raises(
        TypeError, match=r"^InMemoryStore.write: entry must be a MemoryEntry; got dict$"
    ):
        await store.write(entry(1).to_dict())  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"^InMemoryStore.fetch: config must be a MemoryConfig; got NoneType$"
    ):
        await store.fetch(SESSION, None)  # type: ignore[arg-type]


# --- InMemoryStore ----------------------------------------------------------------------


async def test_store_methods_are_checkpoints() -> None:
    store = InMemoryStore()
    with trio.testing.assert_checkpoints():
        await store.write(entry(1))
    with trio.testing.assert_checkpoints():
        await store.fetch(SESSION, MemoryConfig())
    with trio.testing.assert_checkpoints():
        await store.clear(OTHER)


async def test_store_keeps_sessions_apart_and_clears() -> None:
    store = await filled([entry(1), entry(2)])
    await store.write(MemoryEntry(id="o", session_id=OTHER, role="user", content="c"))
    assert store.get_all_sessions() == [SESSION, OTHER]
    assert ids(await store.fetch(SESSION, MemoryConfig())) == ["e1", "e2"]
    assert await store.clear(SESSION) == 2
    assert await store.clear(SESSION) == 0
    assert await store.fetch(SESSION, MemoryConfig()) == []
    assert store.get_all_sessions() == [OTHER]


async def test_fetch_returns_a_new_list() -> None:
    store = await filled([entry(1)])
    fetched = await store.fetch(SESSION, MemoryConfig(max_entries=0, max_tokens=0))
    fetched.clear()
    assert ids(await store.fetch(SESSION, MemoryConfig(max_entries=0, max_tokens=0))) == ["e1"]


async def test_max_entries_keeps_the_most_recent() -> None:
    store = await filled([entry(n) for n in range(5)])
    assert ids(await store.fetch(SESSION, MemoryConfig(max_entries=2))) == ["e3", "e4"]
    assert len(await store.fetch(SESSION, MemoryConfig(max_entries=0, max_tokens=0))) == 5


async def test_max_tokens_stops_at_the_first_entry_that_does_not_fit() -> None:
    # Tokens are len // 4: 2, 10, 1, 2 (oldest to newest).
    store = await filled(
        [entry(0, "x" * 8), entry(1, "x" * 40), entry(2, "x" * 7), entry(3, "x" * 11)]
    )
    assert ids(await store.fetch(SESSION, MemoryConfig(max_tokens=3))) == ["e2", "e3"]
    # e0 (2 tokens) would fit in 5 after e3 and e2, but e1 (10) stops the walk.
    assert ids(await store.fetch(SESSION, MemoryConfig(max_tokens=5))) == ["e2", "e3"]
    assert ids(await store.fetch(SESSION, MemoryConfig(max_tokens=15))) == ["e0", "e1", "e2", "e3"]
    assert ids(await store.fetch(SESSION, MemoryConfig(max_tokens=1))) == []


async def test_filters_apply_in_order() -> None:
    now = datetime.now(UTC)
    old = now - timedelta(hours=1)
    store = await filled(
        [
            entry(0, role="user", timestamp=old),
            entry(1, role="system", timestamp=now),
            entry(2, "x" * 40, role="user", timestamp=now),
            entry(3, role="assistant", timestamp=now),
            entry(4, role="system", timestamp=now),
            entry(5, role="user", timestamp=now),
        ]
    )
    config = MemoryConfig(recency_window_seconds=60)
    assert ids(await store.fetch(SESSION, config)) == ["e1", "e2", "e3", "e4", "e5"]
    config = attrs.evolve(config, include_system=False)
    assert ids(await store.fetch(SESSION, config)) == ["e2", "e3", "e5"]
    # max_entries counts after the system filter, max_tokens after max_entries.
    config = attrs.evolve(config, max_entries=2)
    assert ids(await store.fetch(SESSION, config)) == ["e3", "e5"]
    config = attrs.evolve(config, max_entries=3, max_tokens=12)
    assert ids(await store.fetch(SESSION, config)) == ["e3", "e5"]


roles = st.sampled_from(["user", "assistant", "system"])
contents = st.integers(min_value=0, max_value=60).map(lambda n: "x" * n)
histories = st.lists(st.tuples(roles, contents), max_size=25)
configs = st.builds(
    MemoryConfig,
    max_entries=st.integers(min_value=0, max_value=8),
    max_tokens=st.integers(min_value=0, max_value=40),
    include_system=st.booleans(),
)


def _fetch(
    history: list[tuple[str, str]], config: MemoryConfig
) -> tuple[list[MemoryEntry], list[MemoryEntry]]:
    written = [entry(n, content, role) for n, (role, content) in enumerate(history)]

    async def main() -> list[MemoryEntry]:
        store = await filled(written)
        return await store.fetch(SESSION, config)

    return written, trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


@given(histories, configs)
def test_fetch_invariants(history: list[tuple[str, str]], config: MemoryConfig) -> None:
    written, fetched = _fetch(history, config)
    if config.max_entries:
        assert len(fetched) <= config.max_entries
    if config.max_tokens:
        assert sum(len(item.content) // 4 for item in fetched) <= config.max_tokens
    if not config.include_system:
        assert all(item.role != "system" for item in fetched)
    # Oldest to newest, and the most recent ones: a suffix of the eligible entries.
    eligible = [item for item in written if config.include_system or item.role != "system"]
    assert fetched == eligible[len(eligible) - len(fetched) :]
    timestamps = [item.timestamp for item in fetched]
    assert timestamps == sorted(timestamps)
    # Maximal: the next older eligible entry would break a limit.
    if len(fetched) < len(eligible):
        longer = eligible[len(eligible) - len(fetched) - 1 :]
        over_entries = config.max_entries and len(longer) > config.max_entries
        over_tokens = config.max_tokens and (
            sum(len(item.content) // 4 for item in longer) > config.max_tokens
        )
        assert over_entries or over_tokens


@given(histories, configs)
def test_fetch_matches_reference(
    ref_memory: ModuleType, history: list[tuple[str, str]], config: MemoryConfig
) -> None:
    written, fetched = _fetch(history, config)

    async def reference_fetch() -> list[Any]:
        store = ref_memory.InMemoryStore()
        for item in written:
            await store.write(ref_memory.MemoryEntry(**attrs.asdict(item, recurse=False)))
        fetched: list[Any] = await store.fetch(
            SESSION, ref_memory.MemoryConfig(**attrs.asdict(config))
        )
        return fetched

    theirs = asyncio.run(reference_fetch())
    assert [item.to_dict() for item in fetched] == [item.to_dict() for item in theirs]


# --- the stages -------------------------------------------------------------------------


def _snapshot(input_text: str | None) -> ContextSnapshot[Any]:
    # No interaction_id (create_test_snapshot always makes one).
    return ContextSnapshot(run_id=RunIdentity(session_id=SESSION), input_text=input_text)


async def test_fetch_stage_outputs_entries_count_and_tokens() -> None:
    store = await filled([entry(0, "x" * 9), entry(1, "y" * 4, role="assistant")])
    stage = MemoryFetchStage(store, MemoryConfig(max_entries=5))
    assert (stage.name, stage.kind) == ("memory_fetch", StageKind.ENRICH)
    output = await stage.execute(create_test_stage_context(session_id=SESSION))
    assert output.status is StageStatus.OK
    assert output.data == {
        "memory_entries": [
            entry(0, "x" * 9).to_dict(),
            entry(1, "y" * 4, role="assistant").to_dict(),
        ],
        "memory_count": 2,
        "memory_tokens": 3,
    }


class SilentStore:
    """A store whose methods never checkpoint."""

    async def fetch(self, session_id: UUID, config: MemoryConfig) -> list[MemoryEntry]:
        return []

    async def write(self, entry: MemoryEntry) -> None:
        return None

    async def clear(self, session_id: UUID) -> int:
        return 0


async def test_stages_are_checkpoints_whatever_the_store() -> None:
    ctx = create_test_stage_context(session_id=SESSION, input_text="hi")
    for stage in (MemoryFetchStage(SilentStore()), MemoryWriteStage(SilentStore())):
        with trio.testing.assert_checkpoints():
            await stage.execute(ctx)


async def test_stages_skip_without_a_session() -> None:
    ctx = create_test_stage_context(session_id=None)
    for stage in (MemoryFetchStage(InMemoryStore()), MemoryWriteStage(InMemoryStore())):
        with trio.testing.assert_checkpoints():
            output = await stage.execute(ctx)
        assert output == StageOutput.skip(reason="No session_id in context")


async def test_write_stage_records_the_exchange() -> None:
    store = InMemoryStore()
    stage = MemoryWriteStage(store)
    assert (stage.name, stage.kind) == ("memory_write", StageKind.WORK)
    interaction = uuid4()
    ctx = create_test_stage_context(
        session_id=SESSION,
        interaction_id=interaction,
        input_text="hello",
        prior_outputs={"llm": StageOutput.ok(response=42)},
    )
    with trio.testing.assert_checkpoints():
        output = await stage.execute(ctx)
    assert output == StageOutput.ok(entries_written=2, session_id=str(SESSION))
    stored = await store.fetch(SESSION, MemoryConfig())
    assert [(e.id, e.role, e.content) for e in stored] == [
        (f"{interaction}_user", "user", "hello"),
        (f"{interaction}_assistant", "assistant", "42"),
    ]


async def test_write_stage_reads_the_configured_response_and_names_unknown() -> None:
    store = InMemoryStore()
    stage = MemoryWriteStage(store, response_stage="agent", response_key="text")
    ctx = create_test_stage_context(
        snapshot=_snapshot(""),
        prior_outputs={
            "agent": StageOutput.ok(text="answer"),
            "llm": StageOutput.ok(response="no"),
        },
    )
    output = await stage.execute(ctx)
    assert output.data == {"entries_written": 1, "session_id": str(SESSION)}
    stored = await store.fetch(SESSION, MemoryConfig())
    assert [(e.id, e.content) for e in stored] == [("unknown_assistant", "answer")]


async def test_write_stage_skips_empty_parts() -> None:
    store = InMemoryStore()
    ctx = create_test_stage_context(
        snapshot=_snapshot(None),
        prior_outputs={"llm": StageOutput.ok(response="")},
    )
    output = await MemoryWriteStage(store).execute(ctx)
    assert output.data == {"entries_written": 0, "session_id": str(SESSION)}
    assert store.get_all_sessions() == []


def _reference_run(reference: ModuleType, stage: Any, **ctx_kwargs: Any) -> Any:
    ctx = reference.testing.create_test_stage_context(**ctx_kwargs)
    return asyncio.run(stage.execute(ctx))


async def test_stages_match_reference(reference: ModuleType, ref_memory: ModuleType) -> None:
    interaction = uuid4()
    ours_store, theirs_store = InMemoryStore(), ref_memory.InMemoryStore()
    common: dict[str, Any] = {
        "session_id": SESSION,
        "interaction_id": interaction,
        "input_text": "hi there",
    }
    ours = await MemoryWriteStage(ours_store).execute(
        create_test_stage_context(prior_outputs={"llm": StageOutput.ok(response="yo")}, **common)
    )
    theirs = _reference_run(
        reference,
        ref_memory.MemoryWriteStage(theirs_store),
        prior_outputs={"llm": reference.StageOutput.ok(response="yo")},
        **common,
    )
    assert (ours.status.value, dict(ours.data)) == (theirs.status.value, theirs.data)

    ours = await MemoryFetchStage(ours_store).execute(create_test_stage_context(**common))
    theirs = _reference_run(reference, ref_memory.MemoryFetchStage(theirs_store), **common)
    assert ours.status.value == theirs.status.value
    strip = [
        {k: v for k, v in e.items() if k != "timestamp"} for e in theirs.data["memory_entries"]
    ]
    assert [
        {k: v for k, v in e.items() if k != "timestamp"} for e in ours.data["memory_entries"]
    ] == strip
    assert (ours.data["memory_count"], ours.data["memory_tokens"]) == (
        theirs.data["memory_count"],
        theirs.data["memory_tokens"],
    )
