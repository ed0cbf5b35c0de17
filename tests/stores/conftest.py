"""Fixtures of the store tests: one URL per backend, and the Redis servers for the session.

The Redis server: ``STAGEFLOW_TEST_REDIS_URL`` when set (.ci/run starts one; ``off``
skips the Redis tests, as CI's later runs do);
else a ``redis-server`` started here on a free loopback port for the session;
else the Redis tests skip, saying that no ``redis-server`` binary exists.

A Redis Cluster (three primaries, made with ``redis-cli --cluster create``) and a
Sentinel watching the Redis server are started here for the session, from the same
binaries, unless ``STAGEFLOW_TEST_REDIS_URL`` is ``off``. The contract tests run on
both through their ``redis+cluster://`` and ``redis+sentinel://`` URLs.

A test that stops, pauses or restarts its server takes ``own_redis``: a server of its own.
"""

from __future__ import annotations

import gc
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

BACKENDS = ("memory", "sqlite", "redis", "redis-cluster", "redis-sentinel")
REDIS_BACKENDS = ("redis", "redis-cluster", "redis-sentinel")


def _command(url: str, *args: str) -> bytes:
    """Send one command to the Redis server at ``url`` (RESP over a plain socket)."""
    host, port = url.removeprefix("redis://").split("/")[0].split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        parts = [f"*{len(args)}\r\n".encode()]
        for arg in args:
            parts.append(f"${len(arg)}\r\n{arg}\r\n".encode())
        conn.sendall(b"".join(parts))
        return conn.recv(65536)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _redis_binary(name: str) -> str:
    if os.environ.get("STAGEFLOW_TEST_REDIS_URL") == "off":
        pytest.skip("STAGEFLOW_TEST_REDIS_URL=off: the Redis tests ran in CI's first run")
    binary = shutil.which(name)
    if binary is None:
        pytest.skip(f"no {name} binary on PATH (apt-get install redis-server)")
    return binary


def _free_cluster_port() -> int:
    """A free loopback port whose cluster bus port (10,000 above it) is free too."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20_000, 50_000)
        try:
            for candidate in (port, port + 10_000):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    raise RuntimeError("no free pair of ports for a Redis Cluster node")


def _replies(url: str, expected: bytes, *command: str) -> bool:
    """Whether the server at ``url`` answers ``command`` with a reply holding ``expected``."""
    return expected in _command(url, *command)


def _wait_until(check: Callable[[], bool], what: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if check():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come up within {seconds} s")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """The URL of a Redis server (database 0) on the loopback interface."""
    url = os.environ.get("STAGEFLOW_TEST_REDIS_URL")
    if url == "off":
        pytest.skip("STAGEFLOW_TEST_REDIS_URL=off: the Redis tests ran in CI's first run")
    if url:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no redis-server binary on PATH (apt-get install redis-server)")
    port = _free_port()
    process = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                if _command(url, "PING").startswith(b"+PONG"):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        yield url
    finally:
        process.terminate()
        process.wait(10)


class OwnRedis:
    """A ``redis-server`` of one test's own, which the test may stop, pause and restart."""

    def __init__(self, binary: str, home: Path) -> None:
        self.binary = binary
        self.home = home
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server on its port, and wait until it answers."""
        assert self.process is None
        self.process = subprocess.Popen(
            [
                self.binary,
                *("--bind", "127.0.0.1", "--port", str(self.port)),
                *("--save", "", "--appendonly", "no"),
            ],
            cwd=self.home,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_until(partial(_replies, self.url, b"+PONG", "PING"), self.url)

    def stop(self) -> None:
        """Stop the server (SIGTERM, after a SIGCONT in case it is paused)."""
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def pause(self) -> None:
        """Stop the server's process (SIGSTOP): connected, it answers nothing."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    """A Redis server started for this test only (on a free loopback port), stopped after it."""
    server = OwnRedis(_redis_binary("redis-server"), tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        gc.collect()  # as in redis_url: coredis's unclosed streams, in the test that made them


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """The ``redis://`` URLs of the three primaries of a Redis Cluster, for the session."""
    server = _redis_binary("redis-server")
    cli = _redis_binary("redis-cli")
    home = tmp_path_factory.mktemp("redis-cluster")
    ports = [_free_cluster_port() for _ in range(3)]
    processes = []
    try:
        for port in ports:
            node = home / str(port)
            node.mkdir()
            processes.append(
                subprocess.Popen(
                    [
                        server,
                        "--bind",
                        "127.0.0.1",
                        "--port",
                        str(port),
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        str(node / "nodes.conf"),
                    ],
                    cwd=node,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        urls = [f"redis://127.0.0.1:{port}/0" for port in ports]
        for url in urls:
            _wait_until(partial(_replies, url, b"+PONG", "PING"), url)
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{port}" for port in ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=30,
        )
        for url in urls:
            _wait_until(
                partial(_replies, url, b"cluster_state:ok", "CLUSTER", "INFO"),
                f"the cluster node at {url}",
            )
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(10)


@pytest.fixture(scope="session")
def redis_sentinel(redis_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A ``redis+sentinel://`` URL whose sentinel names the Redis server ``stageflow``."""
    server = _redis_binary("redis-server")
    primary = redis_server.removeprefix("redis://").split("/")[0]
    host, port = primary.split(":")
    home = tmp_path_factory.mktemp("redis-sentinel")
    sentinel_port = _free_port()
    config = home / "sentinel.conf"  # the sentinel rewrites it: a file of its own
    config.write_text(
        f"bind 127.0.0.1\nport {sentinel_port}\n"
        f"sentinel monitor stageflow {host} {port} 1\n"
        "sentinel down-after-milliseconds stageflow 60000\n"
    )
    process = subprocess.Popen(
        [server, str(config), "--sentinel"],
        cwd=home,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    sentinel = f"redis://127.0.0.1:{sentinel_port}"
    try:
        _wait_until(
            partial(
                _replies,
                sentinel,
                port.encode(),
                "SENTINEL",
                "GET-MASTER-ADDR-BY-NAME",
                "stageflow",
            ),
            "the sentinel",
        )
        yield f"redis+sentinel://127.0.0.1:{sentinel_port}/stageflow/0"
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def redis_url(redis_server: str) -> Iterator[str]:
    """The Redis server, emptied for this test."""
    assert _command(redis_server, "FLUSHDB").startswith(b"+OK")
    yield redis_server
    # coredis 6.9 can leave a connection's anyio memory streams unclosed (seen once in a
    # loaded full run, not reproduced alone); collect them here, in the Redis test that
    # made them, where the ResourceWarnings they raise are ignored (see below).
    gc.collect()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        fixtures = set(getattr(item, "fixturenames", ()))
        uses_redis = bool(
            fixtures & {"redis_url", "redis_cluster", "redis_sentinel", "own_redis"}
        ) or (callspec is not None and callspec.params.get("backend") in REDIS_BACKENDS)
        if uses_redis and item.path.parent == Path(__file__).parent:
            item.add_marker(
                pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
            )


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The URL of an empty store of the backend under test."""
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{tmp_path}/stores.db"
    if backend == "redis-cluster":
        nodes: list[str] = request.getfixturevalue("redis_cluster")
        for node in nodes:  # each primary holds its share of the slots
            assert _command(node, "FLUSHALL").startswith(b"+OK")
        hosts = ",".join(node.removeprefix("redis://").split("/")[0] for node in nodes)
        return f"redis+cluster://{hosts}"
    url: str = request.getfixturevalue("redis_url")  # empties the server
    if backend == "redis-sentinel":
        sentinel: str = request.getfixturevalue("redis_sentinel")
        return sentinel
    return url
