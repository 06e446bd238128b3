"""Per-request batching: every edge that crosses a service goes through one of these loaders.

A ``Loaders`` is made for each request inside the running event loop, so its
caches never outlive the request and no caller sees another's data. Each
loader is created on first use; a batch becomes one upstream call (or one per
distinct page shape, since the contract takes one ``first`` per call).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from functools import cached_property
from typing import Any, NamedTuple

from aiodataloader import DataLoader

from resolvers.records import (
    ConnectionRecord,
    OrderRecord,
    ProductRecord,
    ReviewPageRecord,
    ReviewRecord,
    StockRecord,
    UserRecord,
)
from upstreams.call import CallScope
from upstreams.clients import MAX_BATCH, DemoClients
from upstreams.clients._json import Page


class PageKey(NamedTuple):
    """One page of a per-parent list; ``first=None`` asks for any page (for page-level facts)."""

    parent_id: str
    first: int | None
    after: str | None


ANY_PAGE_SIZE = 1
"""The page size asked for when only page-level facts (``averageRating``) are wanted."""


def connection_from_page(
    page: Page, items_key: str, convert: Callable[[Any], Any]
) -> ConnectionRecord:
    page_info = page.get("pageInfo") or {}
    return ConnectionRecord.of(
        [convert(item) for item in page.get(items_key, [])],
        end_cursor=page_info.get("endCursor"),
        has_next_page=bool(page_info.get("hasNextPage", False)),
        total_count=page.get("totalCount"),
    )


async def load_pages(
    keys: Sequence[PageKey],
    fetch: Callable[[list[str], int, str | None], Awaitable[dict[str, Page]]],
) -> dict[PageKey, Page | None]:
    """Answer page keys with as few calls as the contract allows.

    Keys without ``after`` share one call per distinct ``first``; a key with
    ``after`` needs a call of its own. ``first=None`` keys join the largest page.
    """
    shared_first = max(
        (k.first for k in keys if k.after is None and k.first is not None), default=ANY_PAGE_SIZE
    )

    def call_for(key: PageKey) -> tuple[int, str | None, str | None]:
        first = key.first if key.first is not None else shared_first
        return first, key.after, key.parent_id if key.after is not None else None

    ids_by_call: dict[tuple[int, str | None, str | None], dict[str, None]] = defaultdict(dict)
    for key in keys:
        ids_by_call[call_for(key)][key.parent_id] = None
    calls = list(ids_by_call)
    answers = await asyncio.gather(
        *(fetch(list(ids_by_call[call]), call[0], call[1]) for call in calls)
    )
    pages_by_call = dict(zip(calls, answers, strict=True))
    return {key: pages_by_call[call_for(key)].get(key.parent_id) for key in keys}


class Loaders:
    """The dataloaders of one request."""

    def __init__(self, clients: DemoClients, scope: CallScope) -> None:
        self._clients = clients
        self._scope = scope

    @cached_property
    def users(self) -> DataLoader:
        return _loader(self._load_users)

    @cached_property
    def orders(self) -> DataLoader:
        return _loader(self._load_orders)

    @cached_property
    def products(self) -> DataLoader:
        return _loader(self._load_products)

    @cached_property
    def stock(self) -> DataLoader:
        return _loader(self._load_stock)

    @cached_property
    def user_orders(self) -> DataLoader:
        return _loader(self._load_user_orders)

    @cached_property
    def product_reviews(self) -> DataLoader:
        return _loader(self._load_product_reviews)

    async def _load_users(self, ids: list[str]) -> list[UserRecord | None]:
        found = await self._clients.accounts.batch_get_users(_unique(ids), self._scope)
        return [UserRecord.from_json(found[i]) if i in found else None for i in ids]

    async def _load_orders(self, ids: list[str]) -> list[OrderRecord | None]:
        found = await self._clients.orders.batch_get_orders(_unique(ids), self._scope)
        return [OrderRecord.from_json(found[i]) if i in found else None for i in ids]

    async def _load_products(self, ids: list[str]) -> list[ProductRecord | None]:
        found = await self._clients.catalog.batch_get_products(_unique(ids), self._scope)
        return [ProductRecord.from_message(found[i]) if i in found else None for i in ids]

    async def _load_stock(self, ids: list[str]) -> list[StockRecord | None]:
        found = await self._clients.inventory.batch_get_stock(_unique(ids), self._scope)
        return [StockRecord.from_message(found[i]) if i in found else None for i in ids]

    async def _load_user_orders(self, keys: list[PageKey]) -> list[ConnectionRecord]:
        def fetch(ids: list[str], first: int, after: str | None) -> Awaitable[dict[str, Page]]:
            return self._clients.orders.orders_of_users(ids, first, after, self._scope)

        pages = await load_pages(keys, fetch)
        return [_connection_or_empty(pages[key], "orders", OrderRecord.from_json) for key in keys]

    async def _load_product_reviews(self, keys: list[PageKey]) -> list[ReviewPageRecord]:
        def fetch(ids: list[str], first: int, after: str | None) -> Awaitable[dict[str, Page]]:
            return self._clients.reviews.reviews_of_products(ids, first, after, self._scope)

        pages = await load_pages(keys, fetch)
        records = []
        for key in keys:
            page = pages[key]
            average = page.get("averageRating") if page is not None else None
            records.append(
                ReviewPageRecord(
                    connection=_connection_or_empty(page, "reviews", ReviewRecord.from_json),
                    average_rating=average,
                )
            )
        return records


def _loader(batch: Callable[[list[Any]], Awaitable[list[Any]]]) -> DataLoader:
    return DataLoader(batch, max_batch_size=MAX_BATCH)


def _unique(ids: list[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def _connection_or_empty(
    page: Page | None, items_key: str, convert: Callable[[Any], Any]
) -> ConnectionRecord:
    if page is None:
        return ConnectionRecord.of([], end_cursor=None, has_next_page=False, total_count=0)
    return connection_from_page(page, items_key, convert)
