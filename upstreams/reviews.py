"""Client for the reviews REST service."""

from __future__ import annotations

from switchyard import Service
from switchyard.upstream import CallScope, RestRequest, Upstream
from upstreams._json import JsonObject, Page, expect_object, pages_per_parent

REVIEWS = Service("reviews")


async def reviews_of_products(
    upstream: Upstream, product_ids: list[str], first: int, after: str | None, scope: CallScope
) -> dict[str, Page]:
    """One page of reviews (with ``averageRating``) per product, newest first."""
    return await pages_per_parent(
        upstream, "/reviews", "productIds", product_ids, first, after, scope
    )


async def add_review(
    upstream: Upstream,
    *,
    product_id: str,
    author_id: str,
    rating: int,
    body: str,
    scope: CallScope,
) -> JsonObject:
    """``POST /reviews``: the new review. Not idempotent, so never sent twice."""
    request = RestRequest(
        "/reviews",
        method="POST",
        json={"productId": product_id, "authorId": author_id, "rating": rating, "body": body},
    )
    return expect_object(await upstream.call(request, scope), "reviews", request.operation)
