"""The reviews REST service, newest first (``createdAt`` descending, then id descending).

    GET /reviews/{id}                    -> Review
    GET /reviews?productIds=1,2&first=5  -> {"results": {"1": {"reviews": [...], "pageInfo": ...,
                                             "totalCount": N, "averageRating": 4.2}, ...}}

Every requested product id gets a page; ``averageRating`` is the mean rating rounded to
2 decimals, null without reviews. ``after`` is accepted only with a single product id.
"""

from __future__ import annotations

from typing import Any

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


def create_app(data: DemoData, *, faults: FaultConfig | None = None) -> Starlette:
    """The reviews app over ``data``, with the per-product index and averages built up front."""
    reviews = [review_json(r) for r in data.reviews]
    by_id = {r["id"]: r for r in reviews}
    by_product: dict[str, list[dict[str, Any]]] = {}
    for review in reviews:
        by_product.setdefault(review["productId"], []).append(review)
    averages = {
        product_id: average_rating([r["rating"] for r in items])
        for product_id, items in by_product.items()
    }

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

    routes = [Route("/reviews", list_reviews), Route("/reviews/{id}", get_review)]
    return build_rest_app(SERVICE_NAME, routes, faults=faults)
