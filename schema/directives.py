"""The cost directives of the GraphQL Cost Directives specification, shown in the SDL.

``@cost(weight)`` overrides what a type, field or argument weighs;
``@listSize(...)`` says how long a list is expected to be::

    @strawberry.field(directives=[CONNECTION_SIZE])
    async def users(self, first: int | None = 20, ...) -> Connection[User]: ...

prints ``users(first: Int = 20, after: String): UserConnection!
@listSize(slicingArguments: ["first"], sizedFields: ["edges"])``.
``switchyard.cost`` reads them back from the SDL, so what clients see is what
they are charged by.

How the demo graph is annotated, and why:

- Every connection (``Query.users/orders/products``, ``User.orders``,
  ``Product.reviews``) is sized by ``first`` (0 to 100; the schema default
  applies when it is absent) and the size lands on ``edges``: the connection
  object counts once, each edge and node once per requested item.
- ``Order.items`` assumes 4 items and ``Stock.warehouses`` 3 warehouses: the
  most the demo platform ever returns (1 to 4 items per order, 1 to 3 of the
  5 warehouses per product), so estimates stay upper bounds.
- Weights stay the specification's defaults (objects 1, scalars and enums 0).
  Each object field costs one batched upstream call at most, and a search is
  the same single ``SearchProducts`` call as a listing, so nothing is heavier.
"""

from __future__ import annotations

import strawberry
from strawberry.schema_directive import Location

COST_LOCATIONS = [
    Location.ARGUMENT_DEFINITION,
    Location.ENUM,
    Location.FIELD_DEFINITION,
    Location.INPUT_FIELD_DEFINITION,
    Location.OBJECT,
    Location.SCALAR,
]


@strawberry.schema_directive(
    locations=COST_LOCATIONS,
    name="cost",
    description="The weight of a type, field or argument, replacing the default (objects 1, "
    "scalars and enums 0). A string, as in the specification, so it may be fractional.",
)
class Cost:
    weight: str


@strawberry.schema_directive(
    locations=[Location.FIELD_DEFINITION],
    name="listSize",
    description="How many items a list field returns: the largest slicing argument given, "
    "else assumedSize; sizedFields carries that size to child lists such as edges.",
)
class ListSize:
    assumed_size: int | None = None
    slicing_arguments: list[str] | None = None
    sized_fields: list[str] | None = None
    require_one_slicing_argument: bool | None = True


CONNECTION_SIZE = ListSize(slicing_arguments=["first"], sized_fields=["edges"])
"""Of every connection field: ``first`` items, counted on ``edges``."""

ORDER_ITEMS_SIZE = ListSize(assumed_size=4)
"""An order has 1 to 4 items in the demo data."""

WAREHOUSES_SIZE = ListSize(assumed_size=3)
"""A product is stocked in 1 to 3 of the 5 demo warehouses."""
