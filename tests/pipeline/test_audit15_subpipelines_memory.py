"""Audit 15: subpipeline values, ports, the memory store and the backpressure sink's worker.

Differential checks against the reference (stageflow 0.9.1) where behaviour is shared,
and regressions for the defects this audit fixed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock
from uuid import UUID

import pytest
import stageflow.helpers.memory as ref_memory
import stageflow.pipeline.subpipeline as ref_sub
import stageflow.stages.ports as ref_ports
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from stageflow_trio.events import BackpressureAwareEventSink
from stageflow_trio.helpers.memory import InMemoryStore, MemoryConfig, MemoryEntry
from stageflow_trio.pipeline.subpipeline import (
    ChildRunTracker,
    PipelineCanceledEvent,
    PipelineChildCompletedEvent,
    PipelineChildFailedEvent,
    PipelineSpawnedChildEvent,
    SubpipelineResult,
    SubpipelineSpawner,
)
from stageflow_trio.stages.ports import AudioPorts, CorePorts, LLMPorts

A = UUID(int=1)
B = UUID(int=2)
C = UUID(int=3)
SESSION = UUID(int=10)
OTHER = UUID(int=11)
NOW = datetime(2030, 1, 1, tzinfo=UTC)

# -- the backpressure sink: a worker started while a stop drains ---------------


class _Recorder:
    """A downstream that takes ``delay`` seconds per event and can reject some."""

    def __init__(self, delay: float, failing: frozenset[str] = frozenset()) -> None:
        self.delay = delay
        self.failing = failing
        self.delivered: list[str] = []
        self.rejected = 0

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        await trio.sleep(self.delay)
        if type in self.failing:
            self.rejected += 1
            raise RuntimeError(f"rejected {type}")
        self.delivered.append(type)

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        pass


async def test_start_during_a_draining_stop_does_not_count_the_drained_event_twice(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The stop (no worker ever ran) delivers e0 from its own task; a start()
    # meanwhile counted e0 as "interrupted by cancellation" although the drain
    # then delivered it: delivered and dropped at once.
    downstream = _Recorder(1.0)
    given_up: list[str] = []
    sink = BackpressureAwareEventSink(downstream, on_drop=lambda t, d: given_up.append(t))
    for n in range(3):
        assert sink.try_emit(type=f"e{n}", data=None)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sink.stop)
        await trio.sleep(0.5)
        await sink.start(nursery)
        await trio.sleep(10)
        await sink.stop()
    assert downstream.delivered == ["e0", "e1", "e2"]
    assert given_up == []
    assert (sink.metrics.emitted, sink.metrics.dropped, sink.metrics.undelivered) == (3, 0, 0)


@pytest.mark.parametrize("start_at", [0.0, 0.25, 0.5, 1.0, 1.5, 2.25])
@pytest.mark.parametrize("timeout", [0.0, 0.5, 1.0, 1.75, 3.5, 10.0])
@pytest.mark.parametrize("failing", [frozenset(), frozenset({"e1"})])
async def test_every_accepted_event_is_delivered_or_counted_exactly_once(
    autojump_clock: trio.testing.MockClock,
    start_at: float,
    timeout: float,
    failing: frozenset[str],
) -> None:
    downstream = _Recorder(0.75, failing)
    given_up: list[str] = []
    sink = BackpressureAwareEventSink(downstream, on_drop=lambda t, d: given_up.append(t))
    accepted = [f"e{n}" for n in range(4)]
    for event_type in accepted:
        assert sink.try_emit(type=event_type, data=None)

    async def stop() -> None:
        await sink.stop(timeout=timeout)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(stop)
        await trio.sleep(start_at)
        await sink.start(nursery)
        await trio.sleep(20)
        await sink.stop(drain=False)
    # Each accepted event exactly once: delivered, or given up (on_drop).
    assert sorted(downstream.delivered + given_up) == accepted
    assert downstream.delivered == sorted(downstream.delivered)  # queue order kept
    metrics = sink.metrics
    assert metrics.emitted == 4
    assert metrics.undelivered == len(given_up) == metrics.dropped
    assert metrics.downstream_errors == downstream.rejected
    assert not sink.is_running


# -- ports ----------------------------------------------------------------------


def test_audio_ports_still_refuse_a_str() -> None:
    with pytest.raises(TypeError, match="audio_data"):
        AudioPorts(audio_data="RIFF")  # type: ignore[arg-type]


_PORT_VALUES = st.sampled_from([None, 0, "x", b"a", object()])


@settings(max_examples=30, deadline=None)
@given(
    st.sampled_from(
        [
            (CorePorts, ref_ports.CorePorts, ("db", "call_logger_db", "call_logger", "retry_fn")),
            (LLMPorts, ref_ports.LLMPorts, ("llm_provider", "chat_service", "llm_chunk_queue")),
            (AudioPorts, ref_ports.AudioPorts, ("tts_provider", "stt_provider", "recording")),
        ]
    ),
    st.data(),
)
def test_ports_fields_and_values_match_the_reference(case: Any, data: st.DataObject) -> None:
    ours, ref, free = case
    names = [f.name for f in dataclasses.fields(ref)]
    assert [a.name for a in ours.__attrs_attrs__][: len(names)] == names
    values = {name: data.draw(_PORT_VALUES, label=name) for name in free}
    mine, theirs = ours(**values), ref(**values)
    for name in names:
        assert getattr(mine, name) is getattr(theirs, name)
    assert mine == ours(**values)


# -- subpipeline values -----------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: SubpipelineResult("yes", A), "success"),  # type: ignore[arg-type]
        (lambda: SubpipelineResult(True, str(A)), "child_run_id"),  # type: ignore[arg-type]
        (lambda: SubpipelineResult(False, A, error=ValueError("x")), "error"),  # type: ignore[arg-type]
        (lambda: SubpipelineResult(True, A, duration_ms="1"), "duration_ms"),  # type: ignore[arg-type]
        (lambda: PipelineSpawnedChildEvent(str(A), B, "s", "p", C), "parent_run_id"),  # type: ignore[arg-type]
        (lambda: PipelineSpawnedChildEvent(A, B, "s", "p", str(C)), "correlation_id"),  # type: ignore[arg-type]
        (lambda: PipelineSpawnedChildEvent(A, B, 1, "p", C), "parent_stage_id"),  # type: ignore[arg-type]
        (lambda: PipelineChildCompletedEvent(A, B, None), "pipeline_name"),  # type: ignore[arg-type]
        (lambda: PipelineChildFailedEvent(A, B, "p", ValueError("x")), "error_message"),  # type: ignore[arg-type]
        (lambda: PipelineChildFailedEvent(A, B, "p", "e", "1"), "duration_ms"),  # type: ignore[arg-type]
        (lambda: PipelineCanceledEvent(str(A)), "pipeline_run_id"),  # type: ignore[arg-type]
        (lambda: PipelineCanceledEvent(A, reason=None), "reason"),  # type: ignore[arg-type]
        (lambda: PipelineCanceledEvent(A, cascade_depth=1.5), "cascade_depth"),  # type: ignore[arg-type]
    ],
)
def test_subpipeline_values_refuse_wrong_field_types(build: Any, field: str) -> None:
    # They were stored as given: a str id serialized like a UUID, an exception
    # object reached the JSON payload, a str duration broke the sinks' arithmetic.
    with pytest.raises(TypeError, match=rf": {field} must be "):
        build()


def test_subpipeline_values_accept_ints_for_numbers() -> None:
    assert SubpipelineResult(True, A, duration_ms=3).to_dict()["duration_ms"] == 3
    assert PipelineChildCompletedEvent(A, B, "p", 2).to_dict()["duration_ms"] == 2


_DATA = st.one_of(
    st.none(),
    st.dictionaries(st.sampled_from(["a", "b", "result"]), st.integers(), max_size=3),
)


@settings(max_examples=40, deadline=None)
@given(
    success=st.booleans(),
    data=_DATA,
    error=st.one_of(st.none(), st.sampled_from(["", "boom"])),
    duration=st.one_of(st.integers(0, 10), st.floats(0, 10)),
)
def test_subpipeline_result_to_dict_matches_the_reference(
    success: bool, data: dict[str, int] | None, error: str | None, duration: float
) -> None:
    mine = SubpipelineResult(success, A, data, error, duration).to_dict()
    theirs = ref_sub.SubpipelineResult(success, A, data, error, duration).to_dict()
    assert mine == theirs
    assert list(mine) == list(theirs)


def test_event_payloads_match_the_reference() -> None:
    cases = [
        (PipelineSpawnedChildEvent, ref_sub.PipelineSpawnedChildEvent, (A, B, "s", "p", C)),
        (PipelineChildCompletedEvent, ref_sub.PipelineChildCompletedEvent, (A, B, "p", 1.5)),
        (PipelineChildFailedEvent, ref_sub.PipelineChildFailedEvent, (A, B, "p", "e", 2.0)),
        (PipelineCanceledEvent, ref_sub.PipelineCanceledEvent, (A, B, "r", 3)),
        (PipelineCanceledEvent, ref_sub.PipelineCanceledEvent, (A,)),
    ]
    for ours, ref, args in cases:
        mine = ours(*args, timestamp="t").to_dict()
        theirs = ref(*args, timestamp="t").to_dict()
        assert mine == theirs
        assert list(mine) == list(theirs)


# -- the memory store against the reference on generated operations --------------

_ROLES = st.sampled_from(["user", "assistant", "system"])
_OPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("write"),
            st.sampled_from([SESSION, OTHER]),
            _ROLES,
            st.text(alphabet="ab", max_size=40),
            st.integers(0, 3600),
        ),
        st.tuples(st.just("clear"), st.sampled_from([SESSION, OTHER])),
    ),
    max_size=25,
)
_CONFIGS = st.builds(
    MemoryConfig,
    max_entries=st.integers(0, 6),
    max_tokens=st.integers(0, 25),
    include_system=st.booleans(),
    recency_window_seconds=st.sampled_from([0, 60, 600, 1800]),
)


def _ref_run(ops: list[tuple[Any, ...]], configs: list[MemoryConfig]) -> list[Any]:
    async def main() -> list[Any]:
        store = ref_memory.InMemoryStore()
        out: list[Any] = []
        for n, op in enumerate(ops):
            if op[0] == "write":
                _, session, role, content, age = op
                await store.write(
                    ref_memory.MemoryEntry(
                        id=f"m{n}",
                        session_id=session,
                        role=role,
                        content=content,
                        timestamp=NOW - timedelta(seconds=age),
                    )
                )
            else:
                out.append(await store.clear(op[1]))
        for config in configs:
            ref_config = ref_memory.MemoryConfig(
                max_entries=config.max_entries,
                max_tokens=config.max_tokens,
                include_system=config.include_system,
                recency_window_seconds=config.recency_window_seconds,
            )
            for session in (SESSION, OTHER):
                entries = await store.fetch(session, ref_config)
                out.append([e.to_dict() for e in entries])
        out.append(store.get_all_sessions())
        return out

    return asyncio.run(main())


async def _our_run(ops: list[tuple[Any, ...]], configs: list[MemoryConfig]) -> list[Any]:
    store = InMemoryStore()
    out: list[Any] = []
    for n, op in enumerate(ops):
        if op[0] == "write":
            _, session, role, content, age = op
            await store.write(
                MemoryEntry(
                    id=f"m{n}",
                    session_id=session,
                    role=role,
                    content=content,
                    timestamp=NOW - timedelta(seconds=age),
                )
            )
        else:
            out.append(await store.clear(op[1]))
    for config in configs:
        for session in (SESSION, OTHER):
            entries = await store.fetch(session, config)
            out.append([e.to_dict() for e in entries])
            # The documented invariants.
            if config.max_entries:
                assert len(entries) <= config.max_entries
            if config.max_tokens:
                assert sum(len(e.content) // 4 for e in entries) <= config.max_tokens
            if not config.include_system:
                assert all(e.role != "system" for e in entries)
    out.append(store.get_all_sessions())
    return out


@settings(max_examples=40, deadline=None)
@given(ops=_OPS, configs=st.lists(_CONFIGS, min_size=1, max_size=3))
def test_in_memory_store_matches_the_reference(
    ops: list[tuple[Any, ...]], configs: list[MemoryConfig]
) -> None:
    # Both stores read the wall clock for the recency window: pin it to NOW.
    import stageflow_trio.helpers.memory as our_memory

    class _Clock(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
            return NOW

    with (
        mock.patch.object(ref_memory, "datetime", _Clock),
        mock.patch.object(our_memory, "utc_now", return_value=NOW),
    ):
        theirs = _ref_run(ops, configs)
        mine = trio.run(_our_run, ops, configs)
    assert mine == theirs


async def test_is_canceled_refuses_a_run_id_that_is_not_a_uuid() -> None:
    # Audit 15: str(run_id) silently answered False, as cancel_with_children refuses it.
    spawner = SubpipelineSpawner(child_tracker=ChildRunTracker())
    run_id = uuid.uuid4()
    await spawner.cancel_with_children(run_id)
    assert await spawner.is_canceled(run_id)
    with pytest.raises(TypeError, match=r"^run_id must be a UUID, got str$"):
        await spawner.is_canceled(str(run_id))  # type: ignore[arg-type]
