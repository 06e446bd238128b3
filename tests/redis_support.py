"""Redis for the tests: the shared server, throwaway ones that can be stopped mid-run, a proxy.

Tests that need Redis (``SWITCHYARD_TEST_REDIS_URL``, default the local server)
or the ``redis-server`` binary skip when it is absent, except under ``CI=true``,
where a missing dependency fails the run instead of silently thinning it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from redis.asyncio import Redis

from switchyard.budgets import RedisBudgetStore

REDIS_URL = os.environ.get("SWITCHYARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: required)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
async def redis_available() -> None:
    probe = Redis.from_url(REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        await probe.ping()
    except Exception as exc:
        unavailable(f"no Redis at {REDIS_URL} ({type(exc).__name__})")
    finally:
        await probe.aclose()


@pytest.fixture
async def redis(redis_available: None) -> AsyncIterator[Redis]:
    """A redis-py client on the shared Redis, for tests to look at what the gateway wrote."""
    client = Redis.from_url(REDIS_URL, decode_responses=True)
    yield client
    await client.aclose()


class RedisServer:
    """A throwaway ``redis-server`` on a fixed port that can be stopped and started again."""

    def __init__(self, directory: Path, *options: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.directory = directory
        self.options = options
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory), *self.options],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.01)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(5)
            self.process = None


def throwaway_redis(
    directory: Path, *options: str, port: int | None = None
) -> Iterator[RedisServer]:
    """A started ``RedisServer`` (``options`` go to ``redis-server``), stopped afterwards."""
    if shutil.which("redis-server") is None:
        unavailable("no redis-server binary to start a throwaway Redis")
    server = RedisServer(directory, *options, port=port)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    yield from throwaway_redis(tmp_path)


class StallingProxy:
    """A TCP proxy in front of a Redis that can withhold replies, per connection.

    Commands always reach Redis (it runs them); while a connection is
    stalled, what Redis answers on it is swallowed, as if the reply were lost
    on the way. Connections are numbered from 1 in the order they are
    accepted. Setting ``target_port`` sends the connections accepted from then
    on to another server, as a virtual IP does after a failover.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.connections = 0
        self.stalled: set[int] = set()
        self.stall_all = False
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"redis://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/0"

    async def __aenter__(self) -> StallingProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for writer in self._writers:
            writer.close()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        redis_r, redis_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers += [client_w, redis_w]

        async def pipe(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter, replies: bool
        ) -> None:
            try:
                while data := await reader.read(65536):
                    if replies and (self.stall_all or number in self.stalled):
                        continue  # the reply is lost
                    writer.write(data)
                    await writer.drain()
            except OSError:
                pass
            finally:
                writer.close()

        await asyncio.gather(pipe(client_r, redis_w, False), pipe(redis_r, client_w, True))


@pytest.fixture
async def prefix(redis: Redis) -> AsyncIterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    name = f"switchyard:test:{uuid.uuid4().hex}"
    yield name
    async for key in redis.scan_iter(match="{" + name + "*"):
        await redis.delete(key)


@pytest.fixture
async def store(prefix: str) -> AsyncIterator[RedisBudgetStore]:
    """A Redis budget store on the shared Redis, under ``prefix``."""
    redis_store = RedisBudgetStore.from_url(REDIS_URL, key_prefix=prefix)
    yield redis_store
    await redis_store.aclose()
