"""stageflow_trio.agent re-exports the snapshot and its types, like the reference's,
and exports stageflow 1.2.0's agent runtime names (tests/agent/ tests those)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import stageflow_trio.agent as agent
import stageflow_trio.context as context

if TYPE_CHECKING:
    from types import ModuleType

# stageflow 1.2.0's stageflow.agent.__all__ beyond 0.9.1's six context names.
ADDED_IN_1_2 = {
    "Agent",
    "AgentConfig",
    "AgentLoopError",
    "AgentRunResult",
    "AgentStage",
    "AgentToolCall",
    "AgentToolResult",
    "AgentTurn",
    "AgentTurnLimitError",
    "LLMOutputValidationError",
    "PromptLibrary",
    "PromptRenderError",
    "PromptSecurityError",
    "PromptSecurityPolicy",
    "PromptSecurityReport",
    "PromptTemplate",
    "RenderedPrompt",
    "TypedLLMOutput",
    "TypedLLMResult",
}


def test_agent_reexports_the_context_types(reference: ModuleType) -> None:
    import stageflow.agent as ref_agent

    assert sorted(agent.__all__) == sorted({*ref_agent.__all__, *ADDED_IN_1_2})
    for name in ref_agent.__all__:
        assert getattr(agent, name) is getattr(context, name)
    for name in ADDED_IN_1_2:
        assert getattr(agent, name).__module__.startswith("stageflow_trio.agent.")
