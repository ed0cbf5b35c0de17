"""StageArtifact, StageEvent and the field checks they share with StageOutput."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import attrs

from stageflow_trio._frozen import frozen_compat
from stageflow_trio._time import utc_now
from stageflow_trio.core.stage_enums import StageStatus
from stageflow_trio.utils.frozen import FrozenDict, FrozenList, _freeze_dict

_EMPTY_DATA: FrozenDict[str, Any] = FrozenDict()
_EMPTY_LIST: FrozenList[Any] = FrozenList()
_STATUS_VALUES = ", ".join(repr(member.value) for member in StageStatus)


def _type_name(value: object) -> str:
    return type(value).__name__


def _freeze_mapping(value: Mapping[str, Any] | None, name: str) -> FrozenDict[str, Any]:
    if type(value) is FrozenDict:
        return value
    if value is None:
        return _EMPTY_DATA
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a mapping (e.g. a dict) or None, got {_type_name(value)}")
    if not value:
        return _EMPTY_DATA
    return _freeze_dict(value)


def _freeze_sequence(value: Iterable[Any] | None, name: str) -> FrozenList[Any]:
    if type(value) is FrozenList:
        return value
    if value is None:
        return _EMPTY_LIST
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise TypeError(
            f"{name} must be a list (or other iterable) or None, got {_type_name(value)}"
        )
    frozen: FrozenList[Any] = FrozenList(value)
    return frozen or _EMPTY_LIST


def _check_optional_str(value: object, name: str) -> None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{name} must be a str or None, got {_type_name(value)}")


def _convert_status(value: StageStatus | str) -> StageStatus:
    if type(value) is StageStatus:
        return value
    if isinstance(value, str):
        try:
            return StageStatus(value)
        except ValueError:
            raise ValueError(
                f"status must be a StageStatus or one of {_STATUS_VALUES}, got {value!r}"
            ) from None
    raise TypeError(f"status must be a StageStatus, got {_type_name(value)}")


def _convert_data(value: Mapping[str, Any] | None) -> FrozenDict[str, Any]:
    return _freeze_mapping(value, "data")


def _convert_payload(value: Mapping[str, Any] | None) -> FrozenDict[str, Any]:
    return _freeze_mapping(value, "payload")


def _convert_artifacts(value: Iterable[StageArtifact] | None) -> FrozenList[StageArtifact]:
    return _freeze_sequence(value, "artifacts")


def _convert_events(value: Iterable[StageEvent] | None) -> FrozenList[StageEvent]:
    return _freeze_sequence(value, "events")


def _validate_str(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{attribute.name} must be a str, got {_type_name(value)}")


def _validate_optional_str(
    _instance: object, attribute: attrs.Attribute[Any], value: object
) -> None:
    _check_optional_str(value, attribute.name)


def _validate_timestamp(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, datetime):
        raise TypeError(f"{attribute.name} must be a datetime, got {_type_name(value)}")


def _check_duration(value: object) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise TypeError(
            f"duration_ms must be a number of milliseconds or None, got {_type_name(value)}"
        )
    # NaN and the infinities would reach the events' JSON as tokens no JSON parser reads.
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"duration_ms must be a finite number of milliseconds, got {value}")


def _validate_duration(_instance: object, _attribute: attrs.Attribute[Any], value: object) -> None:
    _check_duration(value)


def _with_retryable(data: Mapping[str, Any] | None, retryable: bool | None) -> FrozenDict[str, Any]:
    if retryable is None:
        return _freeze_mapping(data or None, "data")
    if not isinstance(retryable, bool):
        raise TypeError(f"retryable must be a bool or None, got {_type_name(retryable)}")
    if data is not None and not isinstance(data, Mapping):
        raise TypeError(f"data must be a mapping (e.g. a dict) or None, got {_type_name(data)}")
    return _freeze_dict({**data, "retryable": retryable} if data else {"retryable": retryable})


@frozen_compat
@attrs.frozen
class StageArtifact:
    """Something a stage produced (audio, a transcript, an assessment, ...).

    Attributes:
        type: What kind of artifact this is, e.g. ``"transcript"``.
        payload: The artifact's content; stored as a FrozenDict.
        timestamp: When it was produced (UTC now by default).
    """

    type: str = attrs.field(validator=_validate_str)
    payload: FrozenDict[str, Any] = attrs.field(converter=_convert_payload)
    timestamp: datetime = attrs.field(factory=utc_now, validator=_validate_timestamp)


@frozen_compat
@attrs.frozen
class StageEvent:
    """Something that happened inside a stage run (started, progress, ...).

    Attributes:
        type: The event type, e.g. ``"progress"``.
        data: The event's details; stored as a FrozenDict.
        timestamp: When it happened (UTC now by default).
    """

    type: str = attrs.field(validator=_validate_str)
    data: FrozenDict[str, Any] = attrs.field(converter=_convert_data)
    timestamp: datetime = attrs.field(factory=utc_now, validator=_validate_timestamp)
