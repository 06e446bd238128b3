"""What a query costs, charged to the caller's budget: limits, 429s, refunds, Redis replicas."""

from __future__ import annotations

import asyncio
import json
import logging
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
import strawberry

from bench.fanout import DEEP_QUERY
from services.launcher import DemoPlatform, find_free_ports
from services.pagination import encode_cursor
from switchyard import BadUserInput, Graph, RequestContext, cost, list_size
from switchyard.app import create_app
from switchyard.config import validate_config
from tests.conftest import SERVICE_HEADERS, Backends, gateway_settings, open_gateway, query
from tests.redis_support import REDIS_URL, RedisServer
from upstreams import accounts

ONE_POINT = '{ user(id: "1") { name } }'  # User 1 + name 0
SEVEN_POINTS = "{ products(first: 5) { edges { node { name } } } }"  # 1 + 1 + 5 x 1
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
    # What enforce would have answered instead.
    assert cost["wouldRefuse"] == {
        "message": "Query cost 2152 exceeds the maximum of 10.",
        "code": "COST_LIMIT_EXCEEDED",
        "estimatedCost": 2152,
        "maximumCost": 10,
    }


async def test_measure_mode_never_refuses_with_budgets_and_logs_what_enforce_would_do(
    platform: DemoPlatform, caplog: pytest.LogCaptureFixture
) -> None:
    settings = limited(platform.addresses, mode="measure", capacity=3)
    async with gateway_with(settings) as client:
        with caplog.at_level(logging.INFO, logger="switchyard.cost"):
            responses = [await query(client, ONE_POINT, headers=ANONYMOUS) for _ in range(5)]
            too_large = await query(client, SEVEN_POINTS, headers=ANONYMOUS)
    assert [r.status_code for r in [*responses, too_large]] == [200] * 6
    assert all("errors" not in r.json() for r in [*responses, too_large])
    assert all(r.json()["data"] is not None for r in [*responses, too_large])
    assert all("retry-after" not in r.headers for r in [*responses, too_large])
    costs = [r.json()["extensions"]["cost"] for r in responses]
    # The bucket is charged as enforce would charge it: three fit, the next two would not.
    assert [c["throttleStatus"]["currentlyAvailable"] for c in costs] == [2, 1, 0, 0, 0]
    assert ["wouldRefuse" in c for c in costs] == [False, False, False, True, True]
    assert costs[3]["wouldRefuse"]["code"] == "RATE_LIMITED"
    assert costs[3]["wouldRefuse"]["requestedQueryCost"] == 1
    would = too_large.json()["extensions"]["cost"]["wouldRefuse"]
    assert (would["code"], would["estimatedCost"], would["maximumCost"]) == (
        "COST_LIMIT_EXCEEDED",
        7,
        3,
    )
    lines = [r for r in caplog.records if r.name == "switchyard.cost"]
    assert [r.levelno for r in lines] == [logging.INFO] * 3  # one line per would-be refusal
    assert "(RATE_LIMITED)" in lines[0].getMessage()
    assert "(COST_LIMIT_EXCEEDED)" in lines[2].getMessage()


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
    assert "data" not in refused.json()  # refused before execution
    assert await backends.call_counts() == {}


async def test_a_query_larger_than_the_whole_bucket_is_a_request_error_not_a_429(
    platform: DemoPlatform, backends: Backends
) -> None:
    # DEEP_QUERY with n = 1 is estimated at 45 points; the bucket holds 10: waiting never helps.
    async with gateway_with(limited(platform.addresses, capacity=10)) as client:
        response = await query(client, DEEP_QUERY, {"n": 1}, headers=ANONYMOUS)
        after = await query(client, ONE_POINT, headers=ANONYMOUS)
    assert response.status_code == 400
    assert "retry-after" not in response.headers
    body = response.json()
    assert "data" not in body  # refused before execution
    (error,) = body["errors"]
    assert error["message"] == (
        "This query costs 45 points, more than the 10 this client's budget can ever hold."
    )
    assert error["extensions"]["code"] == "COST_LIMIT_EXCEEDED"
    assert (error["extensions"]["estimatedCost"], error["extensions"]["maximumCost"]) == (45, 10)
    assert await backends.call_counts() == {"accounts": 1}  # only the later ONE_POINT's call
    # Nothing was taken from the bucket.
    assert after.json()["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 9


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


# Budgets that hold: the refund never gives back work done; unbatchable calls are priced.

OFFSET = 3
"""The abusive cursor points past the third review: products with fewer answer 400."""
PARENTS = 24
ABUSE = (
    "query($c: String) { products(first: 24) { edges { node { id"
    " reviews(first: 1, after: $c) { totalCount } } } } }"
)
# products 1 + edges (1 + 24 x (node 1 + reviews (1 + after 1))): fits in the demo's 100 points.
ABUSE_ESTIMATE = 74


def items_received(body: dict[str, Any]) -> int:
    """Products on the page, plus the one review each page after the cursor held."""
    edges = (body.get("data") or {}).get("products", {}).get("edges", [])
    reviews = [edge["node"]["reviews"] for edge in edges]
    return len(edges) + sum(1 for r in reviews if r is not None and r["totalCount"] > OFFSET)


async def check_the_refund_abuse(
    platform: DemoPlatform, backends: Backends, headers: Mapping[str, str], **budgets: Any
) -> None:
    capacity = 100  # the demo's anonymous tier
    cursor = encode_cursor(OFFSET)
    async with gateway_with(limited(platform.addresses, capacity=capacity, **budgets)) as client:
        responses = [await query(client, ABUSE, {"c": cursor}, headers=headers) for _ in range(20)]
    calls = sum((await backends.call_counts()).values())
    admitted = [r for r in responses if r.status_code == 200]
    items = sum(items_received(r.json()) for r in admitted)
    # Some pages failed (400 upstream, BAD_USER_INPUT here), some came back: the abuse's shape.
    first = admitted[0].json()
    assert first["data"] is not None and "errors" in first
    assert {e["extensions"]["code"] for e in first["errors"]} == {"BAD_USER_INPUT"}
    assert 0 < items - PARENTS < PARENTS
    left = responses[-1].json()["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"]
    kept = capacity - left
    assert calls == len(admitted) * (1 + PARENTS)  # one catalog call, one reviews call per parent
    assert kept >= calls + items
    for response in admitted:
        cost = response.json()["extensions"]["cost"]
        assert cost["requestedQueryCost"] == ABUSE_ESTIMATE
        assert cost["actualQueryCost"] >= 1 + PARENTS + items_received(response.json())
    refused = [r for r in responses if r.status_code != 200]
    assert {r.status_code for r in refused} == {429}
    assert all(r.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED" for r in refused)


async def test_the_refund_abuse_keeps_at_least_the_calls_made_plus_the_items_received(
    platform: DemoPlatform, backends: Backends
) -> None:
    await check_the_refund_abuse(platform, backends, ANONYMOUS)


async def test_the_refund_abuse_with_an_api_key_over_redis_keeps_the_work_too(
    platform: DemoPlatform, backends: Backends, redis_available: None
) -> None:
    await check_the_refund_abuse(
        platform, backends, SERVICE_HEADERS, backend="redis", redis_url=REDIS_URL
    )


async def test_an_unbatchable_after_is_priced_one_call_per_parent(
    platform: DemoPlatform, backends: Backends
) -> None:
    document = (
        "query($c: String) { products(first: 100) { edges { node {"
        " reviews(first: 1, after: $c) { totalCount } } } } }"
    )
    settings = limited(platform.addresses, mode="measure", capacity=10_000, max_cost=5000)
    async with gateway_with(settings) as client:
        batched = await query(client, document, {"c": None}, headers=ANONYMOUS)
        batched_calls = await backends.call_counts()
        await backends.reset()
        unbatched = await query(client, document, {"c": encode_cursor(0)}, headers=ANONYMOUS)
        unbatched_calls = await backends.call_counts()
    assert batched_calls == {"catalog": 1, "reviews": 1}
    assert unbatched_calls == {"catalog": 1, "reviews": 100}
    batched_cost = batched.json()["extensions"]["cost"]["requestedQueryCost"]
    unbatched_cost = unbatched.json()["extensions"]["cost"]["requestedQueryCost"]
    # The 99 extra calls are priced, one point per parent: 202 and 302.
    assert (batched_cost, unbatched_cost) == (202, 302)
    # The estimate covers the work: 101 calls, 100 products and up to 100 reviews.
    assert unbatched_cost >= sum(unbatched_calls.values()) + 100 + 100


@strawberry.type
class Fragile:
    """A user whose one field always fails: a non-null field, so the null reaches `fragile`."""

    @strawberry.field(directives=[cost(2)])  # type: ignore[untyped-decorator]
    def label(self) -> str:
        raise BadUserInput("no label today")


@strawberry.type
class FragileQuery:
    @strawberry.field(directives=[list_size(slicing_arguments=["first"])])  # type: ignore[untyped-decorator]
    async def fragile(self, info: strawberry.Info, first: int = 20) -> list[Fragile] | None:
        context: RequestContext = info.context
        page = await accounts.list_users(
            context.upstream(accounts.ACCOUNTS), first, None, context.scope
        )
        context.work.received(len(page["users"]))
        return [Fragile() for _ in page["users"]]


FRAGILE_GRAPH = Graph(schema=strawberry.Schema(query=FragileQuery), services=[accounts.ACCOUNTS])


async def test_work_lost_to_null_propagation_is_kept_even_when_data_is_null(
    platform: DemoPlatform, backends: Backends
) -> None:
    # fragile 1 + 20 x label 2 = 41 estimated; 1 call and 20 users received; fragile: null.
    addresses = {"accounts": platform.addresses["accounts"]}
    config = validate_config(limited(addresses, capacity=100))
    app = create_app(config, FRAGILE_GRAPH)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            responses = [
                await query(client, "{ fragile(first: 20) { label } }", headers=ANONYMOUS)
                for _ in range(20)
            ]
    admitted = [r for r in responses if r.status_code == 200]
    assert all(r.json()["data"] == {"fragile": None} for r in admitted)
    costs = [r.json()["extensions"]["cost"] for r in admitted]
    assert {(c["requestedQueryCost"], c["actualQueryCost"]) for c in costs} == {(41, 21)}
    calls = sum((await backends.call_counts()).values())
    assert calls == len(admitted) == 3  # 21 points kept each: 37 left, the fourth cannot fit
    left = responses[-1].json()["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"]
    assert 100 - left == calls + 20 * calls  # kept: every call and every user received
    assert {r.status_code for r in responses[3:]} == {429}
