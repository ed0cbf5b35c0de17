"""Audit 10: ``graph --format dot`` writes non-ASCII names as they are.

dot's quoted strings have one escape (a backslash-quote; a label also reads a
doubled backslash and backslash-n), and no backslash-u: the ``json.dumps``
quoting used before drew a stage called ``récupérer`` as ``r\\u00e9cup\\u00e9rer``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stageflow_trio.cli.graph import render_graph
from stageflow_trio.cli.main import main
from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.pipeline import Pipeline


async def noop(ctx: StageContext) -> StageOutput:
    return StageOutput.ok()


def test_dot_keeps_non_ascii_names_and_escapes_only_what_dot_needs() -> None:
    pipeline = (
        Pipeline(name="café")
        .with_stage("récupérer", noop, StageKind.ENRICH)
        .with_stage("检索", noop, StageKind.WORK, dependencies=("récupérer",))
        .with_stage('say "hi"\\now', noop, StageKind.WORK, dependencies=("检索",))
    )
    assert render_graph(pipeline, "dot", title=pipeline.name) == "\n".join(
        [
            'digraph "café" {',
            "    node [shape=box];",
            '    "récupérer" [label="récupérer (enrich)"];',
            '    "检索" [label="检索 (work)"];',
            '    "say \\"hi\\"\\\\now" [label="say \\"hi\\"\\\\now (work)"];',
            '    "récupérer" -> "检索";',
            '    "检索" -> "say \\"hi\\"\\\\now";',
            "}",
        ]
    )


def test_dot_line_breaks_in_a_name() -> None:
    pipeline = Pipeline(name="p").with_stage("two\nlines", noop, StageKind.WORK)
    assert '    "two\\nlines" [label="two\\nlines (work)"];' in render_graph(pipeline, "dot")


def test_the_command_writes_utf8_dot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "accents.py"
    path.write_text(
        "from stageflow_trio.core import StageKind, StageOutput\n"
        "from stageflow_trio.pipeline import Pipeline\n\n\n"
        "async def noop(ctx):\n"
        "    return StageOutput.ok()\n\n\n"
        "pipeline = Pipeline('p').with_stage('étape', noop, StageKind.WORK)\n",
        encoding="utf-8",
    )
    assert main(["graph", str(path), "--format", "dot"]) == 0
    out = capsys.readouterr().out
    assert '"étape" [label="étape (work)"];' in out
    assert "\\u" not in out
