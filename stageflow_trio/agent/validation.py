"""Typed LLM output: ask a model for JSON, validate it, ask again when it is wrong.

:class:`TypedLLMOutput` validates a model's reply against a class: an attrs class
(structured with the package's cattrs converter) or, when pydantic is installed, a
pydantic model (``model_validate``), exactly as typed stage outputs are (one model
layer, :mod:`stageflow_trio.contracts`). :meth:`TypedLLMOutput.generate` calls the
client, and on invalid output appends the bad reply and a correction request
(with the class's JSON schema and the error) and calls again, up to
``max_retries`` more times.

Clients: anything with ``chat(messages=..., model=..., **kw)`` or
``complete(prompt, messages=..., model=..., **kw)``, either sync or async. A
sync method runs inline in the trio thread, so a client that blocks on I/O
freezes the run (and its deadline) until it returns: wrap such a client's call in
``trio.to_thread.run_sync`` inside an async ``chat``. The reply may be a string,
an :class:`~stageflow_trio.helpers.providers.LLMResponse`, or an OpenAI- or
Anthropic-style payload (dict or object); it is normalised to an LLMResponse.

JSON is looked for in the whole reply, then in fenced code blocks, then in the
first balanced ``{...}`` or ``[...]``; a reply with only native tool calls is
read as ``{"tool_calls": [...]}``. A stream (an async generator ``chat``, an SDK's
stream object) is refused with a ``TypeError`` at the first call: join the chunks in
the client.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import AsyncIterable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeVar

import attrs
import trio

from stageflow_trio._args import check_flag, check_int, error_text, type_of
from stageflow_trio._frozen import frozen_compat
from stageflow_trio.contracts import _models
from stageflow_trio.helpers.providers import LLMResponse

__all__ = [
    "LLMOutputValidationError",
    "TypedLLMOutput",
    "TypedLLMResult",
]

_T = TypeVar("_T")
_MISSING: Any = object()


class LLMOutputValidationError(ValueError):
    """The model's output did not validate after every retry.

    Attributes:
        model: The class it was validated against.
        errors: One message per failed attempt.
        response: The last reply.

    Raises:
        TypeError: ``model`` is not a class, ``errors`` is a str or not an iterable
            of str, or ``response`` is neither an LLMResponse nor None.
    """

    def __init__(self, model: type, errors: Sequence[str], response: LLMResponse | None) -> None:
        owner = "LLMOutputValidationError"
        if not isinstance(model, type):
            raise TypeError(f"{owner}: model must be a class; got {type_of(model)}")
        if response is not None and not isinstance(response, LLMResponse):
            raise TypeError(
                f"{owner}: response must be an LLMResponse or None; got {type_of(response)}"
            )
        self.model = model
        self.errors: tuple[str, ...] = _str_tuple(errors, owner=owner, param="errors")
        self.response = response
        super().__init__(
            f"Failed to validate LLM output as {model.__name__} after {len(self.errors)} attempt(s)"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.model, self.errors, self.response), self.__dict__)


def _str_tuple(
    values: Iterable[str], *, owner: str = "TypedLLMResult", param: str = "validation_errors"
) -> tuple[str, ...]:
    """``values`` as a tuple, refusing a bare str (its letters), a mapping and non-str items."""
    if isinstance(values, str | bytes | Mapping) or not isinstance(values, Iterable):
        raise TypeError(f"{owner}: {param} must be an iterable of str; got {type_of(values)}")
    result = tuple(values)
    for value in result:
        if type(value) is not str:
            raise TypeError(
                f"{owner}: {param} must be an iterable of str; got an item of type {type_of(value)}"
            )
    return result


@frozen_compat
@attrs.frozen
class TypedLLMResult(Generic[_T]):
    """A validated reply.

    Attributes:
        response: The normalised reply that validated.
        parsed: The validated instance.
        attempts: Model calls made (1 when the first reply validated).
        validation_errors: The errors of the attempts that failed before it (an
            iterable of str, stored as a tuple).

    Raises:
        TypeError: ``response`` is not an LLMResponse, ``attempts`` not an int, or
            ``validation_errors`` a str, a mapping or not an iterable of str.
        ValueError: ``attempts`` is below 1.
    """

    response: LLMResponse
    parsed: _T
    attempts: int
    validation_errors: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)

    def __attrs_post_init__(self) -> None:
        owner = "TypedLLMResult"
        if not isinstance(self.response, LLMResponse):
            raise TypeError(
                f"{owner}: response must be an LLMResponse; got {type_of(self.response)}"
            )
        check_int(owner, "attempts", self.attempts, minimum=1)


class TypedLLMOutput(Generic[_T]):
    """Validate a model's JSON output as ``model``.

    Args:
        model: An attrs class, or a pydantic model class.
        strict: Strict validation: no conversions (``"1"`` is not an int). Lax by
            default, with pydantic's conversions for attrs classes too. Unknown
            keys are ignored either way, as by a default pydantic model.

    Raises:
        TypeError: ``model`` is neither, or ``strict`` is not a bool.
    """

    def __init__(self, model: type[_T], *, strict: bool = False) -> None:
        owner = "TypedLLMOutput"
        if not _models.is_model_class(model):
            raise TypeError(
                f"{owner}: model must be an attrs class or a pydantic model; got {model!r}"
            )
        check_flag(owner, "strict", strict)
        self._model = model
        self._strict = strict

    @property
    def model(self) -> type[_T]:
        """The class replies are validated as."""
        return self._model

    def json_schema(self) -> dict[str, Any]:
        """The class's JSON schema: pydantic's own, or one in its shape for an attrs class."""
        return _models.json_schema(self._model)

    def validate_text(self, text: str) -> _T:
        """Find a JSON object in ``text`` and validate it.

        Raises:
            TypeError: ``text`` is not a str.
            ValueError: no candidate decodes to a JSON object.
            ValueError: the first decodable object does not validate ("Model
                validation failed: ..." for an attrs class, pydantic's
                ValidationError for a pydantic model).
        """
        if not isinstance(text, str):
            raise TypeError(
                f"TypedLLMOutput.validate_text: text must be a str; got {type_of(text)}"
            )
        # The last candidate's error message (not the exception: this frame is in
        # its traceback, and keeping it here would make a cycle).
        last_error: str | None = None
        for candidate in _json_candidates(text):
            try:
                payload = json.loads(candidate)
            except json.JSONDecodeError as exc:
                last_error = str(exc)
                continue
            if not isinstance(payload, dict):
                last_error = "LLM output JSON must decode to an object"
                continue
            parsed: _T = _models.validate(self._model, payload, strict=self._strict, context=None)
            return parsed
        if last_error is not None:
            raise ValueError(f"Could not parse valid JSON object from LLM output: {last_error}")
        raise ValueError("Could not find a JSON object in LLM output")

    def validate_response(self, response: LLMResponse) -> _T:
        """Validate a normalised reply: its text, then its native tool calls.

        Raises:
            ValueError: the reply has neither text nor tool calls.
            Exception: the last candidate's error, as :meth:`validate_text`.
        """
        last_error: Exception | None = None
        for candidate in _response_candidates(response):
            try:
                return self.validate_text(candidate)
            except Exception as exc:  # noqa: BLE001 - the next candidate may validate
                last_error = exc
        if last_error is not None:
            try:
                raise last_error
            finally:
                del last_error  # this frame is in its traceback: no cycle
        raise ValueError("Could not find structured content in normalized LLM response")

    async def generate(
        self,
        client: Any,
        messages: Sequence[Mapping[str, Any]],
        *,
        model: str,
        max_retries: int = 2,
        **kwargs: Any,
    ) -> TypedLLMResult[_T]:
        """Call ``client`` until its reply validates, at most ``max_retries + 1`` times.

        A checkpoint before every call, so a deadline or a cancellation stops the
        loop between attempts (and during an async client's call). ``messages``
        is not modified; ``kwargs`` go to the client.

        Raises:
            LLMOutputValidationError: every attempt failed.
            TypeError: ``client`` has neither ``chat`` nor ``complete``;
                ``messages`` is not a sequence of mappings; ``model`` is not a str;
                the client returned a stream (an async generator or an iterator
                with no reply in it), after that one call.
            ValueError: ``max_retries`` is negative.
            Exception: whatever the client raises.
        """
        owner = "TypedLLMOutput.generate"
        _check_messages(owner, messages)
        if type(model) is not str:
            raise TypeError(f"{owner}: model must be a str; got {type_of(model)}")
        check_int(owner, "max_retries", max_retries, minimum=0)
        working = [dict(message) for message in messages]
        errors: list[str] = []
        response: LLMResponse | None = None
        for attempt in range(1, max_retries + 2):
            response = await _call_llm(client, working, model=model, **kwargs)
            try:
                parsed = self.validate_response(response)
            except Exception as exc:  # noqa: BLE001 - a bad reply is fed back to the model
                error = error_text(exc)
                errors.append(error)
                working.append({"role": "assistant", "content": response.content})
                working.append({"role": "user", "content": self._retry_prompt(error)})
                continue
            return TypedLLMResult(
                response=response, parsed=parsed, attempts=attempt, validation_errors=errors
            )
        raise LLMOutputValidationError(self._model, errors, response)

    def _retry_prompt(self, error: str) -> str:
        schema = json.dumps(self.json_schema(), sort_keys=True)
        return (
            "Your previous response was invalid. Return ONLY a valid JSON object, with no "
            f"markdown, that matches this schema: {schema}. Validation error: {error}"
        )


def _check_messages(owner: str, messages: object) -> None:
    if isinstance(messages, str | bytes | Mapping) or not isinstance(messages, Sequence):
        raise TypeError(
            f"{owner}: messages must be a sequence of mappings (role, content); "
            f"got {type_of(messages)}"
        )
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise TypeError(
                f"{owner}: messages[{index}] must be a mapping (role, content); "
                f"got {type_of(message)}"
            )


# --- calling a client and normalising its reply -------------------------------------


async def _call_llm(
    client: Any, messages: Sequence[Mapping[str, Any]], *, model: str, **kwargs: Any
) -> LLMResponse:
    """Call ``client.chat`` (or ``client.complete``) and normalise the reply.

    A checkpoint before the call. A sync method runs inline (see the module
    docstring); an awaitable reply is awaited.

    Raises:
        TypeError: the client has neither method, or its reply is a stream (an
            iterator, sync or async, that reads as no content and no tool calls).
    """
    await trio.lowlevel.checkpoint()
    listed = [dict(message) for message in messages]
    chat = getattr(client, "chat", None)
    if callable(chat):
        raw = chat(messages=listed, model=model, **kwargs)
    else:
        complete = getattr(client, "complete", None)
        if not callable(complete):
            raise TypeError(
                "LLM client must expose either a 'chat' or a 'complete' method; "
                f"got {type_of(client)}"
            )
        raw = complete(_messages_to_prompt(listed), messages=listed, model=model, **kwargs)
    if inspect.isawaitable(raw):
        raw = await raw
    response = _normalize_llm_response(raw, client=client, fallback_model=model)
    if not (response.content or response.tool_calls) and isinstance(raw, AsyncIterable | Iterator):
        # A stream (an async generator ``chat``, an SDK's stream object) read as a
        # payload has no content: it would fail validation on every retry, each a paid
        # call, with an error that hides the cause. (An iterable payload that does hold
        # a reply, such as a test double, is still read.)
        raise TypeError(
            f"LLM client {type_of(client)} returned a stream ({type_of(raw)}); "
            "the agent needs the whole reply: join the chunks in chat/complete"
        )
    return response


def _messages_to_prompt(messages: Sequence[Mapping[str, Any]]) -> str:
    return "\n\n".join(
        f"{str(message.get('role', 'user')).upper()}: {_text(message.get('content', ''))}"
        for message in messages
    )


def _get(value: Any, name: str, default: Any = None) -> Any:
    if value is None:
        return default
    if isinstance(value, Mapping):
        return value.get(name, default)
    return getattr(value, name, default)


def _normalize_llm_response(raw: Any, *, client: Any, fallback_model: str) -> LLMResponse:
    """An LLMResponse from whatever a client returned.

    Reads ``content`` (top level, then ``message`` / ``choices[0].message``),
    else ``refusal``, ``output_text`` or ``output``; usage from
    ``usage.prompt_tokens`` / ``completion_tokens`` /
    ``prompt_tokens_details.cached_tokens``; tool calls from ``tool_calls`` or a
    legacy ``function_call``. The provider defaults to the client's class name
    in lower case.
    """
    if isinstance(raw, LLMResponse):
        return raw
    provider = _get(raw, "provider") if not isinstance(raw, str) else None
    provider = provider or type(client).__name__.lower()
    if isinstance(raw, str):
        return LLMResponse(content=raw, model=fallback_model, provider=str(provider))
    usage = _get(raw, "usage")
    choices = _get(raw, "choices")
    choice = (
        choices[0]
        if isinstance(choices, Sequence) and not isinstance(choices, str | bytes) and choices
        else None
    )
    message = _get(raw, "message") or _get(choice, "message")
    finish_reason = _get(raw, "finish_reason") or _get(choice, "finish_reason")
    tool_calls = _tool_calls(
        _get(raw, "tool_calls")
        or _get(message, "tool_calls")
        or _function_call(message)
        or _function_call(raw)
    )
    return LLMResponse(
        content=_content(raw, message),
        model=str(_get(raw, "model") or fallback_model),
        provider=str(provider),
        input_tokens=_count(_get(usage, "prompt_tokens")),
        output_tokens=_count(_get(usage, "completion_tokens")),
        finish_reason=None if finish_reason is None else str(finish_reason),
        tool_calls=tool_calls,
        cached_tokens=_cached(usage),
        raw_response=raw,
    )


def _count(value: Any) -> int:
    try:
        return max(int(value or 0), 0)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an infinite float
        return 0


def _cached(usage: Any) -> int:
    details = _get(usage, "prompt_tokens_details")
    for key in ("cached_tokens", "cache_read_input_tokens"):
        value = _get(details, key)
        if value is not None:
            return _count(value)
    return 0


def _content(raw: Any, message: Any) -> str:
    for source in (raw, message):
        value = _get(source, "content", _MISSING)
        if value is not _MISSING:
            text = _text(value)
            if text:
                return text
    refusal = _get(message, "refusal") or _get(raw, "refusal")
    if refusal is not None:
        return _text(refusal)
    output_text = _get(raw, "output_text")
    if output_text is not None:
        return _text(output_text)
    return _text(_get(raw, "output"))


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, Mapping):
        for key in ("text", "content", "output_text", "message"):
            if key in value:
                return _text(value[key])
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, Sequence):
        return "".join(_text(item) for item in value)
    return str(value)


def _function_call(source: Any) -> list[dict[str, Any]] | None:
    call = _get(source, "function_call")
    if call is None:
        return None
    return [{"id": _get(call, "id") or "call_1", "function": call}]


def _tool_calls(raw: Any) -> list[dict[str, Any]]:
    if raw is None:
        return []
    calls = raw if isinstance(raw, Sequence) and not isinstance(raw, str | bytes) else [raw]
    normalized: list[dict[str, Any]] = []
    for index, call in enumerate(calls, start=1):
        function = _get(call, "function")
        name = str(_get(function, "name") or _get(call, "name") or _get(call, "type") or "")
        if function is not None:
            raw_args = _get(function, "arguments")
        else:
            raw_args = _get(call, "arguments", _get(call, "input", _get(call, "args", {})))
        arguments = _arguments(raw_args)
        call_id = str(
            _get(call, "id")
            or _get(call, "call_id")
            or _get(call, "tool_call_id")
            or f"call_{index}"
        )
        normalized.append(
            {
                "id": call_id,
                "call_id": call_id,
                "name": name,
                "arguments": arguments,
                "type": _get(call, "type") or "function",
                "function": {
                    "name": name,
                    "arguments": raw_args
                    if isinstance(raw_args, str)
                    else json.dumps(arguments, ensure_ascii=False, sort_keys=True),
                },
            }
        )
    return normalized


def _arguments(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def _response_candidates(response: LLMResponse) -> list[str]:
    candidates: list[str] = []
    if response.content.strip():
        candidates.append(response.content)
    if response.tool_calls:
        synthesized = json.dumps(
            {
                "tool_calls": [
                    {
                        "name": call.get("name", ""),
                        "arguments": call.get("arguments", {}),
                        "call_id": call.get("call_id") or call.get("id"),
                    }
                    for call in response.tool_calls
                ]
            },
            ensure_ascii=False,
        )
        if synthesized not in candidates:
            candidates.append(synthesized)
    return candidates


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.IGNORECASE | re.DOTALL)


def _json_candidates(text: str) -> list[str]:
    stripped = text.strip()
    candidates = [stripped] if stripped else []
    candidates.extend(block.strip() for block in _FENCE.findall(stripped) if block.strip())
    balanced = _first_balanced(stripped)
    if balanced is not None and balanced not in candidates:
        candidates.append(balanced)
    return candidates


def _first_balanced(text: str) -> str | None:
    """The first ``{...}`` or ``[...]`` span whose brackets balance outside strings."""
    start = next((i for i, char in enumerate(text) if char in "[{"), None)
    if start is None:
        return None
    opening = text[start]
    closing = "}" if opening == "{" else "]"
    depth = 0
    in_string = escaped = False
    for end in range(start, len(text)):
        char = text[end]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == opening:
            depth += 1
        elif char == closing:
            depth -= 1
            if depth == 0:
                return text[start : end + 1]
    return None
