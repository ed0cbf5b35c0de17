"""Tests for stageflow_trio.stages.ports."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
from types import ModuleType
from typing import Any

import attrs
import pytest
import trio

from stageflow_trio.stages import ports
from stageflow_trio.stages.ports import (
    AudioPorts,
    CorePorts,
    LLMPorts,
    create_audio_ports,
    create_core_ports,
    create_llm_ports,
)

# stageflow 1.2.0 added the realtime bus port (after the 0.9.1 fields); the
# agent/realtime port follows 1.2.0 there.
ADDED_IN_1_2 = {"CorePorts": ["realtime_bus"]}

PAIRS = [
    (CorePorts, create_core_ports),
    (LLMPorts, create_llm_ports),
    (AudioPorts, create_audio_ports),
]


def test_all_matches_the_reference(reference: ModuleType) -> None:
    ref = reference.stages.ports
    assert sorted(ports.__all__) == sorted(ref.__all__)


@pytest.mark.parametrize(("cls", "factory"), PAIRS, ids=lambda x: x.__name__)
def test_fields_and_factory_signatures_match_the_reference(
    cls: Any, reference: ModuleType, factory: Any
) -> None:
    ref = reference.stages.ports
    ref_cls = getattr(ref, cls.__name__)
    added = ADDED_IN_1_2.get(cls.__name__, [])
    assert [f.name for f in attrs.fields(cls)] == [
        *(f.name for f in dataclasses.fields(ref_cls)),
        *added,
    ]
    ours = inspect.signature(factory)
    theirs = inspect.signature(getattr(ref, factory.__name__))
    # stageflow 1.2's older-name aliases come after 0.9.1's parameters.
    added = {
        ports.AudioPorts: ["tts_client", "stt_client", "audio_callback"],
        ports.CorePorts: ["realtime_bus"],
    }.get(cls, [])
    assert [(p.name, p.kind, p.default) for p in ours.parameters.values()] == [
        *((p.name, p.kind, p.default) for p in theirs.parameters.values()),
        *((name, inspect.Parameter.KEYWORD_ONLY, None) for name in added),
    ]
    # Positional construction works as for the reference's dataclass.
    assert cls(*[None] * len(attrs.fields(cls))) == cls()


def _sample(name: str) -> object:
    # A fresh object per field (identity is asserted), of the type the field checks.
    if name.startswith("send_"):
        return lambda *args: None
    if name == "audio_data":
        return bytearray(b"pcm")
    if name == "audio_format":
        return "wav"
    return object()


@pytest.mark.parametrize(("cls", "factory"), PAIRS, ids=lambda x: x.__name__)
def test_every_field_defaults_to_none_and_the_factory_builds_the_same(
    cls: Any, factory: Any
) -> None:
    default = cls()
    assert all(getattr(default, f.name) is None for f in attrs.fields(cls))
    assert factory() == default
    values = {f.name: _sample(f.name) for f in attrs.fields(cls) if f.name != "db_lock"}
    assert factory(**values) == cls(**values)
    assert all(getattr(factory(**values), k) is v for k, v in values.items())


@pytest.mark.parametrize(("cls", "factory"), PAIRS, ids=lambda x: x.__name__)
def test_ports_are_frozen_and_factories_keyword_only(cls: Any, factory: Any) -> None:
    first = attrs.fields(cls)[0].name
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(cls(), first, 1)
    with pytest.raises(TypeError):
        factory(None)


async def test_db_lock_is_a_trio_lock_usable_in_a_stage() -> None:
    lock = trio.Lock()
    core = create_core_ports(db="session", db_lock=lock)
    assert core.db_lock is lock
    assert core.db_lock is not None
    async with core.db_lock:
        assert lock.locked()
    assert not lock.locked()


def test_db_lock_rejects_an_asyncio_lock() -> None:
    with pytest.raises(TypeError, match=r"^db_lock must be a trio.Lock or None, got Lock$"):
        CorePorts(db_lock=asyncio.Lock())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^db_lock must be a trio.Lock or None, got str$"):
        create_core_ports(db_lock="lock")  # type: ignore[arg-type]


async def test_callbacks_are_stored_and_awaitable() -> None:
    seen: list[tuple[Any, ...]] = []

    async def send_status(stage: str, status: str, data: dict[str, Any] | None) -> None:
        seen.append((stage, status, data))

    async def send_token(token: str) -> None:
        seen.append((token,))

    core = create_core_ports(send_status=send_status)
    llm = create_llm_ports(send_token=send_token)
    assert core.send_status is not None
    assert llm.send_token is not None
    await core.send_status("stt", "started", None)
    await llm.send_token("hi")
    assert seen == [("stt", "started", None), ("hi",)]


def test_audio_ports_keep_bytes_and_format() -> None:
    audio = create_audio_ports(audio_data=b"\x00\x01", audio_format="wav")
    assert audio.audio_data == b"\x00\x01"
    assert audio.audio_format == "wav"
    assert audio == AudioPorts(audio_data=b"\x00\x01", audio_format="wav")
    assert audio != AudioPorts(audio_data=b"\x00", audio_format="wav")


async def _chunk(data: bytes, fmt: str, rate: int, final: bool) -> None:
    """A send_audio_chunk callback that does nothing."""


def test_create_audio_ports_takes_the_older_names() -> None:
    tts, stt, other = object(), object(), object()
    ports_ = ports.create_audio_ports(tts_client=tts, stt_client=stt, audio_callback=_chunk)
    assert (ports_.tts_provider, ports_.stt_provider, ports_.send_audio_chunk) == (tts, stt, _chunk)
    # The newer name wins when both are given.
    assert ports.create_audio_ports(tts_provider=other, tts_client=tts).tts_provider is other
