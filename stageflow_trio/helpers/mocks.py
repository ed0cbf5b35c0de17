"""Mock providers for testing pipelines without API keys or network.

Deterministic stand-ins for the providers a pipeline talks to:

- :class:`MockLLMProvider`: chat completions from patterns, echo or a cycle of
  canned responses; streaming in fixed-size chunks.
- :class:`MockSTTProvider`: transcriptions by audio hash or from a cycle.
- :class:`MockTTSProvider`: audio bytes derived from the text; streaming chunks.
- :class:`MockAuthProvider`: token validation against known or any tokens.
- :class:`MockToolExecutor`: tool calls routed to plain functions.

Latency is ``trio.sleep``, so under ``trio.testing.MockClock`` (or pytest-trio's
``autojump_clock``) it costs no real time and the elapsed time is exact.
Jitter and simulated failures draw from ``rng``, a :class:`random.Random`: pass
a seeded one to make a test repeatable.

A ``stream(...)`` call returns a :class:`MockStream`: an async iterator that
starts no task and holds no suspended frame, so a consumer may stop half way,
break out or be cancelled without anything to clean up (``async with`` or
``aclose()`` also work).

Example::

    llm = MockLLMProvider(patterns={r"weather": "Sunny."}, latency_ms=50)
    reply = await llm.complete("What's the weather?")
    assert reply.content == "Sunny."
    async for chunk in llm.stream("Hello there", chunk_size=4):
        ...
"""

from __future__ import annotations

import hashlib
import random
import re
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs
import trio

from stageflow_trio._args import (
    check_callable,
    check_flag,
    check_int,
    check_number,
    check_plain_callable,
    check_str,
    error_text,
    type_of,
)
from stageflow_trio._frozen import frozen_compat
from stageflow_trio._time import utc_now, utc_now_iso, uuid4
from stageflow_trio.utils.frozen import FrozenDict, FrozenList

if TYPE_CHECKING:
    from types import TracebackType

__all__ = [
    "MockAudioChunk",
    "MockAuthProvider",
    "MockCompletion",
    "MockJWTClaims",
    "MockLLMProvider",
    "MockMessage",
    "MockSTTProvider",
    "MockTTSProvider",
    "MockToolExecutor",
    "MockToolResult",
    "MockTranscription",
]

T = TypeVar("T")


# ---------------------------------------------------------------------------
# Shared pieces


def _check_rate(owner: str, value: object) -> float:
    rate = check_number(owner, "fail_rate", value, minimum=0)
    if rate > 1:
        raise ValueError(f"{owner}: fail_rate must be <= 1; got {value!r}")
    return rate


def _check_rng(owner: str, rng: object) -> random.Random:
    if rng is None:
        return random.Random()
    if not isinstance(rng, random.Random):
        raise TypeError(f"{owner}: rng must be a random.Random or None; got {type_of(rng)}")
    return rng


def _str_list(owner: str, param: str, value: object, default: str) -> list[str]:
    """``value`` as a list of str; ``[default]`` when it is None or empty (as the reference)."""
    if value is None:
        return [default]
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise TypeError(f"{owner}: {param} must be a list of str or None; got {type_of(value)}")
    items = list(value)
    for item in items:
        check_str(owner, param, item)
    return items or [default]


def _roles(owner: str, value: object) -> list[str]:
    """``value`` as a list of str; None is ``[]``, a bare str is refused.

    The reference turned ``roles="admin"`` into one role per letter.
    """
    if value is None:
        return []
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise TypeError(f"{owner}: roles must be a list of str or None; got {type_of(value)}")
    roles = list(value)
    for index, role in enumerate(roles):
        check_str(owner, f"roles[{index}]", role)
    return roles


async def _sleep_ms(ms: float) -> None:
    # trio.sleep(0) is still a checkpoint, so every call that simulates latency is one.
    await trio.sleep(ms / 1000)


class MockStream(Generic[T]):
    """The chunks of one mock ``stream(...)`` call, as an async iterator.

    The first ``__anext__`` simulates the provider's latency and failure and
    computes the chunks; each later one first sleeps ``delay`` seconds (also
    after the last chunk, before the iteration ends), as the reference's
    generators do. Every ``__anext__`` is a checkpoint.

    No task and no suspended frame stand behind it: a consumer that stops early
    leaves nothing running. An exception (or cancellation) out of ``__anext__``
    ends the stream, as it would end a generator. ``close()``, ``aclose()`` and
    ``async with`` end it too, also while a ``__anext__`` waits (that call then
    ends the iteration instead of returning a chunk). As with a generator, a
    second ``__anext__`` while one is running raises RuntimeError and changes nothing.
    """

    __slots__ = ("_chunks", "_closed", "_delay", "_index", "_prepare", "_running")

    def __init__(self, prepare: Callable[[], Awaitable[list[T]]], delay: float) -> None:
        self._prepare = prepare
        self._delay = delay
        self._chunks: list[T] | None = None
        self._index = 0
        self._closed = False
        self._running = False

    def __aiter__(self) -> MockStream[T]:
        return self

    async def __anext__(self) -> T:
        if self._closed:
            await trio.lowlevel.checkpoint()
            raise StopAsyncIteration
        if self._running:
            # As a generator refuses it: a second task's call would prepare the
            # chunks again (another draw, another response of the cycle) or skip one.
            await trio.lowlevel.checkpoint()
            raise RuntimeError("anext(): asynchronous generator is already running")
        self._running = True
        try:
            chunks = self._chunks
            if chunks is None:
                chunks = self._chunks = await self._prepare()
            else:
                await trio.sleep(self._delay)
            index = self._index
            if index < len(chunks) and not self._closed:
                self._index = index + 1
                return chunks[index]
        except BaseException:
            self._closed = True
            raise
        finally:
            self._running = False
        self._closed = True
        raise StopAsyncIteration

    @property
    def closed(self) -> bool:
        """Whether the stream has ended (exhausted, failed, cancelled or closed)."""
        return self._closed

    def close(self) -> None:
        """End the stream now; later ``__anext__`` calls raise StopAsyncIteration."""
        self._closed = True

    async def aclose(self) -> None:
        """End the stream (at once), then checkpoint."""
        self._closed = True
        await trio.lowlevel.checkpoint()

    async def __aenter__(self) -> MockStream[T]:
        """The stream itself. A checkpoint."""
        await trio.lowlevel.checkpoint()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


# ---------------------------------------------------------------------------
# LLM


def _frozen_dict(value: Mapping[str, Any]) -> FrozenDict[str, Any]:
    return value if isinstance(value, FrozenDict) else FrozenDict(value)


def _tool_calls(value: Iterable[dict[str, Any]] | None) -> FrozenList[dict[str, Any]] | None:
    return None if value is None else FrozenList(value)


def _usage(value: Mapping[str, int]) -> FrozenDict[str, int]:
    return value if isinstance(value, FrozenDict) else FrozenDict(value)


def _default_usage() -> FrozenDict[str, int]:
    return FrozenDict({"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30})


@frozen_compat
@attrs.frozen
class MockMessage:
    """A chat message given to :meth:`MockLLMProvider.complete`."""

    role: str
    content: str
    name: str | None = None
    tool_calls: FrozenList[dict[str, Any]] | None = attrs.field(default=None, converter=_tool_calls)


@frozen_compat
@attrs.frozen
class MockCompletion:
    """A completion returned by :meth:`MockLLMProvider.complete`."""

    id: str
    content: str
    role: str = "assistant"
    model: str = "mock-model"
    finish_reason: str = "stop"
    usage: FrozenDict[str, int] = attrs.field(factory=_default_usage, converter=_usage)
    tool_calls: FrozenList[dict[str, Any]] | None = attrs.field(default=None, converter=_tool_calls)

    def to_dict(self) -> dict[str, Any]:
        """The OpenAI-style ``chat.completion`` dict (``created`` is now, in epoch seconds)."""
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": int(utc_now().timestamp()),
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": self.role,
                        "content": self.content,
                        "tool_calls": None if self.tool_calls is None else list(self.tool_calls),
                    },
                    "finish_reason": self.finish_reason,
                }
            ],
            "usage": dict(self.usage),
        }


def _default_token_count(text: str) -> int:
    return len(text) // 4


class MockLLMProvider:
    """A chat model that answers from patterns, by echoing, or from a list of responses.

    The answer to a prompt is the response of the first pattern that matches it
    (``re.search``, case-insensitive, in the mapping's order), else
    ``"Echo: {prompt}"`` when ``echo`` is set, else the next of ``responses``
    (cycling; only this case advances the cycle).

    Args:
        responses: Canned responses, used in turn (``["Mock response"]`` when
            None or empty).
        patterns: Regular expression to response.
        echo: Answer ``"Echo: {prompt}"`` when no pattern matches.
        latency_ms: Simulated latency of each call.
        latency_jitter_ms: Uniform jitter in ``[-j, +j]`` added to the latency
            (the total is never below 0). Drawn only when ``latency_ms > 0``.
        fail_rate: Probability (0 to 1) that a call raises ``Exception(fail_error)``.
        fail_error: The message of simulated failures.
        tool_responses: Kept as :attr:`tool_responses`; nothing reads it (as in
            the reference).
        token_counter: Counts a text's tokens for ``usage``; ``len(text) // 4``
            by default.
        rng: Where jitter and failures are drawn from; a new ``random.Random()``
            when None.

    Raises:
        TypeError / ValueError: an argument has the wrong type or value (an
            invalid pattern is a ValueError naming it).
    """

    def __init__(
        self,
        *,
        responses: list[str] | None = None,
        patterns: dict[str, str] | None = None,
        echo: bool = False,
        latency_ms: float = 0,
        latency_jitter_ms: float = 0,
        fail_rate: float = 0.0,
        fail_error: str = "Mock LLM error",
        tool_responses: dict[str, Any] | None = None,
        token_counter: Callable[[str], int] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        owner = "MockLLMProvider"
        self._responses = _str_list(owner, "responses", responses, "Mock response")
        if patterns is not None and not isinstance(patterns, Mapping):
            raise TypeError(f"{owner}: patterns must be a dict or None; got {type_of(patterns)}")
        compiled: list[tuple[re.Pattern[str], str]] = []
        for pattern, response in (patterns or {}).items():
            check_str(owner, "patterns", pattern)
            check_str(owner, "patterns", response)
            try:
                compiled.append((re.compile(pattern, re.IGNORECASE), response))
            except re.error as exc:
                raise ValueError(
                    f"{owner}: patterns has an invalid regular expression {pattern!r}: {exc}"
                ) from None
        check_flag(owner, "echo", echo)
        check_number(owner, "latency_ms", latency_ms, minimum=0)
        check_number(owner, "latency_jitter_ms", latency_jitter_ms, minimum=0)
        check_str(owner, "fail_error", fail_error)
        check_callable(owner, "token_counter", token_counter, optional=True)
        self._patterns = compiled
        self._echo = echo
        self._latency_ms = latency_ms
        self._latency_jitter_ms = latency_jitter_ms
        self._fail_rate = _check_rate(owner, fail_rate)
        self._fail_error = fail_error
        self.tool_responses: dict[str, Any] = dict(tool_responses or {})
        self._token_counter = token_counter or _default_token_count
        self._rng = _check_rng(owner, rng)
        self._response_index = 0
        self._call_count = 0
        self._call_history: list[dict[str, Any]] = []

    async def _simulate_latency(self) -> None:
        if self._latency_ms > 0:
            jitter = self._rng.uniform(-self._latency_jitter_ms, self._latency_jitter_ms)
            await _sleep_ms(max(0, self._latency_ms + jitter))
        else:
            await trio.lowlevel.checkpoint()

    def _should_fail(self) -> bool:
        # Drawn on every call, even at fail_rate 0, so a seeded run draws the same
        # numbers as the reference's calls to random.random().
        return self._rng.random() < self._fail_rate

    def _get_response(self, prompt: str) -> str:
        for pattern, response in self._patterns:
            if pattern.search(prompt):
                return response
        if self._echo:
            return f"Echo: {prompt}"
        response = self._responses[self._response_index % len(self._responses)]
        self._response_index += 1
        return response

    async def complete(
        self,
        prompt: str,
        *,
        messages: list[MockMessage] | None = None,
        model: str = "mock-model",
        **_kwargs: Any,
    ) -> MockCompletion:
        """Answer ``prompt``. A checkpoint (the latency sleep).

        The call is counted and recorded in :attr:`call_history` (``prompt``,
        ``messages``, ``timestamp``) before the latency, so a call cancelled or
        failed there still counts.

        Raises:
            Exception: a simulated failure (``fail_error``).
            TypeError: ``prompt`` or ``model`` is not a str.
        """
        check_str("MockLLMProvider.complete", "prompt", prompt)
        check_str("MockLLMProvider.complete", "model", model)
        self._call_count += 1
        self._call_history.append(
            {"prompt": prompt, "messages": messages, "timestamp": utc_now_iso()}
        )
        await self._simulate_latency()
        if self._should_fail():
            raise Exception(self._fail_error)  # noqa: TRY002 - the reference's exact type
        content = self._get_response(prompt)
        prompt_tokens = self._token_counter(prompt)
        completion_tokens = self._token_counter(content)
        return MockCompletion(
            id=f"mock-{uuid4().hex[:8]}",
            content=content,
            model=model,
            usage={
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        )

    def stream(self, prompt: str, *, chunk_size: int = 5, **_kwargs: Any) -> MockStream[str]:
        """Stream the answer to ``prompt`` in chunks of ``chunk_size`` characters.

        The first chunk comes after the latency (and the failure draw); each
        later one, and the end, 10 ms after the previous (see :class:`MockStream`).
        Streams are not counted in :attr:`call_count` (as in the reference).

        Raises:
            TypeError / ValueError: ``prompt`` is not a str or ``chunk_size`` not
                an int >= 1 (at the call).
            Exception: a simulated failure, from the first ``__anext__``.
        """
        check_str("MockLLMProvider.stream", "prompt", prompt)
        check_int("MockLLMProvider.stream", "chunk_size", chunk_size, minimum=1)

        async def prepare() -> list[str]:
            await self._simulate_latency()
            if self._should_fail():
                raise Exception(self._fail_error)  # noqa: TRY002 - the reference's exact type
            content = self._get_response(prompt)
            return [content[i : i + chunk_size] for i in range(0, len(content), chunk_size)]

        return MockStream(prepare, 0.01)

    @property
    def call_count(self) -> int:
        """How many :meth:`complete` calls were made (since the last :meth:`reset`)."""
        return self._call_count

    @property
    def call_history(self) -> list[dict[str, Any]]:
        """One ``{"prompt", "messages", "timestamp"}`` dict per :meth:`complete` call."""
        return self._call_history

    def reset(self) -> None:
        """Forget the calls and restart the response cycle."""
        self._call_count = 0
        self._call_history.clear()
        self._response_index = 0


# ---------------------------------------------------------------------------
# Speech to text


def _frozen_words(value: Iterable[dict[str, Any]]) -> FrozenList[dict[str, Any]]:
    # Typed as the field is: the checkers take the constructor's parameter from the
    # converter's, and Iterable[Any] let a list of anything through.
    return value if isinstance(value, FrozenList) else FrozenList(value)


@frozen_compat
@attrs.frozen
class MockTranscription:
    """A transcription returned by :meth:`MockSTTProvider.transcribe`."""

    text: str
    confidence: float = 0.95
    duration_ms: float = 0.0
    language: str = "en"
    words: FrozenList[dict[str, Any]] = attrs.field(factory=FrozenList, converter=_frozen_words)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict."""
        return {
            "text": self.text,
            "confidence": self.confidence,
            "duration_ms": self.duration_ms,
            "language": self.language,
            "words": list(self.words),
        }


def _audio_hash(audio: bytes) -> str:
    return hashlib.md5(audio).hexdigest()[:16]


class MockSTTProvider:
    """A speech-to-text model with deterministic answers.

    ``audio_map`` maps the first 16 hex digits of the audio's MD5 to its text;
    audio not in the map gets the next of ``transcriptions`` (cycling).

    Args:
        transcriptions: Texts used in turn (``["Mock transcription"]`` when None or empty).
        audio_map: Audio hash to text.
        latency_ms: Simulated latency of each call.
        latency_jitter_ms: Uniform jitter in ``[-j, +j]`` (drawn only when ``latency_ms > 0``).
        fail_rate: Probability (0 to 1) that a call raises ``Exception("Mock STT error")``.
        simulate_confidence: Draw the confidence uniformly from [0.85, 0.99]
            instead of a fixed 0.95.
        rng: Where jitter, failures and confidences are drawn from.

    Raises:
        TypeError / ValueError: an argument has the wrong type or value.
    """

    def __init__(
        self,
        *,
        transcriptions: list[str] | None = None,
        audio_map: dict[str, str] | None = None,
        latency_ms: float = 100,
        latency_jitter_ms: float = 20,
        fail_rate: float = 0.0,
        simulate_confidence: bool = True,
        rng: random.Random | None = None,
    ) -> None:
        owner = "MockSTTProvider"
        self._transcriptions = _str_list(
            owner, "transcriptions", transcriptions, "Mock transcription"
        )
        if audio_map is not None and not isinstance(audio_map, Mapping):
            raise TypeError(f"{owner}: audio_map must be a dict or None; got {type_of(audio_map)}")
        check_number(owner, "latency_ms", latency_ms, minimum=0)
        check_number(owner, "latency_jitter_ms", latency_jitter_ms, minimum=0)
        check_flag(owner, "simulate_confidence", simulate_confidence)
        self._audio_map = dict(audio_map or {})
        self._latency_ms = latency_ms
        self._latency_jitter_ms = latency_jitter_ms
        self._fail_rate = _check_rate(owner, fail_rate)
        self._simulate_confidence = simulate_confidence
        self._rng = _check_rng(owner, rng)
        self._transcription_index = 0
        self._call_count = 0

    async def transcribe(
        self, audio: bytes | bytearray | memoryview, *, language: str = "en", **_kwargs: Any
    ) -> MockTranscription:
        """Transcribe ``audio``. A checkpoint (the latency sleep).

        ``duration_ms`` assumes 16 kHz 16-bit mono: ``len(audio) / 32``.

        Raises:
            Exception: a simulated failure ("Mock STT error").
            TypeError: ``audio`` is not bytes (or bytearray, memoryview).
        """
        if not isinstance(audio, bytes | bytearray | memoryview):
            raise TypeError(
                f"MockSTTProvider.transcribe: audio must be bytes; got {type_of(audio)}"
            )
        self._call_count += 1
        rng = self._rng
        if self._latency_ms > 0:
            jitter = rng.uniform(-self._latency_jitter_ms, self._latency_jitter_ms)
            await _sleep_ms(max(0, self._latency_ms + jitter))
        else:
            await trio.lowlevel.checkpoint()
        if rng.random() < self._fail_rate:
            raise Exception("Mock STT error")  # noqa: TRY002 - the reference's exact type
        text = self._audio_map.get(_audio_hash(bytes(audio)))
        if text is None:
            text = self._transcriptions[self._transcription_index % len(self._transcriptions)]
            self._transcription_index += 1
        confidence = rng.uniform(0.85, 0.99) if self._simulate_confidence else 0.95
        return MockTranscription(
            text=text,
            confidence=confidence,
            duration_ms=(len(audio) / (16000 * 2)) * 1000,
            language=language,
        )

    @property
    def call_count(self) -> int:
        """How many :meth:`transcribe` calls were made (since the last :meth:`reset`)."""
        return self._call_count

    def reset(self) -> None:
        """Forget the calls and restart the transcription cycle."""
        self._call_count = 0
        self._transcription_index = 0


# ---------------------------------------------------------------------------
# Text to speech


@frozen_compat
@attrs.frozen
class MockAudioChunk:
    """A chunk of :meth:`MockTTSProvider.stream` (PCM 16-bit)."""

    data: bytes
    sample_rate: int = 16000
    channels: int = 1
    format: str = "pcm_16"


class MockTTSProvider:
    """A text-to-speech model whose audio is derived from the text's MD5.

    The same text always gives the same bytes, ``len(text) * bytes_per_char`` of them.

    Args:
        sample_rate: The sample rate the chunks report and streaming sizes by.
        latency_ms: Simulated latency of each call (no jitter).
        bytes_per_char: Audio bytes per character of text.
        fail_rate: Probability (0 to 1) that a call raises ``Exception("Mock TTS error")``.
        rng: Where failures are drawn from.

    Raises:
        TypeError / ValueError: an argument has the wrong type or value.
    """

    def __init__(
        self,
        *,
        sample_rate: int = 16000,
        latency_ms: float = 50,
        bytes_per_char: int = 100,
        fail_rate: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        owner = "MockTTSProvider"
        check_int(owner, "sample_rate", sample_rate, minimum=1)
        check_number(owner, "latency_ms", latency_ms, minimum=0)
        check_int(owner, "bytes_per_char", bytes_per_char, minimum=0)
        self._sample_rate = sample_rate
        self._latency_ms = latency_ms
        self._bytes_per_char = bytes_per_char
        self._fail_rate = _check_rate(owner, fail_rate)
        self._rng = _check_rng(owner, rng)
        self._call_count = 0

    def _generate_audio(self, text: str) -> bytes:
        # Byte i is seed[i % 16] ^ (i % 256): a pattern of period 256, built once.
        seed = hashlib.md5(text.encode()).digest()
        block = bytes(seed[i % 16] ^ i for i in range(256))
        size = len(text) * self._bytes_per_char
        return (block * (size // 256 + 1))[:size]

    async def _start(self, text: str) -> bytes:
        await _sleep_ms(self._latency_ms)
        if self._rng.random() < self._fail_rate:
            raise Exception("Mock TTS error")  # noqa: TRY002 - the reference's exact type
        return self._generate_audio(text)

    async def synthesize(self, text: str, *, _voice: str = "default", **_kwargs: Any) -> bytes:
        """The audio for ``text``. A checkpoint (the latency sleep).

        Raises:
            Exception: a simulated failure ("Mock TTS error").
            TypeError: ``text`` is not a str.
        """
        check_str("MockTTSProvider.synthesize", "text", text)
        self._call_count += 1
        return await self._start(text)

    def stream(
        self, text: str, *, chunk_duration_ms: int = 100, **_kwargs: Any
    ) -> MockStream[MockAudioChunk]:
        """Stream the audio for ``text`` in chunks of ``chunk_duration_ms`` of 16-bit audio.

        A chunk holds ``int(sample_rate * 2 / 1000 * chunk_duration_ms)`` bytes
        (the last may be shorter); after each the stream sleeps
        ``chunk_duration_ms`` (see :class:`MockStream`). Streams are not counted
        in :attr:`call_count` (as in the reference).

        Raises:
            TypeError / ValueError: ``text`` is not a str, ``chunk_duration_ms``
                not a number or so small that a chunk would hold no byte (at the call).
            Exception: a simulated failure, from the first ``__anext__``.
        """
        owner = "MockTTSProvider.stream"
        check_str(owner, "text", text)
        check_number(owner, "chunk_duration_ms", chunk_duration_ms, minimum=0, above=True)
        try:
            chunk_bytes = int((self._sample_rate * 2) / 1000 * chunk_duration_ms)
        except OverflowError:
            # Larger than any audio: the whole text in one chunk.
            chunk_bytes = sys.maxsize
        if chunk_bytes < 1:
            raise ValueError(
                f"{owner}: chunk_duration_ms must give chunks of at least one byte;"
                f" got {chunk_duration_ms!r}"
            )
        sample_rate = self._sample_rate

        async def prepare() -> list[MockAudioChunk]:
            audio = await self._start(text)
            return [
                MockAudioChunk(data=audio[i : i + chunk_bytes], sample_rate=sample_rate)
                for i in range(0, len(audio), chunk_bytes)
            ]

        return MockStream(prepare, chunk_duration_ms / 1000)

    @property
    def call_count(self) -> int:
        """How many :meth:`synthesize` calls were made (since the last :meth:`reset`)."""
        return self._call_count

    def reset(self) -> None:
        """Forget the calls."""
        self._call_count = 0


# ---------------------------------------------------------------------------
# Auth


def _in_one_hour() -> datetime:
    return utc_now() + timedelta(hours=1)


def _claim_roles(value: Iterable[str]) -> FrozenList[str]:
    if type(value) is FrozenList:
        return value
    return FrozenList(_roles("MockJWTClaims", value))


def _claim_custom(value: Mapping[str, Any]) -> FrozenDict[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"MockJWTClaims: custom must be a mapping; got {type_of(value)}")
    return _frozen_dict(value)


@frozen_compat
@attrs.frozen
class MockJWTClaims:
    """The claims :meth:`MockAuthProvider.validate` returns.

    Raises:
        TypeError / ValueError: ``sub``, ``aud`` or ``iss`` is not a str, ``org_id``
            neither a str nor None, ``roles`` not a list of str (a bare str is
            refused), ``custom`` not a mapping, or ``exp`` / ``iat`` not a
            timezone-aware datetime (a naive ``exp`` made :meth:`MockAuthProvider.validate`
            fail comparing it with the current time).
    """

    sub: str
    aud: str = "stageflow"
    iss: str = "mock-auth"
    exp: datetime = attrs.field(factory=_in_one_hour)
    iat: datetime = attrs.field(factory=utc_now)
    roles: FrozenList[str] = attrs.field(factory=FrozenList, converter=_claim_roles)
    org_id: str | None = None
    custom: FrozenDict[str, Any] = attrs.field(factory=FrozenDict, converter=_claim_custom)

    def __attrs_post_init__(self) -> None:
        owner = "MockJWTClaims"
        check_str(owner, "sub", self.sub)
        check_str(owner, "aud", self.aud)
        check_str(owner, "iss", self.iss)
        if self.org_id is not None:
            check_str(owner, "org_id", self.org_id)
        for param in ("exp", "iat"):
            value = getattr(self, param)
            if not isinstance(value, datetime):
                raise TypeError(f"{owner}: {param} must be a datetime; got {type_of(value)}")
            if value.utcoffset() is None:
                raise ValueError(f"{owner}: {param} must be timezone-aware; got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        """JWT-style claims: ``exp`` and ``iat`` in epoch seconds, then the custom claims."""
        return {
            "sub": self.sub,
            "aud": self.aud,
            "iss": self.iss,
            "exp": int(self.exp.timestamp()),
            "iat": int(self.iat.timestamp()),
            "roles": list(self.roles),
            "org_id": self.org_id,
            **self.custom,
        }


class MockAuthProvider:
    """Validates mock tokens.

    Args:
        valid_tokens: Token to claims (copied; :meth:`create_token` adds to the copy).
        default_claims: What ``accept_any`` returns for unknown tokens
            (``MockJWTClaims(sub="mock-user")`` when None).
        accept_any: Accept unknown tokens.
        fail_rate: Probability (0 to 1) that a validation raises
            ``ValueError("Mock auth failure")``.
        rng: Where failures are drawn from.

    Raises:
        TypeError / ValueError: an argument has the wrong type or value.
    """

    def __init__(
        self,
        *,
        valid_tokens: dict[str, MockJWTClaims] | None = None,
        default_claims: MockJWTClaims | None = None,
        accept_any: bool = False,
        fail_rate: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        owner = "MockAuthProvider"
        if valid_tokens is not None and not isinstance(valid_tokens, Mapping):
            raise TypeError(
                f"{owner}: valid_tokens must be a dict or None; got {type_of(valid_tokens)}"
            )
        if default_claims is not None and not isinstance(default_claims, MockJWTClaims):
            raise TypeError(
                f"{owner}: default_claims must be a MockJWTClaims or None;"
                f" got {type_of(default_claims)}"
            )
        check_flag(owner, "accept_any", accept_any)
        self._valid_tokens: dict[str, MockJWTClaims] = dict(valid_tokens or {})
        self._default_claims = default_claims or MockJWTClaims(sub="mock-user")
        self._accept_any = accept_any
        self._fail_rate = _check_rate(owner, fail_rate)
        self._rng = _check_rng(owner, rng)
        self._validation_count = 0
        self._validation_history: list[dict[str, Any]] = []

    async def validate(self, token: str, *, _audience: str | None = None) -> MockJWTClaims:
        """The claims of ``token``. A checkpoint, first: a cancelled call records nothing.

        The call is counted and recorded in :attr:`validation_history` (the
        token cut to 20 characters plus ``"..."``, and a timestamp).

        Raises:
            ValueError: "Mock auth failure" (simulated), "Token expired" (a known
                token past its ``exp``) or "Invalid token" (unknown, without ``accept_any``).
            TypeError: ``token`` is not a str.
        """
        check_str("MockAuthProvider.validate", "token", token)
        await trio.lowlevel.checkpoint()
        self._validation_count += 1
        self._validation_history.append(
            {
                "token": token[:20] + "..." if len(token) > 20 else token,
                "timestamp": utc_now_iso(),
            }
        )
        if self._rng.random() < self._fail_rate:
            raise ValueError("Mock auth failure")
        claims = self._valid_tokens.get(token)
        if claims is not None:
            if claims.exp < utc_now():
                raise ValueError("Token expired")
            return claims
        if self._accept_any:
            return self._default_claims
        raise ValueError("Invalid token")

    def create_token(
        self,
        sub: str,
        *,
        roles: list[str] | None = None,
        org_id: str | None = None,
        expires_in_hours: int = 1,
    ) -> tuple[str, MockJWTClaims]:
        """Make a token ``"mock-<32 hex>"`` valid for ``expires_in_hours``; return it and its claims.

        Raises:
            TypeError: ``sub`` is not a str, ``org_id`` neither a str nor None,
                ``roles`` not a list of str or None (a bare str is refused),
                ``expires_in_hours`` not a number.
            ValueError: ``expires_in_hours`` is NaN, infinite, or puts the expiry
                outside the years ``datetime`` holds.
        """
        owner = "MockAuthProvider.create_token"
        check_str(owner, "sub", sub)
        if org_id is not None:
            check_str(owner, "org_id", org_id)
        role_list = _roles(owner, roles)
        check_number(owner, "expires_in_hours", expires_in_hours)
        try:
            exp = utc_now() + timedelta(hours=expires_in_hours)
        except OverflowError:
            raise ValueError(
                f"{owner}: expires_in_hours must give an expiry within years 1-9999;"
                f" got {expires_in_hours!r}"
            ) from None
        claims = MockJWTClaims(sub=sub, roles=role_list, org_id=org_id, exp=exp)
        token = f"mock-{uuid4().hex}"
        self._valid_tokens[token] = claims
        return token, claims

    @property
    def validation_count(self) -> int:
        """How many :meth:`validate` calls were made (since the last :meth:`reset`)."""
        return self._validation_count

    @property
    def validation_history(self) -> list[dict[str, Any]]:
        """One ``{"token", "timestamp"}`` dict per :meth:`validate` call."""
        return self._validation_history

    def reset(self) -> None:
        """Forget the validations (the known tokens stay)."""
        self._validation_count = 0
        self._validation_history.clear()


# ---------------------------------------------------------------------------
# Tools


@frozen_compat
@attrs.frozen
class MockToolResult:
    """The result of :meth:`MockToolExecutor.execute`."""

    success: bool
    output: Any
    error: str | None = None
    duration_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict."""
        return {
            "success": self.success,
            "output": self.output,
            "error": self.error,
            "duration_ms": self.duration_ms,
        }


ToolHandler = Callable[[dict[str, Any]], Any]


class MockToolExecutor:
    """Runs tool calls through plain functions ``handler(arguments) -> output``.

    Handlers are called, not awaited (as in the reference): an ``async def``
    handler is refused with a TypeError.

    Args:
        tools: Tool name to handler (copied; :meth:`register_tool` adds more).
        default_output: The output of unknown tools (``{"status": "ok"}`` when None).
        latency_ms: Simulated latency of each call.
        fail_rate: Probability (0 to 1) that a call fails with "Mock tool execution failed".
        rng: Where failures are drawn from.

    Raises:
        TypeError / ValueError: an argument has the wrong type or value.
    """

    def __init__(
        self,
        *,
        tools: dict[str, ToolHandler] | None = None,
        default_output: Any = None,
        latency_ms: float = 10,
        fail_rate: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        owner = "MockToolExecutor"
        if tools is not None and not isinstance(tools, Mapping):
            raise TypeError(f"{owner}: tools must be a dict or None; got {type_of(tools)}")
        for name, handler in (tools or {}).items():
            check_callable(owner, "tools", handler)
            check_plain_callable(owner, f"tools[{name!r}]", handler, subject="handlers are")
        check_number(owner, "latency_ms", latency_ms, minimum=0)
        self._tools: dict[str, ToolHandler] = dict(tools or {})
        self._default_output = {"status": "ok"} if default_output is None else default_output
        self._latency_ms = latency_ms
        self._fail_rate = _check_rate(owner, fail_rate)
        self._rng = _check_rng(owner, rng)
        self._execution_count = 0
        self._execution_history: list[dict[str, Any]] = []

    async def execute(self, tool_name: str, arguments: dict[str, Any]) -> MockToolResult:
        """Run ``tool_name`` with ``arguments``. A checkpoint (the latency sleep).

        Never raises for a tool's error: an exception from the handler, or a
        simulated failure, gives ``success=False`` with the error's text.
        ``duration_ms`` is measured on trio's clock. The call is counted and
        recorded in :attr:`execution_history` before the latency.

        Raises:
            TypeError: ``tool_name`` is not a str.
        """
        check_str("MockToolExecutor.execute", "tool_name", tool_name)
        start = trio.current_time()
        self._execution_count += 1
        self._execution_history.append(
            {"tool": tool_name, "arguments": arguments, "timestamp": utc_now_iso()}
        )
        await _sleep_ms(self._latency_ms)
        if self._rng.random() < self._fail_rate:
            return MockToolResult(
                success=False,
                output=None,
                error="Mock tool execution failed",
                duration_ms=(trio.current_time() - start) * 1000,
            )
        handler = self._tools.get(tool_name)
        try:
            output = self._default_output if handler is None else handler(arguments)
        except Exception as exc:  # noqa: BLE001 - a tool's failure becomes its result
            return MockToolResult(
                success=False,
                output=None,
                error=error_text(exc),
                duration_ms=(trio.current_time() - start) * 1000,
            )
        return MockToolResult(
            success=True, output=output, duration_ms=(trio.current_time() - start) * 1000
        )

    def register_tool(self, name: str, handler: ToolHandler) -> None:
        """Add (or replace) the handler of tool ``name``."""
        check_str("MockToolExecutor.register_tool", "name", name)
        check_plain_callable(
            "MockToolExecutor.register_tool", "handler", handler, subject="handlers are"
        )
        self._tools[name] = handler

    @property
    def execution_count(self) -> int:
        """How many :meth:`execute` calls were made (since the last :meth:`reset`)."""
        return self._execution_count

    @property
    def execution_history(self) -> list[dict[str, Any]]:
        """One ``{"tool", "arguments", "timestamp"}`` dict per :meth:`execute` call."""
        return self._execution_history

    def reset(self) -> None:
        """Forget the calls (the tools stay)."""
        self._execution_count = 0
        self._execution_history.clear()
