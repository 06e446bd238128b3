"""Client for the accounts REST service."""

from __future__ import annotations

from switchyard import Service
from switchyard.upstream import CallScope, Upstream
from upstreams._json import JsonObject, Page, page_of, records_by_id

ACCOUNTS = Service("accounts")


async def users_by_id(
    upstream: Upstream, ids: list[str], scope: CallScope
) -> dict[str, JsonObject]:
    """Users by id; unknown ids are absent from the answer."""
    return await records_by_id(upstream, "/users", "users", ids, scope)


async def list_users(upstream: Upstream, first: int, after: str | None, scope: CallScope) -> Page:
    """One page of users in ascending id order."""
    params = {"first": str(first)}
    if after is not None:
        params["after"] = after
    return await page_of(upstream, "/users", "users", params, scope)
