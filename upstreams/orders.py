"""Client for the orders REST service."""

from __future__ import annotations

from switchyard import Service
from switchyard.upstream import CallScope, Upstream
from upstreams._json import JsonObject, Page, page_of, pages_per_parent, records_by_id

ORDERS = Service("orders")


async def orders_by_id(
    upstream: Upstream, ids: list[str], scope: CallScope
) -> dict[str, JsonObject]:
    """Orders by id; unknown ids are absent from the answer."""
    return await records_by_id(upstream, "/orders", "orders", ids, scope)


async def list_orders(
    upstream: Upstream, first: int, after: str | None, status: str | None, scope: CallScope
) -> Page:
    """One page of all orders, newest first, optionally of one status."""
    params = {"first": str(first)}
    if after is not None:
        params["after"] = after
    if status is not None:
        params["status"] = status
    return await page_of(upstream, "/orders", "orders", params, scope)


async def orders_of_users(
    upstream: Upstream, user_ids: list[str], first: int, after: str | None, scope: CallScope
) -> dict[str, Page]:
    """One page of orders per user, newest first; ``after`` only with a single user."""
    return await pages_per_parent(upstream, "/orders", "userIds", user_ids, first, after, scope)
