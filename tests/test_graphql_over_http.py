"""GraphQL over HTTP to the letter: media types, the status rule of each, 405/406/415,
clear 400s for requests that are not GraphQL requests, and RFC 6750 challenges.

The modern type (``application/graphql-response+json``) answers a client that accepts it,
``*/*`` or no ``Accept``; a request refused before execution then answers 4xx without a
``data`` key. A legacy client asking for ``application/json`` gets 200 for a GraphQL
request error, 400 for a request that is not a GraphQL request at all.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from joserfc import jwt as jose_jwt
from joserfc.jwk import OctKey

from switchyard.config import validate_config
from switchyard.media import Media, negotiate
from tests.conftest import (
    SERVICE_HEADERS,
    SERVICE_KEY,
    Backends,
    gateway_settings,
    open_gateway,
    unreachable_addresses,
)

MODERN = "application/graphql-response+json"
MODERN_TYPE = "application/graphql-response+json; charset=utf-8"
LEGACY = "application/json"
SECRET = "graphql-over-http-tests-secret-0123456789"
KEY = OctKey.import_key(SECRET, parameters={"kid": "goh"})
AUTH = {"jwt": {"keys": [{"kid": "goh", "algorithms": ["HS256"], "secret": SECRET}]}}
ADD_REVIEW = """mutation Add($productId: ID!, $rating: Int!, $body: String!) {
  addReview(productId: $productId, rating: $rating, body: $body) { id }
}"""


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"v": value}
    return value


# Requests that are GraphQL requests, refused before execution: 4xx with the modern type,
# 200 with legacy JSON.
REQUEST_ERRORS: dict[str, tuple[dict[str, Any], str]] = {
    "document parsing failure": ({"query": "{"}, "GRAPHQL_PARSE_FAILED"),
    "document validation failure": ({"query": "{ nope }"}, "GRAPHQL_VALIDATION_FAILED"),
    "variable coercion failure": (
        {"query": "query($n: Int!) { users(first: $n) { totalCount } }", "variables": {}},
        "BAD_USER_INPUT",
    ),
    "an operation limit": (
        {"query": "{ __typename }", "variables": {"v": nested(12)}},
        "OPERATION_LIMIT_EXCEEDED",
    ),
}
# Requests that are not GraphQL requests: 400 whatever the media type, with stable messages.
NOT_GRAPHQL_REQUESTS = {
    "bad JSON": (b'{ "not a JSON', "Unable to parse request body as JSON"),
    "a body that is not an object": (b'"{ __typename }"', "The request must be a JSON object."),
    "no query": (b'{"qeury": "{ __typename }"}', "No GraphQL query found in the request"),
    "a query that is not a string": (
        b'{"query": {"obj": "ect"}}',
        "The GraphQL operation's `query` must be a string or null, if provided.",
    ),
    "variables that are not an object": (
        b'{"query": "{ __typename }", "variables": [7]}',
        "The GraphQL operation's `variables` must be an object or null, if provided.",
    ),
    "extensions that are not an object": (
        b'{"query": "{ __typename }", "extensions": "x"}',
        "The GraphQL operation's `extensions` must be an object or null, if provided.",
    ),
}


@pytest.fixture(scope="module")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A development gateway whose upstreams are unreachable (CSRF prevention off)."""
    settings = gateway_settings(unreachable_addresses(), auth=AUTH)
    async with open_gateway(validate_config(settings)) as client:
        yield client


async def post(
    client: httpx.AsyncClient, content: bytes | dict[str, Any], accept: str | None
) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if accept is not None:
        headers["accept"] = accept
    if isinstance(content, dict):
        return await client.post("/graphql", json=content, headers=headers)
    return await client.post("/graphql", content=content, headers=headers)


def token(subject: str = "7") -> str:
    claims = {"sub": subject, "exp": int(time.time()) + 300, "scope": ""}
    return str(jose_jwt.encode({"alg": "HS256", "kid": "goh"}, claims, KEY, algorithms=["HS256"]))


# --- media types ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        (MODERN, MODERN_TYPE),
        (LEGACY, LEGACY),
        ("*/*", MODERN_TYPE),
        ("application/*", MODERN_TYPE),
        (f"{MODERN}, {LEGACY};q=0.9", MODERN_TYPE),
        (f"{LEGACY}, {MODERN};q=0.5", LEGACY),
        (f"{LEGACY}, */*", LEGACY),
        (f"{MODERN};q=0, {LEGACY}", LEGACY),
        (f"{MODERN}, {LEGACY}, multipart/mixed", MODERN_TYPE),  # GraphiQL's
    ],
)
async def test_the_answer_has_the_media_type_the_client_prefers(
    client: httpx.AsyncClient, accept: str, content_type: str
) -> None:
    response = await post(client, {"query": "{ __typename }"}, accept)
    assert (response.status_code, response.headers["content-type"]) == (200, content_type)
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_no_accept_header_gets_the_modern_type(client: httpx.AsyncClient) -> None:
    request = client.build_request("GET", "/graphql", params={"query": "{ __typename }"})
    del request.headers["accept"]
    response = await client.send(request)
    assert (response.status_code, response.headers["content-type"]) == (200, MODERN_TYPE)


def test_negotiation_follows_q_values_then_the_order_listed() -> None:
    assert negotiate(b"") is Media.GRAPHQL_RESPONSE
    assert negotiate(b"application/json, application/graphql-response+json") is Media.JSON
    assert negotiate(b"application/graphql-response+json, application/json") is (
        Media.GRAPHQL_RESPONSE
    )
    assert negotiate(b"text/html;q=0.9, application/json;q=0.1") is Media.JSON
    assert negotiate(b"*/*;q=0") is None
    assert negotiate(b"text/event-stream") is Media.STREAM


# --- status codes -----------------------------------------------------------------------


@pytest.mark.parametrize("case", list(REQUEST_ERRORS))
async def test_a_request_error_is_4xx_without_data_with_the_modern_type(
    client: httpx.AsyncClient, case: str
) -> None:
    body, code = REQUEST_ERRORS[case]
    response = await post(client, body, MODERN)
    assert (response.status_code, response.headers["content-type"]) == (400, MODERN_TYPE)
    answer = response.json()
    assert "data" not in answer
    assert [e["extensions"]["code"] for e in answer["errors"]] == [code]


@pytest.mark.parametrize("case", list(REQUEST_ERRORS))
async def test_a_request_error_is_200_with_legacy_json(
    client: httpx.AsyncClient, case: str
) -> None:
    body, code = REQUEST_ERRORS[case]
    response = await post(client, body, LEGACY)
    assert (response.status_code, response.headers["content-type"]) == (200, LEGACY)
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == [code]


@pytest.mark.parametrize("accept", [MODERN, LEGACY])
async def test_an_operation_that_cannot_be_determined(
    client: httpx.AsyncClient, accept: str
) -> None:
    unknown = {"query": "query A { __typename }", "operationName": "B"}
    response = await post(client, unknown, accept)
    assert response.status_code == (400 if accept == MODERN else 200)
    assert "data" not in response.json()
    (error,) = response.json()["errors"]
    assert (error["message"], error["extensions"]["code"]) == (
        'Unknown operation named "B".',
        "BAD_REQUEST",
    )


@pytest.mark.parametrize("accept", [MODERN, LEGACY])
@pytest.mark.parametrize("case", list(NOT_GRAPHQL_REQUESTS))
async def test_a_request_that_is_not_a_graphql_request_is_a_clear_400(
    client: httpx.AsyncClient, case: str, accept: str
) -> None:
    body, message = NOT_GRAPHQL_REQUESTS[case]
    response = await post(client, body, accept)
    assert response.status_code == 400
    expected_type = MODERN_TYPE if accept == MODERN else LEGACY
    assert response.headers["content-type"] == expected_type
    answer = response.json()
    assert "data" not in answer
    (error,) = answer["errors"]
    assert (error["message"], error["extensions"]["code"]) == (message, "BAD_REQUEST")


@pytest.mark.parametrize("accept", [MODERN, LEGACY])
async def test_field_errors_answer_200_with_data(
    gateway: httpx.AsyncClient, backends: Backends, accept: str
) -> None:
    # Anonymous: addReview is null with an error at its path; the operation executed.
    variables = {"productId": "437", "rating": 5, "body": "Anonymous."}
    response = await gateway.post(
        "/graphql",
        json={"query": ADD_REVIEW, "variables": variables},
        headers={"accept": accept},
    )
    expected_type = MODERN_TYPE if accept == MODERN else LEGACY
    assert (response.status_code, response.headers["content-type"]) == (200, expected_type)
    answer = response.json()
    assert answer["data"] == {"addReview": None}
    assert [(e["path"], e["extensions"]["code"]) for e in answer["errors"]] == [
        (["addReview"], "UNAUTHENTICATED")
    ]
    assert await backends.call_counts() == {}


@pytest.mark.parametrize("accept", [MODERN, LEGACY])
async def test_the_add_review_mutation_over_get_is_405_with_allow(
    gateway: httpx.AsyncClient, backends: Backends, accept: str
) -> None:
    variables = '{"productId": "437", "rating": 5, "body": "Over GET."}'
    response = await gateway.get(
        "/graphql",
        params={"query": ADD_REVIEW, "variables": variables},
        headers={**SERVICE_HEADERS, "accept": accept},
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "METHOD_NOT_ALLOWED"
    assert error["message"] == "mutations are not allowed when using GET"
    assert await backends.call_counts() == {}


async def test_a_query_over_get_answers(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/graphql", params={"query": "{ __typename }"}, headers={"accept": MODERN}
    )
    assert (response.status_code, response.json()) == (200, {"data": {"__typename": "Query"}})


async def test_other_methods_are_405_with_allow(client: httpx.AsyncClient) -> None:
    response = await client.put("/graphql", json={"query": "{ __typename }"})
    assert response.status_code == 405
    assert set(response.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}


@pytest.mark.parametrize("accept", ["text/html", "application/xml", f"{MODERN};q=0"])
async def test_an_unacceptable_accept_is_406(client: httpx.AsyncClient, accept: str) -> None:
    posted = await post(client, {"query": "{ __typename }"}, accept)
    got = await client.get(
        "/graphql", params={"query": "{ __typename }"}, headers={"accept": accept}
    )
    for response in (posted, got):
        assert response.status_code == 406
        (error,) = response.json()["errors"]
        assert error["extensions"]["code"] == "NOT_ACCEPTABLE"


async def test_the_ide_page_is_not_refused_as_unacceptable(client: httpx.AsyncClient) -> None:
    page = await client.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/graphql",
        "application/json; charset=latin-1",
    ],
)
async def test_an_unsupported_content_type_is_415(
    client: httpx.AsyncClient, content_type: str | None
) -> None:
    request = client.build_request("POST", "/graphql", content=b'{"query": "{ __typename }"}')
    if content_type is None:
        request.headers.pop("content-type", None)
    else:
        request.headers["content-type"] = content_type
    response = await client.send(request)
    assert response.status_code == 415
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "UNSUPPORTED_MEDIA_TYPE"


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON"])
async def test_json_in_utf8_is_read(client: httpx.AsyncClient, content_type: str) -> None:
    response = await client.post(
        "/graphql", content=b'{"query": "{ __typename }"}', headers={"content-type": content_type}
    )
    assert response.json() == {"data": {"__typename": "Query"}}


# --- RFC 6750 challenges ----------------------------------------------------------------


@pytest.fixture(scope="module")
async def closed() -> AsyncIterator[httpx.AsyncClient]:
    settings = gateway_settings(
        unreachable_addresses(), auth={**AUTH, "allow_anonymous": False, "realm": "shop"}
    )
    async with open_gateway(validate_config(settings)) as client:
        yield client


@pytest.mark.parametrize(
    ("headers", "challenge"),
    [
        ({}, 'Bearer realm="shop"'),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 'Bearer realm="shop"'),
        ({"X-Api-Key": "not-a-key"}, 'Bearer realm="shop"'),
        (
            {"Authorization": "Bearer not.a.token"},
            'Bearer realm="shop", error="invalid_token", error_description="malformed token"',
        ),
        (
            {"Authorization": "Bearer x"},
            'Bearer realm="shop", error="invalid_token", '
            'error_description="malformed bearer token"',
        ),
        (
            {"Authorization": "Bearer x", "X-Api-Key": SERVICE_KEY},
            'Bearer realm="shop", error="invalid_request", '
            'error_description="more than one credential"',
        ),
    ],
    ids=["none", "another scheme", "unknown API key", "bad token", "not a JWS", "two"],
)
async def test_a_401_challenges_as_rfc_6750_says(
    closed: httpx.AsyncClient, headers: dict[str, str], challenge: str
) -> None:
    response = await closed.post("/graphql", json={"query": "{ __typename }"}, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == challenge
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_valid_token_or_key_is_admitted(closed: httpx.AsyncClient) -> None:
    for headers in ({"Authorization": f"Bearer {token()}"}, SERVICE_HEADERS):
        response = await closed.post("/graphql", json={"query": "{ __typename }"}, headers=headers)
        assert response.json() == {"data": {"__typename": "Query"}}, headers
