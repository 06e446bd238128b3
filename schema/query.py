"""The graph's root types: ``Query`` and ``Mutation``."""

from __future__ import annotations

import strawberry

from resolvers import roots
from schema.types import (
    Order,
    OrderStatus,
    Product,
    Review,
    User,
    order_edge,
    product_edge,
    user_edge,
)
from switchyard import (
    CONNECTION_SIZE,
    PRIVATE,
    Connection,
    authenticated,
    cache_control,
    cost,
    requires_scopes,
)
from upstreams import accounts, catalog, orders, reviews

ORDERS_READ = [["orders:read"]]
"""Anyone's orders by id or as a list; users read their own through ``me { orders }``."""

ROOT_SERVICES = (accounts.ACCOUNTS, orders.ORDERS, catalog.CATALOG, reviews.REVIEWS)
"""The services root fields call directly (the edges name theirs)."""


@strawberry.type
class Query:
    user: User | None = user_edge.lookup_field()

    @strawberry.field(directives=[CONNECTION_SIZE])  # type: ignore[untyped-decorator]
    async def users(
        self, info: strawberry.Info, first: int | None = 20, after: str | None = strawberry.UNSET
    ) -> Connection[User] | None:
        return await roots.users(info.context, first, after)  # type: ignore[return-value]

    @strawberry.field(  # type: ignore[untyped-decorator]
        extensions=[authenticated()],
        directives=[cache_control(scope=PRIVATE)],
        description="The caller's own user: the token's subject (null for API-key callers).",
    )
    async def me(self, info: strawberry.Info) -> User | None:
        return await roots.me(info.context)  # type: ignore[return-value]

    order: Order | None = order_edge.lookup_field(extensions=[requires_scopes(ORDERS_READ)])

    @strawberry.field(  # type: ignore[untyped-decorator]
        extensions=[requires_scopes(ORDERS_READ)], directives=[CONNECTION_SIZE]
    )
    async def orders(
        self,
        info: strawberry.Info,
        first: int | None = 20,
        after: str | None = strawberry.UNSET,
        status: OrderStatus | None = strawberry.UNSET,
    ) -> Connection[Order] | None:
        status_name = status.value if status else None
        return await roots.all_orders(info.context, first, after, status_name)  # type: ignore[return-value]

    product: Product | None = product_edge.lookup_field()

    @strawberry.field(  # type: ignore[untyped-decorator]
        directives=[CONNECTION_SIZE, cache_control(max_age=60)]
    )
    async def products(
        self,
        info: strawberry.Info,
        search: str | None = strawberry.UNSET,
        category: str | None = strawberry.UNSET,
        first: int | None = 20,
        after: str | None = strawberry.UNSET,
    ) -> Connection[Product] | None:
        return await roots.products(info.context, search, category, first, after)  # type: ignore[return-value]


@strawberry.type
class Mutation:
    @strawberry.mutation(  # type: ignore[untyped-decorator]
        extensions=[authenticated()],
        # A write costs the service more than a read of one object; never retried.
        directives=[cost(10)],
        description="A review by the signed-in user (the token's subject).",
    )
    async def add_review(
        self, info: strawberry.Info, product_id: strawberry.ID, rating: int, body: str
    ) -> Review | None:
        return await roots.add_review(info.context, product_id, rating, body)  # type: ignore[return-value]
