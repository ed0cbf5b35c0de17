"""Audit 22, coverage fourth pass: arcs that only Hypothesis or a missing server reached.

* The timeout interceptor's restore while another call's entry is in flight.
* A sink worker started during a stop's drain and cancelled while it waits for it.
* The Redis client construction: a URL coredis refuses, a TLS Cluster and a TLS
  Sentinel (none of which needs a live server: the clients are not entered).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from stageflow_trio.cli.main import main
from stageflow_trio.events import BackpressureAwareEventSink
from stageflow_trio.pipeline.interceptors import TimeoutInterceptor
from stageflow_trio.stages.context import PipelineContext
from stageflow_trio.stores._common import StoreConfigError
from stageflow_trio.stores._redis_url import parse_redis_url, redis_client

# --- pipeline/_builtin_interceptors.py -------------------------------------------------------


async def test_a_timeout_set_for_one_call_is_removed_while_another_call_keeps_its_own() -> None:
    # _restore, "if previous is not _ABSENT" false: another call in flight left its
    # entry in _found, this one found no key. Its after removes the key its before
    # set (a lookup miss is not a "kept" caller value); the other call's stays.
    interceptor = TimeoutInterceptor()
    ctx = PipelineContext(data={"_timeout.a": 1234, "_timeout_ms": 50})
    await interceptor.before("a", ctx)  # a caller's value: kept, recorded in _found
    await interceptor.before("b", ctx)  # no value: set from _timeout_ms
    assert ctx.data["_timeout.b"] == 50
    await interceptor.on_abort("b", ctx)
    assert "_timeout.b" not in ctx.data
    assert ctx.data["_timeout.a"] == 1234
    await interceptor.on_abort("a", ctx)
    assert ctx.data["_timeout.a"] == 1234
    assert "_timeout.b" not in ctx.data


# --- events/_sink_worker.py ------------------------------------------------------------------


class _Slow:
    """A downstream taking one (virtual) second per event."""

    def __init__(self) -> None:
        self.got: list[str] = []

    async def emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        await trio.sleep(1)
        self.got.append(type)

    def try_emit(self, *, type: str, data: dict[str, Any] | None) -> None:  # noqa: A002
        raise AssertionError("the sink awaits emit")


def _running(sink: BackpressureAwareEventSink) -> bool:
    return sink.is_running  # (a call: mypy would narrow the property between asserts)


async def test_a_worker_cancelled_while_it_waits_for_a_stops_drain_leaves_the_drain_whole(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # _SinkWorker.run, "await drain.wait()" cancelled: a worker started while a stop
    # drains from its own task waits for that drain; cancelling its nursery then ends
    # it there, and the drain delivers every event once, in order, nothing dropped.
    down = _Slow()
    sink = BackpressureAwareEventSink(down, max_queue_size=10)
    async with trio.open_nursery() as outer:
        await sink.start(outer)
        for index in range(4):
            assert sink.try_emit(type=f"e{index}", data=None)
        outer.start_soon(sink.stop)
        await trio.sleep(1.5)  # e0 by the worker, then the stop's drain delivers e1
        assert not _running(sink)
        async with trio.open_nursery() as inner:
            await sink.start(inner)
            assert _running(sink)
            await trio.sleep(0.25)  # parked on the drain: delivers nothing
            inner.cancel_scope.cancel()
        assert not _running(sink)
        assert down.got == ["e0"]
    assert down.got == ["e0", "e1", "e2", "e3"]
    assert trio.current_time() == 4
    assert sink.metrics.dropped == 0
    assert not sink.is_running


# --- stores/_redis_url.py --------------------------------------------------------------------


@pytest.mark.parametrize("query", ["max_connections=x", "max_connections=-"])
async def test_a_query_coredis_refuses_is_a_config_error_naming_the_setting(query: str) -> None:
    # redis_client: coredis's ValueError for the single server's URL becomes the
    # setting's StoreConfigError, the password redacted.
    target = parse_redis_url(f"redis://user:hunter2@127.0.0.1:1/0?{query}", "SF_URL")
    with pytest.raises(StoreConfigError) as info:
        async with redis_client(target, 1.0, "SF_URL"):
            pytest.fail("the client was built")
    message = str(info.value)
    assert "SF_URL" in message
    assert "malformed Redis URL" in message
    assert "hunter2" not in message
    assert isinstance(info.value.__cause__, ValueError)


async def test_a_tls_cluster_client_gets_the_nodes_credentials_and_tls() -> None:
    # redis_client's cluster branch, left normally (its "return" after the yield):
    # the client is built, not entered, so no server is needed.
    target = parse_redis_url("rediss+cluster://u:pw@127.0.0.1:1,127.0.0.1:2", "SF_URL")
    async with redis_client(target, 1.5, "SF_URL") as client:
        kwargs = client.connection_pool.connection_kwargs
        assert (kwargs["username"], kwargs["password"]) == ("u", "pw")
        assert kwargs["connect_timeout"] == 1.5
        assert kwargs["ssl_context"] is not None
        assert kwargs["decode_responses"] is False


@pytest.mark.parametrize(("scheme", "tls"), [("rediss+sentinel", True), ("redis+sentinel", False)])
async def test_a_sentinel_primary_gets_tls_only_for_a_rediss_url(scheme: str, tls: bool) -> None:
    # redis_client's Sentinel branch: "rediss+sentinel" gives the primary's
    # connections a default TLS context; "redis+sentinel" none.
    target = parse_redis_url(f"{scheme}://u:pw@127.0.0.1:1/svc/3", "SF_URL")
    async with redis_client(target, 1.0, "SF_URL") as client:
        kwargs = client.connection_pool.connection_kwargs
        assert (kwargs["username"], kwargs["password"], kwargs["db"]) == ("u", "pw", 3)
        assert (kwargs.get("ssl_context") is not None) is tls


# --- stores/redis.py: the pub/sub listener ---------------------------------------------------


class _FakePubSub:
    """A coredis pub/sub that hands out ``messages``, then raises ``on_cancel`` when cancelled."""

    def __init__(self, messages: list[dict[str, Any] | None], on_cancel: BaseException | None):
        self.messages = messages
        self.on_cancel = on_cancel

    async def __aenter__(self) -> _FakePubSub:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def get_message(self) -> dict[str, Any] | None:
        if self.messages:
            await trio.lowlevel.checkpoint()
            return self.messages.pop(0)
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            if self.on_cancel is not None:
                raise self.on_cancel from None
            raise
        raise AssertionError("unreachable")


class _FakeClient:
    def __init__(self, pubsub: _FakePubSub) -> None:
        self._pubsub = pubsub

    def pubsub(self, **kwargs: Any) -> _FakePubSub:
        return self._pubsub


async def test_the_listener_skips_empty_reads_and_other_kinds_and_wakes_on_messages(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # RedisBackend._listen: a read without a message (get_message's None) and a kind
    # that is neither "message" nor "subscribe" ("pong", "unsubscribe") wake nobody
    # and do not end the listener; the "message" after them wakes its key alone.
    from stageflow_trio.stores.redis import RedisBackend

    messages: list[dict[str, Any] | None] = [
        None,
        {"type": b"pong", "data": b""},
        {"type": "unsubscribe", "data": 0},
        {"type": b"message", "data": b"k1"},
    ]
    backend = RedisBackend(_FakeClient(_FakePubSub(messages, None)), prefix="p:", resync_interval=1)
    with backend.wakeups.watch("k1") as woken, backend.wakeups.watch("k2") as other:
        async with trio.open_nursery() as nursery:
            await nursery.start(backend.listen)
            with trio.fail_after(1):
                await woken.wait()
            assert not other.is_set()
            assert messages == []
            nursery.cancel_scope.cancel()


async def _listen_then_cancel(backend: Any) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(backend.listen)
        nursery.cancel_scope.cancel()


async def test_an_interrupt_grouped_with_the_listeners_cleanup_error_is_raised(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # RedisBackend.listen / _fatal: cancelled, a cleanup error is logged and the
    # cancellation goes on; but a KeyboardInterrupt among the errors (in a group, as
    # anyio's task groups in coredis raise them) is not swallowed with the rest.
    from stageflow_trio.stores.redis import RedisBackend

    group = BaseExceptionGroup("cleanup", [OSError("closed"), KeyboardInterrupt()])
    backend = RedisBackend(_FakeClient(_FakePubSub([], group)), prefix="p:", resync_interval=1)
    with pytest.raises(BaseExceptionGroup) as caught:
        await _listen_then_cancel(backend)
    assert caught.value.subgroup(KeyboardInterrupt) is not None

    # The same error without the interrupt: logged, the cancellation ends the listener.
    quiet = BaseExceptionGroup("cleanup", [OSError("closed")])
    backend = RedisBackend(_FakeClient(_FakePubSub([], quiet)), prefix="p:", resync_interval=1)
    await _listen_then_cancel(backend)


async def test_a_lone_interrupt_at_the_listeners_cleanup_is_raised_a_lone_error_logged(
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # _fatal on an exception that is not a group: the same rule as for a group.
    from stageflow_trio.stores.redis import RedisBackend

    backend = RedisBackend(
        _FakeClient(_FakePubSub([], KeyboardInterrupt())), prefix="p:", resync_interval=1
    )
    with pytest.raises(BaseExceptionGroup) as caught:  # (from the test's nursery)
        await _listen_then_cancel(backend)
    assert caught.value.split(KeyboardInterrupt)[1] is None

    caplog.set_level("DEBUG", logger="stageflow_trio.stores")
    backend = RedisBackend(
        _FakeClient(_FakePubSub([], OSError("closed"))), prefix="p:", resync_interval=1
    )
    await _listen_then_cancel(backend)
    assert "failed as it was cancelled" in caplog.text


# --- cli/main.py -----------------------------------------------------------------------------

_CHATTY = """
from stageflow_trio.core import StageKind, StageOutput
from stageflow_trio.pipeline import Pipeline

async def chatty(ctx):
    for seq in range(300):
        ctx.try_emit_event(type="chunk.sent", data={"seq": seq, "text": "x" * 100})
    return StageOutput.ok(chunks=300)

pipeline = Pipeline("chatty").with_stage("chatty", chatty, StageKind.WORK)
"""


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("debug", [False, True])
def test_an_events_file_filling_up_mid_run_is_one_line_and_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], debug: bool
) -> None:
    # _run's "except EventsFileError": the events outgrow the file's buffer during the
    # run (not only at its close), run_graph raises EventsFileError once the run is
    # over; the command says which write failed and why, and a run that completed
    # ends with status 2, as for a path that cannot be opened.
    path = tmp_path / "chatty.py"
    path.write_text(_CHATTY, encoding="utf-8")
    code = main(["run", str(path), "--events", "/dev/full", *(["--debug"] if debug else [])])
    err = capsys.readouterr().err
    assert code == 2
    line = "stageflow-trio run: error: --events: cannot write /dev/full: No space left on device"
    if debug:  # the line, then the failed write's traceback
        assert line in err.splitlines()
        assert "Traceback" in err
        assert err.rstrip().endswith("OSError: [Errno 28] No space left on device")
    else:
        assert err.splitlines()[-1] == line
        assert "Traceback" not in err


def test_a_run_started_with_sigint_ignored_gets_keyboardinterrupt_then_its_setting_back() -> None:
    # cli.main._python_sigint for a process started with SIGINT ignored (`cmd &` in a
    # script): Python's handler during the run, the ignored setting again after it.
    import signal

    from stageflow_trio.cli.main import _python_sigint

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with _python_sigint():
            assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


# --- testing/plugin.py and testing/explore.py ------------------------------------------------


async def test_a_cancelled_tests_cancelled_passes_the_stray_check_as_it_is() -> None:
    # plugin._failing_on_a_stray_cancelled: a Cancelled that belongs to a cancelled
    # scope around the test (a fixture failed, say) is no stray: re-raised unchanged,
    # it ends at that scope, not as an AssertionError.
    from stageflow_trio.testing.plugin import _failing_on_a_stray_cancelled

    async def body() -> None:
        await trio.sleep_forever()

    guarded = _failing_on_a_stray_cancelled(body)
    with trio.CancelScope() as scope:
        scope.cancel()
        await guarded()
    assert scope.cancelled_caught


def test_the_stray_check_leaves_items_without_a_function_and_guarded_tests_alone() -> None:
    # plugin.pytest_collection_modifyitems: an item without ``obj`` (a doctest, a
    # YAML test) is skipped, and a test guarded already is not wrapped twice.
    from types import SimpleNamespace

    from stageflow_trio.testing.plugin import (
        _failing_on_a_stray_cancelled,
        pytest_collection_modifyitems,
    )

    async def body() -> None:
        await trio.lowlevel.checkpoint()

    guarded = _failing_on_a_stray_cancelled(body)
    bare = SimpleNamespace(obj=None)
    done = SimpleNamespace(obj=guarded)
    fresh = SimpleNamespace(obj=body)
    pytest_collection_modifyitems([bare, done, fresh])  # type: ignore[list-item]
    assert bare.obj is None
    assert done.obj is guarded
    assert fresh.obj is not body
    assert fresh.obj.__wrapped__ is body


async def test_a_run_fn_without_a_signature_is_judged_by_what_it_returns() -> None:
    # explore._check_run_fn: inspect.signature fails for some builtins; such a run_fn
    # is not refused for that, but at the call, by the rule it breaks (no awaitable).
    from stageflow_trio.testing.explore import explore_cancellation

    with pytest.raises(TypeError, match="run_fn must return an awaitable"):
        await explore_cancellation(vars)  # type: ignore[arg-type]
