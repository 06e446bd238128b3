"""The graph's root ``Query`` type."""

from __future__ import annotations

import strawberry

from resolvers import accounts, catalog, orders
from schema.types import Connection, Order, OrderStatus, Product, User, context_of


@strawberry.type
class Query:
    @strawberry.field
    async def user(self, info: strawberry.Info, id: strawberry.ID) -> User | None:
        return await accounts.user(context_of(info), id)  # type: ignore[return-value]

    @strawberry.field
    async def users(
        self, info: strawberry.Info, first: int | None = 20, after: str | None = strawberry.UNSET
    ) -> Connection[User]:
        return await accounts.users(context_of(info), first, after)  # type: ignore[return-value]

    @strawberry.field
    async def order(self, info: strawberry.Info, id: strawberry.ID) -> Order | None:
        return await orders.order(context_of(info), id)  # type: ignore[return-value]

    @strawberry.field
    async def orders(
        self,
        info: strawberry.Info,
        first: int | None = 20,
        after: str | None = strawberry.UNSET,
        status: OrderStatus | None = strawberry.UNSET,
    ) -> Connection[Order]:
        status_name = status.value if status else None
        return await orders.orders(context_of(info), first, after, status_name)  # type: ignore[return-value]

    @strawberry.field
    async def product(self, info: strawberry.Info, id: strawberry.ID) -> Product | None:
        return await catalog.product(context_of(info), id)  # type: ignore[return-value]

    @strawberry.field
    async def products(
        self,
        info: strawberry.Info,
        search: str | None = strawberry.UNSET,
        category: str | None = strawberry.UNSET,
        first: int | None = 20,
        after: str | None = strawberry.UNSET,
    ) -> Connection[Product]:
        return await catalog.products(context_of(info), search, category, first, after)  # type: ignore[return-value]
