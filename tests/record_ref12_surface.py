"""Record the public surface of stageflow 1.2.0 for ``tests/test_reference_surface_12.py``.

Run with the Python that has stageflow-core 1.2.0 installed:

    /tmp/ref12/bin/python -P tests/record_ref12_surface.py

(``-P``: this directory's ``typing`` test package must not shadow the standard one.)

It writes ``tests/ref12_surface.json``: under ``"modules"`` every module of the
package (``websearch``'s with its extra installed: httpx and selectolax < 1.0, whose
``selectolax.parser`` 1.2.0 imports), each with the names of
its ``__all__`` that the module really has (or, without ``__all__``, the public
names it defines), or ``null`` for a module that fails to import; under
``"members"`` the public attributes of every class those names include (without
what pydantic's ``BaseModel`` provides), keyed ``module:name`` by the first
module that lists the class; under ``"signatures"`` the parameter names a caller
may pass to each such function and to each class's own methods and ``__init__``. Review the diff of
the JSON before committing it.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import json
import pkgutil
import warnings
from collections.abc import Iterator
from pathlib import Path

import stageflow

OUT = Path(__file__).resolve().parent / "ref12_surface.json"


def _names(module: object) -> list[str]:
    listed = getattr(module, "__all__", None)
    if listed is None:
        name = getattr(module, "__name__", "")
        listed = [
            attribute
            for attribute, value in vars(module).items()
            if not attribute.startswith("_") and getattr(value, "__module__", None) == name
        ]
    return sorted({attribute for attribute in listed if hasattr(module, attribute)})


def _members(value: type) -> list[str]:
    """The public attributes of class ``value``, but what pydantic's BaseModel gives it.

    stageflow_trio's models are attrs classes: their pydantic methods are a parity row.
    """
    try:
        import pydantic

        inherited = set(dir(pydantic.BaseModel))
    except ImportError:  # pragma: no cover - 1.2.0 depends on pydantic
        inherited = set()
    return sorted(name for name in dir(value) if not name.startswith("_") and name not in inherited)


def _parameters(function: object) -> list[str] | None:
    """The names a caller may pass to ``function`` (not ``*args``/``**kwargs``, not ``_x``)."""
    try:
        parameters = inspect.signature(function).parameters.values()  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return [
        parameter.name
        for parameter in parameters
        if parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
        and not parameter.name.startswith("_")
        and parameter.name not in ("self", "cls")
    ]


def _callables(value: object) -> dict[str, object]:
    """``value`` itself if it is a function; a class's own methods and ``__init__``."""
    if inspect.isfunction(value):
        return {"": value}
    if not isinstance(value, type):
        return {}
    found: dict[str, object] = {}
    for attribute in dir(value):
        if attribute.startswith("_") and attribute != "__init__":
            continue
        try:
            member = inspect.getattr_static(value, attribute)
        except AttributeError:
            continue
        if isinstance(member, classmethod | staticmethod):
            member = member.__func__
        if inspect.isfunction(member) and member.__module__.startswith("stageflow"):
            found[attribute] = member
    return found


def _first_listings(surface: dict[str, list[str] | None]) -> Iterator[tuple[str, object]]:
    """``("module:name", object)`` for each object the surface names, once: under the
    first module (in name order) that lists it, so the same module and name find it here."""
    seen: set[int] = set()
    for module_name, names in sorted(surface.items()):
        if not names:
            continue
        module = importlib.import_module(module_name)
        for name in names:
            value = getattr(module, name)
            if id(value) not in seen:
                seen.add(id(value))
                yield f"{module_name}:{name}", value


def main() -> None:
    warnings.simplefilter("ignore")
    surface: dict[str, list[str] | None] = {"stageflow": _names(stageflow)}
    for info in pkgutil.walk_packages(stageflow.__path__, "stageflow.", onerror=lambda _: None):
        try:
            module = importlib.import_module(info.name)
        except Exception:  # the reference's own broken module (route)
            surface[info.name] = None
            continue
        surface[info.name] = _names(module)
    version = importlib.metadata.version("stageflow-core")
    assert version == "1.2.0", version
    members: dict[str, list[str]] = {}
    signatures: dict[str, list[str]] = {}
    for key, value in _first_listings(surface):
        if isinstance(value, type) and value.__module__.startswith("stageflow"):
            members[key] = _members(value)
        # The keyword names of every public function and method, where the members are.
        for attribute, function in _callables(value).items():
            parameters = _parameters(function)
            if parameters:
                signatures[key + (f".{attribute}" if attribute else "")] = parameters
    document = {"modules": surface, "members": members, "signatures": signatures}
    OUT.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
