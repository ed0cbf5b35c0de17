"""Per-stage output storage with attempt tracking.

Each stage has at most one current :class:`OutputEntry`. Writing again needs
``allow_overwrite=True`` (the retry case) and bumps the attempt number.

``write`` stays ``async``, as in the reference's API, and is a checkpoint under
the library's checkpoint budget (:mod:`stageflow_trio.lowlevel`): a
cancellation point on every call, a schedule point when one is due.

Under trio no lock is needed: between the conflict check and the store there is
no checkpoint, so no other task can interleave; trio switches tasks only at
checkpoints.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
from trio.lowlevel import checkpoint

from stageflow_trio._budget import checkpoint_due
from stageflow_trio._frozen import frozen_compat
from stageflow_trio.core.stage_output import StageOutput
from stageflow_trio.errors import StageflowError

__all__ = ["OutputBag", "OutputConflictError", "OutputEntry"]


class OutputConflictError(StageflowError):
    """A stage wrote its output again without ``allow_overwrite=True``.

    Attributes:
        stage_name: The stage whose write was refused.
        existing_attempt: The attempt number of the output already stored.
    """

    def __init__(self, stage_name: str, existing_attempt: int) -> None:
        self.stage_name = stage_name
        self.existing_attempt = existing_attempt
        super().__init__(
            f"Stage '{stage_name}' already has output (attempt {existing_attempt}). "
            "Use allow_overwrite=True for retry scenarios."
        )

    def __reduce__(self) -> tuple[type[OutputConflictError], tuple[str, int]]:
        return (type(self), (self.stage_name, self.existing_attempt))


def _validate_output(_instance: object, _attribute: attrs.Attribute[Any], value: object) -> None:
    _check_output(value)


def _validate_attempt(_instance: object, _attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"attempt must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"attempt must be >= 1, got {value}")


def _validate_timestamp(_instance: object, _attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, datetime):
        raise TypeError(f"timestamp must be a datetime, got {type(value).__name__}")


def _validate_stage_name(
    _instance: object, _attribute: attrs.Attribute[Any], value: object
) -> None:
    _check_stage_name(value)


def _check_stage_name(value: object) -> None:
    if not isinstance(value, str):
        raise TypeError(f"stage_name must be a str, got {type(value).__name__}")
    if not value or value.isspace():
        raise ValueError("stage_name must not be empty or blank")


@frozen_compat
@attrs.frozen
class OutputEntry:
    """One stored stage output with its attempt number and time of recording.

    Attributes:
        output: The stage's output.
        attempt: Which run produced it, counting from 1.
        timestamp: When it was stored (UTC).
        stage_name: The stage that produced it.
    """

    output: StageOutput = attrs.field(validator=_validate_output)
    attempt: int = attrs.field(validator=_validate_attempt)
    timestamp: datetime = attrs.field(validator=_validate_timestamp)
    stage_name: str = attrs.field(validator=_validate_stage_name)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary: status value, data, error, timing and counts."""
        output = self.output
        return {
            "stage_name": self.stage_name,
            "attempt": self.attempt,
            "timestamp": self.timestamp.isoformat(),
            "status": output.status.value,
            "data": dict(output.data),
            "error": output.error,
            "duration_ms": output.duration_ms,
            "artifacts_count": len(output.artifacts),
            "events_count": len(output.events),
        }


class _RecordedAt:
    """``OutputEntry.timestamp``: the attrs slot, read through a lazy conversion.

    ``OutputBag`` stores the ``time.time_ns()`` reading it has already taken
    for its checkpoint budget, and the first read turns it into the datetime
    ``datetime.now(UTC)`` would have given (the same clock, cut to the
    microsecond), stored back in place. Building a datetime on every write cost
    about a sixth of an async write, and most entries' timestamps are never
    read. Entries built by the public constructor hold a datetime from the
    start; every read returns one either way.
    """

    __slots__ = ("_slot",)

    def __init__(self, slot: Any) -> None:
        self._slot = slot

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        if instance is None:
            return self
        value = self._slot.__get__(instance, owner)
        # Only OutputBag's own entries hold a reading (a subclass that redeclares
        # the field inherits this descriptor, and its ints are its own).
        if type(value) is int and type(instance) is OutputEntry:
            value = _EPOCH + timedelta(microseconds=value // 1000)
            self._slot.__set__(instance, value)
        return value

    def __set__(self, instance: object, value: object) -> None:
        self._slot.__set__(instance, value)

    def __delete__(self, instance: object) -> None:
        self._slot.__delete__(instance)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_slots = OutputEntry.__dict__
_set_output = _slots["output"].__set__
_set_attempt = _slots["attempt"].__set__
_set_timestamp = _slots["timestamp"].__set__
_set_stage_name = _slots["stage_name"].__set__
type.__setattr__(OutputEntry, "timestamp", _RecordedAt(_slots["timestamp"]))
del _slots
_new = object.__new__
_wall_clock = time.time_ns


class OutputBag:
    """The current output of each stage, with how many attempts produced it.

    Example::

        bag = OutputBag()
        await bag.write("stt", StageOutput.ok(text="hi"))
        await bag.write("stt", retried, allow_overwrite=True)  # attempt 2
        bag.get_attempt_count("stt")  # 2
    """

    def __init__(self) -> None:
        self._entries: dict[str, OutputEntry] = {}

    async def write(
        self,
        stage_name: str,
        output: StageOutput,
        *,
        allow_overwrite: bool = False,
    ) -> OutputEntry:
        """Store ``output`` as the current output of ``stage_name``.

        A checkpoint under the checkpoint budget: cancellation is checked on
        every call, before anything is stored, so a cancelled write stores
        nothing. A schedule point comes at least once every 64 budgeted calls,
        and on the first call 1 ms or more after the last one (see
        :class:`stageflow_trio.lowlevel.checkpoint_budget`).

        Args:
            stage_name: The stage that produced the output.
            output: The output to store.
            allow_overwrite: Replace an existing output (a retry); the attempt
                number goes up by one.

        Returns:
            The stored entry (attempt 1 for a first write).

        Raises:
            OutputConflictError: The stage already has an output and
                ``allow_overwrite`` is false.
            TypeError: ``stage_name`` is not a str or ``output`` not a StageOutput.
            ValueError: ``stage_name`` is empty or blank.
        """
        if type(stage_name) is not str or not stage_name or stage_name.isspace():
            _check_stage_name(stage_name)
        if type(output) is not StageOutput:
            _check_output(output)
        now = _wall_clock()
        if checkpoint_due(now):
            await checkpoint()
            # Other tasks may have run: the entry is stamped when it is stored.
            now = _wall_clock()
        # No checkpoint from here on: the conflict check and the store are atomic.
        return self._store(stage_name, output, allow_overwrite, now)

    def write_sync(
        self,
        stage_name: str,
        output: StageOutput,
        *,
        allow_overwrite: bool = False,
    ) -> OutputEntry:
        """:meth:`write` without the checkpoint, for synchronous code.

        Raises:
            OutputConflictError: As for :meth:`write`.
            TypeError: As for :meth:`write`.
            ValueError: As for :meth:`write`.
        """
        if type(stage_name) is not str or not stage_name or stage_name.isspace():
            _check_stage_name(stage_name)
        if type(output) is not StageOutput:
            _check_output(output)
        return self._store(stage_name, output, allow_overwrite, _wall_clock())

    def _store(
        self, stage_name: str, output: StageOutput, allow_overwrite: bool, now: int
    ) -> OutputEntry:
        entries = self._entries
        existing = entries.get(stage_name)
        if existing is None:
            attempt = 1
        elif allow_overwrite:
            attempt = existing.attempt + 1
        else:
            raise OutputConflictError(stage_name, existing.attempt)
        # Arguments are validated; build the entry without re-running validators.
        # The timestamp slot takes the clock reading; the first read makes it a datetime.
        entry: OutputEntry = _new(OutputEntry)
        _set_output(entry, output)
        _set_attempt(entry, attempt)
        _set_timestamp(entry, now)
        _set_stage_name(entry, stage_name)
        entries[stage_name] = entry
        return entry

    def get(self, stage_name: str) -> OutputEntry | None:
        """The current entry of ``stage_name``, or ``None``."""
        return self._entries.get(stage_name)

    def get_output(self, stage_name: str) -> StageOutput | None:
        """The current output of ``stage_name``, or ``None``."""
        entry = self._entries.get(stage_name)
        return None if entry is None else entry.output

    def get_value(self, stage_name: str, key: str, default: Any = None) -> Any:
        """``data[key]`` of the current output of ``stage_name``, or ``default``."""
        entry = self._entries.get(stage_name)
        if entry is None:
            return default
        return entry.output.data.get(key, default)

    def has(self, stage_name: str) -> bool:
        """Whether ``stage_name`` has an output."""
        return stage_name in self._entries

    def keys(self) -> list[str]:
        """Stage names with an output, in first-write order (a new list)."""
        return list(self._entries)

    def entries(self) -> list[OutputEntry]:
        """The current entries, in first-write order (a new list)."""
        return list(self._entries.values())

    def outputs(self) -> dict[str, StageOutput]:
        """Stage name to current output (a new dict), e.g. for ``StageInputs``."""
        return {name: entry.output for name, entry in self._entries.items()}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dump: ``entries`` by stage, ``stage_count``, ``total_attempts``."""
        return {
            "entries": {name: entry.to_dict() for name, entry in self._entries.items()},
            "stage_count": len(self._entries),
            "total_attempts": sum(entry.attempt for entry in self._entries.values()),
        }

    def get_attempt_count(self, stage_name: str) -> int:
        """The attempt number of the current output of ``stage_name`` (0 if none)."""
        entry = self._entries.get(stage_name)
        return 0 if entry is None else entry.attempt

    def get_retry_stages(self) -> list[str]:
        """Stages whose current output came from a second or later attempt."""
        return [name for name, entry in self._entries.items() if entry.attempt > 1]

    def __contains__(self, stage_name: object) -> bool:
        return stage_name in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"OutputBag(stages={list(self._entries)})"


def _check_output(output: object) -> None:
    if not isinstance(output, StageOutput):
        raise TypeError(f"output must be a StageOutput, got {type(output).__name__}")
