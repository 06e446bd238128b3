"""Field-level authorization against the demo services: who reads which fields of a user.

The same query is asked by the user themselves, by another user, by an admin
and anonymously; the four answers are compared whole, errors included. What
owners and admins should see is read from the services directly.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from joserfc import jwt as jose_jwt
from joserfc.jwk import OctKey

from services.launcher import DemoPlatform
from switchyard.config import validate_config
from tests.conftest import SERVICE_HEADERS, gateway_settings, open_gateway, query

SECRET = "authorization-tests-secret-0123456789abcdef"
KEY = OctKey.import_key(SECRET, parameters={"kid": "tests"})
REQUEST_ID = "authz-test"
PROFILE = """query Profile($id: ID!) {
  user(id: $id) {
    id
    name
    email
    orders(first: 2) { totalCount edges { node { id } } }
  }
}"""
EMAIL_AT = [{"line": 5, "column": 5}]
ORDERS_AT = [{"line": 6, "column": 5}]
FORBIDDEN_ORDERS = None


def bearer(subject: str, scope: str = "") -> dict[str, str]:
    claims = {"sub": subject, "exp": int(time.time()) + 300, "scope": scope}
    token = jose_jwt.encode({"alg": "HS256", "kid": "tests"}, claims, KEY, algorithms=["HS256"])
    return {"Authorization": f"Bearer {token}", "X-Request-Id": REQUEST_ID}


ANONYMOUS = {"X-Request-Id": REQUEST_ID}


def error(message: str, code: str, path: list[str], locations: list[dict[str, int]]) -> Any:
    return {
        "message": message,
        "locations": locations,
        "path": path,
        "extensions": {"code": code, "requestId": REQUEST_ID},
    }


@pytest.fixture(scope="module")
async def gateway(platform: DemoPlatform) -> AsyncIterator[httpx.AsyncClient]:
    auth = {"jwt": {"keys": [{"kid": "tests", "algorithms": ["HS256"], "secret": SECRET}]}}
    config = validate_config(gateway_settings(platform.addresses, auth=auth))
    async with open_gateway(config) as client:
        yield client


@pytest.fixture(scope="module")
async def owner(gateway: httpx.AsyncClient, platform: DemoPlatform) -> dict[str, Any]:
    """A user with orders, as the accounts and orders services describe them."""
    first_order = await query(
        gateway, "{ orders(first: 1) { edges { node { customer { id } } } } }"
    )
    user_id = first_order.json()["data"]["orders"]["edges"][0]["node"]["customer"]["id"]
    async with httpx.AsyncClient() as services:
        user = (await services.get(f"{platform.addresses['accounts'][0]}/users/{user_id}")).json()
        pages = await services.get(
            f"{platform.addresses['orders'][0]}/orders",
            params={"userIds": user_id, "first": "2"},
        )
    page = pages.json()["results"][user_id]
    return {
        "id": user_id,
        "name": user["name"],
        "email": user["email"],
        "orders": {
            "totalCount": page["totalCount"],
            "edges": [{"node": {"id": order["id"]}} for order in page["orders"]],
        },
    }


async def ask(gateway: httpx.AsyncClient, user_id: str, headers: dict[str, str]) -> Any:
    response = await query(gateway, PROFILE, {"id": user_id}, headers=headers)
    assert response.status_code == 200
    return response.json()


async def test_the_user_themselves_reads_their_email_and_orders(
    gateway: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    assert await ask(gateway, owner["id"], bearer(owner["id"])) == {"data": {"user": owner}}


async def test_an_admin_reads_anyones_email_and_orders(
    gateway: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    assert await ask(gateway, owner["id"], bearer("999999", "admin")) == {"data": {"user": owner}}


async def test_another_user_gets_the_public_fields_and_forbidden_errors(
    gateway: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    other = str(int(owner["id"]) % 900 + 1)
    forbidden = "Only this user or an admin may see this field."
    assert await ask(gateway, owner["id"], bearer(other, "orders:read")) == {
        "data": {"user": {**owner, "email": None, "orders": FORBIDDEN_ORDERS}},
        "errors": [
            error(forbidden, "FORBIDDEN", ["user", "email"], EMAIL_AT),
            error(forbidden, "FORBIDDEN", ["user", "orders"], ORDERS_AT),
        ],
    }


async def test_an_anonymous_caller_gets_the_public_fields_and_unauthenticated_errors(
    gateway: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    sign_in = "Sign in to see this field."
    assert await ask(gateway, owner["id"], ANONYMOUS) == {
        "data": {"user": {**owner, "email": None, "orders": FORBIDDEN_ORDERS}},
        "errors": [
            error(sign_in, "UNAUTHENTICATED", ["user", "email"], EMAIL_AT),
            error(sign_in, "UNAUTHENTICATED", ["user", "orders"], ORDERS_AT),
        ],
    }


async def test_forbidden_orders_in_a_list_of_users_null_nothing_else(
    gateway: httpx.AsyncClient,
) -> None:
    body = (
        await query(
            gateway,
            "{ users(first: 3) { edges { node { id orders { totalCount } } } } }",
            None,
            ANONYMOUS,
        )
    ).json()
    assert [edge["node"]["orders"] for edge in body["data"]["users"]["edges"]] == [None] * 3
    assert [e["path"] for e in body["errors"]] == [
        ["users", "edges", i, "node", "orders"] for i in range(3)
    ]


async def test_me_is_the_user_the_token_names(
    gateway: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    body = (await query(gateway, "{ me { id email } }", None, bearer(owner["id"]))).json()
    assert body == {"data": {"me": {"id": owner["id"], "email": owner["email"]}}}


async def test_me_is_null_for_an_api_key_and_refused_to_anonymous_callers(
    gateway: httpx.AsyncClient,
) -> None:
    assert (await query(gateway, "{ me { id } }")).json() == {"data": {"me": None}}
    anonymous = (await query(gateway, "{ me { id } }", None, ANONYMOUS)).json()
    assert anonymous == {
        "data": {"me": None},
        "errors": [
            error(
                "Sign in to see this field.",
                "UNAUTHENTICATED",
                ["me"],
                [{"line": 1, "column": 3}],
            )
        ],
    }


async def test_orders_by_id_need_the_orders_read_scope(gateway: httpx.AsyncClient) -> None:
    document = '{ order(id: "1") { id } }'
    assert (await query(gateway, document, None, SERVICE_HEADERS)).json() == {
        "data": {"order": {"id": "1"}}
    }
    assert (await query(gateway, document, None, bearer("1"))).json() == {
        "data": {"order": None},
        "errors": [
            error(
                "This field needs scope orders:read.",
                "FORBIDDEN",
                ["order"],
                [{"line": 1, "column": 3}],
            )
        ],
    }


async def test_public_catalog_data_needs_no_identity(gateway: httpx.AsyncClient) -> None:
    document = (
        '{ product(id: "1") { id reviews(first: 1) { edges { node { author { name } } } } } }'
    )
    body = (await query(gateway, document, None, ANONYMOUS)).json()
    assert "errors" not in body
    assert body["data"]["product"]["id"] == "1"
