"""``Graph``: what a team plugs into Switchyard, and how the runtime finds and checks it.

A graph is a Strawberry schema; the services it calls are found from the
edges its fields declare (``switchyard.edges``), plus any it names itself for
root fields. The smallest graph calls none::

    import strawberry
    from switchyard import Graph

    @strawberry.type
    class Query:
        hello: str = "world"

    graph = Graph(schema=strawberry.Schema(query=Query))

It is found by an import string, the way uvicorn finds an app:
``[graph] module = "mygraph:graph"`` in the config, or
``switchyard serve --graph mygraph:graph``, resolved with the config file's
folder first on the import path.
"""

from __future__ import annotations

import copy
import importlib
import sys
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import strawberry
from graphql import GraphQLNonNull
from strawberry.extensions import SchemaExtension

from switchyard.service import Service
from switchyard.upstream.kinds import TransportFactory, kinds_with
from switchyard.upstream.settings import UpstreamSettings

ExtensionFactory = type[SchemaExtension] | Callable[[], SchemaExtension]


class GraphLoadError(Exception):
    """A graph that cannot be loaded or does not fit the config; the message is one line."""


@dataclass(frozen=True)
class Graph:
    """A schema and the services behind it.

    ``services`` adds services that root fields call directly; those behind
    declared edges are found in the schema. Each needs an ``[upstreams.NAME]``
    table in the config, and resolvers reach it as
    ``info.context.upstream(SERVICE)``.
    """

    schema: strawberry.Schema
    services: Collection[Service] = ()

    @cached_property
    def all_services(self) -> dict[str, Service]:
        check_root_fields(self.schema)
        found: dict[str, Service] = {}
        for service in [*self.services, *(edge.service for edge in edges_of(self.schema))]:
            known = found.setdefault(service.name, service)
            if known is not service and dict(known.kinds) != dict(service.kinds):
                raise GraphLoadError(f"service {service.name!r} is declared twice, differently")
        return found

    @cached_property
    def root_value(self) -> Any:
        """What root fields resolve on: an instance of the query type, so that attribute
        defaults (``hello: str = "world"``) answer; None when it cannot be made without
        arguments."""
        try:
            return self.schema.query()
        except TypeError:
            return None

    @property
    def upstreams(self) -> list[str]:
        """The names of every upstream the graph calls."""
        return sorted(self.all_services)

    @cached_property
    def all_kinds(self) -> dict[str, TransportFactory]:
        added: dict[str, TransportFactory] = {}
        for service in self.all_services.values():
            added.update(service.kinds)
        return kinds_with(added)

    def check(self, upstreams: Mapping[str, UpstreamSettings]) -> None:
        """Raise ``GraphLoadError`` naming the first upstream missing, unknown, or of bad kind."""
        wanted = self.upstreams
        for name in wanted:
            if name not in upstreams:
                raise GraphLoadError(
                    f"upstreams.{name}: the graph calls this upstream; "
                    f"add an [upstreams.{name}] table"
                )
        kinds = self.all_kinds
        for name, settings in upstreams.items():
            if name not in wanted:
                calls = ", ".join(wanted) or "no upstream"
                raise GraphLoadError(f"upstreams.{name}: unknown upstream; the graph calls {calls}")
            if settings.kind not in kinds:
                known = ", ".join(sorted(kinds))
                raise GraphLoadError(
                    f"upstreams.{name}.kind: unknown kind {settings.kind!r}; known: {known}"
                )

    def schema_with(
        self,
        extensions: Iterable[ExtensionFactory],
        execution_context_class: type[Any] | None = None,
    ) -> strawberry.Schema:
        """The graph's schema with the runtime's stages added after its own extensions.

        A shallow copy: the types are shared, the graph's schema object is left
        as it was, so several apps can serve one graph.
        """
        schema = copy.copy(self.schema)
        schema.extensions = (*self.schema.extensions, *extensions)
        # Errors are logged where they are presented (switchyard.errors), once, and only
        # the unexpected ones: Strawberry's default logs a traceback for every field error.
        schema.process_errors = _leave_logging_to_the_presenter  # type: ignore[method-assign]
        if execution_context_class is not None:
            schema.execution_context_class = execution_context_class
        return schema


def _leave_logging_to_the_presenter(errors: Any, execution_context: Any = None) -> None:
    return None


def check_root_fields(schema: strawberry.Schema) -> None:
    """Raise ``GraphLoadError`` for a root field with a resolver declared non-null.

    A root field's resolver may call a service; declared non-null, its failure would
    null the whole answer (``data: null``) rather than the field. A plain value
    (``hello: str = "world"``) cannot fail and may be non-null.
    """
    graphql_schema = schema._schema
    roots = (
        graphql_schema.query_type,
        graphql_schema.mutation_type,
        graphql_schema.subscription_type,
    )
    for root in roots:
        if root is None:
            continue
        for field_name, graphql_field in root.fields.items():
            definition = (graphql_field.extensions or {}).get("strawberry-definition")
            if getattr(definition, "base_resolver", None) is None:
                continue
            if isinstance(graphql_field.type, GraphQLNonNull):
                raise GraphLoadError(
                    f"{root.name}.{field_name} is a root field with a resolver, so it must be "
                    "nullable: a failing service would otherwise null the whole answer"
                )


def edges_of(schema: strawberry.Schema) -> list[Any]:
    """The declared edges (``BatchEdge``, ``PagedEdge``) behind the schema's fields.

    Raises ``GraphLoadError`` for an edge field declared non-null: a failing
    service must null only its own fields, not their parent.
    """
    edges = []
    # The graphql-core schema is the one public place listing every field with its resolver.
    for type_name, graphql_type in schema._schema.type_map.items():
        for field_name, graphql_field in getattr(graphql_type, "fields", {}).items():
            definition = (graphql_field.extensions or {}).get("strawberry-definition")
            resolver = getattr(definition, "base_resolver", None)
            edge = getattr(getattr(resolver, "wrapped_func", None), "__switchyard_edge__", None)
            if edge is None:
                continue
            if isinstance(graphql_field.type, GraphQLNonNull):
                raise GraphLoadError(
                    f"{type_name}.{field_name} is served by another service "
                    f"({edge.service.name}), so it must be nullable"
                )
            edges.append(edge)
    return edges


def load_graph(reference: str, *, base_dir: Path | None = None) -> Graph:
    """Import ``"package.module:attribute"`` and return the ``Graph`` there, its
    nullability rules checked (``check_root_fields``, ``edges_of``).

    ``base_dir`` (the config file's folder) goes first on ``sys.path``, so a
    graph beside its config is found without installing it.

    >>> load_graph("no-colon")
    Traceback (most recent call last):
    ...
    switchyard.graph.GraphLoadError: graph 'no-colon': expected "module:attribute", ...
    """
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise GraphLoadError(f'graph {reference!r}: expected "module:attribute", e.g. "app:graph"')
    if base_dir is not None:
        folder = str(base_dir.resolve())
        if folder not in sys.path:
            sys.path.insert(0, folder)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            where = f" (looked in {base_dir} and the import path)" if base_dir else ""
            raise GraphLoadError(
                f"graph {reference!r}: no module named {exc.name!r}{where}"
            ) from None
        raise GraphLoadError(f"graph {reference!r}: importing it failed: {_one_line(exc)}") from exc
    except Exception as exc:
        raise GraphLoadError(f"graph {reference!r}: importing it failed: {_one_line(exc)}") from exc
    try:
        found = getattr(module, attribute)
    except AttributeError:
        raise GraphLoadError(
            f"graph {reference!r}: {module_name} has no attribute {attribute!r}"
        ) from None
    if not isinstance(found, Graph):
        raise GraphLoadError(
            f"graph {reference!r}: expected a switchyard.Graph, found {type(found).__name__}"
        )
    _ = found.all_services  # the nullability rules, checked as the graph loads
    return found


def _one_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


__all__ = ["Graph", "GraphLoadError", "load_graph"]
