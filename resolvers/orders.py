"""Resolvers for orders (orders service)."""

from __future__ import annotations

from resolvers.context import GraphContext
from resolvers.loaders import connection_from_page
from resolvers.pagination import page_request
from resolvers.records import EMPTY_CONNECTION, ConnectionRecord, OrderRecord


async def order(ctx: GraphContext, order_id: str) -> OrderRecord | None:
    record: OrderRecord | None = await ctx.loaders.orders.load(order_id)
    return record


async def orders(
    ctx: GraphContext, first: int | None, after: str | None, status: str | None
) -> ConnectionRecord:
    request = page_request(first, after)
    if request is None:
        return EMPTY_CONNECTION
    page = await ctx.clients.orders.list_orders(request.first, request.after, status, ctx.scope)
    connection = connection_from_page(page, "orders", OrderRecord.from_json)
    for edge in connection.edges:
        ctx.loaders.orders.prime(edge.node.id, edge.node)
    return connection
