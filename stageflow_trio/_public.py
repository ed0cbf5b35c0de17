"""Give re-exported names the public module path they are documented under."""

from __future__ import annotations

from typing import Any


def fix_module_paths(module_name: str, namespace: dict[str, Any]) -> None:
    """Point ``__module__`` of the names in ``namespace["__all__"]`` at ``module_name``.

    Only names still carrying a private path (one with a ``_``-prefixed
    segment) change, so the first public home of a name wins. Tracebacks,
    reprs and pickles then show ``stageflow_trio.pipeline.dag.UnifiedStageGraph``
    rather than the private module that implements it.
    """
    for name in namespace.get("__all__", ()):
        obj = namespace.get(name)
        module = getattr(obj, "__module__", None)
        if not isinstance(module, str) or not module.startswith("stageflow_trio."):
            continue
        if not any(part.startswith("_") for part in module.split(".")):
            continue
        try:
            obj.__module__ = module_name
        except (AttributeError, TypeError):  # pragma: no cover - e.g. a builtin alias
            continue
