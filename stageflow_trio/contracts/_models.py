"""Contract models: attrs classes natively, pydantic v2 models when pydantic is installed.

:mod:`stageflow_trio.contracts.registry` and
:mod:`stageflow_trio.contracts.typed_output` treat a model through four
operations: is it a model class, its JSON schema, validate a dict into an
instance, dump an instance to a dict. pydantic is never imported here: a
pydantic model can only exist if its author imported pydantic, so
``sys.modules`` tells whether to look for one.

attrs classes are structured and unstructured by the package's cattrs
converter, and their JSON schema is built in pydantic's shape (same property
``type`` keys, ``anyOf`` for unions, ``$ref`` into ``$defs`` for nested classes
and enums), so a contract diff reads the same whichever kind of model it holds.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import functools
import math
import sys
import types
import typing
import uuid
from collections.abc import Callable, Mapping, Sequence, Set
from typing import TYPE_CHECKING, Any, NoReturn

import attrs

from stageflow_trio._args import error_text, unprintable

if TYPE_CHECKING:
    import cattrs

# Primitive fields follow pydantic's conversion table, so one payload validates
# the same against an attrs class and against the equivalent pydantic model.
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})


def _fail(expected: str, value: object) -> NoReturn:
    raise TypeError(f"expected {expected}, got {type(value).__name__} {value!r}")


def _plain_str(value: str) -> str:
    # The characters of a str subclass as an exact str, as pydantic gives them:
    # str() of a str-mixin enum member would be its name ("Color.RED"), not its value.
    return value if type(value) is str else str.__str__(value)


def _lax_str(value: Any, _: type) -> str:
    if isinstance(value, str):
        return _plain_str(value)
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8")
    _fail("str", value)


def _utf8_text(value: Any) -> Any:
    # pydantic reads bytes (not bytearray) as UTF-8 text for int, float and bool fields.
    if type(value) is bytes:
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value
    return value


def _lax_int(value: Any, _: type) -> int:
    value = _utf8_text(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, decimal.Decimal) and value.is_finite() and value == value.to_integral():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            # "2.0" is an int to pydantic; "2e0" is not.
            plain = _is_float_text(text) and "e" not in text.lower()
            number = float(text) if plain else math.nan
            if number.is_integer():
                return int(number)
    _fail("int", value)


def _is_float_text(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _lax_float(value: Any, _: type) -> float:
    value = _utf8_text(value)
    if isinstance(value, int | float | decimal.Decimal):
        return float(value)
    if isinstance(value, str) and _is_float_text(value.strip()):
        return float(value.strip())
    _fail("float", value)


def _lax_bool(value: Any, _: type) -> bool:
    value = _utf8_text(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | decimal.Decimal) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    _fail("bool", value)


def _lax_bytes(value: Any, _: type) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    _fail("bytes", value)


def _strict(expected: type, accepted: tuple[type, ...], convert: Callable[[Any], Any]) -> Any:
    def structure(value: Any, _: type) -> Any:
        # A bool is an int to Python, never to a strict int or float field.
        if not isinstance(value, accepted) or (type(value) is bool and expected is not bool):
            _fail(expected.__name__, value)
        return convert(value)

    return structure


def _lax_decimal(value: Any, _: type) -> decimal.Decimal:
    # pydantic's lax Decimal: a Decimal, an int (not a bool), a float or a numeric
    # str; never NaN or an infinity.
    number: Any = value
    if isinstance(value, str):
        try:
            number = decimal.Decimal(value.strip())
        except decimal.InvalidOperation:
            _fail("Decimal", value)
    elif isinstance(value, float | int) and type(value) is not bool:
        number = decimal.Decimal(str(value)) if isinstance(value, float) else decimal.Decimal(value)
    if not isinstance(number, decimal.Decimal) or not number.is_finite():
        _fail("Decimal", value)
    return number


def _lax_date(value: Any, _: type) -> dt.date:
    # A date, a datetime at midnight, or an ISO 8601 date (str or UTF-8 bytes).
    value = _utf8_text(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date()
    elif isinstance(value, dt.date):
        return value
    elif isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    _fail("date", value)


def _lax_time(value: Any, _: type) -> dt.time:
    value = _utf8_text(value)
    if isinstance(value, dt.time):
        return value
    if isinstance(value, str):
        try:
            return dt.time.fromisoformat(value.strip())
        except ValueError:
            pass
    _fail("time", value)


def _lax_timedelta(value: Any, _: type) -> dt.timedelta:
    # A timedelta, or a number of seconds (pydantic reads a bool as 0 or 1 s too).
    if isinstance(value, dt.timedelta):
        return value
    if isinstance(value, int | float) and math.isfinite(value):
        return dt.timedelta(seconds=value)
    _fail("timedelta", value)


def _mapping(strict: bool) -> Any:
    # A bare ``dict`` field takes a mapping (a dict in strict mode), never what
    # ``dict()`` would make of a str, a list of pairs or an empty iterable.
    accepted = dict if strict else Mapping

    def structure(value: Any, _: type) -> dict[Any, Any]:
        if not isinstance(value, accepted):
            _fail("a mapping" if not strict else "dict", value)
        return dict(value)

    return structure


def _exact_instance(kind: type, refuse: type | None = None) -> Any:
    # Strict: only an instance of ``kind`` (a datetime is no date).
    def structure(value: Any, _: type) -> Any:
        if not isinstance(value, kind) or (refuse is not None and isinstance(value, refuse)):
            _fail(kind.__name__, value)
        return value

    return structure


def _is_union(hint: Any) -> bool:
    # Optional[X] is cattrs's own; any other union is tried member by member.
    if typing.get_origin(hint) not in (typing.Union, types.UnionType):
        return False
    args = typing.get_args(hint)
    return not (len(args) == 2 and type(None) in args)


def _union_hook(hint: Any, conv: cattrs.Converter) -> Any:
    # pydantic's "smart" union, closely enough: a value whose type is one of the
    # members is that member; else the first member that takes it, in order.
    members = typing.get_args(hint)
    none_ok = type(None) in members
    candidates = tuple(member for member in members if member is not type(None))

    def structure(value: Any, _: Any) -> Any:
        if value is None:
            if none_ok:
                return None
            _fail(_union_name(hint), value)
        for member in candidates:
            if type(value) is member:
                return conv.structure(value, member)
        import cattrs

        for member in candidates:
            try:
                return conv.structure(value, member)
            except (cattrs.BaseValidationError, TypeError, ValueError):
                continue
        _fail(_union_name(hint), value)

    return structure


def _union_name(hint: Any) -> str:
    return " | ".join(
        "None" if arg is type(None) else getattr(arg, "__name__", repr(arg))
        for arg in typing.get_args(hint)
    )


def _model_hook(strict: bool) -> Any:
    # A nested model field takes an instance of its class as is, or a mapping of
    # its fields (a dict only, in strict mode), as pydantic does: cattrs's own
    # hook read any object with ``in``, so a str gave the class's defaults.
    def factory(cls: type, conv: cattrs.Converter) -> Any:
        from cattrs.gen import make_dict_structure_fn

        inner: Callable[[Any, type], Any] = make_dict_structure_fn(cls, conv)
        accepted: type = dict if strict else Mapping

        def structure(value: Any, target: type) -> Any:
            if isinstance(value, cls):
                return value
            if not isinstance(value, accepted):
                _fail(f"a mapping or an instance of {cls.__name__}", value)
            return inner(value, target)

        return structure

    return factory


def _pydantic_hook(strict: bool) -> Any:
    def factory(cls: Any, _conv: cattrs.Converter) -> Any:
        def structure(value: Any, _: type) -> Any:
            return cls.model_validate(value, strict=strict)

        return structure

    return factory


@functools.cache
def _converters() -> tuple[cattrs.Converter, cattrs.Converter, cattrs.Converter]:
    """The package converter and its lax and strict validating copies.

    Built on first use: cattrs costs about 30 ms to import, and importing
    :mod:`stageflow_trio` must not pay it.
    """
    from stageflow_trio._serialization import converter

    # Extra keys are ignored, as by a pydantic model's default configuration.
    lax = converter.copy(forbid_extra_keys=False)
    strict = converter.copy(forbid_extra_keys=False)
    for kind, hook in (
        (str, _lax_str),
        (int, _lax_int),
        (float, _lax_float),
        (bool, _lax_bool),
        (bytes, _lax_bytes),
    ):
        lax.register_structure_hook(kind, hook)
    for kind, accepted, convert in (
        (str, (str,), _plain_str),
        (int, (int,), int),
        # pydantic's strict float also takes a Decimal.
        (float, (int, float, decimal.Decimal), float),
        (bool, (bool,), bool),
        (bytes, (bytes,), bytes),
    ):
        strict.register_structure_hook(kind, _strict(kind, accepted, convert))
    extra: tuple[tuple[type, Callable[[Any, type], Any]], ...] = (
        (decimal.Decimal, _lax_decimal),
        (dt.date, _lax_date),
        (dt.time, _lax_time),
        (dt.timedelta, _lax_timedelta),
    )
    for extra_kind, extra_hook in extra:
        lax.register_structure_hook(extra_kind, extra_hook)
    strict.register_structure_hook(decimal.Decimal, _exact_instance(decimal.Decimal))
    strict.register_structure_hook(dt.date, _exact_instance(dt.date, refuse=dt.datetime))
    strict.register_structure_hook(dt.time, _exact_instance(dt.time))
    strict.register_structure_hook(dt.timedelta, _exact_instance(dt.timedelta))
    for conv, is_strict in ((lax, False), (strict, True)):
        conv.register_structure_hook(dict, _mapping(is_strict))
        conv.register_structure_hook_factory(_is_union, _union_hook)
        conv.register_structure_hook_factory(attrs.has, _model_hook(is_strict))
        conv.register_structure_hook_factory(is_pydantic_model, _pydantic_hook(is_strict))
    return converter, lax, strict


def _pydantic_base() -> type | None:
    module = sys.modules.get("pydantic")
    return getattr(module, "BaseModel", None) if module is not None else None


def is_pydantic_model(model: object) -> bool:
    """Whether ``model`` is a pydantic ``BaseModel`` subclass."""
    base = _pydantic_base()
    return base is not None and isinstance(model, type) and issubclass(model, base)


def is_model_class(model: object) -> bool:
    """Whether ``model`` is an attrs class or a pydantic model class."""
    return (isinstance(model, type) and attrs.has(model)) or is_pydantic_model(model)


def is_model_instance(value: object) -> bool:
    """Whether ``value`` is an instance of an attrs class or of a pydantic model."""
    return is_model_class(type(value))


def json_schema(model: type[Any]) -> dict[str, Any]:
    """The model's JSON schema (validation mode for pydantic)."""
    if is_pydantic_model(model):
        schema: dict[str, Any] = model.model_json_schema(mode="validation")
        return schema
    defs: dict[str, Any] = {}
    schema = _class_schema(model, defs)
    return {"$defs": dict(sorted(defs.items())), **schema} if defs else schema


def validate(
    model: type[Any], data: Mapping[str, Any], *, strict: bool, context: dict[str, Any] | None
) -> Any:
    """Build a ``model`` instance from ``data``.

    pydantic models use ``model_validate(data, strict=, context=)``; attrs
    classes the package's converter, with str/int/float/bool/bytes fields
    converted as pydantic converts them (lax or ``strict``) and extra keys
    ignored (``context`` is not used).

    Raises:
        ValueError: ``data`` does not fit an attrs model (pydantic raises its
            ValidationError, also a ValueError).
    """
    if is_pydantic_model(model):
        return model.model_validate(data, strict=strict, context=context)
    import cattrs
    import cattrs.v

    _, lax, strict_converter = _converters()
    try:
        return (strict_converter if strict else lax).structure(dict(data), model)
    except cattrs.errors.StructureHandlerNotFoundError as exc:
        raise _unsupported(model, exc) from None
    except (cattrs.BaseValidationError, TypeError, ValueError) as exc:
        if isinstance(exc, cattrs.BaseValidationError):
            # Older cattrs (24.x) report a missing hook inside the validation group.
            missing = exc.subgroup(
                lambda e: isinstance(e, cattrs.errors.StructureHandlerNotFoundError)
            )
            if missing is not None:
                leaf: BaseException = missing
                while isinstance(leaf, BaseExceptionGroup):
                    leaf = leaf.exceptions[0]
                assert isinstance(leaf, cattrs.errors.StructureHandlerNotFoundError)
                raise _unsupported(model, leaf) from None
        problems = (
            cattrs.transform_error(exc, format_exception=_describe)
            if isinstance(exc, cattrs.BaseValidationError)
            else [error_text(exc)]
        )
        raise ValueError(f"{model.__name__} validation failed: {'; '.join(problems)}") from exc


def _describe(exc: BaseException, expected: type | None) -> str:
    # Our hooks' and the user's validators' own messages say more than cattrs's
    # generic "invalid value"; a missing key has no message of its own.
    text = error_text(exc)
    if text == unprintable(exc):  # a validator's error whose __str__ raises
        return text
    if isinstance(exc, TypeError | ValueError) and text:
        return text
    import cattrs.v

    return cattrs.v.format_exception(exc, expected)


def dump(instance: Any) -> dict[str, Any]:
    """The instance as a dict: ``model_dump()`` for pydantic, the converter's for attrs."""
    if attrs.has(type(instance)):
        data: dict[str, Any] = _converters()[0].unstructure(instance)
        return data
    dumped: dict[str, Any] = instance.model_dump()
    return dumped


# --- JSON schema of attrs classes, in pydantic's shape ----------------------------------


def _title(name: str) -> str:
    return name.title().replace("_", " ")


def _class_schema(cls: type[Any], defs: dict[str, Any]) -> dict[str, Any]:
    attrs.resolve_types(cls)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for field in attrs.fields(cls):
        if not field.init:
            continue
        name = field.alias or field.name
        prop = _type_schema(field.type, defs)
        if not _refers(prop):
            prop["title"] = _title(name)
        if field.default is attrs.NOTHING:
            required.append(name)
        elif not isinstance(field.default, attrs.Factory):  # type: ignore[arg-type]
            prop["default"] = _json_value(_converters()[0].unstructure(field.default))
        properties[name] = dict(sorted(prop.items()))
    schema: dict[str, Any] = {"properties": properties}
    if required:
        schema["required"] = required
    schema["title"] = cls.__name__
    schema["type"] = "object"
    return schema


def _refers(prop: dict[str, Any]) -> bool:
    # pydantic gives no title to a property that refers to a model, alone or in a union.
    return "$ref" in prop or any("$ref" in alt for alt in prop.get("anyOf", ()))


def _json_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (set, frozenset, tuple, list)):
        return [_json_value(item) for item in value]
    if isinstance(value, dict):
        return {key: _json_value(item) for key, item in value.items()}
    return value


_SIMPLE: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    bytes: {"format": "binary", "type": "string"},
    type(None): {"type": "null"},
    None: {"type": "null"},
    uuid.UUID: {"format": "uuid", "type": "string"},
    dt.datetime: {"format": "date-time", "type": "string"},
    dt.date: {"format": "date", "type": "string"},
    dt.time: {"format": "time", "type": "string"},
    dt.timedelta: {"format": "duration", "type": "string"},
    decimal.Decimal: {"anyOf": [{"type": "number"}, {"type": "string"}]},
    dict: {"additionalProperties": True, "type": "object"},
    list: {"items": {}, "type": "array"},
    tuple: {"items": {}, "type": "array"},
}


def _type_schema(hint: Any, defs: dict[str, Any]) -> dict[str, Any]:
    if hint is Any:
        return {}
    if hint in _SIMPLE:
        return dict(_SIMPLE[hint])
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Annotated:
        return _type_schema(args[0], defs)
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [_type_schema(arg, defs) for arg in args]}
    if origin is typing.Literal:
        kinds = {type(arg) for arg in args}
        schema: dict[str, Any] = {"enum": list(args)}
        if len(kinds) == 1 and (kind := kinds.pop()) in _SIMPLE:
            schema["type"] = _SIMPLE[kind]["type"]
        return schema
    if origin is not None and isinstance(origin, type):
        if issubclass(origin, Mapping):
            # pydantic writes an Any value as ``true``, as for a bare dict.
            value = _type_schema(args[1], defs) if len(args) == 2 and args[1] is not Any else True
            return {"additionalProperties": value, "type": "object"}
        if issubclass(origin, tuple) and not (len(args) == 2 and args[1] is Ellipsis):
            items = [_type_schema(arg, defs) for arg in args]
            return {
                "maxItems": len(items),
                "minItems": len(items),
                "prefixItems": items,
                "type": "array",
            }
        if issubclass(origin, (Sequence, Set)):
            schema = {"items": _type_schema(args[0], defs) if args else {}, "type": "array"}
            if issubclass(origin, Set):
                schema["uniqueItems"] = True
            return schema
    if isinstance(hint, type):
        if issubclass(hint, enum.Enum):
            values = [member.value for member in hint]
            definition: dict[str, Any] = {"enum": values, "title": hint.__name__}
            kinds = {type(value) for value in values}
            if len(kinds) == 1 and (kind := kinds.pop()) in _SIMPLE:
                definition["type"] = _SIMPLE[kind]["type"]
            defs[hint.__name__] = definition
            return {"$ref": f"#/$defs/{hint.__name__}"}
        if attrs.has(hint):
            if hint.__name__ not in defs:
                defs[hint.__name__] = {}  # a placeholder first: classes may refer to themselves
                defs[hint.__name__] = _class_schema(hint, defs)
            return {"$ref": f"#/$defs/{hint.__name__}"}
        if is_pydantic_model(hint):
            pydantic_model: Any = hint
            nested = pydantic_model.model_json_schema(mode="validation")
            defs.update(nested.pop("$defs", {}))
            defs[hint.__name__] = nested
            return {"$ref": f"#/$defs/{hint.__name__}"}
        if issubclass(hint, Mapping):
            return {"additionalProperties": True, "type": "object"}
        if issubclass(hint, (list, tuple, Set)):
            return {"items": {}, "type": "array"}
    return {}


def _unsupported(model: type[Any], exc: Any) -> TypeError:
    """The TypeError for a field type the converter cannot structure (cattrs found no hook)."""
    return TypeError(
        f"{model.__name__}: field type {exc.type_!r} is not supported by attrs contract "
        "models (use a pydantic model, or a type the docs list)"
    )
