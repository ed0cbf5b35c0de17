"""A write-once key/value store that refuses to let two stages write one key.

Legacy: neither graph uses it, as in the reference.

Under trio no lock is needed: a write has no checkpoint between its conflict
check and its store, so no other task can interleave; trio switches tasks only
at checkpoints.
"""

from __future__ import annotations

from typing import Any

from trio.lowlevel import checkpoint

from stageflow_trio._budget import checkpoint_due
from stageflow_trio.errors import StageflowError

__all__ = ["ContextBag", "DataConflictError"]


class DataConflictError(StageflowError):
    """A key was written a second time (by any stage, even the same one).

    Attributes:
        key: The key written twice.
        existing_writer: The stage that wrote it first.
        new_writer: The stage whose write was refused.
    """

    def __init__(self, key: str, existing_writer: str, new_writer: str) -> None:
        self.key = key
        self.existing_writer = existing_writer
        self.new_writer = new_writer
        super().__init__(
            f"Key '{key}' already written by '{existing_writer}', cannot write from '{new_writer}'"
        )

    def __reduce__(self) -> tuple[type[DataConflictError], tuple[str, str, str]]:
        return (type(self), (self.key, self.existing_writer, self.new_writer))


def _check_name(value: object, name: str) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if not value or value.isspace():
        raise ValueError(f"{name} must not be empty or blank")


class ContextBag:
    """Write-once storage shared by parallel stages, remembering who wrote what.

    Example::

        bag = ContextBag()
        await bag.write("transcript", "hello", "stt")
        bag.read("transcript")  # "hello"
        await bag.write("transcript", "again", "other")  # DataConflictError
    """

    def __init__(self) -> None:
        self._data: dict[str, Any] = {}
        self._writers: dict[str, str] = {}

    async def write(self, key: str, value: Any, stage_name: str) -> None:
        """Store ``value`` under ``key`` on behalf of ``stage_name``.

        A checkpoint under the checkpoint budget, as ``OutputBag.write``:
        cancellation is checked on every call, before anything is stored, so a
        cancelled write stores nothing. A schedule point comes at least once
        every 64 budgeted calls, and on the first call 1 ms or more after the
        last one (see :class:`stageflow_trio.lowlevel.checkpoint_budget`).

        Raises:
            DataConflictError: ``key`` has already been written (by any stage).
            TypeError: ``key`` or ``stage_name`` is not a str.
            ValueError: ``stage_name`` is empty or blank.
        """
        if type(key) is not str and not isinstance(key, str):
            raise TypeError(f"key must be a str, got {type(key).__name__}")
        if type(stage_name) is not str or not stage_name or stage_name.isspace():
            _check_name(stage_name, "stage_name")
        if checkpoint_due():
            await checkpoint()
        # No checkpoint from here on: the check and the store are atomic.
        if key in self._data:
            raise DataConflictError(key, self._writers[key], stage_name)
        self._data[key] = value
        self._writers[key] = stage_name

    def read(self, key: str, default: Any = None) -> Any:
        """The value stored under ``key``, or ``default``."""
        return self._data.get(key, default)

    def has(self, key: str) -> bool:
        """Whether ``key`` has been written."""
        return key in self._data

    def keys(self) -> list[str]:
        """The written keys, in write order (a new list)."""
        return list(self._data)

    def get_writer(self, key: str) -> str | None:
        """The stage that wrote ``key``, or ``None``."""
        return self._writers.get(key)

    def to_dict(self) -> dict[str, Any]:
        """A shallow copy of the contents; changing it does not change the bag."""
        return self._data.copy()

    def __repr__(self) -> str:
        return f"ContextBag(keys={list(self._data)})"
