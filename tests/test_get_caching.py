"""Cacheable GET: `@cacheControl` hints give Cache-Control; answers carry an ETag; 304."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import pytest
from graphql import parse

from schema import graph
from services.launcher import DemoPlatform
from services.registry import SERVICE_NAMES
from switchyard.cache_control import CacheHints, Policy, etag_of, policy_of
from switchyard.config import validate_config
from tests.conftest import SERVICE_HEADERS, Backends, gateway_settings, open_gateway
from tests.test_upstream_headers import services_sending

PRODUCT = '{ product(id: "2") { name description price { amount currency } } }'
PRODUCTS = "{ products(first: 3) { edges { node { name } } pageInfo { hasNextPage } } }"
HINTS = CacheHints.from_sdl(graph.schema.as_str())


def policy(document: str) -> Policy:
    return policy_of(HINTS, graph.schema._schema, parse(document), None)


def test_policies_follow_the_schemas_hints() -> None:
    assert policy(PRODUCT) == Policy(60, private=False)
    assert policy(PRODUCTS) == Policy(60, private=False)
    # Fragments and inline fragments are walked; a field of a type without hints is not
    # cacheable (Product.stock), nor is a root field without one (users).
    assert policy('{ product(id: "1") { ...P } } fragment P on Product { name }').max_age == 60
    assert policy('{ product(id: "1") { name stock { available } } }').max_age == 0
    assert policy("{ users(first: 1) { edges { node { name } } } }").max_age == 0
    # Per-user fields are private, whatever else they are.
    assert policy("{ me { name email } }").private
    assert policy('mutation { addReview(productId: "1", rating: 5, body: "x") { id } }') == (
        Policy(0, private=False)
    )


@contextlib.asynccontextmanager
async def gateway_with(
    platform: DemoPlatform, **sections: Mapping[str, Any]
) -> AsyncIterator[httpx.AsyncClient]:
    settings = gateway_settings(
        platform.addresses,
        upstreams={name: {"cache": {"enabled": False}} for name in SERVICE_NAMES},
        **sections,
    )
    async with open_gateway(validate_config(settings)) as client:
        yield client


async def get(
    client: httpx.AsyncClient, document: str, headers: Mapping[str, str] | None = None
) -> httpx.Response:
    return await client.get("/graphql", params={"query": document}, headers=headers)


async def test_a_public_answer_is_cacheable_with_an_etag_and_304(platform: DemoPlatform) -> None:
    async with gateway_with(platform) as client:
        first = await get(client, PRODUCT)
        assert first.status_code == 200
        assert first.headers["cache-control"] == "public, max-age=60"
        assert first.headers["vary"] == "Authorization, X-Api-Key"
        assert first.headers["etag"] == etag_of(first.content)
        etag = first.headers["etag"]
        second = await get(client, PRODUCT, {"If-None-Match": f'"other", {etag}'})
        assert (second.status_code, second.content, second.headers["etag"]) == (304, b"", etag)
        assert second.headers["cache-control"] == "public, max-age=60"
        other = await get(client, PRODUCTS, {"If-None-Match": etag})
        assert other.status_code == 200
        assert other.headers["cache-control"] == "public, max-age=60"
        # A POST is never cached: no policy, no ETag.
        posted = await client.post("/graphql", json={"query": PRODUCT})
        assert "etag" not in posted.headers
        assert "cache-control" not in posted.headers


async def test_per_user_uncacheable_or_failed_answers_are_not_public(
    platform: DemoPlatform,
) -> None:
    async with gateway_with(platform) as client:
        private = await get(client, '{ user(id: "1") { email } product(id: "1") { name } }')
        users = await get(client, "{ users(first: 2) { edges { node { name } } } }")
        failed = await get(client, '{ product(id: "x") { name } }')
        refused = await get(client, "{ product { name } }")
    assert private.headers["cache-control"] == "no-store"  # User has no hint: max-age 0
    assert users.headers["cache-control"] == "no-store"
    assert failed.json().get("errors") and failed.headers["cache-control"] == "no-store"
    assert refused.json()["errors"] and refused.headers["cache-control"] == "no-store"
    assert "etag" not in users.headers


async def test_private_hints_make_the_answer_private(platform: DemoPlatform) -> None:
    # me's own hint is private, its User type has none: private and not cacheable.
    assert policy("{ me { name } }") == Policy(0, private=True)
    async with gateway_with(platform) as client:
        response = await get(client, "{ me { name } }", SERVICE_HEADERS)
    assert response.headers["cache-control"] == "no-store"


async def test_a_body_with_the_callers_budget_is_private(platform: DemoPlatform) -> None:
    async with gateway_with(
        platform, cost={"mode": "enforce"}, budgets={"enabled": True}
    ) as client:
        response = await get(client, PRODUCT)
    assert "throttleStatus" in response.json()["extensions"]["cost"]
    assert response.headers["cache-control"] == "private, max-age=60"


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        ("max-age=20", "public, max-age=20"),
        ("private, max-age=30", "private, max-age=30"),
        ("max-age=600", "public, max-age=60"),
        (None, "no-store"),
    ],
)
async def test_the_upstreams_cache_control_is_combined_most_restrictive_wins(
    platform: DemoPlatform, backends: Backends, sent: str | None, expected: str
) -> None:
    document = '{ product(id: "4") { name averageRating } }'  # averageRating: reviews (REST)
    headers = {"reviews": {"Cache-Control": sent}} if sent else {}
    async with (
        services_sending(backends, platform, headers),
        gateway_with(platform, response_headers={"cache_control": "most_restrictive"}) as client,
    ):
        response = await get(client, document)
    assert "errors" not in response.json()
    assert response.headers["cache-control"] == expected


async def test_http_caching_off_adds_nothing(platform: DemoPlatform) -> None:
    async with gateway_with(platform, http_cache={"enabled": False}) as client:
        response = await get(client, PRODUCT)
    assert response.status_code == 200
    assert "etag" not in response.headers
    assert "cache-control" not in response.headers
