"""Pipeline files the command-line tests write to a temporary folder and load."""

from __future__ import annotations

from pathlib import Path

HEADER = """
import trio
from stageflow_trio.core import StageKind, StageOutput
from stageflow_trio.pipeline import Pipeline
"""

# Three stages, the last conditional: a -> b, a -> c.
SIMPLE = (
    HEADER
    + """
async def a(ctx):
    return StageOutput.ok(text=(ctx.snapshot.input_text or "").upper())

async def b(ctx):
    return StageOutput.ok(length=len(ctx.inputs.get_from("a", "text")))

async def c(ctx):
    return StageOutput.skip(reason="not needed")

pipeline = (
    Pipeline(name="simple")
    .with_stage("a", a, StageKind.TRANSFORM)
    .with_stage("b", b, StageKind.ENRICH, dependencies=("a",))
    .with_stage("c", c, StageKind.WORK, dependencies=("a",), conditional=True)
)
"""
)

FAILING = (
    HEADER
    + """
async def boom(ctx):
    raise RuntimeError("provider down")

pipeline = Pipeline(name="failing").with_stage("boom", boom, StageKind.WORK)
"""
)

CANCELLING = (
    HEADER
    + """
async def stop(ctx):
    return StageOutput.cancel(reason="nothing to do")

pipeline = Pipeline(name="cancelling").with_stage("stop", stop, StageKind.WORK)
"""
)

# Waits for ever once it has told the world (the event `waiter.ready`) that its cleanup
# is registered; the cleanup writes CLEANED (the folder comes from the input text).
WAITING = (
    HEADER
    + """
from pathlib import Path

async def wait(ctx):
    folder = Path(ctx.snapshot.input_text)

    async def cleanup():
        (folder / "CLEANED").write_text("cleanup ran")

    ctx.register_cleanup(cleanup, name="write CLEANED")
    ctx.try_emit_event("waiter.ready", {})
    await trio.sleep_forever()

pipeline = Pipeline(name="waiting").with_stage("wait", wait, StageKind.WORK)
"""
)

RAISES_ON_IMPORT = "raise RuntimeError('database unreachable')\n"

NOT_A_PIPELINE = "pipeline = 42\n"

TWO = (
    HEADER
    + """
async def a(ctx):
    return StageOutput.ok()

first = Pipeline(name="one").with_stage("a", a, StageKind.WORK)
second = Pipeline(name="two").with_stage("a", a, StageKind.WORK)
"""
)


def write(folder: Path, name: str, source: str) -> Path:
    path = folder / name
    path.write_text(source)
    return path
