"""The graph's root ``Query`` type."""

from __future__ import annotations

import strawberry

from resolvers import accounts, catalog, orders
from resolvers.records import EMPTY_CONNECTION
from schema.authorization import authenticated, requires_scopes
from schema.directives import CONNECTION_SIZE
from schema.types import Connection, Order, OrderStatus, Product, User, context_of

ORDERS_READ = [["orders:read"]]
"""Anyone's orders by id or as a list; users read their own through ``me { orders }``."""


@strawberry.type
class Query:
    @strawberry.field
    async def user(self, info: strawberry.Info, id: strawberry.ID) -> User | None:
        return await accounts.user(context_of(info), id)  # type: ignore[return-value]

    @strawberry.field(directives=[CONNECTION_SIZE])  # type: ignore[untyped-decorator]
    async def users(
        self, info: strawberry.Info, first: int | None = 20, after: str | None = strawberry.UNSET
    ) -> Connection[User]:
        return await accounts.users(context_of(info), first, after)  # type: ignore[return-value]

    @strawberry.field(  # type: ignore[untyped-decorator]
        extensions=[authenticated()],
        description="The caller's own user: the token's subject (null for API-key callers).",
    )
    async def me(self, info: strawberry.Info) -> User | None:
        return await accounts.me(context_of(info))  # type: ignore[return-value]

    @strawberry.field(extensions=[requires_scopes(ORDERS_READ)])  # type: ignore[untyped-decorator]
    async def order(self, info: strawberry.Info, id: strawberry.ID) -> Order | None:
        return await orders.order(context_of(info), id)  # type: ignore[return-value]

    @strawberry.field(  # type: ignore[untyped-decorator]
        extensions=[requires_scopes(ORDERS_READ, withheld=EMPTY_CONNECTION)],
        directives=[CONNECTION_SIZE],
    )
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

    @strawberry.field(directives=[CONNECTION_SIZE])  # type: ignore[untyped-decorator]
    async def products(
        self,
        info: strawberry.Info,
        search: str | None = strawberry.UNSET,
        category: str | None = strawberry.UNSET,
        first: int | None = 20,
        after: str | None = strawberry.UNSET,
    ) -> Connection[Product]:
        return await catalog.products(context_of(info), search, category, first, after)  # type: ignore[return-value]
