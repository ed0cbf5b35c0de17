"""The v1 tool shape: a named capability that executes one action type.

:class:`Tool` is the structural protocol the legacy
:class:`~stageflow_trio.tools.registry.ToolRegistry` works with; :class:`BaseTool`
is a base class to subclass instead. A tool receives its action wrapped in a
:class:`ToolInput` and answers with a :class:`ToolOutput`.

These are the legacy (v1) input and output; the v2 executor uses the richer
``ToolInput`` / ``ToolOutput`` of :mod:`stageflow_trio.tools.definitions`, which
the package's namespace exports under these names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

import attrs
import trio

from stageflow_trio._args import type_of
from stageflow_trio._frozen import frozen_compat
from stageflow_trio.tools._action import ActionProtocol
from stageflow_trio.utils.frozen import FrozenDict, FrozenList

if TYPE_CHECKING:
    from stageflow_trio.tools.executor import ToolOutputLike

    # ToolOutput is a ToolOutputLike by declaration, for type checkers only (at run time
    # the base is object). Pyright types a field with a converter as a descriptor it
    # synthesizes, which it never matches against a protocol's property: without the
    # declaration, pyright (and Pylance) reject a ToolRegistry as a ToolExecutor's
    # tool_registry (tests/typing/pyright_shapes.py).
    _ToolOutputLikeBase: TypeAlias = ToolOutputLike
else:
    _ToolOutputLikeBase = object

__all__ = ["BaseTool", "Tool", "ToolInput", "ToolOutput"]


def _freeze_data(value: Mapping[str, Any] | None) -> FrozenDict[str, Any] | None:
    if value is None or isinstance(value, FrozenDict):
        return value
    if type(value) is not dict and not isinstance(value, Mapping):
        # FrozenDict would also take key/value pairs; data is a mapping.
        raise TypeError(f"ToolOutput: data must be a mapping or None; got {type_of(value)}")
    return FrozenDict(value)


def _freeze_artifacts(
    value: list[dict[str, Any]] | None,
) -> FrozenList[dict[str, Any]] | None:
    if value is None:
        return None
    if type(value) is list:
        artifacts = FrozenList(value)
    elif isinstance(value, FrozenList):
        artifacts = value
    elif isinstance(value, str | bytes | bytearray | Mapping) or not isinstance(value, Iterable):
        # A str or a dict would be split into characters or keys.
        raise TypeError(
            f"ToolOutput: artifacts must be a list of mappings or None; got {type_of(value)}"
        )
    else:
        artifacts = FrozenList(value)
    for index, artifact in enumerate(artifacts):
        if type(artifact) is not dict and not isinstance(artifact, Mapping):
            raise TypeError(
                f"ToolOutput: artifacts[{index}] must be a mapping; got {type_of(artifact)}"
            )
    return artifacts


def _check_success(_instance: object, _attribute: object, value: Any) -> None:
    if value is not True and value is not False:
        raise TypeError(f"ToolOutput: success must be a bool; got {type_of(value)}")


def _check_error(_instance: object, _attribute: object, value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"ToolOutput: error must be a str or None; got {type_of(value)}")


@frozen_compat
@attrs.frozen
class ToolInput:
    """What a v1 tool receives: the action it executes.

    Attributes:
        action: The action (its ``type`` named this tool; its ``payload`` is the input).
    """

    action: ActionProtocol


@frozen_compat
@attrs.frozen
class ToolOutput(_ToolOutputLikeBase):
    """What a v1 tool returns.

    ``data`` and ``artifacts`` are kept as read-only copies (one level deep).
    The fields are checked when the output is built.

    Attributes:
        success: Whether the tool did its job.
        data: The tool's result data, if any.
        error: Why it failed, if it did.
        artifacts: Artifacts the tool produced (collected by the executor).

    Raises:
        TypeError: ``success`` is not a bool (``1`` or ``"yes"`` included),
            ``data`` not a mapping or None, ``error`` not a str or None, or
            ``artifacts`` not an iterable of mappings (a str or a mapping is
            not) or None. The message names the field.
    """

    success: bool = attrs.field(validator=_check_success)
    data: FrozenDict[str, Any] | None = attrs.field(default=None, converter=_freeze_data)
    error: str | None = attrs.field(default=None, validator=_check_error)
    artifacts: FrozenList[dict[str, Any]] | None = attrs.field(
        default=None, converter=_freeze_artifacts
    )


class Tool(Protocol):
    """A self-describing capability: a name, a description, and the action type it handles.

    Any object with these three attributes and an ``async execute`` method is a
    Tool; :class:`BaseTool` is an optional base class.
    """

    @property
    def name(self) -> str:
        """The tool's unique name."""
        ...

    @property
    def description(self) -> str:
        """What the tool does, for people and models."""
        ...

    @property
    def action_type(self) -> str:
        """The action type this tool executes (the registry's key)."""
        ...

    async def execute(self, input: ToolInput, ctx: dict[str, Any]) -> ToolOutput:  # noqa: A002 - the reference's parameter name
        """Execute ``input``'s action with the pipeline context ``ctx`` (a dict)."""
        ...


def _metadata(tool: BaseTool, attribute: str, what: str) -> str:
    value = getattr(type(tool), attribute, None)
    if value is None:
        raise NotImplementedError(
            f"{type(tool).__name__} must define {what} (or be decorated with @tool)"
        )
    return str(value)


class BaseTool:
    """A base class for tools.

    Subclasses override :attr:`name`, :attr:`description` and :attr:`action_type`,
    with class attributes or properties (or get them from the
    :func:`~stageflow_trio.tools.registry.tool` decorator), and :meth:`execute`.
    Not an ABC, as in the reference: an incomplete subclass can still be
    instantiated, and fails when the missing part is used.
    """

    if TYPE_CHECKING:
        # Any, for the checkers only: a subclass may then override each with a class
        # attribute (``name = "search"``, as the reference's tools guide writes it) or with
        # a property, and both pass mypy and pyright. Declared as properties, pyright
        # rejects the class attribute; declared ``str``, mypy rejects the property
        # ("Cannot override writeable attribute with read-only property"). Any is the one
        # declaration both accept either way. Read through a Tool, or a subclass that
        # annotates or defines them as properties, they are str. (Audit 26 tried the
        # rest, pyright 1.1.414 strict and mypy 2.4: a descriptor whose __get__ gives
        # str, declared or decorating a def, passes mypy, but pyright rejects the
        # class attribute and the property over it and does not match it against
        # Tool's properties, so BaseTool() and an @tool subclass stop being Tools;
        # ``name = _Shape.name`` (a property copied from another class, undeclared)
        # passes both in a checked file, but pyright infers no undeclared type in a
        # py.typed package, where it reads Unknown.)
        name: Any
        """The tool's unique name (a str)."""
        description: Any
        """What the tool does (a str)."""
        action_type: Any
        """The action type this tool executes (a str)."""
    else:

        @property
        def name(self) -> str:
            """The tool's unique name: the ``@tool`` name (default: the class name).

            Raises:
                NotImplementedError: not overridden and the class is not decorated.
            """
            return _metadata(self, "_tool_name", "name")

        @property
        def description(self) -> str:
            """What the tool does: the ``@tool`` description (default ``""``).

            Raises:
                NotImplementedError: not overridden and the class is not decorated.
            """
            return _metadata(self, "_tool_description", "description")

        @property
        def action_type(self) -> str:
            """The action type this tool executes: the ``@tool`` action type.

            Raises:
                NotImplementedError: not overridden and the class is not decorated.
            """
            return _metadata(self, "_tool_action_type", "action_type")

    async def execute(self, input: ToolInput, ctx: dict[str, Any]) -> ToolOutput:  # noqa: A002, ARG002 - the reference's signature
        """Execute the action; subclasses override this.

        A checkpoint.

        Raises:
            NotImplementedError: always, here.
        """
        await trio.lowlevel.checkpoint()
        raise NotImplementedError(f"Tool {self.name} must implement execute()")

    def __repr__(self) -> str:
        try:
            name = self.name
        except NotImplementedError:
            name = type(self).__name__
        return f"<Tool: {name}>"
