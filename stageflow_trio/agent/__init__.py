"""Agents: a tool loop driven by a model, with versioned prompts, prompt-injection
hardening and typed, retried model output; plus the context types an agent reads
(re-exported from :mod:`stageflow_trio.context`)."""

from __future__ import annotations

from stageflow_trio.context import ContextSnapshot as ContextSnapshot
from stageflow_trio.context import DocumentEnrichment as DocumentEnrichment
from stageflow_trio.context import MemoryEnrichment as MemoryEnrichment
from stageflow_trio.context import Message as Message
from stageflow_trio.context import ProfileEnrichment as ProfileEnrichment
from stageflow_trio.context import RoutingDecision as RoutingDecision

from .prompts import PromptLibrary as PromptLibrary
from .prompts import PromptRenderError as PromptRenderError
from .prompts import PromptTemplate as PromptTemplate
from .prompts import RenderedPrompt as RenderedPrompt
from .runtime import Agent as Agent
from .runtime import AgentConfig as AgentConfig
from .runtime import AgentLoopError as AgentLoopError
from .runtime import AgentRunResult as AgentRunResult
from .runtime import AgentToolCall as AgentToolCall
from .runtime import AgentToolResult as AgentToolResult
from .runtime import AgentTurn as AgentTurn
from .runtime import AgentTurnLimitError as AgentTurnLimitError
from .security import PromptSecurityError as PromptSecurityError
from .security import PromptSecurityPolicy as PromptSecurityPolicy
from .security import PromptSecurityReport as PromptSecurityReport
from .stage import AgentStage as AgentStage
from .validation import LLMOutputValidationError as LLMOutputValidationError
from .validation import TypedLLMOutput as TypedLLMOutput
from .validation import TypedLLMResult as TypedLLMResult

__all__ = [
    "Agent",
    "AgentConfig",
    "AgentLoopError",
    "AgentRunResult",
    "AgentStage",
    "AgentToolCall",
    "AgentToolResult",
    "AgentTurn",
    "AgentTurnLimitError",
    "ContextSnapshot",
    "DocumentEnrichment",
    "LLMOutputValidationError",
    "MemoryEnrichment",
    "Message",
    "ProfileEnrichment",
    "PromptLibrary",
    "PromptRenderError",
    "PromptSecurityError",
    "PromptSecurityPolicy",
    "PromptSecurityReport",
    "PromptTemplate",
    "RenderedPrompt",
    "RoutingDecision",
    "TypedLLMOutput",
    "TypedLLMResult",
]
