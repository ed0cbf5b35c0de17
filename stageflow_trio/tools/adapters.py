"""Use a plain dict where an ExecutionContext is expected (legacy tool code).

:class:`DictContextAdapter` wraps a dict such as
``{"pipeline_run_id": "...", "execution_mode": "practice"}`` so that tools
written against :class:`~stageflow_trio.protocols.ExecutionContext` accept it;
:func:`adapt_context` wraps dicts and passes real contexts through.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, cast
from uuid import UUID

import attrs

from stageflow_trio.core.stage_context import _log_extra
from stageflow_trio.stages.context import _data_repr

if TYPE_CHECKING:
    from stageflow_trio.protocols import ExecutionContext

__all__ = ["DictContextAdapter", "adapt_context"]

logger: logging.Logger = logging.getLogger("stageflow_trio.tools.adapters")


def _lenient_uuid(value: object) -> UUID | None:
    """``value`` as a UUID; None when it is None or does not parse (no error)."""
    if value is None or isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except (ValueError, TypeError):
        return None


@attrs.define
class DictContextAdapter:
    """An :class:`~stageflow_trio.protocols.ExecutionContext` over a plain dict.

    The dict is kept by reference (later changes to it are visible). Ids are
    read leniently: a value that is not a UUID or a UUID string reads as None.
    There is no event sink: :meth:`try_emit_event` logs at DEBUG and never raises.
    The repr shows the values of ``_auth_token`` and ``auth_token`` as ``'***'``.

    Args:
        _data: The dict to adapt (positional; keyword name ``_data``).
    """

    # The repr masks the bearer token (``_auth_token`` / ``auth_token``), as
    # PipelineContext's does: a logged or raised adapter must not carry it.
    _data: dict[str, Any] = attrs.field(alias="_data", repr=_data_repr)

    @property
    def pipeline_run_id(self) -> UUID | None:
        """``_data["pipeline_run_id"]`` as a UUID, or None if missing or not a UUID."""
        return _lenient_uuid(self._data.get("pipeline_run_id"))

    @property
    def request_id(self) -> UUID | None:
        """``_data["request_id"]`` as a UUID, or None if missing or not a UUID."""
        return _lenient_uuid(self._data.get("request_id"))

    @property
    def execution_mode(self) -> str | None:
        """``_data["execution_mode"]``, or None."""
        mode: str | None = self._data.get("execution_mode")
        return mode

    def to_dict(self) -> dict[str, Any]:
        """A shallow copy of the adapted dict."""
        return self._data.copy()

    def try_emit_event(self, type: str, data: dict[str, Any]) -> None:  # noqa: A002
        """Log the event at DEBUG (a dict context has no sink); never raises.

        The logged ``extra`` is ``{"pipeline_run_id", "request_id",
        "execution_mode", **data}`` (ids as strings or None), minus keys that
        ``logging`` reserves for its own record attributes.
        """
        if not logger.isEnabledFor(logging.DEBUG):
            return
        try:
            run_id = self.pipeline_run_id
            request_id = self.request_id
            enriched = {
                "pipeline_run_id": str(run_id) if run_id else None,
                "request_id": str(request_id) if request_id else None,
                "execution_mode": self.execution_mode,
                **data,
            }
            logger.debug("Event (dict context): %s", type, extra=_log_extra(enriched))
        except Exception as exc:  # noqa: BLE001 - the protocol says try_emit_event does not raise
            logger.warning("Failed to log event %s: %s", type, exc)


def adapt_context(ctx: Any) -> ExecutionContext:
    """``ctx`` as an ExecutionContext.

    An object with ``pipeline_run_id``, ``to_dict`` and ``try_emit_event``
    attributes is returned unchanged; a dict is wrapped in
    :class:`DictContextAdapter`.

    Raises:
        TypeError: ``"Unsupported context type: {type name}"`` for anything else.
    """
    if (
        hasattr(ctx, "pipeline_run_id")
        and hasattr(ctx, "to_dict")
        and hasattr(ctx, "try_emit_event")
    ):
        return cast("ExecutionContext", ctx)
    if isinstance(ctx, dict):
        return DictContextAdapter(ctx)
    raise TypeError(f"Unsupported context type: {type(ctx).__name__}")
