"""The registry of process-wide singletons that tests put back to their defaults.

Modules that keep a process-wide singleton (the global event sink, the
extension registry, the suggestion registry, the checkpoint budget's defaults)
register a reset function here at import time. This module imports nothing,
so any layer of the package may use it; :mod:`stageflow_trio.testing`
re-exports both functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

_resets: list[Callable[[], None]] = []


def register_global_reset(reset: Callable[[], None]) -> None:
    """Register a function that puts one of the library's singletons back to its default."""
    _resets.append(reset)


def reset_globals() -> None:
    """Reset every process-wide singleton the library keeps (event sink, registries, ...)."""
    for reset in _resets:
        reset()
