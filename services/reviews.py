"""The reviews REST service, newest first (``createdAt`` descending, then id descending).

    GET /reviews/{id}                    -> Review
    GET /reviews?productIds=1,2&first=5  -> {"results": {"1": {"reviews": [...], "pageInfo": ...,
                                             "totalCount": N, "averageRating": 4.2}, ...}}
    POST /reviews {"productId": "3", "authorId": "7", "rating": 5, "body": "Great."}
                                         -> 201 Review

Every requested product id gets a page; ``averageRating`` is the mean rating rounded to
2 decimals, null without reviews. ``after`` is accepted only with a single product id.

A posted review gets the next id and ``createdAt`` now, so it comes first in its
product's page. It lives in this process only: instances do not share posted reviews,
and a restart forgets them.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.data import DemoData, Review
from services.faults import FaultConfig
from services.rest import (
    RestError,
    build_rest_app,
    json_response,
    not_found,
    page_body,
    page_window,
    parse_ids,
)

SERVICE_NAME = "reviews"
MAX_BODY_CHARS = 2000
_NEW_REVIEW_FIELDS = ("productId", "authorId", "rating", "body")


def review_json(review: Review) -> dict[str, Any]:
    return {
        "id": review.id,
        "productId": review.product_id,
        "authorId": review.author_id,
        "rating": review.rating,
        "body": review.body,
        "createdAt": review.created_at,
    }


def average_rating(ratings: list[int]) -> float | None:
    """The mean rounded to 2 decimals, ``None`` for no ratings."""
    return round(sum(ratings) / len(ratings), 2) if ratings else None


def parse_new_review(raw: bytes) -> dict[str, Any]:
    """The fields of a ``POST /reviews`` body, checked; raises ``RestError(400)``.

    >>> parse_new_review(b'{"productId": "3", "authorId": "7", "rating": 5, "body": "Good."}')
    {'productId': '3', 'authorId': '7', 'rating': 5, 'body': 'Good.'}
    """
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise RestError(400, "the body must be JSON") from None
    if not isinstance(body, dict):
        raise RestError(400, "the body must be a JSON object")
    missing = [name for name in _NEW_REVIEW_FIELDS if name not in body]
    if missing:
        raise RestError(400, f"missing fields: {', '.join(missing)}")
    unknown = sorted(set(body) - set(_NEW_REVIEW_FIELDS))
    if unknown:
        raise RestError(400, f"unknown fields: {', '.join(unknown)}")
    for name in ("productId", "authorId"):
        if not isinstance(body[name], str) or not body[name]:
            raise RestError(400, f"{name} must be a non-empty string")
    rating = body["rating"]
    # bool is an int subclass: true must not pass as a rating of 1.
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise RestError(400, "rating must be an integer from 1 to 5")
    text = body["body"]
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_BODY_CHARS:
        raise RestError(400, f"body must be non-empty text of at most {MAX_BODY_CHARS} characters")
    return {name: body[name] for name in _NEW_REVIEW_FIELDS}


def create_app(data: DemoData, *, faults: FaultConfig | None = None) -> Starlette:
    """The reviews app over ``data``, with the per-product index and averages built up front
    and kept up to date by ``POST /reviews``."""
    reviews = [review_json(r) for r in data.reviews]
    by_id = {r["id"]: r for r in reviews}
    by_product: dict[str, list[dict[str, Any]]] = {}
    for review in reviews:
        by_product.setdefault(review["productId"], []).append(review)
    averages = {
        product_id: average_rating([r["rating"] for r in items])
        for product_id, items in by_product.items()
    }
    last_id = max((int(r["id"]) for r in reviews), default=0)

    async def get_review(request: Request) -> Response:
        review = by_id.get(request.path_params["id"])
        if review is None:
            raise not_found()
        return json_response(review)

    async def list_reviews(request: Request) -> Response:
        if "productIds" not in request.query_params:
            raise RestError(400, "productIds is required")
        product_ids = parse_ids(request, "productIds")
        if "after" in request.query_params and len(product_ids) != 1:
            raise RestError(400, "after is accepted only with a single product id")
        results = {}
        for product_id in product_ids:
            selected = by_product.get(product_id, [])
            window = page_window(request, len(selected))
            page = page_body("reviews", selected[window.start : window.stop], window)
            page["averageRating"] = averages.get(product_id)
            results[product_id] = page
        return json_response({"results": results})

    async def create_review(request: Request) -> Response:
        nonlocal last_id
        fields = parse_new_review(await request.body())
        product_id = fields["productId"]
        if product_id not in data.products_by_id:
            raise not_found()
        last_id += 1
        review = {
            "id": str(last_id),
            **fields,
            "createdAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        by_id[review["id"]] = review
        # Newest first: now is after every stored createdAt, and the id is the highest.
        selected = by_product.setdefault(product_id, [])
        selected.insert(0, review)
        averages[product_id] = average_rating([r["rating"] for r in selected])
        return json_response(review, 201)

    routes = [
        Route("/reviews", list_reviews, methods=["GET"]),
        Route("/reviews", create_review, methods=["POST"]),
        Route("/reviews/{id}", get_review),
    ]
    return build_rest_app(SERVICE_NAME, routes, faults=faults)
