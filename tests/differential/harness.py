"""The differential harness: each scenario is written once, against a ``Side``.

A scenario is an ``async def (side) -> object``. ``side.mod("pipeline.dag")`` gives the
reference's ``stageflow.pipeline.dag`` on the reference side and ``stageflow_trio.pipeline.dag``
on ours; ``side.sink`` records events (it calls neither asyncio nor trio), ``side.checkpoint``
and ``side.sleep`` use the side's event loop. The reference side runs under ``asyncio.run``,
ours under ``trio.run`` with an autojumping MockClock. Both results (the scenario's return value
or the exception it raised, and the recorded events) are normalized (``normalize``) and
compared. A known divergence is a ``Divergence``: it names its parity.md section and row and
maps our side's result onto what the reference gives, so everything else is still compared.
"""

from __future__ import annotations

import asyncio
import importlib
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from enum import Enum
from types import ModuleType
from typing import Any

import attrs
import trio
import trio.testing

from tests.fakes import RefRecorder

ROOTS = {"ref": "stageflow", "ours": "stageflow_trio"}
PHASES = (
    "engine",
    "contexts",
    "builders",
    "interceptors",
    "cancellation",
    "subpipelines",
    "tools",
    "helpers",
    "events",
    "beyond",
)

# Fixed ids every scenario may use, so payloads that carry them compare exactly
# before normalization turns them into placeholders.
RUN_ID = uuid.UUID("11111111-1111-4111-8111-111111111111")
REQUEST_ID = uuid.UUID("22222222-2222-4222-8222-222222222222")
SESSION_ID = uuid.UUID("33333333-3333-4333-8333-333333333333")
USER_ID = uuid.UUID("44444444-4444-4444-8444-444444444444")
ORG_ID = uuid.UUID("55555555-5555-4555-8555-555555555555")

UUID_TEXT = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
UUID_RE = re.compile(UUID_TEXT)
ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2}|Z)?$")
# Keys whose values depend on how long things took, not on what happened.
DURATION_KEYS = frozenset(
    {"duration_ms", "latency_ms", "elapsed_ms", "blocked_ms", "total_duration_ms"}
)
UUID_PLACEHOLDER = "<uuid>"
TIMESTAMP_PLACEHOLDER = "<timestamp>"
NUMBER_PLACEHOLDER = "<number>"


def normalize(value: Any, key: str | None = None) -> Any:
    """``value`` with ids, timestamps and durations replaced by type placeholders.

    UUIDs (objects or strings) become ``"<uuid>"``, datetimes and ISO strings
    ``"<timestamp>"``, numbers under a duration key ``"<number>"`` (None stays None so
    "str or null" stays visible). Tuples become lists, enums their value, mappings plain
    dicts with their key order kept (order is part of a payload's shape).
    """
    if key in DURATION_KEYS and isinstance(value, int | float) and not isinstance(value, bool):
        return NUMBER_PLACEHOLDER
    if isinstance(value, uuid.UUID):
        return UUID_PLACEHOLDER
    if isinstance(value, datetime | date):
        return TIMESTAMP_PLACEHOLDER
    if isinstance(value, Enum):
        return normalize(value.value, key)
    if isinstance(value, str):
        if ISO_RE.match(value):
            return TIMESTAMP_PLACEHOLDER
        # Ids inside messages ("Parent run: <id>") too.
        return UUID_RE.sub(UUID_PLACEHOLDER, value)
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): normalize(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalize(item) for item in value]
    if isinstance(value, BaseException):
        return {"raised": type(value).__name__, "message": str(value)}
    return value


@attrs.define
class Side:
    """One implementation, as a scenario sees it."""

    name: str
    sink: RefRecorder = attrs.Factory(RefRecorder)

    @property
    def root(self) -> str:
        return ROOTS[self.name]

    def mod(self, dotted: str = "") -> ModuleType:
        return importlib.import_module(f"{self.root}.{dotted}" if dotted else self.root)

    async def checkpoint(self) -> None:
        if self.name == "ref":
            await asyncio.sleep(0)
        else:
            await trio.lowlevel.checkpoint()

    async def sleep(self, seconds: float) -> None:
        if self.name == "ref":
            await asyncio.sleep(seconds)
        else:
            await trio.sleep(seconds)


Result = dict[str, Any]


@attrs.frozen
class Divergence:
    """A known difference: the parity.md row that records it, and how to bridge it."""

    section: str  # a parity.md "## " heading
    row: str  # text of the row's first cell
    adjust: Callable[[Result], Result]


@attrs.frozen
class Scenario:
    name: str
    phase: str
    body: Callable[[Side], Awaitable[Any]]
    divergences: tuple[Divergence, ...] = ()
    raises: str | None = None  # the exception the scenario is meant to end with


SCENARIOS: list[Scenario] = []


def scenario(
    phase: str, *divergences: Divergence, raises: str | None = None
) -> Callable[[Callable[[Side], Awaitable[Any]]], Callable[[Side], Awaitable[Any]]]:
    """Register the decorated ``async def (side)`` as a scenario of ``phase``.

    ``raises`` names the exception class the scenario ends with on the reference; any
    other exception there means the scenario is broken (a typo fails on both sides alike,
    which would otherwise compare equal).
    """
    assert phase in PHASES, phase

    def register(body: Callable[[Side], Awaitable[Any]]) -> Callable[[Side], Awaitable[Any]]:
        SCENARIOS.append(Scenario(body.__name__, phase, body, divergences, raises))
        return body

    return register


def run_side(item: Scenario, side_name: str) -> tuple[Result, list[tuple[str, Any]]]:
    """Run one scenario on one side: the normalized result, and the raw events."""
    side = Side(side_name)

    async def main() -> Any:
        try:
            return await item.body(side)
        except Exception as exc:  # the exception is the scenario's outcome
            return exc

    if side_name == "ref":
        outcome = asyncio.run(main())
    else:
        outcome = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    events = list(side.sink.events)
    result = {"outcome": normalize(outcome), "events": normalize([list(e) for e in events])}
    return result, events


def compare(item: Scenario) -> tuple[Result, Result]:
    """Both sides' normalized results, ours adjusted by the scenario's known divergences.

    Each divergence must change our result: one that no longer does is stale (the
    behaviours converged) and must go from the scenario, and maybe from parity.md.
    """
    ref, _ = run_side(item, "ref")
    ours, _ = run_side(item, "ours")
    for divergence in item.divergences:
        adjusted = divergence.adjust(ours)
        assert adjusted != ours, f"{item.name}: stale divergence {divergence.row!r}"
        ours = adjusted
    return ref, ours


def drop_events(*prefixes: str) -> Callable[[Result], Result]:
    """An adjustment that drops our events whose type starts with one of ``prefixes``."""

    def adjust(result: Result) -> Result:
        kept = [e for e in result["events"] if not str(e[0]).startswith(prefixes)]
        return {**result, "events": kept}

    return adjust


def drop_event_types(*types: str) -> Callable[[Result], Result]:
    """An adjustment that drops our events whose type matches one of ``types`` (regexes)."""
    patterns = [re.compile(t) for t in types]

    def adjust(result: Result) -> Result:
        kept = [e for e in result["events"] if not any(p.fullmatch(str(e[0])) for p in patterns)]
        return {**result, "events": kept}

    return adjust


def swap_outcome(ours_outcome: Any, ref_outcome: Any) -> Callable[[Result], Result]:
    """An adjustment for a documented different outcome: ours must be ``ours_outcome``
    exactly (so it is still checked), and is then replaced by the reference's."""

    def adjust(result: Result) -> Result:
        assert result["outcome"] == ours_outcome
        return {**result, "outcome": ref_outcome}

    return adjust


def rename_types(names: dict[str, str]) -> Callable[[Result], Result]:
    """An adjustment for documented exception subclasses: our ``"type"`` / ``"raised"``
    values in ``names`` become the reference's."""

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: names.get(v, v) if k in ("type", "raised") and isinstance(v, str) else walk(v)
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [walk(item) for item in value]
        return value

    def adjust(result: Result) -> Result:
        return {**result, "outcome": walk(result["outcome"])}

    return adjust
