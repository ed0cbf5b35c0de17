"""setup_logging and JsonLogFormatter (and the reference's output for the same records)."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from stageflow_trio.helpers.run_utils import JsonLogFormatter, setup_logging
from tests.fakes import import_reference


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """setup_logging replaces the root logger's handlers: put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in ("asyncio", "urllib3")}
    yield root
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)


def _record(**extra: Any) -> logging.LogRecord:
    record = logging.LogRecord(
        "app.stage", logging.WARNING, __file__, 10, "took %s", ("long",), None
    )
    record.__dict__.update(extra)
    return record


def test_json_formatter_fields() -> None:
    record = _record(event="stage.completed", stage="llm", duration_ms=12.5, other="x")
    data = json.loads(JsonLogFormatter().format(record))
    assert data == {
        "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(),
        "level": "WARNING",
        "logger": "app.stage",
        "message": "took long",
        "event": "stage.completed",
        "stage": "llm",
        "duration_ms": 12.5,
    }


def test_json_formatter_exception_and_unserializable_values() -> None:
    try:
        raise ValueError("bad")
    except ValueError:
        exc_info = sys.exc_info()
    record = _record(stage=Path("/x"))
    record.exc_info = exc_info
    data = json.loads(JsonLogFormatter().format(record))
    assert data["stage"] == "/x"
    assert data["exception"].startswith("Traceback (most recent call last):")
    assert data["exception"].endswith("ValueError: bad")
    assert list(data) == ["timestamp", "level", "logger", "message", "stage", "exception"]


def test_json_formatter_matches_the_reference_but_for_the_timestamp() -> None:
    reference = import_reference()
    record = _record(event="e", duration_ms=1)
    mine = json.loads(JsonLogFormatter().format(record))
    theirs = json.loads(reference.helpers.run_utils.JsonLogFormatter().format(record))
    del mine["timestamp"], theirs["timestamp"]
    assert mine == theirs


def test_setup_logging_console_plain(
    root_logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging()
    assert root_logger.level == logging.INFO
    (handler,) = root_logger.handlers
    assert isinstance(handler, logging.StreamHandler)
    assert handler.stream is sys.stdout
    assert handler.level == logging.INFO
    logging.getLogger("demo").info("hello %s", "there")
    logging.getLogger("demo").debug("hidden")
    out = capsys.readouterr().out
    assert out.endswith(" [INFO] demo: hello there\n")
    assert "hidden" not in out
    assert logging.getLogger("asyncio").level == logging.WARNING
    assert logging.getLogger("urllib3").level == logging.WARNING


def test_setup_logging_verbose_json_and_file(root_logger: logging.Logger, tmp_path: Path) -> None:
    log_file = tmp_path / "run.log"
    setup_logging(verbose=True, json_format=True, log_file=str(log_file))
    assert root_logger.level == logging.DEBUG
    console, file_handler = root_logger.handlers
    assert isinstance(file_handler, logging.FileHandler)
    assert all(isinstance(h.formatter, JsonLogFormatter) for h in (console, file_handler))
    assert all(h.level == logging.DEBUG for h in (console, file_handler))
    logging.getLogger("demo").debug("to the file", extra={"stage": "s"})
    file_handler.flush()
    (line,) = log_file.read_text().splitlines()
    assert json.loads(line)["message"] == "to the file"
    assert json.loads(line)["stage"] == "s"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"verbose": 1}, r"^setup_logging: verbose must be a bool; got int$"),
        ({"json_format": "yes"}, r"^setup_logging: json_format must be a bool; got str$"),
        (
            {"log_file": Path("x")},
            r"^setup_logging: log_file must be a str or None; got PosixPath$",
        ),
    ],
)
def test_setup_logging_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        setup_logging(**kwargs)
