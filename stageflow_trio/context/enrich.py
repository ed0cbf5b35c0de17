"""Helpers for ENRICH stages: token budgets, truncation records, content versions, merge conflicts.

* :class:`ContextUtilization` counts the tokens of a context window.
* :class:`TruncationTracker` records each cut (:class:`TruncationEvent`), logs
  it and emits ``context.truncation`` to an event sink.
* :class:`VersionMetadata` says where retrieved content came from and whether
  it is stale.
* :class:`ConflictDetector` decides what happens when an update meets a
  different existing value (:class:`ConflictResolution`).

Everything here is synchronous and never checkpoints, so under trio each call
is atomic: concurrent tasks may share a tracker or a detector without a lock.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import attrs

from stageflow_trio._args import check_int, check_number, type_of
from stageflow_trio._frozen import frozen_compat
from stageflow_trio._time import utc_now
from stageflow_trio.utils.frozen import FrozenDict, FrozenList

logger: logging.Logger = logging.getLogger("stageflow_trio.context.enrich")

_NEAR_LIMIT: Final = 0.8  # the utilization above which a window is "near the limit"
_STRATEGIES: Final = frozenset({"keep_old", "keep_new", "merge", "error"})


def _token_count(instance: object, attribute: attrs.Attribute[int], value: object) -> None:
    # Checked at construction and on every assignment (``add`` included).
    check_int(type(instance).__name__, attribute.name, value, minimum=0)


@attrs.define
class ContextUtilization:
    """The token budget of a context window: what is used, reserved and still free.

    Mutable, like the reference's: :meth:`add` counts tokens in. Counts are
    non-negative ints, checked at construction and on assignment.

    Args:
        max_tokens: The window's size.
        used_tokens: Tokens already in it.
        reserved_tokens: Tokens kept free for the response.
    """

    max_tokens: int = attrs.field(validator=_token_count)
    used_tokens: int = attrs.field(default=0, validator=_token_count)
    reserved_tokens: int = attrs.field(default=0, validator=_token_count)

    @property
    def available_tokens(self) -> int:
        """Tokens that still fit: ``max - used - reserved``, at least 0."""
        return max(0, self.max_tokens - self.used_tokens - self.reserved_tokens)

    @property
    def utilization(self) -> float:
        """``used / max`` (0.0 for an empty window); may exceed 1."""
        return self.used_tokens / self.max_tokens if self.max_tokens > 0 else 0.0

    @property
    def is_near_limit(self) -> bool:
        """Whether more than 80% of the window is used."""
        return self.utilization > _NEAR_LIMIT

    @property
    def is_at_limit(self) -> bool:
        """Whether the used tokens reach the window minus the reserve."""
        return self.used_tokens >= self.max_tokens - self.reserved_tokens

    def can_fit(self, token_count: int) -> bool:
        """Whether ``token_count`` more tokens fit in :attr:`available_tokens`.

        Raises:
            TypeError, ValueError: ``token_count`` is not an int >= 0.
        """
        check_int("ContextUtilization.can_fit", "token_count", token_count, minimum=0)
        return token_count <= self.available_tokens

    def add(self, token_count: int) -> bool:
        """Count ``token_count`` more tokens in if they fit.

        Returns:
            True if they were added, False (nothing changes) if they do not fit.

        Raises:
            TypeError, ValueError: ``token_count`` is not an int >= 0.
        """
        check_int("ContextUtilization.add", "token_count", token_count, minimum=0)
        if token_count > self.available_tokens:
            return False
        self.used_tokens += token_count
        return True

    def to_dict(self) -> dict[str, Any]:
        """The three counts, ``available_tokens``, ``utilization`` and ``is_near_limit``."""
        return {
            "max_tokens": self.max_tokens,
            "used_tokens": self.used_tokens,
            "reserved_tokens": self.reserved_tokens,
            "available_tokens": self.available_tokens,
            "utilization": self.utilization,
            "is_near_limit": self.is_near_limit,
        }


def _check_str(owner: str, param: str, value: object) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{owner}: {param} must be a str; got {type_of(value)}")


def _frozen_metadata(value: Mapping[str, Any] | None) -> FrozenDict[str, Any]:
    if value is None:
        return FrozenDict()
    if not isinstance(value, Mapping):
        raise TypeError(
            f"TruncationEvent: metadata must be a mapping or None; got {type_of(value)}"
        )
    return value if isinstance(value, FrozenDict) else FrozenDict(value)


def _event_field(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    name = attribute.name
    if name == "timestamp":
        if not isinstance(value, datetime):
            raise TypeError(f"TruncationEvent: timestamp must be a datetime; got {type_of(value)}")
    elif name in {"original_tokens", "truncated_tokens"}:
        check_int("TruncationEvent", name, value, minimum=0)
    elif name == "preserved_ratio":
        check_number("TruncationEvent", name, value, minimum=0)
    else:
        _check_str("TruncationEvent", name, value)


@frozen_compat
@attrs.frozen
class TruncationEvent:
    """One cut of context content: how many tokens, how, why.

    Attributes:
        timestamp: When it was cut.
        original_tokens: Tokens before.
        truncated_tokens: Tokens after.
        strategy: How, e.g. ``"head"``, ``"tail"``, ``"middle"``, ``"semantic"``.
        content_type: What, e.g. ``"document"``, ``"conversation"``, ``"retrieval"``.
        reason: Why.
        preserved_ratio: ``truncated_tokens / original_tokens``.
        metadata: Anything else (a read-only mapping).
    """

    timestamp: datetime = attrs.field(validator=_event_field)
    original_tokens: int = attrs.field(validator=_event_field)
    truncated_tokens: int = attrs.field(validator=_event_field)
    strategy: str = attrs.field(validator=_event_field)
    content_type: str = attrs.field(validator=_event_field)
    reason: str = attrs.field(validator=_event_field)
    preserved_ratio: float = attrs.field(validator=_event_field)
    metadata: FrozenDict[str, Any] = attrs.field(factory=FrozenDict, converter=_frozen_metadata)

    @property
    def tokens_removed(self) -> int:
        """``original_tokens - truncated_tokens``."""
        return self.original_tokens - self.truncated_tokens

    def to_dict(self) -> dict[str, Any]:
        """The payload of ``context.truncation``: the fields, ``tokens_removed``, an ISO timestamp."""
        return {
            "timestamp": self.timestamp.isoformat(),
            "original_tokens": self.original_tokens,
            "truncated_tokens": self.truncated_tokens,
            "tokens_removed": self.tokens_removed,
            "strategy": self.strategy,
            "content_type": self.content_type,
            "reason": self.reason,
            "preserved_ratio": self.preserved_ratio,
            "metadata": dict(self.metadata),
        }


class TruncationTracker:
    """Records truncations, logs each one and emits it as a ``context.truncation`` event.

    Args:
        event_sink: Anything with ``try_emit(*, type, data)`` (an
            :class:`~stageflow_trio.events.sink.EventSink`), or None for no events.

    Raises:
        TypeError: ``event_sink`` has no callable ``try_emit``.
    """

    def __init__(self, event_sink: Any = None) -> None:
        if event_sink is not None and not callable(getattr(event_sink, "try_emit", None)):
            raise TypeError(
                "TruncationTracker: event_sink must have a try_emit method or be None; "
                f"got {type_of(event_sink)}"
            )
        self._events: list[TruncationEvent] = []
        # Kept as events are recorded, so that reading the total does not scan a
        # history that grows for as long as the tracker lives.
        self._tokens_removed = 0
        self._event_sink = event_sink

    @property
    def events(self) -> tuple[TruncationEvent, ...]:
        """The recorded events, oldest first."""
        return tuple(self._events)

    def record_truncation(
        self,
        original_tokens: int,
        truncated_tokens: int,
        strategy: str,
        content_type: str,
        reason: str,
        metadata: dict[str, Any] | None = None,
    ) -> TruncationEvent:
        """Record a cut from ``original_tokens`` to ``truncated_tokens``.

        The event is kept, emitted to the sink with ``try_emit`` (an error
        there is logged as a warning, not raised) and logged at INFO on
        ``stageflow_trio.context.enrich`` with the payload as extras.

        Returns:
            The event; ``preserved_ratio`` is 1.0 when ``original_tokens`` is 0.

        Raises:
            TypeError, ValueError: a count is not an int >= 0, a text not a
                str, ``metadata`` not a mapping.
        """
        owner = "TruncationTracker.record_truncation"
        check_int(owner, "original_tokens", original_tokens, minimum=0)
        check_int(owner, "truncated_tokens", truncated_tokens, minimum=0)
        _check_str(owner, "strategy", strategy)
        _check_str(owner, "content_type", content_type)
        _check_str(owner, "reason", reason)
        if metadata is not None and not isinstance(metadata, Mapping):
            raise TypeError(f"{owner}: metadata must be a mapping or None; got {type_of(metadata)}")
        preserved_ratio = truncated_tokens / original_tokens if original_tokens > 0 else 1.0
        event = TruncationEvent(
            timestamp=utc_now(),
            original_tokens=original_tokens,
            truncated_tokens=truncated_tokens,
            strategy=strategy,
            content_type=content_type,
            reason=reason,
            preserved_ratio=preserved_ratio,
            metadata=metadata,
        )
        self._events.append(event)
        self._tokens_removed += original_tokens - truncated_tokens
        payload = event.to_dict()
        if self._event_sink is not None:
            try:
                self._event_sink.try_emit(type="context.truncation", data=payload)
            except Exception as exc:  # noqa: BLE001 - a broken sink must not break the stage
                logger.warning("Failed to emit truncation event: %s", exc)
        logger.info(
            "Context truncated: %s -> %s tokens (%s, %.1f%% preserved)",
            original_tokens,
            truncated_tokens,
            strategy,
            preserved_ratio * 100,
            extra={"event": "context_truncation", **payload},
        )
        return event

    @property
    def total_tokens_removed(self) -> int:
        """The tokens removed by all recorded truncations (kept as a running total)."""
        return self._tokens_removed

    @property
    def event_count(self) -> int:
        """How many truncations were recorded."""
        return len(self._events)

    def get_summary(self) -> dict[str, Any]:
        """``event_count``, ``total_tokens_removed`` and ``strategies_used``.

        With events, also ``content_types`` and ``avg_preserved_ratio``. The
        two lists hold each value once, in the order first recorded.
        """
        if not self._events:
            return {"event_count": 0, "total_tokens_removed": 0, "strategies_used": []}
        return {
            "event_count": len(self._events),
            "total_tokens_removed": self.total_tokens_removed,
            "strategies_used": list(dict.fromkeys(event.strategy for event in self._events)),
            "content_types": list(dict.fromkeys(event.content_type for event in self._events)),
            "avg_preserved_ratio": (
                sum(event.preserved_ratio for event in self._events) / len(self._events)
            ),
        }


def _version_text(_: object, attribute: attrs.Attribute[str], value: object) -> None:
    _check_str("VersionMetadata", attribute.name, value)


def _check_retrieved_at(_: object, __: attrs.Attribute[datetime], value: object) -> None:
    if not isinstance(value, datetime):
        raise TypeError(f"VersionMetadata: retrieved_at must be a datetime; got {type_of(value)}")
    if value.utcoffset() is None:
        raise ValueError(
            "VersionMetadata: retrieved_at must be timezone-aware; got a naive datetime"
        )


def _check_checksum(_: object, __: attrs.Attribute[str | None], value: object) -> None:
    if value is not None:
        _check_str("VersionMetadata", "checksum", value)


def _check_ttl(_: object, __: attrs.Attribute[int | None], value: object) -> None:
    if value is not None:
        check_number("VersionMetadata", "ttl_seconds", value, minimum=0)


def _frozen_tags(value: Sequence[str] | None) -> FrozenList[str]:
    if value is None:
        return FrozenList()
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise TypeError(
            f"VersionMetadata: tags must be a list of str or None; got {type_of(value)}"
        )
    for tag in value:
        _check_str("VersionMetadata", "tags[]", tag)
    return value if isinstance(value, FrozenList) else FrozenList(value)


@frozen_compat
@attrs.frozen
class VersionMetadata:
    """Where a piece of retrieved content came from, which version it is, and when it goes stale.

    Attributes:
        content_id: The content's id.
        version: Its version.
        retrieved_at: When it was fetched (timezone-aware).
        source: Where from, e.g. ``"vector_db"``, ``"api"``.
        checksum: The first 16 hex digits of its SHA-256, or None.
        ttl_seconds: How long it stays fresh; None: forever.
        tags: Labels (a read-only list).
    """

    content_id: str = attrs.field(validator=_version_text)
    version: str = attrs.field(validator=_version_text)
    retrieved_at: datetime = attrs.field(validator=_check_retrieved_at)
    source: str = attrs.field(validator=_version_text)
    checksum: str | None = attrs.field(default=None, validator=_check_checksum)
    ttl_seconds: int | None = attrs.field(default=None, validator=_check_ttl)
    tags: FrozenList[str] = attrs.field(factory=FrozenList, converter=_frozen_tags)

    @property
    def age_seconds(self) -> float:
        """Seconds since :attr:`retrieved_at`, on the wall clock (it is a wall-clock time)."""
        return (utc_now() - self.retrieved_at).total_seconds()

    @property
    def is_stale(self) -> bool:
        """Whether the age exceeds ``ttl_seconds`` (never, without a TTL)."""
        if self.ttl_seconds is None:
            return False
        return self.age_seconds > self.ttl_seconds

    def to_dict(self) -> dict[str, Any]:
        """The fields (``retrieved_at`` in ISO form), ``age_seconds`` and ``is_stale``."""
        return {
            "content_id": self.content_id,
            "version": self.version,
            "retrieved_at": self.retrieved_at.isoformat(),
            "source": self.source,
            "checksum": self.checksum,
            "ttl_seconds": self.ttl_seconds,
            "age_seconds": self.age_seconds,
            "is_stale": self.is_stale,
            "tags": list(self.tags),
        }

    @classmethod
    def create(
        cls,
        content_id: str,
        version: str,
        source: str,
        content: str | bytes | None = None,
        ttl_seconds: int | None = None,
        tags: list[str] | None = None,
    ) -> VersionMetadata:
        """Metadata retrieved now, with a checksum of ``content`` when given (str as UTF-8).

        Raises:
            TypeError, ValueError: as the constructor; ``content`` not str, bytes or None.
        """
        checksum = None
        if content is not None:
            if isinstance(content, str):
                content = content.encode()
            if not isinstance(content, bytes | bytearray | memoryview):
                raise TypeError(
                    "VersionMetadata.create: content must be str, bytes or None; "
                    f"got {type_of(content)}"
                )
            checksum = hashlib.sha256(content).hexdigest()[:16]
        return cls(
            content_id=content_id,
            version=version,
            retrieved_at=utc_now(),
            source=source,
            checksum=checksum,
            ttl_seconds=ttl_seconds,
            tags=tags,
        )


@frozen_compat
@attrs.frozen
class ConflictResolution:
    """What :meth:`ConflictDetector.check_and_resolve` decided.

    Attributes:
        has_conflict: Whether the old and new values differed (old not None).
        field: The field checked.
        old_value: The existing value (None when there was none).
        new_value: The incoming value.
        resolution: ``"keep_old"``, ``"keep_new"``, ``"merge"`` or ``"error"``;
            None without a conflict.
        merged_value: The value to store (None without a conflict and for ``"error"``).
    """

    has_conflict: bool
    field: str | None = None
    old_value: Any = None
    new_value: Any = None
    resolution: str | None = None
    merged_value: Any = None


def _check_strategy(owner: str, param: str, value: object) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{owner}: {param} must be a str; got {type_of(value)}")
    if value not in _STRATEGIES:
        raise ValueError(
            f"{owner}: {param} must be one of 'error', 'keep_new', 'keep_old', 'merge'; "
            f"got {value!r}"
        )


class ConflictDetector:
    """Decides what to store when an update meets a different existing value.

    Strategies: ``"keep_old"``, ``"keep_new"``, ``"merge"`` (lists
    concatenated, leaving out the new items already in the old list when every
    item is hashable, plainly when one is not, as in the reference; dicts merged
    key by key,
    strings joined by a newline, anything else replaced) and ``"error"`` (no
    value; the caller raises or reports).

    Args:
        default_strategy: The strategy for fields without their own.
        merge_strategies: Per-field strategies (copied).

    Raises:
        TypeError, ValueError: an unknown strategy.
    """

    def __init__(
        self,
        default_strategy: str = "keep_new",
        merge_strategies: dict[str, str] | None = None,
    ) -> None:
        _check_strategy("ConflictDetector", "default_strategy", default_strategy)
        if merge_strategies is not None and not isinstance(merge_strategies, Mapping):
            raise TypeError(
                "ConflictDetector: merge_strategies must be a mapping or None; "
                f"got {type_of(merge_strategies)}"
            )
        strategies = dict(merge_strategies or {})
        for name, strategy in strategies.items():
            _check_strategy("ConflictDetector", f"merge_strategies[{name!r}]", strategy)
        self.default_strategy = default_strategy
        self.merge_strategies = strategies

    def check_and_resolve(self, field: str, old_value: Any, new_value: Any) -> ConflictResolution:
        """Compare ``old_value`` with ``new_value`` for ``field`` and resolve a difference.

        No conflict when ``old_value`` is None or equals ``new_value``.
        Otherwise the field's strategy decides; a strategy assigned later
        that is not known resolves as ``"keep_new"``.

        Raises:
            TypeError: ``field`` is not a str.
        """
        _check_str("ConflictDetector.check_and_resolve", "field", field)
        if old_value is None:
            return ConflictResolution(has_conflict=False, field=field, new_value=new_value)
        if old_value == new_value:
            return ConflictResolution(
                has_conflict=False, field=field, old_value=old_value, new_value=new_value
            )
        strategy = self.merge_strategies.get(field, self.default_strategy)
        if strategy == "keep_old":
            merged = old_value
        elif strategy == "merge":
            merged = self._merge_values(old_value, new_value)
        elif strategy == "error":
            merged = None
        else:
            strategy, merged = "keep_new", new_value
        return ConflictResolution(
            has_conflict=True,
            field=field,
            old_value=old_value,
            new_value=new_value,
            resolution=strategy,
            merged_value=merged,
        )

    def _merge_values(self, old: Any, new: Any) -> Any:
        """``old`` and ``new`` merged: lists, dicts (recursively) and strings; else ``new``."""
        if isinstance(old, list) and isinstance(new, list):
            try:
                seen = set(old)
                return old + [item for item in new if item not in seen]
            except TypeError:  # an unhashable item: concatenate without removing repeats
                return old + new
        if isinstance(old, dict) and isinstance(new, dict):
            merged = dict(old)
            for key, value in new.items():
                merged[key] = self._merge_values(merged[key], value) if key in merged else value
            return merged
        if isinstance(old, str) and isinstance(new, str):
            return f"{old}\n{new}"
        return new


__all__ = [
    "ConflictDetector",
    "ConflictResolution",
    "ContextUtilization",
    "TruncationEvent",
    "TruncationTracker",
    "VersionMetadata",
]
