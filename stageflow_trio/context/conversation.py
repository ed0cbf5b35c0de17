"""Conversation: the message history of a run and the router's decision."""

from __future__ import annotations

from ._conversation import Conversation as Conversation

__all__ = ["Conversation"]
