"""The demo services honour the wire contract (docs: DEMO-CONTRACT.md), checked over real
HTTP and gRPC against real service processes on free loopback ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from statistics import mean
from typing import Any

import grpc
import grpc.aio
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from protos import catalog_pb2, catalog_pb2_grpc, inventory_pb2, inventory_pb2_grpc
from services.admin import AdminClient, ServiceEndpoint
from services.data import DataSizes, DemoData
from services.faults import FaultConfig
from services.launcher import (
    DemoPlatform,
    PortInUseError,
    ServiceOptions,
    ServiceProcess,
    ServiceStartError,
    find_free_ports,
    port_is_free,
)
from services.registry import get_spec

SMALL = DataSizes(users=20, products=10, orders=50, reviews=30)


@pytest.fixture(scope="module")
def data() -> DemoData:
    return DemoData.generate()


@pytest.fixture(scope="module")
def platform() -> Iterator[DemoPlatform]:
    ports = find_free_ports(7)
    with DemoPlatform(
        instances={"accounts": 2},
        ports={
            "accounts": ports[0:2],
            "orders": ports[2],
            "reviews": ports[3],
            "catalog": ports[4],
            "inventory": ports[5],
            "shipping": ports[6],
        },
    ) as running:
        yield running


@pytest.fixture(scope="module")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


@pytest.fixture(scope="module")
async def admin() -> AsyncIterator[AdminClient]:
    async with AdminClient() as client:
        yield client


@pytest.fixture(scope="module")
async def catalog(platform: DemoPlatform) -> AsyncIterator[catalog_pb2_grpc.CatalogStub]:
    async with grpc.aio.insecure_channel(platform.addresses["catalog"][0]) as channel:
        yield catalog_pb2_grpc.CatalogStub(channel)


@pytest.fixture(scope="module")
async def inventory(platform: DemoPlatform) -> AsyncIterator[inventory_pb2_grpc.InventoryStub]:
    async with grpc.aio.insecure_channel(platform.addresses["inventory"][0]) as channel:
        yield inventory_pb2_grpc.InventoryStub(channel)


def url(platform: DemoPlatform, service: str, path: str, instance: int = 0) -> str:
    return platform.addresses[service][instance] + path


def newest_first_key(item: dict[str, Any]) -> tuple[str, int]:
    return (item["createdAt"], int(item["id"]))


# --- data -----------------------------------------------------------------------------


def test_data_is_deterministic_and_has_absent_references(data: DemoData):
    assert DemoData.generate() == data
    assert DemoData.generate(seed=7) != data
    assert [u.id for u in data.users] == [str(n) for n in range(1, 1001)]
    assert len(data.products) == 500 and len(data.orders) == 10_000
    assert len(data.reviews) == 5000
    deleted_customers = [o for o in data.orders if o.user_id not in data.users_by_id]
    discontinued = [
        i for o in data.orders for i in o.items if i.product_id not in data.products_by_id
    ]
    deleted_authors = [r for r in data.reviews if r.author_id not in data.users_by_id]
    assert deleted_customers and discontinued and deleted_authors
    assert len(deleted_customers) < 300
    reviewed = {r.product_id for r in data.reviews}
    assert any(p.id not in reviewed for p in data.products)
    assert any(p.id not in data.stocks_by_product_id for p in data.products)
    assert {p.currency for p in data.products} == {"USD", "EUR"}


async def test_users_pagination_visits_every_user_once_in_ascending_order(http, platform):
    seen: list[str] = []
    after = None
    while True:
        params = {"first": "100"} | ({"after": after} if after else {})
        response = await http.get(url(platform, "accounts", "/users"), params=params)
        assert response.status_code == 200
        body = response.json()
        assert body["totalCount"] == 1000
        seen += [user["id"] for user in body["users"]]
        if not body["pageInfo"]["hasNextPage"]:
            break
        after = body["pageInfo"]["endCursor"]
    assert seen == [str(n) for n in range(1, 1001)]


async def test_users_page_defaults_to_20_and_has_the_user_shape(http, platform, data):
    body = (await http.get(url(platform, "accounts", "/users"))).json()
    assert len(body["users"]) == 20
    assert body["pageInfo"]["hasNextPage"] is True
    assert isinstance(body["pageInfo"]["endCursor"], str)
    user = data.users[0]
    assert body["users"][0] == {
        "id": "1",
        "name": user.name,
        "email": user.email,
        "tier": user.tier,
        "createdAt": user.created_at,
    }
    assert body["users"][0]["tier"] in {"FREE", "PRO", "ENTERPRISE"}
    assert body["users"][0]["createdAt"].endswith("Z")


async def test_first_zero_is_an_empty_page(http, platform):
    body = (await http.get(url(platform, "accounts", "/users?first=0"))).json()
    assert body == {
        "users": [],
        "pageInfo": {"endCursor": None, "hasNextPage": False},
        "totalCount": 1000,
    }


@pytest.mark.parametrize("first", ["-1", "101", "ten", ""])
async def test_first_outside_0_to_100_is_400(http, platform, first):
    response = await http.get(url(platform, "accounts", "/users"), params={"first": first})
    assert response.status_code == 400
    assert response.json() == {"error": "first must be an integer from 0 to 100"}


@pytest.mark.parametrize("after", ["garbage", "b2Zmc2V0OjUwMDA=", "eHl6"])
async def test_invalid_cursor_is_400(http, platform, after):
    response = await http.get(url(platform, "accounts", "/users"), params={"after": after})
    assert response.status_code == 400
    assert response.json() == {"error": "invalid cursor"}


async def test_user_batch_leaves_unknown_ids_out(http, platform):
    response = await http.get(url(platform, "accounts", "/users?ids=3,999999,1,x"))
    assert [u["id"] for u in response.json()["users"]] == ["3", "1"]


async def test_unknown_user_and_unknown_route_are_404(http, platform):
    for path in ("/users/999999", "/nowhere"):
        response = await http.get(url(platform, "accounts", path))
        assert response.status_code == 404
        assert response.json() == {"error": "not found"}
    assert (await http.get(url(platform, "accounts", "/users/7"))).json()["id"] == "7"


async def test_a_batch_carries_at_most_500_ids(http, platform):
    ids = ",".join(str(n) for n in range(1, 501))
    response = await http.get(url(platform, "accounts", "/users"), params={"ids": ids})
    assert len(response.json()["users"]) == 500
    response = await http.get(url(platform, "accounts", "/users"), params={"ids": ids + ",501"})
    assert response.status_code == 400
    assert response.json() == {"error": "at most 500 ids per batch, got 501"}


async def test_every_instance_serves_the_same_data(http, platform):
    assert len(platform.addresses["accounts"]) == 2
    first, second = [
        (await http.get(url(platform, "accounts", "/users?ids=1,2", k))).json() for k in (0, 1)
    ]
    assert first == second


# --- orders ---------------------------------------------------------------------------


async def test_orders_are_newest_first_and_filter_by_status(http, platform, data):
    orders: list[dict[str, Any]] = []
    after = None
    while True:
        params = {"first": "100", "status": "CANCELLED"} | ({"after": after} if after else {})
        body = (await http.get(url(platform, "orders", "/orders"), params=params)).json()
        orders += body["orders"]
        if not body["pageInfo"]["hasNextPage"]:
            break
        after = body["pageInfo"]["endCursor"]
    expected = [o.id for o in data.orders if o.status == "CANCELLED"]
    assert [o["id"] for o in orders] == expected
    assert body["totalCount"] == len(expected)
    assert orders == sorted(orders, key=newest_first_key, reverse=True)
    assert {o["status"] for o in orders} == {"CANCELLED"}


async def test_order_shape(http, platform, data):
    order = data.orders[0]
    body = (await http.get(url(platform, "orders", f"/orders/{order.id}"))).json()
    assert body == {
        "id": order.id,
        "userId": order.user_id,
        "status": order.status,
        "createdAt": order.created_at,
        "currency": order.currency,
        "items": [
            {
                "productId": i.product_id,
                "quantity": i.quantity,
                "unitPriceCents": i.unit_price_cents,
            }
            for i in order.items
        ],
    }
    assert 1 <= len(body["items"]) <= 4


async def test_order_batch_single_and_bad_status(http, platform):
    body = (await http.get(url(platform, "orders", "/orders?ids=5,99999999,2"))).json()
    assert [o["id"] for o in body["orders"]] == ["5", "2"]
    response = await http.get(url(platform, "orders", "/orders/99999999"))
    assert (response.status_code, response.json()) == (404, {"error": "not found"})
    response = await http.get(url(platform, "orders", "/orders?status=LOST"))
    assert response.status_code == 400
    assert response.json() == {
        "error": "status must be one of PENDING, PAID, SHIPPED, DELIVERED, CANCELLED"
    }


async def test_orders_grouped_by_user(http, platform, data):
    busy, _ = Counter(o.user_id for o in data.orders).most_common(1)[0]
    deleted = next(o.user_id for o in data.orders if o.user_id not in data.users_by_id)
    params = {"userIds": f"{busy},{deleted},999999999", "first": "3"}
    results = (await http.get(url(platform, "orders", "/orders"), params=params)).json()["results"]
    assert list(results) == [busy, deleted, "999999999"]
    expected = [o.id for o in data.orders if o.user_id == busy]
    assert [o["id"] for o in results[busy]["orders"]] == expected[:3]
    assert results[busy]["totalCount"] == len(expected)
    assert results[busy]["pageInfo"]["hasNextPage"] is True
    assert results[deleted]["totalCount"] >= 1
    assert results["999999999"] == {
        "orders": [],
        "pageInfo": {"endCursor": None, "hasNextPage": False},
        "totalCount": 0,
    }

    after = results[busy]["pageInfo"]["endCursor"]
    params = {"userIds": busy, "first": "100", "after": after}
    rest = (await http.get(url(platform, "orders", "/orders"), params=params)).json()["results"]
    assert [o["id"] for o in rest[busy]["orders"]] == expected[3:]

    params = {"userIds": f"{busy},1", "after": after}
    response = await http.get(url(platform, "orders", "/orders"), params=params)
    assert response.status_code == 400
    assert response.json() == {"error": "after is accepted only with a single user id"}


async def test_absent_references_are_absent_upstream(http, platform, catalog, data):
    deleted = next(o.user_id for o in data.orders if o.user_id not in data.users_by_id)
    assert (await http.get(url(platform, "accounts", f"/users/{deleted}"))).status_code == 404
    discontinued = next(
        i.product_id
        for o in data.orders
        for i in o.items
        if i.product_id not in data.products_by_id
    )
    answer = await catalog.BatchGetProducts(catalog_pb2.BatchGetProductsRequest(ids=[discontinued]))
    assert list(answer.products) == []


# --- reviews --------------------------------------------------------------------------


async def test_reviews_grouped_by_product_with_average_rating(http, platform, data):
    reviewed = {r.product_id for r in data.reviews}
    unreviewed = next(p.id for p in data.products if p.id not in reviewed)
    product = data.reviews[0].product_id
    params = {"productIds": f"{product},{unreviewed}", "first": "5"}
    results = (await http.get(url(platform, "reviews", "/reviews"), params=params)).json()[
        "results"
    ]
    ratings = [r.rating for r in data.reviews if r.product_id == product]
    assert results[product]["averageRating"] == round(mean(ratings), 2)
    assert results[product]["totalCount"] == len(ratings)
    page = results[product]["reviews"]
    assert len(page) == min(5, len(ratings))
    assert page == sorted(page, key=newest_first_key, reverse=True)
    assert {r["productId"] for r in page} == {product}
    assert set(page[0]) == {"id", "productId", "authorId", "rating", "body", "createdAt"}
    assert results[unreviewed] == {
        "reviews": [],
        "pageInfo": {"endCursor": None, "hasNextPage": False},
        "totalCount": 0,
        "averageRating": None,
    }


async def test_average_rating_has_at_most_two_decimals(http, platform, data):
    ids = ",".join(p.id for p in data.products[:100])
    results = await http.get(url(platform, "reviews", "/reviews"), params={"productIds": ids})
    for result in results.json()["results"].values():
        rating = result["averageRating"]
        assert rating is None or round(rating, 2) == rating


async def test_review_lookup_and_errors(http, platform, data):
    review = data.reviews[0]
    body = (await http.get(url(platform, "reviews", f"/reviews/{review.id}"))).json()
    assert body["authorId"] == review.author_id and 1 <= body["rating"] <= 5
    response = await http.get(url(platform, "reviews", "/reviews/0"))
    assert (response.status_code, response.json()) == (404, {"error": "not found"})
    response = await http.get(
        url(platform, "reviews", "/reviews?productIds=1,2&after=b2Zmc2V0OjA=")
    )
    assert response.json() == {"error": "after is accepted only with a single product id"}
    response = await http.get(url(platform, "reviews", "/reviews"))
    assert (response.status_code, response.json()) == (400, {"error": "productIds is required"})


# --- catalog --------------------------------------------------------------------------


async def test_batch_get_products_keeps_request_order_and_drops_unknown(catalog, data):
    answer = await catalog.BatchGetProducts(
        catalog_pb2.BatchGetProductsRequest(ids=["3", "99999", "1"])
    )
    assert [p.id for p in answer.products] == ["3", "1"]
    product = data.products_by_id["3"]
    assert (answer.products[0].name, answer.products[0].price_cents) == (
        product.name,
        product.price_cents,
    )


async def test_search_walks_every_product_in_ascending_order(catalog):
    ids: list[str] = []
    token = ""
    while True:
        answer = await catalog.SearchProducts(
            catalog_pb2.SearchProductsRequest(page_size=100, page_token=token)
        )
        assert answer.total_size == 500
        ids += [p.id for p in answer.products]
        token = answer.next_page_token
        if not token:
            break
    assert ids == [str(n) for n in range(1, 501)]


async def test_search_query_category_and_page_sizes(catalog, data):
    answer = await catalog.SearchProducts(catalog_pb2.SearchProductsRequest(query="dRiLl"))
    expected = [p.id for p in data.products if "drill" in (p.name + "\n" + p.description).lower()]
    assert answer.total_size == len(expected) > 0
    assert [p.id for p in answer.products] == expected[:20]
    answer = await catalog.SearchProducts(
        catalog_pb2.SearchProductsRequest(category="books", page_size=1000)
    )
    books = [p.id for p in data.products if p.category == "books"]
    assert [p.id for p in answer.products] == books[:100]
    assert answer.total_size == len(books)
    answer = await catalog.SearchProducts(catalog_pb2.SearchProductsRequest(query="no such thing"))
    assert (list(answer.products), answer.next_page_token, answer.total_size) == ([], "", 0)


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (catalog_pb2.SearchProductsRequest(page_size=-1), "page_size must not be negative"),
        (catalog_pb2.SearchProductsRequest(page_token="nope"), "invalid page_token"),
    ],
)
async def test_search_rejects_bad_arguments(catalog, request_, message):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await catalog.SearchProducts(request_)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == message


async def test_grpc_batches_carry_at_most_500_ids(catalog, inventory):
    ids = [str(n) for n in range(1, 502)]
    calls = [
        catalog.BatchGetProducts(catalog_pb2.BatchGetProductsRequest(ids=ids)),
        inventory.BatchGetStock(inventory_pb2.BatchGetStockRequest(product_ids=ids)),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert caught.value.details() == "at most 500 ids per batch, got 501"


# --- inventory ------------------------------------------------------------------------


async def test_stock_sums_warehouses_and_omits_products_without_stock(inventory, data):
    unstocked = next(p.id for p in data.products if p.id not in data.stocks_by_product_id)
    stocked = data.stocks[0].product_id
    answer = await inventory.BatchGetStock(
        inventory_pb2.BatchGetStockRequest(product_ids=[unstocked, stocked, "99999"])
    )
    (stock,) = answer.stocks
    assert stock.product_id == stocked
    assert stock.available == sum(w.available for w in stock.warehouses)
    assert 1 <= len(stock.warehouses) <= 3
    assert [w.warehouse for w in stock.warehouses] == [
        w.warehouse for w in data.stocks[0].warehouses
    ]


# --- health ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["catalog", "inventory"])
async def test_grpc_health_is_serving(platform, name):
    async with grpc.aio.insecure_channel(platform.addresses[name][0]) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", get_spec(name).grpc_service):
            answer = await stub.Check(health_pb2.HealthCheckRequest(service=service))
            assert answer.status == health_pb2.HealthCheckResponse.SERVING


# --- recording ------------------------------------------------------------------------


async def test_rest_requests_are_recorded_with_headers(http, platform, admin):
    endpoint = platform.endpoint("accounts")
    await admin.reset(endpoint)
    before = time.time()
    await http.get(url(platform, "accounts", "/users?ids=1,2"), headers={"X-Request-Id": "r-1"})
    await http.get(url(platform, "accounts", "/users/9"))
    await http.get(url(platform, "accounts", "/__admin/health"))
    first, second = await admin.requests(endpoint)
    assert (first.service, first.call, first.query) == ("accounts", "GET /users", "ids=1,2")
    assert first.headers["x-request-id"] == "r-1"
    assert first.headers["user-agent"].startswith("python-httpx/")
    assert before <= first.start <= first.end <= second.start
    assert (second.call, second.query) == ("GET /users/{id}", "id=9")
    await admin.reset(endpoint)
    assert await admin.requests(endpoint) == []


async def test_grpc_requests_are_recorded_with_metadata(platform, catalog, admin):
    endpoint = platform.endpoint("catalog")
    await admin.reset(endpoint)
    await catalog.BatchGetProducts(
        catalog_pb2.BatchGetProductsRequest(ids=["1", "2"]), metadata=[("x-request-id", "g-1")]
    )
    await catalog.SearchProducts(catalog_pb2.SearchProductsRequest(query="kettle", page_size=5))
    batch, search = await admin.requests(endpoint)
    assert (batch.service, batch.call, batch.query) == ("catalog", "BatchGetProducts", "ids=1,2")
    assert batch.headers["x-request-id"] == "g-1"
    assert not any(name.startswith(":") for name in batch.headers)
    assert (search.call, search.query) == ("SearchProducts", "query=kettle&page_size=5")
    await admin.reset(endpoint)
    assert await admin.requests(endpoint) == []


# --- fault injection ------------------------------------------------------------------


async def test_injected_errors(http, platform, admin, catalog, inventory):
    orders, grpc_endpoints = platform.endpoint("orders"), platform.endpoints("catalog")
    try:
        await admin.set_faults(orders, FaultConfig(error_rate=1.0))
        response = await http.get(url(platform, "orders", "/orders/1"))
        assert (response.status_code, response.json()) == (503, {"error": "injected failure"})
        for endpoint in [*grpc_endpoints, platform.endpoint("inventory")]:
            await admin.set_faults(endpoint, FaultConfig(error_rate=1.0))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await catalog.BatchGetProducts(catalog_pb2.BatchGetProductsRequest(ids=["1"]))
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert caught.value.details() == "injected failure"
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await inventory.BatchGetStock(inventory_pb2.BatchGetStockRequest(product_ids=["1"]))
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        for endpoint in [orders, *grpc_endpoints, platform.endpoint("inventory")]:
            await admin.set_faults(endpoint, FaultConfig())
    assert (await http.get(url(platform, "orders", "/orders/1"))).status_code == 200


async def test_injected_latency_shows_in_the_records(http, platform, admin, catalog):
    rest, grpc_endpoint = platform.endpoint("accounts"), platform.endpoint("catalog")
    try:
        for endpoint in (rest, grpc_endpoint):
            await admin.set_faults(endpoint, FaultConfig(latency_ms=150, jitter_ms=10))
            await admin.reset(endpoint)
        started = time.perf_counter()
        await http.get(url(platform, "accounts", "/users/1"))
        assert time.perf_counter() - started >= 0.15
        await catalog.BatchGetProducts(catalog_pb2.BatchGetProductsRequest(ids=["1"]))
        for endpoint in (rest, grpc_endpoint):
            (record,) = await admin.requests(endpoint)
            assert 0.15 <= record.end - record.start < 1.0
    finally:
        for endpoint in (rest, grpc_endpoint):
            await admin.set_faults(endpoint, FaultConfig())


async def test_bad_fault_config_is_rejected(http, platform):
    response = await http.put(url(platform, "orders", "/__admin/faults"), json={"errorRate": 2})
    assert (response.status_code, response.json()) == (
        400,
        {"error": "error_rate must be between 0 and 1"},
    )


# --- process management ---------------------------------------------------------------


async def test_a_service_can_be_stopped_and_started_on_the_same_port(http, platform, catalog):
    platform.stop_service("orders")
    with pytest.raises(httpx.ConnectError):
        await http.get(url(platform, "orders", "/orders/1"))
    platform.start_service("orders")
    assert (await http.get(url(platform, "orders", "/orders/1"))).status_code == 200

    platform.stop_service("catalog")
    platform.start_service("catalog")
    answer = await catalog.BatchGetProducts(catalog_pb2.BatchGetProductsRequest(ids=["1"]))
    assert [p.id for p in answer.products] == ["1"]


def test_stop_leaves_no_processes_and_frees_the_ports():
    ports = find_free_ports(2)
    platform = DemoPlatform(
        ["accounts", "inventory"],
        ports={"accounts": ports[0], "inventory": ports[1]},
        sizes=SMALL,
    )
    with platform:
        pids = [p.pid for p in platform.processes if p.pid is not None]
        assert len(pids) == 2
        assert all(p.running for p in platform.processes)
        assert platform.addresses == {
            "accounts": [f"http://127.0.0.1:{ports[0]}"],
            "inventory": [f"127.0.0.1:{ports[1]}"],
        }
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert all(port_is_free("127.0.0.1", port) for port in ports)


def test_a_taken_port_is_reported():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        platform = DemoPlatform(["reviews"], ports={"reviews": port}, sizes=SMALL)
        with pytest.raises(
            PortInUseError, match=f"reviews#0: port {port} on 127.0.0.1 is already in use"
        ):
            platform.start()


def test_a_process_dying_at_start_is_reported_with_its_output():
    port = find_free_ports(1)[0]
    options = ServiceOptions(sizes=SMALL)
    first = ServiceProcess(get_spec("accounts"), 0, port, options)
    second = ServiceProcess(get_spec("catalog"), 0, port, options)
    first.start()
    second.start()  # both passed the free-port check; only one can bind
    deadline = time.monotonic() + 10
    failures = []
    try:
        for process in (first, second):
            try:
                process.wait_ready(deadline)
            except ServiceStartError as exc:
                failures.append(str(exc))
    finally:
        first.stop()
        second.stop()
    (failure,) = failures
    assert "exited at start with code" in failure
    assert "in use" in failure.lower()


def test_children_die_with_a_crashed_parent():
    port = find_free_ports(1)[0]
    script = textwrap.dedent(
        f"""
        import os
        from services.data import DataSizes
        from services.launcher import DemoPlatform
        platform = DemoPlatform(["accounts"], ports={{"accounts": {port}}},
                                sizes=DataSizes(users=5, products=5, orders=5, reviews=5))
        platform.start()
        print(platform.processes[0].pid, flush=True)
        os._exit(1)  # a crash: no stop(), no cleanup
        """
    )
    parent = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=20, check=False
    )
    child = int(parent.stdout.strip())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("the child outlived its crashed parent")


def test_cli_runs_until_sigterm():
    ports = find_free_ports(2)
    command = [
        sys.executable, "-m", "services.launcher", "accounts", "catalog",
        "--port", f"accounts={ports[0]}", "--port", f"catalog={ports[1]}",
        "--users", "10", "--products", "10", "--orders", "10", "--reviews", "10",
    ]  # fmt: skip
    cli = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert cli.stdout is not None
        lines = [cli.stdout.readline().split() for _ in range(2)]
        assert lines == [
            ["accounts", f"http://127.0.0.1:{ports[0]}"],
            ["catalog", f"127.0.0.1:{ports[1]}"],
        ]
        assert httpx.get(f"http://127.0.0.1:{ports[0]}/users/1").json()["id"] == "1"
        cli.send_signal(signal.SIGTERM)
        assert cli.wait(timeout=10) == 0
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
        if cli.stdout is not None:
            cli.stdout.close()
    assert all(port_is_free("127.0.0.1", port) for port in ports)


def test_an_endpoint_is_a_plain_tuple():
    assert ServiceEndpoint("grpc", "127.0.0.1:1") == ("grpc", "127.0.0.1:1")
