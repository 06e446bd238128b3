"""``addReview``: the signed-in user's review of a product, written once by the reviews service.

The author is always the caller's token subject; every rule of the contract (who may
write, a rating from 1 to 5, a body of 1 to 2,000 characters) is checked before any
call, and the ``POST /reviews`` that follows is never sent twice, whatever happens.
The reviews service keeps what is posted, so these tests post to a product of their own.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import httpx
import pytest
from joserfc import jwt as jose_jwt
from joserfc.jwk import OctKey

from services.faults import FaultConfig
from services.launcher import DemoPlatform
from switchyard.config import validate_config
from tests.conftest import SERVICE_HEADERS, Backends, gateway_settings, open_gateway, query

SECRET = "add-review-tests-secret-0123456789abcdef"
KEY = OctKey.import_key(SECRET, parameters={"kid": "reviews-tests"})
AUTH = {"jwt": {"keys": [{"kid": "reviews-tests", "algorithms": ["HS256"], "secret": SECRET}]}}
REQUEST_ID = "add-review-test"
AUTHOR = "7"
PRODUCT = "437"
"""A reviewed product no other test reads the reviews of."""

ADD_REVIEW = """mutation Add($productId: ID!, $rating: Int!, $body: String!) {
  addReview(productId: $productId, rating: $rating, body: $body) {
    id rating body author { id } product { id }
  }
}"""
ADD_REVIEW_AT = [{"line": 2, "column": 3}]
NEWEST_REVIEW = """query Newest($id: ID!) {
  product(id: $id) { reviews(first: 1) { totalCount edges { node { id body } } } }
}"""
ANONYMOUS = {"X-Request-Id": REQUEST_ID}
API_KEY = {**SERVICE_HEADERS, "X-Request-Id": REQUEST_ID}
NO_REVIEW = {"addReview": None}


def bearer(subject: str, scope: str = "") -> dict[str, str]:
    claims = {"sub": subject, "exp": int(time.time()) + 300, "scope": scope}
    header = {"alg": "HS256", "kid": "reviews-tests"}
    token = jose_jwt.encode(header, claims, KEY, algorithms=["HS256"])
    return {"Authorization": f"Bearer {token}", "X-Request-Id": REQUEST_ID}


def review(rating: int = 4, body: str = "Does what it says.", **changes: Any) -> dict[str, Any]:
    return {"productId": PRODUCT, "rating": rating, "body": body, **changes}


def refused(message: str, code: str) -> dict[str, Any]:
    """The whole answer to an ``addReview`` that did not happen."""
    return {
        "data": NO_REVIEW,
        "errors": [
            {
                "message": message,
                "locations": ADD_REVIEW_AT,
                "path": ["addReview"],
                "extensions": {"code": code, "requestId": REQUEST_ID},
            }
        ],
    }


@pytest.fixture(scope="module")
async def gateway(platform: DemoPlatform) -> AsyncIterator[httpx.AsyncClient]:
    """The test gateway, also accepting bearer tokens signed with ``KEY``."""
    config = validate_config(gateway_settings(platform.addresses, auth=AUTH))
    async with open_gateway(config) as client:
        yield client


async def add_review(
    gateway: httpx.AsyncClient, variables: Mapping[str, Any], headers: Mapping[str, str]
) -> dict[str, Any]:
    response = await query(gateway, ADD_REVIEW, variables, headers)
    assert response.status_code == 200
    answer: dict[str, Any] = response.json()
    return answer


async def posts(backends: Backends) -> list[str]:
    """The calls the reviews service received, ``"POST /reviews"`` for each write."""
    return [record.call for record in await backends.records("reviews")]


async def newest_review(gateway: httpx.AsyncClient) -> dict[str, Any]:
    body = (await query(gateway, NEWEST_REVIEW, {"id": PRODUCT}, ANONYMOUS)).json()
    assert "errors" not in body
    reviews: dict[str, Any] = body["data"]["product"]["reviews"]
    return reviews


# --- writing --------------------------------------------------------------------------


async def test_a_signed_in_user_adds_a_review_written_by_them(
    gateway: httpx.AsyncClient, backends: Backends
) -> None:
    before = await newest_review(gateway)
    assert before["totalCount"] > 0
    await backends.reset()

    body = "Sturdy, and the colour is exactly as pictured."
    answer = await add_review(gateway, review(rating=5, body=body), bearer(AUTHOR))

    assert "errors" not in answer
    added = answer["data"]["addReview"]
    assert added == {
        "id": added["id"],
        "rating": 5,
        "body": body,
        "author": {"id": AUTHOR},
        "product": {"id": PRODUCT},
    }
    assert added["id"].isdecimal()
    (write,) = await backends.records("reviews")
    assert write.call == "POST /reviews"
    assert write.query == ""
    assert write.headers["content-type"] == "application/json"

    after = await newest_review(gateway)
    assert after["totalCount"] == before["totalCount"] + 1
    assert after["edges"] == [{"node": {"id": added["id"], "body": body}}]
    assert after["edges"] != before["edges"]


async def test_the_author_is_the_token_subject_whatever_the_scopes(
    gateway: httpx.AsyncClient, backends: Backends
) -> None:
    answer = await add_review(gateway, review(), bearer(AUTHOR, "admin orders:read"))
    assert answer["data"]["addReview"]["author"] == {"id": AUTHOR}
    assert await posts(backends) == ["POST /reviews"]


async def test_a_body_of_exactly_2000_characters_is_accepted(
    gateway: httpx.AsyncClient, backends: Backends
) -> None:
    answer = await add_review(gateway, review(body="x" * 2000), bearer(AUTHOR))
    assert "errors" not in answer
    assert len(answer["data"]["addReview"]["body"]) == 2000
    assert await posts(backends) == ["POST /reviews"]


# --- who may write --------------------------------------------------------------------


async def test_an_anonymous_caller_is_unauthenticated_and_nothing_is_sent(
    gateway: httpx.AsyncClient, backends: Backends
) -> None:
    answer = await add_review(gateway, review(), ANONYMOUS)
    assert answer == refused("Sign in to see this field.", "UNAUTHENTICATED")
    assert await posts(backends) == []


@pytest.mark.parametrize(
    "credentials",
    [lambda: API_KEY, lambda: bearer("billing-service")],
    ids=["api-key", "token-naming-no-user"],
)
async def test_a_caller_who_is_not_a_user_is_forbidden_and_nothing_is_sent(
    gateway: httpx.AsyncClient,
    backends: Backends,
    credentials: Callable[[], dict[str, str]],
) -> None:
    # Tokens are signed when the test runs, so that they are never expired.
    headers = credentials()
    answer = await add_review(gateway, review(), headers)
    assert answer == refused(
        "Only a signed-in user (a token naming a user id) may write a review.", "FORBIDDEN"
    )
    assert await posts(backends) == []


# --- what may be written --------------------------------------------------------------


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (review(rating=6), "rating must be between 1 and 5, got 6"),
        (review(rating=0), "rating must be between 1 and 5, got 0"),
        (review(body=""), "body must not be empty"),
        (review(body=" \n\t "), "body must not be empty"),
        (review(body="x" * 2001), "body must be at most 2000 characters"),
    ],
    ids=["rating-6", "rating-0", "empty-body", "blank-body", "body-2001-characters"],
)
async def test_invalid_input_is_refused_before_any_call(
    gateway: httpx.AsyncClient,
    backends: Backends,
    variables: dict[str, Any],
    message: str,
) -> None:
    answer = await add_review(gateway, variables, bearer(AUTHOR))
    assert answer == refused(message, "BAD_USER_INPUT")
    assert await posts(backends) == []


async def test_an_unknown_product_is_not_found_after_one_post(
    gateway: httpx.AsyncClient, backends: Backends
) -> None:
    answer = await add_review(gateway, review(productId="999999"), bearer(AUTHOR))
    assert answer == refused("Not found.", "NOT_FOUND")
    assert await posts(backends) == ["POST /reviews"]


# --- failures -------------------------------------------------------------------------


async def test_a_failing_reviews_service_is_called_once_never_retried(
    platform: DemoPlatform, gateway: httpx.AsyncClient, backends: Backends
) -> None:
    before = await newest_review(gateway)
    await backends.reset()
    endpoint = platform.endpoint("reviews")
    await backends.admin.set_faults(endpoint, FaultConfig(error_rate=1.0))
    try:
        answer = await add_review(gateway, review(), bearer(AUTHOR))
        calls = await posts(backends)
    finally:
        await backends.admin.set_faults(endpoint, FaultConfig())
    assert answer == refused("A service this field needs is unavailable.", "UPSTREAM_UNAVAILABLE")
    assert calls == ["POST /reviews"]
    assert await newest_review(gateway) == before


# --- cost -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("selection", "requested"),
    [
        # @cost(weight: "10") replaces the weight of the Review object.
        ("{ id }", 10),
        # ... and objects below weigh 1 each: author and product.
        ("{ id rating body author { id } product { id } }", 12),
    ],
    ids=["scalars", "with-author-and-product"],
)
async def test_a_review_costs_ten_points_plus_the_objects_it_reads(
    platform: DemoPlatform, backends: Backends, selection: str, requested: int
) -> None:
    settings = gateway_settings(platform.addresses, auth=AUTH, cost={"mode": "measure"})
    document = (
        f'mutation {{ addReview(productId: "{PRODUCT}", rating: 3, body: "Fine.") {selection} }}'
    )
    async with open_gateway(validate_config(settings)) as client:
        response = await query(client, document, None, bearer(AUTHOR))
    body = response.json()
    assert response.status_code == 200
    assert "errors" not in body
    # Estimated before any call, counted again from the answer: the same here.
    assert body["extensions"] == {
        "cost": {"requestedQueryCost": requested, "actualQueryCost": requested}
    }
    assert await posts(backends) == ["POST /reviews"]
