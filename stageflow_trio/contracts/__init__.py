"""Contract metadata for pipeline validation errors and their remediation suggestions.

The reference's pydantic-based names (ContractRegistry, ContractMetadata,
ContractCompatibilityReport, TypedStageOutput, registry) are not provided here.
"""

from __future__ import annotations

from stageflow_trio.contracts.errors import ContractErrorInfo as ContractErrorInfo
from stageflow_trio.contracts.suggestions import ContractSuggestion as ContractSuggestion
from stageflow_trio.contracts.suggestions import (
    get_contract_suggestion as get_contract_suggestion,
)
from stageflow_trio.contracts.suggestions import register_suggestion as register_suggestion

__all__ = [
    "ContractErrorInfo",
    "ContractSuggestion",
    "get_contract_suggestion",
    "register_suggestion",
]
