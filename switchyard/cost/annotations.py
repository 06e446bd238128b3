"""``@cost`` and ``@listSize`` as Strawberry schema directives, so a graph annotates its fields.

``@cost(weight)`` overrides what a type, field or argument weighs;
``@listSize(...)`` says how long a list is expected to be::

    @strawberry.field(directives=[list_size(slicing_arguments=["first"], sized_fields=["edges"])])
    async def users(self, first: int | None = 20, ...) -> Connection[User] | None: ...

prints ``users(first: Int = 20, after: String): UserConnection
@listSize(slicingArguments: ["first"], sizedFields: ["edges"])``.
``switchyard.cost`` reads them back from the SDL, so what clients see is what
they are charged by.
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


def cost(weight: int | float | str) -> Cost:
    """``@cost(weight: "...")``: the specification writes weights as strings.

    >>> cost(10).weight
    '10'
    """
    return Cost(weight=str(weight))
