"""Differential tests: the mock providers of stageflow-core 0.9.1 and of stageflow_trio,
fed the same inputs and the same random draws, give the same answers and the same delays.

The reference draws from the global ``random`` module and sleeps with ``asyncio.sleep``;
here it gets a seeded global state and a recording sleep that returns at once, while
stageflow_trio gets ``random.Random(seed)`` and runs on a MockClock, its delays read off
the virtual clock.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from stageflow_trio.helpers import mocks as ours
from tests.fakes import import_reference

reference = import_reference()
ref_mocks = reference.helpers.mocks

T = TypeVar("T")


class RecordingAsyncio:
    """Stands in for the reference module's ``asyncio``: ``sleep`` records and returns."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def sleep(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
def ref_sleeps(monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingAsyncio]:
    fake = RecordingAsyncio()
    monkeypatch.setattr(ref_mocks, "asyncio", fake)
    state = random.getstate()
    try:
        yield fake
    finally:
        random.setstate(state)


def run_reference(seed: int, fn: Callable[[], Awaitable[T]]) -> T:
    random.seed(seed)
    return asyncio.run(fn())  # type: ignore[arg-type]


class VirtualDelays:
    """Runs a trio function on a MockClock and records the time between ``mark()`` calls."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self._last = 0.0

    def mark(self) -> None:
        now = trio.current_time()
        if now != self._last:
            self.delays.append(now - self._last)
        self._last = now

    def run(self, fn: Callable[[], Awaitable[T]]) -> T:
        async def main() -> T:
            return await fn()

        return trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


async def outcome(call: Awaitable[Any]) -> Any:
    try:
        return await call
    except Exception as exc:
        return ("error", type(exc).__name__, str(exc))


PROMPTS = st.lists(st.sampled_from(["hello", "the WEATHER", "what time", "bye", ""]), max_size=8)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    prompts=PROMPTS,
    echo=st.booleans(),
    fail_rate=st.sampled_from([0.0, 0.3, 1.0]),
    latency=st.sampled_from([(0, 0), (50, 0), (80, 30)]),
)
def test_llm_complete_matches(
    seed: int,
    prompts: list[str],
    echo: bool,
    fail_rate: float,
    latency: tuple[int, int],
) -> None:
    fake = RecordingAsyncio()
    original = ref_mocks.asyncio
    ref_mocks.asyncio = fake
    state = random.getstate()
    kwargs: dict[str, Any] = {
        "responses": ["one", "two", "three"],
        "patterns": {"weather": "Sunny.", r"\btime\b": "Noon."},
        "echo": echo,
        "latency_ms": latency[0],
        "latency_jitter_ms": latency[1],
        "fail_rate": fail_rate,
    }
    try:

        async def ref_calls() -> list[Any]:
            llm = ref_mocks.MockLLMProvider(**kwargs)
            return [await outcome(llm.complete(p)) for p in prompts]

        theirs = run_reference(seed, ref_calls)
    finally:
        ref_mocks.asyncio = original
        random.setstate(state)

    clock = VirtualDelays()

    async def our_calls() -> list[Any]:
        llm = ours.MockLLMProvider(**kwargs, rng=random.Random(seed))
        results = []
        for p in prompts:
            results.append(await outcome(llm.complete(p)))
            clock.mark()
        return results

    mine = clock.run(our_calls)
    assert [_completion(r) for r in mine] == [_completion(r) for r in theirs]
    assert clock.delays == pytest.approx([d for d in fake.delays if d], abs=1e-9)


def _completion(result: Any) -> Any:
    if isinstance(result, tuple):
        return result
    return (result.content, dict(result.usage), result.model, result.role, result.id[:5])


@pytest.mark.parametrize("seed", [0, 1, 7, 42])
@pytest.mark.parametrize("chunk_size", [1, 3, 5])
def test_llm_stream_matches(seed: int, chunk_size: int, ref_sleeps: RecordingAsyncio) -> None:
    kwargs: dict[str, Any] = {
        "responses": ["A longer canned answer."],
        "patterns": {"hi": "Hey!"},
        "latency_ms": 40,
        "latency_jitter_ms": 20,
        "fail_rate": 0.2,
    }

    async def collect(stream: Any, mark: Callable[[], None] | None = None) -> Any:
        chunks: list[Any] = []
        try:
            async for chunk in stream:
                if mark is not None:
                    mark()
                chunks.append(chunk)
        except Exception as exc:
            chunks = [("error", str(exc))]
        if mark is not None:
            mark()
        return chunks

    async def ref_calls() -> list[Any]:
        llm = ref_mocks.MockLLMProvider(**kwargs)
        return [await collect(llm.stream(p, chunk_size=chunk_size)) for p in ("hi", "x", "y")]

    theirs = run_reference(seed, ref_calls)
    clock = VirtualDelays()

    async def our_calls() -> list[Any]:
        llm = ours.MockLLMProvider(**kwargs, rng=random.Random(seed))
        return [
            await collect(llm.stream(p, chunk_size=chunk_size), clock.mark)
            for p in ("hi", "x", "y")
        ]

    assert clock.run(our_calls) == theirs
    assert clock.delays == pytest.approx(ref_sleeps.delays, abs=1e-9)


@pytest.mark.parametrize("seed", [0, 3, 11])
@pytest.mark.parametrize("simulate_confidence", [True, False])
def test_stt_matches(seed: int, simulate_confidence: bool, ref_sleeps: RecordingAsyncio) -> None:
    known = b"\x10\x20" * 1000
    kwargs: dict[str, Any] = {
        "transcriptions": ["alpha", "beta"],
        "audio_map": {hashlib.md5(known).hexdigest()[:16]: "mapped"},
        "fail_rate": 0.25,
        "simulate_confidence": simulate_confidence,
    }
    audios = [b"x", known, b"y" * 320, b"z", known, b""]

    def shape(result: Any) -> Any:
        if isinstance(result, tuple):
            return result
        return result.to_dict()

    async def ref_calls() -> list[Any]:
        stt = ref_mocks.MockSTTProvider(**kwargs)
        return [shape(await outcome(stt.transcribe(a, language="de"))) for a in audios]

    theirs = run_reference(seed, ref_calls)
    clock = VirtualDelays()

    async def our_calls() -> list[Any]:
        stt = ours.MockSTTProvider(**kwargs, rng=random.Random(seed))
        results = []
        for a in audios:
            results.append(shape(await outcome(stt.transcribe(a, language="de"))))
            clock.mark()
        return results

    assert clock.run(our_calls) == theirs
    assert clock.delays == pytest.approx(ref_sleeps.delays, abs=1e-9)


@pytest.mark.parametrize("seed", [0, 5])
def test_tts_matches(seed: int, ref_sleeps: RecordingAsyncio) -> None:
    texts = ["Hello world", "", "A much longer sentence for the speech synthesizer to say."]
    kwargs: dict[str, Any] = {"sample_rate": 8000, "bytes_per_char": 77, "fail_rate": 0.2}

    async def both(tts: Any) -> list[Any]:
        results = []
        for text in texts:
            results.append(await outcome(tts.synthesize(text)))
            try:
                results.append(
                    [
                        (c.data, c.sample_rate, c.channels, c.format)
                        async for c in tts.stream(text, chunk_duration_ms=30)
                    ]
                )
            except Exception as exc:
                results.append(("error", str(exc)))
        return results

    theirs = run_reference(seed, lambda: both(ref_mocks.MockTTSProvider(**kwargs)))
    mine = VirtualDelays().run(
        lambda: both(ours.MockTTSProvider(**kwargs, rng=random.Random(seed)))
    )
    assert mine == theirs
    assert any(isinstance(r, bytes) and r for r in mine)


@pytest.mark.parametrize("seed", [0, 9])
def test_auth_matches(seed: int) -> None:
    now = datetime.now(UTC)
    tokens = ["known", "expired", "unknown-token-that-is-rather-long"]

    def claims(module: Any, sub: str, exp: datetime) -> Any:
        return module.MockJWTClaims(sub=sub, exp=exp, iat=now, roles=["r"], custom={"c": 1})

    def shape(result: Any) -> Any:
        return result if isinstance(result, tuple) else result.to_dict()

    async def calls(module: Any, **extra: Any) -> Any:
        out = []
        for accept_any in (False, True):
            auth = module.MockAuthProvider(
                valid_tokens={
                    "known": claims(module, "u1", now + timedelta(hours=1)),
                    "expired": claims(module, "u2", now - timedelta(hours=1)),
                },
                default_claims=claims(module, "anyone", now + timedelta(hours=1)),
                accept_any=accept_any,
                fail_rate=0.3,
                **extra,
            )
            out.append([shape(await outcome(auth.validate(t))) for t in tokens])
            out.append([h["token"] for h in auth._validation_history])
            out.append(auth.validation_count)
        return out

    state = random.getstate()
    try:
        theirs = run_reference(seed, lambda: calls(ref_mocks))
    finally:
        random.setstate(state)
    mine = VirtualDelays().run(lambda: calls(ours, rng=random.Random(seed)))
    assert mine == theirs


@pytest.mark.parametrize("seed", [0, 4])
def test_tool_executor_matches(seed: int, ref_sleeps: RecordingAsyncio) -> None:
    def divide(args: dict[str, Any]) -> Any:
        return args["a"] / args["b"]

    calls = [("divide", {"a": 6, "b": 3}), ("divide", {"a": 1, "b": 0}), ("other", {})] * 3

    def shape(result: Any) -> Any:
        return (result.success, result.output, result.error)

    async def run_calls(module: Any, **extra: Any) -> Any:
        executor = module.MockToolExecutor(
            tools={"divide": divide}, latency_ms=15, fail_rate=0.3, **extra
        )
        results = [shape(await executor.execute(name, args)) for name, args in calls]
        history = [(h["tool"], h["arguments"]) for h in executor.execution_history]
        return results, history, executor.execution_count

    theirs = run_reference(seed, lambda: run_calls(ref_mocks))
    mine = VirtualDelays().run(lambda: run_calls(ours, rng=random.Random(seed)))
    assert mine == theirs
    assert ref_sleeps.delays == [0.015] * len(calls)


def test_tts_audio_matches_for_many_sizes() -> None:
    for n in (0, 1, 15, 16, 17, 255, 256, 257, 1000):
        text = "x" * n
        assert ours.MockTTSProvider(bytes_per_char=3)._generate_audio(text) == (
            ref_mocks.MockTTSProvider(bytes_per_char=3)._generate_audio(text)
        )


def test_value_to_dicts_match() -> None:
    exp = datetime(2031, 1, 1, tzinfo=UTC)
    for module in (ours, ref_mocks):
        assert module.MockJWTClaims(sub="s", exp=exp, iat=exp).to_dict() == {
            "sub": "s",
            "aud": "stageflow",
            "iss": "mock-auth",
            "exp": int(exp.timestamp()),
            "iat": int(exp.timestamp()),
            "roles": [],
            "org_id": None,
        }
    mine = ours.MockCompletion(id="i", content="c").to_dict()
    theirs = ref_mocks.MockCompletion(id="i", content="c").to_dict()
    del mine["created"], theirs["created"]
    assert mine == theirs
    assert ours.MockTranscription(text="t").to_dict() == (
        ref_mocks.MockTranscription(text="t").to_dict()
    )
    assert ours.MockToolResult(success=True, output=1).to_dict() == (
        ref_mocks.MockToolResult(success=True, output=1).to_dict()
    )
