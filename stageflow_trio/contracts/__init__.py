"""Stage contracts: error metadata, remediation suggestions, a versioned registry, typed outputs.

Contract models are attrs classes, or pydantic v2 models when pydantic is
installed (the ``pydantic`` extra); see docs/contracts.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stageflow_trio._lazy import lazy_exports

if TYPE_CHECKING:
    from stageflow_trio.contracts.errors import ContractErrorInfo as ContractErrorInfo
    from stageflow_trio.contracts.registry import (
        ContractCompatibilityReport as ContractCompatibilityReport,
    )
    from stageflow_trio.contracts.registry import ContractMetadata as ContractMetadata
    from stageflow_trio.contracts.registry import ContractRegistry as ContractRegistry
    from stageflow_trio.contracts.registry import registry as registry
    from stageflow_trio.contracts.suggestions import ContractSuggestion as ContractSuggestion
    from stageflow_trio.contracts.suggestions import (
        get_contract_suggestion as get_contract_suggestion,
    )
    from stageflow_trio.contracts.suggestions import register_suggestion as register_suggestion
    from stageflow_trio.contracts.typed_output import TypedStageOutput as TypedStageOutput

__all__ = [
    "ContractCompatibilityReport",
    "ContractErrorInfo",
    "ContractMetadata",
    "ContractRegistry",
    "ContractSuggestion",
    "TypedStageOutput",
    "get_contract_suggestion",
    "register_suggestion",
    "registry",
]

# Hidden from type checkers, which read the imports above: a visible module
# __getattr__ would make every misspelt name `Any` instead of an error.
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "stageflow_trio.contracts.errors": "ContractErrorInfo",
            "stageflow_trio.contracts.registry": (
                "ContractCompatibilityReport ContractMetadata ContractRegistry registry"
            ),
            "stageflow_trio.contracts.suggestions": (
                "ContractSuggestion get_contract_suggestion register_suggestion"
            ),
            "stageflow_trio.contracts.typed_output": "TypedStageOutput",
        },
        eager="registry",  # also a submodule's name
    )
