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
- Weights stay the specification's defaults (objects 1, scalars and enums 0):
  each object field costs one batched upstream call at most, and a search is
  the same single ``SearchProducts`` call as a listing, so nothing is heavier.
  The exception is ``Product.averageRating``: a scalar, yet answered by a call
  to the reviews service, so it weighs 1 like an object.
"""

from __future__ import annotations

import strawberry
from strawberry import UNSET
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
    # UNSET, not None: the definition then prints without "= null" and a use
    # prints only the arguments it was given.
    assumed_size: int | None = UNSET
    slicing_arguments: list[str] | None = UNSET
    sized_fields: list[str] | None = UNSET
    require_one_slicing_argument: bool | None = True


def list_size(
    *,
    assumed_size: int | None = UNSET,
    slicing_arguments: list[str] | None = UNSET,
    sized_fields: list[str] | None = UNSET,
    require_one_slicing_argument: bool | None = UNSET,
) -> ListSize:
    """A ``@listSize`` showing only the arguments given::

        items: list[OrderItem] = strawberry.field(directives=[list_size(assumed_size=4)])

    prints ``items: [OrderItem!]! @listSize(assumedSize: 4)``.
    """
    return ListSize(
        assumed_size=assumed_size,
        slicing_arguments=slicing_arguments,
        sized_fields=sized_fields,
        require_one_slicing_argument=require_one_slicing_argument,
    )


CONNECTION_SIZE = list_size(slicing_arguments=["first"], sized_fields=["edges"])
"""Of every connection field: ``first`` items, counted on ``edges``."""

ORDER_ITEMS_SIZE = list_size(assumed_size=4)
"""An order has 1 to 4 items in the demo data."""

WAREHOUSES_SIZE = list_size(assumed_size=3)
"""A product is stocked in 1 to 3 of the 5 demo warehouses."""

UPSTREAM_SCALAR_COST = Cost(weight="1")
"""A scalar that costs its own upstream call weighs like an object."""
