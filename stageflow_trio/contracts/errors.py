"""Structured metadata attached to contract violations (pipeline validation errors)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from stageflow_trio._frozen import frozen_compat
from stageflow_trio.errors import StageflowError
from stageflow_trio.utils.frozen import FrozenDict

__all__ = ["ContractErrorInfo"]


class ContractInfoError(StageflowError, TypeError):
    """A ContractErrorInfo was given a field of the wrong type or a dict of the wrong shape."""


def _frozen_context(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    # A private read-only copy: neither the caller's dict nor a later holder of
    # the info can change what an error already reported.
    if value is None:
        return FrozenDict()
    if not isinstance(value, Mapping):
        raise ContractInfoError(
            f"ContractErrorInfo context must be a mapping; got {type(value).__name__}"
        )
    return FrozenDict(value)


def _require_str(name: str, optional: bool) -> Any:
    def check(_instance: object, _attribute: object, value: object) -> None:
        if value is None and optional:
            return
        if not isinstance(value, str):
            kind = "a str or None" if optional else "a str"
            raise ContractInfoError(
                f"ContractErrorInfo {name} must be {kind}; got {type(value).__name__}"
            )

    return check


@frozen_compat
@attrs.frozen
class ContractErrorInfo:
    """What went wrong, how to fix it, and where to read more.

    Attributes:
        code: Stable identifier such as ``"CONTRACT-004-CYCLE"``; look it up with
            :func:`stageflow_trio.contracts.get_contract_suggestion`.
        summary: One-line description of the problem.
        fix_hint: Short remediation advice, or None.
        doc_url: Link to the troubleshooting docs, or None.
        context: Structured details (stage names, the cycle path, ...), held as a
            read-only dict (FrozenDict); :meth:`to_dict` returns a plain dict copy.
    """

    code: str = attrs.field(validator=_require_str("code", optional=False))
    summary: str = attrs.field(validator=_require_str("summary", optional=False))
    fix_hint: str | None = attrs.field(default=None, validator=_require_str("fix_hint", True))
    doc_url: str | None = attrs.field(default=None, validator=_require_str("doc_url", True))
    context: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_context)

    def with_context(self, **extra: Any) -> ContractErrorInfo:
        """Return a copy whose context is this one's updated with ``extra`` (extra wins)."""
        return attrs.evolve(self, context={**self.context, **extra})

    def to_dict(self) -> dict[str, Any]:
        """Serialize to ``{code, summary, fix_hint, doc_url, context}`` (the reference's shape)."""
        # Five fixed keys: a literal is clearer and faster than a converter round trip.
        return {
            "code": self.code,
            "summary": self.summary,
            "fix_hint": self.fix_hint,
            "doc_url": self.doc_url,
            "context": dict(self.context),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ContractErrorInfo:
        """Rebuild an info from :meth:`to_dict` output (``code`` and ``summary`` required).

        Raises:
            ContractInfoError: (a TypeError) ``code`` or ``summary`` is missing, or a
                field has the wrong type; the message names the key.
        """
        if not isinstance(data, Mapping):
            raise ContractInfoError(
                f"ContractErrorInfo.from_dict: data must be a mapping; got {type(data).__name__}"
            )
        for key in ("code", "summary"):
            if key not in data:
                raise ContractInfoError(
                    f"ContractErrorInfo.from_dict: missing required key {key!r}"
                )
        return cls(
            code=data["code"],
            summary=data["summary"],
            fix_hint=data.get("fix_hint"),
            doc_url=data.get("doc_url"),
            # None means no context; anything else must be a mapping (an empty
            # list is not read as an empty context).
            context=data.get("context"),
        )
