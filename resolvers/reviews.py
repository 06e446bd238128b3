"""Resolvers for reviews (reviews service)."""

from __future__ import annotations

from resolvers.context import GraphContext
from resolvers.loaders import PageKey
from resolvers.pagination import page_request
from resolvers.records import EMPTY_CONNECTION, ConnectionRecord, ReviewPageRecord


async def reviews_of_product(
    ctx: GraphContext, product_id: str, first: int | None, after: str | None
) -> ConnectionRecord:
    request = page_request(first, after)
    if request is None:
        return EMPTY_CONNECTION
    page: ReviewPageRecord = await ctx.loaders.product_reviews.load(
        PageKey(product_id, request.first, request.after)
    )
    return page.connection


async def average_rating(ctx: GraphContext, product_id: str) -> float | None:
    page: ReviewPageRecord = await ctx.loaders.product_reviews.load(PageKey(product_id, None, None))
    return page.average_rating
