"""The registry of process-wide singletons that tests put back to their defaults.

Modules that keep a process-wide singleton (the global event sink, the
extension registry, the suggestion registry, the checkpoint budget's defaults)
register a reset function here at import time. This module imports nothing,
so any layer of the package may use it; :mod:`stageflow_trio.testing`
re-exports both functions.

It also holds the one seam through which a lower layer reaches an upper one:
:attr:`StageInputs.tool_registry <stageflow_trio.stages.inputs.StageInputs.tool_registry>`
(the stages layer) hands out the tools layer's global registry through the
provider that the package's ``__init__``, above every layer, registers here.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, MutableMapping

_T = TypeVar("_T")

_resets: list[Callable[[], None]] = []


def register_global_reset(reset: Callable[[], None]) -> None:
    """Register a function that puts one of the library's singletons back to its default.

    Raises:
        TypeError: ``reset`` is not callable (nothing is registered).
    """
    if not callable(reset):
        raise TypeError(
            f"register_global_reset: reset must be callable; got {type(reset).__name__}"
        )
    _resets.append(reset)


def reset_globals() -> None:
    """Reset every process-wide singleton the library keeps (event sink, registries, ...)."""
    for reset in _resets:
        reset()


_install_lock = threading.Lock()


def install_once(namespace: MutableMapping[str, Any], name: str, candidate: _T) -> _T:
    """Make ``candidate`` the process-wide instance ``namespace[name]`` unless one is there.

    What a ``get_*()`` that creates its singleton on first use calls once it has
    built one: two threads that both found none (two trio runs starting at once)
    each build a candidate, and both get the one installed first, never two
    different instances (a tool registered in the lost one would vanish). The
    fast path (an instance is there) never comes here.

    Returns:
        The instance now in ``namespace[name]``: ``candidate``, or the one another
        thread installed first.
    """
    with _install_lock:
        current = namespace.get(name)
        if current is None:
            namespace[name] = current = candidate
    result: _T = current
    return result


_tool_registry_provider: Callable[[], object] | None = None


def provide_tool_registry(provider: Callable[[], object]) -> None:
    """Make ``provider`` what :func:`tool_registry` calls (the package's ``__init__`` does)."""
    global _tool_registry_provider
    _tool_registry_provider = provider


def tool_registry() -> object:
    """The process-wide tool registry, from the registered provider.

    Raises:
        RuntimeError: no provider is registered (the package's ``__init__``
            registers one before any of its modules runs, so only code that
            unregistered it sees this).
    """
    if _tool_registry_provider is None:
        raise RuntimeError("no tool registry provider is registered")
    return _tool_registry_provider()
