"""PipelineRegistry: pipelines by name, for code that spawns them as subpipelines.

``pipeline_registry`` is the process-wide instance that
:meth:`ToolExecutor.spawn_subpipeline <stageflow_trio.tools.executor.ToolExecutor.spawn_subpipeline>`
reads by default; tests' ``reset_globals`` empties it.
"""

from __future__ import annotations

import builtins

from stageflow_trio._globals import register_global_reset
from stageflow_trio.pipeline.pipeline import Pipeline

__all__ = ["PipelineRegistry", "pipeline_registry"]


class PipelineRegistry:
    """A mapping of names to :class:`~stageflow_trio.pipeline.pipeline.Pipeline` instances.

    Subclasses may override :meth:`_register_all` to register their pipelines
    lazily: it runs once, before the first lookup. An override may start with the
    reference's guard (``if self._registered: return`` and set it), or leave
    ``_registered`` alone.
    """

    def __init__(self) -> None:
        self._pipelines: dict[str, Pipeline] = {}
        self._registered = False
        self._registering = False

    def _ensure_registered(self) -> None:
        # ``_registered`` is set only after the hook returns: an override written
        # like the reference's own hook starts with ``if self._registered: return``
        # and must find it False, while one that never sets it still runs once.
        # ``_registering`` keeps a lookup made from inside the override from
        # recursing. A failed registration is tried again at the next lookup.
        if self._registered or self._registering:
            return
        self._registering = True
        try:
            self._register_all()
        except BaseException:
            self._registered = False
            raise
        else:
            self._registered = True
        finally:
            self._registering = False

    def _register_all(self) -> None:
        """Register the built-in pipelines (none here); called once, before the first lookup."""
        self._registered = True

    def get(self, name: str) -> Pipeline:
        """The pipeline registered as ``name``.

        Raises:
            KeyError: "Pipeline 'name' not found. Available: [...]".
            TypeError: ``name`` is not a str.
        """
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, got {type(name).__name__}")
        self._ensure_registered()
        try:
            return self._pipelines[name]
        except KeyError:
            raise KeyError(
                f"Pipeline '{name}' not found. Available: {builtins.list(self._pipelines)}"
            ) from None

    def list(self) -> builtins.list[str]:
        """The registered names, in registration order."""
        self._ensure_registered()
        return builtins.list(self._pipelines)

    def register(self, name: str, pipeline: Pipeline) -> None:
        """Register ``pipeline`` as ``name`` (replacing what was there).

        Raises:
            TypeError: ``name`` is not a str or ``pipeline`` is not a Pipeline.
        """
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, got {type(name).__name__}")
        if not isinstance(pipeline, Pipeline):
            raise TypeError(f"pipeline must be a Pipeline, got {type(pipeline).__name__}")
        self._pipelines[name] = pipeline

    def __contains__(self, name: object) -> bool:
        self._ensure_registered()
        return name in self._pipelines


pipeline_registry: PipelineRegistry = PipelineRegistry()
"""The process-wide registry."""


def _reset() -> None:
    pipeline_registry._pipelines.clear()
    pipeline_registry._registered = False


register_global_reset(_reset)
