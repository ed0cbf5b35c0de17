"""lint_pipeline's cycle search: only stages on a cycle are searched, with the same findings.

The search from every stage made a long acyclic chain quadratic (a 3,000-stage chain took
seconds per pipeline). A strongly-connected-components pass now picks the stages that lie
on a cycle, and only those are searched.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stageflow_trio.cli import lint
from stageflow_trio.cli.lint import _cycle_from, _on_cycles, lint_pipeline
from stageflow_trio.core import StageContext, StageKind, StageOutput
from stageflow_trio.pipeline import Pipeline


@st.composite
def graphs(draw: st.DrawFn) -> dict[str, list[str]]:
    names = [f"s{index}" for index in range(draw(st.integers(1, 9)))]
    targets = st.sampled_from([*names, "missing"])
    return {name: list(dict.fromkeys(draw(st.lists(targets, max_size=3)))) for name in names}


@settings(max_examples=300, deadline=None)
@given(graphs())
def test_the_stages_on_cycles_are_those_the_search_finds_a_cycle_through(
    depends_on: dict[str, list[str]],
) -> None:
    found = {name for name in depends_on if _cycle_from(name, depends_on) is not None}
    assert _on_cycles(depends_on) == found


async def _work(ctx: StageContext) -> StageOutput:
    return StageOutput.ok()


def test_an_acyclic_chain_is_not_searched_stage_by_stage(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    searched: list[str] = []

    def counting(start: str, depends_on: dict[str, list[str]]) -> list[str] | None:
        searched.append(start)
        return _cycle_from(start, depends_on)

    monkeypatch.setattr(lint, "_cycle_from", counting)
    pipeline = Pipeline()
    for index in range(300):
        deps = (f"s{index - 1}",) if index else ()
        pipeline = pipeline.with_stage(f"s{index}", _work, StageKind.WORK, dependencies=deps)
    assert lint_pipeline(pipeline).valid
    assert searched == []
    # A cycle is still found, and only its stages are searched.
    looped = pipeline.with_stage("a", _work, StageKind.WORK, dependencies=("b",)).with_stage(
        "b", _work, StageKind.WORK, dependencies=("a", "s299")
    )
    result = lint_pipeline(looped)
    assert not result.valid
    assert searched == ["a", "b"]
