"""Duplex topology: two lanes (listen and speak), join dependencies, collision checks, real runs."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from stageflow_trio.pipeline import (
    DuplexLaneSpec,
    DuplexSystemSpec,
    FluentPipelineBuilder,
    PipelineBuilder,
    with_duplex_system,
)
from stageflow_trio.pipeline.spec import (
    PipelineValidationError,
    StageDefinitionError,
    StageDefinitionTypeError,
)
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.testing import create_test_pipeline_context
from tests.fakes import NoopStage


def shape(builder: PipelineBuilder) -> dict[str, tuple[str, ...]]:
    return {name: tuple(spec.dependencies) for name, spec in builder.stages.items()}


def lane(*names: str, depends_on: tuple[str, ...] = ()) -> DuplexLaneSpec:
    return DuplexLaneSpec(stages=tuple((n, NoopStage) for n in names), depends_on=depends_on)


BASE = PipelineBuilder("voice").with_stage("mic", NoopStage).with_stage("text_in", NoopStage)


def test_lanes_chain_and_the_join_depends_on_both_tails_then_extras() -> None:
    system = DuplexSystemSpec(
        forward=lane("listen_decode", "listen_transcribe", depends_on=("mic",)),
        reverse=lane("speak_plan", "speak_tts", depends_on=("text_in",)),
        join_stage=("sync", NoopStage),
        join_depends_on=("mic", "speak_tts"),
    )
    result = with_duplex_system(BASE, system)
    assert shape(result) == {
        "mic": (),
        "text_in": (),
        "listen_decode": ("mic",),
        "listen_transcribe": ("listen_decode",),
        "speak_plan": ("text_in",),
        "speak_tts": ("speak_plan",),
        "sync": ("listen_transcribe", "speak_tts", "mic"),  # each once, tails first
    }
    assert shape(BASE) == {"mic": (), "text_in": ()}  # builders are immutable


def test_without_a_join_the_lanes_stay_independent() -> None:
    system = DuplexSystemSpec(forward=lane("up"), reverse=lane("down"))
    assert shape(with_duplex_system(PipelineBuilder("p"), system)) == {"up": (), "down": ()}
    assert system.stage_names() == ["up", "down"]


def test_specs_keep_lists_as_tuples_and_are_frozen() -> None:
    spec = DuplexLaneSpec(stages=[["a", NoopStage]], depends_on=["x"])
    assert spec.stages == (("a", NoopStage),)
    assert spec.depends_on == ("x",)
    with pytest.raises(AttributeError):
        spec.depends_on = ()  # type: ignore[misc]


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (
            lambda: DuplexLaneSpec(stages=()),
            StageDefinitionError,
            r"^DuplexLaneSpec: stages must hold at least one stage$",
        ),
        (
            lambda: DuplexLaneSpec(stages="ab"),
            StageDefinitionTypeError,
            r"^DuplexLaneSpec: stages must be a sequence of \(name, runner\) pairs; got 'ab'$",
        ),
        (
            lambda: DuplexLaneSpec(stages=(("a",),)),
            StageDefinitionTypeError,
            r"^DuplexLaneSpec: stages\[0\] must be a \(name, runner\) pair; got \('a',\)$",
        ),
        (
            lambda: DuplexLaneSpec(stages=(("a", NoopStage),), depends_on="mic"),
            StageDefinitionTypeError,
            r"^DuplexLaneSpec: depends_on must be a sequence of stage names; got 'mic'$",
        ),
        (
            lambda: DuplexLaneSpec(stages=(("a", NoopStage),), depends_on=(1,)),  # type: ignore[arg-type]
            StageDefinitionTypeError,
            r"^DuplexLaneSpec: depends_on must hold stage names \(str\); got 1$",
        ),
        (
            lambda: DuplexSystemSpec(forward=lane("a"), reverse=("b", NoopStage)),  # type: ignore[arg-type]
            StageDefinitionTypeError,
            r"^DuplexSystemSpec: reverse must be a DuplexLaneSpec; got tuple$",
        ),
        (
            lambda: DuplexSystemSpec(forward=lane("a"), reverse=lane("b"), join_stage="j"),  # type: ignore[arg-type]
            StageDefinitionTypeError,
            r"^DuplexSystemSpec: join_stage must be a \(name, runner\) pair; got 'j'$",
        ),
        (
            lambda: DuplexSystemSpec(forward=lane("a"), reverse=lane("b"), join_depends_on=5),  # type: ignore[arg-type]
            StageDefinitionTypeError,
            r"^DuplexSystemSpec: join_depends_on must be a sequence of stage names; got 5$",
        ),
    ],
)
def test_bad_specs_are_rejected(make: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        make()


def test_duplicate_names_across_lanes_and_join_are_rejected() -> None:
    system = DuplexSystemSpec(
        forward=lane("a", "b"), reverse=lane("b", "c"), join_stage=("a", NoopStage)
    )
    with pytest.raises(
        StageDefinitionError,
        match=r"^with_duplex_system: duplicate stage names in the system: a, b$",
    ) as info:
        with_duplex_system(PipelineBuilder("p"), system)
    assert isinstance(info.value, ValueError)  # as stageflow's docs say: a ValueError


def test_names_colliding_with_the_builder_are_rejected() -> None:
    system = DuplexSystemSpec(forward=lane("mic"), reverse=lane("text_in"))
    with pytest.raises(
        StageDefinitionError,
        match=r"^with_duplex_system: stage names already in the builder: mic, text_in$",
    ):
        with_duplex_system(BASE, system)


def test_a_missing_lane_dependency_is_the_builders_error() -> None:
    system = DuplexSystemSpec(forward=lane("a", depends_on=("nope",)), reverse=lane("b"))
    with pytest.raises(PipelineValidationError, match="depends on 'nope'"):
        with_duplex_system(PipelineBuilder("p"), system)


@pytest.mark.parametrize(
    ("builder", "system", "message"),
    [
        (
            "p",
            DuplexSystemSpec(forward=lane("a"), reverse=lane("b")),
            r"^with_duplex_system: builder must be a PipelineBuilder; got str$",
        ),
        (
            PipelineBuilder("p"),
            {"forward": lane("a")},
            r"^with_duplex_system: system must be a DuplexSystemSpec; got dict$",
        ),
    ],
)
def test_with_duplex_system_checks_its_arguments(builder: Any, system: Any, message: str) -> None:
    with pytest.raises(StageDefinitionTypeError, match=message):
        with_duplex_system(builder, system)


def test_fluent_duplex_hangs_both_lanes_off_the_last_stage() -> None:
    fluent = (
        FluentPipelineBuilder("chat")
        .stage("entry", NoopStage)
        .duplex(
            forward=[("fwd", NoopStage)],
            reverse=(("rev", NoopStage), ("rev2", NoopStage)),
            join_stage=("sync", NoopStage),
        )
        .stage("after", NoopStage, depends_on=("sync",))
    )
    assert shape(fluent.builder) == {
        "entry": (),
        "fwd": ("entry",),
        "rev": ("entry",),
        "rev2": ("rev",),
        "sync": ("fwd", "rev2"),
        "after": ("sync",),
    }


def test_fluent_duplex_explicit_dependencies_and_no_join() -> None:
    fluent = (
        FluentPipelineBuilder("explicit")
        .stage("a", NoopStage)
        .stage("b", NoopStage)
        .duplex(
            forward=[("up", NoopStage)],
            reverse=[("down", NoopStage)],
            forward_depends_on=("a",),
            reverse_depends_on=(),
        )
        # No single last stage after a join-less duplex: this chain starts as a root.
        .linear_chain(1, lambda i: (f"tail{i}", NoopStage))
    )
    assert shape(fluent.builder) == {
        "a": (),
        "b": (),
        "up": ("a",),
        "down": (),
        "tail0": (),
    }


def test_fluent_duplex_on_an_empty_builder_makes_root_lanes() -> None:
    fluent = FluentPipelineBuilder("empty").duplex(
        forward=[("f", NoopStage)], reverse=[("r", NoopStage)], join_depends_on=["f"]
    )
    assert shape(fluent.builder) == {"f": (), "r": ()}


async def test_a_built_duplex_graph_runs_both_lanes_concurrently(
    autojump_clock: trio.abc.Clock,
) -> None:
    log: list[tuple[str, float]] = []

    def timed(name: str, seconds: float) -> Any:
        async def run(ctx: PipelineContext) -> dict[str, Any]:
            await trio.sleep(seconds)
            log.append((name, trio.current_time()))
            ctx.data.setdefault("order", []).append(name)
            return {"stage": name}

        return run

    pipeline = (
        FluentPipelineBuilder("voice")
        .stage("session", timed("session", 1))
        .duplex(
            forward=[
                ("listen_stt", timed("listen_stt", 3)),
                ("listen_nlu", timed("listen_nlu", 1)),
            ],
            reverse=[("speak_tts", timed("speak_tts", 2))],
            join_stage=("sync", timed("sync", 0.5)),
        )
    )
    graph = pipeline.build()
    results = await graph.run(create_test_pipeline_context())
    assert {name: r.status for name, r in results.items()} == dict.fromkeys(
        ["session", "listen_stt", "listen_nlu", "speak_tts", "sync"], "completed"
    )
    # The lanes overlap: speak finishes while listen is still transcribing; the join
    # waits for the slower lane's tail.
    assert sorted(log, key=lambda item: item[1]) == [
        ("session", 1),
        ("speak_tts", 3),
        ("listen_stt", 4),
        ("listen_nlu", 5),
        ("sync", 5.5),
    ]
