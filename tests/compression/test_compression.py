"""compute_delta / apply_delta / compress: the delta format, the round trip, the metrics."""

from __future__ import annotations

import importlib
import json
import math
from collections import OrderedDict
from types import MappingProxyType, ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio import compression
from stageflow_trio.compression import CompressionMetrics, apply_delta, compress, compute_delta

json_leaves = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=6)
)
json_values = st.recursive(
    json_leaves,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)
keys = st.text(max_size=4)
payloads = st.dictionaries(keys, json_values, max_size=8)


@st.composite
def related_payloads(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A base and a current that share some keys, some values changed, some removed, some new."""
    base = draw(payloads)
    current = {key: value for key, value in base.items() if draw(st.booleans())}
    for key in list(current):
        if draw(st.booleans()):
            current[key] = draw(json_values)
    current.update(draw(payloads))
    return base, current


# The large payloads' values: a leaf as often as a json value (which may nest). The same
# kinds of values at about half the draws (drawing them was most of test_matches_reference's
# time under coverage): compute_delta compares each value with one ``==`` whatever its depth,
# and the small payloads, whose values are all json values, nest as often as before.
large_values = json_leaves | json_values


@st.composite
def large_related_payloads(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """As related_payloads, around compute_delta's switch to its C passes (48 keys)."""
    base = draw(st.dictionaries(st.text(max_size=6), large_values, min_size=30, max_size=80))
    current = {key: value for key, value in base.items() if draw(st.integers(0, 9))}
    for key in list(current):
        if not draw(st.integers(0, 9)):
            current[key] = draw(large_values)
    current.update(draw(st.dictionaries(st.text(max_size=6), large_values, max_size=10)))
    return base, current


@pytest.fixture(params=["loops", "c_passes"])
def delta_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test on each of compute_delta's two ways: small payloads' loops, the C passes."""
    monkeypatch.setattr(compression, "_C_PASS_MIN", 10**9 if request.param == "loops" else 0)
    return str(request.param)


@pytest.fixture(scope="module")
def ref_compression(reference: ModuleType) -> ModuleType:
    return importlib.import_module("stageflow.compression")


# --- the delta format -------------------------------------------------------------------


@pytest.mark.usefixtures("delta_path")
def test_delta_lists_changed_new_and_removed_keys() -> None:
    base = {"a": 1, "b": 2, "c": 3}
    current = {"a": 1, "b": 20, "d": 4}
    assert compute_delta(base, current) == {"set": {"b": 20, "d": 4}, "remove": ["c"]}


@pytest.mark.usefixtures("delta_path")
def test_delta_leaves_out_empty_parts() -> None:
    assert compute_delta({"a": 1}, {"a": 1}) == {}
    assert compute_delta({"a": 1}, {"a": 1, "b": 2}) == {"set": {"b": 2}}
    assert compute_delta({"a": 1, "b": 2}, {"a": 1}) == {"remove": ["b"]}
    assert compute_delta({}, {}) == {}


@pytest.mark.usefixtures("delta_path")
def test_delta_orders_follow_the_payloads() -> None:
    delta = compute_delta({"z": 0, "y": 0, "x": 0}, {"c": 1, "a": 2, "b": 3})
    assert list(delta["set"]) == ["c", "a", "b"]
    assert delta["remove"] == ["z", "y", "x"]


@pytest.mark.usefixtures("delta_path")
def test_delta_compares_values_as_dict_eq_does() -> None:
    # 1 == 1.0 == True: an equal value of another type is not a change.
    assert compute_delta({"a": 1, "b": 0}, {"a": 1.0, "b": False}) == {}
    # The same object in both is unchanged, as in dict.__eq__: even a NaN (the
    # reference sends that one). Two NaN objects differ.
    nan = math.nan
    assert compute_delta({"a": nan}, {"a": nan}) == {}
    other_nan = float("nan")
    delta = compute_delta({"a": nan}, {"a": other_nan})
    assert delta["set"]["a"] is other_nan


class _Explodes:
    """A value that fails the test if it is compared with anything."""

    def __eq__(self, other: object) -> bool:
        raise AssertionError("compared")

    def __ne__(self, other: object) -> bool:
        raise AssertionError("compared")

    __hash__ = object.__hash__


@pytest.mark.usefixtures("delta_path")
def test_identical_values_are_not_compared() -> None:
    value = _Explodes()
    assert compute_delta({"a": value}, {"a": value}) == {}


@pytest.mark.usefixtures("delta_path")
def test_equality_decides_even_when_not_equal_disagrees() -> None:
    # == is what dict.__eq__ asks; a class whose != contradicts it follows ==
    # (the reference asks !=, and would send both values below).
    class Stubborn:
        def __init__(self, equal: bool) -> None:
            self.equal = equal

        def __eq__(self, other: object) -> bool:
            return self.equal

        def __ne__(self, other: object) -> bool:
            return self.equal

        __hash__ = object.__hash__

    same, differs = Stubborn(True), Stubborn(False)
    base = {"same": Stubborn(True), "differs": Stubborn(False)}
    current = {"same": same, "differs": differs}
    assert (base == current) is False
    assert compute_delta(base, current) == {"set": {"differs": differs}}


@given(payloads, payloads, st.booleans())
def test_delta_is_empty_exactly_when_equal(
    base: dict[str, Any], current: dict[str, Any], same: bool
) -> None:
    if same:
        current = dict(base)
    assert (compute_delta(base, current) == {}) == (base == current)


@pytest.mark.usefixtures("delta_path")
def test_removed_keys_are_found_beside_changed_and_new_ones() -> None:
    # Equal sizes, a changed key and a new one: the removal must still be seen
    # (compute_delta skips its removal pass only when no key can be missing).
    base = {"a": 1, "b": 2, "c": 3}
    assert compute_delta(base, {"a": 10, "b": 2, "d": 4}) == {
        "set": {"a": 10, "d": 4},
        "remove": ["c"],
    }
    assert compute_delta(base, {"a": 1, "b": 2, "c": 3, "d": 4}) == {"set": {"d": 4}}
    assert compute_delta(base, {"x": 1, "y": 2, "z": 3}) == {
        "set": {"x": 1, "y": 2, "z": 3},
        "remove": ["a", "b", "c"],
    }


@pytest.mark.usefixtures("delta_path")
def test_delta_never_compares_a_new_key_with_anything() -> None:
    value = _Explodes()
    assert compute_delta({"old": 1}, {"new": value}) == {"set": {"new": value}, "remove": ["old"]}


@pytest.mark.usefixtures("delta_path")
def test_delta_accepts_any_mapping() -> None:
    base = MappingProxyType({"a": 1, "b": 2})
    current = OrderedDict([("a", 1), ("c", 3)])
    assert compute_delta(base, current) == {"set": {"c": 3}, "remove": ["b"]}
    assert apply_delta(base, {"set": MappingProxyType({"c": 3}), "remove": ("b",)}) == {
        "a": 1,
        "c": 3,
    }


def test_apply_starts_from_a_copy_and_removes_before_setting() -> None:
    base = {"a": 1, "b": 2}
    result = apply_delta(base, {"remove": ["a", "missing"], "set": {"a": 10, "c": 3}})
    assert result == {"b": 2, "a": 10, "c": 3}
    assert base == {"a": 1, "b": 2}
    assert result is not base
    assert apply_delta(base, {}) == base
    assert apply_delta(base, {}) is not base


def test_apply_treats_none_and_empty_parts_as_nothing() -> None:
    assert apply_delta({"a": 1}, {"set": None, "remove": None}) == {"a": 1}
    assert apply_delta({"a": 1}, {"set": {}, "remove": []}) == {"a": 1}


@given(related_payloads())
def test_round_trip(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    base, current = pair
    delta = compute_delta(base, current)
    assert apply_delta(base, delta) == current
    assert set(delta) <= {"set", "remove"}
    assert all(delta.values())


@given(payloads, payloads)
def test_round_trip_of_unrelated_payloads(base: dict[str, Any], current: dict[str, Any]) -> None:
    assert apply_delta(base, compute_delta(base, current)) == current


# --- metrics ----------------------------------------------------------------------------


def test_compress_measures_utf8_json() -> None:
    current = {"name": "café", "n": 1}
    delta, metrics = compress({"n": 1}, current)
    assert delta == {"set": {"name": "café"}}
    assert metrics == CompressionMetrics(
        original_bytes=len(json.dumps(current, ensure_ascii=False).encode()),
        delta_bytes=len('{"set": {"name": "café"}}'.encode()),
    )
    assert metrics.original_bytes == 25  # 24 characters, "é" is two bytes
    assert metrics.delta_bytes == 26


def test_metrics_reduction_and_ratio() -> None:
    metrics = CompressionMetrics(original_bytes=100, delta_bytes=25)
    assert metrics.reduction_bytes == 75
    assert metrics.ratio == 0.25
    assert CompressionMetrics(original_bytes=10, delta_bytes=30).reduction_bytes == 0
    assert CompressionMetrics(original_bytes=0, delta_bytes=2).ratio == 1.0


def test_unchanged_payload_compresses_to_an_empty_delta() -> None:
    delta, metrics = compress({"a": [1, 2]}, {"a": [1, 2]})
    assert delta == {}
    assert metrics.delta_bytes == 2  # "{}"
    assert metrics.original_bytes == len('{"a": [1, 2]}')


def test_json_unsafe_values_are_measured_by_their_str() -> None:
    class Opaque:
        def __str__(self) -> str:
            return "opaque!"

    current = {"o": Opaque(), "nested": {"l": [Opaque(), 1, None]}, "t": (1, 2)}
    _, metrics = compress({}, current)
    safe = {"o": "opaque!", "nested": {"l": ["opaque!", 1, None]}, "t": "(1, 2)"}
    assert metrics.original_bytes == len(json.dumps(safe).encode())
    # A tuple is JSON-safe on its own: only the fallback turns it into its str().
    _, plain = compress({}, {"t": (1, 2)})
    assert plain.original_bytes == len('{"t": [1, 2]}')


def test_metrics_is_frozen() -> None:
    metrics = CompressionMetrics(original_bytes=1, delta_bytes=1)
    with pytest.raises(AttributeError):
        metrics.delta_bytes = 2  # type: ignore[misc]


# --- bad input --------------------------------------------------------------------------


def _untyped(function: Any) -> Any:
    return function


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: _untyped(compute_delta)([], {}),
            r"^compute_delta: base must be a mapping; got list$",
        ),
        (
            lambda: _untyped(compute_delta)({}, "x"),
            r"^compute_delta: current must be a mapping; got str$",
        ),
        (
            lambda: _untyped(apply_delta)(None, {}),
            r"^apply_delta: base must be a mapping; got NoneType$",
        ),
        (
            lambda: _untyped(apply_delta)({}, [("set", {})]),
            r"^apply_delta: delta must be a mapping; got list$",
        ),
        (
            lambda: _untyped(apply_delta)({}, {"set": [("a", 1)]}),
            r"^apply_delta: delta\['set'\] must be a mapping; got list$",
        ),
        (
            lambda: _untyped(apply_delta)({"a": 1}, {"remove": "a"}),
            r"^apply_delta: delta\['remove'\] must be a list of keys; got str$",
        ),
        (lambda: _untyped(compress)({}, 3), r"^compute_delta: current must be a mapping; got int$"),
    ],
)
def test_bad_input(call: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        call()


# --- the reference ----------------------------------------------------------------------


@given(related_payloads() | large_related_payloads())
def test_matches_reference(
    ref_compression: ModuleType, pair: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    # Small payloads and payloads around compute_delta's switch to its C passes.
    base, current = pair
    delta = compute_delta(base, current)
    ref_delta = ref_compression.compute_delta(base, current)
    assert delta == ref_delta
    assert list(delta.get("set", {})) == list(ref_delta.get("set", {}))
    assert apply_delta(base, delta) == ref_compression.apply_delta(base, delta)
    ours, metrics = compress(base, current)
    theirs, ref_metrics = ref_compression.compress(base, current)
    assert ours == theirs
    assert (metrics.original_bytes, metrics.delta_bytes) == (
        ref_metrics.original_bytes,
        ref_metrics.delta_bytes,
    )
    assert (metrics.reduction_bytes, metrics.ratio) == (
        ref_metrics.reduction_bytes,
        ref_metrics.ratio,
    )


def test_json_unsafe_fallback_matches_reference(ref_compression: ModuleType) -> None:
    class Opaque:
        def __str__(self) -> str:
            return "opaque"

    current = {"o": Opaque(), "l": [Opaque(), (1, "x")], "d": {"k": {1, 2}}, "s": "ü"}
    _, metrics = compress({"s": "ü"}, current)
    _, ref_metrics = ref_compression.compress({"s": "ü"}, current)
    assert (metrics.original_bytes, metrics.delta_bytes) == (
        ref_metrics.original_bytes,
        ref_metrics.delta_bytes,
    )
