"""The HTTP edge: GraphQL over POST and GET, health probes, request ids, clear errors."""

from __future__ import annotations

import httpx
import pytest

from services.launcher import DemoPlatform, find_free_ports
from switchyard.config import validate_config
from tests.conftest import SERVICE_HEADERS, Backends, gateway_settings, open_gateway, query


async def test_get_runs_a_query(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get(
        "/graphql", params={"query": '{ user(id: "1") { id } }'}, headers=SERVICE_HEADERS
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"user": {"id": "1"}}}


async def test_a_browser_gets_graphiql(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "graphiql" in response.text.lower()


async def test_healthz_answers_while_alive(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "alive"})


async def test_readyz_checks_every_required_upstream(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/readyz")
    assert response.status_code == 200
    assert response.json()["upstreams"] == {
        "accounts": True,
        "orders": True,
        "reviews": True,
        "catalog": True,
        "inventory": True,
        "shipping": True,
    }


async def test_readyz_is_503_when_a_required_upstream_is_down(platform: DemoPlatform) -> None:
    (closed_port,) = find_free_ports(1)
    settings = gateway_settings(
        platform.addresses,
        upstreams={
            "catalog": {"instances": [f"127.0.0.1:{closed_port}"]},
            "reviews": {"required": False, "instances": [f"http://127.0.0.1:{closed_port}"]},
        },
    )
    async with open_gateway(validate_config(settings)) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.json()["upstreams"]["catalog"] is False
    assert "reviews" not in response.json()["upstreams"]
    assert str(closed_port) not in response.text


async def test_every_response_carries_a_request_id(gateway: httpx.AsyncClient) -> None:
    generated = await gateway.get("/healthz")
    assert len(generated.headers["x-request-id"]) == 32
    echoed = await gateway.get("/healthz", headers={"x-request-id": "edge-42.a"})
    assert echoed.headers["x-request-id"] == "edge-42.a"
    refused = await gateway.get("/healthz", headers={"x-request-id": "bad id\twith spaces"})
    assert refused.headers["x-request-id"] != "bad id\twith spaces"


async def test_a_syntax_error_is_400_parse_failed(gateway: httpx.AsyncClient) -> None:
    response = await query(gateway, "{ user(id: ")
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    assert error["message"].startswith("Syntax Error")


async def test_an_unknown_field_is_400_validation_failed(
    gateway: httpx.AsyncClient, backends: Backends
) -> None:
    response = await query(gateway, '{ user(id: "1") { password } }')
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert error["message"] == "Cannot query field 'password' on type 'User'."
    assert await backends.call_counts() == {}


async def test_a_wrong_variable_is_400_bad_user_input(gateway: httpx.AsyncClient) -> None:
    response = await query(
        gateway, "query($n: Int!) { users(first: $n) { totalCount } }", {"n": "many"}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_a_body_that_is_not_json_is_400(gateway: httpx.AsyncClient) -> None:
    response = await gateway.post(
        "/graphql", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json() == {
        "errors": [
            {
                "message": "Unable to parse request body as JSON",
                "extensions": {
                    "code": "BAD_REQUEST",
                    "requestId": response.headers["x-request-id"],
                },
            }
        ]
    }


async def test_a_post_without_a_query_is_400(gateway: httpx.AsyncClient) -> None:
    response = await gateway.post("/graphql", json={"variables": {}})
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_other_methods_are_405(gateway: httpx.AsyncClient) -> None:
    response = await gateway.put("/graphql", json={"query": "{ __typename }"})
    assert response.status_code == 405


async def test_calls_are_spread_round_robin_over_instances(backends: Backends) -> None:
    second = DemoPlatform(["accounts"], instances=2, ports={"accounts": find_free_ports(2)})
    with second:
        settings = gateway_settings(
            {**backends.platform.addresses, "accounts": second.addresses["accounts"]}
        )
        async with open_gateway(validate_config(settings)) as client:
            for user_id in range(1, 7):
                await query(client, f'{{ user(id: "{user_id}") {{ name }} }}')
        counts = [len(await backends.admin.requests(e)) for e in second.endpoints("accounts")]
    assert counts == [3, 3]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"null", "The request must be a JSON object."),
        (b"123", "The request must be a JSON object."),
        (b"\xff\xfe{", "Unable to parse request body as JSON"),
        (b"[]", "Batching is not enabled"),
        (b"{}", "No GraphQL query found in the request"),
    ],
    ids=["null", "a number", "invalid UTF-8", "a batch", "no query"],
)
async def test_a_body_that_is_not_a_request_is_a_clear_400(
    gateway: httpx.AsyncClient, body: bytes, message: str
) -> None:
    response = await gateway.post(
        "/graphql", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert (error["message"], error["extensions"]["code"]) == (message, "BAD_REQUEST")


async def test_a_get_with_null_variables_is_a_query_without_variables(
    gateway: httpx.AsyncClient,
) -> None:
    response = await gateway.get(
        "/graphql", params={"query": "{ __typename }", "variables": "null"}
    )
    assert response.json() == {"data": {"__typename": "Query"}}
