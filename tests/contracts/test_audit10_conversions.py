"""attrs contract fields convert str subclasses, Decimal and bytes values as pydantic does.

docs/contracts.md promises that ``str``/``int``/``float``/``bool``/``bytes``
fields of an attrs model accept what pydantic accepts, with the same values.
"""

from __future__ import annotations

import enum
import math
from decimal import Decimal
from typing import Any

import attrs
import pydantic
import pytest

from stageflow_trio.contracts._models import validate
from stageflow_trio.contracts.typed_output import TypedStageOutput


class Color(str, enum.Enum):  # noqa: UP042 - str() of this kind of member is its name
    RED = "red"


class Loud(str):
    def __str__(self) -> str:
        return "LOUD"


@attrs.frozen
class A:
    s: str = ""
    i: int = 0
    f: float = 0.0
    b: bool = False
    by: bytes = b""


class P(pydantic.BaseModel):
    s: str = ""
    i: int = 0
    f: float = 0.0
    b: bool = False
    by: bytes = b""


def _same(got: Any, expected: Any) -> bool:
    if isinstance(got, float) and isinstance(expected, float) and math.isnan(expected):
        return math.isnan(got)
    return (type(got), got) == (type(expected), expected)


@pytest.mark.parametrize(
    "value",
    [
        Color.RED,
        Loud("quiet"),
        Decimal(2),
        Decimal("2.0"),
        Decimal("2.5"),
        Decimal("1E+3"),
        Decimal("-0"),
        Decimal(0),
        Decimal(1),
        Decimal("NaN"),
        Decimal("sNaN"),
        Decimal("Infinity"),
        Decimal("1E+400"),
        b"3",
        b" 3 ",
        b"2.0",
        b"1.5",
        b"nan",
        b"true",
        b"no",
        b"\xff",
        bytearray(b"3"),
    ],
    ids=repr,
)
@pytest.mark.parametrize("strict", [False, True])
def test_str_subclass_decimal_and_bytes_convert_as_in_pydantic(value: Any, strict: bool) -> None:
    for field in ("s", "i", "f", "b", "by"):
        try:
            expected = getattr(P.model_validate({field: value}, strict=strict), field)
        except pydantic.ValidationError:
            expected = "invalid"
        try:
            got = getattr(validate(A, {field: value}, strict=strict, context=None), field)
        except ValueError:
            got = "invalid"
        assert _same(got, expected), (field, got, expected)


@pytest.mark.parametrize("strict", [False, True])
def test_str_enum_member_is_stored_as_its_value(strict: bool) -> None:
    # str() of a str-mixin enum member is "Color.RED": strict mode used to store that.
    typed = TypedStageOutput(A, strict=strict)
    output = typed.ok({"s": Color.RED})
    assert output.data["s"] == "red"
    assert type(output.data["s"]) is str
