"""Find the pipeline a command-line target names.

A target is ``path/to/file.py[:NAME]`` or ``package.module[:NAME]``. ``NAME`` (a dotted
attribute path) may be a :class:`~stageflow_trio.pipeline.Pipeline`, a built
:class:`~stageflow_trio.pipeline.UnifiedStageGraph`, or a function that takes no
arguments and returns one of the two. Without ``NAME`` the module must define exactly
one candidate: a module-level Pipeline or graph, a function named ``build_pipeline`` or
``build_graph``, or a function of its own named ``create_*`` or ``*_pipeline``.

Every problem is a :class:`TargetError` whose message is one line for the user; the
exception it came from, if any, is its ``__cause__`` (shown with ``--debug``). An
import or a factory that calls ``sys.exit()`` is one too: its SystemExit would
otherwise end the command with the target's status, as if a run had completed.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from stageflow_trio._args import error_text
from stageflow_trio.pipeline import Pipeline, UnifiedStageGraph

if TYPE_CHECKING:
    from types import ModuleType

__all__ = ["PipelineLike", "TargetError", "build_target", "load_module", "load_target"]

PipelineLike = Pipeline | UnifiedStageGraph


class TargetError(Exception):
    """A target cannot be loaded: the message is one line, for the command line."""


def _describe(value: object) -> str:
    return type(value).__name__


def load_module(source: str) -> ModuleType:
    """Import ``source``: a ``.py`` file path (or any path with a separator) or a module name.

    A file is executed as a fresh module, with its folder first on ``sys.path`` (as
    ``python path/to/file.py`` would have it), so that it can import its neighbours.

    Raises:
        TargetError: no such file or module, or importing it raised (SystemExit
            included: ``sys.exit()`` in a module is a failed import).
    """
    if source.endswith(".py") or "/" in source or "\\" in source:
        path = Path(source)
        if path.is_dir():
            raise TargetError(f"{source} is a directory, not a Python file")
        if not path.is_file():
            raise TargetError(f"no such file: {source}")
        # A name no other module has: two targets with the same stem must not collide.
        name = "_stageflow_trio_target_" + re.sub(r"\W", "_", str(path.resolve()))
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise TargetError(f"cannot load {source} as a Python module")
        module = importlib.util.module_from_spec(spec)
        folder = str(path.resolve().parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        # Registered first: dataclasses and pickling look the module up while it runs.
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except (Exception, SystemExit) as exc:
            # sys.exit() in an import is a failed import, not the command's own exit
            # (it would end the command with the file's status, as if a run completed).
            del sys.modules[name]
            raise TargetError(
                f"importing {source} raised {_describe(exc)}: {error_text(exc)}"
            ) from exc
        return module
    try:
        return importlib.import_module(source)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (source == exc.name or source.startswith(exc.name + ".")):
            raise TargetError(f"no such file or module: {source}") from exc
        raise TargetError(f"importing {source} raised {_describe(exc)}: {error_text(exc)}") from exc
    except (Exception, SystemExit) as exc:
        raise TargetError(f"importing {source} raised {_describe(exc)}: {error_text(exc)}") from exc


def _is_factory(module: ModuleType, name: str, value: object) -> bool:
    """A function named like a pipeline factory.

    ``build_pipeline`` and ``build_graph`` count wherever they were defined (a launcher
    re-exports them); ``create_*`` and ``*_pipeline`` only when defined in the module
    itself, so that imported helpers (``create_test_stage_context``) are not taken.
    """
    if not inspect.isfunction(value):
        return False
    if name in {"build_pipeline", "build_graph"}:
        return True
    return value.__module__ == module.__name__ and (
        name.startswith("create_") or name.endswith("_pipeline")
    )


def _candidates(module: ModuleType) -> list[str]:
    """The module's public names that look like a pipeline, in definition order."""
    return [
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (isinstance(value, PipelineLike) or _is_factory(module, name, value))
    ]


def _lookup(module: ModuleType, source: str, attribute: str) -> object:
    value: object = module
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise TargetError(f"{source} has no attribute {attribute!r}") from None
    return value


def load_target(target: str) -> PipelineLike:
    """The Pipeline or graph ``target`` names, unbuilt if it is a Pipeline.

    Raises:
        TypeError: ``target`` is not a str.
        TargetError: see the module docstring.
    """
    if not isinstance(target, str):
        raise TypeError(f"load_target: target must be a str; got {_describe(target)}")
    source, colon, attribute = target.rpartition(":")
    if not colon or "/" in attribute or "\\" in attribute:
        # No ":NAME": a path after the last ':' follows a drive (`C:\app\p.py`) or a
        # directory whose name has a ':'.
        source, attribute = target, ""
    if not target.strip():
        raise TargetError("the target is empty: give path/file.py[:NAME] or module:NAME")
    if not source:
        raise TargetError(f"target {target!r} names no file or module before ':'")
    module = load_module(source)
    if not attribute:
        names = _candidates(module)
        if not names:
            raise TargetError(
                f"{source} defines no pipeline: name one as {source}:NAME"
                " (a Pipeline, a built graph, or a function returning one)"
            )
        if len(names) > 1:
            raise TargetError(
                f"{source} defines several pipelines ({', '.join(names)}):"
                f" name one as {source}:NAME"
            )
        attribute = names[0]
    where = f"{source}:{attribute}"
    value = _lookup(module, source, attribute)
    if isinstance(value, PipelineLike):
        return value
    if not callable(value) or isinstance(value, type):
        raise TargetError(
            f"{where} is a {_describe(value)}, not a Pipeline, a built graph,"
            " or a function returning one"
        )
    if inspect.iscoroutinefunction(value):
        raise TargetError(f"{where} is an async function; give a function that returns a Pipeline")
    try:
        made = value()
    except (Exception, SystemExit) as exc:
        raise TargetError(f"calling {where}() raised {_describe(exc)}: {error_text(exc)}") from exc
    if not isinstance(made, PipelineLike):
        raise TargetError(
            f"{where}() returned a {_describe(made)}, not a Pipeline or a built graph"
        )
    return made


def build_target(target: PipelineLike, where: str) -> UnifiedStageGraph:
    """``target`` built (a graph is returned as is).

    Raises:
        TargetError: building raised (the builder's contract error, with its code).
    """
    if isinstance(target, UnifiedStageGraph):
        return target
    try:
        return target.build()
    except Exception as exc:
        info = getattr(exc, "error_info", None)
        code = f" [{info.code}]" if info is not None else ""
        raise TargetError(f"{where}: the pipeline does not build{code}: {error_text(exc)}") from exc
