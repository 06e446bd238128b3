"""Resolvers for reviews (reviews service)."""

from __future__ import annotations

from resolvers.context import GraphContext
from resolvers.loaders import PageKey
from resolvers.pagination import check_first
from resolvers.records import EMPTY_CONNECTION, ConnectionRecord, ReviewPageRecord


async def reviews_of_product(
    ctx: GraphContext, product_id: str, first: int | None, after: str | None
) -> ConnectionRecord:
    first = check_first(first)
    after = after or None
    if first == 0:
        return EMPTY_CONNECTION
    page: ReviewPageRecord = await ctx.loaders.product_reviews.load(
        PageKey(product_id, first, after)
    )
    return page.connection


async def average_rating(ctx: GraphContext, product_id: str) -> float | None:
    page: ReviewPageRecord = await ctx.loaders.product_reviews.load(PageKey(product_id, None, None))
    return page.average_rating
