"""Resolvers of the root fields: lists answered by one upstream call, lookups through the edges.

Arguments are checked before any call: ids are decimal integers (``decimal_id``),
cursors are what a service could have issued (``check_cursor``). Each list adds
the items its service answered to the request's work (``ctx.work``), the least
the request is charged.
"""

from __future__ import annotations

from resolvers.records import (
    OrderRecord,
    ProductRecord,
    ReviewRecord,
    UserRecord,
    connection_from_page,
)
from schema.types import order_edge, product_edge, user_edge
from switchyard import (
    EMPTY_CONNECTION,
    BadUserInput,
    ConnectionRecord,
    Forbidden,
    RequestContext,
    check_cursor,
    decimal_id,
    page_request,
)
from upstreams import accounts, catalog, orders, reviews

MAX_REVIEW_CHARACTERS = 2000


async def users(ctx: RequestContext, first: int | None, after: str | None) -> ConnectionRecord:
    request = page_request(first, check_cursor(after))
    if request is None:
        return EMPTY_CONNECTION
    upstream = ctx.upstream(accounts.ACCOUNTS)
    page = await accounts.list_users(upstream, request.first, request.after, ctx.scope)
    connection = connection_from_page(page, "users", UserRecord.from_json)
    ctx.work.received(len(connection.edges))
    for edge in connection.edges:
        user_edge.prime(ctx, edge.node.id, edge.node)
    return connection


async def all_orders(
    ctx: RequestContext, first: int | None, after: str | None, status: str | None
) -> ConnectionRecord:
    request = page_request(first, check_cursor(after))
    if request is None:
        return EMPTY_CONNECTION
    upstream = ctx.upstream(orders.ORDERS)
    page = await orders.list_orders(upstream, request.first, request.after, status, ctx.scope)
    connection = connection_from_page(page, "orders", OrderRecord.from_json)
    ctx.work.received(len(connection.edges))
    for edge in connection.edges:
        order_edge.prime(ctx, edge.node.id, edge.node)
    return connection


async def products(
    ctx: RequestContext,
    search: str | None,
    category: str | None,
    first: int | None,
    after: str | None,
) -> ConnectionRecord:
    request = page_request(first, check_cursor(after))
    if request is None:
        return EMPTY_CONNECTION
    answer = await catalog.search_products(
        ctx.upstream(catalog.CATALOG),
        search or "",
        category or "",
        request.first,
        request.after or "",
        ctx.scope,
    )
    nodes = [ProductRecord.from_message(message) for message in answer.products]
    ctx.work.received(len(nodes))
    for node in nodes:
        product_edge.prime(ctx, node.id, node)
    next_token = answer.next_page_token or None
    return ConnectionRecord.of(
        nodes,
        end_cursor=next_token,
        has_next_page=next_token is not None,
        total_count=answer.total_size,
    )


def user_id_of_caller(ctx: RequestContext) -> str | None:
    """The user a JWT names; None for API-key callers and subjects that are not user ids."""
    subject = ctx.caller.subject
    if subject is None:
        return None
    try:
        return decimal_id(subject)  # anything else names no user: never sent
    except BadUserInput:
        return None


async def me(ctx: RequestContext) -> UserRecord | None:
    user_id = user_id_of_caller(ctx)
    return None if user_id is None else await user_edge.load(ctx, user_id)


async def add_review(ctx: RequestContext, product_id: str, rating: int, body: str) -> ReviewRecord:
    """The caller's review of a product; the contract's rules are checked before any call."""
    author_id = user_id_of_caller(ctx)
    if author_id is None:
        raise Forbidden("Only a signed-in user (a token naming a user id) may write a review.")
    product_id = decimal_id(product_id)
    if not 1 <= rating <= 5:
        raise BadUserInput(f"rating must be between 1 and 5, got {rating}")
    if not body.strip():
        raise BadUserInput("body must not be empty")
    if len(body) > MAX_REVIEW_CHARACTERS:
        raise BadUserInput(f"body must be at most {MAX_REVIEW_CHARACTERS} characters")
    answer = await reviews.add_review(
        ctx.upstream(reviews.REVIEWS),
        product_id=product_id,
        author_id=author_id,
        rating=rating,
        body=body,
        scope=ctx.scope,
    )
    return ReviewRecord.from_json(answer)
