"""The mock providers' streams: chunks, timing in virtual time, failures, closing."""

from __future__ import annotations

import random
from contextlib import aclosing
from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio.helpers.mocks import (
    MockAudioChunk,
    MockLLMProvider,
    MockStream,
    MockTTSProvider,
)


async def timed(stream: MockStream[Any]) -> list[tuple[float, Any]]:
    """Each chunk with the virtual time it arrived."""
    return [(trio.current_time(), chunk) async for chunk in stream]


async def test_llm_stream_yields_chunk_size_pieces_10_ms_apart(autojump_clock: Any) -> None:
    llm = MockLLMProvider(responses=["Hello, streaming world"], latency_ms=200)
    start = trio.current_time()
    chunks = [(trio.current_time(), chunk) async for chunk in llm.stream("x", chunk_size=6)]
    assert [chunk for _, chunk in chunks] == ["Hello,", " strea", "ming w", "orld"]
    # Each sleep ends exactly at its deadline: the previous time plus 10 ms.
    expected = [start + 0.2]
    for _ in range(3):
        expected.append(expected[-1] + 0.01)
    assert [t for t, _ in chunks] == expected
    # The iteration ends 10 ms after the last chunk, as the reference's generator does.
    assert trio.current_time() == chunks[-1][0] + 0.01
    assert llm.call_count == 0  # streams are not counted, as in the reference


async def test_llm_stream_exact_latency_with_seeded_jitter(autojump_clock: Any) -> None:
    draws = random.Random(3)
    jitter = draws.uniform(-30, 30)
    llm = MockLLMProvider(latency_ms=100, latency_jitter_ms=30, rng=random.Random(3))
    stream = llm.stream("abc")
    start = trio.current_time()
    assert await stream.__anext__() == "Mock "
    assert trio.current_time() == start + (100 + jitter) / 1000


async def test_llm_stream_uses_the_same_answer_rules(autojump_clock: Any) -> None:
    llm = MockLLMProvider(patterns={"hi": "Hey there!"}, echo=True)
    assert [c async for c in llm.stream("oh hi", chunk_size=4)] == ["Hey ", "ther", "e!"]
    assert [c async for c in llm.stream("abc", chunk_size=2)] == ["Ec", "ho", ": ", "ab", "c"]


async def test_empty_answer_ends_without_the_trailing_sleep(autojump_clock: Any) -> None:
    llm = MockLLMProvider(responses=[""])
    with trio.testing.assert_checkpoints():
        assert [c async for c in llm.stream("x")] == []
    assert trio.current_time() == 0


async def test_stream_failure_comes_from_the_first_anext_and_ends_the_stream(
    autojump_clock: Any,
) -> None:
    llm = MockLLMProvider(fail_rate=1.0, fail_error="down", latency_ms=5)
    stream = llm.stream("x")  # nothing happens yet
    assert trio.current_time() == 0
    with pytest.raises(Exception, match=r"^down$"):
        await stream.__anext__()
    assert trio.current_time() == 0.005
    assert stream.closed
    assert [c async for c in stream] == []


async def test_closed_stream_anext_is_a_checkpoint() -> None:
    stream = MockLLMProvider().stream("x")
    stream.close()
    with trio.testing.assert_checkpoints(), pytest.raises(StopAsyncIteration):
        await stream.__anext__()


async def test_async_with_and_aclose_end_the_stream(autojump_clock: Any) -> None:
    llm = MockLLMProvider(responses=["abcdefghij"])
    async with llm.stream("x", chunk_size=2) as stream:
        assert await stream.__anext__() == "ab"
    assert stream.closed
    assert [c async for c in stream] == []
    other = llm.stream("x", chunk_size=2)
    async with aclosing(other):
        async for _ in other:
            break
    assert other.closed
    with trio.testing.assert_checkpoints():
        await llm.stream("x").aclose()


async def test_tts_stream_chunks_by_duration_and_sleeps_between(autojump_clock: Any) -> None:
    tts = MockTTSProvider(sample_rate=8000, bytes_per_char=100, latency_ms=30)
    audio = await tts.synthesize("hello")  # 500 bytes
    start = trio.current_time()
    received = await timed(tts.stream("hello", chunk_duration_ms=20))  # 320-byte chunks
    assert [chunk for _, chunk in received] == [
        MockAudioChunk(data=audio[:320], sample_rate=8000),
        MockAudioChunk(data=audio[320:], sample_rate=8000),
    ]
    first = start + 0.03
    assert [t for t, _ in received] == [first, first + 0.02]
    assert trio.current_time() == first + 0.02 + 0.02
    assert tts.call_count == 1  # only synthesize counts


async def test_tts_stream_failure() -> None:
    tts = MockTTSProvider(latency_ms=0, fail_rate=1.0)
    with pytest.raises(Exception, match=r"^Mock TTS error$"):
        await tts.stream("x").__anext__()


async def test_async_with_entry_is_a_checkpoint() -> None:
    for stream in (MockLLMProvider().stream("x"), MockTTSProvider().stream("x")):
        with trio.testing.assert_checkpoints():
            entered = await stream.__aenter__()
        assert entered is stream
        await stream.aclose()
