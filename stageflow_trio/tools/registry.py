"""The legacy (v1) tool registry: find tools by action type, parse model tool calls.

A :class:`ToolRegistry` maps action types to :class:`~stageflow_trio.tools.base.Tool`
instances, or to factories that build the tool on first use.
:meth:`ToolRegistry.parse_and_resolve` turns the tool calls of a model response
(OpenAI's ``{"id", "function": {"name", "arguments"}}`` shape by default, or a
direct or custom-named shape) into :class:`ResolvedToolCall` and
:class:`UnresolvedToolCall` values.

A process-wide registry backs :func:`get_tool_registry`, :func:`register_tool`
and the :func:`tool` class decorator; :func:`clear_tool_registry` (and
``stageflow_trio.testing.reset_globals``) replace it with an empty one.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import attrs
import trio

from stageflow_trio._args import check_callable, type_of
from stageflow_trio._frozen import frozen_compat
from stageflow_trio._globals import install_once, register_global_reset
from stageflow_trio.tools._action import ActionProtocol as ActionProtocol  # noqa: TC001 - importable here, as in the reference
from stageflow_trio.tools.base import Tool, ToolInput, ToolOutput

__all__ = [
    "ResolvedToolCall",
    "ToolRegistry",
    "UnresolvedToolCall",
    "clear_tool_registry",
    "get_tool_registry",
    "register_tool",
    "tool",
]

_T = TypeVar("_T", bound=type)


@frozen_compat
@attrs.frozen
class ResolvedToolCall:
    """A tool call whose name matched a registered tool.

    Attributes:
        tool: The tool registered for the call's name (an action type).
        call_id: The provider's id for the call (``""`` when it had none).
        name: The tool name the call gave.
        arguments: The decoded arguments (the call's own dict when it gave one).
        raw: The tool call exactly as given.
    """

    tool: Tool
    call_id: str
    name: str
    arguments: dict[str, Any]
    raw: Any = None


@frozen_compat
@attrs.frozen
class UnresolvedToolCall:
    """A tool call that could not be resolved, and why.

    Attributes:
        call_id: The provider's id for the call.
        name: The tool name the call gave.
        arguments: The decoded arguments (``{}`` when they could not be decoded).
        error: Why: no tool registered, invalid JSON arguments, or a malformed call.
        raw: The tool call exactly as given.
    """

    call_id: str
    name: str
    arguments: dict[str, Any]
    error: str
    raw: Any = None


def _check_name(owner: str, param: str, value: object, *, optional: bool = False) -> None:
    if isinstance(value, str) or (optional and value is None):
        return
    rule = "a str or None" if optional else "a str"
    raise TypeError(f"{owner}: {param} must be {rule}; got {type_of(value)}")


def _action_type_of(owner: str, tool: object) -> str:
    if isinstance(tool, type):
        # A class with a str action_type would be kept as the tool, and every call of it
        # would then fail far from here (execute unbound: "missing ... 'ctx'").
        raise TypeError(
            f"{owner}: tool must be a tool instance, not the class {tool.__qualname__}; "
            f"register {tool.__qualname__}(), or decorate the class with @tool(action_type) "
            "to have it built on first use"
        )
    try:
        action_type = tool.action_type  # type: ignore[attr-defined]
    except AttributeError:
        raise TypeError(
            f"{owner}: tool must have an action_type attribute; got {type_of(tool)}"
        ) from None
    if not isinstance(action_type, str):
        raise TypeError(f"{owner}: tool.action_type must be a str; got {type_of(action_type)}")
    return action_type


class _CallError(Exception):
    """A tool call that cannot be parsed; becomes "Failed to parse tool call: ..."."""


class _NotAnObjectError(ValueError):
    """JSON arguments that decode to something other than an object."""


def _decode_arguments(raw_args: object) -> dict[str, Any]:
    """The call's arguments as a dict.

    Raises:
        json.JSONDecodeError, _NotAnObjectError: reported as "Invalid JSON arguments".
        ValueError, RecursionError: valid JSON Python cannot decode (an integer over
            ``sys.get_int_max_str_digits()`` digits, very deep nesting); reported, as
            in the reference, as "Failed to parse tool call".
    """
    if isinstance(raw_args, str):
        if not raw_args:
            return {}
        decoded = json.loads(raw_args)
        if not isinstance(decoded, dict):
            raise _NotAnObjectError(f"expected a JSON object; got {type_of(decoded)}")
        return decoded
    return raw_args if isinstance(raw_args, dict) else {}


class ToolRegistry:
    """Tools by action type, built eagerly (:meth:`register`) or on first use (:meth:`register_factory`).

    An instance registered for an action type takes precedence over a factory
    for the same type; a factory's tool is built once and kept.
    """

    def __init__(self) -> None:
        self._tools: dict[str, Tool] = {}
        self._factories: dict[str, Callable[[], Tool]] = {}

    def register(self, tool: Tool) -> None:
        """Register ``tool`` for its ``action_type`` (replacing any tool registered for it).

        Raises:
            TypeError: ``tool`` is a class, or ``tool.action_type`` is missing or not a str.
        """
        self._tools[_action_type_of("ToolRegistry.register", tool)] = tool

    def register_factory(self, action_type: str, factory: Callable[[], Tool]) -> None:
        """Register ``factory`` to build the tool for ``action_type`` when it is first needed.

        Raises:
            TypeError: ``action_type`` is not a str or ``factory`` is not callable.
        """
        _check_name("ToolRegistry.register_factory", "action_type", action_type)
        check_callable("ToolRegistry.register_factory", "factory", factory)
        self._factories[action_type] = factory

    def get_tool(self, action_type: str) -> Tool | None:
        """The tool for ``action_type``, building it from its factory on first use; None if none.

        Raises:
            Exception: whatever the factory raises (nothing is kept then).
        """
        tool = self._tools.get(action_type)
        if tool is not None:
            return tool
        factory = self._factories.get(action_type)
        if factory is None:
            return None
        tool = factory()
        self._tools[action_type] = tool
        return tool

    def can_execute(self, action_type: str) -> bool:
        """Whether a tool or a factory is registered for ``action_type``."""
        return action_type in self._tools or action_type in self._factories

    async def execute(self, action: ActionProtocol, ctx: dict[str, Any]) -> ToolOutput:
        """Execute ``action`` with the tool registered for its type.

        A checkpoint. Without a tool the result is a failed output, "No tool
        registered for action type: t".

        Returns:
            The tool's output.

        Raises:
            TypeError: ``action`` has no str ``type`` (not an action), before
                the checkpoint.
            Exception: whatever the tool (or its factory) raises.
        """
        if not isinstance(getattr(action, "type", None), str):
            raise TypeError(
                f"ToolRegistry.execute: action must be an action with a str type; "
                f"got {type_of(action)}"
            )
        await trio.lowlevel.checkpoint()
        tool = self.get_tool(action.type)
        if tool is None:
            return ToolOutput(
                success=False, error=f"No tool registered for action type: {action.type}"
            )
        return await tool.execute(ToolInput(action=action), ctx)

    def list_tools(self) -> builtins.list[Tool]:
        """The tools registered or already built from a factory, in registration order."""
        return builtins.list(self._tools.values())

    def __contains__(self, action_type: object) -> bool:
        return isinstance(action_type, str) and self.can_execute(action_type)

    def parse_and_resolve(
        self,
        tool_calls: Iterable[Mapping[str, Any]],
        *,
        id_field: str = "id",
        name_field: str = "name",
        arguments_field: str = "arguments",
        function_wrapper: str | None = "function",
    ) -> tuple[builtins.list[ResolvedToolCall], builtins.list[UnresolvedToolCall]]:
        """Parse a model's tool calls and resolve each name to a registered tool.

        A call holds its id at ``id_field``; its name and arguments sit at
        ``name_field`` and ``arguments_field`` of the ``function_wrapper`` dict
        when the call has one (OpenAI's shape), else of the call itself. The
        name is an action type. Arguments given as a JSON string are decoded
        (``""`` gives ``{}``); a dict is used as is; anything else gives ``{}``.

        A call fails (an :class:`UnresolvedToolCall`, in call order) when no
        tool is registered for its name ("No tool registered for action type:
        n"), when its arguments are not a JSON object ("Invalid JSON arguments:
        ..."), or when it is malformed or its tool's factory raises ("Failed to
        parse tool call: ...").

        Example::

            resolved, unresolved = registry.parse_and_resolve(
                [{"id": "call_1", "function": {"name": "search", "arguments": '{"q": "trio"}'}}]
            )

        Returns:
            The resolved calls and the unresolved ones, each in call order.

        Raises:
            TypeError: ``tool_calls`` is not an iterable of dicts, or a field
                name is not a str.
        """
        owner = "ToolRegistry.parse_and_resolve"
        if isinstance(tool_calls, (str, bytes, Mapping)) or not isinstance(tool_calls, Iterable):
            raise TypeError(
                f"{owner}: tool_calls must be a list of dicts; got {type_of(tool_calls)}"
            )
        _check_name(owner, "id_field", id_field)
        _check_name(owner, "name_field", name_field)
        _check_name(owner, "arguments_field", arguments_field)
        _check_name(owner, "function_wrapper", function_wrapper, optional=True)
        resolved: builtins.list[ResolvedToolCall] = []
        unresolved: builtins.list[UnresolvedToolCall] = []
        for index, call in enumerate(tool_calls):
            if not isinstance(call, Mapping):
                raise TypeError(f"{owner}: tool_calls[{index}] must be a dict; got {type_of(call)}")
            try:
                call_id = str(call.get(id_field, ""))
                if function_wrapper and function_wrapper in call:
                    # Not checked: a wrapper without .get() fails below with the
                    # reference's AttributeError message.
                    inner = call[function_wrapper]
                else:
                    inner = call
                name = inner.get(name_field, "")
                if not isinstance(name, str):
                    raise _CallError(f"{name_field} must be a str; got {type_of(name)}")  # noqa: TRY301 - reported like any malformed call
                try:
                    arguments = _decode_arguments(inner.get(arguments_field, {}))
                except (json.JSONDecodeError, _NotAnObjectError) as exc:
                    unresolved.append(
                        UnresolvedToolCall(
                            call_id=call_id,
                            name=name,
                            arguments={},
                            error=f"Invalid JSON arguments: {exc}",
                            raw=call,
                        )
                    )
                    continue
                tool = self.get_tool(name)
            except Exception as exc:  # noqa: BLE001 - a malformed call or a failing factory is reported; the next call still resolves
                unresolved.append(
                    UnresolvedToolCall(
                        call_id=str(call.get(id_field, "unknown")),
                        name=str(call.get(name_field, "unknown")),
                        arguments={},
                        error=f"Failed to parse tool call: {exc}",
                        raw=call,
                    )
                )
                continue
            if tool is None:
                unresolved.append(
                    UnresolvedToolCall(
                        call_id=call_id,
                        name=name,
                        arguments=arguments,
                        error=f"No tool registered for action type: {name}",
                        raw=call,
                    )
                )
            else:
                resolved.append(
                    ResolvedToolCall(
                        tool=tool, call_id=call_id, name=name, arguments=arguments, raw=call
                    )
                )
        return resolved, unresolved

    # Aliases stageflow 1.2 added for code written against older registries.

    def get(self, action_type: str) -> Tool | None:
        """The same as :meth:`get_tool`."""
        return self.get_tool(action_type)

    def get_by_action_type(self, action_type: str) -> Tool | None:
        """The same as :meth:`get_tool`."""
        return self.get_tool(action_type)

    def has(self, action_type: str) -> bool:
        """The same as :meth:`can_execute`."""
        return self.can_execute(action_type)

    def register_tool(self, tool: Tool) -> None:
        """The same as :meth:`register`."""
        self.register(tool)

    def list(self) -> builtins.list[Tool]:
        """The same as :meth:`list_tools`."""
        return self.list_tools()


_registry: ToolRegistry | None = None


def get_tool_registry() -> ToolRegistry:
    """The process-wide tool registry (created empty on first use)."""
    registry = _registry
    if registry is None:
        # Two threads may get here at once: both get the one installed first.
        registry = install_once(globals(), "_registry", ToolRegistry())
    return registry


def clear_tool_registry() -> None:
    """Drop the process-wide registry: the next :func:`get_tool_registry` returns a new, empty one."""
    global _registry
    _registry = None


register_global_reset(clear_tool_registry)


def register_tool(tool_instance: Tool) -> None:
    """Register ``tool_instance`` in the process-wide registry.

    Raises:
        TypeError: ``tool_instance`` is a class (so ``@register_tool`` on a class is
            refused: use ``@tool(action_type)``), or its ``action_type`` is missing or
            not a str.
    """
    _action_type_of("register_tool", tool_instance)
    get_tool_registry().register(tool_instance)


def tool(
    action_type: str, name: str | None = None, description: str | None = None
) -> Callable[[_T], _T]:
    """Class decorator: register the class as the factory for ``action_type`` globally.

    The class gets ``_tool_action_type``, ``_tool_name`` (``name``, default
    the class name) and ``_tool_description`` (default ``""``), which
    :class:`~stageflow_trio.tools.base.BaseTool` serves as its ``action_type``,
    ``name`` and ``description``; it is returned unchanged otherwise, and built
    (with no arguments) the first time its action type is looked up.

    Example::

        @tool("search", description="Search the web")
        class SearchTool(BaseTool):
            async def execute(self, input, ctx): ...

    Raises:
        TypeError: an argument is not a str, or what is decorated is not a class.
    """
    _check_name("tool", "action_type", action_type)
    _check_name("tool", "name", name, optional=True)
    _check_name("tool", "description", description, optional=True)

    def decorator(cls: _T) -> _T:
        if not isinstance(cls, type):
            raise TypeError(f"tool: the decorated object must be a class; got {type_of(cls)}")
        cls._tool_action_type = action_type  # type: ignore[attr-defined]
        cls._tool_name = name or cls.__name__  # type: ignore[attr-defined]
        cls._tool_description = description or ""  # type: ignore[attr-defined]
        get_tool_registry().register_factory(action_type, cls)
        return cls

    return decorator
