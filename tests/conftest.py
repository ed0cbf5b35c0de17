"""Shared test set-up: Hypothesis profiles, a clean slate for global singletons, the reference."""

from __future__ import annotations

import functools
import gc
import os
import signal
import ssl
import tracemalloc
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, settings

from tests.fakes import import_reference

if TYPE_CHECKING:
    from collections.abc import Generator
    from types import ModuleType

# The library's own pytest plugin: reset_globals around every test (its autouse
# reset_stageflow_globals fixture), virtual_clock, recording_sink and the builders;
# pytest's pytester, to run the plugin in a project of its own (tests/testing/test_plugin.py).
pytest_plugins = ["stageflow_trio.testing.plugin", "pytester"]

# 120 examples in CI (200 until audit 25): the main run, under branch coverage, is CI's
# critical path, and reached 13 of its 15 minutes on a busy machine.
settings.register_profile(
    "ci", max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=50, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


_create_default_context = ssl.create_default_context


@functools.cache
def _verifying_context(cafile: str) -> ssl.SSLContext:
    return _create_default_context(cafile=cafile)


def _create_context_once_per_ca_file(
    purpose: ssl.Purpose = ssl.Purpose.SERVER_AUTH, **kwargs: Any
) -> ssl.SSLContext:
    """``ssl.create_default_context``, but one context per CA file for the suite.

    Every ``httpx.AsyncClient`` made with certificate checks (an ``HttpFetcher``'s own
    client, and ``WebSearchClient``'s) asks for ``create_default_context(cafile=<certifi's
    bundle>)``, which reads and parses the whole bundle: about 40 ms, not counted by
    coverage but paid some 250 times (the public API fuzz alone made 110 clients: a
    quarter of its time). The contexts are alike (httpcore only sets the same ALPN
    protocols on it per connection) and no test makes a TLS connection, so the suite
    shares one per file; any other call (no CA file, a CA path or data, a server
    context) is the standard library's own.
    """
    cafile = kwargs.get("cafile")
    if (
        purpose is ssl.Purpose.SERVER_AUTH
        and isinstance(cafile, str)
        and kwargs.keys() == {"cafile"}
    ):
        return _verifying_context(cafile)
    return _create_default_context(purpose, **kwargs)


ssl.create_default_context = _create_context_once_per_ca_file


@pytest.fixture(scope="session")
def reference() -> ModuleType:
    """The reference ``stageflow`` package (stageflow-core 0.9.1); skips when not installed."""
    return import_reference()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Take what collection built (modules, test items: about 300,000 objects) out of the
    collector's sight for the session.

    A full collection walks every tracked object: the Redis tests' teardowns call
    ``gc.collect()`` (about 115 of them), as do a few leak tests, and each took about
    0.3 s over the whole heap (40 s of CI's test step). Frozen objects stay alive and
    reachable: the collector just never scans them, nor frees them (what collection built
    lives for the session anyway), and ``gc.get_objects()`` leaves them out (no test looks
    for objects made before the session's first test). What the tests make is collected
    as before: the automatic full collections only come sooner, each over less.
    """
    gc.collect()
    gc.freeze()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Give Ctrl-C its default handler when the suite was started with it ignored.

    A shell starts a background job (``pytest ... &``) with SIGINT ignored, and Python
    then leaves it ignored: the tests that deliver a Ctrl-C to a run would see nothing
    arrive and fail, where in the foreground they pass.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None]:
    """Stop ``tracemalloc`` after a test that started it and left it on.

    Tracing slows every allocation of the process, and stays on once started. Three
    tests left it on (the public API fuzz through a ``PipelineRunner(enable_memory_tracker=
    <a hostile value>)``, ``helpers/test_audit15_runtime.py`` and
    ``test_audit22_coverage.py`` through a MemoryTracker) until a later test happened
    to stop it: about 90 of the 374 test files ran under it, two to five times slower
    under coverage (those three stretches took 243 s of a coverage run here, 102 s
    with this hook). A test that needs tracing starts it; none relies on another test's.
    """
    was_tracing = tracemalloc.is_tracing()
    try:
        return (yield)
    finally:
        if not was_tracing and tracemalloc.is_tracing():
            tracemalloc.stop()
