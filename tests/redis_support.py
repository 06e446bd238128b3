"""Redis for the tests: the shared server, and throwaway ones that can be stopped mid-run.

Tests that need Redis (``SWITCHYARD_TEST_REDIS_URL``, default the local server)
or the ``redis-server`` binary skip when it is absent, except under ``CI=true``,
where a missing dependency fails the run instead of silently thinning it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from redis.asyncio import Redis

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
