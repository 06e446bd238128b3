"""RedisLink: one pipelined connection per process, against real Redis servers.

The shared Redis (``SWITCHYARD_TEST_REDIS_URL``) serves the plain cases; throwaway
``redis-server`` processes serve passwords, unix sockets, ``SCRIPT FLUSH`` and restarts.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from redis.asyncio import Redis

from switchyard.redis_link import (
    RedisAddress,
    RedisLink,
    RedisReplyError,
    RedisScript,
    RedisUnavailable,
)
from tests.redis_support import REDIS_URL, RedisServer, free_port, throwaway_redis


@pytest.fixture
async def key(redis: Redis) -> AsyncIterator[str]:
    name = f"switchyard:test:link:{uuid.uuid4().hex}"
    yield name
    await redis.delete(name)


@pytest.fixture
async def link(redis_available: None) -> AsyncIterator[RedisLink]:
    link = RedisLink.from_url(REDIS_URL, client_name=f"link-test-{uuid.uuid4().hex}")
    yield link
    await link.aclose()


async def connections_named(redis: Redis, name: str) -> int:
    return sum(1 for client in await redis.client_list() if client["name"] == name)


def test_an_address_comes_from_the_url_and_never_shows_its_password() -> None:
    address = RedisAddress.from_url("rediss://app:s3cret@cache:6380/2")
    assert (address.host, address.port, address.db, address.tls) == ("cache", 6380, 2, True)
    assert (address.username, address.password) == ("app", "s3cret")
    assert "s3cret" not in str(address) and "s3cret" not in repr(address)
    assert str(address) == "cache:6380/2"
    unix = RedisAddress.from_url("unix:///run/redis.sock?db=3")
    assert (unix.path, unix.db, unix.tls) == ("/run/redis.sock", 3, False)
    assert str(unix) == "unix:/run/redis.sock/3"


async def test_200_concurrent_commands_share_one_connection_and_get_their_own_replies(
    link: RedisLink, redis: Redis, key: str
) -> None:
    replies = await asyncio.gather(*(link.execute("INCR", key) for _ in range(200)))
    assert sorted(replies) == list(range(1, 201))
    echoes = await asyncio.gather(*(link.execute("ECHO", f"n{i}") for i in range(200)))
    assert echoes == [f"n{i}".encode() for i in range(200)]
    assert await connections_named(redis, link.client_name) == 1


async def test_a_caller_that_gives_up_leaves_the_others_their_own_replies(
    link: RedisLink,
) -> None:
    await link.execute("PING")
    tasks = [asyncio.create_task(link.execute("ECHO", f"n{i}")) for i in range(50)]
    await asyncio.sleep(0)  # every command is sent
    for task in tasks[::2]:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(result, asyncio.CancelledError) for result in results[::2])
    assert results[1::2] == [f"n{i}".encode() for i in range(1, 50, 2)]
    assert await link.execute("ECHO", "after") == b"after"


async def test_an_error_reply_fails_only_its_own_command(
    link: RedisLink, redis: Redis, key: str
) -> None:
    await redis.set(key, "not a number")
    replies: list[object] = await asyncio.gather(
        link.execute("ECHO", "before"),
        link.execute("INCR", key),
        link.execute("ECHO", "after"),
        return_exceptions=True,
    )
    before, wrong, after = replies
    assert (before, after) == (b"before", b"after")
    assert isinstance(wrong, RedisReplyError)
    assert "not an integer" in str(wrong)


async def test_a_script_runs_by_its_sha_and_is_sent_again_after_script_flush(
    tmp_path: Path,
) -> None:
    for server in throwaway_redis(tmp_path):
        link = RedisLink.from_url(server.url)
        script = RedisScript(link, "return {KEYS[1], ARGV[1]}")
        try:
            assert await script(["k"], [7]) == [b"k", b"7"]  # NOSCRIPT, then EVAL
            assert await link.execute("SCRIPT", "EXISTS", script.sha) == [1]
            await link.execute("SCRIPT", "FLUSH")
            assert await script(["k"], [8]) == [b"k", b"8"]
            assert await link.execute("SCRIPT", "EXISTS", script.sha) == [1]
        finally:
            await link.aclose()


@pytest.fixture
def guarded_redis(tmp_path: Path) -> Iterator[RedisServer]:
    yield from throwaway_redis(
        tmp_path, "--requirepass", "s3cret", "--unixsocket", str(tmp_path / "redis.sock")
    )


async def test_a_password_and_database_from_the_url_are_used(
    guarded_redis: RedisServer,
) -> None:
    link = RedisLink.from_url(f"redis://:s3cret@127.0.0.1:{guarded_redis.port}/3")
    inspector = Redis(port=guarded_redis.port, password="s3cret", db=3, decode_responses=True)
    try:
        await link.execute("SET", "where", "db3")
        assert await inspector.get("where") == "db3"
    finally:
        await link.aclose()
        await inspector.aclose()


async def test_a_unix_socket_url_is_used(guarded_redis: RedisServer) -> None:
    link = RedisLink.from_url(f"unix://:s3cret@{guarded_redis.directory / 'redis.sock'}")
    try:
        assert await link.execute("PING") == b"PONG"
    finally:
        await link.aclose()


async def test_a_wrong_password_is_unavailable_and_never_echoed(
    guarded_redis: RedisServer,
) -> None:
    link = RedisLink.from_url(f"redis://:hunter2@127.0.0.1:{guarded_redis.port}/0")
    try:
        with pytest.raises(RedisUnavailable) as error:
            await link.execute("PING")
        assert "WRONGPASS" in str(error.value) or "invalid password" in str(error.value)
        assert "hunter2" not in str(error.value)
        assert not await link.ping()
    finally:
        await link.aclose()


async def test_nobody_listening_fails_fast_with_the_address_but_not_the_password() -> None:
    port = free_port()
    link = RedisLink.from_url(f"redis://:hunter2@127.0.0.1:{port}/0", timeout=0.5)
    started = time.monotonic()
    with pytest.raises(RedisUnavailable) as error:
        await link.execute("PING")
    assert time.monotonic() - started < 0.5
    assert str(error.value) == (
        f"cannot connect to Redis at 127.0.0.1:{port}/0: ConnectionRefusedError"
    )
    await link.aclose()


class SilentServer:
    """A TCP server that accepts connections and never says a word."""

    def __init__(self) -> None:
        self.accepted: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> SilentServer:
        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.accepted.append(writer)

        self._server = await asyncio.start_server(accept, "127.0.0.1", 0)
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"redis://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/0"

    async def __aexit__(self, *exc_info: object) -> None:
        for writer in self.accepted:
            writer.close()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


async def test_concurrent_callers_share_one_connection_attempt() -> None:
    async with SilentServer() as server:
        link = RedisLink.from_url(server.url, timeout=0.2)
        try:
            results = await asyncio.gather(
                *(link.execute("PING") for _ in range(20)), return_exceptions=True
            )
            assert all(isinstance(result, RedisUnavailable) for result in results)
            assert len(server.accepted) == 1
        finally:
            await link.aclose()


async def test_closing_the_link_while_it_connects_fails_the_waiting_commands_cleanly() -> None:
    async with SilentServer() as server:
        link = RedisLink.from_url(server.url, timeout=5)
        waiting = [asyncio.create_task(link.execute("PING")) for _ in range(3)]
        await asyncio.sleep(0.05)  # connected, the handshake waits for a reply
        await link.aclose()
        results = await asyncio.gather(*waiting, return_exceptions=True)
        assert [str(result) for result in results] == ["the Redis link was closed"] * 3


async def test_a_redis_that_stops_answering_times_out_and_the_next_command_reconnects(
    redis_available: None,
) -> None:
    """A proxy in front of the real Redis that can stall: the stalled connection is dropped."""
    stalled = asyncio.Event()
    connections = 0
    target = RedisAddress.from_url(REDIS_URL)

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            if stalled.is_set():
                continue  # swallow: Redis never hears of it
            writer.write(data)
            await writer.drain()
        writer.close()

    async def proxy(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        redis_r, redis_w = await asyncio.open_connection(target.host, target.port)
        await asyncio.gather(pipe(client_r, redis_w), pipe(redis_r, client_w))

    server = await asyncio.start_server(proxy, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    link = RedisLink.from_url(f"redis://127.0.0.1:{port}/{target.db}", timeout=0.3)
    try:
        assert await link.execute("PING") == b"PONG"
        stalled.set()
        started = time.monotonic()
        results = await asyncio.gather(
            *(link.execute("PING") for _ in range(3)), return_exceptions=True
        )
        assert 0.25 <= time.monotonic() - started < 1.0
        assert [str(result) for result in results] == ["no reply from Redis within 0.3 s"] * 3
        stalled.clear()
        assert await link.execute("PING") == b"PONG"
        assert connections == 2
    finally:
        await link.aclose()
        server.close()


async def test_a_restarted_redis_is_reconnected_to(redis_server: RedisServer) -> None:
    link = RedisLink.from_url(redis_server.url, timeout=0.5)
    try:
        assert await link.execute("PING") == b"PONG"
        redis_server.stop()
        with pytest.raises(RedisUnavailable):
            await link.execute("PING")
        redis_server.start()
        assert await link.execute("PING") == b"PONG"
    finally:
        await link.aclose()


async def test_commands_beyond_max_pending_are_refused_not_queued(link: RedisLink) -> None:
    await link.execute("PING")
    link.max_pending = 5
    results = await asyncio.gather(
        *(link.execute("ECHO", "x") for _ in range(8)), return_exceptions=True
    )
    refused = [result for result in results if isinstance(result, RedisUnavailable)]
    assert results.count(b"x") == 5
    assert [str(error) for error in refused] == ["5 commands already wait for Redis"] * 3


async def test_a_closed_link_refuses_commands(link: RedisLink) -> None:
    await link.execute("PING")
    await link.aclose()
    with pytest.raises(RedisUnavailable, match="closed"):
        await link.execute("PING")


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that is its own CA, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "switchyard test redis")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "redis.crt", directory / "redis.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis that speaks only TLS, with a certificate no system CA signed."""
    cert, key = self_signed_certificate(tmp_path)
    port = free_port()
    yield from throwaway_redis(
        tmp_path,
        *("--port", "0", "--tls-port", str(port), "--tls-auth-clients", "no"),
        *("--tls-cert-file", str(cert), "--tls-key-file", str(key)),
        *("--tls-ca-cert-file", str(cert)),
        port=port,
    )


async def test_rediss_verifies_the_server_against_the_ca_given_in_the_url(
    tls_redis: RedisServer,
) -> None:
    base = f"rediss://127.0.0.1:{tls_redis.port}/0"
    trusted = RedisLink.from_url(f"{base}?ssl_ca_certs={tls_redis.directory / 'redis.crt'}")
    untrusted = RedisLink.from_url(base)
    unverified = RedisLink.from_url(f"{base}?ssl_cert_reqs=none")
    try:
        assert await trusted.execute("PING") == b"PONG"
        with pytest.raises(RedisUnavailable, match="SSLCertVerificationError"):
            await untrusted.execute("PING")
        assert await unverified.execute("PING") == b"PONG"
    finally:
        for link in (trusted, untrusted, unverified):
            await link.aclose()
