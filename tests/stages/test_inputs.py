"""StageInputs: strict dependency checks, key validation, immutability, parity."""

from __future__ import annotations

import pickle
import re
from collections.abc import Callable
from types import ModuleType
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio.context.context_snapshot import ContextSnapshot
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.errors import StageflowError
from stageflow_trio.stages import inputs as inputs_module
from stageflow_trio.stages.inputs import (
    StageInputs,
    UndeclaredDependencyError,
    create_stage_inputs,
)
from stageflow_trio.utils.frozen import FrozenDict

SNAPSHOT: ContextSnapshot[Any] = ContextSnapshot()


def _inputs(**kwargs: Any) -> StageInputs:
    outputs = {
        "stt": StageOutput.ok({"transcript": "hi", "lang": "en"}),
        "nlu": StageOutput.ok({"intent": "greet", "lang": "fr"}),
    }
    return create_stage_inputs(SNAPSHOT, prior_outputs=outputs, **kwargs)


def test_exports() -> None:
    assert sorted(inputs_module.__all__) == [
        "StageInputs",
        "UndeclaredDependencyError",
        "create_stage_inputs",
    ]


def test_defaults() -> None:
    inputs = StageInputs(SNAPSHOT)
    assert inputs.snapshot is SNAPSHOT
    assert inputs.prior_outputs == {}
    assert inputs.ports is None
    assert inputs.declared_deps == frozenset()
    assert inputs.stage_name is None
    assert inputs.strict is True
    assert [a.name for a in attrs.fields(StageInputs)] == [
        "snapshot",
        "prior_outputs",
        "ports",
        "declared_deps",
        "stage_name",
        "strict",
    ]


def test_create_stage_inputs_normalizes() -> None:
    # The tuple is outside declared_deps's declared type; it is accepted all the same.
    for deps in (["a", "b"], {"a", "b"}, frozenset({"a", "b"}), ("a", "b")):
        assert create_stage_inputs(SNAPSHOT, declared_deps=deps).declared_deps == frozenset(  # type: ignore[arg-type]
            {"a", "b"}
        )
    inputs = create_stage_inputs(SNAPSHOT, stage_name="me", strict=False, ports=None)
    assert inputs.stage_name == "me"
    assert inputs.strict is False
    assert inputs.prior_outputs == {}


def test_immutable_view() -> None:
    source = {"stt": StageOutput.ok({"t": 1})}
    inputs = create_stage_inputs(SNAPSHOT, prior_outputs=source)
    source["late"] = StageOutput.ok()
    assert list(inputs.prior_outputs) == ["stt"]
    assert type(inputs.prior_outputs) is FrozenDict
    with pytest.raises(TypeError, match=r"^FrozenDict is immutable"):
        inputs.prior_outputs["x"] = StageOutput.ok()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        inputs.strict = False  # type: ignore[misc]


def test_get_searches_in_order_and_is_never_checked() -> None:
    inputs = _inputs(declared_deps=["other"], stage_name="me")
    assert inputs.get("lang") == "en"
    assert inputs.get("intent") == "greet"
    assert inputs.get("missing") is None
    assert inputs.get("missing", 5) == 5


def test_accessors_with_declared_deps() -> None:
    inputs = _inputs(declared_deps=["stt", "tts"], stage_name="me")
    assert inputs.get_from("stt", "transcript") == "hi"
    assert inputs.get_from("stt", "missing", "d") == "d"
    assert inputs.get_from("tts", "x", "d") == "d"
    assert inputs.has_output("stt")
    assert not inputs.has_output("tts")
    assert inputs.get_output("stt") == StageOutput.ok({"transcript": "hi", "lang": "en"})
    assert inputs.get_output("tts") is None
    assert inputs.require_from("stt", "lang") == "en"


def _undeclared(stage: str, deps: list[str], accessing: str | None) -> str:
    message = (
        f"Attempted to access undeclared dependency '{stage}'. "
        f"Declared dependencies: {deps}. "
        f"Add '{stage}' to depends_on to fix this error."
    )
    if accessing:
        message = f"Stage '{accessing}': {message}"
    return "^" + re.escape(message) + "$"


@pytest.mark.parametrize(
    "access",
    [
        lambda i: i.get_from("nlu", "intent"),
        lambda i: i.has_output("nlu"),
        lambda i: i.get_output("nlu"),
        lambda i: i.require_from("nlu", "intent"),
    ],
    ids=["get_from", "has_output", "get_output", "require_from"],
)
def test_strict_mode_rejects_undeclared(access: Any) -> None:
    inputs = _inputs(declared_deps=["tts", "stt"], stage_name="me")
    with pytest.raises(
        UndeclaredDependencyError, match=_undeclared("nlu", ["stt", "tts"], "me")
    ) as info:
        access(inputs)
    assert info.value.stage_name == "nlu"
    assert info.value.declared_deps == frozenset({"stt", "tts"})
    assert info.value.accessing_stage == "me"
    # Without a stage name the prefix is left out.
    with pytest.raises(UndeclaredDependencyError, match=_undeclared("nlu", ["stt", "tts"], None)):
        access(_inputs(declared_deps=["tts", "stt"]))


@pytest.mark.parametrize(
    "kwargs",
    [{"declared_deps": None}, {"declared_deps": []}, {"declared_deps": ["stt"], "strict": False}],
)
def test_no_check_without_deps_or_strictness(kwargs: dict[str, Any]) -> None:
    inputs = _inputs(**kwargs)
    assert inputs.get_from("nlu", "intent") == "greet"
    assert inputs.has_output("nlu")
    assert inputs.get_output("nlu") is not None
    assert inputs.require_from("nlu", "intent") == "greet"


def test_require_from_missing() -> None:
    inputs = _inputs()
    with pytest.raises(
        KeyError,
        match=r"^\"Required dependency 'tts' has no output\. Ensure 'tts' executes before this stage\.\"$",
    ):
        inputs.require_from("tts", "x")
    with pytest.raises(
        KeyError,
        match=r"^\"Required key 'x' not found in output from 'stt'\. Available keys: \['transcript', 'lang'\]\"$",
    ):
        inputs.require_from("stt", "x")


@pytest.mark.parametrize(
    ("key", "error", "message"),
    [
        (None, TypeError, r"^StageInputs key must be provided$"),
        (3, TypeError, r"^StageInputs key must be a string$"),
        ("", ValueError, r"^StageInputs key cannot be empty$"),
    ],
)
def test_key_validation(key: Any, error: type[Exception], message: str) -> None:
    inputs = _inputs(declared_deps=["stt"])
    calls: tuple[Callable[[], object], ...] = (
        lambda: inputs.get(key),
        lambda: inputs.get_from("stt", key),
        lambda: inputs.require_from("stt", key),
        # The key is checked before the dependency.
        lambda: inputs.get_from("undeclared", key),
    )
    for call in calls:
        with pytest.raises(error, match=message):
            call()


def test_error_class_and_pickling() -> None:
    err = UndeclaredDependencyError("x", frozenset(), "me")
    assert isinstance(err, StageflowError)
    assert str(err) == (
        "Stage 'me': Attempted to access undeclared dependency 'x'. "
        "Declared dependencies: ['(none)']. Add 'x' to depends_on to fix this error."
    )
    clone = pickle.loads(pickle.dumps(err))
    assert str(clone) == str(err)
    assert (clone.stage_name, clone.declared_deps, clone.accessing_stage) == (
        "x",
        frozenset(),
        "me",
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"prior_outputs": [1]},
            r"^prior_outputs must be a mapping of stage name to StageOutput, got list$",
        ),
        ({"declared_deps": "stt"}, r"^declared_deps must be a collection of stage names, got str$"),
        ({"declared_deps": 5}, r"^declared_deps must be a collection of stage names, got int$"),
        ({"stage_name": 5}, r"^stage_name must be a str or None, got int$"),
        ({"strict": "yes"}, r"^strict must be a bool, got str$"),
    ],
)
def test_bad_construction(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        create_stage_inputs(SNAPSHOT, **kwargs)


# --- differential against the reference -----------------------------------------


def _outcome(call: Any) -> tuple[str, Any]:
    try:
        value = call()
    except Exception as exc:  # the class name and message are what is compared
        return (type(exc).__name__, str(exc))
    if hasattr(value, "status"):
        return ("output", (value.status.value, dict(value.data)))
    return ("value", value)


_names = st.sampled_from(["stt", "nlu", "tts", "me"])
_keys = st.sampled_from(["transcript", "lang", "intent", "missing", "", None, 3])


@given(
    deps=st.none() | st.lists(_names, max_size=3),
    strict=st.booleans(),
    stage_name=st.none() | _names,
    target=_names,
    key=_keys,
)
def test_matches_reference(
    reference: ModuleType,
    deps: list[str] | None,
    strict: bool,
    stage_name: str | None,
    target: str,
    key: Any,
) -> None:
    ref_inputs = reference.stages.inputs
    ref_core = reference.core
    raw = {"stt": {"transcript": "hi", "lang": "en"}, "nlu": {"intent": "greet", "lang": "fr"}}
    ours = create_stage_inputs(
        SNAPSHOT,
        prior_outputs={k: StageOutput.ok(v) for k, v in raw.items()},
        declared_deps=deps,
        stage_name=stage_name,
        strict=strict,
    )
    theirs = ref_inputs.create_stage_inputs(
        SNAPSHOT,
        prior_outputs={k: ref_core.StageOutput.ok(v) for k, v in raw.items()},
        declared_deps=deps,
        stage_name=stage_name,
        strict=strict,
    )
    for method, args in (
        ("get", (key,)),
        ("get_from", (target, key)),
        ("has_output", (target,)),
        ("get_output", (target,)),
        ("require_from", (target, key)),
    ):
        assert _outcome(lambda i=ours, m=method, a=args: getattr(i, m)(*a)) == _outcome(
            lambda i=theirs, m=method, a=args: getattr(i, m)(*a)
        ), method
