"""The message and routing values a :class:`~stageflow_trio.context.Conversation` holds."""

from __future__ import annotations

from ._types import Message as Message
from ._types import RoutingDecision as RoutingDecision

__all__ = ["Message", "RoutingDecision"]
