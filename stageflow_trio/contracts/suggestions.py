"""Remediation suggestions for contract error codes, looked up by code.

The registry is process-wide and starts with one suggestion for every error the
pipeline builders raise (cycle, missing dependency, self-dependency, conflicting
definitions, isolated stage, empty pipeline). ``register_suggestion`` adds or
replaces an entry; ``stageflow_trio.testing.reset_globals`` restores the defaults.
"""

from __future__ import annotations

from ._suggestions import ContractSuggestion as ContractSuggestion
from ._suggestions import get_contract_suggestion as get_contract_suggestion
from ._suggestions import register_suggestion as register_suggestion

__all__ = ["ContractSuggestion", "get_contract_suggestion", "register_suggestion"]
