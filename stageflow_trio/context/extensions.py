"""ExtensionBundle: the base class of typed, user-defined snapshot extensions.

Subclass it as a frozen attrs class or a frozen dataclass and put the
instance in ``ContextSnapshot.extensions``::

    @attrs.frozen
    class SalesExtensions(ExtensionBundle):
        deal_id: str | None = None
        competitors: tuple[str, ...] = ()

    snapshot = ContextSnapshot(extensions=SalesExtensions(deal_id="D-1"))
    data = snapshot.to_dict()  # extensions_type == "SalesExtensions"
    ContextSnapshot.from_dict(data, extension_types={"SalesExtensions": SalesExtensions})
"""

from __future__ import annotations

from ._extensions import ExtensionBundle as ExtensionBundle
from ._extensions import T as T

__all__ = ["ExtensionBundle", "T"]
