"""The action shapes tools receive, shared by the tool modules.

:class:`ActionProtocol` is what the v1 registry and executor read of an action
(its ``type`` names the tool, its ``payload`` is the tool's input);
:class:`Action` adds the ``id`` the v2 definitions and executor correlate
events, undo data and approvals with. Both are structural: any object with
these attributes (a planner's own action class, a test fake) is accepted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from uuid import UUID


class ActionProtocol(Protocol):
    """An action of a plan: a type that names the tool, and a payload."""

    @property
    def type(self) -> str:
        """The action type; tools are looked up by it."""
        ...

    @property
    def payload(self) -> dict[str, Any]:
        """The tool's input."""
        ...


class Action(Protocol):
    """An identified action: what the v2 tool definitions and executor take."""

    @property
    def id(self) -> UUID:
        """The action's unique id."""
        ...

    @property
    def type(self) -> str:
        """The action type; tools are looked up by it."""
        ...

    @property
    def payload(self) -> dict[str, Any]:
        """The tool's input."""
        ...
