"""stageflow_trio.projector: WSMessageProjector and its payload types.

Projected payloads are compared with the reference's on the same messages;
where neither the message nor the context carries an id, both draw UUID4s, so
both ``uuid.uuid4`` (the reference's) and the projector's ``uuid4`` are replaced by one
counter.
"""

from __future__ import annotations

import dataclasses
import importlib
import itertools
import logging
import re
import uuid
from typing import TYPE_CHECKING, Any

import pydantic
import pytest

import stageflow_trio.projector as projector
from stageflow_trio.projector import service
from stageflow_trio.projector.service import (
    ProjectorService,
    WSMessageProjector,
    WSMetadata,
    WSOutboundMessage,
    WSStatusUpdatePayload,
    _coerce_uuid_str,
)
from tests.fakes import extras

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType

U1 = "11111111-1111-1111-1111-111111111111"
U2 = "22222222-2222-2222-2222-222222222222"
U3 = "33333333-3333-3333-3333-333333333333"
U4 = "44444444-4444-4444-4444-444444444444"
U5 = "55555555-5555-5555-5555-555555555555"
U6 = "66666666-6666-6666-6666-666666666666"


@pytest.fixture
def ref_service(reference: ModuleType) -> ModuleType:
    return importlib.import_module("stageflow.projector.service")


@pytest.fixture
def restart_uuids(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Make both packages' UUID4s count 00..01, 00..02, ...; the returned function restarts.

    The reference calls ``uuid.uuid4`` through the module; the projector draws from
    ``stageflow_trio._time.uuid4`` (which builds the UUID itself), imported by name.
    """
    counter = itertools.count(1)

    def fake() -> uuid.UUID:
        return uuid.UUID(int=next(counter))

    def restart() -> None:
        nonlocal counter
        counter = itertools.count(1)

    monkeypatch.setattr(uuid, "uuid4", fake)
    monkeypatch.setattr(service, "uuid4", fake)
    return restart


MESSAGES: list[dict[str, Any]] = [
    {"type": "x", "payload": {"a": 1}},
    {"type": "x", "payload": {"a": None, "b": [None, {"c": None}]}, "extra": 1},
    {"type": "x", "metadata": {"request_id": U1, "pipeline_run_id": U2}},
    {"type": "x", "metadata": {"request_id": "not-a-uuid"}, "payload": {"requestId": U3}},
    {"type": "x", "payload": {"request_id": U1.replace("-", ""), "pipelineRunId": U2}},
    {"type": "x", "payload": {"metadata": {"requestId": U3, "pipeline_run_id": U4}}},
    {"type": "x", "payload": {"metadata": {"request_id": U3, "pipelineRunId": U4}}},
    {"type": "x", "payload": {"metadata": "not a dict"}},
    {"type": "x", "payload": "text"},
    {"type": "x", "payload": None},
    {"type": "x", "metadata": "not a dict"},
    {"type": b"bytes"},
    {"type": b"\xff"},
    {"type": "status.update", "payload": {"service": "s", "status": "ok"}},
    {"type": "status.update", "payload": {"service": "s", "status": "ok", "metadata": {"k": 1}}},
    {"type": "status.update", "payload": {"service": "s", "status": 1}},
    {"type": "status.update", "payload": {"service": "s"}},
    {"type": "status.update", "payload": {"service": "s", "status": "x", "metadata": [1]}},
    {"type": "status.update", "payload": {"service": "s", "status": "x", "metadata": {1: 2}}},
    {"type": "status.update", "payload": {"service": "s", "status": "x", "metadata": {b"k": 2}}},
    {"type": "status.update", "payload": ["not", "an", "object"]},
    {"type": None},
    {"type": 3},
    {},
]

CONTEXTS: list[dict[str, Any]] = [
    {"connection_org_id": None, "context_request_id": None, "context_pipeline_run_id": None},
    {"connection_org_id": U5, "context_request_id": U6, "context_pipeline_run_id": uuid.UUID(U4)},
    {"connection_org_id": "bad", "context_request_id": "bad", "context_pipeline_run_id": 7},
]


def _outcome(run: Any) -> Any:
    try:
        return run()
    except (pydantic.ValidationError, ValueError) as exc:
        # The reference's status.update message is ours; pydantic's others are its own.
        return ("ValueError", str(exc) if "status.update" in str(exc) else "invalid")


@pytest.mark.parametrize("context", CONTEXTS, ids=["none", "ids", "bad"])
@pytest.mark.parametrize("message", MESSAGES, ids=repr)
def test_projection_matches_the_reference(
    ref_service: ModuleType,
    restart_uuids: Callable[[], None],
    message: dict[str, Any],
    context: dict[str, Any],
) -> None:
    theirs = _outcome(lambda: ref_service.WSMessageProjector().project(message, **context))
    restart_uuids()
    ours = _outcome(lambda: WSMessageProjector().project(message, **context))
    assert ours == theirs


def test_ids_come_from_the_first_place_that_has_one() -> None:
    projected = WSMessageProjector().project(
        {"type": "t", "payload": {"requestId": U1, "metadata": {"pipelineRunId": U2}}, "x": 1},
        connection_org_id=uuid.UUID(U5),
        context_request_id=U3,
        context_pipeline_run_id=U4,
    )
    assert projected == {
        "type": "t",
        "payload": {"requestId": U1, "metadata": {"pipelineRunId": U2}},
        "metadata": {"pipeline_run_id": U2, "request_id": U1, "org_id": U5},
    }


def test_without_ids_fresh_uuid4s_are_drawn() -> None:
    projected = WSMessageProjector().project(
        {"type": "t"}, connection_org_id=None, context_request_id=None, context_pipeline_run_id=None
    )
    metadata = projected["metadata"]
    assert set(metadata) == {"pipeline_run_id", "request_id"}
    assert uuid.UUID(metadata["request_id"]).version == 4
    assert metadata["request_id"] != metadata["pipeline_run_id"]
    assert "payload" not in projected


def test_the_payload_is_copied() -> None:
    payload = {"a": [1, {"b": 2}], "t": (1, [2])}
    projected = WSMessageProjector().project(
        {"type": "t", "payload": payload},
        connection_org_id=None,
        context_request_id=U1,
        context_pipeline_run_id=U2,
    )
    assert projected["payload"] == payload
    assert projected["payload"] is not payload
    assert projected["payload"]["a"] is not payload["a"]


def test_a_type_that_is_not_utf8_is_a_named_validation_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="stageflow_trio.ws_projector"):
        with pytest.raises(ValueError, match=r"^WSOutboundMessage: type must be a str") as info:
            WSMessageProjector().project(
                {"type": b"\xff"},
                connection_org_id=None,
                context_request_id=U1,
                context_pipeline_run_id=U2,
            )
    assert type(info.value) is ValueError  # not a bare UnicodeDecodeError
    assert str(info.value) == "WSOutboundMessage: type must be a str; got bytes not valid as UTF-8"
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__
    (record,) = caplog.records
    assert record.getMessage() == "WS projector validation failed"


def test_a_self_referencing_payload_is_copied_as_pydantic_does(ref_service: ModuleType) -> None:
    """Containers are rebuilt down to one met again inside itself, which is kept as is."""

    def project(projector: Any, payload: Any) -> Any:
        return projector.project(
            {"type": "t", "payload": payload},
            connection_org_id=None,
            context_request_id=U1,
            context_pipeline_run_id=U2,
        )["payload"]

    def shapes(projector: Any) -> list[bool]:
        loop: dict[str, Any] = {"x": {"y": 1}}
        loop["self"] = loop
        mutual: dict[str, Any] = {}
        other = {"back": mutual}
        mutual["other"] = other
        shared = [1]
        items: list[Any] = []
        pair = (items,)
        items.append(pair)
        first, second, third, fourth = (
            project(projector, loop),
            project(projector, mutual),
            project(projector, {"a": shared, "b": shared}),
            project(projector, pair),
        )
        return [
            first is loop,
            first["self"] is loop,
            first["x"] is loop["x"],
            second["other"] is other,
            second["other"]["back"] is mutual,
            third["a"] is shared or third["b"] is shared or third["a"] is third["b"],
            fourth is pair,
            fourth[0] is items,
            fourth[0][0] is pair,
        ]

    ours = shapes(WSMessageProjector())
    assert ours == [False, True, False, False, True, False, False, False, True]
    assert ours == shapes(ref_service.WSMessageProjector())


def test_validation_failure_is_logged_and_raised(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="stageflow_trio.ws_projector"):
        with pytest.raises(ValueError, match=r"^WSOutboundMessage: type must be a str; got int$"):
            WSMessageProjector().project(
                {"type": 3},
                connection_org_id=None,
                context_request_id=U1,
                context_pipeline_run_id=U2,
            )
    (record,) = caplog.records
    assert record.getMessage() == "WS projector validation failed"
    assert extras(record, "service", "message_type", "error") == (
        "ws_projector",
        3,
        "WSOutboundMessage: type must be a str; got int",
    )


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([1], "status.update payload must be an object"),
        ({"status": "ok"}, "WSStatusUpdatePayload: service is required"),
        ({"service": "s", "status": 2}, "WSStatusUpdatePayload: status must be a str; got int"),
        (
            {"service": "s", "status": "x", "metadata": 1},
            "WSStatusUpdatePayload: metadata must be a mapping or None; got int",
        ),
        (
            {"service": "s", "status": "x", "metadata": {"a": 1, 2: 3}},
            "WSStatusUpdatePayload: metadata key must be a str; got int",
        ),
        (
            {"service": "s", "status": "x", "metadata": {b"\xff": 1}},
            "WSStatusUpdatePayload: metadata key must be a str; got bytes not valid as UTF-8",
        ),
        (
            {"service": b"\xff", "status": "x"},
            "WSStatusUpdatePayload: service must be a str; got bytes not valid as UTF-8",
        ),
    ],
)
def test_status_updates_are_checked(payload: Any, message: str) -> None:
    with pytest.raises(ValueError, match=rf"^{re.escape(message)}$"):
        WSMessageProjector().project(
            {"type": "status.update", "payload": payload},
            connection_org_id=None,
            context_request_id=U1,
            context_pipeline_run_id=U2,
        )


# --- payload types --------------------------------------------------------------------


def test_signatures_match_the_reference(ref_service: ModuleType) -> None:
    import inspect

    for name in ("WSMetadata", "WSOutboundMessage", "WSStatusUpdatePayload"):
        ours = inspect.signature(getattr(service, name))
        theirs = inspect.signature(getattr(ref_service, name))
        assert [(p.name, p.kind, p.default) for p in ours.parameters.values()] == [
            (p.name, p.kind, p.default) for p in theirs.parameters.values()
        ], name
    assert sorted(service.__all__) == sorted(ref_service.__all__)
    ref_package = importlib.import_module("stageflow.projector")
    assert sorted(projector.__all__) == sorted(ref_package.__all__)


@pytest.mark.parametrize("exclude_none", [False, True])
def test_dumps_match_the_reference(ref_service: ModuleType, exclude_none: bool) -> None:
    cases: list[tuple[str, dict[str, Any]]] = [
        ("WSMetadata", {"pipeline_run_id": U1, "request_id": U2}),
        ("WSMetadata", {"pipeline_run_id": U1, "request_id": U2, "org_id": U3, "x": 1}),
        ("WSOutboundMessage", {"type": "t", "metadata": {"pipeline_run_id": U1, "request_id": U2}}),
        (
            "WSOutboundMessage",
            {
                "type": "t",
                "payload": [1],
                "metadata": {"pipeline_run_id": U1, "request_id": U2, "org_id": None},
            },
        ),
        ("WSStatusUpdatePayload", {"service": "s", "status": "ok"}),
        ("WSStatusUpdatePayload", {"service": "s", "status": "ok", "metadata": {"a": None}}),
    ]
    for name, data in cases:
        ours = getattr(service, name).model_validate(data).model_dump(exclude_none=exclude_none)
        theirs = (
            getattr(ref_service, name).model_validate(data).model_dump(exclude_none=exclude_none)
        )
        assert ours == theirs, (name, data)


def test_outbound_message_takes_a_metadata_instance() -> None:
    metadata = WSMetadata(pipeline_run_id=U1, request_id=U2)
    message = WSOutboundMessage.model_validate({"type": "t", "metadata": metadata})
    assert message.metadata is metadata
    assert message == WSOutboundMessage(type="t", metadata=metadata)


@pytest.mark.parametrize(
    ("cls", "data", "message"),
    [
        (WSMetadata, [], "WSMetadata: expected a mapping; got list"),
        (WSMetadata, {"request_id": U1}, "WSMetadata: pipeline_run_id is required"),
        (
            WSMetadata,
            {"pipeline_run_id": U1, "request_id": U2, "org_id": 5},
            "WSMetadata: org_id must be a str; got int",
        ),
        (WSOutboundMessage, {"type": "t"}, "WSOutboundMessage: metadata is required"),
        (
            WSOutboundMessage,
            {"type": "t", "metadata": None},
            "WSMetadata: expected a mapping; got NoneType",
        ),
    ],
)
def test_model_validate_rejects(cls: Any, data: Any, message: str) -> None:
    with pytest.raises(ValueError, match=rf"^{re.escape(message)}$"):
        cls.model_validate(data)


def test_payload_types_are_frozen_and_keyword_only() -> None:
    metadata = WSMetadata(pipeline_run_id=U1, request_id=U2, org_id=U3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        metadata.org_id = None  # type: ignore[misc]
    with pytest.raises(TypeError):
        WSMetadata(U1, U2)  # type: ignore[call-arg]
    status = WSStatusUpdatePayload.model_validate({"service": b"s", "status": "ok"})
    assert status == WSStatusUpdatePayload(service="s", status="ok")


def test_status_metadata_keys_are_pydantic_strs(ref_service: ModuleType) -> None:
    data = {"service": "s", "status": "ok", "metadata": {b"k": 1, "j": [2]}}
    ours = WSStatusUpdatePayload.model_validate(data)
    assert ours.metadata == {"k": 1, "j": [2]}
    theirs = ref_service.WSStatusUpdatePayload.model_validate(data)
    assert ours.model_dump() == theirs.model_dump()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (U1, U1),
        (uuid.UUID(U2), U2),
        (U1.replace("-", "").upper(), U1),
        (f"urn:uuid:{U3}", U3),
        ("nope", None),
        (12, None),
    ],
)
def test_coerce_uuid_str(ref_service: ModuleType, value: Any, expected: str | None) -> None:
    assert _coerce_uuid_str(value) == expected == ref_service._coerce_uuid_str(value)


def test_coerce_uuid_str_of_an_object_whose_str_fails() -> None:
    class Broken:
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert _coerce_uuid_str(Broken()) is None


def test_projector_service_is_the_projector() -> None:
    assert ProjectorService is WSMessageProjector
    assert projector.ProjectorService is WSMessageProjector
