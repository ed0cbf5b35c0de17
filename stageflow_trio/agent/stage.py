"""A pipeline stage that runs an :class:`~stageflow_trio.agent.runtime.Agent`."""

from __future__ import annotations

from typing import Any

import trio

from stageflow_trio._args import error_text, type_of
from stageflow_trio.core.stage_enums import StageKind
from stageflow_trio.core.stage_output import StageOutput

from .runtime import Agent

__all__ = ["AgentStage"]


class AgentStage:
    """Runs an agent on the snapshot's ``input_text``.

    The output's data is the :class:`~stageflow_trio.agent.runtime.AgentRunResult`
    as a dict, versioned ``output_version``. An agent error becomes a failed
    output ("Agent execution failed: ..."); a cancellation (the stage's timeout,
    the run's deadline) propagates.

    Raises:
        TypeError: ``agent`` is not an Agent or ``output_version`` not a str.
    """

    name = "agent"
    kind = StageKind.AGENT

    def __init__(self, agent: Agent, *, output_version: str = "agent/stage/v1") -> None:
        if not isinstance(agent, Agent):
            raise TypeError(f"AgentStage: agent must be an Agent; got {type_of(agent)}")
        if type(output_version) is not str:
            raise TypeError(
                f"AgentStage: output_version must be a str; got {type_of(output_version)}"
            )
        self._agent = agent
        self._output_version = output_version

    async def execute(self, ctx: Any) -> StageOutput:
        """Run the agent; a checkpoint (the agent's, or its own when ``ctx`` has no input)."""
        try:
            input_text = ctx.snapshot.input_text or ""
        except Exception as exc:  # noqa: BLE001 - as the reference: a failed output
            # No agent call, so no checkpoint from it: the stage still is one.
            await trio.lowlevel.checkpoint()
            return StageOutput.fail(error=f"Agent execution failed: {error_text(exc)}")
        try:
            result = await self._agent.run(input_text, stage_context=ctx)
        except Exception as exc:  # noqa: BLE001 - the stage reports the failure as its output
            return StageOutput.fail(error=f"Agent execution failed: {error_text(exc)}")
        return StageOutput.ok(data=result.to_dict(), version=self._output_version)
