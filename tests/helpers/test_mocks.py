"""Mock providers: answers, latency and jitter in virtual time, failures, history, tokens, reset."""

from __future__ import annotations

import hashlib
import random
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
import trio
import trio.testing

import stageflow_trio.helpers as helpers_package
from stageflow_trio.helpers import mocks
from stageflow_trio.helpers.mocks import (
    MockAudioChunk,
    MockAuthProvider,
    MockCompletion,
    MockJWTClaims,
    MockLLMProvider,
    MockMessage,
    MockSTTProvider,
    MockToolExecutor,
    MockToolResult,
    MockTranscription,
    MockTTSProvider,
)
from stageflow_trio.utils.frozen import FrozenDict, FrozenList


def test_all_is_the_references_and_the_package_exports_the_providers() -> None:
    assert sorted(mocks.__all__) == [
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
    for name in (
        "MockLLMProvider",
        "MockSTTProvider",
        "MockTTSProvider",
        "MockAuthProvider",
        "MockToolExecutor",
    ):
        assert getattr(helpers_package, name) is getattr(mocks, name)


# --- LLM -----------------------------------------------------------------------------


async def test_patterns_come_first_then_echo_then_the_cycle() -> None:
    llm = MockLLMProvider(
        responses=["one", "two"],
        patterns={r"weath(er)?": "Sunny.", r"\btime\b": "Noon."},
    )
    answers = [
        (await llm.complete(prompt)).content
        for prompt in ["hi", "WEATHER today?", "what TIME is it", "x", "y"]
    ]
    assert answers == ["one", "Sunny.", "Noon.", "two", "one"]
    echo = MockLLMProvider(responses=["never"], patterns={"ping": "pong"}, echo=True)
    assert [(await echo.complete(p)).content for p in ["Ping!", "hello"]] == [
        "pong",
        "Echo: hello",
    ]


async def test_defaults_and_an_empty_response_list_give_mock_response() -> None:
    for llm in (MockLLMProvider(), MockLLMProvider(responses=[])):
        assert (await llm.complete("x")).content == "Mock response"


async def test_completion_usage_counts_tokens_by_default_as_len_over_4() -> None:
    llm = MockLLMProvider(responses=["abcdefghij"])  # 10 chars -> 2 tokens
    completion = await llm.complete("a" * 17, model="gpt-x")  # 17 chars -> 4 tokens
    assert completion.usage == {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}
    assert completion.model == "gpt-x"
    assert re.fullmatch(r"mock-[0-9a-f]{8}", completion.id)
    assert (completion.role, completion.finish_reason, completion.tool_calls) == (
        "assistant",
        "stop",
        None,
    )


async def test_custom_token_counter() -> None:
    llm = MockLLMProvider(responses=["a b c"], token_counter=lambda s: len(s.split()))
    completion = await llm.complete("one two")
    assert completion.usage == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}


async def test_latency_with_jitter_is_exact_in_virtual_time(autojump_clock: Any) -> None:
    seed = 1234
    expected_rng = random.Random(seed)
    llm = MockLLMProvider(latency_ms=100, latency_jitter_ms=40, rng=random.Random(seed))
    for _ in range(5):
        jitter = expected_rng.uniform(-40, 40)
        expected_rng.random()  # the failure draw
        start = trio.current_time()
        await llm.complete("x")
        assert trio.current_time() == start + max(0, 100 + jitter) / 1000
        assert trio.current_time() != start


async def test_jitter_never_makes_the_latency_negative(autojump_clock: Any) -> None:
    class Low(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return a

    llm = MockLLMProvider(latency_ms=10, latency_jitter_ms=50, rng=Low())
    start = trio.current_time()
    await llm.complete("x")
    assert trio.current_time() == start


async def test_complete_is_a_checkpoint_without_latency() -> None:
    llm = MockLLMProvider()
    with trio.testing.assert_checkpoints():
        await llm.complete("x")


async def test_failures_raise_the_configured_exception() -> None:
    llm = MockLLMProvider(fail_rate=1.0, fail_error="rate limited")
    with pytest.raises(Exception, match=r"^rate limited$") as info:
        await llm.complete("x")
    assert type(info.value) is Exception
    assert llm.call_count == 1


async def test_failure_rate_follows_the_seeded_draws() -> None:
    seed = 99
    draws = random.Random(seed)
    expected = [draws.random() < 0.5 for _ in range(20)]
    llm = MockLLMProvider(fail_rate=0.5, rng=random.Random(seed))
    outcomes = []
    for _ in range(20):
        try:
            await llm.complete("x")
        except Exception:
            outcomes.append(True)
        else:
            outcomes.append(False)
    assert outcomes == expected
    assert True in outcomes
    assert False in outcomes


async def test_history_records_prompt_messages_and_timestamp_then_reset_clears() -> None:
    llm = MockLLMProvider(responses=["a", "b"])
    messages = [MockMessage(role="user", content="hi")]
    before = datetime.now(UTC)
    await llm.complete("first", messages=messages)
    await llm.complete("second")
    assert llm.call_count == 2
    assert [(h["prompt"], h["messages"]) for h in llm.call_history] == [
        ("first", messages),
        ("second", None),
    ]
    for entry in llm.call_history:
        assert list(entry) == ["prompt", "messages", "timestamp"]
        assert datetime.fromisoformat(entry["timestamp"]) >= before
    llm.reset()
    assert (llm.call_count, llm.call_history) == (0, [])
    assert (await llm.complete("again")).content == "a"


async def test_a_call_cancelled_in_its_latency_is_still_counted(autojump_clock: Any) -> None:
    llm = MockLLMProvider(latency_ms=100)
    with trio.move_on_after(0.05):
        await llm.complete("x")
    assert llm.call_count == 1
    assert trio.current_time() == 0.05


def test_completion_to_dict_is_openai_shaped() -> None:
    completion = MockCompletion(
        id="mock-1", content="hey", tool_calls=[{"id": "t", "type": "function"}]
    )
    data = completion.to_dict()
    created = data.pop("created")
    assert abs(created - datetime.now(UTC).timestamp()) < 5
    assert data == {
        "id": "mock-1",
        "object": "chat.completion",
        "model": "mock-model",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "hey",
                    "tool_calls": [{"id": "t", "type": "function"}],
                },
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30},
    }
    assert type(data["usage"]) is dict
    assert type(data["choices"][0]["message"]["tool_calls"]) is list


def test_values_are_frozen_with_read_only_containers() -> None:
    completion = MockCompletion(id="x", content="y")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        completion.content = "z"  # type: ignore[misc]
    assert isinstance(completion.usage, FrozenDict)
    message = MockMessage(role="user", content="c", tool_calls=[{"a": 1}])
    assert isinstance(message.tool_calls, FrozenList)
    assert MockMessage(role="user", content="c").tool_calls is None
    claims = MockJWTClaims(sub="u", roles=["admin"], custom={"tier": "gold"})
    assert isinstance(claims.roles, FrozenList)
    assert isinstance(claims.custom, FrozenDict)
    assert isinstance(MockTranscription(text="t", words=[{"w": "t"}]).words, FrozenList)


def test_tool_responses_are_kept() -> None:
    assert MockLLMProvider(tool_responses={"t": 1}).tool_responses == {"t": 1}
    assert MockLLMProvider().tool_responses == {}


# --- STT -----------------------------------------------------------------------------


async def test_stt_maps_audio_by_md5_prefix_else_cycles(autojump_clock: Any) -> None:
    known = b"\x01\x02" * 8000  # half a second at 16 kHz 16-bit
    key = hashlib.md5(known).hexdigest()[:16]
    stt = MockSTTProvider(
        transcriptions=["first", "second"], audio_map={key: "mapped"}, simulate_confidence=False
    )
    results = [await stt.transcribe(audio) for audio in (b"a", known, b"b", b"c")]
    assert [r.text for r in results] == ["first", "mapped", "second", "first"]
    assert results[1].duration_ms == 500.0
    assert results[0].duration_ms == 1 / 32
    assert {r.confidence for r in results} == {0.95}
    assert stt.call_count == 4
    stt.reset()
    assert stt.call_count == 0
    assert (await stt.transcribe(b"z", language="fr")).to_dict() == {
        "text": "first",
        "confidence": 0.95,
        "duration_ms": 1 / 32,
        "language": "fr",
        "words": [],
    }


async def test_stt_latency_jitter_and_confidence_come_from_the_rng(autojump_clock: Any) -> None:
    draws = random.Random(7)
    stt = MockSTTProvider(rng=random.Random(7))  # 100 ms +- 20 ms, simulated confidence
    for _ in range(3):
        jitter = draws.uniform(-20, 20)
        draws.random()
        confidence = draws.uniform(0.85, 0.99)
        start = trio.current_time()
        result = await stt.transcribe(b"x")
        assert trio.current_time() == start + max(0, 100 + jitter) / 1000
        assert result.confidence == confidence
        assert 0.85 <= result.confidence <= 0.99


async def test_stt_failure_and_zero_latency_checkpoint() -> None:
    stt = MockSTTProvider(latency_ms=0, fail_rate=1.0)
    with pytest.raises(Exception, match=r"^Mock STT error$"):
        await stt.transcribe(b"x")
    ok = MockSTTProvider(latency_ms=0)
    with trio.testing.assert_checkpoints():
        await ok.transcribe(bytearray(b"x"))


# --- TTS -----------------------------------------------------------------------------


def _reference_audio(text: str, bytes_per_char: int) -> bytes:
    seed = hashlib.md5(text.encode()).digest()
    return bytes(seed[i % len(seed)] ^ (i % 256) for i in range(len(text) * bytes_per_char))


async def test_tts_audio_is_deterministic_and_sized_by_text(autojump_clock: Any) -> None:
    tts = MockTTSProvider(bytes_per_char=37)
    start = trio.current_time()
    audio = await tts.synthesize("Hello world, this is long enough to repeat.")
    assert trio.current_time() == start + 0.05
    assert audio == _reference_audio("Hello world, this is long enough to repeat.", 37)
    assert len(audio) == 43 * 37
    assert await tts.synthesize("Hello world, this is long enough to repeat.") == audio
    assert await tts.synthesize("") == b""
    assert tts.call_count == 3
    tts.reset()
    assert tts.call_count == 0


async def test_tts_failure() -> None:
    tts = MockTTSProvider(latency_ms=0, fail_rate=1.0)
    with pytest.raises(Exception, match=r"^Mock TTS error$"):
        await tts.synthesize("x")
    assert tts.call_count == 1


def test_audio_chunk_defaults() -> None:
    chunk = MockAudioChunk(data=b"x")
    assert (chunk.sample_rate, chunk.channels, chunk.format) == (16000, 1, "pcm_16")


# --- auth ----------------------------------------------------------------------------


async def test_auth_known_tokens_expiry_accept_any_and_invalid() -> None:
    good = MockJWTClaims(sub="user-1")
    old = MockJWTClaims(sub="user-2", exp=datetime.now(UTC) - timedelta(seconds=1))
    tokens = {"good": good, "old": old}
    auth = MockAuthProvider(valid_tokens=tokens)
    assert await auth.validate("good") is good
    with pytest.raises(ValueError, match=r"^Token expired$"):
        await auth.validate("old")
    with pytest.raises(ValueError, match=r"^Invalid token$"):
        await auth.validate("nope")
    default = MockJWTClaims(sub="anyone")
    anyone = MockAuthProvider(accept_any=True, default_claims=default)
    assert await anyone.validate("whatever") is default
    assert (await MockAuthProvider(accept_any=True).validate("w")).sub == "mock-user"
    assert auth.validation_count == 3


async def test_auth_history_truncates_long_tokens_and_reset_clears() -> None:
    auth = MockAuthProvider(accept_any=True)
    await auth.validate("a" * 20)
    await auth.validate("b" * 21)
    assert [h["token"] for h in auth.validation_history] == ["a" * 20, "b" * 20 + "..."]
    assert all(list(h) == ["token", "timestamp"] for h in auth.validation_history)
    auth.reset()
    assert (auth.validation_count, auth.validation_history) == (0, [])


async def test_auth_failure_rate_and_checkpoint_first() -> None:
    auth = MockAuthProvider(fail_rate=1.0, accept_any=True)
    with pytest.raises(ValueError, match=r"^Mock auth failure$"):
        await auth.validate("t")
    with trio.CancelScope() as scope:
        scope.cancel()
        await auth.validate("t")
    assert auth.validation_count == 1
    ok = MockAuthProvider(accept_any=True)
    with trio.testing.assert_checkpoints():
        await ok.validate("t")


async def test_create_token_registers_claims_and_does_not_touch_the_given_dict() -> None:
    given: dict[str, MockJWTClaims] = {}
    auth = MockAuthProvider(valid_tokens=given)
    token, claims = auth.create_token("u-1", roles=["admin"], org_id="org", expires_in_hours=2)
    assert re.fullmatch(r"mock-[0-9a-f]{32}", token)
    assert (claims.sub, list(claims.roles), claims.org_id) == ("u-1", ["admin"], "org")
    lifetime = claims.exp - datetime.now(UTC)
    assert timedelta(hours=2) - timedelta(seconds=5) < lifetime <= timedelta(hours=2)
    assert await auth.validate(token) is claims
    assert given == {}
    _, expired = auth.create_token("u-2", expires_in_hours=-1)
    assert expired.roles == []


def test_jwt_claims_to_dict() -> None:
    exp = datetime(2030, 1, 1, tzinfo=UTC)
    iat = datetime(2029, 12, 31, tzinfo=UTC)
    claims = MockJWTClaims(
        sub="u", exp=exp, iat=iat, roles=["r"], org_id="o", custom={"tier": "gold"}
    )
    data = claims.to_dict()
    assert data == {
        "sub": "u",
        "aud": "stageflow",
        "iss": "mock-auth",
        "exp": int(exp.timestamp()),
        "iat": int(iat.timestamp()),
        "roles": ["r"],
        "org_id": "o",
        "tier": "gold",
    }
    assert type(data["roles"]) is list


# --- tools ---------------------------------------------------------------------------


async def test_tool_executor_runs_handlers_default_output_and_errors(
    autojump_clock: Any,
) -> None:
    def broken(_args: dict[str, Any]) -> Any:
        raise KeyError("missing")

    tools = {"add": lambda args: {"sum": args["a"] + args["b"]}, "broken": broken}
    executor = MockToolExecutor(tools=tools)
    start = trio.current_time()
    added = await executor.execute("add", {"a": 1, "b": 2})
    assert trio.current_time() == start + 0.01
    assert added == MockToolResult(success=True, output={"sum": 3}, duration_ms=10.0)
    assert (await executor.execute("other", {})).output == {"status": "ok"}
    failed = await executor.execute("broken", {})
    assert (failed.success, failed.output, failed.error) == (False, None, "'missing'")
    assert executor.execution_count == 3
    assert [(h["tool"], h["arguments"]) for h in executor.execution_history] == [
        ("add", {"a": 1, "b": 2}),
        ("other", {}),
        ("broken", {}),
    ]
    assert all(list(h) == ["tool", "arguments", "timestamp"] for h in executor.execution_history)
    executor.reset()
    assert (executor.execution_count, executor.execution_history) == (0, [])
    assert "add" in tools
    executor.register_tool("mul", lambda args: args["a"] * args["b"])
    assert (await executor.execute("mul", {"a": 3, "b": 4})).output == 12
    assert "mul" not in tools


async def test_tool_executor_failure_and_custom_default(autojump_clock: Any) -> None:
    executor = MockToolExecutor(fail_rate=1.0, latency_ms=25)
    result = await executor.execute("x", {})
    assert result.to_dict() == {
        "success": False,
        "output": None,
        "error": "Mock tool execution failed",
        "duration_ms": 25.0,
    }
    custom = MockToolExecutor(default_output=[], latency_ms=0)
    with trio.testing.assert_checkpoints():
        assert (await custom.execute("x", {})).output == []


# --- bad input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: MockLLMProvider(responses="abc"), TypeError, r"^MockLLMProvider: responses must be a list of str or None; got str$"),  # type: ignore[arg-type]
        (lambda: MockLLMProvider(responses=[1]), TypeError, r"^MockLLMProvider: responses must be a str; got int$"),  # type: ignore[list-item]
        (lambda: MockLLMProvider(patterns=["x"]), TypeError, r"^MockLLMProvider: patterns must be a dict or None; got list$"),  # type: ignore[arg-type]
        (lambda: MockLLMProvider(patterns={"(": "x"}), ValueError, r"^MockLLMProvider: patterns has an invalid regular expression '\(': missing \), unterminated subpattern at position 0$"),
        (lambda: MockLLMProvider(patterns={"a": 1}), TypeError, r"^MockLLMProvider: patterns must be a str; got int$"),  # type: ignore[dict-item]
        (lambda: MockLLMProvider(echo=1), TypeError, r"^MockLLMProvider: echo must be a bool; got int$"),  # type: ignore[arg-type]
        (lambda: MockLLMProvider(latency_ms=-1), ValueError, r"^MockLLMProvider: latency_ms must be >= 0; got -1$"),
        (lambda: MockLLMProvider(latency_jitter_ms="1"), TypeError, r"^MockLLMProvider: latency_jitter_ms must be a number; got str$"),  # type: ignore[arg-type]
        (lambda: MockLLMProvider(fail_rate=1.5), ValueError, r"^MockLLMProvider: fail_rate must be <= 1; got 1.5$"),
        (lambda: MockLLMProvider(fail_rate=-0.1), ValueError, r"^MockLLMProvider: fail_rate must be >= 0; got -0.1$"),
        (lambda: MockLLMProvider(fail_error=None), TypeError, r"^MockLLMProvider: fail_error must be a str; got NoneType$"),  # type: ignore[arg-type]
        (lambda: MockLLMProvider(token_counter=3), TypeError, r"^MockLLMProvider: token_counter must be a callable or None; got int$"),  # type: ignore[arg-type]
        (lambda: MockLLMProvider(rng=42), TypeError, r"^MockLLMProvider: rng must be a random.Random or None; got int$"),  # type: ignore[arg-type]
        (lambda: MockLLMProvider().stream("x", chunk_size=0), ValueError, r"^MockLLMProvider.stream: chunk_size must be at least 1; got 0$"),
        (lambda: MockLLMProvider().stream(b"x"), TypeError, r"^MockLLMProvider.stream: prompt must be a str; got bytes$"),  # type: ignore[arg-type]
        (lambda: MockSTTProvider(audio_map=[]), TypeError, r"^MockSTTProvider: audio_map must be a dict or None; got list$"),  # type: ignore[arg-type]
        (lambda: MockSTTProvider(transcriptions=3), TypeError, r"^MockSTTProvider: transcriptions must be a list of str or None; got int$"),  # type: ignore[arg-type]
        (lambda: MockSTTProvider(simulate_confidence="no"), TypeError, r"^MockSTTProvider: simulate_confidence must be a bool; got str$"),  # type: ignore[arg-type]
        (lambda: MockTTSProvider(sample_rate=0), ValueError, r"^MockTTSProvider: sample_rate must be at least 1; got 0$"),
        (lambda: MockTTSProvider(bytes_per_char=1.5), TypeError, r"^MockTTSProvider: bytes_per_char must be an int; got float$"),  # type: ignore[arg-type]
        (lambda: MockTTSProvider().stream("x", chunk_duration_ms=0), ValueError, r"^MockTTSProvider.stream: chunk_duration_ms must be > 0; got 0$"),
        (lambda: MockTTSProvider().stream("x", chunk_duration_ms=0.01), ValueError, r"^MockTTSProvider.stream: chunk_duration_ms must give chunks of at least one byte; got 0.01$"),  # type: ignore[arg-type]
        (lambda: MockTTSProvider().stream(1), TypeError, r"^MockTTSProvider.stream: text must be a str; got int$"),  # type: ignore[arg-type]
        (lambda: MockAuthProvider(valid_tokens=[]), TypeError, r"^MockAuthProvider: valid_tokens must be a dict or None; got list$"),  # type: ignore[arg-type]
        (lambda: MockAuthProvider(default_claims={}), TypeError, r"^MockAuthProvider: default_claims must be a MockJWTClaims or None; got dict$"),  # type: ignore[arg-type]
        (lambda: MockAuthProvider(accept_any=None), TypeError, r"^MockAuthProvider: accept_any must be a bool; got NoneType$"),  # type: ignore[arg-type]
        (lambda: MockAuthProvider().create_token(1), TypeError, r"^MockAuthProvider.create_token: sub must be a str; got int$"),  # type: ignore[arg-type]
        (lambda: MockAuthProvider().create_token("u", expires_in_hours="1"), TypeError, r"^MockAuthProvider.create_token: expires_in_hours must be a number; got str$"),  # type: ignore[arg-type]
        (lambda: MockAuthProvider().create_token("u", roles="admin"), TypeError, r"^MockAuthProvider.create_token: roles must be a list of str or None; got str$"),  # type: ignore[arg-type]
        (lambda: MockAuthProvider().create_token("u", roles=["admin", 1]), TypeError, r"^MockAuthProvider.create_token: roles\[1\] must be a str; got int$"),  # type: ignore[list-item]
        (lambda: MockToolExecutor(tools=[]), TypeError, r"^MockToolExecutor: tools must be a dict or None; got list$"),  # type: ignore[arg-type]
        (lambda: MockToolExecutor(tools={"t": 1}), TypeError, r"^MockToolExecutor: tools must be a callable; got int$"),  # type: ignore[dict-item]
        (lambda: MockToolExecutor(latency_ms=float("nan")), ValueError, r"^MockToolExecutor: latency_ms must be a finite number; got nan$"),
        (lambda: MockToolExecutor().register_tool("t", None), TypeError, r"^MockToolExecutor.register_tool: handler must be a callable; got NoneType$"),  # type: ignore[arg-type]
        (lambda: MockToolExecutor().register_tool(1, print), TypeError, r"^MockToolExecutor.register_tool: name must be a str; got int$"),  # type: ignore[arg-type]
    ],
)  # fmt: skip
def test_bad_arguments_raise_at_the_call(make: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        make()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: MockLLMProvider().complete(1), r"^MockLLMProvider.complete: prompt must be a str; got int$"),  # type: ignore[arg-type]
        (lambda: MockLLMProvider().complete("x", model=None), r"^MockLLMProvider.complete: model must be a str; got NoneType$"),  # type: ignore[arg-type]
        (lambda: MockSTTProvider().transcribe("audio"), r"^MockSTTProvider.transcribe: audio must be bytes; got str$"),  # type: ignore[arg-type]
        (lambda: MockTTSProvider().synthesize(None), r"^MockTTSProvider.synthesize: text must be a str; got NoneType$"),  # type: ignore[arg-type]
        (lambda: MockAuthProvider().validate(None), r"^MockAuthProvider.validate: token must be a str; got NoneType$"),  # type: ignore[arg-type]
        (lambda: MockToolExecutor().execute(1, {}), r"^MockToolExecutor.execute: tool_name must be a str; got int$"),  # type: ignore[arg-type]
    ],
)  # fmt: skip
async def test_bad_call_arguments_raise_before_counting(call: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        await call()


def test_create_token_roles_none_empty_or_any_iterable_of_str() -> None:
    auth = MockAuthProvider()
    assert auth.create_token("u")[1].roles == []
    assert auth.create_token("u", roles=[])[1].roles == []
    roles: Any = ("admin", "ops")
    assert auth.create_token("u", roles=roles)[1].roles == ["admin", "ops"]


def test_create_token_wants_a_str_org_id_or_none() -> None:
    auth = MockAuthProvider()
    assert auth.create_token("u", org_id="acme")[1].org_id == "acme"
    assert auth.create_token("u")[1].org_id is None
    org: Any = 5
    with pytest.raises(
        TypeError, match=r"^MockAuthProvider\.create_token: org_id must be a str; got int$"
    ):
        auth.create_token("u", org_id=org)
