"""Web research: crawl a small site, keep the relevant pages, outline and summarize them.

A guard checks the question, ``crawl`` fetches the site breadth first with a
WebSearchClient, ``outline`` keeps the pages that mention the question's words most
and asks a model for a summary, and ``report`` prints it. The site is a dict served
by ``create_mock_client`` (no network, no httpx); without selectolax installed the
regex extractor reads the pages and the output is the same.

Run it with ``python -m stageflow_trio.examples web_research``.
"""

from __future__ import annotations

from typing import Any

from stageflow_trio.context import ContextSnapshot
from stageflow_trio.core import PipelineTimer, StageContext, StageKind, StageOutput
from stageflow_trio.examples import _run_main
from stageflow_trio.helpers import MockLLMProvider
from stageflow_trio.pipeline import Pipeline
from stageflow_trio.stages import StageInputs
from stageflow_trio.websearch import WebPage, create_mock_client

__all__ = ["QUESTION", "SITE", "build_pipeline", "main"]

QUESTION = "How do nurseries handle cancellation?"
HOME = "https://notes.example/"


def _page(title: str, body: str) -> tuple[int, str, dict[str, str]]:
    html = f"<html><head><title>{title}</title></head><body><main>{body}</main></body></html>"
    return (200, html, {"content-type": "text/html"})


# URL -> (status, HTML, headers); any other URL is a 404.
SITE = {
    HOME: _page(
        "Trio notes",
        "<h1>Trio notes</h1><p>Notes on <a href='/nurseries'>nurseries</a>, "
        "<a href='/cancellation'>cancellation</a> and <a href='/channels'>channels</a>.</p>"
        "<p>Older: <a href='/old-notes'>old notes</a>.</p>",
    ),
    f"{HOME}nurseries": _page(
        "Nurseries",
        "<h1>Nurseries</h1><h2>Starting tasks</h2><p>A nursery runs its children.</p>"
        "<h2>When a child fails</h2><p>The nursery cancels the other children: "
        "cancellation reaches each at its next checkpoint. See "
        "<a href='/cancellation'>cancellation</a>.</p>",
    ),
    f"{HOME}cancellation": _page(
        "Cancellation",
        "<h1>Cancellation</h1><h2>Cancel scopes</h2><p>Every nursery has a cancel scope; "
        "cancellation of the scope stops the nursery's children.</p><h2>Deadlines</h2>"
        "<p>See <a href='/timeouts'>timeouts</a>.</p>",
    ),
    f"{HOME}channels": _page("Channels", "<h1>Channels</h1><p>Send values between tasks.</p>"),
    f"{HOME}timeouts": _page("Timeouts", "<h1>Timeouts</h1><p>Give up after a while.</p>"),
}

# What the mock model answers: a canned summary when the pages it is given explain cancel
# scopes (re.search on the prompt), else its fallback response.
SUMMARIES = {
    "cancel scope": "A failing child makes its nursery cancel the other children; each "
    "stops at its next checkpoint, through the cancel scope every nursery has."
}


class Guard:
    """Refuses anything but a question."""

    name = "guard"
    kind = StageKind.GUARD

    async def execute(self, ctx: StageContext) -> StageOutput:
        question = (ctx.snapshot.input_text or "").strip()
        if not question.endswith("?"):
            return StageOutput.fail(error=f"not a question: {question!r}")
        return StageOutput.ok(question=question)


async def crawl(ctx: StageContext) -> StageOutput:
    # trio: the crawl's fetches run in this task, inside this `async with`. Cancelling the
    # run (a deadline, a failing sibling stage) stops the fetch under way at its next
    # checkpoint, and the block closes what the client opened (a real client's HTTP
    # connections) before the stage returns: nothing outlives the run.
    async with create_mock_client(SITE) as client:
        pages = await client.crawl(HOME, max_pages=10, max_depth=2)
    return StageOutput.ok(pages=tuple(pages))


def _score(page: WebPage, stems: list[str]) -> int:
    """How often the stems occur in the page's text (a real one would ask a model)."""
    text = page.plain_text.lower()
    return sum(text.count(stem) for stem in stems)


async def outline(ctx: StageContext) -> StageOutput:
    question: str = ctx.inputs.get_from("guard", "question")
    pages: tuple[WebPage, ...] = ctx.inputs.get_from("crawl", "pages")
    # The question's words of 5 letters or more, cut to 6 ("nurseries" also finds "nursery").
    words = [word.strip("?.,!").lower() for word in question.split()]
    stems = [word[:6] for word in words if len(word) > 4]
    found = [page for page in pages if page.success and _score(page, stems) > 0]
    # The two pages scoring highest; sorted() is stable, so ties keep crawl order.
    best = sorted(found, key=lambda page: -_score(page, stems))[:2]
    sections = [
        {
            "title": page.title,
            "url": page.url,
            "headings": [line for line in page.markdown.splitlines() if line.startswith("#")],
            "links": [link.url for link in page.internal_links],
        }
        for page in best
    ]
    model = MockLLMProvider(patterns=SUMMARIES, responses=["I found nothing."], latency_ms=120)
    prompt = "\n\n".join([f"Answer from these pages: {question}", *(p.markdown for p in best)])
    summary = (await model.complete(prompt)).content
    failed = [f"{page.url} ({page.error})" for page in pages if not page.success]
    return StageOutput.ok(
        crawled=[page.url for page in pages], failed=failed, outline=sections, summary=summary
    )


async def report(ctx: StageContext) -> StageOutput:
    found = ctx.inputs.get_output("outline")
    assert found is not None  # a declared dependency: it ran, and succeeded
    data = found.data
    lines = [f"crawled {len(data['crawled'])} pages; failed: {', '.join(data['failed']) or 'none'}"]
    for section in data["outline"]:
        lines += ["", f"{section['title']} <{section['url']}>"]
        lines += [f"  {heading}" for heading in section["headings"]]
        lines.append(f"  links: {', '.join(section['links'])}")
    lines += ["", f"summary: {data['summary']}"]
    print("\n".join(lines))
    return StageOutput.ok(lines=len(lines))


def build_pipeline() -> Pipeline:
    return (
        Pipeline(name="web_research")
        .with_stage("guard", Guard, StageKind.GUARD)
        .with_stage("crawl", crawl, StageKind.ENRICH, dependencies=("guard",))
        .with_stage("outline", outline, StageKind.TRANSFORM, dependencies=("guard", "crawl"))
        .with_stage("report", report, StageKind.WORK, dependencies=("outline",))
    )


async def main() -> dict[str, StageOutput]:
    graph = build_pipeline().build()
    snapshot: ContextSnapshot[Any] = ContextSnapshot(input_text=QUESTION, topology="web_research")
    ctx = StageContext(
        snapshot=snapshot,
        inputs=StageInputs(snapshot=snapshot),
        stage_name="web_research",
        timer=PipelineTimer(),
    )
    print(f"question: {QUESTION}")
    return await graph.run(ctx)


if __name__ == "__main__":
    # trio.run(main), ending quietly (status 141) if the reader goes away (| head).
    _run_main(main)
