"""The one answer to "does this HTTP request execute GraphQL?", asked by the edge and the view.

A POST executes an operation, and so does a GET carrying ``query`` (or naming a
persisted document: ``extensions``, ``documentId``); a GET without one is a
browser asking for GraphiQL.

    >>> executes_graphql("GET", {"query": "{ a }"})
    True
    >>> executes_graphql("GET", {})
    False
    >>> executes_graphql("GET", {"extensions": '{"persistedQuery": {}}'})
    True
"""

from __future__ import annotations

from collections.abc import Container

OPERATION_PARAMETERS = ("query", "extensions", "documentId")


def executes_graphql(method: str, query_parameters: Container[str]) -> bool:
    return method != "GET" or any(name in query_parameters for name in OPERATION_PARAMETERS)
