"""Client for the reviews REST service."""

from __future__ import annotations

from upstreams.call import CallScope
from upstreams.clients._json import Page, pages_per_parent
from upstreams.upstream import Upstream


class ReviewsClient:
    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream

    async def reviews_of_products(
        self, product_ids: list[str], first: int, after: str | None, scope: CallScope
    ) -> dict[str, Page]:
        """One page of reviews (with ``averageRating``) per product, newest first."""
        return await pages_per_parent(
            self.upstream, "/reviews", "productIds", product_ids, first, after, scope
        )
