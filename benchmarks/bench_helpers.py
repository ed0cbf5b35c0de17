"""Guardrail checks and context deltas: stageflow 0.9.1 vs stageflow_trio (both synchronous).

Workloads (median seconds per call over repeats, the two libraries interleaved in
one process so that machine noise hits both alike):

- ``PIIDetector + ContentFilter, 1 KB text``: both checks with their defaults (PII
  redaction on, a blocked pattern) on 1 KB texts, half of them carrying PII, leetspeak
  profanity and a blocked topic, half clean.
- ``compute_delta, 200-key context``: a 200-key payload (ints, strings, small
  dicts and lists) against a shallow copy with 20 values changed, 5 keys removed
  and 5 added (how a stage updates a context); ``..., JSON round trip``: against
  the same update after ``json.loads(json.dumps(...))``, so no value is shared.
- ``apply_delta, 200-key context``: rebuilding the update from the base and the delta.

Run: ``python -m benchmarks helpers`` (add ``--smoke`` for a tiny run).
"""

from __future__ import annotations

import gc
import json
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from stageflow_trio.compression import apply_delta, compute_delta
from stageflow_trio.helpers.guardrails import ContentFilter, PIIDetector

__all__ = ["run"]

_WORDS = [
    "the",
    "pipeline",
    "runs",
    "each",
    "stage",
    "and",
    "writes",
    "its",
    "output",
    "before",
    "the",
    "next",
    "one",
    "starts",
    "while",
    "guards",
    "check",
    "what",
    "users",
    "send",
    "and",
    "what",
    "models",
    "answer",
]
_SPICE = [
    "mail jane.doe@example.com",
    "call 555-123-4567",
    "ssn 123-45-6789",
    "host 192.168.10.20",
    "what the h3ll",
    "d@mn",
    "our competitor product",
]


def _texts(count: int, rng: random.Random) -> list[str]:
    texts = []
    for index in range(count):
        words: list[str] = []
        while sum(len(word) + 1 for word in words) < 1024:
            if index % 2 and rng.random() < 0.04:
                words.append(rng.choice(_SPICE))
            else:
                words.append(rng.choice(_WORDS))
        texts.append(" ".join(words)[:1024])
    return texts


def _payloads(rng: random.Random) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A 200-key base, a stage's update of it, and that update after a JSON round trip."""
    base: dict[str, Any] = {}
    for index in range(200):
        kind = index % 4
        if kind == 0:
            base[f"key_{index}"] = rng.randrange(1_000_000)
        elif kind == 1:
            base[f"key_{index}"] = f"value {index} " * 3
        elif kind == 2:
            base[f"key_{index}"] = {"id": index, "tags": ["a", "b"], "score": index / 7}
        else:
            base[f"key_{index}"] = [index, index + 1, str(index)]
    current = dict(base)
    keys = list(base)
    for key in rng.sample(keys, 20):
        current[key] = {"changed": key}
    for key in rng.sample(keys, 5):
        current.pop(key, None)
    for index in range(5):
        current[f"new_{index}"] = index
    return base, current, json.loads(json.dumps(current))


def _per_call(fn: Callable[[], object], calls: int) -> float:
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        return (time.perf_counter() - start) / calls
    finally:
        gc.enable()


def _guardrails(texts: list[str], pii: Any, content_filter: Any) -> Callable[[], object]:
    def once() -> None:
        for text in texts:
            pii.check(text)
            content_filter.check(text)

    return once


def run(smoke: bool = False) -> list[dict[str, object]]:
    """Measure the workloads; rows of ``workload``, ``reference_s``, ``trio_s``, ``note``."""
    from stageflow import compression as ref_compression
    from stageflow.helpers import guardrails as ref_guardrails

    rng = random.Random(7)
    texts = _texts(4 if smoke else 20, rng)
    base, current, decoded = _payloads(rng)
    delta = compute_delta(base, current)
    assert delta == ref_compression.compute_delta(base, current)
    assert compute_delta(base, decoded) == ref_compression.compute_delta(base, decoded)
    assert apply_delta(base, delta) == current
    patterns = [r"competitor\s+product"]

    workloads: dict[str, tuple[Callable[[], object], Callable[[], object], int, str]] = {
        "PIIDetector + ContentFilter, 1 KB text": (
            _guardrails(
                texts,
                ref_guardrails.PIIDetector(redact=True),
                ref_guardrails.ContentFilter(blocked_patterns=patterns),
            ),
            _guardrails(texts, PIIDetector(redact=True), ContentFilter(blocked_patterns=patterns)),
            len(texts),
            "per text; regexes compiled once, redaction in one pass",
        ),
        "compute_delta, 200-key context": (
            lambda: ref_compression.compute_delta(base, current),
            lambda: compute_delta(base, current),
            1,
            "shared values are not compared; the pass runs in C",
        ),
        "compute_delta, 200-key context, JSON round trip": (
            lambda: ref_compression.compute_delta(base, decoded),
            lambda: compute_delta(base, decoded),
            1,
            "every value compared, as in the reference",
        ),
        "apply_delta, 200-key context": (
            lambda: ref_compression.apply_delta(base, delta),
            lambda: apply_delta(base, delta),
            1,
            "dict.update for the set part",
        ),
    }
    repeats = 1 if smoke else 9
    rows: list[dict[str, object]] = []
    for name, (reference, ours, per, note) in workloads.items():
        calls = 1 if smoke else (10 if per > 1 else 1000)
        ref_times: list[float] = []
        trio_times: list[float] = []
        for _ in range(repeats):
            ref_times.append(_per_call(reference, calls) / per)
            trio_times.append(_per_call(ours, calls) / per)
        rows.append(
            {
                "workload": name,
                "reference_s": statistics.median(ref_times),
                "trio_s": statistics.median(trio_times),
                "note": note,
            }
        )
    return rows
