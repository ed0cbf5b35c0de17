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

The in-flight claim is released in ``after``, and in ``on_abort`` when the
call is cancelled or aborted (see ``stageflow_trio._engine._stage_call``),
so a cancelled call never leaves its key blocked.
"""

# Hooks implement a fixed interface, so unused hook arguments are expected.
# ruff: noqa: ARG002

from __future__ import annotations

import copy
import hashlib
import json
import logging
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import trio

from stageflow_trio._time import monotonic
from stageflow_trio.pipeline.interceptors import (
    BaseInterceptor,
    CriticalInterceptorError,
    ErrorAction,
    InterceptorResult,
)
from stageflow_trio.stages.result import StageResult

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from stageflow_trio.stages.context import PipelineContext

__all__ = [
    "CachedStageResult",
    "IdempotencyError",
    "IdempotencyInterceptor",
    "IdempotencyParamMismatch",
    "IdempotencyStore",
    "InMemoryIdempotencyStore",
]

logger = logging.getLogger("stageflow_trio.idempotency")


class IdempotencyError(CriticalInterceptorError):
    """An idempotency check failed; aborts the stage (a critical interceptor error)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, interceptor_name="idempotency")


class IdempotencyParamMismatch(IdempotencyError):
    """A request reused an idempotency key with different parameters.

    The message is ``"Idempotency key '{key}' parameter mismatch:
    expected={expected}, actual={actual}"`` (the two parameter hashes).
    """

    def __init__(self, key: str, *, expected: str | None, actual: str | None) -> None:
        super().__init__(
            f"Idempotency key '{key}' parameter mismatch: expected={expected}, actual={actual}"
        )
        self.key = key
        self.expected = expected
        self.actual = actual


@attrs.frozen
class CachedStageResult:
    """A cached StageResult with the hash of the parameters that produced it.

    Args:
        result: The cached result.
        params_hash: sha256 of the request parameters, or None.
        expires_at: When the entry expires, on the engine clock
            (:func:`stageflow_trio._time.monotonic`), or None for never.
    """

    result: StageResult
    params_hash: str | None = None
    expires_at: float | None = None


class IdempotencyStore(Protocol):
    """Where cached results live. Every method is a checkpoint."""

    async def get(self, key: str) -> CachedStageResult | None:
        """The live entry for ``key``, or None."""
        ...

    async def set(
        self, key: str, entry: CachedStageResult, *, ttl_seconds: int | None = None
    ) -> None:
        """Store ``entry`` under ``key``, expiring after ``ttl_seconds`` (None or 0: never)."""
        ...

    async def delete(self, key: str) -> None:
        """Forget ``key`` (no error when absent)."""
        ...


def _clone(result: StageResult) -> StageResult:
    # A deep copy: the caller may mutate nested values of what it gets back.
    return attrs.evolve(result, data=copy.deepcopy(dict(result.data)))


class InMemoryIdempotencyStore:
    """An in-process :class:`IdempotencyStore`.

    Entries are deep-copied in and out, and expire on the engine clock, so
    ``trio.testing.MockClock`` drives the TTL in tests. Task-safe under trio
    (no method holds state across a checkpoint).
    """

    def __init__(self) -> None:
        self._entries: dict[str, CachedStageResult] = {}

    async def get(self, key: str) -> CachedStageResult | None:
        """The live entry for ``key`` (a deep copy), or None. A checkpoint."""
        await trio.lowlevel.checkpoint()
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at is not None and entry.expires_at <= monotonic():
            del self._entries[key]
            return None
        return attrs.evolve(entry, result=_clone(entry.result))

    async def set(
        self, key: str, entry: CachedStageResult, *, ttl_seconds: int | None = None
    ) -> None:
        """Store a deep copy of ``entry``; ``ttl_seconds`` (if truthy) sets its expiry. A checkpoint."""
        await trio.lowlevel.checkpoint()
        expires_at = monotonic() + ttl_seconds if ttl_seconds else None
        self._entries[key] = CachedStageResult(
            result=_clone(entry.result), params_hash=entry.params_hash, expires_at=expires_at
        )

    async def delete(self, key: str) -> None:
        """Forget ``key``. A checkpoint."""
        await trio.lowlevel.checkpoint()
        self._entries.pop(key, None)


@attrs.define
class _Claim:
    """The in-flight claim of the call that runs a stage for one key."""

    key: str
    store_key: str
    params_hash: str | None
    done: trio.Event = attrs.field(factory=trio.Event)


class IdempotencyInterceptor(BaseInterceptor):
    """Runs each stage at most once per idempotency key; duplicates replay the result.

    Priority 4: outside the timeout and the circuit breaker. Without a key
    (``key_extractor`` returns a falsy value) it does nothing.

    Args:
        store: Where results are cached; a fresh :class:`InMemoryIdempotencyStore` by default.
        key_extractor: ``ctx -> key | None``; default ``str(ctx.data["idempotency_key"])``
            when set and truthy.
        params_extractor: ``ctx -> dict``; default ``ctx.data["idempotency_params"]``
            when it is a dict. Its sha256 (of the sorted JSON) is cached with the result.
        ttl_seconds: Lifetime of cached results (None or 0: no expiry).
        validate_params: Raise :class:`IdempotencyParamMismatch` when a replayed
            result was cached with a different parameter hash.

    Only "completed" results without an error, produced by the call that ran
    the stage, are cached. The store key is ``json.dumps([stage, key])``.
    """

    name = "idempotency"
    priority = 4

    def __init__(
        self,
        *,
        store: IdempotencyStore | None = None,
        key_extractor: Callable[[PipelineContext], str | None] | None = None,
        params_extractor: Callable[[PipelineContext], dict[str, Any]] | None = None,
        ttl_seconds: int | None = 24 * 60 * 60,
        validate_params: bool = True,
    ) -> None:
        self._store: IdempotencyStore = store if store is not None else InMemoryIdempotencyStore()
        self._key_extractor = key_extractor or self._default_key_extractor
        self._params_extractor = params_extractor or self._default_params_extractor
        self._ttl_seconds = ttl_seconds
        self._validate_params = validate_params
        # (key, stage) -> the claim of the call running that stage for that key.
        self._in_flight: dict[tuple[str, str], _Claim] = {}
        # (id(ctx), stage) -> the claim this call owns; ctx is alive while the call runs.
        self._owned: dict[tuple[int, str], _Claim] = {}

    @property
    def store(self) -> IdempotencyStore:
        """The store results are cached in."""
        return self._store

    def in_flight(self, key: str, stage_name: str) -> bool:
        """Whether a call of ``stage_name`` for ``key`` is running now."""
        return (key, stage_name) in self._in_flight

    async def before(self, stage_name: str, ctx: PipelineContext) -> InterceptorResult | None:
        """Replay a cached result, wait for a running duplicate, or claim the key.

        A checkpoint when there is a key. Raises IdempotencyParamMismatch
        (critical) on a parameter mismatch.
        """
        key = self._key_extractor(ctx)
        if not key:
            return None
        store_key = json.dumps([stage_name, key])
        params_hash = self._hash_params(self._params_extractor(ctx))
        flight = (key, stage_name)
        while True:
            cached = await self._store.get(store_key)
            if cached is not None:
                return self._replay(stage_name, key, cached, params_hash)
            running = self._in_flight.get(flight)
            if running is None:
                break
            await running.done.wait()
        # No checkpoint since the in-flight check: claiming here is race-free.
        claim = _Claim(key=key, store_key=store_key, params_hash=params_hash)
        self._in_flight[flight] = claim
        try:
            # The previous owner may have cached its result between our read and its release.
            cached = await self._store.get(store_key)
        except BaseException:
            self._release(flight, claim)
            raise
        if cached is not None:
            self._release(flight, claim)
            return self._replay(stage_name, key, cached, params_hash)
        self._owned[(id(ctx), stage_name)] = claim
        return None

    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        """Cache the owner's completed result, then release its claim. A checkpoint when caching."""
        claim = self._owned.pop((id(ctx), stage_name), None)
        if claim is None:
            return
        try:
            if result.status == "completed" and result.error is None:
                entry = CachedStageResult(result=_clone(result), params_hash=claim.params_hash)
                await self._store.set(claim.store_key, entry, ttl_seconds=self._ttl_seconds)
                logger.info(
                    "Stored idempotent result",
                    extra={
                        "stage": stage_name,
                        "idempotency_key": claim.key,
                        "params_hash": claim.params_hash,
                    },
                )
        finally:
            self._release((claim.key, stage_name), claim)

    async def on_error(
        self, stage_name: str, error: Exception, ctx: PipelineContext
    ) -> ErrorAction:
        """FAIL; the claim stays held until ``after`` (a later retry may still run the stage)."""
        return ErrorAction.FAIL

    async def on_abort(self, stage_name: str, ctx: PipelineContext) -> None:
        """Release the claim of a cancelled or aborted call, caching nothing."""
        claim = self._owned.pop((id(ctx), stage_name), None)
        if claim is not None:
            self._release((claim.key, stage_name), claim)

    def _release(self, flight: tuple[str, str], claim: _Claim) -> None:
        if self._in_flight.get(flight) is claim:
            del self._in_flight[flight]
        claim.done.set()

    def _replay(
        self, stage_name: str, key: str, cached: CachedStageResult, params_hash: str | None
    ) -> InterceptorResult:
        if (
            self._validate_params
            and cached.params_hash
            and params_hash
            and cached.params_hash != params_hash
        ):
            raise IdempotencyParamMismatch(key, expected=cached.params_hash, actual=params_hash)
        logger.info("Idempotency hit", extra={"stage": stage_name, "idempotency_key": key})
        return InterceptorResult(stage_ran=False, result=dict(cached.result.data))

    @staticmethod
    def _default_key_extractor(ctx: PipelineContext) -> str | None:
        key = ctx.data.get("idempotency_key")
        return str(key) if key else None

    @staticmethod
    def _default_params_extractor(ctx: PipelineContext) -> dict[str, Any]:
        params = ctx.data.get("idempotency_params", {})
        return params if isinstance(params, dict) else {}

    @staticmethod
    def _hash_params(params: Mapping[str, Any] | None) -> str | None:
        if not params:
            return None
        try:
            payload = json.dumps(params, sort_keys=True, default=str)
        except TypeError:
            payload = repr(params)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()
