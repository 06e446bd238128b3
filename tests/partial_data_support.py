"""What the partial-data tests share: which service serves each field, and the check that
an answer is the full answer with only one service's fields nulled.

``service_at(path)`` names the service behind the field a response path ends at,
read from the demo graph (edges) and, for root fields calling a service directly,
from ``ROOT_SERVICES``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLNamedType, GraphQLObjectType, get_named_type

from schema import graph as demo_graph
from switchyard.config import load_config
from tests.conftest import PROJECT_CONFIG

ROOT_SERVICES = {"users": "accounts", "orders": "orders", "products": "catalog", "me": "accounts"}
"""Root fields whose resolvers call a service themselves (the others are edges)."""

README_QUERY = load_config(PROJECT_CONFIG).ide.initial_query or ""
"""The README's example query ("Try it"): GraphiQL's first query in the demo config."""

Path = list[str | int]


def _edge_services() -> dict[tuple[str, str], str]:
    services: dict[tuple[str, str], str] = {}
    for type_name, graphql_type in demo_graph.schema._schema.type_map.items():
        for field_name, graphql_field in getattr(graphql_type, "fields", {}).items():
            definition = (graphql_field.extensions or {}).get("strawberry-definition")
            resolver = getattr(definition, "base_resolver", None)
            edge = getattr(getattr(resolver, "wrapped_func", None), "__switchyard_edge__", None)
            if edge is not None:
                services[type_name, field_name] = edge.service.name
    for field_name, service in ROOT_SERVICES.items():
        services["Query", field_name] = service
    return services


FIELD_SERVICES = _edge_services()


def service_at(path: Path) -> str | None:
    """The service serving the field ``path`` ends at (None for a field of its parent's)."""
    parent: GraphQLNamedType | None = demo_graph.schema._schema.query_type
    owner: tuple[str, str] | None = None
    for segment in path:
        if isinstance(segment, int):
            continue
        assert isinstance(parent, GraphQLObjectType), path
        owner = (parent.name, segment)
        parent = get_named_type(parent.fields[segment].type)
    return None if owner is None else FIELD_SERVICES.get(owner)


def leaves(data: Any, path: Path | None = None) -> Iterator[tuple[Path, Any]]:
    """Every (path, value) of an answer, parents before children."""
    path = path or []
    if path:
        yield path, data
    if isinstance(data, dict):
        for key, value in data.items():
            yield from leaves(value, [*path, key])
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from leaves(value, [*path, index])


def nulled(data: Any, paths: list[Path]) -> Any:
    """``data`` with the value at each of ``paths`` replaced by null."""
    copied = copy.deepcopy(data)
    for path in paths:
        target = copied
        for segment in path[:-1]:
            target = target[segment]
        target[path[-1]] = None
    return copied


def assert_only_service_failed(
    baseline: dict[str, Any], body: dict[str, Any], service: str, code: str
) -> None:
    """``body`` is ``baseline`` with ``service``'s fields nulled, each with an error ``code``.

    Every error is at a field ``service`` serves; every field of ``service`` that had a
    value is at or under an error path; everything else is as in ``baseline``.
    """
    errors = body.get("errors", [])
    error_paths: list[Path] = [error["path"] for error in errors]
    assert {error["extensions"]["code"] for error in errors} <= {code}, errors
    wrong = [path for path in error_paths if service_at(path) != service]
    assert not wrong, f"errors at fields not served by {service}: {wrong}"
    assert body["data"] == nulled(baseline["data"], error_paths)
    served = [
        path
        for path, value in leaves(baseline["data"])
        if value is not None and service_at(path) == service
    ]
    uncovered = [p for p in served if not any(p[: len(e)] == e for e in error_paths)]
    assert not uncovered, f"{service}'s fields answered while it was down: {uncovered}"
