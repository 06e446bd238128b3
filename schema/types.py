"""The unified graph's object types, exactly as shared/DEMO-CONTRACT.md fixes them.

Leaf fields are plain attributes of the records resolvers return; only edges
that cross to another service have (async) resolvers, and those go through the
request's dataloaders.
"""

from __future__ import annotations

from enum import Enum
from typing import Generic, TypeVar

import strawberry

from resolvers import accounts, catalog, reviews
from resolvers.context import GraphContext
from resolvers.records import EMPTY_CONNECTION
from schema.authorization import owner_or_admin
from schema.directives import (
    CONNECTION_SIZE,
    ORDER_ITEMS_SIZE,
    UPSTREAM_SCALAR_COST,
    WAREHOUSES_SIZE,
)

T = TypeVar("T")


def context_of(info: strawberry.Info) -> GraphContext:
    context: GraphContext = info.context
    return context


def user_id(user: User) -> str:
    return user.id


@strawberry.enum
class Tier(Enum):
    FREE = "FREE"
    PRO = "PRO"
    ENTERPRISE = "ENTERPRISE"


@strawberry.enum
class OrderStatus(Enum):
    PENDING = "PENDING"
    PAID = "PAID"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    CANCELLED = "CANCELLED"


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo
    total_count: int | None


@strawberry.type
class Money:
    amount: str = strawberry.field(description='Decimal string with two decimals: "19.99".')
    currency: str


@strawberry.type
class User:
    id: strawberry.ID
    name: str
    email: str | None = strawberry.field(extensions=[owner_or_admin(user_id)])
    tier: Tier
    created_at: str

    @strawberry.field(  # type: ignore[untyped-decorator]
        extensions=[owner_or_admin(user_id, withheld=EMPTY_CONNECTION)],
        directives=[CONNECTION_SIZE],
    )
    async def orders(
        self, info: strawberry.Info, first: int | None = 10, after: str | None = strawberry.UNSET
    ) -> Connection[Order]:
        return await accounts.orders_of_user(context_of(info), self.id, first, after)  # type: ignore[return-value]


@strawberry.type
class Order:
    id: strawberry.ID
    status: OrderStatus
    created_at: str
    items: list[OrderItem] = strawberry.field(directives=[ORDER_ITEMS_SIZE])
    total: Money

    @strawberry.field
    async def customer(self, info: strawberry.Info) -> User | None:
        return await accounts.user(context_of(info), self.user_id)  # type: ignore[attr-defined,return-value]


@strawberry.type
class OrderItem:
    quantity: int
    unit_price: Money

    @strawberry.field
    async def product(self, info: strawberry.Info) -> Product | None:
        return await catalog.product(context_of(info), self.product_id)  # type: ignore[attr-defined,return-value]


@strawberry.type
class Stock:
    available: int
    warehouses: list[WarehouseStock] = strawberry.field(directives=[WAREHOUSES_SIZE])


@strawberry.type
class WarehouseStock:
    name: str
    available: int


@strawberry.type
class Product:
    id: strawberry.ID
    name: str
    description: str
    category: str
    price: Money

    @strawberry.field
    async def stock(self, info: strawberry.Info) -> Stock | None:
        return await catalog.stock(context_of(info), self.id)  # type: ignore[return-value]

    @strawberry.field(directives=[CONNECTION_SIZE])  # type: ignore[untyped-decorator]
    async def reviews(
        self, info: strawberry.Info, first: int | None = 5, after: str | None = strawberry.UNSET
    ) -> Connection[Review]:
        return await reviews.reviews_of_product(context_of(info), self.id, first, after)  # type: ignore[return-value]

    @strawberry.field(directives=[UPSTREAM_SCALAR_COST])  # type: ignore[untyped-decorator]
    async def average_rating(self, info: strawberry.Info) -> float | None:
        return await reviews.average_rating(context_of(info), self.id)


@strawberry.type
class Review:
    id: strawberry.ID
    rating: int
    body: str

    @strawberry.field
    async def author(self, info: strawberry.Info) -> User | None:
        return await accounts.user(context_of(info), self.author_id)  # type: ignore[attr-defined,return-value]

    @strawberry.field
    async def product(self, info: strawberry.Info) -> Product | None:
        return await catalog.product(context_of(info), self.product_id)  # type: ignore[attr-defined,return-value]
