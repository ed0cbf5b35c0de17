"""Every example runs, as a module inside trio and from the command line (``python -m``)."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import trio

from stageflow_trio.examples import list_examples, run_example

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "stageflow_trio" / "examples"


def load(name: str) -> ModuleType:
    return importlib.import_module(f"stageflow_trio.examples.{name}")


def test_the_examples_are_listed() -> None:
    assert list_examples() == [
        "cancellation",
        "deadline",
        "flaky_retry",
        "guard_retry",
        "many_runs",
        "quickstart",
        "streaming",
        "subpipelines",
        "tool_approval",
        "voice_turn",
        "web_research",
    ]
    assert list_examples() == sorted(
        p.stem for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")
    )


def test_listing_and_usage_from_the_command_line() -> None:
    command = [sys.executable, "-m", "stageflow_trio.examples"]
    listed = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    assert listed.stdout.split() == list_examples()
    wrong = subprocess.run([*command, "nope"], capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2
    assert (
        wrong.stderr == f"usage: python -m stageflow_trio.examples [{'|'.join(list_examples())}]\n"
    )


def test_run_example_names_an_unknown_example() -> None:
    with pytest.raises(ValueError, match=r"^run_example: unknown example 'nope'; choose one of "):
        run_example("nope")


def test_run_example_runs_it(capsys: pytest.CaptureFixture[str]) -> None:
    run_example("guard_retry")
    assert capsys.readouterr().out.strip()


async def test_quickstart_runs_every_stage(autojump_clock: trio.abc.Clock) -> None:
    results = await load("quickstart").main()
    assert list(results) == ["guard", "profile", "memory", "compose", "save"]
    assert results["compose"].data["reply"] == (
        "Hello Ada! Last time: engines. You said: tell me about trio"
    )
    assert results["save"].data == {"saved": True, "length": 59}


@pytest.mark.parametrize("name", list_examples())
def test_example_runs_from_the_command_line(name: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "stageflow_trio.examples", name],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()


async def test_cancellation_example_shows_each_scenario(autojump_clock: trio.abc.Clock) -> None:
    log = await load("cancellation").main()
    text = "\n".join(log)
    assert "[t= 1.50s] lookup: cancelled" in text
    assert "run raised UnifiedStageExecutionError: Stage 'call' failed: upstream refused" in text
    assert "run raised UnifiedPipelineCancelled('caller hung up'); kept ['fetch']" in text
    assert text.count("cleanup: connection released") == 1
    assert log[-1].endswith("deadline reached: cancelled_caught=True")


async def test_guard_retry_example_recovers_on_the_third_draft() -> None:
    out = await load("guard_retry").main()
    assert out["drafts"] == 3
    assert out["results"]["publish"].data == {"published": "This answer is finally long enough."}
    assert [t for t in out["events"] if t.startswith("guard_retry.")] == [
        "guard_retry.attempt",
        "guard_retry.scheduled",
        "guard_retry.attempt",
        "guard_retry.scheduled",
        "guard_retry.recovered",
    ]


def test_readme_python_blocks_run() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = [block.split("```", 1)[0] for block in readme.split("```python\n")[1:]]
    assert blocks
    for block in blocks:
        namespace: dict[str, object] = {}
        exec(compile(block, "README.md", "exec"), namespace)
        graph = namespace["graph"]
        assert type(graph).__name__ == "UnifiedStageGraph"


async def test_streaming_example_shows_waiting_and_dropping(
    autojump_clock: trio.abc.Clock,
) -> None:
    out = await load("streaming").main()
    waiting, dropping = out["waiting"], out["dropping"]
    # Waiting for room loses nothing but finishes late: 50 chunks at 30 ms each.
    assert waiting == {
        "heard": 50,
        "last_heard": 49,
        "finished_at": 1.5,
        "dropped": 0,
        "blocked_puts": 19,
    }
    # Dropping the oldest loses chunks but finishes sooner: each is heard or counted as dropped.
    assert dropping["heard"] + dropping["dropped"] == 50
    assert dropping["dropped"] > 0
    assert dropping["last_heard"] == 49
    assert dropping["blocked_puts"] == 0
    assert dropping["finished_at"] < waiting["finished_at"]
    assert out["events"] == {
        "stream.producer_blocked": 19,
        "stream.chunk_dropped": dropping["dropped"],
        "stream.throttle_started": 2,
        "stream.queue_closed": 2,
    }
    assert out["sink_dropped"] == 0


def test_the_command_line_entry_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    """The same three answers as from a shell, in this process (so coverage sees them)."""
    from stageflow_trio.examples.__main__ import main

    assert main([]) == 0
    assert capsys.readouterr().out.split() == list_examples()
    assert main(["nope"]) == 2
    assert main(["guard_retry", "quickstart"]) == 2
    usage = f"usage: python -m stageflow_trio.examples [{'|'.join(list_examples())}]\n"
    assert capsys.readouterr().err == usage * 2
    assert main(["guard_retry"]) == 0
    assert capsys.readouterr().out.strip()


@pytest.mark.parametrize("name", list_examples())
def test_each_example_has_a_launcher_at_the_top_that_runs_it(name: str) -> None:
    """``python examples/NAME.py`` from a checkout runs the package's example."""
    launcher = ROOT / "examples" / f"{name}.py"
    assert launcher.is_file()
    # The checkout first on the path: this worktree's package, whatever the venv points at.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(launcher)], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()


def test_no_launcher_without_an_example() -> None:
    assert sorted(p.stem for p in (ROOT / "examples").glob("*.py")) == list_examples()


async def test_flaky_retry_backs_off_100_then_200_ms(autojump_clock: trio.abc.Clock) -> None:
    out = await load("flaky_retry").main()
    # Each call takes 50 ms; the retries wait 100 ms, then 200 ms.
    assert out["calls"] == [0.0, 0.15, 0.4]
    assert [(r["attempt"], r["delay_ms"]) for r in out["retries"]] == [(1, 100), (2, 200)]
    assert out["results"]["ask"].data == {"text": "answer to 'what is trio?'"}


async def test_deadline_example_stops_cleanly_on_the_deadline_and_on_ctrl_c(
    autojump_clock: trio.abc.Clock,
) -> None:
    log = await load("deadline").main()
    assert log == [
        "[t=0.00s] fetch: connection opened",
        "[t=2.00s] summarize: cancelled",
        "[t=2.00s] cleanup: connection released",
        "1. deadline of 2.0s reached",
        "[t=2.00s] fetch: connection opened",
        "[t=2.50s] summarize: cancelled",
        "[t=2.50s] cleanup: connection released",
        "2. cancelled (Ctrl-C); finished: ['fetch'] after 0.50s",
    ]


async def test_deadline_example_completes_within_a_long_deadline(
    autojump_clock: trio.abc.Clock,
) -> None:
    deadline = load("deadline")
    log: list[str] = []
    assert await deadline.run_safely(deadline.build_graph(log), 10.0) == "completed"
    assert log[-1] == "[t=5.20s] cleanup: connection released"


async def test_many_runs_example_answers_every_request_in_its_nursery(
    autojump_clock: trio.abc.Clock,
) -> None:
    out = await load("many_runs").main()
    assert out["replies"] == [
        ("why?", "4 facts", 0.45),
        ("how so?", "7 facts", 0.75),
        ("statement", "error: not a question: 'statement'", 0.9),
        ("ok?", "3 facts", 1.1),
        ("what is a nursery?", "18 facts", 2.3),
    ]
    assert out["finished_at"] == 2.3


async def test_subpipelines_example_cancels_the_whole_tree(
    autojump_clock: trio.abc.Clock,
) -> None:
    out = await load("subpipelines").main()
    log = out["log"]
    # Every run of the tree started at once and was stopped by the watchdog at 1 s.
    assert sorted(line for line in log if "started" in line) == sorted(
        f"[t=0.00s] {name}: started"
        for name in ("search_web", "search_docs", "fetch_page", "fetch_page")
    )
    stopped = [line for line in log if "stopped" in line]
    assert len(stopped) == 4
    assert all(line.startswith("[t=1.00s]") for line in stopped)
    # Each search stops only after its own grandchild (its finally runs last).
    for search in ("search_web", "search_docs"):
        assert log.index(f"[t=1.00s] {search}: stopped, its resources released") > log.index(
            "[t=1.00s] watchdog: the user has gone; cancelling the tree"
        )
    assert out["depths"] == [2, 2, 1, 1, 0]
    assert out["results"]["research"].data == {
        "children": ["Child pipeline canceled: user hung up"] * 2
    }
    assert out["results"]["watchdog"].data == {"cancelled": 5}


async def test_voice_turn_example_streams_redacts_and_remembers(
    autojump_clock: trio.abc.Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    out = await load("voice_turn").main()
    first, second = out["turns"]
    # stt 100 ms, then the model's 150 ms latency, its text 10 ms a piece, the voice's
    # 50 ms latency and real-time audio in 40 ms chunks.
    assert (first["took"], second["took"]) == (0.64, 0.58)
    results = first["results"]
    assert results["stt"].data["transcript"] == (
        "What did I order last time? Call me back on 555-123-4567."
    )
    assert results["guard"].data["transformed_content"] == (
        "What did I order last time? Call me back on ************."
    )
    assert results["fetch_memory"].data["memory_count"] == 0
    assert results["respond"].data == {
        "response": "You ordered the blue kettle. It ships on Monday.",
        "sentences": ["You ordered the blue kettle.", "It ships on Monday."],
        "audio_chunks": 5,
        "first_audio_s": 0.27,
        "llm_waits": 1,
        "llm_waited_ms": 140,
    }
    # The model waited for room once: the queue said so, through the stage's sink.
    assert first["events"].count("stream.producer_blocked") == 1
    assert "guardrail.fail_open" in first["events"]
    assert second["results"]["fetch_memory"].data["memory_count"] == 2
    assert second["results"]["respond"].data["response"] == (
        "It arrives on Wednesday. Anything else?"
    )
    assert "guardrail.fail_open" not in second["events"]
    # Memory holds the redacted words, never the phone number.
    assert out["memory"] == [
        ("user", "What did I order last time? Call me back on ************."),
        ("assistant", "You ordered the blue kettle. It ships on Monday."),
        ("user", "When will it arrive?"),
        ("assistant", "It arrives on Wednesday. Anything else?"),
    ]
    assert "the model waited 140 ms for the voice" in capsys.readouterr().out


async def test_tool_approval_example_waits_for_the_reviewer_then_undoes(
    autojump_clock: trio.abc.Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    out = await load("tool_approval").main()
    assert out["log"] == [
        "[t=0.00s] tool.invoked",
        "[t=0.00s] approval.requested",
        "[t=0.75s] approval.decided",
        "[t=0.75s] tool.started",
        "[t=0.75s] tool.completed",
        "[t=0.75s] tool.undone",
    ]
    results = out["results"]
    assert results["rename"].data["title"] == "Q3 plan"
    assert results["reviewer"].data == {"approved": ["Rename the document?"]}
    assert results["undo"].data == {"undone": True, "title": "Draft notes"}
    assert (out["title"], out["pending"]) == ("Draft notes", [])
    assert capsys.readouterr().out.endswith("pending approval requests: 0\n")


async def test_tool_approval_cancelled_while_waiting_leaves_nothing_pending(
    autojump_clock: trio.abc.Clock,
) -> None:
    import uuid

    from stageflow_trio.testing import RecordingEventSink, create_test_stage_context
    from stageflow_trio.tools import ApprovalStatus

    example = load("tool_approval")
    workspace = example.Workspace()
    graph = example.build_pipeline(workspace).build()
    sink = RecordingEventSink()
    with trio.move_on_after(0.5):  # before the reviewer looks
        await graph.run(create_test_stage_context(event_sink=sink))
    assert await workspace.approvals.get_pending_requests() == []
    assert workspace.document == {"title": "Draft notes"}
    [requested] = [data for event, data in sink.events if event == "approval.requested"]
    assert requested is not None
    request = await workspace.approvals.get_request(uuid.UUID(requested["request_id"]))
    assert request is not None
    assert request.status is ApprovalStatus.CANCELLED
    assert "stage.rename.cancelled" in sink.types()


async def test_tool_events_go_to_the_global_sink_when_the_stage_has_none() -> None:
    from stageflow_trio.events import get_event_sink, set_event_sink
    from stageflow_trio.testing import RecordingEventSink

    example = load("tool_approval")
    outer = RecordingEventSink()
    set_event_sink(outer)
    inner = RecordingEventSink()
    with example.tool_events_to(inner):
        assert get_event_sink() is inner
    with example.tool_events_to(None):
        assert get_event_sink() is outer
    assert get_event_sink() is outer


async def test_web_research_example_outlines_the_relevant_pages(
    autojump_clock: trio.abc.Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    results = await load("web_research").main()
    assert list(results) == ["guard", "crawl", "outline", "report"]
    home = "https://notes.example/"
    data = results["outline"].data
    # Breadth first from the home page: its links, then theirs (timeouts is at depth 2).
    assert data["crawled"] == [
        f"{home}{path}"
        for path in ("", "nurseries", "cancellation", "channels", "old-notes", "timeouts")
    ]
    assert data["failed"] == [f"{home}old-notes (HTTP 404)"]
    # The two pages that mention nurseries and cancellation most, in that order.
    assert data["outline"] == [
        {
            "title": "Nurseries",
            "url": f"{home}nurseries",
            "headings": ["# Nurseries", "## Starting tasks", "## When a child fails"],
            "links": [f"{home}cancellation"],
        },
        {
            "title": "Cancellation",
            "url": f"{home}cancellation",
            "headings": ["# Cancellation", "## Cancel scopes", "## Deadlines"],
            "links": [f"{home}timeouts"],
        },
    ]
    assert data["summary"].startswith("A failing child makes its nursery cancel the other")
    # The crawl takes no virtual time (the site is in memory); the model 120 ms.
    assert trio.current_time() == 0.12
    out = capsys.readouterr().out
    assert out.startswith(
        "question: How do nurseries handle cancellation?\n"
        "crawled 6 pages; failed: https://notes.example/old-notes (HTTP 404)\n"
    )
    assert "\nNurseries <https://notes.example/nurseries>\n  # Nurseries\n" in out
    assert out.endswith(f"summary: {data['summary']}\n")


def test_web_research_example_prints_the_same_without_selectolax() -> None:
    """Without selectolax the regex extractor reads the pages, to the same outline."""
    blocked = (
        "import sys, runpy\n"
        "sys.modules['selectolax'] = None  # import selectolax... now raises ImportError\n"
        "from stageflow_trio.websearch.extractor import SELECTOLAX_AVAILABLE\n"
        "assert not SELECTOLAX_AVAILABLE\n"
        "runpy.run_module('stageflow_trio.examples.web_research', run_name='__main__')\n"
    )
    runs = [
        subprocess.run(command, capture_output=True, text=True, timeout=60)
        for command in (
            [sys.executable, "-m", "stageflow_trio.examples", "web_research"],
            [sys.executable, "-c", blocked],
        )
    ]
    assert [run.returncode for run in runs] == [0, 0], [run.stderr for run in runs]
    assert runs[0].stdout == runs[1].stdout
    assert "## Cancel scopes" in runs[1].stdout
