"""Fewest upstream round trips: batched per level, parallel across services."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from bench.fanout import DEEP_QUERY
from services.faults import FaultConfig
from tests.conftest import SERVICE_HEADERS, Backends, query

ONE_CALL_PER_SERVICE_PER_LEVEL = {
    "orders": 1,  # the orders page
    "accounts": 2,  # customers (level 1) and review authors (level 4)
    "catalog": 1,  # every product of every item
    "inventory": 1,  # stock of those products
    "reviews": 1,  # reviews of those products
}


@pytest.mark.parametrize("n", [1, 50])
async def test_the_deep_query_makes_one_call_per_service_per_level(
    gateway: httpx.AsyncClient, backends: Backends, n: int
) -> None:
    response = await query(gateway, DEEP_QUERY, {"n": n})
    body = response.json()
    assert response.status_code == 200
    assert "errors" not in body
    assert len(body["data"]["orders"]["edges"]) == n
    assert await backends.call_counts() == ONE_CALL_PER_SERVICE_PER_LEVEL


async def test_a_batch_asks_for_every_id_once(
    gateway: httpx.AsyncClient, backends: Backends
) -> None:
    response = await query(gateway, DEEP_QUERY, {"n": 50})
    orders = [edge["node"] for edge in response.json()["data"]["orders"]["edges"]]
    (customers_call, _authors_call) = await backends.records("accounts")
    asked = customers_call.query.removeprefix("ids=").split(",")
    assert len(asked) == len(set(asked))
    assert len(asked) <= len(orders)


async def test_root_fields_on_different_services_run_concurrently(
    gateway: httpx.AsyncClient, backends: Backends
) -> None:
    slow = FaultConfig(latency_ms=200)
    for name in ("accounts", "catalog", "orders"):
        await backends.admin.set_faults(backends.platform.endpoint(name), slow)
    try:
        response = await query(
            gateway,
            "{ users(first: 2) { totalCount } products(first: 2) { totalCount }"
            " orders(first: 2) { totalCount } }",
        )
    finally:
        for name in ("accounts", "catalog", "orders"):
            await backends.admin.set_faults(backends.platform.endpoint(name), FaultConfig())
    assert "errors" not in response.json()
    intervals = [(await backends.records(name))[0] for name in ("accounts", "catalog", "orders")]
    latest_start = max(record.start for record in intervals)
    earliest_end = min(record.end for record in intervals)
    assert latest_start < earliest_end, "the three calls did not overlap"


async def test_loaders_belong_to_one_request(
    gateway: httpx.AsyncClient, backends: Backends
) -> None:
    document = '{ user(id: "7") { name } }'
    headers = {**SERVICE_HEADERS, "X-Switchyard-Debug": "1"}
    first, second = await asyncio.gather(
        query(gateway, document, headers=headers), query(gateway, document, headers=headers)
    )
    assert first.json()["data"] == second.json()["data"]
    # A loader shared between requests would have answered the second from its cache,
    # without a call of its own; the two calls may be one on the wire (coalescing).
    for response in (first, second):
        assert response.json()["extensions"]["upstreams"]["accounts"]["calls"] == 1
    assert 1 <= len(await backends.records("accounts")) <= 2


async def test_debug_header_shows_what_the_query_cost_the_backends(
    gateway: httpx.AsyncClient, backends: Backends
) -> None:
    debug = {**SERVICE_HEADERS, "X-Switchyard-Debug": "1"}
    response = await query(gateway, DEEP_QUERY, {"n": 5}, headers=debug)
    usage = response.json()["extensions"]["upstreams"]
    assert {name: entry["calls"] for name, entry in usage.items()} == await backends.call_counts()
    assert all(entry["timeMs"] > 0 and entry["errors"] == 0 for entry in usage.values())


async def test_without_the_debug_header_there_is_no_extension(gateway: httpx.AsyncClient) -> None:
    response = await query(gateway, '{ user(id: "1") { name } }')
    assert "extensions" not in response.json()
