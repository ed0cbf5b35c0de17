"""Runnable examples, shipped inside the package.

``python -m stageflow_trio.examples`` lists them and ``python -m stageflow_trio.examples
NAME`` runs one; :func:`list_examples` and :func:`run_example` do the same from code.
Each example module has an async ``main()`` that returns what it printed or computed.
"""

from __future__ import annotations

import importlib.util
import os
import pkgutil
import runpy
import sys

__all__ = ["list_examples", "run_example"]


def list_examples() -> list[str]:
    """The examples' names (their module names in this package), sorted."""
    return sorted(
        info.name
        for info in pkgutil.iter_modules(__path__)
        if not info.name.startswith("_") and not info.ispkg
    )


def run_example(name: str) -> None:
    """Run example ``name`` as ``python -m stageflow_trio.examples NAME`` does (prints).

    Runs its own ``trio.run``, so it must not be called from inside trio.

    Raises:
        ValueError: ``name`` is not one of :func:`list_examples`.
    """
    names = list_examples()
    if name not in names:
        raise ValueError(f"run_example: unknown example {name!r}; choose one of {names}")
    spec = importlib.util.find_spec(f"{__name__}.{name}")
    assert spec is not None
    assert spec.origin is not None
    # From its file, as a fresh __main__: run_module would warn when the example's
    # module is already imported (as it is after `import stageflow_trio.examples.X`).
    runpy.run_path(spec.origin, run_name="__main__")


def _silence_stdout() -> None:
    """Point stdout's descriptor at /dev/null, so the flush at exit cannot fail again.

    For a reader that went away (``| head``): the examples runner and the command
    line then exit 141 quietly instead of with a second BrokenPipeError.
    """
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (a test's capture)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)
