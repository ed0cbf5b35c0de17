"""Draw a pipeline's DAG: Mermaid, Graphviz dot, or plain text.

Each stage shows its kind; a conditional stage (one that may be skipped) is drawn
dashed in Mermaid and dot, and marked ``conditional`` in text. Edges point from a
dependency to the stage that waits for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from stageflow_trio._frozen import frozen_compat
from stageflow_trio.cli._text import one_line
from stageflow_trio.pipeline import Pipeline

if TYPE_CHECKING:
    from stageflow_trio.cli.targets import PipelineLike

__all__ = ["FORMATS", "StageNode", "render_graph", "stage_nodes"]

FORMATS = ("mermaid", "dot", "text")


@frozen_compat
@attrs.frozen
class StageNode:
    """One stage as drawn: its name, kind (``None`` when the graph has none), dependencies."""

    name: str
    kind: str | None
    dependencies: tuple[str, ...]
    conditional: bool


def stage_nodes(target: PipelineLike) -> list[StageNode]:
    """The stages of a Pipeline (unbuilt) or a built graph, in insertion order."""
    specs = list(target.stages.values()) if isinstance(target, Pipeline) else target.stage_specs
    return [
        StageNode(
            spec.name,
            None if spec.kind is None else spec.kind.value,
            tuple(spec.dependencies),
            spec.conditional,
        )
        for spec in specs
    ]


def _label(node: StageNode) -> str:
    return node.name if node.kind is None else f"{node.name} ({node.kind})"


# Mermaid's entity codes (``#name;`` or ``#decimal;``) for the characters a quoted
# label cannot hold as they are. ``#`` comes first: it starts every code, so a
# name's own ``#quot;`` must stay text. ``&``, ``<``, ``>`` would be read as HTML
# (flowchart labels are HTML by default); a backtick next to the quote opens a
# Markdown string; ``%`` could start a ``%%{init: ...}%%`` directive, which
# Mermaid looks for anywhere in the source.
_MERMAID_CODES = str.maketrans(
    {
        "#": "#35;",
        '"': "#quot;",
        "&": "#amp;",
        "<": "#lt;",
        ">": "#gt;",
        "`": "#96;",
        "%": "#37;",
    }
)


def _mermaid_label(text: str) -> str:
    """``text`` for the inside of a double-quoted Mermaid label, shown as written.

    Special characters become Mermaid entity codes (as in ``A["a #quot;b#quot;"]``),
    a line break becomes ``<br>``, Mermaid's line break in a label.
    """
    label = text.translate(_MERMAID_CODES)
    if "\r" in label or "\n" in label:
        label = label.replace("\r\n", "<br>").replace("\n", "<br>").replace("\r", "<br>")
    if ("style" in label or "classDef" in label) and ":" in label:
        # Before decoding entities Mermaid cuts the final ";" off any line
        # matching ``style.*:\S*#.*;`` (its style and classDef statements), which
        # would break the last code here: a colon needs a code too then.
        label = label.replace(":", "#58;")
    return label


def _mermaid(nodes: list[StageNode]) -> str:
    ids = {node.name: f"s{index}" for index, node in enumerate(nodes)}
    lines = ["flowchart TD"]
    lines.extend(f'    {ids[node.name]}["{_mermaid_label(_label(node))}"]' for node in nodes)
    lines.extend(
        f"    {ids[dep]} --> {ids[node.name]}"
        for node in nodes
        for dep in node.dependencies
        if dep in ids
    )
    conditional = [ids[node.name] for node in nodes if node.conditional]
    if conditional:
        lines.append("    classDef conditional stroke-dasharray: 5 5")
        lines.append(f"    class {','.join(conditional)} conditional")
    return "\n".join(lines)


def _dot_quoted(text: str) -> str:
    """``text`` as a quoted dot ID, which a label shows as written.

    A backslash and a double quote are escaped, a line break becomes dot's
    backslash-n; every other character, non-ASCII included, is written as is.
    (``json.dumps`` escaped non-ASCII as backslash-u sequences, which dot does
    not know: ``café`` was drawn as ``caf\\u00e9``.)
    """
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n") + '"'


def _dot(nodes: list[StageNode], title: str) -> str:
    lines = [f"digraph {_dot_quoted(title)} {{", "    node [shape=box];"]
    for node in nodes:
        style = ", style=dashed" if node.conditional else ""
        lines.append(f"    {_dot_quoted(node.name)} [label={_dot_quoted(_label(node))}{style}];")
    lines.extend(
        f"    {_dot_quoted(dep)} -> {_dot_quoted(node.name)};"
        for node in nodes
        for dep in node.dependencies
    )
    lines.append("}")
    return "\n".join(lines)


# The name column is as wide as the longest name up to this many characters; a
# longer name runs past it on its own line. Padding every line to the longest
# name made the drawing's size the stage count times that name's length (one
# stage named with 1 MB among 1,000 others: 2 GB of text).
_TEXT_NAME_COLUMN = 40


def _text(nodes: list[StageNode], title: str) -> str:
    names = {node.name: one_line(node.name) for node in nodes}
    width = max((len(name) for name in names.values() if len(name) <= _TEXT_NAME_COLUMN), default=0)
    kind_width = max((len(node.kind or "-") for node in nodes), default=0)
    lines = [f"{one_line(title)}: {len(nodes)} stage{'s' if len(nodes) != 1 else ''}"]
    for node in nodes:
        after = (
            f"after {', '.join(names.get(dep) or one_line(dep) for dep in node.dependencies)}"
            if node.dependencies
            else "first"
        )
        flag = "  conditional" if node.conditional else ""
        name = names[node.name]
        lines.append(f"  {name:<{width}}  {node.kind or '-':<{kind_width}}  {after}{flag}")
    return "\n".join(lines)


def render_graph(target: PipelineLike, format: str = "mermaid", *, title: str = "pipeline") -> str:
    """``target``'s DAG in ``format`` (one of :data:`FORMATS`), without a final newline.

    Raises:
        ValueError: ``format`` is not one of :data:`FORMATS`.
    """
    if format not in FORMATS:
        raise ValueError(
            f"render_graph: format must be one of {', '.join(FORMATS)}; got {format!r}"
        )
    nodes = stage_nodes(target)
    if format == "mermaid":
        return _mermaid(nodes)
    if format == "dot":
        return _dot(nodes, title)
    return _text(nodes, title)
