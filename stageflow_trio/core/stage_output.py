"""The value every stage returns, plus the artifacts and events it may carry.

:class:`StageOutput` is an immutable ``attrs`` class. Its ``data`` is a
:class:`~stageflow_trio.utils.frozen.FrozenDict` and its ``artifacts`` and
``events`` are :class:`~stageflow_trio.utils.frozen.FrozenList` values: real
``dict``/``list`` subclasses, so ``out.data == {"a": 1}``, ``out.artifacts == []``
and ``json.dumps(out.data)`` work as with the reference, while mutation raises
``TypeError``. The freeze is shallow, like the reference's ``FrozenDict``.

The factories (:meth:`StageOutput.ok` and friends) are on the engine's hot path,
so they build instances directly instead of going through the validating
``__init__``; they validate their own arguments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeAlias

import attrs

from stageflow_trio._exports import publish
from stageflow_trio._frozen import frozen_compat
from stageflow_trio.core._stage_parts import (
    _EMPTY_DATA,
    _EMPTY_LIST,
    StageArtifact,
    StageEvent,
    _check_duration,
    _check_optional_str,
    _convert_artifacts,
    _convert_data,
    _convert_events,
    _convert_status,
    _freeze_mapping,
    _freeze_sequence,
    _type_name,
    _validate_duration,
    _validate_optional_str,
    _with_retryable,
)
from stageflow_trio.core.stage_enums import StageStatus
from stageflow_trio.utils.frozen import FrozenDict, FrozenList, _freeze_dict

__all__ = ["StageArtifact", "StageEvent", "StageOutput"]

_new = object.__new__


def _build(
    status: StageStatus,
    data: FrozenDict[str, Any],
    artifacts: FrozenList[StageArtifact],
    events: FrozenList[StageEvent],
    error: str | None,
    duration_ms: int | None,
    version: str | None,
) -> StageOutput:
    # Every argument is already converted and checked. Skipping __init__ and
    # writing the slots through their descriptors keeps the factories cheaper
    # than the reference's dataclass constructor.
    out: StageOutput = _new(StageOutput)
    _set_status(out, status)
    _set_data(out, data)
    _set_artifacts(out, artifacts)
    _set_events(out, events)
    _set_error(out, error)
    _set_duration(out, duration_ms)
    _set_version(out, version)
    return out


@frozen_compat
@attrs.frozen
class StageOutput:
    """What a stage run returns: a status, its data, and what it produced.

    Prefer the factories (:meth:`ok`, :meth:`skip`, :meth:`cancel`,
    :meth:`fail`, :meth:`retry`) to the constructor.

    Attributes:
        status: How the run ended. A :class:`StageStatus` (its string value is
            accepted and converted).
        data: The stage's results, as a FrozenDict (a read-only ``dict``).
        artifacts: Artifacts produced, as a FrozenList (a read-only ``list``).
        events: Events emitted, as a FrozenList.
        error: The error message of a FAIL or RETRY output.
        duration_ms: Set by the engine once the run finishes (see :meth:`with_duration`).
        version: An optional schema version tag for ``data``.

    Raises:
        TypeError: A field has the wrong type (the message names the field).
        ValueError: ``status`` is a string that is not a status value.
    """

    status: StageStatus = attrs.field(converter=_convert_status)
    data: FrozenDict[str, Any] = attrs.field(factory=FrozenDict, converter=_convert_data)
    artifacts: FrozenList[StageArtifact] = attrs.field(
        factory=FrozenList, converter=_convert_artifacts
    )
    events: FrozenList[StageEvent] = attrs.field(factory=FrozenList, converter=_convert_events)
    error: str | None = attrs.field(default=None, validator=_validate_optional_str)
    duration_ms: int | None = attrs.field(default=None, validator=_validate_duration)
    version: str | None = attrs.field(default=None, validator=_validate_optional_str)

    @classmethod
    def ok(
        cls,
        data: Mapping[str, Any] | None = None,
        *,
        version: str | None = None,
        artifacts: Iterable[StageArtifact] | None = None,
        events: Iterable[StageEvent] | None = None,
        **kwargs: Any,
    ) -> StageOutput:
        """A successful output.

        As in the reference, ``data`` wins when it is non-empty; otherwise the
        extra keyword arguments become the data (``ok(text="hi")`` gives
        ``{"text": "hi"}``, and ``ok(metadata=m)`` gives ``{"metadata": m}``).
        ``artifacts`` and ``events`` fill the fields of the same name.

        Raises:
            TypeError: ``data`` is not a mapping, ``artifacts``/``events`` are not
                iterables, or ``version`` is not a str.
        """
        if version is not None and type(version) is not str:
            _check_optional_str(version, "version")
        raw = data or kwargs
        # Fast paths for the common plain-dict and already-frozen cases.
        if type(raw) is dict:
            payload = _freeze_dict(raw) if raw else _EMPTY_DATA
        elif type(raw) is FrozenDict:
            payload = raw
        else:
            payload = _freeze_mapping(raw, "data")
        arts = _EMPTY_LIST if artifacts is None else _freeze_sequence(artifacts, "artifacts")
        evs = _EMPTY_LIST if events is None else _freeze_sequence(events, "events")
        if cls is not StageOutput:
            return cls(StageStatus.OK, payload, arts, evs, version=version)
        return _build(StageStatus.OK, payload, arts, evs, None, None, version)

    @classmethod
    def skip(
        cls,
        reason: str = "",
        data: Mapping[str, Any] | None = None,
        *,
        version: str | None = None,
    ) -> StageOutput:
        """A skipped output; ``data`` is ``{"reason": reason, **data}``.

        Raises:
            TypeError: ``reason`` is not a str, ``data`` not a mapping, ``version`` not a str.
        """
        return cls._with_reason(StageStatus.SKIP, "reason", reason, data, version)

    @classmethod
    def cancel(
        cls,
        reason: str = "",
        data: Mapping[str, Any] | None = None,
        *,
        version: str | None = None,
    ) -> StageOutput:
        """An output that stops the pipeline without an error.

        ``data`` is ``{"cancel_reason": reason, **data}``.

        Raises:
            TypeError: ``reason`` is not a str, ``data`` not a mapping, ``version`` not a str.
        """
        return cls._with_reason(StageStatus.CANCEL, "cancel_reason", reason, data, version)

    @classmethod
    def fail(
        cls,
        error: str | None = None,
        data: Mapping[str, Any] | None = None,
        *,
        response: str | None = None,
        version: str | None = None,
        retryable: bool | None = None,
    ) -> StageOutput:
        """A failed output.

        Args:
            error: The error message. An empty or missing message falls back to
                ``response``, then to ``"Unknown error"``.
            data: Optional details about the failure.
            response: An alias of ``error`` kept from the reference.
            version: Optional schema version tag.
            retryable: When given, recorded as ``data["retryable"]`` (the output
                has no field of its own for it). ``None`` records nothing.

        Raises:
            TypeError: A message is not a str, ``data`` is not a mapping, or
                ``retryable`` is not a bool.
        """
        _check_optional_str(error, "error")
        _check_optional_str(response, "response")
        _check_optional_str(version, "version")
        payload = _with_retryable(data, retryable)
        message = error or response or "Unknown error"
        return cls._make(StageStatus.FAIL, payload, message, version)

    @classmethod
    def retry(
        cls,
        error: str | None = None,
        data: Mapping[str, Any] | None = None,
        *,
        reason: str | None = None,
        retryable: bool | None = None,
        version: str | None = None,
    ) -> StageOutput:
        """An output asking for the stage to be run again.

        Args:
            error: Why the run must be retried. Required, either as ``error`` or as
                its alias ``reason`` (``error`` wins when both are given).
            data: Optional details.
            reason: An alias of ``error``.
            retryable: When given, recorded as ``data["retryable"]``.
            version: Optional schema version tag.

        Raises:
            TypeError: Neither ``error`` nor ``reason`` is given, a message is not
                a str, ``data`` is not a mapping, or ``retryable`` is not a bool.
        """
        _check_optional_str(error, "error")
        _check_optional_str(reason, "reason")
        _check_optional_str(version, "version")
        message = error if error is not None else reason
        if message is None:
            raise TypeError(
                "StageOutput.retry() missing required argument: 'error' (or its alias 'reason')"
            )
        return cls._make(StageStatus.RETRY, _with_retryable(data, retryable), message, version)

    @classmethod
    def _with_reason(
        cls,
        status: StageStatus,
        key: str,
        reason: str,
        data: Mapping[str, Any] | None,
        version: str | None,
    ) -> StageOutput:
        if not isinstance(reason, str):
            raise TypeError(f"reason must be a str, got {_type_name(reason)}")
        _check_optional_str(version, "version")
        if data is not None and not isinstance(data, Mapping):
            raise TypeError(f"data must be a mapping (e.g. a dict) or None, got {_type_name(data)}")
        payload: FrozenDict[str, Any] = _freeze_dict(
            {key: reason, **data} if data else {key: reason}
        )
        return cls._make(status, payload, None, version)

    @classmethod
    def _make(
        cls,
        status: StageStatus,
        data: FrozenDict[str, Any],
        error: str | None,
        version: str | None,
    ) -> StageOutput:
        if cls is not StageOutput:
            return cls(status, data, error=error, version=version)
        return _build(status, data, _EMPTY_LIST, _EMPTY_LIST, error, None, version)

    def with_duration(self, duration_ms: int) -> StageOutput:
        """A copy of this output with ``duration_ms`` set (used by the engine).

        Raises:
            TypeError: ``duration_ms`` is not a number.
        """
        _check_duration(duration_ms)
        if type(self) is not StageOutput:
            return attrs.evolve(self, duration_ms=duration_ms)
        return _build(
            self.status,
            self.data,
            self.artifacts,
            self.events,
            self.error,
            duration_ms,
            self.version,
        )

    def with_version(self, version: str) -> StageOutput:
        """A copy of this output tagged with a schema ``version``.

        Raises:
            TypeError: ``version`` is not a str.
        """
        _check_optional_str(version, "version")
        if type(self) is not StageOutput:
            return attrs.evolve(self, version=version)
        return _build(
            self.status,
            self.data,
            self.artifacts,
            self.events,
            self.error,
            self.duration_ms,
            version,
        )


_slots = StageOutput.__dict__
_set_status = _slots["status"].__set__
_set_data = _slots["data"].__set__
_set_artifacts = _slots["artifacts"].__set__
_set_events = _slots["events"].__set__
_set_error = _slots["error"].__set__
_set_duration = _slots["duration_ms"].__set__
_set_version = _slots["version"].__set__
del _slots

StageReturn: TypeAlias = StageOutput | dict[str, Any] | None
"""What a stage's ``execute`` may return: a StageOutput, a dict (its data, status ok) or None."""

publish(__name__)
