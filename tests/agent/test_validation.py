"""Tests for stageflow_trio.agent.validation: typed output, retries, clients, replies."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import attrs
import pydantic
import pytest
import trio
import trio.testing

from stageflow_trio.agent import AgentTurn
from stageflow_trio.agent.validation import (
    LLMOutputValidationError,
    TypedLLMOutput,
    TypedLLMResult,
    _normalize_llm_response,
)
from stageflow_trio.helpers.providers import LLMResponse


@attrs.frozen
class Verdict:
    """A verdict.

    Second paragraph, left out of the schema.
    """

    label: str
    score: float = 0.0
    tags: tuple[str, ...] = ()


class PydVerdict(pydantic.BaseModel):
    label: str
    score: float = 0.0


class SyncChat:
    def __init__(self, *replies: Any) -> None:
        self.replies = list(replies)
        self.calls: list[tuple[list[dict[str, Any]], str, dict[str, Any]]] = []

    def chat(self, *, messages: list[dict[str, Any]], model: str, **kwargs: Any) -> Any:
        self.calls.append(([dict(m) for m in messages], model, kwargs))
        return self.replies.pop(0)


class AsyncComplete:
    def __init__(self, *replies: Any) -> None:
        self.replies = list(replies)
        self.prompts: list[str] = []

    async def complete(self, prompt: str, *, messages: Any, model: str, **kwargs: Any) -> Any:
        await trio.sleep(1)
        self.prompts.append(prompt)
        return self.replies.pop(0)


def test_validate_text_attrs_lax_ignores_extra_keys_and_widens_ints() -> None:
    out = TypedLLMOutput(Verdict)
    assert out.model is Verdict
    parsed = out.validate_text('{"label": "ok", "score": 1, "tags": ["a"], "extra": true}')
    assert parsed == Verdict(label="ok", score=1.0, tags=("a",))
    assert type(parsed.score) is float


def test_validate_text_attrs_lax_converts_as_pydantic_and_strict_does_not() -> None:
    payload = '{"label": "ok", "score": "0.5", "extra": 1}'
    assert TypedLLMOutput(Verdict).validate_text(payload) == Verdict(label="ok", score=0.5)
    with pytest.raises(
        ValueError, match=r"^Verdict validation failed: expected float, got str '0.5' @ \$.score$"
    ):
        TypedLLMOutput(Verdict, strict=True).validate_text(payload)


@pytest.mark.parametrize("payload", ['{"label": 5}', '{"label": {"a": 1}}'])
def test_validate_text_attrs_does_not_turn_other_values_into_text(payload: str) -> None:
    with pytest.raises(ValueError, match=r"^Verdict validation failed: expected str, got "):
        TypedLLMOutput(Verdict).validate_text(payload)


def test_validate_text_reports_the_class_own_check() -> None:
    with pytest.raises(
        ValueError,
        match=r"^AgentTurn validation failed: Provide either tool_calls or final_answer @ \$$",
    ):
        TypedLLMOutput(AgentTurn).validate_text('{"thought": "hmm"}')


def test_validate_text_pydantic_lax_and_strict() -> None:
    out = TypedLLMOutput(PydVerdict)
    assert out.validate_text('{"label": "ok", "score": "0.5"}') == PydVerdict(label="ok", score=0.5)
    with pytest.raises(pydantic.ValidationError):
        TypedLLMOutput(PydVerdict, strict=True).validate_text('{"label": "ok", "score": "0.5"}')
    assert out.json_schema() == PydVerdict.model_json_schema()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("   ", "Could not find a JSON object in LLM output"),
        (
            "no json here",
            "Could not parse valid JSON object from LLM output: Expecting value: line 1 column 1 (char 0)",
        ),
        (
            "[1, 2]",
            "Could not parse valid JSON object from LLM output: LLM output JSON must decode to an object",
        ),
        (
            "{unclosed",
            "Could not parse valid JSON object from LLM output: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        ),
    ],
)
def test_validate_text_without_an_object(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=rf"^{__import__('re').escape(message)}$"):
        TypedLLMOutput(Verdict).validate_text(text)


def test_validate_text_finds_fenced_and_balanced_json() -> None:
    out = TypedLLMOutput(Verdict)
    assert out.validate_text('```\n{"label": "fenced"}\n```') == Verdict(label="fenced")
    assert out.validate_text('say {"label": "a \\" } b"} end') == Verdict(label='a " } b')
    # A bracket that never closes gives no balanced candidate.
    with pytest.raises(ValueError, match=r"^Could not parse"):
        out.validate_text('x {"label": "a"')


def test_validate_response_uses_native_tool_calls_when_no_text() -> None:
    @attrs.frozen
    class Calls:
        tool_calls: tuple[dict[str, Any], ...]

    response = LLMResponse(
        content="",
        model="m",
        provider="p",
        tool_calls=[{"id": "c1", "name": "t", "arguments": {"a": 1}}],
    )
    parsed = TypedLLMOutput(Calls).validate_response(response)
    assert parsed == Calls(tool_calls=({"name": "t", "arguments": {"a": 1}, "call_id": "c1"},))


def test_validate_response_raises_the_last_error_or_nothing_found() -> None:
    out = TypedLLMOutput(Verdict)
    with pytest.raises(
        ValueError, match=r"^Could not find structured content in normalized LLM response$"
    ):
        out.validate_response(LLMResponse(content=" ", model="m", provider="p"))
    with pytest.raises(ValueError, match=r"^Could not parse valid JSON"):
        out.validate_response(LLMResponse(content="nope", model="m", provider="p"))


async def test_generate_sync_chat_first_try() -> None:
    client = SyncChat('{"label": "ok"}')
    messages = [{"role": "user", "content": "q"}]
    result = await TypedLLMOutput(Verdict).generate(client, messages, model="m", temperature=0.1)
    assert result == TypedLLMResult(
        response=LLMResponse(content='{"label": "ok"}', model="m", provider="syncchat"),
        parsed=Verdict(label="ok"),
        attempts=1,
    )
    assert client.calls == [(messages, "m", {"temperature": 0.1})]


async def test_generate_retries_with_the_error_and_schema() -> None:
    client = SyncChat("nope", '{"label": 3}', '{"label": "ok"}')
    out = TypedLLMOutput(Verdict)
    messages = [{"role": "user", "content": "q"}]
    result = await out.generate(client, messages, model="m")
    assert result.attempts == 3
    schema = json.dumps(out.json_schema(), sort_keys=True)
    errors = (
        "Could not parse valid JSON object from LLM output: Expecting value: line 1 column 1 (char 0)",
        "Verdict validation failed: expected str, got int 3 @ $.label",
    )
    assert result.validation_errors == errors
    retry = (
        "Your previous response was invalid. Return ONLY a valid JSON object, with no markdown, "
        f"that matches this schema: {schema}. Validation error: "
    )
    assert client.calls[2][0] == [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "nope"},
        {"role": "user", "content": retry + errors[0]},
        {"role": "assistant", "content": '{"label": 3}'},
        {"role": "user", "content": retry + errors[1]},
    ]
    assert messages == [{"role": "user", "content": "q"}]  # the caller's list is untouched


async def test_generate_exhausts_retries() -> None:
    client = SyncChat("a", "b")
    with pytest.raises(
        LLMOutputValidationError,
        match=r"^Failed to validate LLM output as Verdict after 2 attempt\(s\)$",
    ) as info:
        await TypedLLMOutput(Verdict).generate(client, [], model="m", max_retries=1)
    assert info.value.model is Verdict
    assert len(info.value.errors) == 2
    assert info.value.response == LLMResponse(content="b", model="m", provider="syncchat")


async def test_generate_async_complete_client_gets_a_flat_prompt(
    autojump_clock: trio.testing.MockClock,
) -> None:
    client = AsyncComplete('{"label": "ok"}')
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "rules"},
        {"role": "user", "content": ["a", "b"]},
    ]
    start = trio.current_time()
    result = await TypedLLMOutput(Verdict).generate(client, messages, model="m")
    assert trio.current_time() - start == 1
    assert result.parsed == Verdict(label="ok")
    assert client.prompts == ["SYSTEM: rules\n\nUSER: ab"]


async def test_generate_sync_complete_client() -> None:
    class SyncComplete:
        def complete(self, prompt: str, **kwargs: Any) -> str:
            return '{"label": "' + prompt + '"}'

    result = await TypedLLMOutput(Verdict).generate(
        SyncComplete(), [{"content": "x"}], model="m", max_retries=0
    )
    assert result.parsed == Verdict(label="USER: x")


async def test_generate_is_a_checkpoint_even_with_a_sync_client() -> None:
    with trio.testing.assert_checkpoints():
        await TypedLLMOutput(Verdict).generate(SyncChat('{"label": "ok"}'), [], model="m")


async def test_generate_rejects_clients_without_methods_and_bad_retries() -> None:
    with pytest.raises(
        TypeError,
        match=r"^LLM client must expose either a 'chat' or a 'complete' method; got object$",
    ):
        await TypedLLMOutput(Verdict).generate(object(), [], model="m")
    with pytest.raises(
        ValueError, match=r"^TypedLLMOutput.generate: max_retries must be at least 0; got -1$"
    ):
        await TypedLLMOutput(Verdict).generate(SyncChat(), [], model="m", max_retries=-1)


def test_typed_output_bad_input() -> None:
    with pytest.raises(
        TypeError,
        match=r"^TypedLLMOutput: model must be an attrs class or a pydantic model; got <class 'dict'>$",
    ):
        TypedLLMOutput(dict)
    with pytest.raises(TypeError, match=r"^TypedLLMOutput: model must be"):
        TypedLLMOutput(Verdict(label="x"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^TypedLLMOutput: strict must be a bool; got int$"):
        TypedLLMOutput(Verdict, strict=1)  # type: ignore[arg-type]


def test_pydantic_is_looked_up_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.delitem(sys.modules, "pydantic")
    assert isinstance(PydVerdict, type)  # the class exists, but pydantic is "not imported"
    with pytest.raises(TypeError, match=r"^TypedLLMOutput: model must be"):
        TypedLLMOutput(PydVerdict)


# --- JSON schemas --------------------------------------------------------------------


@attrs.frozen
class Call:
    name: str
    arguments: dict[str, Any] = attrs.field(factory=dict)
    call_id: str | None = None


class PydCall(pydantic.BaseModel):
    name: str
    arguments: dict[str, Any] = pydantic.Field(default_factory=dict)
    call_id: str | None = None


def test_attrs_schema_is_the_one_pydantic_gives_the_same_model() -> None:
    ours = TypedLLMOutput(Call).json_schema()
    theirs = TypedLLMOutput(PydCall).json_schema()
    assert ours == {**theirs, "title": "Call"}
    assert ours["properties"]["arguments"] == {
        "additionalProperties": True,
        "title": "Arguments",
        "type": "object",
    }


# --- reply normalisation ---------------------------------------------------------------


def _norm(raw: Any) -> LLMResponse:
    return _normalize_llm_response(raw, client=SyncChat(), fallback_model="fb")


def test_normalize_passes_llm_responses_and_wraps_strings() -> None:
    response = LLMResponse(content="x", model="m", provider="p")
    assert _norm(response) is response
    assert _norm("hi") == LLMResponse(content="hi", model="fb", provider="syncchat")


def test_normalize_object_payload_with_usage_attributes() -> None:
    raw = SimpleNamespace(
        content=b"bytes",
        model="m1",
        provider="anthropic",
        usage=SimpleNamespace(
            prompt_tokens=4,
            completion_tokens="x",
            prompt_tokens_details={"cache_read_input_tokens": 2},
        ),
        finish_reason="end",
        tool_calls={"name": "t", "input": {"a": 1}, "tool_call_id": "z"},
    )
    response = _norm(raw)
    assert response.to_dict() == {
        "content": "bytes",
        "model": "m1",
        "provider": "anthropic",
        "input_tokens": 4,
        "output_tokens": 0,
        "total_tokens": 4,
        "latency_ms": 0.0,
        "finish_reason": "end",
        "tool_calls": [
            {
                "id": "z",
                "call_id": "z",
                "name": "t",
                "arguments": {"a": 1},
                "type": "function",
                "function": {"name": "t", "arguments": '{"a": 1}'},
            }
        ],
        "cached_tokens": 2,
    }
    assert response.raw_response is raw


@pytest.mark.parametrize(
    ("raw", "content"),
    [
        ({"content": {"k": 1}}, '{"k": 1}'),
        ({"content": {"output_text": "o"}}, "o"),
        ({"content": [{"message": "m"}, None, 5]}, "m5"),
        ({"content": "", "output": [{"content": "deep"}]}, "deep"),
        ({"content": ""}, ""),
        ({}, ""),
    ],
)
def test_normalize_content_shapes(raw: dict[str, Any], content: str) -> None:
    assert _norm(raw).content == content


@pytest.mark.parametrize(
    ("arguments", "parsed"),
    [('{"a": 1}', {"a": 1}), ("[1]", {}), ("{bad", {}), (None, {}), (7, {})],
)
def test_normalize_tool_call_arguments(arguments: Any, parsed: dict[str, Any]) -> None:
    raw = {"tool_calls": [{"function": {"name": "f", "arguments": arguments}}]}
    (call,) = _norm(raw).tool_calls
    assert (call["id"], call["name"], call["arguments"]) == ("call_1", "f", parsed)


def test_normalize_cached_tokens_and_missing_usage() -> None:
    assert _norm({"usage": {"prompt_tokens_details": {"cached_tokens": 5}}}).cached_tokens == 5
    assert _norm({"usage": {"prompt_tokens_details": {}}}).cached_tokens == 0
    assert _norm({"usage": {"prompt_tokens": -3}}).input_tokens == 0
    assert _norm({"content": "x"}).input_tokens == 0


def test_validate_response_tries_identical_text_and_tool_calls_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    call = {"name": "t", "arguments": {}, "call_id": "c"}
    text = json.dumps({"tool_calls": [call]}, ensure_ascii=False)
    response = LLMResponse(content=text, model="m", provider="p", tool_calls=[call])
    out = TypedLLMOutput(Verdict)
    tried: list[str] = []
    real = out.validate_text

    def counting(candidate: str) -> Verdict:
        tried.append(candidate)
        return real(candidate)

    monkeypatch.setattr(out, "validate_text", counting)
    with pytest.raises(ValueError, match=r"^Verdict validation failed: "):
        out.validate_response(response)
    assert tried == [text]
