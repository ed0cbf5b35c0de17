"""Read-only dict and list types for sharing data without copies.

:class:`FrozenDict` and :class:`FrozenList` are subclasses of ``dict`` and
``list`` with every mutating method blocked. Being real dicts and lists is the
point: code written against plain containers keeps working unchanged
(``frozen == {"a": 1}``, ``json.dumps(frozen)``, ``dict(frozen)``,
``isinstance(frozen, dict)``), while any attempt to change one raises
``TypeError``. The freeze is shallow: values that are themselves mutable stay
mutable (the library freezes the containers it owns one level at a time).

Reading is as fast as a plain dict or list because no read method is
overridden. Note that ``dict.__setitem__(frozen, k, v)`` called on the base
class directly still bypasses the guard; that is deliberate sabotage, not use.
"""

from __future__ import annotations

from ._frozen import FrozenDict as FrozenDict
from ._frozen import FrozenList as FrozenList

__all__ = ["FrozenDict", "FrozenList"]
