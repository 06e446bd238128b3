"""Resolvers for users (accounts service)."""

from __future__ import annotations

from resolvers.context import GraphContext
from resolvers.loaders import PageKey, connection_from_page
from resolvers.pagination import page_request
from resolvers.records import EMPTY_CONNECTION, ConnectionRecord, UserRecord


async def user(ctx: GraphContext, user_id: str) -> UserRecord | None:
    record: UserRecord | None = await ctx.loaders.users.load(user_id)
    return record


async def users(ctx: GraphContext, first: int | None, after: str | None) -> ConnectionRecord:
    request = page_request(first, after)
    if request is None:
        return EMPTY_CONNECTION
    page = await ctx.clients.accounts.list_users(request.first, request.after, ctx.scope)
    connection = connection_from_page(page, "users", UserRecord.from_json)
    for edge in connection.edges:
        ctx.loaders.users.prime(edge.node.id, edge.node)
    return connection


async def orders_of_user(
    ctx: GraphContext, user_id: str, first: int | None, after: str | None
) -> ConnectionRecord:
    request = page_request(first, after)
    if request is None:
        return EMPTY_CONNECTION
    connection: ConnectionRecord = await ctx.loaders.user_orders.load(
        PageKey(user_id, request.first, request.after)
    )
    return connection


async def me(ctx: GraphContext) -> UserRecord | None:
    """The user a JWT names; None for API-key callers and subjects that are not user ids."""
    subject = ctx.caller.subject
    # Ids are decimal strings; anything else would make the whole users batch fail.
    if subject is None or not subject.isdecimal():
        return None
    return await user(ctx, subject)
