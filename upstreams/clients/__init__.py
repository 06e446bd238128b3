"""Typed clients for the demo platform's five services (shared/DEMO-CONTRACT.md).

Each client turns a method call into one ``Upstream.call``; none knows of GraphQL.
"""

from __future__ import annotations

from dataclasses import dataclass

from upstreams.clients.accounts import AccountsClient
from upstreams.clients.catalog import CatalogClient
from upstreams.clients.inventory import InventoryClient
from upstreams.clients.orders import OrdersClient
from upstreams.clients.reviews import ReviewsClient
from upstreams.upstream import Upstreams

MAX_BATCH = 500
"""The contract's limit on ids per batch call; loaders never ask for more."""

DEMO_UPSTREAMS = ("accounts", "orders", "reviews", "catalog", "inventory")


@dataclass(frozen=True, slots=True)
class DemoClients:
    """One client per demo service, sharing the app-lifetime upstreams."""

    accounts: AccountsClient
    orders: OrdersClient
    reviews: ReviewsClient
    catalog: CatalogClient
    inventory: InventoryClient

    @classmethod
    def from_upstreams(cls, upstreams: Upstreams) -> DemoClients:
        missing = [name for name in DEMO_UPSTREAMS if name not in upstreams]
        if missing:
            raise KeyError(f"upstreams not configured: {', '.join(missing)}")
        return cls(
            accounts=AccountsClient(upstreams["accounts"]),
            orders=OrdersClient(upstreams["orders"]),
            reviews=ReviewsClient(upstreams["reviews"]),
            catalog=CatalogClient(upstreams["catalog"]),
            inventory=InventoryClient(upstreams["inventory"]),
        )
