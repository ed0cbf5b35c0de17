"""LLMResponse, STTResponse, TTSResponse: fields, to_dict, to_otel_attributes."""

from __future__ import annotations

import dataclasses
import importlib
from types import ModuleType
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio.helpers.providers import LLMResponse, STTResponse, TTSResponse
from stageflow_trio.utils.frozen import FrozenList


@pytest.fixture(scope="module")
def ref_providers(reference: ModuleType) -> ModuleType:
    return importlib.import_module("stageflow.helpers.providers")


def test_llm_response() -> None:
    call = {"name": "search", "arguments": {"q": "x"}}
    response = LLMResponse(
        content="Hello!",
        model="gpt-4",
        provider="openai",
        input_tokens=10,
        output_tokens=5,
        latency_ms=150.0,
        finish_reason="stop",
        tool_calls=[call],
        cached_tokens=3,
        raw_response={"id": "r1"},
    )
    assert response.total_tokens == 15
    assert response.to_dict() == {
        "content": "Hello!",
        "model": "gpt-4",
        "provider": "openai",
        "input_tokens": 10,
        "output_tokens": 5,
        "total_tokens": 15,
        "latency_ms": 150.0,
        "finish_reason": "stop",
        "tool_calls": [call],
        "cached_tokens": 3,
    }
    assert type(response.to_dict()["tool_calls"]) is list
    assert response.to_otel_attributes() == {
        "llm.model": "gpt-4",
        "llm.provider": "openai",
        "llm.input_tokens": 10,
        "llm.output_tokens": 5,
        "llm.total_tokens": 15,
        "llm.latency_ms": 150.0,
        "llm.finish_reason": "stop",
        "llm.cached_tokens": 3,
    }


def test_llm_response_defaults() -> None:
    response = LLMResponse(content="", model="m", provider="p")
    assert (response.input_tokens, response.output_tokens, response.total_tokens) == (0, 0, 0)
    assert (response.latency_ms, response.finish_reason, response.cached_tokens) == (0.0, None, 0)
    assert response.tool_calls == []
    assert response.raw_response is None
    assert response.to_otel_attributes()["llm.finish_reason"] == ""


def test_stt_response() -> None:
    words = [{"word": "hello", "start": 0.0, "end": 0.4}]
    response = STTResponse(text="hello", confidence=0.9, duration_ms=400.0, words=words)
    assert (response.language, response.is_final, response.provider, response.model) == (
        "en",
        True,
        "",
        "",
    )
    assert STTResponse(text="x").confidence == 1.0
    assert response.to_dict() == {
        "text": "hello",
        "confidence": 0.9,
        "duration_ms": 400.0,
        "language": "en",
        "provider": "",
        "model": "",
        "latency_ms": 0.0,
        "words": words,
        "is_final": True,
    }
    assert response.to_otel_attributes() == {
        "stt.provider": "",
        "stt.model": "",
        "stt.confidence": 0.9,
        "stt.duration_ms": 400.0,
        "stt.language": "en",
        "stt.latency_ms": 0.0,
        "stt.is_final": True,
    }


def test_tts_response() -> None:
    response = TTSResponse(audio=bytearray(b"\x00\x01\x02"), duration_ms=2000.0, provider="el")
    assert response.audio == b"\x00\x01\x02"
    assert type(response.audio) is bytes
    assert response.byte_count == 3
    assert (response.sample_rate, response.format, response.channels) == (16000, "pcm_16", 1)
    assert response.to_dict() == {
        "byte_count": 3,
        "duration_ms": 2000.0,
        "sample_rate": 16000,
        "format": "pcm_16",
        "provider": "el",
        "model": "",
        "latency_ms": 0.0,
        "channels": 1,
        "characters_processed": 0,
    }
    assert response.to_otel_attributes() == {
        "tts.provider": "el",
        "tts.model": "",
        "tts.duration_ms": 2000.0,
        "tts.sample_rate": 16000,
        "tts.format": "pcm_16",
        "tts.latency_ms": 0.0,
        "tts.byte_count": 3,
        "tts.characters_processed": 0,
    }


def test_responses_are_frozen_with_read_only_lists() -> None:
    response = LLMResponse(content="c", model="m", provider="p", tool_calls=[{"a": 1}])
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        response.content = "other"  # type: ignore[misc]
    assert type(response.tool_calls) is FrozenList
    with pytest.raises(TypeError):
        response.tool_calls.append({})
    stt = STTResponse(text="t", words=[{"w": 1}])
    with pytest.raises(TypeError):
        stt.words.append({})
    for cls in (LLMResponse, STTResponse, TTSResponse):
        assert not hasattr(cls(**_minimal(cls)), "__dict__")  # slots


def _minimal(cls: type) -> dict[str, Any]:
    if cls is LLMResponse:
        return {"content": "c", "model": "m", "provider": "p"}
    if cls is STTResponse:
        return {"text": "t"}
    return {"audio": b""}


@pytest.mark.parametrize(
    ("cls", "kwargs", "exception", "message"),
    [
        (LLMResponse, {"content": 1}, TypeError, r"^LLMResponse: content must be a str; got int$"),
        (
            LLMResponse,
            {"model": None},
            TypeError,
            r"^LLMResponse: model must be a str; got NoneType$",
        ),
        (
            LLMResponse,
            {"input_tokens": -1},
            ValueError,
            r"^LLMResponse: input_tokens must be at least 0; got -1$",
        ),
        (
            LLMResponse,
            {"cached_tokens": 1.5},
            TypeError,
            r"^LLMResponse: cached_tokens must be an int; got float$",
        ),
        (
            LLMResponse,
            {"latency_ms": "1"},
            TypeError,
            r"^LLMResponse: latency_ms must be a number; got str$",
        ),
        (
            LLMResponse,
            {"finish_reason": 3},
            TypeError,
            r"^LLMResponse: finish_reason must be a str; got int$",
        ),
        (STTResponse, {"text": b"x"}, TypeError, r"^STTResponse: text must be a str; got bytes$"),
        (
            STTResponse,
            {"confidence": float("nan")},
            ValueError,
            r"^STTResponse: confidence must be a finite number; got nan$",
        ),
        (
            STTResponse,
            {"is_final": 1},
            TypeError,
            r"^STTResponse: is_final must be a bool; got int$",
        ),
        (TTSResponse, {"audio": "abc"}, TypeError, r"^TTSResponse: audio must be bytes; got str$"),
        (
            TTSResponse,
            {"sample_rate": -1},
            ValueError,
            r"^TTSResponse: sample_rate must be at least 0; got -1$",
        ),
        (TTSResponse, {"format": 16}, TypeError, r"^TTSResponse: format must be a str; got int$"),
        (
            TTSResponse,
            {"duration_ms": None},
            TypeError,
            r"^TTSResponse: duration_ms must be a number; got NoneType$",
        ),
    ],
)
def test_bad_input(
    cls: type, kwargs: dict[str, Any], exception: type[Exception], message: str
) -> None:
    with pytest.raises(exception, match=message):
        cls(**{**_minimal(cls), **kwargs})


# --- the reference ----------------------------------------------------------------------

texts = st.text(max_size=8)
counts = st.integers(min_value=0, max_value=10**6)
durations = st.floats(min_value=0, max_value=1e6, allow_nan=False)
dict_lists = st.lists(st.dictionaries(st.text(max_size=3), st.integers(), max_size=2), max_size=2)


@given(
    st.tuples(texts, texts, texts, counts, counts, durations, st.none() | texts, dict_lists, counts)
)
def test_llm_matches_reference(ref_providers: ModuleType, fields: tuple[Any, ...]) -> None:
    names = [f.name for f in attrs.fields(LLMResponse)][:-1]
    kwargs = dict(zip(names, fields, strict=True))
    ours, theirs = LLMResponse(**kwargs), ref_providers.LLMResponse(**kwargs)
    assert ours.to_dict() == theirs.to_dict()
    assert ours.to_otel_attributes() == theirs.to_otel_attributes()
    assert ours.total_tokens == theirs.total_tokens


@given(
    st.tuples(
        texts, durations, durations, texts, texts, texts, durations, dict_lists, st.booleans()
    )
)
def test_stt_matches_reference(ref_providers: ModuleType, fields: tuple[Any, ...]) -> None:
    names = [f.name for f in attrs.fields(STTResponse)][:-1]
    kwargs = dict(zip(names, fields, strict=True))
    ours, theirs = STTResponse(**kwargs), ref_providers.STTResponse(**kwargs)
    assert ours.to_dict() == theirs.to_dict()
    assert ours.to_otel_attributes() == theirs.to_otel_attributes()


@given(
    st.tuples(
        st.binary(max_size=20), durations, counts, texts, texts, texts, durations, counts, counts
    )
)
def test_tts_matches_reference(ref_providers: ModuleType, fields: tuple[Any, ...]) -> None:
    names = [f.name for f in attrs.fields(TTSResponse)][:-1]
    kwargs = dict(zip(names, fields, strict=True))
    ours, theirs = TTSResponse(**kwargs), ref_providers.TTSResponse(**kwargs)
    assert ours.to_dict() == theirs.to_dict()
    assert ours.to_otel_attributes() == theirs.to_otel_attributes()
    assert ours.byte_count == theirs.byte_count


def test_field_names_and_defaults_match_reference(ref_providers: ModuleType) -> None:
    for cls in (LLMResponse, STTResponse, TTSResponse):
        ref_fields = dataclasses.fields(getattr(ref_providers, cls.__name__))
        assert [f.name for f in attrs.fields(cls)] == [f.name for f in ref_fields]
        ours = {
            f.name: f.default
            for f in attrs.fields(cls)
            if type(f.default) is not type(attrs.Factory(list))
        }
        theirs = {f.name: f.default for f in ref_fields if f.default_factory is dataclasses.MISSING}
        assert ours == {
            name: attrs.NOTHING if default is dataclasses.MISSING else default
            for name, default in theirs.items()
        }
