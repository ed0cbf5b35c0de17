"""The optional OpenTelemetry API (the ``otel`` extra), shared by the tracer and the interceptor.

:mod:`stageflow_trio.observability.tracing` and the pipeline's ``TracingInterceptor``
both ask :func:`otel_api` for the two ``opentelemetry`` modules they use. The
import is attempted once per process: a missing package would otherwise cost a
search of ``sys.path`` on every span.
"""

from __future__ import annotations

from typing import Any, Final

_UNSET: Final = object()
_api: Any = _UNSET  # the cached result; tests put _UNSET back to import again


def otel_api() -> tuple[Any, Any] | None:
    """``(opentelemetry.trace, opentelemetry.context)`` when ``opentelemetry-api`` is installed.

    Returns:
        The two modules, or None when the package cannot be imported.
    """
    global _api  # a process-wide cache of one import attempt
    if _api is _UNSET:
        try:
            # Submodules imported by name: mypy finds no ``context`` / ``trace``
            # attribute on the namespace package ``opentelemetry`` where it is installed.
            import opentelemetry.context as context
            import opentelemetry.trace as trace
        except ImportError:
            _api = None
        else:
            _api = (trace, context)
    result: tuple[Any, Any] | None = _api
    return result
