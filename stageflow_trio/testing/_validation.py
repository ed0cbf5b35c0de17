"""Snapshot validation for tests (the reference's ``stageflow.testing`` validators)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from stageflow_trio._frozen import frozen_compat
from stageflow_trio.context.context_snapshot import ContextSnapshot
from stageflow_trio.context.types import Message
from stageflow_trio.utils.frozen import FrozenList

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping


@frozen_compat
@attrs.frozen
class SnapshotValidationError:
    """One problem :func:`validate_snapshot` found: the field, what is wrong, the value."""

    field: str
    message: str
    value: Any = None


def _errors(value: Iterable[SnapshotValidationError]) -> FrozenList[SnapshotValidationError]:
    return value if isinstance(value, FrozenList) else FrozenList(value)


@frozen_compat
@attrs.frozen
class SnapshotValidationResult:
    """What :func:`validate_snapshot` returns; true when ``valid``."""

    valid: bool
    # Read-only lists, equal to the reference's plain lists.
    errors: FrozenList[SnapshotValidationError] = attrs.field(factory=FrozenList, converter=_errors)
    warnings: FrozenList[SnapshotValidationError] = attrs.field(
        factory=FrozenList, converter=_errors
    )

    def __bool__(self) -> bool:
        return self.valid


_REQUIRED = ("pipeline_run_id", "request_id", "user_id", "org_id")


def validate_snapshot(
    snapshot: ContextSnapshot[Any],
    *,
    require_user_id: bool = False,
    require_org_id: bool = False,
    require_pipeline_run_id: bool = True,
    require_request_id: bool = False,
    strict: bool = False,
) -> SnapshotValidationResult:
    """Check a snapshot for missing ids and suspicious content.

    Errors: a required id is ``None``; a message that is not a ``Message``.
    (The snapshot checks its extensions itself, when it is made.) Warnings (errors with ``strict=True``): a message with an empty role;
    ``execution_mode`` set without ``topology``.
    """
    if not isinstance(snapshot, ContextSnapshot):
        raise TypeError(
            f"validate_snapshot: snapshot must be a ContextSnapshot; got {type(snapshot).__name__}"
        )
    required = dict(
        zip(
            _REQUIRED,
            (require_pipeline_run_id, require_request_id, require_user_id, require_org_id),
            strict=True,
        )
    )
    errors = [
        SnapshotValidationError(field, f"{field} is required but not set")
        for field, needed in required.items()
        if needed and getattr(snapshot, field) is None
    ]
    warnings: list[SnapshotValidationError] = []
    for index, message in enumerate(snapshot.messages):
        if not isinstance(message, Message):  # a Conversation does not check its messages
            errors.append(  # type: ignore[unreachable]
                SnapshotValidationError(
                    f"messages[{index}]",
                    f"Expected Message, got {type(message).__name__}",
                    message,
                )
            )
        elif not message.role:
            warnings.append(
                SnapshotValidationError(f"messages[{index}].role", "Message role is empty", message)
            )
    if snapshot.topology is None and snapshot.execution_mode is not None:
        warnings.append(
            SnapshotValidationError("topology", "execution_mode is set but topology is None")
        )
    if strict:
        errors.extend(warnings)
        warnings = []
    return SnapshotValidationResult(not errors, errors, warnings)


def validate_snapshot_strict(snapshot: ContextSnapshot[Any], **kwargs: Any) -> ContextSnapshot[Any]:
    """Return ``snapshot`` if :func:`validate_snapshot` (strict) finds nothing.

    Raises:
        ValueError: ``ContextSnapshot validation failed: field: message; ...``.
    """
    result = validate_snapshot(snapshot, strict=True, **kwargs)
    if not result:
        details = "; ".join(f"{error.field}: {error.message}" for error in result.errors)
        raise ValueError(f"ContextSnapshot validation failed: {details}")
    return snapshot


def snapshot_from_dict_strict(data: Mapping[str, Any], **kwargs: Any) -> ContextSnapshot[Any]:
    """``ContextSnapshot.from_dict(data)``, then :func:`validate_snapshot_strict`."""
    return validate_snapshot_strict(ContextSnapshot.from_dict(data), **kwargs)
