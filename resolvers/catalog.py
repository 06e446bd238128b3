"""Resolvers for products (catalog service) and their stock (inventory service)."""

from __future__ import annotations

from resolvers.context import GraphContext
from resolvers.pagination import check_first
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
    first = check_first(first)
    after = after or None
    if first == 0:  # page_size 0 means "service default" in gRPC: answer it here
        return EMPTY_CONNECTION
    answer = await ctx.clients.catalog.search_products(
        search or "", category or "", first, after or "", ctx.scope
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
