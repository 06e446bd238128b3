"""Relay-style connections: the Strawberry types, the records resolvers return, the page checks.

    @strawberry.field(directives=[CONNECTION_SIZE])
    async def users(self, info: strawberry.Info, first: int | None = 20,
                    after: str | None = strawberry.UNSET) -> Connection[User] | None: ...

gives ``users(first: Int = 20, after: String): UserConnection`` with
``UserConnection { edges: [UserEdge!]! pageInfo: PageInfo! totalCount: Int }``.
Resolvers return a ``ConnectionRecord``; every edge carries the page's
continuation cursor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar

import strawberry

from switchyard.cache_control import cache_control
from switchyard.cost.annotations import list_size
from switchyard.errors import BadUserInput

T = TypeVar("T")

MAX_PAGE_SIZE = 100

CONNECTION_SIZE = list_size(slicing_arguments=["first"], sized_fields=["edges"])
"""``@listSize`` of every connection field: ``first`` items, counted on ``edges``."""
INHERIT = cache_control(inherit_max_age=True)
"""A connection's own types are as cacheable as the field that returns them."""


@strawberry.type(directives=[INHERIT])
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type(directives=[INHERIT])
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type(directives=[INHERIT])
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo
    total_count: int | None


@dataclass(slots=True)
class PageInfoRecord:
    has_next_page: bool
    end_cursor: str | None


@dataclass(slots=True)
class EdgeRecord:
    cursor: str
    node: Any


@dataclass(slots=True)
class ConnectionRecord:
    """One page as the connection types read it.

    >>> page = ConnectionRecord.of(["a", "b"], end_cursor="c2", has_next_page=True, total_count=9)
    >>> [edge.cursor for edge in page.edges], page.page_info.end_cursor
    (['c2', 'c2'], 'c2')
    """

    edges: list[EdgeRecord]
    page_info: PageInfoRecord
    total_count: int | None

    @classmethod
    def of(
        cls, nodes: list[Any], end_cursor: str | None, has_next_page: bool, total_count: int | None
    ) -> ConnectionRecord:
        """A page whose edges all carry the page's continuation cursor."""
        cursor = end_cursor or ""
        return cls(
            edges=[EdgeRecord(cursor, node) for node in nodes],
            page_info=PageInfoRecord(has_next_page=has_next_page, end_cursor=end_cursor),
            total_count=total_count,
        )


EMPTY_CONNECTION = ConnectionRecord(
    edges=[], page_info=PageInfoRecord(has_next_page=False, end_cursor=None), total_count=None
)
"""What ``first: 0`` answers, without calling any upstream."""


class PageRequest(NamedTuple):
    first: int
    after: str | None


def check_first(first: int | None, maximum: int = MAX_PAGE_SIZE) -> int:
    """``first`` may be 0 to ``maximum``; anything else, null too, is the client's error.

    >>> check_first(101)
    Traceback (most recent call last):
    ...
    switchyard.errors.BadUserInput: first must be between 0 and 100, got 101
    """
    if first is None or not 0 <= first <= maximum:
        shown = "null" if first is None else first
        raise BadUserInput(f"first must be between 0 and {maximum}, got {shown}")
    return first


def page_request(
    first: int | None, after: str | None, maximum: int = MAX_PAGE_SIZE
) -> PageRequest | None:
    """The checked page arguments, or None for ``first: 0``: an empty page, answered without
    calling (gRPC's ``page_size`` 0 would even mean "the service's default")."""
    first = check_first(first, maximum)
    if first == 0:
        return None
    return PageRequest(first, after or None)
