"""Resolvers for products (catalog service) and their stock (inventory service)."""

from __future__ import annotations

from resolvers.context import GraphContext
from resolvers.pagination import page_request
from resolvers.records import EMPTY_CONNECTION, ConnectionRecord, ProductRecord, StockRecord


async def product(ctx: GraphContext, product_id: str) -> ProductRecord | None:
    record: ProductRecord | None = await ctx.loaders.products.load(product_id)
    return record


async def products(
    ctx: GraphContext,
    search: str | None,
    category: str | None,
    first: int | None,
    after: str | None,
) -> ConnectionRecord:
    request = page_request(first, after)
    if request is None:
        return EMPTY_CONNECTION
    answer = await ctx.clients.catalog.search_products(
        search or "", category or "", request.first, request.after or "", ctx.scope
    )
    nodes = [ProductRecord.from_message(message) for message in answer.products]
    for node in nodes:
        ctx.loaders.products.prime(node.id, node)
    next_token = answer.next_page_token or None
    return ConnectionRecord.of(
        nodes,
        end_cursor=next_token,
        has_next_page=next_token is not None,
        total_count=answer.total_size,
    )


async def stock(ctx: GraphContext, product_id: str) -> StockRecord | None:
    record: StockRecord | None = await ctx.loaders.stock.load(product_id)
    return record
