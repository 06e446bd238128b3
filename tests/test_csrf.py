"""CSRF prevention as Apollo Router does it: what a browser sends without a preflight is refused.

A GET, or a POST whose content type is one a form can send, is refused unless it carries
``apollo-require-preflight``, ``x-apollo-operation-name`` or a configured header; a JSON
POST was preflighted by the browser (CORS decided it) and passes. On by default in
production mode, off in development unless turned on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from schema import graph as demo_graph
from switchyard.app import create_app
from switchyard.config import validate_config
from switchyard.csrf import CsrfMiddleware
from tests.conftest import gateway_settings, open_gateway, unreachable_addresses

QUERY = "{ __typename }"
SIMPLE_TYPES = ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; b=1"]
CSRF_MESSAGE = (
    "This request has been blocked as a possible Cross-Site Request Forgery (CSRF). "
    "Send a Content-Type other than application/x-www-form-urlencoded, multipart/form-data "
    "and text/plain (application/json), or one of these headers: x-apollo-operation-name, "
    "apollo-require-preflight, x-requested-with."
)


def production(**sections: Any) -> dict[str, Any]:
    settings = gateway_settings(unreachable_addresses(), **sections)
    settings["server"] = {"mode": "production", "gc_freeze": False}
    return settings


@pytest.fixture(scope="module")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    config = validate_config(production(csrf={"required_headers": ["X-Requested-With"]}))
    async with open_gateway(config) as client:
        yield client


def assert_blocked(response: httpx.Response) -> None:
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert (error["message"], error["extensions"]["code"]) == (CSRF_MESSAGE, "BAD_REQUEST")


async def test_a_get_without_the_header_is_refused_and_admitted_with_it(
    client: httpx.AsyncClient,
) -> None:
    assert_blocked(await client.get("/graphql", params={"query": QUERY}))
    for header in ("apollo-require-preflight", "x-apollo-operation-name", "x-requested-with"):
        admitted = await client.get("/graphql", params={"query": QUERY}, headers={header: "1"})
        assert admitted.status_code == 200, header
        assert admitted.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize("content_type", SIMPLE_TYPES)
async def test_a_simple_post_is_refused_and_admitted_with_the_header(
    client: httpx.AsyncClient, content_type: str
) -> None:
    body = b'{"query": "{ __typename }"}'
    headers = {"content-type": content_type}
    assert_blocked(await client.post("/graphql", content=body, headers=headers))
    # Admitted past the CSRF rule; the body is then refused for its media type.
    admitted = await client.post(
        "/graphql", content=body, headers={**headers, "apollo-require-preflight": "true"}
    )
    assert admitted.status_code == 415
    assert admitted.json()["errors"][0]["extensions"]["code"] == "UNSUPPORTED_MEDIA_TYPE"


async def test_a_post_without_content_type_is_refused(client: httpx.AsyncClient) -> None:
    request = client.build_request("POST", "/graphql", content=b'{"query": "{ __typename }"}')
    request.headers.pop("content-type", None)
    assert_blocked(await client.send(request))


async def test_a_json_post_needs_no_header(client: httpx.AsyncClient) -> None:
    for content_type in ("application/json", "application/json; charset=utf-8"):
        response = await client.post(
            "/graphql",
            content=b'{"query": "{ __typename }"}',
            headers={"content-type": content_type},
        )
        assert response.json() == {"data": {"__typename": "Query"}}


async def test_probes_are_not_graphql_requests(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).status_code == 200


def units(settings: dict[str, Any]) -> list[Any]:
    app = create_app(validate_config(settings), demo_graph)
    return [unit.cls for unit in app.state.gateway.pipeline.middleware]


def test_on_by_default_in_production_only_and_configurable() -> None:
    development = gateway_settings(unreachable_addresses())
    assert CsrfMiddleware in units(production())
    assert CsrfMiddleware not in units(development)
    assert CsrfMiddleware not in units(production(csrf={"enabled": False}))
    assert CsrfMiddleware in units({**development, "csrf": {"enabled": True}})
