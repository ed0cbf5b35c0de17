"""TypedStageOutput: validate a stage's payload against a model before it becomes a StageOutput.

The model is an attrs class (structured by the package's cattrs converter) or
a pydantic v2 model (``model_validate`` / ``model_dump``)::

    @attrs.frozen
    class Summary:
        text: str
        confidence: float = 1.0

    typed = TypedStageOutput(Summary, default_version="summary/v1")
    output = typed.ok({"text": "done", "confidence": 0.9})
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import trio

from stageflow_trio._args import check_callable, type_of
from stageflow_trio._time import utc_now_iso
from stageflow_trio.contracts._models import (
    dump,
    is_model_class,
    is_model_instance,
    is_pydantic_model,
    validate,
)
from stageflow_trio.contracts.registry import ContractMetadata, registry
from stageflow_trio.core.stage_output import StageOutput

__all__ = ["TypedStageOutput"]

_ModelT = TypeVar("_ModelT")
_Payload = Any  # a model instance, a dict, or None
AsyncPayloadFactory = Callable[[], Awaitable[_Payload]]
VersionFactory = Callable[[], str]


class TypedStageOutput(Generic[_ModelT]):
    """Validates payloads against ``model`` and builds ``StageOutput.ok`` results.

    Args:
        model: An attrs class, or a pydantic model class.
        strict: Validate strictly: pydantic's strict mode; for attrs, primitive
            fields (str, int, float, bool, bytes) take only values of their type.
        context: pydantic's validation context (attrs models do not use it).
        default_version: The ``version`` of every output, unless overridden.
        version_factory: Called for the version of each output instead.

    Raises:
        ValueError: both ``default_version`` and ``version_factory`` are given.
        TypeError: ``model`` is not a model class, ``version_factory`` is not callable,
            ``strict`` is not a bool or ``default_version`` neither a str nor None.
    """

    def __init__(
        self,
        model: type[_ModelT],
        *,
        strict: bool = False,
        context: dict[str, Any] | None = None,
        default_version: str | None = None,
        version_factory: VersionFactory | None = None,
    ) -> None:
        if default_version and version_factory:
            raise ValueError("Provide either default_version or version_factory, not both")
        if not is_model_class(model):
            raise TypeError(
                "TypedStageOutput: model must be an attrs class or a pydantic model class; "
                f"got {model!r}"
            )
        check_callable("TypedStageOutput", "version_factory", version_factory, optional=True)
        if not isinstance(strict, bool):
            # pydantic refuses it when validating; attrs models would read its truth value.
            raise TypeError(f"TypedStageOutput: strict must be a bool; got {type_of(strict)}")
        if default_version is not None and not isinstance(default_version, str):
            raise TypeError(
                "TypedStageOutput: default_version must be a str or None; "
                f"got {type_of(default_version)}"
            )
        self._model = model
        self._strict = strict
        self._context = context or {}
        self._default_version = default_version
        self._version_factory = version_factory

    @property
    def model(self) -> type[_ModelT]:
        """The model class."""
        return self._model

    def validate(self, payload: _Payload = None, **kwargs: Any) -> _ModelT:
        """The payload as a model instance; ``kwargs`` override its fields.

        An instance of the model itself (without ``kwargs``) is returned as is;
        another model instance is dumped and validated; a dict is validated;
        None means ``{}``.

        Raises:
            TypeError: the payload is none of those.
            ValueError: it does not fit the model (pydantic's ValidationError for pydantic).
        """
        if isinstance(payload, self._model) and not kwargs:
            return payload
        if is_model_instance(payload):
            data: dict[str, Any] = dump(payload)
        elif isinstance(payload, dict):
            data = payload
        elif payload is None:
            data = {}
        else:
            kinds = "BaseModel" if is_pydantic_model(self._model) else "attrs instance"
            raise TypeError(f"TypedStageOutput payload must be a dict, {kinds}, or None")
        if kwargs:
            data = {**data, **kwargs}
        instance: _ModelT = validate(
            self._model, data, strict=self._strict, context=self._context or None
        )
        return instance

    def serialize(self, payload: _Payload = None, **kwargs: Any) -> dict[str, Any]:
        """:meth:`validate`, then the instance as a dict."""
        return dump(self.validate(payload, **kwargs))

    def ok(
        self,
        payload: _Payload = None,
        *,
        version: str | None = None,
        **kwargs: Any,
    ) -> StageOutput:
        """``StageOutput.ok`` with the serialized payload and the resolved version."""
        data = self.serialize(payload, **kwargs)
        return StageOutput.ok(data=data, version=self._resolve_version(version))

    async def ok_async(
        self,
        payload_factory: Awaitable[_Payload] | AsyncPayloadFactory,
        *,
        version: str | None = None,
        **kwargs: Any,
    ) -> StageOutput:
        """Await the payload (an awaitable, or an async callable), then :meth:`ok`. A checkpoint."""
        payload = await self._resolve_payload(payload_factory)
        return self.ok(payload, version=version, **kwargs)

    async def serialize_async(
        self,
        payload_factory: Awaitable[_Payload] | AsyncPayloadFactory,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Await the payload, then :meth:`serialize`. A checkpoint."""
        payload = await self._resolve_payload(payload_factory)
        return self.serialize(payload, **kwargs)

    async def validate_async(
        self,
        payload_factory: Awaitable[_Payload] | AsyncPayloadFactory,
        **kwargs: Any,
    ) -> _ModelT:
        """Await the payload, then :meth:`validate`. A checkpoint."""
        payload = await self._resolve_payload(payload_factory)
        return self.validate(payload, **kwargs)

    async def _resolve_payload(
        self, payload_factory: Awaitable[_Payload] | AsyncPayloadFactory
    ) -> _Payload:
        if inspect.isawaitable(payload_factory):
            payload = await payload_factory
        elif callable(payload_factory):
            pending = payload_factory()
            if not inspect.isawaitable(pending):
                raise TypeError(
                    "payload_factory must be awaitable or callable returning awaitable; "
                    f"the callable returned {type_of(pending)}"
                )
            payload = await pending
        else:
            raise TypeError("payload_factory must be awaitable or callable returning awaitable")
        # The factory may have finished without yielding; this call is a checkpoint regardless.
        await trio.lowlevel.checkpoint()
        return payload

    def register_contract(
        self,
        stage: str,
        *,
        version: str | None = None,
        description: str | None = None,
    ) -> ContractMetadata:
        """Register the model as ``stage``'s contract in the shared :data:`registry`.

        The version is ``version``, else the configured default or factory.

        Raises:
            ValueError: no version is given or configured, or another model holds it.
        """
        resolved = self._resolve_version(version)
        if resolved is None:
            raise ValueError("version must be provided or configured to register contract")
        return registry.register(
            stage=stage, version=resolved, model=self._model, description=description
        )

    def _resolve_version(self, override: str | None) -> str | None:
        if override is not None:
            return override
        if self._version_factory:
            return self._version_factory()
        return self._default_version

    @staticmethod
    def timestamp_version() -> str:
        """The current UTC time in ISO 8601, for use as a version."""
        return utc_now_iso()
