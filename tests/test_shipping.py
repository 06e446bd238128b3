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
ORDER_FIELDS_WITHOUT_SHIPMENT = ("id", "status", "customer", "total")
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


def shipment_paths(count: int) -> list[list[object]]:
    return [["orders", "edges", i, "node", "shipment"] for i in range(count)]


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
    orders = [edge["node"] for edge in body["data"]["orders"]["edges"]]
    assert len(orders) == 50

    (call,) = await backends.records("shipping")
    assert call.call == "GET /shipments"
    assert sorted(asked_order_ids(call.query), key=int) == sorted(
        (order["id"] for order in orders), key=int
    )
    assert call.headers["accept"] == "application/xml"

    for order in orders:
        assert order["shipment"] == expected_shipment(data, order["id"]), order
    statuses = {order["status"] for order in orders}
    assert statuses >= SHIPPED_STATUSES and statuses - SHIPPED_STATUSES, "a page of every kind"


async def test_only_shipped_and_delivered_orders_have_a_shipment(
    gateway: httpx.AsyncClient,
) -> None:
    body = (await query(gateway, ORDERS_WITH_SHIPMENTS)).json()
    for edge in body["data"]["orders"]["edges"]:
        order = edge["node"]
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
    await backends.admin.set_hostile(platform.endpoint("shipping"), "billion-laughs")

    answer, *health = await asyncio.gather(
        query(gateway, ORDERS_AND_MORE), *(gateway.get("/healthz") for _ in range(5))
    )
    assert [response.status_code for response in health] == [200] * 5
    assert answer.status_code == 200
    body = answer.json()
    orders = [edge["node"] for edge in body["data"]["orders"]["edges"]]
    assert len(orders) == 20
    assert [order["shipment"] for order in orders] == [None] * 20
    for order in orders:
        assert order["id"] and order["status"] and order["total"]["amount"]
        assert order["customer"] is None or order["customer"]["id"]
    assert sorted(map(str, (error["path"] for error in body["errors"]))) == sorted(
        map(str, shipment_paths(20))
    )
    for error in body["errors"]:
        assert error["message"] == ANSWERED_WRONGLY
        assert error["extensions"] == {
            "code": "UPSTREAM_ERROR",
            "requestId": answer.headers["x-request-id"],
        }
    assert len(await backends.records("shipping")) == 1
    assert "ENTITY" not in answer.text and "&lol" not in answer.text


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
        orders = [edge["node"] for edge in body["data"]["orders"]["edges"]]
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
    assert all(secret not in record.getMessage() for record in shipping_warnings)


# --- a missing service ----------------------------------------------------------------


async def test_a_stopped_shipping_service_nulls_only_the_shipments(
    platform: DemoPlatform, gateway: httpx.AsyncClient
) -> None:
    platform.stop_service("shipping")
    try:
        response = await query(gateway, ORDERS_AND_MORE)
    finally:
        platform.start_service("shipping")

    body = response.json()
    assert response.status_code == 200
    orders = [edge["node"] for edge in body["data"]["orders"]["edges"]]
    assert len(orders) == 20
    for order in orders:
        assert order["shipment"] is None
        assert order["id"] and order["status"] and order["total"]["amount"]
    assert any(order["customer"] is not None for order in orders)
    assert sorted(map(str, (error["path"] for error in body["errors"]))) == sorted(
        map(str, shipment_paths(20))
    )
    for error in body["errors"]:
        assert error["message"] == UNAVAILABLE
        assert error["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
    assert "127.0.0.1" not in response.text and "Traceback" not in response.text

    for _ in range(50):  # a pooled connection to the stopped process fails once at most
        body = (await query(gateway, ORDERS_AND_MORE)).json()
        if "errors" not in body:
            break
        await asyncio.sleep(0.1)
    assert "errors" not in body
    shipped = [e["node"] for e in body["data"]["orders"]["edges"] if e["node"]["shipment"]]
    assert shipped
