"""One failing upstream nulls only the fields that depend on it; nothing internal leaks."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from services.faults import FaultConfig
from services.launcher import DemoPlatform
from switchyard.config import validate_config
from tests.conftest import Backends, gateway_settings, open_gateway, query

MIXED_QUERY = """
{
  user(id: "3") { name }
  product(id: "5") { name stock { available } averageRating }
  orders(first: 2) { edges { node { id customer { name } } } }
}
"""


def paths_of(body: dict[str, Any]) -> list[list[object]]:
    return [error["path"] for error in body.get("errors", [])]


async def test_a_stopped_service_nulls_only_its_fields_and_the_gateway_recovers(
    platform: DemoPlatform, gateway: httpx.AsyncClient
) -> None:
    platform.stop_service("inventory")
    try:
        response = await query(gateway, MIXED_QUERY)
        body = response.json()
        assert response.status_code == 200
        assert body["data"]["user"]["name"]
        assert body["data"]["product"]["name"]
        assert body["data"]["product"]["stock"] is None
        assert len(body["data"]["orders"]["edges"]) == 2
        assert paths_of(body) == [["product", "stock"]]
        error = body["errors"][0]
        assert error["message"] == "A service this field needs is unavailable."
        assert error["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
        assert error["extensions"]["requestId"] == response.headers["x-request-id"]
        text = response.text
        port = platform.endpoint("inventory").address.rsplit(":", 1)[1]
        assert "127.0.0.1" not in text and port not in text and "Traceback" not in text
    finally:
        platform.start_service("inventory")

    for _ in range(50):  # the channel reconnects within its backoff (max 1 s)
        body = (await query(gateway, MIXED_QUERY)).json()
        if "errors" not in body:
            break
        await asyncio.sleep(0.1)
    assert "errors" not in body
    assert body["data"]["product"]["stock"]["available"] >= 0


async def test_a_stopped_rest_service_nulls_its_fields(
    platform: DemoPlatform, gateway: httpx.AsyncClient
) -> None:
    platform.stop_service("accounts")
    try:
        body = (await query(gateway, MIXED_QUERY)).json()
    finally:
        platform.start_service("accounts")
    assert body["data"]["user"] is None
    assert body["data"]["product"]["name"]
    customers = [edge["node"]["customer"] for edge in body["data"]["orders"]["edges"]]
    assert customers == [None, None]
    assert sorted(map(str, paths_of(body))) == sorted(
        map(
            str,
            [
                ["user"],
                ["orders", "edges", 0, "node", "customer"],
                ["orders", "edges", 1, "node", "customer"],
            ],
        )
    )
    assert {e["extensions"]["code"] for e in body["errors"]} == {"UPSTREAM_UNAVAILABLE"}
    body = (await query(gateway, MIXED_QUERY)).json()
    assert "errors" not in body


async def test_a_slow_service_times_out_at_its_fields(
    platform: DemoPlatform, backends: Backends
) -> None:
    settings = gateway_settings(platform.addresses, upstreams={"inventory": {"timeout": 0.2}})
    await backends.admin.set_faults(platform.endpoint("inventory"), FaultConfig(latency_ms=1000))
    try:
        async with open_gateway(validate_config(settings)) as client:
            body = (await query(client, MIXED_QUERY)).json()
    finally:
        await backends.admin.set_faults(platform.endpoint("inventory"), FaultConfig())
    assert body["data"]["product"]["stock"] is None
    assert body["data"]["product"]["name"]
    assert paths_of(body) == [["product", "stock"]]
    assert body["errors"][0]["extensions"]["code"] == "UPSTREAM_TIMEOUT"


async def test_the_request_deadline_bounds_every_call(
    platform: DemoPlatform, backends: Backends
) -> None:
    settings = gateway_settings(platform.addresses, server={"request_timeout": 0.3})
    await backends.admin.set_faults(platform.endpoint("accounts"), FaultConfig(latency_ms=1000))
    try:
        async with open_gateway(validate_config(settings)) as client:
            body = (
                await query(client, '{ user(id: "1") { name } product(id: "1") { name } }')
            ).json()
    finally:
        await backends.admin.set_faults(platform.endpoint("accounts"), FaultConfig())
    assert body["data"] == {"user": None, "product": {"name": body["data"]["product"]["name"]}}
    assert body["errors"][0]["extensions"]["code"] == "UPSTREAM_TIMEOUT"


async def test_an_erroring_service_is_reported_per_field(
    platform: DemoPlatform, gateway: httpx.AsyncClient, backends: Backends
) -> None:
    await backends.admin.set_faults(platform.endpoint("reviews"), FaultConfig(error_rate=1.0))
    try:
        body = (await query(gateway, MIXED_QUERY)).json()
    finally:
        await backends.admin.set_faults(platform.endpoint("reviews"), FaultConfig())
    assert body["data"]["product"]["averageRating"] is None
    assert body["data"]["product"]["stock"] is not None
    assert paths_of(body) == [["product", "averageRating"]]
    assert body["errors"][0]["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
