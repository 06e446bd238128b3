"""What the cost analysis refuses, as one small hierarchy with GraphQL error codes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from graphql import GraphQLError

from switchyard.errors import ErrorCode

COST_LIMIT_EXCEEDED = ErrorCode.COST_LIMIT_EXCEEDED
BAD_USER_INPUT = ErrorCode.BAD_USER_INPUT


# CostError
#  ├── SlicingArgumentError   BAD_USER_INPUT: requireOneSlicingArgument not met
#  └── CostLimitExceeded      COST_LIMIT_EXCEEDED: estimate above the maximum (max_cost, or
#                             the caller's whole budget: it could never be admitted)
class CostError(Exception):
    """An operation the cost analysis refuses; ``as_graphql_error()`` is what the client sees."""

    def __init__(
        self, message: str, *, code: ErrorCode = BAD_USER_INPUT, nodes: Iterable[Any] = ()
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.nodes = list(nodes)

    def extensions(self) -> dict[str, object]:
        return {"code": self.code.value}

    def as_graphql_error(self) -> GraphQLError:
        return GraphQLError(self.message, nodes=self.nodes or None, extensions=self.extensions())


class SlicingArgumentError(CostError):
    """A ``requireOneSlicingArgument`` list field given none or several of its slicing arguments."""


class CostLimitExceeded(CostError):
    """The estimate is above the maximum.

    >>> str(CostLimitExceeded(1230, 1000))
    'Query cost 1230 exceeds the maximum of 1000.'
    """

    def __init__(
        self,
        estimated_cost: int,
        maximum_cost: int,
        *,
        nodes: Iterable[Any] = (),
        message: str | None = None,
    ) -> None:
        super().__init__(
            message or f"Query cost {estimated_cost} exceeds the maximum of {maximum_cost}.",
            code=COST_LIMIT_EXCEEDED,
            nodes=nodes,
        )
        self.estimated_cost = estimated_cost
        self.maximum_cost = maximum_cost

    def extensions(self) -> dict[str, object]:
        return {
            "code": self.code.value,
            "estimatedCost": self.estimated_cost,
            "maximumCost": self.maximum_cost,
        }
