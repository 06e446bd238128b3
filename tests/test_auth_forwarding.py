"""What the demo services are told about the caller, read from their own request records.

Forwarding is per upstream: here accounts gets identity headers, orders the
bearer token and identity headers, catalog (gRPC) identity metadata, and
reviews and inventory nothing. Nothing a client sends under those names ever
reaches a service, and a refused request reaches no service at all.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest
from joserfc import jwt as jose_jwt
from joserfc.jwk import OctKey

from services.launcher import DemoPlatform
from switchyard.config import validate_config
from switchyard.upstream import ForwardedIdentity
from tests.conftest import SERVICE_HEADERS, SERVICE_SCOPES, Backends, gateway_settings, open_gateway

SECRET = "forwarding-tests-secret-0123456789abcdef"
KEY = OctKey.import_key(SECRET, parameters={"kid": "tests"})
IMPOSTOR = OctKey.import_key("an-impostors-secret-0123456789abcdefgh")
IDENTITY = ("x-switchyard-subject", "x-switchyard-scopes", "x-switchyard-client-id")
SPOOFED = {
    "X-Switchyard-Subject": "1",
    "X-Switchyard-Scopes": "admin orders:read",
    "X-Switchyard-Client-Id": "someone-else",
}
EVERY_SERVICE = """
{ me { id orders(first: 1) { edges { node { items { product {
    name stock { available } reviews(first: 1) { totalCount } } } } } } } }
"""
FORWARDING = {
    "accounts": {"forward": {"identity_headers": True}},
    "orders": {"forward": {"bearer_token": True, "identity_headers": True}},
    "catalog": {"forward": {"identity_headers": True}},
}


def mint(subject: str, scope: str, key: OctKey = KEY, **claims: object) -> str:
    payload = {"sub": subject, "exp": int(time.time()) + 300, "scope": scope, **claims}
    return str(
        jose_jwt.encode({"alg": "HS256", "kid": "tests"}, payload, key, algorithms=["HS256"])
    )


@pytest.fixture(scope="module")
async def gateway(platform: DemoPlatform) -> AsyncIterator[httpx.AsyncClient]:
    auth = {"jwt": {"keys": [{"kid": "tests", "algorithms": ["HS256"], "secret": SECRET}]}}
    settings = gateway_settings(platform.addresses, auth=auth, upstreams=FORWARDING)
    async with open_gateway(validate_config(settings)) as client:
        yield client


async def received(backends: Backends, name: str) -> list[dict[str, str | None]]:
    """Per recorded request: the identity headers and authorization the service saw."""
    return [
        {header: record.headers.get(header) for header in (*IDENTITY, "authorization")}
        for record in await backends.records(name)
    ]


async def ask(gateway: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    response = await gateway.post("/graphql", json={"query": EVERY_SERVICE}, headers=headers)
    assert response.status_code == 200
    return response


async def find_owner(gateway: httpx.AsyncClient) -> str:
    response = await gateway.post(
        "/graphql",
        json={"query": "{ orders(first: 1) { edges { node { customer { id } } } } }"},
        headers=SERVICE_HEADERS,
    )
    customer_id: str = response.json()["data"]["orders"]["edges"][0]["node"]["customer"]["id"]
    return customer_id


async def test_each_upstream_gets_what_its_settings_forward(
    gateway: httpx.AsyncClient, backends: Backends
) -> None:
    subject = await find_owner(gateway)
    token = mint(subject, "profile orders:read", client_id="web-app")
    await backends.reset()
    body = (await ask(gateway, {"Authorization": f"Bearer {token}"})).json()
    assert "errors" not in body
    identity = {
        "x-switchyard-subject": subject,
        "x-switchyard-scopes": "orders:read profile",
        "x-switchyard-client-id": "web-app",
    }
    nothing = dict.fromkeys((*IDENTITY, "authorization"))
    assert await received(backends, "accounts") == [{**identity, "authorization": None}]
    assert await received(backends, "orders") == [{**identity, "authorization": f"Bearer {token}"}]
    assert await received(backends, "catalog") == [{**identity, "authorization": None}]
    assert await received(backends, "inventory") == [nothing]
    assert await received(backends, "reviews") == [nothing]


async def test_an_api_key_callers_spoofed_identity_headers_are_replaced(
    gateway: httpx.AsyncClient, backends: Backends
) -> None:
    response = await gateway.post(
        "/graphql",
        json={"query": '{ user(id: "2") { name email } }'},
        headers={**SERVICE_HEADERS, **SPOOFED},
    )
    assert "errors" not in response.json()
    assert await received(backends, "accounts") == [
        {
            "x-switchyard-subject": None,
            "x-switchyard-scopes": " ".join(sorted(SERVICE_SCOPES)),
            "x-switchyard-client-id": "test-service",
            "authorization": None,
        }
    ]


async def test_an_anonymous_callers_spoofed_identity_headers_reach_no_service(
    gateway: httpx.AsyncClient, backends: Backends
) -> None:
    response = await gateway.post(
        "/graphql", json={"query": '{ user(id: "2") { name email } }'}, headers=SPOOFED
    )
    body = response.json()
    assert body["data"] == {"user": {"name": body["data"]["user"]["name"], "email": None}}
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
    assert await received(backends, "accounts") == [dict.fromkeys((*IDENTITY, "authorization"))]


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {mint('1', 'orders:read', exp=1)}"},
        {"Authorization": f"Bearer {mint('1', 'orders:read', key=IMPOSTOR)}"},
        {"X-Api-Key": "an-unknown-key"},
    ],
    ids=["expired-token", "bad-signature", "unknown-api-key"],
)
async def test_a_refused_request_makes_no_upstream_call(
    gateway: httpx.AsyncClient, backends: Backends, headers: dict[str, str]
) -> None:
    response = await gateway.post("/graphql", json={"query": EVERY_SERVICE}, headers=headers)
    assert response.status_code == 401
    assert await backends.call_counts() == {}


def test_claims_that_are_not_printable_ascii_are_percent_encoded() -> None:
    identity = ForwardedIdentity("web\r\nx-injected: 1", "zoë", frozenset({"a", "b"}), "t.o.k")
    assert identity.headers(bearer_token=True, identity=True) == {
        "authorization": "Bearer t.o.k",
        "x-switchyard-client-id": "web%0D%0Ax-injected%3A%201",
        "x-switchyard-subject": "zo%C3%AB",
        "x-switchyard-scopes": "a b",
    }
    assert "t.o.k" not in repr(identity)
