"""The XML ``shipping`` service through the gateway: batched, capped, hardened, failing softly.

``Order.shipment`` is answered by the legacy XML service (docs/demo-contract.md): one
call per 500 orders of a request, shipments exactly for shipped and delivered orders,
and a hostile or missing service nulls only the shipments, never leaking what an
attack document tried to smuggle in.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.data import DEFAULT_SEED, DataSizes, DemoData
from services.launcher import DemoPlatform
from tests.conftest import SERVICE_HEADERS, Backends, query

ORDERS_WITH_SHIPMENTS = """
{
  orders(first: 50) {
    edges { node { id status shipment { carrier status trackingNumber estimatedDelivery } } }
  }
}
"""
ORDERS_AND_MORE = """
{
  orders(first: 20) {
    edges { node { id status customer { id } total { amount currency } shipment { status } } }
  }
}
"""
USERS_ORDERS_SHIPMENTS = """
{
  users(first: 100) {
    edges { node { orders(first: 10) { edges { node { id status shipment { status } } } } } }
  }
}
"""
SHIPPED_STATUSES = {"SHIPPED", "DELIVERED"}
IN_FLIGHT = {"LABEL_CREATED", "IN_TRANSIT", "OUT_FOR_DELIVERY", "EXCEPTION"}
BATCH_CAP = 500
UNAVAILABLE = "A service this field needs is unavailable."
ANSWERED_WRONGLY = "A service this field needs answered wrongly."


@pytest.fixture(scope="module")
def data() -> DemoData:
    """What the session platform's services serve (the default seed and sizes)."""
    return DemoData.from_sizes(DEFAULT_SEED, DataSizes())


def expected_shipment(data: DemoData, order_id: str) -> dict[str, Any] | None:
    shipment = data.shipments_by_order_id.get(order_id)
    if shipment is None:
        return None
    return {
        "carrier": shipment.carrier,
        "status": shipment.status,
        "trackingNumber": shipment.tracking_number,
        "estimatedDelivery": shipment.estimated_delivery,
    }


def shipment_error_paths(body: dict[str, Any]) -> list[list[object]]:
    """The paths of the errors, by order index (errors of one batch come in any order)."""
    return sorted((error["path"] for error in body["errors"]), key=lambda path: path[2])


def shipment_paths(count: int) -> list[list[object]]:
    return [["orders", "edges", i, "node", "shipment"] for i in range(count)]


def orders_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [edge["node"] for edge in body["data"]["orders"]["edges"]]


def without_shipments(orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in order.items() if k != "shipment"} for order in orders]


async def honest_orders(gateway: httpx.AsyncClient) -> list[dict[str, Any]]:
    """``ORDERS_AND_MORE`` answered by healthy services: some of its orders have shipments."""
    body = (await query(gateway, ORDERS_AND_MORE)).json()
    assert "errors" not in body
    orders = orders_of(body)
    assert len(orders) == 20
    assert any(order["shipment"] is not None for order in orders)
    return orders


def asked_order_ids(record_query: str) -> list[str]:
    assert record_query.startswith("orderIds="), record_query
    return record_query.removeprefix("orderIds=").split(",")


@pytest.fixture
async def shipping_off(platform: DemoPlatform, backends: Backends) -> Any:
    """Whatever a test sets, the shipping service answers honestly again afterwards."""
    yield
    await backends.admin.set_hostile(platform.endpoint("shipping"), "off")


@pytest.fixture
def gateway_logs(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Every log record of the test, at DEBUG, the gateway's included.

    ``configure_logging`` (the CLI's) stops ``switchyard`` records at their own logger;
    here they reach the root logger, where caplog listens, whatever ran before.
    """
    monkeypatch.setattr(logging.getLogger("switchyard"), "propagate", True)
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="switchyard")
    return caplog


# --- answers --------------------------------------------------------------------------


async def test_shipments_of_a_page_of_orders_come_from_one_call(
    gateway: httpx.AsyncClient, backends: Backends, data: DemoData
) -> None:
    response = await query(gateway, ORDERS_WITH_SHIPMENTS)
    body = response.json()
    assert response.status_code == 200
    assert "errors" not in body
    orders = orders_of(body)
    assert len(orders) == 50

    (call,) = await backends.records("shipping")
    assert call.call == "GET /shipments"
    assert sorted(asked_order_ids(call.query), key=int) == sorted(
        (order["id"] for order in orders), key=int
    )
    assert call.headers["accept"] == "application/xml"
    assert await backends.call_counts() == {"orders": 1, "shipping": 1}

    for order in orders:
        assert order["shipment"] == expected_shipment(data, order["id"]), order
    statuses = {order["status"] for order in orders}
    assert statuses >= SHIPPED_STATUSES and statuses - SHIPPED_STATUSES, "a page of every kind"


async def test_only_shipped_and_delivered_orders_have_a_shipment(
    gateway: httpx.AsyncClient,
) -> None:
    body = (await query(gateway, ORDERS_WITH_SHIPMENTS)).json()
    for order in orders_of(body):
        shipment = order["shipment"]
        if order["status"] == "DELIVERED":
            assert shipment["status"] == "DELIVERED"
            assert shipment["estimatedDelivery"] is None
        elif order["status"] == "SHIPPED":
            assert shipment["status"] in IN_FLIGHT
            assert shipment["estimatedDelivery"] is not None
        else:
            assert shipment is None, order
        if shipment is not None:
            assert shipment["carrier"] and shipment["trackingNumber"]


async def test_more_than_500_orders_are_asked_for_in_batches_of_at_most_500(
    gateway: httpx.AsyncClient, backends: Backends
) -> None:
    # One page of users' orders: every order arrives in the same tick, so every
    # shipment is asked for at once and only the cap splits the batch.
    response = await query(gateway, USERS_ORDERS_SHIPMENTS)
    body = response.json()
    assert response.status_code == 200
    assert "errors" not in body
    orders = [
        order["node"]
        for user in body["data"]["users"]["edges"]
        for order in user["node"]["orders"]["edges"]
    ]
    order_ids = {order["id"] for order in orders}
    assert len(orders) == len(order_ids)
    assert BATCH_CAP < len(order_ids) <= 2 * BATCH_CAP
    for order in orders:
        assert (order["shipment"] is not None) == (order["status"] in SHIPPED_STATUSES), order

    batches = [asked_order_ids(call.query) for call in await backends.records("shipping")]
    assert sorted(len(batch) for batch in batches) == sorted(
        [BATCH_CAP, len(order_ids) - BATCH_CAP]
    )
    assert all(len(batch) == len(set(batch)) for batch in batches)
    assert {order_id for batch in batches for order_id in batch} == order_ids
    assert await backends.call_counts() == {"accounts": 1, "orders": 1, "shipping": 2}


# --- hostile XML ----------------------------------------------------------------------


@pytest.mark.usefixtures("shipping_off")
async def test_billion_laughs_nulls_every_shipment_and_the_gateway_stays_responsive(
    platform: DemoPlatform, gateway: httpx.AsyncClient, backends: Backends
) -> None:
    honest = await honest_orders(gateway)
    await backends.admin.set_hostile(platform.endpoint("shipping"), "billion-laughs")
    await backends.reset()

    answer, *health = await asyncio.gather(
        query(gateway, ORDERS_AND_MORE), *(gateway.get("/healthz") for _ in range(5))
    )
    assert [response.status_code for response in health] == [200] * 5
    assert answer.status_code == 200
    body = answer.json()
    orders = orders_of(body)
    assert [order["shipment"] for order in orders] == [None] * len(honest)
    assert without_shipments(orders) == without_shipments(honest)
    assert shipment_error_paths(body) == shipment_paths(len(honest))
    for error in body["errors"]:
        assert error["message"] == ANSWERED_WRONGLY
        assert error["extensions"] == {
            "code": "UPSTREAM_ERROR",
            "requestId": answer.headers["x-request-id"],
        }
    assert "ENTITY" not in answer.text and "&lol" not in answer.text
    assert len(await backends.records("shipping")) == 1


@pytest.mark.usefixtures("shipping_off")
async def test_an_external_entity_is_never_resolved_into_answers_or_logs(
    platform: DemoPlatform,
    gateway: httpx.AsyncClient,
    backends: Backends,
    tmp_path: Path,
    gateway_logs: pytest.LogCaptureFixture,
) -> None:
    secret = f"canary-{secrets.token_hex(16)}"
    canary = tmp_path / "canary.txt"
    canary.write_text(secret)
    await backends.admin.set_hostile(platform.endpoint("shipping"), "external-entity", str(canary))

    debug = {**SERVICE_HEADERS, "X-Switchyard-Debug": "1"}
    plain = await query(gateway, ORDERS_WITH_SHIPMENTS)
    debugged = await query(gateway, ORDERS_AND_MORE, headers=debug)

    for response in (plain, debugged):
        assert response.status_code == 200
        assert secret not in response.text
        body = response.json()
        orders = orders_of(body)
        assert orders and all(order["shipment"] is None for order in orders)
        assert {error["extensions"]["code"] for error in body["errors"]} == {"UPSTREAM_ERROR"}
        assert len(body["errors"]) == len(orders)
    assert len(await backends.records("shipping")) == 2
    assert secret not in gateway_logs.text
    shipping_warnings = [
        record
        for record in gateway_logs.records
        if record.levelno >= logging.WARNING
        and record.name.startswith("switchyard")
        and getattr(record, "upstream", None) == "shipping"
    ]
    assert len(shipping_warnings) == 2, gateway_logs.text
    for record in shipping_warnings:
        assert record.getMessage() == (
            "upstream call failed: shipping GET /shipments: refused XML (DTDForbidden)"
        )


# --- a missing service ----------------------------------------------------------------


async def test_a_stopped_shipping_service_nulls_only_the_shipments(
    platform: DemoPlatform, gateway: httpx.AsyncClient
) -> None:
    honest = await honest_orders(gateway)
    platform.stop_service("shipping")
    try:
        response = await query(gateway, ORDERS_AND_MORE)
    finally:
        platform.start_service("shipping")

    body = response.json()
    assert response.status_code == 200
    orders = orders_of(body)
    assert [order["shipment"] for order in orders] == [None] * len(honest)
    assert without_shipments(orders) == without_shipments(honest)
    assert shipment_error_paths(body) == shipment_paths(len(honest))
    for error in body["errors"]:
        assert error["message"] == UNAVAILABLE
        assert error["extensions"] == {
            "code": "UPSTREAM_UNAVAILABLE",
            "requestId": response.headers["x-request-id"],
        }
    assert "127.0.0.1" not in response.text and "Traceback" not in response.text

    for _ in range(50):  # a pooled connection to the stopped process may fail once
        body = (await query(gateway, ORDERS_AND_MORE)).json()
        if "errors" not in body:
            break
        await asyncio.sleep(0.1)
    assert orders_of(body) == honest
