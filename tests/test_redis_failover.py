"""A failover behind the budget store's address: READONLY drops the connection, not the budgets.

Two throwaway ``redis-server`` processes on loopback, A and B. B replicates A;
the store talks to A. Then A is demoted (B ``REPLICAOF NO ONE``, A ``REPLICAOF``
B), as a failover leaves the old primary, and later promoted again, as a
DNS name or virtual IP that follows the new primary would make the store's
address writable again. Needs the ``redis-server`` binary (required under ``CI=true``).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from switchyard.budgets import Budgets, BudgetSettings
from tests.redis_support import RedisServer, StallingProxy, unavailable

TINY = {"tiny": {"capacity": 3, "refill_per_second": 1e-6}}


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[RedisServer, RedisServer]]:
    if shutil.which("redis-server") is None:
        unavailable("no redis-server binary to start a primary and a replica")
    started: list[RedisServer] = []
    try:
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            server = RedisServer(tmp_path / name, "--repl-diskless-sync-delay", "0")
            server.start()
            started.append(server)
        yield started[0], started[1]
    finally:
        for server in started:
            server.stop()


async def eventually(condition: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def synced(replica: Redis) -> Callable[[], Awaitable[bool]]:
    """Whether ``replica`` has finished copying its primary's data."""

    async def check() -> bool:
        info: dict[str, Any] = await replica.info("replication")
        return info.get("master_link_status") == "up" and not info.get("master_sync_in_progress")

    return check


async def connections_received(server: Redis) -> int:
    stats: dict[str, Any] = await server.info("stats")
    return int(stats["total_connections_received"])


@pytest.mark.parametrize("failure_mode", ["open", "closed"])
async def test_readonly_after_a_failover_reconnects_and_budgets_resume_without_waiting(
    servers: tuple[RedisServer, RedisServer],
    failure_mode: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, b = servers
    admin_a, admin_b = Redis(port=a.port), Redis(port=b.port)
    budgets = Budgets.from_settings(
        BudgetSettings.model_validate(
            {
                "enabled": True,
                "backend": "redis",
                "redis_url": a.url,
                "failure_mode": failure_mode,
                "recheck_interval": 3600,  # an outage would keep Redis out of it for an hour
                "tiers": TINY,
                "default_tier": "tiny",
            }
        )
    )
    try:
        await admin_b.replicaof("127.0.0.1", a.port)
        await eventually(synced(admin_b))
        assert [(await budgets.check("c", "tiny", 1)).allowed for _ in range(2)] == [True, True]

        async def bucket_on_b() -> bool:
            return await admin_b.exists("{switchyard:budget:c}") == 1

        await eventually(bucket_on_b)

        # The failover: B is the primary now, A its read-only replica.
        await admin_b.replicaof("NO", "ONE")
        await admin_a.replicaof("127.0.0.1", b.port)
        await eventually(synced(admin_a))
        before = await connections_received(admin_a)
        with caplog.at_level(logging.INFO, logger="switchyard.budgets"):
            during = [await budgets.check("c", "tiny", 1) for _ in range(3)]
            ready = await budgets.ready()

            # A is promoted again: the store's address takes writes once more.
            await admin_a.replicaof("NO", "ONE")
            after = [await budgets.check("c", "tiny", 1) for _ in range(2)]

        assert [d.allowed for d in during] == [failure_mode == "open"] * 3
        assert {(d.degraded, d.reason) for d in during} == {(True, "backend_unavailable")}
        assert ready is False
        # Each check (and the readiness probe) found its connection read-only, dropped it
        # and tried once more on a fresh one.
        assert await connections_received(admin_a) - before == len(during) + 1
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert "READONLY You can't write against a read only replica" in warnings[0]
        verb = "admitted" if failure_mode == "open" else "rejected"
        assert warnings[0].endswith(
            f"failing {failure_mode}: requests are {verb} without a budget check"
        )
        # No recheck_interval wait: the first check after the promotion reached Redis,
        # and the bucket kept what was spent before the failover (1 point left).
        assert [(d.allowed, d.degraded) for d in after] == [(True, False), (False, False)]
        assert after[1].reason == "exhausted"
        assert budgets.healthy
        assert any("reachable again" in r.getMessage() for r in caplog.records)
    finally:
        await budgets.aclose()
        await admin_a.aclose()
        await admin_b.aclose()


async def test_behind_an_address_that_follows_the_primary_a_failover_costs_no_check(
    servers: tuple[RedisServer, RedisServer], caplog: pytest.LogCaptureFixture
) -> None:
    """The proxy plays the virtual IP: new connections reach whichever server is primary."""
    a, b = servers
    admin_a, admin_b = Redis(port=a.port), Redis(port=b.port)
    async with StallingProxy(a.port) as address:
        budgets = Budgets.from_settings(
            BudgetSettings.model_validate(
                {"enabled": True, "backend": "redis", "redis_url": address.url,
                 "recheck_interval": 3600, "tiers": TINY, "default_tier": "tiny"}
            )
        )  # fmt: skip
        try:
            await admin_b.replicaof("127.0.0.1", a.port)
            await eventually(synced(admin_b))
            assert [(await budgets.check("c", "tiny", 1)).allowed for _ in range(2)] == [True] * 2

            async def bucket_on_b() -> bool:
                return await admin_b.exists("{switchyard:budget:c}") == 1

            await eventually(bucket_on_b)
            await admin_b.replicaof("NO", "ONE")
            await admin_a.replicaof("127.0.0.1", b.port)
            address.target_port = b.port
            with caplog.at_level(logging.WARNING, logger="switchyard.budgets"):
                after = [await budgets.check("c", "tiny", 1) for _ in range(2)]
            # READONLY from A on the open connection, then the same check on a fresh one: B.
            assert [(d.allowed, d.degraded) for d in after] == [(True, False), (False, False)]
            assert caplog.records == []
            assert budgets.healthy
        finally:
            await budgets.aclose()
            await admin_a.aclose()
            await admin_b.aclose()
