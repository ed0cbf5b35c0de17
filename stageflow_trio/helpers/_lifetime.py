"""A single-use ``async with`` whose body is an ``_owned()`` async context manager."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager  # noqa: TC003 - typing.get_type_hints
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from types import TracebackType


class SingleUseLifetime:
    """Mixin: ``async with obj:`` enters ``obj._owned()`` once; a second entry raises.

    Subclasses implement ``_owned()`` (an ``@asynccontextmanager`` yielding ``self``)
    and call ``_init_lifetime()`` in ``__init__``.
    """

    _entered: bool
    _lifetime: AbstractAsyncContextManager[Any] | None

    def _init_lifetime(self) -> None:
        self._entered = False
        self._lifetime = None

    def _owned(self) -> AbstractAsyncContextManager[Any]:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        """Enter the object's lifetime (see the class docstring). Not re-entrant.

        Raises:
            RuntimeError: The object was already entered (single use).
        """
        if self._entered:
            raise RuntimeError(f"{type(self).__name__}: `async with` can be entered only once")
        self._entered = True
        self._lifetime = self._owned()
        await self._lifetime.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        """Leave the object's lifetime."""
        assert self._lifetime is not None
        return await self._lifetime.__aexit__(exc_type, exc, tb)
