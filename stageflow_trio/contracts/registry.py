"""A registry of stage output contracts, by stage and version, with compatibility diffs.

A contract is a model class: an attrs class, or a pydantic v2 ``BaseModel``
when pydantic is installed (``pip install 'stageflow-trio[pydantic]'``). The
registry stores each model's JSON schema (pydantic's ``model_json_schema`` or
the same shape built from the attrs fields) and compares two versions' schemas
property by property: a removed field or a newly required one is breaking, a
new optional field a warning, and a field's JSON types may only widen (or
gain ``null``).
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from stageflow_trio._args import type_of
from stageflow_trio._frozen import frozen_compat
from stageflow_trio._globals import register_global_reset
from stageflow_trio._time import utc_now
from stageflow_trio.contracts._models import is_model_class, json_schema
from stageflow_trio.utils.frozen import FrozenDict, FrozenList

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "ContractCompatibilityReport",
    "ContractMetadata",
    "ContractRegistry",
    "registry",
]


def _frozen_schema(value: Mapping[str, Any]) -> FrozenDict[str, Any]:
    return value if isinstance(value, FrozenDict) else FrozenDict(value)


@frozen_compat
@attrs.frozen
class ContractMetadata:
    """One registered contract version.

    Attributes:
        stage: The stage the contract belongs to.
        version: Its version label.
        model: The model class (attrs or pydantic).
        schema: The model's JSON schema (a read-only mapping at the top level).
        description: Free text, or None.
        created_at: When it was registered (UTC).
    """

    stage: str
    version: str
    model: type[Any]
    schema: FrozenDict[str, Any] = attrs.field(converter=_frozen_schema)
    description: str | None = None
    created_at: datetime = attrs.field(factory=utc_now)


def _str_list(value: Iterable[str]) -> FrozenList[str]:
    return value if isinstance(value, FrozenList) else FrozenList(value)


@frozen_compat
@attrs.frozen
class ContractCompatibilityReport:
    """The difference between two versions of a stage's contract.

    Attributes:
        stage: The stage.
        from_version: The older version.
        to_version: The newer version.
        breaking_changes: What breaks readers of the older version.
        warnings: What is new but harmless.
    """

    stage: str
    from_version: str
    to_version: str
    breaking_changes: FrozenList[str] = attrs.field(converter=_str_list)
    warnings: FrozenList[str] = attrs.field(converter=_str_list)

    @property
    def is_compatible(self) -> bool:
        """Whether there is no breaking change."""
        return not self.breaking_changes

    def summary(self) -> str:
        """``"Contract diff for {stage} {from}->{to}: compatible|breaking (breaking=N, warnings=M)"``."""
        status = "compatible" if self.is_compatible else "breaking"
        return (
            f"Contract diff for {self.stage} {self.from_version}->{self.to_version}: "
            f"{status} (breaking={len(self.breaking_changes)}, warnings={len(self.warnings)})"
        )


def _check_str(param: str, value: object) -> None:
    if not isinstance(value, str):
        raise TypeError(f"ContractRegistry: {param} must be a str; got {type_of(value)}")


def _check_schema(schema: object) -> None:
    # A schema given in place of the model's must have the shape ``diff`` reads:
    # ``properties`` a mapping of property schemas (mappings, or JSON Schema's
    # true/false) and ``required`` a list of names.
    if not isinstance(schema, Mapping):
        raise TypeError(
            f"ContractRegistry: schema must be a mapping or None; got {type_of(schema)}"
        )
    properties = schema.get("properties")
    if properties is not None:
        if not isinstance(properties, Mapping):
            raise TypeError(
                "ContractRegistry: schema['properties'] must be a mapping; "
                f"got {type_of(properties)}"
            )
        for name, prop in properties.items():
            if not isinstance(name, str) or not isinstance(prop, Mapping | bool):
                raise TypeError(
                    "ContractRegistry: schema['properties'] must map str names to schemas "
                    f"(mappings or booleans); got {name!r}: {type_of(prop)}"
                )
    required = schema.get("required")
    if required is not None and (
        not isinstance(required, builtins.list | tuple)
        or not all(isinstance(name, str) for name in required)
    ):
        raise TypeError(
            f"ContractRegistry: schema['required'] must be a list of str; got {required!r}"
        )


class ContractRegistry:
    """Contracts by ``(stage, version)``, in memory.

    :data:`registry` is the process-wide instance that
    :meth:`TypedStageOutput.register_contract
    <stageflow_trio.contracts.typed_output.TypedStageOutput.register_contract>`
    uses; tests' ``reset_globals`` empties it.
    """

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], ContractMetadata] = {}

    def clear(self) -> None:
        """Remove every registration."""
        self._entries.clear()

    def register(
        self,
        *,
        stage: str,
        version: str,
        model: type[Any],
        description: str | None = None,
        schema: dict[str, Any] | None = None,
    ) -> ContractMetadata:
        """Register ``model`` as ``stage``'s contract at ``version``.

        Registering the same model again returns the existing entry. ``schema``
        (if given and non-empty) replaces the model's own JSON schema.

        Raises:
            ValueError: another model is registered at ``stage@version``.
            TypeError: ``stage``/``version`` is not a str, ``description`` neither
                a str nor None, ``schema`` neither a mapping nor None (or its
                ``properties`` not a mapping of property schemas, mappings or
                booleans, or its ``required`` not a list of names), or ``model``
                is neither an attrs class nor a pydantic model class.
        """
        _check_str("stage", stage)
        _check_str("version", version)
        if description is not None and not isinstance(description, str):
            raise TypeError(
                f"ContractRegistry: description must be a str or None; got {type_of(description)}"
            )
        if schema is not None:
            _check_schema(schema)
        if not is_model_class(model):
            raise TypeError(
                "ContractRegistry: model must be an attrs class or a pydantic model class; "
                f"got {model!r}"
            )
        key = (stage, version)
        existing = self._entries.get(key)
        if existing is not None:
            if existing.model is model:
                return existing
            raise ValueError(
                f"Contract {stage}@{version} already registered with a different model"
            )
        metadata = ContractMetadata(
            stage=stage,
            version=version,
            model=model,
            schema=schema or json_schema(model),
            description=description,
        )
        self._entries[key] = metadata
        return metadata

    def get(self, stage: str, version: str) -> ContractMetadata | None:
        """The contract registered at ``stage@version``, or None.

        Raises:
            TypeError: ``stage`` or ``version`` is not a str.
        """
        _check_str("stage", stage)
        _check_str("version", version)
        return self._entries.get((stage, version))

    def list(self, stage: str | None = None) -> builtins.list[ContractMetadata]:
        """Every registration by (stage, version), or ``stage``'s by version (string order).

        Raises:
            TypeError: ``stage`` is neither a str nor None.
        """
        if stage is None:
            return sorted(self._entries.values(), key=lambda m: (m.stage, m.version))
        _check_str("stage", stage)
        return sorted(
            (entry for entry in self._entries.values() if entry.stage == stage),
            key=lambda m: m.version,
        )

    def diff(self, stage: str, from_version: str, to_version: str) -> ContractCompatibilityReport:
        """Compare two registered versions of ``stage``'s contract.

        Breaking: a field removed, a required field added, a field's JSON types
        narrowed or changed. Warning: an optional field added.

        Raises:
            ValueError: ``"Contract {stage}@{version} not registered"`` (the first missing one).
            TypeError: ``stage``, ``from_version`` or ``to_version`` is not a str.
        """
        _check_str("stage", stage)
        _check_str("from_version", from_version)
        _check_str("to_version", to_version)
        left = self.get(stage, from_version)
        right = self.get(stage, to_version)
        if left is None or right is None:
            missing = from_version if left is None else to_version
            raise ValueError(f"Contract {stage}@{missing} not registered")
        left_fields = _field_map(left.schema)
        right_fields = _field_map(right.schema)
        breaking = [f"Field '{name}' removed" for name in left_fields if name not in right_fields]
        warnings: builtins.list[str] = []
        for name, (types, required) in right_fields.items():
            if name not in left_fields:
                if required:
                    breaking.append(f"Required field '{name}' added")
                else:
                    warnings.append(f"Optional field '{name}' added")
                continue
            old_types = left_fields[name][0]
            if not _types_compatible(old_types, types):
                breaking.append(
                    f"Field '{name}' changed types {_set_repr(old_types)} -> {_set_repr(types)}"
                )
        return ContractCompatibilityReport(
            stage=stage,
            from_version=from_version,
            to_version=to_version,
            breaking_changes=breaking,
            warnings=warnings,
        )


def _field_map(schema: Mapping[str, Any]) -> dict[str, tuple[frozenset[str], bool]]:
    # Each property's JSON types (its "type", or "object" for an inline object
    # schema, else none known) and whether it is required.
    properties: Mapping[str, Any] = schema.get("properties") or {}
    required = set(schema.get("required") or ())
    fields: dict[str, tuple[frozenset[str], bool]] = {}
    for name, meta in properties.items():
        # JSON Schema's boolean schemas (true: anything, false: nothing) name no types.
        json_types = meta.get("type") if isinstance(meta, Mapping) else None
        if isinstance(json_types, str):
            types = frozenset({json_types})
        elif isinstance(json_types, builtins.list):
            types = frozenset(json_types)
        else:
            types = (
                frozenset({"object"})
                if isinstance(meta, Mapping) and "properties" in meta
                else frozenset()
            )
        fields[name] = (types, name in required)
    return fields


def _types_compatible(old: frozenset[str], new: frozenset[str]) -> bool:
    # Unknown old types accept anything; otherwise the new types must include
    # the old ones, or be the old ones without "null".
    return not old or new >= old or old == new | {"null"}


def _set_repr(types: frozenset[str]) -> str:
    # A set's repr, in sorted order so that messages do not change between runs.
    return "{" + ", ".join(repr(t) for t in sorted(types)) + "}" if types else "set()"


registry: ContractRegistry = ContractRegistry()
"""The process-wide contract registry."""

register_global_reset(registry.clear)
