"""Mermaid labels use Mermaid's entity codes (``#quot;``), not HTML's (``&quot;``).

Mermaid's documented escape inside a label is ``#name;`` or ``#decimal;`` ("Entity
codes to escape characters": ``A["A double quote:#quot;"]``). Before parsing, it
turns each ``#\\w+;`` into a placeholder and later into the HTML entity. The graph
command wrote ``&quot;``, which is not Mermaid syntax: a plain HTML entity in
HTML labels, drawn as the six characters ``&quot;`` in SVG text labels. It left
``#`` (so a stage called ``a#quot;b`` was drawn ``a"b``), ``<``, ``>`` and ``&``
(read as HTML), a backtick (a Markdown string), ``%`` (a ``%%{init}%%``
directive is found anywhere) and line breaks (which end the statement) as they
were.
"""

from __future__ import annotations

import html
import re

from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio.cli.graph import render_graph
from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.pipeline import Pipeline


async def noop(ctx: StageContext) -> StageOutput:
    return StageOutput.ok()


def mermaid_of(*names: str) -> list[str]:
    pipeline = Pipeline(name="p")
    for name in names:
        pipeline = pipeline.with_stage(name, noop, StageKind.WORK)
    return render_graph(pipeline, "mermaid").split("\n")[1 : 1 + len(names)]


def mermaid_reads(line: str) -> str:
    """The label text Mermaid draws for a node line ``    sN["..."]``, as its source does it.

    Its pre-parse steps (the ``style``/``classDef`` semicolon cut, ``#code;`` to
    a placeholder), the quoted string (``"`` ends it), then the placeholders
    back to HTML entities, the HTML decoded, ``<br>`` a line break.
    """
    line = re.sub(r"style.*:\S*#.*;", lambda m: m.group(0)[:-1], line)
    line = re.sub(r"classDef.*:\S*#.*;", lambda m: m.group(0)[:-1], line)
    match = re.fullmatch(r'    s\d+\["([^"`]*)"\]', line)
    assert match is not None, f"not one quoted label: {line!r}"
    text = match.group(1)
    assert "%%" not in text
    assert "\n" not in text
    assert "\r" not in text
    # Only <br> is a tag; every other <, > and & came in as a code.
    assert re.search(r"[&<>]", text.replace("<br>", "")) is None, text
    text = re.sub(
        r"#(\w+);", lambda m: f"&{'#' if m.group(1).isdigit() else ''}{m.group(1)};", text
    )
    return html.unescape(text.replace("<br>", "\n"))


def test_a_double_quote_is_mermaid_s_quot_code() -> None:
    assert mermaid_of('say "hi"') == ['    s0["say #quot;hi#quot; (work)"]']


def test_each_special_character_gets_a_code() -> None:
    assert mermaid_of("a#quot;b", "<b>x</b>", "R&D", "`**md**`", "50%%{init: {}}%%") == [
        '    s0["a#35;quot;b (work)"]',
        '    s1["#lt;b#gt;x#lt;/b#gt; (work)"]',
        '    s2["R#amp;D (work)"]',
        '    s3["#96;**md**#96; (work)"]',
        '    s4["50#37;#37;{init: {}}#37;#37; (work)"]',
    ]


def test_a_line_break_is_br() -> None:
    assert mermaid_of("one\ntwo\r\nthree\rfour") == ['    s0["one<br>two<br>three<br>four (work)"]']


def test_a_colon_gets_a_code_where_mermaid_would_cut_the_last_semicolon() -> None:
    assert mermaid_of("style:x#1", "plain:colon") == [
        '    s0["style#58;x#35;1 (work)"]',
        '    s1["plain:colon (work)"]',
    ]
    assert mermaid_reads('    s0["style#58;x#35;1 (work)"]') == "style:x#1 (work)"


def test_other_punctuation_is_left_as_written() -> None:
    # A double-quoted label holds brackets, pipes, semicolons and non-ASCII as is.
    assert mermaid_of("f(x) [a] {b} |c| ; café") == ['    s0["f(x) [a] {b} |c| ; café (work)"]']


@given(st.text(min_size=1, max_size=40).filter(str.strip))
def test_mermaid_draws_every_name_as_written(name: str) -> None:
    [line] = mermaid_of(name)
    expected = name.replace("\r\n", "\n").replace("\r", "\n")
    assert mermaid_reads(line) == f"{expected} (work)"
