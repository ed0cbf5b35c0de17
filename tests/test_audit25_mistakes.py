"""Audit 25: what a user sees after the mistakes people porting to stageflow_trio really make.

Each mistake was written as a small program and run; the outcome is what the user saw
before this audit. "note" means the exception now carries a note
(``BaseException.add_note``) naming the mistake and the fix; its type and message stay
the reference's, and only a failing run builds it (``_engine/_hints.py``).

== ============================================== ===================================== ============
#  Mistake                                        Before                                Outcome
== ============================================== ===================================== ============
1  ``await asyncio.sleep(1)`` in a stage          RuntimeError "no running event loop"  fixed: note
2  ``asyncio.create_task`` / ``wait_for``         same                                  fixed: note
3  ``asyncio.get_running_loop``, ``timeout``,     same                                  fixed: note
   ``to_thread``, ``open_connection`` (a client)
4  ``asyncio.Queue().get()``, ``Event().wait()``  AttributeError "'NoneType' object has  fixed: note
                                                  no attribute 'create_future'"
                                                  (misleading)
5  ``asyncio.gather``, a loop future,             trio's TypeError "unrecognized yield  fixed: note
   ``run_in_executor``                            message ... asyncio?" (no fix named)
6  the same under interceptors, or in a task of   as 1; an ExceptionGroup for the task  fixed: note
   the stage's own nursery
7  asyncio in an interceptor hook                 logged "Interceptor x before()        fixed: the
                                                  failed: no running event loop", run   log line
                                                  goes on without the hook              has the hint
8  ``asyncio.run(main())`` /                      RuntimeError "must be called from     fixed: note
   ``asyncio.run(pipeline.run())``                async context" (misleading)
9  ``asyncio.get_event_loop()``                   silent: a new loop, not running       left: Python
10 an uncontended ``asyncio.Lock``                silent: works by accident             left: Python
11 asyncio sink ``emit``                          fine: the engine calls ``try_emit``   fine
12 asyncio downstream of a backpressure sink      each event logged as failed (trio's   left: clear
                                                  text names asyncio), counted
13 asyncio tool / chat client outside a stage     plain RuntimeError (no engine there)  left; in a
                                                                                        stage: note
14 asyncio tool inside an ``Agent``               the model gets "no running event      left: as the
                                                  loop" as the tool's error; no log     reference
15 ``def`` stage (sync), lambda, class with       TypeError "object dict can't be used  fixed: note
   a sync ``execute``                             in 'await' expression"
16 ``return helper(ctx)`` (await missing)         TypeError "returned unsupported       fixed: note
                                                  result type <class 'coroutine'>"
17 a stage returns a tuple / str / list / int /   TypeError "unsupported result type"   fixed: note
   the ``StageOutput`` class                                                            (what fits)
18 a stage returns None; ``StageOutput.ok({..})`` OK                                    fine
19 the stage's own ``await some_dict``            its TypeError                         fine (none)
20 ``pipeline.run()`` not awaited                 "'coroutine' object is not            left: Python
                                                  subscriptable" + RuntimeWarning
21 ``trio.run(main())``,                          trio's TypeError with the fix         fine
   ``trio.run(pipeline.run())``,
   ``nursery.start_soon(coro)``
22 ``start_soon`` on a closed nursery             "Nursery is closed to new arrivals"   fine
23 stage class given / instance given             both accepted                         fine
24 runner ``a(None)`` (called) or a str           StageDefinitionTypeError naming it    fine
25 misspelled ``after=``                          PipelineValidationError names both    fine
26 dependency cycle, self-dependency              CycleDetectedError with the path      fine
27 two ``with_stage`` with the same name          silent: the second replaces the       left: as the
                                                  first                                 reference;
                                                                                        documented
28 misspelled / missing ``kind``                  error listing the kinds               fine
29 ``get_from`` an undeclared stage (others       UndeclaredDependencyError with fix    fine
   declared)
30 ``get_from`` with no dependencies declared     silent None                           left: as the
                                                                                        reference;
                                                                                        documented
31 ``time.sleep`` / ``requests.get`` in a stage   silent: blocks every task of the run  left: no
                                                                                        cheap
                                                                                        detector;
                                                                                        documented
32 ``BackpressureAwareEventSink`` without         silent: events queue, never           left: as the
   ``async with`` / ``start``                     delivered                             reference;
                                                                                        documented
33 ``set_event_sink`` in a sibling task           silent: the run does not see it       left: a
                                                  (context variable)                    ContextVar;
                                                                                        documented
34 ``set_event_sink`` before ``trio.run``         works                                 fine
35 approval never decided                         bare TimeoutError after 60 s          fixed: note
                                                                                        (request,
                                                                                        tool, wait)
36 ``@pytest.mark.asyncio`` under pytest-trio     runs under trio; pytest warns of an   fine
                                                  unknown mark
37 a ``ChunkQueue`` iterated twice / never        second loop empty / consumer waits    fine: as
   closed                                         for ``close()``                       documented
== ============================================== ===================================== ============
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import pytest
import trio

from stageflow_trio._engine._hints import (
    ASYNCIO_NOTE,
    MISSING_AWAIT_NOTE,
    NOT_UNDER_TRIO_NOTE,
    RESULT_NOTE,
    SYNC_STAGE_NOTE,
)
from stageflow_trio.api import Pipeline, StageContext, StageOutput
from stageflow_trio.pipeline.dag import StageGraph, StageSpec, UnifiedStageExecutionError
from stageflow_trio.pipeline.interceptors import BaseInterceptor
from stageflow_trio.tools.approval import ApprovalService
from tests.fakes import pipeline_context


async def _fails(runner: Any, **run_kwargs: Any) -> UnifiedStageExecutionError:
    pipeline = Pipeline().with_stage("slow", runner, "work")
    with pytest.raises(UnifiedStageExecutionError) as info:
        await pipeline.run(**run_kwargs)
    return info.value


def _notes(exc: BaseException) -> list[str]:
    return list(getattr(exc, "__notes__", []))


async def _asyncio_sleep(ctx: StageContext) -> None:
    await asyncio.sleep(1)


async def _asyncio_queue(ctx: StageContext) -> None:
    await asyncio.Queue[int]().get()


async def _asyncio_future(ctx: StageContext) -> None:
    # What asyncio.gather or run_in_executor awaits; a loop of its own, closed after.
    loop = asyncio.new_event_loop()
    try:
        await loop.create_future()
    finally:
        loop.close()


async def test_asyncio_sleep_in_a_stage_gets_the_migration_note() -> None:
    error = await _fails(_asyncio_sleep)
    # Type and message as before (and as the reference's stage failure).
    assert str(error) == "Stage 'slow' failed: no running event loop"
    assert type(error.original) is RuntimeError
    assert _notes(error.original) == [ASYNCIO_NOTE]
    assert "docs/migration.md" in ASYNCIO_NOTE


async def test_an_asyncio_queue_misleading_attribute_error_gets_the_note() -> None:
    error = await _fails(_asyncio_queue)
    assert isinstance(error.original, AttributeError)
    assert "create_future" in str(error.original)
    assert _notes(error.original) == [ASYNCIO_NOTE]


async def test_an_asyncio_future_awaited_under_trio_gets_the_note() -> None:
    error = await _fails(_asyncio_future)
    assert isinstance(error.original, TypeError)
    assert _notes(error.original) == [ASYNCIO_NOTE]


async def test_asyncio_in_a_task_of_the_stage_s_nursery_gets_the_note() -> None:
    async def fans_out(ctx: StageContext) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_asyncio_sleep, ctx)
            nursery.start_soon(trio.sleep, 0)

    error = await _fails(fans_out)
    assert isinstance(error.original, ExceptionGroup)
    assert _notes(error.original) == [ASYNCIO_NOTE]


class _Passing(BaseInterceptor):
    name = "passing"

    async def before(self, stage_name: str, ctx: Any) -> None:
        await trio.lowlevel.checkpoint()

    async def after(self, stage_name: str, result: Any, ctx: Any) -> None:
        await trio.lowlevel.checkpoint()


async def test_the_note_also_under_interceptors() -> None:
    error = await _fails(_asyncio_sleep, interceptors=[_Passing()])
    assert _notes(error.original) == [ASYNCIO_NOTE]


class _AsyncioHook(BaseInterceptor):
    name = "aio_hook"

    async def before(self, stage_name: str, ctx: Any) -> None:
        await asyncio.sleep(1)

    async def after(self, stage_name: str, result: Any, ctx: Any) -> None:
        raise RuntimeError("plain failure")


async def test_an_asyncio_interceptor_hook_is_logged_with_the_hint(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def ok(ctx: StageContext) -> dict[str, int]:
        return {"x": 1}

    caplog.set_level(logging.ERROR)
    results = await Pipeline().with_stage("s", ok, "work").run(interceptors=[_AsyncioHook()])
    assert results.ok("s")  # hook errors are isolated, as in the reference
    messages = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Interceptor")]
    assert messages == [
        f"Interceptor aio_hook before() failed: no running event loop; {ASYNCIO_NOTE}",
        "Interceptor aio_hook after() failed: plain failure",  # unchanged
    ]


def _sync_stage(ctx: StageContext) -> dict[str, int]:
    return {"x": 1}


class _SyncExecute:
    kind = "work"

    def execute(self, ctx: StageContext) -> StageOutput:
        return StageOutput.ok(x=1)


@pytest.mark.parametrize("runner", [_sync_stage, _SyncExecute, _SyncExecute()])
async def test_a_sync_stage_gets_the_async_def_note(runner: Any) -> None:
    error = await _fails(runner)
    assert "can't be used in 'await' expression" in str(error)
    assert _notes(error.original) == [SYNC_STAGE_NOTE]


async def _helper(ctx: StageContext) -> dict[str, int]:
    return {"x": 1}


async def _returns_coroutine(ctx: StageContext) -> Any:
    coroutine = _helper(ctx)
    coroutine.close()  # no "never awaited" warning in the test run
    return coroutine


async def test_a_missing_await_gets_its_note() -> None:
    error = await _fails(_returns_coroutine)
    assert str(error).endswith("returned unsupported result type <class 'coroutine'>")
    assert _notes(error.original) == [MISSING_AWAIT_NOTE]


@pytest.mark.parametrize("value", [("a", 1), "text", [1], 3, StageOutput])
async def test_an_unsupported_result_gets_what_fits(value: object) -> None:
    async def returns(ctx: StageContext) -> Any:
        return value

    error = await _fails(returns)
    assert _notes(error.original) == [RESULT_NOTE]


async def test_a_stage_s_own_errors_get_no_note() -> None:
    async def awaits_a_dict(ctx: StageContext) -> None:
        await {}  # type: ignore[misc]  # the mistake is the stage's own

    async def raises(ctx: StageContext) -> None:
        raise RuntimeError("event loop is closed elsewhere")

    for runner in (awaits_a_dict, raises):
        error = await _fails(runner)
        assert _notes(error.original) == []


async def test_the_note_is_added_once_to_an_error_raised_twice() -> None:
    shared = RuntimeError("no running event loop")

    async def raises(ctx: StageContext) -> None:
        raise shared

    await _fails(raises)
    await _fails(raises)
    assert _notes(shared) == [ASYNCIO_NOTE]


def test_asyncio_run_gets_the_trio_run_note() -> None:
    async def ok(ctx: StageContext) -> None:
        return None

    coroutine = Pipeline().with_stage("s", ok, "work").run()
    with pytest.raises(RuntimeError, match="must be called from async context") as info:
        asyncio.run(coroutine)
    assert _notes(info.value) == [NOT_UNDER_TRIO_NOTE]


async def test_an_approval_never_decided_says_what_it_waited_for(
    autojump_clock: trio.testing.MockClock,
) -> None:
    service = ApprovalService(default_timeout_seconds=5)
    request = await service.request_approval(uuid.uuid4(), "delete_db")
    with pytest.raises(TimeoutError) as info:
        await service.await_decision(request.id)
    assert str(info.value) == ""  # bare, as the reference's wait_for raises it
    (note,) = _notes(info.value)
    assert str(request.id) in note
    assert "'delete_db'" in note
    assert "within 5 s" in note
    assert "EXPIRED" in note


def test_a_legacy_stage_graph_under_asyncio_gets_the_note_too() -> None:
    async def ok(ctx: Any) -> None:
        return None

    graph = StageGraph([StageSpec(name="s", runner=ok)], interceptors=[])
    coroutine = graph.run(pipeline_context())
    with pytest.raises(RuntimeError, match="must be called from async context") as info:
        asyncio.run(coroutine)
    assert _notes(info.value) == [NOT_UNDER_TRIO_NOTE]
