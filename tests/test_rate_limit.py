"""What a query costs, charged to the caller's budget: limits, 429s, refunds, Redis replicas."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.fanout import DEEP_QUERY
from services.launcher import DemoPlatform, find_free_ports
from switchyard.config import validate_config
from tests.conftest import Backends, gateway_settings, open_gateway, query
from tests.redis_support import REDIS_URL, RedisServer

ONE_POINT = '{ user(id: "1") { name } }'  # User 1 + name 0
NEGLIGIBLE = 1e-6
ANONYMOUS: dict[str, str] = {}


def limited(
    addresses: Mapping[str, list[str]],
    *,
    capacity: int = 100,
    refill: float = NEGLIGIBLE,
    mode: str = "enforce",
    max_cost: int = 1000,
    **budgets: Any,
) -> dict[str, Any]:
    return gateway_settings(
        addresses,
        cost={"mode": mode, "max_cost": max_cost},
        budgets={
            "enabled": True,
            "key_prefix": f"switchyard:test:{uuid.uuid4().hex}",
            "tiers": {"anonymous": {"capacity": capacity, "refill_per_second": refill}},
            **budgets,
        },
    )


@asynccontextmanager
async def gateway_with(settings: dict[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    async with open_gateway(validate_config(settings)) as client:
        yield client


async def test_disabled_budgets_charge_nothing_and_touch_no_store(platform: DemoPlatform) -> None:
    settings = limited(
        platform.addresses, enabled=False, backend="redis", redis_url="redis://127.0.0.1:1/0"
    )
    async with gateway_with(settings) as client:
        responses = [await query(client, ONE_POINT, headers=ANONYMOUS) for _ in range(3)]
        ready = await client.get("/readyz")
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert "ratelimit" not in responses[0].headers
    assert "throttleStatus" not in responses[0].json()["extensions"]["cost"]
    assert "budgets" not in ready.json()


async def test_every_response_carries_the_cost_and_the_bucket(platform: DemoPlatform) -> None:
    async with gateway_with(limited(platform.addresses)) as client:
        response = await query(client, ONE_POINT, headers=ANONYMOUS)
    assert response.status_code == 200
    assert response.json()["extensions"]["cost"] == {
        "requestedQueryCost": 1,
        "actualQueryCost": 1,
        "throttleStatus": {
            "maximumAvailable": 100.0,
            "currentlyAvailable": 99,
            "restoreRate": 1e-6,
        },
    }
    assert response.headers["ratelimit-policy"] == '"cost";q=100;w=100000000'
    assert response.headers["ratelimit"].startswith('"cost";r=99;t=')


async def test_an_operation_above_the_maximum_is_refused_before_any_call(
    platform: DemoPlatform, backends: Backends
) -> None:
    async with gateway_with(limited(platform.addresses, max_cost=1000)) as client:
        response = await query(client, DEEP_QUERY, {"n": 50})
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["message"] == "Query cost 2152 exceeds the maximum of 1000."
    assert error["extensions"]["code"] == "COST_LIMIT_EXCEEDED"
    assert (error["extensions"]["estimatedCost"], error["extensions"]["maximumCost"]) == (
        2152,
        1000,
    )
    assert await backends.call_counts() == {}


async def test_measure_mode_reports_without_refusing(platform: DemoPlatform) -> None:
    settings = limited(platform.addresses, mode="measure", max_cost=10, capacity=10_000)
    async with gateway_with(settings) as client:
        response = await query(client, DEEP_QUERY, {"n": 50})
    body = response.json()
    assert response.status_code == 200
    assert "errors" not in body
    cost = body["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 2152
    assert 0 < cost["actualQueryCost"] < cost["requestedQueryCost"]


async def test_an_empty_bucket_answers_429_with_retry_after_and_calls_nothing(
    platform: DemoPlatform, backends: Backends
) -> None:
    async with gateway_with(limited(platform.addresses, capacity=3, refill=0.5)) as client:
        statuses = [
            (await query(client, ONE_POINT, headers=ANONYMOUS)).status_code for _ in range(3)
        ]
        await backends.reset()
        refused = await query(client, ONE_POINT, headers=ANONYMOUS)
    assert statuses == [200, 200, 200]
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "2"  # 1 point at 0.5 points/s
    (error,) = refused.json()["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert error["extensions"]["retryAfter"] == 2
    assert refused.json()["data"] is None
    assert await backends.call_counts() == {}


async def test_a_query_larger_than_the_bucket_gets_no_retry_after(platform: DemoPlatform) -> None:
    async with gateway_with(limited(platform.addresses, capacity=10)) as client:
        response = await query(client, DEEP_QUERY, {"n": 1}, headers=ANONYMOUS)
    assert response.status_code == 429
    assert "retry-after" not in response.headers
    assert response.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"


async def test_the_unused_estimate_is_refunded(platform: DemoPlatform) -> None:
    async with gateway_with(limited(platform.addresses, capacity=1000)) as client:
        # Walk to the last ten users: a page of first 48 then holds 10.
        after = None
        for first in (100,) * 9 + (90,):
            page = await query(
                client,
                "query($first: Int, $after: String) { users(first: $first, after: $after)"
                " { pageInfo { endCursor } } }",
                {"first": first, "after": after},
                headers=ANONYMOUS,
            )
            after = page.json()["data"]["users"]["pageInfo"]["endCursor"]
        before = page.json()["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"]
        response = await query(
            client,
            "query($after: String) { users(first: 48, after: $after) { edges { node { id } } } }",
            {"after": after},
            headers=ANONYMOUS,
        )
        following = await query(client, ONE_POINT, headers=ANONYMOUS)
    cost = response.json()["extensions"]["cost"]
    assert len(response.json()["data"]["users"]["edges"]) == 10
    # Estimated: users 1 + edges 1 + 48 x node 1 = 50; actual: 1 + 1 + 10 x 1 = 12.
    assert (cost["requestedQueryCost"], cost["actualQueryCost"]) == (50, 12)
    after_refund = cost["throttleStatus"]["currentlyAvailable"]
    without_refund = before - 50
    assert after_refund - without_refund == 38
    # The refund is credited with the next charge: that one point comes off the refunded bucket.
    assert following.json()["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == (
        after_refund - 1
    )


async def admitted(client: httpx.AsyncClient, requests: int) -> Counter[int]:
    responses = await asyncio.gather(
        *(query(client, ONE_POINT, headers=ANONYMOUS) for _ in range(requests))
    )
    return Counter(response.status_code for response in responses)


async def test_200_concurrent_requests_against_100_points_admit_exactly_100_in_process(
    platform: DemoPlatform,
) -> None:
    async with gateway_with(limited(platform.addresses, capacity=100)) as client:
        assert await admitted(client, 200) == {200: 100, 429: 100}


async def test_200_concurrent_requests_against_100_points_admit_exactly_100_with_redis(
    platform: DemoPlatform, redis_available: None
) -> None:
    settings = limited(platform.addresses, capacity=100, backend="redis", redis_url=REDIS_URL)
    async with gateway_with(settings) as client:
        assert await admitted(client, 200) == {200: 100, 429: 100}


@contextmanager
def gateway_processes(settings: dict[str, Any], count: int, tmp: Path) -> Iterator[list[str]]:
    ports = find_free_ports(count)
    processes = []
    try:
        config = tmp / "empty.toml"
        config.write_text("# every section comes from SWITCHYARD_* environment variables\n")
        for port in ports:
            sections = {**settings, "server": {**settings["server"], "port": port}}
            environment = {
                f"SWITCHYARD_{name.upper()}": json.dumps(value) for name, value in sections.items()
            }
            environment["SWITCHYARD_GRAPH"] = "schema:graph"
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "switchyard.cli", "serve", "--config", str(config)],
                    env={**os.environ, **environment},
                    stderr=subprocess.DEVNULL,
                )
            )
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        for url in urls:
            for _ in range(200):
                try:
                    if httpx.get(url + "/healthz", timeout=0.5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
        yield urls
    finally:
        for process in processes:
            process.terminate()
            process.wait(10)


async def test_two_gateway_processes_sharing_redis_admit_exactly_100_together(
    platform: DemoPlatform, redis_available: None, tmp_path: Path
) -> None:
    settings = limited(platform.addresses, capacity=100, backend="redis", redis_url=REDIS_URL)
    with gateway_processes(settings, 2, tmp_path) as urls:
        clients = [httpx.AsyncClient(base_url=url, timeout=10) for url in urls]
        try:
            for client in clients:  # each connects to Redis now, not in a race with the other
                assert (await client.get("/readyz")).status_code == 200
            responses = await asyncio.gather(
                *(query(clients[i % 2], ONE_POINT, headers=ANONYMOUS) for i in range(200))
            )
        finally:
            for client in clients:
                await client.aclose()
    by_gateway = Counter((i % 2, r.status_code) for i, r in enumerate(responses))
    assert by_gateway[(0, 200)] + by_gateway[(1, 200)] == 100
    assert by_gateway[(0, 429)] + by_gateway[(1, 429)] == 100
    assert by_gateway[(0, 200)] > 0 and by_gateway[(1, 200)] > 0


@pytest.mark.parametrize(("failure_mode", "status_while_down"), [("open", 200), ("closed", 429)])
async def test_redis_stopped_mid_run_follows_the_failure_mode_and_limits_resume(
    platform: DemoPlatform, redis_server: RedisServer, failure_mode: str, status_while_down: int
) -> None:
    settings = limited(
        platform.addresses,
        capacity=5,
        backend="redis",
        redis_url=redis_server.url,
        failure_mode=failure_mode,
        recheck_interval=0.1,
    )
    async with gateway_with(settings) as client:
        assert await admitted(client, 3) == {200: 3}
        redis_server.stop()
        while_down = await admitted(client, 10)
        ready = await client.get("/readyz")
        redis_server.start()  # an empty Redis: the bucket starts full again
        await asyncio.sleep(0.2)
        after = await admitted(client, 8)
    assert while_down == {status_while_down: 10}
    assert ready.json()["budgets"] is False
    assert ready.status_code == (200 if failure_mode == "open" else 503)
    assert after == {200: 5, 429: 3}


async def test_explain_header_returns_the_breakdown_in_debug_mode(platform: DemoPlatform) -> None:
    async with gateway_with(limited(platform.addresses)) as client:
        response = await query(client, ONE_POINT, headers={"X-Switchyard-Cost": "explain"})
    breakdown = response.json()["extensions"]["costBreakdown"]
    assert breakdown["cost"] == 1
    assert breakdown["fields"][0]["field"] == "Query.user"
