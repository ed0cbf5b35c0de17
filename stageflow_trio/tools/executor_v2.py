"""The v2 tool executor: behavior gating, human approval, lifecycle events and undo.

:meth:`AdvancedToolExecutor.execute` runs one action through the tool
registered for its type:

1. ``tool.invoked``;
2. gating on the run's execution mode: ``tool.denied`` (reason
   ``behavior_not_allowed``) and :class:`~stageflow_trio.tools.errors.ToolDeniedError`;
3. approval, when the tool requires it: ``approval.requested``, a wait for the
   decision (``approval.decided``; a denial raises
   :class:`~stageflow_trio.tools.errors.ToolApprovalDeniedError`), or on timeout
   ``tool.denied`` (reason ``approval_timeout``) and
   :class:`~stageflow_trio.tools.errors.ToolApprovalTimeoutError`;
4. ``tool.started``, the handler, then ``tool.completed`` (and the undo data
   stored, for an undoable tool whose successful output carries some) or
   ``tool.failed`` and :class:`~stageflow_trio.tools.errors.ToolExecutionError`.

:meth:`AdvancedToolExecutor.undo_action` reverses a stored action
(``tool.undone``, or ``tool.undo_failed`` and
:class:`~stageflow_trio.tools.errors.ToolUndoError`).

Events go to the global event sink (:func:`~stageflow_trio.events.get_event_sink`);
a sink error is logged and the call goes on. Durations are measured on the trio
clock. Cancelling a call while it waits for approval cancels its approval
request (it leaves no PENDING request behind unless the backend fails or does
not answer within 5 s, which is logged, never raised) and emits nothing more; the
executor starts no task of its own. A call cancelled after its handler (or undo
handler) returned still stores (or deletes) the undo data, shielded, so the
change stays undoable and is never undone twice.

Optional concurrency limits (``ToolExecutorConfig.max_concurrent`` and
``max_concurrent_per_tool``, both off by default) bound how many calls run step 4
at once. A call takes its slots just before ``tool.started`` and gives them back
when it returns or raises (cancellation included); gating and the approval wait
come first, so a call waiting for a human holds no slot.
"""

from __future__ import annotations

import logging
import re
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import attrs
import trio

from stageflow_trio._args import check_flag, check_int, check_seconds, error_text, type_of
from stageflow_trio._frozen import frozen_compat
from stageflow_trio._time import RunClock, monotonic
from stageflow_trio.events import get_event_sink

from ._checks import check_action, check_execution_context, check_methods
from .approval import ApprovalService, get_approval_service
from .approval import ApprovalServiceLike as ApprovalServiceLike  # defined here before
from .definitions import ToolDefinition, ToolInput, ToolOutput
from .errors import (
    ToolApprovalDeniedError,
    ToolApprovalTimeoutError,
    ToolDeniedError,
    ToolExecutionError,
    ToolNotFoundError,
    ToolUndoError,
)
from .events import (
    ApprovalDecidedEvent,
    ApprovalRequestedEvent,
    ToolCompletedEvent,
    ToolDeniedEvent,
    ToolFailedEvent,
    ToolInvokedEvent,
    ToolStartedEvent,
    ToolUndoFailedEvent,
    ToolUndoneEvent,
)
from .undo import UndoStoreLike as UndoStoreLike  # defined here before
from .undo import get_undo_store

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from uuid import UUID

    from stageflow_trio.protocols import ExecutionContext

    from .definitions import Action, UndoMetadata

__all__ = ["AdvancedToolExecutor", "ExecutionResult", "ToolExecutorConfig"]


def _cancels_on_interrupt(service: object) -> bool:
    """Whether ``service``'s ``await_decision`` is :class:`ApprovalService`'s, which closes
    a PENDING request itself when interrupted."""
    return getattr(type(service), "await_decision", None) is ApprovalService.await_decision


logger: logging.Logger = logging.getLogger("stageflow_trio.tools.executor")

_SUMMARY_MAX_LENGTH = 200

_CANCEL_REQUEST_TIMEOUT = 5.0
"""How long an interrupted call waits for its approval request to be cancelled."""

_SHIELD_GRACE_SECONDS = 5.0
"""How long storing or deleting undo data may take, shielded, while the caller is cancelled."""

_STORE = "store the undo metadata of"
_DELETE = "delete the undo metadata of"


_UNDO_STORE_METHODS = ("store", "get", "delete")
_APPROVAL_SERVICE_METHODS = ("request_approval", "await_decision", "cancel_request")


def _check_config_seconds(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    check_seconds("ToolExecutorConfig", attribute.name, value)


def _check_config_flag(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    check_flag("ToolExecutorConfig", attribute.name, value)


def _check_config_int(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    check_int("ToolExecutorConfig", attribute.name, value)


def _check_config_limit(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"ToolExecutorConfig: {attribute.name} must be an int or None; got {type_of(value)}"
        )
    check_int("ToolExecutorConfig", attribute.name, value, minimum=1)


@frozen_compat
@attrs.frozen
class ToolExecutorConfig:
    """How an :class:`AdvancedToolExecutor` behaves.

    Attributes:
        approval_timeout_seconds: How long a call waits for an approval decision.
        undo_ttl_seconds: How long stored undo data stays valid.
        emit_events: Whether the executor emits its events.
        log_level: Kept for compatibility; the executor does not read it.
        max_concurrent: At most this many calls of one executor run their tool
            at once (None, the default: no limit). Not in the reference.
        max_concurrent_per_tool: At most this many calls per action type run
            their tool at once (None, the default: no limit). Not in the reference.

    The limits count only the tool's own run (from ``tool.started`` until the
    call returns or raises), not the approval wait. The executor reads them
    once, when it is built.

    Raises:
        TypeError, ValueError: A field has the wrong type, a negative duration
            or a limit below 1.
    """

    approval_timeout_seconds: float = attrs.field(default=60.0, validator=_check_config_seconds)
    undo_ttl_seconds: float = attrs.field(default=3600.0, validator=_check_config_seconds)
    emit_events: bool = attrs.field(default=True, validator=_check_config_flag)
    log_level: int = attrs.field(default=logging.INFO, validator=_check_config_int)
    # Additions, after the reference's fields so its positional order still holds.
    max_concurrent: int | None = attrs.field(default=None, validator=_check_config_limit)
    max_concurrent_per_tool: int | None = attrs.field(default=None, validator=_check_config_limit)


@frozen_compat
@attrs.frozen
class ExecutionResult:
    """The outcome of one tool call, for callers that report calls as values.

    Attributes:
        success: Whether the call succeeded.
        output: The tool's output, or None.
        error: An error message, or None.
        duration_ms: How long the call took.
        was_approved: Whether an approval was granted.
        was_denied: Whether the call was denied.
        denial_reason: Why it was denied, or None.
    """

    success: bool
    output: ToolOutput | None = None
    error: str | None = None
    duration_ms: float = 0.0
    was_approved: bool = False
    was_denied: bool = False
    denial_reason: str | None = None


_SECRET_KEY = re.compile(
    r"(?:^|[^a-z0-9])(?:password|passwd|pwd|secret|token|api[_-]?key|authorization"
    r"|credentials?|private[_-]?key|access[_-]?key|cookie)(?:$|[^a-z0-9])",
    re.IGNORECASE,
)
"""Payload keys whose values a summary shows as ``"***"`` (a whole word of the key, so
``access_token`` is one and ``max_tokens`` is not): the summary goes into the
``tool.invoked`` event and the stored approval request."""


def _summarize_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` with strings over 200 characters cut (``"..."`` appended) and
    lists or dicts whose ``str()`` is over 200 characters replaced by ``"<list with n items>"``.

    The value of a key that names a credential (``password``, ``api_key``,
    ``token``, ``authorization``...; see :data:`_SECRET_KEY`) is ``"***"``: the
    key stays, the secret does not reach events, logs or the approval store."""
    summary: dict[str, Any] = {}
    for key, value in payload.items():
        if _SECRET_KEY.search(str(key)) and value is not None:
            summary[key] = "***"
        elif isinstance(value, str) and len(value) > _SUMMARY_MAX_LENGTH:
            summary[key] = value[:_SUMMARY_MAX_LENGTH] + "..."
        elif isinstance(value, list | dict) and len(str(value)) > _SUMMARY_MAX_LENGTH:
            summary[key] = f"<{type(value).__name__} with {len(value)} items>"
        else:
            summary[key] = value
    return summary


def _summarize_output(output: ToolOutput) -> dict[str, Any]:
    return {
        "success": output.success,
        "has_data": output.data is not None,
        "has_error": output.error is not None,
        # As the reference reads it (not bool()), so odd outputs fail the same way.
        "has_artifacts": output.artifacts is not None and len(output.artifacts) > 0,
        "has_undo_metadata": output.undo_metadata is not None,
    }


def _undo_data_of(tool: ToolDefinition, output: ToolOutput) -> dict[str, Any] | None:
    """The undo data to store for ``output``: its ``undo_metadata`` when ``tool`` is
    undoable and the output succeeded with some (an empty dict stores nothing, as in
    the reference), else None.

    Raises:
        TypeError: That ``undo_metadata`` is not a dict (checked before
            ``tool.completed``, which the store's refusal would otherwise follow).
    """
    if not (tool.undoable and output.success):
        return None
    undo_metadata: object = output.undo_metadata
    if not undo_metadata:
        return None
    if not isinstance(undo_metadata, dict):
        raise TypeError(
            f"AdvancedToolExecutor: the undo_metadata of tool {tool.name!r} must be a dict;"
            f" got {type_of(undo_metadata)}"
        )
    return undo_metadata


def _elapsed_ms(start: float) -> float:
    return (monotonic() - start) * 1000


class AdvancedToolExecutor:
    """Runs actions through registered :class:`~stageflow_trio.tools.definitions.ToolDefinition` s.

    Args:
        config: The executor's settings (default ``ToolExecutorConfig()``).
        undo_store: Where undo data goes (default: the process-wide store); any
            :class:`UndoStoreLike` object.
        approval_service: Where approval requests go (default: the process-wide
            service); any :class:`ApprovalServiceLike` object.

    Raises:
        TypeError: ``config`` is not a ToolExecutorConfig; ``undo_store`` is
            neither None nor an UndoStore-like object (with ``store``, ``get`` and
            ``delete``); ``approval_service`` is neither None nor an
            ApprovalService-like object (with ``request_approval``,
            ``await_decision`` and ``cancel_request``).
    """

    def __init__(
        self,
        config: ToolExecutorConfig | None = None,
        undo_store: UndoStoreLike | None = None,
        approval_service: ApprovalServiceLike | None = None,
    ) -> None:
        if config is not None and not isinstance(config, ToolExecutorConfig):
            raise TypeError(
                f"AdvancedToolExecutor: config must be a ToolExecutorConfig or None;"
                f" got {type_of(config)}"
            )
        # Checked here: a wrong store would fail only after a handler's side effect.
        check_methods(
            "AdvancedToolExecutor", "undo_store", undo_store, "an UndoStore", _UNDO_STORE_METHODS
        )
        check_methods(
            "AdvancedToolExecutor",
            "approval_service",
            approval_service,
            "an ApprovalService",
            _APPROVAL_SERVICE_METHODS,
        )
        self.config: ToolExecutorConfig = ToolExecutorConfig() if config is None else config
        self._tools: dict[str, ToolDefinition] = {}
        # tool name -> the action types its registered tools hold (several tools may share
        # a name), for undo data this executor did not store itself.
        self._keys_by_name: dict[str, set[str]] = {}
        # action id -> (the action type its undo data was stored under, when that data
        # expires on the executor's clock): undo runs the tool that made the data, not
        # another tool of the same name. Recorded in order of expiry, so the oldest go first.
        self._undo_keys: dict[UUID, tuple[str, float]] = {}
        # One trio clock for the executor's life (it may serve several trio.run calls).
        self._clock = RunClock()
        # action id -> set when its undo_action in progress ends (see undo_action).
        self._undoing: dict[UUID, trio.Event] = {}
        # `is None`, not `or`: an empty UndoStore is falsy (it has __len__).
        self._undo_store: UndoStoreLike = get_undo_store() if undo_store is None else undo_store
        self._approval_service: ApprovalServiceLike = (
            get_approval_service() if approval_service is None else approval_service
        )
        # Semaphores (FIFO, no barging) so waiters run in arrival order; not
        # CapacityLimiter, which refuses a second token to one task and so would break
        # a handler that calls its own executor.
        limit = self.config.max_concurrent
        self._slots: trio.Semaphore | None = None if limit is None else trio.Semaphore(limit)
        self._tool_slots: dict[str, trio.Semaphore] = {}

    def register(self, tool: ToolDefinition) -> None:
        """Register ``tool`` for its action type (replacing any tool registered for it).

        Raises:
            TypeError: ``tool`` is not a ToolDefinition.
        """
        if not isinstance(tool, ToolDefinition):
            raise TypeError(
                f"AdvancedToolExecutor.register: tool must be a ToolDefinition; got {type_of(tool)}"
            )
        replaced = self._tools.get(tool.action_type)
        if replaced is not None:
            keys = self._keys_by_name[replaced.name]
            keys.discard(tool.action_type)
            if not keys:
                del self._keys_by_name[replaced.name]
        self._tools[tool.action_type] = tool
        self._keys_by_name.setdefault(tool.name, set()).add(tool.action_type)
        logger.debug("Registered tool: %s for action type: %s", tool.name, tool.action_type)

    def get_tool(self, action_type: str) -> ToolDefinition | None:
        """The tool registered for ``action_type``, or None."""
        return self._tools.get(action_type)

    def can_execute(self, action_type: str) -> bool:
        """Whether a tool is registered for ``action_type``."""
        return action_type in self._tools

    async def execute(self, action: Action, ctx: ExecutionContext) -> ToolOutput:
        """Run ``action`` through its tool: gating, approval, the handler, events and undo data.

        A checkpoint on every path. ``ctx`` supplies the run ids and the
        execution mode the tool is gated on.

        Returns:
            The handler's output (a failed output is returned, not raised).

        Raises:
            TypeError: ``action`` lacks a UUID ``id``, a str ``type`` or a mapping
                ``payload``, or ``ctx`` is not an ExecutionContext (a dict must be
                wrapped with ``adapt_context``; its ``pipeline_run_id`` must be a UUID or
                None, its ``execution_mode`` a str or None); raised before any event.
            ToolNotFoundError: No tool is registered for ``action.type``.
            ToolDeniedError: The run's execution mode may not use the tool.
            ToolApprovalDeniedError: The approval was denied or cancelled.
            ToolApprovalTimeoutError: No decision within ``approval_timeout_seconds``.
            ToolExecutionError: The handler (or storing its undo data) raised;
                the exception is its ``__cause__``.
        """
        check_action("AdvancedToolExecutor.execute", action)
        check_execution_context("AdvancedToolExecutor.execute", ctx)
        await trio.lowlevel.checkpoint()
        tool = self._tools.get(action.type)
        if tool is None:
            raise ToolNotFoundError(action.type)
        tool_input = ToolInput.from_action(action, tool.name, ctx)
        emit = self.config.emit_events

        if emit:
            await self._emit(
                "tool.invoked",
                ToolInvokedEvent(
                    tool_name=tool.name,
                    action_id=tool_input.action_id,
                    pipeline_run_id=ctx.pipeline_run_id,
                    request_id=ctx.request_id,
                    payload_summary=_summarize_payload(tool_input.payload),
                    behavior=ctx.execution_mode,
                ).to_dict(),
            )

        if not tool.is_behavior_allowed(ctx.execution_mode):
            if emit:
                await self._emit_denied(tool, tool_input, ctx, "behavior_not_allowed")
            raise ToolDeniedError(
                tool=tool.name,
                behavior=ctx.execution_mode,
                allowed_behaviors=tool.allowed_behaviors,
            )

        if tool.requires_approval and not await self._approve(tool, tool_input, ctx):
            raise ToolApprovalDeniedError(tool=tool.name)

        # The per-tool slot first: a call waiting for its tool's slot must not hold an
        # executor-wide one that another tool could use. One order everywhere, so no deadlock.
        tool_slots = self._tool_slots_for(tool.action_type)
        async with (
            nullcontext() if tool_slots is None else tool_slots,
            nullcontext() if self._slots is None else self._slots,
        ):
            return await self._run(tool, tool_input, ctx)

    def _tool_slots_for(self, action_type: str) -> trio.Semaphore | None:
        limit = self.config.max_concurrent_per_tool
        if limit is None:
            return None
        slots = self._tool_slots.get(action_type)
        if slots is None:
            slots = self._tool_slots[action_type] = trio.Semaphore(limit)
        return slots

    async def _run(
        self, tool: ToolDefinition, tool_input: ToolInput, ctx: ExecutionContext
    ) -> ToolOutput:
        """``tool.started``, the handler, ``tool.completed`` and undo data, or ``tool.failed``."""
        emit = self.config.emit_events
        start = monotonic()
        if emit:
            await self._emit(
                "tool.started",
                ToolStartedEvent(
                    tool_name=tool.name,
                    action_id=tool_input.action_id,
                    pipeline_run_id=ctx.pipeline_run_id,
                    request_id=ctx.request_id,
                ).to_dict(),
            )
        try:
            output = await tool.handler(tool_input)
            # The output is read in the reference's order (the completion summary, then
            # the undo data), so an output that is not a ToolOutput fails the same way.
            completed = (
                ToolCompletedEvent(
                    tool_name=tool.name,
                    action_id=tool_input.action_id,
                    pipeline_run_id=ctx.pipeline_run_id,
                    request_id=ctx.request_id,
                    duration_ms=_elapsed_ms(start),
                    output_summary=_summarize_output(output),
                    artifacts_count=len(output.artifacts) if output.artifacts else 0,
                ).to_dict()
                if emit
                else None
            )
            undo_data = _undo_data_of(tool, output)
            keep = (
                None
                if undo_data is None
                else self._undo_data_keeper(tool, tool_input.action_id, undo_data)
            )
            try:
                if completed is not None:
                    await self._emit("tool.completed", completed)
            except BaseException:
                # Cancelled while reporting: the handler's change is made, so what
                # undoes it must still be kept.
                if keep is not None:
                    await self._shielded(keep, _STORE, tool_input.action_id)
                raise
            if keep is not None:
                await self._despite_cancellation(keep, _STORE, tool_input.action_id)
        except Exception as exc:
            if emit:
                await self._emit(
                    "tool.failed",
                    ToolFailedEvent(
                        tool_name=tool.name,
                        action_id=tool_input.action_id,
                        pipeline_run_id=ctx.pipeline_run_id,
                        request_id=ctx.request_id,
                        duration_ms=_elapsed_ms(start),
                        error_code=type(exc).__name__,
                        error_message=error_text(exc),
                    ).to_dict(),
                )
            raise ToolExecutionError(
                tool=tool.name, action_id=tool_input.action_id, cause=exc
            ) from exc
        return output

    def _undo_data_keeper(
        self, tool: ToolDefinition, action_id: UUID, undo_data: dict[str, Any]
    ) -> Callable[[], Awaitable[None]]:
        """An operation storing the undo data of a call whose handler succeeded."""

        async def keep() -> None:
            ttl = self.config.undo_ttl_seconds
            await self._undo_store.store(
                action_id=action_id, tool_name=tool.name, undo_data=undo_data, ttl_seconds=ttl
            )
            self._remember_undo_key(action_id, tool.action_type, ttl)
            logger.debug("Stored undo metadata for action %s", action_id)

        return keep

    def _undo_data_remover(self, action_id: UUID) -> Callable[[], Awaitable[None]]:
        """An operation deleting the undo data of an action just undone."""

        async def remove() -> None:
            await self._undo_store.delete(action_id)
            self._undo_keys.pop(action_id, None)

        return remove

    async def _despite_cancellation(
        self, operation: Callable[[], Awaitable[None]], what: str, action_id: UUID
    ) -> None:
        """Run ``operation``; its error is raised. If the caller is cancelled meanwhile,
        it is run again shielded (see :meth:`_shielded`) before the cancellation goes on:
        the store's methods replace or delete, so running one twice is harmless."""
        try:
            await operation()
        except (trio.Cancelled, KeyboardInterrupt):
            # A Ctrl-C, delivered at the operation's checkpoint as a cancellation would be,
            # leaves the change made too: the undo data must still follow it.
            await self._shielded(operation, what, action_id)
            raise

    async def _shielded(
        self, operation: Callable[[], Awaitable[None]], what: str, action_id: UUID
    ) -> None:
        """Run ``operation`` shielded from cancellation while one propagates: the
        handler's change is made (or undone), so the undo data must follow it.
        Bounded, in case a replacement store blocks; its error is logged, never
        raised (it must not replace the cancellation)."""
        with trio.move_on_after(_SHIELD_GRACE_SECONDS, shield=True) as scope:
            try:
                await operation()
            except Exception as exc:  # noqa: BLE001 - the cancellation must propagate
                logger.warning("Failed to %s action %s: %s", what, action_id, exc)
        if scope.cancelled_caught:
            logger.warning(
                "Gave up trying to %s action %s after %s s",
                what,
                action_id,
                _SHIELD_GRACE_SECONDS,
            )

    async def _cancel_request(self, request_id: UUID) -> None:
        """Cancel an interrupted call's approval request, shielded and bounded (a replacement
        service may block); a failure is logged, never raised in place of the interruption
        (a cancellation must stay a cancellation)."""
        with trio.move_on_after(_CANCEL_REQUEST_TIMEOUT, shield=True) as scope:
            try:
                await self._approval_service.cancel_request(request_id)
            except Exception as exc:  # noqa: BLE001 - must not replace what is propagating
                logger.warning("Failed to cancel approval request %s: %s", request_id, exc)
        if scope.cancelled_caught:
            logger.warning(
                "Gave up cancelling approval request %s after %s s",
                request_id,
                _CANCEL_REQUEST_TIMEOUT,
            )

    async def _approve(
        self, tool: ToolDefinition, tool_input: ToolInput, ctx: ExecutionContext
    ) -> bool:
        """Request approval and wait for the decision; True if granted."""
        message = tool.approval_message or f"Approve {tool.name}?"
        request = await self._approval_service.request_approval(
            action_id=tool_input.action_id,
            tool_name=tool.name,
            pipeline_run_id=ctx.pipeline_run_id,
            approval_message=message,
            payload_summary=_summarize_payload(tool_input.payload),
        )
        emit = self.config.emit_events
        timeout = self.config.approval_timeout_seconds
        waiting = False
        try:
            if emit:
                await self._emit(
                    "approval.requested",
                    ApprovalRequestedEvent(
                        request_id=request.id,
                        tool_name=tool.name,
                        action_id=tool_input.action_id,
                        pipeline_run_id=ctx.pipeline_run_id,
                        approval_message=message,
                    ).to_dict(),
                )
            waiting = True
            decision = await self._approval_service.await_decision(
                request.id, timeout_seconds=timeout
            )
        except TimeoutError as exc:
            if emit:
                await self._emit_denied(tool, tool_input, ctx, "approval_timeout")
            raise ToolApprovalTimeoutError(
                tool=tool.name, request_id=request.id, timeout_seconds=timeout
            ) from exc
        except BaseException:
            # Interrupted before a decision (cancelled while emitting or waiting): no request
            # may stay PENDING for a call that no longer waits. ApprovalService's own wait
            # has tried already (and logged if it could not): trying again against a backend
            # that did not answer would only hold a shutdown another 5 s.
            if not (waiting and _cancels_on_interrupt(self._approval_service)):
                await self._cancel_request(request.id)
            raise
        if emit:
            await self._emit(
                "approval.decided",
                ApprovalDecidedEvent(
                    request_id=request.id,
                    tool_name=tool.name,
                    action_id=tool_input.action_id,
                    pipeline_run_id=ctx.pipeline_run_id,
                    decision="approved" if decision.granted else "denied",
                ).to_dict(),
            )
        return decision.granted

    def _remember_undo_key(self, action_id: UUID, action_type: str, ttl: float) -> None:
        """Record the action type ``action_id``'s undo data was stored under."""
        keys = self._undo_keys
        now = self._clock()
        # Forget what has expired, oldest first (one TTL per executor, so they expire in
        # order): the map stays as small as the store's live entries.
        while keys:
            oldest = next(iter(keys))
            if keys[oldest][1] >= now:
                break
            del keys[oldest]
        keys.pop(action_id, None)  # re-inserted last, in its new expiry order
        keys[action_id] = (action_type, now + ttl)

    def _tool_for_undo(self, metadata: UndoMetadata) -> ToolDefinition | None:
        """The registered tool that made ``metadata``, or None if it is gone.

        Data this executor stored is matched by the action type it was stored under;
        other data (stored directly, or by another executor sharing the store) by its
        tool name, when exactly one registered tool has that name.
        """
        recorded = self._undo_keys.get(metadata.action_id)
        if recorded is not None:
            key = recorded[0]
        else:
            keys = self._keys_by_name.get(metadata.tool_name)
            if not keys:
                return None
            if len(keys) > 1:
                logger.warning(
                    "Undo data of action %s names tool %s, registered for several action"
                    " types (%s): cannot tell which made it",
                    metadata.action_id,
                    metadata.tool_name,
                    ", ".join(sorted(keys)),
                )
                return None
            (key,) = keys
        tool = self._tools.get(key)
        # The key may since hold another tool (a later register for the same action type).
        return tool if tool is not None and tool.name == metadata.tool_name else None

    async def undo_action(self, action_id: UUID, ctx: ExecutionContext) -> bool:
        """Reverse action ``action_id`` with its tool's undo handler.

        A checkpoint on every path. On success emits ``tool.undone`` and
        deletes the undo data. The undo handler is that of the tool that made
        the data: the one registered under the action type the data was stored
        under (for data this executor did not store, the only registered tool
        with the data's tool name).

        Calls for one action are serialized within the executor: a call made while
        another undoes the same action waits for it, then finds no data (False)
        when that one succeeded, so the undo handler never runs twice for one
        stored change.

        Returns:
            True if it was undone; False if there is no (unexpired) undo data, or
            that tool is no longer registered (its action type now holds another
            tool) or has no undo handler (a warning is logged).

        Raises:
            TypeError: ``ctx`` is not an ExecutionContext (``pipeline_run_id`` a UUID
                or None, ``execution_mode`` a str or None); raised before anything runs.
            ToolUndoError: The undo handler raised (after ``tool.undo_failed``);
                the exception is its ``__cause__``. The undo data is kept.
        """
        check_execution_context("AdvancedToolExecutor.undo_action", ctx)
        await trio.lowlevel.checkpoint()
        # One undo of an action at a time: a second call waits for the first, then finds
        # the data gone (False) or, if the first failed or was cancelled, tries again.
        while (running := self._undoing.get(action_id)) is not None:
            await running.wait()
        finished = self._undoing[action_id] = trio.Event()
        try:
            return await self._undo(action_id, ctx)
        finally:
            del self._undoing[action_id]
            finished.set()

    async def _undo(self, action_id: UUID, ctx: ExecutionContext) -> bool:
        """The body of :meth:`undo_action`, run by one task at a time per action."""
        metadata = await self._undo_store.get(action_id)
        if metadata is None:
            self._undo_keys.pop(action_id, None)
            logger.warning("No undo metadata found for action %s", action_id)
            return False
        tool = self._tool_for_undo(metadata)
        if tool is None or tool.undo_handler is None:
            logger.warning("No undo handler for tool %s", metadata.tool_name)
            return False
        start = monotonic()
        try:
            await tool.undo_handler(metadata)
            try:
                if self.config.emit_events:
                    await self._emit_undone(tool, action_id, ctx, metadata, _elapsed_ms(start))
            except BaseException:
                # Cancelled while reporting: the action is undone, so its data must go
                # (else a second undo_action would undo it again).
                await self._shielded(self._undo_data_remover(action_id), _DELETE, action_id)
                raise
            await self._despite_cancellation(self._undo_data_remover(action_id), _DELETE, action_id)
        except Exception as exc:
            if self.config.emit_events:
                await self._emit(
                    "tool.undo_failed",
                    ToolUndoFailedEvent(
                        tool_name=tool.name,
                        action_id=action_id,
                        pipeline_run_id=ctx.pipeline_run_id,
                        request_id=ctx.request_id,
                        error_message=error_text(exc),
                        reason=type(exc).__name__,
                    ).to_dict(),
                )
            raise ToolUndoError(
                tool=tool.name, action_id=action_id, reason=error_text(exc)
            ) from exc
        return True

    async def _emit_undone(
        self,
        tool: ToolDefinition,
        action_id: UUID,
        ctx: ExecutionContext,
        metadata: UndoMetadata,
        duration_ms: float,
    ) -> None:
        await self._emit(
            "tool.undone",
            ToolUndoneEvent(
                tool_name=tool.name,
                action_id=action_id,
                pipeline_run_id=ctx.pipeline_run_id,
                request_id=ctx.request_id,
                duration_ms=duration_ms,
                original_action_timestamp=metadata.created_at,
            ).to_dict(),
        )

    async def _emit_denied(
        self, tool: ToolDefinition, tool_input: ToolInput, ctx: ExecutionContext, reason: str
    ) -> None:
        await self._emit(
            "tool.denied",
            ToolDeniedEvent(
                tool_name=tool.name,
                action_id=tool_input.action_id,
                pipeline_run_id=ctx.pipeline_run_id,
                request_id=ctx.request_id,
                reason=reason,
                behavior=ctx.execution_mode,
                allowed_behaviors=tool.allowed_behaviors,
            ).to_dict(),
        )

    async def _emit(self, event_type: str, data: dict[str, Any]) -> None:
        """Emit through the global sink; a sink error is logged, never raised."""
        sink = get_event_sink()
        try:
            await sink.emit(type=event_type, data=data)
        except Exception as exc:  # noqa: BLE001 - events are best-effort; the call goes on
            logger.warning("Failed to emit event %s: %s", event_type, exc)
