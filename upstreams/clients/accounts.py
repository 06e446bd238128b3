"""Client for the accounts REST service."""

from __future__ import annotations

from upstreams.call import CallScope, RestRequest
from upstreams.clients._json import (
    JsonObject,
    Page,
    expect_list,
    expect_object,
    index_by_id,
)
from upstreams.upstream import Upstream


class AccountsClient:
    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream

    async def batch_get_users(self, ids: list[str], scope: CallScope) -> dict[str, JsonObject]:
        """Users by id; unknown ids are absent from the answer."""
        request = RestRequest("/users", {"ids": ",".join(ids)})
        answer = expect_object(await self.upstream.call(request, scope), "accounts", "users")
        return index_by_id(expect_list(answer, "users", "accounts", "users"), "accounts", "users")

    async def list_users(self, first: int, after: str | None, scope: CallScope) -> Page:
        """One page of users in ascending id order."""
        params = {"first": str(first)}
        if after is not None:
            params["after"] = after
        answer = await self.upstream.call(RestRequest("/users", params), scope)
        page = expect_object(answer, "accounts", "users")
        expect_list(page, "users", "accounts", "users")
        return page
