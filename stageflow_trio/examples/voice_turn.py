"""A voice turn, in virtual time: speech in, guardrails, memory, a streamed spoken reply.

One turn of a voice agent is one run of a five-stage pipeline:

1. ``stt`` transcribes the caller's audio (a MockSTTProvider, 100 ms);
2. ``guard`` redacts personal data from the transcript (a GuardrailStage with a
   PIIDetector, failing open: the turn goes on and ``guardrail.fail_open`` records it);
3. ``fetch_memory``, in parallel with the two above, reads the session's earlier turns;
4. ``respond`` streams the reply from a MockLLMProvider (4 characters every 10 ms)
   into a ChunkQueue of two, and a second task speaks it sentence by sentence with a
   MockTTSProvider (real-time audio, in 40 ms chunks). The model writes faster than the
   voice speaks, so the queue fills and the model waits for room: that backpressure
   shows as ``stream.producer_blocked`` events. The caller hears the first sentence
   while the model is still writing the rest;
5. ``remember`` writes the redacted transcript and the reply to memory.

The example runs two turns of one session, so the second turn's ``fetch_memory``
finds the first; it prints what each stage did, on trio's clock. It runs on a
MockClock with autojump, so it takes no real time and prints the same every run:
``python -m stageflow_trio.examples voice_turn``. The pipeline alone:
``stageflow-trio run stageflow_trio.examples.voice_turn --input "What did I order?"``
(without a ``--session-id`` the memory stages skip).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any

import trio
import trio.testing

from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.examples import _run_main
from stageflow_trio.helpers import (
    ChunkQueue,
    GuardrailConfig,
    GuardrailStage,
    InMemoryStore,
    MemoryConfig,
    MemoryEntry,
    MemoryFetchStage,
    MemoryStore,
    MockLLMProvider,
    MockSTTProvider,
    MockTTSProvider,
    PIIDetector,
)
from stageflow_trio.pipeline import Pipeline
from stageflow_trio.testing import RecordingEventSink, create_test_stage_context

__all__ = ["PHRASES", "RememberTurn", "Respond", "Transcribe", "build_pipeline", "main", "record"]

PHRASES = (
    "What did I order last time? Call me back on 555-123-4567.",
    "When will it arrive?",
)
"""What the caller says in the two turns of :func:`main`."""

# Matched against the whole prompt, history included, in this order.
REPLIES = {
    r"arrive": "It arrives on Wednesday. Anything else?",
    r"order": "You ordered the blue kettle. It ships on Monday.",
}
CHUNK_MS = 40  # of audio per TTS chunk


def record(text: str) -> bytes:
    """The caller saying ``text``: deterministic 16 kHz PCM_16 bytes (a fake microphone)."""
    seed = hashlib.sha256(text.encode()).digest()
    return seed * (len(text) * 100 // len(seed))


def _audio_key(audio: bytes) -> str:
    # How MockSTTProvider's audio_map recognises audio: the first 16 hex digits of its MD5.
    return hashlib.md5(audio).hexdigest()[:16]


class Transcribe:
    """TRANSFORM: the caller's audio to text.

    The audio is the snapshot's ``metadata["audio"]``; without it (``stageflow-trio
    run --input ...``), the caller is taken to have said the input text.
    """

    def __init__(self, stt: MockSTTProvider) -> None:
        self.stt = stt

    async def execute(self, ctx: StageContext) -> StageOutput:
        audio = ctx.snapshot.metadata.get("audio")
        if audio is None:
            audio = record(ctx.snapshot.input_text or "")
        heard = await self.stt.transcribe(audio)
        return StageOutput.ok(transcript=heard.text, audio_ms=heard.duration_ms)


class Respond:
    """TRANSFORM: stream the model's reply to the voice through a ChunkQueue."""

    def __init__(self, llm: MockLLMProvider, tts: MockTTSProvider) -> None:
        self.llm = llm
        self.tts = tts

    async def execute(self, ctx: StageContext) -> StageOutput:
        inputs = ctx.inputs
        text = inputs.get_from("guard", "transformed_content") or inputs.get_from(
            "stt", "transcript"
        )
        history = inputs.get_from("fetch_memory", "memory_entries", default=[])
        prompt = "\n".join([*(f"{e['role']}: {e['content']}" for e in history), f"user: {text}"])
        # Two pieces of text at most between the model and the voice: when the voice
        # falls behind, the model's put() waits (and the queue reports it).
        pieces: ChunkQueue[str] = ChunkQueue(max_size=2, event_emitter=ctx.try_emit_event)
        reply: list[str] = []
        spoken: list[tuple[str, int]] = []  # (sentence, audio chunks)
        started = trio.current_time()
        first_audio: list[float] = []

        async def think() -> None:
            async with self.llm.stream(prompt, chunk_size=4) as chunks:
                async for chunk in chunks:
                    reply.append(chunk)
                    await pieces.put(chunk)
            await pieces.close()

        async def say(sentence: str) -> None:
            count = 0
            async with self.tts.stream(sentence, chunk_duration_ms=CHUNK_MS) as audio:
                async for _chunk in audio:  # here it would go out to the caller
                    if not first_audio:
                        first_audio.append(trio.current_time() - started)
                    count += 1
            spoken.append((sentence, count))

        async def speak() -> None:
            pending = ""
            async for piece in pieces:
                pending += piece
                # Speak each complete sentence as soon as it is written.
                *sentences, pending = re.split(r"(?<=[.?!])\s+", pending)
                for sentence in sentences:
                    await say(sentence)
            await say(pending)  # the last sentence: nothing follows it

        async with trio.open_nursery() as nursery:
            nursery.start_soon(think)
            nursery.start_soon(speak)
        return StageOutput.ok(
            response="".join(reply),
            sentences=[sentence for sentence, _ in spoken],
            audio_chunks=sum(count for _, count in spoken),
            first_audio_s=round(first_audio[0], 3) if first_audio else None,
            llm_waits=pieces.monitor.stats.blocked_puts,
            llm_waited_ms=round(pieces.monitor.stats.total_blocked_ms),
        )


class RememberTurn:
    """WORK: write the turn to memory, the caller's words as the guard left them.

    The library's MemoryWriteStage records the snapshot's ``input_text``; a voice turn
    has a transcript instead, and memory must not keep what the guard redacted.
    """

    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    async def execute(self, ctx: StageContext) -> StageOutput:
        snapshot = ctx.snapshot
        session_id = snapshot.session_id
        if session_id is None:
            await trio.lowlevel.checkpoint()
            return StageOutput.skip(reason="No session_id in context")
        inputs = ctx.inputs
        said = inputs.get_from("guard", "transformed_content") or inputs.get_from(
            "stt", "transcript"
        )
        prefix = snapshot.interaction_id or "unknown"
        turn = (("user", said), ("assistant", inputs.get_from("respond", "response")))
        for role, content in turn:
            await self.store.write(
                MemoryEntry(
                    id=f"{prefix}_{role}", session_id=session_id, role=role, content=content
                )
            )
        return StageOutput.ok(entries_written=len(turn))


def build_pipeline(store: MemoryStore | None = None) -> Pipeline:
    """The turn's pipeline, remembering in ``store`` (a new InMemoryStore by default)."""
    memory = store if store is not None else InMemoryStore()
    stt = MockSTTProvider(
        audio_map={_audio_key(record(text)): text for text in PHRASES},
        transcriptions=["Sorry, could you say that again?"],
        latency_ms=100,
        latency_jitter_ms=0,
        simulate_confidence=False,
    )
    llm = MockLLMProvider(patterns=REPLIES, responses=["Let me check."], latency_ms=150)
    tts = MockTTSProvider(latency_ms=50)
    guard = GuardrailStage(
        [PIIDetector(redact=True)],
        GuardrailConfig(fail_on_violation=False),
        content_key="transcript",
    )
    return (
        Pipeline(name="voice_turn")
        .with_stage("stt", Transcribe(stt), StageKind.TRANSFORM)
        .with_stage("guard", guard, StageKind.GUARD, dependencies=("stt",))
        .with_stage("fetch_memory", MemoryFetchStage(memory), StageKind.ENRICH)
        .with_stage(
            "respond",
            Respond(llm, tts),
            StageKind.TRANSFORM,
            dependencies=("stt", "guard", "fetch_memory"),
        )
        .with_stage(
            "remember",
            RememberTurn(memory),
            StageKind.WORK,
            dependencies=("stt", "guard", "respond"),
        )
    )


async def main() -> dict[str, Any]:
    store = InMemoryStore()
    graph = build_pipeline(store).build()
    session = uuid.uuid4()
    turns: list[dict[str, Any]] = []
    for number, phrase in enumerate(PHRASES, start=1):
        sink = RecordingEventSink()
        ctx = create_test_stage_context(
            event_sink=sink,
            session_id=session,
            metadata={"audio": record(phrase)},
        )
        started = trio.current_time()
        results = await graph.run(ctx)
        took = round(trio.current_time() - started, 3)
        heard = results["stt"].data["transcript"]
        said = results["guard"].data.get("transformed_content", heard)
        reply = results["respond"].data
        print(f"turn {number} ({took:.2f}s)")
        print(f"  heard:     {heard!r}")
        print(f"  kept:      {said!r}")
        print(f"  memory:    {results['fetch_memory'].data['memory_count']} earlier messages")
        print(f"  replied:   {reply['response']!r}")
        print(
            f"  spoke {len(reply['sentences'])} sentences in {reply['audio_chunks']} chunks,"
            f" first audio after {reply['first_audio_s']:.2f}s;"
            f" the model waited {reply['llm_waited_ms']} ms for the voice"
        )
        turns.append(
            {
                "took": took,
                "results": results,
                "events": sink.types(),
            }
        )
    memory = await store.fetch(session, MemoryConfig())
    print("memory:", [f"{entry.role}: {entry.content}" for entry in memory])
    return {"turns": turns, "memory": [(entry.role, entry.content) for entry in memory]}


if __name__ == "__main__":
    # trio.run(main), ending quietly (status 141) if the reader goes away (| head).
    _run_main(main, clock=trio.testing.MockClock(autojump_threshold=0))
