"""The Stage protocol: what every stage implementation provides."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from stageflow_trio.core.stage_enums import StageKind  # noqa: TC001 - typing.get_type_hints

if TYPE_CHECKING:
    from stageflow_trio.core.stage_context import StageContext
    from stageflow_trio.core.stage_output import StageReturn

__all__ = ["Stage"]


class Stage(Protocol):
    """A unit of pipeline work: a name, a kind and an async ``execute``.

    Attributes:
        name: The stage's name, unique within its pipeline.
        kind: What sort of work it does (transform, enrich, route, guard, work, agent).
    """

    name: str
    kind: StageKind

    async def execute(self, ctx: StageContext) -> StageReturn:
        """Run the stage on ``ctx`` and return its output.

        Implementations are trio code: they may checkpoint, and they must let
        ``trio.Cancelled`` propagate.
        """
        ...
