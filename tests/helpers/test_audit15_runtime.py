"""Audit 15: runtime helpers (mocks, providers, timestamps, UUID skew, memory tracking, faults).

Each test pins a defect found by the audit (it failed before the fix), or compares a
behaviour with stageflow-core 0.9.1 run on the same inputs.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from stageflow_trio.helpers import mocks as ours
from stageflow_trio.helpers.memory_tracker import MemoryTracker, track_memory
from stageflow_trio.helpers.providers import LLMResponse, STTResponse, TTSResponse
from stageflow_trio.helpers.timestamps import parse_timestamp
from stageflow_trio.helpers.uuid_utils import ClockSkewDetector, UuidCollisionMonitor, UuidEvent
from stageflow_trio.testing.faults import Fault, FaultPlan
from tests.fakes import import_reference

reference = import_reference()
ref_mocks = reference.helpers.mocks
ref_timestamps = reference.helpers.timestamps


def _v7(ms: int) -> uuid.UUID:
    """A version-7 UUID whose timestamp is ``ms`` Unix milliseconds."""
    return uuid.UUID(int=ms << 80 | 0x7 << 76 | 0b10 << 62)


# --- parse_timestamp: strings outside years 1-9999 --------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "9999-12-31T23:59:59-01:00",  # ISO 8601: past 9999 in UTC
        "0001-01-01T00:00:00+01:00",  # ISO 8601: before year 1 in UTC
        "Fri, 31 Dec 9999 23:59:59 -0100",  # RFC 2822, past 9999 in UTC
        "Mon, 01 Jan 99999999999999999999 00:00:00 GMT",  # RFC 2822, a year of 20 digits
    ],
)
def test_out_of_range_strings_raise_value_error(text: str) -> None:
    # The reference (and this port before the audit) let OverflowError out.
    with pytest.raises(OverflowError):
        ref_timestamps.parse_timestamp(text)
    with pytest.raises(
        ValueError, match=r"^parse_timestamp: timestamp .* is outside the supported range$"
    ) as info:
        parse_timestamp(text)
    assert isinstance(info.value.__cause__, OverflowError)


_edge_moments = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(1, 1, 3)
) | st.datetimes(min_value=datetime(9999, 12, 30), max_value=datetime(9999, 12, 31, 23, 59, 59))
_edge_offsets = st.integers(min_value=-23 * 60, max_value=23 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@settings(max_examples=60, deadline=None)
@given(moment=_edge_moments, zone=_edge_offsets, iso=st.booleans())
def test_strings_near_the_year_bounds_match_the_reference_or_raise_value_error(
    moment: datetime, zone: timezone, iso: bool
) -> None:
    aware = moment.replace(tzinfo=zone)
    if iso:
        text = aware.isoformat()
    else:
        minutes = int(zone.utcoffset(None).total_seconds()) // 60
        sign = "-" if minutes < 0 else "+"
        text = aware.strftime("%d %b ") + f"{aware.year:04d}" + aware.strftime(" %H:%M:%S ")
        text += f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"
    try:
        expected: Any = ref_timestamps.parse_timestamp(text)
    except OverflowError:
        expected = OverflowError
    except ValueError as exc:
        expected = ("ValueError", str(exc))
    try:
        got: Any = parse_timestamp(text)
    except ValueError as exc:
        got = (
            OverflowError
            if "outside the supported range" in str(exc)
            else (
                "ValueError",
                str(exc),
            )
        )
    assert got == expected


# --- ClockSkewDetector: UUIDv7 timestamps past year 9999 ---------------------------------


def test_skew_of_a_v7_past_year_9999_is_reported_not_raised() -> None:
    far = _v7(0xFFFF_FFFF_FFFF)  # year 10889: datetime raised "year 10889 is out of range"
    skew = ClockSkewDetector().check(far)
    assert skew is not None
    now_ms = datetime.now(UTC).timestamp() * 1000
    assert skew == pytest.approx(0xFFFF_FFFF_FFFF - now_ms, rel=1e-6)


def test_skew_at_the_last_datetime_millisecond_still_uses_datetime() -> None:
    last = _v7(253_402_300_799_999)  # 9999-12-31T23:59:59.999Z
    skew = ClockSkewDetector().check(last)
    assert skew is not None
    assert skew == pytest.approx(253_402_300_799_999 - datetime.now(UTC).timestamp() * 1000)


def test_monitor_with_skew_check_observes_a_far_future_v7() -> None:
    events: list[UuidEvent] = []
    monitor = UuidCollisionMonitor(check_skew=True, listeners=[events.append])
    far = _v7(0xF000_0000_0000)
    assert monitor.observe(far) is False
    assert monitor.observe(far) is True
    assert [e.collision for e in events] == [False, True]
    assert all(e.skew_ms is not None and e.skew_ms > 1e12 for e in events)


def test_skew_check_of_a_non_uuid_names_the_parameter() -> None:
    with pytest.raises(TypeError, match=r"^ClockSkewDetector.check: uid must be a UUID; got str$"):
        ClockSkewDetector().check("0190b6b0-0000-7000-8000-000000000000")  # type: ignore[arg-type]


# --- provider responses: list fields and negative times ---------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: LLMResponse(content="c", model="m", provider="p", tool_calls="call"),  # type: ignore[arg-type]
            r"^LLMResponse: tool_calls must be a list of dicts; got str$",
        ),
        (
            lambda: LLMResponse(content="c", model="m", provider="p", tool_calls={"id": "1"}),  # type: ignore[dict-item]
            r"^LLMResponse: tool_calls must be a list of dicts; got dict$",
        ),
        (
            lambda: STTResponse(text="t", words="hello world"),  # type: ignore[arg-type]
            r"^STTResponse: words must be a list of dicts; got str$",
        ),
        (
            lambda: STTResponse(text="t", words=5),  # type: ignore[arg-type]
            r"^STTResponse: words must be a list of dicts; got int$",
        ),
    ],
)
def test_list_fields_refuse_str_and_mappings(make: Any, message: str) -> None:
    # They became one entry per character / per key.
    with pytest.raises(TypeError, match=message):
        make()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: LLMResponse(content="c", model="m", provider="p", latency_ms=-1.5),
            r"^LLMResponse: latency_ms must be >= 0; got -1.5$",
        ),
        (
            lambda: STTResponse(text="t", duration_ms=-1),
            r"^STTResponse: duration_ms must be >= 0; got -1$",
        ),
        (
            lambda: STTResponse(text="t", latency_ms=-0.1),
            r"^STTResponse: latency_ms must be >= 0; got -0.1$",
        ),
        (
            lambda: TTSResponse(audio=b"", duration_ms=-20.0),
            r"^TTSResponse: duration_ms must be >= 0; got -20.0$",
        ),
        (
            lambda: TTSResponse(audio=b"", latency_ms=-3),
            r"^TTSResponse: latency_ms must be >= 0; got -3$",
        ),
    ],
)
def test_negative_times_are_refused(make: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_list_fields_still_take_lists_tuples_iterables_and_none() -> None:
    call = {"id": "1", "name": "f"}
    values: list[Any] = [[call], (call,), iter([call])]
    for value in values:
        response = LLMResponse(content="c", model="m", provider="p", tool_calls=value)
        assert list(response.tool_calls) == [call]
    assert list(STTResponse(text="t", words=None).words) == []  # type: ignore[arg-type]


# --- mocks: arguments too large for datetime / int --------------------------------------


async def test_tts_stream_with_a_huge_chunk_duration_gives_one_chunk(autojump_clock: Any) -> None:
    tts = ours.MockTTSProvider(latency_ms=0, bytes_per_char=10)
    # int(32 * 1e308) raised OverflowError at the call.
    chunks = [chunk async for chunk in tts.stream("abc", chunk_duration_ms=1e308)]  # type: ignore[arg-type]
    assert [len(c.data) for c in chunks] == [30]
    assert chunks[0].data == await tts.synthesize("abc")


@pytest.mark.parametrize("hours", [1e12, -1e12, 10**15])
def test_create_token_with_an_expiry_past_datetime_is_a_value_error(hours: float) -> None:
    auth = ours.MockAuthProvider()
    with pytest.raises(
        ValueError,
        match=r"^MockAuthProvider.create_token: expires_in_hours must give an expiry within years 1-9999",
    ):
        auth.create_token("u", expires_in_hours=hours)  # type: ignore[arg-type]
    assert auth._valid_tokens == {}


# --- MockJWTClaims fields ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"roles": "admin"},
            TypeError,
            r"^MockJWTClaims: roles must be a list of str or None; got str$",
        ),
        ({"roles": [1]}, TypeError, r"^MockJWTClaims: roles\[0\] must be a str; got int$"),
        ({"exp": datetime(2030, 1, 1)}, ValueError, r"^MockJWTClaims: exp must be timezone-aware"),
        ({"iat": "2030-01-01"}, TypeError, r"^MockJWTClaims: iat must be a datetime; got str$"),
        ({"org_id": 5}, TypeError, r"^MockJWTClaims: org_id must be a str; got int$"),
        ({"custom": [("a", 1)]}, TypeError, r"^MockJWTClaims: custom must be a mapping; got list$"),
        ({"sub": None}, TypeError, r"^MockJWTClaims: sub must be a str; got NoneType$"),
    ],
)
def test_jwt_claims_fields_are_checked(kwargs: dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        ours.MockJWTClaims(**{"sub": "u", **kwargs})


async def test_claims_with_a_naive_expiry_no_longer_fail_inside_validate() -> None:
    # The reference (and this port before) took the claims and then raised
    # "can't compare offset-naive and offset-aware datetimes" from validate().
    ref_claims = ref_mocks.MockJWTClaims(sub="u", exp=datetime(2999, 1, 1))
    ref_auth = ref_mocks.MockAuthProvider(valid_tokens={"t": ref_claims})
    with pytest.raises(TypeError, match="offset-naive and offset-aware"):
        await _in_asyncio(ref_auth.validate("t"))
    with pytest.raises(ValueError, match="exp must be timezone-aware"):
        ours.MockJWTClaims(sub="u", exp=datetime(2999, 1, 1))


async def _in_asyncio(coro: Any) -> Any:
    """Run a reference coroutine (it awaits nothing asynchronous) to completion."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    raise AssertionError("the reference coroutine suspended")


# --- MockToolExecutor: async handlers ---------------------------------------------------


async def _async_tool(arguments: dict[str, Any]) -> dict[str, Any]:
    return arguments


def test_async_tool_handlers_are_refused() -> None:
    # A handler is called synchronously: an async one returned a never-awaited
    # coroutine as a successful output.
    with pytest.raises(
        TypeError, match=r"^MockToolExecutor: tools\['echo'\] must be a plain function"
    ):
        ours.MockToolExecutor(tools={"echo": _async_tool})
    executor = ours.MockToolExecutor()
    with pytest.raises(
        TypeError, match=r"^MockToolExecutor.register_tool: handler must be a plain function"
    ):
        executor.register_tool("echo", _async_tool)


# --- MockStream: a second consumer --------------------------------------------------------


async def test_a_second_concurrent_anext_raises_like_a_generator(autojump_clock: Any) -> None:
    llm = ours.MockLLMProvider(responses=["first answer", "second"], latency_ms=10)
    stream = llm.stream("x", chunk_size=5)
    got: list[Any] = []

    async def consume() -> None:
        try:
            got.append(await stream.__anext__())
        except RuntimeError as exc:
            got.append(str(exc))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consume)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(consume)
    assert got == ["anext(): asynchronous generator is already running", "first"]
    # The refused call changed nothing: the cycle moved once, the stream goes on.
    assert llm._response_index == 1
    assert [chunk async for chunk in stream] == [" answ", "er"]
    assert (await llm.complete("y")).content == "second"


def test_the_reference_generator_refuses_a_second_anext_with_the_same_message() -> None:
    async def main() -> list[str]:
        llm = ref_mocks.MockLLMProvider(responses=["first answer"], latency_ms=10)
        stream = llm.stream("x")
        first = asyncio.ensure_future(stream.__anext__())
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError) as info:
            await stream.__anext__()
        return [str(info.value), await first]

    assert asyncio.run(main()) == ["anext(): asynchronous generator is already running", "first"]


async def test_close_while_a_chunk_is_awaited_ends_the_stream(autojump_clock: Any) -> None:
    tts = ours.MockTTSProvider(latency_ms=0, bytes_per_char=100)
    stream = tts.stream("abcdef", chunk_duration_ms=1)  # 32-byte chunks, 1 ms apart
    first = await stream.__anext__()
    assert len(first.data) == 32
    got: list[Any] = []

    async def consume() -> None:
        got.extend([chunk async for chunk in stream])

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consume)
        await trio.testing.wait_all_tasks_blocked()
        stream.close()
    assert got == []
    assert stream.closed


# --- track_memory: cancellation ------------------------------------------------------------


async def test_a_failing_end_sample_does_not_replace_cancelled(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str | None] = []

    def listener(sample: Any) -> None:
        seen.append(sample.label)
        if sample.label == "slow:end":
            raise RuntimeError("listener broke")

    tracker = MemoryTracker(auto_start=True, listeners=[listener])

    @track_memory(label="slow", tracker=tracker)
    async def slow() -> None:
        await trio.sleep(10)

    with caplog.at_level(logging.WARNING, logger="stageflow_trio.helpers.memory_tracker"):
        with trio.move_on_after(1) as scope:
            await slow()
    # The cancel scope caught its Cancelled (it was a RuntimeError before).
    assert scope.cancelled_caught
    assert seen == ["slow:start", "slow:end"]
    assert "the 'slow:end' sample failed during cancellation" in caplog.text


async def test_an_end_sample_error_still_replaces_an_ordinary_error() -> None:
    tracker = MemoryTracker(auto_start=True)

    @track_memory(label="boom", tracker=tracker)
    async def boom() -> None:
        tracker.stop()
        raise KeyError("k")

    # As in the reference: the end sample's RuntimeError, chained to the KeyError.
    with pytest.raises(RuntimeError, match="not active") as info:
        await boom()
    assert isinstance(info.value.__context__, KeyError)


# --- Fault fields ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"action": "raise"}, ValueError, r"^Fault: a 'raise' fault needs an error \(stage 's'\)$"),
        (
            {"action": "raise", "error": ValueError},
            TypeError,
            r"^Fault: error must be an exception instance or None; got type$",
        ),
        ({"action": "delay", "seconds": -1}, ValueError, r"^Fault: seconds must be >= 0; got -1$"),
        (
            {"action": "delay", "seconds": float("nan")},
            ValueError,
            r"^Fault: seconds must be a finite number; got nan$",
        ),
        (
            {"action": "delay", "seconds": "1"},
            TypeError,
            r"^Fault: seconds must be a number; got str$",
        ),
        ({"action": "fail", "message": 5}, TypeError, r"^Fault: message must be a str; got int$"),
    ],
)
def test_fault_fields_are_checked_when_made(
    kwargs: dict[str, Any], error: type, message: str
) -> None:
    # A 'raise' fault without an error used to fail the stage with an AssertionError
    # (which looked like the injected fault); a bad delay failed inside trio.sleep.
    with pytest.raises(error, match=message):
        Fault("s", **kwargs)


def test_fault_plan_builders_still_make_valid_faults() -> None:
    plan = (
        FaultPlan().raise_error("a", ValueError("x")).fail("b").cancel("c").hang("d").delay("e", 0)
    )
    assert [f.action for f in plan.faults] == ["raise", "fail", "cancel", "hang", "delay"]


# --- differential: complete, stream and reset interleaved --------------------------------

_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("complete"), st.sampled_from(["hi", "WEATHER?", "zzz", ""])),
        st.tuples(
            st.just("stream"),
            st.sampled_from(["hi", "weather", "other"]),
            st.integers(1, 7),
            st.integers(0, 4),
        ),
        st.tuples(st.just("reset")),
    ),
    max_size=8,
)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**16), ops=_OPS, echo=st.booleans(), fail_rate=st.sampled_from([0.0, 0.4])
)
def test_llm_interleaved_calls_match_the_reference(
    seed: int, ops: list[tuple[Any, ...]], echo: bool, fail_rate: float
) -> None:
    kwargs: dict[str, Any] = {
        "responses": ["one", "two two", "three three three"],
        "patterns": {"weather": "Sunny and warm."},
        "echo": echo,
        "latency_ms": 20,
        "latency_jitter_ms": 10,
        "fail_rate": fail_rate,
    }

    async def drive(llm: Any) -> list[Any]:
        log: list[Any] = []
        for op in ops:
            if op[0] == "complete":
                try:
                    result = await llm.complete(op[1])
                    log.append(("c", result.content, dict(result.usage)))
                except Exception as exc:
                    log.append(("c-error", str(exc)))
            elif op[0] == "stream":
                stream = llm.stream(op[1], chunk_size=op[2])
                taken: list[str] = []
                try:
                    async for chunk in stream:
                        taken.append(chunk)
                        if len(taken) >= op[3]:
                            break  # abandoned half way
                except Exception as exc:
                    taken.append(f"error: {exc}")
                log.append(("s", taken))
            else:
                llm.reset()
            log.append(("state", llm.call_count, [h["prompt"] for h in llm.call_history]))
        return log

    fake_sleeps: list[float] = []

    class _Asyncio:
        @staticmethod
        async def sleep(delay: float) -> None:
            fake_sleeps.append(delay)

    original, state = ref_mocks.asyncio, random.getstate()
    ref_mocks.asyncio = _Asyncio
    try:
        random.seed(seed)
        theirs = asyncio.run(drive(ref_mocks.MockLLMProvider(**kwargs)))
        ref_next = random.random()
    finally:
        ref_mocks.asyncio = original
        random.setstate(state)

    rng = random.Random(seed)

    async def main() -> list[Any]:
        return await drive(ours.MockLLMProvider(**kwargs, rng=rng))

    mine = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert mine == theirs
    # The same number of draws: the next one agrees.
    assert rng.random() == ref_next
