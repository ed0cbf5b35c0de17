"""Golden event payloads: produce, normalize, read and write them; find emit sites.

Each event type the package emits has a reviewed file ``tests/golden/events/<type>.json``
(dynamic parts of a type written as ``{placeholders}``, e.g. ``stage.{stage}.started``):

- ``example_type``: the concrete type the producer emitted;
- ``payload``: the payload with ids, timestamps and durations replaced by type
  placeholders (tests/differential/harness.py ``normalize``), every other value exact,
  key order kept;
- ``value_types``: each top-level key's JSON type before normalization (``str``,
  ``null``, ``int``, ``float``, ``bool``, ``list``, ``object``; ``number`` for durations).

``python -m tests.golden --update`` rewrites every file from the producers; review the
diff before committing it.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import trio
import trio.testing

from tests.differential import test_scenarios as _load_scenarios  # noqa: F401 - registers them
from tests.differential.harness import DURATION_KEYS, normalize
from tests.fakes import RefRecorder
from tests.golden.producers import SOURCES, Producer

ROOT = Path(__file__).resolve().parent.parent.parent
PACKAGE = ROOT / "stageflow_trio"
EVENTS_DIR = Path(__file__).resolve().parent / "events"

# Calls that send an event; the event type is among their arguments.
EMITTERS = frozenset(
    {"emit", "try_emit", "_emit", "emit_event", "try_emit_event", "_emit_all", "record_stage_event"}
)
# Calls that emit ``stage.{stage}.{status}`` with the status as a literal argument.
STATUS_EMITTERS = frozenset({"_record", "lifecycle", "record_stage_event"})
STATUS_RE = re.compile(r"^[a-z_]+$")
EVENT_TYPE_RE = re.compile(r"^(?:[a-z][a-z_]*(?:\.[a-z_{}]+)+|pipeline_[a-z]+)$")

LIFECYCLE = tuple(
    f"stage.{{stage}}.{status}" for status in ("started", "completed", "failed", "cancelled")
)
# What terminal_event (stageflow_trio/_engine/_unified_events.py) ends a stage that raised with.
TERMINAL = ("stage.{stage}.failed", "stage.{stage}.cancelled")
GUARD_RETRY = tuple(f"guard_retry.{e}" for e in ("attempt", "scheduled", "exhausted", "recovered"))
FORWARDS: tuple[str, ...] = ()  # the site passes on a type its own caller chose

# f-string types at emit sites -> the golden types they stand for.
PATTERN_SITES: dict[str, tuple[str, ...]] = {
    "guard_retry.{event}": GUARD_RETRY,
    "stage.{name}.skipped": ("stage.{stage}.skipped",),
    # The lifecycle builders' own f-strings; their callers' statuses are scanned as calls.
    "stage.{stage}.{status}": LIFECYCLE,
    "stage.{name}.{status}": LIFECYCLE,
    "stage.{status}": ("stage.{status}",),
}

# Emit sites whose type is not written at the call ("path:callee") -> the golden types
# they emit, or FORWARDS.
DYNAMIC_SITES: dict[str, tuple[str, ...]] = {
    "stageflow_trio/_engine/_guard_retry.py:self._emit": GUARD_RETRY,
    "stageflow_trio/_engine/_legacy.py:ctx.record_stage_event": FORWARDS,
    "stageflow_trio/_engine/_legacy.py:ctx.try_emit_event": FORWARDS,
    "stageflow_trio/_engine/_legacy.py:self._record": TERMINAL,
    "stageflow_trio/_engine/_unified_events.py:ctx.event_sink.try_emit": FORWARDS,
    "stageflow_trio/_engine/_unified_events.py:ctx.try_emit_event": FORWARDS,
    # RunReporter.started / completed: the types come from UnifiedPlan.event_types.
    "stageflow_trio/_engine/_unified_events.py:try_emit": LIFECYCLE[:2],
    "stageflow_trio/_engine/_unified_run.py:self.report.lifecycle": TERMINAL,
    "stageflow_trio/agent/runtime.py:emit": FORWARDS,
    # auth/interceptors.py's _try_emit: the three auth events, a broken sink only logged.
    "stageflow_trio/auth/interceptors.py:ctx.event_sink.try_emit": (
        "auth.login",
        "auth.failure",
        "tenant.access_denied",
    ),
    "stageflow_trio/cli/run.py:self.try_emit": FORWARDS,
    "stageflow_trio/core/stage_context.py:sink.try_emit": FORWARDS,
    "stageflow_trio/core/stage_context.py:self.try_emit_event": FORWARDS,
    "stageflow_trio/events/_backpressure.py:self.try_emit": FORWARDS,
    "stageflow_trio/events/_global_sink.py:sink.emit": FORWARDS,
    "stageflow_trio/helpers/run_utils.py:self._record": FORWARDS,
    "stageflow_trio/events/_sink_worker.py:emit": FORWARDS,
    "stageflow_trio/events/_sinks.py:self.try_emit": FORWARDS,
    "stageflow_trio/examples/quickstart.py:self.try_emit": FORWARDS,
    "stageflow_trio/examples/streaming.py:self.try_emit": FORWARDS,
    "stageflow_trio/examples/streaming.py:sink.try_emit": FORWARDS,
    "stageflow_trio/examples/tool_approval.py:self.try_emit": FORWARDS,
    "stageflow_trio/observability/wide_events.py:ctx.event_sink.try_emit": (
        "stage.wide",
        "pipeline.wide",
    ),
    "stageflow_trio/pipeline/_spawner.py:emit_event": FORWARDS,
    "stageflow_trio/pipeline/_spawner.py:try_emit": FORWARDS,
    "stageflow_trio/pipeline/retry.py:ctx.event_sink.try_emit": FORWARDS,
    "stageflow_trio/pipeline/retry.py:emit": FORWARDS,
    "stageflow_trio/stages/context.py:self.event_sink.try_emit": FORWARDS,
    "stageflow_trio/testing/explore.py:self.try_emit": FORWARDS,
    "stageflow_trio/testing/explore.py:super().try_emit": FORWARDS,
    "stageflow_trio/tools/executor_v2.py:sink.emit": FORWARDS,
}


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    for kind, name in ((str, "str"), (int, "int"), (float, "float"), (dict, "object")):
        if isinstance(value, kind):
            return name
    if isinstance(value, list | tuple):
        return "list"
    if hasattr(value, "items"):
        return "object"
    return type(value).__name__


def pattern_of(golden_type: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{[a-z_]+\\\}", "[^.]+", re.escape(golden_type)))


def pick(golden_type: str, events: list[tuple[str, Any]]) -> tuple[str, Any]:
    """The first event in ``events`` that ``golden_type`` describes.

    A placeholder type (``stage.{stage}.started``) never picks an event that has a golden
    file of its own (``stage.retry_scheduled`` is not a ``stage.{status}``).
    """
    regex = pattern_of(golden_type)
    for event_type, data in events:
        if event_type == golden_type or (
            "{" in golden_type and regex.fullmatch(event_type) and event_type not in SOURCES
        ):
            return event_type, data
    raise AssertionError(f"{golden_type}: the producer emitted no such event")


def run_producer(producer: Producer) -> list[tuple[str, Any]]:
    sink = RefRecorder()
    trio.run(producer, sink, clock=trio.testing.MockClock(autojump_threshold=0))
    return list(sink.events)


def produce_all() -> dict[str, dict[str, Any]]:
    """Every golden record, keyed by golden type, fresh from the producers."""
    cache: dict[int, list[tuple[str, Any]]] = {}
    records = {}
    for golden_type, producer in SOURCES.items():
        if id(producer) not in cache:
            cache[id(producer)] = run_producer(producer)
        example, data = pick(golden_type, cache[id(producer)])
        assert isinstance(data, dict), f"{example}: payload {data!r} is not a dict"
        records[golden_type] = {
            "type": golden_type,
            "example_type": example,
            "payload": normalize(data),
            "value_types": {
                # A duration is a number, int or float as the clock happens to give it.
                key: "number" if key in DURATION_KEYS and value is not None else json_type(value)
                for key, value in data.items()
            },
        }
    return records


def path_of(golden_type: str) -> Path:
    return EVENTS_DIR / f"{golden_type}.json"


def dump(record: dict[str, Any]) -> str:
    return json.dumps(record, indent=2, ensure_ascii=False) + "\n"


def write_all() -> list[Path]:
    EVENTS_DIR.mkdir(exist_ok=True)
    records = produce_all()
    for stale in EVENTS_DIR.glob("*.json"):
        if stale.name.removesuffix(".json") not in records:
            stale.unlink()
    written = []
    for golden_type, record in records.items():
        path = path_of(golden_type)
        path.write_text(dump(record), encoding="utf-8")
        written.append(path)
    return written


# --- emit sites in the package -----------------------------------------------------------


def _callee(call: ast.Call) -> str | None:
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    return name if name in EMITTERS | STATUS_EMITTERS else None


def _event_strings(call: ast.Call) -> list[str]:
    """Event-type strings written in the call's arguments (f-strings as ``{name}``)."""
    if _callee(call) in STATUS_EMITTERS:
        statuses = [*call.args, *(kw.value for kw in call.keywords if kw.arg == "status")]
        return [
            f"stage.{{stage}}.{arg.value}"
            for arg in statuses
            if isinstance(arg, ast.Constant)
            and isinstance(arg.value, str)
            and STATUS_RE.match(arg.value)
        ]
    args = [*call.args, *(kw.value for kw in call.keywords if kw.arg in ("type", "event_type"))]
    found = []
    for arg in args:
        for node in ast.walk(arg):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
            elif isinstance(node, ast.JoinedStr):
                text = "".join(
                    "{" + re.sub(r"\W", "_", ast.unparse(part.value)).strip("_") + "}"
                    if isinstance(part, ast.FormattedValue)
                    else str(getattr(part, "value", ""))
                    for part in node.values
                )
            else:
                continue
            if EVENT_TYPE_RE.match(text):
                found.append(text)
    return found


def sites_in(
    source: str, rel: str, typed: dict[str, list[str]], dynamic: dict[str, list[str]]
) -> None:
    """Add the emit sites of one module's ``source`` (at path ``rel``) to the two maps."""
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and _callee(node)):
            continue
        where = f"{rel}:{node.lineno}"
        strings = _event_strings(node)
        for text in strings:
            typed.setdefault(text, []).append(where)
        if not strings:
            dynamic.setdefault(f"{rel}:{ast.unparse(node.func)}", []).append(where)


def emit_sites() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(literal or f-string type -> where, dynamic site key -> where) over the package."""
    typed: dict[str, list[str]] = {}
    dynamic: dict[str, list[str]] = {}
    names = EMITTERS | STATUS_EMITTERS
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        # A call of an emitter names it: a module without the name has no site (two
        # thirds of them; parsing them all was most of the time under coverage).
        if any(name in source for name in names):
            sites_in(source, path.relative_to(ROOT).as_posix(), typed, dynamic)
    return typed, dynamic
