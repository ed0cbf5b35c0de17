"""Audit 25: a duplex voice agent with barge-in, built on the streaming helpers.

The agent below is a compact version of the one the audit built (and built again on
stageflow 0.9.1 with asyncio, on a virtual-time event loop, to compare). A session is
one nursery: a microphone puts 20 ms chunks into a ChunkQueue; a listener finds
utterances (voiced chunks, ended by 60 ms of silence); each utterance is a turn, one
pipeline run (stt -> guard (PIIDetector) and fetch_memory -> respond -> remember) in a
cancel scope of its own; ``respond`` streams MockLLMProvider tokens, has
MockTTSProvider render each sentence (faster than real time) and puts it in 20 ms
chunks into the speaker's ChunkQueue; the speaker plays them in real time.
Barge-in: speech that starts while a turn runs or audio plays cancels the turn's
scope, cuts the chunk being played, flushes the queue and bumps the answer number
the speaker checks. The LLM's latency is 153 ms and the speaker restarting after it
ran dry takes 5 ms: that keeps the tasks' wake-ups off one another's instants
(trio varies the order of tasks woken at the same instant), so every run is the same.

Scenarios and outcomes (trio; 0.9.1 in brackets where it differs):

- barge-in at 1.0 s while the first answer plays: the chunk playing is cut at 1.0 s,
  the 4 queued chunks are flushed, nothing of the first answer plays afterwards; the
  second turn hears only its own utterance and plays all of its answer; memory holds
  only the second turn (the cancelled run reports ``stage.respond.cancelled`` and
  ``pipeline_cancelled``). [Cancelling the task that runs ``graph.run`` leaves its
  ``respond`` stage running: the rest of the first answer is still queued, and played,
  after the barge-in (all of it when the barge-in comes before its first audio);
  documented: docs/parity.md, "A UnifiedStageGraph run cancelled from outside".]
- fixed: that cancelled run was logged "Pipeline cancelled via token: cancelled",
  though no CancellationToken was used; it is now "Pipeline cancelled from outside"
  (event ``pipeline_cancelled_external``). New parity row.
- a slow speaker: with a blocking queue the queue never holds more than its size, the
  TTS waits (``stream.producer_blocked``, counted in the monitor), every chunk put is
  played, cut or flushed; with ``drop_on_overflow`` the dropped count, the
  ``stream.chunk_dropped`` events and the monitor agree, and puts = played + cut +
  flushed + dropped. [The same counts; ``blocked_puts`` 0 (its wall clock: documented);
  its throttle never ends in a queue of 4, where an item handed to a waiting ``get``
  counts: new parity row "Throttle events after a put handed ...".]
- a flush right after a ``put`` to a speaker waiting in ``get()`` cannot reach that
  chunk: trio hands it over at the put. [asyncio's queue kept it until the speaker
  ran, so the flush took it.] The agent's answer number stops it; new parity row and
  docs/streaming.md "Stopping a stream: barge-in".
- a disconnect mid-answer (the session's scope cancelled at 0.8 s): every task ends,
  ``assert_no_orphans`` passes. [The running stage's task outlives it.]
- the STT failing, or the LLM failing mid-stream after 8 tokens: the turn fails (a
  ``UnifiedStageExecutionError``), what was already queued plays, the session goes on
  and the next turn answers. [The same.]
- 30 sessions in one trio run (100 in the scratch runs), each barging in at its own
  time: each hears its own utterances and plays exactly what the same session plays
  alone.
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from collections import Counter
from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.helpers import (
    GuardrailConfig,
    GuardrailStage,
    InMemoryStore,
    MemoryConfig,
    MemoryEntry,
    MemoryFetchStage,
    MockLLMProvider,
    MockSTTProvider,
    MockTTSProvider,
    PIIDetector,
)
from stageflow_trio.helpers.streaming import AudioChunk, ChunkQueue, QueueEmpty
from stageflow_trio.pipeline import Pipeline
from stageflow_trio.testing import RecordingEventSink, assert_no_orphans, create_test_stage_context

CHUNK_MS = 20
CHUNK_BYTES = 640  # 20 ms of 16 kHz PCM_16
SILENCE = bytes(CHUNK_BYTES)
REPLIES = {
    r"weather": "It is sunny today. Tomorrow brings rain. Take an umbrella.",
    r"joke": "Why did the chicken cross the road? To get to the other side.",
}


def speech(text: str) -> list[bytes]:
    """The caller saying ``text``: ten voiced 20 ms chunks."""
    chunks = []
    for i in range(10):
        seed = hashlib.sha256(f"{text}/{i}".encode()).digest()
        chunks.append(bytes(b | 1 for b in (seed * 21)[:CHUNK_BYTES]))
    return chunks


def audio_key(audio: bytes) -> str:
    return hashlib.md5(audio).hexdigest()[:16]


class FailingStream:
    """An LLM stream that breaks after ``after`` tokens."""

    def __init__(self, inner: Any, after: int) -> None:
        self.inner, self.left = inner, after

    def __aiter__(self) -> FailingStream:
        return self

    async def __anext__(self) -> Any:
        if self.left == 0:
            await trio.lowlevel.checkpoint()
            raise RuntimeError("LLM connection reset")
        self.left -= 1
        return await self.inner.__anext__()


class Session:
    def __init__(
        self,
        script: list[tuple[int, str]],
        *,
        total_ms: int = 3000,
        speaker_max: int = 8,
        drop_on_overflow: bool = False,
        stt_fails: bool = False,
        llm_fails_after: int | None = None,
    ) -> None:
        self.frames = [SILENCE] * (total_ms // CHUNK_MS)
        for start_ms, text in script:
            for i, chunk in enumerate(speech(text)):
                self.frames[start_ms // CHUNK_MS + i] = chunk
        self.mic_q: ChunkQueue[AudioChunk] = ChunkQueue(max_size=50)
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.speaker_q: ChunkQueue[AudioChunk] = ChunkQueue(
            max_size=speaker_max,
            drop_on_overflow=drop_on_overflow,
            event_emitter=lambda kind, data: self.events.append((kind, dict(data))),
        )
        self.log: list[tuple[int, str, Any]] = []
        self.turn_scope: trio.CancelScope | None = None
        self.playing: trio.CancelScope | None = None
        self.turns = 0
        self.answer = 0  # the speaker plays chunks of this answer only
        self.puts = self.flushed = self.max_len = 0
        self.played: list[tuple[int, int, int]] = []  # (end ms, turn, sequence)
        self.cut: list[tuple[int, int, int]] = []
        self.last_end = -1
        self.sinks: dict[int, RecordingEventSink] = {}
        self.store = InMemoryStore()
        self.session_id = uuid.uuid4()
        self.stt_fails = stt_fails
        self.llm_fails_after = llm_fails_after
        self.stt = MockSTTProvider(
            audio_map={audio_key(b"".join(speech(t))): t for _, t in script},
            latency_ms=100,
            latency_jitter_ms=0,
            simulate_confidence=False,
        )
        self.llm = MockLLMProvider(patterns=REPLIES, responses=["Hmm."], latency_ms=153)
        self.tts = MockTTSProvider(latency_ms=50, bytes_per_char=400)
        self.graph = self.pipeline().build()

    def now(self) -> int:
        return round(trio.current_time() * 1000)

    def note(self, what: str, detail: Any = None) -> None:
        self.log.append((self.now(), what, detail))

    def pipeline(self) -> Pipeline:
        session = self

        class Transcribe:
            async def execute(self, ctx: StageContext) -> StageOutput:
                if session.stt_fails and ctx.snapshot.metadata["turn"] == 1:
                    await trio.sleep(0.05)
                    raise RuntimeError("STT stream dropped")
                heard = await session.stt.transcribe(ctx.snapshot.metadata["audio"])
                session.note("heard", heard.text)
                return StageOutput.ok(transcript=heard.text)

        class Respond:
            async def execute(self, ctx: StageContext) -> StageOutput:
                turn = ctx.snapshot.metadata["turn"]
                answer = session.answer
                inputs = ctx.inputs
                text = inputs.get_from("guard", "transformed_content") or inputs.get_from(
                    "stt", "transcript"
                )
                stream: Any = session.llm.stream(text, chunk_size=4)
                if session.llm_fails_after is not None and turn == 1:
                    stream = FailingStream(stream, session.llm_fails_after)
                reply: list[str] = []
                pending, sequence = "", 0

                async def say(sentence: str) -> None:
                    nonlocal sequence
                    audio = await session.tts.synthesize(sentence)
                    for start in range(0, len(audio), CHUNK_BYTES):
                        chunk = AudioChunk(
                            data=audio[start : start + CHUNK_BYTES],
                            sequence=sequence,
                            metadata={"turn": turn, "answer": answer},
                        )
                        sequence += 1
                        await session.speaker_q.put(chunk)
                        session.puts += 1
                        session.max_len = max(session.max_len, len(session.speaker_q))

                async for token in stream:
                    reply.append(token)
                    *sentences, pending = re.split(r"(?<=[.?!])\s+", pending + token)
                    for sentence in sentences:
                        await say(sentence)
                if pending:
                    await say(pending)
                return StageOutput.ok(response="".join(reply), chunks=sequence)

        class Remember:
            async def execute(self, ctx: StageContext) -> StageOutput:
                inputs = ctx.inputs
                turn = ctx.snapshot.metadata["turn"]
                said = inputs.get_from("guard", "transformed_content") or inputs.get_from(
                    "stt", "transcript"
                )
                for role, content in (
                    ("user", said),
                    ("assistant", inputs.get_from("respond", "response")),
                ):
                    entry = MemoryEntry(
                        id=f"{turn}_{role}",
                        session_id=session.session_id,
                        role=role,
                        content=content,
                    )
                    await session.store.write(entry)
                return StageOutput.ok()

        guard = GuardrailStage(
            [PIIDetector(redact=True)],
            GuardrailConfig(fail_on_violation=False),
            content_key="transcript",
        )
        return (
            Pipeline(name="voice")
            .with_stage("stt", Transcribe(), StageKind.TRANSFORM)
            .with_stage("guard", guard, StageKind.GUARD, dependencies=("stt",))
            .with_stage("fetch_memory", MemoryFetchStage(self.store), StageKind.ENRICH)
            .with_stage(
                "respond",
                Respond(),
                StageKind.TRANSFORM,
                dependencies=("stt", "guard", "fetch_memory"),
            )
            .with_stage(
                "remember", Remember(), StageKind.WORK, dependencies=("stt", "guard", "respond")
            )
        )

    async def mic(self) -> None:
        for i, frame in enumerate(self.frames):
            await self.mic_q.put(AudioChunk(data=frame, sequence=i))
            await trio.sleep(CHUNK_MS / 1000)
        await self.mic_q.close()

    def barge_in(self) -> None:
        """Stop the answer: no checkpoint in here, so no task runs half way through."""
        stopped = self.turn_scope is not None or self.playing is not None
        if self.turn_scope is not None:
            self.turn_scope.cancel()
        if self.playing is not None:
            self.playing.cancel()
        # Always: a chunk already handed to the speaker's get() is beyond the flush.
        self.answer += 1
        while True:
            try:
                self.speaker_q.get_nowait()
            except QueueEmpty:
                break
            self.flushed += 1
            stopped = True
        if stopped:
            self.note("barge_in", self.flushed)

    async def listener(self, turns: trio.Nursery) -> None:
        voiced_run, silent = False, 0
        utterance: list[bytes] = []
        async for chunk in self.mic_q:
            if chunk.data != SILENCE:
                if not voiced_run:
                    voiced_run, utterance = True, []
                    self.barge_in()
                utterance.append(chunk.data)
                silent = 0
            elif voiced_run:
                silent += 1
                if silent == 3:
                    voiced_run = False
                    self.turns += 1
                    turns.start_soon(self.turn, self.turns, b"".join(utterance))

    async def turn(self, turn: int, audio: bytes) -> None:
        sink = self.sinks[turn] = RecordingEventSink()
        with trio.CancelScope() as scope:
            self.turn_scope = scope
            ctx = create_test_stage_context(
                event_sink=sink, session_id=self.session_id, metadata={"audio": audio, "turn": turn}
            )
            try:
                results = await self.graph.run(ctx)
            except Exception as exc:
                self.note("turn_failed", (turn, type(exc).__name__, str(exc)))
            else:
                self.note("turn_done", (turn, results["respond"].data["chunks"]))
            finally:
                if self.turn_scope is scope:
                    self.turn_scope = None
        if scope.cancelled_caught:
            self.note("turn_cancelled", turn)

    async def speaker(self) -> None:
        async for chunk in self.speaker_q:
            if chunk.metadata["answer"] != self.answer:
                self.note("stale_skipped", chunk.metadata["turn"])
                continue
            wake_ms = 0 if self.now() == self.last_end else 5
            with trio.CancelScope() as scope:
                self.playing = scope
                await trio.sleep((chunk.duration_ms + wake_ms) / 1000)
            self.playing = None
            entry = (self.now(), chunk.metadata["turn"], chunk.sequence)
            if scope.cancelled_caught:  # a barge-in cut it
                self.cut.append(entry)
            else:
                self.played.append(entry)
                self.last_end = self.now()

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.speaker)
            nursery.start_soon(self.mic)
            async with trio.open_nursery() as turns:
                await self.listener(turns)
            await self.speaker_q.close()

    def played_of(self, turn: int) -> list[tuple[int, int, int]]:
        return [entry for entry in self.played if entry[1] == turn]


def run_session(session: Session) -> Session:
    trio.run(session.run, clock=trio.testing.MockClock(autojump_threshold=0))
    return session


TWO_TURNS = [(0, "what's the weather"), (1000, "tell me a joke")]


def test_barge_in_stops_the_answer_within_a_chunk_and_plays_nothing_stale() -> None:
    session = run_session(Session(TWO_TURNS))
    events = [(ms, what) for ms, what, _ in session.log]
    assert (1000, "barge_in") in events
    assert (1000, "turn_cancelled") in events
    # The chunk playing at 1.0 s was cut there; nothing of turn 1 ends after it.
    assert session.cut == [(1000, 1, 21)]
    assert max(end for end, _, _ in session.played_of(1)) <= 1000
    assert [seq for _, _, seq in session.played_of(1)] == list(range(21))
    assert session.flushed == 4
    # The second turn is clean: its own transcript, every chunk of its answer, in order.
    assert [d for _, what, d in session.log if what == "heard"] == [
        "what's the weather",
        "tell me a joke",
    ]
    done = [d for _, what, d in session.log if what == "turn_done"]
    assert done == [(2, 38)]
    assert [seq for _, _, seq in session.played_of(2)] == list(range(38))
    assert min(end for end, _, _ in session.played_of(2)) > 1000
    # Every chunk put is accounted for.
    assert session.puts == len(session.played) + len(session.cut) + session.flushed
    # The cancelled run says so, and the interrupted turn is not remembered.
    assert session.sinks[1].types()[-2:] == ["stage.respond.cancelled", "pipeline_cancelled"]
    assert "stage.remember.started" not in session.sinks[1].types()

    async def memory() -> list[str]:
        return [e.id for e in await session.store.fetch(session.session_id, MemoryConfig())]

    assert trio.run(memory) == ["2_user", "2_assistant"]


def test_slow_speaker_blocks_the_tts_and_bounds_the_queue() -> None:
    session = run_session(Session(TWO_TURNS, speaker_max=4))
    kinds = Counter(kind for kind, _ in session.events)
    stats = session.speaker_q.monitor.stats
    assert session.max_len == stats.max_queue_size == 4
    assert stats.blocked_puts == kinds["stream.producer_blocked"] > 0
    assert stats.dropped_items == 0
    assert stats.total_items == session.puts
    assert session.puts == len(session.played) + len(session.cut) + session.flushed
    assert not [end for end, turn, _ in session.played if turn == 1 and end > 1000]


def test_slow_speaker_drops_and_the_counts_agree() -> None:
    session = run_session(Session(TWO_TURNS, speaker_max=4, drop_on_overflow=True))
    drops = [data for kind, data in session.events if kind == "stream.chunk_dropped"]
    stats = session.speaker_q.monitor.stats
    assert len(drops) == stats.dropped_items > 0
    assert all(d == {"queue_size": 3, "max_size": 4, "reason": "overflow"} for d in drops)
    assert stats.blocked_puts == 0
    assert session.max_len == stats.max_queue_size == 4
    played = len(session.played) + len(session.cut)
    assert session.puts == stats.total_items == played + session.flushed + stats.dropped_items
    assert stats.to_dict()["drop_rate"] == stats.dropped_items / session.puts
    assert session.speaker_q.is_closed


async def test_a_flush_does_not_reach_a_chunk_handed_to_a_waiting_get() -> None:
    queue: ChunkQueue[str] = ChunkQueue(max_size=4)
    got: list[str | None] = []

    async def speaker() -> None:
        got.append(await queue.get())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(speaker)
        await trio.testing.wait_all_tasks_blocked()
        await queue.put("old answer")  # straight to the waiting get
        # A barge-in now: asyncio's queue kept the item until the speaker ran, so
        # this flush took it; trio handed it over at the put.
        try:
            queue.get_nowait()
        except QueueEmpty:
            flushed = False
        else:
            flushed = True
        await queue.put("new answer")
    assert not flushed
    assert got == ["old answer"]  # hence the answer number the agent checks
    assert len(queue) == 1


def test_disconnect_mid_answer_leaves_no_task() -> None:
    session = Session([(0, "what's the weather")])

    async def call() -> None:
        async with assert_no_orphans():
            with trio.move_on_after(0.8):  # the caller hangs up mid-answer
                await session.run()

    trio.run(call, clock=trio.testing.MockClock(autojump_threshold=0))
    assert 0 < len(session.played) < session.puts
    assert session.sinks[1].types()[-2:] == ["stage.respond.cancelled", "pipeline_cancelled"]


def test_stt_failure_fails_the_turn_and_the_session_goes_on() -> None:
    session = Session(TWO_TURNS, stt_fails=True)
    run_session(session)
    failed = [d for _, what, d in session.log if what == "turn_failed"]
    assert failed == [(1, "UnifiedStageExecutionError", "Stage 'stt' failed: STT stream dropped")]
    assert [d for _, what, d in session.log if what == "heard"] == ["tell me a joke"]
    assert [turn for _, turn, _ in session.played] == [2] * 38
    assert session.speaker_q.is_closed


def test_llm_failing_mid_stream_keeps_what_was_said_and_the_next_turn_answers() -> None:
    session = Session([(0, "what's the weather"), (2000, "tell me a joke")], llm_fails_after=8)
    run_session(session)
    failed = [d for _, what, d in session.log if what == "turn_failed"]
    assert failed == [
        (1, "UnifiedStageExecutionError", "Stage 'respond' failed: LLM connection reset")
    ]
    # The first sentence was complete before the break: it is spoken, and nothing else.
    assert [seq for _, _, seq in session.played_of(1)] == list(range(12))
    assert [seq for _, _, seq in session.played_of(2)] == list(range(38))
    assert session.puts == len(session.played) == 12 + 38


async def test_many_sessions_at_once_stay_independent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    def script(i: int) -> list[tuple[int, str]]:
        return [(0, f"what's the weather in town {i}"), (600 + 20 * (i % 5), f"tell me a joke {i}")]

    # 10 sessions (two of each barge-in time, all running at once, each beside others at
    # the same moments and at the other four): the independence a hundred showed (30 until
    # audit 26), in a tenth of CI's time under coverage.
    sessions = [Session(script(i), total_ms=2000) for i in range(10)]
    start = round(trio.current_time() * 1000)
    async with assert_no_orphans(), trio.open_nursery() as nursery:
        for session in sessions:
            nursery.start_soon(session.run)
    alone = {}
    for offset in range(5):
        solo = Session(script(offset), total_ms=2000)
        solo_start = round(trio.current_time() * 1000)
        await solo.run()
        alone[offset] = [(end - solo_start, turn, seq) for end, turn, seq in solo.played]
    for i, session in enumerate(sessions):
        heard = [d for _, what, d in session.log if what == "heard"]
        assert heard == [text for _, text in script(i)]
        mine = [(end - start, turn, seq) for end, turn, seq in session.played]
        assert [entry[1:] for entry in mine] == [entry[1:] for entry in alone[i % 5]]
        # The same times too, but for float rounding at another offset of the clock.
        assert all(abs(a[0] - b[0]) <= 1 for a, b in zip(mine, alone[i % 5], strict=True))
        barge = script(i)[1][0]
        assert not [end for end, turn, _ in session.played if turn == 1 and end - start > barge]


def test_a_run_cancelled_by_the_barge_in_is_not_logged_as_a_token_cancel(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Fix: the caller's scope cancelling a run was logged "Pipeline cancelled via token"."""
    with caplog.at_level(logging.INFO, logger="stageflow_trio.dag"):
        run_session(Session(TWO_TURNS))
    cancelled = [r for r in caplog.records if "Pipeline cancelled" in r.getMessage()]
    assert [r.getMessage() for r in cancelled] == ["Pipeline cancelled from outside: cancelled"]
    assert getattr(cancelled[0], "event", None) == "pipeline_cancelled_external"
    assert getattr(cancelled[0], "reason", None) == "cancelled"
