"""StageOutput, StageArtifact, StageEvent: factories, immutability, validation, parity."""

from __future__ import annotations

import copy
import inspect
import json
import pickle
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio.core import stage_output
from stageflow_trio.core.stage_enums import StageStatus
from stageflow_trio.core.stage_output import StageArtifact, StageEvent, StageOutput
from stageflow_trio.utils.frozen import FrozenDict, FrozenList
from tests.core.strategies import data_dicts, stage_outputs

_FIELDS = ("status", "data", "artifacts", "events", "error", "duration_ms", "version")


def _fields(out: Any) -> dict[str, Any]:
    """The fields of an output (ours or the reference's) as plain values."""
    return {
        "status": out.status.value,
        "data": dict(out.data),
        "artifacts": list(out.artifacts),
        "events": list(out.events),
        "error": out.error,
        "duration_ms": out.duration_ms,
        "version": out.version,
    }


def test_exports() -> None:
    assert sorted(stage_output.__all__) == ["StageArtifact", "StageEvent", "StageOutput"]


def test_field_order_matches_reference() -> None:
    assert tuple(a.name for a in attrs.fields(StageOutput)) == _FIELDS
    out = StageOutput(StageStatus.OK, {"a": 1}, [], [], "e", 5, "v")
    assert _fields(out) == {
        "status": "ok",
        "data": {"a": 1},
        "artifacts": [],
        "events": [],
        "error": "e",
        "duration_ms": 5,
        "version": "v",
    }


# --- factories ------------------------------------------------------------------


def test_ok() -> None:
    assert _fields(StageOutput.ok()) == _fields(StageOutput(StageStatus.OK))
    assert StageOutput.ok({"a": 1}).data == {"a": 1}
    assert StageOutput.ok(a=1, b=2).data == {"a": 1, "b": 2}
    # data wins when non-empty; keyword arguments are the data otherwise.
    assert StageOutput.ok({"a": 1}, b=2).data == {"a": 1}
    assert StageOutput.ok({}, b=2).data == {"b": 2}
    assert StageOutput.ok(version="v1").version == "v1"
    assert StageOutput.ok(version="v1").data == {}
    out = StageOutput.ok()
    assert out.status is StageStatus.OK
    assert out.error is None
    assert out.duration_ms is None


def test_ok_artifacts_events_metadata() -> None:
    art = StageArtifact("transcript", {"text": "hi"})
    ev = StageEvent("progress", {"pct": 50})
    out = StageOutput.ok({"a": 1}, artifacts=[art], events=(ev,))
    assert out.artifacts == [art]
    assert out.events == [ev]
    assert type(out.artifacts) is FrozenList
    assert type(out.events) is FrozenList
    assert out.data == {"a": 1}
    # There is no metadata field: metadata is ordinary keyword data, as in the reference.
    assert StageOutput.ok(metadata={"m": 1}).data == {"metadata": {"m": 1}}


def test_ok_artifacts_keyword_diverges_from_reference(reference: ModuleType) -> None:
    ref = reference.core.stage_output
    art = StageArtifact("t", {})
    # The reference treats artifacts= as keyword data; here it fills the field (parity row).
    assert ref.StageOutput.ok(artifacts=[art]).data == {"artifacts": [art]}
    ours = StageOutput.ok(artifacts=[art])
    assert ours.data == {}
    assert ours.artifacts == [art]


def test_skip_and_cancel() -> None:
    assert StageOutput.skip().data == {"reason": ""}
    assert StageOutput.skip("no input").data == {"reason": "no input"}
    assert StageOutput.skip(reason="r", data={"x": 1}).data == {"reason": "r", "x": 1}
    # data keys come last and win, as in the reference.
    assert StageOutput.skip("r", {"reason": "override"}).data == {"reason": "override"}
    assert StageOutput.skip("r").status is StageStatus.SKIP
    cancelled = StageOutput.cancel("user left", {"x": 1}, version="2")
    assert cancelled.status is StageStatus.CANCEL
    assert cancelled.data == {"cancel_reason": "user left", "x": 1}
    assert cancelled.version == "2"
    assert StageOutput.cancel().data == {"cancel_reason": ""}


def test_fail() -> None:
    assert StageOutput.fail().error == "Unknown error"
    assert StageOutput.fail("boom").error == "boom"
    assert StageOutput.fail(response="resp").error == "resp"
    assert StageOutput.fail("boom", response="resp").error == "boom"
    assert StageOutput.fail("", response="resp").error == "resp"
    assert StageOutput.fail("", response="").error == "Unknown error"
    out = StageOutput.fail(error="boom", data={"code": 3})
    assert out.status is StageStatus.FAIL
    assert out.data == {"code": 3}


def test_fail_retryable() -> None:
    assert StageOutput.fail("boom", retryable=True).data == {"retryable": True}
    assert StageOutput.fail("boom", {"code": 3}, retryable=False).data == {
        "code": 3,
        "retryable": False,
    }
    assert StageOutput.fail("boom", {"retryable": "x"}, retryable=True).data == {"retryable": True}
    assert StageOutput.fail("boom").data == {}
    with pytest.raises(TypeError, match=r"^retryable must be a bool or None, got str$"):
        StageOutput.fail("boom", retryable="yes")  # type: ignore[arg-type]


def test_retry() -> None:
    out = StageOutput.retry("rate limited", {"after": 3})
    assert out.status is StageStatus.RETRY
    assert out.error == "rate limited"
    assert out.data == {"after": 3}
    assert StageOutput.retry("").error == ""
    assert StageOutput.retry(reason="flaky").error == "flaky"
    assert StageOutput.retry("error wins", reason="alias").error == "error wins"
    assert StageOutput.retry(reason="flaky", retryable=True).data == {"retryable": True}
    with pytest.raises(
        TypeError,
        match=r"^StageOutput\.retry\(\) missing required argument: 'error' \(or its alias 'reason'\)$",
    ):
        StageOutput.retry()


def test_factory_signatures_extend_the_reference(reference: ModuleType) -> None:
    ref = reference.core.stage_output
    for name in ("ok", "skip", "cancel", "fail", "retry"):
        ours = inspect.signature(getattr(StageOutput, name)).parameters
        theirs = inspect.signature(getattr(ref.StageOutput, name)).parameters
        for pname, param in theirs.items():
            assert pname in ours, (name, pname)
            assert ours[pname].kind == param.kind, (name, pname)
            if name == "retry" and pname == "error":
                # Optional here because ``reason=`` may carry it instead.
                assert param.default is inspect.Parameter.empty
                assert ours[pname].default is None
            else:
                assert ours[pname].default == param.default, (name, pname)
    assert list(inspect.signature(StageOutput.ok).parameters)[:2] == ["data", "version"]


_DIFFERENTIAL_CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("ok", (), {}),
    ("ok", ({"a": 1},), {}),
    ("ok", ({"a": 1},), {"b": 2}),
    ("ok", ({},), {"b": 2}),
    ("ok", (None,), {"x": [1, 2], "version": "v"}),
    ("ok", (), {"metadata": {"m": 1}}),
    ("skip", (), {}),
    ("skip", ("why",), {"data": {"k": 1}, "version": "3"}),
    ("skip", ("why", {"reason": "data wins"}), {}),
    ("cancel", ("stop",), {}),
    ("cancel", ("stop", {"k": 1}), {}),
    ("fail", (), {}),
    ("fail", ("boom",), {}),
    ("fail", (None, {"k": 1}), {"response": "resp"}),
    ("fail", ("",), {"response": ""}),
    ("retry", ("again",), {}),
    ("retry", ("again", {"k": 1}), {"version": "1"}),
]


@pytest.mark.parametrize(("factory", "args", "kwargs"), _DIFFERENTIAL_CALLS)
def test_factories_match_reference(
    reference: ModuleType, factory: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    ref = reference.core.stage_output
    ours = getattr(StageOutput, factory)(*args, **kwargs)
    theirs = getattr(ref.StageOutput, factory)(*args, **kwargs)
    assert _fields(ours) == _fields(theirs)
    assert _fields(ours.with_duration(12)) == _fields(theirs.with_duration(12))
    assert _fields(ours.with_version("9")) == _fields(theirs.with_version("9"))


@given(data_dicts, st.none() | st.text(max_size=4))
def test_ok_matches_reference_property(
    reference: ModuleType, data: dict[str, Any], version: str | None
) -> None:
    ref = reference.core.stage_output
    assert _fields(StageOutput.ok(data, version=version)) == _fields(
        ref.StageOutput.ok(data, version=version)
    )
    # Keys naming ok()'s own parameters cannot travel as keyword data.
    kwargs = {k: v for k, v in data.items() if k not in {"data", "version", "artifacts", "events"}}
    assert _fields(StageOutput.ok(**kwargs)) == _fields(ref.StageOutput.ok(**kwargs))


@given(st.text(max_size=10), st.none() | data_dicts)
def test_reason_factories_match_reference_property(
    reference: ModuleType, reason: str, data: dict[str, Any] | None
) -> None:
    ref = reference.core.stage_output
    for factory in ("skip", "cancel", "fail", "retry"):
        assert _fields(getattr(StageOutput, factory)(reason, data)) == _fields(
            getattr(ref.StageOutput, factory)(reason, data)
        )


@given(data_dicts, st.text(max_size=10))
def test_factory_invariants_property(data: dict[str, Any], reason: str) -> None:
    ok = StageOutput.ok(data)
    assert ok.status is StageStatus.OK
    assert ok.data == data
    assert ok.error is None
    assert ok.artifacts == []
    assert ok.events == []
    skip = StageOutput.skip(reason, data)
    assert skip.data == {"reason": reason, **data}
    assert skip.error is None
    failed = StageOutput.fail(reason or None, data)
    assert failed.error == (reason or "Unknown error")
    assert failed.data == data
    for out in (ok, skip, failed, StageOutput.retry(reason, data)):
        assert type(out.data) is FrozenDict
        assert type(out.artifacts) is FrozenList
        assert type(out.events) is FrozenList
        assert out.duration_ms is None
        assert out.with_duration(7).duration_ms == 7
        assert out.with_duration(7).data == out.data


# --- immutability and drop-in behaviour -----------------------------------------


def test_outputs_are_frozen() -> None:
    out = StageOutput.ok({"a": 1})
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        out.status = StageStatus.FAIL  # type: ignore[misc]
    with pytest.raises(TypeError, match=r"^FrozenDict is immutable: item assignment"):
        out.data["a"] = 2
    with pytest.raises(TypeError, match=r"^FrozenList is immutable: 'append'"):
        out.artifacts.append(StageArtifact("t", {}))
    assert out.data == {"a": 1}


def test_caller_dict_is_copied() -> None:
    source = {"a": 1}
    out = StageOutput.ok(source)
    source["b"] = 2
    assert out.data == {"a": 1}
    arts: list[StageArtifact] = []
    out2 = StageOutput(StageStatus.OK, artifacts=arts)
    arts.append(StageArtifact("t", {}))
    assert out2.artifacts == []


def test_drop_in_container_behaviour() -> None:
    out = StageOutput.ok({"a": 1, "b": [1, 2]})
    assert out.data == {"a": 1, "b": [1, 2]}
    assert out.artifacts == []
    assert out.events == []
    assert json.dumps(out.data) == '{"a": 1, "b": [1, 2]}'
    mutable = dict(out.data)
    mutable["c"] = 3
    assert out.data == {"a": 1, "b": [1, 2]}
    for clone in (copy.deepcopy(out), pickle.loads(pickle.dumps(out)), copy.copy(out)):
        assert clone == out
        assert type(clone.data) is FrozenDict


def test_equality_and_hash() -> None:
    assert StageOutput.ok({"a": 1}) == StageOutput.ok(a=1)
    assert StageOutput.ok({"a": 1}) != StageOutput.ok({"a": 2})
    assert hash(StageOutput.ok({"a": 1})) == hash(StageOutput.ok(a=1))


def test_with_duration_and_version_return_copies() -> None:
    art = StageArtifact("t", {"x": 1})
    out = StageOutput.ok({"a": 1}, artifacts=[art], version="1")
    timed = out.with_duration(42)
    assert timed is not out
    assert timed.duration_ms == 42
    assert out.duration_ms is None
    assert timed.artifacts == [art]
    assert timed.version == "1"
    tagged = timed.with_version("2")
    assert tagged.version == "2"
    assert tagged.duration_ms == 42
    assert timed.version == "1"
    with pytest.raises(
        TypeError, match=r"^duration_ms must be a number of milliseconds or None, got str$"
    ):
        out.with_duration("5")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^version must be a str or None, got int$"):
        out.with_version(2)  # type: ignore[arg-type]


@given(stage_outputs)
def test_with_helpers_keep_other_fields_property(out: StageOutput) -> None:
    assert attrs.evolve(out, duration_ms=3) == out.with_duration(3)
    assert attrs.evolve(out, version="z") == out.with_version("z")
    assert pickle.loads(pickle.dumps(out)) == out


def test_subclass_factories_return_the_subclass() -> None:
    @attrs.frozen
    class Tagged(StageOutput):
        tag: str = "t"

    out = Tagged.ok({"a": 1}, artifacts=[StageArtifact("x", {})])
    assert type(out) is Tagged
    assert out.tag == "t"
    assert out.data == {"a": 1}
    assert type(Tagged.fail("e")) is Tagged
    assert type(Tagged.skip("r")) is Tagged
    timed = out.with_duration(5)
    assert type(timed) is Tagged
    assert timed.duration_ms == 5
    assert type(out.with_version("v")) is Tagged


# --- validation -----------------------------------------------------------------


def test_status_accepts_string_values() -> None:
    assert StageOutput("fail").status is StageStatus.FAIL


def test_constructor_validation_messages() -> None:
    with pytest.raises(
        ValueError,
        match=r"^status must be a StageStatus or one of 'ok', 'skip', 'cancel', 'fail', 'retry', got 'done'$",
    ):
        StageOutput("done")
    with pytest.raises(TypeError, match=r"^status must be a StageStatus, got int$"):
        StageOutput(1)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"^data must be a mapping \(e\.g\. a dict\) or None, got list$"
    ):
        StageOutput(StageStatus.OK, [1])  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"^artifacts must be a list \(or other iterable\) or None, got str$"
    ):
        StageOutput(StageStatus.OK, artifacts="abc")  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"^events must be a list \(or other iterable\) or None, got int$"
    ):
        StageOutput(StageStatus.OK, events=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^error must be a str or None, got ValueError$"):
        StageOutput(StageStatus.FAIL, error=ValueError("x"))  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"^duration_ms must be a number of milliseconds or None, got bool$"
    ):
        StageOutput(StageStatus.OK, duration_ms=True)
    with pytest.raises(TypeError, match=r"^version must be a str or None, got int$"):
        StageOutput(StageStatus.OK, version=1)  # type: ignore[arg-type]
    assert StageOutput(StageStatus.OK, None).data == {}


def test_factory_validation_messages() -> None:
    with pytest.raises(
        TypeError, match=r"^data must be a mapping \(e\.g\. a dict\) or None, got list$"
    ):
        StageOutput.ok([1, 2])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^version must be a str or None, got int$"):
        StageOutput.ok(version=3)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"^artifacts must be a list \(or other iterable\) or None, got dict$"
    ):
        StageOutput.ok(artifacts={"a": 1})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match=r"^reason must be a str, got NoneType$"):
        StageOutput.skip(None)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"^data must be a mapping \(e\.g\. a dict\) or None, got str$"
    ):
        StageOutput.cancel("r", "not a dict")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^error must be a str or None, got RuntimeError$"):
        StageOutput.fail(RuntimeError("x"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^response must be a str or None, got int$"):
        StageOutput.fail(response=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^reason must be a str or None, got int$"):
        StageOutput.retry(reason=5)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"^data must be a mapping \(e\.g\. a dict\) or None, got tuple$"
    ):
        StageOutput.fail("e", ("a",), retryable=True)  # type: ignore[arg-type]


# --- artifacts and events -------------------------------------------------------


@pytest.mark.parametrize(("cls", "second"), [(StageArtifact, "payload"), (StageEvent, "data")])
def test_artifact_and_event(cls: Any, second: str) -> None:
    before = datetime.now(UTC)
    item = cls("kind", {"k": [1]})
    after = datetime.now(UTC)
    assert item.type == "kind"
    assert getattr(item, second) == {"k": [1]}
    assert type(getattr(item, second)) is FrozenDict
    assert before <= item.timestamp <= after
    assert item.timestamp.tzinfo is UTC
    assert tuple(a.name for a in attrs.fields(cls)) == ("type", second, "timestamp")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        item.type = "other"
    with pytest.raises(TypeError, match=r"^type must be a str, got int$"):
        cls(1, {})
    with pytest.raises(
        TypeError, match=rf"^{second} must be a mapping \(e\.g\. a dict\) or None, got list$"
    ):
        cls("t", [])
    with pytest.raises(TypeError, match=r"^timestamp must be a datetime, got str$"):
        cls("t", {}, "2024-01-01")
    fixed = datetime(2024, 1, 1, tzinfo=UTC)
    assert cls("t", {}, fixed).timestamp == fixed
    assert pickle.loads(pickle.dumps(cls("t", {"a": 1}, fixed))) == cls("t", {"a": 1}, fixed)


def test_artifact_and_event_match_reference_fields(reference: ModuleType) -> None:
    ref = reference.core.stage_output
    fixed = datetime(2024, 1, 1, tzinfo=UTC)
    for ours_cls, ref_cls in ((StageArtifact, ref.StageArtifact), (StageEvent, ref.StageEvent)):
        ours, theirs = ours_cls("t", {"a": 1}, fixed), ref_cls("t", {"a": 1}, fixed)
        assert [a.name for a in attrs.fields(ours_cls)] == list(ref_cls.__dataclass_fields__)
        for name in ref_cls.__dataclass_fields__:
            assert getattr(ours, name) == getattr(theirs, name)
