"""Idempotent stage execution: run a stage once per idempotency key, replay it after.

:class:`IdempotencyInterceptor` reads an idempotency key from the pipeline
data (``ctx.data["idempotency_key"]`` by default). The first call of a stage
with a key runs the stage and caches its completed result in an
:class:`IdempotencyStore`; later calls of that stage with that key are
short-circuited with the cached data.

Scoping and concurrency (fixes of the reference, see docs/interceptors.md):

- Results are cached per ``(key, stage)``, so the stages of one run do not
  replay each other's results (the reference used one pipeline-wide slot).
- Duplicate calls that arrive while the first one is running wait for it
  (an in-flight :class:`trio.Event` per ``(key, stage)``), then replay its
  result: the stage runs once. When the first call fails, one of the waiters
  runs the stage instead.
"""

from __future__ import annotations

from ._idempotency import CachedStageResult as CachedStageResult
from ._idempotency import IdempotencyError as IdempotencyError
from ._idempotency import IdempotencyInterceptor as IdempotencyInterceptor
from ._idempotency import IdempotencyParamMismatch as IdempotencyParamMismatch
from ._idempotency import IdempotencyStore as IdempotencyStore
from ._idempotency import InMemoryIdempotencyStore as InMemoryIdempotencyStore

__all__ = [
    "CachedStageResult",
    "IdempotencyError",
    "IdempotencyInterceptor",
    "IdempotencyParamMismatch",
    "IdempotencyStore",
    "InMemoryIdempotencyStore",
]
