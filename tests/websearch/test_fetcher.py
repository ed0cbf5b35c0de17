"""stageflow_trio.websearch.fetcher: configs, results, the retry loop, HttpFetcher, MockFetcher."""

from __future__ import annotations

import asyncio
import functools
import importlib
import math
from collections.abc import AsyncIterator, Callable
from types import ModuleType
from typing import Any

import attrs
import httpx
import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from stageflow_trio._frozen import FrozenInstanceError
from stageflow_trio.websearch.fetcher import (
    FetchConfig,
    Fetcher,
    FetchResult,
    HttpFetcher,
    MockFetcher,
)


@pytest.fixture(scope="module")
def ref_fetcher(reference: ModuleType) -> ModuleType:
    return importlib.import_module("stageflow.websearch.fetcher")


class Hooks:
    """Records every hook call as (name, args)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def start(self, *args: Any) -> None:
        self.calls.append(("start", args))

    def complete(self, *args: Any) -> None:
        self.calls.append(("complete", args))

    def error(self, *args: Any) -> None:
        self.calls.append(("error", args))

    def kwargs(self) -> dict[str, Any]:
        return {
            "on_fetch_start": self.start,
            "on_fetch_complete": self.complete,
            "on_fetch_error": self.error,
        }


class ScriptedFetcher(Fetcher):
    """Raises the scripted exceptions in turn, then returns 200 ``ok``; logs attempt times."""

    def __init__(self, script: list[BaseException], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.script = list(script)
        self.attempts: list[float] = []
        self.calls: list[dict[str, Any]] = []

    async def _do_fetch(
        self, url: str, *, timeout: float, headers: dict[str, str], follow_redirects: bool
    ) -> FetchResult:
        self.attempts.append(trio.current_time())
        self.calls.append(
            {"timeout": timeout, "headers": headers, "follow_redirects": follow_redirects}
        )
        await trio.sleep(0.25)  # the request itself takes a quarter second
        if self.script:
            raise self.script.pop(0)
        return FetchResult(url=url, final_url=url, status_code=200, content=b"ok")


def mock_client(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


# --- FetchConfig ---------------------------------------------------------------------


def test_config_defaults_match_reference(ref_fetcher: ModuleType) -> None:
    ours, theirs = FetchConfig(), ref_fetcher.FetchConfig()
    for field in attrs.fields(FetchConfig):
        assert getattr(ours, field.name) == getattr(theirs, field.name), field.name
    assert [f.name for f in attrs.fields(FetchConfig)] == list(
        theirs.__dataclass_fields__  # field order: positional construction still works
    )


def test_config_is_frozen_and_headers_read_only() -> None:
    config = FetchConfig(default_headers={"X-A": "1"})
    with pytest.raises(FrozenInstanceError):
        config.timeout = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.default_headers["X-B"] = "2"
    assert config.default_headers == {"X-A": "1"}
    assert hash(config) == hash(FetchConfig(default_headers={"X-A": "1"}))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"timeout": 0}, ValueError, "FetchConfig: timeout must be > 0; got 0"),
        ({"timeout": -1}, ValueError, "FetchConfig: timeout must be > 0; got -1"),
        ({"timeout": "5"}, TypeError, "FetchConfig: timeout must be a number; got str"),
        ({"max_retries": -1}, ValueError, "FetchConfig: max_retries must be at least 0; got -1"),
        ({"max_retries": 1.5}, TypeError, "FetchConfig: max_retries must be an int; got float"),
        ({"retry_delay": -0.5}, ValueError, "FetchConfig: retry_delay must be >= 0; got -0.5"),
        (
            {"follow_redirects": "yes"},
            TypeError,
            "FetchConfig: follow_redirects must be a bool; got str",
        ),
        (
            {"max_redirects": -1},
            ValueError,
            "FetchConfig: max_redirects must be at least 0; got -1",
        ),
        ({"user_agent": None}, TypeError, "FetchConfig: user_agent must be a str; got NoneType"),
        (
            {"default_headers": [("a", "b")]},
            TypeError,
            "FetchConfig: default_headers must be a mapping of str to str; got list",
        ),
        (
            {"default_headers": {"a": 1}},
            TypeError,
            "FetchConfig: default_headers must map str to str; got str -> int",
        ),
        ({"verify_ssl": 1}, TypeError, "FetchConfig: verify_ssl must be a bool; got int"),
        (
            {"max_content_length": -1},
            ValueError,
            "FetchConfig: max_content_length must be at least 0; got -1",
        ),
    ],
)
def test_config_rejects_bad_values(kwargs: dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error, match=f"^{_re(message)}$"):
        FetchConfig(**kwargs)


def _re(text: str) -> str:
    import re

    return re.escape(text)


# --- FetchResult ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "status", "success"),
    [
        (None, 200, True),
        (None, 302, True),
        (None, 399, True),
        (None, 400, False),
        (None, 199, False),
        (None, 0, False),
        ("boom", 200, False),
    ],
)
def test_result_success(error: str | None, status: int, success: bool) -> None:
    assert FetchResult(url="u", status_code=status, error=error).success is success


@pytest.mark.parametrize(
    ("content", "content_type", "text"),
    [
        (b"", "text/html; charset=latin-1", ""),
        ("héllo".encode(), "text/html", "héllo"),
        ("héllo".encode("latin-1"), "text/html; charset=ISO-8859-1", "héllo"),
        ("héllo".encode("cp1252"), "text/plain;CHARSET=cp1252; format=flowed", "héllo"),
        (b"h\xe9llo", "text/html; charset=utf-8", "h\ufffdllo"),  # bad bytes: replaced
        (b"abc", "text/html; charset=no-such-codec", "abc"),  # unknown codec: UTF-8
        (b"abc", 'text/html; charset="utf-8"', "abc"),  # quoted: codecs drop the quotes
        (b"\\x", "text/html; charset=punycode", "\\x"),  # the reference raised here
    ],
)
def test_result_text_decodes_with_charset(content: bytes, content_type: str, text: str) -> None:
    assert FetchResult(url="u", content=content, content_type=content_type).text == text


@pytest.mark.parametrize(
    ("content_type", "is_html"),
    [
        ("text/html", True),
        ("TEXT/HTML; charset=utf-8", True),
        ("application/xhtml+xml", True),
        ("text/plain", False),
        ("", False),
        ("application/json", False),
    ],
)
def test_result_is_html(content_type: str, is_html: bool) -> None:
    assert FetchResult(url="u", content_type=content_type).is_html is is_html


_CONTENT_TYPES = st.one_of(
    st.text(max_size=40),
    st.builds(
        lambda prefix, charset, suffix: f"{prefix}charset={charset}{suffix}",
        st.sampled_from(["text/html; ", "text/plain;", "", "TEXT/HTML; CHARSET="]),
        st.sampled_from(
            ["utf-8", "latin-1", "cp1252", "utf-16", "ascii", "bogus", '"utf-8"', "", "idna"]
        ),
        st.sampled_from(["", "; x=y", " ;", ";charset=ascii"]),
    ),
)


@given(content=st.binary(max_size=40), content_type=_CONTENT_TYPES)
def test_result_text_and_is_html_match_reference(
    ref_fetcher: ModuleType, content: bytes, content_type: str
) -> None:
    ours = FetchResult(url="u", content=content, content_type=content_type)
    theirs = ref_fetcher.FetchResult(url="u", content=content, content_type=content_type)
    assert ours.text == theirs.text
    assert ours.is_html == theirs.is_html


def test_result_to_dict_matches_reference(ref_fetcher: ModuleType) -> None:
    kwargs: dict[str, Any] = {
        "url": "https://a.test/x",
        "final_url": "https://a.test/y",
        "status_code": 301,
        "content": b"12345",
        "content_type": "text/html",
        "headers": {"content-type": "text/html"},
        "duration_ms": 12.5,
        "retry_count": 2,
        "error": None,
        "request_id": "rid",
    }
    assert FetchResult(**kwargs).to_dict() == ref_fetcher.FetchResult(**kwargs).to_dict()
    # Positionally too: the field order is the reference's.
    args = list(kwargs.values())
    assert FetchResult(*args).to_dict() == ref_fetcher.FetchResult(*args).to_dict()


def test_result_defaults_and_fresh_request_ids() -> None:
    one, two = FetchResult(url="u"), FetchResult(url="u")
    assert one.request_id != two.request_id
    assert len(one.request_id) == 36
    assert (one.final_url, one.status_code, one.content, one.content_type) == (None, 0, b"", "")
    assert (one.headers, one.duration_ms, one.retry_count, one.error) == ({}, 0.0, 0, None)
    one.retry_count = 3  # mutable, as the reference's
    assert one.retry_count == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"url": None}, "FetchResult: url must be a str; got NoneType"),
        ({"url": "u", "status_code": "200"}, "FetchResult: status_code must be an int; got str"),
        ({"url": "u", "content": "text"}, "FetchResult: content must be bytes; got str"),
        ({"url": "u", "headers": [1]}, "FetchResult: headers must be a mapping; got list"),
        ({"url": "u", "error": 3}, "FetchResult: error must be a str; got int"),
    ],
)
def test_result_rejects_bad_fields(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError, match=f"^{_re(message)}$"):
        FetchResult(**kwargs)


# --- the retry loop ------------------------------------------------------------------


async def test_base_fetcher_reports_missing_do_fetch(ref_fetcher: ModuleType) -> None:
    result = await Fetcher().fetch("https://a.test/")
    assert result.error == "Subclasses must implement _do_fetch"
    assert (result.retry_count, result.status_code, result.success) == (1, 0, False)


async def test_retryable_errors_back_off_exponentially(autojump_clock: trio.abc.Clock) -> None:
    hooks = Hooks()
    fetcher = ScriptedFetcher(
        [ConnectionError("connection reset by peer"), OSError("temporary failure")],
        config=FetchConfig(retry_delay=1.0, max_retries=3),
        **hooks.kwargs(),
    )
    result = await fetcher.fetch("https://a.test/")
    # Attempts at 0, then 0.25 + 1, then 1.5 + 0.25 + 2: each delay doubles.
    assert fetcher.attempts == [0.0, 1.25, 3.5]
    assert trio.current_time() == 3.75
    assert result.success
    assert result.retry_count == 2
    assert result.duration_ms == 3750.0
    request_id = result.request_id
    assert hooks.calls == [
        ("start", ("https://a.test/", request_id)),
        ("complete", ("https://a.test/", request_id, 200, 3750.0, 2, False)),
    ]


async def test_retries_run_out(autojump_clock: trio.abc.Clock) -> None:
    hooks = Hooks()
    errors: list[BaseException] = [TimeoutError("read timeout")] * 4
    fetcher = ScriptedFetcher(errors, config=FetchConfig(retry_delay=0.5), **hooks.kwargs())
    result = await fetcher.fetch("https://a.test/")
    assert fetcher.attempts == [0.0, 0.75, 2.0, 4.25]  # delays 0.5, 1, 2
    assert result.error == "read timeout"
    assert result.retry_count == 4
    assert result.status_code == 0
    assert result.duration_ms == 4500.0
    assert hooks.calls[1:] == [
        ("error", ("https://a.test/", result.request_id, "read timeout", 4500.0, False))
    ]


async def test_non_retryable_error_is_not_retried(autojump_clock: trio.abc.Clock) -> None:
    fetcher = ScriptedFetcher([ValueError("bad url")])
    result = await fetcher.fetch("https://a.test/")
    assert fetcher.attempts == [0.0]
    assert (result.error, result.retry_count) == ("bad url", 1)


async def test_zero_retries_means_one_attempt(autojump_clock: trio.abc.Clock) -> None:
    fetcher = ScriptedFetcher(
        [ConnectionError("connection refused")] * 2, config=FetchConfig(max_retries=0)
    )
    result = await fetcher.fetch("https://a.test/")
    assert fetcher.attempts == [0.0]
    assert result.error == "connection refused"


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (RuntimeError("Connection reset"), True),
        (RuntimeError("HTTP 503 from upstream"), True),
        (RuntimeError("got 429"), True),
        (RuntimeError("Refused"), True),
        (RuntimeError("nope"), False),
        (httpx.ReadTimeout(""), True),  # no message: its class name says timeout
        (httpx.ConnectTimeout(""), True),
        (httpx.ConnectError("all attempts to connect to 127.0.0.1:1 failed"), True),
        (httpx.ReadError(""), True),
        (httpx.RemoteProtocolError("Server disconnected"), False),
        (httpx.TooManyRedirects("Exceeded maximum allowed redirects."), False),
    ],
)
def test_is_retryable_error(error: Exception, retryable: bool) -> None:
    assert Fetcher()._is_retryable_error(error) is retryable


async def test_empty_error_message_becomes_class_name(autojump_clock: trio.abc.Clock) -> None:
    fetcher = ScriptedFetcher([httpx.ReadTimeout("")] * 2, config=FetchConfig(max_retries=1))
    result = await fetcher.fetch("https://a.test/")
    assert result.error == "ReadTimeout"
    assert fetcher.attempts == [0.0, 1.25]  # retried once


async def test_unprintable_error_is_named_by_its_class(autojump_clock: trio.abc.Clock) -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no text")

    result = await ScriptedFetcher([Unprintable()], config=FetchConfig(max_retries=0)).fetch("u")
    assert result.error == "Unprintable"


async def test_error_status_is_returned_not_retried(autojump_clock: trio.abc.Clock) -> None:
    hooks = Hooks()
    fetcher = MockFetcher(
        {"https://a.test/5": (503, "down", {}), "https://a.test/4": (404, "gone", {})},
        **hooks.kwargs(),
    )
    down = await fetcher.fetch("https://a.test/5")
    gone = await fetcher.fetch("https://a.test/4")
    assert fetcher.fetch_history == ["https://a.test/5", "https://a.test/4"]
    assert (down.status_code, down.error, down.success, down.retry_count) == (503, None, False, 0)
    assert [call for call in hooks.calls if call[0] == "error"] == [
        ("error", ("https://a.test/5", down.request_id, "HTTP 503", 0.0, True)),
        ("error", ("https://a.test/4", gone.request_id, "HTTP 404", 0.0, False)),
    ]


async def test_result_error_is_reported_to_the_hook(autojump_clock: trio.abc.Clock) -> None:
    class Failing(Fetcher):
        async def _do_fetch(self, url: str, **_: Any) -> FetchResult:
            await trio.lowlevel.checkpoint()
            return FetchResult(url=url, status_code=200, error="parse failed")

    hooks = Hooks()
    result = await Failing(**hooks.kwargs()).fetch("https://a.test/")
    assert hooks.calls[1] == (
        "error",
        ("https://a.test/", result.request_id, "parse failed", 0.0, False),
    )


async def test_hook_errors_are_suppressed() -> None:
    def boom(*_: Any) -> None:
        raise RuntimeError("hook failed")

    fetcher = MockFetcher(
        {"https://a.test/": (200, "ok", {}), "https://a.test/x": (500, "no", {})},
        on_fetch_start=boom,
        on_fetch_complete=boom,
        on_fetch_error=boom,
    )
    assert (await fetcher.fetch("https://a.test/")).success
    assert (await fetcher.fetch("https://a.test/x")).status_code == 500
    assert (await Fetcher(on_fetch_error=boom).fetch("https://a.test/")).error is not None


async def test_fetch_passes_timeout_headers_and_redirect_choice(
    autojump_clock: trio.abc.Clock,
) -> None:
    config = FetchConfig(timeout=7.0, user_agent="UA/1", default_headers={"X-A": "1", "X-B": "2"})
    fetcher = ScriptedFetcher([], config=config)
    await fetcher.fetch("https://a.test/")
    await fetcher.fetch(
        "https://a.test/",
        timeout=2.5,
        headers={"X-B": "override", "User-Agent": "mine"},
        follow_redirects=False,
    )
    assert fetcher.calls == [
        {
            "timeout": 7.0,
            "headers": {"User-Agent": "UA/1", "X-A": "1", "X-B": "2"},
            "follow_redirects": True,
        },
        {
            "timeout": 2.5,
            "headers": {"User-Agent": "mine", "X-A": "1", "X-B": "override"},
            "follow_redirects": False,
        },
    ]


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        ({"url": 5}, TypeError, "MockFetcher.fetch: url must be a str; got int"),
        ({"url": "u", "timeout": 0}, ValueError, "MockFetcher.fetch: timeout must be > 0; got 0"),
        (
            {"url": "u", "timeout": math.nan},
            ValueError,
            "MockFetcher.fetch: timeout must be a finite number; got nan",
        ),
        (
            {"url": "u", "headers": {"a": None}},
            TypeError,
            "MockFetcher.fetch: headers must map str to str; got str -> NoneType",
        ),
        (
            {"url": "u", "follow_redirects": 1},
            TypeError,
            "MockFetcher.fetch: follow_redirects must be a bool; got int",
        ),
    ],
)
async def test_fetch_rejects_bad_arguments(call: dict[str, Any], error: type, message: str) -> None:
    fetcher = MockFetcher()
    url = call.pop("url")
    with pytest.raises(error, match=f"^{_re(message)}$"):
        await fetcher.fetch(url, **call)
    assert fetcher.fetch_history == []


def test_fetcher_rejects_bad_constructor_arguments() -> None:
    with pytest.raises(
        TypeError, match=r"^Fetcher: config must be a FetchConfig or None; got dict$"
    ):
        Fetcher({"timeout": 1})  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"^MockFetcher: on_fetch_start must be a callable or None; got str$"
    ):
        MockFetcher(on_fetch_start="print")  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"^MockFetcher: responses must be a dict or None; got list$"
    ):
        MockFetcher([])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^MockFetcher: responses\['u'\] must be a \(status"):
        MockFetcher({"u": (200, "x")})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match=r"^MockFetcher: default_response must be a \(status"):
        MockFetcher(default_response=("200", "x", {}))  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"^HttpFetcher: client must be an httpx.AsyncClient or None; got object$"
    ):
        HttpFetcher(client=object())  # type: ignore[arg-type]


async def test_fetch_is_a_checkpoint() -> None:
    fetcher = MockFetcher({"u": (200, "x", {})})
    with trio.testing.assert_checkpoints():
        await fetcher.fetch("u")
    with trio.testing.assert_checkpoints():
        await fetcher.fetch_many([])


# --- MockFetcher ---------------------------------------------------------------------


async def test_mock_fetcher_answers_and_records() -> None:
    responses: dict[str, tuple[int, str | bytes, dict[str, str]]] = {
        "https://a.test/": (200, "<p>é</p>", {"content-type": "text/html; charset=utf-8"}),
        "https://a.test/raw": (200, b"\x00\x01", {"Content-Type": "application/octet-stream"}),
    }
    fetcher = MockFetcher(responses)
    page = await fetcher.fetch("https://a.test/")
    assert page.content == "<p>é</p>".encode()
    assert (page.final_url, page.content_type) == ("https://a.test/", "text/html; charset=utf-8")
    raw = await fetcher.fetch("https://a.test/raw")
    assert raw.content_type == "text/html"  # only the lower-case key is read, as the reference
    missing = await fetcher.fetch("https://a.test/none")
    assert (missing.status_code, missing.text, missing.content_type) == (
        404,
        "Not Found",
        "text/plain",
    )
    responses["https://a.test/late"] = (201, "late", {})
    assert (await fetcher.fetch("https://a.test/late")).status_code == 201
    assert fetcher.fetch_history == [
        "https://a.test/",
        "https://a.test/raw",
        "https://a.test/none",
        "https://a.test/late",
    ]
    custom = MockFetcher(default_response=(500, "x", {}))
    assert (await custom.fetch("any")).status_code == 500


def _run_reference(
    ref_fetcher: ModuleType, responses: dict[str, Any], urls: list[str], concurrency: int
) -> list[dict[str, Any]]:
    async def main() -> Any:
        fetcher = ref_fetcher.MockFetcher(responses, config=ref_fetcher.FetchConfig(retry_delay=0))
        return await fetcher.fetch_many(urls, concurrency=concurrency)

    return [_comparable(r.to_dict()) for r in asyncio.run(main())]


def _comparable(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in ("request_id", "duration_ms")}


_RESPONSES = st.dictionaries(
    st.sampled_from([f"https://a.test/{i}" for i in range(6)]),
    st.tuples(
        st.sampled_from([200, 201, 301, 404, 500, 503]),
        st.one_of(st.text(max_size=10), st.binary(max_size=10)),
        st.dictionaries(
            st.sampled_from(["content-type", "x-a"]),
            st.sampled_from(["text/html", "text/plain", "v"]),
            max_size=2,
        ),
    ),
    max_size=6,
)


@given(
    responses=_RESPONSES,
    urls=st.lists(st.sampled_from([f"https://a.test/{i}" for i in range(8)]), max_size=8),
    concurrency=st.integers(1, 4),
)
def test_mock_fetcher_fetch_many_matches_reference(
    ref_fetcher: ModuleType, responses: dict[str, Any], urls: list[str], concurrency: int
) -> None:
    theirs = _run_reference(ref_fetcher, responses, urls, concurrency)

    async def main() -> list[FetchResult]:
        fetcher = MockFetcher(responses, config=FetchConfig(retry_delay=0))
        return await fetcher.fetch_many(urls, concurrency=concurrency)

    ours = [_comparable(r.to_dict()) for r in trio.run(main)]
    assert ours == theirs


# --- fetch_many ----------------------------------------------------------------------


class SlowFetcher(Fetcher):
    """Each URL ``.../<seconds>`` takes that long; ``.../fail`` raises; tracks concurrency."""

    def __init__(self) -> None:
        super().__init__(FetchConfig(max_retries=0))
        self.in_flight = 0
        self.peak = 0
        self.started: list[str] = []

    async def _do_fetch(self, url: str, **_: Any) -> FetchResult:
        self.started.append(url)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            name = url.rsplit("/", 1)[1]
            if name == "fail":
                await trio.sleep(0.5)
                raise ValueError("no such page")
            await trio.sleep(float(name))
            return FetchResult(url=url, status_code=200, content=name.encode())
        finally:
            self.in_flight -= 1


async def test_fetch_many_keeps_order_and_limits_concurrency(
    autojump_clock: trio.abc.Clock,
) -> None:
    fetcher = SlowFetcher()
    urls = [f"https://a.test/{s}" for s in (3, 1, 2, 1, 1)]
    results = await fetcher.fetch_many(urls, concurrency=2)
    assert [r.url for r in results] == urls
    assert fetcher.peak == 2
    # Two lanes: 3 | 1, 2 (ends at 3), then 1, 1 (ends at 4).
    assert trio.current_time() == 4.0


async def test_fetch_many_failing_url_gives_its_error_result(
    autojump_clock: trio.abc.Clock,
) -> None:
    fetcher = SlowFetcher()
    urls = ["https://a.test/1", "https://a.test/fail", "https://a.test/2"]
    results = await fetcher.fetch_many(urls)
    assert [r.success for r in results] == [True, False, True]
    assert results[1].error == "no such page"
    assert trio.current_time() == 2.0


async def test_fetch_many_accepts_any_iterable() -> None:
    fetcher = MockFetcher()
    results = await fetcher.fetch_many(iter(("a", "b")))  # type: ignore[arg-type]
    assert [r.url for r in results] == ["a", "b"]


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        (
            ("https://a.test/",),
            {},
            TypeError,
            "MockFetcher.fetch_many: urls must be a list of str; got str",
        ),
        ((["a", 1],), {}, TypeError, "MockFetcher.fetch_many: urls must be a str; got int"),
        (
            (["a"],),
            {"concurrency": 0},
            ValueError,
            "MockFetcher.fetch_many: concurrency must be at least 1; got 0",
        ),
        (
            (["a"],),
            {"timeout": -2},
            ValueError,
            "MockFetcher.fetch_many: timeout must be > 0; got -2",
        ),
        (
            (["a"],),
            {"headers": "x"},
            TypeError,
            "MockFetcher.fetch_many: headers must be a mapping of str to str; got str",
        ),
    ],
)
async def test_fetch_many_rejects_bad_arguments(
    args: tuple[Any, ...], kwargs: dict[str, Any], error: type, message: str
) -> None:
    with pytest.raises(error, match=f"^{_re(message)}$"):
        await MockFetcher().fetch_many(*args, **kwargs)


def _child_tasks() -> list[trio.lowlevel.Task]:
    task = trio.lowlevel.current_task()
    return [child for nursery in task.child_nurseries for child in nursery.child_tasks]


async def test_cancelled_fetch_many_leaves_no_task(autojump_clock: trio.abc.Clock) -> None:
    hooks = Hooks()
    fetcher = SlowFetcher()
    fetcher._on_fetch_error = hooks.error
    fetcher._on_fetch_complete = hooks.complete
    urls = [f"https://a.test/{s}" for s in (1, 5, 5, 5)]
    results: list[FetchResult] | None = None
    with trio.move_on_after(2) as scope:
        results = await fetcher.fetch_many(urls, concurrency=3)
    assert scope.cancelled_caught
    assert results is None
    assert trio.current_time() == 2.0
    assert fetcher.in_flight == 0
    assert _child_tasks() == []
    # The one that finished completed; the cancelled ones were not turned into errors.
    assert [name for name, _ in hooks.calls] == ["complete"]
    # The fourth started once the first finished (the first three in no set order).
    assert sorted(fetcher.started[:3]) == sorted(urls[:3])
    assert fetcher.started[3] == urls[3]


async def test_cancelled_fetch_propagates_cancelled(autojump_clock: trio.abc.Clock) -> None:
    hooks = Hooks()
    fetcher = ScriptedFetcher([ConnectionError("connection reset")], **hooks.kwargs())
    with trio.move_on_after(0.1):
        await fetcher.fetch("https://a.test/")
        pytest.fail("not cancelled")  # pragma: no cover
    # Cancelled during the backoff sleep too: never an error result.
    with trio.move_on_after(0.5):
        await ScriptedFetcher([ConnectionError("connection reset")]).fetch("https://a.test/")
        pytest.fail("not cancelled")  # pragma: no cover
    assert [name for name, _ in hooks.calls] == ["start"]


async def test_fetch_many_lets_a_base_exception_through_unwrapped() -> None:
    class Interrupting(Fetcher):
        async def _do_fetch(self, url: str, **_: Any) -> FetchResult:
            await trio.lowlevel.checkpoint()
            if url == "b":
                raise KeyboardInterrupt
            await trio.sleep_forever()
            raise AssertionError  # pragma: no cover

    with pytest.raises(KeyboardInterrupt):
        await Interrupting().fetch_many(["a", "b", "c"])
    assert _child_tasks() == []


# --- HttpFetcher over MockTransport --------------------------------------------------


async def test_http_fetcher_statuses() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        status = int(request.url.path.strip("/"))
        return httpx.Response(status, text=f"status {status}", headers={"X-S": str(status)})

    async with mock_client(handler) as client:
        fetcher = HttpFetcher(FetchConfig(max_retries=2), client=client)
        for status, success in ((200, True), (204, True), (404, False), (500, False)):
            result = await fetcher.fetch(f"https://a.test/{status}")
            assert (result.status_code, result.success, result.retry_count) == (status, success, 0)
            assert result.headers["x-s"] == str(status)
            assert result.final_url == f"https://a.test/{status}"


async def test_http_fetcher_follows_redirects() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/old":
            return httpx.Response(301, headers={"Location": "/new"})
        return httpx.Response(200, text="new page", headers={"Content-Type": "text/html"})

    async with mock_client(handler) as client:
        fetcher = HttpFetcher(client=client)
        followed = await fetcher.fetch("https://a.test/old")
        assert (followed.url, followed.final_url, followed.status_code) == (
            "https://a.test/old",
            "https://a.test/new",
            200,
        )
        assert followed.text == "new page"
        assert followed.is_html
        stopped = await fetcher.fetch("https://a.test/old", follow_redirects=False)
        assert (stopped.final_url, stopped.status_code, stopped.success) == (
            "https://a.test/old",
            301,
            True,
        )
        config_off = HttpFetcher(FetchConfig(follow_redirects=False), client=client)
        assert (await config_off.fetch("https://a.test/old")).status_code == 301


def _client_of(fetcher: HttpFetcher) -> httpx.AsyncClient | None:
    return fetcher._client


def _closed(client: httpx.AsyncClient) -> bool:
    return client.is_closed


async def test_http_fetcher_owned_client_uses_config(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[dict[str, Any]] = []
    real_client = httpx.AsyncClient

    def handler(request: httpx.Request) -> httpx.Response:
        hop = int(request.url.path.strip("/"))
        return httpx.Response(302, headers={"Location": f"/{hop + 1}"})

    def make(**kwargs: Any) -> httpx.AsyncClient:
        made.append(kwargs)
        return real_client(transport=httpx.MockTransport(handler), **kwargs)

    monkeypatch.setattr(httpx, "AsyncClient", make)
    config = FetchConfig(timeout=4.0, max_redirects=3, verify_ssl=False, follow_redirects=False)
    fetcher = HttpFetcher(config)
    assert made == []  # lazily
    result = await fetcher.fetch("https://a.test/0", follow_redirects=True)
    assert result.error == "Exceeded maximum allowed redirects."
    assert result.retry_count == 1  # not retryable
    assert made == [
        {
            "timeout": httpx.Timeout(4.0),
            "follow_redirects": False,
            "max_redirects": 3,
            "verify": False,
        }
    ]
    client = fetcher._client
    assert client is not None
    await fetcher.close()
    assert client.is_closed
    assert _client_of(fetcher) is None
    await fetcher.close()  # again: nothing to do
    # A fetch after close opens a new client, which close() closes again.
    await fetcher.fetch("https://a.test/0")
    assert len(made) == 2
    second = fetcher._client
    assert second is not None
    await fetcher.close()
    assert second.is_closed


async def test_http_fetcher_async_with_closes_owned_client(monkeypatch: pytest.MonkeyPatch) -> None:
    real_client = httpx.AsyncClient
    clients: list[httpx.AsyncClient] = []

    def make(**kwargs: Any) -> httpx.AsyncClient:
        clients.append(
            real_client(transport=httpx.MockTransport(lambda _: httpx.Response(200)), **kwargs)
        )
        return clients[-1]

    monkeypatch.setattr(httpx, "AsyncClient", make)
    async with HttpFetcher() as fetcher:
        assert len(clients) == 1  # made on entering
        assert (await fetcher.fetch("https://a.test/")).status_code == 200
        assert not _closed(clients[0])
    assert _closed(clients[0])
    # Closed even when the block is cancelled.
    with trio.CancelScope() as scope:
        async with HttpFetcher():
            scope.cancel()
            await trio.lowlevel.checkpoint()
    assert len(clients) == 2
    assert clients[1].is_closed


async def test_http_fetcher_leaves_a_given_client_open() -> None:
    async with mock_client(lambda _: httpx.Response(200)) as client:
        async with HttpFetcher(client=client) as fetcher:
            await fetcher.fetch("https://a.test/")
        assert not client.is_closed
        await fetcher.close()
        assert not client.is_closed
        with trio.testing.assert_checkpoints():
            await fetcher.close()


async def test_http_fetcher_sends_headers_and_timeout() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    config = FetchConfig(timeout=9.0, default_headers={"Accept-Language": "fr"})
    async with mock_client(handler) as client:
        fetcher = HttpFetcher(config, client=client)
        await fetcher.fetch("https://a.test/")
        await fetcher.fetch("https://a.test/", timeout=1.5, headers={"User-Agent": "me/2"})
    first, second = seen
    assert first.headers["user-agent"] == FetchConfig().user_agent
    assert first.headers["accept-language"] == "fr"
    assert first.extensions["timeout"] == httpx.Timeout(9.0).as_dict()
    assert second.headers["user-agent"] == "me/2"
    assert second.extensions["timeout"] == httpx.Timeout(1.5).as_dict()


async def test_http_fetcher_cuts_the_body() -> None:
    yielded: list[int] = []

    async def body() -> AsyncIterator[bytes]:
        for index in range(100):
            yielded.append(index)
            yield b"0123456789"

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/small":
            return httpx.Response(200, content=b"abc")
        return httpx.Response(200, content=body())

    async with mock_client(handler) as client:
        fetcher = HttpFetcher(FetchConfig(max_content_length=25), client=client)
        result = await fetcher.fetch("https://a.test/big")
        assert result.content == b"0123456789" * 2 + b"01234"
        assert len(yielded) == 100  # read to the end, as the reference
        assert (await fetcher.fetch("https://a.test/small")).content == b"abc"
        unlimited = HttpFetcher(FetchConfig(max_content_length=0), client=client)
        yielded.clear()
        assert len((await unlimited.fetch("https://a.test/big")).content) == 1000
        exact = HttpFetcher(FetchConfig(max_content_length=3), client=client)
        assert (await exact.fetch("https://a.test/small")).content == b"abc"


async def test_http_fetcher_decodes_charset_from_the_response() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            content="café".encode("latin-1"),
            headers={"Content-Type": "text/html; charset=ISO-8859-1"},
        )

    async with mock_client(handler) as client:
        result = await HttpFetcher(client=client).fetch("https://a.test/")
    assert result.text == "café"
    assert result.content_type == "text/html; charset=ISO-8859-1"


async def test_http_fetcher_retries_transport_errors(autojump_clock: trio.abc.Clock) -> None:
    attempts: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(trio.current_time())
        if len(attempts) == 1:
            raise httpx.ConnectError(
                "all attempts to connect to a.test:443 failed", request=request
            )
        if len(attempts) == 2:
            raise httpx.ReadTimeout("", request=request)
        return httpx.Response(200, text="finally")

    hooks = Hooks()
    async with mock_client(handler) as client:
        fetcher = HttpFetcher(FetchConfig(retry_delay=2.0), client=client, **hooks.kwargs())
        result = await fetcher.fetch("https://a.test/")
    assert attempts == [0.0, 2.0, 6.0]
    assert (result.text, result.retry_count, result.duration_ms) == ("finally", 2, 6000.0)
    assert hooks.calls[-1] == (
        "complete",
        ("https://a.test/", result.request_id, 200, 6000.0, 7, False),
    )


async def test_http_fetcher_timeout_runs_out(autojump_clock: trio.abc.Clock) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("", request=request)

    async with mock_client(handler) as client:
        fetcher = HttpFetcher(FetchConfig(max_retries=2, retry_delay=1), client=client)
        result = await fetcher.fetch("https://a.test/")
    assert (result.error, result.retry_count, trio.current_time()) == ("ReadTimeout", 3, 3.0)


# --- HttpFetcher over a real loopback server -----------------------------------------


async def _http_responder(stream: trio.SocketStream) -> None:
    """A tiny HTTP/1.1 server: answers each request by path, then closes the connection."""
    request = b""
    while b"\r\n\r\n" not in request:
        chunk = await stream.receive_some(4096)
        if not chunk:
            return
        request += chunk
    path = request.split(b" ", 2)[1]
    user_agent = next(
        (
            line.split(b":", 1)[1].strip()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"user-agent:")
        ),
        b"",
    )
    if path == b"/moved":
        head, body = b"HTTP/1.1 302 Found\r\nLocation: /page\r\n", b""
    elif path == b"/page":
        body = "<html><body>ünïcode ".encode() + user_agent + b"</body></html>"
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
    else:
        head, body = b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n", b"missing"
    await stream.send_all(
        head + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body
    )
    await stream.aclose()


async def test_http_fetcher_against_a_loopback_server() -> None:
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, _http_responder, 0, host="127.0.0.1")
        )
        port = listeners[0].socket.getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        async with HttpFetcher(FetchConfig(user_agent="LoopBot/1")) as fetcher:
            page = await fetcher.fetch(f"{base}/moved")
            missing = await fetcher.fetch(f"{base}/nothing")
            many = await fetcher.fetch_many([f"{base}/page", f"{base}/nothing"], concurrency=2)
        nursery.cancel_scope.cancel()
    assert (page.status_code, page.final_url, page.is_html) == (200, f"{base}/page", True)
    assert page.text == "<html><body>ünïcode LoopBot/1</body></html>"
    assert (missing.status_code, missing.text, missing.success) == (404, "missing", False)
    assert [r.status_code for r in many] == [200, 404]


_MESSAGES = st.sampled_from(
    ["connection reset", "Timeout!", "HTTP 502", "bad input", "refused", "other", "429 slow"]
)


@given(script=st.lists(_MESSAGES, max_size=5), max_retries=st.integers(0, 4))
def test_retry_loop_matches_reference(
    ref_fetcher: ModuleType, script: list[str], max_retries: int
) -> None:
    """The same scripted failures give the same error, retry count and attempts."""

    def make(base: type) -> type:
        class Scripted(base):  # type: ignore[misc]
            def __init__(self, config: Any) -> None:
                super().__init__(config)
                self.left = list(script)
                self.attempts = 0

            async def _do_fetch(self, url: str, **_: Any) -> Any:
                self.attempts += 1
                if self.left:
                    raise RuntimeError(self.left.pop(0))
                return self.result_type(url=url, status_code=200, content=b"ok")

        Scripted.result_type = FetchResult if base is Fetcher else ref_fetcher.FetchResult
        return Scripted

    def outcome(fetcher: Any, result: Any) -> tuple[Any, ...]:
        return (result.error, result.retry_count, result.success, fetcher.attempts)

    theirs_fetcher = make(ref_fetcher.Fetcher)(
        ref_fetcher.FetchConfig(max_retries=max_retries, retry_delay=0)
    )
    theirs = outcome(theirs_fetcher, asyncio.run(theirs_fetcher.fetch("u")))
    ours_fetcher = make(Fetcher)(FetchConfig(max_retries=max_retries, retry_delay=0))
    ours = outcome(ours_fetcher, trio.run(ours_fetcher.fetch, "u"))
    assert ours == theirs
