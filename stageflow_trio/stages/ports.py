"""Ports: the capabilities (db, callbacks, providers) injected into stages.

Each domain gets its own small frozen bundle so a stage receives only what it
needs: :class:`CorePorts` (persistence, status callbacks), :class:`LLMPorts`
(language models, token streaming) and :class:`AudioPorts` (speech providers,
audio streaming). Every field defaults to None. The ``create_*_ports``
factories are keyword-only spellings of the constructors.

Under trio, :attr:`CorePorts.db_lock` is a :class:`trio.Lock` (the reference
uses an ``asyncio.Lock``). The callbacks must be callable and ``audio_data`` /
``audio_format`` bytes / str (or None): TypeError at construction otherwise.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

from stageflow_trio._frozen import frozen_compat

__all__ = [
    "AudioPorts",
    "CorePorts",
    "LLMPorts",
    "create_audio_ports",
    "create_core_ports",
    "create_llm_ports",
]

_SendStatus = Callable[[str, str, dict[str, Any] | None], Awaitable[None]]
_SendToken = Callable[[str], Awaitable[None]]
_SendAudioChunk = Callable[[bytes, str, int, bool], Awaitable[None]]
_SendTranscript = Callable[[Any, str, float, int], Awaitable[None]]


def _check_db_lock(_: object, __: attrs.Attribute[Any], value: object) -> None:
    # An asyncio.Lock would fail only at first use, inside a stage; catch it here.
    if value is not None and not isinstance(value, trio.Lock):
        raise TypeError(f"db_lock must be a trio.Lock or None, got {type(value).__name__}")


def _check_callback(ports: object, attribute: attrs.Attribute[Any], value: object) -> None:
    # A stage would find out only when it first awaits the callback.
    if value is not None and not callable(value):
        raise TypeError(
            f"{type(ports).__name__}: {attribute.name} must be an async callable or None; "
            f"got {type(value).__name__}"
        )


def _check_optional(
    rule: str, *classes: type[Any]
) -> Callable[[object, attrs.Attribute[Any], object], None]:
    def check(ports: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is not None and not isinstance(value, classes):
            raise TypeError(
                f"{type(ports).__name__}: {attribute.name} must be {rule} or None; "
                f"got {type(value).__name__}"
            )

    return check


@frozen_compat
@attrs.frozen
class CorePorts:
    """Capabilities most stages need.

    Attributes:
        db: A database session, of whatever type the application uses.
        db_lock: A :class:`trio.Lock` serializing access to ``db``.
        call_logger_db: A database session for logging provider calls.
        send_status: ``await send_status(stage, status, data)`` reports progress.
        call_logger: A logger of provider API calls.
        retry_fn: A retry helper for failed operations.
        realtime_bus: Named channels for stage-to-stage streaming, e.g. a
            :class:`~stageflow_trio.helpers.streaming.RealtimeStageBus`.
    """

    db: Any = None
    db_lock: trio.Lock | None = attrs.field(default=None, validator=_check_db_lock)
    call_logger_db: Any = None
    send_status: _SendStatus | None = attrs.field(default=None, validator=_check_callback)
    call_logger: Any = None
    retry_fn: Any = None
    realtime_bus: Any = None


@frozen_compat
@attrs.frozen
class LLMPorts:
    """Capabilities of stages that call language models.

    Attributes:
        llm_provider: The provider that generates text.
        chat_service: A service that builds chat context and runs the model.
        llm_chunk_queue: Where streamed model chunks go.
        send_token: ``await send_token(token)`` streams one token out.
    """

    llm_provider: Any = None
    chat_service: Any = None
    llm_chunk_queue: Any = None
    send_token: _SendToken | None = attrs.field(default=None, validator=_check_callback)


@frozen_compat
@attrs.frozen
class AudioPorts:
    """Capabilities of stages that process speech and audio.

    Attributes:
        tts_provider: The text-to-speech provider.
        stt_provider: The speech-to-text provider.
        send_audio_chunk: ``await send_audio_chunk(chunk, format, sequence, is_final)``.
        send_transcript: ``await send_transcript(message_id, text, confidence, duration_ms)``.
        audio_data: Raw input audio.
        audio_format: The format of ``audio_data`` (e.g. ``"wav"``).
        tts_text_queue: Where text chunks to synthesize go.
        recording: Recording metadata.
    """

    tts_provider: Any = None
    stt_provider: Any = None
    send_audio_chunk: _SendAudioChunk | None = attrs.field(default=None, validator=_check_callback)
    send_transcript: _SendTranscript | None = attrs.field(default=None, validator=_check_callback)
    audio_data: bytes | None = attrs.field(
        default=None, validator=_check_optional("bytes", bytes, bytearray, memoryview)
    )
    audio_format: str | None = attrs.field(default=None, validator=_check_optional("a str", str))
    tts_text_queue: Any = None
    recording: Any = None


def create_core_ports(
    *,
    db: Any = None,
    db_lock: trio.Lock | None = None,
    call_logger_db: Any = None,
    send_status: _SendStatus | None = None,
    call_logger: Any = None,
    retry_fn: Any = None,
    realtime_bus: Any = None,
) -> CorePorts:
    """Build :class:`CorePorts`; every argument defaults to None."""
    return CorePorts(
        db=db,
        db_lock=db_lock,
        call_logger_db=call_logger_db,
        send_status=send_status,
        call_logger=call_logger,
        retry_fn=retry_fn,
        realtime_bus=realtime_bus,
    )


def create_llm_ports(
    *,
    llm_provider: Any = None,
    chat_service: Any = None,
    llm_chunk_queue: Any = None,
    send_token: _SendToken | None = None,
) -> LLMPorts:
    """Build :class:`LLMPorts`; every argument defaults to None."""
    return LLMPorts(
        llm_provider=llm_provider,
        chat_service=chat_service,
        llm_chunk_queue=llm_chunk_queue,
        send_token=send_token,
    )


def create_audio_ports(
    *,
    tts_provider: Any = None,
    stt_provider: Any = None,
    send_audio_chunk: _SendAudioChunk | None = None,
    send_transcript: _SendTranscript | None = None,
    audio_data: bytes | None = None,
    audio_format: str | None = None,
    tts_text_queue: Any = None,
    recording: Any = None,
    tts_client: Any = None,
    stt_client: Any = None,
    audio_callback: _SendAudioChunk | None = None,
) -> AudioPorts:
    """Build :class:`AudioPorts`; every argument defaults to None.

    ``tts_client``, ``stt_client`` and ``audio_callback`` are the older names
    (stageflow 1.2 accepts them) of ``tts_provider``, ``stt_provider`` and
    ``send_audio_chunk``; each is used only when the newer name is not given.
    """
    return AudioPorts(
        tts_provider=tts_provider if tts_provider is not None else tts_client,
        stt_provider=stt_provider if stt_provider is not None else stt_client,
        send_audio_chunk=send_audio_chunk if send_audio_chunk is not None else audio_callback,
        send_transcript=send_transcript,
        audio_data=audio_data,
        audio_format=audio_format,
        tts_text_queue=tts_text_queue,
        recording=recording,
    )
