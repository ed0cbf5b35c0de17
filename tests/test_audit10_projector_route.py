"""WSMessageProjector: what pydantic's model_dump gives, for str subclasses and rich payloads.

The reference validates with pydantic models: a ``str`` field holds an exact
str, and an ``Any`` payload is dumped to plain data (dataclass instances and
nested models become dicts), so the projected message is JSON-ready.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import json
import uuid
from typing import TYPE_CHECKING, Any

import pydantic
import pytest

from stageflow_trio.projector import WSMessageProjector, WSStatusUpdatePayload

if TYPE_CHECKING:
    from types import ModuleType

RUN = str(uuid.UUID(int=1))
REQ = str(uuid.UUID(int=2))
IDS: dict[str, Any] = {
    "connection_org_id": None,
    "context_request_id": REQ,
    "context_pipeline_run_id": RUN,
}


class Kind(str, enum.Enum):  # noqa: UP042 - str() of this kind of member is its name
    STATUS = "status.update"
    TOKEN = "token"


class Loud(str):
    def __str__(self) -> str:
        return "LOUD"


@dataclasses.dataclass
class Hit:
    doc: str = "d1"
    score: float | None = None
    tags: list[str] = dataclasses.field(default_factory=lambda: ["a"])


@dataclasses.dataclass
class Page:
    hits: list[Hit] = dataclasses.field(default_factory=lambda: [Hit()])


class Stats(pydantic.BaseModel):
    count: int = 1
    note: str | None = None
    hit: Any = dataclasses.field(default_factory=Hit)


def _project(message: dict[str, Any]) -> dict[str, Any]:
    return WSMessageProjector().project(message, **IDS)


@pytest.mark.parametrize(
    ("kind", "text"), [(Kind.STATUS, "status.update"), (Kind.TOKEN, "token"), (Loud("x"), "x")]
)
def test_a_str_subclass_type_is_projected_as_an_exact_str(kind: str, text: str) -> None:
    payload = {"service": "s", "status": "ok"}
    projected = _project({"type": kind, "payload": payload})
    assert type(projected["type"]) is str
    assert projected["type"] == text
    assert f"{projected['type']}" == text  # not "Kind.STATUS"


def test_status_payload_model_validate_gives_exact_strs() -> None:
    model = WSStatusUpdatePayload.model_validate(
        {"service": Loud("svc"), "status": Kind.TOKEN, "metadata": {Kind.TOKEN: 1}}
    )
    assert (type(model.service), model.service) == (str, "svc")
    assert (type(model.status), model.status) == (str, "token")
    assert model.metadata is not None
    assert [type(key) for key in model.metadata] == [str]


def test_dataclass_and_model_payloads_are_dumped_to_plain_data() -> None:
    page = Page()
    projected = _project(
        {"type": "results", "payload": {"page": page, "stats": Stats(), "raw": Hit}}
    )
    assert projected["payload"] == {
        "page": {"hits": [{"doc": "d1", "score": None, "tags": ["a"]}]},
        # exclude_none reaches into a nested model (not into dataclasses or dicts).
        "stats": {"count": 1, "hit": {"doc": "d1", "score": None, "tags": ["a"]}},
        "raw": Hit,  # a class is not an instance: kept as is
    }
    assert projected["payload"]["page"]["hits"][0]["tags"] is not page.hits[0].tags
    del projected["payload"]["raw"]
    json.dumps(projected)  # ready for the websocket


def test_a_top_level_dataclass_payload_becomes_a_dict() -> None:
    projected = _project({"type": "hit", "payload": Hit(score=0.5)})
    assert projected["payload"] == {"doc": "d1", "score": 0.5, "tags": ["a"]}


MESSAGES: list[dict[str, Any]] = [
    {"type": Kind.STATUS, "payload": {"service": "s", "status": "ok"}},
    {"type": Kind.TOKEN},
    {"type": Loud("x"), "payload": None},
    {"type": "t", "payload": Page()},
    {"type": "t", "payload": {"page": Page(), "stats": Stats(note=None), "l": [Stats()]}},
    {"type": "t", "payload": (Hit(), [Hit(score=1.0)])},
    {
        "type": "status.update",
        "payload": {"service": "s", "status": "x", "metadata": {"hit": Hit(), "s": Stats()}},
    },
]


@pytest.mark.parametrize("message", MESSAGES, ids=repr)
def test_projection_matches_the_reference(reference: ModuleType, message: dict[str, Any]) -> None:
    ref_service = importlib.import_module("stageflow.projector.service")
    theirs = ref_service.WSMessageProjector().project(message, **IDS)
    ours = _project(message)
    assert ours == theirs
    assert type(ours["type"]) is type(theirs["type"])


@pytest.mark.parametrize("message", [None, ["type", "x"], "status.update", 5])
def test_a_message_that_is_not_a_mapping_is_a_type_error(message: Any) -> None:
    with pytest.raises(TypeError, match=r"^WSMessageProjector.project: message must be a mapping"):
        WSMessageProjector().project(message, **IDS)


def test_route_still_imports_empty() -> None:
    route = importlib.import_module("stageflow_trio.route")
    assert route.__all__ == []
