"""Budgets on Redis Cluster: a local three-node cluster, started and torn down by the tests.

Three ``redis-server`` processes with ``--cluster-enabled yes`` on free ports,
joined by ``redis-cli --cluster create``. The store reaches them through
redis-py's cluster client (``redis_cluster = true``); buckets are hash-tagged,
so each is one slot, and one batch of checks spans every node. Needs
``redis-server`` and ``redis-cli`` (required under ``CI=true``).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from switchyard.budgets import (
    BucketPolicy,
    BudgetBackendRefused,
    Budgets,
    BudgetSettings,
    RedisBudgetStore,
)
from tests.redis_support import RedisServer, free_port, unavailable

HUNDRED = BucketPolicy(capacity=100, refill_per_second=1e-6)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisServer]]:
    for binary in ("redis-server", "redis-cli"):
        if shutil.which(binary) is None:
            unavailable(f"no {binary} binary to start a Redis Cluster")
    nodes: list[RedisServer] = []
    try:
        for number in range(3):
            directory = tmp_path_factory.mktemp(f"cluster-node-{number}")
            options = ("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
            node = RedisServer(directory, *options, port=_port_with_a_free_bus_port())
            node.start()
            nodes.append(node)
        created = subprocess.run(
            ["redis-cli", "--cluster", "create",
             *(f"127.0.0.1:{node.port}" for node in nodes),
             "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        if created.returncode != 0:
            output = (created.stdout + created.stderr)[-300:]
            unavailable(f"redis-cli could not create a cluster: {output}")
        deadline = time.monotonic() + 20
        while not all(_cluster_ok(node) for node in nodes):
            assert time.monotonic() < deadline, "the cluster did not become ready"
            time.sleep(0.05)
        yield nodes
    finally:
        for node in nodes:
            node.stop()


def _port_with_a_free_bus_port() -> int:
    """A free port whose cluster bus port (the port + 10000) is free and valid too."""
    for _ in range(100):
        port = free_port()
        if port + 10000 <= 65535:
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port pair for a cluster node")


def _cluster_ok(node: RedisServer) -> bool:
    info = subprocess.run(
        ["redis-cli", "-p", str(node.port), "cluster", "info"],
        capture_output=True, text=True, timeout=5, check=False,
    ).stdout  # fmt: skip
    return "cluster_state:ok" in info


@pytest.fixture
def prefix() -> str:
    return f"switchyard:test:{uuid.uuid4().hex}"


@pytest.fixture
async def store(cluster: list[RedisServer], prefix: str) -> AsyncIterator[RedisBudgetStore]:
    # A generous timeout: these tests are about exact counts, on a machine that may be busy.
    redis_store = RedisBudgetStore.from_url(
        cluster[0].url, key_prefix=prefix, cluster=True, timeout=2.0
    )
    yield redis_store
    await redis_store.aclose()


@pytest.fixture
async def inspector(cluster: list[RedisServer]) -> AsyncIterator[RedisCluster]:
    client = RedisCluster(host="127.0.0.1", port=cluster[1].port, decode_responses=True)
    await client.initialize()
    yield client
    await client.aclose()


async def test_200_concurrent_checks_against_100_points_admit_exactly_100(
    store: RedisBudgetStore,
) -> None:
    decisions = await asyncio.gather(*(store.take("c", 1, HUNDRED) for _ in range(200)))
    assert sum(d.allowed for d in decisions) == 100
    assert {d.reason for d in decisions if not d.allowed} == {"exhausted"}


async def test_one_batch_spans_every_node_and_each_client_gets_exactly_its_bucket(
    store: RedisBudgetStore, inspector: RedisCluster
) -> None:
    six = BucketPolicy(capacity=6, refill_per_second=1e-6)
    clients = [f"client-{i}" for i in range(60)]
    await asyncio.gather(*(store.take(client, 0, six) for client in clients))  # load scripts
    before = store.round_trips
    decisions = await asyncio.gather(
        *(store.take(client, 1, six) for client in clients for _ in range(10))
    )
    assert store.round_trips - before == 1
    admitted: dict[str, int] = {}
    for index, decision in enumerate(decisions):
        client = clients[index // 10]
        admitted[client] = admitted.get(client, 0) + decision.allowed
    assert admitted == dict.fromkeys(clients, 6)
    owners = {str(inspector.get_node_from_key(store.key(client))) for client in clients}
    assert len(owners) == 3


async def test_refunds_land_on_the_node_that_holds_the_bucket(
    cluster: list[RedisServer], store: RedisBudgetStore, prefix: str
) -> None:
    clients = [f"refunded-{i}" for i in range(30)]
    for client in clients:
        await store.take(client, 50, HUNDRED)
        store.credit(client, 20)
    other = RedisBudgetStore.from_url(cluster[2].url, key_prefix=prefix, cluster=True, timeout=2.0)
    try:
        deadline = time.monotonic() + 5
        while True:
            states = await asyncio.gather(*(other.peek(c, HUNDRED) for c in clients))
            if all(s.remaining == pytest.approx(70, abs=0.01) for s in states):
                break
            assert time.monotonic() < deadline, [s.remaining for s in states]
            await asyncio.sleep(0.01)
    finally:
        await other.aclose()


async def test_a_script_flushed_on_every_node_is_sent_again(
    cluster: list[RedisServer], store: RedisBudgetStore
) -> None:
    clients = [f"flushed-{i}" for i in range(20)]
    await asyncio.gather(*(store.take(client, 1, HUNDRED) for client in clients))
    for node in cluster:
        admin = Redis(port=node.port)
        await admin.script_flush()
        await admin.aclose()
    decisions = await asyncio.gather(*(store.take(client, 1, HUNDRED) for client in clients))
    assert [d.remaining for d in decisions] == pytest.approx([98] * 20, abs=0.01)


async def test_budgets_on_a_cluster_from_settings(cluster: list[RedisServer]) -> None:
    settings: dict[str, Any] = {
        "enabled": True,
        "backend": "redis",
        "redis_url": cluster[1].url,
        "redis_cluster": True,
        "key_prefix": f"switchyard:test:{uuid.uuid4().hex}",
        "tiers": {"tiny": {"capacity": 3, "refill_per_second": 1e-6}},
        "default_tier": "tiny",
    }
    budgets = Budgets.from_settings(BudgetSettings.model_validate(settings))
    try:
        assert await budgets.ready()
        allowed = [(await budgets.check("c", "tiny", 1)).allowed for _ in range(4)]
        assert allowed == [True, True, True, False]
    finally:
        await budgets.aclose()


def test_a_cluster_url_must_be_tcp_and_database_0() -> None:
    with pytest.raises(ValidationError, match="redis_cluster has only database 0"):
        BudgetSettings(redis_url="redis://127.0.0.1:7000/2", redis_cluster=True)
    with pytest.raises(ValidationError, match=r"redis_cluster needs a redis:// or rediss://"):
        BudgetSettings(redis_url="unix:///run/redis.sock", redis_cluster=True)


async def test_a_cluster_node_used_as_a_standalone_redis_says_what_to_set(
    cluster: list[RedisServer], prefix: str
) -> None:
    store = RedisBudgetStore.from_url(cluster[0].url, key_prefix=prefix)  # no cluster=True
    try:
        results = await asyncio.gather(
            *(store.take(f"c{i}", 1, HUNDRED) for i in range(12)), return_exceptions=True
        )
    finally:
        await store.aclose()
    refused = [r for r in results if isinstance(r, BudgetBackendRefused)]
    assert refused  # the buckets the other two nodes hold
    assert all("MOVED" in str(r) and "set redis_cluster = true" in str(r) for r in refused)
