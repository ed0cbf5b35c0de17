"""ContextSnapshot round trip: ``from_dict(to_dict(snapshot))``, stageflow vs stageflow_trio.

Both libraries serialize the same realistic snapshot (six ids, four timestamped
messages with metadata, a routing decision, profile, memory, one document, web
results and nested metadata). Timings are interleaved in one process, batch by
batch, so machine noise hits both sides alike; each row reports the median CPU
seconds per operation over the repeats.

The headline row times ``from_dict(s.to_dict())`` for one snapshot. stageflow_trio
caches the id and timestamp strings on its immutable objects, which that row
rewards, so three more rows show the other sides: a chained round trip (every
``to_dict`` runs on a snapshot ``from_dict`` just built), ``from_dict`` of a
JSON-decoded dict (no structure shared with a live snapshot), and ``to_dict`` of
just-constructed snapshots (nothing cached yet).

Run ``python benchmarks/bench_snapshot.py`` (add ``--smoke`` for a quick check).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

# The context_snapshot, context and types modules of one side.
_Modules = tuple[ModuleType, ModuleType, ModuleType]


def _build(
    snapshot_mod: ModuleType,
    context_mod: ModuleType,
    types_mod: ModuleType,
    ids: list[uuid.UUID],
    now: datetime,
    n_messages: int = 4,
) -> Any:
    messages = [
        types_mod.Message(
            role="user" if i % 2 == 0 else "assistant",
            content=f"message number {i}",
            timestamp=now,
            metadata={"turn": i, "lang": "en"},
        )
        for i in range(n_messages)
    ]
    return snapshot_mod.ContextSnapshot(
        run_id=context_mod.RunIdentity(
            pipeline_run_id=ids[0],
            request_id=ids[1],
            session_id=ids[2],
            user_id=ids[3],
            org_id=ids[4],
            interaction_id=ids[5],
            created_at=now,
        ),
        conversation=context_mod.Conversation(
            messages=messages,
            routing_decision=types_mod.RoutingDecision(
                agent_id="coach", pipeline_name="practice", topology="fast_kernel", reason="default"
            ),
        ),
        enrichments=context_mod.Enrichments(
            profile=context_mod.ProfileEnrichment(
                user_id=ids[3],
                display_name="Alice",
                preferences={"tone": "friendly", "level": "b2"},
                goals=["fluency", "vocabulary"],
            ),
            memory=context_mod.MemoryEnrichment(
                recent_topics=["travel", "food"],
                key_facts=["likes tea"],
                interaction_history_summary="Two sessions on travel vocabulary.",
            ),
            documents=[
                context_mod.DocumentEnrichment(
                    document_id="doc-1",
                    document_type="markdown",
                    blocks=[{"type": "text", "content": "Hello"}],
                    metadata={"version": 3},
                )
            ],
            web_results=[{"url": "https://example.com", "title": "Example"}],
        ),
        input_text="How do I order tea?",
        input_audio_duration_ms=1800,
        topology="fast_kernel",
        execution_mode="practice",
        created_at=now,
        metadata={"channel": "web", "trace": {"span": "abc", "sampled": True}},
    )


def _modules() -> tuple[_Modules, _Modules]:
    import stageflow.context as ref_context
    import stageflow.context.context_snapshot as ref_snapshot
    import stageflow.context.types as ref_types

    import stageflow_trio.context.context_snapshot as trio_snapshot
    import stageflow_trio.context.conversation as trio_conversation
    import stageflow_trio.context.enrichments as trio_enrichments
    import stageflow_trio.context.identity as trio_identity
    import stageflow_trio.context.types as trio_types

    trio_context = ModuleType("trio_context")
    for module in (trio_conversation, trio_enrichments, trio_identity):
        for name in module.__all__:
            setattr(trio_context, name, getattr(module, name))
    return (ref_snapshot, ref_context, ref_types), (trio_snapshot, trio_context, trio_types)


def _timer(body: Callable[[int], None], loops: int) -> Callable[[], float]:
    """A timer of ``loops`` runs of ``body``: CPU seconds per run.

    CPU time (``process_time``), not wall time: the machine may be shared, and
    the workload is single-threaded and does no I/O.
    """

    def run() -> float:
        start = time.process_time()
        body(loops)
        return (time.process_time() - start) / loops

    return run


def _workloads(mods: _Modules, loops: int) -> dict[str, Callable[[], float]]:
    ids = [uuid.UUID(int=0x1234_5678_9ABC_DEF0 * (i + 1)) for i in range(6)]
    now = datetime(2026, 11, 26, 14, 4, 50, 123456, tzinfo=UTC)
    snapshot = _build(*mods, ids, now)
    cls = type(snapshot)
    plain = json.loads(json.dumps(snapshot.to_dict()))

    def round_trip(n: int) -> None:
        for _ in range(n):
            cls.from_dict(snapshot.to_dict())

    def chained(n: int) -> None:
        # Every to_dict() runs on a snapshot that from_dict() just built.
        current = snapshot
        for _ in range(n):
            current = cls.from_dict(current.to_dict())

    def from_plain(n: int) -> None:
        for _ in range(n):
            cls.from_dict(plain)

    fresh: list[Any] = []

    def to_dict_fresh(n: int) -> None:
        for item in fresh[:n]:
            item.to_dict()

    fresh_timer = _timer(to_dict_fresh, loops)

    def fresh_run() -> float:
        # Snapshots built by their constructors, never serialized yet (no caches).
        fresh[:] = [_build(*mods, ids, now) for _ in range(loops)]
        return fresh_timer()

    return {
        "snapshot round trip: from_dict(s.to_dict())": _timer(round_trip, loops),
        "chained round trip: s = from_dict(s.to_dict())": _timer(chained, loops),
        "from_dict of a JSON-decoded dict": _timer(from_plain, loops),
        "to_dict of a just-constructed snapshot": fresh_run,
    }


def run(smoke: bool = False) -> list[dict[str, object]]:
    """Time the workloads for both libraries, interleaved repeat by repeat.

    Args:
        smoke: A tiny run (a few loops, one repeat) that only checks the benchmark works.

    Returns:
        One row per workload: ``{"workload", "reference_s", "trio_s"}``, the median
        CPU seconds per operation over the repeats. The first row is the headline:
        the round trip of one realistic snapshot.
    """
    ref_mods, trio_mods = _modules()
    loops, repeats = (20, 1) if smoke else (2_000, 11)
    ref_work = _workloads(ref_mods, loops)
    trio_work = _workloads(trio_mods, loops)
    rows: list[dict[str, object]] = []
    for name, ref_timer in ref_work.items():
        trio_timer = trio_work[name]
        ref_timer()  # warm-up
        trio_timer()
        ref_times: list[float] = []
        trio_times: list[float] = []
        for _ in range(repeats):
            ref_times.append(ref_timer())
            trio_times.append(trio_timer())
        rows.append(
            {
                "workload": name,
                "reference_s": statistics.median(ref_times),
                "trio_s": statistics.median(trio_times),
            }
        )
    return rows


def _check_same_output() -> None:
    """Both libraries serialize the benchmark snapshot identically (else the timings mean nothing)."""
    ref_mods, trio_mods = _modules()
    ids = [uuid.uuid4() for _ in range(6)]
    now = datetime.now(UTC)
    reference = _build(*ref_mods, ids, now)
    trio = _build(*trio_mods, ids, now)
    if reference.to_dict() != trio.to_dict():
        raise AssertionError("stageflow and stageflow_trio serialize the snapshot differently")
    if type(trio).from_dict(reference.to_dict()).to_dict() != reference.to_dict():
        raise AssertionError("stageflow_trio does not read stageflow's output back")


if __name__ == "__main__":
    _check_same_output()
    for row in run(smoke="--smoke" in sys.argv[1:]):
        ref_s = float(row["reference_s"])  # type: ignore[arg-type]
        trio_s = float(row["trio_s"])  # type: ignore[arg-type]
        print(
            f"{row['workload']}: reference {ref_s * 1e6:.1f} us ({1 / ref_s:,.0f}/s), "
            f"stageflow_trio {trio_s * 1e6:.1f} us ({1 / trio_s:,.0f}/s), "
            f"x{ref_s / trio_s:.2f}"
        )
