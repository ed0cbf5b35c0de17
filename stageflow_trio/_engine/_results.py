"""PipelineResults: the ``{stage name: StageOutput}`` dict a unified run returns.

A plain ``dict`` subclass, so code written against 0.9.1's dict keeps working; the
helpers (1.2.0's) only read it. Defined with the engine, which builds it as a run's
stages complete; its public home is :mod:`stageflow_trio.pipeline.results`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, overload

from stageflow_trio.core.stage_enums import StageStatus
from stageflow_trio.core.stage_output import StageOutput

if TYPE_CHECKING:
    from collections.abc import Mapping


_OK = StageStatus.OK
_FAIL = StageStatus.FAIL


class PipelineResults(dict[str, StageOutput]):
    """Stage outputs by stage name, with helpers for the common checks."""

    __slots__ = ()

    def require(self, stage_name: str) -> StageOutput:
        """The output of ``stage_name``.

        Raises:
            KeyError: no such stage; the message lists the stages that ran.
        """
        try:
            return self[stage_name]
        except KeyError:
            available = ", ".join(sorted(self)) or "<none>"
            raise KeyError(
                f"Stage {stage_name!r} not found in pipeline results. Available: {available}"
            ) from None

    @overload
    def output(self, stage_name: str) -> StageOutput | None: ...
    @overload
    def output(self, stage_name: str, default: StageOutput) -> StageOutput: ...
    @overload
    def output(self, stage_name: str, default: None) -> StageOutput | None: ...

    def output(self, stage_name: str, default: StageOutput | None = None) -> StageOutput | None:
        """The output of ``stage_name``, or ``default`` when it did not run."""
        return self.get(stage_name, default)

    def require_ok(self, stage_name: str) -> StageOutput:
        """The output of ``stage_name``, which must have finished with ``StageStatus.OK``.

        Raises:
            KeyError: as :meth:`require`.
            RuntimeError: the stage skipped, failed, cancelled or asked for a retry;
                the message ends with its error (or skip / cancel reason) when it has one.
        """
        output = self.require(stage_name)
        if output.status is not _OK:
            data = output.data
            detail = output.error or data.get("reason") or data.get("cancel_reason")
            suffix = f": {detail}" if detail else ""
            raise RuntimeError(
                f"Stage {stage_name!r} did not complete with OK status "
                f"({output.status.value}){suffix}"
            )
        return output

    def data(self, stage_name: str, default: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
        """The ``data`` of ``stage_name``'s output (read-only), or ``default`` if it did not run.

        Raises:
            KeyError: the stage did not run and no ``default`` was given.
        """
        output = self.get(stage_name)
        if output is None:
            if default is not None:
                return default
            raise KeyError(stage_name)
        return output.data

    def ok(self, stage_name: str) -> bool:
        """Whether ``stage_name`` ran and finished with ``StageStatus.OK``."""
        output = self.get(stage_name)
        return output is not None and output.status is _OK

    def failed(self) -> list[str]:
        """The names of the stages that finished with ``StageStatus.FAIL``, in run order."""
        return [name for name, output in self.items() if output.status is _FAIL]
