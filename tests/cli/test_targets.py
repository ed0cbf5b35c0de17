"""Loading what a command-line target names: files, modules, attributes, and every wrong input."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from stageflow_trio.cli.targets import TargetError, build_target, load_module, load_target
from stageflow_trio.pipeline import Pipeline, UnifiedStageGraph

from .sources import HEADER, NOT_A_PIPELINE, RAISES_ON_IMPORT, SIMPLE, TWO, write

FACTORIES = (
    HEADER
    + """
async def a(ctx):
    return StageOutput.ok()

def build_pipeline():
    return Pipeline(name="built").with_stage("a", a, StageKind.WORK)

def make_graph():
    return build_pipeline().build()

def make_number():
    return 7

def make_broken():
    raise ValueError("missing settings")

async def make_async():
    return build_pipeline()

class Holder:
    pipeline = build_pipeline()

number = 3

from stageflow_trio.testing import create_test_stage_context
"""
)


def test_a_file_with_one_pipeline(tmp_path: Path) -> None:
    target = load_target(str(write(tmp_path, "simple.py", SIMPLE)))
    assert isinstance(target, Pipeline)
    assert list(target.stages) == ["a", "b", "c"]


def test_a_named_attribute_a_factory_and_a_built_graph(tmp_path: Path) -> None:
    path = write(tmp_path, "factories.py", FACTORIES)
    made = load_target(f"{path}:build_pipeline")
    assert isinstance(made, Pipeline)
    assert made.name == "built"
    assert isinstance(load_target(f"{path}:make_graph"), UnifiedStageGraph)
    dotted = load_target(f"{path}:Holder.pipeline")
    assert isinstance(dotted, Pipeline)
    # Without a name, the one factory named like one is found.
    found = load_target(str(path))
    assert isinstance(found, Pipeline)
    assert found.name == "built"


def test_a_module_by_name() -> None:
    target = load_target("stageflow_trio.examples.quickstart")
    assert isinstance(target, Pipeline)
    assert target.name == "quickstart"
    for example in ("flaky_retry", "deadline", "guard_retry", "many_runs"):
        graph = load_target(f"stageflow_trio.examples.{example}")
        assert isinstance(graph, UnifiedStageGraph)


def test_a_file_may_import_its_neighbours(tmp_path: Path) -> None:
    write(tmp_path, "neighbour_stages.py", SIMPLE)
    path = write(tmp_path, "uses.py", "from neighbour_stages import pipeline\n")
    try:
        assert isinstance(load_target(str(path)), Pipeline)
    finally:
        sys.path.remove(str(tmp_path.resolve()))
        sys.modules.pop("neighbour_stages", None)


@pytest.mark.parametrize(
    ("suffix", "message"),
    [
        (
            ":number",
            "{path}:number is a int, not a Pipeline, a built graph, or a function returning one",
        ),
        (
            ":Holder",
            "{path}:Holder is a type, not a Pipeline, a built graph, or a function returning one",
        ),
        (":nope", "{path} has no attribute 'nope'"),
        (":Holder.nope", "{path} has no attribute 'Holder.nope'"),
        (":make_number", "{path}:make_number() returned a int, not a Pipeline or a built graph"),
        (":make_broken", "calling {path}:make_broken() raised ValueError: missing settings"),
        (
            ":make_async",
            "{path}:make_async is an async function; give a function that returns a Pipeline",
        ),
    ],
)
def test_attributes_that_are_not_pipelines(tmp_path: Path, suffix: str, message: str) -> None:
    path = write(tmp_path, "factories.py", FACTORIES)
    with pytest.raises(TargetError) as caught:
        load_target(f"{path}{suffix}")
    assert str(caught.value) == message.format(path=path)


def test_missing_files_and_modules(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match=r"^no such file: .*/absent\.py$"):
        load_target(str(tmp_path / "absent.py"))
    with pytest.raises(TargetError, match=r"^no such file or module: no_such_module_xyz$"):
        load_target("no_such_module_xyz")
    with pytest.raises(TargetError, match=r"^no such file or module: stageflow_trio\.nope$"):
        load_target("stageflow_trio.nope:pipeline")
    with pytest.raises(TargetError, match=r"^target ':x' names no file or module before ':'$"):
        load_target(":x")
    with pytest.raises(TargetError, match=r"^cannot load .*data\.txt as a Python module$"):
        load_module(str(write(tmp_path, "data.txt", "")))


def test_a_module_whose_import_fails(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.py", RAISES_ON_IMPORT)
    with pytest.raises(TargetError) as caught:
        load_target(str(path))
    assert str(caught.value) == f"importing {path} raised RuntimeError: database unreachable"
    assert isinstance(caught.value.__cause__, RuntimeError)
    # A module that imports a missing module is not itself missing.
    write(tmp_path, "imports_missing.py", "import no_such_dependency_xyz\n")
    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(TargetError) as caught:
            load_target("imports_missing")
        assert str(caught.value) == (
            "importing imports_missing raised ModuleNotFoundError:"
            " No module named 'no_such_dependency_xyz'"
        )
        write(tmp_path, "raises_by_name.py", RAISES_ON_IMPORT)
        with pytest.raises(TargetError, match=r"^importing raises_by_name raised RuntimeError"):
            load_target("raises_by_name")
    finally:
        sys.path.remove(str(tmp_path))


def test_none_or_several_candidates(tmp_path: Path) -> None:
    none = write(tmp_path, "none.py", NOT_A_PIPELINE)
    with pytest.raises(TargetError) as caught:
        load_target(str(none))
    assert str(caught.value) == (
        f"{none} defines no pipeline: name one as {none}:NAME"
        " (a Pipeline, a built graph, or a function returning one)"
    )
    two = write(tmp_path, "two.py", TWO)
    with pytest.raises(TargetError) as caught:
        load_target(str(two))
    assert (
        str(caught.value)
        == f"{two} defines several pipelines (first, second): name one as {two}:NAME"
    )
    chosen = load_target(f"{two}:second")
    assert isinstance(chosen, Pipeline)
    assert chosen.name == "two"


def test_load_target_takes_a_str() -> None:
    with pytest.raises(TypeError, match=r"^load_target: target must be a str; got int$"):
        load_target(3)  # type: ignore[arg-type]


def test_build_target_reports_the_contract_code(tmp_path: Path) -> None:
    async def a(ctx: object) -> None:
        return None

    from stageflow_trio.core import StageKind

    broken = Pipeline().with_stage("a", a, StageKind.WORK, dependencies=("ghost",))
    with pytest.raises(
        TargetError, match=r"^x\.py: the pipeline does not build \[CONTRACT-004-MISSING_DEP\]: "
    ):
        build_target(broken, "x.py")
    with pytest.raises(
        TargetError, match=r"^x\.py: the pipeline does not build: UnifiedStageGraph requires"
    ):
        build_target(Pipeline(), "x.py")
    graph = Pipeline().with_stage("a", a, StageKind.WORK).build()
    assert build_target(graph, "x.py") is graph
