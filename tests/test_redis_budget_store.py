"""The Redis budget store on redis-py: batching, refunds, error replies, lost replies, URLs.

The shared Redis (``SWITCHYARD_TEST_REDIS_URL``) serves the plain cases; throwaway
``redis-server`` processes serve passwords, unix sockets, TLS, ``SCRIPT FLUSH`` and
replies withheld by a proxy.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from redis.asyncio import Redis

from switchyard.budgets import (
    BucketPolicy,
    BudgetBackendRefused,
    BudgetBackendUnavailable,
    RedisBudgetStore,
)
from switchyard.budgets.redis_store import TAKE
from tests.redis_support import (
    REDIS_URL,
    RedisServer,
    StallingProxy,
    free_port,
    throwaway_redis,
)

HUNDRED = BucketPolicy(capacity=100, refill_per_second=1e-6)


async def eventually(condition: Callable[[], bool | Awaitable[bool]], timeout: float = 5.0) -> None:
    """Poll ``condition`` until it holds, for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        holds = condition()
        if not isinstance(holds, bool):
            holds = await holds
        if holds:
            return
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def commandstats(server: RedisServer) -> dict[str, int]:
    """How many times each command ran on ``server`` since the last ``CONFIG RESETSTAT``."""
    inspector = Redis(port=server.port)
    try:
        stats = await inspector.info("commandstats")
    finally:
        await inspector.aclose()
    return {name.removeprefix("cmdstat_"): value["calls"] for name, value in stats.items()}


# Batching


async def test_checks_that_arrive_together_share_one_round_trip(
    store: RedisBudgetStore,
) -> None:
    await store.take("warm-up", 1, HUNDRED)
    before = store.round_trips
    decisions = await asyncio.gather(*(store.take(f"c{i % 7}", 1, HUNDRED) for i in range(200)))
    assert store.round_trips - before == 1
    assert all(decision.allowed for decision in decisions)
    by_client = [d.remaining for d in decisions[:7]]  # each client's first check
    assert by_client == [99.0] * 7


async def test_each_check_is_one_evalsha_and_a_flushed_script_is_sent_again(
    redis_server: RedisServer,
) -> None:
    store = RedisBudgetStore.from_url(redis_server.url)
    inspector = Redis(port=redis_server.port)
    try:
        await store.take("c", 1, HUNDRED)  # NOSCRIPT, then EVAL: the script is now cached
        await store.refund("c", 1, HUNDRED)
        await inspector.config_resetstat()
        for _ in range(5):
            await store.take("c", 1, HUNDRED)
        await store.refund("c", 1, HUNDRED)
        stats = await commandstats(redis_server)
        assert stats.get("evalsha") == 6
        assert "eval" not in stats and "script|load" not in stats
        await inspector.script_flush()
        assert (await store.take("c", 1, HUNDRED)).remaining == pytest.approx(95, abs=0.01)
        assert await inspector.script_exists(TAKE.sha) == [True]
    finally:
        await store.aclose()
        await inspector.aclose()


async def test_the_pool_stays_small_and_its_connections_are_named(
    redis_server: RedisServer,
) -> None:
    store = RedisBudgetStore.from_url(redis_server.url)
    inspector = Redis(port=redis_server.port, decode_responses=True)
    try:

        async def burst(count: int) -> None:
            await asyncio.gather(*(store.take(f"c{i}", 1, HUNDRED) for i in range(count)))

        await asyncio.gather(*(burst(n) for n in range(1, 50)))  # 49 ticks' worth at once
        names = [client["name"] for client in await inspector.client_list()]
        assert 1 <= names.count("switchyard-budgets") <= 4
        assert len(names) == names.count("switchyard-budgets") + 1  # + the inspector
    finally:
        await store.aclose()
        await inspector.aclose()


# Refunds


async def test_a_refund_lands_in_redis_where_another_replica_sees_it(prefix: str) -> None:
    one, two = (RedisBudgetStore.from_url(REDIS_URL, key_prefix=prefix) for _ in range(2))
    try:
        await one.take("c", 60, HUNDRED)
        one.credit("c", 40)  # no further check from this replica

        async def seen() -> bool:
            return (await two.peek("c", HUNDRED)).remaining == pytest.approx(80, abs=0.01)

        await eventually(seen)
        assert (await two.take("c", 1, HUNDRED)).remaining == pytest.approx(79, abs=0.01)
    finally:
        await one.aclose()
        await two.aclose()


async def test_a_refund_travels_inside_the_clients_own_check_in_the_same_tick(
    store: RedisBudgetStore,
) -> None:
    await store.take("c", 50, HUNDRED)
    before = store.round_trips
    store.credit("c", 30)
    store.credit("other", 5)  # no bucket: full, the refund changes nothing
    decision = await store.take("c", 1, HUNDRED)
    assert store.round_trips - before == 1
    assert decision.remaining == pytest.approx(79, abs=0.01)
    assert (await store.peek("other", HUNDRED)).remaining == 100.0


async def test_refunds_still_waiting_are_sent_when_the_store_closes(prefix: str) -> None:
    store = RedisBudgetStore.from_url(REDIS_URL, key_prefix=prefix)
    await store.take("c", 50, HUNDRED)
    store.credit("c", 20)
    await store.aclose()
    other = RedisBudgetStore.from_url(REDIS_URL, key_prefix=prefix)
    try:
        assert (await other.peek("c", HUNDRED)).remaining == pytest.approx(70, abs=0.01)
    finally:
        await other.aclose()


async def test_a_refund_whose_reply_is_lost_is_never_applied_twice(
    redis_server: RedisServer,
) -> None:
    async with StallingProxy(redis_server.port) as proxy:
        store = RedisBudgetStore.from_url(proxy.url, timeout=0.3)
        try:
            await store.take("c", 50, HUNDRED)
            proxy.stall_all = True  # Redis runs what it is sent; its replies are lost
            store.credit("c", 40)
            lost = r"no reply from Redis within 0\.3 s"
            with pytest.raises(BudgetBackendUnavailable, match=lost):
                await store.take("c", 1, HUNDRED)  # carries the refund: Redis applied both
            proxy.stall_all = False
            decision = await store.take("c", 1, HUNDRED)
            # 50 - 1 (lost reply) + 40 - 1: a refund sent again would have filled the bucket.
            assert decision.remaining == pytest.approx(88, abs=0.01)
        finally:
            await store.aclose()


# What goes wrong stays where it happened


async def test_an_error_reply_fails_only_its_own_check(
    store: RedisBudgetStore, redis: Redis
) -> None:
    await redis.set(store.key("broken"), "not a bucket")
    results = await asyncio.gather(
        store.take("before", 1, HUNDRED),
        store.take("broken", 1, HUNDRED),
        store.take("after", 1, HUNDRED),
        return_exceptions=True,
    )
    before, broken, after = results
    assert isinstance(broken, BudgetBackendRefused)
    assert "WRONGTYPE" in str(broken)
    assert not isinstance(before, BaseException) and before.remaining == 99.0
    assert not isinstance(after, BaseException) and after.remaining == 99.0


async def test_a_late_reply_fails_its_own_batch_only_and_its_connection_is_replaced(
    redis_server: RedisServer,
) -> None:
    async with StallingProxy(redis_server.port) as proxy:
        store = RedisBudgetStore.from_url(proxy.url, timeout=0.5)
        try:
            await store.take("warm-up", 1, HUNDRED)  # one connection, idle; the script loaded
            proxy.stalled.add(1)  # from now on its replies are lost
            sent = store.round_trips
            stalled = asyncio.create_task(store.take("a", 1, HUNDRED))
            await eventually(lambda: store.round_trips > sent)  # out, on that connection
            answered = await store.take("b", 1, HUNDRED)  # the next batch: a new connection
            assert not stalled.done()  # answered while the stalled batch still waits
            assert answered.allowed and proxy.connections == 2
            with pytest.raises(BudgetBackendUnavailable, match="no reply"):
                await stalled
            # Redis did run the lost check, and it was not sent again; connection 1 still
            # loses every reply, so these answers prove it was dropped, not reused.
            again = await asyncio.gather(*(store.take("a", 1, HUNDRED) for _ in range(3)))
            assert [d.remaining for d in again] == pytest.approx([98, 97, 96], abs=0.01)
        finally:
            await store.aclose()


async def test_a_restarted_redis_is_reconnected_to(redis_server: RedisServer) -> None:
    store = RedisBudgetStore.from_url(redis_server.url, timeout=0.5)
    try:
        assert await store.ping()
        redis_server.stop()
        with pytest.raises(BudgetBackendUnavailable):
            await store.take("c", 1, HUNDRED)
        redis_server.start()
        assert (await store.take("c", 1, HUNDRED)).remaining == 99.0
    finally:
        await store.aclose()


async def test_nobody_listening_fails_fast_with_the_address_but_not_the_password() -> None:
    port = free_port()
    store = RedisBudgetStore.from_url(f"redis://:hunter2@127.0.0.1:{port}/0", timeout=0.5)
    started = time.monotonic()
    with pytest.raises(BudgetBackendUnavailable) as error:
        await store.take("c", 1, HUNDRED)
    assert time.monotonic() - started < 0.5
    assert str(error.value).startswith(f"redis://:***@127.0.0.1:{port}/0: ")
    assert f"127.0.0.1:{port}" in str(error.value).split(": ", 1)[1]
    assert "hunter2" not in str(error.value)
    await store.aclose()


async def test_a_server_that_accepts_but_never_answers_is_given_up_on() -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # says nothing, not even to CLIENT SETNAME

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    store = RedisBudgetStore.from_url(f"redis://127.0.0.1:{port}/0", timeout=0.2)
    try:
        started = time.monotonic()
        results = await asyncio.gather(
            *(store.take("c", 1, HUNDRED) for _ in range(20)), return_exceptions=True
        )
        assert time.monotonic() - started < 2.0  # opening a connection: at most 1 s
        assert all(isinstance(result, BudgetBackendUnavailable) for result in results)
        assert len(accepted) == 1  # the 20 checks were one batch, on one connection
    finally:
        await store.aclose()
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_a_closed_store_refuses_checks(store: RedisBudgetStore) -> None:
    await store.take("c", 1, HUNDRED)
    await store.aclose()
    with pytest.raises(BudgetBackendUnavailable, match="closed"):
        await store.take("c", 1, HUNDRED)


async def test_resp3_replies_are_read_like_resp2(prefix: str) -> None:
    store = RedisBudgetStore.from_url(REDIS_URL + "?protocol=3", key_prefix=prefix)
    policy = BucketPolicy(capacity=2, refill_per_second=1e-6)
    try:
        decisions = [await store.take("c", 1, policy) for _ in range(3)]
        assert [d.allowed for d in decisions] == [True, True, False]
        assert await store.ping()
    finally:
        await store.aclose()


# Where Redis is: passwords, databases, sockets, TLS


@pytest.fixture
def guarded_redis(tmp_path: Path) -> Iterator[RedisServer]:
    yield from throwaway_redis(
        tmp_path, "--requirepass", "s3cret", "--unixsocket", str(tmp_path / "redis.sock")
    )


async def test_a_password_and_database_from_the_url_are_used(
    guarded_redis: RedisServer,
) -> None:
    store = RedisBudgetStore.from_url(
        f"redis://:s3cret@127.0.0.1:{guarded_redis.port}/3", key_prefix="p"
    )
    inspector = Redis(port=guarded_redis.port, password="s3cret", db=3, decode_responses=True)
    try:
        await store.take("c", 1, HUNDRED)
        assert await inspector.keys("*") == ["{p:c}"]
    finally:
        await store.aclose()
        await inspector.aclose()


async def test_a_unix_socket_url_is_used(guarded_redis: RedisServer) -> None:
    store = RedisBudgetStore.from_url(f"unix://:s3cret@{guarded_redis.directory / 'redis.sock'}")
    try:
        assert (await store.take("c", 1, HUNDRED)).remaining == 99.0
    finally:
        await store.aclose()


async def test_a_wrong_password_is_unavailable_and_never_echoed(
    guarded_redis: RedisServer,
) -> None:
    store = RedisBudgetStore.from_url(f"redis://:hunter2@127.0.0.1:{guarded_redis.port}/0")
    try:
        with pytest.raises(BudgetBackendUnavailable) as error:
            await store.take("c", 1, HUNDRED)
        assert "WRONGPASS" in str(error.value) or "invalid" in str(error.value)
        assert "hunter2" not in str(error.value)
    finally:
        await store.aclose()


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
    trusted = RedisBudgetStore.from_url(f"{base}?ssl_ca_certs={tls_redis.directory / 'redis.crt'}")
    untrusted = RedisBudgetStore.from_url(base)
    unverified = RedisBudgetStore.from_url(f"{base}?ssl_cert_reqs=none")
    try:
        assert await trusted.ping()
        with pytest.raises(BudgetBackendUnavailable, match="certificate verify failed"):
            await untrusted.ping()
        assert await unverified.ping()
    finally:
        for store in (trusted, untrusted, unverified):
            await store.aclose()
