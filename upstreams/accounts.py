"""Client for the accounts REST service."""

from __future__ import annotations

from switchyard import Service
from switchyard.upstream import CallScope, RestRequest, Upstream
from upstreams._json import JsonObject, Page, expect_list, expect_object, index_by_id

ACCOUNTS = Service("accounts")


async def users_by_id(
    upstream: Upstream, ids: list[str], scope: CallScope
) -> dict[str, JsonObject]:
    """Users by id; unknown ids are absent from the answer."""
    request = RestRequest("/users", {"ids": ",".join(ids)})
    answer = expect_object(await upstream.call(request, scope), "accounts", "users")
    return index_by_id(expect_list(answer, "users", "accounts", "users"), "accounts", "users")


async def list_users(upstream: Upstream, first: int, after: str | None, scope: CallScope) -> Page:
    """One page of users in ascending id order."""
    params = {"first": str(first)}
    if after is not None:
        params["after"] = after
    page = expect_object(
        await upstream.call(RestRequest("/users", params), scope), "accounts", "users"
    )
    expect_list(page, "users", "accounts", "users")
    return page
