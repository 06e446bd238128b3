"""Partial data by design: one failing service nulls only its own fields.

Every root field with a resolver, and every field served by another service than its
parent, is nullable; a graph declaring either non-null is refused as it loads. With
each demo service stopped in turn, the README's example query and one query per root
field answer every other service's data, with errors only at the stopped service's
paths.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import strawberry
from joserfc import jwt as jose_jwt
from joserfc.jwk import OctKey

from schema import graph as demo_graph
from services.launcher import DemoPlatform
from services.registry import SERVICE_NAMES
from switchyard import Graph, GraphLoadError, load_graph
from switchyard.config import validate_config
from tests.conftest import SERVICE_HEADERS, gateway_settings, open_gateway, query
from tests.partial_data_support import (
    README_QUERY,
    assert_only_service_failed,
    leaves,
    service_at,
)

SECRET = "partial-data-tests-secret-0123456789abcdef"
KEY = OctKey.import_key(SECRET, parameters={"kid": "partial"})
RECOVERY_ATTEMPTS = 100


# --- the rule, checked as a graph loads ---------------------------------------------------


def test_the_demo_graph_follows_the_rule() -> None:
    assert demo_graph.upstreams == sorted(SERVICE_NAMES)


def test_a_root_field_with_a_resolver_declared_non_null_is_refused_with_its_name() -> None:
    @strawberry.type
    class Query:
        @strawberry.field
        def greeting(self) -> str:
            return "hello"

    graph = Graph(schema=strawberry.Schema(query=Query))
    with pytest.raises(GraphLoadError) as error:
        _ = graph.upstreams
    assert str(error.value) == (
        "Query.greeting is a root field with a resolver, so it must be nullable: "
        "a failing service would otherwise null the whole answer"
    )


def test_a_mutation_declared_non_null_is_refused_with_its_name() -> None:
    @strawberry.type
    class Query:
        hello: str = "world"

    @strawberry.type
    class Mutation:
        @strawberry.mutation
        def rename(self, name: str) -> list[str]:
            return [name]

    graph = Graph(schema=strawberry.Schema(query=Query, mutation=Mutation))
    with pytest.raises(GraphLoadError, match=r"^Mutation\.rename is a root field"):
        _ = graph.upstreams


def test_a_plain_root_value_may_be_non_null_and_a_nullable_resolver_is_accepted() -> None:
    @strawberry.type
    class Query:
        hello: str = "world"

        @strawberry.field
        def greeting(self) -> str | None:
            return "hello"

    assert Graph(schema=strawberry.Schema(query=Query)).upstreams == []


def test_load_graph_refuses_a_non_null_root_field_and_a_non_null_edge(tmp_path: Path) -> None:
    (tmp_path / "strict_root_graph.py").write_text(
        "import strawberry\nfrom switchyard import Graph\n\n"
        "@strawberry.type\nclass Query:\n"
        "    @strawberry.field\n    def count(self) -> int:\n        return 1\n\n"
        "graph = Graph(schema=strawberry.Schema(query=Query))\n"
    )
    with pytest.raises(GraphLoadError, match=r"^Query\.count is a root field with a resolver"):
        load_graph("strict_root_graph:graph", base_dir=tmp_path)
    (tmp_path / "strict_edge_graph.py").write_text(
        "import strawberry\nfrom switchyard import BatchEdge, Graph, Service\n\n"
        "async def fetch(upstream, keys, scope):\n    return {}\n\n"
        "@strawberry.type\nclass Invoice:\n    id: str\n\n"
        "invoices = BatchEdge('invoices', service=Service('billing'), fetch=fetch,\n"
        "                     convert=lambda data: Invoice(id=data['id']))\n\n"
        "@strawberry.type\nclass Order:\n    id: str\n"
        "    invoice: Invoice = invoices.field(key=lambda order: order.id)\n\n"
        "@strawberry.type\nclass Query:\n    order: Order | None = None\n\n"
        "graph = Graph(schema=strawberry.Schema(query=Query))\n"
    )
    with pytest.raises(GraphLoadError) as error:
        load_graph("strict_edge_graph:graph", base_dir=tmp_path)
    assert str(error.value) == (
        "Order.invoice is served by another service (billing), so it must be nullable"
    )


# --- each demo service stopped in turn ----------------------------------------------------


def root_field_queries(order_id: str, user_id: str) -> dict[str, str]:
    """One query per root field of the demo graph, reaching as many services as it can."""
    order_fields = (
        "id status total { amount } customer { name } shipment { carrier status } "
        "items { quantity product { name stock { available } averageRating } }"
    )
    product_fields = (
        "name price { amount } stock { available warehouses { name } } averageRating "
        "reviews(first: 2) { totalCount edges { node { rating author { name } "
        "product { name } } } }"
    )
    user_fields = (
        f"name tier orders(first: 2) {{ totalCount edges {{ node {{ {order_fields} }} }} }}"
    )
    return {
        "user": f'{{ user(id: "{user_id}") {{ {user_fields} }} }}',
        "users": (
            "{ users(first: 3) { totalCount edges { node { name tier orders(first: 1) { "
            "totalCount edges { node { id items { product { name stock { available } } } } } "
            "} } } } }"
        ),
        "order": f'{{ order(id: "{order_id}") {{ {order_fields} }} }}',
        "orders": f"{{ orders(first: 3) {{ totalCount edges {{ node {{ {order_fields} }} }} }} }}",
        "product": f'{{ product(id: "5") {{ {product_fields} }} }}',
        "products": (
            f"{{ products(first: 3) {{ totalCount edges {{ node {{ {product_fields} }} }} }} }}"
        ),
        "me": f"{{ me {{ {user_fields} }} }}",
    }


def bearer(subject: str) -> dict[str, str]:
    claims = {"sub": subject, "exp": int(time.time()) + 600, "scope": "orders:read"}
    token = jose_jwt.encode({"alg": "HS256", "kid": "partial"}, claims, KEY, algorithms=["HS256"])
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def gateway(platform: DemoPlatform) -> AsyncIterator[httpx.AsyncClient]:
    auth = {"jwt": {"keys": [{"kid": "partial", "algorithms": ["HS256"], "secret": SECRET}]}}
    async with open_gateway(validate_config(gateway_settings(platform.addresses, auth=auth))) as c:
        yield c


async def answer(client: httpx.AsyncClient, document: str, headers: dict[str, str]) -> Any:
    response = await query(client, document, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def wait_until_whole(
    client: httpx.AsyncClient, document: str, headers: dict[str, str]
) -> dict[str, Any]:
    """The answer without errors, once every service answers again (gRPC reconnects)."""
    for _ in range(RECOVERY_ATTEMPTS):
        body: dict[str, Any] = await answer(client, document, headers)
        if "errors" not in body:
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"still failing after the services were restarted: {body['errors']}")


async def test_each_service_stopped_in_turn_nulls_only_its_own_fields(
    platform: DemoPlatform, gateway: httpx.AsyncClient
) -> None:
    first_order = await wait_until_whole(
        gateway, "{ orders(first: 1) { edges { node { id customer { id } } } } }", SERVICE_HEADERS
    )
    node = first_order["data"]["orders"]["edges"][0]["node"]
    queries = {"README": README_QUERY, **root_field_queries(node["id"], node["customer"]["id"])}
    as_owner = bearer(node["customer"]["id"])
    headers = {name: as_owner if name == "me" else SERVICE_HEADERS for name in queries}
    baselines = {
        name: await wait_until_whole(gateway, document, headers[name])
        for name, document in queries.items()
    }
    # Each query reaches services beyond its root's, so a stop is seen below the root too.
    reached = {
        name: {service_at(path) for path, _ in leaves(baseline["data"])} - {None}
        for name, baseline in baselines.items()
    }
    assert reached["README"] == set(SERVICE_NAMES)
    assert all(len(services) >= 3 for services in reached.values()), reached

    failures_seen: dict[str, int] = {}
    for service in SERVICE_NAMES:
        platform.stop_service(service)
        try:
            for name, document in queries.items():
                body = await answer(gateway, document, headers[name])
                assert_only_service_failed(baselines[name], body, service, "UPSTREAM_UNAVAILABLE")
                failures_seen[service] = failures_seen.get(service, 0) + len(body.get("errors", []))
                if service not in reached[name]:
                    assert "errors" not in body, (service, name, body)
        finally:
            platform.start_service(service)
        for name, document in queries.items():
            assert await wait_until_whole(gateway, document, headers[name]) == baselines[name]
    assert set(failures_seen) == set(SERVICE_NAMES)
    assert all(failures_seen.values()), failures_seen
