"""Frozen values raise an error that is both attrs' and dataclasses' FrozenInstanceError.

The reference's values are frozen dataclasses, so ``except
dataclasses.FrozenInstanceError`` written against it must keep working. Every
frozen attrs class the package defines carries ``@frozen_compat``; the walk
below finds any that does not.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from typing import Any

import attr._make
import attrs
import pytest

import stageflow_trio
from stageflow_trio._frozen import FrozenInstanceError, _frozen_setattr, frozen_compat


def _package_classes() -> list[type[Any]]:
    seen: dict[str, type[Any]] = {}
    for info in pkgutil.walk_packages(stageflow_trio.__path__, "stageflow_trio."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and value.__module__.startswith("stageflow_trio")
                and attrs.has(value)
            ):
                seen[f"{value.__module__}.{value.__qualname__}"] = value
    return [seen[name] for name in sorted(seen)]


# attrs' own frozen __setattr__ (a class missing @frozen_compat) or ours.
FROZEN_SETATTRS = (attr._make._frozen_setattrs, _frozen_setattr)


def _is_frozen(cls: type[Any]) -> bool:
    setter: object = cls.__setattr__
    return setter in FROZEN_SETATTRS


FROZEN = [cls for cls in _package_classes() if _is_frozen(cls)]


def test_the_walk_finds_the_frozen_values() -> None:
    names = {cls.__qualname__ for cls in FROZEN}
    assert {"StageOutput", "ContextSnapshot", "StageResult", "ExtensionBundle"} <= names
    assert len(FROZEN) >= 45


@pytest.mark.parametrize("cls", FROZEN, ids=lambda cls: f"{cls.__module__}.{cls.__qualname__}")
def test_assignment_raises_both_frozen_errors(cls: type[Any]) -> None:
    instance = object.__new__(cls)  # no __init__: only the class's __setattr__ is under test
    field = attrs.fields(cls)[0].name if attrs.fields(cls) else "anything"
    with pytest.raises(dataclasses.FrozenInstanceError) as caught:
        setattr(instance, field, None)
    assert isinstance(caught.value, attrs.exceptions.FrozenInstanceError)
    assert str(caught.value) == f"cannot assign to field {field!r}"
    with pytest.raises(dataclasses.FrozenInstanceError) as deleted:
        delattr(instance, field)
    assert str(deleted.value) == f"cannot delete field {field!r}"


def test_a_real_value_rejects_assignment() -> None:
    output = stageflow_trio.StageOutput.ok(x=1)
    with pytest.raises(dataclasses.FrozenInstanceError, match=r"^cannot assign to field 'data'$"):
        output.data = {}  # type: ignore[misc,assignment]
    assert output.data == {"x": 1}


def test_error_is_an_attribute_error_with_attrs_message_by_default() -> None:
    error = FrozenInstanceError()
    assert isinstance(error, AttributeError)
    assert error.msg == "can't set attribute"
    assert error.args == ("can't set attribute",)


def test_frozen_compat_rejects_a_plain_class() -> None:
    class Plain:
        pass

    with pytest.raises(TypeError, match=r"^frozen_compat: cls must be an attrs class; got "):
        frozen_compat(Plain)


def test_frozen_exceptions_still_take_traceback_and_notes() -> None:
    @frozen_compat
    @attrs.frozen(auto_exc=True)
    class Boom(Exception):
        code: int

    def fail() -> None:
        try:
            raise ValueError("inner")
        except ValueError as inner:
            raise Boom(3) from inner

    with pytest.raises(Boom) as caught:
        fail()
    error = caught.value
    error.add_note("note")
    assert error.__notes__ == ["note"]
    del error.__notes__
    assert not hasattr(error, "__notes__")
    assert isinstance(error.__cause__, ValueError)
    with pytest.raises(dataclasses.FrozenInstanceError):
        error.code = 4  # type: ignore[misc]
