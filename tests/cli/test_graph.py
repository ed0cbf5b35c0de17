"""``stageflow-trio graph``: Mermaid, dot and text, kinds and conditional stages shown."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stageflow_trio.cli.graph import render_graph, stage_nodes
from stageflow_trio.cli.main import main
from stageflow_trio.cli.targets import load_target
from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.pipeline import Pipeline
from stageflow_trio.pipeline.dag import UnifiedStageGraph, UnifiedStageSpec

from .sources import SIMPLE, write


async def noop(ctx: StageContext) -> StageOutput:
    return StageOutput.ok()


PIPELINE = (
    Pipeline(name="demo")
    .with_stage("a", noop, StageKind.TRANSFORM)
    .with_stage("b", noop, StageKind.ENRICH, dependencies=("a",))
    .with_stage("c", noop, StageKind.WORK, dependencies=("a", "b"), conditional=True)
)


def test_mermaid() -> None:
    assert render_graph(PIPELINE, "mermaid") == "\n".join(
        [
            "flowchart TD",
            '    s0["a (transform)"]',
            '    s1["b (enrich)"]',
            '    s2["c (work)"]',
            "    s0 --> s1",
            "    s0 --> s2",
            "    s1 --> s2",
            "    classDef conditional stroke-dasharray: 5 5",
            "    class s2 conditional",
        ]
    )


def test_dot() -> None:
    assert render_graph(PIPELINE, "dot", title="demo") == "\n".join(
        [
            'digraph "demo" {',
            "    node [shape=box];",
            '    "a" [label="a (transform)"];',
            '    "b" [label="b (enrich)"];',
            '    "c" [label="c (work)", style=dashed];',
            '    "a" -> "b";',
            '    "a" -> "c";',
            '    "b" -> "c";',
            "}",
        ]
    )


def test_text() -> None:
    assert render_graph(PIPELINE, "text", title="demo") == "\n".join(
        [
            "demo: 3 stages",
            "  a  transform  first",
            "  b  enrich     after a",
            "  c  work       after a, b  conditional",
        ]
    )


def test_a_built_graph_without_kinds_and_quotes_in_names() -> None:
    graph = UnifiedStageGraph(
        [UnifiedStageSpec(name='say "hi"', runner=noop), UnifiedStageSpec(name="one", runner=noop)]
    )
    assert [node.kind for node in stage_nodes(graph)] == [None, None]
    assert (
        render_graph(graph, "mermaid")
        == 'flowchart TD\n    s0["say #quot;hi#quot;"]\n    s1["one"]'
    )
    assert (
        render_graph(graph, "text", title="g")
        == 'g: 2 stages\n  say "hi"  -  first\n  one       -  first'
    )
    assert render_graph(Pipeline(name="empty"), "text", title="empty") == "empty: 0 stages"
    single = Pipeline().with_stage("a", noop, StageKind.WORK)
    assert render_graph(single, "text", title="p").splitlines()[0] == "p: 1 stage"


def test_an_unknown_format() -> None:
    with pytest.raises(
        ValueError, match=r"^render_graph: format must be one of mermaid, dot, text; got 'svg'$"
    ):
        render_graph(PIPELINE, "svg")


def test_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "simple.py", SIMPLE)
    assert main(["graph", str(path), "--format", "text"]) == 0
    assert capsys.readouterr().out == (
        "simple: 3 stages\n"
        "  a  transform  first\n"
        "  b  enrich     after a\n"
        "  c  work       after a  conditional\n"
    )
    assert main(["graph", str(path)]) == 0
    target = load_target(str(path))
    assert capsys.readouterr().out == render_graph(target, "mermaid") + "\n"
    assert (
        main(["graph", "stageflow_trio.examples.flaky_retry:build_graph", "--format", "dot"]) == 0
    )
    assert capsys.readouterr().out.startswith(
        'digraph "stageflow_trio.examples.flaky_retry:build_graph" {'
    )


def test_the_command_rejects_an_unknown_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "simple.py", SIMPLE)
    with pytest.raises(SystemExit) as exited:
        main(["graph", str(path), "--format", "svg"])
    assert exited.value.code == 2
    # One line (argparse quotes the choices or not, by Python version).
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert re.fullmatch(
        r"stageflow-trio graph: error: argument --format: invalid choice: 'svg'"
        r" \(choose from '?mermaid'?, '?dot'?, '?text'?\)\n",
        err,
    )
