"""``POST /reviews`` on the reviews service (docs/demo-contract.md), over real HTTP
against a real service process on a free loopback port.

The service keeps what is posted, so every test posts to a product of its own and
reads the state it starts from over HTTP.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from statistics import mean
from typing import Any

import httpx
import pytest

from services.admin import AdminClient
from services.data import DataSizes, DemoData
from services.launcher import DemoPlatform, find_free_ports

SEED = 11
SIZES = DataSizes(users=30, products=40, orders=20, reviews=200)
FIELDS = {"id", "productId", "authorId", "rating", "body", "createdAt"}


@pytest.fixture(scope="module")
def data() -> DemoData:
    return DemoData.from_sizes(SEED, SIZES)


@pytest.fixture(scope="module")
def platform() -> Iterator[DemoPlatform]:
    with DemoPlatform(
        ["reviews"], ports={"reviews": find_free_ports(1)}, seed=SEED, sizes=SIZES
    ) as running:
        yield running


@pytest.fixture(scope="module")
async def http(platform: DemoPlatform) -> AsyncIterator[httpx.AsyncClient]:
    address = platform.addresses["reviews"][0]
    async with httpx.AsyncClient(base_url=address, timeout=5) as client:
        yield client


@pytest.fixture(scope="module")
async def admin() -> AsyncIterator[AdminClient]:
    async with AdminClient() as client:
        yield client


def reviewed_products(data: DemoData) -> list[str]:
    """Reviewed product ids, by ascending id; each test takes its own."""
    return sorted({r.product_id for r in data.reviews}, key=int)


def new_review(product_id: str, **changes: Any) -> dict[str, Any]:
    return {"productId": product_id, "authorId": "3", "rating": 4, "body": "Solid."} | changes


async def product_page(http: httpx.AsyncClient, product_id: str) -> dict[str, Any]:
    response = await http.get("/reviews", params={"productIds": product_id, "first": "100"})
    page: dict[str, Any] = response.json()["results"][product_id]
    return page


async def test_a_posted_review_is_201_with_a_fresh_id_and_now(http, data):
    product_id = reviewed_products(data)[0]
    before = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
    response = await http.post("/reviews", json=new_review(product_id, body="Great  value."))
    after = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1))
    assert (response.status_code, response.headers["content-type"]) == (201, "application/json")
    review = response.json()
    assert set(review) == FIELDS
    assert int(review["id"]) > max(int(r.id) for r in data.reviews)
    assert review["id"] not in data.reviews_by_id
    assert {k: review[k] for k in ("productId", "authorId", "rating", "body")} == {
        "productId": product_id,
        "authorId": "3",
        "rating": 4,
        "body": "Great  value.",
    }
    assert before <= review["createdAt"] <= after
    assert review["createdAt"].endswith("Z") and len(review["createdAt"]) == 20
    assert (await http.get(f"/reviews/{review['id']}")).json() == review


async def test_the_new_review_leads_its_product_page_and_updates_the_totals(http, data):
    product_id = reviewed_products(data)[1]
    old = await product_page(http, product_id)
    ratings = [r["rating"] for r in old["reviews"]]
    assert old["totalCount"] == len(ratings) > 0
    first = (await http.post("/reviews", json=new_review(product_id, rating=1))).json()
    second = (await http.post("/reviews", json=new_review(product_id, rating=2))).json()
    assert int(second["id"]) == int(first["id"]) + 1
    page = await product_page(http, product_id)
    assert page["reviews"] == [second, first, *old["reviews"]]
    assert page["totalCount"] == old["totalCount"] + 2
    assert page["averageRating"] == round(mean([2, 1, *ratings]), 2)
    assert page["averageRating"] != old["averageRating"]
    short = await http.get("/reviews", params={"productIds": product_id, "first": "1"})
    assert short.json()["results"][product_id]["reviews"] == [second]


async def test_a_product_without_reviews_gets_its_first(http, data):
    unreviewed = next(p.id for p in data.products if p.id not in set(reviewed_products(data)))
    assert (await product_page(http, unreviewed))["averageRating"] is None
    review = (await http.post("/reviews", json=new_review(unreviewed, rating=5))).json()
    page = await product_page(http, unreviewed)
    assert (page["reviews"], page["totalCount"], page["averageRating"]) == ([review], 1, 5.0)


async def test_a_body_of_exactly_2000_characters_is_accepted(http, data):
    product_id = reviewed_products(data)[2]
    response = await http.post("/reviews", json=new_review(product_id, body="x" * 2000))
    assert response.status_code == 201
    assert len(response.json()["body"]) == 2000


RATING_ERROR = "rating must be an integer from 1 to 5"
BODY_ERROR = "body must be non-empty text of at most 2000 characters"


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"rating": 0}, RATING_ERROR),
        ({"rating": 6}, RATING_ERROR),
        ({"rating": -3}, RATING_ERROR),
        ({"rating": 4.5}, RATING_ERROR),
        ({"rating": 4.0}, RATING_ERROR),
        ({"rating": "5"}, RATING_ERROR),
        ({"rating": True}, RATING_ERROR),
        ({"rating": None}, RATING_ERROR),
        ({"body": ""}, BODY_ERROR),
        ({"body": " \n\t"}, BODY_ERROR),
        ({"body": "x" * 2001}, BODY_ERROR),
        ({"body": 42}, BODY_ERROR),
        ({"productId": 1}, "productId must be a non-empty string"),
        ({"authorId": ""}, "authorId must be a non-empty string"),
        ({"helpful": True}, "unknown fields: helpful"),
    ],
)
async def test_invalid_reviews_are_400(http, data, changes, error):
    product_id = reviewed_products(data)[3]
    before = await product_page(http, product_id)
    response = await http.post("/reviews", json=new_review(product_id, **changes))
    assert (response.status_code, response.json()) == (400, {"error": error})
    assert await product_page(http, product_id) == before


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b'{"productId": "1", ', "the body must be JSON"),
        (b"", "the body must be JSON"),
        (b'["1", "3", 4, "Solid."]', "the body must be a JSON object"),
        (b'{"productId": "1", "rating": 4}', "missing fields: authorId, body"),
        (b"{}", "missing fields: productId, authorId, rating, body"),
    ],
)
async def test_malformed_bodies_are_400(http, content, error):
    response = await http.post(
        "/reviews", content=content, headers={"content-type": "application/json"}
    )
    assert (response.status_code, response.json()) == (400, {"error": error})


async def test_an_unknown_product_is_404(http, data):
    for product_id in (str(len(data.products) + 1), "999999", "nope"):
        response = await http.post("/reviews", json=new_review(product_id))
        assert (response.status_code, response.json()) == (404, {"error": "not found"})
        page = await product_page(http, product_id)
        assert page["totalCount"] == 0


async def test_posts_are_recorded_like_gets(http, admin, platform, data):
    endpoint = platform.endpoint("reviews")
    product_id = reviewed_products(data)[4]
    await admin.reset(endpoint)
    await http.post("/reviews", json=new_review(product_id), headers={"X-Request-Id": "p-1"})
    await http.get("/reviews", params={"productIds": product_id})
    post, get = await admin.requests(endpoint)
    assert (post.service, post.call, post.query) == ("reviews", "POST /reviews", "")
    assert post.headers["x-request-id"] == "p-1"
    assert (get.call, get.query) == ("GET /reviews", f"productIds={product_id}")


async def test_other_methods_are_still_405(http):
    response = await http.delete("/reviews")
    assert (response.status_code, response.json()) == (405, {"error": "Method Not Allowed"})
