"""The three operations of the issue-10 benchmark (bench/run.py), shared by the floor and tests.

Each is sent with its ``operationName`` (``Small``, ``Medium``, ``Large``), by which the
floor (bench/floor.py) knows what to answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from bench.fanout import DEEP_QUERY

SMALL_QUERY = "query Small($id: ID!) { user(id: $id) { name } }"
MEDIUM_QUERY = (
    "query Medium($id: ID!) { user(id: $id) { name orders(first: 10) {"
    " edges { node { id items { quantity product { name } } } } } } }"
)
LARGE_QUERY = DEEP_QUERY.replace("query Deep(", "query Large(")


@dataclass(frozen=True, slots=True)
class Operation:
    name: str
    """``small``, ``medium`` or ``large``: the row label."""
    operation_name: str
    query: str
    variables: dict[str, Any]
    calls: int
    """Upstream calls the least work makes (the issue's count)."""
    chain: int
    """Round trips one after another (the least latency at a fixed upstream latency)."""

    @property
    def payload(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "variables": self.variables,
            "operationName": self.operation_name,
        }

    @property
    def body(self) -> bytes:
        return orjson.dumps(self.payload)


OPERATIONS: dict[str, Operation] = {
    "small": Operation("small", "Small", SMALL_QUERY, {"id": "1"}, calls=1, chain=1),
    "medium": Operation("medium", "Medium", MEDIUM_QUERY, {"id": "1"}, calls=3, chain=3),
    "large": Operation("large", "Large", LARGE_QUERY, {"n": 50}, calls=6, chain=4),
}
