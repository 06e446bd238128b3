"""CORS from an allow-list: preflights, the headers of actual answers, wildcards, config.

A browser decides from these headers; ``test_browser_cors.py`` shows Chromium doing so.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.middleware.cors import CORSMiddleware

from schema import graph as demo_graph
from switchyard.app import create_app
from switchyard.config import ConfigError, validate_config
from switchyard.cors import origin_pattern
from tests.conftest import SERVICE_KEY, gateway_settings, open_gateway, unreachable_addresses

APP = "https://app.example.com"
CORS = {"allow_origins": [APP, "https://*.shop.example"], "max_age": 900}


def settings(**sections: Any) -> dict[str, Any]:
    return gateway_settings(unreachable_addresses(), **sections)


@pytest.fixture(scope="module")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with open_gateway(validate_config(settings(cors=CORS))) as client:
        yield client


async def preflight(
    client: httpx.AsyncClient, origin: str, headers: str = "content-type, x-api-key"
) -> httpx.Response:
    return await client.options(
        "/graphql",
        headers={
            "origin": origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": headers,
        },
    )


async def test_a_listed_origin_is_allowed_the_gateway_headers(client: httpx.AsyncClient) -> None:
    response = await preflight(
        client,
        APP,
        "content-type, x-api-key, authorization, x-switchyard-debug, x-switchyard-cost, "
        "apollo-require-preflight, x-apollo-operation-name",
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == APP
    assert response.headers["access-control-max-age"] == "900"
    assert set(response.headers["access-control-allow-methods"].split(", ")) == {"GET", "POST"}
    allowed = {h.strip() for h in response.headers["access-control-allow-headers"].split(",")}
    assert {"x-api-key", "x-switchyard-debug", "apollo-require-preflight"} <= allowed
    assert "access-control-allow-credentials" not in response.headers


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "http://app.example.com",  # another scheme is another origin
        "https://app.example.com:8443",
        "https://shop.example",  # the wildcard's own domain is not one of its subdomains
        "https://evilshop.example",
        "https://a.shop.example.evil",
    ],
)
async def test_an_unlisted_origin_is_refused(client: httpx.AsyncClient, origin: str) -> None:
    response = await preflight(client, origin)
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers
    actual = await client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"origin": origin}
    )
    assert "access-control-allow-origin" not in actual.headers


@pytest.mark.parametrize("origin", ["https://eu.shop.example", "https://a.b.shop.example"])
async def test_a_subdomain_wildcard_admits_subdomains(
    client: httpx.AsyncClient, origin: str
) -> None:
    response = await preflight(client, origin)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == origin


async def test_a_header_outside_the_list_fails_the_preflight(client: httpx.AsyncClient) -> None:
    response = await preflight(client, APP, "content-type, x-something-else")
    assert response.status_code == 400


async def test_an_actual_answer_names_the_origin_and_exposes_the_request_id(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/graphql",
        json={"query": "{ __typename }"},
        headers={"origin": APP, "x-api-key": SERVICE_KEY},
    )
    assert response.json() == {"data": {"__typename": "Query"}}
    assert response.headers["access-control-allow-origin"] == APP
    assert "origin" in response.headers["vary"].lower()
    assert "x-request-id" in response.headers["access-control-expose-headers"].lower()


async def test_refusals_at_the_edge_carry_cors_headers_too(client: httpx.AsyncClient) -> None:
    # A page must be able to read why it was refused (here: an unknown API key, 401).
    response = await client.post(
        "/graphql",
        json={"query": "{ __typename }"},
        headers={"origin": APP, "x-api-key": "unknown"},
    )
    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == APP


async def test_credentials_only_when_configured() -> None:
    cors = {"allow_origins": [APP], "allow_credentials": True, "allow_headers": ["x-tenant"]}
    async with open_gateway(validate_config(settings(cors=cors))) as client:
        response = await preflight(client, APP, "content-type, x-tenant")
    assert response.status_code == 200
    assert response.headers["access-control-allow-credentials"] == "true"


async def test_the_csrf_headers_configured_are_allowed() -> None:
    configured = settings(cors={"allow_origins": [APP]}, csrf={"required_headers": ["x-csrf"]})
    async with open_gateway(validate_config(configured)) as client:
        assert (await preflight(client, APP, "content-type, x-csrf")).status_code == 200


async def test_without_origins_there_is_no_cors_unit() -> None:
    def units(config: dict[str, Any]) -> list[Any]:
        app = create_app(validate_config(config), demo_graph)
        return [unit.cls for unit in app.state.gateway.pipeline.middleware]

    assert CORSMiddleware not in units(settings())
    assert units(settings(cors=CORS)).count(CORSMiddleware) == 1


@pytest.mark.parametrize(
    ("cors", "message"),
    [
        ({"allow_origins": ["app.example.com"]}, "is not an origin"),
        ({"allow_origins": ["https://app.example.com/"]}, "is not an origin"),
        ({"allow_origins": ["https://app.*.com"]}, "is not an origin"),
        ({"allow_origins": ["*"], "allow_credentials": True}, "cannot be used"),
    ],
)
def test_config_refuses_what_is_not_an_origin(cors: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate_config(settings(cors=cors))


def test_the_wildcard_pattern_is_anchored_and_escaped() -> None:
    pattern = origin_pattern(["https://*.shop.example", "http://*.local.test:8080"])
    assert pattern is not None
    assert re.fullmatch(pattern, "http://x.local.test:8080")
    assert not re.fullmatch(pattern, "http://x.local.test:8081")
    assert not re.fullmatch(pattern, "https://x.shopXexample")
    assert origin_pattern([]) is None
