"""Fakes and helpers for testing code built on stageflow_trio (and for its own tests)."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["register_global_reset", "reset_globals"]

_resets: list[Callable[[], None]] = []


def register_global_reset(reset: Callable[[], None]) -> None:
    """Register a function that puts one of the library's singletons back to its default."""
    _resets.append(reset)


def reset_globals() -> None:
    """Reset every process-wide singleton the library keeps (event sink, registries, ...)."""
    for reset in _resets:
        reset()
