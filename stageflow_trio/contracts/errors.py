"""Structured metadata attached to contract violations (pipeline validation errors)."""

from __future__ import annotations

from ._errors import ContractErrorInfo as ContractErrorInfo

__all__ = ["ContractErrorInfo"]
