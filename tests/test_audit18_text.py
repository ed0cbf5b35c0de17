"""Audit 18, text: Unicode, encodings and odd characters.

Differential against the reference where it has the same code (the guardrails, the
mock LLM's chunks, timestamps, snapshots), and soundness of what only this library
has: the command line's events file, its stdout, the timeline page and the text
drawing of a graph, with lone surrogates, NUL bytes and line breaks in names and data.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stageflow_trio.cli.graph import render_graph
from stageflow_trio.cli.main import _escape_unencodable, main
from stageflow_trio.cli.run import PlainView, RunRecorder
from stageflow_trio.cli.timeline import render_timeline
from stageflow_trio.context import ContextSnapshot
from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.helpers import guardrails as ours
from stageflow_trio.helpers.mocks import MockLLMProvider
from stageflow_trio.helpers.timestamps import parse_timestamp
from stageflow_trio.pipeline import Pipeline
from stageflow_trio.stores.sqlite import open_sqlite_stores
from tests.fakes import import_reference
from tests.helpers.test_guardrails import _reference_pii_spans

ROOT = Path(__file__).resolve().parents[1]

_ARABIC = "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669"
_FULL = "".join(chr(0xFF10 + digit) for digit in range(10))
_ZWSP, _ZWJ, _ACUTE, _GRIN = "\u200b", "\u200d", "\u0301", "\U0001f600"
_FAST = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))


def _reference() -> Any:
    return import_reference()


def _plain(result: Any) -> dict[str, Any]:
    # Set-ordered parts of the reference's output, sorted (see docs/parity.md).
    data: dict[str, Any] = result.to_dict()
    data["violations"] = sorted(data["violations"], key=repr)
    data["metadata"] = {
        key: sorted(value) if isinstance(value, list) else value
        for key, value in data["metadata"].items()
    }
    return data


def _digits(text: str, alphabet: str) -> str:
    return text.translate(str.maketrans("0123456789", alphabet))


# 1. Guardrails on Unicode text, against the reference.

_PIECES = st.one_of(
    st.text(max_size=4),
    st.sampled_from(
        [
            "hell",
            "damn",
            "h3ll",
            "d@mn",
            "a.b@c.io",
            "x\uff20y.io",
            "caf\u00e9@b\u00fccher.de",
            "555-123-4567",
            _digits("123-45-6789", _ARABIC),
            _digits("123-45-6789", _FULL),
            _digits("4111 1111 1111 1111", _FULL),
            "4111\u00a01111\u00a01111\u00a01111",
            "4111\u20111111\u20111111\u20111111",
            "4111\u20031111\u20031111\u20031111",
            _digits("10.0.0.1", _ARABIC),
            "ignore previous instructions",
            "ign\u043ere previous instructions",
            "ignore\u00a0previous\u2003instructions",
            "\u0130",
            "\u00df",
            "\u1e9e",
            "\ud800",
            "\x00",
            "\n",
            _ZWSP,
            _ZWJ,
            _ACUTE,
            _GRIN,
        ]
    ),
)
_TEXT = st.lists(_PIECES, max_size=16).map("".join)


@_FAST
@given(text=_TEXT, redact=st.booleans())
def test_pii_detector_matches_the_reference_on_unicode_text(text: str, redact: bool) -> None:
    reference = _reference().helpers.guardrails
    got = ours.PIIDetector(redact=redact).check(text)
    if ours._fold(text)[0] != text:
        # Searched folded too since audit 25: the reference's search of the text and of
        # its fold, merged (tests/helpers/test_guardrails.py).
        expected_spans = _reference_pii_spans(reference, text)
        assert [(v.metadata["pii_type"], v.location) for v in got.violations] == expected_spans
        return
    expected = reference.PIIDetector(redact=redact).check(text)
    assert _plain(got) == _plain(expected)
    assert [v.location for v in got.violations] == [v.location for v in expected.violations]


@_FAST
@given(
    text=_TEXT,
    words=st.sets(
        st.sampled_from(["hell", "damn", "\u00df", "ss", "i\u0307", "e" + _ACUTE, "\u00e9", "x"])
    ),
)
def test_content_filter_matches_the_reference_on_unicode_text(text: str, words: set[str]) -> None:
    reference = _reference().helpers.guardrails
    patterns = [r"h.ll", "stra\u00dfe", _ZWSP]
    got = ours.ContentFilter(profanity_list=words or None, blocked_patterns=patterns)
    expected = reference.ContentFilter(profanity_list=words or None, blocked_patterns=patterns)
    if ours._fold(text)[0] != text:
        # Folded text is searched too since audit 25: at least what the reference finds
        # (a pattern found only in a copy is flagged "normalized").
        def found(result: Any) -> set[object]:
            return {v.metadata.get("word", v.metadata.get("pattern")) for v in result.violations}

        assert found(expected.check(text)) <= found(got.check(text))
        return
    assert _plain(got.check(text)) == _plain(expected.check(text))


@_FAST
@given(text=_TEXT)
def test_injection_detector_matches_the_reference_on_unicode_text(text: str) -> None:
    reference = _reference().helpers.guardrails
    got = ours.InjectionDetector().check(text).to_dict()
    expected = reference.InjectionDetector().check(text).to_dict()
    if ours._fold(text)[0] != text:
        # A pattern the text misses is tried on its fold since audit 25: the reference's
        # violations, and perhaps more.
        assert all(violation in got["violations"] for violation in expected["violations"])
        return
    assert got == expected


@pytest.mark.parametrize(
    ("text", "types"),
    [
        # \d matches every script's digits: SSNs, card numbers and IPs in them are found.
        (_digits("id 123-45-6789", _ARABIC), ["ssn"]),
        (_digits("123-45-6789", _FULL), ["ssn"]),
        (_digits("4111 1111 1111 1111", _FULL), ["credit_card"]),
        (_digits("10.0.0.1", _ARABIC), ["ip_address"]),
        # \s holds NBSP and EM SPACE.
        ("4111\u00a01111\u00a01111\u00a01111", ["credit_card"]),
        ("4111\u20031111\u20031111\u20031111", ["credit_card"]),
    ],
)
def test_pii_in_other_scripts_is_found_as_the_reference_finds_it(
    text: str, types: list[str]
) -> None:
    reference = _reference().helpers.guardrails
    got = ours.PIIDetector().check(text)
    assert [v.metadata["pii_type"] for v in got.violations] == types
    expected = reference.PIIDetector().check(text)
    assert [v.to_dict() for v in got.violations] == [v.to_dict() for v in expected.violations]


@pytest.mark.parametrize(
    ("text", "types"),
    [
        # The reference's phone pattern is [0-9]: it misses full-width digits.
        (_digits("555-123-4567", _FULL), ["phone"]),
        # A non-breaking hyphen as a separator.
        ("4111\u20111111\u20111111\u20111111", ["credit_card"]),
        # A full-width "@", an IDN domain.
        ("x\uff20y.io", ["email"]),
        ("me@b\u00fccher.de", ["email"]),
    ],
)
def test_pii_the_reference_misses_in_other_scripts_is_found_here(
    text: str, types: list[str]
) -> None:
    # Audit 25 (docs/parity.md, "PIIDetector on text that is not pure ASCII"): found on
    # the folded text, located on the original characters.
    got = ours.PIIDetector().check(text)
    assert [v.metadata["pii_type"] for v in got.violations] == types
    assert [v.location for v in got.violations] == [(0, len(text))]
    assert _reference().helpers.guardrails.PIIDetector().check(text).violations == []


def test_redaction_spans_are_code_points_around_emoji_and_combining_marks() -> None:
    # str offsets are code points: an emoji is one, a combining mark is one of its own.
    text = f"{_GRIN} e{_ACUTE} 555-123-4567{_ACUTE} {_GRIN}a@b.io"
    result = ours.PIIDetector(redact=True).check(text)
    # The acute after the phone number's last digit belongs to that digit: redacted with
    # it (audit 25; the reference leaves it on the mask, at 5-17).
    assert [v.location for v in result.violations] == [(20, 26), (5, 18)]
    assert result.transformed_content == f"{_GRIN} e{_ACUTE} {'*' * 13} {_GRIN}{'*' * 6}"
    expected = _reference().helpers.guardrails.PIIDetector(redact=True).check(text)
    assert expected.transformed_content == f"{_GRIN} e{_ACUTE} {'*' * 12}{_ACUTE} {_GRIN}{'*' * 6}"


@pytest.mark.parametrize(
    "text",
    [
        f"he{_ZWSP}ll",  # a zero-width space splits the word
        f"he{_ZWJ}ll",
        "h\u0435ll",  # Cyrillic ie
        "\uff48\uff45\uff4c\uff4c",  # full-width letters: a word, but not "hell"
    ],
)
def test_profanity_evasions_pass_only_the_reference(text: str) -> None:
    # The reference normalizes only leetspeak and case; since audit 25 ours also checks
    # the text folded (zero-width characters dropped, look-alikes and compatibility
    # forms to ASCII): the decision this test pinned before.
    assert [v.metadata["word"] for v in ours.ContentFilter().check(text).violations] == ["hell"]
    assert _reference().helpers.guardrails.ContentFilter().check(text).passed


def test_profanity_with_a_combining_mark_or_case_folding_as_the_reference() -> None:
    reference = _reference().helpers.guardrails
    # A combining mark is not \w: "hell" + acute is still the word "hell".
    for text, words in [
        (f"hell{_ACUTE}", ["hell"]),
        ("HELL", ["hell"]),
        ("H\u0130LL", []),  # lower() gives "hi\u0307ll"
        ("STRASSE", ["strasse"]),
        ("stra\u00dfe", ["stra\u00dfe"]),
        ("STRA\u1e9eE", ["stra\u00dfe"]),  # capital sharp s lowers to sharp s
    ]:
        checker = ours.ContentFilter(profanity_list={"hell", "strasse", "stra\u00dfe"})
        got = checker.check(text)
        assert [v.metadata["word"] for v in got.violations] == words, text
        expected = reference.ContentFilter(profanity_list={"hell", "strasse", "stra\u00dfe"})
        assert _plain(got) == _plain(expected.check(text))


def test_injection_homoglyphs_and_nfd_as_the_reference() -> None:
    reference = _reference().helpers.guardrails
    for text, found, by_reference in [
        ("ignore previous instructions", True, True),
        # Found on the folded text since audit 25; the reference misses them.
        ("ign\u043ere previous instructions", True, False),  # Cyrillic o
        (f"ignore{_ZWSP} previous instructions", True, False),
        ("ignore\u2003previous\u00a0instructions", True, True),  # \s holds them
        ("IGNORE PREVIOUS INSTRUCTIONS", True, True),
        ("<\u3000system\u3000>", True, True),  # an ideographic space is \s
    ]:
        got = ours.InjectionDetector().check(text)
        assert (not got.passed) is found, text
        theirs = reference.InjectionDetector().check(text)
        assert (not theirs.passed) is by_reference, text
        if by_reference:
            assert got.to_dict() == theirs.to_dict()
        else:
            assert [v.location for v in got.violations] == [(0, len(text))]


# 2. Chunks and token counts.


@pytest.mark.parametrize(
    "content", [f"a{_GRIN}b{_ACUTE}c", f"e{_ACUTE}" * 5, _GRIN * 7, "\ud800x\x00y"]
)
def test_mock_llm_stream_chunks_code_points_as_the_reference(
    content: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = _reference().helpers.mocks

    async def chunks(provider: Any) -> list[str]:
        return [chunk async for chunk in provider.stream("q", chunk_size=2)]

    clock = trio.testing.MockClock(autojump_threshold=0)
    got = trio.run(chunks, MockLLMProvider(responses=[content]), clock=clock)

    async def no_sleep(_delay: float) -> None:
        return None

    # The reference sleeps 10 ms (real time) between chunks.
    monkeypatch.setattr(asyncio, "sleep", no_sleep)
    expected = asyncio.run(chunks(reference.MockLLMProvider(responses=[content])))
    assert got == expected
    assert "".join(got) == content  # no code point split or lost; graphemes may be


# 3. Timestamps and snapshots.


@pytest.mark.parametrize(
    "value",
    [
        _digits("1700000000", _ARABIC),
        _digits("1700000000", _FULL),
        _digits("1700000000.5", _ARABIC),
        "1700000000\u00a0",
        _digits("2024", _FULL) + "-01-01T00:00:00Z",
        _digits("2024-01-01", _ARABIC),
        "1700000000\x00",
        "2024-01-01T00:00:00\ud800",
        "Mon, " + _digits("01", _ARABIC) + " Jan 2024 00:00:00 +0000",
    ],
)
def test_parse_timestamp_of_unicode_digits_as_the_reference(value: str) -> None:
    reference = _reference().helpers.timestamps

    def outcome(parse: Any) -> object:
        try:
            return parse(value)
        except ValueError as exc:
            return (ValueError, str(exc))

    assert outcome(parse_timestamp) == outcome(reference.parse_timestamp)


def test_snapshot_round_trips_lone_surrogates_nul_and_emoji() -> None:
    odd = f"\u00e9\ud800\x00{_GRIN}\n"
    snapshot = ContextSnapshot(input_text=odd, topology=odd, metadata={odd: odd})
    assert ContextSnapshot.from_dict(snapshot.to_dict()) == snapshot
    assert ContextSnapshot.from_dict(json.loads(json.dumps(snapshot.to_dict()))) == snapshot
    reference = _reference().context.ContextSnapshot(
        input_text=odd, topology=odd, metadata={odd: odd}
    )
    ours_dict, theirs = snapshot.to_dict(), reference.to_dict()
    for key in ("input_text", "topology", "metadata"):
        assert ours_dict[key] == theirs[key]


async def test_sqlite_idempotency_keys_with_nul_and_emoji(tmp_path: Path) -> None:
    async with open_sqlite_stores(str(tmp_path / "s.db")) as stores:
        store = stores.idempotency
        for key in ["a\x00b", "a", f"{_GRIN}", f"e{_ACUTE}", "\u00e9"]:
            assert await store.get(key) is None
            claim = await store.claim(key)
            assert not isinstance(claim, float)
            assert getattr(claim, "key", None) == key  # "a\x00b" is not "a"
            store.release(claim)  # type: ignore[arg-type]


# 4. The command line.


def _pipeline(*names: str, data: dict[str, Any] | None = None) -> Pipeline:
    async def stage(ctx: StageContext) -> StageOutput:
        return StageOutput.ok(**(data or {}))

    pipeline = Pipeline(name="p")
    previous: tuple[str, ...] = ()
    for name in names:
        pipeline = pipeline.with_stage(name, stage, StageKind.TRANSFORM, dependencies=previous)
        previous = (name,)
    return pipeline


async def test_events_file_keeps_an_event_holding_a_lone_surrogate() -> None:
    # The events file is UTF-8 (strict): the write raised UnicodeEncodeError, not an
    # OSError, out of try_emit, so the event was lost from the file and the view.
    raw = io.BytesIO()
    events = io.TextIOWrapper(raw, encoding="utf-8", write_through=True)
    out = io.StringIO()
    recorder = RunRecorder(["a"], PlainView(out), events)
    recorder.try_emit(type="custom", data={"v": "bad\ud800", "w": "\u00e9"})
    recorder.try_emit(type="stage.b\udcff.started", data=None)
    lines = raw.getvalue().decode("utf-8").splitlines()
    assert [json.loads(line)["data"] for line in lines] == [
        {"v": "bad\ud800", "w": "\u00e9"},
        None,
    ]
    assert json.loads(lines[1])["event"] == "stage.b\udcff.started"
    assert recorder.events_error is None
    assert len(out.getvalue().splitlines()) == 2  # the view saw both


def test_stdout_with_surrogateescape_is_escaped_too() -> None:
    # Python's choice under a C / C.UTF-8 / POSIX locale: a lone "\ud800" in a
    # stage's output ended `run` with "error: 'utf-8' codec can't encode", status 2.
    stream = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="surrogateescape")
    _escape_unencodable(stream)
    assert stream.errors == "backslashreplace"
    stream.write("bad\ud800")
    stream.flush()
    stream.detach()


SURROGATE_PIPELINE = """
from stageflow_trio.core import StageKind, StageOutput
from stageflow_trio.pipeline import Pipeline

async def a(ctx):
    ctx.try_emit_event("custom.x", {"v": "bad\\ud800"})
    return StageOutput.ok(x="bad\\ud800", y="\\u00e9")

def build_pipeline():
    return Pipeline(name="p\\ud800").with_stage("a\\udcff", a, StageKind.TRANSFORM)
"""


def test_run_json_and_events_with_lone_surrogates_end_to_end(tmp_path: Path) -> None:
    target = tmp_path / "surrogates.py"
    target.write_text(SURROGATE_PIPELINE, encoding="utf-8")
    events = tmp_path / "events.jsonl"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONIOENCODING", "PYTHONUTF8")}
    env.update(PYTHONPATH=str(ROOT), LC_ALL="C.UTF-8")
    command = [sys.executable, "-m", "stageflow_trio", "run", str(target), "--json"]
    process = subprocess.run(
        [*command, "--events", str(events)],
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert process.returncode == 0, process.stderr
    assert process.stderr == b""
    lines = [json.loads(line) for line in process.stdout.decode("utf-8").splitlines()]
    result = lines[-1]["result"]
    assert result["outputs"]["a\udcff"]["data"] == {"x": "bad\ud800", "y": "\u00e9"}
    written = [json.loads(line) for line in events.read_text(encoding="utf-8").splitlines()]
    assert [record["event"] for record in written] == [record["event"] for record in lines[:-1]]
    assert {"stage.a\udcff.started", "custom.x", "pipeline_completed"} <= {
        record["event"] for record in written
    }


def test_timeline_of_a_stage_named_with_a_lone_surrogate(tmp_path: Path) -> None:
    events = tmp_path / "run.jsonl"
    records = [
        {"event": "stage.a\ud800.started", "t": 0.0, "data": {}},
        {"event": "stage.a\ud800.completed", "t": 0.5, "data": {"x": "\udcff"}},
    ]
    events.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    page = tmp_path / "run.html"
    assert main(["timeline", str(events), "-o", str(page)]) == 0
    text = page.read_text(encoding="utf-8")
    assert "a&#55296;" in text  # a browser shows U+FFFD


def test_timeline_hover_shows_non_ascii_as_written() -> None:
    records = [
        {"event": "stage.caf\u00e9.started", "t": 0.0, "data": {"who": "Bj\u00f6rk " + _GRIN}},
        {"event": "stage.caf\u00e9.completed", "t": 1.0, "data": {}},
    ]
    page = render_timeline(records)
    assert "Bj\u00f6rk " + _GRIN in page
    assert "\\u00f6" not in page


def test_timeline_escapes_a_script_stage_name() -> None:
    records = [{"event": "stage.<script>alert(1)</script>.started", "t": 0.0, "data": {}}]
    page = render_timeline(records, title="<b>")
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>" not in page


def test_text_graph_keeps_one_line_per_stage() -> None:
    pipeline = _pipeline("a\nb", "c\u2028d\x00", f"e{_ZWSP}", "caf\u00e9 " + _GRIN)
    text = render_graph(pipeline, "text", title="t\r\n")
    lines = text.splitlines()
    assert len(lines) == 5, lines
    assert lines[0] == "t\\r\\n: 4 stages"
    assert lines[1].split() == ["a\\nb", "transform", "first"]
    assert lines[2].split() == ["c\\u2028d\\x00", "transform", "after", "a\\nb"]
    assert lines[3].split() == ["e\\u200b", "transform", "after", "c\\u2028d\\x00"]
    # Printable non-ASCII is written as is.
    assert lines[4].split() == ["caf\u00e9", _GRIN, "transform", "after", "e\\u200b"]


@pytest.mark.parametrize("fmt", ["mermaid", "dot"])
def test_mermaid_and_dot_hold_line_breaks_and_quotes_on_their_lines(fmt: str) -> None:
    pipeline = _pipeline('a\n"b"', "c\r\n]d", "<e>")
    text = render_graph(pipeline, fmt)
    body = [line for line in text.splitlines() if "-->" not in line and "->" not in line]
    # One line per node (plus the header / footer), whatever the names hold.
    assert len(body) == {"mermaid": 4, "dot": 6}[fmt], body
    assert "<e>" not in text if fmt == "mermaid" else '"<e>"' in text


async def test_run_views_keep_one_line_per_stage_and_per_event(
    autojump_clock: trio.abc.Clock,
) -> None:
    # A stage named over two lines, or an error message over two lines, split the
    # plain view's event line and threw the live view's count of lines to redraw off.
    import io

    from stageflow_trio.cli.run import LiveView, PlainView, RunRecorder

    live = LiveView(io.StringIO(), "demo\npipeline", colour=False)
    recorder = RunRecorder(["a\nb"], live)
    recorder.try_emit(type="stage.a\nb.failed", data={"duration_ms": 3, "error": "bad\nworse"})
    lines = live.lines(recorder)
    assert all("\n" not in line for line in lines)
    assert lines[0].startswith("demo\\npipeline  ")
    assert lines[1] == "  failed    a\\nb      3ms  bad\\nworse"
    out = io.StringIO()
    plain = PlainView(out)
    recorder = RunRecorder(["a\nb"], plain)
    recorder.try_emit(type="stage.a\nb.failed", data={"duration_ms": 3, "error": "bad\nworse"})
    assert out.getvalue().count("\n") == 1
    assert "stage.a\\nb.failed  duration_ms=3 error=bad\\nworse" in out.getvalue()
