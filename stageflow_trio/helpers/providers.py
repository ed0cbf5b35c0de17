"""What LLM, speech-to-text and text-to-speech providers return, in one shape each.

Each response is frozen and has ``to_dict()`` (JSON-ready, without the raw
provider payload or the audio bytes) and ``to_otel_attributes()`` (span
attributes under ``llm.*``, ``stt.*`` or ``tts.*``).

Example::

    response = LLMResponse(content="Hi!", model="gpt-4", provider="openai",
                           input_tokens=10, output_tokens=5)
    assert response.total_tokens == 15
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from stageflow_trio._args import check_flag, check_int, check_number, type_of
from stageflow_trio._frozen import frozen_compat
from stageflow_trio.utils.frozen import FrozenList

__all__ = [
    "LLMResponse",
    "STTResponse",
    "TTSResponse",
]


def _frozen_list(owner: str, param: str, value: object) -> FrozenList[dict[str, Any]]:
    if type(value) is FrozenList:
        return value
    if type(value) is list or type(value) is tuple or value is None:
        return FrozenList(value)  # None: an empty list
    # A str would become a list of its characters and a dict the list of its keys.
    if isinstance(value, str | bytes | bytearray | Mapping) or not isinstance(value, Iterable):
        raise TypeError(f"{owner}: {param} must be a list of dicts; got {type_of(value)}")
    return FrozenList(value)


def _tool_calls(value: Iterable[dict[str, Any]]) -> FrozenList[dict[str, Any]]:
    return _frozen_list("LLMResponse", "tool_calls", value)


def _words(value: Iterable[dict[str, Any]]) -> FrozenList[dict[str, Any]]:
    return _frozen_list("STTResponse", "words", value)


def _check_str(owner: str, param: str, value: object) -> None:
    if type(value) is not str:
        raise TypeError(f"{owner}: {param} must be a str; got {type_of(value)}")


@frozen_compat
@attrs.frozen
class LLMResponse:
    """A language model's answer with its token usage.

    Attributes:
        content: The generated text.
        model: The model that produced it.
        provider: E.g. ``"openai"``, ``"anthropic"``.
        input_tokens: Prompt tokens.
        output_tokens: Completion tokens.
        latency_ms: Request latency in milliseconds.
        finish_reason: Why generation stopped (``"stop"``, ``"length"``, ...).
        tool_calls: Tool calls requested by the model, held in a read-only list.
        cached_tokens: Prompt tokens served from the provider's cache.
        raw_response: The provider's own payload, for debugging; not serialized.

    Raises:
        TypeError, ValueError: a field has the wrong type, a negative count or
            latency, or ``tool_calls`` is a str or a dict (not a list of dicts).
    """

    content: str
    model: str
    provider: str
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: float = 0.0
    finish_reason: str | None = None
    tool_calls: FrozenList[dict[str, Any]] = attrs.field(factory=FrozenList, converter=_tool_calls)
    cached_tokens: int = 0
    raw_response: Any = None

    def __attrs_post_init__(self) -> None:
        owner = "LLMResponse"
        for name in ("content", "model", "provider"):
            _check_str(owner, name, getattr(self, name))
        for name in ("input_tokens", "output_tokens", "cached_tokens"):
            check_int(owner, name, getattr(self, name), minimum=0)
        check_number(owner, "latency_ms", self.latency_ms, minimum=0)
        if self.finish_reason is not None:
            _check_str(owner, "finish_reason", self.finish_reason)

    @property
    def total_tokens(self) -> int:
        """``input_tokens + output_tokens``."""
        return self.input_tokens + self.output_tokens

    def to_dict(self) -> dict[str, Any]:
        """Every field but ``raw_response``, plus ``total_tokens``."""
        return {
            "content": self.content,
            "model": self.model,
            "provider": self.provider,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
            "latency_ms": self.latency_ms,
            "finish_reason": self.finish_reason,
            "tool_calls": list(self.tool_calls),
            "cached_tokens": self.cached_tokens,
        }

    def to_otel_attributes(self) -> dict[str, Any]:
        """Span attributes ``llm.*``; a missing finish reason is ``""``."""
        return {
            "llm.model": self.model,
            "llm.provider": self.provider,
            "llm.input_tokens": self.input_tokens,
            "llm.output_tokens": self.output_tokens,
            "llm.total_tokens": self.total_tokens,
            "llm.latency_ms": self.latency_ms,
            "llm.finish_reason": self.finish_reason or "",
            "llm.cached_tokens": self.cached_tokens,
        }


@frozen_compat
@attrs.frozen
class STTResponse:
    """A transcription with its confidence and audio metadata.

    Attributes:
        text: The transcript.
        confidence: 0.0 to 1.0.
        duration_ms: Length of the audio in milliseconds.
        language: Language code, detected or given.
        provider: E.g. ``"deepgram"``, ``"whisper"``.
        model: Model identifier.
        latency_ms: Processing latency in milliseconds.
        words: Word-level timings and confidences, held in a read-only list.
        is_final: False for an interim result.
        raw_response: The provider's own payload, for debugging; not serialized.

    Raises:
        TypeError, ValueError: a field has the wrong type, a negative duration or
            latency, or ``words`` is a str or a dict (not a list of dicts).
    """

    text: str
    confidence: float = 1.0
    duration_ms: float = 0.0
    language: str = "en"
    provider: str = ""
    model: str = ""
    latency_ms: float = 0.0
    words: FrozenList[dict[str, Any]] = attrs.field(factory=FrozenList, converter=_words)
    is_final: bool = True
    raw_response: Any = None

    def __attrs_post_init__(self) -> None:
        owner = "STTResponse"
        for name in ("text", "language", "provider", "model"):
            _check_str(owner, name, getattr(self, name))
        check_number(owner, "confidence", self.confidence)
        for name in ("duration_ms", "latency_ms"):
            check_number(owner, name, getattr(self, name), minimum=0)
        check_flag(owner, "is_final", self.is_final)

    def to_dict(self) -> dict[str, Any]:
        """Every field but ``raw_response``."""
        return {
            "text": self.text,
            "confidence": self.confidence,
            "duration_ms": self.duration_ms,
            "language": self.language,
            "provider": self.provider,
            "model": self.model,
            "latency_ms": self.latency_ms,
            "words": list(self.words),
            "is_final": self.is_final,
        }

    def to_otel_attributes(self) -> dict[str, Any]:
        """Span attributes ``stt.*`` (the text and words are left out)."""
        return {
            "stt.provider": self.provider,
            "stt.model": self.model,
            "stt.confidence": self.confidence,
            "stt.duration_ms": self.duration_ms,
            "stt.language": self.language,
            "stt.latency_ms": self.latency_ms,
            "stt.is_final": self.is_final,
        }


def _audio_bytes(value: bytes | bytearray | memoryview) -> bytes:
    if type(value) is bytes:
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"TTSResponse: audio must be bytes; got {type_of(value)}")


@frozen_compat
@attrs.frozen
class TTSResponse:
    """Synthesized audio with its format and metadata.

    Attributes:
        audio: The audio bytes (a bytearray or memoryview is copied to bytes).
        duration_ms: Length of the audio in milliseconds.
        sample_rate: Samples per second.
        format: E.g. ``"pcm_16"``, ``"mp3"``, ``"opus"``.
        provider: E.g. ``"elevenlabs"``.
        model: Model or voice identifier.
        latency_ms: Processing latency in milliseconds.
        channels: Audio channels.
        characters_processed: Input characters synthesized.
        raw_response: The provider's own payload, for debugging; not serialized.

    Raises:
        TypeError, ValueError: a field has the wrong type, or a count, the
            duration or the latency is negative.
    """

    audio: bytes = attrs.field(converter=_audio_bytes)
    duration_ms: float = 0.0
    sample_rate: int = 16000
    format: str = "pcm_16"
    provider: str = ""
    model: str = ""
    latency_ms: float = 0.0
    channels: int = 1
    characters_processed: int = 0
    raw_response: Any = None

    def __attrs_post_init__(self) -> None:
        owner = "TTSResponse"
        for name in ("format", "provider", "model"):
            _check_str(owner, name, getattr(self, name))
        for name in ("duration_ms", "latency_ms"):
            check_number(owner, name, getattr(self, name), minimum=0)
        for name in ("sample_rate", "channels", "characters_processed"):
            check_int(owner, name, getattr(self, name), minimum=0)

    @property
    def byte_count(self) -> int:
        """``len(audio)``."""
        return len(self.audio)

    def to_dict(self) -> dict[str, Any]:
        """Every field but ``audio`` and ``raw_response``, plus ``byte_count``."""
        return {
            "byte_count": self.byte_count,
            "duration_ms": self.duration_ms,
            "sample_rate": self.sample_rate,
            "format": self.format,
            "provider": self.provider,
            "model": self.model,
            "latency_ms": self.latency_ms,
            "channels": self.channels,
            "characters_processed": self.characters_processed,
        }

    def to_otel_attributes(self) -> dict[str, Any]:
        """Span attributes ``tts.*``."""
        return {
            "tts.provider": self.provider,
            "tts.model": self.model,
            "tts.duration_ms": self.duration_ms,
            "tts.sample_rate": self.sample_rate,
            "tts.format": self.format,
            "tts.latency_ms": self.latency_ms,
            "tts.byte_count": self.byte_count,
            "tts.characters_processed": self.characters_processed,
        }
