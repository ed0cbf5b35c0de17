"""Idempotent stage execution: run a stage once per idempotency key, replay it after.

:class:`IdempotencyInterceptor` reads an idempotency key from the pipeline
data (``ctx.data["idempotency_key"]`` by default). The first call of a stage
with a key runs the stage and caches its completed result in an
:class:`IdempotencyStore`; later calls of that stage with that key are
short-circuited with the cached data.

Scoping and concurrency (fixes of the reference, see docs/interceptors.md):

- Results are cached per ``(key, stage)``, so the stages of one run do not
  replay each other's results (the reference used one pipeline-wide slot). A
  stage that the engine runs again within one run (a guard retry) is a new
  attempt with a key of its own (:data:`STAGE_ATTEMPT_KEY`).
- The store holds the in-flight claims too (:meth:`IdempotencyStore.claim`),
  so every interceptor sharing a store sees them: a duplicate call that
  arrives while the first one runs waits for it, then replays its result.
  When the first call fails or is cancelled, one of the waiters runs the
  stage instead.
- Only a result the stage itself produced is cached: not a failure, not a
  replay, not another interceptor's short-circuit.
- A call nested in one that holds its claim (a stage that runs its own
  pipeline again inline, or from a task it started, with the same key) would
  wait for itself for ever: it raises :class:`IdempotencyReentryError` instead.

A claim is released synchronously (no checkpoint), in ``after`` whatever
caching did, and in ``on_abort`` when the call is cancelled or aborted, so a
cancelled call never leaves its key blocked, even when the abort hooks run out
of time. The three hooks are protected from Ctrl-C
(``trio.lowlevel.enable_ki_protection``): trio raises a KeyboardInterrupt that
comes while they run in the main task, at its next checkpoint, never
between the store granting a claim and the hook that will release it taking it
in hand, so a Ctrl-C never leaves a claim behind either.
"""

# Hooks implement a fixed interface, so unused hook arguments are expected.
# ruff: noqa: ARG002

from __future__ import annotations

import copy
import hashlib
import json
import logging
import uuid
import weakref
from collections import OrderedDict
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol, cast, overload

import attrs
import trio

from stageflow_trio._args import check_callable, check_flag, check_seconds, type_of
from stageflow_trio._engine._interceptors import call_key
from stageflow_trio._engine._stage_call import (
    ABORT_HOOK_TIMEOUT,
    completed_before_abort,
    stage_result_replayable,
)
from stageflow_trio._engine._stage_call import STAGE_ATTEMPT_KEY as STAGE_ATTEMPT_KEY
from stageflow_trio._frozen import frozen_compat
from stageflow_trio._time import RunClock
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
    "DEFAULT_MAX_ENTRIES",
    "STAGE_ATTEMPT_KEY",
    "CachedStageResult",
    "IdempotencyClaim",
    "IdempotencyError",
    "IdempotencyInterceptor",
    "IdempotencyParamMismatch",
    "IdempotencyReentryError",
    "IdempotencyStore",
    "InMemoryIdempotencyStore",
]

logger: logging.Logger = logging.getLogger("stageflow_trio.idempotency")

DEFAULT_MAX_ENTRIES = 10_000
"""How many results an :class:`InMemoryIdempotencyStore` holds by default."""

# STAGE_ATTEMPT_KEY (public here, defined in the engine that sets it): the ``ctx.data``
# key of a stage's attempt number within one run. The interceptor makes it part of the
# store key, so a guard-retry re-run is a new attempt instead of a replay of the attempt
# the guard just rejected.


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

    def __reduce__(self) -> tuple[Any, ...]:
        # The constructor's hashes are keyword-only; pickle calls with positions.
        return (_param_mismatch, (type(self), self.key, self.expected, self.actual), self.__dict__)


def _param_mismatch(
    cls: type[IdempotencyParamMismatch], key: str, expected: str | None, actual: str | None
) -> IdempotencyParamMismatch:
    """Unpickle an :class:`IdempotencyParamMismatch` (its hashes are keyword-only)."""
    return cls(key, expected=expected, actual=actual)


class IdempotencyReentryError(IdempotencyError, RuntimeError):
    """A call needs the claim that a call it is nested in holds; it would wait for itself.

    Raised (critical: the stage does not run) instead of waiting, when a stage
    runs its own pipeline again with the same idempotency key, from its own
    task or from a task it started: the inner call would wait for the outer
    call to finish, which waits for the inner one. The message names the
    stage and the key.
    """

    def __init__(self, stage_name: str, key: str) -> None:
        super().__init__(
            f"stage {stage_name!r} with idempotency key {key!r} cannot run: the claim is held"
            " by a call this one is nested in; re-running a stage from inside itself with the"
            " same idempotency key would wait for itself"
        )
        self.stage_name = stage_name
        self.key = key

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.stage_name, self.key), self.__dict__)


@frozen_compat
@attrs.frozen
class CachedStageResult:
    """A cached StageResult with the hash of the parameters that produced it.

    Args:
        result: The cached result.
        params_hash: sha256 of the request parameters, or None.
        expires_at: When the entry expires, or None for never: seconds on the
            store's clock (:class:`InMemoryIdempotencyStore`: the trio clock of
            the run it was made or first used in; the shared stores: epoch seconds).
    """

    result: StageResult
    params_hash: str | None = None
    expires_at: float | None = None


def _new_token() -> str:
    return uuid.uuid4().hex


def _token_repr(token: str) -> str:
    # The token lets whoever has it release the claim, and reprs end up in logs: only
    # a prefix, enough to tell grants apart, and none of a token too short to spare one.
    return f"'{token[:4]}...'" if len(token) >= 16 else "'...'"


@frozen_compat
@attrs.frozen
class IdempotencyClaim:
    """The right to run the stage behind one store key, granted by :meth:`IdempotencyStore.claim`.

    Args:
        key: The store key claimed.
        token: Unique to this grant, so a store shared between processes can
            tell the current holder's release from a stale one (a release
            after the claim expired and was granted again). The repr shows
            only its first 4 characters (none of a token under 16).
    """

    key: str
    token: str = attrs.field(factory=_new_token, repr=_token_repr)


class IdempotencyStore(Protocol):
    """Where cached results and in-flight claims live. Every async method is a checkpoint.

    Results: ``get``, ``set`` and ``delete`` (the reference's three methods).
    Claims: ``claim`` and ``release``, which make "one call runs the stage,
    duplicates wait for its result" hold for every interceptor that shares the
    store (two chains, two workers). A claim is not a result: ``get`` never
    returns one and ``delete`` does not release one.

    Cancellation. A caller cancelled inside ``claim`` holds nothing. A holder
    releases its claim however its call ends; for a cancelled holder that is a
    cleanup path that must not wait, hence a synchronous ``release``. A store
    shared between processes should also give its claims a lease (set on the
    store), since a process can die holding one; the in-memory store needs
    none, its claims die with the process. Ctrl-C: the interceptor's hooks, and
    so the ``claim`` and ``release`` they call, run protected from it
    (``trio.lowlevel.enable_ki_protection``), so a KeyboardInterrupt never lands
    between a grant and the hook that releases it; a store called directly
    protects its own code (the SQLite and Redis stores do).

    Stores written for the reference (only ``get``/``set``/``delete``, or just
    ``get``/``set``: the interceptor never deletes) still work with
    :class:`IdempotencyInterceptor`: it keeps their claims in the process,
    shared by every interceptor using the same store object.
    """

    async def get(self, key: str) -> CachedStageResult | None:
        """The live entry for ``key``, or None. A checkpoint."""
        ...

    async def set(
        self, key: str, entry: CachedStageResult, *, ttl_seconds: float | None = None
    ) -> None:
        """Store ``entry`` under ``key``, expiring after ``ttl_seconds`` (None or 0: never).

        ``ttl_seconds`` is the interceptor's, as given: an int or a float.
        A checkpoint.
        """
        ...

    async def delete(self, key: str) -> None:
        """Forget the entry of ``key`` (no error when absent). A checkpoint."""
        ...

    async def claim(self, key: str) -> IdempotencyClaim | CachedStageResult:
        """Claim ``key`` if it is free, else wait for the holder's result or its release.

        Atomically: if a live entry is cached under ``key``, return it; else if
        no claim on ``key`` is held, grant one and return it; else wait until
        the holder releases its claim (or its lease expires) and start over.
        So after a holder that cached its result releases, its waiters get the
        result; after one that did not, one waiter gets the claim.

        A checkpoint, also when it returns at once. Cancelled while waiting,
        it raises ``trio.Cancelled`` and no claim is held.

        Returns:
            The cached entry, or a claim the caller now holds and must pass to
            :meth:`release` exactly once, however its call ends.
        """
        ...

    def release(self, claim: IdempotencyClaim) -> None:
        """Give up ``claim`` and wake the callers waiting for its key.

        Synchronous: never blocks, never checkpoints, so a cancelled call can
        always release (a store that needs I/O to release hands it to a task
        of its own and relies on its lease if that fails). A claim that is no
        longer held (released already, or expired and granted again) is
        ignored. Does not raise.
        """
        ...


class _ResultStore(Protocol):
    """What :class:`IdempotencyInterceptor` needs of its ``store``: ``get`` and ``set``.

    Every :class:`IdempotencyStore` is one; a store written for the reference
    (without ``claim`` / ``release``, with or without ``delete``, which the
    interceptor never calls) is one too, and the interceptor then keeps
    its claims in the process. ``set`` is declared as the reference declares it,
    ``ttl_seconds: int | None``, so that such a store still type-checks; the
    interceptor's overloads give it only an int ``ttl_seconds``.
    """

    async def get(self, key: str) -> CachedStageResult | None: ...

    async def set(
        self, key: str, entry: CachedStageResult, *, ttl_seconds: int | None = None
    ) -> None: ...


class _SecondsResultStore(Protocol):
    """A :class:`_ResultStore` whose ``set`` takes any number of seconds, as the package's do."""

    async def get(self, key: str) -> CachedStageResult | None: ...

    async def set(
        self, key: str, entry: CachedStageResult, *, ttl_seconds: float | None = None
    ) -> None: ...


def _clone(result: StageResult) -> StageResult:
    # A deep copy: the caller may mutate nested values of what it gets back.
    return attrs.evolve(result, data=copy.deepcopy(dict(result.data)))


class _Held:
    """One held claim and the Event its waiters wait on."""

    __slots__ = ("claim", "released")

    def __init__(self, claim: IdempotencyClaim) -> None:
        self.claim = claim
        self.released = trio.Event()


class _ClaimTable:
    """In-process claims: store key -> the held claim. No method checkpoints."""

    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held: dict[str, _Held] = {}

    def holder(self, key: str) -> _Held | None:
        return self._held.get(key)

    def grant(self, key: str) -> IdempotencyClaim:
        claim = IdempotencyClaim(key)
        self._held[key] = _Held(claim)
        return claim

    def release(self, claim: IdempotencyClaim) -> None:
        held = self._held.get(claim.key)
        if held is not None and held.claim.token == claim.token:
            del self._held[claim.key]
            held.released.set()

    def __contains__(self, key: object) -> bool:
        return key in self._held


def _check_key(owner: str, key: object) -> str:
    """Return ``key`` if it is a str; else TypeError naming ``key`` (every store's rule)."""
    if not isinstance(key, str):
        raise TypeError(f"{owner}: key must be a str; got {type_of(key)}")
    return key


def _check_entry(owner: str, entry: object) -> CachedStageResult:
    """Return ``entry`` if it is a CachedStageResult; else TypeError naming ``entry``."""
    if not isinstance(entry, CachedStageResult):
        raise TypeError(f"{owner}: entry must be a CachedStageResult; got {type_of(entry)}")
    return entry


def _check_ttl(owner: str, ttl_seconds: object) -> float | None:
    """Return ``ttl_seconds`` if it is an int, a float or None (not a bool); else TypeError."""
    if ttl_seconds is None or (
        isinstance(ttl_seconds, int | float) and not isinstance(ttl_seconds, bool)
    ):
        return ttl_seconds
    raise TypeError(f"{owner}: ttl_seconds must be a number or None; got {type_of(ttl_seconds)}")


def _check_claim(owner: str, claim: object) -> IdempotencyClaim:
    """Return ``claim`` if it is an IdempotencyClaim; else TypeError naming ``claim``."""
    if not isinstance(claim, IdempotencyClaim):
        raise TypeError(f"{owner}: claim must be an IdempotencyClaim; got {type_of(claim)}")
    return claim


class InMemoryIdempotencyStore:
    """An in-process :class:`IdempotencyStore`, bounded in time and size.

    Entries are deep-copied in and out and expire on one trio clock for the
    store's life: that of the run it is made in, or (made outside a run) of the
    first run it is used in. So ``trio.testing.MockClock`` drives the TTL in
    tests, and a store used in several ``trio.run`` calls (each has its own
    clock, with a random origin) keeps its times to live. Expired entries are
    removed as the store is written to: every ``set`` drops the expired
    entries at the oldest end (with one TTL, the interceptor's, that is all of
    them), and a full pass every so many writes catches the others, so the
    cost stays constant per write. A store nobody writes to keeps its entries
    until :meth:`purge_expired` is called. When a write takes the store over
    ``max_entries``, the oldest entries (least recently written) are evicted,
    expired or not; a duplicate of an evicted request runs its stage again,
    so size the cap for the number of keys written per TTL.

    Task-safe under trio: no method holds state across a checkpoint.

    Args:
        max_entries: The most results held (claims do not count); default
            :data:`DEFAULT_MAX_ENTRIES`.

    Raises:
        TypeError: ``max_entries`` is not an int.
        ValueError: ``max_entries`` is below 1.
    """

    # A full expiry pass runs after max(len(store), this) writes: amortized O(1).
    _FULL_SWEEP_MIN_WRITES = 64

    def __init__(self, *, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int):
            raise TypeError(f"max_entries must be an int, got {type(max_entries).__name__}")
        if max_entries < 1:
            raise ValueError(f"max_entries must be >= 1, got {max_entries}")
        self._max_entries = max_entries
        # Oldest write first: a write moves its key to the end.
        self._entries: OrderedDict[str, CachedStageResult] = OrderedDict()
        self._claims = _ClaimTable()
        self._writes_since_sweep = 0
        self._warned_full = False
        self._clock = RunClock()

    @property
    def max_entries(self) -> int:
        """The most results held."""
        return self._max_entries

    def __len__(self) -> int:
        """How many results are held (expired ones not removed yet included)."""
        return len(self._entries)

    def is_claimed(self, key: str) -> bool:
        """Whether a claim on ``key`` is held now."""
        return key in self._claims

    async def get(self, key: str) -> CachedStageResult | None:
        """The live entry for ``key`` (a deep copy), or None. A checkpoint.

        Raises:
            TypeError: ``key`` is not a str.
        """
        _check_key("InMemoryIdempotencyStore.get", key)
        await trio.lowlevel.checkpoint()
        entry = self._live(key, self._clock())
        return None if entry is None else _copy_entry(entry)

    async def set(
        self, key: str, entry: CachedStageResult, *, ttl_seconds: float | None = None
    ) -> None:
        """Store a deep copy of ``entry``; ``ttl_seconds`` (if truthy) sets its expiry.

        A checkpoint (taken first: a cancelled call stores nothing). Then
        removes expired entries and evicts the oldest over ``max_entries``.
        ``ttl_seconds`` is read as the reference reads it: 0 and None never
        expire, nor do infinity and NaN (``stored_at + ttl <= now`` never holds),
        and a negative one has expired already.

        Raises:
            TypeError: ``key`` is not a str, ``entry`` not a CachedStageResult,
                or ``ttl_seconds`` neither a number nor None.
        """
        owner = "InMemoryIdempotencyStore.set"
        _check_key(owner, key)
        _check_entry(owner, entry)
        _check_ttl(owner, ttl_seconds)
        await trio.lowlevel.checkpoint()
        now = self._clock()
        entries = self._entries
        entries.pop(key, None)
        entries[key] = CachedStageResult(
            result=_clone(entry.result),
            params_hash=entry.params_hash,
            expires_at=now + ttl_seconds if ttl_seconds else None,
        )
        self._after_write(now)

    async def delete(self, key: str) -> None:
        """Forget the entry of ``key``. A checkpoint.

        Raises:
            TypeError: ``key`` is not a str.
        """
        _check_key("InMemoryIdempotencyStore.delete", key)
        await trio.lowlevel.checkpoint()
        self._entries.pop(key, None)

    async def claim(self, key: str) -> IdempotencyClaim | CachedStageResult:
        """See :meth:`IdempotencyStore.claim`. A checkpoint; the entry returned is a deep copy.

        Raises:
            TypeError: ``key`` is not a str.
        """
        _check_key("InMemoryIdempotencyStore.claim", key)
        await trio.lowlevel.checkpoint()
        while True:
            # No checkpoint between this look-up and the grant: claiming is atomic.
            entry = self._live(key, self._clock())
            if entry is not None:
                return _copy_entry(entry)
            held = self._claims.holder(key)
            if held is None:
                return self._claims.grant(key)
            await held.released.wait()

    def release(self, claim: IdempotencyClaim) -> None:
        """See :meth:`IdempotencyStore.release`.

        Raises:
            TypeError: ``claim`` is not an IdempotencyClaim.
        """
        self._claims.release(_check_claim("InMemoryIdempotencyStore.release", claim))

    def purge_expired(self) -> int:
        """Remove every expired entry now; returns how many were removed. Not a checkpoint."""
        self._writes_since_sweep = 0
        now = self._clock()
        entries = self._entries
        expired = [
            key
            for key, entry in entries.items()
            if entry.expires_at is not None and entry.expires_at <= now
        ]
        for key in expired:
            del entries[key]
        return len(expired)

    def _live(self, key: str, now: float) -> CachedStageResult | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at is not None and entry.expires_at <= now:
            del self._entries[key]
            return None
        return entry

    def _after_write(self, now: float) -> None:
        entries = self._entries
        # The oldest end: O(1) per write when every entry has the same TTL.
        while entries:
            key, entry = next(iter(entries.items()))
            # Expired exactly when _live says so (a NaN expiry never is).
            if entry.expires_at is None or not entry.expires_at <= now:
                break
            del entries[key]
        # Mixed TTLs can hide an expired entry behind a live, older one.
        self._writes_since_sweep += 1
        if self._writes_since_sweep >= max(len(entries), self._FULL_SWEEP_MIN_WRITES):
            self.purge_expired()
        if len(entries) > self._max_entries:
            if not self._warned_full:
                self._warned_full = True
                logger.warning(
                    "InMemoryIdempotencyStore is full (max_entries=%d): evicting the oldest"
                    " results; duplicates of evicted requests will run their stages again",
                    self._max_entries,
                )
            while len(entries) > self._max_entries:
                entries.popitem(last=False)


def _copy_entry(entry: CachedStageResult) -> CachedStageResult:
    return attrs.evolve(entry, result=_clone(entry.result))


class _Claims(Protocol):
    async def claim(self, key: str) -> IdempotencyClaim | CachedStageResult: ...

    def release(self, claim: IdempotencyClaim) -> None: ...


# Claims of stores that only cache (the reference's three methods), per store object.
_LOCAL_CLAIMS: weakref.WeakKeyDictionary[Any, _ClaimTable] = weakref.WeakKeyDictionary()


class _LocalClaims:
    """Claims kept in this process for a store without ``claim``/``release``."""

    __slots__ = ("_store", "_table")

    def __init__(self, store: Any) -> None:
        self._store = store
        try:
            table = _LOCAL_CLAIMS.get(store)
            if table is None:
                table = _LOCAL_CLAIMS[store] = _ClaimTable()
        except TypeError:
            # Not weak-referenceable or not hashable: claims private to this interceptor.
            table = _ClaimTable()
        self._table = table

    async def claim(self, key: str) -> IdempotencyClaim | CachedStageResult:
        store, table = self._store, self._table
        while True:
            cached: CachedStageResult | None = await store.get(key)
            if cached is not None:
                return cached
            held = table.holder(key)
            if held is None:
                break
            await held.released.wait()
        # No checkpoint since the holder check: the grant is race-free.
        claim = table.grant(key)
        try:
            # The previous holder may have cached its result between our read and its release.
            cached = await store.get(key)
        except BaseException:
            table.release(claim)
            raise
        if cached is not None:
            table.release(claim)
            return cached
        return claim

    def release(self, claim: IdempotencyClaim) -> None:
        self._table.release(claim)


class _HeldClaim:
    """A claim held by a running call, as the calls nested in it see it (:data:`_nested_claims`).

    ``live`` turns False when the call releases it: a task the call started may
    outlive the call, with a copy of the context that still lists it.
    """

    __slots__ = ("key", "live", "scope")

    def __init__(self, scope: object, key: str) -> None:
        self.scope = scope  # who granted it: IdempotencyInterceptor._claim_scope
        self.key = key
        self.live = True


# The claims held by the calls the current task is nested in: extended in ``before``
# when a call is granted its claim, restored in ``after`` / ``on_abort``. A task
# inherits its spawner's context, so a task started by a stage sees the claims of
# the calls the stage runs in, and an unrelated request's task does not.
_nested_claims: ContextVar[tuple[_HeldClaim, ...]] = ContextVar(
    "stageflow_trio_idempotency_nested_claims", default=()
)


def _nested_in_holder(held: tuple[_HeldClaim, ...], scope: object, store_key: str) -> bool:
    """Whether one of ``held`` is a live claim on ``store_key`` granted by ``scope``."""
    return any(mark.live and mark.key == store_key and mark.scope is scope for mark in held)


@frozen_compat
@attrs.frozen
class _Owned:
    """What a call that holds a claim needs in ``after``."""

    claim: IdempotencyClaim
    key: str
    params_hash: str | None
    held: _HeldClaim
    # The value of _nested_claims before this call's claim was added to it.
    outer: tuple[_HeldClaim, ...]


class IdempotencyInterceptor(BaseInterceptor):
    """Runs each stage at most once per idempotency key; duplicates replay the result.

    Priority 4: outside the timeout and the circuit breaker. Without a key
    (``key_extractor`` returns a falsy value) it does nothing.

    Args:
        store: Where results and claims live (an :class:`IdempotencyStore`, or a
            store written for the reference, with ``get`` and ``set`` (its
            ``delete`` is never called), whose claims are then kept in the
            process); a fresh
            :class:`InMemoryIdempotencyStore` by default. Share one store
            between interceptors (chains, graphs) that must not run a stage
            twice for one key.
        key_extractor: ``ctx -> key``, any value (falsy: no key; else used as
            ``str(key)``); default ``str(ctx.data["idempotency_key"])``
            when set and truthy.
        params_extractor: ``ctx -> dict``; default ``ctx.data["idempotency_params"]``
            when it is a dict. Its sha256 (of the sorted JSON) is cached with the result.
        ttl_seconds: Lifetime of cached results in seconds, a number >= 0 (None
            or 0: no expiry), passed to the store's ``set`` as given. Type
            checkers want an int with a store whose ``set`` declares an int
            ``ttl_seconds`` (as the reference's does).
        validate_params: Raise :class:`IdempotencyParamMismatch` when a replayed
            result was cached with a different parameter hash.

    Only "completed" results without an error that the stage itself produced,
    in the call that held the claim, are cached. The store key is
    ``json.dumps([stage, key])``, or ``json.dumps([stage, key, attempt])``
    for a re-run of the stage within one pipeline run (see
    :data:`STAGE_ATTEMPT_KEY`).

    One interceptor serves concurrent calls, also of one stage on one context
    (each from its own task, as the chain runs a call's hooks in its task):
    each call caches its own result and releases its own claim.

    Raises:
        TypeError: ``store`` is a class, or lacks a callable ``get`` or ``set``;
            ``key_extractor`` or ``params_extractor`` is neither
            None nor callable; ``ttl_seconds`` is neither None nor a number;
            ``validate_params`` is not a bool.
        ValueError: ``ttl_seconds`` is negative or NaN.
    """

    name = "idempotency"
    priority = 4

    # Two signatures, so that both type-check: a float ttl_seconds (the package's stores
    # take any number of seconds, as they always did at run time), and a store written
    # for the reference, whose set declares ttl_seconds: int | None, with an int one.
    @overload
    def __init__(
        self,
        *,
        store: IdempotencyStore | _SecondsResultStore | None = None,
        key_extractor: Callable[[PipelineContext], object] | None = None,
        params_extractor: Callable[[PipelineContext], dict[str, Any]] | None = None,
        ttl_seconds: float | None = 24 * 60 * 60,
        validate_params: bool = True,
    ) -> None: ...

    @overload
    def __init__(
        self,
        *,
        store: _ResultStore | None = None,
        key_extractor: Callable[[PipelineContext], object] | None = None,
        params_extractor: Callable[[PipelineContext], dict[str, Any]] | None = None,
        ttl_seconds: int | None = 24 * 60 * 60,
        validate_params: bool = True,
    ) -> None: ...

    def __init__(
        self,
        *,
        store: IdempotencyStore | _SecondsResultStore | _ResultStore | None = None,
        key_extractor: Callable[[PipelineContext], object] | None = None,
        params_extractor: Callable[[PipelineContext], dict[str, Any]] | None = None,
        ttl_seconds: float | None = 24 * 60 * 60,
        validate_params: bool = True,
    ) -> None:
        # Checked here, not at the first call: the hooks' errors are logged and swallowed,
        # so a bad option would let every duplicate through (the stage runs each time).
        if store is None:
            store = InMemoryIdempotencyStore()
        else:
            _check_store(store)
        check_callable(_OWNER, "key_extractor", key_extractor, optional=True)
        check_callable(_OWNER, "params_extractor", params_extractor, optional=True)
        if ttl_seconds is not None:
            check_seconds(_OWNER, "ttl_seconds", ttl_seconds)
        check_flag(_OWNER, "validate_params", validate_params)
        # Typed as taking any number of seconds: the overloads give an int ttl_seconds to a
        # store whose set declares only an int.
        self._store = cast("_SecondsResultStore", store)
        claims: _Claims = (
            cast("_Claims", store)
            if callable(getattr(store, "claim", None)) and callable(getattr(store, "release", None))
            else _LocalClaims(store)
        )
        self._claims = claims
        # Who grants this interceptor's claims: the same object for every interceptor
        # whose claims exclude each other's (those sharing a store), so a nested call
        # is refused only when it would really wait for its outer call.
        self._claim_scope: object = claims._table if isinstance(claims, _LocalClaims) else store
        self._key_extractor = key_extractor or self._default_key_extractor
        self._params_extractor = params_extractor or self._default_params_extractor
        self._ttl_seconds = ttl_seconds
        self._validate_params = validate_params
        # (id(ctx), stage, task) -> the claim this call holds; ctx is alive while the
        # call runs. The task is part of the key: all hooks of one call run in its task,
        # so two concurrent calls of a stage on one context (keys from a custom
        # extractor, or data changed between them) each release their own claim.
        self._owned: dict[tuple[int, str, trio.lowlevel.Task], _Owned] = {}

    @property
    def store(self) -> IdempotencyStore | _ResultStore:
        """The store results are cached in (as passed: a reference-style one may lack ``claim``)."""
        return self._store

    def in_flight(self, key: str, stage_name: str) -> bool:
        """Whether a call through this interceptor holds the claim of ``stage_name`` for ``key``."""
        key = key if type(key) is str else str(key)
        return any(
            stage == stage_name and owned.key == key for (_, stage, _), owned in self._owned.items()
        )

    # Protected from Ctrl-C (a code-object mark, no cost per call), as after and on_abort:
    # a KeyboardInterrupt raised between the store's grant and the claim's entry in
    # _owned (in claim's last lines or here) would leave the claim with nobody to
    # release it; trio delivers it at the next checkpoint instead (the stage's, whose
    # abort releases the claim). The chain counts this hook as returned (entered += 1)
    # with no signal check in between (no call, no backward jump).
    @trio.lowlevel.enable_ki_protection
    async def before(self, stage_name: str, ctx: PipelineContext) -> InterceptorResult | None:
        """Replay a cached result, wait for a running duplicate, or claim the key.

        A checkpoint when there is a key. A key that is not a str is used as
        ``str(key)``, as the default extractor does. Protected from Ctrl-C, as
        the other hooks: a KeyboardInterrupt coming meanwhile is raised at the
        next checkpoint (the extractors run protected too: keep them quick).

        Raises:
            IdempotencyParamMismatch: a parameter mismatch (critical).
            IdempotencyReentryError: the claim is held by a call this one is
                nested in (critical): waiting would be waiting for itself.
            IdempotencyError: an extractor or the store's ``claim`` raised
                (critical: the stage must not run unguarded, which is what
                the chain would do with an ordinary hook error).
        """
        try:
            key = self._key_extractor(ctx)
            if not key:
                return None
            if type(key) is not str:
                key = str(key)
            params_hash = self._hash_params(self._params_extractor(ctx))
            store_key = _store_key(stage_name, key, ctx)
            held = _nested_claims.get()
            outcome: IdempotencyClaim | CachedStageResult | None
            if held and _nested_in_holder(held, self._claim_scope, store_key):
                # ``claim`` would wait for the outer call, which waits for this one.
                # Only a cached entry is taken (claim would return it at once); None
                # means it would wait.
                cached = await self._store.get(store_key)
                outcome = cached if isinstance(cached, CachedStageResult) else None
            else:
                outcome = await self._claims.claim(store_key)
        except CriticalInterceptorError:
            raise
        except Exception as exc:
            raise IdempotencyError(
                f"idempotency interceptor failed, so stage {stage_name!r} does not run: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if outcome is None:
            raise IdempotencyReentryError(stage_name, key)
        if isinstance(outcome, CachedStageResult):
            return self._replay(stage_name, key, outcome, params_hash)
        # No checkpoint between the grant and these lines: the claim cannot leak.
        mark = _HeldClaim(self._claim_scope, store_key)
        _nested_claims.set((*held, mark))
        self._owned[call_key(stage_name, ctx)] = _Owned(outcome, key, params_hash, mark, held)
        return None

    @trio.lowlevel.enable_ki_protection  # from taking the claim to releasing it
    async def after(self, stage_name: str, result: StageResult, ctx: PipelineContext) -> None:
        """Cache the result the stage produced, then release the claim.

        A checkpoint when caching. The claim is released whatever ``set`` does
        (cancelled, raising), without a checkpoint. A ``set`` cancelled with the
        call (or cut by a Ctrl-C) is made again, shielded (at most
        ``ABORT_HOOK_TIMEOUT`` seconds), before ``Cancelled`` propagates: the stage has run, and a duplicate
        must replay its result rather than run it again.
        """
        owned = self._take(stage_name, ctx)
        if owned is None:
            return
        try:
            if (
                result.status == "completed"
                and result.error is None
                # Another interceptor's short-circuit is not the stage's answer, and a
                # unified stage's skip or cancel would replay as an OK.
                and stage_result_replayable()
            ):
                entry = CachedStageResult(result=_clone(result), params_hash=owned.params_hash)
                try:
                    await self._store.set(owned.claim.key, entry, ttl_seconds=self._ttl_seconds)
                except (trio.Cancelled, KeyboardInterrupt):
                    # A Ctrl-C lands at set()'s checkpoint as a cancellation would:
                    # the stage ran all the same, so its result is still cached.
                    await self._set_shielded(stage_name, owned, entry)
                    raise
                logger.info(
                    "Stored idempotent result",
                    extra={
                        "stage": stage_name,
                        "idempotency_key": owned.key,
                        "params_hash": owned.params_hash,
                    },
                )
        finally:
            self._release(owned)

    async def on_error(
        self, stage_name: str, error: Exception, ctx: PipelineContext
    ) -> ErrorAction:
        """FAIL; the claim stays held until ``after`` (a later retry may still run the stage)."""
        return ErrorAction.FAIL

    @trio.lowlevel.enable_ki_protection  # from taking the claim to releasing it
    async def on_abort(self, stage_name: str, ctx: PipelineContext) -> None:
        """Release the claim of a cancelled or aborted call.

        Nothing is cached, unless the call was cancelled after its stage
        completed (an ``after`` hook that ran before this one's awaited:
        :func:`~stageflow_trio._engine._stage_call.completed_before_abort`): the
        stage has run, so its result is cached as ``after`` would have, and a
        duplicate replays it instead of running the stage again. Only that
        ``set`` checkpoints (the chain runs this hook shielded, within its time
        slot); the claim is released whatever it does.
        """
        owned = self._take(stage_name, ctx)
        if owned is None:
            return
        try:
            result = completed_before_abort()
            if result is not None and result.status == "completed" and result.error is None:
                entry = CachedStageResult(result=_clone(result), params_hash=owned.params_hash)
                await self._set_shielded(stage_name, owned, entry)
        finally:
            self._release(owned)

    def _release(self, owned: _Owned) -> None:
        """Release this call's claim and take it off :data:`_nested_claims`. No checkpoint."""
        owned.held.live = False
        # In the task that ran ``before`` (the chain runs a call's hooks in its task),
        # after the calls nested in this one in that task have restored theirs.
        _nested_claims.set(owned.outer)
        self._claims.release(owned.claim)

    def _take(self, stage_name: str, ctx: PipelineContext) -> _Owned | None:
        """Forget and return the claim this call holds, if any (no task look-up when none)."""
        owned = self._owned
        if not owned:
            return None
        return owned.pop(call_key(stage_name, ctx), None)

    async def _set_shielded(self, stage_name: str, owned: _Owned, entry: CachedStageResult) -> None:
        """Cache ``entry`` for a call being cancelled after its stage completed; never raises."""
        with trio.CancelScope(shield=True), trio.move_on_after(ABORT_HOOK_TIMEOUT) as bound:
            try:
                await self._store.set(owned.claim.key, entry, ttl_seconds=self._ttl_seconds)
            except Exception as exc:  # noqa: BLE001 - the Cancelled being raised wins
                logger.warning(
                    "Could not store the idempotent result of cancelled stage %s: %s",
                    stage_name,
                    exc,
                    extra={"stage": stage_name, "idempotency_key": owned.key},
                )
        if bound.cancelled_caught:
            logger.warning(
                "Storing the idempotent result of cancelled stage %s took over %ss; not stored",
                stage_name,
                ABORT_HOOK_TIMEOUT,
                extra={"stage": stage_name, "idempotency_key": owned.key},
            )

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
        # The cached StageResult itself, as the reference returns it: the chain uses its
        # data (and error), and a caller of before() sees the result that was cached.
        return InterceptorResult(stage_ran=False, result=cached.result)

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
        except (TypeError, ValueError):
            # Keys that cannot be sorted or written (TypeError), a circular value (ValueError).
            payload = repr(params)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


_OWNER = "IdempotencyInterceptor"


def _check_store(store: object) -> None:
    # Duck-typed (a store need not subclass anything), but a class has the methods too:
    # every call would then fail inside the hooks, and fail open.
    if isinstance(store, type):
        raise TypeError(
            f"{_OWNER}: store must be an IdempotencyStore instance; got the class "
            f"{store.__name__} (pass {store.__name__}())"
        )
    # Only get and set: the interceptor never calls delete, and the reference's
    # interceptor works with a store that has just these two.
    missing = [m for m in ("get", "set") if not callable(getattr(store, m, None))]
    if missing:
        raise TypeError(
            f"{_OWNER}: store must be an IdempotencyStore (async get, set, delete; claim and"
            f" release), or have at least get and set; got {type_of(store)} without"
            f" {', '.join(missing)}"
        )


def _store_key(stage_name: str, key: str, ctx: PipelineContext) -> str:
    attempt = ctx.data.get(STAGE_ATTEMPT_KEY.format(stage=stage_name))
    if type(attempt) is int and attempt > 1:
        return json.dumps([stage_name, key, attempt])
    return json.dumps([stage_name, key])
