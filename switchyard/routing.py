"""The one answer to "does this HTTP request execute GraphQL?", asked by the edge and the view.

A POST executes an operation, and so does a GET carrying ``query``; a GET
without one is a browser asking for GraphiQL.

    >>> executes_graphql("GET", {"query": "{ a }"})
    True
    >>> executes_graphql("GET", {})
    False
"""

from __future__ import annotations

from collections.abc import Container


def executes_graphql(method: str, query_parameters: Container[str]) -> bool:
    return method != "GET" or "query" in query_parameters
