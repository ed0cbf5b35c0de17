"""ExtensionBundle: the base class of typed, user-defined snapshot extensions.

Subclass it as a frozen attrs class or a frozen dataclass and put the
instance in ``ContextSnapshot.extensions``::

    @attrs.frozen
    class SalesExtensions(ExtensionBundle):
        deal_id: str | None = None
        competitors: tuple[str, ...] = ()

    snapshot = ContextSnapshot(extensions=SalesExtensions(deal_id="D-1"))
    data = snapshot.to_dict()  # extensions_type == "SalesExtensions"
    ContextSnapshot.from_dict(data, extension_types={"SalesExtensions": SalesExtensions})
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Any, TypeVar

import attrs

from stageflow_trio._frozen import frozen_compat
from stageflow_trio.context._codec import _freeze_mapping, _is_mapping

__all__ = ["ExtensionBundle", "T"]

T = TypeVar("T", bound="ExtensionBundle")

_PLAIN = frozenset({str, int, float, bool})
# Stringified with str() (not isoformat()), exactly as stageflow does.
_STRINGIFIED = frozenset({"UUID", "datetime", "date", "time"})


def _field_names(value: object) -> tuple[str, ...] | None:
    """The field names of a dataclass or attrs instance, or None for anything else."""
    cls = type(value)
    # Dataclass first: a dataclass subclass of an attrs base inherits the base's
    # (empty) __attrs_attrs__, which would hide its own fields.
    if dataclasses.is_dataclass(cls):
        return tuple(f.name for f in dataclasses.fields(cls))
    if attrs.has(cls):
        return tuple(a.name for a in attrs.fields(cls))
    return None


def _serialize_value(value: Any) -> Any:
    """A JSON-ready copy of an extension value.

    Dataclass and attrs instances use their own ``to_dict`` if they have one,
    else become dicts of their fields; dicts, lists and tuples (frozen or not)
    become fresh plain dicts and lists; enums their values; UUIDs, datetimes, dates and times become ``str(value)``;
    anything else is kept as given.
    """
    if value is None or type(value) in _PLAIN:
        return value
    names = _field_names(value)
    if names is not None:
        to_dict = getattr(value, "to_dict", None)
        if callable(to_dict):
            return to_dict()
        return {name: _serialize_value(getattr(value, name)) for name in names}
    if isinstance(value, Mapping):
        return {k: _serialize_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):  # FrozenList is a list
        # Tuples too (the reference keeps them, nested objects unserialized):
        # frozen bundles hold tuples, and JSON has only lists.
        return [_serialize_value(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    # stageflow matches these by class name, so subclasses with other names pass through.
    if type(value).__name__ in _STRINGIFIED:
        return str(value)
    return value


# Not slotted: subclasses may be dataclasses, which keep their fields in
# __dict__, and a slotted attrs base would pickle and copy only its own (no) fields.
@frozen_compat
@attrs.frozen(slots=False)
class ExtensionBundle:
    """Base class for typed snapshot extensions.

    ``to_dict`` serializes the subclass's fields (see :func:`_serialize_value`);
    ``from_dict`` calls the class with the dict's items as keyword arguments, so
    subclasses with nested structured fields should override it.
    """

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form: one key per field of the subclass.

        Raises:
            TypeError: The subclass is neither an attrs class nor a dataclass.
        """
        names = _field_names(self)
        if names is None:  # pragma: no cover - attrs.has() holds for every subclass
            raise TypeError(f"{type(self).__name__} must be an attrs class or a dataclass")
        return {name: _serialize_value(getattr(self, name)) for name in names}

    @classmethod
    def from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
        """Build the bundle from :meth:`to_dict` output, typed by the class's annotations.

        Structured with the package's cattrs converter: nested attrs classes and
        dataclasses, UUIDs, datetimes, enums and tuples come back as their types,
        so ``from_dict(to_dict(x)) == x``. A class whose annotations cannot be
        resolved falls back to ``cls(**data)``, the reference's behaviour.

        Raises:
            TypeError: ``data`` is not a mapping, has a non-str key or a key the
                class does not accept, lacks a required one, or holds a value of the
                wrong type; the message names the field.
        """
        if not isinstance(data, Mapping):
            raise TypeError(
                f"{cls.__name__}.from_dict: data must be a mapping; got {type(data).__name__}"
            )
        for key in data:
            if not isinstance(key, str):
                # Field names: cattrs would fail joining them into its error message.
                raise TypeError(
                    f"{cls.__name__}.from_dict: data keys must be str; got {type(key).__name__}"
                )
        # cattrs loads here, on first use: `import stageflow_trio` stays without it.
        import cattrs

        from stageflow_trio._serialization import converter

        try:
            return converter.structure(dict(data), cls)
        except cattrs.BaseValidationError as exc:
            problems = "; ".join(cattrs.transform_error(exc, path=cls.__name__))
            raise TypeError(f"{cls.__name__}.from_dict: {problems}") from None
        except (NameError, cattrs.errors.StructureHandlerNotFoundError):
            # Annotations that name types not importable from the class's module.
            pass
        # The reference's behaviour, called outside the `except`: an error from the
        # class itself (an unknown key) must not come chained to the NameError.
        return cls(**data)


def _normalize_extensions(extensions: Any) -> Any:
    """The stored form of an extension: bundles as given, mappings deep-frozen.

    Raises:
        TypeError: ``extensions`` is neither a mapping nor has ``to_dict()``.
        ValueError: A mapping nests too deep or contains itself (see ``_freeze_mapping``).
    """
    if extensions is None or isinstance(extensions, ExtensionBundle):
        return extensions
    if _is_mapping(extensions):
        # Checked before to_dict: a mapping type with a to_dict method is still a mapping.
        return _freeze_mapping(extensions, "extensions")
    if callable(getattr(extensions, "to_dict", None)):
        return extensions
    raise TypeError(
        "extensions must be an ExtensionBundle (or an object with to_dict()), "
        f"a mapping or None, got {type(extensions).__name__}"
    )
