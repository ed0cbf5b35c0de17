"""Human-in-the-loop approval: a tool call waits until someone approves or denies it.

The flow: :meth:`ApprovalService.request_approval` creates a PENDING
:class:`ApprovalRequest`; the caller waits in
:meth:`ApprovalService.await_decision` while another task (a UI handler, a
chat command) calls :meth:`~ApprovalService.record_decision` or
:meth:`~ApprovalService.cancel_request`, which wakes the waiter at once.

The trio design: each request has a ``trio.Event``; the wait is
``event.wait()`` under ``trio.move_on_after`` on the trio clock, so
``MockClock`` drives timeouts in tests. When the wait times out the request
becomes EXPIRED and the builtin ``TimeoutError`` is raised. When the waiter is
cancelled by its caller (a cancel scope, a failing sibling) a request still
PENDING becomes CANCELLED before ``Cancelled`` propagates, so nothing is left
waiting for a decision nobody will read (a backend that fails or does not answer
within 5 s leaves it PENDING, and a warning says so).

The service keeps its requests in an :class:`ApprovalBackend`: by default
:class:`InMemoryApprovalBackend`, for tests and single-process deployments;
:mod:`stageflow_trio.stores` has shared, durable ones (SQLite, Redis) for
several worker processes. All its methods run in the task that calls them
(there is no background task).
"""

from __future__ import annotations

import logging
import math
from enum import StrEnum
from typing import Any, Protocol, cast
from uuid import UUID

import attrs
import trio

from stageflow_trio._args import check_flag, check_seconds
from stageflow_trio._cross_run import CrossRunEvent
from stageflow_trio._frozen import frozen_compat
from stageflow_trio._globals import install_once, register_global_reset
from stageflow_trio._time import RunClock, utc_now_iso, uuid4

from ._checks import check_dict, check_str, check_uuid

logger: logging.Logger = logging.getLogger("stageflow_trio.tools.approval")

__all__ = [
    "ApprovalDecision",
    "ApprovalRequest",
    "ApprovalService",
    "ApprovalStatus",
    "clear_approval_service",
    "get_approval_service",
    "set_approval_service",
]


class ApprovalStatus(StrEnum):  # str() and format() give the value, as in 1.2.0
    """Where an approval request stands."""

    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


def _id_str(value: UUID | None) -> str | None:
    return None if value is None else str(value)


@attrs.define
class ApprovalRequest:
    """An approval request. Mutable: the service updates ``status``,
    ``decided_by`` and ``decided_at`` in place, so a caller holding the
    request sees its progress.

    Attributes:
        id: The request's id.
        action_id: The action waiting for approval.
        tool_name: The tool's name.
        pipeline_run_id: The run's id, or None.
        approval_message: What the approver is asked.
        status: Where the request stands.
        decided_by: Who decided, or None.
        decided_at: When the decision was recorded (ISO 8601, UTC), or None.
        created_at: When the request was made (ISO 8601, UTC).
        payload_summary: A summary of the action's payload for the approver.
    """

    id: UUID
    action_id: UUID
    tool_name: str
    pipeline_run_id: UUID | None = None
    approval_message: str = ""
    status: ApprovalStatus = ApprovalStatus.PENDING
    decided_by: UUID | None = None
    decided_at: str | None = None
    created_at: str = attrs.field(factory=utc_now_iso)
    payload_summary: dict[str, Any] = attrs.field(factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """All fields; ids as strings or None, ``status`` as its value."""
        return {
            "id": str(self.id),
            "action_id": str(self.action_id),
            "tool_name": self.tool_name,
            "pipeline_run_id": _id_str(self.pipeline_run_id),
            "approval_message": self.approval_message,
            "status": self.status.value,
            "decided_by": _id_str(self.decided_by),
            "decided_at": self.decided_at,
            "created_at": self.created_at,
            "payload_summary": self.payload_summary,
        }


@frozen_compat
@attrs.frozen
class ApprovalDecision:
    """The decision on an approval request.

    Attributes:
        request_id: The request decided.
        granted: Whether the call may run.
        decided_by: Who decided, or None.
        reason: Why, or None (``"cancelled"`` and ``"no_decision"`` come from the service).
    """

    request_id: UUID
    granted: bool
    decided_by: UUID | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """All four fields; ids as strings or None."""
        return {
            "request_id": str(self.request_id),
            "granted": self.granted,
            "decided_by": _id_str(self.decided_by),
            "reason": self.reason,
        }


def _not_found(request_id: UUID) -> KeyError:
    return KeyError(f"Approval request {request_id} not found")


class ApprovalBackend(Protocol):
    """Where an :class:`ApprovalService` keeps its requests and decisions.

    Every method is async and a checkpoint. :class:`InMemoryApprovalBackend`
    is the default; :mod:`stageflow_trio.stores` has SQLite and Redis ones,
    shared between processes (a decision recorded through one process wakes
    the waiter in another).
    """

    async def add(self, request: ApprovalRequest) -> None:
        """Store a new request."""
        ...

    async def get(self, request_id: UUID) -> ApprovalRequest | None:
        """The request with this id, or None."""
        ...

    async def latest_for_action(self, action_id: UUID) -> ApprovalRequest | None:
        """The newest request for the action, or None."""
        ...

    async def pending(self, pipeline_run_id: UUID | None = None) -> list[ApprovalRequest]:
        """The PENDING requests (of the run, when given), oldest first."""
        ...

    async def decide(self, decision: ApprovalDecision, decided_at: str) -> ApprovalRequest | None:
        """Record ``decision``: the request becomes APPROVED or DENIED (whatever its status),
        with ``decided_by`` and ``decided_at``; wake its waiters. None if the request is unknown."""
        ...

    async def close_pending(
        self, request_id: UUID, status: ApprovalStatus, decision: ApprovalDecision | None
    ) -> bool:
        """If the request is PENDING, make it ``status`` and return True; with a
        ``decision`` (a cancellation), record it and wake the waiters."""
        ...

    async def decision(self, request_id: UUID) -> ApprovalDecision | None:
        """The recorded decision, or None."""
        ...

    async def wait_decision(self, request_id: UUID) -> ApprovalDecision | None:
        """Wait until the request has a decision and return it; None if it was
        woken but the decision is gone (removed meanwhile). Cancellable."""
        ...

    async def remove(self, request_id: UUID) -> None:
        """Forget the request and its decision (no error if unknown); waiters are not woken."""
        ...


class InMemoryApprovalBackend:
    """The default :class:`ApprovalBackend`: this process's memory, one event per request.

    The backend of the process-wide service, so the event is a
    :class:`~stageflow_trio._cross_run.CrossRunEvent`: a request waited on in one
    thread's trio run can be decided from another thread's run (a plain
    ``trio.Event`` set there would trip trio's assertion and leave the waiter
    hanging); within one run it behaves as a ``trio.Event``.

    Requests are returned as the stored objects, so a caller holding one sees
    its status change in place. Nothing in a method checkpoints but its first
    line, so each call is atomic among trio tasks.

    A PENDING request is kept until it is closed or removed. A closed one
    (approved, denied, expired or cancelled) stays for ``retention_seconds``
    after its last change; the first :meth:`add` after that forgets it, as
    :meth:`remove` would, unless a task is still waiting on it (then it stays for
    another period). The reference keeps every request until it is removed, and
    the executor never removes one, so a long-running service grew by one request
    per approval; this one holds the open requests and those closed within the
    period. :meth:`pending` and :meth:`latest_for_action` read indexes (the
    requests not yet closed, the requests per action), so their cost does not
    grow with the requests already decided.

    Args:
        retention_seconds: How long a closed request stays readable (3600 s;
            ``math.inf`` keeps every request until :meth:`remove`, as the
            reference). Time is a :class:`~stageflow_trio._time.RunClock`: the
            trio clock of the run the backend is made (or first used) in.

    Raises:
        TypeError, ValueError: ``retention_seconds`` is not a number >= 0.
    """

    def __init__(self, retention_seconds: float = 3600.0) -> None:
        self._retention: float = check_seconds(
            "InMemoryApprovalBackend", "retention_seconds", retention_seconds
        )
        self._requests: dict[UUID, ApprovalRequest] = {}
        self._events: dict[UUID, CrossRunEvent] = {}
        self._decisions: dict[UUID, ApprovalDecision] = {}
        # The requests not yet closed, oldest first (pending() still checks their
        # status, in case a caller changed one in place).
        self._open: dict[UUID, ApprovalRequest] = {}
        # action id -> its requests, oldest first (latest_for_action reads the last),
        # and request id -> the action id it is filed under.
        self._by_action: dict[UUID, list[ApprovalRequest]] = {}
        self._action_of: dict[UUID, UUID] = {}
        # Closed request id -> when it last changed, oldest first (a change moves it to
        # the end), so forgetting the expired ones only reads the front: O(1) per add.
        self._closed: dict[UUID, float] = {}
        # Request id -> how many tasks wait in wait_decision: a woken waiter still has
        # to read its decision, and an expired request can still be decided.
        self._waiting: dict[UUID, int] = {}
        self._clock = RunClock()

    @property
    def retention_seconds(self) -> float:
        """How long a closed request is kept after its last change."""
        return self._retention

    async def add(self, request: ApprovalRequest) -> None:
        """Store a new request, first forgetting the closed ones kept long enough.
        A checkpoint, taken first."""
        await trio.lowlevel.checkpoint()
        self._forget_expired()
        if request.id in self._requests:  # stored again: it takes its new place
            self._unindex(self._requests[request.id])
        self._requests[request.id] = request
        self._events[request.id] = CrossRunEvent()
        self._by_action.setdefault(request.action_id, []).append(request)
        self._action_of[request.id] = request.action_id
        if request.status is ApprovalStatus.PENDING:
            self._open[request.id] = request
        else:
            self._mark_closed(request.id)

    def _mark_closed(self, request_id: UUID) -> None:
        """Start (or restart) the retention period of a request that is no longer PENDING."""
        if self._retention == math.inf:
            return  # never forgotten: nothing to keep track of
        self._closed.pop(request_id, None)  # re-inserted last, in its new order
        self._closed[request_id] = self._clock()

    def _forget_expired(self) -> None:
        """Forget the closed requests whose retention period is over, oldest first."""
        closed = self._closed
        now = self._clock()
        while closed:
            request_id, since = next(iter(closed.items()))
            if now - since <= self._retention:
                break
            del closed[request_id]
            if self._waiting.get(request_id):
                closed[request_id] = now  # still awaited: kept for another period
            else:
                self._drop(request_id)

    def _drop(self, request_id: UUID) -> None:
        request = self._requests.pop(request_id, None)
        if request is not None:
            self._unindex(request)
        self._events.pop(request_id, None)
        self._decisions.pop(request_id, None)

    def _unindex(self, request: ApprovalRequest) -> None:
        self._open.pop(request.id, None)
        self._closed.pop(request.id, None)
        action_id = self._action_of.pop(request.id)
        requests = self._by_action[action_id]
        requests.remove(request)
        if not requests:
            del self._by_action[action_id]

    async def get(self, request_id: UUID) -> ApprovalRequest | None:
        """The request, or None. A checkpoint."""
        await trio.lowlevel.checkpoint()
        return self._requests.get(request_id)

    async def latest_for_action(self, action_id: UUID) -> ApprovalRequest | None:
        """The newest request for the action, or None. A checkpoint."""
        await trio.lowlevel.checkpoint()
        requests = self._by_action.get(action_id)
        return None if requests is None else requests[-1]

    async def pending(self, pipeline_run_id: UUID | None = None) -> list[ApprovalRequest]:
        """The PENDING requests (of the run, when given), oldest first. A checkpoint."""
        await trio.lowlevel.checkpoint()
        return [
            request
            for request in self._open.values()
            if request.status is ApprovalStatus.PENDING
            and (pipeline_run_id is None or request.pipeline_run_id == pipeline_run_id)
        ]

    async def decide(self, decision: ApprovalDecision, decided_at: str) -> ApprovalRequest | None:
        """Record ``decision`` and wake the waiters; None if unknown. A checkpoint, taken first."""
        await trio.lowlevel.checkpoint()
        request = self._requests.get(decision.request_id)
        if request is None:
            return None
        request.status = ApprovalStatus.APPROVED if decision.granted else ApprovalStatus.DENIED
        self._open.pop(request.id, None)
        request.decided_by = decision.decided_by
        request.decided_at = decided_at
        self._decisions[request.id] = decision
        self._mark_closed(request.id)
        self._events[request.id].set()
        return request

    async def close_pending(
        self, request_id: UUID, status: ApprovalStatus, decision: ApprovalDecision | None
    ) -> bool:
        """See :meth:`ApprovalBackend.close_pending`. A checkpoint, taken first."""
        await trio.lowlevel.checkpoint()
        request = self._requests.get(request_id)
        if request is None or request.status is not ApprovalStatus.PENDING:
            return False
        request.status = status
        self._open.pop(request_id, None)
        self._mark_closed(request_id)
        if decision is not None:
            self._decisions[request_id] = decision
            self._events[request_id].set()
        return True

    async def decision(self, request_id: UUID) -> ApprovalDecision | None:
        """The recorded decision, or None. A checkpoint."""
        await trio.lowlevel.checkpoint()
        return self._decisions.get(request_id)

    async def wait_decision(self, request_id: UUID) -> ApprovalDecision | None:
        """Wait on the request's event; its decision then, or None. A checkpoint."""
        event = self._events.get(request_id)
        if event is None:
            await trio.lowlevel.checkpoint()
            return self._decisions.get(request_id)
        waiting = self._waiting
        waiting[request_id] = waiting.get(request_id, 0) + 1
        try:
            await event.wait()
        finally:
            # No checkpoint from here to the read below: a woken waiter gets its decision.
            left = waiting.pop(request_id) - 1
            if left:
                waiting[request_id] = left
        return self._decisions.get(request_id)

    async def remove(self, request_id: UUID) -> None:
        """Forget the request and its decision. A checkpoint, taken first."""
        await trio.lowlevel.checkpoint()
        self._drop(request_id)


# How long a waiter that is cancelled or timed out may spend closing its request (shielded).
_CANCEL_GRACE_SECONDS = 5.0


def _gave_up(request_id: UUID, what: str) -> None:
    # Loud: the request stays PENDING in its backend until someone closes it.
    logger.warning(
        "Gave up trying to %s approval request %s after %s s (the backend did not answer):"
        " it stays PENDING until decided or cancelled",
        what,
        request_id,
        _CANCEL_GRACE_SECONDS,
    )


class ApprovalService:
    """Approval requests and decisions, kept by a backend.

    Args:
        default_timeout_seconds: How long :meth:`await_decision` waits when
            given no timeout (60 s; ``math.inf`` waits for ever).
        backend: Where requests and decisions live; a new
            :class:`InMemoryApprovalBackend` by default, which forgets a closed
            request an hour after its last change (pass
            ``InMemoryApprovalBackend(retention_seconds=...)`` to choose how
            long; ``math.inf`` keeps them all, as the reference). A shared one (SQLite,
            Redis: :mod:`stageflow_trio.stores`) lets a decision recorded in
            one process wake the waiter in another.

    Raises:
        TypeError, ValueError: ``default_timeout_seconds`` is not a number >= 0.
    """

    def __init__(
        self, default_timeout_seconds: float = 60.0, *, backend: ApprovalBackend | None = None
    ) -> None:
        self.default_timeout_seconds: float = check_seconds(
            "ApprovalService", "default_timeout_seconds", default_timeout_seconds
        )
        self._backend: ApprovalBackend = InMemoryApprovalBackend() if backend is None else backend

    @property
    def backend(self) -> ApprovalBackend:
        """Where requests and decisions live."""
        return self._backend

    async def request_approval(
        self,
        action_id: UUID,
        tool_name: str,
        pipeline_run_id: UUID | None = None,
        approval_message: str = "",
        payload_summary: dict[str, Any] | None = None,
    ) -> ApprovalRequest:
        """Create a PENDING request (with a new id) and return it.

        A checkpoint, taken before the request exists: a cancelled call creates nothing.
        An empty or None ``payload_summary`` is stored as ``{}``. If the call is
        cancelled (or the backend fails) while the request is being stored, a
        request the backend stored anyway is closed as CANCELLED, so that no
        request nobody knows of stays PENDING.

        Raises:
            TypeError: ``action_id`` is not a UUID, ``tool_name`` not a str,
                ``pipeline_run_id`` not a UUID or None, ``approval_message`` not a
                str, or ``payload_summary`` not a dict or None (nothing is stored).
        """
        owner = "ApprovalService.request_approval"
        check_uuid(owner, "action_id", action_id)
        check_str(owner, "tool_name", tool_name)
        check_uuid(owner, "pipeline_run_id", pipeline_run_id, optional=True)
        check_str(owner, "approval_message", approval_message)
        check_dict(owner, "payload_summary", payload_summary, optional=True)
        await trio.lowlevel.checkpoint()
        request = ApprovalRequest(
            id=uuid4(),
            action_id=action_id,
            tool_name=tool_name,
            pipeline_run_id=pipeline_run_id,
            approval_message=approval_message,
            payload_summary=payload_summary or {},
        )
        try:
            await self._backend.add(request)
        except BaseException:
            # A shared backend may have stored it although the call did not complete
            # (cancelled during the write): nobody knows its id, so it must not stay
            # PENDING for approvers. Closed as cancelled, if it is there at all.
            await self._cancel_while_raising(request.id)
            raise
        return request

    async def request(self, request: ApprovalRequest) -> ApprovalRequest:
        """Create a PENDING request from ``request``'s action, tool, run, message and summary.

        The new request gets its own id; ``request`` itself is not stored.

        Raises:
            TypeError: ``request`` is not an ApprovalRequest; as :meth:`request_approval`,
                for ``request``'s fields.
        """
        if not isinstance(request, ApprovalRequest):
            raise TypeError(
                "ApprovalService.request: request must be an ApprovalRequest; "
                f"got {type(request).__name__}"
            )
        return await self.request_approval(
            action_id=request.action_id,
            tool_name=request.tool_name,
            pipeline_run_id=request.pipeline_run_id,
            approval_message=request.approval_message,
            payload_summary=request.payload_summary,
        )

    async def await_decision(
        self, request_id: UUID, timeout_seconds: float | None = None
    ) -> ApprovalDecision:
        """Wait until request ``request_id`` is decided or cancelled, at most ``timeout_seconds``.

        Returns at once when the request was already decided or cancelled. A
        checkpoint on every path. ``timeout_seconds`` None means
        :attr:`default_timeout_seconds`; time is the trio clock.

        Returns:
            The recorded decision; ``granted=False, reason="cancelled"`` for a
            cancelled request; ``granted=False, reason="no_decision"`` if the
            request was removed by :meth:`cleanup` after its event fired.

        Raises:
            KeyError: ``"Approval request {id} not found"``.
            TimeoutError: No decision within the timeout; a PENDING request
                becomes EXPIRED. A decision (or cancellation) recorded as the wait
                timed out, before the request could be closed as EXPIRED, is
                returned instead, so the request's status and the result agree
                (a request already decided when the call began still times out
                with a zero timeout, as the reference's ``wait_for`` does).
            TypeError: ``request_id`` is not a UUID.
            TypeError, ValueError: ``timeout_seconds`` is not a number >= 0.
            trio.Cancelled: The caller was cancelled, while waiting or already at
                the call's first checkpoint; a PENDING request becomes CANCELLED
                first (its other waiters wake with the cancelled decision), unless
                the backend fails or does not answer within 5 s (logged).
        """
        check_uuid("ApprovalService.await_decision", "request_id", request_id)
        timeout = (
            self.default_timeout_seconds
            if timeout_seconds is None
            else check_seconds("ApprovalService.await_decision", "timeout_seconds", timeout_seconds)
        )
        decision: ApprovalDecision | None = None
        timed_out = False
        try:
            # The lookup is inside: a waiter cancelled at its first checkpoint (a deadline
            # already passed, a run already cancelled) no longer waits either.
            request = await self._backend.get(request_id)
            found = request is not None
            # Read now: the in-memory backend's request changes in place.
            was_pending = request is not None and request.status is ApprovalStatus.PENDING
            if found:
                with trio.move_on_after(timeout) as scope:
                    decision = await self._backend.wait_decision(request_id)
                timed_out = scope.cancelled_caught
        except BaseException:
            # Cancelled from outside (or the backend failed): nobody will read a decision for
            # this wait.
            await self._cancel_while_raising(request_id)
            raise
        if not found:
            raise _not_found(request_id)
        if timed_out:
            # Shielded: a caller cancelled right after the timeout must not leave the
            # request PENDING for ever. A Ctrl-C reaches the shielded scope too: the
            # request is then closed as CANCELLED (as for one arriving in the wait)
            # before the KeyboardInterrupt goes on.
            try:
                with trio.move_on_after(_CANCEL_GRACE_SECONDS, shield=True) as grace:
                    closed = await self._backend.close_pending(
                        request_id, ApprovalStatus.EXPIRED, None
                    )
                    if not closed and was_pending:
                        # PENDING when the wait began, no longer now: a decision (or a
                        # cancellation) landed as the wait timed out. It is the answer;
                        # dropping it would leave an APPROVED request whose call never ran.
                        decision = await self._backend.decision(request_id)
                if grace.cancelled_caught:
                    _gave_up(request_id, "expire")
            except BaseException:
                await self._cancel_while_raising(request_id)
                raise
            if decision is None:
                # Bare, as the reference's wait_for raises it; the note says what it was.
                error = TimeoutError()
                assert request is not None  # found
                error.add_note(
                    f"ApprovalService.await_decision: approval request {request_id}"
                    f" (tool {request.tool_name!r}) got no decision within {timeout} s"
                    " (a PENDING request is now EXPIRED); decide it with"
                    " record_decision(...) sooner or wait longer (timeout_seconds=,"
                    " default_timeout_seconds=)"
                )
                raise error
        if decision is None:
            return ApprovalDecision(request_id=request_id, granted=False, reason="no_decision")
        return decision

    async def record_decision(
        self,
        request_id: UUID,
        granted: bool,
        decided_by: UUID | None = None,
        reason: str | None = None,
    ) -> ApprovalDecision:
        """Record a decision on request ``request_id`` and wake its waiters.

        The request becomes APPROVED or DENIED whatever its status was (an
        expired or cancelled request can still be decided). A checkpoint,
        taken before anything changes.

        Raises:
            KeyError: ``"Approval request {id} not found"`` (never made, removed by
                :meth:`cleanup`, or forgotten by the backend once closed long enough).
            TypeError: ``request_id`` is not a UUID, ``granted`` not a bool (a
                string such as ``"false"`` is refused, not read as a yes),
                ``decided_by`` not a UUID or None, or
                ``reason`` not a str or None; nothing is recorded.
        """
        owner = "ApprovalService.record_decision"
        check_uuid(owner, "request_id", request_id)
        check_flag(owner, "granted", granted)
        check_uuid(owner, "decided_by", decided_by, optional=True)
        check_str(owner, "reason", reason, optional=True)
        decision = ApprovalDecision(
            request_id=request_id, granted=granted, decided_by=decided_by, reason=reason
        )
        if await self._backend.decide(decision, utc_now_iso()) is None:
            raise _not_found(request_id)
        return decision

    async def _cancel_while_raising(self, request_id: UUID) -> None:
        """Close a PENDING request as CANCELLED while an exception propagates.

        Shielded and bounded (``_CANCEL_GRACE_SECONDS``); a failure to cancel is
        logged, never raised: the exception already propagating is the one to raise.
        """
        with (
            trio.CancelScope(shield=True),
            trio.move_on_after(_CANCEL_GRACE_SECONDS) as grace,
        ):
            try:
                await self._cancel_pending(request_id)
            except Exception as exc:  # noqa: BLE001 - must not replace what is propagating
                logger.warning("Failed to cancel approval request %s: %s", request_id, exc)
        if grace.cancelled_caught:
            _gave_up(request_id, "cancel")

    async def _cancel_pending(self, request_id: UUID) -> bool:
        return await self._backend.close_pending(
            request_id,
            ApprovalStatus.CANCELLED,
            ApprovalDecision(request_id=request_id, granted=False, reason="cancelled"),
        )

    async def cancel_request(self, request_id: UUID) -> bool:
        """Cancel request ``request_id`` if it is PENDING, and wake its waiters.

        Its waiters get ``ApprovalDecision(granted=False, reason="cancelled")``.
        A checkpoint, taken before anything changes.

        Returns:
            True if it was cancelled; False if it is unknown or no longer PENDING.
        """
        return await self._cancel_pending(request_id)

    async def get_request(self, request_id: UUID) -> ApprovalRequest | None:
        """The request with id ``request_id``, or None (also once the backend has
        forgotten it: the in-memory one keeps a closed request ``retention_seconds``).
        A checkpoint."""
        return await self._backend.get(request_id)

    async def get_status(self, request_or_action_id: UUID) -> ApprovalStatus | None:
        """The status of the request with this id, else of the newest request for
        the action with this id, else None. A checkpoint."""
        request = await self._backend.get(request_or_action_id)
        if request is None:
            request = await self._backend.latest_for_action(request_or_action_id)
        return None if request is None else request.status

    async def get_pending_requests(
        self, pipeline_run_id: UUID | None = None
    ) -> list[ApprovalRequest]:
        """The PENDING requests (of run ``pipeline_run_id`` when given), oldest first.
        A checkpoint."""
        return await self._backend.pending(pipeline_run_id)

    async def cleanup(self, request_id: UUID) -> None:
        """Forget request ``request_id`` and its decision (no error if unknown).

        Does not wake waiters: one still waiting keeps waiting until its timeout.
        A checkpoint, taken before anything changes.
        """
        await self._backend.remove(request_id)


class ApprovalServiceLike(Protocol):
    """What :class:`~stageflow_trio.tools.executor_v2.AdvancedToolExecutor` calls on
    its approval service, given or process-wide (:func:`set_approval_service`): an
    :class:`ApprovalService`, or any object with these three methods (it need not
    subclass ApprovalService)."""

    async def request_approval(
        self,
        action_id: UUID,
        tool_name: str,
        pipeline_run_id: UUID | None = None,
        approval_message: str = "",
        payload_summary: dict[str, Any] | None = None,
    ) -> ApprovalRequest:
        """Create a PENDING request and return it."""
        ...

    async def await_decision(
        self, request_id: UUID, timeout_seconds: float | None = None
    ) -> ApprovalDecision:
        """Wait for the decision on ``request_id``; ``TimeoutError`` when none comes in time."""
        ...

    async def cancel_request(self, request_id: UUID) -> object:
        """Cancel ``request_id`` if it is still PENDING."""
        ...


# -- the process-wide instance ------------------------------------------------
#
# One instance for the whole process (not per task): the task that approves a
# call is usually not a child of the task waiting for it.

_approval_service: ApprovalService | None = None


def get_approval_service() -> ApprovalService:
    """The process-wide approval service, created on first use.

    Typed as the :class:`ApprovalService` it creates, for its callers' sake (the
    approving side calls ``record_decision``): a replacement given to
    :func:`set_approval_service` that does not subclass ApprovalService is sure to
    have only :class:`ApprovalServiceLike`'s methods.
    """
    service = _approval_service
    if service is None:
        # Two threads may get here at once: both get the one installed first.
        service = install_once(globals(), "_approval_service", ApprovalService())
    return service


def set_approval_service(service: ApprovalServiceLike) -> None:
    """Make ``service`` the process-wide approval service (a replacement need not subclass
    ApprovalService: it needs :class:`ApprovalServiceLike`'s methods, those the executor calls)."""
    global _approval_service
    # Typed as get_approval_service returns it (see there); nothing is checked or wrapped.
    _approval_service = cast("ApprovalService", service)


def clear_approval_service() -> None:
    """Forget the process-wide approval service; the next get creates a new one."""
    global _approval_service
    _approval_service = None


register_global_reset(clear_approval_service)
