"""Client for the reviews REST service."""

from __future__ import annotations

from upstreams.call import CallScope, RestRequest
from upstreams.clients._json import Page, expect_object
from upstreams.errors import UpstreamProtocolError
from upstreams.upstream import Upstream


class ReviewsClient:
    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream

    async def reviews_of_products(
        self, product_ids: list[str], first: int, after: str | None, scope: CallScope
    ) -> dict[str, Page]:
        """One page of reviews (with ``averageRating``) per product, newest first."""
        if after is not None and len(product_ids) != 1:
            raise ValueError("after is accepted only with a single product id")
        params = {"productIds": ",".join(product_ids), "first": str(first)}
        if after is not None:
            params["after"] = after
        answer = expect_object(
            await self.upstream.call(RestRequest("/reviews", params), scope), "reviews", "reviews"
        )
        results = answer.get("results")
        if not isinstance(results, dict):
            raise UpstreamProtocolError("reviews", "GET /reviews", "answer has no 'results' object")
        return results
